//! Monotonic clocks. libevent's Linux default is `CLOCK_MONOTONIC_COARSE` (a few ms of
//! resolution, but the cheapest read); `PRECISE_TIMER` switches to `CLOCK_MONOTONIC`.

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

/// Nanoseconds on the monotonic clock; `precise` picks `CLOCK_MONOTONIC` over the coarse one.
pub(crate) fn now_ns(precise: bool) -> u64 {
    read(if precise {
        libc::CLOCK_MONOTONIC
    } else {
        libc::CLOCK_MONOTONIC_COARSE
    })
}

/// Deadlines must stay below this many ns on the monotonic clock.
pub(crate) const DEADLINE_LIMIT_NS: u64 = u64::MAX / 2;

/// The deadline `d` after `now` (plus `slack`), in ns, if it is below [`DEADLINE_LIMIT_NS`]:
/// the one rule for whether a timeout fits the clock, used by the base and by `Handle`.
pub(crate) fn deadline_ns(now: u64, slack: u64, d: std::time::Duration) -> Option<u64> {
    u64::try_from(d.as_nanos())
        .ok()
        .and_then(|ns| ns.checked_add(slack))
        .and_then(|ns| ns.checked_add(now))
        .filter(|&t| t < DEADLINE_LIMIT_NS)
}

/// Resolution of the coarse clock in nanoseconds (typically 1–4 ms, the kernel tick).
pub(crate) fn coarse_resolution_ns() -> u64 {
    // Miri cannot call clock_getres; the kernel's usual tick stands in.
    if cfg!(miri) {
        return 4_000_000;
    }
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    match syscall!(clock_getres(libc::CLOCK_MONOTONIC_COARSE, &mut ts)) {
        Ok(_) => (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64,
        Err(_) => 4_000_000,
    }
}
