//! Looking into a base from C (event.h): `event_base_foreach_event`,
//! `event_base_dump_events`, `event_base_active_by_fd` / `_by_signal`, and
//! `event_gettime_monotonic`.
//!
//! Only the program's own events are shown or activated: the events a base makes for
//! itself (signal pipe, wakeup fd) have no `struct event` a C program could be handed.
//! Events are listed in libevent's order: those registered on an fd, by fd and then as
//! the backend would activate them (the newest first); then signal events likewise; then
//! pure timers by deadline; then events that are only active.

use crate::base::CBase;
use crate::event::{self, CEvent};
use crate::ffi::capi;
use crate::log;
use evrs::{Event, EventBase, What};
use std::os::raw::{c_int, c_short, c_void};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `event_base_foreach_event_cb`.
pub type ForeachCb = unsafe extern "C" fn(*const CBase, *const CEvent, *mut c_void) -> c_int;

/// One of the program's events as a listing shows it.
struct Seen {
    ev: *mut CEvent,
    h: Event,
    fd: c_int,
    events: What,
    priority: usize,
    inserted: bool,
    active: bool,
    timeout: Option<Duration>,
}

/// The program's pending or active events on `b`, in libevent's order, their C memory
/// brought up to date.
fn collect(b: &mut EventBase) -> Vec<Seen> {
    let mut all = Vec::new();
    let _ = b.foreach_event(|i| {
        // (A `struct event_callback`'s event is not a `struct event`: not listed.)
        let owned = b
            .owner_of(i.event)
            .filter(|_| !crate::callback::is_callback_slot(i.events));
        if let Some(owner) = owned {
            all.push(Seen {
                ev: owner as *mut CEvent,
                h: i.event,
                fd: i.fd,
                events: i.events,
                priority: i.priority,
                inserted: i.inserted,
                active: i.active,
                timeout: i.timeout,
            });
        }
        std::ops::ControlFlow::Continue(())
    });
    let mut order: Vec<Seen> = Vec::with_capacity(all.len());
    let take = |h: Event, all: &mut Vec<Seen>, order: &mut Vec<Seen>| {
        if let Some(p) = all.iter().position(|s| s.h == h) {
            order.push(all.remove(p));
        }
    };
    for signal in [false, true] {
        let mut fds: Vec<c_int> = all
            .iter()
            .filter(|s| s.inserted && s.events.contains(What::SIGNAL) == signal)
            .map(|s| s.fd)
            .collect();
        fds.sort_unstable();
        fds.dedup();
        for fd in fds {
            for h in b.inserted_on(fd, signal) {
                take(h, &mut all, &mut order);
            }
        }
    }
    let mut timers: Vec<(Duration, Event)> = all
        .iter()
        .filter_map(|s| s.timeout.map(|t| (t, s.h)))
        .collect();
    timers.sort_by_key(|&(t, _)| t);
    for (_, h) in timers {
        take(h, &mut all, &mut order);
    }
    order.append(&mut all);
    for s in &order {
        // SAFETY: the base knows this memory as the event's owner, so it is live.
        unsafe { event::sync(b, s.ev, s.h) };
    }
    order
}

fn flag(on: bool, name: &str) -> &str {
    if on {
        name
    } else {
        ""
    }
}

/// libevent's dump text.
fn dump_text(b: &mut EventBase) -> String {
    use std::fmt::Write;
    let seen = collect(b);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let gloss = |s: &Seen| {
        if s.events.contains(What::SIGNAL) {
            "sig"
        } else {
            "fd "
        }
    };
    let mut out = String::from("Inserted events:\n");
    for s in seen.iter().filter(|s| s.inserted || s.timeout.is_some()) {
        let e = s.events;
        let _ = write!(
            out,
            "  {:p} [{} {}]{}{}{}{}{}",
            s.ev,
            gloss(s),
            s.fd,
            flag(e.contains(What::READ), " Read"),
            flag(e.contains(What::WRITE), " Write"),
            flag(e.contains(What::CLOSED), " EOF"),
            flag(e.contains(What::SIGNAL), " Signal"),
            flag(e.contains(What::PERSIST), " Persist"),
        );
        if let Some(t) = s.timeout {
            let at = now + t;
            let _ = write!(out, " Timeout={}.{:06}", at.as_secs(), at.subsec_micros());
        }
        out.push('\n');
    }
    out.push_str("Active events:\n");
    for s in seen.iter().filter(|s| s.active) {
        // SAFETY: live event memory (see `collect`).
        let (res, flags) = unsafe { (What::from_bits_truncate((*s.ev).res as u16), (*s.ev).flags) };
        let _ = writeln!(
            out,
            "  {:p} [{} {}, priority={}]{}{}{}{}{} active{}",
            s.ev,
            gloss(s),
            s.fd,
            s.priority,
            flag(res.contains(What::READ), " Read"),
            flag(res.contains(What::WRITE), " Write"),
            flag(res.contains(What::CLOSED), " EOF"),
            flag(res.contains(What::SIGNAL), " Signal"),
            flag(res.contains(What::TIMEOUT), " Timeout"),
            flag(flags & 0x20 != 0, " [NextTime]"),
        );
    }
    out
}

/// Activates one of the program's events with `what`, keeping its C memory current.
fn activate(b: &mut EventBase, h: Event, what: What) {
    let Some(owner) = b.owner_of(h) else { return };
    if b.activate(h, what, 1).is_ok() {
        let ev = owner as *mut CEvent;
        // SAFETY: the base knows this memory as the event's owner, so it is live.
        unsafe {
            event::sync(b, ev, h);
            (*ev).res = ((*ev).res as u16 | what.bits()) as c_short;
        }
    }
}

capi! {
    /// Calls `cb(base, ev, arg)` for each of the program's pending or active events until
    /// one returns non-zero, which is returned (0 otherwise, -1 for NULL arguments). The
    /// events are gathered first, so `cb` may use read-only accessors.
    fn event_base_foreach_event(base: *mut CBase, cb: Option<ForeachCb>, arg: *mut c_void) -> c_int {
        let Some(cb) = cb else { return -1 };
        if base.is_null() {
            return -1;
        }
        // SAFETY: a live base; the callback gets pointers to live event memory.
        unsafe {
            let seen = CBase::with(base, collect);
            for s in seen {
                let r = cb(base, s.ev, arg);
                if r != 0 {
                    return r;
                }
            }
        }
        0
    }

    /// Writes libevent's listing of inserted and active events to a C `FILE *`.
    fn event_base_dump_events(base: *mut CBase, out: *mut libc::FILE) {
        if base.is_null() || out.is_null() {
            return;
        }
        // SAFETY: a live base and an open stream per the contract.
        unsafe {
            let text = CBase::with(base, dump_text);
            libc::fwrite(text.as_ptr().cast(), 1, text.len(), out);
        }
    }

    /// Activates the program's events on `fd` as if it were ready for `events`
    /// (`EV_READ`, `EV_WRITE`, `EV_CLOSED`); with `EV_TIMEOUT`, instead, every event on
    /// `fd` with a pending timeout, as if it expired.
    fn event_base_active_by_fd(base: *mut CBase, fd: c_int, events: c_short) {
        if base.is_null() {
            return;
        }
        let want = What::from_bits_truncate(events as u16);
        // SAFETY: a live base.
        unsafe {
            CBase::with(base, |b| {
                if want.contains(What::TIMEOUT) {
                    for s in collect(b).into_iter().filter(|s| s.fd == fd && s.timeout.is_some()) {
                        activate(b, s.h, What::TIMEOUT);
                    }
                    return;
                }
                let io = want & (What::READ | What::WRITE | What::CLOSED | What::ET);
                for h in b.inserted_on(fd, false) {
                    let interest = b.events(h).unwrap_or(What::empty());
                    let res = interest & io;
                    if !(res - What::ET).is_empty() {
                        activate(b, h, res);
                    }
                }
            })
        }
    }

    /// Activates the program's events for signal `sig` as if it arrived once.
    fn event_base_active_by_signal(base: *mut CBase, sig: c_int) {
        if base.is_null() || !(0..65).contains(&sig) {
            return;
        }
        // SAFETY: a live base.
        unsafe {
            CBase::with(base, |b| {
                for h in b.inserted_on(sig, true) {
                    activate(b, h, What::SIGNAL);
                }
            })
        }
    }

    /// The base's monotonic time (the loop's cached time during a pass): 0, or -1 for
    /// NULL arguments. Only differences between readings mean anything.
    fn event_gettime_monotonic(base: *mut CBase, tv: *mut libc::timeval) -> c_int {
        if base.is_null() || tv.is_null() {
            return -1;
        }
        // SAFETY: a live base and a writable timeval.
        unsafe {
            let d = CBase::with(base, |b| b.monotonic_now());
            (*tv).tv_sec = d.as_secs() as libc::time_t;
            (*tv).tv_usec = d.subsec_micros() as libc::suseconds_t;
        }
        0
    }
}

capi! {
    /// Internal: checks every invariant of the base (evrs's `verify()`); a broken one is
    /// fatal, as libevent's assertion.
    fn event_base_assert_ok_(base: *mut CBase) {
        if base.is_null() {
            return;
        }
        // SAFETY: a live base.
        if let Err(e) = unsafe { CBase::with(base, |b| b.verify()) } {
            log::err(&format!("event_base_assert_ok_: {e}"));
            std::process::abort();
        }
    }

    /// Internal: as `event_base_assert_ok_` (evrs bases have no lock to skip).
    fn event_base_assert_ok_nolock_(base: *mut CBase) {
        // SAFETY: forwarded contract.
        unsafe { event_base_assert_ok_(base) }
    }
}
