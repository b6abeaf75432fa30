//! evutil (util.h): portable socket, address, string, time and random helpers, plus the
//! internal `evutil_*_` functions libevent exports and its own test suite links to.
//!
//! Split by theme: this file has sockets, files and the environment; [`net`] addresses,
//! [`addrinfo`] name resolution, [`text`] strings and character classes, [`time`] clocks
//! and dates, [`rand`] random numbers.

pub mod addrinfo;
pub mod net;
pub mod rand;
pub mod text;
pub mod time;

use crate::ffi::capi;
use crate::log;
use crate::mm;
use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_uint};

/// The last OS error as an `io::Error`.
fn last_error() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// Sets `errno`.
pub fn set_errno(e: c_int) {
    // SAFETY: `__errno_location` gives this thread's errno.
    unsafe { *libc::__errno_location() = e };
}

fn fcntl_add(fd: c_int, get: c_int, set: c_int, bit: c_int, what: &str) -> c_int {
    // SAFETY: fcntl on a caller's fd with integer arguments; errors are reported.
    unsafe {
        let flags = libc::fcntl(fd, get);
        if flags < 0 || libc::fcntl(fd, set, flags | bit) < 0 {
            log::warn(&format!("{what}: fcntl({fd}): {}", last_error()));
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

/// Two connected TCP sockets over 127.0.0.1 (what `socketpair` gives where it does not
/// exist); -1 with errno set on failure.
fn tcp_pair(ty: c_int, fd: &mut [c_int; 2]) -> c_int {
    use std::mem::{size_of, zeroed};
    // SAFETY: plain socket calls on sockets made here; every address structure is a
    // zeroed `sockaddr_in` of the size passed.
    unsafe {
        let listener = libc::socket(libc::AF_INET, ty, 0);
        if listener < 0 {
            return -1;
        }
        let mut sin: libc::sockaddr_in = zeroed();
        sin.sin_family = libc::AF_INET as libc::sa_family_t;
        sin.sin_addr.s_addr = u32::to_be(0x7f00_0001);
        let mut len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let sa = (&mut sin as *mut libc::sockaddr_in).cast::<libc::sockaddr>();
        let mut conn = -1;
        let mut acc = -1;
        let ok = libc::bind(listener, sa, len) == 0
            && libc::listen(listener, 1) == 0
            && libc::getsockname(listener, sa, &mut len) == 0
            && {
                conn = libc::socket(libc::AF_INET, ty, 0);
                conn >= 0
            }
            && libc::connect(conn, sa, len) == 0
            && {
                let mut peer: libc::sockaddr_in = zeroed();
                let mut plen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
                acc = libc::accept(
                    listener,
                    (&mut peer as *mut libc::sockaddr_in).cast(),
                    &mut plen,
                );
                acc >= 0
            };
        let saved = *libc::__errno_location();
        libc::close(listener);
        if !ok {
            if conn >= 0 {
                libc::close(conn);
            }
            set_errno(saved);
            return -1;
        }
        fd[0] = conn;
        fd[1] = acc;
    }
    0
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

    /// Sets IPV6_V6ONLY: an IPv6 listener that does not also take IPv4 connections.
    fn evutil_make_listen_socket_ipv6only(fd: c_int) -> c_int {
        set_opt(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY)
    }

    /// Sets TCP_DEFER_ACCEPT: accept only once the client has sent data.
    fn evutil_make_tcp_listen_socket_deferred(fd: c_int) -> c_int {
        set_opt(fd, libc::IPPROTO_TCP, libc::TCP_DEFER_ACCEPT)
    }

    /// Closes a socket.
    fn evutil_closesocket(fd: c_int) -> c_int {
        // SAFETY: closes the caller's fd.
        unsafe { libc::close(fd) }
    }

    /// `socketpair(2)`.
    fn evutil_socketpair(family: c_int, ty: c_int, protocol: c_int, sv: *mut c_int) -> c_int {
        if sv.is_null() {
            set_errno(libc::EINVAL);
            return -1;
        }
        // SAFETY: `sv` points to two writable ints per the contract.
        unsafe { libc::socketpair(family, ty, protocol, sv) }
    }

    /// Internal: a socket pair made of two loopback TCP connections' ends (libevent's
    /// stand-in where `socketpair` is missing). `AF_UNIX` or `AF_INET` with protocol 0, as
    /// libevent (errno `EAFNOSUPPORT` otherwise); the ends are TCP sockets either way.
    fn evutil_ersatz_socketpair_(family: c_int, ty: c_int, protocol: c_int, fd: *mut c_int) -> c_int {
        if protocol != 0 || (family != libc::AF_UNIX && family != libc::AF_INET) {
            set_errno(libc::EAFNOSUPPORT);
            return -1;
        }
        if fd.is_null() {
            set_errno(libc::EINVAL);
            return -1;
        }
        let mut pair = [-1; 2];
        let r = tcp_pair(ty, &mut pair);
        if r == 0 {
            // SAFETY: `fd` points to two writable ints per the contract.
            unsafe { std::ptr::copy_nonoverlapping(pair.as_ptr(), fd, 2) };
        }
        r
    }

    /// Internal: `socket(2)`; `type` may carry `SOCK_NONBLOCK` / `SOCK_CLOEXEC`.
    fn evutil_socket_(domain: c_int, ty: c_int, protocol: c_int) -> c_int {
        // SAFETY: no pointers.
        unsafe { libc::socket(domain, ty, protocol) }
    }

    /// Internal: `accept4(2)` with `SOCK_NONBLOCK` / `SOCK_CLOEXEC` flags.
    fn evutil_accept4_(fd: c_int, addr: *mut libc::sockaddr, len: *mut libc::socklen_t, flags: c_int) -> c_int {
        // SAFETY: `addr`/`len` null or writable per the contract.
        unsafe { libc::accept4(fd, addr, len, flags) }
    }

    /// Internal: a non-blocking, close-on-exec pipe (the base's signal and wakeup pipes):
    /// 0, or -1 with both fds -1.
    fn evutil_make_internal_pipe_(fd: *mut c_int) -> c_int {
        if fd.is_null() {
            return -1;
        }
        // SAFETY: `fd` points to two writable ints per the contract.
        unsafe {
            if libc::pipe2(fd, libc::O_NONBLOCK | libc::O_CLOEXEC) == 0 {
                return 0;
            }
            log::warn(&format!("evutil_make_internal_pipe_: pipe: {}", last_error()));
            *fd = -1;
            *fd.add(1) = -1;
        }
        -1
    }

    /// Internal: `eventfd(2)`.
    fn evutil_eventfd_(initval: c_uint, flags: c_int) -> c_int {
        // SAFETY: no pointers.
        unsafe { libc::eventfd(initval, flags) }
    }

    /// Internal: `open(2)` with `O_CLOEXEC` added.
    fn evutil_open_closeonexec_(path: *const c_char, flags: c_int, mode: c_uint) -> c_int {
        if path.is_null() {
            set_errno(libc::EFAULT);
            return -1;
        }
        // SAFETY: a C string per the contract.
        unsafe { libc::open(path, flags | libc::O_CLOEXEC, mode) }
    }

    /// Internal: reads a whole file into memory from the library's allocator, NUL added.
    /// 0 on success; -1 if it cannot be opened; -2 on a later error.
    fn evutil_read_file_(path: *const c_char, content: *mut *mut c_char, len: *mut usize, is_binary: c_int) -> c_int {
        let _ = is_binary; // no text mode on POSIX
        if path.is_null() || content.is_null() || len.is_null() {
            return -1;
        }
        // SAFETY: the out-pointers are writable and `path` a C string per the contract.
        unsafe {
            *content = std::ptr::null_mut();
            *len = 0;
            let fd = libc::open(path, libc::O_RDONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return -1;
            }
            let mut data = Vec::new();
            let mut chunk = [0u8; 8192];
            loop {
                let n = libc::read(fd, chunk.as_mut_ptr().cast(), chunk.len());
                if n < 0 {
                    if *libc::__errno_location() == libc::EINTR {
                        continue;
                    }
                    libc::close(fd);
                    return -2;
                }
                if n == 0 {
                    break;
                }
                data.extend_from_slice(&chunk[..n as usize]);
            }
            libc::close(fd);
            let p = mm::strdup_bytes(&data);
            if p.is_null() {
                return -2;
            }
            *content = p;
            *len = data.len();
        }
        0
    }

    /// Internal: starts a non-blocking connect to `sa`, making a non-blocking socket into
    /// `*fd` first if it is negative. 1 connected at once, 0 in progress, 2 refused at once,
    /// -1 on another error (a socket made here is closed again).
    fn evutil_socket_connect_(fd: *mut c_int, sa: *const libc::sockaddr, len: c_int) -> c_int {
        if fd.is_null() || sa.is_null() {
            return -1;
        }
        // SAFETY: `fd` writable and `sa` an address of `len` bytes, per the contract.
        unsafe {
            let made = *fd < 0;
            if made {
                let s = libc::socket(c_int::from((*sa).sa_family), libc::SOCK_STREAM | libc::SOCK_NONBLOCK, 0);
                if s < 0 {
                    return -1;
                }
                *fd = s;
            }
            if libc::connect(*fd, sa, len as libc::socklen_t) == 0 {
                return 1;
            }
            match *libc::__errno_location() {
                libc::EINPROGRESS | libc::EINTR => 0,
                libc::ECONNREFUSED => 2,
                _ => {
                    if made {
                        libc::close(*fd);
                        *fd = -1;
                    }
                    -1
                }
            }
        }
    }

    /// Internal: whether a non-blocking connect finished: 1 connected, 0 still in progress,
    /// -1 failed (errno set to the socket's error).
    fn evutil_socket_finished_connecting_(fd: c_int) -> c_int {
        let mut e: c_int = 0;
        let mut len = std::mem::size_of::<c_int>() as libc::socklen_t;
        // SAFETY: a writable int of the given size.
        if unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_ERROR, (&mut e as *mut c_int).cast(), &mut len) } < 0 {
            return -1;
        }
        match e {
            0 => 1,
            libc::EINPROGRESS | libc::EINTR => 0,
            _ => {
                set_errno(e);
                -1
            }
        }
    }

    /// Internal: frees evutil's globals (evrs has none to free).
    fn evutil_free_globals_() {}

    /// Internal: frees the secure generator's globals (the kernel's has none).
    fn evutil_free_secure_rng_globals_() {}

    /// Internal: sets up evutil's locks after threading is enabled (none needed): 0.
    fn evutil_global_setup_locks_(enable_locks: c_int) -> c_int {
        let _ = enable_locks;
        0
    }

    /// Internal: sets up the secure generator's lock (none needed): 0.
    fn evutil_secure_rng_global_setup_locks_(enable_locks: c_int) -> c_int {
        let _ = enable_locks;
        0
    }

    /// Internal: `getenv`, but NULL in a setuid or setgid process.
    fn evutil_getenv_(name: *const c_char) -> *const c_char {
        if name.is_null() {
            return std::ptr::null();
        }
        // SAFETY: id queries, and `getenv` on a C string.
        unsafe {
            if libc::getuid() != libc::geteuid() || libc::getgid() != libc::getegid() {
                return std::ptr::null();
            }
            libc::getenv(name)
        }
    }
}

/// The C string at `p` as bytes (empty for NULL).
///
/// # Safety
/// `p` is null or a NUL-terminated string.
pub unsafe fn cbytes<'a>(p: *const c_char) -> &'a [u8] {
    if p.is_null() {
        return &[];
    }
    // SAFETY: per the contract.
    unsafe { CStr::from_ptr(p) }.to_bytes()
}
