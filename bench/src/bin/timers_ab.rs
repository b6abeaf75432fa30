//! In-process A/B of timers: evrs (owned closures), evrs-raw (function-pointer events with
//! the table reserved, libev's counterpart) and libev (caller-owned `ev_timer`s, linked in
//! through `c/libev_timers.c`) take turns round by round in one process, the order rotating,
//! each turn timed by this thread's CPU clock. Separate processes on this VM differ by more
//! than the gaps being measured; turns in one process see the same machine.
//!
//! * **add+del** at each size: `n` timers created once (untimed), then per turn every one
//!   added with its timeout (random 1–1000 ms) and every one deleted, repeated so a turn
//!   covers at least 200,000 pairs; ns per add+del.
//! * **re-arm** at each size: `n` pending timers, each added again with a new timeout in a
//!   fixed random order (a timeout pushed back on activity); ns per re-add.
//! * **fire**: `n` one-shot timers (random 1–100 ms) created, added and dispatched on a fresh
//!   base until the last fired; CPU ms per run (wall time is ~100 ms whatever the peer).
//!
//! `cargo run --release -p evrs-bench --bin timers_ab [ROUNDS] [adddel sizes] [fire n]`
//! (defaults: 15 rounds, sizes 1000,10000,100000,1000000, fire 100000).

use evrs::{EventBase, EventConfig, LoopFlags, Method, RawArg, What};
use evrs_bench::common::{adddel_deadlines, fire_deadlines, thread_cpu_ns};
use std::cell::Cell;
use std::io;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[cfg(have_libev)]
mod libev {
    #[link(name = "evrs_libev_timers", kind = "static")]
    #[link(name = "ev")]
    extern "C" {
        fn evrs_ab_libev_adddel_new(n: usize) -> std::ffi::c_int;
        fn evrs_ab_libev_adddel_run(d_us: *const u64);
        fn evrs_ab_libev_adddel_free();
        fn evrs_ab_libev_rearm_new(n: usize, d_us: *const u64) -> std::ffi::c_int;
        fn evrs_ab_libev_rearm_run(order: *const u32, d_us: *const u64);
        fn evrs_ab_libev_fire(n: usize, d_us: *const u64) -> usize;
    }

    /// The add+del state (one at a time: it lives in C globals).
    pub struct AddDel(Vec<u64>);
    impl AddDel {
        pub fn new(d_us: Vec<u64>) -> std::io::Result<AddDel> {
            // SAFETY: one at a time (the previous one was dropped); C owns what it makes.
            match unsafe { evrs_ab_libev_adddel_new(d_us.len()) } {
                0 => Ok(AddDel(d_us)),
                _ => Err(std::io::Error::other("libev setup failed")),
            }
        }
        pub fn run(&mut self) {
            // SAFETY: `new` made exactly `self.0.len()` watchers; the slice outlives the call.
            unsafe { evrs_ab_libev_adddel_run(self.0.as_ptr()) }
        }
        /// The same watchers, every one started (for `rearm`).
        pub fn new_started(d_us: Vec<u64>) -> std::io::Result<AddDel> {
            // SAFETY: as `new`; `d_us` holds one timeout per watcher.
            match unsafe { evrs_ab_libev_rearm_new(d_us.len(), d_us.as_ptr()) } {
                0 => Ok(AddDel(d_us)),
                _ => Err(std::io::Error::other("libev setup failed")),
            }
        }
        /// Every watcher, in `order`, stopped and started with the next timeout.
        pub fn rearm(&mut self, order: &[u32]) {
            assert_eq!(order.len(), self.0.len());
            // SAFETY: `order` indexes the `len` watchers `new_started` made; both slices
            // hold `len` items and outlive the call.
            unsafe { evrs_ab_libev_rearm_run(order.as_ptr(), self.0.as_ptr()) }
        }
    }
    impl Drop for AddDel {
        fn drop(&mut self) {
            // SAFETY: frees what `new` made.
            unsafe { evrs_ab_libev_adddel_free() }
        }
    }

    pub fn fire(d_us: &[u64]) -> usize {
        // SAFETY: `d_us` holds `len` deadlines and outlives the call.
        unsafe { evrs_ab_libev_fire(d_us.len(), d_us.as_ptr()) }
    }
}

const PEERS: &[&str] = &[
    "evrs",
    "evrs-raw",
    #[cfg(have_libev)]
    "libev",
];

/// The add+del and re-arm peers: also evrs-raw from inside a callback, where a timeout is
/// staged and the loop reads the clock once before it sleeps (outside the loop every add
/// reads it). libev counts from its loop time wherever it is called.
const ADD_PEERS: &[&str] = &[
    "evrs",
    "evrs-raw",
    "evrs-raw-cb",
    #[cfg(have_libev)]
    "libev",
];

type Turn = Box<dyn FnMut() -> io::Result<()>>;

/// A turn that runs `work` from a callback: one loop iteration, in which a driver event's
/// callback does the work (its timers staged, settled as the iteration ends).
fn in_callback(
    mut base: EventBase,
    mut work: impl FnMut(&mut EventBase) -> io::Result<()> + 'static,
) -> io::Result<Turn> {
    let driver = base.new_timer(move |base, _, _| {
        if let Err(e) = work(base) {
            panic!("timers_ab: {e}");
        }
    })?;
    Ok(Box::new(move || {
        base.activate(driver, What::TIMEOUT, 1)?;
        base.run(LoopFlags::ONCE)?;
        Ok(())
    }))
}

fn micros(d: &[Duration]) -> Vec<u64> {
    d.iter().map(|d| d.as_micros() as u64).collect()
}

fn noop_raw(_: &mut EventBase, _: evrs::Event, _: What, _: RawArg) {}

/// A timer that does nothing: an owned closure for `evrs`, a function pointer for
/// `evrs-raw`.
fn noop_timer(base: &mut EventBase, name: &str) -> io::Result<evrs::Event> {
    if name == "evrs" {
        base.new_timer(|_, _, _| {})
    } else {
        base.new_event_raw(-1, What::empty(), noop_raw, RawArg::from_usize(0))
    }
}

/// Peer `name`'s add+del turn over `d` (repeated `reps` times per turn).
fn adddel(name: &str, d: &[Duration], reps: usize) -> io::Result<Turn> {
    let d = d.to_vec();
    Ok(match name {
        "evrs" | "evrs-raw" | "evrs-raw-cb" => {
            let mut base = EventConfig::new().method(Method::Epoll).build()?;
            let mut evs = Vec::with_capacity(d.len());
            for _ in 0..d.len() {
                evs.push(noop_timer(&mut base, name)?);
            }
            let work = move |base: &mut EventBase| {
                for _ in 0..reps {
                    for (&ev, &d) in evs.iter().zip(&d) {
                        base.add(ev, Some(d))?;
                    }
                    for &ev in &evs {
                        base.del(ev)?;
                    }
                }
                Ok(())
            };
            match name {
                "evrs-raw-cb" => in_callback(base, work)?,
                _ => Box::new(move || work(&mut base)),
            }
        }
        #[cfg(have_libev)]
        "libev" => {
            let mut t = libev::AddDel::new(micros(&d))?;
            Box::new(move || {
                for _ in 0..reps {
                    t.run();
                }
                Ok(())
            })
        }
        _ => return Err(io::Error::other(format!("unknown peer {name}"))),
    })
}

/// A fixed random permutation of `0..n` (the re-arm order).
fn shuffled(n: usize) -> Vec<u32> {
    let mut v: Vec<u32> = (0..n as u32).collect();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for i in (1..n).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
    v
}

/// Peer `name`'s re-arm turn: `n` pending timers, each added again (a new timeout) in a
/// random order, `reps` times per turn.
fn rearm(name: &str, d: &[Duration], reps: usize) -> io::Result<Turn> {
    let d = d.to_vec();
    let order = shuffled(d.len());
    Ok(match name {
        "evrs" | "evrs-raw" | "evrs-raw-cb" => {
            let mut base = EventConfig::new().method(Method::Epoll).build()?;
            let mut evs = Vec::with_capacity(d.len());
            for &t in &d {
                let ev = noop_timer(&mut base, name)?;
                base.add(ev, Some(t))?;
                evs.push(ev);
            }
            let work = move |base: &mut EventBase| {
                for _ in 0..reps {
                    for (&i, &t) in order.iter().zip(&d) {
                        base.add(evs[i as usize], Some(t))?;
                    }
                }
                Ok(())
            };
            match name {
                "evrs-raw-cb" => in_callback(base, work)?,
                _ => Box::new(move || work(&mut base)),
            }
        }
        #[cfg(have_libev)]
        "libev" => {
            let mut t = libev::AddDel::new_started(micros(&d))?;
            Box::new(move || {
                for _ in 0..reps {
                    t.rearm(&order);
                }
                Ok(())
            })
        }
        _ => return Err(io::Error::other(format!("unknown peer {name}"))),
    })
}

static RAW_FIRED: AtomicUsize = AtomicUsize::new(0);

fn raw_count(_: &mut EventBase, _: evrs::Event, _: What, _: RawArg) {
    RAW_FIRED.store(RAW_FIRED.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

/// One firing run of peer `name`; the number of timers that fired.
fn fire(name: &str, d: &[Duration]) -> io::Result<usize> {
    match name {
        "evrs" => {
            let mut base = EventConfig::new().method(Method::Epoll).build()?;
            let fired = Rc::new(Cell::new(0usize));
            for &d in d {
                let fired = fired.clone();
                let ev = base.new_timer(move |_, _, _| fired.set(fired.get() + 1))?;
                base.add(ev, Some(d))?;
            }
            base.dispatch()?;
            Ok(fired.get())
        }
        "evrs-raw" => {
            let mut base = EventConfig::new().method(Method::Epoll).build()?;
            RAW_FIRED.store(0, Ordering::Relaxed);
            base.reserve_events(d.len());
            for &d in d {
                let ev = base.new_event_raw(-1, What::empty(), raw_count, RawArg::from_usize(0))?;
                base.add(ev, Some(d))?;
            }
            base.dispatch()?;
            Ok(RAW_FIRED.load(Ordering::Relaxed))
        }
        #[cfg(have_libev)]
        "libev" => Ok(libev::fire(&micros(d))),
        _ => Err(io::Error::other(format!("unknown peer {name}"))),
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn report(title: &str, unit: &str, samples: &mut [(String, Vec<f64>)]) {
    println!("\n### {title}\n");
    println!("| peer | {unit} (median) | best | vs libev |");
    println!("|---|---:|---:|---:|");
    let mut rows: Vec<(String, f64, f64)> = samples
        .iter_mut()
        .map(|(p, v)| {
            let best = v.iter().copied().fold(f64::INFINITY, f64::min);
            (p.clone(), median(v), best)
        })
        .collect();
    let libev = rows.iter().find(|r| r.0 == "libev").map(|r| r.1);
    for (p, med, best) in rows.drain(..) {
        let ratio = libev.map_or("-".to_string(), |l| format!("{:.2}x", med / l));
        println!("| {p} | {med:.1} | {best:.1} | {ratio} |");
    }
}

/// Runs the turns round by round (the order rotating; round 0 untimed), each timed by the
/// thread's CPU clock and divided by `per`.
fn alternate(
    turns: &mut [(String, Turn)],
    rounds: usize,
    per: f64,
) -> io::Result<Vec<(String, Vec<f64>)>> {
    let mut samples: Vec<(String, Vec<f64>)> =
        turns.iter().map(|(p, _)| (p.clone(), Vec::new())).collect();
    for round in 0..rounds + 1 {
        for k in 0..turns.len() {
            let i = (k + round) % turns.len();
            let t0 = thread_cpu_ns();
            (turns[i].1)()?;
            let ns = thread_cpu_ns() - t0;
            if round > 0 {
                samples[i].1.push(ns as f64 / per);
            }
        }
    }
    Ok(samples)
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rounds: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(15);
    let sizes: Vec<usize> = args
        .get(1)
        .map_or(vec![1000, 10_000, 100_000, 1_000_000], |a| {
            a.split(',').filter_map(|s| s.parse().ok()).collect()
        });
    let fire_n: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    if !cfg!(have_libev) {
        eprintln!("timers_ab: libev not built (libev-dev missing): evrs peers only");
    }
    println!("timers_ab: {rounds} rounds, turns alternate in one process (thread CPU time)");
    for &n in &sizes {
        let d = adddel_deadlines(n);
        let reps = (200_000 / n).max(1);
        let mut turns: Vec<(String, Turn)> = Vec::new();
        for p in ADD_PEERS {
            turns.push((p.to_string(), adddel(p, &d, reps)?));
        }
        let mut samples = alternate(&mut turns, rounds, (n * reps) as f64)?;
        drop(turns);
        report(
            &format!("add+del, {n} timers (random 1-1000 ms), {reps} pass(es) per turn"),
            "ns per add+del",
            &mut samples,
        );
        let mut turns: Vec<(String, Turn)> = Vec::new();
        for p in ADD_PEERS {
            turns.push((p.to_string(), rearm(p, &d, reps)?));
        }
        let samples = alternate(&mut turns, rounds, (n * reps) as f64)?;
        drop(turns);
        report(
            &format!(
                "re-arm, {n} pending timers each added again in random order, {reps} pass(es) per turn"
            ),
            "ns per re-add",
            &mut { samples },
        );
    }
    if fire_n > 0 {
        let d = fire_deadlines(fire_n);
        let mut samples: Vec<(String, Vec<f64>)> =
            PEERS.iter().map(|p| (p.to_string(), Vec::new())).collect();
        for round in 0..rounds + 1 {
            for k in 0..PEERS.len() {
                let i = (k + round) % PEERS.len();
                let t0 = thread_cpu_ns();
                let fired = fire(PEERS[i], &d)?;
                let ns = thread_cpu_ns() - t0;
                if fired != fire_n {
                    return Err(io::Error::other(format!(
                        "{}: fired {fired} of {fire_n}",
                        PEERS[i]
                    )));
                }
                if round > 0 {
                    samples[i].1.push(ns as f64 / 1e6);
                }
            }
        }
        report(
            &format!("fire, {fire_n} one-shot timers (random 1-100 ms), create + add + run"),
            "CPU ms",
            &mut samples,
        );
    }
    Ok(())
}
