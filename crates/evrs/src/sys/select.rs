//! The select(2) backend: two `fd_set` bitmaps. Dispatch costs O(highest fd), and an fd at or
//! above `FD_SETSIZE` (1024) cannot be watched at all: adding one is an `EINVAL` error, never
//! memory corruption. `CLOSED` interest is accepted but never reported (select has no way to
//! tell a half-closed peer), as in libevent.
//!
//! # Errors, hang-ups and closed fds (no endless error)
//! Errors and hang-ups need nothing special: select reports them as readable (and an error
//! as writable), which the fd's READ/WRITE events consume. But one fd in the sets that is
//! not open (the user closed it without deleting its events) fails the whole `select` with
//! `EBADF`, every time. Then the selector looks for such fds (`fcntl(F_GETFD)` on each fd in
//! the sets), reports each **once**, as READ|WRITE|CLOSED (each event gets the bits of its
//! interest), takes it out of the sets (*muted*) until its interest changes (an event on it
//! added or deleted), and returns `Ok`: the other fds are selected on the next iteration.
//! Persistent events on a muted fd stay pending and do not fire again; the loop sleeps.
//!
//! A shared base selects on copies of the sets; the copy records the fds it found invalid,
//! and the next `prepare_wait` mutes those that are still closed, so a number reused in a
//! callback in between (event deleted, new socket, new event) is not muted.

use super::interest::{CLOSED, READ, WRITE};
use super::syscall;
use std::io;
use std::os::unix::io::RawFd;
use std::time::Duration;

pub(crate) struct Selector {
    read: libc::fd_set,
    write: libc::fd_set,
    /// Interest per fd, to find the highest fd and rebuild sets cheaply (a muted fd keeps
    /// its interest here, with its bits cleared in the sets).
    masks: Vec<u8>,
    max_fd: RawFd,
    /// fds the last `select` found invalid (scratch, empty between calls).
    invalid: Vec<RawFd>,
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
            invalid: Vec::new(),
        }
    }

    /// Takes `fd` out of both sets, keeping its interest (the module docs' muting).
    fn mute(&mut self, fd: RawFd) {
        // SAFETY: `fd` came from our sets, so 0 <= fd <= max_fd < FD_SETSIZE.
        unsafe {
            libc::FD_CLR(fd, &mut self.read);
            libc::FD_CLR(fd, &mut self.write);
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

    /// Selects; an fd found invalid is reported and muted.
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
        let res = wait(
            &self.read,
            &self.write,
            self.max_fd,
            timeout,
            ready,
            &mut self.invalid,
        );
        while let Some(fd) = self.invalid.pop() {
            self.mute(fd);
        }
        res
    }

    /// Mutes the fds `w`'s last wait found invalid that are still closed, then copies the
    /// sets into `w`, so a shared base can wait with its lock released.
    pub(crate) fn prepare_wait(&mut self, w: &mut Waiter) {
        while let Some(fd) = w.invalid.pop() {
            let live = self.masks.get(fd as usize).is_some_and(|&m| m != 0);
            if live && super::check_fd(fd).is_err() {
                self.mute(fd);
            }
        }
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
    /// fds the last wait found invalid, for the next `prepare_wait` to mute.
    invalid: Vec<RawFd>,
}

impl Waiter {
    pub(crate) fn new() -> Waiter {
        Waiter {
            read: empty_set(),
            write: empty_set(),
            max_fd: -1,
            invalid: Vec::new(),
        }
    }

    pub(crate) fn wait(
        &mut self,
        timeout: Option<Duration>,
        ready: &mut Vec<super::Polled>,
    ) -> io::Result<()> {
        wait(
            &self.read,
            &self.write,
            self.max_fd,
            timeout,
            ready,
            &mut self.invalid,
        )
    }
}

/// `select` over copies of the sets (select overwrites what it is given). On `EBADF`, the
/// fds of the sets that are not open are appended to `invalid` and reported (module docs).
fn wait(
    read: &libc::fd_set,
    write: &libc::fd_set,
    max_fd: RawFd,
    timeout: Option<Duration>,
    ready: &mut Vec<super::Polled>,
    invalid: &mut Vec<RawFd>,
) -> io::Result<()> {
    // Room for every fd to be ready: no growth while the fd set is stable.
    ready.reserve((max_fd + 1).max(0) as usize);
    let (mut rset, mut wset) = (*read, *write);
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
        Err(e) if e.raw_os_error() == Some(libc::EBADF) => {
            find_invalid(read, write, max_fd, ready, invalid);
            return Ok(());
        }
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

/// After `EBADF`: reports every fd of the sets that is not open, as READ|WRITE|CLOSED, and
/// appends it to `invalid`. None found (the fd was reopened since) is fine: select again.
#[cold]
fn find_invalid(
    read: &libc::fd_set,
    write: &libc::fd_set,
    max_fd: RawFd,
    ready: &mut Vec<super::Polled>,
    invalid: &mut Vec<RawFd>,
) {
    for fd in 0..=max_fd {
        // SAFETY: 0 <= fd <= max_fd < FD_SETSIZE.
        let watched = unsafe { libc::FD_ISSET(fd, read) || libc::FD_ISSET(fd, write) };
        if watched && super::check_fd(fd).is_err_and(|e| e.raw_os_error() == Some(libc::EBADF)) {
            ready.push(super::Polled::ready(fd, READ | WRITE | CLOSED));
            invalid.push(fd);
        }
    }
}
