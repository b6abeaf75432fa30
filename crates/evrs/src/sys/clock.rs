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
