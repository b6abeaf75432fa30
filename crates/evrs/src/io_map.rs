//! The fd and signal tables: which events wait on each fd (or signal number), and the
//! combined interest the backend is told about. The backend hears only about changes of the
//! combined mask (libevent's evmap); several events on one fd each get their readiness, the
//! most recently added first.

use crate::base::{invalid, EventBase};
use crate::event::{Internal, NIL};
use crate::flags::What;
use crate::sys::{self, interest};
use std::io;
use std::os::unix::io::RawFd;

#[derive(Clone, Copy)]
pub(crate) struct FdEntry {
    pub(crate) head: u32,
    nread: u16,
    nwrite: u16,
    nclose: u16,
    net: u16,
}

impl Default for FdEntry {
    fn default() -> Self {
        FdEntry {
            head: NIL,
            nread: 0,
            nwrite: 0,
            nclose: 0,
            net: 0,
        }
    }
}

impl FdEntry {
    fn mask(&self) -> u8 {
        let mut m = 0;
        if self.nread > 0 {
            m |= interest::READ;
        }
        if self.nwrite > 0 {
            m |= interest::WRITE;
        }
        if self.nclose > 0 {
            m |= interest::CLOSED;
        }
        if m != 0 && self.net > 0 {
            m |= interest::ET;
        }
        m
    }

    /// Adds (`sign` = 1) or removes (-1) one event's interest; None on counter overflow.
    fn count(&mut self, ev: What, sign: i32) -> Option<()> {
        fn bump(c: &mut u16, sign: i32) -> Option<()> {
            *c = if sign > 0 {
                c.checked_add(1)?
            } else {
                c.saturating_sub(1)
            };
            Some(())
        }
        let mut e = *self;
        if ev.contains(What::READ) {
            bump(&mut e.nread, sign)?;
        }
        if ev.contains(What::WRITE) {
            bump(&mut e.nwrite, sign)?;
        }
        if ev.contains(What::CLOSED) {
            bump(&mut e.nclose, sign)?;
        }
        if ev.contains(What::ET) {
            bump(&mut e.net, sign)?;
        }
        *self = e;
        Some(())
    }
}

pub(crate) struct SigEntry {
    pub(crate) head: u32,
    pub(crate) count: u32,
    pub(crate) saved: Option<sys::signal::SavedAction>,
}

impl Default for SigEntry {
    fn default() -> Self {
        SigEntry {
            head: NIL,
            count: 0,
            saved: None,
        }
    }
}

impl EventBase {
    fn link_io(&mut self, head: &mut u32, idx: usize) {
        let old = *head;
        *head = idx as u32;
        if old != NIL {
            self.slots[old as usize].io_prev = idx as u32;
        }
        let s = &mut self.slots[idx];
        s.io_prev = NIL;
        s.io_next = old;
    }

    fn unlink_io(&mut self, idx: usize) -> (u32, u32) {
        let (prev, next) = (self.slots[idx].io_prev, self.slots[idx].io_next);
        if prev != NIL {
            self.slots[prev as usize].io_next = next;
        }
        if next != NIL {
            self.slots[next as usize].io_prev = prev;
        }
        (prev, next)
    }

    /// Registers an fd event's interest.
    pub(crate) fn io_insert(&mut self, idx: usize) -> io::Result<()> {
        let (fd, events) = (self.slots[idx].fd, self.slots[idx].events);
        if fd < 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid fd {fd} for an I/O event"),
            ));
        }
        let i = fd as usize;
        if i >= self.fds.len() {
            self.fds.resize(i + 1, FdEntry::default());
        }
        let mut entry = self.fds[i];
        let old = entry.mask();
        entry
            .count(events, 1)
            .ok_or_else(|| invalid(format!("too many events (65535) on fd {fd}")))?;
        let new = entry.mask();
        if old != new {
            self.backend.change(fd, old, new)?;
        }
        self.fds[i] = entry;
        let mut head = self.fds[i].head;
        self.link_io(&mut head, idx);
        self.fds[i].head = head;
        Ok(())
    }

    pub(crate) fn io_remove(&mut self, idx: usize) {
        let (fd, events) = (self.slots[idx].fd, self.slots[idx].events);
        let i = fd as usize;
        let (prev, next) = self.unlink_io(idx);
        let entry = &mut self.fds[i];
        if prev == NIL {
            entry.head = next;
        }
        let old = entry.mask();
        let _ = entry.count(events, -1);
        let new = entry.mask();
        if old != new {
            // Errors mean the fd is already gone from the kernel's view: nothing to undo.
            let _ = self.backend.change(fd, old, new);
        }
    }

    /// Activates the events on `fd` that wanted any of the `ready` bits.
    #[inline]
    pub(crate) fn io_ready(&mut self, fd: RawFd, ready: u8) {
        let Some(entry) = self.fds.get(fd as usize) else {
            return;
        };
        let ready_what = What::from_bits_retain(u16::from(ready & !interest::ET));
        let mut cur = entry.head;
        while cur != NIL {
            let idx = cur as usize;
            let s = &self.slots[idx];
            cur = s.io_next;
            let mut res = s.events & ready_what;
            if !res.is_empty() {
                if s.events.contains(What::ET) {
                    res |= What::ET;
                }
                self.activate_idx(idx, res, 1);
            }
        }
    }

    /// Registers a signal event, creating the self-pipe and installing the handler as needed.
    pub(crate) fn signal_insert(&mut self, idx: usize) -> io::Result<()> {
        let signo = self.slots[idx].fd;
        sys::signal::validate(signo)?;
        let w = match self.sig_pipe {
            Some((_, w, _)) => w,
            None => {
                let (r, w) = sys::signal::pipe()?;
                let ev = match self.new_internal(r, What::READ | What::PERSIST, Internal::Signals) {
                    Ok(ev) => ev,
                    Err(e) => {
                        sys::close(r);
                        sys::close(w);
                        return Err(e);
                    }
                };
                if let Err(e) = self.add(ev, None) {
                    let _ = self.free(ev);
                    sys::close(r);
                    sys::close(w);
                    return Err(e);
                }
                self.sig_pipe = Some((r, w, ev));
                w
            }
        };
        let entry = &mut self.sigs[signo as usize];
        if entry.count == 0 {
            entry.saved = Some(sys::signal::install(signo)?);
        }
        sys::signal::claim(w);
        let entry = &mut self.sigs[signo as usize];
        entry.count += 1;
        let mut head = entry.head;
        self.link_io(&mut head, idx);
        self.sigs[signo as usize].head = head;
        Ok(())
    }

    pub(crate) fn signal_remove(&mut self, idx: usize) {
        let signo = self.slots[idx].fd as usize;
        let (prev, next) = self.unlink_io(idx);
        let entry = &mut self.sigs[signo];
        if prev == NIL {
            entry.head = next;
        }
        entry.count -= 1;
        if entry.count == 0 {
            if let Some(saved) = entry.saved.take() {
                sys::signal::restore(signo as i32, &saved);
            }
        }
    }

    /// The signal pipe is readable: count deliveries and activate each signal's events with
    /// `ncalls` = deliveries.
    pub(crate) fn signals_ready(&mut self) {
        let Some((r, _, _)) = self.sig_pipe else {
            return;
        };
        sys::signal::drain(r, &mut self.sig_counts);
        for signo in 1..self.sig_counts.len() {
            let n = std::mem::take(&mut self.sig_counts[signo]);
            if n == 0 {
                continue;
            }
            let mut cur = self.sigs[signo].head;
            while cur != NIL {
                let idx = cur as usize;
                cur = self.slots[idx].io_next;
                self.activate_idx(idx, What::SIGNAL, n.min(u16::MAX as u32) as u16);
            }
        }
    }

    /// Claims process-wide signal delivery if this base has signal events.
    pub(crate) fn claim_signals(&mut self) {
        if let Some((_, w, _)) = self.sig_pipe {
            if self.sigs.iter().any(|s| s.count > 0) && !sys::signal::owns(w) {
                sys::signal::claim(w);
            }
        }
    }
}
