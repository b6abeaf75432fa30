//! The report: the markdown tables and notes `evrs-bench` prints from the children's samples.

use super::*;

pub(crate) fn median(v: &[u64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_unstable();
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m] as f64
    } else {
        (s[m - 1] + s[m]) as f64 / 2.0
    }
}

pub(crate) fn ratio(a: f64, b: Option<f64>) -> String {
    match b {
        Some(b) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".into(),
    }
}

/// The spread of per-process medians, as "max/min - 1" in percent.
pub(crate) fn spread(s: &Stat) -> String {
    if s.medians.len() < 2 {
        return "-".into();
    }
    let hi = s.medians.iter().copied().fold(0.0, f64::max);
    format!("{:.0}%", (hi / s.median - 1.0) * 100.0)
}

pub(crate) fn print_header(o: &Options) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!("## evrs benchmarks");
    println!();
    println!(
        "{cpu}, {cores} cores, Linux {}; {} mode; {} round(s), each peer in a fresh process \
         per round.",
        kernel.trim(),
        if o.quick { "quick" } else { "full" },
        o.rounds
    );
    println!(
        "Figures are the best per-process median over the rounds; \"spread\" is how much \
         the worst round's median was above it."
    );
    println!(
        "Ratios: peer/evrs (above 1.00x: evrs is faster) and peer/raw (raw-epoll, the floor)."
    );
    println!();
}

pub(crate) fn print_pipechain(res: &Results, o: &Options, sizes: &[(usize, bool)]) {
    println!(
        "### pipechain: {} bytes injected, {} forwarded per run ({} callbacks/run)",
        o.active,
        o.writes,
        o.active + o.writes
    );
    println!();
    println!(
        "Dispatch time of one run (setup untimed). ns/event = µs/run / callbacks per run. \
         CPU ns/event = user + system CPU time of the process (getrusage; the total is exact, \
         only its user/system split is tick-sampled) per callback, over whole runs (including \
         the injection writes, the same for every peer): the cost that does not depend on \
         scheduling noise, kernel socket and epoll work included. user ns/event = its \
         user-mode part (rough). CPU vs raw = CPU ns/event / raw-epoll's."
    );
    println!();
    println!(
        "| n | peer | µs/run | best run µs | spread | ns/event | CPU ns/event | user ns/event | \
         vs evrs | vs raw-epoll | CPU vs raw |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &(n, duplex) in sizes {
        let med = |peer: &str| {
            res.stat(Bench::Pipechain, peer, n, "run_ns")
                .map(|s| s.median)
        };
        let (evrs, raw) = (med("evrs"), med("raw-epoll"));
        let cpu_per_event = |peer: &str| {
            let ev = res
                .stat(Bench::Pipechain, peer, n, "events")?
                .median
                .max(1.0);
            res.stat(Bench::Pipechain, peer, n, "cpu_ns_per_run")
                .map(|c| c.median / ev)
        };
        let raw_cpu = cpu_per_event("raw-epoll");
        let label = if duplex {
            format!("{n} (duplex)")
        } else {
            n.to_string()
        };
        for peer in &o.peers {
            let (Some(runs), Some(ev)) = (
                res.stat(Bench::Pipechain, peer, n, "run_ns"),
                res.stat(Bench::Pipechain, peer, n, "events"),
            ) else {
                continue;
            };
            let user = res
                .stat(Bench::Pipechain, peer, n, "user_ns_per_run")
                .map_or("-".to_string(), |u| {
                    format!("{:.0}", u.median / ev.median.max(1.0))
                });
            let cpu = cpu_per_event(peer);
            println!(
                "| {label} | {peer} | {:.1} | {:.1} | {} | {:.0} | {} | {user} | {} | {} | {} |",
                runs.median / 1e3,
                runs.best / 1e3,
                spread(&runs),
                runs.median / ev.median.max(1.0),
                cpu.map_or("-".to_string(), |c| format!("{c:.0}")),
                ratio(runs.median, evrs),
                ratio(runs.median, raw),
                cpu.map_or("-".to_string(), |c| ratio(c, raw_cpu)),
            );
        }
    }
    if sizes.iter().any(|s| s.1) {
        println!();
        println!(
            "(duplex): n/2 socketpairs, each carrying two ring elements (one per direction), \
             because 2n fds exceed RLIMIT_NOFILE; still n watched fds and n events."
        );
    }
    println!();
}

pub(crate) fn print_adddel(res: &Results, o: &Options) {
    let n = ADDDEL_N;
    println!("### timers add+del: {n} timers, random 1-1000 ms, all added then all deleted");
    println!();
    println!(
        "Event objects created untimed (tokio: creating the boxed `Sleep` is part of add). \
         raw-epoll here is an indexed binary heap."
    );
    println!();
    println!("| peer | ns per add+del | best | spread | vs evrs | vs raw heap |");
    println!("|---|---:|---:|---:|---:|---:|");
    let med = |peer: &str| {
        res.stat(Bench::TimersAddDel, peer, n, "op_ns")
            .map(|s| s.median)
    };
    let (evrs, raw) = (med("evrs"), med("raw-epoll"));
    for peer in &o.peers {
        let Some(s) = res.stat(Bench::TimersAddDel, peer, n, "op_ns") else {
            continue;
        };
        println!(
            "| {peer} | {:.0} | {:.0} | {} | {} | {} |",
            s.median,
            s.best,
            spread(&s),
            ratio(s.median, evrs),
            ratio(s.median, raw)
        );
    }
    println!();
}

pub(crate) fn print_fire(res: &Results, o: &Options) {
    let n = FIRE_N;
    println!("### timers firing: {n} one-shot timers, random 1-100 ms, run until all fired");
    println!();
    println!(
        "CPU = getrusage user+sys over create + add + dispatch until the last one fired; \
         wall should be ~100 ms."
    );
    println!();
    println!("| peer | CPU ms | best CPU ms | spread | wall ms | vs evrs | vs raw heap |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let med = |peer: &str| {
        res.stat(Bench::TimersFire, peer, n, "cpu_ns")
            .map(|s| s.median)
    };
    let (evrs, raw) = (med("evrs"), med("raw-epoll"));
    for peer in &o.peers {
        let Some(cpu) = res.stat(Bench::TimersFire, peer, n, "cpu_ns") else {
            continue;
        };
        let wall = res
            .stat(Bench::TimersFire, peer, n, "wall_ns")
            .map_or(0.0, |s| s.median);
        println!(
            "| {peer} | {:.1} | {:.1} | {} | {:.1} | {} | {} |",
            cpu.median / 1e6,
            cpu.best / 1e6,
            spread(&cpu),
            wall / 1e6,
            ratio(cpu.median, evrs),
            ratio(cpu.median, raw)
        );
    }
    println!();
}

/// Producer thread counts of the xthread throughput benchmark.
pub(crate) const XT_PRODUCERS: [usize; 2] = [1, 4];
/// Commands each producer sends.
pub(crate) const XT_K: usize = 100_000;

/// The peers that have an xthread variant, in `--peers` order.
pub(crate) fn xthread_peers(o: &Options) -> impl Iterator<Item = &str> {
    o.peers
        .iter()
        .map(String::as_str)
        .filter(|p| matches!(*p, "evrs" | "tokio" | "libevent"))
}

/// Table rows (variant labels the children report) of an xthread peer.
pub(crate) fn xthread_labels(peer: &str, bench: Bench) -> &'static [&'static str] {
    match (peer, bench) {
        ("evrs", _) => &["evrs/run_in_loop", "evrs/activate", "evrs/shared_activate"],
        ("tokio", Bench::XthreadTput) => &["tokio/spawn", "tokio/mpsc"],
        ("tokio", _) => &["tokio/mpsc"],
        ("libevent", _) => &["libevent/event_active"],
        _ => &[],
    }
}

/// The libevent row the xthread ratios refer to.
pub(crate) const XT_LIBEVENT: &str = "libevent/event_active";

pub(crate) fn print_xthread(res: &Results, o: &Options) {
    let b = Bench::XthreadTput;
    println!(
        "### xthread throughput: P producer threads x {XT_K} commands each to the loop thread"
    );
    println!();
    println!(
        "Wall time from releasing the producers until the loop returns. cmd = one \
         `run_in_loop` closure / `activate` / `event_active` / tokio `spawn` / mpsc `send`. \
         Activations of an event that is already active are coalesced by evrs and libevent \
         (one callback), so for them callbacks/s < cmds/s; closures, tasks and messages all \
         run. \"x libevent\" = this row's rate / libevent's rate (2.00x = twice libevent's \
         throughput), for commands and for callbacks. eventfd writes/cmd: evrs's \
         `wake_writes()` (coalescing of wake-ups)."
    );
    println!();
    println!(
        "| P | peer/mechanism | M cmds/s | M callbacks/s | callbacks/cmd | eventfd writes/cmd \
         | spread | x libevent cmds/s | x libevent callbacks/s |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    for &n in &XT_PRODUCERS {
        let rate = |label: &str, metric: &str| {
            res.stat(b, label, n, metric)
                .map(|s| 1e12 / s.median.max(1.0))
        };
        let (lcmd, lcb) = (
            rate(XT_LIBEVENT, "ps_per_cmd"),
            rate(XT_LIBEVENT, "ps_per_cb"),
        );
        for peer in xthread_peers(o) {
            for &label in xthread_labels(peer, b) {
                let Some(cmd) = res.stat(b, label, n, "ps_per_cmd") else {
                    continue;
                };
                let cmd_rate = 1e12 / cmd.median.max(1.0);
                let cb_rate = rate(label, "ps_per_cb").unwrap_or(0.0);
                let per_cmd = res
                    .stat(b, label, n, "cb_per_kcmd")
                    .map_or("-".into(), |s| format!("{:.3}", s.median / 1e3));
                let wakes = res
                    .stat(b, label, n, "wakes_per_mcmd")
                    .map_or("-".into(), |s| format!("{:.4}", s.median / 1e6));
                println!(
                    "| {n} | {label} | {:.2} | {:.2} | {per_cmd} | {wakes} | {} | {} | {} |",
                    cmd_rate / 1e6,
                    cb_rate / 1e6,
                    spread(&cmd),
                    ratio(cmd_rate, lcmd),
                    ratio(cb_rate, lcb),
                );
            }
        }
    }
    println!();
    let b = Bench::XthreadLat;
    println!("### xthread latency: one producer pings the loop thread, spins for the reply");
    println!();
    println!(
        "Round trip: store the ping number, send (`activate` / `run_in_loop` / \
         `event_active` / mpsc `send`), spin until the loop thread's callback has stored it \
         in the reply atomic. Percentiles over the measured pings of one process (best \
         process's median shown); \"vs libevent\" = this row's median / libevent's (below \
         1.00x: faster)."
    );
    println!();
    println!("| peer/mechanism | median µs | p99 µs | min µs | spread | vs libevent |");
    println!("|---|---:|---:|---:|---:|---:|");
    let lib = res.stat(b, XT_LIBEVENT, 1, "rtt_p50_ns").map(|s| s.median);
    for peer in xthread_peers(o) {
        for &label in xthread_labels(peer, b) {
            let Some(p50) = res.stat(b, label, 1, "rtt_p50_ns") else {
                continue;
            };
            let us = |m: &str| {
                res.stat(b, label, 1, m)
                    .map_or("-".into(), |s| format!("{:.2}", s.median / 1e3))
            };
            println!(
                "| {label} | {:.2} | {} | {} | {} | {} |",
                p50.median / 1e3,
                us("rtt_p99_ns"),
                us("rtt_min_ns"),
                spread(&p50),
                ratio(p50.median, lib),
            );
        }
    }
    println!();
}

pub(crate) fn print_notes(res: &Results) {
    if res.notes.is_empty() {
        return;
    }
    println!("Not measured:");
    println!();
    for ((bench, peer, n), msg) in &res.notes {
        println!("- {bench} {peer} n={n}: {msg}");
    }
    println!();
}
