//! The notify fd: an `eventfd` another thread writes to wake a loop blocked in its backend.

use super::syscall;
use std::io;
use std::os::unix::io::RawFd;

/// Creates a non-blocking, close-on-exec eventfd.
pub(crate) fn new() -> io::Result<RawFd> {
    // SAFETY: eventfd takes no pointers.
    syscall!(eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC))
}

/// Adds 1 to the counter, making the fd readable. EAGAIN (counter saturated) still leaves
/// it readable, so it is not an error.
pub(crate) fn wake(fd: RawFd) -> io::Result<()> {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live u64, as eventfd requires.
    match syscall!(write(fd, (&one as *const u64).cast(), 8)) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        Err(e) => Err(e),
    }
}

/// Resets the counter to 0 so the fd stops being readable.
pub(crate) fn drain(fd: RawFd) {
    let mut buf: u64 = 0;
    // SAFETY: reads 8 bytes into a live u64, as eventfd requires.
    let _ = syscall!(read(fd, (&mut buf as *mut u64).cast(), 8));
}
