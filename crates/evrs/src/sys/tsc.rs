//! A cheap reading of `CLOCK_MONOTONIC` that is never *behind* it: the deadline clock.
//!
//! Every `add` with a timeout computes "now + timeout", and evrs promises that a timer never
//! fires before its timeout has passed since the call (see `clock.rs`), so "now" there must
//! be a fresh reading that is at least the real time. A `clock_gettime(CLOCK_MONOTONIC)`
//! costs ~32 ns on the development VM (the vDSO's ordered `rdtscp`, its sequence lock and the
//! conversion), most of a timer's add+del. This module gets the same guarantee from one
//! plain `rdtsc` (~12 ns) and a multiply:
//!
//! * **Anchor.** A thread keeps the last pair (`tsc`, `mono`) it read, the TSC read *before*
//!   the clock, so `mono` is at least the real time at `tsc`.
//! * **Rate, rounded up.** Ticks are converted at the rate measured between two tight pairs
//!   at least [`CALIBRATION_NS`] apart, raised by 1/1024 (~1000 ppm; NTP slews the monotonic
//!   clock by at most 500 ppm, and a pair's width is under 1/10,000 of the span), so the
//!   time the estimate adds since the anchor is never less than the time that really passed.
//! * **Margin.** A constant [`MARGIN_NS`] more covers an unordered `rdtsc` executed a few
//!   hundred cycles early. The estimate is late by at most the margin plus 1/1024 of the
//!   span: ~2 µs, below the wheel's millisecond tick.
//! * **Span.** An anchor serves for [`SPAN_NS`] at most (then the next reading takes a new
//!   pair), which bounds that error; a TSC reading behind the anchor (another CPU's skewed
//!   counter) also takes a new pair.
//! * **Self-check.** Every new pair checks the previous anchor's estimate against the clock.
//!   Had the estimate been behind it, the TSC is not what the kernel says it is (a frequency
//!   change, a migration): the fast path is switched off for the process, with a warning.
//!
//! Used only where the kernel's own clocksource is the TSC (so the kernel vouches that it is
//! constant-rate and synchronized across CPUs) on x86_64, and not when `EVRS_TSC=0`;
//! everything else reads `clock_gettime` as before. `quanta` and similar crates calibrate a
//! TSC clock too, but for the best estimate, not a one-sided bound, which is what a deadline
//! needs.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// How long one anchor serves (ns).
const SPAN_NS: u64 = 1_000_000;
/// Added to every estimate (ns): an unordered `rdtsc` may run this much before its place.
pub(crate) const MARGIN_NS: u64 = 1_000;
/// The shortest span the rate is measured over (ns).
const CALIBRATION_NS: u64 = 20_000_000;
/// A pair (TSC, clock, TSC) wider than this many ticks was interrupted: not used to measure.
const TIGHT_TICKS: u64 = 2_000;

/// The rate in ns per tick as 32.32 fixed point, rounded up (0: not measured yet).
static MULT: AtomicU64 = AtomicU64::new(0);
/// [`SPAN_NS`] in ticks (0 with `MULT`).
static SPAN_TICKS: AtomicU64 = AtomicU64::new(0);
/// The first tight pair, or `DISABLED`: the slow path's state (taken only there).
static CALIBRATION: Mutex<State> = Mutex::new(State::Unchecked);

#[derive(Clone, Copy)]
enum State {
    /// The clocksource and `EVRS_TSC` not looked at yet.
    Unchecked,
    /// Usable; the first tight pair so far, if any.
    Measuring(Option<Pair>),
    /// Calibrated (the rate is in `MULT`).
    Ready,
    /// Not used in this process.
    Disabled,
}

#[derive(Clone, Copy)]
struct Pair {
    tsc: u64,
    mono: u64,
}

thread_local! {
    /// This thread's anchor (`tsc` 0: none yet, which every reading is too far from).
    static ANCHOR: Cell<Pair> = const { Cell::new(Pair { tsc: 0, mono: 0 }) };
    /// While not calibrated: the clock reading after which to try a new pair.
    static NEXT_TRY: Cell<u64> = const { Cell::new(0) };
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn rdtsc() -> u64 {
    // SAFETY: `rdtsc` reads the time-stamp counter; it has no memory effects. It is only
    // reached after `usable()` found the kernel itself using the TSC as its clocksource.
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn rdtsc() -> u64 {
    0
}

/// `CLOCK_MONOTONIC` in ns, or a value up to a few µs above it, never below it.
#[inline]
pub(crate) fn now_at_least(read_clock: fn() -> u64) -> u64 {
    let mult = MULT.load(Ordering::Relaxed);
    if mult != 0 {
        let t = rdtsc();
        let a = ANCHOR.with(Cell::get);
        let dt = t.wrapping_sub(a.tsc);
        if dt < SPAN_TICKS.load(Ordering::Relaxed) {
            return a.mono + ((dt as u128 * mult as u128) >> 32) as u64 + MARGIN_NS;
        }
        return reanchor(read_clock, mult);
    }
    let now = read_clock();
    if now >= NEXT_TRY.with(Cell::get) {
        NEXT_TRY.with(|n| n.set(now + SPAN_NS));
        calibrate(read_clock);
    }
    now
}

/// The anchor is too old (or behind): a new pair, checked against the old anchor's estimate.
#[cold]
fn reanchor(read_clock: fn() -> u64, mult: u64) -> u64 {
    let old = ANCHOR.with(Cell::get);
    let (pair, end) = pair(read_clock);
    if old.tsc != 0 && end > old.tsc {
        // The old anchor's estimate (without the margin) at the end of the new pair, when
        // the clock had certainly passed `pair.mono`.
        let est = old.mono + ((u128::from(end - old.tsc) * u128::from(mult)) >> 32) as u64;
        if est < pair.mono {
            disable(&format!(
                "an estimate was {} ns behind the clock",
                pair.mono - est
            ));
            return pair.mono;
        }
    }
    ANCHOR.with(|a| a.set(pair));
    pair.mono
}

/// A clock reading between two TSC readings: the pair (first TSC, clock) and the second TSC.
fn pair(read_clock: fn() -> u64) -> (Pair, u64) {
    let tsc = rdtsc();
    let mono = read_clock();
    (Pair { tsc, mono }, rdtsc())
}

/// Not calibrated yet: checks the clocksource once, then measures the rate from two tight
/// pairs `CALIBRATION_NS` apart.
#[cold]
fn calibrate(read_clock: fn() -> u64) {
    let Ok(mut state) = CALIBRATION.lock() else {
        return;
    };
    if let State::Unchecked = *state {
        *state = if usable() {
            State::Measuring(None)
        } else {
            State::Disabled
        };
    }
    let State::Measuring(first) = *state else {
        return;
    };
    let (p, end) = pair(read_clock);
    if end.wrapping_sub(p.tsc) > TIGHT_TICKS {
        return;
    }
    let Some(first) = first else {
        *state = State::Measuring(Some(p));
        return;
    };
    if p.mono < first.mono + CALIBRATION_NS || p.tsc <= first.tsc {
        return;
    }
    let (ns, ticks) = (
        u128::from(p.mono - first.mono),
        u128::from(p.tsc - first.tsc),
    );
    // ns per tick in 32.32, plus 1/1024, rounded up.
    let exact = (ns << 32).div_ceil(ticks);
    let mult = exact + exact.div_ceil(1024);
    let Ok(mult) = u64::try_from(mult) else {
        *state = State::Disabled;
        return;
    };
    let span = (u128::from(SPAN_NS) << 32) / mult as u128;
    SPAN_TICKS.store(span as u64, Ordering::Relaxed);
    MULT.store(mult, Ordering::Relaxed);
    *state = State::Ready;
}

fn disable(why: &str) {
    MULT.store(0, Ordering::Relaxed);
    if let Ok(mut state) = CALIBRATION.lock() {
        *state = State::Disabled;
    }
    log::warn!("evrs: the TSC deadline clock is switched off ({why}); reading CLOCK_MONOTONIC");
}

/// Whether this process may use the TSC: x86_64, the kernel's clocksource is `tsc`, and
/// `EVRS_TSC` is not `0`.
fn usable() -> bool {
    if !cfg!(target_arch = "x86_64") || std::env::var_os("EVRS_TSC").is_some_and(|v| v == "0") {
        return false;
    }
    std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
        .is_ok_and(|s| s.trim() == "tsc")
}

/// Whether the fast path is on (for tests and the benchmark notes).
#[cfg(test)]
pub(crate) fn calibrated() -> bool {
    MULT.load(Ordering::Relaxed) != 0
}

#[cfg(all(test, not(miri)))]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn mono() -> u64 {
        super::super::clock::now_ns(true)
    }

    /// The property a deadline needs, over 300 ms of readings interleaved with the clock:
    /// an estimate is never behind a clock reading taken before it, and never more than a
    /// few µs ahead of one taken after it (when the TSC is used at all on this machine).
    #[test]
    fn never_behind_the_clock() {
        let end = Instant::now() + Duration::from_millis(300);
        let (mut n, mut fast, mut max_ahead) = (0u64, 0u64, 0u64);
        while Instant::now() < end {
            let before = mono();
            let est = now_at_least(mono);
            let after = mono();
            assert!(
                est >= before,
                "estimate {est} behind an earlier reading {before}"
            );
            if after < est {
                max_ahead = max_ahead.max(est - after);
            }
            fast += u64::from(calibrated());
            n += 1;
        }
        println!(
            "tsc deadline clock: {n} reads, {fast} after calibration, at most {max_ahead} ns \
             ahead of the clock"
        );
        // Ahead by the margin plus the rate's headroom over one span, with room for a
        // reading descheduled between `est` and `after` being not ahead at all.
        assert!(
            max_ahead <= MARGIN_NS + SPAN_NS / 256,
            "{max_ahead} ns ahead"
        );
    }

    /// An estimate found behind the clock (here: a rate far too slow, as a TSC whose
    /// frequency changed would give) switches the fast path off for the process, and the
    /// reading returned is the clock's. Runs in a child process: the switch is global.
    #[test]
    fn an_estimate_behind_the_clock_switches_the_fast_path_off() {
        const NAME: &str =
            "sys::tsc::tests::an_estimate_behind_the_clock_switches_the_fast_path_off";
        if std::env::var_os("EVRS_TSC_DISABLE_CHILD").is_none() {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", NAME, "--nocapture", "--test-threads", "1"])
                .env("EVRS_TSC_DISABLE_CHILD", "1")
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success() && text.contains("1 passed"), "{text}");
            return;
        }
        let t = rdtsc();
        ANCHOR.with(|a| {
            a.set(Pair {
                tsc: t,
                mono: mono(),
            })
        });
        MULT.store(1, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(2));
        let before = mono();
        let got = reanchor(mono, 1);
        assert!(got >= before, "the reading after the switch is the clock's");
        assert!(!calibrated(), "the fast path is still on");
        assert!(matches!(*CALIBRATION.lock().unwrap(), State::Disabled));
        // And it stays off: later readings are plain clock readings.
        let a = mono();
        let b = now_at_least(mono);
        assert!(b >= a && !calibrated());
    }
}
