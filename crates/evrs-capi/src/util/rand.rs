//! Random numbers: the secure generator (the kernel's, through `getrandom`) and libevent's
//! weak, seedable one (a linear congruential generator, the classic C `rand` constants,
//! 31-bit results) that its tests and jitter use.

use crate::ffi::capi;
use std::os::raw::{c_char, c_int, c_void};

/// `struct evutil_weakrand_state`.
#[repr(C)]
pub struct WeakRand {
    seed: u32,
}

/// `EVUTIL_WEAKRAND_MAX`.
pub const WEAKRAND_MAX: i32 = 0x7fff_ffff;

/// Fills `buf` from the kernel's generator.
pub fn fill(buf: &mut [u8]) {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: writes at most the remaining bytes of `buf`.
        let n = unsafe { libc::getrandom(buf[done..].as_mut_ptr().cast(), buf.len() - done, 0) };
        if n <= 0 {
            // SAFETY: errno of this thread.
            if n < 0 && unsafe { *libc::__errno_location() } == libc::EINTR {
                continue;
            }
            crate::log::fatal(1, "evutil_secure_rng_get_bytes: getrandom failed");
        }
        done += n as usize;
    }
}

capi! {
    /// Readies the secure generator (the kernel's: nothing to do): 0.
    fn evutil_secure_rng_init() -> c_int {
        0
    }

    /// Fills `buf` with `n` secure random bytes.
    fn evutil_secure_rng_get_bytes(buf: *mut c_void, n: usize) {
        if buf.is_null() || n == 0 {
            return;
        }
        // SAFETY: `buf` holds `n` writable bytes per the contract.
        fill(unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), n) });
    }

    /// Mixes bytes into the generator: the kernel's needs no help, so they are ignored.
    fn evutil_secure_rng_add_bytes(dat: *const c_char, len: usize) {
        let _ = (dat, len);
    }

    /// Names the device to seed from: the kernel's generator needs none; -1, as libevent
    /// built over the system's `arc4random`.
    fn evutil_secure_rng_set_urandom_device_file(fname: *mut c_char) -> c_int {
        let _ = fname;
        -1
    }

    /// Internal: seeds the weak generator (0: from the time and pid); returns the seed.
    fn evutil_weakrand_seed_(st: *mut WeakRand, seed: u32) -> u32 {
        let mut seed = seed;
        if seed == 0 {
            let mut tv = libc::timeval { tv_sec: 0, tv_usec: 0 };
            // SAFETY: a writable timeval; getpid has no arguments.
            unsafe { libc::gettimeofday(&mut tv, std::ptr::null_mut()) };
            seed = (tv.tv_sec as u32).wrapping_add(tv.tv_usec as u32)
                // SAFETY: no arguments.
                .wrapping_add(unsafe { libc::getpid() } as u32);
        }
        // SAFETY: writable state per the contract.
        if let Some(s) = unsafe { st.as_mut() } {
            s.seed = seed;
        }
        seed
    }

    /// Internal: the next weak random number, 0..=`EVUTIL_WEAKRAND_MAX`.
    fn evutil_weakrand_(st: *mut WeakRand) -> i32 {
        // SAFETY: writable state per the contract.
        let Some(s) = (unsafe { st.as_mut() }) else { return 0 };
        s.seed = s.seed.wrapping_mul(1_103_515_245).wrapping_add(12345) & WEAKRAND_MAX as u32;
        s.seed as i32
    }

    /// Internal: a weak random number in 0..`top` (`top` ≥ 1), without modulo bias.
    fn evutil_weakrand_range_(st: *mut WeakRand, top: i32) -> i32 {
        if top <= 0 {
            return 0;
        }
        let divisor = WEAKRAND_MAX / top;
        loop {
            // SAFETY: forwarded contract.
            let r = unsafe { evutil_weakrand_(st) } / divisor;
            if r < top {
                return r;
            }
        }
    }
}
