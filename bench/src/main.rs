//! The benchmark runner: `evrs-bench [pipechain|timers|xthread|all] [--quick] [options]`.
//!
//! Every (peer, benchmark, size) runs in a fresh child process - this executable re-executed
//! as `evrs-bench child ...` for the Rust peers, the compiled `bench/c` programs for the C
//! peers - which prints `SAMPLE` lines. Rounds go over all peers in turn, so a burst of
//! background load hits every peer alike. The runner then prints markdown tables.

mod report;

use evrs_bench::common::{fds_needed, raise_nofile, Bench, Params};
use evrs_bench::peers;
use report::*;
use std::collections::BTreeMap;
use std::io;
use std::process::{Command, ExitCode, Stdio};

/// Peers run by default, in table order.
const DEFAULT_PEERS: [&str; 6] = ["evrs", "raw-epoll", "libevent", "libev", "mio", "tokio"];
/// Peers that can be asked for with `--peers`.
const ALL_PEERS: [&str; 10] = [
    "evrs",
    "evrs-poll",
    "evrs-select",
    "evrs-uring",
    "raw-epoll",
    "libevent",
    "libev",
    "libev-uring",
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
  --peers    from: evrs evrs-poll evrs-select evrs-uring raw-epoll libevent libev
             libev-uring (libev's io_uring backend) mio tokio
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
        "evrs" | "evrs-poll" | "evrs-select" | "evrs-uring" | "evrs-raw" => {
            evrs_child(peer, bench, &p)
        }
        _ => Err(io::Error::other(format!("unknown Rust peer {peer}"))),
    }
}

#[cfg(feature = "evrs")]
fn evrs_child(peer: &str, bench: Bench, p: &Params) -> io::Result<()> {
    use evrs::Method;
    let m = match peer {
        "evrs-poll" => Method::Poll,
        "evrs-select" => Method::Select,
        "evrs-uring" => Method::IoUring,
        _ => Method::Epoll,
    };
    match bench {
        // `evrs-raw` differs only where evrs allocates per event in the timed part.
        Bench::TimersFire if peer == "evrs-raw" => peers::evrs::timers_fire_raw(p, m),
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
        "libev" | "libev-uring" => option_env!("EVRS_BENCH_LIBEV_BIN"),
        _ => None,
    }
}

fn is_c_peer(peer: &str) -> bool {
    matches!(peer, "libevent" | "libev" | "libev-uring")
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
        if peer == "libev-uring" {
            c.env("EVRS_BENCH_LIBEV_BACKEND", "io_uring");
        }
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
