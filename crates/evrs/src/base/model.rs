//! The two threading models an [`EventBase`] is built for, as types: which callbacks its
//! events hold. `Local` (the default) holds any closure and is driven by its owner thread;
//! `Shared` holds only `Send` callbacks, so the base inside a [`SharedBase`] is `Send` by
//! construction — no `unsafe impl`.
//!
//! [`SharedBase`]: crate::SharedBase

use super::EventBase;
use crate::event::{
    Callback, FinalizeCallback, OnceCallback, RawArg, RawCallback, SharedCallback,
    SharedFinalizeCallback, SharedRawCallback,
};

mod sealed {
    pub trait Sealed {}
}

/// A threading model of an [`EventBase`]: [`Local`] or [`Shared`]. Sealed.
pub trait Model: sealed::Sealed + Sized + 'static {
    /// What an event's callback slot holds.
    #[doc(hidden)]
    type Handler: HandlerSlot;
    /// Same-thread state (the `LocalHandle` queue), or nothing.
    #[doc(hidden)]
    type Local: Default;
    /// Runs pending finalizers at teardown.
    #[doc(hidden)]
    fn run_finalizers(base: &mut EventBase<Self>);
}

/// The single-owner model (the default): callbacks get `&mut EventBase`.
#[derive(Debug)]
pub enum Local {}

/// The model of the base inside a [`SharedBase`](crate::SharedBase): `Send` callbacks that
/// run with the lock released.
#[derive(Debug)]
pub enum Shared {}

impl sealed::Sealed for Local {}
impl sealed::Sealed for Shared {}

/// A callback slot's contents (cache hints for the loop).
#[doc(hidden)]
pub trait HandlerSlot {
    /// Address of the callback's state, to hint into the cache before it runs.
    fn hint(&self) -> Option<usize>;

    /// Is this the marker a closure leaves in its slot while the loop calls it?
    fn is_running_marker(&self) -> bool {
        false
    }
}

/// A callback of a [`Local`] base.
#[doc(hidden)]
pub struct LocalHandler(pub(crate) LocalKind);

pub(crate) enum LocalKind {
    /// A closure. The loop takes it out for a call and leaves [`Running`](Self::Running) in
    /// its place: the callback may free or re-assign its own event meanwhile (which replaces
    /// the marker), and the closure goes back only if the marker is still there.
    Fn(Box<Callback>),
    /// The closure of this slot is being called (it is out of the table); see `Fn`.
    Running,
    Once(Box<OnceCallback>),
    Raw(RawCallback, RawArg),
    /// A pending finalizer; `true` frees the event after it runs.
    Finalize(Box<FinalizeCallback>, bool),
}

/// A callback of a [`Shared`] base.
#[doc(hidden)]
pub struct SharedHandler(pub(crate) SharedKind);

pub(crate) enum SharedKind {
    Fn(Box<SharedCallback>),
    Raw(SharedRawCallback, RawArg),
    Finalize(Box<SharedFinalizeCallback>, bool),
}

impl HandlerSlot for LocalHandler {
    #[inline]
    fn hint(&self) -> Option<usize> {
        match &self.0 {
            LocalKind::Fn(f) => Some(&**f as *const Callback as *const u8 as usize),
            _ => None,
        }
    }

    #[inline]
    fn is_running_marker(&self) -> bool {
        matches!(self.0, LocalKind::Running)
    }
}

impl HandlerSlot for SharedHandler {
    #[inline]
    fn hint(&self) -> Option<usize> {
        match &self.0 {
            SharedKind::Fn(f) => Some(&**f as *const SharedCallback as *const u8 as usize),
            _ => None,
        }
    }
}

impl Model for Local {
    type Handler = LocalHandler;
    type Local = super::local::LocalState;

    fn run_finalizers(base: &mut EventBase<Local>) {
        // Until none is left: a finalizer may finalize other events (libevent loops too).
        loop {
            let mut ran = false;
            for idx in base.core.finalizing() {
                let Some(LocalHandler(LocalKind::Finalize(f, free))) = base.handlers.take(idx)
                else {
                    continue;
                };
                ran = true;
                base.core.end_finalize(idx);
                let ev = base.core.event_at(idx);
                f(base, ev);
                if free && base.core.index(ev).is_ok() {
                    base.free_idx(idx);
                }
            }
            if !ran {
                break;
            }
        }
    }
}

impl Model for Shared {
    type Handler = SharedHandler;
    type Local = ();

    fn run_finalizers(base: &mut EventBase<Shared>) {
        // Until none is left: a finalizer may finalize other events (libevent loops too).
        loop {
            let mut ran = false;
            for idx in base.core.finalizing() {
                let Some(SharedHandler(SharedKind::Finalize(f, free))) = base.handlers.take(idx)
                else {
                    continue;
                };
                ran = true;
                base.core.end_finalize(idx);
                let ev = base.core.event_at(idx);
                f(ev);
                if free && base.core.index(ev).is_ok() {
                    base.free_idx(idx);
                }
            }
            if !ran {
                break;
            }
        }
    }
}

/// The callbacks of a base, by slot index (parallel to the event table).
pub(crate) struct Handlers<H> {
    v: Vec<Option<H>>,
    growth: crate::reactor::Growth,
}

impl Handlers<LocalHandler> {
    /// Takes the closure of `idx` out for a call, if it is a plain one, leaving the running
    /// marker in its place.
    #[inline(always)]
    pub(crate) fn start_call(&mut self, idx: usize) -> Option<Box<Callback>> {
        let Some(Some(LocalHandler(k @ LocalKind::Fn(_)))) = self.v.get_mut(idx) else {
            return None;
        };
        match std::mem::replace(k, LocalKind::Running) {
            LocalKind::Fn(f) => Some(f),
            // (`k` was just matched as a closure.)
            other => {
                *k = other;
                None
            }
        }
    }

    /// The call of `idx`'s closure `f` returned: `f` goes back if the marker is still there
    /// (the event was not freed, re-assigned or finalized meanwhile); otherwise it is
    /// dropped.
    #[inline(always)]
    pub(crate) fn end_call(&mut self, idx: usize, f: Box<Callback>) {
        match self.v.get_mut(idx) {
            Some(Some(LocalHandler(k @ LocalKind::Running))) => {
                // The marker owns nothing: no drop to run.
                std::mem::forget(std::mem::replace(k, LocalKind::Fn(f)));
            }
            _ => drop_replaced(f),
        }
    }

    /// Copies the raw callback of `idx` out for a call (a function pointer and an argument:
    /// nothing to move or drop), leaving the running marker in its place, as for a closure.
    #[inline(always)]
    pub(crate) fn start_raw(&mut self, idx: usize) -> Option<(RawCallback, RawArg)> {
        let Some(Some(LocalHandler(k))) = self.v.get_mut(idx) else {
            return None;
        };
        let LocalKind::Raw(cb, arg) = k else {
            return None;
        };
        let (cb, arg) = (*cb, *arg);
        // A raw callback owns nothing: no drop to run.
        std::mem::forget(std::mem::replace(k, LocalKind::Running));
        Some((cb, arg))
    }

    /// The call of `idx`'s raw callback returned: it goes back if the marker is still there
    /// (see [`end_call`](Self::end_call)); otherwise there is nothing to drop.
    #[inline(always)]
    pub(crate) fn end_raw(&mut self, idx: usize, cb: RawCallback, arg: RawArg) {
        if let Some(Some(LocalHandler(k @ LocalKind::Running))) = self.v.get_mut(idx) {
            std::mem::forget(std::mem::replace(k, LocalKind::Raw(cb, arg)));
        }
    }
}

/// Drops a closure whose event was freed, re-assigned or finalized during its call (out of
/// line: its destructor may be large).
#[cold]
#[inline(never)]
fn drop_replaced(f: Box<Callback>) {
    drop(f);
}

/// Wraps a closure for a [`Local`] base's callback slot.
pub(crate) fn local_fn<F>(cb: F) -> LocalHandler
where
    F: FnMut(&mut EventBase, crate::Event, crate::flags::What) + 'static,
{
    LocalHandler(LocalKind::Fn(Box::new(cb)))
}

impl<H: HandlerSlot> Handlers<H> {
    pub(crate) fn new(growth: crate::reactor::Growth) -> Self {
        Handlers {
            v: Vec::new(),
            growth,
        }
    }

    /// Callbacks the table has room for without growing.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.v.capacity()
    }

    /// Room for callbacks up to slot `len` without growing.
    pub(crate) fn reserve_to(&mut self, len: usize) {
        self.v.reserve_exact(len.saturating_sub(self.v.len()));
    }

    /// Stores `h` for `idx`, returning what was there.
    #[inline]
    pub(crate) fn put(&mut self, idx: usize, h: H) -> Option<H> {
        // A new slot is always the next index: one push, not a resize.
        if idx == self.v.len() {
            crate::reactor::reserve_one(&mut self.v, self.growth);
            self.v.push(Some(h));
            return None;
        }
        if idx > self.v.len() {
            self.v.resize_with(idx + 1, || None);
        }
        self.v[idx].replace(h)
    }

    /// Stores `h` for a fresh slot `idx`, which has no callback (a new slot is the next
    /// index; a reused one's callback was taken when it was freed).
    #[inline]
    pub(crate) fn put_new(&mut self, idx: usize, h: H) {
        if idx == self.v.len() {
            crate::reactor::reserve_one(&mut self.v, self.growth);
            self.v.push(Some(h));
        } else if let Some(s @ None) = self.v.get_mut(idx) {
            *s = Some(h);
        } else {
            // (Not reached: the table hands out the next index or a freed one.)
            let old = self.put(idx, h);
            debug_assert!(old.is_none());
            drop(old);
        }
    }

    #[inline]
    pub(crate) fn take(&mut self, idx: usize) -> Option<H> {
        self.v.get_mut(idx).and_then(Option::take)
    }

    /// Puts a callback back after it ran, unless another was stored meanwhile.
    #[inline]
    pub(crate) fn put_back(&mut self, idx: usize, h: H) -> Option<H> {
        match &mut self.v[idx] {
            s @ None => {
                *s = Some(h);
                None
            }
            Some(_) => Some(h),
        }
    }

    /// After a callback of `idx` unwound: is its callback gone — taken out for the call and
    /// lost (the slot is empty or holds the running marker)? Not if the event was
    /// re-assigned a new callback meanwhile.
    pub(crate) fn lost_by_unwind(&mut self, idx: usize) -> bool {
        match self.v.get(idx).and_then(Option::as_ref) {
            None => true,
            Some(h) => h.is_running_marker(),
        }
    }

    /// Drops every callback (teardown).
    pub(crate) fn clear(&mut self) {
        let v = std::mem::take(&mut self.v);
        drop(v);
    }
}
