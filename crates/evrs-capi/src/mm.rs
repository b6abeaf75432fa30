//! Memory the C API allocates on the program's behalf (libevent's `event_set_mem_functions`
//! and its internal `event_mm_*_` functions): the program's functions when it installed
//! them, libc's otherwise. Memory handed to C (event structs from `event_new`, strings,
//! buffers the program frees with `free`-like calls) comes from here.

use crate::ffi::capi;
use std::os::raw::{c_char, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};

type MallocFn = unsafe extern "C" fn(usize) -> *mut c_void;
type ReallocFn = unsafe extern "C" fn(*mut c_void, usize) -> *mut c_void;
type FreeFn = unsafe extern "C" fn(*mut c_void);

static MALLOC: AtomicUsize = AtomicUsize::new(0);
static REALLOC: AtomicUsize = AtomicUsize::new(0);
static FREE: AtomicUsize = AtomicUsize::new(0);

/// `malloc` through the hooks; size 0 gives NULL, as libevent.
pub fn malloc(n: usize) -> *mut c_void {
    if n == 0 {
        return std::ptr::null_mut();
    }
    let f = MALLOC.load(Ordering::Acquire);
    // SAFETY: `f` is 0 or a `malloc`-like function the program installed.
    unsafe {
        if f == 0 {
            libc::malloc(n)
        } else {
            std::mem::transmute::<usize, MallocFn>(f)(n)
        }
    }
}

/// `calloc` through the hooks (overflow of `count * size` gives NULL).
pub fn calloc(count: usize, size: usize) -> *mut c_void {
    let Some(n) = count.checked_mul(size) else {
        set_errno(libc::ENOMEM);
        return std::ptr::null_mut();
    };
    let p = malloc(n);
    if !p.is_null() {
        // SAFETY: `p` holds `n` writable bytes.
        unsafe { std::ptr::write_bytes(p.cast::<u8>(), 0, n) };
    }
    p
}

/// `realloc` through the hooks.
///
/// # Safety
/// `p` is null or came from these hooks and is not used after this.
pub unsafe fn realloc(p: *mut c_void, n: usize) -> *mut c_void {
    let f = REALLOC.load(Ordering::Acquire);
    // SAFETY: `p` came from these hooks; `f` is 0 or the program's `realloc`.
    unsafe {
        if f == 0 {
            libc::realloc(p, n)
        } else {
            std::mem::transmute::<usize, ReallocFn>(f)(p, n)
        }
    }
}

/// `free` through the hooks (NULL is ignored).
///
/// # Safety
/// `p` is null or came from these hooks and is not used after this.
pub unsafe fn free(p: *mut c_void) {
    if p.is_null() {
        return;
    }
    let f = FREE.load(Ordering::Acquire);
    // SAFETY: `p` came from these hooks; `f` is 0 or the program's `free`.
    unsafe {
        if f == 0 {
            libc::free(p)
        } else {
            std::mem::transmute::<usize, FreeFn>(f)(p)
        }
    }
}

/// Sets `errno` (libevent's allocation functions report failures through it).
pub fn set_errno(e: i32) {
    // SAFETY: the calling thread's errno slot.
    unsafe { *libc::__errno_location() = e };
}

/// Moves `v` into memory from the hooks (the program's allocator, when it installed one),
/// as libevent allocates its objects; NULL if that allocator fails. Such memory is
/// released with [`drop_free`].
pub fn boxed<T>(v: T) -> *mut T {
    debug_assert!(std::mem::align_of::<T>() <= 16);
    let p = malloc(std::mem::size_of::<T>().max(1)).cast::<T>();
    if !p.is_null() {
        // SAFETY: fresh memory of T's size; malloc-like allocators align to 16.
        unsafe { p.write(v) };
    }
    p
}

/// Drops and frees what [`boxed`] made.
///
/// # Safety
/// `p` came from [`boxed`] and is not used after this.
pub unsafe fn drop_free<T>(p: *mut T) {
    // SAFETY: per the contract.
    unsafe {
        std::ptr::drop_in_place(p);
        free(p.cast());
    }
}

/// An owned `T` in memory from the hooks ([`boxed`]), freed when dropped: for objects
/// libevent allocates with its `mm_` functions whose allocation the program can make fail
/// (a callback entry from `evbuffer_add_cb` is NULL then, and `evbuffer_setcb` -1).
pub struct MmBox<T>(std::ptr::NonNull<T>);

impl<T> MmBox<T> {
    /// `v` in memory from the hooks; `None` if the allocator fails.
    pub fn new(v: T) -> Option<Self> {
        std::ptr::NonNull::new(boxed(v)).map(MmBox)
    }
}

impl<T> std::ops::Deref for MmBox<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a live T from `boxed`, owned by this box.
        unsafe { self.0.as_ref() }
    }
}

impl<T> std::ops::DerefMut for MmBox<T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: a live T from `boxed`, owned (uniquely) by this box.
        unsafe { self.0.as_mut() }
    }
}

impl<T> Drop for MmBox<T> {
    fn drop(&mut self) {
        // SAFETY: from `boxed`, and this box is its only owner.
        unsafe { drop_free(self.0.as_ptr()) }
    }
}

/// A NUL-terminated copy of `s` through the hooks.
pub fn strdup_bytes(s: &[u8]) -> *mut c_char {
    let p = malloc(s.len() + 1).cast::<u8>();
    if !p.is_null() {
        // SAFETY: `p` holds `len + 1` writable bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(s.as_ptr(), p, s.len());
            *p.add(s.len()) = 0;
        }
    }
    p.cast()
}

capi! {
    /// Replaces the allocator the library uses for memory it hands out (call before
    /// anything else, as with libevent). NULL functions restore libc's.
    fn event_set_mem_functions(malloc_fn: Option<MallocFn>, realloc_fn: Option<ReallocFn>, free_fn: Option<FreeFn>) {
        MALLOC.store(malloc_fn.map_or(0, |f| f as usize), Ordering::Release);
        REALLOC.store(realloc_fn.map_or(0, |f| f as usize), Ordering::Release);
        FREE.store(free_fn.map_or(0, |f| f as usize), Ordering::Release);
    }

    /// Internal: `malloc` through the hooks.
    fn event_mm_malloc_(n: usize) -> *mut c_void {
        malloc(n)
    }

    /// Internal: `calloc` through the hooks.
    fn event_mm_calloc_(count: usize, size: usize) -> *mut c_void {
        calloc(count, size)
    }

    /// Internal: `strdup` through the hooks.
    fn event_mm_strdup_(s: *const c_char) -> *mut c_char {
        if s.is_null() {
            set_errno(libc::EINVAL);
            return std::ptr::null_mut();
        }
        // SAFETY: a C string.
        strdup_bytes(unsafe { std::ffi::CStr::from_ptr(s) }.to_bytes())
    }

    /// Internal: `realloc` through the hooks.
    fn event_mm_realloc_(p: *mut c_void, n: usize) -> *mut c_void {
        // SAFETY: the C contract: `p` came from these functions.
        unsafe { realloc(p, n) }
    }

    /// Internal: `free` through the hooks.
    fn event_mm_free_(p: *mut c_void) {
        // SAFETY: the C contract: `p` came from these functions.
        unsafe { free(p) }
    }
}
