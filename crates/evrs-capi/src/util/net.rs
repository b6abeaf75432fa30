//! Addresses: text to binary and back with libevent's own rules (not the system's), socket
//! address parsing, comparison and formatting.

use super::{cbytes, set_errno};
use crate::ffi::capi;
use std::mem::size_of;
use std::os::raw::{c_char, c_int, c_uint, c_void};

/// Parses an unsigned decimal number as C's `%u` conversion reads one: leading white
/// space, an optional sign, at least one digit. Returns the value and the rest.
fn scan_u(s: &[u8]) -> Option<(u64, &[u8])> {
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let neg = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let start = i;
    let mut v: u64 = 0;
    while i < s.len() && s[i].is_ascii_digit() {
        v = v.saturating_mul(10).saturating_add(u64::from(s[i] - b'0'));
        i += 1;
    }
    if i == start {
        return None;
    }
    // `%u` stores into an unsigned int: strtoul's result (negated for a minus sign, as it
    // does) is cut to 32 bits.
    let v = if neg { v.wrapping_neg() } else { v };
    Some((u64::from(v as u32), &s[i..]))
}

/// IPv4 text: exactly four `%u` parts, each at most 255, dot-separated, nothing after.
pub fn parse_v4(s: &[u8]) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut rest = s;
    for (i, o) in out.iter_mut().enumerate() {
        if i > 0 {
            rest = rest.strip_prefix(b".")?;
        }
        let (v, r) = scan_u(rest)?;
        if v > 255 {
            return None;
        }
        *o = v as u8;
        rest = r;
    }
    rest.is_empty().then_some(out)
}

/// The length of the hex group at the start of `s` as `strtol(s, _, 16)` reads it (an
/// optional `0x` prefix, then hex digits), and its value; `s` starts with a hex digit.
fn hex_group(s: &[u8]) -> (usize, u64) {
    let skip = if s.len() > 2 && s[0] == b'0' && (s[1] | 0x20) == b'x' && s[2].is_ascii_hexdigit() {
        2
    } else {
        0
    };
    let digits = s[skip..]
        .iter()
        .take_while(|c| c.is_ascii_hexdigit())
        .count();
    let v = s[skip..skip + digits].iter().fold(0u64, |v, &c| {
        v.saturating_mul(16)
            .saturating_add(u64::from((c as char).to_digit(16).unwrap_or(0)))
    });
    (skip + digits, v)
}

/// IPv6 text, with libevent's rules: groups of at most four characters, each followed by
/// a colon (so one trailing colon is accepted: `1::2:`), one gap (`::`, which may stand at
/// the start), and optionally a dotted IPv4 address for the last 32 bits.
pub fn parse_v6(s: &[u8]) -> Option<[u8; 16]> {
    // The IPv4 tail starts at the digits before the first dot.
    let (body_end, tail) = match s.iter().position(|&c| c == b'.') {
        Some(0) => return None,
        Some(dot) => {
            let start = s[..dot]
                .iter()
                .rposition(|c| !c.is_ascii_digit())
                .map_or(0, |p| p + 1);
            (start, Some(parse_v4(&s[start..])?))
        }
        None => (s.len(), None),
    };
    let mut words = [0u16; 8];
    let mut n = 0;
    let mut gap: Option<usize> = None;
    let mut i = 0;
    while i < body_end {
        if n > 7 {
            return None;
        }
        let c = s[i];
        if c.is_ascii_hexdigit() {
            let (len, v) = hex_group(&s[i..body_end]);
            if len > 4 || v > 0xffff {
                return None;
            }
            words[n] = v as u16;
            n += 1;
            i += len;
            if i < body_end && s[i] != b':' {
                return None;
            }
            i += 1;
        } else if c == b':' && n > 0 && gap.is_none() {
            gap = Some(n);
            i += 1;
        } else if c == b':' && n == 0 && s.get(i + 1) == Some(&b':') && gap.is_none() {
            gap = Some(0);
            i += 2;
        } else {
            return None;
        }
    }
    if let Some(v4) = tail {
        if n > 6 {
            return None;
        }
        words[n] = u16::from_be_bytes([v4[0], v4[1]]);
        words[n + 1] = u16::from_be_bytes([v4[2], v4[3]]);
        n += 2;
    }
    match gap {
        None if n != 8 => return None,
        Some(_) if n >= 8 => return None,
        Some(g) => {
            let moved = n - g;
            words.copy_within(g..n, 8 - moved);
            words[g..8 - moved].fill(0);
        }
        None => {}
    }
    let mut out = [0u8; 16];
    for (i, w) in words.iter().enumerate() {
        out[2 * i..2 * i + 2].copy_from_slice(&w.to_be_bytes());
    }
    Some(out)
}

/// IPv4 as text.
pub fn format_v4(a: [u8; 4]) -> String {
    format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3])
}

/// IPv6 as text, libevent's way: v4-mapped (`::ffff:a.b.c.d`) and v4-compatible
/// (`::a.b.c.d`) addresses in dotted form, otherwise hex groups with the longest run of
/// two or more zero groups (the first, on a tie) written as `::`.
pub fn format_v6(a: [u8; 16]) -> String {
    let w: Vec<u16> = (0..8)
        .map(|i| u16::from_be_bytes([a[2 * i], a[2 * i + 1]]))
        .collect();
    if w[..5].iter().all(|&x| x == 0) && ((w[5] == 0 && w[6] != 0 && w[7] != 0) || w[5] == 0xffff) {
        let v4 = format_v4([a[12], a[13], a[14], a[15]]);
        return if w[5] == 0 {
            format!("::{v4}")
        } else {
            format!("::{:x}:{v4}", w[5])
        };
    }
    let (mut best, mut best_len) = (usize::MAX, 0);
    let mut i = 0;
    while i < 8 {
        if w[i] == 0 {
            let start = i;
            while i < 8 && w[i] == 0 {
                i += 1;
            }
            if i - start > best_len {
                best = start;
                best_len = i - start;
            }
        } else {
            i += 1;
        }
    }
    if best_len < 2 {
        best = usize::MAX;
    }
    let mut out = String::new();
    let mut i = 0;
    while i < 8 {
        if i == best {
            out.push_str("::");
            i += best_len;
            continue;
        }
        if !out.is_empty() && !out.ends_with(':') {
            out.push(':');
        }
        out.push_str(&format!("{:x}", w[i]));
        i += 1;
    }
    out
}

/// Copies `s` and a NUL into `dst` if it fits in `len`.
///
/// # Safety
/// `dst` holds `len` writable bytes.
unsafe fn put(s: &str, dst: *mut c_char, len: usize) -> *const c_char {
    if s.len() >= len {
        set_errno(libc::ENOSPC);
        return std::ptr::null();
    }
    // SAFETY: `s.len() + 1 <= len` bytes of `dst` are writable.
    unsafe {
        std::ptr::copy_nonoverlapping(s.as_ptr(), dst.cast::<u8>(), s.len());
        *dst.add(s.len()) = 0;
    }
    dst
}

/// The address part of a socket address as text, with the port.
///
/// # Safety
/// `sa` points to a socket address of its family's size.
pub unsafe fn sockaddr_text(sa: *const libc::sockaddr) -> Option<(String, u16, bool)> {
    // SAFETY: per the contract, the family decides the struct's size.
    unsafe {
        match c_int::from((*sa).sa_family) {
            libc::AF_INET => {
                let sin = &*sa.cast::<libc::sockaddr_in>();
                Some((
                    format_v4(sin.sin_addr.s_addr.to_ne_bytes()),
                    u16::from_be(sin.sin_port),
                    false,
                ))
            }
            libc::AF_INET6 => {
                let sin6 = &*sa.cast::<libc::sockaddr_in6>();
                Some((
                    format_v6(sin6.sin6_addr.s6_addr),
                    u16::from_be(sin6.sin6_port),
                    true,
                ))
            }
            _ => None,
        }
    }
}

/// The parts of `evutil_parse_sockaddr_port`'s text: the address, the port text (if any),
/// and whether it is IPv6.
type HostPort<'a> = (Vec<u8>, Option<&'a [u8]>, bool);

/// Splits `evutil_parse_sockaddr_port`'s text.
fn split_host_port(s: &[u8]) -> Option<HostPort<'_>> {
    let first_colon = s.iter().position(|&c| c == b':');
    if s.first() == Some(&b'[') {
        let close = s.iter().position(|&c| c == b']')?;
        if close - 1 > 127 {
            return None;
        }
        let port = (s.get(close + 1) == Some(&b':')).then(|| &s[close + 2..]);
        return Some((s[1..close].to_vec(), port, true));
    }
    match first_colon {
        Some(c) if s[c + 1..].contains(&b':') => Some((s.to_vec(), None, true)),
        Some(c) => {
            if c > 127 {
                return None;
            }
            Some((s[..c].to_vec(), Some(&s[c + 1..]), false))
        }
        None => Some((s.to_vec(), None, false)),
    }
}

/// C's `atoi`: white space, a sign, digits; 0 if none.
fn atoi(s: &[u8]) -> i64 {
    let t: Vec<u8> = s.to_vec();
    match scan_u(&t) {
        Some((v, _)) => {
            let first = t.iter().find(|c| !c.is_ascii_whitespace()).copied();
            let v = v.min(i64::MAX as u64) as i64;
            if first == Some(b'-') {
                -1
            } else {
                v
            }
        }
        None => 0,
    }
}

/// The scope part of `addr%scope`: an interface name or a number.
fn scope_index(scope: &[u8]) -> Option<c_uint> {
    let name = std::ffi::CString::new(scope).ok()?;
    // SAFETY: a C string.
    let idx = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if idx != 0 {
        return Some(idx);
    }
    if scope.is_empty() {
        return Some(0);
    }
    std::str::from_utf8(scope)
        .ok()?
        .parse::<u64>()
        .ok()
        .map(|v| v as c_uint)
}

/// IPv6 text with an optional `%scope`: address and scope index.
fn parse_v6_scoped(s: &[u8]) -> Option<([u8; 16], Option<c_uint>)> {
    match s.iter().position(|&c| c == b'%') {
        None => parse_v6(s).map(|a| (a, None)),
        Some(p) => {
            let idx = scope_index(&s[p + 1..])?;
            parse_v6(&s[..p]).map(|a| (a, Some(idx)))
        }
    }
}

capi! {
    /// Binary address to text (`AF_INET`, `AF_INET6`); NULL if `len` is too small or the
    /// family unknown.
    fn evutil_inet_ntop(af: c_int, src: *const c_void, dst: *mut c_char, len: usize) -> *const c_char {
        if src.is_null() || dst.is_null() {
            return std::ptr::null();
        }
        // SAFETY: `src` holds an address of the family, `dst` `len` bytes, per the contract.
        unsafe {
            match af {
                libc::AF_INET => put(&format_v4(*src.cast::<[u8; 4]>()), dst, len),
                libc::AF_INET6 => {
                    // libevent refuses only a buffer shorter than the text: one of exactly
                    // its length gets the text cut by one byte.
                    let text = format_v6(*src.cast::<[u8; 16]>());
                    if text.len() > len || len == 0 {
                        set_errno(libc::ENOSPC);
                        return std::ptr::null();
                    }
                    put(&text[..text.len().min(len - 1)], dst, len)
                }
                _ => {
                    set_errno(libc::EAFNOSUPPORT);
                    std::ptr::null()
                }
            }
        }
    }

    /// Text to binary address: 1 parsed, 0 malformed, -1 unknown family.
    fn evutil_inet_pton(af: c_int, src: *const c_char, dst: *mut c_void) -> c_int {
        if src.is_null() || dst.is_null() {
            return 0;
        }
        // SAFETY: `src` a C string; `dst` big enough for the family, per the contract.
        unsafe {
            let s = cbytes(src);
            match af {
                libc::AF_INET => match parse_v4(s) {
                    Some(a) => { *dst.cast::<[u8; 4]>() = a; 1 }
                    None => 0,
                },
                libc::AF_INET6 => match parse_v6(s) {
                    Some(a) => { *dst.cast::<[u8; 16]>() = a; 1 }
                    None => 0,
                },
                _ => {
                    set_errno(libc::EAFNOSUPPORT);
                    -1
                }
            }
        }
    }

    /// As `evutil_inet_pton`, but an IPv6 address may end in `%scope` (an interface name
    /// or number), whose index goes to `*indexp` (0 when there is none, or on failure).
    fn evutil_inet_pton_scope(af: c_int, src: *const c_char, dst: *mut c_void, indexp: *mut c_uint) -> c_int {
        if !indexp.is_null() {
            // SAFETY: writable per the contract.
            unsafe { *indexp = 0 };
        }
        if af != libc::AF_INET6 || src.is_null() || dst.is_null() {
            // SAFETY: forwarded contract.
            return unsafe { evutil_inet_pton(af, src, dst) };
        }
        // SAFETY: `src` a C string; `dst` 16 writable bytes; `indexp` null or writable.
        unsafe {
            let s = cbytes(src);
            if !s.contains(&b'%') {
                return evutil_inet_pton(af, src, dst);
            }
            match parse_v6_scoped(s) {
                Some((a, idx)) => {
                    *dst.cast::<[u8; 16]>() = a;
                    if let (Some(i), false) = (idx, indexp.is_null()) {
                        *indexp = i;
                    }
                    1
                }
                None => 0,
            }
        }
    }

    /// Parses `ip`, `ip:port`, `[ipv6]`, `[ipv6]:port` or a bare IPv6 address (with an
    /// optional `%scope`) into `out`; `*outlen` is its size on entry, the address's after.
    /// An explicit port must be 1..=65535. 0, or -1.
    fn evutil_parse_sockaddr_port(s: *const c_char, out: *mut libc::sockaddr, outlen: *mut c_int) -> c_int {
        if s.is_null() || out.is_null() || outlen.is_null() {
            return -1;
        }
        // SAFETY: `s` a C string; `out` holds `*outlen` writable bytes per the contract.
        unsafe {
            let Some((addr, port, v6)) = split_host_port(cbytes(s)) else { return -1 };
            let port = match port {
                None => 0,
                Some(p) => match atoi(p) {
                    p @ 1..=65535 => p as u16,
                    _ => return -1,
                },
            };
            let room = *outlen;
            if v6 {
                let Some((a, idx)) = parse_v6_scoped(&addr) else { return -1 };
                let mut sin6: libc::sockaddr_in6 = std::mem::zeroed();
                sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                sin6.sin6_port = port.to_be();
                sin6.sin6_addr.s6_addr = a;
                sin6.sin6_scope_id = idx.unwrap_or(0);
                let n = size_of::<libc::sockaddr_in6>();
                if (n as c_int) > room {
                    return -1;
                }
                std::ptr::write_bytes(out.cast::<u8>(), 0, room as usize);
                std::ptr::copy_nonoverlapping((&sin6 as *const libc::sockaddr_in6).cast::<u8>(), out.cast::<u8>(), n);
                *outlen = n as c_int;
            } else {
                let Some(a) = parse_v4(&addr) else { return -1 };
                let mut sin: libc::sockaddr_in = std::mem::zeroed();
                sin.sin_family = libc::AF_INET as libc::sa_family_t;
                sin.sin_port = port.to_be();
                sin.sin_addr.s_addr = u32::from_ne_bytes(a);
                let n = size_of::<libc::sockaddr_in>();
                if (n as c_int) > room {
                    return -1;
                }
                std::ptr::write_bytes(out.cast::<u8>(), 0, room as usize);
                std::ptr::copy_nonoverlapping((&sin as *const libc::sockaddr_in).cast::<u8>(), out.cast::<u8>(), n);
                *outlen = n as c_int;
            }
        }
        0
    }

    /// Orders socket addresses: by family, then address, then (if `include_port`) port as
    /// stored (network byte order, as libevent compares it). Two addresses of another
    /// family give 1, as libevent.
    fn evutil_sockaddr_cmp(a: *const libc::sockaddr, b: *const libc::sockaddr, include_port: c_int) -> c_int {
        if a.is_null() || b.is_null() {
            return 0;
        }
        // SAFETY: two socket addresses of their families' sizes, per the contract.
        unsafe {
            let (fa, fb) = ((*a).sa_family, (*b).sa_family);
            if fa != fb {
                return if fa < fb { -1 } else { 1 };
            }
            let ord = match c_int::from(fa) {
                libc::AF_INET => {
                    let (x, y) = (&*a.cast::<libc::sockaddr_in>(), &*b.cast::<libc::sockaddr_in>());
                    u32::from_be(x.sin_addr.s_addr)
                        .cmp(&u32::from_be(y.sin_addr.s_addr))
                        .then(if include_port != 0 { x.sin_port.cmp(&y.sin_port) } else { std::cmp::Ordering::Equal })
                }
                libc::AF_INET6 => {
                    let (x, y) = (&*a.cast::<libc::sockaddr_in6>(), &*b.cast::<libc::sockaddr_in6>());
                    x.sin6_addr.s6_addr
                        .cmp(&y.sin6_addr.s6_addr)
                        .then(if include_port != 0 { x.sin6_port.cmp(&y.sin6_port) } else { std::cmp::Ordering::Equal })
                }
                _ => std::cmp::Ordering::Greater,
            };
            ord as c_int
        }
    }

    /// Internal: `a.b.c.d:port`, `[v6]:port`, or (libevent's wording) `<addr with
    /// socktype N>` with the family into `out`; returns `out`.
    fn evutil_format_sockaddr_port_(sa: *const libc::sockaddr, out: *mut c_char, len: usize) -> *const c_char {
        if sa.is_null() || out.is_null() || len == 0 {
            return out;
        }
        // SAFETY: a socket address per the contract; `out` holds `len` bytes.
        unsafe {
            let text = match sockaddr_text(sa) {
                Some((a, p, false)) => format!("{a}:{p}"),
                Some((a, p, true)) => format!("[{a}]:{p}"),
                None => format!("<addr with socktype {}>", (*sa).sa_family),
            };
            let n = text.len().min(len - 1);
            std::ptr::copy_nonoverlapping(text.as_ptr(), out.cast::<u8>(), n);
            *out.add(n) = 0;
        }
        out
    }

    /// Internal: whether the address is 127.0.0.0/8 or ::1.
    fn evutil_sockaddr_is_loopback_(sa: *const libc::sockaddr) -> c_int {
        if sa.is_null() {
            return 0;
        }
        // SAFETY: a socket address per the contract.
        unsafe {
            match c_int::from((*sa).sa_family) {
                libc::AF_INET => c_int::from(u32::from_be((*sa.cast::<libc::sockaddr_in>()).sin_addr.s_addr) >> 24 == 127),
                libc::AF_INET6 => {
                    let mut one = [0u8; 16];
                    one[15] = 1;
                    c_int::from((*sa.cast::<libc::sockaddr_in6>()).sin6_addr.s6_addr == one)
                }
                _ => 0,
            }
        }
    }

    /// Internal: whether an IPv4 address is not globally routable: 0.0.0.0, loopback,
    /// link-local 169.254/16 or multicast 224/4.
    fn evutil_v4addr_is_local_(a: *const libc::in_addr) -> c_int {
        if a.is_null() {
            return 0;
        }
        // SAFETY: an address per the contract.
        let v = u32::from_be(unsafe { (*a).s_addr });
        c_int::from(v == 0 || v >> 24 == 127 || v >> 16 == 0xa9fe || v >> 28 == 0xe)
    }

    /// Internal: whether an IPv6 address is not globally routable: first 64 bits zero
    /// (unspecified, loopback, v4-compatible/mapped), unique-local fc00::/7, link-local
    /// fe80::/10, site-local fec0::/10, or multicast ff00::/8.
    fn evutil_v6addr_is_local_(a: *const libc::in6_addr) -> c_int {
        if a.is_null() {
            return 0;
        }
        // SAFETY: an address per the contract.
        let b = unsafe { (*a).s6_addr };
        c_int::from(
            b[..8].iter().all(|&x| x == 0)
                || b[0] & 0xfe == 0xfc
                || (b[0] == 0xfe && b[1] & 0xc0 == 0x80)
                || (b[0] == 0xfe && b[1] & 0xc0 == 0xc0)
                || b[0] == 0xff,
        )
    }
}
