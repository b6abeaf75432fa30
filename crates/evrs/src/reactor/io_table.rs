//! The fd table: which events wait on each fd, and the combined interest the backend is told
//! about. The backend hears only about changes of the combined mask (libevent's evmap);
//! several events on one fd each get their readiness, the most recently added first.
//!
//! The table grows to the highest fd watched, and only after the fd was checked: it must be
//! open and below the process's fd limit (`RLIMIT_NOFILE`), so a bogus fd such as
//! `i32::MAX` is refused before anything is allocated.

use super::events::{invalid, EventTable, NIL};
use crate::backend::Backend;
use crate::flags::What;
use crate::sys::{self, interest};
use std::io;
use std::os::unix::io::RawFd;

/// A slot's place in its fd's (or signal's) event list (fields private to the tables).
#[derive(Clone, Copy, Debug)]
pub(crate) struct IoLink {
    prev: u32,
    next: u32,
}

impl Default for IoLink {
    fn default() -> Self {
        IoLink {
            prev: NIL,
            next: NIL,
        }
    }
}

/// The head of an intrusive list of events (an fd's, or a signal's).
#[derive(Clone, Copy, Debug)]
pub(crate) struct List {
    head: u32,
}

impl Default for List {
    fn default() -> Self {
        List { head: NIL }
    }
}

impl List {
    pub(crate) fn first(&self) -> Option<usize> {
        (self.head != NIL).then_some(self.head as usize)
    }

    /// The event after `idx` on its list.
    #[inline]
    pub(crate) fn next(t: &EventTable, idx: usize) -> Option<usize> {
        let n = t.get(idx).io.next;
        (n != NIL).then_some(n as usize)
    }

    /// Links `idx` at the head.
    pub(crate) fn link(&mut self, t: &mut EventTable, idx: usize) {
        let old = self.head;
        self.head = idx as u32;
        if old != NIL {
            t.get_mut(old as usize).io.prev = idx as u32;
        }
        t.get_mut(idx).io = IoLink {
            prev: NIL,
            next: old,
        };
    }

    /// Unlinks `idx` (which must be on this list).
    pub(crate) fn unlink(&mut self, t: &mut EventTable, idx: usize) {
        let IoLink { prev, next } = t.get(idx).io;
        if prev == NIL {
            self.head = next;
        } else {
            t.get_mut(prev as usize).io.next = next;
        }
        if next != NIL {
            t.get_mut(next as usize).io.prev = prev;
        }
        t.get_mut(idx).io = IoLink::default();
    }

    /// Members in order, checking the back links (for `verify`).
    pub(crate) fn members(&self, t: &EventTable) -> Result<Vec<usize>, String> {
        let mut out = Vec::new();
        let mut prev = NIL;
        let mut cur = self.head;
        while cur != NIL {
            if out.len() > t.len() {
                return Err("an fd/signal list has a cycle".into());
            }
            let s = t.get(cur as usize);
            if s.io.prev != prev {
                return Err(format!("slot {cur}: broken back link in an fd/signal list"));
            }
            out.push(cur as usize);
            prev = cur;
            cur = s.io.next;
        }
        Ok(out)
    }
}

#[derive(Clone, Copy, Default)]
struct FdEntry {
    list: List,
    nread: u16,
    nwrite: u16,
    nclose: u16,
    net: u16,
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

#[derive(Default)]
pub(crate) struct IoTable {
    fds: Vec<FdEntry>,
}

impl IoTable {
    /// Registers an fd event's interest with the table and the backend.
    pub(crate) fn insert(
        &mut self,
        t: &mut EventTable,
        backend: &mut Backend,
        idx: usize,
    ) -> io::Result<()> {
        let (fd, events) = (t.get(idx).fd, t.get(idx).events);
        if fd < 0 {
            return Err(invalid(format!("invalid fd {fd} for an I/O event")));
        }
        let i = fd as usize;
        if i >= self.fds.len() {
            // Check before growing: the table must never be sized by a bogus number.
            let limit = sys::fd_limit();
            if (fd as u64) >= limit {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("fd {fd} is beyond the process's fd limit ({limit}, RLIMIT_NOFILE)"),
                ));
            }
            sys::check_fd(fd)?;
            // Room for the fds after it too (up to the limit): fds come mostly in ascending
            // order, and growing by one paid these two checks for every new connection.
            let want = (i + 1).max(self.fds.len() * 2).min(limit as usize);
            self.fds.resize(want, FdEntry::default());
        }
        let mut entry = self.fds[i];
        let old = entry.mask();
        entry
            .count(events, 1)
            .ok_or_else(|| invalid(format!("too many events (65535) on fd {fd}")))?;
        let new = entry.mask();
        if old != new {
            backend.change(fd, old, new)?;
        }
        entry.list.link(t, idx);
        self.fds[i] = entry;
        Ok(())
    }

    pub(crate) fn remove(&mut self, t: &mut EventTable, backend: &mut Backend, idx: usize) {
        let (fd, events) = (t.get(idx).fd, t.get(idx).events);
        let entry = &mut self.fds[fd as usize];
        entry.list.unlink(t, idx);
        let old = entry.mask();
        let _ = entry.count(events, -1);
        let new = entry.mask();
        if old != new {
            // Errors mean the fd is already gone from the kernel's view: nothing to undo.
            let _ = backend.change(fd, old, new);
        }
    }

    /// The first event waiting on `fd`.
    #[inline]
    pub(crate) fn first(&self, fd: RawFd) -> Option<usize> {
        self.fds.get(fd as usize).and_then(|e| e.list.first())
    }

    /// Every fd's list and interest counts agree with the events on it, and the backend was
    /// told the combined mask (for `verify`). Returns the number of listed events.
    pub(crate) fn check(
        &self,
        t: &EventTable,
        backend_mask: impl Fn(RawFd) -> Option<u8>,
        supported: u8,
    ) -> Result<usize, String> {
        let mut total = 0;
        for (fd, e) in self.fds.iter().enumerate() {
            let mut want = FdEntry::default();
            for idx in e.list.members(t)? {
                let s = t.get(idx);
                if !s.is_live() || !s.has(super::events::state::INSERTED) || s.fd != fd as RawFd {
                    return Err(format!(
                        "slot {idx} is on fd {fd}'s list but not inserted there"
                    ));
                }
                let _ = want.count(s.events, 1);
                total += 1;
            }
            if (want.nread, want.nwrite, want.nclose, want.net)
                != (e.nread, e.nwrite, e.nclose, e.net)
            {
                return Err(format!("fd {fd}: interest counts disagree with its events"));
            }
            if let Some(m) = backend_mask(fd as RawFd) {
                if m != e.mask() & supported {
                    return Err(format!(
                        "fd {fd}: the backend has mask {m:#x}, the table wants {:#x}",
                        e.mask() & supported
                    ));
                }
            }
        }
        Ok(total)
    }
}
