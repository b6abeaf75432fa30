//! Name resolution: `evutil_getaddrinfo` over the system resolver, with results copied into
//! memory from the library's allocator (so `evutil_freeaddrinfo` frees them through the
//! same hooks), and libevent's error strings.
//!
//! `struct evutil_addrinfo` is the system's `struct addrinfo` on Linux, as in libevent. Each
//! copied node is one allocation holding the node and its address, with the canonical name
//! in a second one: the shape glibc's own `freeaddrinfo` expects, so a program that frees
//! the list with it (and never replaced the allocator) does not crash either.

use crate::ffi::capi;
use crate::mm;
use std::mem::size_of;
use std::os::raw::{c_char, c_int};
use std::ptr;

/// `EVUTIL_EAI_CANCEL`: libevent's own code for a cancelled asynchronous lookup.
pub const EAI_CANCEL: c_int = -90001;
/// glibc's `EAI_ADDRFAMILY` (a GNU extension the libc crate does not name).
const EAI_ADDRFAMILY: c_int = -9;

/// Copies one system node (not its successors) into hook memory.
///
/// # Safety
/// `ai` points to a valid node from `getaddrinfo`.
unsafe fn copy_node(ai: *const libc::addrinfo) -> *mut libc::addrinfo {
    // SAFETY: per the contract; the new block holds the node then `ai_addrlen` bytes.
    unsafe {
        let alen = (*ai).ai_addrlen as usize;
        let node = mm::calloc(1, size_of::<libc::addrinfo>() + alen).cast::<libc::addrinfo>();
        if node.is_null() {
            return ptr::null_mut();
        }
        *node = libc::addrinfo {
            ai_flags: (*ai).ai_flags,
            ai_family: (*ai).ai_family,
            ai_socktype: (*ai).ai_socktype,
            ai_protocol: (*ai).ai_protocol,
            ai_addrlen: (*ai).ai_addrlen,
            ai_addr: ptr::null_mut(),
            ai_canonname: ptr::null_mut(),
            ai_next: ptr::null_mut(),
        };
        if !(*ai).ai_addr.is_null() && alen > 0 {
            let dst = node.add(1).cast::<u8>();
            ptr::copy_nonoverlapping((*ai).ai_addr.cast::<u8>(), dst, alen);
            (*node).ai_addr = dst.cast();
        }
        if !(*ai).ai_canonname.is_null() {
            let name = std::ffi::CStr::from_ptr((*ai).ai_canonname).to_bytes();
            (*node).ai_canonname = mm::strdup_bytes(name);
        }
        node
    }
}

/// Frees a list of copied nodes.
///
/// # Safety
/// `ai` is null or a list made by [`copy_node`].
unsafe fn free_list(mut ai: *mut libc::addrinfo) {
    while !ai.is_null() {
        // SAFETY: per the contract; each node and name came from the hooks.
        unsafe {
            let next = (*ai).ai_next;
            mm::free((*ai).ai_canonname.cast());
            mm::free(ai.cast());
            ai = next;
        }
    }
}

capi! {
    /// `getaddrinfo(3)` through the system resolver (`EVUTIL_AI_*` are the system's
    /// `AI_*` on Linux); the list is freed with `evutil_freeaddrinfo`. Returns 0 or an
    /// `EVUTIL_EAI_*` code (the system's `EAI_*`).
    fn evutil_getaddrinfo(node: *const c_char, service: *const c_char, hints: *const libc::addrinfo, res: *mut *mut libc::addrinfo) -> c_int {
        if res.is_null() {
            return libc::EAI_FAIL;
        }
        // SAFETY: C strings or NULL, hints NULL or readable, `res` writable, per the
        // contract; the system list is freed here after copying.
        unsafe {
            *res = ptr::null_mut();
            let mut h: libc::addrinfo = std::mem::zeroed();
            if hints.is_null() {
                h.ai_family = libc::AF_UNSPEC;
            } else {
                h.ai_flags = (*hints).ai_flags;
                h.ai_family = (*hints).ai_family;
                h.ai_socktype = (*hints).ai_socktype;
                h.ai_protocol = (*hints).ai_protocol;
            }
            let mut sys: *mut libc::addrinfo = ptr::null_mut();
            let err = libc::getaddrinfo(node, service, &h, &mut sys);
            if err != 0 {
                return err;
            }
            let mut head: *mut libc::addrinfo = ptr::null_mut();
            let mut tail: *mut *mut libc::addrinfo = &mut head;
            let mut cur = sys;
            while !cur.is_null() {
                let n = copy_node(cur);
                if n.is_null() {
                    libc::freeaddrinfo(sys);
                    free_list(head);
                    return libc::EAI_MEMORY;
                }
                *tail = n;
                tail = &mut (*n).ai_next;
                cur = (*cur).ai_next;
            }
            libc::freeaddrinfo(sys);
            *res = head;
        }
        0
    }

    /// Frees a list from `evutil_getaddrinfo`.
    fn evutil_freeaddrinfo(ai: *mut libc::addrinfo) {
        // SAFETY: a list from `evutil_getaddrinfo` per the contract.
        unsafe { free_list(ai) }
    }

    /// A message for an `EVUTIL_EAI_*` code: libevent's wording for 0, the eleven classic
    /// codes and `EVUTIL_EAI_CANCEL`; the system's for anything else.
    fn evutil_gai_strerror(err: c_int) -> *const c_char {
        let s: &'static std::ffi::CStr = match err {
            0 => c"No error",
            EAI_CANCEL => c"Request canceled",
            libc::EAI_BADFLAGS => c"invalid value for ai_flags",
            libc::EAI_NONAME => c"nodename nor servname provided, or not known",
            libc::EAI_AGAIN => c"temporary failure in name resolution",
            libc::EAI_FAIL => c"non-recoverable failure in name resolution",
            libc::EAI_NODATA => c"no address associated with nodename",
            libc::EAI_FAMILY => c"ai_family not supported",
            libc::EAI_SOCKTYPE => c"ai_socktype not supported",
            libc::EAI_SERVICE => c"servname not supported for ai_socktype",
            EAI_ADDRFAMILY => c"address family for nodename not supported",
            libc::EAI_MEMORY => c"memory allocation failure",
            libc::EAI_SYSTEM => c"system error",
            // SAFETY: glibc's messages are static strings.
            _ => return unsafe { libc::gai_strerror(err) },
        };
        s.as_ptr()
    }
}
