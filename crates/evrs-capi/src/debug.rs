//! libevent's debug mode (`event_enable_debug_mode`) and the finalizer API
//! (`event_finalize`, `event_free_finalize`), plus `libevent_global_shutdown`.
//!
//! Debug mode makes misuse of `struct event` memory fatal, as libevent's does, with its
//! messages and its assertion code (`EVENT_ERR_ABORT_`: the fatal callback, then `abort`):
//! using memory that holds no assigned event (never assigned, or torn down with
//! `event_debug_unassign`), re-assigning an event that is pending, and assigning a
//! non-signal event to a blocking fd. evrs recognises assigned memory by its own mark in
//! the struct (see [`crate::event`]), so unlike libevent it needs no global table.

use crate::base::CBase;
use crate::event::{self, CEvent};
use crate::ffi::capi;
use crate::log;
use crate::mm;
use std::os::raw::{c_int, c_uint, c_void};
use std::sync::atomic::{AtomicBool, Ordering};

static DEBUG_MODE: AtomicBool = AtomicBool::new(false);
/// A base or an event was made: too late to turn debug mode on.
static TOO_LATE: AtomicBool = AtomicBool::new(false);

/// `event_finalize_callback_fn`.
pub type FinalizeCb = unsafe extern "C" fn(*mut CEvent, *mut c_void);

/// Whether debug mode is on.
pub fn on() -> bool {
    DEBUG_MODE.load(Ordering::Relaxed)
}

/// Records that a base or an event exists (debug mode can no longer be turned on).
pub fn note_setup() {
    TOO_LATE.store(true, Ordering::Relaxed);
}

fn describe(ev: *const CEvent) -> String {
    // SAFETY: readable event memory per the callers' contracts.
    let (events, fd, flags) = unsafe { ((*ev).events, (*ev).fd, (*ev).flags) };
    format!(
        "{ev:p} (events: 0x{:x}, fd: {fd}, flags: 0x{:x})",
        events as u16, flags as u16
    )
}

/// In debug mode, ends the process (libevent's assertion path) if `ev` does not hold an
/// assigned event.
///
/// # Safety
/// `ev` points to readable `struct event` memory.
pub unsafe fn assert_setup(ev: *const CEvent) {
    // SAFETY: per the contract.
    if on() && unsafe { event::handle(ev) }.is_none() {
        log::err(&format!(
            "event_debug_assert_is_setup_ called on a non-initialized event {}",
            describe(ev)
        ));
        log::exit(log::ERR_ABORT);
    }
}

/// In debug mode, ends the process if the memory about to be assigned holds an event
/// that is pending (added and not deleted), or if a non-signal event's fd is blocking.
///
/// # Safety
/// `ev` points to readable `struct event` memory.
pub unsafe fn check_assign(ev: *const CEvent, fd: c_int, signal: bool) {
    if !on() {
        return;
    }
    // SAFETY: per the contract; the base an assigned event names is checked for life.
    unsafe {
        // (By address: the memory may be uninitialised.)
        if let Some(base) = crate::base::assigned_base(ev.cast()) {
            let pending = crate::base::is_live(base)
                && CBase::with(base, |b| {
                    b.owned_event(ev as usize)
                        .is_some_and(|h| b.list_flags(h) & 0x03 != 0)
                });
            if pending {
                log::err(&format!(
                    "event_debug_assert_not_added_ called on an already added event {}",
                    describe(ev)
                ));
                log::exit(log::ERR_ABORT);
            }
        }
        if !signal && fd >= 0 && libc::fcntl(fd, libc::F_GETFL) & libc::O_NONBLOCK == 0 {
            log::err("event.c:385: Assertion flags & O_NONBLOCK failed in event_debug_assert_socket_nonblocking_");
            log::exit(log::ERR_ABORT);
        }
    }
}

/// `event_finalize`'s work: `free` also releases the memory (from `event_new`) after
/// `cb` ran.
///
/// # Safety
/// `ev` is an assigned event.
unsafe fn finalize(ev: *mut CEvent, cb: Option<FinalizeCb>, free: bool, what: &str) -> c_int {
    let Some(cb) = cb else {
        log::warn(&format!("{what}: NULL callback"));
        return -1;
    };
    let evp = evrs::RawArg::from_ptr(ev.cast());
    // SAFETY: an assigned event per the contract; the closure runs on the loop (or at base
    // free) while the memory is still the program's, as libevent requires.
    unsafe {
        let base = (*ev).base;
        event::with_event(ev, what, -1, |b, h| {
            let run = move |b: &mut evrs::EventBase, _h: evrs::Event| {
                let ev = evp.as_ptr().cast::<CEvent>();
                // SAFETY: the program keeps the memory until its finalizer ran.
                let prev = (*base).enter(b);
                cb(ev, (*ev).arg);
                (*base).leave(prev);
                if free {
                    (*ev).flags = 0;
                    mm::free(ev.cast());
                }
            };
            let r = if free {
                b.free_finalize(h, run)
            } else {
                b.finalize(h, run)
            };
            match r {
                Ok(()) => {
                    event::sync(b, ev, h);
                    0
                }
                Err(e) => {
                    log::warn(&format!("{what}: {e}"));
                    -1
                }
            }
        })
    }
}

capi! {
    /// Turns debug mode on: before any base or event exists, once (fatal otherwise).
    fn event_enable_debug_mode() {
        if on() {
            log::fatal(1, "event_enable_debug_mode was called twice!");
        }
        if TOO_LATE.load(Ordering::Relaxed) {
            log::fatal(1, "event_enable_debug_mode must be called *before* creating any events or event_bases");
        }
        DEBUG_MODE.store(true, Ordering::Relaxed);
    }

    /// Internal: turns debug mode off again.
    fn event_disable_debug_mode() {
        DEBUG_MODE.store(false, Ordering::Relaxed);
    }

    /// Deletes the event without waiting and replaces its callback by `cb(ev, arg)`, which
    /// the loop runs once the event can no longer run (or the base's free does). Meanwhile
    /// `event_add` fails, `event_active` is ignored and `event_del` does nothing. `flags` is
    /// unused, as in libevent.
    fn event_finalize(flags: c_uint, ev: *mut CEvent, cb: Option<FinalizeCb>) -> c_int {
        let _ = flags;
        // SAFETY: an assigned event per the contract.
        unsafe { finalize(ev, cb, false, "event_finalize") }
    }

    /// As `event_finalize`, then frees the event (one from `event_new`) after `cb`.
    fn event_free_finalize(flags: c_uint, ev: *mut CEvent, cb: Option<FinalizeCb>) -> c_int {
        let _ = flags;
        // SAFETY: an event from `event_new` per the contract.
        unsafe { finalize(ev, cb, true, "event_free_finalize") }
    }

    /// Frees the library's global state. evrs keeps none that needs freeing (bases own
    /// theirs, the hooks and callbacks are plain values): nothing to do, any number of
    /// times.
    fn libevent_global_shutdown() {}
}
