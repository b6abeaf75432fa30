//! Positions (`struct evbuffer_ptr`), searching, peeking and reading lines.
//!
//! A C position is its `pos` plus an opaque `internal_` part. evrs writes there the
//! buffer's address and a slot of a small per-buffer cache holding the Rust
//! [`BufferPtr`] behind the position, so a search loop (`evbuffer_search`, then
//! `evbuffer_ptr_set(…, EVBUFFER_PTR_ADD)`, then search again) resumes at its cached chunk
//! instead of walking from the front. The cache is only a shortcut: a position whose
//! slot no longer matches (copied from another buffer, made by hand, evicted) is found
//! again from `pos`, and one the buffer changed under is re-resolved by the Rust buffer.

use super::data::bytes_mut;
use super::{with, with_inner, CBuffer, Inner};
use crate::ffi::{capi, Fallback};
use crate::log;
use crate::mm;
use evrs::buffer::{BufferPtr, End, EolStyle, EvBuffer};
use std::os::raw::{c_char, c_int, c_void};
use std::ptr;

/// `struct evbuffer_ptr`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CPtr {
    /// Offset from the start; -1 for "not found" / invalid.
    pub pos: isize,
    /// Opaque: the buffer that made the position.
    pub chain: *mut c_void,
    /// Opaque: its slot in that buffer's position cache.
    pub pos_in_chain: usize,
}

const _: () = assert!(std::mem::size_of::<CPtr>() == 24);

impl CPtr {
    /// libevent's "not found" position.
    pub const NOT_FOUND: CPtr = CPtr {
        pos: -1,
        chain: ptr::null_mut(),
        pos_in_chain: 0,
    };
}

impl Fallback for CPtr {
    fn fallback() -> Self {
        CPtr::NOT_FOUND
    }
}

/// The Rust position for a C one, or `None` if it is not a valid position in `b`.
fn import(b: &EvBuffer, inner: &Inner, me: usize, c: &CPtr) -> Option<BufferPtr> {
    let pos = usize::try_from(c.pos).ok()?;
    if c.chain as usize == me {
        if let Some(Some(p)) = inner.ptrs.get(c.pos_in_chain) {
            if p.pos() == pos && pos <= b.len() {
                return Some(*p);
            }
        }
    }
    b.ptr_at(pos).ok()
}

/// A C position for a Rust one (cached in the next slot).
fn export(inner: &mut Inner, me: usize, p: BufferPtr) -> CPtr {
    let slot = inner.next_ptr % inner.ptrs.len();
    inner.next_ptr = slot + 1;
    inner.ptrs[slot] = Some(p);
    CPtr {
        pos: p.pos() as isize,
        chain: me as *mut c_void,
        pos_in_chain: slot,
    }
}

/// `start` as a Rust position: `Ok(None)` for NULL (the front), `Err` if invalid.
///
/// # Safety
/// `start` is null or readable.
unsafe fn start_of(
    b: &EvBuffer,
    inner: &Inner,
    me: usize,
    start: *const CPtr,
) -> Result<Option<BufferPtr>, ()> {
    // SAFETY: per the contract.
    match unsafe { start.as_ref() } {
        None => Ok(None),
        Some(c) => import(b, inner, me, c).map(Some).ok_or(()),
    }
}

/// `enum evbuffer_eol_style`.
fn style(s: c_int) -> Option<EolStyle> {
    Some(match s {
        0 => EolStyle::Any,
        1 => EolStyle::Crlf,
        2 => EolStyle::CrlfStrict,
        3 => EolStyle::Lf,
        4 => EolStyle::Nul,
        _ => return None,
    })
}

/// `evbuffer_search_range`'s work.
///
/// # Safety
/// `buffer` null or live; `what` holds `len` bytes; `start`, `end` null or readable.
unsafe fn search(
    buffer: *mut CBuffer,
    what: *const c_char,
    len: usize,
    start: *const CPtr,
    end: *const CPtr,
    name: &str,
) -> CPtr {
    // An empty string matches at the start, as in libevent 2.1.
    let needle: &[u8] = if len == 0 {
        &[]
    } else if what.is_null() || len > isize::MAX as usize {
        log::warn(&format!("{name}: NULL string or impossible length"));
        return CPtr::NOT_FOUND;
    } else {
        // SAFETY: per the contract.
        unsafe { std::slice::from_raw_parts(what.cast::<u8>(), len) }
    };
    let me = buffer as usize;
    // SAFETY: per the contract.
    unsafe {
        with_inner(buffer, name, |b, inner| {
            let Ok(from) = start_of(b, inner, me, start) else {
                return CPtr::NOT_FOUND;
            };
            let limit = match end.as_ref() {
                None => None,
                Some(e) => match usize::try_from(e.pos) {
                    Ok(p) => b.ptr_at(p.min(b.len())).ok(),
                    Err(_) => return CPtr::NOT_FOUND,
                },
            };
            match b.search_range(needle, from.as_ref(), limit.as_ref()) {
                Ok(Some(p)) => export(inner, me, p),
                _ => CPtr::NOT_FOUND,
            }
        })
    }
}

/// One line, removed and returned `mm::malloc`'ed with its length; NULL (length 0) if
/// there is none. As libevent: the line is removed first, then its end of line, each a
/// change of its own for the callbacks.
///
/// # Safety
/// `buffer` null or live.
unsafe fn readln(buffer: *mut CBuffer, eol: c_int, name: &str) -> (*mut c_char, usize) {
    let Some(st) = style(eol) else {
        log::warn(&format!("{name}: unknown end-of-line style {eol}"));
        return (ptr::null_mut(), 0);
    };
    // SAFETY: per the contract.
    let got = unsafe {
        with(buffer, name, |b| {
            if b.is_frozen(End::Start) {
                return None;
            }
            let (at, eol_len) = b.search_eol(None, st).ok()??;
            let n = at.pos();
            let line = mm::malloc(n + 1).cast::<u8>();
            if line.is_null() {
                log::warn(&format!("{name}: out of memory"));
                return None;
            }
            // SAFETY: `line` holds `n + 1` bytes.
            let out = std::slice::from_raw_parts_mut(line, n);
            let _ = b.remove(out);
            *line.add(n) = 0;
            Some((line as usize, n, eol_len))
        })
    };
    let Some((line, n, eol_len)) = got else {
        return (ptr::null_mut(), 0);
    };
    // SAFETY: per the contract (the line's own callbacks may have run: this drains
    // whatever is at the front now, as libevent).
    unsafe { with(buffer, name, |b| b.drain(eol_len).is_ok() as c_int) };
    (line as *mut c_char, n)
}

capi! {
    /// Sets (`EVBUFFER_PTR_SET`) or advances (`EVBUFFER_PTR_ADD`) a position: 0, or -1
    /// (past the end: then `pos` is -1, as libevent).
    fn evbuffer_ptr_set(buffer: *mut CBuffer, pos: *mut CPtr, position: usize, how: c_int) -> c_int {
        if pos.is_null() {
            log::warn("evbuffer_ptr_set: NULL position");
            return -1;
        }
        let me = buffer as usize;
        // SAFETY: null or a live buffer; `pos` writable.
        unsafe {
            with_inner(buffer, "evbuffer_ptr_set", |b, inner| {
                let c = &mut *pos;
                let r = match how {
                    0 => b.ptr_at(position).ok(),
                    1 => {
                        let Ok(cur) = usize::try_from(c.pos) else { return -1 };
                        if cur.checked_add(position).is_none() {
                            return -1;
                        }
                        import(b, inner, me, c).and_then(|mut p| b.ptr_add(&mut p, position).ok().map(|_| p))
                    }
                    _ => {
                        log::warn(&format!("evbuffer_ptr_set: unknown mode {how}"));
                        return -1;
                    }
                };
                match r {
                    Some(p) => {
                        *c = export(inner, me, p);
                        0
                    }
                    None => {
                        *c = CPtr::NOT_FOUND;
                        -1
                    }
                }
            })
        }
    }

    /// The first occurrence of `what` at or after `start` (NULL: the front); pos -1 if none.
    fn evbuffer_search(buffer: *mut CBuffer, what: *const c_char, len: usize, start: *const CPtr) -> CPtr {
        // SAFETY: forwarded C contract.
        unsafe { search(buffer, what, len, start, ptr::null(), "evbuffer_search") }
    }

    /// As `evbuffer_search`, the match also ending at or before `end`.
    fn evbuffer_search_range(buffer: *mut CBuffer, what: *const c_char, len: usize, start: *const CPtr, end: *const CPtr) -> CPtr {
        // SAFETY: forwarded C contract.
        unsafe { search(buffer, what, len, start, end, "evbuffer_search_range") }
    }

    /// The first end of line at or after `start`, its length into `eol_len_out` (0 and
    /// pos -1 if none).
    fn evbuffer_search_eol(buffer: *mut CBuffer, start: *mut CPtr, eol_len_out: *mut usize, eol_style: c_int) -> CPtr {
        let me = buffer as usize;
        // SAFETY: null or a live buffer; `start` null or readable.
        let (p, n) = unsafe {
            with_inner(buffer, "evbuffer_search_eol", |b, inner| {
                let st = style(eol_style)?;
                let Ok(from) = start_of(b, inner, me, start) else { return None };
                let (p, n) = b.search_eol(from.as_ref(), st).ok()??;
                Some((export(inner, me, p), n))
            })
        }
        .unwrap_or((CPtr::NOT_FOUND, 0));
        // SAFETY: null or writable.
        if let Some(out) = unsafe { eol_len_out.as_mut() } {
            *out = n;
        }
        p
    }

    /// Describes up to `len` bytes (-1: all) from `start_at` as extents, filling at most
    /// `n_vec` of `vec_out`; returns how many extents that takes (as libevent).
    fn evbuffer_peek(buffer: *mut CBuffer, len: isize, start_at: *mut CPtr, vec_out: *mut libc::iovec, n_vec: c_int) -> c_int {
        let me = buffer as usize;
        let n_vec = if vec_out.is_null() { 0 } else { n_vec.max(0) as usize };
        // SAFETY: null or a live buffer; `start_at` null or readable; `vec_out` holds
        // `n_vec` iovecs.
        unsafe {
            with_inner(buffer, "evbuffer_peek", |b, inner| {
                let from = match start_at.as_ref() {
                    None => None,
                    Some(c) => match import(b, inner, me, c) {
                        Some(p) if p.pos() < b.len() => Some(p),
                        _ => return 0,
                    },
                };
                let Ok(slices) = b.peek(None, from.as_ref()) else { return 0 };
                let mut want = len;
                if n_vec == 0 && want < 0 {
                    want = (b.len() - from.map_or(0, |p| p.pos())) as isize;
                }
                let mut idx = 0usize;
                let mut so_far = 0isize;
                for (i, s) in slices.iter().enumerate() {
                    // With a start, its (partial) extent always counts.
                    if !(from.is_some() && i == 0) {
                        if want >= 0 && so_far >= want {
                            break;
                        }
                        if idx >= n_vec && want < 0 {
                            break;
                        }
                    }
                    if idx < n_vec {
                        let v = &mut *vec_out.add(idx);
                        v.iov_base = s.as_ptr().cast_mut().cast();
                        v.iov_len = s.len();
                    }
                    idx += 1;
                    so_far += s.len() as isize;
                }
                idx.min(c_int::MAX as usize) as c_int
            })
        }
    }

    /// Copies up to `datlen` bytes from `pos` (NULL: the front) without removing them;
    /// the count, or -1 (start frozen, invalid position).
    fn evbuffer_copyout_from(buf: *mut CBuffer, pos: *const CPtr, data_out: *mut c_void, datlen: usize) -> isize {
        let me = buf as usize;
        // SAFETY: null or a live buffer; `pos` null or readable; `data_out` holds `datlen`
        // bytes (only the copied prefix is made a slice).
        unsafe {
            with_inner(buf, "evbuffer_copyout_from", |b, inner| {
                let Ok(from) = start_of(b, inner, me, pos) else {
                    log::warn("evbuffer_copyout_from: invalid position");
                    return -1;
                };
                let at = from.map_or(0, |p| p.pos());
                if from.is_some() && datlen > isize::MAX as usize - at {
                    return -1;
                }
                let n = datlen.min(b.len() - at);
                let Some(out) = bytes_mut(data_out, n, "evbuffer_copyout_from") else { return -1 };
                let r = match from {
                    Some(p) => b.copyout_from(&p, out),
                    None => b.copyout(out),
                };
                r.map_or(-1, |n| n as isize)
            })
        }
    }

    /// Removes one line and returns it `malloc`'ed (through `event_set_mem_functions`)
    /// without its end of line; its length into `n_read_out`. NULL (length 0) if there is
    /// no complete line or the start is frozen.
    fn evbuffer_readln(buffer: *mut CBuffer, n_read_out: *mut usize, eol_style: c_int) -> *mut c_char {
        // SAFETY: null or a live buffer.
        let (line, n) = unsafe { readln(buffer, eol_style, "evbuffer_readln") };
        // SAFETY: null or writable.
        if let Some(out) = unsafe { n_read_out.as_mut() } {
            *out = n;
        }
        line
    }

    /// 1.x: `evbuffer_readln` with `EVBUFFER_EOL_ANY`.
    fn evbuffer_readline(buffer: *mut CBuffer) -> *mut c_char {
        // SAFETY: null or a live buffer.
        unsafe { readln(buffer, 0, "evbuffer_readline") }.0
    }

    /// 1.x: a pointer to the first occurrence of `what`, made contiguous with everything
    /// before it; NULL if none.
    fn evbuffer_find(buffer: *mut CBuffer, what: *const u8, len: usize) -> *mut u8 {
        // SAFETY: forwarded C contract.
        let at = unsafe { search(buffer, what.cast(), len, ptr::null(), ptr::null(), "evbuffer_find") };
        let Ok(at) = usize::try_from(at.pos) else { return ptr::null_mut() };
        // SAFETY: null or a live buffer; the bytes stay put until the next change.
        unsafe {
            with(buffer, "evbuffer_find", |b| match b.pullup(at + len) {
                Ok(s) => s.as_ptr().add(at).cast_mut(),
                Err(_) => ptr::null_mut(),
            })
        }
    }
}
