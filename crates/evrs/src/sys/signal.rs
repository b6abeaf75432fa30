//! Signals, delivered through a self-pipe: one process-wide handler writes the signal number
//! as a single byte into the pipe of the base that currently owns signal delivery; that base
//! watches the read end like any other fd and turns each byte into a callback.
//!
//! One owner per process, as in libevent: the base that most recently added a signal event
//! (or started a loop with signal events) receives every signal.

use super::syscall;
use std::io;
use std::os::unix::io::RawFd;
use std::sync::atomic::{AtomicI32, Ordering};

/// Highest signal number plus one (Linux: 1..=64).
pub(crate) const NSIG: usize = 65;

/// The write end of the owning base's pipe, or -1.
static OWNER_WRITE_FD: AtomicI32 = AtomicI32::new(-1);

/// A saved `sigaction`, restored when the last event for the signal goes away.
pub(crate) struct SavedAction(libc::sigaction);

/// Checks that `signo` is a signal a program may catch.
pub(crate) fn validate(signo: i32) -> io::Result<()> {
    if signo <= 0 || signo as usize >= NSIG {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("signal number {signo} is out of range 1..{}", NSIG - 1),
        ));
    }
    if signo == libc::SIGKILL || signo == libc::SIGSTOP {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("signal {signo} (SIGKILL/SIGSTOP) cannot be caught"),
        ));
    }
    Ok(())
}

extern "C" fn handler(signo: libc::c_int) {
    // SAFETY: __errno_location returns this thread's errno slot; we restore it before returning
    // because the interrupted code may be between a failing call and its errno check.
    let errno = unsafe { *libc::__errno_location() };
    let fd = OWNER_WRITE_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = signo as u8;
        // SAFETY: write(2) is async-signal-safe; the buffer is a live local byte.
        unsafe {
            libc::write(fd, (&byte as *const u8).cast(), 1);
        }
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Installs our handler for `signo`, returning the previous action.
pub(crate) fn install(signo: i32) -> io::Result<SavedAction> {
    validate(signo)?;
    // SAFETY: a zeroed sigaction is valid; we fill handler, mask and flags before use, and the
    // old action is written into a live zeroed struct.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigfillset(&mut sa.sa_mask);
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(signo, &sa, &mut old) == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(SavedAction(old))
    }
}

/// Restores a saved action.
pub(crate) fn restore(signo: i32, saved: &SavedAction) {
    // SAFETY: `saved.0` was filled in by the kernel by a previous sigaction call.
    unsafe {
        libc::sigaction(signo, &saved.0, std::ptr::null_mut());
    }
}

/// Makes `write_fd` the destination of every caught signal.
pub(crate) fn claim(write_fd: RawFd) {
    OWNER_WRITE_FD.store(write_fd, Ordering::SeqCst);
}

/// Stops delivery to `write_fd` if it is still the owner (called when its base goes away).
pub(crate) fn release(write_fd: RawFd) {
    let _ = OWNER_WRITE_FD.compare_exchange(write_fd, -1, Ordering::SeqCst, Ordering::SeqCst);
}

/// Is `write_fd` the current owner?
pub(crate) fn owns(write_fd: RawFd) -> bool {
    OWNER_WRITE_FD.load(Ordering::Relaxed) == write_fd
}

/// A non-blocking, close-on-exec pipe: (read end, write end).
pub(crate) fn pipe() -> io::Result<(RawFd, RawFd)> {
    let mut fds = [-1; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    syscall!(pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC))?;
    Ok((fds[0], fds[1]))
}

/// Reads every pending signal byte, adding one to `counts[signo]` per delivery.
pub(crate) fn drain(read_fd: RawFd, counts: &mut [u32; NSIG]) {
    let mut buf = [0u8; 1024];
    loop {
        // SAFETY: reads into a live local buffer of the stated length.
        match syscall!(read(read_fd, buf.as_mut_ptr().cast(), buf.len())) {
            Ok(n) if n > 0 => {
                for &b in &buf[..n as usize] {
                    if let Some(c) = counts.get_mut(b as usize) {
                        *c = c.saturating_add(1);
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            _ => break,
        }
    }
}
