//! The poll(2) backend: a dense `pollfd` array plus an fd → slot index, so add, modify and
//! delete are O(1) and dispatch is O(registered fds). `POLLRDHUP` gives early-close
//! detection; `POLLERR`/`POLLHUP`/`POLLNVAL` wake both readers and writers, as libevent does.

use super::interest::{CLOSED, READ, WRITE};
use super::syscall;
use std::io;
use std::os::unix::io::RawFd;
use std::time::Duration;

const NONE: u32 = u32::MAX;

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
                    self.index[moved.fd as usize] = s as u32;
                }
                self.index[i] = NONE;
            }
            (s, _) => self.pollfds[s as usize].events = to_poll(new),
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

    #[inline]
    pub(crate) fn dispatch(
        &mut self,
        timeout: Option<Duration>,
        ready: &mut Vec<super::Polled>,
    ) -> io::Result<()> {
        wait(&mut self.pollfds, timeout, ready)
    }

    /// Copies the pollfd array into `w`, so a shared base can poll with its lock released
    /// while other threads change the original (libevent's poll backend copies it too).
    pub(crate) fn prepare_wait(&mut self, w: &mut Waiter) {
        w.pollfds.clear();
        w.pollfds.extend_from_slice(&self.pollfds);
    }
}

/// A detached wait over a copy of the pollfd array.
pub(crate) struct Waiter {
    pollfds: Vec<libc::pollfd>,
}

impl Waiter {
    pub(crate) fn new() -> Waiter {
        Waiter {
            pollfds: Vec::new(),
        }
    }

    pub(crate) fn wait(
        &mut self,
        timeout: Option<Duration>,
        ready: &mut Vec<super::Polled>,
    ) -> io::Result<()> {
        wait(&mut self.pollfds, timeout, ready)
    }
}

#[inline]
fn wait(
    pollfds: &mut [libc::pollfd],
    timeout: Option<Duration>,
    ready: &mut Vec<super::Polled>,
) -> io::Result<()> {
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
    for p in pollfds.iter() {
        if n == 0 {
            break;
        }
        if p.revents == 0 {
            continue;
        }
        n -= 1;
        ready.push(super::Polled::ready(p.fd, from_poll(p.revents)));
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

fn from_poll(r: libc::c_short) -> u8 {
    let mut bits = 0;
    if r & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
        bits |= READ | WRITE;
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
