//! Absorbing a poll result: each ready fd's interested events, and each completed
//! operation's event, join their priority's active queue. Works on a view of the reactor's
//! parts without the backend, so the epoll backend hands over its reports one by one as it
//! reads them from the kernel's buffer (no list in between).

use super::events::{state, EventTable};
use super::io_table::{IoTable, List};
use super::queue::ActiveQueues;
use crate::backend::{Polled, Sink};
use crate::flags::What;
use crate::sys::interest;
use std::os::unix::io::RawFd;

/// The parts a poll result changes.
pub(super) struct Absorb<'a> {
    pub(super) table: &'a mut EventTable,
    pub(super) io: &'a IoTable,
    pub(super) queues: &'a mut ActiveQueues,
}

impl Sink for Absorb<'_> {
    /// Queues the events one entry of a poll result concerns.
    #[inline(always)]
    fn take(&mut self, p: Polled) {
        match p {
            Polled::Ready { fd, bits } => self.io_ready(fd, bits),
            Polled::Done { token, res, flags } => self.completed(token, res, flags),
        }
    }
}

impl Absorb<'_> {
    /// The batch is absorbed: the high-water mark of active events catches up (it only
    /// grew meanwhile).
    #[inline]
    pub(super) fn finish(self) {
        self.table.note_active_peak();
    }

    /// Activates the events on `fd` that wanted any of the `ready` bits (readiness only:
    /// no backend reports ET); an edge-triggered event's result carries ET.
    #[inline(always)]
    fn io_ready(&mut self, fd: RawFd, ready: u8) {
        debug_assert_eq!(ready & interest::ET, 0);
        let ready_what = What::from_bits_retain(u16::from(ready));
        let mut cur = self.io.first(fd);
        while let Some(idx) = cur {
            let s = self.table.get(idx);
            cur = List::next(self.table, idx);
            let res = s.events & ready_what;
            if !res.is_empty() {
                self.activate(idx, res | (s.events & What::ET));
            }
        }
    }

    /// A completion for the event named by `token`: the result is stored and the event is
    /// activated with its READ/WRITE interest. A token of a freed event is ignored.
    fn completed(&mut self, token: u64, res: i32, flags: u32) {
        let (idx, gen) = ((token & 0xffff_ffff) as usize, (token >> 32) as u32);
        // A token of a freed event, or of one deleted since it was submitted, is ignored
        // (the backend cancels such operations; a completion may still be in flight). The
        // token holds the generation's low 31 bits (`completion_token`).
        if idx >= self.table.len()
            || !self.table.get(idx).is_live()
            || self.table.get(idx).gen() & super::phases::TOKEN_GEN_MASK != gen
            || !self.table.get(idx).has(state::INSERTED)
        {
            return;
        }
        self.table.set_completion(idx, (res, flags));
        let what = self.table.get(idx).events & (What::READ | What::WRITE);
        self.activate(idx, what);
    }

    /// Activation by a poll result: of an fd or completion event (never a signal event,
    /// so no delivery count), outside any pass (absorbing is part of the wait: no running
    /// priority to pre-empt), the high-water mark left to [`finish`](Self::finish).
    #[inline(always)]
    fn activate(&mut self, idx: usize, what: What) {
        debug_assert!(!self.table.get(idx).events.contains(What::SIGNAL));
        let queues = &mut *self.queues;
        if !self
            .table
            .activate_quiet(idx, what, |pri| queues.try_push(pri, idx))
        {
            self.activate_slow(idx, what);
        }
    }

    /// Activation of an event that is already active, active-later or finalizing, or
    /// whose queue's array is full.
    #[cold]
    #[inline(never)]
    fn activate_slow(&mut self, idx: usize, what: What) {
        let s = self.table.get_mut(idx);
        if s.has(state::FINALIZING) {
            return;
        }
        if s.has(state::ACTIVE) {
            s.res |= what;
            return;
        }
        if s.has(state::ACTIVE_LATER) {
            // Active-later: move to the tail of its priority queue now.
            s.res |= what;
            self.queues.remove(self.table, idx);
        } else {
            s.res = what;
        }
        let pri = self.table.get(idx).pri as usize;
        self.queues.push_unpeaked(self.table, idx, pri);
    }
}
