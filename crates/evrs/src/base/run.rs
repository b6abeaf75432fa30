//! Driving the loop of a single-owner base: the [`LoopCtx`] of `EventBase` (callbacks get
//! `&mut EventBase`; the wait holds nothing) and the loop-control API. The loop itself is
//! `core/run_loop.rs`, shared with `SharedBase`.

use super::model::{LocalHandler, LocalKind};
use super::{EventBase, Local};
use crate::event::{Callback, RawArg, RawCallback};
use crate::flags::{LoopFlags, What};
use crate::reactor::run_loop::{self, LoopCtx, RunOutcome};
use crate::reactor::Reactor;
use std::io;
use std::time::Duration;

impl LoopCtx for EventBase<Local> {
    #[inline]
    fn reactor(&mut self) -> &mut Reactor {
        &mut self.core
    }

    fn has_queued(&mut self) -> bool {
        self.notify.as_ref().is_some_and(|(s, _)| s.has_pending()) || self.local_pending()
    }

    #[inline]
    fn take_commands(&mut self) -> bool {
        let local = self.local_woken();
        self.commands_before_sleep() || local
    }

    #[inline]
    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        if self.local.unlocking.is_some() {
            return self.wait_unlocked(timeout);
        }
        let res = self.core.poll_backend(timeout);
        self.woke_up();
        res
    }

    #[inline(always)]
    fn call_plain(&mut self, idx: usize, gen: u32, what: What) {
        // The common closure, with no detour through the other kinds; then a raw callback
        // (every C ABI event), before the general path.
        match self.handlers.start_call(idx) {
            Some(f) => self.run_fn(idx, gen, f, what),
            None => self.call_raw_or_general(idx, gen, what),
        }
    }

    /// A one-shot event (already deleted): a raw callback is tried first (a timer made
    /// with `new_event_raw` is the common one-shot), then a closure.
    #[inline(always)]
    fn call_oneshot(&mut self, idx: usize, gen: u32, what: What) {
        match self.handlers.start_raw(idx) {
            Some((cb, arg)) => self.run_raw(idx, gen, cb, arg, what),
            None => self.call_plain(idx, gen, what),
        }
    }

    #[inline(never)]
    fn call(&mut self, idx: usize, _events: What, what: What) {
        if let Some(f) = self.handlers.start_call(idx) {
            let gen = self.core.table().get(idx).gen();
            return self.run_fn(idx, gen, f, what);
        }
        if let Some((cb, arg)) = self.handlers.start_raw(idx) {
            let gen = self.core.table().get(idx).gen();
            return self.run_raw(idx, gen, cb, arg, what);
        }
        let Some(LocalHandler(h)) = self.take_handler(idx) else {
            return;
        };
        let ev = self.core.event_at(idx);
        // Recorded for the panic rule: if the callback unwinds, `run` frees this event.
        self.core.set_running(idx, ev.gen);
        match h {
            // (Closures and raw callbacks are called above; a running one is never called
            // again.)
            k @ (LocalKind::Fn(_) | LocalKind::Raw(..) | LocalKind::Running) => {
                let _ = self.put_back_handler(idx, ev.gen, LocalHandler(k));
            }
            LocalKind::Once(f) => {
                f(self, ev, what);
                if self.core.index(ev).is_ok() {
                    self.free_idx(idx);
                }
            }
            LocalKind::Finalize(f, free) => {
                f(self, ev);
                if free && self.core.index(ev).is_ok() {
                    self.free_idx(idx);
                }
            }
        }
        self.core.set_running_slot(None);
        self.take_local();
    }

    fn notified(&mut self) {
        self.notify_ready();
    }
}

impl EventBase<Local> {
    /// `call_plain` found no closure: a raw callback straight away, else the general path.
    /// Out of line, so `call_plain`'s closure path keeps its registers (inlined, this cost
    /// the closure path 4 instructions per event on pipechain: 198 -> 202).
    #[inline(never)]
    fn call_raw_or_general(&mut self, idx: usize, gen: u32, what: What) {
        match self.handlers.start_raw(idx) {
            Some((cb, arg)) => self.run_raw(idx, gen, cb, arg, what),
            None => self.call(idx, What::empty(), what),
        }
    }

    /// Calls the closure `f` of event (`idx`, `gen`), taken out of its slot (which holds the
    /// running marker meanwhile): it goes back unless the callback freed, re-assigned or
    /// finalized its event, and is dropped otherwise, once the base's state is back.
    #[inline(always)]
    fn run_fn(&mut self, idx: usize, gen: u32, mut f: Box<Callback>, what: What) {
        let ev = self.core.event_with(idx, gen);
        // Recorded for the panic rule: if the callback unwinds, `run` frees this event.
        self.core.set_running(idx, gen);
        f(self, ev, what);
        self.core.set_running_slot(None);
        self.handlers.end_call(idx, f);
        self.take_local();
    }

    /// Calls the raw callback `cb(arg)` of event (`idx`, `gen`), copied out of its slot
    /// (which holds the running marker meanwhile, as for a closure): it goes back unless the
    /// callback freed, re-assigned or finalized its event.
    #[inline(always)]
    fn run_raw(&mut self, idx: usize, gen: u32, cb: RawCallback, arg: RawArg, what: What) {
        let ev = self.core.event_with(idx, gen);
        // Recorded for the panic rule: if the callback unwinds, `run` frees this event.
        self.core.set_running(idx, gen);
        cb(self, ev, what, arg);
        self.core.set_running_slot(None);
        self.handlers.end_raw(idx, cb, arg);
        self.take_local();
    }

    /// Runs the loop until no events are pending (libevent's `event_base_dispatch`).
    pub fn dispatch(&mut self) -> io::Result<RunOutcome> {
        self.run(LoopFlags::empty())
    }

    /// Runs the loop with `flags` (libevent's `event_base_loop`). Returns an error if the
    /// backend fails or if the loop is already running (a callback may not re-enter it).
    ///
    /// If a callback panics, the panic propagates out of `run` after the loop state is
    /// restored, and the event whose callback panicked is freed (its closure may have been
    /// left half-way through an update, so it is not called again) — unless the callback had
    /// re-assigned its event a new one first: the base stays usable.
    pub fn run(&mut self, flags: LoopFlags) -> io::Result<RunOutcome> {
        if self.core.is_running() {
            return Err(io::Error::other(
                "reentrant invocation: only one loop can run on an event base at once",
            ));
        }
        self.core.begin_run();
        let res =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_loop::run(self, flags)));
        let panicked = self.core.running_slot();
        self.core.end_run();
        #[cfg(feature = "debug-checks")]
        if res.is_ok() {
            if let Err(e) = self.verify() {
                panic!("debug-checks: {e}");
            }
        }
        match res {
            Ok(res) => res,
            Err(panic) => {
                self.free_after_panic(panicked);
                std::panic::resume_unwind(panic)
            }
        }
    }
}

impl<M: super::Model> EventBase<M> {
    /// Stops the loop after `after` (or, with `None`, at the end of the current iteration:
    /// the callbacks already active in it still run). Unlike `loopbreak`, a `loopexit` made
    /// while no loop runs is remembered for the next run (libevent's `event_base_loopexit`).
    pub fn loopexit(&mut self, after: Option<Duration>) -> io::Result<()> {
        self.core.loopexit(after)
    }

    /// Stops the loop right after the current callback; remaining active callbacks stay
    /// queued for the next run. Ignored (not remembered) if no loop is running.
    pub fn loopbreak(&mut self) {
        self.core.loopbreak()
    }

    /// Ends the current pass over the active queue after the running callback and polls
    /// again (libevent's `event_base_loopcontinue`). No effect when no loop runs.
    pub fn loopcontinue(&mut self) {
        self.core.loopcontinue()
    }
    /// Did the last (or current) run end because of `loopexit`?
    pub fn got_exit(&self) -> bool {
        self.core.got_exit()
    }

    /// Did the last (or current) run end because of `loopbreak`?
    pub fn got_break(&self) -> bool {
        self.core.got_break()
    }

    /// Is a loop running on this base right now?
    pub fn is_running(&self) -> bool {
        self.core.is_running()
    }

    /// Call in the child after `fork()` (not needed if it `exec`s). Creates a fresh backend,
    /// signal pipe and notify fd and re-registers every added event and signal; timers,
    /// priorities and active queues carry over. The parent's loop is unaffected.
    ///
    /// ```no_run
    /// # let mut base = evrs::EventBase::new()?;
    /// // SAFETY: the child only uses its own base.
    /// if unsafe { libc::fork() } == 0 {
    ///     base.reinit()?;
    ///     base.dispatch()?;
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn reinit(&mut self) -> io::Result<()> {
        self.core.reinit()?;
        self.reinit_notify()
    }
}
