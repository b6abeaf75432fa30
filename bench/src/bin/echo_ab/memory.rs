//! The heap measurements: a counting global allocator (on only while a build is measured)
//! and glibc's `mallinfo2`.

use super::*;
// ---------------------------------------------------------------------------------------
// Counting allocator (on only while a build is measured).

pub(crate) struct Counting;

pub(crate) static COUNT_ON: AtomicBool = AtomicBool::new(false);
pub(crate) static NET_BYTES: AtomicIsize = AtomicIsize::new(0);
pub(crate) static NET_ALLOCS: AtomicIsize = AtomicIsize::new(0);
/// Net live allocations by size, in 16-byte classes up to 4 KiB (the last class: larger).
pub(crate) const CLASSES: usize = 257;
pub(crate) static BY_SIZE: [AtomicIsize; CLASSES] = [const { AtomicIsize::new(0) }; CLASSES];

pub(crate) fn class(size: usize) -> usize {
    size.div_ceil(16).min(CLASSES - 1)
}

pub(crate) fn note(size: usize, sign: isize) {
    if COUNT_ON.load(Ordering::Relaxed) {
        NET_BYTES.fetch_add(sign * size as isize, Ordering::Relaxed);
        NET_ALLOCS.fetch_add(sign, Ordering::Relaxed);
        BY_SIZE[class(size)].fetch_add(sign, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to the system allocator unchanged; the counting only
// touches atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size(), 1);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size(), 1);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(layout.size(), -1);
        note(new_size, 1);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(layout.size(), -1);
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
pub(crate) static GLOBAL: Counting = Counting;

/// Heap in use per glibc (small chunks + mmapped ones), bytes.
pub(crate) fn malloc_in_use() -> i64 {
    // SAFETY: mallinfo2 only reads the allocator's statistics.
    let m = unsafe { libc::mallinfo2() };
    (m.uordblks + m.hblkhd) as i64
}

/// A heap snapshot: glibc's in-use bytes, and the counting allocator's net bytes, count and
/// size classes.
#[derive(Clone)]
pub(crate) struct Heap {
    pub(crate) malloc: i64,
    pub(crate) bytes: isize,
    pub(crate) allocs: isize,
    pub(crate) by_size: Vec<isize>,
}

impl Heap {
    pub(crate) fn now() -> Heap {
        Heap {
            malloc: malloc_in_use(),
            bytes: NET_BYTES.load(Ordering::Relaxed),
            allocs: NET_ALLOCS.load(Ordering::Relaxed),
            by_size: BY_SIZE.iter().map(|a| a.load(Ordering::Relaxed)).collect(),
        }
    }
}

/// What N connections added to the heap, per connection.
#[derive(Clone)]
pub(crate) struct MemSample {
    /// glibc bytes per connection: accepted (no data yet), then after one echo each.
    pub(crate) accepted: f64,
    pub(crate) echoed: f64,
    /// glibc bytes per connection freed when the server was dropped after all its runs
    /// (less the empty server's own): what an idle connection holds after steady traffic.
    pub(crate) after_runs: f64,
    /// Rust-requested bytes and live allocations per connection after the echo.
    pub(crate) rust_bytes: f64,
    pub(crate) rust_allocs: f64,
    /// Net live allocations by size class after the echo, per connection.
    pub(crate) by_size: Vec<f64>,
    /// Rust bytes per connection in allocations above 4 KiB (the tables' arrays).
    pub(crate) big_bytes: f64,
    /// The empty server's heap (subtracted from `after_runs`).
    pub(crate) empty: i64,
}
