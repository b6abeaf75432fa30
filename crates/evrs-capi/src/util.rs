//! evutil (util.h): portable socket and time helpers.

use crate::ffi::capi;
use crate::log;
use std::os::raw::c_int;

fn fcntl_add(fd: c_int, get: c_int, set: c_int, bit: c_int, what: &str) -> c_int {
    // SAFETY: fcntl on a caller's fd with integer arguments; errors are reported.
    unsafe {
        let flags = libc::fcntl(fd, get);
        if flags < 0 || libc::fcntl(fd, set, flags | bit) < 0 {
            log::warn(&format!(
                "{what}: fcntl({fd}): {}",
                std::io::Error::last_os_error()
            ));
            return -1;
        }
    }
    0
}

fn set_opt(fd: c_int, level: c_int, name: c_int) -> c_int {
    let one: c_int = 1;
    // SAFETY: a valid pointer to an int of the given size.
    unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&one as *const c_int).cast(),
            std::mem::size_of::<c_int>() as libc::socklen_t,
        )
    }
}

capi! {
    /// Sets O_NONBLOCK.
    fn evutil_make_socket_nonblocking(fd: c_int) -> c_int {
        fcntl_add(fd, libc::F_GETFL, libc::F_SETFL, libc::O_NONBLOCK, "evutil_make_socket_nonblocking")
    }

    /// Sets FD_CLOEXEC.
    fn evutil_make_socket_closeonexec(fd: c_int) -> c_int {
        fcntl_add(fd, libc::F_GETFD, libc::F_SETFD, libc::FD_CLOEXEC, "evutil_make_socket_closeonexec")
    }

    /// Sets SO_REUSEADDR.
    fn evutil_make_listen_socket_reuseable(fd: c_int) -> c_int {
        set_opt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR)
    }

    /// Sets SO_REUSEPORT.
    fn evutil_make_listen_socket_reuseable_port(fd: c_int) -> c_int {
        set_opt(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT)
    }

    /// Closes a socket.
    fn evutil_closesocket(fd: c_int) -> c_int {
        // SAFETY: closes the caller's fd.
        unsafe { libc::close(fd) }
    }
}
