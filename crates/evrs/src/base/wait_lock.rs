//! [`WaitLock`]: a caller's lock that the loop of a single-owner base releases while it
//! waits.

use super::{EventBase, Local};
use crate::backend::{Polled, Waiter};
use std::io;
use std::rc::Rc;
use std::time::Duration;

/// A caller's lock, released while the loop waits: for code that shares a single-owner
/// [`EventBase`] between threads under a lock of its own (the C ABI does, for the bases
/// libevent makes after `evthread_use_pthreads`).
///
/// Such a caller takes its lock around every use of the base and around `run`. Without
/// help the loop would hold it through the backend's wait, and no other thread could add an
/// event or stop the loop until something else woke it. With a [`WaitLock`] installed the
/// loop waits as a [`SharedBase`](crate::SharedBase)'s does: it readies a detached waiter
/// (the epoll change list flushed, or the poll/select sets copied), calls
/// [`release`](WaitLock::release), waits touching nothing of the base, calls
/// [`acquire`](WaitLock::acquire), and takes in what happened. What another thread changes
/// meanwhile is seen once the loop is woken (the caller wakes it, through a
/// [`Handle`](crate::Handle)).
///
/// Installing one is safe in itself: the base stays `!Send`, and on one thread the hooks are
/// just two calls around the wait. Sharing the base across threads is the caller's
/// (`unsafe`) business; this only makes the wait compatible with it.
///
/// Both hooks are given the loop's own `&mut EventBase`: a caller whose other threads use
/// the base during the wait should have them use this one (a pointer taken from it in
/// `release`, given up in `acquire`), not another path to the same memory, which the
/// loop's exclusive borrow would forbid.
pub trait WaitLock {
    /// Called on the loop's thread right before it blocks; the loop does not touch `base`
    /// again until [`acquire`](WaitLock::acquire) returns.
    fn release(&self, base: &mut EventBase);
    /// Called on the loop's thread right after the wait.
    fn acquire(&self, base: &mut EventBase);
}

/// The installed lock and the detached wait's state (reused from one wait to the next).
pub(crate) struct Unlocking {
    lock: Rc<dyn WaitLock>,
    waiter: Waiter,
    polled: Vec<Polled>,
}

impl EventBase<Local> {
    /// Installs `lock` (or, with `None`, removes it): from the next wait on, the loop
    /// releases it while it blocks in the backend (see [`WaitLock`]).
    pub fn set_wait_lock(&mut self, lock: Option<Rc<dyn WaitLock>>) {
        self.local.unlocking = lock.map(|lock| {
            Box::new(Unlocking {
                lock,
                waiter: Waiter::None,
                polled: Vec::new(),
            })
        });
    }

    /// Whether a [`WaitLock`] is installed.
    pub fn has_wait_lock(&self) -> bool {
        self.local.unlocking.is_some()
    }

    /// The loop's wait with the installed lock released (the caller checked there is one).
    #[inline(never)]
    pub(super) fn wait_unlocked(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let Some(u) = self.local.unlocking.as_mut() else {
            return self.core.poll_backend(timeout);
        };
        let lock = u.lock.clone();
        let mut waiter = std::mem::replace(&mut u.waiter, Waiter::None);
        let mut polled = std::mem::take(&mut u.polled);
        self.core.backend_mut().detach(&mut waiter);
        lock.release(self);
        // Nothing of `self` is touched until the lock is back: other threads may be using
        // the base meanwhile, under it.
        let res = waiter.wait(timeout, &mut polled);
        lock.acquire(self);
        self.woke_up();
        self.core.absorb(&mut polled);
        // The buffers go back for the next wait (to a lock installed meanwhile, if any).
        if let Some(u) = self.local.unlocking.as_mut() {
            u.waiter = waiter;
            u.polled = polled;
        }
        res
    }
}
