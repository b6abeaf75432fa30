//! Making, freeing, adding, removing and moving bytes; space, pullup, freezing, flags and
//! locks.

use super::{free, with, with2, with_inner, CBuffer, First};
use crate::ffi::capi;
use crate::log;
use evrs::buffer::{BufferFlags, End, Error};
use std::os::raw::{c_char, c_int, c_void};
use std::ptr;

extern "C" {
    /// `csrc/varargs.c`: formats into a `malloc`'ed string (NULL on failure).
    fn evrs_c_vformat(fmt: *const c_char, ap: *mut c_void, len: *mut usize) -> *mut c_char;
}

/// 0 for success, -1 for an error.
pub(crate) fn rc<T>(r: Result<T, Error>) -> c_int {
    if r.is_ok() {
        0
    } else {
        -1
    }
}

/// `len` bytes at `data` as a slice; an empty one for `len == 0`, `None` (after a warning)
/// for NULL data or a length no object can have.
///
/// # Safety
/// Unless null, `data` points to `len` readable bytes.
pub(crate) unsafe fn bytes<'a>(data: *const c_void, len: usize, name: &str) -> Option<&'a [u8]> {
    if len == 0 {
        return Some(&[]);
    }
    if data.is_null() || len > isize::MAX as usize {
        log::warn(&format!("{name}: NULL data or impossible length {len}"));
        return None;
    }
    // SAFETY: per the contract.
    Some(unsafe { std::slice::from_raw_parts(data.cast(), len) })
}

/// `len` writable bytes at `data`, as for [`bytes`].
///
/// # Safety
/// Unless null, `data` points to `len` writable bytes.
pub(crate) unsafe fn bytes_mut<'a>(
    data: *mut c_void,
    len: usize,
    name: &str,
) -> Option<&'a mut [u8]> {
    if len == 0 {
        return Some(&mut []);
    }
    if data.is_null() || len > isize::MAX as usize {
        log::warn(&format!("{name}: NULL data or impossible length {len}"));
        return None;
    }
    // SAFETY: per the contract.
    Some(unsafe { std::slice::from_raw_parts_mut(data.cast(), len) })
}

fn end(at_front: c_int) -> End {
    if at_front != 0 {
        End::Start
    } else {
        End::End
    }
}

capi! {
    /// A new, empty buffer.
    fn evbuffer_new() -> *mut CBuffer {
        CBuffer::boxed()
    }

    /// Frees a buffer and drops its content (running reference cleanups). Freed from its
    /// own callback, it goes once the running calls return.
    fn evbuffer_free(buf: *mut CBuffer) {
        if buf.is_null() {
            log::warn("evbuffer_free: NULL buffer");
            return;
        }
        // SAFETY: a live buffer, not used by C after this.
        unsafe { free(buf) }
    }

    /// Bytes stored (0 for NULL).
    fn evbuffer_get_length(buf: *const CBuffer) -> usize {
        // SAFETY: null or a live buffer.
        unsafe { with(buf.cast_mut(), "evbuffer_get_length", |b| b.len()) }
    }

    /// Bytes readable in the first chunk without a pullup.
    fn evbuffer_get_contiguous_space(buf: *const CBuffer) -> usize {
        // SAFETY: null or a live buffer.
        unsafe { with(buf.cast_mut(), "evbuffer_get_contiguous_space", |b| b.contiguous_space()) }
    }

    /// Appends a copy of `datlen` bytes: 0, or -1 (end frozen, no data).
    fn evbuffer_add(buf: *mut CBuffer, data: *const c_void, datlen: usize) -> c_int {
        // SAFETY: `data` holds `datlen` bytes per the C contract.
        let Some(d) = (unsafe { bytes(data, datlen, "evbuffer_add") }) else { return -1 };
        // SAFETY: null or a live buffer.
        unsafe { with(buf, "evbuffer_add", |b| rc(b.add(d))) }
    }

    /// Appends copies of `n_vec` extents, one add each; returns the bytes added (stops at
    /// the first that fails).
    fn evbuffer_add_iovec(buf: *mut CBuffer, vec: *const libc::iovec, n_vec: c_int) -> usize {
        if n_vec <= 0 {
            return 0;
        }
        if vec.is_null() {
            log::warn("evbuffer_add_iovec: NULL vector");
            return 0;
        }
        let mut total = 0usize;
        for i in 0..n_vec as usize {
            // SAFETY: `vec` holds `n_vec` iovecs.
            let v = unsafe { &*vec.add(i) };
            // SAFETY: each extent is readable per the C contract.
            let Some(d) = (unsafe { bytes(v.iov_base, v.iov_len, "evbuffer_add_iovec") }) else { break };
            // SAFETY: null or a live buffer.
            if unsafe { with(buf, "evbuffer_add_iovec", |b| rc(b.add(d))) } != 0 {
                break;
            }
            total += d.len();
        }
        total
    }

    /// Moves up to `datlen` bytes from the front into `data`; the count, or -1.
    fn evbuffer_remove(buf: *mut CBuffer, data: *mut c_void, datlen: usize) -> c_int {
        // SAFETY: null or a live buffer; `data` holds `datlen` bytes (only the copied
        // prefix is made a slice).
        unsafe {
            with(buf, "evbuffer_remove", |b| {
                let n = datlen.min(b.len()).min(c_int::MAX as usize);
                let Some(out) = bytes_mut(data, n, "evbuffer_remove") else { return -1 };
                match b.remove(out) {
                    Ok(n) => n as c_int,
                    Err(_) => -1,
                }
            })
        }
    }

    /// Copies up to `datlen` bytes from the front without removing them; the count, or -1
    /// (a frozen start, even though nothing would be removed: libevent's rule).
    fn evbuffer_copyout(buf: *mut CBuffer, data_out: *mut c_void, datlen: usize) -> isize {
        // SAFETY: as `evbuffer_remove`.
        unsafe {
            with(buf, "evbuffer_copyout", |b| {
                let n = datlen.min(b.len());
                let Some(out) = bytes_mut(data_out, n, "evbuffer_copyout") else { return -1 };
                b.copyout(out).map_or(-1, |n| n as isize)
            })
        }
    }

    /// Discards `len` bytes from the front (all if fewer): 0, or -1 (start frozen).
    fn evbuffer_drain(buf: *mut CBuffer, len: usize) -> c_int {
        // SAFETY: null or a live buffer.
        unsafe { with(buf, "evbuffer_drain", |b| rc(b.drain(len))) }
    }

    /// Inserts a copy of `size` bytes at the front: 0, or -1 (start frozen, no data).
    fn evbuffer_prepend(buf: *mut CBuffer, data: *const c_void, size: usize) -> c_int {
        // SAFETY: `data` holds `size` bytes per the C contract.
        let Some(d) = (unsafe { bytes(data, size, "evbuffer_prepend") }) else { return -1 };
        // SAFETY: null or a live buffer.
        unsafe { with(buf, "evbuffer_prepend", |b| rc(b.prepend(d))) }
    }

    /// Moves all of `inbuf` to the end of `outbuf` without copying: 0 (also for an empty
    /// source or the same buffer), or -1 (frozen). `inbuf`'s callbacks run first.
    fn evbuffer_add_buffer(outbuf: *mut CBuffer, inbuf: *mut CBuffer) -> c_int {
        if outbuf == inbuf {
            return if outbuf.is_null() { -1 } else { 0 };
        }
        // SAFETY: null or live, distinct buffers.
        unsafe { with2(outbuf, inbuf, "evbuffer_add_buffer", |o, i| (rc(o.add_buffer(i)), First::B)) }
    }

    /// Moves all of `src` to the front of `dst`: 0 (also for an empty source or the same
    /// buffer), or -1 (a start frozen). `src`'s callbacks run first.
    fn evbuffer_prepend_buffer(dst: *mut CBuffer, src: *mut CBuffer) -> c_int {
        if dst == src {
            return if dst.is_null() { -1 } else { 0 };
        }
        // SAFETY: null or live, distinct buffers.
        unsafe {
            with2(dst, src, "evbuffer_prepend_buffer", |d, s| {
                if s.is_empty() {
                    return (0, First::B);
                }
                (rc(d.prepend_buffer(s)), First::B)
            })
        }
    }

    /// Moves up to `datlen` bytes from `src` to the end of `dst`; the count, or -1
    /// (frozen). 0 for `datlen` 0 or the same buffer.
    fn evbuffer_remove_buffer(src: *mut CBuffer, dst: *mut CBuffer, datlen: usize) -> c_int {
        if src == dst {
            return if src.is_null() { -1 } else { 0 };
        }
        // SAFETY: null or live, distinct buffers.
        unsafe {
            with2(src, dst, "evbuffer_remove_buffer", |s, d| {
                // Moving everything is an add_buffer (source first); a part, destination first.
                let first = if datlen >= s.len() { First::A } else { First::B };
                let n = datlen.min(c_int::MAX as usize);
                (s.remove_buffer(d, n).map_or(-1, |n| n as c_int), first)
            })
        }
    }

    /// Appends `inbuf`'s content to `outbuf` by reference, leaving `inbuf` as it is: 0, or
    /// -1 (end frozen, the same buffer, or a source holding file data or content it got by
    /// reference from another buffer, as libevent).
    fn evbuffer_add_buffer_reference(outbuf: *mut CBuffer, inbuf: *mut CBuffer) -> c_int {
        if outbuf == inbuf {
            // SAFETY: null or a live buffer.
            return unsafe { with(inbuf, "evbuffer_add_buffer_reference", |b| if b.is_empty() { 0 } else { -1 }) };
        }
        // SAFETY: null or live, distinct buffers.
        unsafe {
            with2(outbuf, inbuf, "evbuffer_add_buffer_reference", |o, i| {
                if i.is_empty() {
                    return (0, First::A);
                }
                if i.has_file_data() || i.has_buffer_references() {
                    return (-1, First::A);
                }
                (rc(o.add_buffer_reference(i)), First::A)
            })
        }
    }

    /// Makes room for `datlen` more bytes without further allocation: 0, or -1.
    fn evbuffer_expand(buf: *mut CBuffer, datlen: usize) -> c_int {
        // SAFETY: null or a live buffer.
        unsafe { with(buf, "evbuffer_expand", |b| rc(b.expand(datlen))) }
    }

    /// Exposes at least `size` writable bytes in at most `n_vecs` extents, each the whole
    /// free space of its chain as in libevent (see `EvBuffer::reserve_extents`); the number
    /// used, or -1.
    fn evbuffer_reserve_space(buf: *mut CBuffer, size: isize, vec: *mut libc::iovec, n_vecs: c_int) -> c_int {
        if n_vecs < 1 || vec.is_null() {
            return -1;
        }
        let Ok(size) = usize::try_from(size) else {
            log::warn("evbuffer_reserve_space: negative size");
            return -1;
        };
        // SAFETY: null or a live buffer; `vec` holds `n_vecs` iovecs.
        unsafe {
            with_inner(buf, "evbuffer_reserve_space", |b, inner| {
                inner.reserved.clear();
                let Ok(parts) = b.reserve_extents(size, n_vecs as usize) else { return -1 };
                for (i, p) in parts.into_iter().enumerate() {
                    let v = &mut *vec.add(i);
                    v.iov_base = p.as_mut_ptr().cast();
                    v.iov_len = p.len();
                    inner.reserved.push((v.iov_base as usize, v.iov_len));
                }
                inner.reserved.len() as c_int
            })
        }
    }

    /// Adds what was written into reserved space: each extent must start where
    /// `evbuffer_reserve_space` put it and fit in it. 0, or -1 (nothing added).
    fn evbuffer_commit_space(buf: *mut CBuffer, vec: *const libc::iovec, n_vecs: c_int) -> c_int {
        let n = usize::try_from(n_vecs).unwrap_or(0);
        if n > 0 && vec.is_null() {
            return -1;
        }
        // SAFETY: null or a live buffer; `vec` holds `n_vecs` iovecs.
        unsafe {
            with_inner(buf, "evbuffer_commit_space", |b, inner| {
                if b.is_frozen(End::End) {
                    return -1;
                }
                if n == 0 {
                    return 0;
                }
                let mut lens = Vec::with_capacity(n);
                for i in 0..n {
                    let v = &*vec.add(i);
                    match inner.reserved.get(i) {
                        Some(&(base, len)) if base == v.iov_base as usize && v.iov_len <= len => lens.push(v.iov_len),
                        _ => return -1,
                    }
                }
                match b.commit_space(&lens) {
                    Ok(_) => {
                        inner.reserved.clear();
                        0
                    }
                    Err(_) => -1,
                }
            })
        }
    }

    /// Makes the first `size` bytes (-1: all) contiguous; a pointer to them, or NULL (0
    /// bytes, more than stored, no memory).
    fn evbuffer_pullup(buf: *mut CBuffer, size: isize) -> *mut u8 {
        // SAFETY: null or a live buffer. The bytes stay put until the next change, as C
        // expects.
        unsafe {
            with(buf, "evbuffer_pullup", |b| {
                let n = usize::try_from(size).unwrap_or(b.len());
                if n == 0 || n > b.len() {
                    return ptr::null_mut();
                }
                b.pullup(n).map_or(ptr::null_mut(), |s| s.as_ptr().cast_mut())
            })
        }
    }

    /// Forbids changes at the front (`at_front` non-zero) or the back. Returns 0.
    fn evbuffer_freeze(buf: *mut CBuffer, at_front: c_int) -> c_int {
        // SAFETY: null or a live buffer.
        unsafe { with(buf, "evbuffer_freeze", |b| { b.freeze(end(at_front)); 0 }) }
    }

    /// Allows changes at that end again. Returns 0.
    fn evbuffer_unfreeze(buf: *mut CBuffer, at_front: c_int) -> c_int {
        // SAFETY: null or a live buffer.
        unsafe { with(buf, "evbuffer_unfreeze", |b| { b.unfreeze(end(at_front)); 0 }) }
    }

    /// Sets `EVBUFFER_FLAG_*` bits (unknown bits are ignored). Returns 0.
    fn evbuffer_set_flags(buf: *mut CBuffer, flags: u64) -> c_int {
        // SAFETY: null or a live buffer.
        unsafe {
            with(buf, "evbuffer_set_flags", |b| {
                if flags & BufferFlags::DRAINS_TO_FD.bits() != 0 {
                    b.set_flags(BufferFlags::DRAINS_TO_FD);
                }
                0
            })
        }
    }

    /// Clears `EVBUFFER_FLAG_*` bits. Returns 0.
    fn evbuffer_clear_flags(buf: *mut CBuffer, flags: u64) -> c_int {
        // SAFETY: null or a live buffer.
        unsafe {
            with(buf, "evbuffer_clear_flags", |b| {
                if flags & BufferFlags::DRAINS_TO_FD.bits() != 0 {
                    b.clear_flags(BufferFlags::DRAINS_TO_FD);
                }
                0
            })
        }
    }

    /// Gives the buffer a recursive lock, taken by every call and by `evbuffer_lock`: `lock`
    /// (one of the program's, made through the installed lock callbacks, which take it), or
    /// NULL for one of evrs's own. -1 if it already has one, or if `lock` is given while no
    /// lock callbacks are installed.
    fn evbuffer_enable_locking(buf: *mut CBuffer, lock: *mut c_void) -> c_int {
        // SAFETY: null or a live buffer.
        let Some(b) = (unsafe { buf.as_ref() }) else {
            log::warn("evbuffer_enable_locking: NULL buffer");
            return -1;
        };
        let l = if lock.is_null() {
            super::lock::RLock::default()
        } else {
            match crate::thread::lock_fns() {
                Some(fns) => super::lock::RLock::program(lock, fns),
                None => {
                    log::warn("evbuffer_enable_locking: a lock was given, but no lock callbacks are installed");
                    return -1;
                }
            }
        };
        if b.lock.set(Box::new(l)).is_ok() { 0 } else { -1 }
    }

    /// Takes the buffer's lock: its own (`evbuffer_enable_locking`), or for a bufferevent's
    /// buffer on a threaded base, the base's (the bufferevent's lock); else nothing.
    fn evbuffer_lock(buf: *mut CBuffer) {
        // SAFETY: null or a live buffer.
        let Some(b) = (unsafe { buf.as_ref() }) else { return };
        if let Some(l) = b.lock.get() {
            l.lock();
        } else if let Some(l) = b.host_lock() {
            l.lock();
        }
    }

    /// Releases what `evbuffer_lock` took.
    fn evbuffer_unlock(buf: *mut CBuffer) {
        // SAFETY: null or a live buffer.
        let Some(b) = (unsafe { buf.as_ref() }) else { return };
        if let Some(l) = b.lock.get() {
            if !l.unlock() {
                log::warn("evbuffer_unlock: this thread does not hold the lock");
            }
        } else if let Some(l) = b.host_lock() {
            l.unlock_checked("evbuffer_unlock");
        }
    }

    /// Appends text formatted from a `va_list`; its length, or -1.
    fn evbuffer_add_vprintf(buf: *mut CBuffer, fmt: *const c_char, ap: *mut c_void) -> c_int {
        if fmt.is_null() {
            log::warn("evbuffer_add_vprintf: NULL format");
            return -1;
        }
        // SAFETY: null or a live buffer.
        if unsafe { with(buf, "evbuffer_add_vprintf", |b| b.is_frozen(End::End) as c_int) } != 0 {
            return -1;
        }
        let mut len = 0usize;
        // SAFETY: a C format string and its va_list, as the caller passed them.
        let s = unsafe { evrs_c_vformat(fmt, ap, &mut len) };
        if s.is_null() || len > c_int::MAX as usize {
            // SAFETY: null or from the helper's malloc.
            unsafe { libc::free(s.cast()) };
            return -1;
        }
        // SAFETY: the helper wrote `len` bytes; `buf` is live.
        let r = unsafe {
            let d = std::slice::from_raw_parts(s.cast::<u8>(), len);
            with(buf, "evbuffer_add_vprintf", |b| if add_nul_terminated(b, d) { len as c_int } else { -1 })
        };
        // SAFETY: from the helper's malloc, not used after this.
        unsafe { libc::free(s.cast()) };
        r
    }
}

/// Appends `d` in one chunk with a NUL byte right after it in the chunk's free space, as
/// libevent's vsnprintf into the chain leaves it: C code that prints into a buffer and
/// then uses `evbuffer_pullup` as a C string relies on it (regress's evbuffer/callbacks).
fn add_nul_terminated(b: &mut evrs::buffer::EvBuffer, d: &[u8]) -> bool {
    let Some(n) = d.len().checked_add(1) else {
        return false;
    };
    match b.reserve_space(n, 1) {
        Ok(mut v) => match v.first_mut() {
            Some(s) if s.len() >= n => {
                s[..d.len()].copy_from_slice(d);
                s[d.len()] = 0;
            }
            _ => return false,
        },
        Err(_) => return false,
    }
    b.commit_space(&[d.len()]).is_ok()
}
