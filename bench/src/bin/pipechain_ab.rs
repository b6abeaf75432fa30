//! In-process A/B of pipechain: evrs, the raw epoll loop, mio and (when its headers are
//! installed) libevent each get their own ring in one process, and take turns run by run
//! (the order rotating every round), each run timed by this thread's CPU clock
//! (`CLOCK_THREAD_CPUTIME_ID`: user + kernel time of the work itself, unaffected by being
//! descheduled). Separate processes on a shared VM differ by 10–100 % in wall time; taking
//! turns in one process exposes every peer to the same conditions.
//!
//! `cargo run --release -p evrs-bench --bin pipechain_ab [ROUNDS] [n,n,..]`
//! (default 200 rounds of 100 + 1000 bytes each, n = 100,1000,5000). Rings use the pairs
//! layout (2n fds) when every peer's fits under RLIMIT_NOFILE, else the duplex layout.

use evrs_bench::common::{fds_needed, raise_nofile};
use evrs_bench::peers::{epoll_raw::EpollChain, evrs::EvrsChain, mio::MioChain};
use std::io;

const ACTIVE: usize = 100;
const WRITES: usize = 1000;

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(have_libevent)]
mod libevent {
    #[link(name = "evrs_libevent_chain", kind = "static")]
    #[link(name = "event_core")]
    extern "C" {
        fn evrs_ab_libevent_new(n: usize) -> std::ffi::c_int;
        fn evrs_ab_libevent_run(active: usize, writes: usize) -> std::ffi::c_int;
    }
    /// The C chain (one per process: it lives in C globals).
    pub struct Chain;
    impl Chain {
        pub fn new(n: usize) -> std::io::Result<Chain> {
            // SAFETY: called once per process; the C side owns everything it creates.
            match unsafe { evrs_ab_libevent_new(n) } {
                0 => Ok(Chain),
                _ => Err(std::io::Error::other("libevent chain setup failed")),
            }
        }
        pub fn run(&mut self, active: usize, writes: usize) -> std::io::Result<u64> {
            // SAFETY: the chain was set up by `new`.
            match unsafe { evrs_ab_libevent_run(active, writes) } {
                0 => Ok(0),
                _ => Err(std::io::Error::other("libevent run failed")),
            }
        }
    }
}

type Run = Box<dyn FnMut() -> io::Result<u64>>;

fn median(v: &mut [u64]) -> f64 {
    v.sort_unstable();
    v[v.len() / 2] as f64
}

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let sizes: Vec<usize> = args
        .next()
        .map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_else(|| vec![100, 1000, 5000]);
    println!(
        "pipechain in-process A/B: {rounds} rounds, {ACTIVE} bytes injected + {WRITES} forwarded \
         per run; median thread CPU ns per callback (user + kernel)\n"
    );
    println!("| n | peer | CPU ns/event | best | vs raw-epoll | vs evrs |");
    println!("|---:|---|---:|---:|---:|---:|");
    for n in sizes {
        let peers = if cfg!(have_libevent) { 4 } else { 3 };
        let duplex = raise_nofile(fds_needed(n, false) * peers) < fds_needed(n, false) * peers;
        let mut runs: Vec<(&str, Run)> = Vec::new();
        // Rings are built in turn, evrs's second: the kernel objects of the first ring
        // built land differently (measurably) from the later ones.
        let mut c = EpollChain::new(n, duplex)?;
        let raw: Run = Box::new(move || c.run(ACTIVE, WRITES));
        let mut c = EvrsChain::new(n, duplex, evrs::Method::Epoll)?;
        runs.push(("evrs", Box::new(move || c.run(ACTIVE, WRITES))));
        runs.push(("raw-epoll", raw));
        let mut c = MioChain::new(n, duplex)?;
        runs.push(("mio", Box::new(move || c.run(ACTIVE, WRITES))));
        #[cfg(have_libevent)]
        if !duplex {
            if let Ok(mut c) = libevent::Chain::new(n) {
                runs.push(("libevent", Box::new(move || c.run(ACTIVE, WRITES))));
            }
        }
        let mut cpu: Vec<Vec<u64>> = vec![Vec::new(); runs.len()];
        for round in 0..rounds + 5 {
            for k in 0..runs.len() {
                let i = (k + round) % runs.len();
                let c0 = thread_cpu_ns();
                (runs[i].1)()?;
                let c1 = thread_cpu_ns();
                if round >= 5 {
                    cpu[i].push(c1 - c0);
                }
            }
        }
        let per_event = (ACTIVE + WRITES) as f64;
        let stats: Vec<(f64, f64)> = cpu
            .iter_mut()
            .map(|v| {
                let best = *v.iter().min().unwrap_or(&0) as f64;
                (median(v) / per_event, best / per_event)
            })
            .collect();
        let raw = stats[1].0;
        let ev = stats[0].0;
        let label = if duplex {
            format!("{n} (duplex)")
        } else {
            n.to_string()
        };
        for (i, (name, _)) in runs.iter().enumerate() {
            let (m, b) = stats[i];
            println!(
                "| {label} | {name} | {m:.0} | {b:.0} | {:.3}x | {:.3}x |",
                m / raw,
                m / ev
            );
        }
    }
    Ok(())
}
