//! Started prepare/check/idle hooks — and an async task woken from the loop thread — cost
//! no heap allocation and no read/write syscall per iteration (and never an eventfd
//! write), on every backend: a counting global allocator and the thread's
//! `/proc/thread-self/io` counters watch a loop doing only that.
mod util;
use evrs::{LoopFlags, Method, RunOutcome};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Only the loop thread's allocations count (the harness and watchdog threads allocate
    /// too, at times of their own).
    static LOOP_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn note_alloc() {
    if LOOP_THREAD.try_with(std::cell::Cell::get).unwrap_or(false) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note_alloc();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        note_alloc();
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const ITERS: usize = 5_000;

/// (read syscalls, write syscalls) of the calling thread so far.
fn rw_syscalls() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/thread-self/io").unwrap();
    let get = |k: &str| -> u64 {
        s.lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.trim().parse().unwrap())
            .unwrap()
    };
    (get("syscr:"), get("syscw:"))
}

/// Syscalls made by `f` beyond what sampling the counters itself costs.
fn rw_syscalls_of(f: impl FnOnce()) -> (u64, u64) {
    let a = rw_syscalls();
    let b = rw_syscalls();
    let (over_r, over_w) = (b.0 - a.0, b.1 - a.1);
    let s0 = rw_syscalls();
    f();
    let s1 = rw_syscalls();
    (
        (s1.0 - s0.0).saturating_sub(over_r),
        (s1.1 - s0.1).saturating_sub(over_w),
    )
}

fn local_base(m: Method) {
    let mut base = util::base(m);
    let handle = base.handle().unwrap(); // the eventfd exists; nobody may write it
    let _local = base.local_handle();
    let counts = Rc::new([Cell::new(0usize), Cell::new(0usize), Cell::new(0usize)]);
    let (c0, c1, c2) = (counts.clone(), counts.clone(), counts.clone());
    let p = base
        .new_prepare(move |_, _, _| c0[0].set(c0[0].get() + 1))
        .unwrap();
    let c = base
        .new_check(move |_, _, _| c1[1].set(c1[1].get() + 1))
        .unwrap();
    let i = base
        .new_idle(move |_, _, _| c2[2].set(c2[2].get() + 1))
        .unwrap();
    for h in [p, c, i] {
        base.add(h, None).unwrap();
    }
    let mut pass = |n: usize| {
        for _ in 0..n {
            assert_eq!(base.run(LoopFlags::NONBLOCK).unwrap(), RunOutcome::Exited);
        }
    };
    pass(200); // warm-up: buffers reach their working size
    let before = ALLOCS.load(Ordering::SeqCst);
    pass(ITERS);
    let allocs = ALLOCS.load(Ordering::SeqCst) - before;
    assert_eq!(
        allocs, 0,
        "{m}: {allocs} allocations over {ITERS} hook iterations"
    );
    let (r, w) = rw_syscalls_of(|| pass(ITERS));
    assert_eq!(
        (r, w),
        (0, 0),
        "{m}: read/write syscalls over {ITERS} hook iterations"
    );
    // Also with a dispatch that keeps running on the idle hook alone.
    let done = Rc::new(Cell::new(0usize));
    let d = done.clone();
    let stopper = base
        .new_idle(move |base, _, _| {
            d.set(d.get() + 1);
            if d.get() % ITERS == 0 {
                base.loopbreak();
            }
        })
        .unwrap();
    base.add(stopper, None).unwrap();
    base.dispatch().unwrap(); // warm-up
    let before = ALLOCS.load(Ordering::SeqCst);
    base.dispatch().unwrap();
    assert_eq!(ALLOCS.load(Ordering::SeqCst) - before, 0, "{m}: dispatch");
    let (r, w) = rw_syscalls_of(|| {
        base.dispatch().unwrap();
    });
    assert_eq!((r, w), (0, 0), "{m}: read/write syscalls in dispatch");
    assert_eq!(handle.wake_writes(), 0, "{m}: hooks wrote the eventfd");
    for k in 0..3 {
        assert!(
            counts[k].get() >= 2 * ITERS + 200,
            "{m}: hook {k} ran {}",
            counts[k].get()
        );
    }
    base.verify().unwrap();
    // Counted sections done: stop the hooks, so the base ends empty.
    for h in [p, c, i, stopper] {
        base.free(h).unwrap();
    }
}

/// A task that wakes itself and yields (`budget` times), polled once per loop iteration by
/// the runtime's driver: the wake (on the loop thread) and the poll allocate nothing and
/// make no syscall.
fn async_wakes(m: Method) {
    let mut base = util::base(m);
    let handle = base.handle().unwrap();
    let rt = evrs::rt::Runtime::new(&mut base).unwrap();
    let (polls, budget) = (Rc::new(Cell::new(0usize)), Rc::new(Cell::new(0usize)));
    let (p, b) = (polls.clone(), budget.clone());
    let stalled: Rc<std::cell::RefCell<Option<std::task::Waker>>> = Rc::default();
    let s = stalled.clone();
    rt.spawn(std::future::poll_fn(move |cx| {
        p.set(p.get() + 1);
        if b.get() == 0 {
            *s.borrow_mut() = Some(cx.waker().clone());
        } else {
            b.set(b.get() - 1);
            cx.waker().wake_by_ref();
            cx.waker().wake_by_ref(); // coalesced
        }
        std::task::Poll::<()>::Pending
    }))
    .detach();
    // Runs until the task has yielded `n` more times (`NONBLOCK` goes on while callbacks
    // are active, as in libevent).
    let mut pass = |n: usize| {
        budget.set(n);
        if let Some(w) = stalled.borrow_mut().take() {
            w.wake();
        }
        base.run(LoopFlags::NONBLOCK).unwrap();
    };
    // Warm-up: buffers reach their working size (the same-thread request queue swaps
    // two buffers: both grow once).
    pass(ITERS);
    pass(ITERS);
    let before = ALLOCS.load(Ordering::SeqCst);
    let polled = polls.get();
    pass(ITERS);
    let allocs = ALLOCS.load(Ordering::SeqCst) - before;
    assert_eq!(
        allocs, 0,
        "{m}: {allocs} allocations over {ITERS} task wakes"
    );
    assert!(
        polls.get() - polled >= ITERS,
        "{m}: {} polls",
        polls.get() - polled
    );
    let (r, w) = rw_syscalls_of(|| pass(ITERS));
    assert_eq!(
        (r, w),
        (0, 0),
        "{m}: read/write syscalls over {ITERS} task wakes"
    );
    assert_eq!(
        handle.wake_writes(),
        0,
        "{m}: a same-thread wake wrote the eventfd"
    );
    rt.shutdown(&mut base);
}

/// Spawning a task and running it to its end allocates once in steady state: the task's
/// future, output and join waker share one allocation, and the slot's waker is reused.
fn async_spawns(m: Method) {
    let mut base = util::base(m);
    let rt = evrs::rt::Runtime::new(&mut base).unwrap();
    let mut round = |n: usize| {
        let handles: Vec<_> = (0..n).map(|i| rt.spawn(async move { i * 2 })).collect();
        base.run(LoopFlags::NONBLOCK).unwrap();
        let mut sum = 0;
        for h in handles {
            assert!(h.is_finished());
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            match std::future::Future::poll(std::pin::pin!(h), &mut cx) {
                std::task::Poll::Ready(r) => sum += r.unwrap(),
                std::task::Poll::Pending => panic!("finished, yet pending"),
            }
        }
        sum
    };
    round(64); // warm-up: slots, queues and wakers reach their working size
    round(64);
    let before = ALLOCS.load(Ordering::SeqCst);
    let sum = round(64);
    let allocs = ALLOCS.load(Ordering::SeqCst) - before;
    assert_eq!(sum, (0..64).map(|i| i * 2).sum::<usize>());
    // 64 tasks, plus the `Vec` of handles.
    assert_eq!(
        allocs,
        64 + 1,
        "{m}: {allocs} allocations for 64 spawned tasks"
    );
    rt.shutdown(&mut base);
}

fn shared_base(m: Method) {
    let base = util::shared(m);
    let n = Arc::new(AtomicUsize::new(0));
    let (a, b, c) = (n.clone(), n.clone(), n.clone());
    let p = base
        .new_prepare(move |_, _, _| {
            a.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    let ch = base
        .new_check(move |_, _, _| {
            b.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    let i = base
        .new_idle(move |_, _, _| {
            c.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    for h in [p, ch, i] {
        base.add(h, None).unwrap();
    }
    let pass = |k: usize| {
        for _ in 0..k {
            base.run(LoopFlags::NONBLOCK).unwrap();
        }
    };
    pass(200);
    let (r, w) = rw_syscalls_of(|| pass(ITERS));
    assert_eq!(
        (r, w),
        (0, 0),
        "shared {m}: read/write syscalls per hook iteration"
    );
    assert_eq!(base.wake_writes(), 0, "shared {m}: hooks wrote the eventfd");
    assert!(n.load(Ordering::Relaxed) >= 3 * (ITERS + 200));
    base.verify().unwrap();
    for h in [p, ch, i] {
        base.free(h).unwrap();
    }
}

#[test]
fn hooks_do_not_allocate_or_make_read_write_syscalls_per_iteration() {
    let _w = util::watchdog(
        "hooks_do_not_allocate_or_make_read_write_syscalls_per_iteration",
        util::WATCHDOG_BOUND,
    );
    LOOP_THREAD.with(|c| c.set(true));
    // The instrument sees a single write(2) and a single read(2) (eventfd wake-ups and
    // drains are exactly those; std's socket I/O uses send/recv, which it does not count).
    let mut fds = [0i32; 2];
    // SAFETY: `fds` is a valid out-array of two ints.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let one = [1u8];
    // SAFETY: valid fd and a 1-byte buffer.
    let wrote =
        rw_syscalls_of(|| assert_eq!(unsafe { libc::write(fds[1], one.as_ptr().cast(), 1) }, 1));
    assert_eq!(wrote, (0, 1));
    let mut got = [0u8];
    // SAFETY: valid fd and a 1-byte buffer.
    let read =
        rw_syscalls_of(|| assert_eq!(unsafe { libc::read(fds[0], got.as_mut_ptr().cast(), 1) }, 1));
    assert_eq!(read, (1, 0));
    // SAFETY: we own both fds.
    unsafe {
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
    for m in Method::ALL {
        local_base(m);
        shared_base(m);
        async_wakes(m);
        async_spawns(m);
    }
}
