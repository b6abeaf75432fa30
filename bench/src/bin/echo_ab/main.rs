//! In-process A/B of a TCP echo server over bufferevents (issue 15): N connections to one
//! single-threaded server, 64-byte messages ping-ponged. The servers (evrs bufferevent and
//! evrs async, each on epoll and on io_uring — `evrs-uring`, `evrs-async-uring`, readiness
//! mode — libevent bufferevent, a raw epoll loop — the floor — smol and tokio
//! `current_thread`, and `raw-uring`: hand-written io_uring, completion-style) live in
//! this process, each on its own listening socket on 127.0.0.1:0, and take turns run by run
//! as in `pipechain_ab` (the order rotating every round, the build order every epoch). Each
//! run is timed by this (the server) thread's CPU clock (`CLOCK_THREAD_CPUTIME_ID`: user +
//! kernel time of the server's own work, unaffected by being descheduled on this noisy VM).
//!
//! The client is a child process (this binary, `--client`) running a raw epoll loop, the
//! same for every server: it sends one 64-byte message per connection, and each echo
//! received sends the next on that connection until the run's M round trips are done; it
//! then says `done` on its stdout, a pipe every server watches as its stop fd. A separate
//! process because RLIMIT_NOFILE (20,000 here, and the hard limit cannot be raised) counts
//! both ends of every connection when they are in one process: 10,000 connections would not
//! fit. With the client outside, the server side needs N fds per server built; sizes where
//! all servers fit take turns by round, sizes where only fewer fit build them in groups
//! (at N = 10,000: one at a time, each for its share of the rounds), and sizes where not
//! even one fits are skipped (printed).
//!
//! Idle memory: around each build the heap is measured (`mallinfo2`: every allocation of
//! this process goes through glibc malloc — Rust's through the `System` allocator — so C and
//! Rust are counted alike, malloc headers included), after accepting the N connections and
//! again after one echo on each; a counting global allocator adds the bytes Rust asked for
//! and, for evrs, which allocation sizes the connections hold.
//!
//! `cargo run --release -p evrs-bench --bin echo_ab [ROUNDS] [n,n,..] [server,server,..]`
//! (default 12 rounds, n = 100,1000,10000, every server); `echo_ab --quick` is a smoke run
//! (10 connections, a few hundred round trips).

use evrs::bufferevent::{BevCtx, BevEvents, BevHandler, BevOptions};
use evrs::{EventBase, EventConfig, LoopFlags, Method, What};
use evrs_bench::common::raise_nofile;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashSet;
use std::io::{self, BufRead, Write};
use std::net::TcpListener;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};

const MSG: usize = 64;
/// Untimed runs at the start of every epoch.
const WARMUP: usize = 2;

mod client;
mod memory;
mod raw_uring;
mod servers;
mod sys;

use client::*;
use memory::*;
use servers::*;
use sys::*;
// ---------------------------------------------------------------------------------------
// The A/B.

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[derive(Default)]
struct Stats {
    cpu_ns: Vec<f64>,
    wall_ns: Vec<f64>,
    mem: Vec<MemSample>,
}

/// Builds server `name` with `n` connections from the client (id `id`), measuring the heap
/// around it (accept, then one echo per connection).
fn setup(
    name: &str,
    id: usize,
    n: usize,
    client: &mut Client,
) -> io::Result<(Box<dyn Server>, MemSample)> {
    let l = listener()?;
    let port = l.local_addr()?.port();
    COUNT_ON.store(true, Ordering::Relaxed);
    let h0 = Heap::now();
    let mut s = build(name, l, client.fd, n)?;
    // The empty server (base, listener, runtime) is not per-connection memory.
    let h1 = Heap::now();
    client.send(&format!("connect {id} {port} {n}"))?;
    s.accept_until(n)?;
    client.expect("ok")?;
    let h2 = Heap::now();
    client.send(&format!("run {id} {n}"))?;
    s.serve()?;
    client.expect("done")?;
    let h3 = Heap::now();
    COUNT_ON.store(false, Ordering::Relaxed);
    let per = |b: i64| b as f64 / n as f64;
    let mem = MemSample {
        accepted: per(h2.malloc - h1.malloc),
        echoed: per(h3.malloc - h1.malloc),
        after_runs: 0.0,
        big_bytes: 0.0,
        empty: h1.malloc - h0.malloc,
        rust_bytes: per((h3.bytes - h1.bytes) as i64),
        rust_allocs: per((h3.allocs - h1.allocs) as i64),
        by_size: h3
            .by_size
            .iter()
            .zip(&h1.by_size)
            .map(|(a, b)| per((a - b) as i64))
            .collect(),
    };
    let small: isize = (1..CLASSES - 1)
        .map(|k| (h3.by_size[k] - h1.by_size[k]) * (k as isize * 16))
        .sum();
    let mut mem = mem;
    // Approximate (classes are rounded up to 16 B): the rest of the net bytes.
    mem.big_bytes = per((h3.bytes - h1.bytes - small) as i64);
    Ok((s, mem))
}

/// Heap per evrs event slot: `n` events made with `new_event_raw` (no closure), not added.
fn evrs_event_slot(n: usize) -> io::Result<f64> {
    fn cb(_: &mut EventBase, _: evrs::Event, _: What, _: evrs::RawArg) {}
    let mut base = EventConfig::new().method(Method::Epoll).build()?;
    let h0 = malloc_in_use();
    for i in 0..n {
        base.new_event_raw(-1, What::empty(), cb, evrs::RawArg::from_usize(i))?;
    }
    Ok((malloc_in_use() - h0) as f64 / n as f64)
}

struct Options {
    rounds: usize,
    sizes: Vec<usize>,
    servers: Vec<&'static str>,
    /// Round trips per run.
    msgs: fn(usize) -> usize,
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--client") {
        return client_main();
    }
    let all: &[&'static str] = if cfg!(have_libevent) {
        &[
            "evrs",
            "evrs-uring",
            "evrs-async",
            "evrs-async-uring",
            "libevent",
            "libevent-events",
            "raw-epoll",
            "raw-uring",
            "smol",
            "tokio",
        ]
    } else {
        &[
            "evrs",
            "evrs-uring",
            "evrs-async",
            "evrs-async-uring",
            "raw-epoll",
            "raw-uring",
            "smol",
            "tokio",
        ]
    };
    if !cfg!(have_libevent) {
        println!(
            "libevent server skipped: <event2/buffer.h> or <event2/listener.h> not found, or \
             c/libevent_echo.c did not build (install libevent-dev)\n"
        );
    }
    let o = if args.first().map(String::as_str) == Some("--quick") {
        Options {
            rounds: 4,
            sizes: vec![10],
            servers: all.to_vec(),
            msgs: |_| 300,
        }
    } else {
        let (rounds, sizes, servers) =
            evrs_bench::ab::parse_args(&args, 12, &[100, 1000, 10_000], all);
        Options {
            rounds,
            sizes,
            servers,
            msgs: |n| (2 * n).max(20_000),
        }
    };
    if o.servers.is_empty() {
        return Err(io::Error::other("no known server named"));
    }
    let limit = raise_nofile(u64::MAX >> 1) as usize;
    let mut client = Client::spawn(&[])?;
    // SAFETY: ignoring SIGPIPE only turns a write to a closed socket into EPIPE.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };

    println!(
        "bufferevent echo in-process A/B: {MSG}-byte messages ping-ponged over N connections \
         to one single-threaded server; client: a raw epoll loop in a child process; {} \
         rounds; RLIMIT_NOFILE {limit}\n",
        o.rounds
    );
    let mut results: Vec<(usize, String, Vec<Stats>)> = Vec::new();
    let mut skipped = Vec::new();
    for &n in &o.sizes {
        // Per built server: n connections here and n in the client, plus a few fds.
        let fit = limit.saturating_sub(64) / (n + 8);
        if fit == 0 {
            skipped.push(format!(
                "n = {n}: {n} connection fds (+ listener, epoll, pipes) exceed RLIMIT_NOFILE \
                 {limit}"
            ));
            continue;
        }
        let group = fit.min(o.servers.len());
        let m = (o.msgs)(n);
        let names = &o.servers;
        let mut stats: Vec<Stats> = names.iter().map(|_| Stats::default()).collect();
        let epochs = names.len();
        let per_epoch = o.rounds.div_ceil(epochs);
        for epoch in 0..epochs {
            let order: Vec<usize> = (0..names.len())
                .map(|k| (k + epoch) % names.len())
                .collect();
            for chunk in order.chunks(group) {
                let mut servers: Vec<(usize, Box<dyn Server>)> = Vec::new();
                for &i in chunk {
                    let (s, mem) = setup(names[i], i, n, &mut client)?;
                    stats[i].mem.push(mem);
                    servers.push((i, s));
                }
                for round in 0..per_epoch + WARMUP {
                    let len = servers.len();
                    for k in 0..len {
                        let (i, s) = &mut servers[(k + round) % len];
                        let (c0, t0) = (
                            clock(libc::CLOCK_THREAD_CPUTIME_ID),
                            clock(libc::CLOCK_MONOTONIC),
                        );
                        client.send(&format!("run {i} {m}"))?;
                        s.serve()?;
                        let (c1, t1) = (
                            clock(libc::CLOCK_THREAD_CPUTIME_ID),
                            clock(libc::CLOCK_MONOTONIC),
                        );
                        client.expect("done")?;
                        if round >= WARMUP {
                            stats[*i].cpu_ns.push((c1 - c0) as f64 / m as f64);
                            stats[*i].wall_ns.push((t1 - t0) as f64 / m as f64);
                        }
                    }
                }
                for (i, s) in servers {
                    client.send(&format!("close {i}"))?;
                    client.expect("ok")?;
                    let before = malloc_in_use();
                    drop(s);
                    if let Some(m) = stats[i].mem.last_mut() {
                        let freed = before - malloc_in_use() - m.empty;
                        m.after_runs = freed as f64 / n as f64;
                    }
                }
            }
        }
        let label = if group < names.len() {
            format!("{n} (groups of {group})")
        } else {
            n.to_string()
        };
        results.push((
            n,
            label,
            stats
                .into_iter()
                .zip(names)
                .map(|(mut s, _)| {
                    // Keep order; sort copies only.
                    s.cpu_ns.sort_by(f64::total_cmp);
                    s.wall_ns.sort_by(f64::total_cmp);
                    s
                })
                .collect(),
        ));
        let _ = m;
    }
    report(&o, &mut results);
    for s in &skipped {
        println!("- skipped {s}");
    }
    Ok(())
}

fn report(o: &Options, results: &mut [(usize, String, Vec<Stats>)]) {
    let names = &o.servers;
    println!(
        "Median over the rounds. CPU ns/msg = server thread CPU time (CLOCK_THREAD_CPUTIME_ID, \
         user + kernel) per echoed message; k msgs/s (CPU) = 1e6 / CPU µs per message: the \
         server's throughput when it has a core to itself; k msgs/s (wall) = messages / wall \
         time of the run (client and server on 2 shared, loaded cores). Ratios: CPU per \
         message / raw-epoll's (≤ 1.10x is the target), and throughput (CPU) / libevent's \
         (≥ 1.15x is the target).\n"
    );
    println!(
        "| n | server | CPU ns/msg | best | k msgs/s (CPU) | k msgs/s (wall) | CPU vs raw-epoll \
         | throughput vs libevent |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|");
    for (_, label, stats) in results.iter_mut() {
        let med: Vec<f64> = stats.iter_mut().map(|s| median(&mut s.cpu_ns)).collect();
        let of = |p: &str| names.iter().position(|x| *x == p).map(|i| med[i]);
        let (raw, lib) = (of("raw-epoll"), of("libevent"));
        for (i, name) in names.iter().enumerate() {
            let s = &mut stats[i];
            let wall = median(&mut s.wall_ns);
            let best = s.cpu_ns.first().copied().unwrap_or(0.0);
            println!(
                "| {label} | {name} | {:.0} | {best:.0} | {:.0} | {:.0} | {} | {} |",
                med[i],
                1e6 / med[i],
                1e6 / wall,
                raw.map_or("-".into(), |r| format!("{:.2}x", med[i] / r)),
                lib.map_or("-".into(), |l| format!("{:.2}x", l / med[i])),
            );
        }
    }
    println!();
    println!(
        "Heap per connection (median over the builds): glibc bytes in use (mallinfo2 \
         uordblks + hblkhd, malloc headers included) after accepting N connections, and after \
         one 64-byte echo on each (idle again); Rust-requested bytes and live allocations per \
         connection (counting allocator; C allocations are not seen by it).\n"
    );
    println!(
        "| n | server | B/conn accepted | B/conn idle after 1 echo | B/conn idle after the runs \
         | Rust B/conn (1 echo) | Rust allocs/conn (1 echo) |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|");
    for (_, label, stats) in results.iter_mut() {
        for (i, name) in names.iter().enumerate() {
            let mem = &stats[i].mem;
            let m = |f: fn(&MemSample) -> f64| {
                let mut v: Vec<f64> = mem.iter().map(f).collect();
                median(&mut v)
            };
            let rust = if name.starts_with("libevent") {
                ("-".to_string(), "-".to_string())
            } else {
                (
                    format!("{:.0}", m(|s| s.rust_bytes)),
                    format!("{:.2}", m(|s| s.rust_allocs)),
                )
            };
            println!(
                "| {label} | {name} | {:.0} | {:.0} | {:.0} | {} | {} |",
                m(|s| s.accepted),
                m(|s| s.echoed),
                m(|s| s.after_runs),
                rust.0,
                rust.1
            );
        }
    }
    // What evrs's bytes are: live allocations by size at the largest size measured.
    if let Some((n, _, stats)) = results.last() {
        for (i, name) in names.iter().enumerate() {
            if ![
                "evrs",
                "evrs-uring",
                "evrs-async",
                "evrs-async-uring",
                "smol",
                "tokio",
            ]
            .contains(name)
            {
                continue;
            }
            let Some(s) = stats[i].mem.last() else {
                continue;
            };
            let mut parts: Vec<String> = s
                .by_size
                .iter()
                .enumerate()
                .filter(|(_, c)| c.abs() >= 0.01)
                .map(|(k, c)| {
                    let size = if k == CLASSES - 1 {
                        ">4096".to_string()
                    } else {
                        format!("≤{}", k * 16)
                    };
                    format!("{c:.2} × {size} B")
                })
                .collect();
            if parts.is_empty() {
                parts.push("none".into());
            }
            println!(
                "\n{name} at n = {n}, after 1 echo: live Rust allocations per idle connection \
                 by size: {}; of its {:.0} Rust B/conn, ~{:.0} are in arrays above 4 KiB (table \
                 slots, amortised)",
                parts.join(", "),
                s.rust_bytes,
                s.big_bytes
            );
            if *name == "evrs" {
                if let Ok(slot) = evrs_event_slot(*n) {
                    println!(
                        "\nevrs sizes: EvBuffer {} B inline (two per bufferevent, in its table \
                         slot); an event slot (new_event_raw, not added) {slot:.0} B of heap \
                         each at {n} events (one per idle bufferevent: the write event is made \
                         only while output waits)",
                        std::mem::size_of::<evrs::buffer::EvBuffer>()
                    );
                }
            }
        }
    }
    println!();
}
