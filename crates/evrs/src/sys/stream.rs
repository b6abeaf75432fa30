//! Stream-socket calls the bufferevents need on an fd they were given as a number: a
//! non-blocking `connect` and the pending socket error (`SO_ERROR`) that tells how one
//! ended. (Sockets evrs makes itself come from `socket2`.)

use super::syscall;
use std::io;
use std::os::unix::io::RawFd;

/// Starts connecting `fd` to `addr`. On a non-blocking socket `EINPROGRESS` comes back as
/// an error of that kind: the caller waits for writability, then reads [`take_error`].
pub(crate) fn connect(fd: RawFd, addr: &socket2::SockAddr) -> io::Result<()> {
    // SAFETY: `addr` is a valid socket address of `addr.len()` bytes for the whole call.
    syscall!(connect(fd, addr.as_ptr().cast(), addr.len())).map(|_| ())
}

/// The socket's pending error (`SO_ERROR`, cleared by reading it), if any.
pub(crate) fn take_error(fd: RawFd) -> io::Result<Option<io::Error>> {
    let mut err: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `err` and `len` are valid, writable, and `len` is `err`'s size.
    syscall!(getsockopt(
        fd,
        libc::SOL_SOCKET,
        libc::SO_ERROR,
        (&mut err as *mut libc::c_int).cast(),
        &mut len
    ))?;
    Ok((err != 0).then(|| io::Error::from_raw_os_error(err)))
}

/// Closes an fd this process owns (errors other than EBADF are not actionable here).
pub(crate) fn close(fd: RawFd) {
    // SAFETY: `close` takes no pointers; the caller owns `fd` and never uses it again.
    let _ = syscall!(close(fd));
}

/// Shuts down the write side of `fd` (the peer reads EOF once the data in flight arrives).
pub(crate) fn shutdown_write(fd: RawFd) -> io::Result<()> {
    // SAFETY: `shutdown` takes no pointers.
    syscall!(shutdown(fd, libc::SHUT_WR)).map(|_| ())
}
