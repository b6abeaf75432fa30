//! The loop of a [`SharedBase`]: the same iteration as [`EventBase::run`] (it calls the same
//! steps), but the lock is released around the backend's wait and around every user callback.
//!
//! One iteration: lock → `iteration_start` (stop checks, timeout) → `prepare_wait` (flush the
//! epoll change list, or copy the poll/select sets) → **unlock** → wait → lock →
//! `absorb_ready` + timers → for each active event: `prepare_callback` (delete or re-arm),
//! take its closure out of the slot → **unlock** → call it → lock → put the closure back
//! (unless the event was freed or re-assigned meanwhile) → wake any thread blocked in
//! `del_block` on it.

use super::{Core, SharedBase};
use crate::backend::Waiter;
use crate::event::Handler;
use crate::flags::{LoopFlags, What};
use crate::run::{Iteration, RunOutcome};
use std::io;
use std::os::unix::io::RawFd;
use std::sync::MutexGuard;

type Guard<'a> = MutexGuard<'a, Core>;

/// A callback taken out of its slot, to be called with the lock released.
enum Unlocked {
    Callback(Box<crate::event::SharedCallback>),
    Finalize(Box<crate::event::SharedFinalizeCallback>, bool),
}

impl SharedBase {
    /// Runs the loop until no events are pending (libevent's `event_base_dispatch`).
    pub fn dispatch(&self) -> io::Result<RunOutcome> {
        self.run(LoopFlags::empty())
    }

    /// Runs the loop on the calling thread with `flags` (libevent's `event_base_loop`).
    /// One thread at a time: a second concurrent `run` fails with an error.
    pub fn run(&self, flags: LoopFlags) -> io::Result<RunOutcome> {
        let mut core = self.lock();
        if core.loop_thread.is_some() {
            return Err(io::Error::other(
                "the loop of this shared base is already running (on this or another thread)",
            ));
        }
        core.loop_thread = Some(std::thread::current().id());
        core.base.begin_run();
        let mut waiter = Waiter::for_method(core.base.method());
        drop(core);
        let mut ready = Vec::new();
        // A panicking callback unwinds through here: leave the base usable.
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.run_inner(flags, &mut waiter, &mut ready)
        }));
        let mut core = self.lock();
        core.base.end_run();
        core.loop_thread = None;
        core.in_wait = false;
        core.running = None;
        if core.waiters > 0 {
            self.inner.callback_done.notify_all();
        }
        drop(core);
        match res {
            Ok(res) => res,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    fn run_inner(
        &self,
        flags: LoopFlags,
        waiter: &mut Waiter,
        ready: &mut Vec<(RawFd, u8)>,
    ) -> io::Result<RunOutcome> {
        let mut core = self.lock();
        loop {
            let timeout = match core.base.iteration_start(flags) {
                Iteration::Exit(outcome) => return Ok(outcome),
                Iteration::Wait(timeout) => timeout,
            };
            core.base.backend.prepare_wait(waiter);
            core.in_wait = true;
            drop(core);
            let res = waiter.wait(timeout, ready);
            core = self.lock();
            core.in_wait = false;
            core.base.absorb_ready(ready);
            res?;
            core.base.process_timers();
            if core.base.n_active > 0 {
                let n;
                (core, n) = self.process_active(core);
                if flags.contains(LoopFlags::ONCE) && core.base.n_active == 0 && n != 0 {
                    return Ok(RunOutcome::Exited);
                }
            } else if flags.contains(LoopFlags::NONBLOCK) {
                return Ok(RunOutcome::Exited);
            }
        }
    }

    /// As `EventBase::process_active`: the first priority that runs a user callback.
    fn process_active<'a>(&'a self, mut core: Guard<'a>) -> (Guard<'a>, i64) {
        let mut result = 0;
        let mut p = 0;
        while p < core.base.active.len() {
            if !core.base.active[p].is_empty() {
                core.base.running_priority = Some(p);
                let n;
                (core, n) = self.process_queue(core, p);
                if n != 0 {
                    result = n;
                    break;
                }
            }
            p += 1;
        }
        core.base.running_priority = None;
        (core, result)
    }

    fn process_queue<'a>(&'a self, mut core: Guard<'a>, p: usize) -> (Guard<'a>, i64) {
        let limited = core.base.pass_limited(p);
        let end = core.base.pass_end(limited);
        let mut count: i64 = 0;
        while let Some(idx) = core.base.queue_pop(p) {
            core.base.prefetch_upcoming(p);
            let (events, res, internal) = core.base.prepare_callback(idx);
            if !internal {
                count += 1;
            }
            let taken = match core.base.slots[idx].handler.take() {
                Some(Handler::Shared(f)) => Some(Unlocked::Callback(f)),
                Some(Handler::SharedFinalize(f, free)) => Some(Unlocked::Finalize(f, free)),
                other => {
                    core.base.slots[idx].handler = other;
                    None
                }
            };
            match taken {
                // Internal work (signal pipe, notify fd, loopexit) runs under the lock.
                None => core.base.run_callback(idx, events, res),
                Some(f) => core = self.call_unlocked(core, idx, events, res, f),
            }
            if core.base.got_break {
                return (core, -1);
            }
            if limited && core.base.pass_limit_reached(count, end) {
                return (core, count);
            }
            if core.base.cont {
                return (core, count);
            }
        }
        (core, count)
    }

    fn call_unlocked<'a>(
        &'a self,
        mut core: Guard<'a>,
        idx: usize,
        events: What,
        res: What,
        f: Unlocked,
    ) -> Guard<'a> {
        let ev = core.base.event_at(idx);
        core.base.running_event = Some(ev);
        core.running = Some(ev);
        match f {
            Unlocked::Callback(mut f) => {
                if events.contains(What::SIGNAL) {
                    // One call per delivery; del, re-add or loopbreak stop the rest.
                    loop {
                        let stop = core.base.got_break;
                        let s = &mut core.base.slots[idx];
                        if !s.live || s.gen != ev.gen || s.ncalls == 0 || stop {
                            break;
                        }
                        s.ncalls -= 1;
                        drop(core);
                        f(self, ev, res);
                        core = self.lock();
                    }
                } else {
                    drop(core);
                    f(self, ev, res);
                    core = self.lock();
                }
                let s = &mut core.base.slots[idx];
                if s.gen == ev.gen && s.live && s.handler.is_none() {
                    s.handler = Some(Handler::Shared(f));
                } else {
                    // Freed or re-assigned while it ran: drop it without the lock (its
                    // destructor is user code and may call into the base).
                    drop(core);
                    drop(f);
                    core = self.lock();
                }
            }
            Unlocked::Finalize(f, free) => {
                core.base.slots[idx].state &= !crate::event::state::FINALIZING;
                drop(core);
                f(ev);
                core = self.lock();
                if free && core.base.index(ev).is_ok() {
                    core.base.release(idx);
                }
            }
        }
        core.running = None;
        core.base.running_event = None;
        if core.waiters > 0 {
            self.inner.callback_done.notify_all();
        }
        core
    }
}
