//! File descriptors: reading, writing, memory added by reference, and file segments.

use super::data::rc;
use super::{with, CBuffer};
use crate::ffi::capi;
use crate::log;
use evrs::buffer::{CallbackInfo, Error, FileSegment, RefCleanupFn, SegmentFlags};
use std::fs::File;
use std::os::fd::FromRawFd;
use std::os::raw::{c_int, c_uint, c_void};
use std::ptr;

/// `EVBUF_FS_CLOSE_ON_FREE`.
const FS_CLOSE_ON_FREE: c_uint = 0x01;
/// `EVBUF_FS_DISABLE_MMAP`.
const FS_DISABLE_MMAP: c_uint = 0x02;
/// `EVBUF_FS_DISABLE_SENDFILE`.
const FS_DISABLE_SENDFILE: c_uint = 0x04;

/// `evbuffer_file_segment_cleanup_cb`.
pub type SegmentCleanupCb = unsafe extern "C" fn(*const CSegment, c_int, *mut c_void);

/// What a C `struct evbuffer_file_segment *` points to: the segment (shared with every
/// chunk made from it) and the flags it was made with.
pub struct CSegment {
    seg: FileSegment,
    flags: c_uint,
}

/// Leaves the OS error in `errno` for the caller (C checks it for `EAGAIN`), and -1.
fn io_fail(e: &Error) -> c_int {
    if let Error::Io(io) = e {
        if let Some(code) = io.raw_os_error() {
            // SAFETY: this thread's errno.
            unsafe { *libc::__errno_location() = code };
        }
    }
    -1
}

/// Merges the changes queued from position `from` on into one: evrs may read in two
/// steps where libevent's callbacks see one read.
fn merge_from(cb: &CBuffer, from: usize) {
    if cb.pending_len() <= from + 1 {
        return;
    }
    let mut q = cb.pending().lock().unwrap_or_else(|e| e.into_inner());
    if q.len() <= from + 1 {
        return;
    }
    let mut all = q.drain(from..);
    let Some(mut m) = all.next() else { return };
    for i in all {
        m.n_added += i.n_added;
        m.n_deleted += i.n_deleted;
    }
    q.push_back(CallbackInfo { ..m });
}

/// A `File` for `fd`: the fd itself when the segment is to close it, else a duplicate.
fn file_for(fd: c_int, close_on_free: bool) -> Option<File> {
    let fd = if close_on_free {
        fd
    } else {
        // SAFETY: duplicates the caller's fd; errors are checked.
        let d = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
        if d < 0 {
            return None;
        }
        d
    };
    // SAFETY: an open fd this `File` now owns (the caller's, given up with
    // CLOSE_ON_FREE, or our duplicate).
    Some(unsafe { File::from_raw_fd(fd) })
}

/// `evbuffer_file_segment_new`'s work.
fn segment(fd: c_int, offset: i64, length: i64, flags: c_uint) -> Option<CSegment> {
    if fd < 0 || offset < 0 || length < -1 {
        log::warn("evbuffer_file_segment_new: bad fd, offset or length");
        return None;
    }
    // Checked before the fd is given to a `File`, so a bad range does not close it.
    // SAFETY: fstat into a local.
    let size = unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut st) < 0 {
            return None;
        }
        st.st_size as u64
    };
    let (off, len) = (offset as u64, u64::try_from(length).ok());
    if off > size || len.is_some_and(|l| l > size - off) {
        log::warn("evbuffer_file_segment_new: range outside the file");
        return None;
    }
    let file = file_for(fd, flags & FS_CLOSE_ON_FREE != 0)?;
    let sf = SegmentFlags {
        disable_mmap: flags & FS_DISABLE_MMAP != 0,
        disable_sendfile: flags & FS_DISABLE_SENDFILE != 0,
    };
    match FileSegment::new(file, off, len, sf) {
        Ok(seg) => Some(CSegment { seg, flags }),
        Err(e) => {
            log::warn(&format!("evbuffer_file_segment_new: {e}"));
            None
        }
    }
}

capi! {
    /// Reads up to `howmuch` bytes (-1: as many as are ready), never more than 4096 per
    /// call, as libevent 2.1. The count, 0 at end of file, -1 on error (`errno` set) or a
    /// frozen end.
    fn evbuffer_read(buffer: *mut CBuffer, fd: c_int, howmuch: c_int) -> c_int {
        let me = buffer;
        // SAFETY: null or a live buffer.
        unsafe {
            with(buffer, "evbuffer_read", |b| {
                let cb = &*me;
                let from = cb.pending_len();
                let r = b.read_from(fd, usize::try_from(howmuch).ok());
                merge_from(cb, from);
                match r {
                    Ok(n) => n as c_int,
                    Err(e) => io_fail(&e),
                }
            })
        }
    }

    /// Writes as much as `fd` takes and drains it; the count, or -1 (error, frozen start,
    /// or an empty buffer, as libevent).
    fn evbuffer_write(buffer: *mut CBuffer, fd: c_int) -> c_int {
        // SAFETY: forwarded.
        unsafe { evbuffer_write_atmost(buffer, fd, -1) }
    }

    /// Like `evbuffer_write`, at most `howmuch` bytes (-1: no limit).
    fn evbuffer_write_atmost(buffer: *mut CBuffer, fd: c_int, howmuch: isize) -> c_int {
        // SAFETY: null or a live buffer.
        unsafe {
            with(buffer, "evbuffer_write_atmost", |b| {
                let n = usize::try_from(howmuch).map_or(b.len(), |h| h.min(b.len()));
                if n == 0 || b.is_frozen(evrs::buffer::End::Start) {
                    return -1;
                }
                match b.write_atmost(fd, Some(n.min(c_int::MAX as usize))) {
                    Ok(n) => n as c_int,
                    Err(e) => io_fail(&e),
                }
            })
        }
    }

    /// Appends `datlen` bytes the caller owns, without copying; `cleanupfn(data, datlen,
    /// extra)` runs when the buffer is done with them. 0, or -1 (then no cleanup).
    fn evbuffer_add_reference(outbuf: *mut CBuffer, data: *const c_void, datlen: usize, cleanupfn: Option<RefCleanupFn>, cleanupfn_arg: *mut c_void) -> c_int {
        // SAFETY: null or a live buffer; C promises the memory stays valid and unchanged
        // until the cleanup runs, as libevent requires.
        unsafe {
            with(outbuf, "evbuffer_add_reference", |b| {
                rc(b.add_reference_raw(data.cast(), datlen, cleanupfn, cleanupfn_arg))
            })
        }
    }

    /// Appends `length` bytes (-1: the rest) of `fd` from `offset`; the buffer closes `fd`
    /// when done with it, and so does a failed add (libevent's rule). 0, or -1.
    fn evbuffer_add_file(outbuf: *mut CBuffer, fd: c_int, offset: i64, length: i64) -> c_int {
        let Some(seg) = segment(fd, offset, length, FS_CLOSE_ON_FREE) else { return -1 };
        // SAFETY: null or a live buffer.
        unsafe { with(outbuf, "evbuffer_add_file", |b| rc(b.add_file_segment(&seg.seg, 0, None))) }
    }

    /// A segment of `length` bytes (-1: to the end of the file) of `fd` from `offset`, with
    /// `EVBUF_FS_*` flags; NULL on error. Without `EVBUF_FS_CLOSE_ON_FREE` the segment
    /// uses a duplicate of `fd` and the caller keeps its own.
    fn evbuffer_file_segment_new(fd: c_int, offset: i64, length: i64, flags: c_uint) -> *mut CSegment {
        segment(fd, offset, length, flags).map_or(ptr::null_mut(), |s| Box::into_raw(Box::new(s)))
    }

    /// Drops the caller's reference; the file goes when no buffer uses it any more.
    fn evbuffer_file_segment_free(seg: *mut CSegment) {
        if !seg.is_null() {
            // SAFETY: made by `evbuffer_file_segment_new`, not used by C after this.
            drop(unsafe { Box::from_raw(seg) });
        }
    }

    /// Sets the function run once the segment is released by everyone (its pointer
    /// argument then only identifies the segment).
    fn evbuffer_file_segment_add_cleanup_cb(seg: *mut CSegment, cb: Option<SegmentCleanupCb>, arg: *mut c_void) {
        // SAFETY: null or a live segment.
        let Some(s) = (unsafe { seg.as_ref() }) else {
            log::warn("evbuffer_file_segment_add_cleanup_cb: NULL segment");
            return;
        };
        let (addr, a, flags) = (seg as usize, arg as usize, s.flags as c_int);
        match cb {
            Some(f) => s.seg.set_cleanup(move || {
                // SAFETY: the program's function with its own argument.
                unsafe { f(addr as *const CSegment, flags, a as *mut c_void) }
            }),
            None => s.seg.set_cleanup(|| {}),
        }
    }

    /// Appends `length` bytes (-1: the rest) of a segment from `offset`: 0, or -1 (and
    /// then the caller's reference is dropped, as in libevent).
    fn evbuffer_add_file_segment(buf: *mut CBuffer, seg: *mut CSegment, offset: i64, length: i64) -> c_int {
        // SAFETY: null or a live segment.
        let Some(s) = (unsafe { seg.as_ref() }) else {
            log::warn("evbuffer_add_file_segment: NULL segment");
            return -1;
        };
        let r = match u64::try_from(offset) {
            // SAFETY: null or a live buffer.
            Ok(off) => unsafe { with(buf, "evbuffer_add_file_segment", |b| rc(b.add_file_segment(&s.seg, off, u64::try_from(length).ok()))) },
            Err(_) => -1,
        };
        if r != 0 {
            // libevent's rule: a failed add drops the caller's reference too (programs
            // written for it never free the segment after a failure).
            // SAFETY: made by `evbuffer_file_segment_new`; C does not use it after this.
            drop(unsafe { Box::from_raw(seg) });
        }
        r
    }
}
