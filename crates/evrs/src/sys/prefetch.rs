//! Cache prefetch hints for the dispatch path. Each callback of a busy loop usually makes
//! syscalls, and the kernel's work evicts the loop's data from the nearest caches; the next
//! event's slot and closure are then misses that nothing can overlap. Hinting them while the
//! current callback runs lets the memory system fetch them in the meantime.

/// Asks the CPU to start loading the cache line holding address `addr`. A hint only: no
/// effect on program state, never faults, whatever the address.
#[inline(always)]
pub(crate) fn prefetch_addr(addr: usize) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    // SAFETY: PREFETCHT0 has no architectural effect and cannot fault, for any address; SSE
    // is part of the x86_64 baseline.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(addr as *const i8);
    }
    #[cfg(any(not(target_arch = "x86_64"), miri))]
    let _ = addr;
}

/// Hints every cache line of `*value`.
#[inline(always)]
pub(crate) fn prefetch<T>(value: &T) {
    let start = value as *const T as usize;
    let size = std::mem::size_of::<T>();
    prefetch_addr(start);
    if size > 64 {
        // A value of up to 128 bytes spans at most three lines: its first, its last, and the
        // one 64 bytes in.
        prefetch_addr(start + 64);
        prefetch_addr(start + size - 1);
    }
}
