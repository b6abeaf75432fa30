//! Looking inside a base: cached time, event counts, `foreach_event`, `dump_events`.

use super::{EventBase, Model};
use crate::event::Event;
use crate::flags::What;
use crate::reactor::{state, Kind};
use crate::sys;
use std::io::{self, Write};
use std::ops::ControlFlow;
use std::os::unix::io::RawFd;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Which events [`EventBase::num_events`] counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Count {
    /// Active and active-later callbacks.
    Active,
    /// Queue memberships of user events: registered I/O or signal interest and pending
    /// timeouts count once each (libevent's `EVENT_BASE_COUNT_ADDED`).
    Added,
}

/// What [`EventBase::foreach_event`] shows of each event.
#[derive(Clone, Copy, Debug)]
pub struct EventInfo {
    /// The handle.
    pub event: Event,
    /// Its fd or signal number.
    pub fd: RawFd,
    /// Its interest bits.
    pub events: What,
    /// Its priority.
    pub priority: usize,
    /// Registered for I/O or a signal.
    pub inserted: bool,
    /// On an active queue.
    pub active: bool,
    /// Time left until its timeout, if one is pending.
    pub timeout: Option<Duration>,
    /// Owned by the base itself (signal pipe, notify fd).
    pub internal: bool,
    /// A started prepare, check or idle hook.
    pub hook: bool,
}

impl<M: Model> EventBase<M> {
    /// Refreshes the cached time while a loop runs (no effect otherwise).
    pub fn update_cache_time(&mut self) {
        if self.core.is_running() {
            self.core.update_cache();
        }
    }

    /// The wall-clock time as of the iteration's cached clock reading (cheap inside
    /// callbacks), or the real time when nothing is cached
    /// (libevent's `event_base_gettimeofday_cached`).
    pub fn gettimeofday_cached(&mut self) -> SystemTime {
        let Some(mono) = self.core.cached() else {
            return SystemTime::now();
        };
        let offset = self.core.wall_offset(mono);
        let ns = (mono as i128 + offset).max(0) as u64;
        UNIX_EPOCH + Duration::from_nanos(ns)
    }

    /// How many `epoll_ctl` calls the backend has made (0 for poll and select, which keep
    /// their interest sets in user space). Shows the change list at work.
    pub fn backend_ctl_calls(&self) -> u64 {
        self.core.ctl_calls()
    }

    /// Number of events of a kind (libevent's `event_base_get_num_events`).
    pub fn num_events(&self, what: Count) -> usize {
        let (active, added) = self.core.counts();
        match what {
            Count::Active => active,
            Count::Added => added,
        }
    }

    /// High-water mark of [`num_events`](Self::num_events); `clear` resets it (that kind's
    /// only) to the current value (libevent's `event_base_get_max_events`).
    pub fn max_events(&mut self, what: Count, clear: bool) -> usize {
        let which = match what {
            Count::Active => (clear, false),
            Count::Added => (false, clear),
        };
        let (active, added) = self.core.max_counts(which);
        match what {
            Count::Active => active,
            Count::Added => added,
        }
    }

    /// Calls `f` for every pending or active event, internal ones included, until it returns
    /// `ControlFlow::Break` (libevent's `event_base_foreach_event`).
    pub fn foreach_event<F>(&self, mut f: F) -> ControlFlow<()>
    where
        F: FnMut(&EventInfo) -> ControlFlow<()>,
    {
        let now = sys::clock::precise_now_ns();
        let r = &self.core;
        let t = self.core.table();
        for (idx, s) in t.live() {
            if !s.has(state::INSERTED | state::TIMEOUT | state::ANY_ACTIVE) {
                continue;
            }
            let info = EventInfo {
                event: t.event_at(idx),
                fd: s.fd(),
                events: s.events(),
                priority: s.priority(),
                inserted: s.has(state::INSERTED),
                active: s.has(state::ANY_ACTIVE),
                timeout: r
                    .timer_deadline(idx, now)
                    .map(|at| Duration::from_nanos(at.saturating_sub(now))),
                internal: s.internal(),
                hook: matches!(s.kind(), Kind::Hook(_)),
            };
            f(&info)?;
        }
        ControlFlow::Continue(())
    }

    /// Writes a human-readable list of inserted and active events
    /// (libevent's `event_base_dump_events`).
    pub fn dump_events<W: Write>(&self, mut out: W) -> io::Result<()> {
        writeln!(out, "Inserted events:")?;
        let mut err = Ok(());
        let _ = self.foreach_event(|i| {
            if i.inserted || i.timeout.is_some() {
                err = writeln!(
                    out,
                    "  {:?} [fd {}]{}{}{}{}{}{}",
                    i.event,
                    i.fd,
                    flag(i.events, What::READ, " Read"),
                    flag(i.events, What::WRITE, " Write"),
                    flag(i.events, What::CLOSED, " EOF"),
                    flag(i.events, What::SIGNAL, " Signal"),
                    flag(i.events, What::PERSIST, " Persist"),
                    i.timeout
                        .map(|t| format!(" Timeout={:?}", t))
                        .unwrap_or_default(),
                );
            }
            if err.is_err() {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        std::mem::replace(&mut err, Ok(()))?;
        writeln!(out, "Active events:")?;
        let _ = self.foreach_event(|i| {
            if i.active {
                err = writeln!(out, "  {:?} [fd {}] priority {}", i.event, i.fd, i.priority);
            }
            if err.is_err() {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        err
    }
}

fn flag(events: What, bit: What, name: &'static str) -> &'static str {
    if events.contains(bit) {
        name
    } else {
        ""
    }
}
