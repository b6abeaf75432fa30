//! The system layer: every syscall and every `unsafe` block of the reactor lives below this
//! module. Each backend ("selector") is one file with the same small surface:
//! `new`, `change(fd, old, new)`, `dispatch(timeout, ready)`.
//!
//! Everything above `sys/` is safe Rust.

use std::io;
use std::os::unix::io::RawFd;

pub(crate) mod clock;
pub(crate) mod epoll;
#[cfg(feature = "hyper")]
pub(crate) mod hyper_io;
pub(crate) mod notify;
pub(crate) mod pin_cell;
pub(crate) mod poll;
pub(crate) mod prefetch;
pub(crate) mod select;
pub(crate) mod signal;
pub(crate) mod socket;
pub(crate) mod stream;
pub(crate) mod thread_bound;
pub(crate) mod tsc;
pub(crate) mod uring;

/// Calls a `libc` function and turns the C convention (`-1` plus `errno`) into an
/// `io::Result`. Callers must uphold the safety contract of the function they name; each call
/// site says why it does in a `// SAFETY:` comment.
macro_rules! syscall {
    ($fn:ident ( $($arg:expr),* $(,)? )) => {{
        // SAFETY: the caller of `syscall!` documents why the arguments satisfy `$fn`'s contract.
        let res = unsafe { libc::$fn($($arg),*) };
        if res == -1 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
}
pub(crate) use syscall;

/// Interest and readiness bits as the selectors see them: the same values as the public
/// `What` bits (`EV_READ` 0x02, `EV_WRITE` 0x04, `EV_ET` 0x20, `EV_CLOSED` 0x80), so the loop
/// converts between them for free.
pub(crate) mod interest {
    pub(crate) const READ: u8 = 0x02;
    pub(crate) const WRITE: u8 = 0x04;
    pub(crate) const ET: u8 = 0x20;
    pub(crate) const CLOSED: u8 = 0x80;
}

/// The per-fd state of a selector's table, grown with defaults to reach `fd` (selectors
/// index their state by fd number; the table only grows, to the highest fd seen).
pub(crate) fn fd_slot<T: Default + Clone>(table: &mut Vec<T>, fd: RawFd) -> &mut T {
    let i = fd as usize;
    if i >= table.len() {
        table.resize(i + 1, T::default());
    }
    &mut table[i]
}

/// Is `fd` an open file descriptor? One `fcntl(F_GETFD)`; used only when an fd is first
/// registered with a backend that cannot report the error itself (poll, select).
pub(crate) fn check_fd(fd: RawFd) -> io::Result<()> {
    if fd < 0 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: F_GETFD takes no pointer argument; any integer fd is acceptable to the kernel.
    syscall!(fcntl(fd, libc::F_GETFD)).map(|_| ())
}

/// Can `fd` be watched the way epoll watches (a socket, pipe, tty, eventfd...)? One
/// `fstat`: a closed fd is `EBADF`; a regular file or a directory `EPERM`, epoll's answer
/// (always "ready", they have nothing to wait for). For io_uring's first registration.
pub(crate) fn check_pollable(fd: RawFd) -> io::Result<()> {
    if fd < 0 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: an all-zero `stat` is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid, writable stat buffer.
    syscall!(fstat(fd, &mut st))?;
    match st.st_mode & libc::S_IFMT {
        libc::S_IFREG | libc::S_IFDIR => Err(io::Error::from_raw_os_error(libc::EPERM)),
        _ => Ok(()),
    }
}

/// Switches `fd` to non-blocking mode (`O_NONBLOCK`), whatever kind of file it is.
pub(crate) fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFL and F_SETFL take an integer argument; any fd is acceptable.
    let flags = syscall!(fcntl(fd, libc::F_GETFL))?;
    if flags & libc::O_NONBLOCK == 0 {
        // SAFETY: as above.
        syscall!(fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK))?;
    }
    Ok(())
}

/// Closes an fd we own, ignoring errors (there is nothing useful to do with them).
pub(crate) fn close(fd: RawFd) {
    if fd >= 0 {
        // SAFETY: only called on fds this crate created and owns exclusively.
        let _ = syscall!(close(fd));
    }
}

/// Converts a timeout to whole milliseconds for `epoll_wait`/`poll`, rounding **up** so a
/// wait never ends before its deadline; `None` means wait forever (-1). Capped at
/// libevent's 35 minutes to stay far from `i32` overflow.
pub(crate) fn timeout_ms(timeout: Option<std::time::Duration>) -> i32 {
    const MAX_MS: u128 = 35 * 60 * 1000;
    match timeout {
        None => -1,
        Some(d) => {
            let ms = d.as_nanos().div_ceil(1_000_000);
            ms.min(MAX_MS) as i32
        }
    }
}

/// One entry of a backend's poll result: an fd's readiness (epoll, poll, select) or an
/// operation's completion (completion backends such as io_uring: the token the operation was
/// submitted with, its result — bytes or `-errno` — and flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Polled {
    /// `fd` is ready for `bits` (`interest::*`: READ, WRITE, CLOSED; never ET, which is
    /// interest, not readiness).
    Ready { fd: RawFd, bits: u8 },
    /// The operation submitted with `token` finished.
    #[cfg_attr(not(test), allow(dead_code))]
    Done { token: u64, res: i32, flags: u32 },
}

/// Where a backend hands the entries of a poll result one by one (a trait rather than a
/// closure, so that the per-entry work is inlined into the backend's loop).
pub(crate) trait Sink {
    fn take(&mut self, p: Polled);
}

impl Polled {
    #[inline]
    pub(crate) fn ready(fd: RawFd, bits: u8) -> Polled {
        Polled::Ready { fd, bits }
    }
}

/// The process's soft fd limit (`RLIMIT_NOFILE`): no valid fd is at or above it. Read at
/// each call (a program may raise it at run time); only used when the fd table must grow.
pub(crate) fn fd_limit() -> u64 {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `rl` is a valid, writable rlimit.
    match syscall!(getrlimit(libc::RLIMIT_NOFILE, &mut rl)) {
        Ok(_) if rl.rlim_cur != libc::RLIM_INFINITY => rl.rlim_cur,
        _ => i32::MAX as u64,
    }
}

/// Is `fd` ready for reading (`write` false) or writing now? One `poll(2)` with a zero
/// timeout; an error or hang-up counts as ready (the operation will report it), a closed fd
/// is `EBADF`. For the async layer's level-style `readable()` over edge-triggered events.
pub(crate) fn ready_now(fd: RawFd, write: bool) -> io::Result<bool> {
    let events = if write { libc::POLLOUT } else { libc::POLLIN };
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    loop {
        // SAFETY: `p` is one valid, writable pollfd and the count says one.
        match syscall!(poll(&mut p, 1, 0)) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
            Ok(_) => break,
        }
    }
    if p.revents & libc::POLLNVAL != 0 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    Ok(p.revents & (events | libc::POLLERR | libc::POLLHUP) != 0)
}
