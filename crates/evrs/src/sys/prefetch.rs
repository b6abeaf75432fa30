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
