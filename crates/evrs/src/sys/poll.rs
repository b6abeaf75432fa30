//! The poll(2) backend: a dense `pollfd` array plus an fd → slot index, so add, modify and
//! delete are O(1) and dispatch is O(registered fds). `POLLRDHUP` gives early-close
//! detection.
//!
//! # Errors, hang-ups and closed fds (no spinning)
//! poll reports `POLLERR`, `POLLHUP` and `POLLNVAL` whatever the interest, level-triggered,
//! so a condition no event consumes would end every `poll` at once, forever. Hence:
//! * `POLLERR` or `POLLHUP` → READ|WRITE|CLOSED: every event on the fd wakes, each with the
//!   bits of its own interest (as epoll; libevent gives READ|WRITE and spins on CLOSED-only).
//! * `POLLNVAL`: the fd number is not open: the user closed it without deleting its events.
//!   It is delivered **once**, as READ|WRITE|CLOSED, and the fd is then *muted*: its pollfd
//!   keeps its slot with a negative fd, which poll skips, until the fd's interest changes
//!   (an event on it added or deleted), which unmutes it (still closed, it reports once more).
//!   Its persistent events stay pending and do not fire again; the loop sleeps.
//! * `POLLIN` → READ, `POLLOUT` → WRITE, `POLLRDHUP` → CLOSED: only reported when asked for.
//!
//! A shared base polls a copy of the array; the copy records the fds it found invalid, and
//! the next `prepare_wait` mutes those that are still closed (`fcntl(F_GETFD)`), so a number
//! reused in a callback in between (event deleted, new socket, new event) is not muted.

use super::interest::{CLOSED, READ, WRITE};
use super::syscall;
use std::io;
use std::os::unix::io::RawFd;
use std::time::Duration;

const NONE: u32 = u32::MAX;

/// A muted pollfd holds `!fd` (negative for any fd >= 0, and poll ignores negative fds).
fn unmuted(fd: RawFd) -> RawFd {
    if fd < 0 {
        !fd
    } else {
        fd
    }
}

pub(crate) struct Selector {
    pollfds: Vec<libc::pollfd>,
    /// fd → index into `pollfds` (NONE if absent).
    index: Vec<u32>,
}

impl Selector {
    pub(crate) fn new() -> Selector {
        Selector {
            pollfds: Vec::new(),
            index: Vec::new(),
        }
    }

    pub(crate) fn change(&mut self, fd: RawFd, old: u8, new: u8) -> io::Result<()> {
        if old == 0 && new != 0 {
            super::check_fd(fd)?;
        }
        let i = fd as usize;
        if i >= self.index.len() {
            self.index.resize(i + 1, NONE);
        }
        let slot = self.index[i];
        match (slot, new) {
            (NONE, 0) => {}
            (NONE, _) => {
                self.index[i] = self.pollfds.len() as u32;
                self.pollfds.push(libc::pollfd {
                    fd,
                    events: to_poll(new),
                    revents: 0,
                });
            }
            (s, 0) => {
                let s = s as usize;
                self.pollfds.swap_remove(s);
                if let Some(moved) = self.pollfds.get(s) {
                    self.index[unmuted(moved.fd) as usize] = s as u32;
                }
                self.index[i] = NONE;
            }
            (s, _) => {
                // A new interest also unmutes the fd (module docs).
                let p = &mut self.pollfds[s as usize];
                p.fd = fd;
                p.events = to_poll(new);
            }
        }
        Ok(())
    }

    /// The interest registered for `fd` (poll has no ET).
    pub(crate) fn wanted(&self, fd: RawFd) -> u8 {
        match self.index.get(fd as usize) {
            Some(&s) if s != NONE => {
                let e = self.pollfds[s as usize].events;
                let mut m = 0;
                if e & libc::POLLIN != 0 {
                    m |= READ;
                }
                if e & libc::POLLOUT != 0 {
                    m |= WRITE;
                }
                if e & libc::POLLRDHUP != 0 {
                    m |= CLOSED;
                }
                m
            }
            _ => 0,
        }
    }

    /// Polls; an fd found invalid (`POLLNVAL`) is reported and muted in place.
    #[inline]
    pub(crate) fn dispatch(
        &mut self,
        timeout: Option<Duration>,
        ready: &mut Vec<super::Polled>,
    ) -> io::Result<()> {
        wait(&mut self.pollfds, timeout, ready, None)
    }

    /// Mutes the fds `w`'s last wait found invalid that are still closed, then copies the
    /// pollfd array into `w`, so a shared base can poll with its lock released while other
    /// threads change the original (libevent's poll backend copies it too).
    pub(crate) fn prepare_wait(&mut self, w: &mut Waiter) {
        for fd in w.invalid.drain(..) {
            let slot = self.index.get(fd as usize).copied().unwrap_or(NONE);
            if slot != NONE && super::check_fd(fd).is_err() {
                let p = &mut self.pollfds[slot as usize];
                p.fd = !unmuted(p.fd);
            }
        }
        w.pollfds.clear();
        w.pollfds.extend_from_slice(&self.pollfds);
    }
}

/// A detached wait over a copy of the pollfd array.
pub(crate) struct Waiter {
    pollfds: Vec<libc::pollfd>,
    /// fds the last wait found invalid (`POLLNVAL`), for the next `prepare_wait` to mute.
    invalid: Vec<RawFd>,
}

impl Waiter {
    pub(crate) fn new() -> Waiter {
        Waiter {
            pollfds: Vec::new(),
            invalid: Vec::new(),
        }
    }

    pub(crate) fn wait(
        &mut self,
        timeout: Option<Duration>,
        ready: &mut Vec<super::Polled>,
    ) -> io::Result<()> {
        wait(&mut self.pollfds, timeout, ready, Some(&mut self.invalid))
    }
}

/// One `poll`; appends `(fd, bits)` to `ready`. A `POLLNVAL` fd is muted in `pollfds` and,
/// given `invalid`, recorded there.
#[inline]
fn wait(
    pollfds: &mut [libc::pollfd],
    timeout: Option<Duration>,
    ready: &mut Vec<super::Polled>,
    mut invalid: Option<&mut Vec<RawFd>>,
) -> io::Result<()> {
    // Room for every fd to be ready: no growth while the fd set is stable.
    ready.reserve(pollfds.len());
    // SAFETY: the pointer and length describe a live, initialized pollfd slice.
    let n = syscall!(poll(
        pollfds.as_mut_ptr(),
        pollfds.len() as libc::nfds_t,
        super::timeout_ms(timeout),
    ));
    let mut n = match n {
        Ok(n) => n as usize,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
        Err(e) => return Err(e),
    };
    for p in pollfds.iter_mut() {
        if n == 0 {
            break;
        }
        if p.revents == 0 {
            continue;
        }
        n -= 1;
        ready.push(super::Polled::ready(p.fd, from_poll(p.revents)));
        if p.revents & libc::POLLNVAL != 0 {
            if let Some(invalid) = invalid.as_deref_mut() {
                invalid.push(p.fd);
            }
            p.fd = !p.fd;
        }
    }
    Ok(())
}

fn to_poll(mask: u8) -> libc::c_short {
    let mut e = 0;
    if mask & READ != 0 {
        e |= libc::POLLIN;
    }
    if mask & WRITE != 0 {
        e |= libc::POLLOUT;
    }
    if mask & CLOSED != 0 {
        e |= libc::POLLRDHUP;
    }
    e
}

/// ERR, HUP or NVAL → READ|WRITE|CLOSED; IN → READ; OUT → WRITE; RDHUP → CLOSED.
fn from_poll(r: libc::c_short) -> u8 {
    let mut bits = 0;
    if r & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
        bits |= READ | WRITE | CLOSED;
    }
    if r & libc::POLLIN != 0 {
        bits |= READ;
    }
    if r & libc::POLLOUT != 0 {
        bits |= WRITE;
    }
    if r & libc::POLLRDHUP != 0 {
        bits |= CLOSED;
    }
    bits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_hangup_and_invalid_wake_every_kind_of_watcher() {
        for r in [libc::POLLERR, libc::POLLHUP, libc::POLLNVAL] {
            assert_eq!(from_poll(r), READ | WRITE | CLOSED, "{r:#x}");
        }
        assert_eq!(from_poll(libc::POLLIN), READ);
        assert_eq!(from_poll(libc::POLLOUT), WRITE);
        assert_eq!(from_poll(libc::POLLRDHUP), CLOSED);
    }

    #[test]
    fn a_muted_slot_can_be_moved_removed_and_unmuted() {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: pipe writes two fds into the array; they are closed below.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let [a, b] = fds;
        let mut s = Selector::new();
        s.change(a, 0, READ).unwrap();
        s.change(b, 0, READ).unwrap();
        let mute = |s: &mut Selector, fd: RawFd| {
            let slot = s.index[fd as usize] as usize;
            s.pollfds[slot].fd = !fd;
        };
        // Muted `b` is moved into `a`'s slot when `a` goes: its index entry follows it.
        mute(&mut s, b);
        s.change(a, READ, 0).unwrap();
        assert_eq!(s.index[b as usize], 0);
        assert_eq!(s.pollfds[0].fd, !b);
        // A new interest unmutes it; deleting it empties the array.
        s.change(b, READ, READ | WRITE).unwrap();
        assert_eq!(s.pollfds[0].fd, b);
        assert_eq!(s.pollfds[0].events, libc::POLLIN | libc::POLLOUT);
        mute(&mut s, b);
        s.change(b, READ | WRITE, 0).unwrap();
        assert!(s.pollfds.is_empty());
        assert_eq!(s.index[b as usize], NONE);
        super::super::close(a);
        super::super::close(b);
    }
}
