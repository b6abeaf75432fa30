//! `struct bufferevent` (bufferevent.h, bufferevent_compat.h, bufferevent_struct.h) over
//! evrs's bufferevents.
//!
//! # What a C `struct bufferevent *` points to
//!
//! A [`CBev`]: libevent 2.1's public 392-byte layout ([`CBevHead`], which programs read:
//! `bev->input`, `bev->output`, `ev_read`/`ev_write`, the watermarks, callbacks, timeouts
//! and `enabled`) followed by a pointer to this layer's private state (`Priv`: the evrs
//! [`BufferEvent`] handle, its base, reference count, links to a pair partner or a filter's
//! underlying, rate-limit settings). Programs never allocate a `struct bufferevent`
//! themselves, so the head can be the start of a larger allocation; it comes from
//! [`mm::calloc`], the program's allocator hooks.
//!
//! Every call here writes what it changed into the head, and `refresh` copies the
//! bufferevent's view (enabled directions, the fd, whether the read and write events are
//! pending — `EVLIST_INSERTED` in `ev_flags`) after each call and before each callback.
//! `ev_read` and `ev_write` are mirrors, not events of the base: `event_*` functions
//! called on them find no evrs handle and do nothing.
//!
//! # Buffers
//!
//! `bev->input` and `bev->output` are hosted [`CBuffer`]s (see [`crate::buffer`]): each C
//! evbuffer call borrows the bufferevent's own buffer from the base for its length, so
//! every `evbuffer_*` function works on them. As in libevent, a socket bufferevent's input
//! is frozen at its end and its output at its start while the program uses them (only the
//! bufferevent itself reads into the input and writes out of the output). Inside one of a
//! socket bufferevent's own callbacks the buffers are lent straight from its state
//! (`EventBase::bev_buffers_in_callback`) and it catches up once, when the callback
//! returns, as after a Rust callback; elsewhere (and for pairs and filters, whose catching
//! up moves data at once) a guard lets it catch up after each call. A call on both of one
//! bufferevent's buffers (`evbuffer_add_buffer(output, input)`) borrows them together.
//!
//! # Callbacks and freeing
//!
//! One Rust handler (`CHandler`) is installed on the evrs bufferevent; it reads the C
//! callback pointers from the head at call time, so `bufferevent_setcb` takes effect at
//! once. `bufferevent_free` clears the callbacks and drops a reference; at zero the evrs
//! bufferevent is freed (its teardown waits for a running callback, as evrs does) and the C
//! memory is released once no callback of it is on the stack.

mod api;
mod filter;
mod rate;
mod socket;

pub use rate::{CGroup, CTokenCfg};

use crate::base::{self, CBase};
use crate::buffer::{self, BufferHost, CBuffer};
use crate::event::{CEvent, EVLIST_INIT};
use crate::mm;
use evrs::buffer::{End, EvBuffer};
use evrs::bufferevent::{BevCtx, BevEvents, BevHandler, BevOptions, BufferEvent};
use evrs::{Event, EventBase, What};
use std::cell::Cell;
use std::os::raw::{c_int, c_short, c_void};
use std::ptr;
use std::rc::Rc;

/// `bufferevent_data_cb`.
pub type DataCb = unsafe extern "C" fn(*mut CBev, *mut c_void);
/// `bufferevent_event_cb`.
pub type EventCb = unsafe extern "C" fn(*mut CBev, c_short, *mut c_void);

/// `EVLIST_INSERTED`.
const EVLIST_INSERTED: c_short = 0x02;
/// `EV_FINALIZE`: libevent assigns a bufferevent's events with it.
const EV_FINALIZE: c_short = 0x40;
/// libevent's default largest single read and write.
const DEFAULT_MAX_SINGLE: isize = 16384;

/// libevent 2.1's `struct bufferevent` on x86_64 (392 bytes). Field names follow the C
/// ones.
#[repr(C)]
pub struct CBevHead {
    /// `ev_base`.
    pub ev_base: *mut CBase,
    /// `be_ops` (null: the operations are this layer's).
    pub be_ops: *const c_void,
    /// `ev_read`: a mirror of the read event.
    pub ev_read: CEvent,
    /// `ev_write`: a mirror of the write event.
    pub ev_write: CEvent,
    /// `input`.
    pub input: *mut CBuffer,
    /// `output`.
    pub output: *mut CBuffer,
    /// `wm_read` (low, high).
    pub wm_read: [usize; 2],
    /// `wm_write` (low, high).
    pub wm_write: [usize; 2],
    /// `readcb`.
    pub readcb: Option<DataCb>,
    /// `writecb`.
    pub writecb: Option<DataCb>,
    /// `errorcb` (the event callback).
    pub errorcb: Option<EventCb>,
    /// `cbarg`.
    pub cbarg: *mut c_void,
    /// `timeout_read`.
    pub timeout_read: libc::timeval,
    /// `timeout_write`.
    pub timeout_write: libc::timeval,
    /// `enabled`: `EV_READ` / `EV_WRITE`.
    pub enabled: c_short,
}

const _: () = assert!(std::mem::size_of::<CBevHead>() == 392);
const _: () = assert!(std::mem::offset_of!(CBevHead, ev_read) == 16);
const _: () = assert!(std::mem::offset_of!(CBevHead, ev_write) == 144);
const _: () = assert!(std::mem::offset_of!(CBevHead, input) == 272);
const _: () = assert!(std::mem::offset_of!(CBevHead, wm_read) == 288);
const _: () = assert!(std::mem::offset_of!(CBevHead, readcb) == 320);
const _: () = assert!(std::mem::offset_of!(CBevHead, timeout_read) == 352);
const _: () = assert!(std::mem::offset_of!(CBevHead, enabled) == 384);

/// What a C `struct bufferevent *` points to: the public head, then the private part.
#[repr(C)]
pub struct CBev {
    /// What programs read.
    pub head: CBevHead,
    p: *mut Priv,
}

/// Which kind of bufferevent.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Socket,
    Pair,
    Filter,
}

/// The private part of a [`CBev`].
pub(crate) struct Priv {
    pub(crate) base: *mut CBase,
    pub(crate) h: BufferEvent,
    pub(crate) kind: Kind,
    pub(crate) opts: c_int,
    /// References: the program's one plus `bufferevent_incref`s plus a filter's.
    refcnt: i32,
    /// C callbacks of this bufferevent on the stack now.
    depth: u32,
    /// The evrs bufferevent was freed: only the memory is left to release.
    dead: bool,
    /// Shared with the buffer hosts: null once the bufferevent is gone.
    alive: Rc<Cell<*mut CBev>>,
    /// A pair half's partner (null once it is freed).
    pub(crate) partner: *mut CBev,
    /// A filter's underlying bufferevent.
    pub(crate) under: *mut CBev,
    /// A filter's C functions and context (for `bufferevent_flush`).
    pub(crate) filter_fns: Option<(
        Option<filter::FilterCb>,
        Option<filter::FilterCb>,
        *mut c_void,
    )>,
    /// A connect is in progress: its failure is reported as `BEV_EVENT_ERROR` alone.
    pub(crate) connecting: bool,
    /// The filter this bufferevent is the underlying of (its callbacks are the filter's).
    pub(crate) filtered_by: *mut CBev,
    /// `bufferevent_socket_get_dns_error`.
    pub(crate) dns_error: c_int,
    pub(crate) max_read: isize,
    pub(crate) max_write: isize,
    pub(crate) priority: c_int,
    /// The rate-limit configuration set (referenced, as libevent does).
    pub(crate) rate_cfg: *const CTokenCfg,
    pub(crate) group: *mut CGroup,
    /// `bufferevent_trigger*` with deferral: the event and what it will run.
    deferred: Option<Event>,
    pending_read: bool,
    pending_write: bool,
    pending_events: c_short,
}

/// The private part of a live C bufferevent.
///
/// # Safety
/// `p` is a live bufferevent of this library.
pub(crate) unsafe fn pv<'a>(p: *mut CBev) -> &'a mut Priv {
    // SAFETY: per the contract; `p.p` is the box made with it.
    unsafe { &mut *(*p).p }
}

/// A hosted buffer's way to the bufferevent's input or output.
struct BevHost {
    bev: Rc<Cell<*mut CBev>>,
    input: bool,
}

impl BevHost {
    /// Runs `f` on the bufferevent's (input, output) — a socket bufferevent's input frozen
    /// at its end and output at its start, as libevent has them while the program uses them
    /// (only the bufferevent itself reads into the input and writes out of the output).
    /// Inside one of its callbacks a socket bufferevent lends them straight from its state
    /// (it catches up when the callback returns, as after a Rust callback: no lookup per
    /// guard access, no catch-up per call); otherwise they are borrowed under one guard,
    /// after which it catches up at once. False if the bufferevent cannot be reached.
    fn lend(&self, f: &mut dyn FnMut(&mut EvBuffer, &mut EvBuffer)) -> bool {
        let p = self.bev.get();
        if p.is_null() || filter::in_filter() {
            return false;
        }
        // SAFETY: non-null while the bufferevent is alive (destroy clears it).
        let (cbase, h, kind) = unsafe {
            let v = pv(p);
            (v.base, v.h, v.kind)
        };
        if !base::is_live(cbase) {
            return false;
        }
        let socket = kind == Kind::Socket;
        let mut run = |i: &mut EvBuffer, o: &mut EvBuffer| {
            let fi = socket && !i.is_frozen(End::End);
            let fo = socket && !o.is_frozen(End::Start);
            if fi {
                i.freeze(End::End);
            }
            if fo {
                o.freeze(End::Start);
            }
            f(i, o);
            if fi {
                i.unfreeze(End::End);
            }
            if fo {
                o.unfreeze(End::Start);
            }
        };
        // SAFETY: a live base; nothing of it is borrowed while an evbuffer call runs.
        unsafe {
            CBase::with(cbase, |b| {
                if socket {
                    if let Some((i, o)) = b.bev_buffers_in_callback(h) {
                        run(i, o);
                        return true;
                    }
                }
                let Ok(mut g) = b.bev_output(h) else {
                    return false;
                };
                let Some((i, o)) = g.both() else {
                    return false;
                };
                run(i, o);
                true
            })
        }
    }
}

impl BufferHost for BevHost {
    fn with_buffer(&self, f: &mut dyn FnMut(&mut EvBuffer)) -> bool {
        let input = self.input;
        self.lend(&mut |i, o| f(if input { i } else { o }))
    }

    fn sibling_key(&self) -> Option<(usize, bool)> {
        Some((Rc::as_ptr(&self.bev) as usize, self.input))
    }

    fn lock(&self) -> Option<&crate::locking::BaseLock> {
        let p = self.bev.get();
        if p.is_null() {
            return None;
        }
        // SAFETY: a live bufferevent (the host's pointer is nulled when it goes) names a base
        // of this library, whose lock lives as long as the base.
        unsafe {
            let base = pv(p).base;
            if base::is_live(base) {
                (*base).lock()
            } else {
                None
            }
        }
    }

    fn with_pair(
        &self,
        other: &dyn BufferHost,
        f: &mut dyn FnMut(&mut EvBuffer, &mut EvBuffer),
    ) -> Option<bool> {
        let (key, input) = other.sibling_key()?;
        if key != Rc::as_ptr(&self.bev) as usize || input == self.input {
            return None;
        }
        let mine = self.input;
        Some(self.lend(&mut |i, o| if mine { f(i, o) } else { f(o, i) }))
    }
}

/// The one evrs handler of a C bufferevent: calls the C callbacks in the head.
pub(crate) struct CHandler(pub(crate) *mut CBev);

impl BevHandler for CHandler {
    fn read(&mut self, bev: &mut BevCtx<'_>) {
        // SAFETY: the handler lives no longer than its C bufferevent's evrs half.
        unsafe { call_c(self.0, bev.base(), Which::Read) }
    }
    fn write(&mut self, bev: &mut BevCtx<'_>) {
        // SAFETY: as in `read`.
        unsafe { call_c(self.0, bev.base(), Which::Write) }
    }
    fn event(&mut self, bev: &mut BevCtx<'_>, what: BevEvents) {
        // SAFETY: as in `read`.
        unsafe { call_c(self.0, bev.base(), Which::Event(what.bits() as c_short)) }
    }
    fn wants_write(&self) -> bool {
        // SAFETY: as in `read`; the callback is read from the struct at each ask (a program
        // may set one at any time). A buffer with C callbacks needs the catch-up the call
        // makes (its change callbacks run then) even without a write callback.
        unsafe {
            let p = self.0;
            let has = |b: *mut crate::buffer::CBuffer| !b.is_null() && (*b).has_c_callbacks();
            !pv(p).dead
                && ((*p).head.writecb.is_some() || has((*p).head.output) || has((*p).head.input))
        }
    }
}

/// Which C callback to run.
#[derive(Clone, Copy)]
pub(crate) enum Which {
    Read,
    Write,
    Event(c_short),
}

/// Runs one C callback of `p` with the loop's base `b` lent to C.
///
/// # Safety
/// `p` is a C bufferevent whose memory is not yet released; `b` is its base.
pub(crate) unsafe fn call_c(p: *mut CBev, b: &mut EventBase, which: Which) {
    // SAFETY: per the contract.
    unsafe {
        let v = pv(p);
        if v.dead {
            return;
        }
        if let Which::Event(what) = which {
            if what & BevEvents::ERROR.bits() as c_short != 0 {
                if let Ok(Some(e)) = b.bev_socket_error(v.h) {
                    *libc::__errno_location() = e;
                }
            }
        }
        let mut which = which;
        if let Which::Event(what) = which {
            let conn = (BevEvents::CONNECTED | BevEvents::ERROR).bits() as c_short;
            if v.connecting && what & conn != 0 {
                // libevent reports a failed connect as ERROR alone, not WRITING|ERROR.
                v.connecting = false;
                if what & BevEvents::ERROR.bits() as c_short != 0 {
                    which = Which::Event(what & !(BevEvents::WRITING.bits() as c_short));
                }
            }
        }
        let cbase = v.base;
        let prev = (*cbase).enter(b);
        v.depth += 1;
        refresh(p);
        // (Read after the refresh: an evbuffer callback it ran may have set them.)
        let (arg, head) = ((*p).head.cbarg, &(*p).head);
        let ran = match which {
            Which::Read => head.readcb.map(|f| f(p, arg)).is_some(),
            Which::Write => head.writecb.map(|f| f(p, arg)).is_some(),
            Which::Event(what) => head.errorcb.map(|f| f(p, what, arg)).is_some(),
        };
        let v = pv(p);
        v.depth -= 1;
        (*cbase).leave(prev);
        if v.depth == 0 && v.dead {
            release(p);
        } else if ran && !v.dead {
            // (With no C callback nothing ran since the refresh above.)
            refresh(p);
        }
    }
}

/// Makes the C half of the evrs bufferevent `h` (already made in `cbase`'s base).
///
/// # Safety
/// `cbase` is live; `h` a live bufferevent of it with no handler yet.
pub(crate) unsafe fn wrap(cbase: *mut CBase, h: BufferEvent, kind: Kind, opts: c_int) -> *mut CBev {
    let p = mm::calloc(1, std::mem::size_of::<CBev>()).cast::<CBev>();
    if p.is_null() {
        // SAFETY: a live base.
        unsafe { CBase::with(cbase, |b| b.bev_free(h)).ok() };
        return ptr::null_mut();
    }
    let alive = Rc::new(Cell::new(p));
    // SAFETY: a live base.
    let prio = unsafe { CBase::with(cbase, |b| b.priorities() / 2) } as c_int;
    let v = Box::new(Priv {
        base: cbase,
        h,
        kind,
        opts,
        refcnt: 1,
        depth: 0,
        dead: false,
        alive: alive.clone(),
        partner: ptr::null_mut(),
        under: ptr::null_mut(),
        filter_fns: None,
        connecting: false,
        filtered_by: ptr::null_mut(),
        dns_error: 0,
        max_read: DEFAULT_MAX_SINGLE,
        max_write: DEFAULT_MAX_SINGLE,
        priority: prio,
        rate_cfg: ptr::null(),
        group: ptr::null_mut(),
        deferred: None,
        pending_read: false,
        pending_write: false,
        pending_events: 0,
    });
    let input = CBuffer::hosted(Box::new(BevHost {
        bev: alive.clone(),
        input: true,
    }));
    let output = CBuffer::hosted(Box::new(BevHost {
        bev: alive,
        input: false,
    }));
    // SAFETY: `p` is fresh zeroed memory of the right size (all-zero is a valid head: null
    // pointers, no callbacks); it is ours until returned.
    unsafe {
        (*p).p = Box::into_raw(v);
        let hd = &mut (*p).head;
        hd.ev_base = cbase;
        hd.input = input;
        hd.output = output;
        let (re, we) = if kind == Kind::Socket {
            (
                What::READ | What::PERSIST | What::FINALIZE,
                What::WRITE | What::PERSIST | What::FINALIZE,
            )
        } else {
            (What::FINALIZE, What::FINALIZE)
        };
        for (ev, w) in [(&mut hd.ev_read, re), (&mut hd.ev_write, we)] {
            ev.flags = EVLIST_INIT;
            ev.fd = -1;
            ev.base = cbase;
            ev.events = w.bits() as c_short | if kind == Kind::Socket { 0 } else { EV_FINALIZE };
            ev.pri = prio as u8;
        }
        CBase::with(cbase, |b| b.bev_set_handler(h, CHandler(p))).ok();
        refresh(p);
    }
    p
}

/// Copies the bufferevent's state into the head, then runs the evbuffer callbacks for the
/// changes the bufferevent made to its buffers.
///
/// # Safety
/// `p` is a live C bufferevent.
pub(crate) unsafe fn refresh(p: *mut CBev) {
    // SAFETY: per the contract.
    unsafe {
        let v = pv(p);
        if v.dead || !base::is_live(v.base) {
            return;
        }
        let (h, kind) = (v.h, v.kind);
        let st = CBase::with(v.base, |b| b.bev_status(h));
        let hd = &mut (*p).head;
        if let Some((en, (r, w), fd)) = st {
            let fd = if kind == Kind::Socket { fd } else { -1 };
            hd.enabled = (en & (What::READ | What::WRITE)).bits() as c_short;
            hd.ev_read.flags = EVLIST_INIT | if r { EVLIST_INSERTED } else { 0 };
            hd.ev_write.flags = EVLIST_INIT | if w { EVLIST_INSERTED } else { 0 };
            hd.ev_read.fd = fd;
            hd.ev_write.fd = fd;
        }
        let (i, o) = (hd.input, hd.output);
        buffer::run_callbacks(i);
        if pv(p).dead {
            return;
        }
        buffer::run_callbacks(o);
    }
}

/// Runs `f` on the base and evrs handle of C bufferevent `p`; `err` for NULL, or a
/// bufferevent whose base was freed.
///
/// # Safety
/// `p` is null or a live C bufferevent.
pub(crate) unsafe fn with<R>(
    p: *mut CBev,
    name: &str,
    err: R,
    f: impl FnOnce(&mut EventBase, BufferEvent) -> R,
) -> R {
    if p.is_null() {
        crate::log::warn(&format!("{name}: NULL bufferevent"));
        return err;
    }
    // SAFETY: per the contract.
    let v = unsafe { pv(p) };
    if v.dead || !base::is_live(v.base) {
        crate::log::warn(&format!("{name}: the bufferevent or its base was freed"));
        return err;
    }
    if filter::in_filter() {
        crate::log::warn(&format!(
            "{name}: called from a filter function (not supported by evrs)"
        ));
        return err;
    }
    let h = v.h;
    // SAFETY: a live base.
    unsafe { CBase::with(v.base, |b| f(b, h)) }
}

/// Drops one reference; at zero the bufferevent goes (see the module docs). Returns
/// whether it went.
///
/// # Safety
/// `p` is a live C bufferevent.
pub(crate) unsafe fn decref(p: *mut CBev) -> bool {
    // SAFETY: per the contract.
    let v = unsafe { pv(p) };
    v.refcnt -= 1;
    if v.refcnt > 0 || v.dead {
        return false;
    }
    // SAFETY: live until released below.
    unsafe { destroy(p) };
    true
}

/// Frees the evrs bufferevent and everything of the C one but its memory, which is
/// released now or when its last running callback returns.
///
/// # Safety
/// `p` is a live C bufferevent whose last reference is gone.
unsafe fn destroy(p: *mut CBev) {
    // SAFETY: per the contract; every pointer in the private part is live or null.
    unsafe {
        let v = pv(p);
        v.dead = true;
        v.alive.set(ptr::null_mut());
        let (cbase, h, deferred) = (v.base, v.h, v.deferred.take());
        if !v.group.is_null() {
            rate::group_forget(v.group, p);
        }
        if base::is_live(cbase) {
            CBase::with(cbase, |b| {
                if let Some(ev) = deferred {
                    let _ = b.free(ev);
                }
                let _ = b.bev_free(h);
            });
        }
        let partner = v.partner;
        if !partner.is_null() && !pv(partner).dead {
            pv(partner).partner = ptr::null_mut();
        }
        let under = v.under;
        if !under.is_null() {
            filter::release_under(p, under);
        }
        let filt = v.filtered_by;
        if !filt.is_null() && !pv(filt).dead {
            pv(filt).under = ptr::null_mut();
        }
        let hd = &mut (*p).head;
        hd.readcb = None;
        hd.writecb = None;
        hd.errorcb = None;
        buffer::free(hd.input);
        buffer::free(hd.output);
        if pv(p).depth == 0 {
            release(p);
        }
    }
}

/// Releases the memory of a destroyed C bufferevent.
///
/// # Safety
/// `p` was destroyed and nothing uses it any more.
unsafe fn release(p: *mut CBev) {
    // SAFETY: per the contract: the private box and the calloc'd memory are ours.
    unsafe {
        drop(Box::from_raw((*p).p));
        mm::free(p.cast());
    }
}

/// libevent's `BEV_OPT_*` as evrs options (the same values).
fn options(opts: c_int) -> BevOptions {
    BevOptions::from_bits_truncate(opts as u8)
}

/// Runs C callback `which` now, or from the loop if `defer` (or the bufferevent defers its
/// callbacks), as libevent's `bufferevent_run_*cb_` do.
///
/// # Safety
/// `p` is a live C bufferevent.
pub(crate) unsafe fn run_cb(p: *mut CBev, which: Which, defer: bool) {
    // SAFETY: per the contract.
    unsafe {
        let v = pv(p);
        let defer = defer || v.opts & BevOptions::DEFER_CALLBACKS.bits() as c_int != 0;
        if !defer {
            with(p, "bufferevent_trigger", (), |b, _| call_c(p, b, which));
            return;
        }
        match which {
            Which::Read => v.pending_read = true,
            Which::Write => v.pending_write = true,
            Which::Event(w) => v.pending_events |= w,
        }
        let ev = match v.deferred {
            Some(ev) => Some(ev),
            None => {
                let me = evrs::RawArg::from_ptr(p.cast());
                let made = with(p, "bufferevent_trigger", None, |b, _| {
                    b.new_timer(move |b, _, _| run_deferred(me.as_ptr().cast(), b))
                        .ok()
                });
                pv(p).deferred = made;
                made
            }
        };
        if let Some(ev) = ev {
            with(p, "bufferevent_trigger", (), |b, _| {
                let _ = b.activate(ev, What::TIMEOUT, 1);
            });
        }
    }
}

/// The deferred callbacks of [`run_cb`], in libevent's order (CONNECTED, read, write,
/// the other events). Each step reads what is pending at that moment, as libevent does, so
/// events a read callback triggers are delivered whole in the same pass (a triggered `~0`
/// stays `~0`: the CONNECTED split happens only before the read callback).
///
/// # Safety
/// `p` is a live C bufferevent (its deferred event is freed with it).
unsafe fn run_deferred(p: *mut CBev, b: &mut EventBase) {
    // SAFETY: per the contract; each step re-checks that the bufferevent is still there.
    unsafe {
        pv(p).depth += 1;
        let conn = BevEvents::CONNECTED.bits() as c_short;
        if pv(p).pending_events & conn != 0 && !pv(p).dead {
            pv(p).pending_events &= !conn;
            call_c(p, b, Which::Event(conn));
        }
        if std::mem::take(&mut pv(p).pending_read) && !pv(p).dead {
            call_c(p, b, Which::Read);
        }
        if std::mem::take(&mut pv(p).pending_write) && !pv(p).dead {
            call_c(p, b, Which::Write);
        }
        let ev = std::mem::take(&mut pv(p).pending_events);
        if ev != 0 && !pv(p).dead {
            call_c(p, b, Which::Event(ev));
        }
        let v = pv(p);
        v.depth -= 1;
        if v.depth == 0 && v.dead {
            release(p);
        }
    }
}
