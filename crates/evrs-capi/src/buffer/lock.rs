//! The recursive lock `evbuffer_enable_locking` gives a buffer: taken by every operation
//! and by `evbuffer_lock`, so a thread may group several calls. Either evrs's own, or — when
//! the program passes one of its locks (made through the installed lock callbacks, as
//! libevent expects) — the program's, taken through those callbacks, so that a buffer can
//! share a lock with the program's own structures.

use crate::thread::LockFns;
use std::os::raw::c_void;
use std::sync::{Condvar, Mutex};
use std::thread::{self, ThreadId};

/// A recursive lock: the owning thread and how many times it holds the lock; the
/// program's lock, if the buffer uses one.
#[derive(Default)]
pub(crate) struct RLock {
    state: Mutex<(Option<ThreadId>, usize)>,
    freed: Condvar,
    program: Option<ProgramLock>,
}

/// A lock of the program's, with the callbacks that take it.
struct ProgramLock {
    lock: *mut c_void,
    fns: LockFns,
}

// SAFETY: the program's lock is made for use from any thread (that is its purpose); the
// pointer is only handed to the program's own lock functions.
unsafe impl Send for ProgramLock {}
// SAFETY: as above.
unsafe impl Sync for ProgramLock {}

impl RLock {
    /// The program's `lock`, taken through `fns` (the installed lock callbacks).
    pub(crate) fn program(lock: *mut c_void, fns: LockFns) -> RLock {
        RLock {
            program: Some(ProgramLock { lock, fns }),
            ..RLock::default()
        }
    }

    /// Takes the lock (again, if this thread holds it).
    pub(crate) fn lock(&self) {
        let me = thread::current().id();
        if let Some(p) = &self.program {
            // SAFETY: the program's lock function on its own (recursive) lock.
            unsafe { (p.fns.lock)(0, p.lock) };
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            s.0 = Some(me);
            s.1 += 1;
            return;
        }
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while s.0.is_some_and(|t| t != me) {
            s = self.freed.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        s.0 = Some(me);
        s.1 += 1;
    }

    /// Releases one hold; false (and nothing done) if this thread does not hold it.
    pub(crate) fn unlock(&self) -> bool {
        let me = thread::current().id();
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.0 != Some(me) || s.1 == 0 {
            return false;
        }
        s.1 -= 1;
        if s.1 == 0 {
            s.0 = None;
            self.freed.notify_one();
        }
        if let Some(p) = &self.program {
            drop(s);
            // SAFETY: the program's unlock function; this thread holds the lock.
            unsafe { (p.fns.unlock)(0, p.lock) };
        }
        true
    }
}
