//! Socket bufferevents: making them, connecting (by address or host name), their fd, and
//! the 1.x compatibility functions (`bufferevent_new`, `bufferevent_settimeout`,
//! `bufferevent_base_set`).

use super::api::{free, set_timeouts};
use super::{options, pv, refresh, run_cb, with, wrap, CBev, DataCb, EventCb, Kind, Which};
use crate::base::{self, CBase};
use crate::ffi::capi;
use crate::log;
use evrs::bufferevent::BevEvents;
use std::ffi::CStr;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::raw::{c_char, c_int, c_void};
use std::ptr;
use std::time::Duration;

/// A socket bufferevent on `base` (NULL: the current base).
///
/// # Safety
/// `base` is null or live.
unsafe fn socket_new(base: *mut CBase, fd: c_int, opts: c_int) -> *mut CBev {
    let base = base::or_current(base);
    if !base::is_live(base) {
        log::warn("bufferevent_socket_new: no event base");
        return ptr::null_mut();
    }
    // SAFETY: a live base.
    let h = unsafe { CBase::with(base, |b| b.bufferevent_socket(fd, options(opts))) };
    match h {
        // SAFETY: a live base and a fresh bufferevent of it.
        Ok(h) => unsafe { wrap(base, h, Kind::Socket, opts) },
        Err(e) => {
            log::warn(&format!("bufferevent_socket_new: {e}"));
            ptr::null_mut()
        }
    }
}

/// An IPv4 or IPv6 `sockaddr` as a Rust address.
///
/// # Safety
/// `sa` is null or holds `len` readable bytes.
unsafe fn addr_of(sa: *const libc::sockaddr, len: c_int) -> Option<SocketAddr> {
    if sa.is_null() {
        return None;
    }
    // SAFETY: per the contract, checked against the family's size.
    unsafe {
        match c_int::from((*sa).sa_family) {
            libc::AF_INET if len as usize >= std::mem::size_of::<libc::sockaddr_in>() => {
                let s = &*sa.cast::<libc::sockaddr_in>();
                Some(SocketAddr::V4(SocketAddrV4::new(
                    u32::from_be(s.sin_addr.s_addr).into(),
                    u16::from_be(s.sin_port),
                )))
            }
            libc::AF_INET6 if len as usize >= std::mem::size_of::<libc::sockaddr_in6>() => {
                let s = &*sa.cast::<libc::sockaddr_in6>();
                Some(SocketAddr::V6(SocketAddrV6::new(
                    s.sin6_addr.s6_addr.into(),
                    u16::from_be(s.sin6_port),
                    s.sin6_flowinfo,
                    s.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }
}

/// Connects to `addr`.
///
/// # Safety
/// `p` is null or live.
unsafe fn connect(p: *mut CBev, addr: SocketAddr) -> c_int {
    // SAFETY: per the contract.
    unsafe {
        let r = with(p, "bufferevent_socket_connect", -1, |b, h| {
            match b.bev_connect(h, addr) {
                Ok(()) => 0,
                Err(e) => {
                    log::warn(&format!("bufferevent_socket_connect: {e}"));
                    -1
                }
            }
        });
        if r == 0 {
            pv(p).connecting = true;
            refresh(p);
        }
        r
    }
}

capi! {
    /// A bufferevent on socket `fd` (-1: one `bufferevent_socket_connect` will make).
    fn bufferevent_socket_new(base: *mut CBase, fd: c_int, options: c_int) -> *mut CBev {
        // SAFETY: null (the current base) or a live base.
        unsafe { socket_new(base, fd, options) }
    }

    /// Connects to an IPv4 or IPv6 address (making the socket if there is none); the event
    /// callback gets `BEV_EVENT_CONNECTED` or `BEV_EVENT_ERROR`. Other families (and a NULL
    /// address) are not supported by evrs: -1.
    fn bufferevent_socket_connect(p: *mut CBev, sa: *const libc::sockaddr, socklen: c_int) -> c_int {
        // SAFETY: `sa` holds `socklen` bytes.
        let Some(addr) = (unsafe { addr_of(sa, socklen) }) else {
            log::warn("bufferevent_socket_connect: evrs connects to IPv4 and IPv6 addresses only");
            return -1;
        };
        // SAFETY: null or live.
        unsafe { connect(p, addr) }
    }

    /// Resolves `hostname` with the system resolver (blocking, as libevent does without an
    /// evdns base) and connects to the first address. A failed lookup: the event callback
    /// gets `BEV_EVENT_ERROR` and `bufferevent_socket_get_dns_error` the `EVUTIL_EAI_*`
    /// code; the call returns 0.
    fn bufferevent_socket_connect_hostname(p: *mut CBev, evdns_base: *mut c_void, family: c_int, hostname: *const c_char, port: c_int) -> c_int {
        let _ = evdns_base;
        if p.is_null() || hostname.is_null() || !(1..=65535).contains(&port)
            || ![libc::AF_INET, libc::AF_INET6, libc::AF_UNSPEC].contains(&family)
        {
            return -1;
        }
        // SAFETY: a NUL-terminated name; a live bufferevent.
        unsafe {
            let mut hints: libc::addrinfo = std::mem::zeroed();
            hints.ai_family = family;
            hints.ai_socktype = libc::SOCK_STREAM;
            hints.ai_protocol = libc::IPPROTO_TCP;
            let service = std::ffi::CString::new(port.to_string()).unwrap_or_default();
            let mut res: *mut libc::addrinfo = ptr::null_mut();
            let err = libc::getaddrinfo(hostname, service.as_ptr(), &hints, &mut res);
            let mut addr = None;
            let mut ai = res;
            while addr.is_none() && !ai.is_null() {
                addr = addr_of((*ai).ai_addr, (*ai).ai_addrlen as c_int);
                ai = (*ai).ai_next;
            }
            if !res.is_null() {
                libc::freeaddrinfo(res);
            }
            pv(p).dns_error = err;
            match addr {
                Some(a) if err == 0 => {
                    if connect(p, a) < 0 {
                        run_cb(p, Which::Event(BevEvents::ERROR.bits() as i16), false);
                    }
                }
                _ => {
                    if err == 0 {
                        pv(p).dns_error = libc::EAI_NONAME;
                    }
                    let name = CStr::from_ptr(hostname).to_string_lossy();
                    log::debug(&format!("bufferevent_socket_connect_hostname: {name}: lookup failed"));
                    run_cb(p, Which::Event(BevEvents::ERROR.bits() as i16), false);
                }
            }
        }
        0
    }

    /// The `EVUTIL_EAI_*` code of the last failed host-name lookup (0: none).
    fn bufferevent_socket_get_dns_error(p: *mut CBev) -> c_int {
        // SAFETY: a live bufferevent.
        if p.is_null() { -1 } else { unsafe { pv(p).dns_error } }
    }

    /// The socket (-1: none; a filter's is its underlying's).
    fn bufferevent_getfd(p: *mut CBev) -> c_int {
        if p.is_null() {
            return -1;
        }
        // SAFETY: a live bufferevent (and its underlying, if a filter).
        unsafe {
            match pv(p).kind {
                Kind::Socket => with(p, "bufferevent_getfd", -1, |b, h| b.bev_fd(h).unwrap_or(-1)),
                Kind::Filter if !pv(p).under.is_null() => bufferevent_getfd(pv(p).under),
                _ => -1,
            }
        }
    }

    /// Replaces the socket (the old one is not closed).
    fn bufferevent_setfd(p: *mut CBev, fd: c_int) -> c_int {
        if p.is_null() {
            return -1;
        }
        // SAFETY: a live bufferevent.
        unsafe {
            match pv(p).kind {
                Kind::Socket => {}
                Kind::Filter if !pv(p).under.is_null() => return bufferevent_setfd(pv(p).under, fd),
                _ => return -1,
            }
            let r = with(p, "bufferevent_setfd", -1, |b, h| if b.bev_set_fd(h, fd).is_ok() { 0 } else { -1 });
            refresh(p);
            r
        }
    }

    /// 1.x: a socket bufferevent on the current base with its callbacks.
    fn bufferevent_new(fd: c_int, readcb: Option<DataCb>, writecb: Option<DataCb>, errorcb: Option<EventCb>, cbarg: *mut c_void) -> *mut CBev {
        // SAFETY: the current base, if any.
        let p = unsafe { socket_new(ptr::null_mut(), fd, 0) };
        if !p.is_null() {
            // SAFETY: just made.
            unsafe { super::api::bufferevent_setcb(p, readcb, writecb, errorcb, cbarg) };
        }
        p
    }

    /// 1.x: read and write timeouts in seconds (0: none).
    fn bufferevent_settimeout(p: *mut CBev, timeout_read: c_int, timeout_write: c_int) {
        let d = |s: c_int| (s > 0).then(|| Duration::from_secs(s as u64));
        // SAFETY: null or live.
        unsafe { set_timeouts(p, d(timeout_read), d(timeout_write)) };
    }

    /// Moves a socket bufferevent to `base`: evrs remakes it there (same fd, options,
    /// callbacks, watermarks, timeouts, enabled directions and pending data). -1 for pairs
    /// and filters, as in libevent.
    fn bufferevent_base_set(base: *mut CBase, p: *mut CBev) -> c_int {
        if p.is_null() || !base::is_live(base) {
            return -1;
        }
        // SAFETY: a live bufferevent and base.
        unsafe {
            let v = pv(p);
            if v.kind != Kind::Socket {
                return -1;
            }
            if v.base == base {
                return 0;
            }
            move_to(base, p)
        }
    }
}

/// `bufferevent_base_set`'s work for another base.
///
/// # Safety
/// `p` is a live socket bufferevent; `base` a live base other than its own.
unsafe fn move_to(base: *mut CBase, p: *mut CBev) -> c_int {
    use evrs::buffer::EvBuffer;
    // SAFETY: per the contract.
    unsafe {
        let v = pv(p);
        let opts = options(v.opts);
        let old = with(p, "bufferevent_base_set", None, |b, h| {
            let fd = b.bev_fd(h).ok()?;
            let en = b.bev_get_enabled(h).ok()?;
            let rwm = b.bev_getwatermark(h, evrs::What::READ).ok()?;
            let wwm = b.bev_getwatermark(h, evrs::What::WRITE).ok()?;
            let mut i = EvBuffer::new();
            let mut o = EvBuffer::new();
            i.add_buffer(&mut *b.bev_input(h).ok()?).ok()?;
            o.add_buffer(&mut *b.bev_output(h).ok()?).ok()?;
            Some((fd, en, rwm, wwm, i, o))
        });
        let Some((fd, en, rwm, wwm, mut i, mut o)) = old else {
            return -1;
        };
        let hd = &(*p).head;
        let to = |tv: &libc::timeval| {
            let d = base::duration(tv);
            (!d.is_zero()).then_some(d)
        };
        let (tr, tw) = (to(&hd.timeout_read), to(&hd.timeout_write));
        let made = CBase::with(base, |b| {
            let h = b.bufferevent_socket(fd, opts).ok()?;
            let _ = b.bev_set_handler(h, super::CHandler(p));
            let _ = b.bev_setwatermark(h, evrs::What::READ, rwm.0, rwm.1);
            let _ = b.bev_setwatermark(h, evrs::What::WRITE, wwm.0, wwm.1);
            let _ = b.bev_set_timeouts(h, tr, tw);
            b.bev_input(h).ok()?.add_buffer(&mut i).ok()?;
            b.bev_write_buffer(h, &mut o).ok()?;
            let _ = b.bev_disable(h, evrs::What::READ | evrs::What::WRITE);
            let _ = b.bev_enable(h, en);
            Some(h)
        });
        let Some(h) = made else { return -1 };
        // The old one must not close the fd the new one uses.
        with(p, "bufferevent_base_set", (), |b, old| {
            let _ = b.bev_set_fd(old, -1);
            let _ = b.bev_free(old);
        });
        let v = pv(p);
        v.base = base;
        v.h = h;
        let hd = &mut (*p).head;
        hd.ev_base = base;
        hd.ev_read.base = base;
        hd.ev_write.base = base;
        refresh(p);
        0
    }
}

/// Frees a bufferevent (used by filters' `CLOSE_ON_FREE`).
///
/// # Safety
/// `p` is a live C bufferevent.
pub(crate) unsafe fn free_now(p: *mut CBev) {
    // SAFETY: forwarded.
    unsafe { free(p) }
}
