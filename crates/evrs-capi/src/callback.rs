//! `struct event_callback` (event_struct.h) and libevent 2.1's exported internal functions
//! on it (`event_callback_*_`, `event_deferred_cb_*_`): a function and an argument that a
//! base runs from its active queues, with no fd, signal or timeout.
//!
//! The 40 bytes are the program's. While a callback is queued on a base (active, active
//! later, or waiting to run its finalizer) the base holds an evrs event for it, owned by the
//! memory's address ([`EventBase::assign_owned`]), and the memory holds that event's handle
//! and a mark in the two list-link words libevent uses for its queue. The event is released
//! as soon as the callback leaves the queue (it runs, or is cancelled), so an idle callback
//! costs the base nothing and memory the program drops is never remembered. `evcb_flags`
//! tells the truth: `EVLIST_ACTIVE`, `EVLIST_ACTIVE_LATER` while queued, and
//! `EVLIST_FINALIZING` from the finalize call on, until the memory is initialized again.
//! The function, argument and priority are read from the memory, as libevent reads them:
//! the function and argument when the callback runs, the priority when it is queued.
//!
//! The evrs events of callbacks are marked with `What::TIMEOUT` in their interest (never
//! set on the events of a C `struct event`, see `event::what_of`), so listings of a base's
//! events ([`crate::inspect`]) leave them out, as libevent lists only `struct event`s.
//!
//! A `struct event` begins with its `struct event_callback`, and libevent's functions also
//! take `&ev->ev_evcallback`: memory whose flags say `EVLIST_INIT` is taken to be an event
//! assigned by [`crate::event`], and the call goes to the event (activation with its
//! `ev_res`, `event_del`, `event_finalize`), on the event's own base.
//!
//! Differences from libevent: `event_deferred_cb_schedule_` always activates (libevent moves
//! the 33rd and later schedules of one loop iteration to the next iteration);
//! `event_callback_finalize_many_` recognises the running callback only on the loop's
//! thread; cancelling an event (not a callback) "even if finalizing" does not stop its
//! finalizer; a callback scheduled on a second base while queued on a first runs on the
//! second only; freeing a base leaves the flags of callbacks queued on it as they were
//! (they no longer count: scheduling one on another base works). A NULL function or
//! finalizer is not called: a warning instead (libevent calls it).

use crate::base::{self, CBase};
use crate::event::{self, CEvent};
use crate::ffi::capi;
use crate::log;
use evrs::{Event, EventBase, RawArg, What};
use std::cell::Cell;
use std::os::raw::{c_int, c_short, c_uint, c_void};
use std::ptr;

/// `deferred_cb_fn`: the function of a callback, and of its finalizer.
pub type SelfCb = unsafe extern "C" fn(*mut CCallback, *mut c_void);

/// libevent 2.1's `struct event_callback` on x86_64 (40 bytes).
#[repr(C)]
pub struct CCallback {
    /// `evcb_active_next`: here the evrs handle (`Event::into_raw`) and [`MARK`].
    handle: [u32; 4],
    /// `evcb_flags`: `EVLIST_*`.
    pub flags: c_short,
    /// `evcb_pri`.
    pub pri: u8,
    /// `evcb_closure`: [`CLOSURE_CB_SELF`] or [`CLOSURE_CB_FINALIZE`] for a callback.
    pub closure: u8,
    /// `evcb_cb_union` (`evcb_selfcb`, `evcb_cbfinalize`).
    pub cb: Option<SelfCb>,
    /// `evcb_arg`.
    pub arg: *mut c_void,
}

const _: () = assert!(std::mem::size_of::<CCallback>() == 40);
const _: () = assert!(std::mem::offset_of!(CCallback, flags) == 16);
const _: () = assert!(std::mem::offset_of!(CCallback, pri) == 18);
const _: () = assert!(std::mem::offset_of!(CCallback, closure) == 19);
const _: () = assert!(std::mem::offset_of!(CCallback, cb) == 24);
const _: () = assert!(std::mem::offset_of!(CCallback, arg) == 32);

const EVLIST_ACTIVE: c_short = 0x08;
const EVLIST_ACTIVE_LATER: c_short = 0x20;
const EVLIST_FINALIZING: c_short = 0x40;
const QUEUED: c_short = EVLIST_ACTIVE | EVLIST_ACTIVE_LATER;
/// `EV_CLOSURE_CB_SELF`: run `fn(evcb, arg)`.
pub const CLOSURE_CB_SELF: u8 = 3;
/// `EV_CLOSURE_CB_FINALIZE`: the finalizer `fn(evcb, arg)`.
pub const CLOSURE_CB_FINALIZE: u8 = 4;
const MARK: u32 = 0x4556_4342; // "EVCB"

/// The interest of a callback's evrs event, which no C event's has.
const SLOT_EVENTS: What = What::TIMEOUT;

/// Whether an evrs event with interest `events` is a callback's (not a C event's).
pub fn is_callback_slot(events: What) -> bool {
    events.contains(SLOT_EVENTS)
}

thread_local! {
    /// The base and memory of the callback whose function runs on this thread (libevent's
    /// `current_event` for callbacks), as addresses; zeros if none.
    static RUNNING: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
}

/// The handle the memory holds, if any.
///
/// # Safety
/// `cb` points to readable callback memory.
unsafe fn handle(cb: *const CCallback) -> Option<Event> {
    // SAFETY: per the contract.
    let h = unsafe { (*cb).handle };
    (h[3] == MARK).then(|| Event::from_raw([h[0], h[1], h[2]]))
}

/// The evrs event that queues this memory on `b`, if there is one.
///
/// # Safety
/// `cb` points to readable callback memory.
unsafe fn queued_on(b: &EventBase, cb: *const CCallback) -> Option<Event> {
    // SAFETY: per the contract.
    unsafe { handle(cb) }.filter(|&h| b.owner_of(h) == Some(cb as usize))
}

/// The memory no longer names an evrs event, nor says it is queued.
///
/// # Safety
/// `cb` points to writable callback memory.
unsafe fn unqueued(cb: *mut CCallback) {
    // SAFETY: per the contract.
    unsafe {
        (*cb).handle = [0; 4];
        (*cb).flags &= !QUEUED;
    }
}

/// Copies the base's view of the callback's event into `evcb_flags`.
///
/// # Safety
/// `cb` points to writable callback memory.
unsafe fn sync(b: &EventBase, cb: *mut CCallback, h: Event) {
    let f = b.list_flags(h) as c_short;
    // SAFETY: per the contract.
    unsafe { (*cb).flags = ((*cb).flags & !QUEUED) | (f & (QUEUED | EVLIST_FINALIZING)) };
}

/// Releases the evrs event that queues this memory on `b`, if any.
///
/// # Safety
/// `cb` points to writable callback memory.
unsafe fn release(b: &mut EventBase, cb: *mut CCallback) {
    // SAFETY: per the contract.
    unsafe {
        if queued_on(b, cb).is_some() {
            b.release_owned(cb as usize);
        }
        unqueued(cb);
    }
}

/// A new evrs event for the memory on `b`, at the memory's priority (clamped to the
/// base's range), its handle written into the memory.
///
/// # Safety
/// `cb` points to writable callback memory; `cbase` is the live base `b` belongs to.
unsafe fn new_slot(b: &mut EventBase, cbase: *mut CBase, cb: *mut CCallback) -> Option<Event> {
    let h = match b.assign_owned(
        cb as usize,
        -1,
        SLOT_EVENTS,
        trampoline,
        RawArg::from_ptr(cbase.cast()),
    ) {
        Ok(h) => h,
        Err(e) => {
            log::warn(&format!("event_callback: {e}"));
            return None;
        }
    };
    // SAFETY: per the contract.
    let pri = usize::from(unsafe { (*cb).pri });
    let top = b.priorities().saturating_sub(1);
    if pri > top {
        log::warn(&format!(
            "event_callback: priority {pri} out of range 0..{}; using {top}",
            top + 1
        ));
    }
    let _ = b.set_priority(h, pri.min(top));
    let raw = h.into_raw();
    // SAFETY: per the contract.
    unsafe { (*cb).handle = [raw[0], raw[1], raw[2], MARK] };
    Some(h)
}

/// Checks that the memory still names the event `h` the loop is about to run, releases the
/// event and marks the memory unqueued; the function and argument to call, if it does.
///
/// # Safety
/// `b.owner_of(h)` is the address of callback memory the program keeps while it is queued.
unsafe fn leave_queue(
    b: &mut EventBase,
    h: Event,
) -> Option<(*mut CCallback, SelfCb, *mut c_void)> {
    let cb = b.owner_of(h)? as *mut CCallback;
    // SAFETY: per the contract.
    unsafe {
        // Memory initialized again since (it names no event, or another): nothing to run.
        let mine = handle(cb) == Some(h);
        b.release_owned(cb as usize);
        if !mine {
            return None;
        }
        unqueued(cb);
        let Some(f) = (*cb).cb else {
            log::warn(&format!("event_callback: {cb:p} has no function: not run"));
            return None;
        };
        Some((cb, f, (*cb).arg))
    }
}

/// The loop calls this for a queued callback: its function runs with the base recorded
/// and, on a threaded base, the lock released.
fn trampoline(b: &mut EventBase, h: Event, _what: What, arg: RawArg) {
    let cbase = arg.as_ptr().cast::<CBase>();
    // SAFETY: the event is a callback's (only `new_slot` binds this function), whose memory
    // the program keeps while it is queued, as libevent requires.
    let Some((cb, f, a)) = (unsafe { leave_queue(b, h) }) else {
        return;
    };
    // SAFETY: as above; nothing below touches the memory: the function may reuse it.
    let closure = unsafe { (*cb).closure };
    if closure != CLOSURE_CB_SELF && closure != CLOSURE_CB_FINALIZE {
        log::warn(&format!(
            "event_callback: {cb:p} has closure {closure}, not a callback's: not run"
        ));
        return;
    }
    let prev = RUNNING.replace((cbase as usize, cb as usize));
    // SAFETY: the base runs this event, so it is live; the function is the program's.
    unsafe { (*cbase).call_out(b, ptr::null(), || f(cb, a)) };
    RUNNING.set(prev);
}

/// Whether the memory is an assigned `struct event` (`EVLIST_INIT` in its flags).
///
/// # Safety
/// `p` points to readable callback memory.
unsafe fn is_event(p: *const CCallback) -> bool {
    // SAFETY: per the contract.
    let flags = unsafe { (*p).flags };
    flags & event::EVLIST_INIT != 0
}

/// The base to use, or a warning naming `what` and `None`.
fn live_base(base: *mut CBase, what: &str) -> Option<*mut CBase> {
    if base.is_null() {
        log::warn(&format!("{what}: no event_base"));
        None
    } else if !base::is_live(base) {
        log::warn(&format!("{what}: the event_base has been freed"));
        None
    } else {
        Some(base)
    }
}

/// `event_callback_activate_` (`later`: `event_callback_activate_later_nolock_`) of an
/// event's own callback: 1 if it was not queued before.
///
/// # Safety
/// `ev` points to an assigned event.
unsafe fn activate_event(ev: *mut CEvent, later: bool, what: &str) -> c_int {
    // SAFETY: per the contract.
    unsafe {
        event::with_event(ev, what, 0, |b, h| {
            let f = b.list_flags(h) as c_short;
            let mask = What::READ | What::WRITE | What::SIGNAL | What::TIMEOUT | What::CLOSED;
            let res = What::from_bits_truncate((*ev).res as u16) & mask;
            let r = if later {
                if f & QUEUED != 0 {
                    return 0;
                }
                let _ = b.activate_later(h, res);
                1
            } else {
                if f & (EVLIST_FINALIZING | EVLIST_ACTIVE) != 0 {
                    return 0;
                }
                let _ = b.activate(h, res, 1);
                c_int::from(f & EVLIST_ACTIVE_LATER == 0)
            };
            event::sync(b, ev, h);
            r
        })
    }
}

/// `event_callback_activate_` of a callback on `b`: 1 if it was not queued before.
///
/// # Safety
/// `cb` points to writable callback memory; `cbase` is the live base `b` belongs to.
unsafe fn activate_cb(
    b: &mut EventBase,
    cbase: *mut CBase,
    cb: *mut CCallback,
    later: bool,
) -> c_int {
    // SAFETY: per the contract.
    unsafe {
        if !later && (*cb).flags & EVLIST_FINALIZING != 0 {
            return 0;
        }
        let (h, before) = match queued_on(b, cb) {
            Some(h) => (h, b.list_flags(h) as c_short),
            None => match new_slot(b, cbase, cb) {
                Some(h) => (h, 0),
                None => return 0,
            },
        };
        let r = if later {
            if before & QUEUED == 0 {
                let _ = b.activate_later(h, SLOT_EVENTS);
            }
            c_int::from(before & QUEUED == 0)
        } else {
            if before & EVLIST_ACTIVE == 0 {
                let _ = b.activate(h, SLOT_EVENTS, 1);
            }
            c_int::from(before & QUEUED == 0)
        };
        sync(b, cb, h);
        r
    }
}

/// `event_callback_activate_` and its variants, on memory that holds a callback or an event.
///
/// # Safety
/// `p` is null or points to writable callback memory (or an event's).
unsafe fn activate(base: *mut CBase, p: *mut CCallback, later: bool, what: &str) -> c_int {
    if p.is_null() {
        log::warn(&format!("{what}: NULL callback"));
        return 0;
    }
    // SAFETY: per the contract; an event's memory is a whole `struct event`.
    unsafe {
        if is_event(p) {
            return activate_event(p.cast(), later, what);
        }
        let Some(base) = live_base(base, what) else {
            return 0;
        };
        CBase::with(base, |b| activate_cb(b, base, p, later))
    }
}

/// `event_callback_cancel_nolock_`.
///
/// # Safety
/// `p` is null or points to writable callback memory (or an event's).
unsafe fn cancel(
    base: *mut CBase,
    p: *mut CCallback,
    even_if_finalizing: bool,
    what: &str,
) -> c_int {
    if p.is_null() {
        log::warn(&format!("{what}: NULL callback"));
        return -1;
    }
    // SAFETY: per the contract; an event's memory is a whole `struct event`.
    unsafe {
        if (*p).flags & EVLIST_FINALIZING != 0 && !even_if_finalizing {
            return 0;
        }
        if is_event(p) {
            return event::event_del(p.cast());
        }
        let Some(base) = live_base(base, what) else {
            return -1;
        };
        CBase::with(base, |b| release(b, p));
    }
    0
}

/// `event_callback_finalize_nolock_`: cancels the callback and queues `f(evcb, arg)`
/// instead, which runs once (at the base's free, if the loop does not run it first).
///
/// # Safety
/// `p` is null or points to writable callback memory (or an event's).
unsafe fn finalize(base: *mut CBase, p: *mut CCallback, f: Option<SelfCb>, what: &str) -> c_int {
    if p.is_null() || f.is_none() {
        log::warn(&format!("{what}: NULL callback or finalizer"));
        return -1;
    }
    // SAFETY: per the contract; an event's memory is a whole `struct event`.
    unsafe {
        if is_event(p) {
            // SAFETY: the same C signature with the event's address for the callback's
            // (they are one address), as libevent calls it.
            let f = f.map(|f| std::mem::transmute::<SelfCb, crate::debug::FinalizeCb>(f));
            return crate::debug::event_finalize(0, p.cast(), f);
        }
        let Some(base) = live_base(base, what) else {
            return -1;
        };
        CBase::with(base, |b| {
            let finalizing = (*p).flags & EVLIST_FINALIZING != 0;
            if !finalizing {
                release(b, p);
            }
            (*p).closure = CLOSURE_CB_FINALIZE;
            (*p).cb = f;
            (*p).flags |= EVLIST_FINALIZING;
            if finalizing {
                // A finalizer already queued reads the new function when it runs; one that
                // ran is not run again (libevent's activation refuses a finalizing one).
                return 0;
            }
            let Some(h) = new_slot(b, base, p) else {
                return -1;
            };
            let cbase = RawArg::from_ptr(base.cast());
            let r = b.free_finalize(h, move |b, h| run_finalizer(b, h, cbase));
            if let Err(e) = r {
                log::warn(&format!("{what}: {e}"));
                release(b, p);
                return -1;
            }
            sync(b, p, h);
            0
        })
    }
}

/// A callback's finalizer, from the loop or from the base's free.
fn run_finalizer(b: &mut EventBase, h: Event, cbase: RawArg) {
    let cbase = cbase.as_ptr().cast::<CBase>();
    // SAFETY: the event is a callback's (made by `finalize`), whose memory the program
    // keeps until its finalizer ran, as libevent requires.
    let Some((cb, f, a)) = (unsafe { leave_queue(b, h) }) else {
        return;
    };
    // SAFETY: the base's memory is never released. A base being freed holds no lock and
    // is not running: the base is only recorded for the calls the finalizer makes.
    unsafe {
        if CBase::is_dead(cbase) {
            let prev = (*cbase).enter(b);
            f(cb, a);
            (*cbase).leave(prev);
        } else {
            (*cbase).call_out(b, ptr::null(), || f(cb, a));
        }
    }
}

/// Whether `p` is what the base runs right now (libevent's `current_event`): a callback's
/// function on this thread, or an event's callback.
///
/// # Safety
/// `base` is live.
unsafe fn is_running(base: *mut CBase, p: *mut CCallback) -> bool {
    if RUNNING.get() == (base as usize, p as usize) {
        return true;
    }
    // SAFETY: per the contract.
    unsafe {
        CBase::with(base, |b| {
            b.running_event().is_some_and(|h| {
                b.owner_of(h) == Some(p as usize) && b.events(h).is_ok_and(|w| !is_callback_slot(w))
            })
        })
    }
}

/// Holds a threaded base's lock across several calls (each of which takes it again).
struct Locked(*mut CBase);

impl Locked {
    /// # Safety
    /// `base` is live.
    unsafe fn new(base: *mut CBase) -> Locked {
        // SAFETY: per the contract.
        if let Some(l) = unsafe { (*base).lock() } {
            l.lock();
        }
        Locked(base)
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        // SAFETY: live when taken; a base is not freed by the calls made under its lock.
        if let Some(l) = unsafe { (*self.0).lock() } {
            l.unlock();
        }
    }
}

capi! {
    /// Initializes callback memory: `fn(evcb, arg)` at priority `pri`, not queued.
    fn event_deferred_cb_init_(cb: *mut CCallback, pri: u8, f: Option<SelfCb>, arg: *mut c_void) {
        if cb.is_null() {
            log::warn("event_deferred_cb_init_: NULL callback");
            return;
        }
        // SAFETY: writable callback memory per the C contract.
        unsafe {
            ptr::write(cb, CCallback { handle: [0; 4], flags: 0, pri, closure: CLOSURE_CB_SELF, cb: f, arg });
        }
    }

    /// Changes the priority of a callback that is not queued (read when it is next queued).
    fn event_deferred_cb_set_priority_(cb: *mut CCallback, pri: u8) {
        if cb.is_null() {
            log::warn("event_deferred_cb_set_priority_: NULL callback");
            return;
        }
        // SAFETY: writable callback memory per the C contract.
        unsafe { (*cb).pri = pri };
    }

    /// Queues the callback on `base` (NULL: the current base) unless it is queued: 1 if it
    /// was not.
    fn event_deferred_cb_schedule_(base: *mut CBase, cb: *mut CCallback) -> c_int {
        // SAFETY: callback memory per the C contract.
        unsafe { activate(base::or_current(base), cb, false, "event_deferred_cb_schedule_") }
    }

    /// Takes the callback off `base`'s queues (NULL: the current base).
    fn event_deferred_cb_cancel_(base: *mut CBase, cb: *mut CCallback) {
        // SAFETY: callback memory per the C contract.
        unsafe { cancel(base::or_current(base), cb, false, "event_deferred_cb_cancel_") };
    }

    /// Zeroes callback memory, its priority the base's least urgent.
    fn event_callback_init_(base: *mut CBase, cb: *mut CCallback) {
        if cb.is_null() {
            log::warn("event_callback_init_: NULL callback");
            return;
        }
        let base = live_base(base, "event_callback_init_");
        // SAFETY: writable callback memory per the C contract; a live base or none.
        unsafe {
            let pri = match base {
                Some(base) => CBase::with(base, |b| {
                    // Memory initialized while queued here leaves the queue first.
                    if !is_event(cb) {
                        release(b, cb);
                    }
                    b.priorities().saturating_sub(1)
                }),
                None => 0,
            };
            ptr::write(cb, CCallback { handle: [0; 4], flags: 0, pri: pri as u8, closure: 0, cb: None, arg: ptr::null_mut() });
        }
    }

    /// Makes the callback active on `base`: 1 if it was not queued, 0 if it was (an
    /// active-later one becomes active) or is being finalized.
    fn event_callback_activate_(base: *mut CBase, cb: *mut CCallback) -> c_int {
        // SAFETY: callback memory per the C contract.
        unsafe { activate(base, cb, false, "event_callback_activate_") }
    }

    /// As `event_callback_activate_` (the base's lock is recursive).
    fn event_callback_activate_nolock_(base: *mut CBase, cb: *mut CCallback) -> c_int {
        // SAFETY: callback memory per the C contract.
        unsafe { activate(base, cb, false, "event_callback_activate_nolock_") }
    }

    /// Queues the callback to run in the loop's next iteration, after the poll: 1, or 0 if
    /// it is queued already.
    fn event_callback_activate_later_nolock_(base: *mut CBase, cb: *mut CCallback) -> c_int {
        // SAFETY: callback memory per the C contract.
        unsafe { activate(base, cb, true, "event_callback_activate_later_nolock_") }
    }

    /// Takes the callback off the queues, unless it is being finalized: 0 (an event's:
    /// `event_del`'s result).
    fn event_callback_cancel_(base: *mut CBase, cb: *mut CCallback) -> c_int {
        // SAFETY: callback memory per the C contract.
        unsafe { cancel(base, cb, false, "event_callback_cancel_") }
    }

    /// As `event_callback_cancel_`; with `even_if_finalizing`, a queued finalizer of a
    /// callback is dropped too.
    fn event_callback_cancel_nolock_(base: *mut CBase, cb: *mut CCallback, even_if_finalizing: c_int) -> c_int {
        // SAFETY: callback memory per the C contract.
        unsafe { cancel(base, cb, even_if_finalizing != 0, "event_callback_cancel_nolock_") }
    }

    /// Cancels the callback and queues `f(evcb, arg)` in its place; from then on it cannot
    /// be activated until initialized again. `flags` is unused, as in libevent.
    fn event_callback_finalize_(base: *mut CBase, flags: c_uint, cb: *mut CCallback, f: Option<SelfCb>) {
        let _ = flags;
        // SAFETY: callback memory per the C contract.
        unsafe { finalize(base, cb, f, "event_callback_finalize_") };
    }

    /// As `event_callback_finalize_` (the base's lock is recursive).
    fn event_callback_finalize_nolock_(base: *mut CBase, flags: c_uint, cb: *mut CCallback, f: Option<SelfCb>) {
        let _ = flags;
        // SAFETY: callback memory per the C contract.
        unsafe { finalize(base, cb, f, "event_callback_finalize_nolock_") };
    }

    /// Finalizes `n` callbacks (NULL base: the current one) with one call of `f`: the
    /// running one is finalized, the others cancelled; if none runs, the first is finalized.
    fn event_callback_finalize_many_(base: *mut CBase, n: c_int, cbs: *mut *mut CCallback, f: Option<SelfCb>) -> c_int {
        let what = "event_callback_finalize_many_";
        let Some(base) = live_base(base::or_current(base), what) else { return -1 };
        if n <= 0 || cbs.is_null() {
            log::warn(&format!("{what}: no callbacks"));
            return -1;
        }
        // SAFETY: `n` callback pointers per the C contract; a live base, locked meanwhile.
        unsafe {
            let _held = Locked::new(base);
            let all = std::slice::from_raw_parts(cbs, n as usize);
            let mut finalized = 0;
            for &p in all {
                if !p.is_null() && is_running(base, p) {
                    finalize(base, p, f, what);
                    finalized += 1;
                } else {
                    cancel(base, p, false, what);
                }
            }
            if finalized == 0 {
                finalize(base, all[0], f, what);
            }
        }
        0
    }
}
