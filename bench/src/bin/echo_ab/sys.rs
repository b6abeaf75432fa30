//! Clocks and the small syscall helpers the servers and the client share.

use super::*;
// ---------------------------------------------------------------------------------------
// Clocks and small syscall helpers.

pub(crate) fn clock(id: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(id, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

pub(crate) fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Whether `fd` is readable right now.
pub(crate) fn readable_now(fd: RawFd) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd; timeout 0.
    unsafe { libc::poll(&mut p, 1, 0) == 1 }
}

/// Accepts one connection (non-blocking, close-on-exec), `None` when there is none.
pub(crate) fn accept(lfd: RawFd) -> io::Result<Option<RawFd>> {
    // SAFETY: plain accept4 with no address out-parameters.
    let fd = unsafe {
        libc::accept4(
            lfd,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        )
    };
    if fd >= 0 {
        return Ok(Some(fd));
    }
    let e = io::Error::last_os_error();
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
        // Aborted before accepted: not ours to count.
        _ if e.raw_os_error() == Some(libc::ECONNABORTED) => Ok(None),
        _ => Err(e),
    }
}

/// A non-blocking listener on 127.0.0.1:0 with a deep backlog (the client connects faster
/// than a server that is not running yet accepts).
pub(crate) fn listener() -> io::Result<TcpListener> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    l.set_nonblocking(true)?;
    // SAFETY: re-listening on a listening socket only changes its backlog.
    cvt(unsafe { libc::listen(l.as_raw_fd(), 4096) })?;
    Ok(l)
}

pub(crate) fn epoll_add(ep: RawFd, fd: RawFd, data: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: data,
    };
    // SAFETY: `ev` is valid; the kernel copies it.
    cvt(unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) }).map(drop)
}

pub(crate) fn epoll_new() -> io::Result<OwnedFd> {
    // SAFETY: epoll_create1 returns a new fd or -1.
    let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
    // SAFETY: `fd` is ours.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
