//! Proves that evrs dispatches I/O events without touching the heap once warmed up: a counting
//! `#[global_allocator]` watches the pipechain benchmark (100 pairs) for ~10,000 dispatched
//! events after a warm-up, on every backend, and the test asserts the count is zero.
//!
//! The chain's base is built with `EventConfig::new().method(m)`: an explicit method wins over
//! the environment, so the test measures the backend it names even under `EVRS_BACKEND=poll`.
#![cfg(feature = "evrs")]

#[path = "../../crates/evrs/tests/util/watchdog.rs"]
mod watchdog;

use evrs::Method;
use evrs_bench::peers::evrs::EvrsChain;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counts allocations made by the thread that switched counting on (the test harness has
/// other threads; their allocations are not ours).
struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn note_alloc() {
    // `try_with`: never panic inside the allocator, even during thread teardown.
    let on = COUNTING.try_with(Cell::get).unwrap_or(false);
    if on {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
    }
}

// SAFETY: every method forwards to the system allocator unchanged; the counting only reads
// and writes const-initialised thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_alloc();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_alloc();
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn pipechain_dispatch_does_not_allocate_after_warmup() {
    let _w = watchdog::watchdog_here(watchdog::WATCHDOG_BOUND);
    for m in Method::ALL {
        chain_does_not_allocate(m);
    }
}

fn chain_does_not_allocate(method: Method) {
    const PAIRS: usize = 100;
    const ACTIVE: usize = 10;
    const WRITES: usize = 990;
    const RUNS: usize = 10;

    let mut chain = EvrsChain::new(PAIRS, false, method).expect("ring and base");
    // Warm-up: lets the base size its event array, queues and any caches.
    for _ in 0..5 {
        chain.run(ACTIVE, WRITES).expect("warm-up run");
    }

    // The counter itself works: one boxed value is one allocation.
    ALLOCS.with(|c| c.set(0));
    COUNTING.with(|c| c.set(true));
    drop(std::hint::black_box(Box::new(7u64)));
    COUNTING.with(|c| c.set(false));
    assert_eq!(
        ALLOCS.with(Cell::get),
        1,
        "the counting allocator is not counting"
    );

    ALLOCS.with(|c| c.set(0));
    COUNTING.with(|c| c.set(true));
    let mut result = Ok(0);
    for _ in 0..RUNS {
        result = chain.run(ACTIVE, WRITES);
        if result.is_err() {
            break;
        }
    }
    COUNTING.with(|c| c.set(false));
    let allocs = ALLOCS.with(Cell::get);
    result.expect("measured run");

    let events = RUNS * (ACTIVE + WRITES);
    println!(
        "{allocs} heap allocations during {events} dispatched events ({PAIRS} pairs, {method})"
    );
    assert_eq!(
        allocs, 0,
        "evrs ({method}) allocated {allocs} times while dispatching {events} events after warm-up"
    );
}
