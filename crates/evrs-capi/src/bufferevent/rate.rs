//! Rate limits: token-bucket configurations (`ev_token_bucket_cfg`), per-bufferevent limits,
//! groups, and the largest single read and write.

use super::{pv, with, CBev};
use crate::base::{self, CBase};
use crate::ffi::capi;
use crate::log;
use evrs::bufferevent::{RateLimit, RateLimitGroup};
use std::os::raw::c_int;
use std::ptr;

/// What a C `struct ev_token_bucket_cfg *` points to.
pub struct CTokenCfg {
    cfg: RateLimit,
}

/// What a C `struct bufferevent_rate_limit_group *` points to.
pub struct CGroup {
    base: *mut CBase,
    g: RateLimitGroup,
    members: Vec<*mut CBev>,
}

/// A member is going away: the group forgets it (evrs's group forgets its half).
///
/// # Safety
/// `g` is a live group.
pub(crate) unsafe fn group_forget(g: *mut CGroup, p: *mut CBev) {
    // SAFETY: per the contract.
    unsafe { (*g).members.retain(|&m| m != p) };
}

/// Runs `f` on a group's base.
///
/// # Safety
/// `g` is null or a live group.
unsafe fn with_group<R>(
    g: *mut CGroup,
    err: R,
    f: impl FnOnce(&mut evrs::EventBase, RateLimitGroup) -> R,
) -> R {
    // SAFETY: per the contract.
    unsafe {
        if g.is_null() || !base::is_live((*g).base) {
            return err;
        }
        let gg = (*g).g;
        CBase::with((*g).base, |b| f(b, gg))
    }
}

/// Libevent's cap on single reads and writes when asked for 0 or more than it allows.
fn single(n: usize) -> isize {
    if n == 0 || n > isize::MAX as usize {
        super::DEFAULT_MAX_SINGLE
    } else {
        n as isize
    }
}

/// Pushes the largest single read and write to evrs.
///
/// # Safety
/// `p` is null or live.
unsafe fn push_single(p: *mut CBev) -> c_int {
    // SAFETY: per the contract (`with` checks null before `pv` is reached).
    unsafe {
        if p.is_null() {
            return -1;
        }
        let (r, w) = (pv(p).max_read as usize, pv(p).max_write as usize);
        with(p, "bufferevent_set_max_single", -1, |b, h| {
            if b.bev_set_max_single(h, r, w).is_ok() {
                0
            } else {
                -1
            }
        })
    }
}

capi! {
    /// A token-bucket configuration: rates at least 1 and at most their bursts (NULL
    /// otherwise); `tick_len` NULL is one second.
    fn ev_token_bucket_cfg_new(read_rate: usize, read_burst: usize, write_rate: usize, write_burst: usize, tick_len: *const libc::timeval) -> *mut CTokenCfg {
        // SAFETY: null or a readable timeval.
        let tick = unsafe { base::opt_duration(tick_len) };
        match RateLimit::new(read_rate, read_burst, write_rate, write_burst, tick) {
            Ok(cfg) => Box::into_raw(Box::new(CTokenCfg { cfg })),
            Err(_) => ptr::null_mut(),
        }
    }

    /// Frees a configuration (not while a bufferevent uses it, as in libevent).
    fn ev_token_bucket_cfg_free(cfg: *mut CTokenCfg) {
        if !cfg.is_null() {
            // SAFETY: made by `ev_token_bucket_cfg_new`.
            drop(unsafe { Box::from_raw(cfg) });
        }
    }

    /// Sets the bufferevent's own rate limit (NULL: none). 0, or -1.
    fn bufferevent_set_rate_limit(p: *mut CBev, cfg: *const CTokenCfg) -> c_int {
        // SAFETY: null or live; `cfg` null or made by `ev_token_bucket_cfg_new`.
        unsafe {
            let c = cfg.as_ref().map(|c| c.cfg);
            let r = with(p, "bufferevent_set_rate_limit", -1, |b, h| if b.bev_set_rate_limit(h, c).is_ok() { 0 } else { -1 });
            if r == 0 {
                pv(p).rate_cfg = cfg;
            }
            r
        }
    }

    /// The configuration set with `bufferevent_set_rate_limit` (NULL: none).
    fn bufferevent_get_token_bucket_cfg(p: *const CBev) -> *const CTokenCfg {
        // SAFETY: a live bufferevent.
        if p.is_null() { ptr::null() } else { unsafe { pv(p.cast_mut()).rate_cfg } }
    }

    /// A group sharing buckets configured as `cfg` (copied).
    fn bufferevent_rate_limit_group_new(base: *mut CBase, cfg: *const CTokenCfg) -> *mut CGroup {
        if !base::is_live(base) || cfg.is_null() {
            return ptr::null_mut();
        }
        // SAFETY: a live base; a configuration of this library.
        unsafe {
            let c = (*cfg).cfg;
            match CBase::with(base, |b| b.rate_limit_group(c)) {
                Ok(g) => Box::into_raw(Box::new(CGroup { base, g, members: Vec::new() })),
                Err(_) => ptr::null_mut(),
            }
        }
    }

    /// Gives the group a new configuration (copied). 0, or -1.
    fn bufferevent_rate_limit_group_set_cfg(g: *mut CGroup, cfg: *const CTokenCfg) -> c_int {
        if cfg.is_null() {
            return -1;
        }
        // SAFETY: a configuration of this library; null or live group.
        let c = unsafe { (*cfg).cfg };
        // SAFETY: null or live group.
        unsafe { with_group(g, -1, |b, gg| if b.rate_limit_group_set_cfg(gg, c).is_ok() { 0 } else { -1 }) }
    }

    /// Sets the least a member may move per round. 0, or -1.
    fn bufferevent_rate_limit_group_set_min_share(g: *mut CGroup, share: usize) -> c_int {
        // SAFETY: null or live.
        unsafe { with_group(g, -1, |b, gg| if b.rate_limit_group_set_min_share(gg, share).is_ok() { 0 } else { -1 }) }
    }

    /// Frees a group (its members leave it; libevent asserts there are none).
    fn bufferevent_rate_limit_group_free(g: *mut CGroup) {
        if g.is_null() {
            return;
        }
        // SAFETY: a live group; its members are live bufferevents.
        unsafe {
            if !(*g).members.is_empty() {
                log::warn("bufferevent_rate_limit_group_free: the group still has members");
            }
            for &m in &(*g).members {
                pv(m).group = ptr::null_mut();
            }
            with_group(g, (), |b, gg| {
                let _ = b.rate_limit_group_free(gg);
            });
            drop(Box::from_raw(g));
        }
    }

    /// Puts the bufferevent in group `g` (leaving any other). 0, or -1.
    fn bufferevent_add_to_rate_limit_group(p: *mut CBev, g: *mut CGroup) -> c_int {
        if p.is_null() || g.is_null() {
            return -1;
        }
        // SAFETY: live bufferevent and group.
        unsafe {
            let gg = (*g).g;
            let r = with(p, "bufferevent_add_to_rate_limit_group", -1, |b, h| if b.bev_add_to_rate_limit_group(h, gg).is_ok() { 0 } else { -1 });
            if r == 0 {
                let old = pv(p).group;
                if !old.is_null() {
                    group_forget(old, p);
                }
                (*g).members.push(p);
                pv(p).group = g;
            }
            r
        }
    }

    /// Takes the bufferevent out of its group. 0, or -1.
    fn bufferevent_remove_from_rate_limit_group(p: *mut CBev) -> c_int {
        // SAFETY: null or live.
        unsafe {
            let r = with(p, "bufferevent_remove_from_rate_limit_group", -1, |b, h| if b.bev_remove_from_rate_limit_group(h).is_ok() { 0 } else { -1 });
            if r == 0 {
                let g = pv(p).group;
                if !g.is_null() {
                    group_forget(g, p);
                    pv(p).group = ptr::null_mut();
                }
            }
            r
        }
    }

    /// The group's read bucket level.
    fn bufferevent_rate_limit_group_get_read_limit(g: *mut CGroup) -> isize {
        // SAFETY: null or live.
        unsafe { with_group(g, -1, |b, gg| b.rate_limit_group_limits(gg).map_or(-1, |l| l.0)) }
    }

    /// The group's write bucket level.
    fn bufferevent_rate_limit_group_get_write_limit(g: *mut CGroup) -> isize {
        // SAFETY: null or live.
        unsafe { with_group(g, -1, |b, gg| b.rate_limit_group_limits(gg).map_or(-1, |l| l.1)) }
    }

    /// Takes `n` tokens from the group's read bucket. 0, or -1.
    fn bufferevent_rate_limit_group_decrement_read(g: *mut CGroup, n: isize) -> c_int {
        // SAFETY: null or live.
        unsafe { with_group(g, -1, |b, gg| if b.rate_limit_group_decrement(gg, true, n).is_ok() { 0 } else { -1 }) }
    }

    /// Takes `n` tokens from the group's write bucket. 0, or -1.
    fn bufferevent_rate_limit_group_decrement_write(g: *mut CGroup, n: isize) -> c_int {
        // SAFETY: null or live.
        unsafe { with_group(g, -1, |b, gg| if b.rate_limit_group_decrement(gg, false, n).is_ok() { 0 } else { -1 }) }
    }

    /// Bytes read and written by the group's members (out-pointers may be NULL).
    fn bufferevent_rate_limit_group_get_totals(g: *mut CGroup, total_read: *mut u64, total_written: *mut u64) {
        // SAFETY: null or live; non-null out-pointers are writable.
        unsafe {
            let (r, w) = with_group(g, (0, 0), |b, gg| b.rate_limit_group_totals(gg).unwrap_or((0, 0)));
            if !total_read.is_null() { *total_read = r; }
            if !total_written.is_null() { *total_written = w; }
        }
    }

    /// Zeroes the group's totals.
    fn bufferevent_rate_limit_group_reset_totals(g: *mut CGroup) {
        // SAFETY: null or live.
        unsafe { with_group(g, (), |b, gg| { let _ = b.rate_limit_group_reset_totals(gg); }) }
    }

    /// What the bufferevent may read now under its rate limits (`EV_SSIZE_MAX`: none).
    fn bufferevent_get_read_limit(p: *mut CBev) -> isize {
        // SAFETY: null or live.
        unsafe { with(p, "bufferevent_get_read_limit", -1, |b, h| b.bev_get_limits(h).map_or(-1, |l| l.0.unwrap_or(isize::MAX))) }
    }

    /// What the bufferevent may write now under its rate limits (`EV_SSIZE_MAX`: none).
    fn bufferevent_get_write_limit(p: *mut CBev) -> isize {
        // SAFETY: null or live.
        unsafe { with(p, "bufferevent_get_write_limit", -1, |b, h| b.bev_get_limits(h).map_or(-1, |l| l.1.unwrap_or(isize::MAX))) }
    }

    /// Takes `n` tokens from the bufferevent's own read bucket. 0, or -1 (no rate limit).
    fn bufferevent_decrement_read_limit(p: *mut CBev, n: isize) -> c_int {
        // SAFETY: null or live.
        unsafe { with(p, "bufferevent_decrement_read_limit", -1, |b, h| if b.bev_decrement_limit(h, true, n).is_ok() { 0 } else { -1 }) }
    }

    /// Takes `n` tokens from the bufferevent's own write bucket. 0, or -1 (no rate limit).
    fn bufferevent_decrement_write_limit(p: *mut CBev, n: isize) -> c_int {
        // SAFETY: null or live.
        unsafe { with(p, "bufferevent_decrement_write_limit", -1, |b, h| if b.bev_decrement_limit(h, false, n).is_ok() { 0 } else { -1 }) }
    }

    /// The largest single read (0 or too large: 16384). 0, or -1.
    fn bufferevent_set_max_single_read(p: *mut CBev, size: usize) -> c_int {
        if p.is_null() {
            return -1;
        }
        // SAFETY: a live bufferevent.
        unsafe {
            pv(p).max_read = single(size);
            push_single(p)
        }
    }

    /// The largest single write (0 or too large: 16384). 0, or -1.
    fn bufferevent_set_max_single_write(p: *mut CBev, size: usize) -> c_int {
        if p.is_null() {
            return -1;
        }
        // SAFETY: a live bufferevent.
        unsafe {
            pv(p).max_write = single(size);
            push_single(p)
        }
    }

    /// The largest single read.
    fn bufferevent_get_max_single_read(p: *mut CBev) -> isize {
        // SAFETY: a live bufferevent.
        if p.is_null() { -1 } else { unsafe { pv(p).max_read } }
    }

    /// The largest single write.
    fn bufferevent_get_max_single_write(p: *mut CBev) -> isize {
        // SAFETY: a live bufferevent.
        if p.is_null() { -1 } else { unsafe { pv(p).max_write } }
    }

    /// What the next read may take: the single-read cap within the rate limits (≥ 0).
    fn bufferevent_get_max_to_read(p: *mut CBev) -> isize {
        // SAFETY: null or live.
        unsafe {
            let lim = bufferevent_get_read_limit(p);
            if lim < 0 && p.is_null() { return -1; }
            lim.min(pv(p).max_read).max(0)
        }
    }

    /// What the next write may send: the single-write cap within the rate limits (≥ 0).
    fn bufferevent_get_max_to_write(p: *mut CBev) -> isize {
        // SAFETY: null or live.
        unsafe {
            let lim = bufferevent_get_write_limit(p);
            if lim < 0 && p.is_null() { return -1; }
            lim.min(pv(p).max_write).max(0)
        }
    }
}
