//! The benchmark runner: `evrs-bench [pipechain|timers|xthread|all] [--quick] [options]`.
//!
//! Every (peer, benchmark, size) runs in a fresh child process - this executable re-executed
//! as `evrs-bench child ...` for the Rust peers, the compiled `bench/c` programs for the C
//! peers - which prints `SAMPLE` lines. Rounds go over all peers in turn, so a burst of
//! background load hits every peer alike. The runner then prints markdown tables.

use evrs_bench::common::{fds_needed, raise_nofile, Bench, Params};
use evrs_bench::peers;
use std::collections::BTreeMap;
use std::io;
use std::process::{Command, ExitCode, Stdio};

/// Peers run by default, in table order.
const DEFAULT_PEERS: [&str; 6] = ["evrs", "raw-epoll", "libevent", "libev", "mio", "tokio"];
/// Peers that can be asked for with `--peers`.
const ALL_PEERS: [&str; 8] = [
    "evrs",
    "evrs-poll",
    "evrs-select",
    "raw-epoll",
    "libevent",
    "libev",
    "mio",
    "tokio",
];

const USAGE: &str = "\
usage: evrs-bench [pipechain|timers|xthread|all] [--quick] [--peers a,b,..] [--sizes n,..]
                  [--active A] [--writes W] [--rounds R]
  pipechain  socketpair ring (libevent's test/bench.c shape), n = 100, 1000, 10000
  timers     1,000,000 timers added then deleted; 100,000 timers firing over ~100 ms
  xthread    cross-thread commands: throughput (1 and 4 producers x 100,000) and
             ping latency (20,000 round trips); peers evrs, tokio, libevent
  all        all three (default)
  --quick    few iterations, for a smoke test (< 60 s)
  --peers    from: evrs evrs-poll evrs-select raw-epoll libevent libev mio tokio
             (default: evrs raw-epoll libevent libev mio tokio)
  --sizes    pipechain ring sizes (default 100,1000,10000)
  --active   bytes injected per pipechain run (default 100)
  --writes   bytes forwarded per pipechain run (default 1000)
  --rounds   times every peer runs in turn (default 3, quick 1)
  --layout   pipechain ring layout: pairs (2n fds, bench.c), duplex (n fds), or
             auto (default: pairs when RLIMIT_NOFILE allows, else duplex)
internal: evrs-bench child PEER BENCH N ACTIVE WRITES REPS WARMUP DUPLEX";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("child") {
        return match child(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("evrs-bench child {}: {e}", args[1..].join(" "));
                ExitCode::FAILURE
            }
        };
    }
    match Options::parse(&args) {
        Ok(o) => {
            run(&o);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn parse_params(a: &[String]) -> io::Result<Params> {
    let num = |i: usize| -> io::Result<usize> {
        a.get(i)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("bad or missing argument {i}")))
    };
    Ok(Params {
        n: num(0)?,
        active: num(1)?,
        writes: num(2)?,
        reps: num(3)?,
        warmup: num(4)?,
        duplex: num(5).unwrap_or(0) != 0,
    })
}

/// A child process: one peer, one benchmark.
fn child(a: &[String]) -> io::Result<()> {
    let (peer, bench) = match a {
        [peer, bench, ..] => (peer.as_str(), bench.as_str()),
        _ => return Err(io::Error::other(USAGE)),
    };
    let bench = Bench::from_name(bench).ok_or_else(|| io::Error::other("unknown benchmark"))?;
    let p = parse_params(&a[2..])?;
    if matches!(bench, Bench::XthreadTput | Bench::XthreadLat) {
        return xthread_child(peer, bench, &p);
    }
    let need = fds_needed(p.n, p.duplex);
    if bench == Bench::Pipechain && raise_nofile(need) < need {
        return Err(io::Error::other("RLIMIT_NOFILE too low"));
    }
    match peer {
        "raw-epoll" => match bench {
            Bench::Pipechain => peers::epoll_raw::pipechain(&p),
            Bench::TimersAddDel => peers::epoll_raw::timers_adddel(&p),
            Bench::TimersFire => peers::epoll_raw::timers_fire(&p),
            _ => unreachable!("xthread handled above"),
        },
        "mio" => match bench {
            Bench::Pipechain => peers::mio::pipechain(&p),
            _ => peers::mio::timers(bench, &p),
        },
        "tokio" => match bench {
            Bench::Pipechain => peers::tokio::pipechain(&p),
            Bench::TimersAddDel => peers::tokio::timers_adddel(&p),
            Bench::TimersFire => peers::tokio::timers_fire(&p),
            _ => unreachable!("xthread handled above"),
        },
        "evrs" | "evrs-poll" | "evrs-select" => evrs_child(peer, bench, &p),
        _ => Err(io::Error::other(format!("unknown Rust peer {peer}"))),
    }
}

#[cfg(feature = "evrs")]
fn evrs_child(peer: &str, bench: Bench, p: &Params) -> io::Result<()> {
    use evrs::Method;
    let m = match peer {
        "evrs-poll" => Method::Poll,
        "evrs-select" => Method::Select,
        _ => Method::Epoll,
    };
    match bench {
        Bench::Pipechain => peers::evrs::pipechain(p, m),
        Bench::TimersAddDel => peers::evrs::timers_adddel(p, m),
        Bench::TimersFire => peers::evrs::timers_fire(p, m),
        Bench::XthreadTput | Bench::XthreadLat => unreachable!("xthread handled apart"),
    }
}

/// A Rust xthread child (evrs and tokio; the others have no cross-thread API here).
fn xthread_child(peer: &str, bench: Bench, p: &Params) -> io::Result<()> {
    match (peer, bench) {
        #[cfg(feature = "evrs")]
        ("evrs", Bench::XthreadTput) => peers::evrs::xthread_tput(p),
        #[cfg(feature = "evrs")]
        ("evrs", Bench::XthreadLat) => peers::evrs::xthread_lat(p),
        ("tokio", Bench::XthreadTput) => peers::tokio::xthread_tput(p),
        ("tokio", Bench::XthreadLat) => peers::tokio::xthread_lat(p),
        _ => {
            evrs_bench::common::skip(bench, peer, p.n, "no cross-thread variant");
            Ok(())
        }
    }
}

#[cfg(not(feature = "evrs"))]
fn evrs_child(peer: &str, bench: Bench, p: &Params) -> io::Result<()> {
    evrs_bench::common::skip(bench, peer, p.n, "built without the evrs feature");
    Ok(())
}

struct Options {
    pipechain: bool,
    timers: bool,
    xthread: bool,
    quick: bool,
    peers: Vec<String>,
    sizes: Vec<usize>,
    active: usize,
    writes: usize,
    rounds: usize,
    layout: Layout,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    Pairs,
    Duplex,
    Auto,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let mut o = Options {
            pipechain: true,
            timers: true,
            xthread: true,
            quick: false,
            peers: DEFAULT_PEERS.iter().map(|s| s.to_string()).collect(),
            sizes: vec![100, 1000, 10_000],
            active: 100,
            writes: 1000,
            rounds: 0,
            layout: Layout::Auto,
        };
        let mut it = args.iter();
        let list = |v: Option<&String>, what: &str| -> Result<Vec<String>, String> {
            let v = v.ok_or(format!("{what} needs a value"))?;
            Ok(v.split(',').map(|s| s.trim().to_string()).collect())
        };
        let num = |v: Option<&String>, what: &str| -> Result<usize, String> {
            v.and_then(|s| s.parse().ok())
                .ok_or(format!("{what} needs a number"))
        };
        while let Some(a) = it.next() {
            match a.as_str() {
                "pipechain" => (o.pipechain, o.timers, o.xthread) = (true, false, false),
                "timers" => (o.pipechain, o.timers, o.xthread) = (false, true, false),
                "xthread" => (o.pipechain, o.timers, o.xthread) = (false, false, true),
                "all" => (o.pipechain, o.timers, o.xthread) = (true, true, true),
                "--quick" => o.quick = true,
                "--peers" => {
                    o.peers = list(it.next(), a)?;
                    if let Some(bad) = o.peers.iter().find(|p| !ALL_PEERS.contains(&p.as_str())) {
                        return Err(format!("unknown peer {bad}"));
                    }
                }
                "--sizes" => {
                    o.sizes = list(it.next(), a)?
                        .iter()
                        .map(|s| s.parse().map_err(|_| format!("bad size {s}")))
                        .collect::<Result<_, _>>()?;
                }
                "--active" => o.active = num(it.next(), a)?.max(1),
                "--writes" => o.writes = num(it.next(), a)?,
                "--rounds" => o.rounds = num(it.next(), a)?.max(1),
                "--layout" => {
                    o.layout = match it.next().map(String::as_str) {
                        Some("pairs") => Layout::Pairs,
                        Some("duplex") => Layout::Duplex,
                        Some("auto") => Layout::Auto,
                        _ => return Err("--layout needs pairs, duplex or auto".into()),
                    }
                }
                "-h" | "--help" => return Err(String::new()),
                _ => return Err(format!("unknown argument {a}")),
            }
        }
        if o.rounds == 0 {
            o.rounds = if o.quick { 1 } else { 3 };
        }
        Ok(o)
    }
}

/// Samples of one (benchmark, peer, n), by metric, one inner vector per child process.
type Metrics = BTreeMap<String, Vec<Vec<u64>>>;

type Key = (String, String, usize);

#[derive(Default)]
struct Results {
    samples: BTreeMap<Key, Metrics>,
    notes: BTreeMap<Key, String>,
}

/// Summary of one metric: the median of each process's samples, the best of those medians
/// (what the tables and ratios use), and the best single sample.
struct Stat {
    median: f64,
    best: f64,
    medians: Vec<f64>,
}

impl Results {
    fn stat(&self, bench: Bench, peer: &str, n: usize, metric: &str) -> Option<Stat> {
        let groups = self
            .samples
            .get(&(bench.name().to_string(), peer.to_string(), n))?
            .get(metric)?;
        let medians: Vec<f64> = groups
            .iter()
            .filter(|g| !g.is_empty())
            .map(|g| median(g))
            .collect();
        let best = groups.iter().flatten().copied().min()? as f64;
        let median = medians.iter().copied().fold(f64::INFINITY, f64::min);
        Some(Stat {
            median,
            best,
            medians,
        })
    }

    fn note(&mut self, bench: Bench, peer: &str, n: usize, msg: String) {
        self.notes
            .entry((bench.name().to_string(), peer.to_string(), n))
            .or_insert(msg);
    }

    /// Folds one child's output in.
    fn parse(&mut self, out: &str) {
        let mut mine: BTreeMap<Key, BTreeMap<String, Vec<u64>>> = BTreeMap::new();
        for line in out.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            match f.as_slice() {
                ["SAMPLE", bench, peer, n, metric, v] => {
                    let (Ok(n), Ok(v)) = (n.parse(), v.parse()) else {
                        continue;
                    };
                    mine.entry((bench.to_string(), peer.to_string(), n))
                        .or_default()
                        .entry(metric.to_string())
                        .or_default()
                        .push(v);
                }
                ["SKIP", bench, peer, n, reason @ ..] => {
                    if let Ok(n) = n.parse() {
                        self.notes
                            .entry((bench.to_string(), peer.to_string(), n))
                            .or_insert(reason.join(" "));
                    }
                }
                _ => {}
            }
        }
        for (key, metrics) in mine {
            let entry = self.samples.entry(key).or_default();
            for (metric, v) in metrics {
                entry.entry(metric).or_default().push(v);
            }
        }
    }
}

fn c_peer_bin(peer: &str) -> Option<&'static str> {
    match peer {
        "libevent" => option_env!("EVRS_BENCH_LIBEVENT_BIN"),
        "libev" => option_env!("EVRS_BENCH_LIBEV_BIN"),
        _ => None,
    }
}

fn is_c_peer(peer: &str) -> bool {
    matches!(peer, "libevent" | "libev")
}

/// Runs one child and folds its output into `res`.
fn spawn(res: &mut Results, peer: &str, bench: Bench, p: &Params) {
    let args = [
        p.n,
        p.active,
        p.writes,
        p.reps,
        p.warmup,
        usize::from(p.duplex),
    ]
    .map(|v| v.to_string());
    let mut cmd = if is_c_peer(peer) {
        let Some(bin) = c_peer_bin(peer) else {
            res.note(
                bench,
                peer,
                p.n,
                "not built (library headers missing)".into(),
            );
            return;
        };
        let mut c = Command::new(bin);
        c.arg(bench.name());
        c
    } else {
        let exe = std::env::current_exe().expect("own executable");
        let mut c = Command::new(exe);
        c.args(["child", peer, bench.name()]);
        c
    };
    cmd.args(&args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    eprint!("  {:<10} {:<14} n={:<8}", peer, bench.name(), p.n);
    let t0 = std::time::Instant::now();
    match cmd.output() {
        Ok(out) if out.status.success() => {
            res.parse(&String::from_utf8_lossy(&out.stdout));
            eprintln!(" {:>6.2} s", t0.elapsed().as_secs_f64());
        }
        Ok(out) => {
            res.parse(&String::from_utf8_lossy(&out.stdout));
            eprintln!(" FAILED ({})", out.status);
            res.note(bench, peer, p.n, format!("failed: {}", out.status));
        }
        Err(e) => {
            eprintln!(" cannot start: {e}");
            res.note(bench, peer, p.n, format!("cannot start: {e}"));
        }
    }
}

fn run(o: &Options) {
    let mut res = Results::default();
    let max_n = o.sizes.iter().copied().max().unwrap_or(0);
    let limit = raise_nofile(fds_needed(max_n, false));
    // (n, duplex) for every ring size that fits the fd limit.
    let mut sizes: Vec<(usize, bool)> = Vec::new();
    if o.pipechain {
        for &n in &o.sizes {
            let fits = |duplex| limit >= fds_needed(n, duplex);
            let duplex = match o.layout {
                Layout::Pairs => false,
                Layout::Duplex => true,
                Layout::Auto => !fits(false),
            };
            if fits(duplex) {
                if duplex && o.layout == Layout::Auto {
                    eprintln!(
                        "pipechain n={n}: {} fds do not fit RLIMIT_NOFILE={limit}; \
                         using the duplex layout ({} fds)",
                        fds_needed(n, false),
                        fds_needed(n, true)
                    );
                }
                sizes.push((n, duplex));
            } else {
                eprintln!(
                    "skipping pipechain n={n}: needs {} fds, RLIMIT_NOFILE is {limit} \
                     (raise the hard limit, e.g. `ulimit -Hn {}`)",
                    fds_needed(n, duplex),
                    fds_needed(n, duplex)
                );
            }
        }
    }
    let (pc_reps, pc_warm) = if o.quick { (30, 5) } else { (200, 20) };
    let (ad_reps, ad_warm) = if o.quick { (1, 1) } else { (2, 1) };
    let (fi_reps, fi_warm) = if o.quick { (1, 0) } else { (3, 1) };
    let (xt_reps, xt_warm) = if o.quick { (2, 1) } else { (5, 1) };
    let (lat_reps, lat_warm) = if o.quick {
        (5_000, 500)
    } else {
        (20_000, 2_000)
    };
    let t0 = std::time::Instant::now();
    for round in 0..o.rounds {
        eprintln!("round {} of {}", round + 1, o.rounds);
        for &(n, duplex) in &sizes {
            for peer in &o.peers {
                let p = Params {
                    n,
                    active: o.active,
                    writes: o.writes,
                    reps: pc_reps,
                    warmup: pc_warm,
                    duplex,
                };
                spawn(&mut res, peer, Bench::Pipechain, &p);
            }
        }
        if o.timers {
            for (bench, n, reps, warmup) in [
                (Bench::TimersAddDel, ADDDEL_N, ad_reps, ad_warm),
                (Bench::TimersFire, FIRE_N, fi_reps, fi_warm),
            ] {
                for peer in &o.peers {
                    let p = Params {
                        n,
                        active: 0,
                        writes: 0,
                        reps,
                        warmup,
                        duplex: false,
                    };
                    spawn(&mut res, peer, bench, &p);
                }
            }
        }
        if o.xthread {
            for peer in xthread_peers(o) {
                for &n in &XT_PRODUCERS {
                    let p = Params {
                        n,
                        active: 0,
                        writes: XT_K,
                        reps: xt_reps,
                        warmup: xt_warm,
                        duplex: false,
                    };
                    spawn(&mut res, peer, Bench::XthreadTput, &p);
                }
                let p = Params {
                    n: 1,
                    active: 0,
                    writes: 0,
                    reps: lat_reps,
                    warmup: lat_warm,
                    duplex: false,
                };
                spawn(&mut res, peer, Bench::XthreadLat, &p);
            }
        }
    }
    eprintln!("done in {:.0} s", t0.elapsed().as_secs_f64());
    println!();
    print_header(o);
    if o.pipechain {
        print_pipechain(&res, o, &sizes);
    }
    if o.timers {
        print_adddel(&res, o);
        print_fire(&res, o);
    }
    if o.xthread {
        print_xthread(&res, o);
    }
    print_notes(&res);
}

/// Timers added then deleted.
const ADDDEL_N: usize = 1_000_000;
/// Timers firing.
const FIRE_N: usize = 100_000;

fn median(v: &[u64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_unstable();
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m] as f64
    } else {
        (s[m - 1] + s[m]) as f64 / 2.0
    }
}

fn ratio(a: f64, b: Option<f64>) -> String {
    match b {
        Some(b) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".into(),
    }
}

/// The spread of per-process medians, as "max/min - 1" in percent.
fn spread(s: &Stat) -> String {
    if s.medians.len() < 2 {
        return "-".into();
    }
    let hi = s.medians.iter().copied().fold(0.0, f64::max);
    format!("{:.0}%", (hi / s.median - 1.0) * 100.0)
}

fn print_header(o: &Options) {
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

fn print_pipechain(res: &Results, o: &Options, sizes: &[(usize, bool)]) {
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

fn print_adddel(res: &Results, o: &Options) {
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

fn print_fire(res: &Results, o: &Options) {
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
const XT_PRODUCERS: [usize; 2] = [1, 4];
/// Commands each producer sends.
const XT_K: usize = 100_000;

/// The peers that have an xthread variant, in `--peers` order.
fn xthread_peers(o: &Options) -> impl Iterator<Item = &str> {
    o.peers
        .iter()
        .map(String::as_str)
        .filter(|p| matches!(*p, "evrs" | "tokio" | "libevent"))
}

/// Table rows (variant labels the children report) of an xthread peer.
fn xthread_labels(peer: &str, bench: Bench) -> &'static [&'static str] {
    match (peer, bench) {
        ("evrs", _) => &["evrs/run_in_loop", "evrs/activate", "evrs/shared_activate"],
        ("tokio", Bench::XthreadTput) => &["tokio/spawn", "tokio/mpsc"],
        ("tokio", _) => &["tokio/mpsc"],
        ("libevent", _) => &["libevent/event_active"],
        _ => &[],
    }
}

/// The libevent row the xthread ratios refer to.
const XT_LIBEVENT: &str = "libevent/event_active";

fn print_xthread(res: &Results, o: &Options) {
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

fn print_notes(res: &Results) {
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
