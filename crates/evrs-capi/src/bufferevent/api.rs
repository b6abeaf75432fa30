//! The functions every kind of bufferevent has: callbacks, enabling, reading and writing,
//! watermarks, timeouts, flushing, triggers, references and freeing.

use super::{decref, pv, refresh, run_cb, with, CBev, DataCb, EventCb, Kind, Which};
use crate::base::{self, CBase};
use crate::buffer::{self, CBuffer};
use crate::ffi::capi;
use crate::log;
use evrs::buffer::EvBuffer;
use evrs::bufferevent::Flush;
use evrs::What;
use std::os::raw::{c_int, c_short, c_void};
use std::ptr;
use std::time::Duration;

/// `EV_READ | EV_WRITE` out of a C `short`.
pub(crate) fn dirs(events: c_short) -> What {
    What::from_bits_truncate(events as u16) & (What::READ | What::WRITE)
}

/// `BEV_TRIG_IGNORE_WATERMARKS`.
const TRIG_IGNORE_WATERMARKS: c_int = 1 << 16;
/// `BEV_TRIG_DEFER_CALLBACKS`.
const TRIG_DEFER_CALLBACKS: c_int = 0x04;

fn timeval_of(d: Option<Duration>) -> libc::timeval {
    let d = d.unwrap_or_default();
    libc::timeval {
        tv_sec: d.as_secs() as libc::time_t,
        tv_usec: d.subsec_micros() as libc::suseconds_t,
    }
}

/// A C timeout: NULL or {0, 0} is none.
///
/// # Safety
/// `tv` is null or readable.
unsafe fn timeout(tv: *const libc::timeval) -> Option<Duration> {
    // SAFETY: per the contract.
    let d = unsafe { base::opt_duration(tv) }?;
    (!d.is_zero()).then_some(d)
}

/// Sets both timeouts and mirrors them in the head.
///
/// # Safety
/// `p` is null or a live C bufferevent.
pub(crate) unsafe fn set_timeouts(p: *mut CBev, r: Option<Duration>, w: Option<Duration>) -> c_int {
    // SAFETY: per the contract.
    unsafe {
        let res = with(p, "bufferevent_set_timeouts", -1, |b, h| {
            if b.bev_set_timeouts(h, r, w).is_ok() {
                0
            } else {
                -1
            }
        });
        if res == 0 {
            (*p).head.timeout_read = timeval_of(r);
            (*p).head.timeout_write = timeval_of(w);
            refresh(p);
        }
        res
    }
}

/// Ends a call on `p`: the head catches up.
///
/// # Safety
/// `p` is null or a live C bufferevent.
unsafe fn done<R>(p: *mut CBev, r: R) -> R {
    if !p.is_null() {
        // SAFETY: per the contract.
        unsafe { refresh(p) };
    }
    r
}

/// Clears the callbacks and drops the program's reference (libevent's `bufferevent_free`).
///
/// # Safety
/// `p` is a live C bufferevent.
pub(crate) unsafe fn free(p: *mut CBev) {
    // SAFETY: per the contract.
    unsafe {
        let hd = &mut (*p).head;
        hd.readcb = None;
        hd.writecb = None;
        hd.errorcb = None;
        decref(p);
    }
}

capi! {
    /// Sets the read, write and event callbacks and their argument.
    fn bufferevent_setcb(p: *mut CBev, readcb: Option<DataCb>, writecb: Option<DataCb>, eventcb: Option<EventCb>, cbarg: *mut c_void) {
        if p.is_null() {
            return;
        }
        // SAFETY: a live bufferevent.
        unsafe {
            let hd = &mut (*p).head;
            hd.readcb = readcb;
            hd.writecb = writecb;
            hd.errorcb = eventcb;
            hd.cbarg = cbarg;
            // A filter that went away took the handler with it: put it back.
            if pv(p).filtered_by.is_null() && !pv(p).dead {
                with(p, "bufferevent_setcb", (), |b, h| {
                    let _ = b.bev_set_handler(h, super::CHandler(p));
                });
            }
        }
    }

    /// The callbacks and argument (any of the out-pointers may be NULL).
    fn bufferevent_getcb(p: *mut CBev, readcb: *mut Option<DataCb>, writecb: *mut Option<DataCb>, eventcb: *mut Option<EventCb>, cbarg: *mut *mut c_void) {
        if p.is_null() {
            return;
        }
        // SAFETY: a live bufferevent; non-null out-pointers are writable.
        unsafe {
            let hd = &(*p).head;
            if !readcb.is_null() { *readcb = hd.readcb; }
            if !writecb.is_null() { *writecb = hd.writecb; }
            if !eventcb.is_null() { *eventcb = hd.errorcb; }
            if !cbarg.is_null() { *cbarg = hd.cbarg; }
        }
    }

    /// Enables reading and/or writing.
    fn bufferevent_enable(p: *mut CBev, events: c_short) -> c_int {
        // SAFETY: null or live.
        unsafe {
            let r = with(p, "bufferevent_enable", -1, |b, h| if b.bev_enable(h, dirs(events)).is_ok() { 0 } else { -1 });
            done(p, r)
        }
    }

    /// Disables reading and/or writing.
    fn bufferevent_disable(p: *mut CBev, events: c_short) -> c_int {
        // SAFETY: null or live.
        unsafe {
            let r = with(p, "bufferevent_disable", -1, |b, h| if b.bev_disable(h, dirs(events)).is_ok() { 0 } else { -1 });
            done(p, r)
        }
    }

    /// What is enabled.
    fn bufferevent_get_enabled(p: *mut CBev) -> c_short {
        // SAFETY: null or live.
        unsafe { with(p, "bufferevent_get_enabled", 0, |b, h| b.bev_get_enabled(h).map_or(0, |w| dirs(w.bits() as c_short).bits() as c_short)) }
    }

    /// Appends `size` bytes to the output.
    fn bufferevent_write(p: *mut CBev, data: *const c_void, size: usize) -> c_int {
        if data.is_null() && size > 0 {
            return -1;
        }
        let bytes = if size == 0 {
            &[][..]
        } else {
            // SAFETY: the caller's `size` readable bytes.
            unsafe { std::slice::from_raw_parts(data.cast::<u8>(), size) }
        };
        if let Some(r) = super::filter::write_to_own_output(p, bytes) {
            return r;
        }
        // SAFETY: null or live.
        unsafe {
            let r = with(p, "bufferevent_write", -1, |b, h| if b.bev_write(h, bytes).is_ok() { 0 } else { -1 });
            done(p, r)
        }
    }

    /// Moves all of `buf` to the output.
    fn bufferevent_write_buffer(p: *mut CBev, buf: *mut CBuffer) -> c_int {
        if p.is_null() || buf.is_null() {
            return -1;
        }
        // In two steps: `buf` may itself be a bufferevent's buffer, which borrows the base.
        let mut tmp = EvBuffer::new();
        // SAFETY: a live buffer of this library.
        let took = unsafe { buffer::with(buf, "bufferevent_write_buffer", |eb| tmp.add_buffer(eb).map_or(-1, |_| 0)) };
        if took < 0 {
            return -1;
        }
        // SAFETY: null or live.
        unsafe {
            let r = with(p, "bufferevent_write_buffer", -1, |b, h| if b.bev_write_buffer(h, &mut tmp).is_ok() { 0 } else { -1 });
            done(p, r)
        }
    }

    /// Removes up to `size` bytes of input into `data`; returns how many.
    fn bufferevent_read(p: *mut CBev, data: *mut c_void, size: usize) -> usize {
        if data.is_null() || size == 0 {
            return 0;
        }
        // SAFETY: the caller's `size` writable bytes.
        let out = unsafe { std::slice::from_raw_parts_mut(data.cast::<u8>(), size) };
        // SAFETY: null or live.
        unsafe {
            let r = with(p, "bufferevent_read", 0, |b, h| b.bev_read(h, out).unwrap_or(0));
            done(p, r)
        }
    }

    /// Moves all of the input to the end of `buf`.
    fn bufferevent_read_buffer(p: *mut CBev, buf: *mut CBuffer) -> c_int {
        if p.is_null() || buf.is_null() {
            return -1;
        }
        // SAFETY: null or live.
        let tmp = unsafe {
            with(p, "bufferevent_read_buffer", None, |b, h| {
                let mut g = b.bev_input(h).ok()?;
                let mut tmp = EvBuffer::new();
                tmp.add_buffer(&mut g).ok()?;
                Some(tmp)
            })
        };
        let Some(mut tmp) = tmp else { return -1 };
        // SAFETY: a live buffer of this library.
        let r = unsafe { buffer::with(buf, "bufferevent_read_buffer", |eb| eb.add_buffer(&mut tmp).map_or(-1, |_| 0)) };
        // SAFETY: live.
        unsafe { done(p, r) }
    }

    /// `bev->input`.
    fn bufferevent_get_input(p: *mut CBev) -> *mut CBuffer {
        // SAFETY: a live bufferevent.
        if p.is_null() { ptr::null_mut() } else { unsafe { (*p).head.input } }
    }

    /// `bev->output`.
    fn bufferevent_get_output(p: *mut CBev) -> *mut CBuffer {
        // SAFETY: a live bufferevent.
        if p.is_null() { ptr::null_mut() } else { unsafe { (*p).head.output } }
    }

    /// The bufferevent's base.
    fn bufferevent_get_base(p: *mut CBev) -> *mut CBase {
        // SAFETY: a live bufferevent.
        if p.is_null() { ptr::null_mut() } else { unsafe { (*p).head.ev_base } }
    }

    /// Sets the read and/or write watermarks. evrs refuses a low mark above a non-zero high
    /// mark (libevent accepts it, and such a bufferevent stalls): that direction keeps its
    /// old marks, with a warning.
    fn bufferevent_setwatermark(p: *mut CBev, events: c_short, low: usize, high: usize) {
        let what = dirs(events);
        // SAFETY: null or live.
        unsafe {
            let ok = with(p, "bufferevent_setwatermark", false, |b, h| b.bev_setwatermark(h, what, low, high).is_ok());
            if !ok {
                if !p.is_null() {
                    log::warn("bufferevent_setwatermark: low watermark above the high one: unchanged");
                }
                return;
            }
            let hd = &mut (*p).head;
            if what.contains(What::READ) { hd.wm_read = [low, high]; }
            if what.contains(What::WRITE) { hd.wm_write = [low, high]; }
            done(p, ());
        }
    }

    /// One direction's watermarks: 0, or -1 unless `events` is exactly `EV_READ` or
    /// `EV_WRITE`.
    fn bufferevent_getwatermark(p: *mut CBev, events: c_short, low: *mut usize, high: *mut usize) -> c_int {
        if p.is_null() {
            return -1;
        }
        // SAFETY: a live bufferevent; non-null out-pointers are writable.
        unsafe {
            let hd = &(*p).head;
            let wm = match dirs(events) {
                w if w == What::READ && events & !0x06 == 0 => hd.wm_read,
                w if w == What::WRITE && events & !0x06 == 0 => hd.wm_write,
                _ => return -1,
            };
            if !low.is_null() { *low = wm[0]; }
            if !high.is_null() { *high = wm[1]; }
        }
        0
    }

    /// Read and write timeouts (NULL or zero: none).
    fn bufferevent_set_timeouts(p: *mut CBev, tr: *const libc::timeval, tw: *const libc::timeval) -> c_int {
        // SAFETY: null or readable timevals; null or live bufferevent.
        unsafe { set_timeouts(p, timeout(tr), timeout(tw)) }
    }

    /// Takes the bufferevent's lock: on a threaded base, the base's (every bufferevent of a
    /// base shares it, and its callbacks run holding it); otherwise nothing.
    fn bufferevent_lock(p: *mut CBev) {
        if let Some(l) = base_lock(p) {
            l.lock();
        }
    }

    /// Releases what `bufferevent_lock` took.
    fn bufferevent_unlock(p: *mut CBev) {
        if let Some(l) = base_lock(p) {
            l.unlock_checked("bufferevent_unlock");
        }
    }

    /// Takes a reference: the bufferevent outlives `bufferevent_free` until `decref`.
    fn bufferevent_incref(p: *mut CBev) {
        if !p.is_null() {
            // SAFETY: a live bufferevent.
            unsafe { pv(p).refcnt += 1 };
        }
    }

    /// Drops a reference; 1 if that freed the bufferevent, else 0.
    fn bufferevent_decref(p: *mut CBev) -> c_int {
        if p.is_null() {
            return -1;
        }
        // SAFETY: a live bufferevent.
        c_int::from(unsafe { decref(p) })
    }

    /// Frees the bufferevent (see the module docs): callbacks stop now; unsent output is
    /// dropped.
    fn bufferevent_free(p: *mut CBev) {
        if p.is_null() {
            return;
        }
        // SAFETY: a live bufferevent.
        unsafe {
            if pv(p).dead {
                log::warn("bufferevent_free: the bufferevent was freed already");
                return;
            }
            free(p)
        }
    }

    /// Flushes: socket bufferevents do nothing and return 0, as libevent's (evrs shuts the
    /// write side down after draining for `BEV_FINISHED`); pairs move everything (0);
    /// filters run their filters in `mode` and return 1 if anything moved.
    fn bufferevent_flush(p: *mut CBev, iotype: c_short, mode_: c_int) -> c_int {
        let mode = match mode_ {
            0 => Flush::Normal,
            1 => Flush::Flush,
            2 => Flush::Finished,
            _ => return -1,
        };
        if p.is_null() {
            return -1;
        }
        // SAFETY: a live bufferevent.
        unsafe {
            let kind = pv(p).kind;
            if kind == Kind::Socket && mode != Flush::Finished {
                return 0;
            }
            let ran = kind == Kind::Filter && super::filter::flush_run(p, dirs(iotype), mode_);
            let r = with(p, "bufferevent_flush", -1, |b, h| match b.bev_flush(h, mode) {
                Ok(moved) => c_int::from((moved || ran) && kind == Kind::Filter),
                Err(_) => -1,
            });
            done(p, r)
        }
    }

    /// Runs the read and/or write callback as if data had arrived or drained (if the
    /// watermarks allow, unless `BEV_TRIG_IGNORE_WATERMARKS`), from the loop with
    /// `BEV_TRIG_DEFER_CALLBACKS`.
    fn bufferevent_trigger(p: *mut CBev, iotype: c_short, options: c_int) {
        if p.is_null() {
            return;
        }
        let ignore = options & TRIG_IGNORE_WATERMARKS != 0;
        let defer = options & TRIG_DEFER_CALLBACKS != 0;
        let what = dirs(iotype);
        // SAFETY: a live bufferevent.
        unsafe {
            let lens = with(p, "bufferevent_trigger", None, |b, h| {
                let i = b.bev_input(h).ok()?.len();
                let o = b.bev_output(h).ok()?.len();
                Some((i, o))
            });
            let Some((ilen, olen)) = lens else { return };
            let hd = &(*p).head;
            let (rlow, wlow) = (hd.wm_read[0], hd.wm_write[0]);
            if what.contains(What::READ) && (ignore || ilen >= rlow) && hd.readcb.is_some() {
                run_cb(p, Which::Read, defer);
            }
            if pv(p).dead {
                return;
            }
            let hd = &(*p).head;
            if what.contains(What::WRITE) && (ignore || olen <= wlow) && hd.writecb.is_some() {
                run_cb(p, Which::Write, defer);
            }
        }
    }

    /// Runs the event callback with `what`, from the loop with `BEV_TRIG_DEFER_CALLBACKS`.
    fn bufferevent_trigger_event(p: *mut CBev, what: c_short, options: c_int) {
        if p.is_null() {
            return;
        }
        // SAFETY: a live bufferevent.
        unsafe {
            if (*p).head.errorcb.is_some() {
                run_cb(p, Which::Event(what), options & TRIG_DEFER_CALLBACKS != 0);
            }
        }
    }

    /// The priority of the bufferevent's events: 0, or -1 if out of range.
    fn bufferevent_priority_set(p: *mut CBev, pri: c_int) -> c_int {
        if pri < 0 {
            return -1;
        }
        // SAFETY: null or live.
        unsafe {
            let r = with(p, "bufferevent_priority_set", -1, |b, h| {
                if (pri as usize) < b.priorities() && b.bev_priority_set(h, pri as usize).is_ok() { 0 } else { -1 }
            });
            if r == 0 {
                pv(p).priority = pri;
                (*p).head.ev_read.pri = pri as u8;
                (*p).head.ev_write.pri = pri as u8;
            }
            r
        }
    }

    /// The priority of the bufferevent's events.
    fn bufferevent_get_priority(p: *const CBev) -> c_int {
        // SAFETY: a live bufferevent.
        if p.is_null() { -1 } else { unsafe { pv(p.cast_mut()).priority } }
    }
}

/// The lock of a bufferevent's threaded base, if it is on one.
fn base_lock<'a>(p: *mut CBev) -> Option<&'a crate::locking::BaseLock> {
    if p.is_null() {
        return None;
    }
    // SAFETY: a live bufferevent names a base made by this library (whose memory is never
    // released, and whose lock lives as long as the base).
    unsafe {
        let base = (*p).head.ev_base;
        if crate::base::is_live(base) {
            (*base).lock()
        } else {
            None
        }
    }
}
