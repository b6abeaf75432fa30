//! Strings and characters: formatting, number parsing, locale-free case folding and
//! character classes (libevent's `EVUTIL_IS*_` family works on ASCII only, whatever the
//! locale), and the small string helpers libevent exports.

#![allow(non_snake_case)] // the EVUTIL_IS*_ functions keep libevent's names

use crate::ffi::capi;
use std::os::raw::{c_char, c_int, c_long, c_void};

extern "C" {
    /// libc's `vsnprintf`, the `va_list` passed through as the pointer it is on x86_64.
    fn vsnprintf(buf: *mut c_char, len: usize, fmt: *const c_char, ap: *mut c_void) -> c_int;
    fn strtoll(s: *const c_char, end: *mut *mut c_char, base: c_int) -> i64;
}

fn lower(c: u8) -> u8 {
    c.to_ascii_lowercase()
}

/// Three-way result as libevent gives it: -1, 0 or 1, comparing the folded bytes as (signed)
/// C `char`s, so bytes from 0x80 up sort before ASCII.
fn sign(a: u8, b: u8) -> Option<c_int> {
    match (lower(a) as i8).cmp(&(lower(b) as i8)) {
        std::cmp::Ordering::Less => Some(-1),
        std::cmp::Ordering::Greater => Some(1),
        std::cmp::Ordering::Equal if a == 0 => Some(0),
        std::cmp::Ordering::Equal => None,
    }
}

/// The C character a `char` argument holds, as a byte.
fn byte(c: c_char) -> u8 {
    c as u8
}

macro_rules! ctype {
    ($($(#[$m:meta])* fn $name:ident => $test:expr;)*) => {
        capi! {$(
            $(#[$m])*
            fn $name(c: c_char) -> c_int {
                let b = byte(c);
                let f: fn(u8) -> bool = $test;
                c_int::from(f(b))
            }
        )*}
    };
}

ctype! {
    /// Internal: ASCII letter or digit.
    fn EVUTIL_ISALNUM_ => |b| b.is_ascii_alphanumeric();
    /// Internal: ASCII letter.
    fn EVUTIL_ISALPHA_ => |b| b.is_ascii_alphabetic();
    /// Internal: ASCII digit.
    fn EVUTIL_ISDIGIT_ => |b| b.is_ascii_digit();
    /// Internal: ASCII lower-case letter.
    fn EVUTIL_ISLOWER_ => |b| b.is_ascii_lowercase();
    /// Internal: printable ASCII (space to tilde).
    fn EVUTIL_ISPRINT_ => |b| (0x20..0x7f).contains(&b);
    /// Internal: ASCII white space (space, tab, newline, vertical tab, form feed, CR).
    fn EVUTIL_ISSPACE_ => |b| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    /// Internal: ASCII upper-case letter.
    fn EVUTIL_ISUPPER_ => |b| b.is_ascii_uppercase();
    /// Internal: hexadecimal digit.
    fn EVUTIL_ISXDIGIT_ => |b| b.is_ascii_hexdigit();
}

capi! {
    /// Internal: ASCII lower case of `c` (other bytes unchanged).
    fn EVUTIL_TOLOWER_(c: c_char) -> c_char {
        byte(c).to_ascii_lowercase() as c_char
    }

    /// Internal: ASCII upper case of `c` (other bytes unchanged).
    fn EVUTIL_TOUPPER_(c: c_char) -> c_char {
        byte(c).to_ascii_uppercase() as c_char
    }

    /// Internal: the value of a hex digit, or -1.
    fn evutil_hex_char_to_int_(c: c_char) -> c_int {
        match byte(c) {
            b @ b'0'..=b'9' => c_int::from(b - b'0'),
            b @ b'a'..=b'f' => c_int::from(b - b'a' + 10),
            b @ b'A'..=b'F' => c_int::from(b - b'A' + 10),
            _ => -1,
        }
    }

    /// `strtoll(3)`.
    fn evutil_strtoll(s: *const c_char, end: *mut *mut c_char, base: c_int) -> i64 {
        if s.is_null() {
            return 0;
        }
        // SAFETY: a C string and a writable or null end pointer, per the contract.
        unsafe { strtoll(s, end, base) }
    }

    /// `vsnprintf(3)`, always NUL-terminated: the length the whole text would have, or 0
    /// when `buflen` is 0 (nothing is written then).
    fn evutil_vsnprintf(buf: *mut c_char, buflen: usize, fmt: *const c_char, ap: *mut c_void) -> c_int {
        if buflen == 0 || buf.is_null() || fmt.is_null() {
            return 0;
        }
        // SAFETY: `buf` holds `buflen` bytes; `fmt` and `ap` agree, per the contract.
        unsafe {
            let r = vsnprintf(buf, buflen, fmt, ap);
            *buf.add(buflen - 1) = 0;
            r
        }
    }

    /// Compares two strings ignoring ASCII case: -1, 0 or 1.
    fn evutil_ascii_strcasecmp(a: *const c_char, b: *const c_char) -> c_int {
        // SAFETY: forwarded contract.
        unsafe { evutil_ascii_strncasecmp(a, b, usize::MAX) }
    }

    /// Compares at most `n` bytes of two strings ignoring ASCII case: -1, 0 or 1.
    fn evutil_ascii_strncasecmp(a: *const c_char, b: *const c_char, n: usize) -> c_int {
        if a.is_null() || b.is_null() {
            return 0;
        }
        let mut i = 0;
        while i < n {
            // SAFETY: both are NUL-terminated: reading stops at the first NUL.
            let (x, y) = unsafe { (byte(*a.add(i)), byte(*b.add(i))) };
            if let Some(r) = sign(x, y) {
                return r;
            }
            i += 1;
        }
        0
    }

    /// Internal: BSD `strlcpy`: copies at most `size - 1` bytes and a NUL; returns the
    /// length of `src`.
    fn event_strlcpy_(dst: *mut c_char, src: *const c_char, size: usize) -> usize {
        if src.is_null() {
            return 0;
        }
        // SAFETY: `src` a C string, `dst` `size` writable bytes, per the contract.
        unsafe {
            let s = super::cbytes(src);
            if size > 0 && !dst.is_null() {
                let n = s.len().min(size - 1);
                std::ptr::copy_nonoverlapping(s.as_ptr(), dst.cast::<u8>(), n);
                *dst.add(n) = 0;
            }
            s.len()
        }
    }

    /// Internal: removes trailing spaces and tabs in place.
    fn evutil_rtrim_lws_(s: *mut c_char) {
        if s.is_null() {
            return;
        }
        // SAFETY: a writable C string per the contract.
        unsafe {
            let mut n = super::cbytes(s).len();
            while n > 0 && matches!(*s.add(n - 1) as u8, b' ' | b'\t') {
                n -= 1;
                *s.add(n) = 0;
            }
        }
    }

    /// Internal: zeroes memory in a way the compiler may not remove.
    fn evutil_memclear_(mem: *mut c_void, len: usize) {
        let p = mem.cast::<u8>();
        for i in 0..len {
            // SAFETY: `mem` holds `len` writable bytes per the contract.
            unsafe { std::ptr::write_volatile(p.add(i), 0) };
        }
    }

    /// Internal: a `timeval` in milliseconds, rounded up; -1 if `tv_usec` is over a
    /// second or the result would not fit a `long`.
    fn evutil_tv_to_msec_(tv: *const libc::timeval) -> c_long {
        // SAFETY: a readable timeval per the contract.
        let Some(tv) = (unsafe { tv.as_ref() }) else { return -1 };
        if tv.tv_usec > 1_000_000 || tv.tv_sec > (c_long::MAX - 999) / 1000 {
            return -1;
        }
        tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000
    }
}
