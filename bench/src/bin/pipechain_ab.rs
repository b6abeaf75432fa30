//! In-process A/B of pipechain: evrs, the raw epoll loop, mio and (when its headers are
//! installed) libevent each get their own ring in one process, and take turns run by run
//! (the order rotating every round), each run timed by this thread's CPU clock
//! (`CLOCK_THREAD_CPUTIME_ID`: user + kernel time of the work itself, unaffected by being
//! descheduled). Separate processes on a shared VM differ by 10–100 % in wall time; taking
//! turns in one process exposes every peer to the same conditions.
//!
//! The order in which the rings are built matters by a few percent (the kernel objects of
//! rings built later perform differently), so the rounds are split into one epoch per peer:
//! each epoch builds every ring afresh in a rotated order, so each peer is built first once.
//!
//! `cargo run --release -p evrs-bench --bin pipechain_ab [ROUNDS] [n,n,..] [peer,peer,..]`
//! (default 400 rounds of 100 + 1000 bytes each, n = 100,1000,2000, all four peers). Rings
//! use the pairs layout (2n fds) when every peer's fits under RLIMIT_NOFILE, else the duplex
//! layout (n fds); for n near 10,000 name two peers (e.g. `evrs,libevent`) so both fit.

use evrs_bench::common::{fds_needed, raise_nofile, thread_cpu_ns};
use evrs_bench::peers::{epoll_raw::EpollChain, evrs::EvrsChain, mio::MioChain};
use std::io;

const ACTIVE: usize = 100;
const WRITES: usize = 1000;

#[cfg(have_libevent)]
mod libevent {
    #[link(name = "evrs_libevent_chain", kind = "static")]
    #[link(name = "event_core")]
    extern "C" {
        fn evrs_ab_libevent_new(n: usize, duplex: std::ffi::c_int) -> std::ffi::c_int;
        fn evrs_ab_libevent_run(active: usize, writes: usize) -> std::ffi::c_int;
        fn evrs_ab_libevent_free();
    }
    /// The C chain (one at a time: it lives in C globals).
    pub struct Chain;
    impl Drop for Chain {
        fn drop(&mut self) {
            // SAFETY: frees what `new` built; no other chain exists meanwhile.
            unsafe { evrs_ab_libevent_free() }
        }
    }
    impl Chain {
        pub fn new(n: usize, duplex: bool) -> std::io::Result<Chain> {
            // SAFETY: one chain at a time (the previous one was dropped); the C side owns
            // everything it creates.
            match unsafe { evrs_ab_libevent_new(n, duplex.into()) } {
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

/// Builds peer `name`'s ring of `n` elements and returns its run function.
fn build(name: &str, n: usize, duplex: bool) -> io::Result<Run> {
    Ok(match name {
        "evrs" => {
            let mut c = EvrsChain::new(n, duplex, evrs::Method::Epoll)?;
            Box::new(move || c.run(ACTIVE, WRITES))
        }
        "raw-epoll" => {
            let mut c = EpollChain::new(n, duplex)?;
            Box::new(move || c.run(ACTIVE, WRITES))
        }
        "mio" => {
            let mut c = MioChain::new(n, duplex)?;
            Box::new(move || c.run(ACTIVE, WRITES))
        }
        #[cfg(have_libevent)]
        "libevent" => {
            let mut c = libevent::Chain::new(n, duplex)?;
            Box::new(move || c.run(ACTIVE, WRITES))
        }
        other => return Err(io::Error::other(format!("unknown peer {other}"))),
    })
}

fn median(v: &mut [u64]) -> f64 {
    v.sort_unstable();
    v[v.len() / 2] as f64
}

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(400);
    let sizes: Vec<usize> = args
        .next()
        .map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_else(|| vec![100, 1000, 2000]);
    let all: &[&str] = if cfg!(have_libevent) {
        &["evrs", "raw-epoll", "mio", "libevent"]
    } else {
        &["evrs", "raw-epoll", "mio"]
    };
    let chosen: Vec<&str> = match args.next() {
        Some(list) => all
            .iter()
            .copied()
            .filter(|p| list.split(',').any(|x| x == *p))
            .collect(),
        None => all.to_vec(),
    };
    if chosen.len() < 2 {
        return Err(io::Error::other("name at least two peers"));
    }
    println!(
        "pipechain in-process A/B: {rounds} rounds, {ACTIVE} bytes injected + {WRITES} forwarded \
         per run; median thread CPU ns per callback (user + kernel)\n"
    );
    println!("| n | peer | CPU ns/event | best | vs raw-epoll | vs evrs |");
    println!("|---:|---|---:|---:|---:|---:|");
    for n in sizes {
        let peers = chosen.len() as u64;
        let duplex = raise_nofile(fds_needed(n, false) * peers) < fds_needed(n, false) * peers;
        let names = chosen.clone();
        let mut cpu: Vec<Vec<u64>> = vec![Vec::new(); names.len()];
        let epochs = names.len();
        for epoch in 0..epochs {
            // Build in rotated order (the previous epoch's rings are closed by now); keep
            // `runs` in name order.
            let mut runs: Vec<Option<Run>> = (0..names.len()).map(|_| None).collect();
            for k in 0..names.len() {
                let i = (k + epoch) % names.len();
                runs[i] = Some(build(names[i], n, duplex)?);
            }
            let mut runs: Vec<Run> = runs.into_iter().map(Option::unwrap).collect();
            let per_epoch = rounds.div_ceil(epochs);
            for round in 0..per_epoch + 5 {
                for k in 0..runs.len() {
                    let i = (k + round) % runs.len();
                    let c0 = thread_cpu_ns();
                    (runs[i])()?;
                    let c1 = thread_cpu_ns();
                    if round >= 5 {
                        cpu[i].push(c1 - c0);
                    }
                }
            }
        }
        let runs = &names;
        let per_event = (ACTIVE + WRITES) as f64;
        let stats: Vec<(f64, f64)> = cpu
            .iter_mut()
            .map(|v| {
                let best = *v.iter().min().unwrap_or(&0) as f64;
                (median(v) / per_event, best / per_event)
            })
            .collect();
        let of = |peer: &str| names.iter().position(|p| *p == peer).map(|i| stats[i].0);
        let (raw, ev) = (of("raw-epoll"), of("evrs"));
        let label = if duplex {
            format!("{n} (duplex)")
        } else {
            n.to_string()
        };
        for (i, name) in runs.iter().enumerate() {
            let (m, b) = stats[i];
            let ratio = |base: Option<f64>| base.map_or("-".into(), |b| format!("{:.3}x", m / b));
            println!(
                "| {label} | {name} | {m:.0} | {b:.0} | {} | {} |",
                ratio(raw),
                ratio(ev)
            );
        }
    }
    Ok(())
}
