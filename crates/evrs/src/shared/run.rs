//! The loop of a [`SharedBase`]: the one loop of `core/run_loop.rs`, with a [`LoopCtx`] that
//! releases the lock around the backend's wait and around every user callback.
//!
//! Wait: lock held → flush the epoll change list (or copy the poll/select sets) into a
//! detached waiter → **unlock** → wait → lock → absorb. Callback: take its closure out of
//! the slot → **unlock** → call it with `&SharedBase` → lock → put the closure back (unless
//! the event was freed or re-assigned meanwhile; a closure not put back is dropped without
//! the lock) → wake any thread blocked in `del_block` on it.

use super::{Core, SharedBase};
use crate::backend::{Polled, Waiter};
use crate::base::model::{SharedHandler, SharedKind};
use crate::flags::{LoopFlags, What};
use crate::reactor::run_loop::{self, LoopCtx, RunOutcome};
use crate::reactor::Reactor;
use std::io;
use std::sync::MutexGuard;
use std::time::Duration;

/// The shared base's loop context: the lock (held between the loop's steps), the detached
/// waiter and the buffer it fills.
struct SharedCtx<'a> {
    base: &'a SharedBase,
    guard: Option<MutexGuard<'a, Core>>,
    waiter: Waiter,
    polled: Vec<Polled>,
}

impl<'a> SharedCtx<'a> {
    /// The lock, re-taken if a step left it released.
    #[inline]
    fn core(&mut self) -> &mut Core {
        let base = self.base;
        self.guard.get_or_insert_with(|| base.lock())
    }

    fn unlock(&mut self) {
        self.guard = None;
    }
}

impl LoopCtx for SharedCtx<'_> {
    #[inline]
    fn reactor(&mut self) -> &mut Reactor {
        self.core().base.reactor_mut()
    }

    fn has_queued(&mut self) -> bool {
        false
    }

    fn take_commands(&mut self) -> bool {
        // Only wake-ups arrive this way (other threads change the base directly, under the
        // lock): one that no eventfd write announced means "do not block". Taking the (empty)
        // queue re-arms wake-ups.
        self.core().base.take_before_sleep()
    }

    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let mut waiter = std::mem::replace(&mut self.waiter, Waiter::None);
        let core = self.core();
        core.base.reactor_mut().backend_mut().detach(&mut waiter);
        core.in_wait = true;
        self.unlock();
        let res = waiter.wait(timeout, &mut self.polled);
        self.waiter = waiter;
        let mut polled = std::mem::take(&mut self.polled);
        let core = self.core();
        core.in_wait = false;
        core.base.woke_up();
        core.base.reactor_mut().absorb(&mut polled);
        self.polled = polled;
        res
    }

    fn call(&mut self, idx: usize, _events: What, what: What) {
        let base = self.base;
        let core = self.core();
        let Some(SharedHandler(h)) = core.base.take_handler(idx) else {
            return;
        };
        let ev = core.base.reactor().event_at(idx);
        core.base.reactor_mut().set_running_slot(Some(idx));
        core.running = Some(ev);
        let leftover = match h {
            SharedKind::Fn(mut f) => {
                self.unlock();
                f(base, ev, what);
                let h = SharedHandler(SharedKind::Fn(f));
                self.core().base.put_back_handler(idx, ev.gen, h)
            }
            SharedKind::Raw(cb, arg) => {
                self.unlock();
                cb(base, ev, what, arg);
                let h = SharedHandler(SharedKind::Raw(cb, arg));
                self.core().base.put_back_handler(idx, ev.gen, h)
            }
            SharedKind::Finalize(f, free) => {
                self.unlock();
                f(ev);
                let core = self.core();
                if free && core.base.is_initialized(ev) {
                    core.base.free_idx(idx);
                }
                None
            }
        };
        if leftover.is_some() {
            // Freed or re-assigned while it ran: drop it without the lock (its destructor
            // is user code and may call into the base).
            self.unlock();
            drop(leftover);
        }
        let core = self.core();
        core.running = None;
        core.base.reactor_mut().set_running_slot(None);
        if core.waiters > 0 {
            base.inner.callback_done.notify_all();
        }
    }

    /// Drains the eventfd and re-arms wake-ups (without which `pending` stays set: the loop
    /// would never block again, and no later wake-up would write the eventfd).
    fn notified(&mut self) {
        self.core().base.take_notified();
    }
}

impl SharedBase {
    /// Runs the loop until no events are pending (libevent's `event_base_dispatch`).
    pub fn dispatch(&self) -> io::Result<RunOutcome> {
        self.run(LoopFlags::empty())
    }

    /// Runs the loop on the calling thread with `flags` (libevent's `event_base_loop`).
    /// One thread at a time: a second concurrent `run` fails with an error. A panicking
    /// callback propagates out of `run` with the base left usable and the event whose
    /// callback panicked freed (as [`EventBase::run`](crate::EventBase::run)).
    pub fn run(&self, flags: LoopFlags) -> io::Result<RunOutcome> {
        let mut core = self.lock();
        if core.loop_thread.is_some() {
            return Err(io::Error::other(
                "the loop of this shared base is already running (on this or another thread)",
            ));
        }
        core.loop_thread = Some(std::thread::current().id());
        core.base.reactor_mut().begin_run();
        let mut ctx = SharedCtx {
            base: self,
            guard: Some(core),
            waiter: Waiter::None,
            polled: Vec::new(),
        };
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_loop::run(&mut ctx, flags)
        }));
        let core = ctx.core();
        let panicked = core.base.reactor().running_slot();
        core.base.reactor_mut().end_run();
        core.loop_thread = None;
        core.in_wait = false;
        core.running = None;
        if res.is_err() {
            core.base.free_after_panic(panicked);
        }
        #[cfg(feature = "debug-checks")]
        if res.is_ok() {
            if let Err(e) = core.base.verify() {
                panic!("debug-checks: {e}");
            }
        }
        if core.waiters > 0 {
            self.inner.callback_done.notify_all();
        }
        drop(ctx);
        match res {
            Ok(res) => res,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}
