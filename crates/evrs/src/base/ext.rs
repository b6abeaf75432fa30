//! Per-base state of the layers built on an [`EventBase`] (bufferevents, listeners): the
//! base owns it, so it lives exactly as long as the base and is dropped with it, without
//! the base knowing its types (no import cycle: the layers depend on the base, not the other
//! way round). One slot per [`ExtKind`], made on first use.

use super::{EventBase, Local};
use std::any::Any;

/// The layers that keep state in a base.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ExtKind {
    Bufferevents = 0,
    Listeners = 1,
}

const KINDS: usize = 2;

/// The layers' state of one base.
#[derive(Default)]
pub(crate) struct Extensions {
    slots: [Option<Box<dyn Any>>; KINDS],
}

impl EventBase<Local> {
    /// The state of layer `kind`, made with `T::default()` on first use. Each kind is used
    /// with one type only (the layer's own module is the only caller for its kind).
    #[inline]
    pub(crate) fn ext<T: Default + 'static>(&mut self, kind: ExtKind) -> &mut T {
        // (One type check per call: this is on every bufferevent's dispatch path; making
        // the slot is out of line.)
        let slot = &mut self.local.ext.slots[kind as usize];
        if slot.is_none() {
            Self::ext_make::<T>(slot);
        }
        match slot.as_mut().and_then(|b| b.downcast_mut::<T>()) {
            Some(t) => t,
            // Unreachable: each kind is used by one layer, with its one type.
            None => unreachable!("extension slot holds its kind's type"),
        }
    }

    #[cold]
    #[inline(never)]
    fn ext_make<T: Default + 'static>(slot: &mut Option<Box<dyn Any>>) {
        *slot = Some(Box::new(T::default()));
    }

    /// The state of layer `kind` if it was made (and is a `T`).
    pub(crate) fn ext_ref<T: 'static>(&self, kind: ExtKind) -> Option<&T> {
        self.local.ext.slots[kind as usize]
            .as_ref()?
            .downcast_ref::<T>()
    }
}
