//! Monotonic clocks, and which one each use of "now" must read.
//!
//! libevent's Linux default is `CLOCK_MONOTONIC_COARSE` (the kernel's last tick: cheapest
//! read, a few ms of lag); `PRECISE_TIMER` switches to `CLOCK_MONOTONIC`. evrs promises that
//! a timer **never fires before its timeout has really passed since the `add` call**, on any
//! clock setting and machine, and a coarse reading cannot keep that promise:
//!
//! * Its lag is not bounded by `clock_getres`. Measured on the 2-core development VM
//!   (Firecracker, `HZ=250`, `NO_HZ_IDLE`, TSC clocksource; `coarse_clock_lag` below, or a C
//!   loop reading both clocks 40 M times in 3 s): `clock_getres` says 4 ms, the coarse clock
//!   is updated 0.5–0.75 ms *after* each 4 ms tick boundary, so the lag is 0.5–4.75 ms and
//!   above 4 ms ~15 % of the time (also right after a sleep); delayed ticks (vCPU preempted
//!   by the host, load average 6-14) stretched it to 8.7 ms and once to 25 ms. Rounding deadlines up by the resolution left 0.1 % of
//!   timers early by up to 0.78 ms (issue 14, #6). No bound is proven, so none is assumed.
//! * Reads cost 35–41 ns for `CLOCK_MONOTONIC` and 8–10 ns for the coarse clock here (vDSO).
//!
//! So the rule is by what a lag would do:
//!
//! * **Deadlines** ("now + timeout": `add`, persistent re-arm) read [`deadline_now_ns`], the
//!   precise clock (or an estimate never behind it, `tsc.rs`), fresh at every call — never the iteration's cached time either, which a
//!   long callback, a `SharedBase` callback running unlocked or a command queued from
//!   another thread leaves behind the real time of the `add` (a 5 ms callback adding a 1 ms
//!   timer would otherwise find it already due). A lagging reading makes a deadline early.
//! * **Expiry and the wait timeout** read the precise clock too ([`precise_now_ns`]): a lagging reading only makes
//!   timers late, but by up to a coarse tick (and a wait computed from it would spin).
//! * **The iteration's cached time** (what callbacks see through `gettimeofday_cached`) is the
//!   one reading a lag cannot make wrong in the dangerous direction; it is where the base's
//!   clock setting applies: [`now_ns`] with `precise = PRECISE_TIMER`.

use super::syscall;

fn read(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the monotonic clocks always exist on Linux.
    let _ = syscall!(clock_gettime(clock, &mut ts));
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// Nanoseconds on the monotonic clock; `precise` picks `CLOCK_MONOTONIC` over the coarse
/// one. For the iteration's cached time only (see the module docs): a coarse reading lags
/// the precise clock, never leads it.
pub(crate) fn now_ns(precise: bool) -> u64 {
    read(if precise {
        libc::CLOCK_MONOTONIC
    } else {
        libc::CLOCK_MONOTONIC_COARSE
    })
}

/// A fresh `CLOCK_MONOTONIC` reading (one vDSO call), whatever the base's clock setting and
/// whether or not a loop runs: "now" for expiry and the wait's timeout, where a reading must
/// not be ahead of the real time.
#[inline]
pub(crate) fn precise_now_ns() -> u64 {
    read(libc::CLOCK_MONOTONIC)
}

/// "Now" for a deadline ("now + timeout"): never behind a fresh `CLOCK_MONOTONIC` reading,
/// at most a few µs ahead of it, from the TSC where the kernel vouches for it (`tsc.rs`).
#[inline]
pub(crate) fn deadline_now_ns() -> u64 {
    super::tsc::now_at_least(precise_now_ns)
}

#[cfg(all(test, not(miri)))]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn coarse_resolution_ns() -> u64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec.
        syscall!(clock_getres(libc::CLOCK_MONOTONIC_COARSE, &mut ts)).unwrap();
        ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
    }

    /// Measures how far `CLOCK_MONOTONIC_COARSE` lags `CLOCK_MONOTONIC` (printed; see the
    /// module docs for this machine's figures) and checks the one property evrs relies on:
    /// a coarse reading is never ahead of a precise one taken after it.
    /// `cargo test -p evrs --lib coarse_clock_lag -- --nocapture` shows the numbers.
    #[test]
    fn coarse_clock_lag() {
        let res = coarse_resolution_ns();
        let (mut max_lag, mut over_res, mut n) = (0u64, 0u64, 0u64);
        let end = Instant::now() + Duration::from_millis(300);
        while Instant::now() < end {
            let c = now_ns(false);
            let p = precise_now_ns();
            assert!(c <= p, "coarse {c} ahead of a later precise reading {p}");
            max_lag = max_lag.max(p - c);
            over_res += u64::from(p - c > res);
            n += 1;
        }
        println!(
            "coarse clock: resolution {res} ns, max lag {max_lag} ns over {n} reads, \
             {over_res} ({:.1} %) lagging by more than the resolution",
            over_res as f64 * 100.0 / n as f64
        );
    }
}
