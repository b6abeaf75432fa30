//! Events: the `Event` handle users hold, and the slot the base keeps for each event.
//!
//! Event storage belongs to the base (a slab of [`Slot`]s); users hold a small `Copy` handle
//! with the slot index, a generation and the id of the owning base. A freed slot bumps its
//! generation, so a stale handle is detected and refused (`io::Error`), never dereferenced.
//! Foreign code (the C ABI's 128-byte `struct event`) stores such a handle in its own memory.

use crate::base::EventBase;
use crate::flags::What;

/// A handle to an event registered with an [`EventBase`].
///
/// Handles are plain values (`Copy`): holding one keeps nothing alive, and using one after
/// [`EventBase::free`] returns an error instead of touching freed memory.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Event {
    pub(crate) idx: u32,
    pub(crate) gen: u32,
    pub(crate) base: u32,
}

impl Event {
    /// A compact form for storage in foreign memory (the C ABI). Round-trips through
    /// [`Event::from_raw`].
    pub fn into_raw(self) -> [u32; 3] {
        [self.idx, self.gen, self.base]
    }

    /// Rebuilds a handle from [`Event::into_raw`]. Any bit pattern is safe: a handle that does
    /// not name a live event is refused by every base method.
    pub fn from_raw(raw: [u32; 3]) -> Event {
        Event {
            idx: raw[0],
            gen: raw[1],
            base: raw[2],
        }
    }
}

/// The signature of an event callback: the base (to add, delete, activate or free any event,
/// or stop the loop), the event that fired, and what happened.
pub type Callback = dyn FnMut(&mut EventBase, Event, What);

/// A one-shot callback, as for [`EventBase::once`].
pub type OnceCallback = dyn FnOnce(&mut EventBase, Event, What);

/// Work the base does for itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Internal {
    /// Drain the signal pipe and activate signal events.
    Signals,
    /// Drain the notify eventfd.
    Notify,
    /// `loopexit`'s timer.
    LoopExit,
}

/// A finalizer, as for [`EventBase::finalize`].
pub type FinalizeCallback = dyn FnOnce(&mut EventBase, Event);

/// The callback of a [`SharedBase`](crate::SharedBase) event: runs on the loop thread with
/// the base's lock released, and may be moved between threads, hence `Send`.
pub type SharedCallback = dyn FnMut(&crate::SharedBase, Event, What) + Send;

/// A finalizer of a [`SharedBase`](crate::SharedBase) event (libevent's
/// `event_finalize_callback_fn`: it gets the event, not the base).
pub type SharedFinalizeCallback = dyn FnOnce(Event) + Send;

/// An opaque argument handed back to a [`RawCallback`]: evrs never dereferences it (the C
/// ABI passes the program's `void *arg` through it). Held as an address, so it is `Send`
/// without any `unsafe`; [`as_ptr`](RawArg::as_ptr) gives the pointer back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RawArg(usize);

impl RawArg {
    /// Wraps a pointer (its provenance is exposed, so `as_ptr` may be dereferenced by the
    /// code that made it).
    pub fn from_ptr(p: *mut std::ffi::c_void) -> RawArg {
        RawArg(p.expose_provenance())
    }

    /// The pointer given to [`from_ptr`](RawArg::from_ptr).
    pub fn as_ptr(self) -> *mut std::ffi::c_void {
        std::ptr::with_exposed_provenance_mut(self.0)
    }

    /// A plain number as the argument.
    pub fn from_usize(v: usize) -> RawArg {
        RawArg(v)
    }

    /// The argument as a number.
    pub fn as_usize(self) -> usize {
        self.0
    }
}

/// A callback that is a plain function pointer plus an opaque argument — no allocation per
/// event (libevent's `event_callback_fn` + `void *arg`, what the C ABI maps onto).
pub type RawCallback = fn(&mut EventBase, Event, What, RawArg);

/// [`RawCallback`] for a [`SharedBase`](crate::SharedBase).
pub type SharedRawCallback = fn(&crate::SharedBase, Event, What, RawArg);
