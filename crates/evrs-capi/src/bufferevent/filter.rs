//! Pairs (`bufferevent_pair_new`) and filters (`bufferevent_filter_new`).
//!
//! A C filter function gets `struct evbuffer *` source and destination; evrs hands its
//! filter closures `&mut EvBuffer`s, so each C filter has two scratch hosted buffers that
//! point at those for the length of one call. A filter function may use only those, with
//! one exception libevent's users rely on: an output filter may `bufferevent_write` to its
//! own filter, whose output is the source it was lent (the bytes join it, after what the
//! filter left, and are filtered next). Other bufferevent calls that would enter the base
//! while a filter runs are refused with a warning.

use super::{options, pv, wrap, CBev, Kind};
use crate::base::{self, CBase};
use crate::buffer::{self, BufferHost, CBuffer};
use crate::ffi::capi;
use crate::log;
use evrs::buffer::EvBuffer;
use evrs::bufferevent::{FilterResult, Flush};
use evrs::What;
use std::cell::Cell;
use std::os::raw::{c_int, c_void};
use std::ptr;
use std::rc::Rc;

/// `bufferevent_filter_cb`.
pub type FilterCb =
    unsafe extern "C" fn(*mut CBuffer, *mut CBuffer, isize, c_int, *mut c_void) -> c_int;
/// The filter context's destructor.
pub type FreeCtx = unsafe extern "C" fn(*mut c_void);

thread_local! {
    /// C filter functions running now: while one runs, evrs holds the buffers it was given,
    /// so the base must not be entered (see [`in_filter`]).
    static IN_FILTER: Cell<u32> = const { Cell::new(0) };
    /// The output filter running now: its C bufferevent and the output it was lent.
    static OUTPUT_FILTER: Cell<(*mut CBev, *mut EvBuffer)> = const { Cell::new((ptr::null_mut(), ptr::null_mut())) };
}

/// `bufferevent_write` from inside `p`'s own output filter: appends to the output the
/// filter was lent (its source). `None` if `p`'s output filter is not what runs.
pub(crate) fn write_to_own_output(p: *mut CBev, data: &[u8]) -> Option<c_int> {
    let (running, out) = OUTPUT_FILTER.with(Cell::get);
    if p.is_null() || running != p || out.is_null() {
        return None;
    }
    // SAFETY: `out` is the `&mut EvBuffer` the running filter call was lent; the filter
    // function holds no Rust reference to it (C code works through the scratch buffer).
    Some(if unsafe { (*out).add(data) }.is_ok() {
        0
    } else {
        -1
    })
}

/// Whether a C filter function is running on this thread: bufferevent calls that would
/// enter the base are refused meanwhile (they would alias the buffers evrs lent it).
pub(crate) fn in_filter() -> bool {
    IN_FILTER.with(|c| c.get() > 0)
}

/// A scratch buffer's host: the `EvBuffer` lent for one filter call.
struct Lent(Rc<Cell<*mut EvBuffer>>);

impl BufferHost for Lent {
    fn with_buffer(&self, f: &mut dyn FnMut(&mut EvBuffer)) -> bool {
        let p = self.0.get();
        if p.is_null() {
            return false;
        }
        // SAFETY: set only while the filter call that lent it runs (and the borrow it came
        // from is not otherwise used meanwhile).
        f(unsafe { &mut *p });
        true
    }
}

/// What a C filter's closures share: the scratch buffers, the context and its destructor
/// (run when evrs drops the filter).
struct Shared {
    /// The filter's C bufferevent (set once it is made).
    me: Cell<*mut CBev>,
    src: (*mut CBuffer, Rc<Cell<*mut EvBuffer>>),
    dst: (*mut CBuffer, Rc<Cell<*mut EvBuffer>>),
    ctx: *mut c_void,
    free_ctx: Option<FreeCtx>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: the scratch buffers are ours; the context is the program's, handed to
        // its destructor once.
        unsafe {
            buffer::free(self.src.0);
            buffer::free(self.dst.0);
            if let Some(f) = self.free_ctx {
                f(self.ctx);
            }
        }
    }
}

fn scratch() -> (*mut CBuffer, Rc<Cell<*mut EvBuffer>>) {
    let cell = Rc::new(Cell::new(ptr::null_mut()));
    (CBuffer::hosted(Box::new(Lent(cell.clone()))), cell)
}

type Closure = Box<dyn FnMut(&mut EvBuffer, &mut EvBuffer, Option<usize>, Flush) -> FilterResult>;

/// A Rust filter closure calling C filter `f` (NULL: copy, at most `limit`); `output`: the
/// output direction's.
fn closure(f: Option<FilterCb>, sh: Rc<Shared>, output: bool) -> Closure {
    Box::new(move |src, dst, limit, mode| {
        let Some(f) = f else {
            let r = match limit {
                Some(n) => src.remove_buffer(dst, n).map(|_| ()),
                None => dst.add_buffer(src).map(|_| ()),
            };
            return if r.is_ok() {
                FilterResult::Ok
            } else {
                FilterResult::Error
            };
        };
        sh.src.1.set(src);
        sh.dst.1.set(dst);
        let lim = limit.map_or(-1, |n| n.min(isize::MAX as usize) as isize);
        let mode = match mode {
            Flush::Normal => 0,
            Flush::Flush => 1,
            Flush::Finished => 2,
        };
        IN_FILTER.with(|c| c.set(c.get() + 1));
        let prev = output.then(|| OUTPUT_FILTER.with(|c| c.replace((sh.me.get(), src))));
        // SAFETY: the program's filter function, with buffers valid for this call.
        let r = unsafe { f(sh.src.0, sh.dst.0, lim, mode, sh.ctx) };
        if let Some(prev) = prev {
            OUTPUT_FILTER.with(|c| c.set(prev));
        }
        IN_FILTER.with(|c| c.set(c.get() - 1));
        sh.src.1.set(ptr::null_mut());
        sh.dst.1.set(ptr::null_mut());
        // libevent treats BEV_ERROR as "stop here": nothing is reported and the data
        // waits, to be filtered again when more arrives — which is evrs's NeedMore (its
        // Error would report WRITING|ERROR / READING|ERROR and stop the direction).
        match r {
            0 => FilterResult::Ok,
            _ => FilterResult::NeedMore,
        }
    })
}

/// `bufferevent_flush`'s first step on a filter, as libevent runs it: each filter of the
/// directions in `iotype` runs once on the real buffers (NULL: a copy); true if one of them
/// returned `BEV_OK`.
///
/// # Safety
/// `p` is a live filter.
pub(crate) unsafe fn flush_run(p: *mut CBev, iotype: What, mode: c_int) -> bool {
    // SAFETY: per the contract; the underlying is live while the filter is.
    unsafe {
        let v = pv(p);
        let (Some((fi, fo, ctx)), under) = (v.filter_fns, v.under) else {
            return false;
        };
        if under.is_null() {
            return false;
        }
        let mut ok = false;
        let steps = [
            (What::READ, fi, (*under).head.input, (*p).head.input),
            (What::WRITE, fo, (*p).head.output, (*under).head.output),
        ];
        for (dir, f, src, dst) in steps {
            if !iotype.contains(dir) {
                continue;
            }
            ok |= match f {
                Some(f) => f(src, dst, -1, mode, ctx) == 0,
                None => true,
            };
        }
        ok
    }
}

/// A filter `p` is going: its reference on the underlying goes, and with
/// `BEV_OPT_CLOSE_ON_FREE` the underlying is freed too (evrs freed its half already).
///
/// # Safety
/// `p` is a filter being destroyed; `under` its live underlying.
pub(crate) unsafe fn release_under(p: *mut CBev, under: *mut CBev) {
    // SAFETY: per the contract.
    unsafe {
        let u = pv(under);
        if u.dead {
            return;
        }
        u.filtered_by = ptr::null_mut();
        let close = pv(p).opts & 0x01 != 0;
        if close {
            super::socket::free_now(under);
        }
        if !pv(under).dead {
            super::decref(under);
        }
    }
}

capi! {
    /// Two linked bufferevents on `base` (NULL: the current base): what one writes the other
    /// reads. 0, or -1.
    fn bufferevent_pair_new(base: *mut CBase, options_: c_int, pair: *mut *mut CBev) -> c_int {
        let base = base::or_current(base);
        if !base::is_live(base) || pair.is_null() {
            return -1;
        }
        let opts = options_ | 0x04;
        // SAFETY: a live base; `pair` holds two writable pointers.
        unsafe {
            let Ok((a, b)) = CBase::with(base, |eb| eb.bufferevent_pair(options(opts))) else {
                return -1;
            };
            let pa = wrap(base, a, Kind::Pair, opts);
            if pa.is_null() {
                CBase::with(base, |eb| eb.bev_free(b)).ok();
                return -1;
            }
            let pb = wrap(base, b, Kind::Pair, opts);
            if pb.is_null() {
                super::api::free(pa);
                return -1;
            }
            pv(pa).partner = pb;
            pv(pb).partner = pa;
            *pair = pa;
            *pair.add(1) = pb;
        }
        0
    }

    /// The other half of a pair (NULL once it is freed, or if not a pair).
    fn bufferevent_pair_get_partner(p: *mut CBev) -> *mut CBev {
        if p.is_null() {
            return ptr::null_mut();
        }
        // SAFETY: a live bufferevent; its partner pointer is cleared when the partner goes.
        unsafe {
            let v = pv(p);
            if v.kind != Kind::Pair || v.partner.is_null() {
                return ptr::null_mut();
            }
            let there = super::with(p, "bufferevent_pair_get_partner", false, |b, h| {
                b.bev_pair_partner(h).ok().flatten().is_some()
            });
            if there { v.partner } else { ptr::null_mut() }
        }
    }

    /// A bufferevent filtering `under` through `input` / `output` (NULL: copy).
    fn bufferevent_filter_new(under: *mut CBev, input: Option<FilterCb>, output: Option<FilterCb>, options_: c_int, free_context: Option<FreeCtx>, ctx: *mut c_void) -> *mut CBev {
        if under.is_null() {
            return ptr::null_mut();
        }
        // SAFETY: a live bufferevent.
        unsafe {
            let u = pv(under);
            if u.dead || !base::is_live(u.base) {
                return ptr::null_mut();
            }
            let cbase = u.base;
            let sh = Rc::new(Shared { me: Cell::new(ptr::null_mut()), src: scratch(), dst: scratch(), ctx, free_ctx: free_context });
            let (fi, fo) = (closure(input, sh.clone(), false), closure(output, sh.clone(), true));
            let uh = u.h;
            let made = CBase::with(cbase, |b| b.bufferevent_filter(uh, Some(fi), Some(fo), options(options_)));
            let h = match made {
                Ok(h) => h,
                Err(e) => {
                    log::warn(&format!("bufferevent_filter_new: {e}"));
                    return ptr::null_mut();
                }
            };
            let p = wrap(cbase, h, Kind::Filter, options_);
            if p.is_null() {
                return p;
            }
            sh.me.set(p);
            pv(p).under = under;
            pv(p).filter_fns = Some((input, output, ctx));
            let u = pv(under);
            u.refcnt += 1;
            u.filtered_by = p;
            super::refresh(under);
            p
        }
    }

    /// A filter's underlying bufferevent (NULL for others).
    fn bufferevent_get_underlying(p: *mut CBev) -> *mut CBev {
        // SAFETY: a live bufferevent.
        if p.is_null() { ptr::null_mut() } else { unsafe { pv(p).under } }
    }
}
