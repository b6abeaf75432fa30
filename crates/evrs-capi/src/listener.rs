//! `struct evconnlistener` (listener.h): a listening socket whose connections the loop
//! accepts and hands to a C callback, over evrs's [`Listener`].
//!
//! A C listener is a boxed [`CListener`]; the Rust accept closure holds its address and
//! reads the C callback and argument from it at each connection, so `evconnlistener_set_cb`
//! takes effect at once and a callback may free its own listener (nothing touches the box
//! after the C function returns). evrs pauses a listener that runs out of fds instead of
//! spinning (libevent spins); the error callback still runs, with `errno` set.

use crate::base::CBase;
use crate::ffi::capi;
use crate::log;
use evrs::{EventBase, Listener, ListenerFlags, PeerAddr, RawArg};
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::os::raw::{c_int, c_void};
use std::ptr;

/// `evconnlistener_cb`.
pub type ListenerCb =
    unsafe extern "C" fn(*mut CListener, c_int, *mut libc::sockaddr, c_int, *mut c_void);
/// `evconnlistener_errorcb`.
pub type ListenerErrCb = unsafe extern "C" fn(*mut CListener, *mut c_void);

/// What a C `struct evconnlistener *` points to.
pub struct CListener {
    /// `None` only while the listener is being made.
    l: Option<Listener>,
    base: *mut CBase,
    cb: Option<ListenerCb>,
    errcb: Option<ListenerErrCb>,
    arg: *mut c_void,
}

/// A peer address as a `sockaddr` C can read.
fn sockaddr_of(a: &PeerAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let sa = match a {
        PeerAddr::Inet(inet) => Some(socket2::SockAddr::from(*inet)),
        PeerAddr::Unix(Some(p)) => socket2::SockAddr::unix(p).ok(),
        _ => None,
    };
    match sa {
        Some(sa) => {
            let n = (sa.len() as usize).min(std::mem::size_of::<libc::sockaddr_storage>());
            // SAFETY: both regions hold at least `n` bytes and do not overlap.
            unsafe {
                ptr::copy_nonoverlapping(
                    sa.as_ptr().cast::<u8>(),
                    ptr::addr_of_mut!(ss).cast::<u8>(),
                    n,
                )
            };
            (ss, n as libc::socklen_t)
        }
        None => {
            ss.ss_family = match a {
                PeerAddr::Other(f) => *f,
                _ => libc::AF_UNIX as libc::sa_family_t,
            };
            (
                ss,
                std::mem::size_of::<libc::sa_family_t>() as libc::socklen_t,
            )
        }
    }
}

fn accept_cb(me: RawArg) -> impl FnMut(&mut EventBase, Listener, OwnedFd, PeerAddr) + 'static {
    move |b, _l, fd, peer| {
        let cl = me.as_ptr().cast::<CListener>();
        let (mut ss, len) = sockaddr_of(&peer);
        // SAFETY: the listener is live while its callback runs (freeing it drops this
        // closure only after it returns); nothing below touches `cl` after the C call.
        unsafe {
            let (cb, arg, cbase) = ((*cl).cb, (*cl).arg, (*cl).base);
            let Some(cb) = cb else { return };
            // As libevent, the callback runs without the base's lock.
            (*cbase).call_out(b, ptr::null(), || {
                cb(
                    cl,
                    fd.into_raw_fd(),
                    ptr::addr_of_mut!(ss).cast(),
                    len as c_int,
                    arg,
                )
            });
        }
    }
}

fn error_cb(me: RawArg) -> impl FnMut(&mut EventBase, Listener, std::io::Error) + 'static {
    move |b, _l, err| {
        let cl = me.as_ptr().cast::<CListener>();
        // SAFETY: as in `accept_cb`.
        unsafe {
            let (cb, arg, cbase) = ((*cl).errcb, (*cl).arg, (*cl).base);
            let Some(cb) = cb else {
                log::warn(&format!("evconnlistener: accept failed: {err} (pausing)"));
                return;
            };
            *libc::__errno_location() = err.raw_os_error().unwrap_or(libc::EIO);
            (*cbase).call_out(b, ptr::null(), || cb(cl, arg));
        }
    }
}

/// Wraps a listening (or to-be-listening) socket; closes `fd` on failure.
///
/// # Safety
/// `base` is live; `fd` an open socket the listener may own.
unsafe fn wrap(
    base: *mut CBase,
    cb: Option<ListenerCb>,
    arg: *mut c_void,
    flags: u32,
    backlog: c_int,
    fd: c_int,
) -> *mut CListener {
    let cl = Box::into_raw(Box::new(CListener {
        l: None,
        base,
        cb,
        errcb: None,
        arg,
    }));
    let me = RawArg::from_ptr(cl.cast());
    // libevent watches whatever socket it is given with backlog 0 (and reports the failed
    // accepts); the program's bits are LEV_OPT_* ones only.
    let flags =
        ListenerFlags::from_bits_truncate(flags as u16) | ListenerFlags::UNCHECKED_BACKLOG_0;
    // SAFETY: the caller gives `fd` to the listener; the base is live.
    let r = unsafe {
        CBase::with(base, |b| {
            let l = b.listener_from_fd(OwnedFd::from_raw_fd(fd), flags, backlog, accept_cb(me))?;
            b.listener_set_error_cb(l, error_cb(me))?;
            Ok::<_, std::io::Error>(l)
        })
    };
    match r {
        Ok(l) => {
            // SAFETY: `cl` is the box made above, not yet shared with C.
            unsafe { (*cl).l = Some(l) };
            cl
        }
        Err(e) => {
            log::warn(&format!("evconnlistener_new: {e}"));
            // SAFETY: made above; the failed listener holds no pointer to it any more.
            drop(unsafe { Box::from_raw(cl) });
            ptr::null_mut()
        }
    }
}

/// Runs `f` on the listener's base and handle.
///
/// # Safety
/// `cl` is null or a live listener of this library.
unsafe fn with<R>(cl: *mut CListener, err: R, f: impl FnOnce(&mut EventBase, Listener) -> R) -> R {
    if cl.is_null() {
        return err;
    }
    // SAFETY: per the contract.
    unsafe {
        let (Some(l), base) = ((*cl).l, (*cl).base) else {
            return err;
        };
        CBase::with(base, |b| f(b, l))
    }
}

capi! {
    /// A listener on a socket the caller made (bound; `backlog` 0: already listening).
    fn evconnlistener_new(base: *mut CBase, cb: Option<ListenerCb>, arg: *mut c_void, flags: u32, backlog: c_int, fd: c_int) -> *mut CListener {
        if base.is_null() || fd < 0 {
            log::warn("evconnlistener_new: NULL base or bad fd");
            return ptr::null_mut();
        }
        // SAFETY: a live base; the fd becomes the listener's.
        unsafe { wrap(base, cb, arg, flags, backlog, fd) }
    }

    /// A listener bound to `sa` (TCP), with the `LEV_OPT_*` socket options applied.
    fn evconnlistener_new_bind(base: *mut CBase, cb: Option<ListenerCb>, arg: *mut c_void, flags: u32, backlog: c_int, sa: *const libc::sockaddr, socklen: c_int) -> *mut CListener {
        if base.is_null() || sa.is_null() || socklen <= 0 {
            log::warn("evconnlistener_new_bind: NULL base or address");
            return ptr::null_mut();
        }
        let f = ListenerFlags::from_bits_truncate(flags as u16);
        // SAFETY: `sa` holds `socklen` readable bytes; the new fd is ours until wrapped.
        unsafe {
            let family = c_int::from((*sa).sa_family);
            let fd = libc::socket(family, libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0);
            if fd < 0 {
                log::warn(&format!("evconnlistener_new_bind: socket: {}", std::io::Error::last_os_error()));
                return ptr::null_mut();
            }
            let one: c_int = 1;
            let on = (&one as *const c_int).cast::<c_void>();
            let sz = std::mem::size_of::<c_int>() as libc::socklen_t;
            libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, on, sz);
            if f.contains(ListenerFlags::REUSEABLE) {
                libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, on, sz);
            }
            if f.contains(ListenerFlags::REUSEABLE_PORT) {
                libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, on, sz);
            }
            if f.contains(ListenerFlags::BIND_IPV6ONLY) && family == libc::AF_INET6 {
                libc::setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, on, sz);
            }
            if f.contains(ListenerFlags::DEFERRED_ACCEPT) {
                libc::setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_DEFER_ACCEPT, on, sz);
            }
            if libc::bind(fd, sa, socklen as libc::socklen_t) < 0 {
                log::warn(&format!("evconnlistener_new_bind: bind: {}", std::io::Error::last_os_error()));
                libc::close(fd);
                return ptr::null_mut();
            }
            // A bound socket is not listening yet: backlog 0 means "already listening".
            let backlog = if backlog == 0 { -1 } else { backlog };
            wrap(base, cb, arg, flags, backlog, fd)
        }
    }

    /// Frees a listener (its socket is closed with `LEV_OPT_CLOSE_ON_FREE`).
    fn evconnlistener_free(cl: *mut CListener) {
        if cl.is_null() {
            return;
        }
        // SAFETY: a live listener; not used after this.
        unsafe {
            let kept = with(cl, None, |b, l| b.listener_free(l).ok().flatten());
            if let Some(fd) = kept {
                // Without CLOSE_ON_FREE the socket stays open: it is the program's.
                let _ = fd.into_raw_fd();
            }
            drop(Box::from_raw(cl));
        }
    }

    /// Starts accepting again.
    fn evconnlistener_enable(cl: *mut CListener) -> c_int {
        // SAFETY: a live listener.
        unsafe { with(cl, -1, |b, l| if b.listener_enable(l).is_ok() { 0 } else { -1 }) }
    }

    /// Stops accepting (the socket stays open).
    fn evconnlistener_disable(cl: *mut CListener) -> c_int {
        // SAFETY: a live listener.
        unsafe { with(cl, -1, |b, l| if b.listener_disable(l).is_ok() { 0 } else { -1 }) }
    }

    /// The listener's base.
    fn evconnlistener_get_base(cl: *mut CListener) -> *mut CBase {
        // SAFETY: a live listener.
        if cl.is_null() { ptr::null_mut() } else { unsafe { (*cl).base } }
    }

    /// The listening socket.
    fn evconnlistener_get_fd(cl: *mut CListener) -> c_int {
        // SAFETY: a live listener.
        unsafe { with(cl, -1, |b, l| b.listener_fd(l).unwrap_or(-1)) }
    }

    /// Replaces the accept callback and its argument.
    fn evconnlistener_set_cb(cl: *mut CListener, cb: Option<ListenerCb>, arg: *mut c_void) {
        if !cl.is_null() {
            // SAFETY: a live listener.
            unsafe {
                (*cl).cb = cb;
                (*cl).arg = arg;
            }
        }
    }

    /// Sets the callback run when accepting fails (out of fds…), with `errno` set.
    fn evconnlistener_set_error_cb(cl: *mut CListener, errcb: Option<ListenerErrCb>) {
        if !cl.is_null() {
            // SAFETY: a live listener.
            unsafe { (*cl).errcb = errcb };
        }
    }
}
