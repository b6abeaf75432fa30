//! `struct event` (event.h, event_struct.h): events in memory the C program owns.
//!
//! A C event is 128 bytes laid out as libevent 2.1's, inside the program's own structs or
//! from `event_new`. evrs keeps the event itself in the base; the C memory holds the
//! fields programs read (`ev_fd`, `ev_base`, `ev_events`, `ev_res`, `ev_flags`, the
//! callback and its argument) kept current by every call here, and the evrs [`Event`]
//! handle in the slot libevent uses for its timer-heap index. The base knows the memory's
//! address as the event's owner ([`EventBase::assign_owned`]), so re-assigning the memory
//! releases the old event, and a handle copied into other memory is refused.

use crate::base::{self, CBase};
use crate::ffi::capi;
use crate::log;
use crate::mm;
use evrs::{Event, EventBase, RawArg, What};
use std::os::raw::{c_int, c_short, c_void};
use std::ptr;

/// `event_callback_fn`.
pub type EventCb = unsafe extern "C" fn(c_int, c_short, *mut c_void);

/// libevent 2.1's `struct event` on x86_64 (128 bytes). Field names follow the C ones.
#[repr(C)]
pub struct CEvent {
    active_next: [*mut c_void; 2],
    /// `ev_flags`: `EVLIST_*`.
    pub flags: c_short,
    /// `ev_pri`.
    pub pri: u8,
    /// `ev_closure`: 0 plain, 1 signal, 2 persistent.
    pub closure: u8,
    /// `ev_callback`.
    pub cb: Option<EventCb>,
    /// `ev_arg`.
    pub arg: *mut c_void,
    /// libevent's timer position; here the evrs handle (`Event::into_raw`) and a mark.
    handle: [u32; 4],
    /// `ev_fd` (the signal number for signal events).
    pub fd: c_int,
    /// `ev_base`.
    pub base: *mut CBase,
    next: [*mut c_void; 2],
    io_timeout: [u64; 2],
    /// `ev_events`.
    pub events: c_short,
    /// `ev_res`.
    pub res: c_short,
    /// `ev_timeout`: when the pending timeout expires (monotonic).
    pub timeout: libc::timeval,
}

const _: () = assert!(std::mem::size_of::<CEvent>() == 128);
const _: () = assert!(std::mem::offset_of!(CEvent, flags) == 16);
const _: () = assert!(std::mem::offset_of!(CEvent, cb) == 24);
const _: () = assert!(std::mem::offset_of!(CEvent, fd) == 56);
const _: () = assert!(std::mem::offset_of!(CEvent, base) == 64);
const _: () = assert!(std::mem::offset_of!(CEvent, events) == 104);
const _: () = assert!(std::mem::offset_of!(CEvent, timeout) == 112);

/// `EVLIST_INIT`: the memory holds an assigned event.
pub const EVLIST_INIT: c_short = 0x80;
/// `EVLIST_ACTIVE`.
const EVLIST_ACTIVE: c_short = 0x08;
/// `EVLIST_ACTIVE_LATER`.
const EVLIST_ACTIVE_LATER: c_short = 0x20;
const MARK: u32 = 0x4556_5253; // "EVRS"
/// The mark, in the unused `ev_io_timeout` word of an event's memory, of a signal event with
/// a bad number (refused at `event_add`).
const MARK_BAD_SIGNAL: u64 = 1;
/// Signal numbers are 1..NSIG on Linux.
const NSIG: c_int = 65;

/// The argument `event_self_cbarg` stands for.
static SELF_CBARG: u8 = 0;

fn self_cbarg() -> *mut c_void {
    ptr::addr_of!(SELF_CBARG).cast_mut().cast()
}

/// Reads the evrs handle out of an assigned C event.
///
/// # Safety
/// `ev` points to readable `struct event` memory.
pub unsafe fn handle(ev: *const CEvent) -> Option<Event> {
    // SAFETY: per the contract.
    let (flags, h) = unsafe { ((*ev).flags, (*ev).handle) };
    (flags & EVLIST_INIT != 0 && h[3] == MARK).then(|| Event::from_raw([h[0], h[1], h[2]]))
}

/// Copies the base's view of the event into the C memory (`ev_flags` and, if a timeout is
/// pending, `ev_timeout`).
///
/// # Safety
/// `ev` points to writable `struct event` memory.
pub unsafe fn sync(b: &EventBase, ev: *mut CEvent, h: Event) {
    let f = b.list_flags(h) as c_short;
    // SAFETY: per the contract.
    unsafe { (*ev).flags = if f == 0 { EVLIST_INIT } else { f } };
}

/// The loop calls this for every C event: it updates the C memory as libevent would have
/// before the callback, then calls the program's function.
fn trampoline(b: &mut EventBase, _h: Event, what: What, arg: RawArg) {
    let ev = arg.as_ptr().cast::<CEvent>();
    // SAFETY: `arg` is the address of the event's C memory, which the program keeps valid
    // while the event is assigned (as libevent requires); the event fired, so it is.
    unsafe {
        // As libevent before a callback: a non-persistent event is no longer pending; a
        // persistent one stays inserted (and timed, if it has an interval); neither is
        // active any more. (No lookup: this is the dispatch path.)
        let persist = (*ev).events & What::PERSIST.bits() as c_short != 0;
        (*ev).flags = if persist {
            (*ev).flags & !(EVLIST_ACTIVE | EVLIST_ACTIVE_LATER)
        } else {
            EVLIST_INIT
        };
        (*ev).res = what.bits() as c_short;
        let (cb, fd, a, cbase) = ((*ev).cb, (*ev).fd, (*ev).arg, (*ev).base);
        let Some(cb) = cb else { return };
        // Nothing below touches `ev`: the callback may free or re-assign it.
        // A threaded base runs the callback with its lock released (other threads may
        // use the base meanwhile; `event_del` from them waits for this to return).
        (*cbase).call_out(b, ev.cast(), || cb(fd, what.bits() as c_short, a));
    }
}

fn what_of(events: c_short) -> What {
    // libevent ignores bits it does not know (and a stray TIMEOUT bit).
    What::from_bits_truncate(events as u16)
        & (What::READ
            | What::WRITE
            | What::SIGNAL
            | What::PERSIST
            | What::ET
            | What::CLOSED
            | What::FINALIZE)
}

/// `event_assign`'s work, on a live base.
///
/// # Safety
/// `ev` points to writable `struct event` memory; `base` is live.
pub unsafe fn assign(
    ev: *mut CEvent,
    base: *mut CBase,
    fd: c_int,
    events: c_short,
    cb: Option<EventCb>,
    arg: *mut c_void,
) -> c_int {
    let what = what_of(events);
    if what.contains(What::SIGNAL) && what.intersects(What::READ | What::WRITE | What::CLOSED) {
        log::warn("event_assign: EV_SIGNAL cannot be combined with EV_READ, EV_WRITE or EV_CLOSED");
        return -1;
    }
    let arg = if arg == self_cbarg() { ev.cast() } else { arg };
    crate::debug::note_setup();
    // SAFETY: `base` is live; `ev` writable.
    unsafe {
        crate::debug::check_assign(ev, fd, what.contains(What::SIGNAL));
        // Memory that named an event of another live base releases it there first. (Found
        // by address, not by reading the memory: programs assign uninitialised memory.) The
        // memory is recorded as this base's at once: should the assignment fail, the entry
        // only names a base that owns nothing at this address.
        if let Some(ob) = base::note_assigned(ev.cast(), base) {
            if ob != base && base::is_live(ob) {
                CBase::with(ob, |b| b.release_owned(ev as usize));
            }
        }
        // libevent makes an event for any signal number and refuses it only at
        // `event_add`; evrs refuses it at creation, so such an event is made without its
        // signal and marked to be refused when added.
        let bad_signal = what.contains(What::SIGNAL) && !(1..NSIG).contains(&fd);
        let (efd, ewhat) = if bad_signal {
            (-1, What::empty())
        } else {
            (fd, what)
        };
        let r = CBase::with(base, |b| {
            let h = b.assign_owned(
                ev as usize,
                efd,
                ewhat,
                trampoline,
                RawArg::from_ptr(ev.cast()),
            )?;
            Ok::<_, std::io::Error>((h, b.priority(h).unwrap_or(0)))
        });
        let (h, pri) = match r {
            Ok(x) => x,
            Err(e) => {
                log::warn(&format!("event_assign: {e}"));
                return -1;
            }
        };
        let raw = h.into_raw();
        ptr::write(
            ev,
            CEvent {
                active_next: [ptr::null_mut(); 2],
                flags: EVLIST_INIT,
                pri: pri as u8,
                closure: if what.contains(What::SIGNAL) {
                    1
                } else if what.contains(What::PERSIST) {
                    2
                } else {
                    0
                },
                cb,
                arg,
                handle: [raw[0], raw[1], raw[2], MARK],
                fd,
                base,
                next: [ptr::null_mut(); 2],
                io_timeout: [0, if bad_signal { MARK_BAD_SIGNAL } else { 0 }],
                events,
                res: 0,
                timeout: libc::timeval {
                    tv_sec: 0,
                    tv_usec: 0,
                },
            },
        );
    }
    0
}

/// An accessor's read of one field (`null` for a NULL event); in debug mode, memory that
/// holds no event is fatal, as in libevent.
///
/// # Safety
/// `ev` is null or points to readable `struct event` memory.
unsafe fn field<T>(ev: *const CEvent, null: T, get: impl FnOnce(&CEvent) -> T) -> T {
    if ev.is_null() {
        return null;
    }
    // SAFETY: per the contract; nothing writes the memory during this read.
    unsafe {
        crate::debug::assert_setup(ev);
        get(&*ev)
    }
}

/// Debug mode's check (libevent refuses it only there): would adding this I/O event put
/// edge- and level-triggered events on one fd?
///
/// # Safety
/// `ev` points to readable `struct event` memory.
unsafe fn mixes_triggering(b: &EventBase, ev: *const CEvent, h: Event) -> bool {
    // SAFETY: per the contract.
    let (fd, events) = unsafe { ((*ev).fd, What::from_bits_truncate((*ev).events as u16)) };
    if fd < 0 || !events.intersects(What::READ | What::WRITE | What::CLOSED) {
        return false;
    }
    let et = events.contains(What::ET);
    b.inserted_on(fd, false)
        .into_iter()
        .filter(|&o| o != h)
        .any(|o| b.events(o).is_ok_and(|w| w.contains(What::ET) != et))
}

/// Releases the evrs event that this memory names, if its base is alive and still knows
/// the event by this memory (`event_free`, `event_debug_unassign`).
///
/// # Safety
/// `ev` points to readable `struct event` memory.
///
/// On a threaded base, waits first for the event's callback if another thread runs it
/// (`event_free` deletes as `event_del` does), unless it is an `EV_FINALIZE` event.
unsafe fn release_memory(ev: *mut CEvent) {
    base::forget_assigned(ev.cast());
    // SAFETY: per the contract; the base pointer of assigned memory was made by this library.
    unsafe {
        if let Some(h) = handle(ev) {
            let base = (*ev).base;
            if !base.is_null() && !CBase::is_dead(base) {
                let finalize = (*ev).events & What::FINALIZE.bits() as c_short != 0;
                let after = if finalize {
                    std::ptr::null()
                } else {
                    ev.cast_const().cast()
                };
                CBase::with_then_wait(base, after, |b| release(b, ev, h));
            }
        }
    }
}

/// Frees the evrs event a C event names, if the base still knows it by this memory.
fn release(b: &mut EventBase, ev: *mut CEvent, h: Event) {
    if b.owner_of(h) == Some(ev as usize) {
        b.release_owned(ev as usize);
    }
}

/// The base and handle of an assigned event, or a warning naming `what` and `None`.
///
/// # Safety
/// `ev` is null or points to readable `struct event` memory.
pub unsafe fn resolve(ev: *const CEvent, what: &str) -> Option<(*mut CBase, Event)> {
    if ev.is_null() {
        log::warn(&format!("{what}: NULL event"));
        return None;
    }
    // SAFETY: per the contract.
    let (h, base) = unsafe { (handle(ev), (*ev).base) };
    match h {
        Some(h) if !base.is_null() => Some((base, h)),
        _ if base.is_null() => {
            log::warn(&format!("{what}: event has no event_base set."));
            None
        }
        _ => {
            // SAFETY: readable per the contract. Fatal in debug mode.
            unsafe { crate::debug::assert_setup(ev) };
            log::warn(&format!(
                "{what}: event not initialized (event_assign or event_new first)"
            ));
            None
        }
    }
}

/// Runs `f` on the event's base and handle, if the base still knows the event by this
/// memory; `err` otherwise.
///
/// # Safety
/// `ev` is null or points to readable `struct event` memory.
pub unsafe fn with_event<R>(
    ev: *const CEvent,
    what: &str,
    err: R,
    f: impl FnOnce(&mut EventBase, Event) -> R,
) -> R {
    // SAFETY: forwarded contract.
    unsafe { with_event_after(ev, false, what, err, f) }
}

/// The ways `event_del` may wait for the event's callback running on another thread
/// (`EVENT_DEL_*` of libevent).
#[derive(Clone, Copy)]
enum DelWait {
    /// Unless the event is an `EV_FINALIZE` one (`event_del`, `event_free`).
    Auto,
    Block,
    NoBlock,
}

/// `event_del` in mode `mode`.
///
/// # Safety
/// As for [`with_event`].
unsafe fn del(ev: *mut CEvent, mode: DelWait) -> c_int {
    let wait = match mode {
        DelWait::Block => true,
        DelWait::NoBlock => false,
        DelWait::Auto => {
            // SAFETY: null or readable event memory (checked for null first).
            !ev.is_null() && unsafe { (*ev).events } & What::FINALIZE.bits() as c_short == 0
        }
    };
    // SAFETY: forwarded contract.
    unsafe {
        with_event_after(ev, wait, "event_del_", -1, |b, h| match b.del(h) {
            Ok(()) => {
                sync(b, ev, h);
                0
            }
            Err(_) => -1,
        })
    }
}

/// As [`with_event`]; with `wait`, on a threaded base, then waits for the event's callback
/// to return if another thread runs it.
///
/// # Safety
/// As for [`with_event`].
unsafe fn with_event_after<R>(
    ev: *const CEvent,
    wait: bool,
    what: &str,
    err: R,
    f: impl FnOnce(&mut EventBase, Event) -> R,
) -> R {
    // SAFETY: per the contract.
    let Some((base, h)) = (unsafe { resolve(ev, what) }) else {
        return err;
    };
    // SAFETY: the base was made by this library (its memory is never released).
    if unsafe { CBase::is_dead(base) } {
        log::warn(&format!("{what}: the event's base has been freed"));
        return err;
    }
    let after = if wait { ev.cast() } else { std::ptr::null() };
    // SAFETY: a live base.
    unsafe {
        CBase::with_then_wait(base, after, |b| {
            if b.owner_of(h) != Some(ev as usize) {
                log::warn(&format!("{what}: this memory does not hold an event (was it copied, or its base freed?)"));
                return err;
            }
            f(b, h)
        })
    }
}

capi! {
    /// A new event allocated by the library (freed with `event_free`).
    fn event_new(base: *mut CBase, fd: c_int, events: c_short, cb: Option<EventCb>, arg: *mut c_void) -> *mut CEvent {
        let base = base::or_current(base);
        if base.is_null() {
            log::warn("event_new: no base");
            return ptr::null_mut();
        }
        let ev = mm::calloc(1, std::mem::size_of::<CEvent>()).cast::<CEvent>();
        if ev.is_null() {
            return ptr::null_mut();
        }
        let arg = if arg == self_cbarg() { ev.cast() } else { arg };
        // SAFETY: fresh zeroed memory of the right size; a live base. On failure the
        // memory was never handed out.
        unsafe {
            if assign(ev, base, fd, events, cb, arg) != 0 {
                mm::free(ev.cast());
                return ptr::null_mut();
            }
        }
        ev
    }

    /// Initializes caller-owned event memory (`base` NULL: the current base).
    fn event_assign(ev: *mut CEvent, base: *mut CBase, fd: c_int, events: c_short, cb: Option<EventCb>, arg: *mut c_void) -> c_int {
        let base = base::or_current(base);
        if ev.is_null() || base.is_null() {
            log::warn("event_assign: NULL event or no base");
            return -1;
        }
        // SAFETY: writable event memory per the C contract; a live base.
        unsafe { assign(ev, base, fd, events, cb, arg) }
    }

    /// Deletes and frees an event made by `event_new`.
    fn event_free(ev: *mut CEvent) {
        if ev.is_null() {
            return;
        }
        // SAFETY: an event from `event_new`.
        unsafe {
            release_memory(ev);
            (*ev).flags = 0;
            mm::free(ev.cast());
        }
    }

    /// Makes an event pending, with a timeout (NULL: none, or keep the current one).
    fn event_add(ev: *mut CEvent, tv: *const libc::timeval) -> c_int {
        // SAFETY: an assigned event; `tv` null or readable.
        unsafe {
            let timeout = base::opt_duration(tv);
            if !ev.is_null() && (*ev).io_timeout[1] == MARK_BAD_SIGNAL && handle(ev).is_some() {
                log::warn(&format!("event_add: invalid signal number {}", (*ev).fd));
                return -1;
            }
            with_event(ev, "event_add", -1, |b, h| {
                if crate::debug::on() && mixes_triggering(b, ev, h) {
                    log::warn(&format!("Tried to mix edge-triggered and non-edge-triggered events on fd {}", (*ev).fd));
                    return -1;
                }
                match b.add(h, timeout) {
                Ok(()) => {
                    sync(b, ev, h);
                    0
                }
                Err(e) => {
                    log::warn(&format!("event_add: {e}"));
                    -1
                }
                }
            })
        }
    }

    /// Makes an event non-pending and non-active.
    fn event_del(ev: *mut CEvent) -> c_int {
        // SAFETY: an assigned event.
        unsafe { del(ev, DelWait::Auto) }
    }

    /// As `event_del`, and on a threaded base always waits for the event's callback
    /// running on another thread to return.
    fn event_del_block(ev: *mut CEvent) -> c_int {
        // SAFETY: forwarded contract.
        unsafe { del(ev, DelWait::Block) }
    }

    /// As `event_del`, never waiting for a running callback.
    fn event_del_noblock(ev: *mut CEvent) -> c_int {
        // SAFETY: forwarded contract.
        unsafe { del(ev, DelWait::NoBlock) }
    }

    /// Removes only the timeout.
    fn event_remove_timer(ev: *mut CEvent) -> c_int {
        // SAFETY: an assigned event.
        unsafe {
            with_event(ev, "event_remove_timer", -1, |b, h| match b.remove_timer(h) {
                Ok(()) => {
                    sync(b, ev, h);
                    0
                }
                Err(_) => -1,
            })
        }
    }

    /// Makes an event active with `res`, as if it fired.
    fn event_active(ev: *mut CEvent, res: c_int, ncalls: c_short) {
        // SAFETY: an assigned event.
        unsafe {
            with_event(ev, "event_active", (), |b, h| {
                let what = What::from_bits_truncate(res as u16);
                if b.activate(h, what, ncalls.max(0) as u16).is_ok() {
                    // Now active (the common case needs no lookup of the base's view).
                    let f = (*ev).flags;
                    if f & EVLIST_ACTIVE_LATER == 0 {
                        (*ev).flags = f | EVLIST_ACTIVE;
                    } else {
                        sync(b, ev, h);
                    }
                    let r = (*ev).res as u16 | what.bits();
                    (*ev).res = r as c_short;
                }
            })
        }
    }

    /// As `event_active`, but the callback runs in the loop's next iteration, after the
    /// backend is polled (libevent's internal "active later" queue, exported for its
    /// tests).
    fn event_active_later_(ev: *mut CEvent, res: c_int) {
        // SAFETY: an assigned event.
        unsafe {
            with_event(ev, "event_active_later_", (), |b, h| {
                let what = What::from_bits_truncate(res as u16);
                if b.activate_later(h, what).is_ok() {
                    sync(b, ev, h);
                    let r = (*ev).res as u16 | what.bits();
                    (*ev).res = r as c_short;
                }
            })
        }
    }

    /// Which of `events` the event is pending or active for; the expiry of a pending
    /// timeout (wall clock) in `tv`.
    fn event_pending(ev: *const CEvent, events: c_short, tv: *mut libc::timeval) -> c_int {
        // SAFETY: an assigned event; `tv` null or writable.
        unsafe {
            with_event(ev, "event_pending", 0, |b, h| {
                let Ok((w, at)) = b.pending(h, What::from_bits_truncate(events as u16)) else {
                    return 0;
                };
                if let (Some(at), false) = (at, tv.is_null()) {
                    let d = at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
                    (*tv).tv_sec = d.as_secs() as libc::time_t;
                    (*tv).tv_usec = d.subsec_micros() as libc::suseconds_t;
                }
                c_int::from(w.bits() as i16)
            })
        }
    }

    /// Whether the memory holds an assigned event (zeroed memory: no).
    fn event_initialized(ev: *const CEvent) -> c_int {
        // SAFETY: readable event memory per the C contract.
        c_int::from(!ev.is_null() && unsafe { (*ev).flags } & EVLIST_INIT != 0)
    }

    /// Sets the priority (0 is most urgent).
    fn event_priority_set(ev: *mut CEvent, pri: c_int) -> c_int {
        if !ev.is_null() {
            // SAFETY: readable event memory (fatal in debug mode if it holds no event).
            unsafe { crate::debug::assert_setup(ev) };
        }
        if pri < 0 {
            return -1;
        }
        // SAFETY: an assigned event.
        unsafe {
            with_event(ev, "event_priority_set", -1, |b, h| match b.set_priority(h, pri as usize) {
                Ok(()) => {
                    (*ev).pri = pri as u8;
                    0
                }
                Err(_) => -1,
            })
        }
    }

    /// The fd (or signal number).
    fn event_get_fd(ev: *const CEvent) -> c_int {
        // SAFETY: event memory per the C contract.
        unsafe { field(ev, -1, |e| e.fd) }
    }

    /// The base.
    fn event_get_base(ev: *const CEvent) -> *mut CBase {
        // SAFETY: event memory per the C contract.
        unsafe { field(ev, ptr::null_mut(), |e| e.base) }
    }

    /// The `EV_*` interest.
    fn event_get_events(ev: *const CEvent) -> c_short {
        // SAFETY: event memory per the C contract.
        unsafe { field(ev, 0, |e| e.events) }
    }

    /// The callback.
    fn event_get_callback(ev: *const CEvent) -> Option<EventCb> {
        // SAFETY: event memory per the C contract.
        unsafe { field(ev, None, |e| e.cb) }
    }

    /// The callback's argument.
    fn event_get_callback_arg(ev: *const CEvent) -> *mut c_void {
        // SAFETY: event memory per the C contract.
        unsafe { field(ev, ptr::null_mut(), |e| e.arg) }
    }

    /// The priority.
    fn event_get_priority(ev: *const CEvent) -> c_int {
        // SAFETY: event memory per the C contract.
        unsafe { field(ev, -1, |e| c_int::from(e.pri)) }
    }

    /// All of the above at once (each out-pointer may be NULL).
    fn event_get_assignment(ev: *const CEvent, base_out: *mut *mut CBase, fd_out: *mut c_int, events_out: *mut c_short, cb_out: *mut Option<EventCb>, arg_out: *mut *mut c_void) {
        if ev.is_null() {
            return;
        }
        // SAFETY: readable event memory (fatal in debug mode if it holds no event).
        unsafe { crate::debug::assert_setup(ev) };
        // SAFETY: readable event memory; each out-pointer null or writable.
        unsafe {
            if !base_out.is_null() { *base_out = (*ev).base; }
            if !fd_out.is_null() { *fd_out = (*ev).fd; }
            if !events_out.is_null() { *events_out = (*ev).events; }
            if !cb_out.is_null() { *cb_out = (*ev).cb; }
            if !arg_out.is_null() { *arg_out = (*ev).arg; }
        }
    }

    /// `sizeof(struct event)`: 128.
    fn event_get_struct_event_size() -> usize {
        std::mem::size_of::<CEvent>()
    }

    /// A marker argument: an event assigned with it gets itself as its argument.
    fn event_self_cbarg() -> *mut c_void {
        self_cbarg()
    }

    /// The event whose callback is running on `base`, or NULL.
    fn event_base_get_running_event(base: *mut CBase) -> *mut CEvent {
        if base.is_null() {
            return ptr::null_mut();
        }
        // SAFETY: a live base.
        unsafe {
            CBase::with(base, |b| {
                b.running_event().and_then(|h| b.owner_of(h)).map_or(ptr::null_mut(), |a| a as *mut CEvent)
            })
        }
    }

    /// Marks event memory as no longer assigned (debug mode's teardown), releasing its
    /// evrs event.
    fn event_debug_unassign(ev: *mut CEvent) {
        if ev.is_null() {
            return;
        }
        // SAFETY: event memory per the C contract.
        unsafe {
            release_memory(ev);
            (*ev).flags &= !EVLIST_INIT;
        }
    }
}
