//! Counting a base's events (event.h: `event_base_get_num_events`,
//! `event_base_get_max_events`) and libevent's virtual events (`event_base_add_virtual_`,
//! `event_base_del_virtual_`, exported for its tests and its Windows backend).
//!
//! A virtual event is only a count: while it is above zero the loop does not stop for
//! lack of events (each is a hold on the base: `EventBase::hold_open`).

use crate::base::CBase;
use crate::ffi::capi;
use crate::log;
use evrs::{Count, EventBase};
use std::collections::HashMap;
use std::os::raw::c_int;
use std::sync::Mutex;

/// `EVENT_BASE_COUNT_ACTIVE`, `_VIRTUAL`, `_ADDED`.
const ACTIVE: c_int = 1;
const VIRTUAL: c_int = 2;
const ADDED: c_int = 4;

/// A base's virtual events' high-water mark (the count is the base's holds).
#[derive(Default)]
struct Virtual {
    max: usize,
}

/// Per base (by address: a `CBase`'s memory is never reused), for the few bases that have
/// had virtual events.
static VIRTUALS: Mutex<Option<HashMap<usize, Virtual>>> = Mutex::new(None);

fn with_virtual<R>(base: *mut CBase, f: impl FnOnce(&mut Virtual) -> R) -> R {
    let mut m = VIRTUALS.lock().unwrap_or_else(|e| e.into_inner());
    f(m.get_or_insert_with(HashMap::new)
        .entry(base as usize)
        .or_default())
}

/// Queue memberships of the program's events, as libevent counts them for `_ADDED`:
/// registered, timed and active each count once (the base's own events not at all).
fn added(b: &EventBase) -> usize {
    let mut n = 0;
    let _ = b.foreach_event(|i| {
        if !i.internal && !i.hook {
            n += usize::from(i.inserted) + usize::from(i.timeout.is_some()) + usize::from(i.active);
        }
        std::ops::ControlFlow::Continue(())
    });
    n
}

capi! {
    /// Counts events: `EVENT_BASE_COUNT_ACTIVE` 1, `_VIRTUAL` 2, `_ADDED` 4, summed.
    fn event_base_get_num_events(base: *mut CBase, flags: c_int) -> c_int {
        if base.is_null() {
            return 0;
        }
        // SAFETY: a live base.
        unsafe {
            CBase::with(base, |b| {
                let mut n = 0;
                if flags & ACTIVE != 0 {
                    n += b.num_events(Count::Active);
                }
                if flags & VIRTUAL != 0 {
                    n += b.holds();
                }
                if flags & ADDED != 0 {
                    n += added(b);
                }
                n as c_int
            })
        }
    }

    /// High-water marks of the counts; `clear` resets those asked for to the current value.
    fn event_base_get_max_events(base: *mut CBase, flags: c_int, clear: c_int) -> c_int {
        if base.is_null() {
            return 0;
        }
        // SAFETY: a live base.
        unsafe {
            CBase::with(base, |b| {
                let mut n = 0;
                if flags & VIRTUAL != 0 {
                    n += with_virtual(base, |v| {
                        let m = v.max;
                        if clear != 0 {
                            v.max = b.holds();
                        }
                        m
                    });
                }
                if flags & ACTIVE != 0 {
                    n += b.max_events(Count::Active, clear != 0);
                }
                if flags & ADDED != 0 {
                    n += b.max_events(Count::Added, clear != 0);
                }
                n as c_int
            })
        }
    }

    /// One more virtual event: the loop keeps running while there are any.
    fn event_base_add_virtual_(base: *mut CBase) {
        if !crate::base::is_live(base) {
            log::warn("event_base_add_virtual_: no base");
            return;
        }
        // SAFETY: a live base.
        unsafe {
            CBase::with(base, |b| {
                b.hold_open();
                with_virtual(base, |v| v.max = v.max.max(b.holds()));
            })
        }
    }

    /// One virtual event fewer; at none, the loop may stop for lack of events again.
    fn event_base_del_virtual_(base: *mut CBase) {
        if !crate::base::is_live(base) {
            log::warn("event_base_del_virtual_: no base");
            return;
        }
        // SAFETY: a live base.
        unsafe {
            CBase::with(base, |b| {
                if b.release_hold().is_err() {
                    log::warn("event_base_del_virtual_: the base has no virtual events");
                }
            })
        }
    }
}
