//! Event operations on the reactor: create, add, del, activate, timers, finalize, free. The
//! callbacks themselves live with the threading model; these functions move state only.

use super::events::{invalid, state, Kind};
use super::{check_timeout, Reactor, MAX_PRIORITIES};
use crate::event::{Event, Internal};
use crate::flags::What;
use crate::sys;
use std::io;
use std::os::unix::io::RawFd;
use std::time::{Duration, SystemTime};

/// When an `add` arms a timer.
#[derive(Clone, Copy)]
pub(crate) enum Arm {
    /// A timeout from now (checked: at most `MAX_TIMEOUT`), kept as a `PERSIST` event's
    /// interval.
    After(Duration),
    /// A deadline (ns on the base's clock): a persistent event re-armed.
    At(u64),
}

impl Reactor {
    /// Validates a handle, returning its slot index.
    #[inline]
    pub(crate) fn index(&self, ev: Event) -> io::Result<usize> {
        let idx = ev.idx as usize;
        // The base's own events (signal pipe, notify fd, loopexit timers) share the table
        // but are never the user's to touch, even through a handle rebuilt with `from_raw`
        // or seen in `foreach_event`.
        if ev.base == self.table.base_id()
            && idx < self.table.len()
            && self.table.same(idx, ev.gen)
            && !matches!(self.table.get(idx).kind, Kind::Internal(_))
        {
            return Ok(idx);
        }
        Err(self.index_refused(ev))
    }

    /// Why `index` refused a handle (the checks again, with their messages).
    #[cold]
    fn index_refused(&self, ev: Event) -> io::Error {
        match self.table.index(ev) {
            Err(e) => e,
            Ok(_) => Self::internal_refused(),
        }
    }

    #[cold]
    fn internal_refused() -> io::Error {
        invalid("this event belongs to the base itself")
    }

    #[inline]
    pub(crate) fn event_at(&self, idx: usize) -> Event {
        self.table.event_at(idx)
    }

    /// The handle of slot `idx` at generation `gen` (read from the slot by the caller).
    #[inline]
    pub(crate) fn event_with(&self, idx: usize, gen: u32) -> Event {
        Event {
            idx: idx as u32,
            gen,
            base: self.table.base_id(),
        }
    }

    /// Checks an event's kind and interest before a slot is taken or re-assigned.
    #[inline(never)]
    fn validate(kind: Kind, fd: RawFd, events: What) -> io::Result<()> {
        if events.contains(What::SIGNAL) {
            if events.intersects(What::READ | What::WRITE | What::CLOSED) {
                return Err(invalid(
                    "an event cannot be both a signal and an fd event (SIGNAL with READ/WRITE/CLOSED)",
                ));
            }
            sys::signal::validate(fd)?;
        }
        if let Kind::Hook(_) = kind {
            if !events.is_empty() && events != What::PERSIST {
                return Err(invalid("a hook has no fd, signal or timeout interest"));
            }
        }
        Ok(())
    }

    /// A new slot (the caller stores its callback under the returned index).
    /// Room for `additional` more events in the event table (see `EventBase::reserve_events`).
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.table.reserve(additional);
    }

    pub(crate) fn alloc(&mut self, kind: Kind, fd: RawFd, events: What) -> io::Result<usize> {
        self.alloc_hinted(kind, fd, events, 0).map(|(idx, _)| idx)
    }

    /// [`alloc`](Self::alloc) with the address of the callback's state for the slot's
    /// cache hint, returning the slot and its generation (what a handle needs).
    #[inline]
    pub(crate) fn alloc_hinted(
        &mut self,
        kind: Kind,
        fd: RawFd,
        events: What,
        hint: usize,
    ) -> io::Result<(usize, u32)> {
        // Only a signal or a hook has anything to check.
        if events.contains(What::SIGNAL) || matches!(kind, Kind::Hook(_)) {
            Self::validate(kind, fd, events)?;
        }
        let pri = match kind {
            Kind::Internal(_) => 0,
            _ => (self.queues.priorities() / 2) as u8,
        };
        let events = match kind {
            // Hooks stay on their list until stopped.
            Kind::Hook(_) => What::PERSIST,
            _ => events,
        };
        self.table.alloc(kind, fd, events, pri, hint)
    }

    /// Re-initializes a slot that is neither pending nor active (libevent's `event_assign`
    /// on an existing event): new fd and interest; priority and timeout interval reset.
    pub(crate) fn reassign(&mut self, idx: usize, fd: RawFd, events: What) -> io::Result<()> {
        let s = self.table.get(idx);
        if s.has(state::INSERTED | state::ANY_ACTIVE | state::TIMEOUT) {
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                "cannot re-assign an event that is pending or active: delete it first",
            ));
        }
        Self::validate(s.kind, fd, events)?;
        let pri = (self.queues.priorities() / 2) as u8;
        let s = self.table.get_mut(idx);
        s.fd = fd;
        s.events = events;
        s.pri = pri;
        s.res = What::empty();
        s.ncalls = 0;
        s.set_interval(0);
        Ok(())
    }

    /// Makes an event pending; `timeout` as [`EventBase::add`](crate::EventBase::add).
    #[inline]
    pub(crate) fn add(&mut self, ev: Event, timeout: Option<Duration>) -> io::Result<()> {
        let idx = self.index(ev)?;
        let s = self.table.get(idx);
        if let Some(d) = timeout {
            check_timeout(d)?;
            // The timers' path: a user event with no fd, signal or PERSIST interest (nothing
            // to list, no interval to keep), neither active nor being finalized, only
            // (re)sets its timer — all `add_idx` would do.
            if !s.has(state::FINALIZING | state::ACTIVE)
                && s.kind == Kind::Event
                && !s.events.intersects(
                    What::SIGNAL | What::READ | What::WRITE | What::CLOSED | What::PERSIST,
                )
            {
                self.arm_timer(idx, d);
                return Ok(());
            }
        }
        let hook = matches!(s.kind, Kind::Hook(_));
        if s.has(state::FINALIZING) || (hook && timeout.is_some()) {
            return Err(Self::add_refused(hook));
        }
        self.add_idx(idx, timeout.map(Arm::After))
    }

    #[cold]
    fn add_refused(hook: bool) -> io::Error {
        invalid(if hook {
            "hooks take no timeout"
        } else {
            "event is being finalized"
        })
    }

    /// Makes event `idx` pending, with a timer if `arm` says when (a timeout for `PERSIST`
    /// to keep as its interval, or a deadline when re-arming).
    #[inline]
    pub(crate) fn add_idx(&mut self, idx: usize, arm: Option<Arm>) -> io::Result<()> {
        let s = self.table.get(idx);
        let listed = matches!(s.kind, Kind::Hook(_))
            || s.events
                .intersects(What::SIGNAL | What::READ | What::WRITE | What::CLOSED);
        if listed && !s.has(state::INSERTED) {
            self.insert_listed(idx)?;
        }
        if let Some(arm) = arm {
            let s = self.table.get_mut(idx);
            if let Arm::After(d) = arm {
                if s.events.contains(What::PERSIST) {
                    s.set_interval(d.as_nanos() as u64);
                }
            }
            if s.has(state::ACTIVE) && s.res.contains(What::TIMEOUT) {
                s.ncalls = 0;
                self.queues.remove(&mut self.table, idx);
            }
            match arm {
                Arm::At(at) => self.set_timer(idx, at),
                Arm::After(d) => self.arm_timer(idx, d),
            }
        }
        Ok(())
    }

    /// Puts a hook, signal or fd event on its list (it is not on it yet).
    fn insert_listed(&mut self, idx: usize) -> io::Result<()> {
        let s = self.table.get(idx);
        match s.kind {
            Kind::Hook(k) => self.hooks.insert(&self.table, k, idx),
            _ if s.events.contains(What::SIGNAL) => self.signal_insert(idx)?,
            // Added, never polled (only when allowed: the io table refuses a negative fd).
            _ if s.fd < 0 && self.unpolled_negative_fds => {}
            _ => self.io.insert(&mut self.table, &mut self.backend, idx)?,
        }
        self.table.set_pending_bit(idx, state::INSERTED, true);
        Ok(())
    }

    fn signal_insert(&mut self, idx: usize) -> io::Result<()> {
        if self.signals.pipe().is_none() {
            let (r, w) = sys::signal::pipe()?;
            let pipe_ev = match self.alloc(
                Kind::Internal(Internal::Signals),
                r,
                What::READ | What::PERSIST,
            ) {
                Ok(i) => i,
                Err(e) => {
                    sys::close(r);
                    sys::close(w);
                    return Err(e);
                }
            };
            if let Err(e) = self.add_idx(pipe_ev, None) {
                self.table.release(pipe_ev);
                sys::close(r);
                sys::close(w);
                return Err(e);
            }
            self.signals.set_pipe(Some((r, w, pipe_ev)));
        }
        self.signals.insert(&mut self.table, idx)
    }

    /// (Re)sets the timer of an event to absolute `at`.
    #[inline]
    pub(crate) fn set_timer(&mut self, idx: usize, at: u64) {
        self.wheel.set(idx as u32, at);
        self.table.set_timer(idx, at);
    }

    #[inline]
    pub(crate) fn clear_timer(&mut self, idx: usize) {
        if self.table.get(idx).has(state::TIMEOUT) {
            self.wheel.remove(idx as u32);
            self.table.set_pending_bit(idx, state::TIMEOUT, false);
        }
    }

    /// Makes an event non-pending and non-active.
    #[inline]
    pub(crate) fn del_idx(&mut self, idx: usize) {
        let s = self.table.get_mut(idx);
        s.ncalls = 0;
        if !s.has(state::TIMEOUT | state::ANY_ACTIVE | state::INSERTED) {
            return;
        }
        if s.has(state::TIMEOUT) {
            self.clear_timer(idx);
        }
        if self.table.get(idx).has(state::ANY_ACTIVE) {
            self.queues.remove(&mut self.table, idx);
        }
        if self.table.get(idx).has(state::INSERTED) {
            self.remove_listed(idx);
        }
    }

    /// Takes a hook, signal or fd event off its list.
    fn remove_listed(&mut self, idx: usize) {
        let s = self.table.get(idx);
        match s.kind {
            Kind::Hook(k) => self.hooks.remove(k, idx),
            _ if s.events.contains(What::SIGNAL) => self.signals.remove(&mut self.table, idx),
            _ if s.fd < 0 => {} // an unpolled one (see `insert_listed`)
            _ => self.io.remove(&mut self.table, &mut self.backend, idx),
        }
        self.table.set_pending_bit(idx, state::INSERTED, false);
    }

    /// `del` of a handle: a no-op while the event is being finalized.
    #[inline]
    pub(crate) fn del(&mut self, ev: Event) -> io::Result<()> {
        let idx = self.index(ev)?;
        if !self.table.get(idx).has(state::FINALIZING) {
            self.del_idx(idx);
        }
        Ok(())
    }

    /// Removes only the timeout and the persistent interval.
    pub(crate) fn remove_timer(&mut self, ev: Event) -> io::Result<()> {
        let idx = self.index(ev)?;
        self.clear_timer(idx);
        self.table.get_mut(idx).set_interval(0);
        Ok(())
    }

    /// Deletes and releases a slot; its callback (held by the caller) must be dropped after.
    pub(crate) fn free_idx(&mut self, idx: usize) {
        self.del_idx(idx);
        self.table.release(idx);
    }

    /// Starts finalizing: deleted, FINALIZING, queued with `FINALIZE` (the caller swaps the
    /// callback for the finalizer).
    pub(crate) fn begin_finalize(&mut self, ev: Event) -> io::Result<usize> {
        let idx = self.index(ev)?;
        if self.table.get(idx).has(state::FINALIZING) {
            return Err(invalid("event is already being finalized"));
        }
        self.del_idx(idx);
        self.table.set_finalizing(idx, true);
        self.table.get_mut(idx).res = What::FINALIZE;
        self.queues.push(&mut self.table, idx);
        Ok(idx)
    }

    /// A finalizer is about to run: the event leaves its queue and finalization.
    pub(crate) fn end_finalize(&mut self, idx: usize) {
        if self.table.get(idx).has(state::ANY_ACTIVE) {
            self.queues.remove(&mut self.table, idx);
        }
        self.table.set_finalizing(idx, false);
    }

    /// Events being finalized (base teardown runs their finalizers).
    pub(crate) fn finalizing(&self) -> Vec<usize> {
        if self.table.n_finalizing() == 0 {
            return Vec::new();
        }
        self.table
            .live()
            .filter(|(_, s)| s.has(state::FINALIZING))
            .map(|(i, _)| i)
            .collect()
    }

    // ----- activation ------------------------------------------------------------------

    pub(crate) fn activate(&mut self, ev: Event, what: What, ncalls: u16) -> io::Result<()> {
        let idx = self.index(ev)?;
        self.activate_idx(idx, what, ncalls);
        Ok(())
    }

    pub(crate) fn activate_later(&mut self, ev: Event, what: What) -> io::Result<()> {
        let idx = self.index(ev)?;
        let s = self.table.get_mut(idx);
        if s.has(state::FINALIZING) {
            return Ok(());
        }
        if s.has(state::ANY_ACTIVE) {
            s.res |= what;
            return Ok(());
        }
        s.res = what;
        s.ncalls = 1;
        self.queues.push_later(&mut self.table, idx);
        Ok(())
    }

    #[inline]
    pub(crate) fn activate_idx(&mut self, idx: usize, what: What, ncalls: u16) {
        let s = self.table.get_mut(idx);
        if s.has(state::FINALIZING | state::ANY_ACTIVE) {
            return self.activate_busy(idx, what, ncalls);
        }
        s.res = what;
        if s.events.contains(What::SIGNAL) {
            s.ncalls = ncalls;
        }
        let pri = s.pri as usize;
        self.enqueue_active(idx, pri);
    }

    /// Activation of an event that is already active, active-later or finalizing.
    #[cold]
    fn activate_busy(&mut self, idx: usize, what: What, ncalls: u16) {
        let s = self.table.get_mut(idx);
        if s.has(state::FINALIZING) {
            return;
        }
        s.res |= what;
        if s.has(state::ACTIVE) {
            return;
        }
        // Active-later: move to the tail of its priority queue now.
        self.queues.remove(&mut self.table, idx);
        let s = self.table.get_mut(idx);
        if s.events.contains(What::SIGNAL) {
            s.ncalls = ncalls;
        }
        let pri = s.pri as usize;
        self.enqueue_active(idx, pri);
    }

    #[inline]
    fn enqueue_active(&mut self, idx: usize, pri: usize) {
        if self.lp.running_priority.is_some_and(|rp| pri < rp) {
            self.lp.interrupt |= super::CONT;
        }
        self.queues.push_at(&mut self.table, idx, pri);
    }

    // ----- priorities and inspection ---------------------------------------------------

    pub(crate) fn priority_init(&mut self, n: usize) -> io::Result<()> {
        if n == 0 || n > MAX_PRIORITIES {
            return Err(invalid(format!(
                "priorities must be 1..={MAX_PRIORITIES}, not {n}"
            )));
        }
        if self.table.n_active() > 0 || !self.queues.is_idle() || self.lp.running_priority.is_some()
        {
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                "cannot change priorities while callbacks are active or running",
            ));
        }
        self.queues.resize(n);
        let live: Vec<usize> = self.table.live().map(|(i, _)| i).collect();
        for i in live {
            let s = self.table.get_mut(i);
            s.pri = s.pri.min((n - 1) as u8);
        }
        self.hooks.reorder(&self.table);
        Ok(())
    }

    pub(crate) fn set_priority(&mut self, ev: Event, pri: usize) -> io::Result<()> {
        let idx = self.index(ev)?;
        if pri >= self.queues.priorities() {
            return Err(invalid(format!(
                "priority {pri} out of range 0..{}",
                self.queues.priorities()
            )));
        }
        if self.table.get(idx).has(state::ACTIVE) {
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                "cannot change the priority of an active event",
            ));
        }
        self.table.get_mut(idx).pri = pri as u8;
        if let Kind::Hook(_) = self.table.get(idx).kind {
            self.hooks.reorder(&self.table);
        }
        Ok(())
    }

    pub(crate) fn pending(&self, ev: Event, what: What) -> io::Result<(What, Option<SystemTime>)> {
        let idx = self.index(ev)?;
        let s = self.table.get(idx);
        let mut flags = What::empty();
        if s.has(state::INSERTED) {
            flags |= s.events & (What::READ | What::WRITE | What::CLOSED | What::SIGNAL);
        }
        if s.has(state::ANY_ACTIVE) {
            flags |= s.res;
        }
        if s.has(state::TIMEOUT) {
            flags |= What::TIMEOUT;
        }
        let when = if what.contains(What::TIMEOUT) && s.has(state::TIMEOUT) {
            let now = sys::clock::precise_now_ns();
            let wall = SystemTime::now();
            let at = self.timer_deadline(idx, now).unwrap_or(now);
            Some(if at >= now {
                wall + Duration::from_nanos(at - now)
            } else {
                wall - Duration::from_nanos(now - at)
            })
        } else {
            None
        };
        Ok((flags & what, when))
    }

    // ----- loopexit and internal events --------------------------------------------------

    /// `loopexit`: an internal timer (counted as a user event, as in libevent).
    pub(crate) fn loopexit(&mut self, after: Option<Duration>) -> io::Result<()> {
        if let Some(d) = after {
            check_timeout(d)?;
        }
        let idx = self.alloc(Kind::Internal(Internal::LoopExit), -1, What::empty())?;
        self.table.clear_internal(idx);
        let r = match after {
            Some(d) if !d.is_zero() => self.deadline_after(d).map(|at| self.set_timer(idx, at)),
            _ => {
                self.activate_idx(idx, What::TIMEOUT, 1);
                Ok(())
            }
        };
        if r.is_err() {
            self.free_idx(idx);
        }
        r
    }

    /// An internal fd event (notify eventfd), added.
    pub(crate) fn new_internal_fd(&mut self, fd: RawFd, kind: Internal) -> io::Result<usize> {
        let idx = self.alloc(Kind::Internal(kind), fd, What::READ | What::PERSIST)?;
        if let Err(e) = self.add_idx(idx, None) {
            self.table.release(idx);
            return Err(e);
        }
        Ok(idx)
    }

    /// Moves an internal event to a new fd, keeping it registered.
    pub(crate) fn replace_internal_fd(&mut self, idx: usize, fd: RawFd) -> io::Result<()> {
        let inserted = self.table.get(idx).has(state::INSERTED);
        if inserted {
            self.io.remove(&mut self.table, &mut self.backend, idx);
            self.table.set_pending_bit(idx, state::INSERTED, false);
        }
        self.table.get_mut(idx).fd = fd;
        if inserted {
            self.io.insert(&mut self.table, &mut self.backend, idx)?;
            self.table.set_pending_bit(idx, state::INSERTED, true);
        }
        Ok(())
    }

    /// After `fork()`: a fresh backend and signal pipe, every event re-registered.
    pub(crate) fn reinit(&mut self) -> io::Result<()> {
        // Apply changes immediately while internal fds move: a queued DEL applied after the
        // old fd is closed could not remove it (the parent keeps the file open).
        self.backend.set_batching(false);
        let res = self.reinit_inner();
        self.backend.set_batching(self.lp.running);
        res
    }

    fn reinit_inner(&mut self) -> io::Result<()> {
        self.backend.reinit()?;
        if let Some((nr, idx)) = self.signals.renew_pipe()? {
            self.replace_internal_fd(idx, nr)?;
        }
        Ok(())
    }

    /// Counts of (active, added) and their high-water marks.
    /// See [`EventBase::allow_unpolled_negative_fds`](crate::EventBase::allow_unpolled_negative_fds).
    pub(crate) fn set_unpolled_negative_fds(&mut self, on: bool) {
        self.unpolled_negative_fds = on;
    }

    pub(crate) fn counts(&self) -> (usize, usize) {
        (self.table.n_active(), self.table.n_added())
    }

    pub(crate) fn max_counts(&mut self, clear: (bool, bool)) -> (usize, usize) {
        self.table.max_counts(clear)
    }

    /// Closes what the base owns (signal handlers, the pipe).
    pub(crate) fn teardown(&mut self) {
        self.signals.teardown();
    }

    // ----- caller-owned identities (the C ABI) -----------------------------------------

    /// Records where the callback of slot `idx` keeps its state (for cache hints).
    #[inline]
    pub(crate) fn set_hint(&mut self, idx: usize, addr: usize) {
        self.table.get_mut(idx).hint = addr;
    }

    pub(crate) fn set_owner(&mut self, idx: usize, owner: usize) {
        self.table.set_owner(idx, owner);
    }

    pub(crate) fn owner(&self, idx: usize) -> usize {
        self.table.owner(idx)
    }

    /// The state bits of slot `idx` (see `events::state`).
    pub(crate) fn state_of(&self, idx: usize) -> u8 {
        self.table.get(idx).state()
    }

    /// The last completion (result, flags) delivered to an event.
    #[cfg(test)]
    pub(crate) fn completion(&self, ev: Event) -> io::Result<(i32, u32)> {
        Ok(self.table.completion(self.index(ev)?))
    }
}
