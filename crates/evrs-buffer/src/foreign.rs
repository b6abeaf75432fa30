//! Memory owned by foreign code, added without copying: libevent's
//! `evbuffer_add_reference(buf, data, len, cleanupfn, extra)` exactly as a C
//! ABI needs it (a raw pointer, a length and a C cleanup function).
//!
//! The only `unsafe` outside `sys.rs`: the caller's promise about the
//! memory cannot be checked, so the entry point is an `unsafe fn`. Safe code
//! uses [`EvBuffer::add_reference_with_cleanup`] instead.
#![allow(unsafe_code)]

use std::ffi::c_void;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::EvBuffer;

/// libevent's `evbuffer_ref_cleanup_cb`: called once with the data pointer,
/// its length and the caller's `extra` argument when the buffer (and every
/// buffer or line sharing the data) is done with it.
pub type RefCleanupFn = unsafe extern "C" fn(data: *const c_void, len: usize, extra: *mut c_void);

/// The foreign memory as a `Bytes` owner; runs the cleanup on drop.
struct ForeignRef {
    ptr: *const u8,
    len: usize,
    cleanup: Option<RefCleanupFn>,
    extra: *mut c_void,
}

// SAFETY: `add_reference_raw`'s caller promises that the memory may be read,
// and `cleanup` called with `extra`, from any thread; nothing else is
// reachable through the raw pointers.
unsafe impl Send for ForeignRef {}

impl AsRef<[u8]> for ForeignRef {
    fn as_ref(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: checked non-null and `len <= isize::MAX` on creation; the
        // caller of `add_reference_raw` promises `len` readable bytes at
        // `ptr` that stay unchanged until `cleanup` runs, which happens only
        // in `drop`, after the last borrow.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl Drop for ForeignRef {
    fn drop(&mut self) {
        if let Some(f) = self.cleanup.take() {
            // SAFETY: the caller of `add_reference_raw` promises that
            // `cleanup(data, len, extra)` may be called once, from any
            // thread; `take` makes this the only call.
            unsafe { f(self.ptr.cast(), self.len, self.extra) }
        }
    }
}

impl EvBuffer {
    /// Appends `len` bytes at `data`, owned by foreign code, without copying
    /// (libevent's `evbuffer_add_reference`). When the buffer, and every
    /// buffer or line sharing the bytes, is done with them,
    /// `cleanup(data, len, extra)` is called once (if given), on whichever
    /// thread drops the last use. With `len == 0` nothing is added and
    /// `cleanup` runs before this returns.
    ///
    /// Fails without calling `cleanup` (as libevent) if the end is frozen
    /// ([`Error::Frozen`]), or if `data` is null with `len > 0` or `len`
    /// exceeds `isize::MAX` ([`Error::OutOfRange`]).
    ///
    /// # Safety
    ///
    /// Unless this returns an error, until `cleanup` is called (forever, if
    /// there is none):
    /// * `data..data + len` must be readable and must not be written or
    ///   freed by anyone;
    /// * it must be fine to read that memory, and to call `cleanup` with
    ///   `extra`, from any thread.
    ///
    /// ```
    /// use std::ffi::c_void;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use evrs_buffer::EvBuffer;
    ///
    /// static FREED: AtomicUsize = AtomicUsize::new(0);
    /// unsafe extern "C" fn done(_data: *const c_void, len: usize, _extra: *mut c_void) {
    ///     FREED.fetch_add(len, Ordering::SeqCst);
    /// }
    /// static GREETING: &[u8] = b"hello from C";
    /// let mut buf = EvBuffer::new();
    /// // SAFETY: static memory, readable from any thread; `done` is thread-safe.
    /// unsafe {
    ///     buf.add_reference_raw(GREETING.as_ptr(), GREETING.len(), Some(done), std::ptr::null_mut())
    /// }
    /// .unwrap();
    /// assert_eq!(buf.to_vec(), GREETING);
    /// drop(buf);
    /// assert_eq!(FREED.load(Ordering::SeqCst), GREETING.len());
    /// ```
    pub unsafe fn add_reference_raw(
        &mut self,
        data: *const u8,
        len: usize,
        cleanup: Option<RefCleanupFn>,
        extra: *mut c_void,
    ) -> Result<()> {
        self.check_end()?;
        if (data.is_null() && len > 0) || len > isize::MAX as usize {
            return Err(Error::OutOfRange);
        }
        self.add_bytes(Bytes::from_owner(ForeignRef {
            ptr: data,
            len,
            cleanup,
            extra,
        }))
    }
}
