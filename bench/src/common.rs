//! Pieces every peer shares: the socketpair ring, the byte-forwarding step, the deadline
//! generator, clocks, and the line protocol children use to report samples.

use std::io;
use std::os::unix::io::RawFd;
use std::time::Duration;

/// The benchmarks a child process can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bench {
    /// Socketpair ring, bytes forwarded around it; reports nanoseconds per run.
    Pipechain,
    /// Add then delete `n` timers; reports nanoseconds per add+del pair.
    TimersAddDel,
    /// `n` timers firing over ~100 ms; reports CPU and wall nanoseconds for the whole run.
    TimersFire,
    /// Cross-thread throughput: `n` producer threads each send `writes` commands to the loop
    /// thread; reports picoseconds per command and per callback (see [`XtputSample`]).
    XthreadTput,
    /// Cross-thread latency: one producer pings the loop thread `reps` times and spins until
    /// the reply; reports round-trip percentiles (see [`latency_samples`]).
    XthreadLat,
}

impl Bench {
    /// The name used on the command line and in the line protocol.
    pub fn name(self) -> &'static str {
        match self {
            Bench::Pipechain => "pipechain",
            Bench::TimersAddDel => "timers_adddel",
            Bench::TimersFire => "timers_fire",
            Bench::XthreadTput => "xthread_tput",
            Bench::XthreadLat => "xthread_lat",
        }
    }

    /// Parses [`Bench::name`].
    pub fn from_name(s: &str) -> Option<Bench> {
        [
            Bench::Pipechain,
            Bench::TimersAddDel,
            Bench::TimersFire,
            Bench::XthreadTput,
            Bench::XthreadLat,
        ]
        .into_iter()
        .find(|b| b.name() == s)
    }
}

/// Parameters of one child run (the same positional arguments the C peers take).
#[derive(Clone, Copy, Debug)]
pub struct Params {
    /// Pipechain: socketpairs in the ring. Timers: number of timers.
    pub n: usize,
    /// Pipechain: bytes injected before each run (spread evenly over the ring).
    pub active: usize,
    /// Pipechain: bytes forwarded per run, in total.
    pub writes: usize,
    /// Measured repetitions (pipechain runs, timer rounds).
    pub reps: usize,
    /// Untimed repetitions first.
    pub warmup: usize,
    /// Pipechain: use the duplex ring layout (see [`Ring`]).
    pub duplex: bool,
}

/// Prints one sample in the line protocol the runner parses:
/// `SAMPLE <bench> <peer> <n> <metric> <value>`.
pub fn sample(bench: Bench, peer: &str, n: usize, metric: &str, value: u64) {
    println!(
        "SAMPLE {} {} {} {} {}",
        bench.name(),
        peer,
        n,
        metric,
        value
    );
}

/// Reports that a peer does not implement a benchmark: `SKIP <bench> <peer> <n> <reason>`.
pub fn skip(bench: Bench, peer: &str, n: usize, reason: &str) {
    println!("SKIP {} {} {} {}", bench.name(), peer, n, reason);
}

/// Deterministic xorshift64* generator, the same sequence as `rng_next` in the C peers,
/// so every peer sees identical deadlines.
pub struct Rng(u64);

impl Rng {
    /// The seed every peer uses.
    pub const SEED: u64 = 0x9E37_79B9_7F4A_7C15;

    /// A generator at [`Rng::SEED`].
    pub fn new() -> Rng {
        Rng(Rng::SEED)
    }

    /// The next 64-bit value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A uniform value in `lo..=hi` (modulo bias is irrelevant here).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

impl Default for Rng {
    fn default() -> Self {
        Rng::new()
    }
}

/// `n` timer deadlines, uniform in `lo_ms..=hi_ms` with microsecond resolution.
pub fn deadlines(n: usize, lo_ms: u64, hi_ms: u64) -> Vec<Duration> {
    let mut rng = Rng::new();
    (0..n)
        .map(|_| Duration::from_micros(rng.range(lo_ms * 1000, hi_ms * 1000)))
        .collect()
}

/// Deadlines of the add/del benchmark: 1..=1000 ms.
pub fn adddel_deadlines(n: usize) -> Vec<Duration> {
    deadlines(n, 1, 1000)
}

/// Deadlines of the firing benchmark: 1..=100 ms.
pub fn fire_deadlines(n: usize) -> Vec<Duration> {
    deadlines(n, 1, 100)
}

/// Clock `clock` in nanoseconds.
fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; both clocks used here exist on Linux.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// This thread's CPU time (user + kernel, `CLOCK_THREAD_CPUTIME_ID`) in nanoseconds: the
/// in-process A/B binaries time each turn by it (being descheduled does not count).
pub fn thread_cpu_ns() -> u64 {
    clock_ns(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// Monotonic clock in nanoseconds (`CLOCK_MONOTONIC`, as the C peers use).
pub fn now_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// User plus system CPU time of this process so far, in nanoseconds (`getrusage`).
pub fn cpu_ns() -> u64 {
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is valid and writable; RUSAGE_SELF is always accepted.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Makes sure at least `need` file descriptors can be open: raises the soft `RLIMIT_NOFILE`
/// to the hard limit, and the hard limit too if that is allowed (root). Returns the soft limit.
pub fn raise_nofile(need: u64) -> u64 {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `rl` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 {
        return 0;
    }
    if rl.rlim_cur >= need {
        return rl.rlim_cur;
    }
    if rl.rlim_max < need {
        let want = libc::rlimit {
            rlim_cur: need,
            rlim_max: need,
        };
        // SAFETY: `want` is a valid rlimit; failure (no privilege) is handled below.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } == 0 {
            return need;
        }
    }
    let want = libc::rlimit {
        rlim_cur: rl.rlim_max,
        rlim_max: rl.rlim_max,
    };
    // SAFETY: `want` is a valid rlimit, not above the current hard limit.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } == 0 {
        rl.rlim_max
    } else {
        rl.rlim_cur
    }
}

/// User CPU time of this process so far, in nanoseconds (`getrusage`; the kernel splits
/// user from system time by tick sampling, so this is coarse over short intervals).
pub fn user_ns() -> u64 {
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is valid and writable; RUSAGE_SELF is always accepted.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    ru.ru_utime.tv_sec as u64 * 1_000_000_000 + ru.ru_utime.tv_usec as u64 * 1000
}

/// File descriptors a pipechain of `n` elements needs, with a little headroom for the
/// reactor, stdio and runtime internals: `2n` in the pairs layout, `n` in the duplex one.
pub fn fds_needed(n: usize, duplex: bool) -> u64 {
    let socks = if duplex { n as u64 } else { 2 * n as u64 };
    socks + 32
}

/// A ring of `n` elements over nonblocking `AF_UNIX` `SOCK_STREAM` socketpairs. Element `i`
/// is read at `rd[i]`; its callback forwards to `wr[(i + 1) % n]`, the end that feeds
/// element `i + 1`.
///
/// * pairs layout (libevent's bench.c): one socketpair per element, `rd[i]` one end and
///   `wr[i]` the other; `2n` descriptors, of which `n` are watched.
/// * duplex layout: `n / 2` socketpairs `(a, b)`, each carrying two elements, one per
///   direction: element `j` reads `b` (fed through `a`), element `j + n/2` reads `a` (fed
///   through `b`). `n` descriptors, all watched, one read event each. Used when the fd
///   limit cannot hold `2n` descriptors; the per-event work is the same.
pub struct Ring {
    /// Read ends (the fds the events watch).
    pub rd: Vec<RawFd>,
    /// Write ends.
    pub wr: Vec<RawFd>,
    /// Every descriptor the ring owns (closed on drop).
    pub owned: Vec<RawFd>,
}

fn socketpair() -> io::Result<[RawFd; 2]> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors socketpair writes.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fds)
}

impl Ring {
    /// Creates the ring (fails with `EMFILE` if the fd limit is too low). The duplex layout
    /// needs an even `n`.
    pub fn new(n: usize, duplex: bool) -> io::Result<Ring> {
        let mut ring = Ring {
            rd: vec![-1; n],
            wr: vec![-1; n],
            owned: Vec::with_capacity(if duplex { n } else { 2 * n }),
        };
        if duplex {
            if n % 2 != 0 {
                return Err(io::Error::other("duplex layout needs an even ring size"));
            }
            let h = n / 2;
            for j in 0..h {
                let [a, b] = socketpair()?;
                ring.owned.extend([a, b]);
                (ring.rd[j], ring.wr[j]) = (b, a);
                (ring.rd[j + h], ring.wr[j + h]) = (a, b);
            }
        } else {
            for i in 0..n {
                let [a, b] = socketpair()?;
                ring.owned.extend([a, b]);
                (ring.rd[i], ring.wr[i]) = (a, b);
            }
        }
        Ok(ring)
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.rd.len()
    }

    /// Whether the ring is empty.
    pub fn is_empty(&self) -> bool {
        self.rd.is_empty()
    }

    /// The write end element `i` forwards to.
    pub fn next_wr(&self, i: usize) -> RawFd {
        self.wr[(i + 1) % self.len()]
    }

    /// Starts a run: one byte into each of `active` elements spread evenly around the ring
    /// (libevent's bench.c spacing).
    pub fn inject(&self, active: usize) {
        let n = self.len();
        let space = (n / active.max(1)).max(1);
        for k in 0..active {
            write_fd(self.wr[(k * space) % n], b"e");
        }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        for &fd in &self.owned {
            // SAFETY: the ring owns these descriptors and closes each exactly once.
            unsafe { libc::close(fd) };
        }
    }
}

/// `write(2)` of a whole small buffer; a socketpair never fills up in this benchmark.
#[inline]
pub fn write_fd(fd: RawFd, buf: &[u8]) {
    // SAFETY: `buf` is valid for `buf.len()` bytes of reading.
    unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
}

/// The counters of one pipechain run, shared by every callback of a peer.
#[derive(Default)]
pub struct Counters {
    /// Bytes read so far in this run.
    pub reads: std::cell::Cell<u64>,
    /// Bytes still to forward in this run.
    pub writes_left: std::cell::Cell<u64>,
}

impl Counters {
    /// Resets for a run that forwards `writes` bytes.
    pub fn start(&self, writes: usize) {
        self.reads.set(0);
        self.writes_left.set(writes as u64);
    }
}

/// Bytes one callback reads: one, as in libevent's bench.c. Level-triggered peers get one
/// callback per byte; edge-triggered peers (mio, tokio) must read until `EAGAIN`, which costs
/// them one extra `read` per readiness notification. (A larger buffer would let bytes that
/// meet in a socket travel on as a clump, making the run's syscall count depend on each
/// library's callback order.)
pub const READ_BUF: usize = 1;

/// The body of every pipechain callback: read one byte, count it, forward one byte to the
/// next pair while the run's write budget lasts. Returns the bytes read (0 on `EAGAIN`).
#[inline]
pub fn forward(fd: RawFd, next_wr: RawFd, c: &Counters) -> usize {
    let mut buf = [0u8; READ_BUF];
    // SAFETY: `buf` is valid for READ_BUF bytes of writing.
    let r = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), READ_BUF) };
    if r <= 0 {
        return 0;
    }
    let r = r as usize;
    c.reads.set(c.reads.get() + r as u64);
    let left = c.writes_left.get();
    let k = (r as u64).min(left);
    if k > 0 {
        c.writes_left.set(left - k);
        write_fd(next_wr, &buf[..k as usize]);
    }
    r
}

/// Runs a pipechain benchmark over a `run` closure that performs one run (inject, dispatch)
/// and returns its dispatch time in ns. Samples are printed after the last run.
pub fn pipechain_samples(
    peer: &str,
    p: &Params,
    mut run: impl FnMut() -> io::Result<u64>,
) -> io::Result<()> {
    for _ in 0..p.warmup {
        run()?;
    }
    sample(
        Bench::Pipechain,
        peer,
        p.n,
        "events",
        (p.active + p.writes) as u64,
    );
    let mut ns = Vec::with_capacity(p.reps);
    let (u0, c0) = (user_ns(), cpu_ns());
    for _ in 0..p.reps {
        ns.push(run()?);
    }
    let (user, cpu) = (user_ns() - u0, cpu_ns() - c0);
    for v in ns {
        sample(Bench::Pipechain, peer, p.n, "run_ns", v);
    }
    sample(
        Bench::Pipechain,
        peer,
        p.n,
        "user_ns_per_run",
        user / p.reps.max(1) as u64,
    );
    sample(
        Bench::Pipechain,
        peer,
        p.n,
        "cpu_ns_per_run",
        cpu / p.reps.max(1) as u64,
    );
    Ok(())
}

/// Commands (closures, tasks, messages) run so far in an xthread throughput run. Written by
/// the loop thread only (load + store, no read-modify-write: the C peers use a plain global).
pub static XT_COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Counts one command on the loop thread and returns the new count. Only the loop thread
/// may call it (a single writer: a plain load + store, like the C peers' `count++`).
#[inline]
pub fn xt_bump() -> u64 {
    use std::sync::atomic::Ordering::Relaxed;
    let c = XT_COUNT.load(Relaxed) + 1;
    XT_COUNT.store(c, Relaxed);
    c
}

/// Resets [`XT_COUNT`] (before producers start).
pub fn xt_reset() {
    XT_COUNT.store(0, std::sync::atomic::Ordering::Relaxed);
}

/// One xthread throughput repetition, printed by [`XtputSample::print`] after the run.
#[derive(Clone, Copy, Debug)]
pub struct XtputSample {
    /// Wall time from releasing the producers until the loop returned.
    pub wall_ns: u64,
    /// Commands sent (`n` producers x `writes` each).
    pub cmds: u64,
    /// Callbacks (closures, tasks, messages handled) actually run; below `cmds` when the
    /// library coalesces activations of an already active event.
    pub callbacks: u64,
    /// eventfd writes the senders made (evrs only: `Handle::wake_writes`).
    pub wakes: Option<u64>,
}

impl XtputSample {
    /// Prints `ps_per_cmd`, `ps_per_cb`, `cb_per_kcmd` and (evrs) `wakes_per_mcmd`.
    pub fn print(&self, label: &str, n: usize) {
        let b = Bench::XthreadTput;
        let (wall, cmds, cbs) = (
            self.wall_ns as u128,
            self.cmds.max(1) as u128,
            self.callbacks.max(1) as u128,
        );
        sample(b, label, n, "ps_per_cmd", (wall * 1000 / cmds) as u64);
        sample(b, label, n, "ps_per_cb", (wall * 1000 / cbs) as u64);
        sample(
            b,
            label,
            n,
            "cb_per_kcmd",
            (self.callbacks as u128 * 1000 / cmds) as u64,
        );
        if let Some(w) = self.wakes {
            sample(
                b,
                label,
                n,
                "wakes_per_mcmd",
                (w as u128 * 1_000_000 / cmds) as u64,
            );
        }
    }
}

/// Prints the round-trip percentiles of an xthread latency run (`rtt` in ns, warm-up
/// already removed): `rtt_p50_ns`, `rtt_p99_ns`, `rtt_min_ns`.
pub fn latency_samples(label: &str, n: usize, rtt: &mut [u64]) {
    if rtt.is_empty() {
        return;
    }
    rtt.sort_unstable();
    let at = |q: f64| rtt[((rtt.len() - 1) as f64 * q).round() as usize];
    let b = Bench::XthreadLat;
    sample(b, label, n, "rtt_p50_ns", at(0.5));
    sample(b, label, n, "rtt_p99_ns", at(0.99));
    sample(b, label, n, "rtt_min_ns", rtt[0]);
}

/// Spins until `flag` holds `want` (the producer side of a ping).
#[inline]
pub fn spin_until(flag: &std::sync::atomic::AtomicU64, want: u64) {
    while flag.load(std::sync::atomic::Ordering::Acquire) != want {
        std::hint::spin_loop();
    }
}
