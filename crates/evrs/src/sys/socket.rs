//! Socket options socket2 does not cover (the listener's `DEFERRED_ACCEPT`).

use super::syscall;
use std::io;
use std::os::unix::io::RawFd;

/// `TCP_DEFER_ACCEPT` with a timeout of `secs` seconds: the kernel wakes the listener only
/// once a connection has data to read (or the timeout passes).
pub(crate) fn set_defer_accept(fd: RawFd, secs: i32) -> io::Result<()> {
    let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: the option value is a live c_int and `len` is its size, as setsockopt requires;
    // any fd is acceptable to the kernel (a bad one is reported as EBADF/ENOTSOCK).
    syscall!(setsockopt(
        fd,
        libc::IPPROTO_TCP,
        libc::TCP_DEFER_ACCEPT,
        (&secs as *const libc::c_int).cast(),
        len,
    ))
    .map(|_| ())
}
