//! Zero heap allocations per dispatched event after warm-up, on every backend: a counting
//! global allocator watches a pipechain-shaped workload.
use evrs::{EventBase, LoopFlags, Method, What};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{Read, Write};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn chain(m: Method, n: usize, writes: usize) -> (usize, usize) {
    let mut base = EventBase::with_backend(m).unwrap();
    let pairs: Vec<(UnixStream, UnixStream)> = (0..n)
        .map(|_| {
            let (a, b) = UnixStream::pair().unwrap();
            a.set_nonblocking(true).unwrap();
            b.set_nonblocking(true).unwrap();
            (a, b)
        })
        .collect();
    let left = Rc::new(Cell::new(0usize));
    let fired = Rc::new(Cell::new(0usize));
    for i in 0..n {
        let mut reader = pairs[i].1.try_clone().unwrap();
        let mut next = pairs[(i + 1) % n].0.try_clone().unwrap();
        let (left, fired) = (left.clone(), fired.clone());
        let ev = base
            .new_event(
                reader.as_raw_fd(),
                What::READ | What::PERSIST,
                move |_, _, _| {
                    let mut b = [0u8; 1];
                    if reader.read(&mut b).unwrap_or(0) == 1 {
                        fired.set(fired.get() + 1);
                        if left.get() > 0 {
                            left.set(left.get() - 1);
                            let _ = next.write(&b);
                        }
                    }
                },
            )
            .unwrap();
        base.add(ev, None).unwrap();
    }
    let mut run = |count: usize| {
        left.set(count);
        (&pairs[0].0).write_all(b"x").unwrap();
        while left.get() > 0 || fired.get() == 0 {
            base.run(LoopFlags::ONCE).unwrap();
        }
        // Drain the last byte in flight.
        base.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
    };
    run(writes); // warm-up: buffers grow to their working size
    let before_fired = fired.get();
    let before = ALLOCS.load(Ordering::SeqCst);
    run(writes);
    let allocs = ALLOCS.load(Ordering::SeqCst) - before;
    (allocs, fired.get() - before_fired)
}

#[test]
fn dispatch_path_does_not_allocate() {
    for m in Method::ALL {
        let (allocs, events) = chain(m, 100, 5_000);
        assert!(events >= 5_000, "{m}: only {events} events dispatched");
        assert_eq!(
            allocs, 0,
            "{m}: {allocs} allocations for {events} dispatched events"
        );
    }
}
