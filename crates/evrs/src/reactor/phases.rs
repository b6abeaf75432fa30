//! The steps of one loop iteration that only move state (no user code): the wait's
//! timeout, absorbing readiness and completions, expiring timers, and what happens to an
//! event just taken off its active queue. `run_loop.rs` strings them together.

use super::absorb::Absorb;
use super::events::{state, Kind};
use super::hooks::Started;
use super::io_table::List;
use super::ops::Arm;
use super::Reactor;
use crate::backend::Polled;
use crate::backend::Sink;
use crate::flags::What;
use crate::sys;

/// The generation bits a completion token carries (31: bit 63 stays clear).
pub(super) const TOKEN_GEN_MASK: u32 = 0x7fff_ffff;
use std::time::Duration;

/// An event just taken off its active queue by the loop.
#[derive(Clone, Copy)]
pub(crate) struct Popped {
    pub(crate) idx: usize,
    /// Its generation (the handle its callback gets).
    pub(crate) gen: u32,
    /// What happened (the callback's `what`).
    pub(crate) res: What,
    /// Nothing to do before its callback (persistent, no timeout interval, a user event,
    /// not a signal, not finalizing: no [`state::NOT_PLAIN`] bit); everything else goes
    /// through [`prepare_callback`](Reactor::prepare_callback).
    pub(crate) plain: bool,
}

impl Reactor {
    /// Anything to keep the loop alive? (User events, started hooks, active callbacks,
    /// holds.)
    pub(crate) fn has_events(&self) -> bool {
        self.table.n_added() > 0 || self.table.n_active() > 0 || self.holds > 0
    }

    /// Takes (`true`) or releases a hold; `false` if there was none to release.
    pub(crate) fn hold(&mut self, take: bool) -> bool {
        if take {
            self.holds += 1;
        } else if self.holds == 0 {
            return false;
        } else {
            self.holds -= 1;
        }
        true
    }

    pub(crate) fn holds(&self) -> usize {
        self.holds
    }

    /// How long the backend may wait for the next timer (`None`: no timer).
    pub(crate) fn next_timeout(&self) -> Option<Duration> {
        self.wheel.next_deadline().map(|at| {
            let now = sys::clock::now_ns(true);
            Duration::from_nanos(at.saturating_sub(now))
        })
    }

    /// Right before the wait: active-later events join their queues; the cache is dropped.
    pub(crate) fn before_poll(&mut self) {
        if !self.queues.later_is_empty() {
            self.queues.promote_later(&mut self.table);
        }
        self.clock.cache = None;
    }

    /// Polls the backend and absorbs each report as the backend reads it (epoll hands
    /// them over straight from the kernel's buffer); then the iteration's time is cached.
    #[inline]
    pub(crate) fn poll_backend(&mut self, timeout: Option<Duration>) -> std::io::Result<()> {
        let mut a = Absorb {
            table: &mut self.table,
            io: &self.io,
            queues: &mut self.queues,
        };
        let res = self.backend.poll_each(timeout, &mut self.polled, &mut a);
        a.finish();
        self.update_cache();
        res
    }

    /// After the wait: the iteration's time is cached and every ready fd's (or completed
    /// operation's) events are queued.
    #[inline]
    pub(crate) fn absorb(&mut self, polled: &mut Vec<Polled>) {
        self.backend.settle(polled);
        self.update_cache();
        let mut a = Absorb {
            table: &mut self.table,
            io: &self.io,
            queues: &mut self.queues,
        };
        for &p in polled.iter() {
            a.take(p);
        }
        a.finish();
        polled.clear();
    }

    /// The token a completion-based backend is given for an operation of event `idx`
    /// (used by the test backend now, by io_uring next).
    #[cfg_attr(not(test), allow(dead_code))]
    /// Bit 63 stays clear (the generation's low 31 bits): set, it marks io_uring's own
    /// poll requests.
    pub(crate) fn completion_token(&self, idx: usize) -> u64 {
        (u64::from(self.table.get(idx).gen() & TOKEN_GEN_MASK) << 32) | idx as u64
    }

    /// Activates every timer whose deadline has passed, in (deadline, add order).
    pub(crate) fn process_timers(&mut self) {
        if self.wheel.len() == 0 {
            return;
        }
        // Expiry is judged on a precise reading (also under NO_CACHE_TIME).
        let now = self.expiry_now();
        let mut expired = std::mem::take(&mut self.expired);
        // Room for every timer at once: the buffer grows only when the timer count reaches
        // a new high, never because more of them happened to expire together.
        expired.reserve(self.wheel.len());
        // In firing order: earliest first to the microsecond (libevent's resolution), those
        // in the same microsecond in add order (each tick sorted on its own, without
        // allocating).
        self.wheel.poll(now, &mut expired);
        for e in expired.drain(..) {
            let idx = e.key as usize;
            // Outside any pass (no running priority to pre-empt): the common case in one
            // slot access, the high-water mark after the batch.
            let queues = &mut self.queues;
            if !self
                .table
                .expire_quiet(idx, |pri| queues.try_push(pri, idx))
            {
                self.expire_slow(idx);
            }
        }
        self.table.note_active_peak();
        self.expired = expired;
    }

    /// Expiry of a timer whose event is active, finalizing, internal or a signal event, or
    /// whose queue's array is full.
    #[cold]
    #[inline(never)]
    fn expire_slow(&mut self, idx: usize) {
        self.table.set_pending_bit(idx, state::TIMEOUT, false);
        self.activate_idx(idx, What::TIMEOUT, 1);
    }

    /// Signals were delivered: activate each signal's events with `ncalls` = deliveries.
    pub(crate) fn signals_ready(&mut self) {
        let counts = self.signals.take_deliveries();
        for (signo, &n) in counts.iter().enumerate() {
            if n == 0 {
                continue;
            }
            let mut cur = self.signals.first(signo);
            while let Some(idx) = cur {
                cur = List::next(&self.table, idx);
                self.activate_idx(idx, What::SIGNAL, n.min(u16::MAX as u32) as u16);
            }
        }
    }

    /// Takes the next event off queue `p`.
    #[cfg(test)]
    pub(crate) fn pop_active(&mut self, p: usize) -> Option<usize> {
        self.queues.pop(&mut self.table, p)
    }

    /// Takes the next event off queue `p` for the loop, hinting what the next ones will
    /// touch into the cache, with what the loop needs to know of it.
    #[inline]
    pub(crate) fn pop_for_dispatch(&mut self, p: usize) -> Option<Popped> {
        let idx = self.queues.pop_hinting(&self.table, p)?;
        let s = self.table.dequeue_popped(idx);
        Some(Popped {
            idx,
            gen: s.gen(),
            res: s.res(),
            plain: s.state() & state::NOT_PLAIN == 0,
        })
    }

    /// The two entries after the one just popped from `p`, NIL for none.
    #[cfg(test)]
    pub(crate) fn upcoming(&self, p: usize) -> (u32, u32) {
        self.queues.upcoming(p)
    }

    /// An event just popped off its active queue that is not plain: if it is a one-shot
    /// user event (not persistent, not a signal, not finalizing or internal), it is deleted
    /// and true is returned — all [`prepare_callback`](Self::prepare_callback) would do.
    #[inline(always)]
    pub(crate) fn take_oneshot(&mut self, idx: usize) -> bool {
        let s = self.table.get(idx);
        if s.state() & (state::FINALIZING | state::INTERNAL) != 0
            || s.kind != Kind::Event
            || s.events.intersects(What::PERSIST | What::SIGNAL)
        {
            return false;
        }
        self.del_idx(idx);
        true
    }

    /// An event just popped off its active queue: delete it (not persistent) or re-arm its
    /// timeout (persistent). Returns (interest, result, kind, internal).
    #[inline]
    pub(crate) fn prepare_callback(&mut self, idx: usize) -> (What, What, Kind, bool) {
        let s = self.table.get(idx);
        let (events, res, ncalls, kind, internal) =
            (s.events, s.res, s.ncalls, s.kind, s.internal());
        if !events.contains(What::PERSIST) {
            self.del_idx(idx);
        } else if s.interval != 0 && !s.has(state::FINALIZING) {
            self.persist_rearm(idx, res);
        }
        if events.contains(What::SIGNAL) {
            self.table.get_mut(idx).ncalls = ncalls;
        }
        if res.contains(What::FINALIZE) {
            self.end_finalize(idx);
        }
        (events, res, kind, internal)
    }

    /// A persistent event with a timeout interval is pending again before its callback:
    /// previous deadline + interval after a timeout, now + interval after I/O, skipping
    /// missed periods.
    fn persist_rearm(&mut self, idx: usize, res: What) {
        let iv = self.table.get(idx).interval;
        if iv == 0 {
            return;
        }
        if !res.contains(What::TIMEOUT) {
            // Activity: the interval from now (staged while the loop is awake).
            let _ = self.add_idx(idx, Some(Arm::After(Duration::from_nanos(iv))));
            return;
        }
        // A timeout: the previous deadline + the interval, unless that has passed too.
        let now = self.now();
        let mut next = self.table.get(idx).deadline.saturating_add(iv);
        if next < now {
            next = now.saturating_add(iv);
        }
        let _ = self.add_idx(idx, Some(Arm::At(next)));
    }

    /// One more delivery of a signal event to run? (Stops on del, free, re-add, break.)
    pub(crate) fn take_signal_call(&mut self, idx: usize, gen: u32) -> bool {
        if self.lp.got_break() || !self.table.same(idx, gen) {
            return false;
        }
        let s = self.table.get_mut(idx);
        if s.ncalls == 0 {
            return false;
        }
        s.ncalls -= 1;
        true
    }

    /// The start of a pass over priority `p`: is it capped, and until when?
    pub(crate) fn pass_start(&mut self, p: usize) -> (bool, Option<u64>) {
        self.lp.running_priority = Some(p);
        let limited = p >= self.limits.from_priority
            && (self.limits.max_callbacks.is_some() || self.limits.max_interval.is_some());
        // Precise clock: a coarse one, with 4 ms ticks, could not see a 1 ms cap expire.
        let end = limited
            .then_some(self.limits.max_interval)
            .flatten()
            .map(|d| sys::clock::now_ns(true).saturating_add(d.as_nanos() as u64));
        (limited, end)
    }

    /// After `count` callbacks of a capped pass: stop here?
    pub(crate) fn pass_limit_reached(&mut self, count: i64, end: Option<u64>) -> bool {
        if self.limits.max_callbacks.is_some_and(|m| count >= m as i64) {
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

    /// Must the pass end after this callback (loopbreak, loopcontinue, urgent activation)?
    #[inline]
    pub(crate) fn pass_interrupted(&self) -> bool {
        self.lp.interrupt != 0
    }

    pub(crate) fn end_pass(&mut self) {
        self.lp.running_priority = None;
    }

    pub(crate) fn priority_is_empty(&self, p: usize) -> bool {
        p >= self.queues.priorities() || self.queues.is_empty(p)
    }

    /// The loopexit timer fired.
    pub(crate) fn loopexit_fired(&mut self, idx: usize) {
        self.lp.got_exit = true;
        if self.table.get(idx).is_live() {
            self.free_idx(idx);
        }
    }

    /// The start of an iteration: clears `loopcontinue`; true if the loop must stop.
    #[inline]
    pub(crate) fn stop_requested(&mut self) -> bool {
        self.lp.interrupt &= !super::CONT;
        self.lp.got_exit || self.lp.got_break()
    }

    pub(crate) fn hooks_started(&self, kind: super::HookKind) -> bool {
        self.hooks.any(kind)
    }

    pub(crate) fn hook_snapshot(&mut self, kind: super::HookKind) -> Vec<Started> {
        self.hooks.snapshot(kind)
    }

    pub(crate) fn put_hook_snapshot(&mut self, s: Vec<Started>) {
        self.hooks.put_snapshot(s)
    }

    /// Is this still the same started hook of `kind`? (An earlier hook of the phase may have
    /// stopped or freed it, and its slot may even have been reused by a new event.)
    pub(crate) fn hook_started(&self, h: Started, kind: super::HookKind) -> bool {
        let idx = h.idx as usize;
        let s = self.table.get(idx);
        self.table.same(idx, h.gen) && s.has(state::INSERTED) && s.kind == Kind::Hook(kind)
    }
}
