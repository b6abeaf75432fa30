//! The recursive lock `evbuffer_enable_locking` gives a buffer: taken by every operation
//! and by `evbuffer_lock`, so a thread may group several calls.

use std::sync::{Condvar, Mutex};
use std::thread::{self, ThreadId};

/// A recursive lock: the owning thread and how many times it holds the lock.
#[derive(Default)]
pub(crate) struct RLock {
    state: Mutex<(Option<ThreadId>, usize)>,
    freed: Condvar,
}

impl RLock {
    /// Takes the lock (again, if this thread holds it).
    pub(crate) fn lock(&self) {
        let me = thread::current().id();
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
        true
    }
}
