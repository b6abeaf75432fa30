//! The select(2) backend: two `fd_set` bitmaps. Dispatch costs O(highest fd), and an fd at or
//! above `FD_SETSIZE` (1024) cannot be watched at all: adding one is an `EINVAL` error, never
//! memory corruption. `CLOSED` interest is accepted but never reported (select has no way to
//! tell a half-closed peer), as in libevent.

use super::interest::{READ, WRITE};
use super::syscall;
use std::io;
use std::os::unix::io::RawFd;
use std::time::Duration;

pub(crate) struct Selector {
    read: libc::fd_set,
    write: libc::fd_set,
    /// Interest per fd, to find the highest fd and rebuild sets cheaply.
    masks: Vec<u8>,
    max_fd: RawFd,
}

fn empty_set() -> libc::fd_set {
    // SAFETY: fd_set is plain old data; FD_ZERO initializes it fully.
    unsafe {
        let mut set = std::mem::zeroed::<libc::fd_set>();
        libc::FD_ZERO(&mut set);
        set
    }
}

impl Selector {
    pub(crate) fn new() -> Selector {
        Selector {
            read: empty_set(),
            write: empty_set(),
            masks: Vec::new(),
            max_fd: -1,
        }
    }

    pub(crate) fn change(&mut self, fd: RawFd, old: u8, new: u8) -> io::Result<()> {
        if fd < 0 || fd as usize >= libc::FD_SETSIZE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "fd {fd} is outside select()'s range 0..{} (use the epoll or poll backend)",
                    libc::FD_SETSIZE
                ),
            ));
        }
        if old == 0 && new != 0 {
            super::check_fd(fd)?;
        }
        let i = fd as usize;
        if i >= self.masks.len() {
            self.masks.resize(i + 1, 0);
        }
        self.masks[i] = new;
        // SAFETY: 0 <= fd < FD_SETSIZE was checked above, so the bit is inside the set.
        unsafe {
            if new & READ != 0 {
                libc::FD_SET(fd, &mut self.read);
            } else {
                libc::FD_CLR(fd, &mut self.read);
            }
            if new & WRITE != 0 {
                libc::FD_SET(fd, &mut self.write);
            } else {
                libc::FD_CLR(fd, &mut self.write);
            }
        }
        if new != 0 && fd > self.max_fd {
            self.max_fd = fd;
        } else if new == 0 && fd == self.max_fd {
            while self.max_fd >= 0 && self.masks[self.max_fd as usize] == 0 {
                self.max_fd -= 1;
            }
        }
        Ok(())
    }

    #[inline]
    /// The interest registered for `fd` (select has READ and WRITE only).
    pub(crate) fn wanted(&self, fd: RawFd) -> u8 {
        self.masks
            .get(fd as usize)
            .map_or(0, |&m| m & (READ | WRITE))
    }

    pub(crate) fn dispatch(
        &mut self,
        timeout: Option<Duration>,
        ready: &mut Vec<super::Polled>,
    ) -> io::Result<()> {
        wait(self.read, self.write, self.max_fd, timeout, ready)
    }

    /// Copies the sets into `w`, so a shared base can wait with its lock released.
    pub(crate) fn prepare_wait(&mut self, w: &mut Waiter) {
        w.read = self.read;
        w.write = self.write;
        w.max_fd = self.max_fd;
    }
}

/// A detached wait over copies of the two sets.
pub(crate) struct Waiter {
    read: libc::fd_set,
    write: libc::fd_set,
    max_fd: RawFd,
}

impl Waiter {
    pub(crate) fn new() -> Waiter {
        Waiter {
            read: empty_set(),
            write: empty_set(),
            max_fd: -1,
        }
    }

    pub(crate) fn wait(
        &mut self,
        timeout: Option<Duration>,
        ready: &mut Vec<super::Polled>,
    ) -> io::Result<()> {
        wait(self.read, self.write, self.max_fd, timeout, ready)
    }
}

/// `select` over copies of the sets (select overwrites what it is given).
fn wait(
    mut rset: libc::fd_set,
    mut wset: libc::fd_set,
    max_fd: RawFd,
    timeout: Option<Duration>,
    ready: &mut Vec<super::Polled>,
) -> io::Result<()> {
    let mut tv = timeout.map(|d| {
        // Round up to whole microseconds so select never returns before the deadline.
        let us = d.as_nanos().div_ceil(1000).min(35 * 60 * 1_000_000);
        libc::timeval {
            tv_sec: (us / 1_000_000) as libc::time_t,
            tv_usec: (us % 1_000_000) as libc::suseconds_t,
        }
    });
    let tvp = tv
        .as_mut()
        .map_or(std::ptr::null_mut(), |t| t as *mut libc::timeval);
    // SAFETY: the sets are valid copies; max_fd + 1 <= FD_SETSIZE; tvp is null or valid.
    let n = syscall!(select(
        max_fd + 1,
        &mut rset,
        &mut wset,
        std::ptr::null_mut(),
        tvp
    ));
    let mut n = match n {
        Ok(n) => n as usize,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
        Err(e) => return Err(e),
    };
    for fd in 0..=max_fd {
        if n == 0 {
            break;
        }
        let mut bits = 0;
        // SAFETY: 0 <= fd <= max_fd < FD_SETSIZE.
        unsafe {
            if libc::FD_ISSET(fd, &rset) {
                bits |= READ;
                n = n.saturating_sub(1);
            }
            if libc::FD_ISSET(fd, &wset) {
                bits |= WRITE;
                n = n.saturating_sub(1);
            }
        }
        if bits != 0 {
            ready.push(super::Polled::ready(fd, bits));
        }
    }
    Ok(())
}
