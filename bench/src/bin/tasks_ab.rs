//! In-process A/B of async tasks: evrs::rt against tokio current_thread (a `LocalSet`),
//! turns alternating round by round in one process, each timed by the thread's CPU clock.
//!
//! * **spawn + complete**: `n` tasks that finish at once, spawned from a task and awaited
//!   through their join handles; ns per task.
//! * **wake + poll**: one task woken `n` times from the loop thread (it wakes itself and
//!   yields); ns per wake.
//! * **bytes per idle task**: heap in use (a counting allocator) per task parked on a
//!   future nobody wakes, with its join handle kept; and live allocations per task (on the
//!   runtimes the rounds used, and for evrs on a fresh one as well).
//!
//! `cargo run --release -p evrs-bench --bin tasks_ab [ROUNDS] [N]` (defaults 15, 100000).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::task::Poll;

struct Counting;
static BYTES: AtomicIsize = AtomicIsize::new(0);
static ALLOCS: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        BYTES.fetch_add(l.size() as isize, Ordering::Relaxed);
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        BYTES.fetch_sub(l.size() as isize, Ordering::Relaxed);
        ALLOCS.fetch_sub(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        BYTES.fetch_add(n as isize - l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Wakes itself `n` times (yielding each time), then ends.
fn yielder(n: usize) -> impl std::future::Future<Output = ()> {
    let left = Cell::new(n);
    std::future::poll_fn(move |cx| {
        if left.get() == 0 {
            return Poll::Ready(());
        }
        left.set(left.get() - 1);
        cx.waker().wake_by_ref();
        Poll::Pending
    })
}

/// A future nobody wakes.
fn parked() -> impl std::future::Future<Output = ()> {
    std::future::poll_fn(|_| Poll::Pending)
}

trait Peer {
    fn spawn_complete(&mut self, n: usize);
    fn wake_poll(&mut self, n: usize);
    /// (heap bytes, live allocations) per idle task, `n` of them.
    fn idle(&mut self, n: usize) -> (f64, f64);
}

struct Evrs {
    base: evrs::EventBase,
    rt: evrs::rt::Runtime,
}

impl Peer for Evrs {
    fn spawn_complete(&mut self, n: usize) {
        self.rt
            .block_on(&mut self.base, async move {
                let hs: Vec<_> = (0..n)
                    .map(|i| evrs::rt::spawn(async move { i }).unwrap())
                    .collect();
                for h in hs {
                    std::hint::black_box(h.await.unwrap());
                }
            })
            .unwrap();
    }
    fn wake_poll(&mut self, n: usize) {
        self.rt.block_on(&mut self.base, yielder(n)).unwrap();
    }
    fn idle(&mut self, n: usize) -> (f64, f64) {
        let (b0, a0) = (
            BYTES.load(Ordering::Relaxed),
            ALLOCS.load(Ordering::Relaxed),
        );
        let hs: Vec<_> = (0..n).map(|_| self.rt.spawn(parked())).collect();
        self.rt.run_until_stalled(&mut self.base).unwrap();
        let (b1, a1) = (
            BYTES.load(Ordering::Relaxed),
            ALLOCS.load(Ordering::Relaxed),
        );
        drop(hs);
        self.rt.run_until_stalled(&mut self.base).unwrap();
        ((b1 - b0) as f64 / n as f64, (a1 - a0) as f64 / n as f64)
    }
}

struct Tokio {
    rt: tokio::runtime::Runtime,
    local: tokio::task::LocalSet,
}

impl Peer for Tokio {
    fn spawn_complete(&mut self, n: usize) {
        self.local.block_on(&self.rt, async move {
            let hs: Vec<_> = (0..n)
                .map(|i| tokio::task::spawn_local(async move { i }))
                .collect();
            for h in hs {
                std::hint::black_box(h.await.unwrap());
            }
        });
    }
    fn wake_poll(&mut self, n: usize) {
        self.local.block_on(&self.rt, yielder(n));
    }
    fn idle(&mut self, n: usize) -> (f64, f64) {
        let (b0, a0) = (
            BYTES.load(Ordering::Relaxed),
            ALLOCS.load(Ordering::Relaxed),
        );
        let hs: Vec<_> = self.local.block_on(&self.rt, async move {
            let hs: Vec<_> = (0..n).map(|_| tokio::task::spawn_local(parked())).collect();
            tokio::task::yield_now().await;
            hs
        });
        let (b1, a1) = (
            BYTES.load(Ordering::Relaxed),
            ALLOCS.load(Ordering::Relaxed),
        );
        for h in &hs {
            h.abort();
        }
        self.local.block_on(&self.rt, async move {
            for h in hs {
                let _ = h.await;
            }
        });
        ((b1 - b0) as f64 / n as f64, (a1 - a0) as f64 / n as f64)
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rounds: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(15);
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let mut base = evrs::EventBase::new()?;
    let rt = evrs::rt::Runtime::new(&mut base)?;
    let mut peers: Vec<(&str, Box<dyn Peer>)> = vec![
        ("evrs::rt", Box::new(Evrs { base, rt })),
        (
            "tokio",
            Box::new(Tokio {
                rt: tokio::runtime::Builder::new_current_thread().build()?,
                local: tokio::task::LocalSet::new(),
            }),
        ),
    ];
    println!(
        "tasks_ab: {rounds} rounds of {n}, turns alternating in one process (thread CPU time)\n"
    );
    println!("| peer | spawn + complete (ns/task) | wake + poll (ns/wake) | idle task (B) | idle task (allocs) |");
    println!("|---|---:|---:|---:|---:|");
    let mut rows = Vec::new();
    let len = peers.len();
    let mut samples = vec![(Vec::new(), Vec::new()); len];
    for round in 0..rounds + 1 {
        for k in 0..len {
            let i = (k + round) % len;
            let p = &mut peers[i].1;
            let t0 = evrs_bench::common::thread_cpu_ns();
            p.spawn_complete(n);
            let t1 = evrs_bench::common::thread_cpu_ns();
            p.wake_poll(n);
            let t2 = evrs_bench::common::thread_cpu_ns();
            if round > 0 {
                samples[i].0.push((t1 - t0) as f64 / n as f64);
                samples[i].1.push((t2 - t1) as f64 / n as f64);
            }
        }
    }
    for (i, (name, p)) in peers.iter_mut().enumerate() {
        let (bytes, allocs) = p.idle(n);
        rows.push((
            *name,
            median(&mut samples[i].0),
            median(&mut samples[i].1),
            bytes,
            allocs,
        ));
    }
    for (name, sc, wp, b, a) in rows {
        println!("| {name} | {sc:.1} | {wp:.1} | {b:.0} | {a:.2} |");
    }
    // The rows above measure idle tasks on runtimes that ran tasks before (evrs reuses a
    // finished task's waker): a fresh runtime pays for a waker per task too.
    let mut base = evrs::EventBase::new()?;
    let rt = evrs::rt::Runtime::new(&mut base)?;
    let (b, a) = Evrs { base, rt }.idle(n);
    println!("\nevrs::rt on a fresh runtime: {b:.0} B and {a:.2} allocations per idle task");
    Ok(())
}
