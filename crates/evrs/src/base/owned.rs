//! Caller-owned event identities, for the C ABI: a C program's `struct event` lives in its
//! own memory (stack, heap, inside its structs) and is never freed by the library. The C layer
//! names such an event by the address of that memory; assigning the same memory again
//! releases the slot it named before, and the base releases every slot when it goes away.

use super::model::{LocalHandler, LocalKind};
use super::{EventBase, Local, Model};
use crate::event::{Event, RawArg, RawCallback};
use crate::flags::What;
use crate::reactor::Kind;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::os::unix::io::RawFd;

/// Hashes a memory address: one multiply (Fibonacci hashing), high half folded down. The keys are addresses of distinct live objects, chosen by the
/// program's allocator, not by an adversary, so SipHash's protection buys nothing here and
/// cost ~300 instructions per event created and freed through the C ABI.
#[derive(Default)]
pub struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_usize(&mut self, addr: usize) {
        // The product's high half folded down: the table indexes by the low bits.
        let h = (addr as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = h ^ (h >> 32);
    }
}

/// Owner address → slot.
#[derive(Default)]
pub(crate) struct Owned {
    by_addr: HashMap<usize, Event, BuildHasherDefault<AddrHasher>>,
}

impl Owned {
    pub(crate) fn forget_slot(&mut self, owner: usize) {
        if owner != 0 {
            self.by_addr.remove(&owner);
        }
    }
}

impl<M: Model> EventBase<M> {
    /// The event that the caller-owned memory at `owner` names, if any.
    pub fn owned_event(&self, owner: usize) -> Option<Event> {
        self.owned
            .by_addr
            .get(&owner)
            .copied()
            .filter(|&ev| self.is_initialized(ev))
    }

    /// Drops the event that `owner` names, if any (deleting it first): the memory is about
    /// to be re-used or released (libevent's `event_debug_unassign`).
    pub fn release_owned(&mut self, owner: usize) {
        if let Some(ev) = self.owned.by_addr.remove(&owner) {
            if let Ok(idx) = self.core.index(ev) {
                self.free_idx(idx);
            }
        }
    }

    /// The caller-owned address that names `ev` (see [`assign_owned`](EventBase::assign_owned)),
    /// or `None` for an event the base made itself or a stale handle.
    pub fn owner_of(&self, ev: Event) -> Option<usize> {
        let idx = self.core.index(ev).ok()?;
        Some(self.core.owner(idx)).filter(|&o| o != 0)
    }

    /// libevent's `ev_flags` view of an event (its `EVLIST_*` bits, which the C ABI keeps in
    /// a `struct event`): `EVLIST_TIMEOUT` 0x01, `INSERTED` 0x02, `ACTIVE` 0x08, `INTERNAL`
    /// 0x10, `ACTIVE_LATER` 0x20, `FINALIZING` 0x40, and `INIT` 0x80 for every live event.
    /// A stale handle gives 0.
    pub fn list_flags(&self, ev: Event) -> u16 {
        use crate::reactor::state;
        let Ok(idx) = self.core.index(ev) else {
            return 0;
        };
        let s = self.core.state_of(idx);
        let mut f = 0x80;
        for (bit, flag) in [
            (state::TIMEOUT, 0x01),
            (state::INSERTED, 0x02),
            (state::ACTIVE, 0x08),
            (state::INTERNAL, 0x10),
            (state::ACTIVE_LATER, 0x20),
            (state::FINALIZING, 0x40),
        ] {
            if s & bit != 0 {
                f |= flag;
            }
        }
        f
    }

    /// The events registered on `fd` (or, with `signal`, on signal number `fd`), in the
    /// order a readiness report activates them (most recently added first), for the C
    /// ABI's `event_base_active_by_fd` / `_by_signal`, which must fire them as the
    /// backend would.
    pub fn inserted_on(&self, fd: RawFd, signal: bool) -> Vec<Event> {
        use crate::reactor::io_table::List;
        use crate::reactor::state;
        let t = self.core.table();
        let members: Vec<usize> = t
            .live()
            .filter(|(_, s)| {
                s.has(state::INSERTED)
                    && s.fd() == fd
                    && s.events().contains(What::SIGNAL) == signal
                    && matches!(s.kind(), Kind::Event)
            })
            .map(|(idx, _)| idx)
            .collect();
        // Each fd's (and signal's) events form one list: its head is the member no other
        // member points to.
        let nexts: Vec<usize> = members.iter().filter_map(|&i| List::next(t, i)).collect();
        let mut order = Vec::with_capacity(members.len());
        let mut cur = members.iter().copied().find(|i| !nexts.contains(i));
        while let Some(idx) = cur {
            if order.len() == members.len() {
                break;
            }
            order.push(t.event_at(idx));
            cur = List::next(t, idx);
        }
        order
    }

    /// The base's monotonic "now" as libevent's `event_gettime_monotonic` gives it: the
    /// loop's cached time while it runs a pass, a fresh reading otherwise. Only
    /// differences between two readings mean anything.
    pub fn monotonic_now(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.core.cached().unwrap_or_else(|| self.core.now()))
    }

    fn bind_owner(&mut self, owner: usize, ev: Event) {
        if let Ok(idx) = self.core.index(ev) {
            self.core.set_owner(idx, owner);
            self.owned.by_addr.insert(owner, ev);
        }
    }
}

impl EventBase<Local> {
    /// libevent's `event_assign` on caller-owned memory at address `owner` (non-zero): an
    /// event with a raw callback that the memory names from now on. If the memory named an
    /// event already, that event is deleted and released first — whatever state the C
    /// program left it in — so re-assigning a `struct event` never leaks a slot or lets the
    /// old callback run.
    pub fn assign_owned(
        &mut self,
        owner: usize,
        fd: RawFd,
        events: What,
        cb: RawCallback,
        arg: RawArg,
    ) -> io::Result<Event> {
        if owner == 0 {
            return Err(crate::reactor::invalid(
                "caller-owned event memory at address 0",
            ));
        }
        self.release_owned(owner);
        let ev = self.alloc_with(
            Kind::Event,
            fd,
            events,
            LocalHandler(LocalKind::Raw(cb, arg)),
        )?;
        self.bind_owner(owner, ev);
        Ok(ev)
    }
}
