//! The loop (libevent's `event_base_loop`): poll the backend, turn readiness and expired
//! timers into active events, run the callbacks of the most urgent non-empty priority, repeat.
//!
//! Path of one readiness event: `Backend::dispatch` (e.g. `epoll_wait`) appends `(fd, bits)`
//! to a reused buffer → `io_ready` walks the fd's event list and queues each interested event
//! on its priority's FIFO → `process_active` pops it, deletes it (non-persistent) or re-arms
//! its timeout (persistent), takes its closure out of the slot, and calls it with
//! `&mut EventBase`. Nothing on that path allocates.

use crate::base::EventBase;
use crate::event::{state, Event, Handler, Internal, NIL};
use crate::flags::{LoopFlags, What};
use crate::sys;
use std::io;
use std::os::unix::io::RawFd;
use std::time::Duration;

/// How [`EventBase::run`] ended (libevent's 0 and 1 results; errors are `Err`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunOutcome {
    /// Stopped by `loopexit`/`loopbreak`, or `ONCE`/`NONBLOCK` finished (libevent's 0).
    Exited,
    /// No events were pending or active (libevent's 1).
    NoEvents,
}

/// What the start of an iteration decided.
pub(crate) enum Iteration {
    Exit(RunOutcome),
    Wait(Option<Duration>),
}

impl EventBase {
    /// Runs the loop until no events are pending (libevent's `event_base_dispatch`).
    pub fn dispatch(&mut self) -> io::Result<RunOutcome> {
        self.run(LoopFlags::empty())
    }

    /// Runs the loop with `flags` (libevent's `event_base_loop`). Returns an error if the
    /// backend fails or if the loop is already running (a callback may not re-enter it).
    pub fn run(&mut self, flags: LoopFlags) -> io::Result<RunOutcome> {
        if self.running {
            return Err(io::Error::other(
                "reentrant invocation: only one loop can run on an event base at once",
            ));
        }
        self.begin_run();
        // A panicking callback unwinds through here: restore the loop state first, so the
        // base stays usable if the caller catches the panic (no "reentrant" error forever).
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.run_inner(flags)));
        self.end_run();
        match res {
            Ok(res) => res,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    pub(crate) fn begin_run(&mut self) {
        self.running = true;
        self.cache = None;
        self.got_exit = false;
        self.got_break = false;
        self.claim_signals();
        let _ = self.backend.set_deferring(true);
    }

    pub(crate) fn end_run(&mut self) {
        let _ = self.backend.set_deferring(false);
        self.running = false;
        self.running_priority = None;
        self.running_event = None;
        self.cache = None;
    }

    fn run_inner(&mut self, flags: LoopFlags) -> io::Result<RunOutcome> {
        loop {
            let timeout = match self.iteration_start(flags) {
                Iteration::Exit(outcome) => return Ok(outcome),
                Iteration::Wait(timeout) => timeout,
            };
            let mut ready = std::mem::take(&mut self.ready);
            let res = self.backend.dispatch(timeout, &mut ready);
            self.absorb_ready(&mut ready);
            self.ready = ready;
            res?;
            self.process_timers();
            if self.n_active > 0 {
                let n = self.process_active();
                if flags.contains(LoopFlags::ONCE) && self.n_active == 0 && n != 0 {
                    return Ok(RunOutcome::Exited);
                }
            } else if flags.contains(LoopFlags::NONBLOCK) {
                return Ok(RunOutcome::Exited);
            }
        }
    }

    /// The start of one iteration: stop if asked to or if nothing is left, else say how long
    /// the backend may wait.
    #[inline]
    pub(crate) fn iteration_start(&mut self, flags: LoopFlags) -> Iteration {
        self.cont = false;
        if self.got_exit || self.got_break {
            return Iteration::Exit(RunOutcome::Exited);
        }
        let timeout = if self.n_active > 0 || flags.contains(LoopFlags::NONBLOCK) {
            Some(Duration::ZERO)
        } else {
            self.wheel.next_deadline().map(|at| {
                // Precise: a lagging coarse reading would make the wait too long.
                let now = sys::clock::now_ns(true);
                Duration::from_nanos(at.saturating_sub(now))
            })
        };
        if !flags.contains(LoopFlags::NO_EXIT_ON_EMPTY) && !self.has_events() {
            return Iteration::Exit(RunOutcome::NoEvents);
        }
        let timeout = if self.commands_before_sleep() {
            Some(Duration::ZERO)
        } else {
            timeout
        };
        self.promote_active_later();
        self.cache = None;
        Iteration::Wait(timeout)
    }

    /// After the wait: the iteration's time is cached and every ready fd's events are queued.
    #[inline]
    pub(crate) fn absorb_ready(&mut self, ready: &mut Vec<(RawFd, u8)>) {
        self.woke_up();
        self.update_cache();
        for &(fd, bits) in ready.iter() {
            self.io_ready(fd, bits);
        }
        ready.clear();
    }

    /// Anything for the loop to do? Commands queued by other threads count too: a
    /// `Handle::add` made before the loop starts must not find it exiting on "empty".
    fn has_events(&self) -> bool {
        self.n_added > 0
            || self.n_active > 0
            || self.notify.as_ref().is_some_and(|(s, _)| s.has_pending())
    }

    pub(crate) fn update_cache(&mut self) {
        if !self.flags.contains(crate::flags::BaseFlags::NO_CACHE_TIME) {
            // Always the precise clock: once per iteration it costs nothing next to the
            // backend's syscall, and it keeps timers from firing late by a coarse tick.
            self.cache = Some(sys::clock::now_ns(true));
        }
    }

    /// Activates every timer whose deadline has passed, in (deadline, add order).
    pub(crate) fn process_timers(&mut self) {
        if self.wheel.len() == 0 {
            return;
        }
        // Expiry is judged on a precise reading (also under NO_CACHE_TIME).
        let now = self.cache.unwrap_or_else(|| sys::clock::now_ns(true));
        let mut expired = std::mem::take(&mut self.expired);
        self.wheel.poll(now, &mut expired);
        // The wheel hands them over tick by tick, each tick's in add order; timers whose
        // deadlines differ by less than a tick still fire earliest first, as in libevent.
        // A stable sort on the deadline alone keeps equal deadlines in add order (within a
        // tick they already are, and different ticks never share a deadline).
        if expired.len() > 1 && !expired.is_sorted_by_key(|e| e.deadline) {
            expired.sort_by_key(|e| e.deadline);
        }
        for e in expired.drain(..) {
            let idx = e.token as usize;
            self.slots[idx].timer = NIL;
            self.set_state(idx, state::TIMEOUT, false);
            self.activate_idx(idx, What::TIMEOUT, 1);
        }
        self.expired = expired;
    }

    /// Runs the first non-empty priority queue (continuing past queues that ran only
    /// internal callbacks). Returns the number of user callbacks run, or -1 on loopbreak.
    fn process_active(&mut self) -> i64 {
        let mut result = 0;
        for p in 0..self.active.len() {
            if self.active[p].is_empty() {
                continue;
            }
            self.running_priority = Some(p);
            let limited = self.pass_limited(p);
            let c = self.process_queue(p, limited);
            if c != 0 {
                result = c;
                break;
            }
        }
        self.running_priority = None;
        result
    }

    fn process_queue(&mut self, p: usize, limited: bool) -> i64 {
        let mut count: i64 = 0;
        let end = self.pass_end(limited);
        while let Some(idx) = self.queue_pop(p) {
            self.prefetch_upcoming(p);
            let (events, res, internal) = self.prepare_callback(idx);
            if !internal {
                count += 1;
            }
            self.run_callback(idx, events, res);
            if self.got_break {
                return -1;
            }
            if limited && self.pass_limit_reached(count, end) {
                return count;
            }
            if self.cont {
                return count;
            }
        }
        count
    }

    /// Is priority `p` subject to the max-callbacks / max-interval caps?
    #[inline]
    pub(crate) fn pass_limited(&self, p: usize) -> bool {
        p >= self.limit_from_priority
            && (self.max_callbacks.is_some() || self.max_interval.is_some())
    }

    /// When a capped pass must end (precise clock: a coarse one, with 4 ms ticks, could not
    /// see a 1 ms cap expire).
    #[inline]
    pub(crate) fn pass_end(&self, limited: bool) -> Option<u64> {
        if !limited {
            return None;
        }
        self.max_interval
            .map(|d| sys::clock::now_ns(true).saturating_add(d.as_nanos() as u64))
    }

    /// After `count` callbacks of a capped pass: stop here?
    pub(crate) fn pass_limit_reached(&mut self, count: i64, end: Option<u64>) -> bool {
        if self.max_callbacks.is_some_and(|m| count >= m as i64) {
            return true;
        }
        if let Some(end) = end {
            self.update_cache();
            if sys::clock::now_ns(true) > end {
                return true;
            }
        }
        false
    }

    /// An event just popped off its active queue: delete it (not persistent) or re-arm its
    /// timeout (persistent), restore its signal count. Returns (interest, result, internal).
    #[inline]
    pub(crate) fn prepare_callback(&mut self, idx: usize) -> (What, What, bool) {
        let s = &self.slots[idx];
        let (events, res, ncalls, internal) = (s.events, s.res, s.ncalls, s.internal());
        if !events.contains(What::PERSIST) {
            self.del_idx(idx);
        } else if self.slots[idx].interval.is_some() && !self.slots[idx].has(state::FINALIZING) {
            self.persist_rearm(idx, res);
        }
        if events.contains(What::SIGNAL) {
            self.slots[idx].ncalls = ncalls;
        }
        (events, res, internal)
    }

    /// A persistent event with a timeout interval is pending again before its callback:
    /// previous deadline + interval after a timeout, now + interval after I/O, skipping
    /// missed periods.
    fn persist_rearm(&mut self, idx: usize, res: What) {
        let Some(iv) = self.slots[idx].interval.filter(|&iv| iv > 0) else {
            return;
        };
        let (now, slack) = self.now_and_slack();
        let after_now = now.saturating_add(iv).saturating_add(slack);
        let mut next = if res.contains(What::TIMEOUT) {
            self.slots[idx].deadline.saturating_add(iv)
        } else {
            after_now
        };
        if next < now {
            next = after_now;
        }
        let _ = self.add_idx(idx, Some((next, None)));
    }

    #[inline]
    pub(crate) fn run_callback(&mut self, idx: usize, events: What, what: What) {
        let slot = &mut self.slots[idx];
        let Some(handler) = slot.handler.take() else {
            return;
        };
        let ev = Event {
            idx: idx as u32,
            gen: slot.gen,
            base: self.id,
        };
        self.running_event = Some(ev);
        match handler {
            Handler::Fn(mut f) => {
                if events.contains(What::SIGNAL) {
                    // One call per delivery; del, add-with-timeout or loopbreak stop the rest.
                    loop {
                        let s = &mut self.slots[idx];
                        if !s.live || s.gen != ev.gen || s.ncalls == 0 || self.got_break {
                            break;
                        }
                        s.ncalls -= 1;
                        f(self, ev, what);
                    }
                } else {
                    f(self, ev, what);
                }
                // Put the closure back unless the event was freed (its generation moved on)
                // or re-assigned (a new closure is already there) while it ran.
                let s = &mut self.slots[idx];
                if s.gen == ev.gen && s.live && s.handler.is_none() {
                    s.handler = Some(Handler::Fn(f));
                }
            }
            Handler::Once(f) => {
                f(self, ev, what);
                if self.index(ev).is_ok() {
                    self.release(idx);
                }
            }
            Handler::Finalize(f, free) => {
                self.slots[idx].state &= !state::FINALIZING;
                f(self, ev);
                if free && self.index(ev).is_ok() {
                    self.release(idx);
                }
            }
            Handler::SharedFinalize(f, free) => {
                self.slots[idx].state &= !state::FINALIZING;
                f(ev);
                if free && self.index(ev).is_ok() {
                    self.release(idx);
                }
            }
            // Only `SharedBase::run` calls these (with the lock released); it takes them out
            // of the slot before this point. Put it back untouched if one ever gets here.
            handler @ Handler::Shared(_) => self.slots[idx].handler = Some(handler),
            Handler::Internal(kind) => {
                self.slots[idx].handler = Some(Handler::Internal(kind));
                match kind {
                    Internal::Signals => self.signals_ready(),
                    Internal::Notify => self.notify_ready(),
                    Internal::LoopExit => {
                        self.got_exit = true;
                        if self.index(ev).is_ok() {
                            self.release(idx);
                        }
                    }
                }
            }
        }
        self.running_event = None;
    }

    /// Stops the loop after `after` (or, with `None`, at the end of the current iteration:
    /// the callbacks already active in it still run). Unlike `loopbreak`, a `loopexit` made
    /// while no loop runs is remembered for the next run (libevent's `event_base_loopexit`).
    pub fn loopexit(&mut self, after: Option<Duration>) -> io::Result<()> {
        let ev = self.new_internal(-1, What::empty(), Internal::LoopExit)?;
        // A loopexit timer keeps the loop alive like a user event, as in libevent.
        self.slots[ev.idx as usize].state &= !state::INTERNAL;
        let r = match after {
            Some(d) if !d.is_zero() => self.add(ev, Some(d)),
            _ => self.activate(ev, What::TIMEOUT, 1),
        };
        if r.is_err() {
            let _ = self.free(ev);
        }
        r
    }

    /// Stops the loop right after the current callback; remaining active callbacks stay
    /// queued for the next run. Ignored (not remembered) if no loop is running.
    pub fn loopbreak(&mut self) {
        if self.running {
            self.got_break = true;
        }
    }

    /// Ends the current pass over the active queue after the running callback and polls
    /// again (libevent's `event_base_loopcontinue`). No effect when no loop runs.
    pub fn loopcontinue(&mut self) {
        if self.running {
            self.cont = true;
        }
    }

    /// Did the last (or current) run end because of `loopexit`?
    pub fn got_exit(&self) -> bool {
        self.got_exit
    }

    /// Did the last (or current) run end because of `loopbreak`?
    pub fn got_break(&self) -> bool {
        self.got_break
    }

    /// Is a loop running on this base right now?
    pub fn is_running(&self) -> bool {
        self.running
    }
}
