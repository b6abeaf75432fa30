//! Clocks and dates: libevent's stand-alone monotonic timer, sleeping, and RFC 1123 dates.

use crate::ffi::capi;
use crate::mm;
use std::os::raw::{c_char, c_int};

/// `EV_MONOT_PRECISE`.
pub const MONOT_PRECISE: c_int = 1;
/// `EV_MONOT_FALLBACK`.
pub const MONOT_FALLBACK: c_int = 2;

/// libevent 2.1's `struct evutil_monotonic_timer` on Linux (40 bytes: programs that call
/// the internal `evutil_configure_monotonic_time_` allocate it themselves): the POSIX clock
/// to read (-1: the adjusted wall clock), and the fallback's adjustment and last reading.
#[repr(C)]
pub struct MonotonicTimer {
    clock: c_int,
    adjust: libc::timeval,
    last: libc::timeval,
}

const _: () = assert!(std::mem::size_of::<MonotonicTimer>() == 40);

fn tv_add(a: libc::timeval, b: libc::timeval) -> libc::timeval {
    let mut r = libc::timeval {
        tv_sec: a.tv_sec + b.tv_sec,
        tv_usec: a.tv_usec + b.tv_usec,
    };
    if r.tv_usec >= 1_000_000 {
        r.tv_sec += 1;
        r.tv_usec -= 1_000_000;
    }
    r
}

fn tv_sub(a: libc::timeval, b: libc::timeval) -> libc::timeval {
    let mut r = libc::timeval {
        tv_sec: a.tv_sec - b.tv_sec,
        tv_usec: a.tv_usec - b.tv_usec,
    };
    if r.tv_usec < 0 {
        r.tv_sec -= 1;
        r.tv_usec += 1_000_000;
    }
    r
}

fn tv_lt(a: &libc::timeval, b: &libc::timeval) -> bool {
    (a.tv_sec, a.tv_usec) < (b.tv_sec, b.tv_usec)
}

/// Reads `clock` as a timeval.
pub fn clock_tv(clock: libc::clockid_t) -> Option<libc::timeval> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a writable timespec.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return None;
    }
    Some(libc::timeval {
        tv_sec: ts.tv_sec,
        tv_usec: (ts.tv_nsec / 1000) as libc::suseconds_t,
    })
}

const WDAY: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MON: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

capi! {
    /// Internal: sets up a caller-allocated timer: `CLOCK_MONOTONIC_COARSE`, or
    /// `CLOCK_MONOTONIC` with `EV_MONOT_PRECISE`; `EV_MONOT_FALLBACK` uses the wall clock
    /// made never to go backwards. 0, or -1 for NULL.
    fn evutil_configure_monotonic_time_(t: *mut MonotonicTimer, flags: c_int) -> c_int {
        if t.is_null() {
            return -1;
        }
        let clock = if flags & MONOT_FALLBACK != 0 {
            -1
        } else if flags & MONOT_PRECISE != 0 {
            libc::CLOCK_MONOTONIC
        } else if clock_tv(libc::CLOCK_MONOTONIC_COARSE).is_some() {
            libc::CLOCK_MONOTONIC_COARSE
        } else {
            libc::CLOCK_MONOTONIC
        };
        let zero = libc::timeval { tv_sec: 0, tv_usec: 0 };
        // SAFETY: writable timer memory per the contract.
        unsafe { t.write(MonotonicTimer { clock, adjust: zero, last: zero }) };
        0
    }

    /// Internal: reads a configured timer into `tp`: 0, or -1.
    fn evutil_gettime_monotonic_(t: *mut MonotonicTimer, tp: *mut libc::timeval) -> c_int {
        if t.is_null() || tp.is_null() {
            return -1;
        }
        // SAFETY: a configured timer and a writable timeval per the contract.
        unsafe {
            let t = &mut *t;
            if t.clock >= 0 {
                let Some(now) = clock_tv(t.clock) else { return -1 };
                *tp = now;
                return 0;
            }
            let mut now = libc::timeval { tv_sec: 0, tv_usec: 0 };
            if libc::gettimeofday(&mut now, std::ptr::null_mut()) != 0 {
                return -1;
            }
            // A wall clock that stepped back: add the step to the adjustment.
            if tv_lt(&now, &t.last) {
                t.adjust = tv_add(t.adjust, tv_sub(t.last, now));
            }
            t.last = now;
            *tp = tv_add(now, t.adjust);
        }
        0
    }

    /// A new monotonic timer (configure it before reading it).
    fn evutil_monotonic_timer_new() -> *mut MonotonicTimer {
        mm::calloc(1, std::mem::size_of::<MonotonicTimer>()).cast()
    }

    /// Frees a timer from `evutil_monotonic_timer_new`.
    fn evutil_monotonic_timer_free(t: *mut MonotonicTimer) {
        // SAFETY: from `evutil_monotonic_timer_new` per the contract.
        unsafe { mm::free(t.cast()) }
    }

    /// Chooses a timer's clock (`EV_MONOT_*` flags).
    fn evutil_configure_monotonic_time(t: *mut MonotonicTimer, flags: c_int) -> c_int {
        // SAFETY: forwarded contract.
        unsafe { evutil_configure_monotonic_time_(t, flags) }
    }

    /// Reads a timer.
    fn evutil_gettime_monotonic(t: *mut MonotonicTimer, tp: *mut libc::timeval) -> c_int {
        // SAFETY: forwarded contract.
        unsafe { evutil_gettime_monotonic_(t, tp) }
    }

    /// Internal: sleeps for `tv` (NULL: not at all).
    fn evutil_usleep_(tv: *const libc::timeval) {
        // SAFETY: a readable timeval per the contract.
        if let Some(tv) = unsafe { tv.as_ref() } {
            std::thread::sleep(crate::base::duration(tv));
        }
    }

    /// `Sun, 06 Nov 1994 08:49:37 GMT` for `tm` (NULL: now, UTC) into `date`; returns the
    /// full text's length, as `snprintf` (0 when `datelen` is 0).
    fn evutil_date_rfc1123(date: *mut c_char, datelen: usize, tm: *const libc::tm) -> c_int {
        // SAFETY: `tm` null or readable; `gmtime_r` on a local copy.
        let tm = unsafe {
            match tm.as_ref() {
                Some(t) => *t,
                None => {
                    let now = libc::time(std::ptr::null_mut());
                    let mut t: libc::tm = std::mem::zeroed();
                    libc::gmtime_r(&now, &mut t);
                    t
                }
            }
        };
        let text = format!(
            "{}, {:02} {} {:4} {:02}:{:02}:{:02} GMT",
            WDAY[tm.tm_wday.rem_euclid(7) as usize],
            tm.tm_mday,
            MON[tm.tm_mon.rem_euclid(12) as usize],
            1900 + tm.tm_year,
            tm.tm_hour,
            tm.tm_min,
            tm.tm_sec
        );
        if datelen == 0 || date.is_null() {
            return 0;
        }
        let n = text.len().min(datelen - 1);
        // SAFETY: `date` holds `datelen` writable bytes per the contract.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr(), date.cast::<u8>(), n);
            *date.add(n) = 0;
        }
        text.len() as c_int
    }
}
