//! Events: the `Event` handle users hold, and the slot the base keeps for each event.
//!
//! Event storage belongs to the base (a slab of [`Slot`]s); users hold a small `Copy` handle
//! with the slot index, a generation and the id of the owning base. A freed slot bumps its
//! generation, so a stale handle is detected and refused (`io::Error`), never dereferenced.
//! Foreign code (the C ABI's 128-byte `struct event`) stores such a handle in its own memory.

use crate::base::EventBase;
use crate::flags::What;
use std::os::unix::io::RawFd;

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

pub(crate) enum Handler {
    Fn(Box<Callback>),
    /// A shared base's callback (never run by `EventBase::run`: only `SharedBase::run`
    /// takes it out and calls it without the lock).
    Shared(Box<SharedCallback>),
    /// A shared base's pending finalizer; `true` frees the event after it runs.
    SharedFinalize(Box<SharedFinalizeCallback>, bool),
    Once(Box<OnceCallback>),
    Internal(Internal),
    /// A pending finalizer; `true` frees the event after it runs.
    Finalize(Box<FinalizeCallback>, bool),
}

pub(crate) const NIL: u32 = u32::MAX;

/// State bits of a slot.
pub(crate) mod state {
    /// Registered for I/O or a signal.
    pub(crate) const INSERTED: u8 = 0x01;
    /// On an active queue.
    pub(crate) const ACTIVE: u8 = 0x02;
    /// On the active-later queue.
    pub(crate) const ACTIVE_LATER: u8 = 0x04;
    /// Has a pending timeout.
    pub(crate) const TIMEOUT: u8 = 0x08;
    /// Being finalized: adds fail, activations are ignored.
    pub(crate) const FINALIZING: u8 = 0x10;
    /// Owned by the base; does not keep the loop alive or count as user work.
    pub(crate) const INTERNAL: u8 = 0x20;
}

pub(crate) struct Slot {
    pub(crate) gen: u32,
    pub(crate) live: bool,
    pub(crate) fd: RawFd,
    pub(crate) events: What,
    pub(crate) pri: u8,
    pub(crate) state: u8,
    pub(crate) res: What,
    pub(crate) ncalls: u16,
    pub(crate) handler: Option<Handler>,
    /// Links in the per-fd (or per-signal) list.
    pub(crate) io_prev: u32,
    pub(crate) io_next: u32,
    /// Links in an active queue.
    pub(crate) act_prev: u32,
    pub(crate) act_next: u32,
    /// Timer wheel key, or NIL.
    pub(crate) timer: u32,
    /// Last deadline set (ns, base clock); kept after expiry for persistent re-arming.
    pub(crate) deadline: u64,
    /// Persistent timeout interval (ns).
    pub(crate) interval: Option<u64>,
}

impl Slot {
    pub(crate) fn vacant() -> Slot {
        Slot {
            gen: 0,
            live: false,
            fd: -1,
            events: What::empty(),
            pri: 0,
            state: 0,
            res: What::empty(),
            ncalls: 0,
            handler: None,
            io_prev: NIL,
            io_next: NIL,
            act_prev: NIL,
            act_next: NIL,
            timer: NIL,
            deadline: 0,
            interval: None,
        }
    }

    #[inline]
    pub(crate) fn has(&self, bits: u8) -> bool {
        self.state & bits != 0
    }

    #[inline]
    pub(crate) fn internal(&self) -> bool {
        self.has(state::INTERNAL)
    }
}
