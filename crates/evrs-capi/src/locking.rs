//! The lock of a threaded C base: libevent's model after `evthread_use_pthreads` (or custom
//! lock callbacks), over a single-owner [`EventBase`].
//!
//! A base made while lock callbacks are installed (and without `EVENT_BASE_FLAG_NOLOCK`)
//! gets one recursive lock, allocated through those callbacks, so a program's own lock
//! implementation is the one used. Every library call on the base holds it
//! ([`CBase::with`](crate::base::CBase::with) takes it), and so does the loop — except
//! while it waits in the backend (a [`WaitLock`] installed on the `EventBase`) and while an
//! event's C callback runs (the trampoline releases it around the call), as libevent's
//! loop does. The bufferevents, listeners and evbuffers of the base use the same lock: a
//! bufferevent's callbacks run with it held, as libevent's run with the bufferevent's
//! lock held.
//!
//! A change made by another thread while the loop waits wakes it (through the base's
//! [`Handle`]). `event_del` from another thread waits for the event's running callback to
//! return (libevent's `EVENT_DEL_AUTOBLOCK`; `event_del_block` always, `event_del_noblock`
//! and `EV_FINALIZE` events never), on a condition variable from the installed condition
//! callbacks (without them, by releasing the lock and yielding until it is done).

use crate::thread::{self, CondFns, LockFns};
use evrs::{EventBase, Handle, WaitLock};
use std::cell::Cell;
use std::os::raw::c_void;
use std::ptr;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `EVTHREAD_LOCKTYPE_RECURSIVE`.
const RECURSIVE: u32 = 1;

/// A threaded base's lock and the loop state other threads look at (all of it read and
/// written with the lock held).
pub struct BaseLock {
    lock: *mut c_void,
    fns: LockFns,
    cond: *mut c_void,
    cond_fns: Option<CondFns>,
    waker: Handle,
    /// The loop is waiting in the backend: a change must wake it.
    in_wait: Cell<bool>,
    /// The thread running the loop (`pthread_self`), if one is.
    loop_thread: Cell<Option<libc::pthread_t>>,
    /// The C event whose callback runs now, with the lock released (null if none).
    running: Cell<*const c_void>,
    /// Callbacks started so far: tells the callback a waiter waits for from a later call of
    /// the same event (a persistent event that is ready again).
    calls: Cell<u64>,
    /// Threads waiting for a callback to return (the condition is signalled only then).
    waiters: Cell<u32>,
    /// The loop's base while it waits (see [`WaitLock`]), for the other threads to use.
    waiting_base: Cell<*mut EventBase>,
    /// The thread holding the lock (see [`this_thread`]; 0: none), and how many times.
    owner: AtomicUsize,
    depth: Cell<u32>,
}

/// The calling thread, as a nonzero number.
fn this_thread() -> usize {
    // SAFETY: no preconditions.
    (unsafe { libc::pthread_self() }) as usize
}

impl BaseLock {
    /// The lock for a new base, if lock callbacks are installed (`None` otherwise, or if
    /// they fail to make one — then the base is unlocked, as libevent's would be).
    pub fn new(base: &mut EventBase) -> Option<Rc<BaseLock>> {
        let fns = thread::lock_fns()?;
        // SAFETY: the program's lock allocator, called as libevent calls it.
        let lock = unsafe { (fns.alloc)(RECURSIVE) };
        if lock.is_null() {
            crate::log::warn(
                "event_base_new: the lock callbacks made no lock: the base is unlocked",
            );
            return None;
        }
        let cond_fns = thread::cond_fns();
        let cond = match &cond_fns {
            // SAFETY: the program's condition allocator.
            Some(c) => unsafe { (c.alloc)(0) },
            None => ptr::null_mut(),
        };
        let waker = match base.handle() {
            Ok(h) => h,
            Err(e) => {
                crate::log::warn(&format!(
                    "event_base_new: no cross-thread wake-up ({e}): the base is unlocked"
                ));
                // SAFETY: made above, never used.
                unsafe { (fns.free)(lock, RECURSIVE) };
                if let (Some(c), false) = (&cond_fns, cond.is_null()) {
                    // SAFETY: made above, never used.
                    unsafe { (c.free)(cond) };
                }
                return None;
            }
        };
        Some(Rc::new(BaseLock {
            lock,
            fns,
            cond_fns: cond_fns.filter(|_| !cond.is_null()),
            cond,
            waker,
            in_wait: Cell::new(false),
            loop_thread: Cell::new(None),
            running: Cell::new(ptr::null()),
            calls: Cell::new(0),
            waiters: Cell::new(0),
            waiting_base: Cell::new(ptr::null_mut()),
            owner: AtomicUsize::new(0),
            depth: Cell::new(0),
        }))
    }

    /// Takes the lock (recursively).
    pub fn lock(&self) {
        // SAFETY: the program's lock function on the lock its allocator made.
        unsafe { (self.fns.lock)(0, self.lock) };
        self.took();
    }

    /// Records that this thread now holds the lock (once more).
    fn took(&self) {
        let me = this_thread();
        if self.owner.load(Ordering::Relaxed) == me {
            self.depth.set(self.depth.get() + 1);
        } else {
            self.owner.store(me, Ordering::Relaxed);
            self.depth.set(1);
        }
    }

    /// Whether the calling thread holds the lock.
    pub fn held_here(&self) -> bool {
        self.owner.load(Ordering::Relaxed) == this_thread()
    }

    /// Releases one level of the lock, which this thread holds.
    pub fn unlock(&self) {
        // After a change made while the loop sleeps: wake it to see it (coalesced).
        if self.in_wait.get() {
            let _ = self.waker.wake();
        }
        self.raw_unlock();
    }

    /// Releases one level, for a caller that may not hold it (`bufferevent_unlock`):
    /// refused with a warning if this thread does not (unlocking a mutex another thread
    /// holds is undefined behaviour; libevent's lock debugging aborts there).
    pub fn unlock_checked(&self, what: &str) {
        if self.held_here() {
            self.unlock();
        } else {
            crate::log::warn(&format!("{what}: this thread does not hold the lock"));
        }
    }

    fn raw_unlock(&self) {
        let d = self.depth.get().saturating_sub(1);
        self.depth.set(d);
        if d == 0 {
            self.owner.store(0, Ordering::Relaxed);
        }
        // SAFETY: the program's unlock function; this thread holds the lock.
        unsafe { (self.fns.unlock)(0, self.lock) };
    }

    /// The loop's base while it waits, else null (read with the lock held).
    pub fn waiting_base(&self) -> *mut EventBase {
        self.waiting_base.get()
    }

    /// The loop starts on this thread (lock held).
    pub fn loop_begins(&self) {
        // SAFETY: no preconditions.
        self.loop_thread.set(Some(unsafe { libc::pthread_self() }));
    }

    /// The loop has returned (lock held).
    pub fn loop_ends(&self) {
        self.loop_thread.set(None);
    }

    /// Whether the calling thread runs this base's loop.
    fn on_loop_thread(&self) -> bool {
        // SAFETY: no preconditions.
        self.loop_thread
            .get()
            .is_some_and(|t| unsafe { libc::pthread_equal(t, libc::pthread_self()) } != 0)
    }

    /// Before an event's C callback (lock held): record it and release the lock.
    pub fn callback_begins(&self, ev: *const c_void) {
        self.running.set(ev);
        self.calls.set(self.calls.get() + 1);
        self.unlock();
    }

    /// After it: take the lock back and wake threads waiting for the callback to return.
    pub fn callback_ends(&self) {
        self.lock();
        self.running.set(ptr::null());
        if self.waiters.get() > 0 {
            if let Some(c) = &self.cond_fns {
                // SAFETY: the program's condition function on its condition.
                unsafe { (c.signal)(self.cond, 1) };
            }
        }
    }

    /// With the lock held (once): if `ev`'s callback runs on another thread, waits until
    /// that call returns (not for later calls: a persistent event that is still ready runs
    /// again at once, and a waiter would starve). Returns at once on the loop's own thread
    /// (a callback deleting its event, or another one, must not wait for itself).
    pub fn wait_for_callback(&self, ev: *const c_void) {
        let call = self.calls.get();
        if self.depth.get() > 1 && self.running.get() == ev && !self.on_loop_thread() {
            // Waiting would release one level of the lock only, and the loop could never
            // take it back to finish the callback: a deadlock. libevent hangs there.
            crate::log::warn("event_del: not waiting for the event's running callback: this thread holds the base's lock more than once (bufferevent_lock?)");
            return;
        }
        while self.running.get() == ev
            && self.calls.get() == call
            && !self.on_loop_thread()
            && self.loop_thread.get().is_some()
        {
            match &self.cond_fns {
                // SAFETY: the program's condition wait, with its lock held (once, checked
                // above) by this thread; the ownership record is given up around it.
                Some(c) => unsafe {
                    self.owner.store(0, Ordering::Relaxed);
                    self.depth.set(0);
                    self.waiters.set(self.waiters.get() + 1);
                    (c.wait)(self.cond, self.lock, ptr::null());
                    self.took();
                    self.waiters.set(self.waiters.get() - 1);
                },
                None => {
                    self.raw_unlock();
                    std::thread::yield_now();
                    self.lock();
                }
            }
        }
    }
}

impl WaitLock for BaseLock {
    fn release(&self, base: &mut EventBase) {
        self.waiting_base.set(base);
        self.in_wait.set(true);
        // (The loop holds the lock: the call that runs it took it.)
        self.raw_unlock();
    }

    fn acquire(&self, _base: &mut EventBase) {
        self.lock();
        self.in_wait.set(false);
        self.waiting_base.set(ptr::null_mut());
    }
}

impl Drop for BaseLock {
    fn drop(&mut self) {
        // SAFETY: the lock and condition this value made; nothing uses them any more (the
        // base is being freed).
        unsafe {
            (self.fns.free)(self.lock, RECURSIVE);
            if let Some(c) = &self.cond_fns {
                (c.free)(self.cond);
            }
        }
    }
}
