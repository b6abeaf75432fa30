//! The process-wide-base API of libevent 1.x (event_compat.h, and the parts of event.h that
//! act on the current base), the version functions, and `event_base_once`.

use crate::base::{self, current_base_data, CBase};
use crate::event::{self, CEvent, EventCb};
use crate::ffi::capi;
use crate::log;
use evrs::What;
use std::os::raw::{c_char, c_int, c_short, c_void};
use std::sync::atomic::Ordering;

/// `LIBEVENT_VERSION_NUMBER` of 2.1.12-stable.
pub const VERSION_NUMBER: u32 = 0x0201_0c00;

fn current_or_warn(what: &str) -> *mut CBase {
    let b = base::current();
    if b.is_null() {
        log::warn(&format!("{what}: no current base (call event_init first)"));
    }
    b
}

/// `event_base_once`'s work.
///
/// # Safety
/// `base` is live; `tv` null or readable.
unsafe fn once(
    base: *mut CBase,
    fd: c_int,
    events: c_short,
    cb: Option<EventCb>,
    arg: *mut c_void,
    tv: *const libc::timeval,
) -> c_int {
    let what = What::from_bits_truncate(events as u16);
    if base.is_null() || what.intersects(What::SIGNAL | What::PERSIST) {
        return -1;
    }
    let Some(cb) = cb else { return -1 };
    let io = what & (What::READ | What::WRITE | What::CLOSED);
    if io.is_empty() && what != What::TIMEOUT && !what.is_empty() {
        return -1;
    }
    // SAFETY: `tv` null or readable.
    let timeout = unsafe { base::opt_duration(tv) };
    let arg = evrs::RawArg::from_ptr(arg);
    let owner = evrs::RawArg::from_ptr(base.cast());
    // SAFETY: a live base.
    unsafe {
        CBase::with(base, |b| {
            let r = b.once(
                if io.is_empty() { -1 } else { fd },
                io,
                timeout,
                move |b, what| {
                    let cbase = owner.as_ptr().cast::<CBase>();
                    // SAFETY: the base runs this callback, so it is live.
                    (*cbase).call_out(b, std::ptr::null(), || {
                        cb(fd, what.bits() as c_short, arg.as_ptr())
                    });
                },
            );
            match r {
                Ok(()) => 0,
                Err(e) => {
                    log::warn(&format!("event_base_once: {e}"));
                    -1
                }
            }
        })
    }
}

capi! {
    /// Creates a base and makes it the current one (exits the process on failure).
    fn event_init() -> *mut CBase {
        // SAFETY: no arguments.
        let b = unsafe { base::event_base_new() };
        if b.is_null() {
            log::fatal(1, "event_init: no event mechanism available");
        }
        current_base_data().store(b, Ordering::Release);
        b
    }

    /// Runs the current base's loop.
    fn event_dispatch() -> c_int {
        // SAFETY: the current base is live or null.
        unsafe { base::event_base_loop(current_or_warn("event_dispatch"), 0) }
    }

    /// Runs the current base's loop with `EVLOOP_*` flags.
    fn event_loop(flags: c_int) -> c_int {
        // SAFETY: as above.
        unsafe { base::event_base_loop(current_or_warn("event_loop"), flags) }
    }

    /// Stops the current base's loop after `tv`.
    fn event_loopexit(tv: *const libc::timeval) -> c_int {
        // SAFETY: as above.
        unsafe { base::event_base_loopexit(current_or_warn("event_loopexit"), tv) }
    }

    /// Stops the current base's loop after the running callback.
    fn event_loopbreak() -> c_int {
        // SAFETY: as above.
        unsafe { base::event_base_loopbreak(current_or_warn("event_loopbreak")) }
    }

    /// The current base's backend name.
    fn event_get_method() -> *const c_char {
        // SAFETY: as above.
        unsafe { base::event_base_get_method(current_or_warn("event_get_method")) }
    }

    /// Sets the current base's number of priorities.
    fn event_priority_init(n: c_int) -> c_int {
        // SAFETY: as above.
        unsafe { base::event_base_priority_init(current_or_warn("event_priority_init"), n) }
    }

    /// Assigns event memory on the current base.
    fn event_set(ev: *mut CEvent, fd: c_int, events: c_short, cb: Option<EventCb>, arg: *mut c_void) {
        let b = current_or_warn("event_set");
        if !b.is_null() && !ev.is_null() {
            // SAFETY: writable event memory; a live base.
            unsafe { event::assign(ev, b, fd, events, cb, arg) };
        }
    }

    /// Moves an event that was never added to another base.
    fn event_base_set(base: *mut CBase, ev: *mut CEvent) -> c_int {
        if base.is_null() || ev.is_null() {
            return -1;
        }
        // SAFETY: an assigned event and a live base.
        unsafe {
            if event::handle(ev).is_none() {
                return -1;
            }
            if (*ev).flags & !event::EVLIST_INIT != 0 {
                return -1;
            }
            let (fd, events, cb, arg) = ((*ev).fd, (*ev).events, (*ev).cb, (*ev).arg);
            event::assign(ev, base, fd, events, cb, arg)
        }
    }

    /// Runs `cb` once, when `fd` is ready or `tv` passes (a timer with fd -1 and
    /// `EV_TIMEOUT`).
    fn event_base_once(base: *mut CBase, fd: c_int, events: c_short, cb: Option<EventCb>, arg: *mut c_void, tv: *const libc::timeval) -> c_int {
        // SAFETY: a live base or null; `tv` null or readable.
        unsafe { once(base, fd, events, cb, arg, tv) }
    }

    /// `event_base_once` on the current base.
    fn event_once(fd: c_int, events: c_short, cb: Option<EventCb>, arg: *mut c_void, tv: *const libc::timeval) -> c_int {
        // SAFETY: as above.
        unsafe { once(current_or_warn("event_once"), fd, events, cb, arg, tv) }
    }

    /// `"2.1.12-stable"`: the libevent version this library stands in for.
    fn event_get_version() -> *const c_char {
        c"2.1.12-stable".as_ptr()
    }

    /// `0x02010c00`.
    fn event_get_version_number() -> u32 {
        VERSION_NUMBER
    }
}
