//! The base's signal table: which events wait on each signal number, and the self-pipe the
//! process-wide handler writes deliveries into (see `sys/signal.rs`).

use super::events::EventTable;
use super::io_table::List;
use crate::sys;
use std::io;
use std::os::unix::io::RawFd;

#[derive(Default)]
struct SigEntry {
    list: List,
    count: u32,
}

pub(crate) struct SignalTable {
    sigs: Vec<SigEntry>,
    /// The self-pipe (read, write) and the slot of its internal event.
    pipe: Option<(RawFd, RawFd, usize)>,
    counts: [u32; sys::signal::NSIG],
    /// libevent's rule: of the bases that choose it, only the latest to add a signal event
    /// or start its loop receives signals.
    exclusive: bool,
}

impl SignalTable {
    pub(crate) fn new() -> SignalTable {
        SignalTable {
            sigs: (0..sys::signal::NSIG)
                .map(|_| SigEntry::default())
                .collect(),
            pipe: None,
            counts: [0; sys::signal::NSIG],
            exclusive: false,
        }
    }

    pub(crate) fn pipe(&self) -> Option<(RawFd, RawFd, usize)> {
        self.pipe
    }

    pub(crate) fn set_pipe(&mut self, pipe: Option<(RawFd, RawFd, usize)>) {
        self.pipe = pipe;
    }

    /// Links a signal event (the pipe exists), installing the handler on first use.
    pub(crate) fn insert(&mut self, t: &mut EventTable, idx: usize) -> io::Result<()> {
        let signo = t.get(idx).fd;
        sys::signal::validate(signo)?;
        let Some((_, w, _)) = self.pipe else {
            return Err(io::Error::other("signal pipe missing"));
        };
        let entry = &mut self.sigs[signo as usize];
        if entry.count == 0 {
            // The process-wide registry installs the handler for the first watcher of any
            // base and delivers to every watching base's pipe.
            sys::signal::watch(w, signo, self.exclusive)?;
        } else if self.exclusive {
            sys::signal::claim(w);
        }
        entry.count += 1;
        entry.list.link(t, idx);
        Ok(())
    }

    pub(crate) fn remove(&mut self, t: &mut EventTable, idx: usize) {
        let signo = t.get(idx).fd as usize;
        let entry = &mut self.sigs[signo];
        entry.list.unlink(t, idx);
        entry.count -= 1;
        if entry.count == 0 {
            if let Some((_, w, _)) = self.pipe {
                sys::signal::unwatch(w, signo as i32);
            }
        }
    }

    /// See [`EventBase::exclusive_signals`](crate::EventBase::exclusive_signals) (before
    /// any signal event is added).
    pub(crate) fn set_exclusive(&mut self, on: bool) {
        self.exclusive = on;
    }

    /// The loop starts: an exclusive base watching signals takes them over.
    pub(crate) fn claim(&self) {
        if let (true, Some((_, w, _))) = (self.exclusive, self.pipe) {
            if self.sigs.iter().any(|e| e.count > 0) {
                sys::signal::claim(w);
            }
        }
    }

    /// Drains the pipe: deliveries per signal number since the last call.
    pub(crate) fn take_deliveries(&mut self) -> [u32; sys::signal::NSIG] {
        if let Some((r, _, _)) = self.pipe {
            sys::signal::drain(r, &mut self.counts);
        }
        let dropped = sys::signal::take_dropped();
        if dropped > 0 {
            log::warn!(
                "evrs: {dropped} signal deliveries were dropped (a base's signal pipe was full); \
                 their events ran, but with fewer calls than deliveries"
            );
        }
        std::mem::replace(&mut self.counts, [0; sys::signal::NSIG])
    }

    /// The first event watching `signo`.
    pub(crate) fn first(&self, signo: usize) -> Option<usize> {
        self.sigs[signo].list.first()
    }

    /// Stops watching every signal (the registry restores dispositions no other base
    /// watches) and closes the pipe (base teardown).
    pub(crate) fn teardown(&mut self) {
        if let Some((r, w, _)) = self.pipe.take() {
            sys::signal::unwatch_all(w);
            sys::close(r);
            sys::close(w);
        }
    }

    /// After fork: a fresh pipe replaces the inherited one (the caller moves the internal
    /// event to the new read end). Returns the old read end's replacement.
    pub(crate) fn renew_pipe(&mut self) -> io::Result<Option<(RawFd, usize)>> {
        let Some((r, w, idx)) = self.pipe else {
            return Ok(None);
        };
        let (nr, nw) = sys::signal::pipe()?;
        sys::signal::move_watcher(w, nw);
        sys::close(r);
        sys::close(w);
        self.pipe = Some((nr, nw, idx));
        Ok(Some((nr, idx)))
    }

    /// Lists agree with their counts and members (for `verify`); returns listed events.
    pub(crate) fn check(&self, t: &EventTable) -> Result<usize, String> {
        let mut total = 0;
        for (signo, e) in self.sigs.iter().enumerate() {
            let m = e.list.members(t)?;
            if m.len() != e.count as usize {
                return Err(format!(
                    "signal {signo}: count {} but {} listed",
                    e.count,
                    m.len()
                ));
            }
            for idx in m {
                let s = t.get(idx);
                if s.fd as usize != signo || !s.has(super::events::state::INSERTED) {
                    return Err(format!("slot {idx} is on signal {signo}'s list wrongly"));
                }
            }
            total += e.count as usize;
        }
        Ok(total)
    }
}
