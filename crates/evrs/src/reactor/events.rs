//! The event table: one slot per event, the free list, generations, and the state bits with
//! every transition between them — the only place that changes a slot's state, so the
//! active/added counters can never drift from the bits they count.
//!
//! A slot's intrusive links belong to the parts that link through them (the fd/signal lists,
//! the active queues): their fields are private to those modules, the table only stores them.

use super::io_table::IoLink;
use super::queue::ActLink;
use crate::event::{Event, Internal};
use crate::flags::What;
use std::io;
use std::os::unix::io::RawFd;

pub(crate) const NIL: u32 = u32::MAX;

/// State bits of a slot.
pub(crate) mod state {
    /// Registered for I/O, a signal, or (hooks) on its hook list.
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
    /// Needs work before its callback, or is not a plain closure call: not persistent, a
    /// signal, a persistent timeout to re-arm, or not a user event (hooks, internal). Kept
    /// by [`EventTable::alloc`](super::EventTable::alloc) and `Slot::set_interval` whenever
    /// the kind, interest or interval changes, so the loop's common case is one bit test.
    pub(crate) const SPECIAL: u8 = 0x40;
    /// Either active bit.
    pub(crate) const ANY_ACTIVE: u8 = ACTIVE | ACTIVE_LATER;
    /// Any of these bits: not the loop's plain case (see [`SPECIAL`]).
    pub(crate) const NOT_PLAIN: u8 = SPECIAL | FINALIZING | INTERNAL;
}

/// What an event is, as far as the loop is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// fd readiness, timeout, signal or user activation: the classic libevent event.
    Event,
    /// A loop phase hook (prepare / check / idle).
    Hook(HookKind),
    /// Work the base does for itself.
    Internal(Internal),
}

/// The loop phase a hook runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HookKind {
    Prepare = 0,
    Check = 1,
    Idle = 2,
}

/// One event's record: exactly one cache line, so a prefetch of the next event's slot is a
/// single hint (cold data, such as the C ABI's owner address, lives beside the table).
#[repr(align(64))]
pub(crate) struct Slot {
    gen: u32,
    live: bool,
    state: u8,
    pub(super) kind: Kind,
    pub(super) fd: RawFd,
    pub(super) events: What,
    pub(super) pri: u8,
    pub(super) res: What,
    pub(super) ncalls: u16,
    pub(super) io: IoLink,
    pub(super) act: ActLink,
    /// Last deadline set (ns, base clock); kept after expiry for persistent re-arming.
    pub(super) deadline: u64,
    /// Persistent timeout interval (ns); 0 for none.
    pub(super) interval: u64,
    /// Where the event's callback keeps its state (0: unknown): the loop hints it into the
    /// cache before the callback runs. An address only, never dereferenced.
    pub(super) hint: usize,
}

impl Slot {
    fn vacant() -> Slot {
        Slot {
            gen: 0,
            live: false,
            state: 0,
            kind: Kind::Event,
            fd: -1,
            events: What::empty(),
            pri: 0,
            res: What::empty(),
            ncalls: 0,
            io: IoLink::default(),
            act: ActLink::default(),
            deadline: 0,
            interval: 0,
            hint: 0,
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

    pub(crate) fn is_live(&self) -> bool {
        self.live
    }

    pub(crate) fn gen(&self) -> u32 {
        self.gen
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.fd
    }

    pub(crate) fn events(&self) -> What {
        self.events
    }

    pub(crate) fn priority(&self) -> usize {
        self.pri as usize
    }

    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }

    /// Where the callback keeps its state (0: unknown), for tests.
    #[cfg(test)]
    pub(crate) fn hint(&self) -> usize {
        self.hint
    }

    /// Is it [`state::SPECIAL`], judged from its kind, interest and interval?
    fn is_special(&self) -> bool {
        is_special(self.kind, self.events, self.interval)
    }

    /// Sets [`state::SPECIAL`] from the kind, interest and interval.
    #[inline]
    fn refresh_special(&mut self) {
        if self.is_special() {
            self.state |= state::SPECIAL;
        } else {
            self.state &= !state::SPECIAL;
        }
    }

    /// Sets the persistent timeout interval (ns; 0 for none), keeping [`state::SPECIAL`].
    /// Out of line: `add` with a timeout is the timers' hot path, which this rarely takes.
    #[inline(never)]
    pub(super) fn set_interval(&mut self, iv: u64) {
        self.interval = iv;
        self.refresh_special();
    }

    /// The state bits (for the loop's plain-case test).
    #[inline]
    pub(crate) fn state(&self) -> u8 {
        self.state
    }

    pub(crate) fn res(&self) -> What {
        self.res
    }
}

/// Does a slot of this kind, interest and interval need [`state::SPECIAL`]?
#[inline]
fn is_special(kind: Kind, events: What, interval: u64) -> bool {
    kind != Kind::Event || events & (What::PERSIST | What::SIGNAL) != What::PERSIST || interval != 0
}

#[cold]
fn too_many_events() -> io::Error {
    io::Error::new(io::ErrorKind::OutOfMemory, "too many events")
}

/// The slots plus the counts derived from their state bits.
pub(crate) struct EventTable {
    base: u32,
    slots: Vec<Slot>,
    growth: super::Growth,
    free: Vec<u32>,
    /// Events on an active or active-later queue.
    n_active: usize,
    /// User events' memberships: INSERTED and TIMEOUT count once each.
    n_added: usize,
    /// Slots being finalized (so base teardown looks for them only if there are any).
    n_finalizing: usize,
    max_active: usize,
    max_added: usize,
    /// Slots whose generation is exhausted: never handed out again.
    retired: usize,
    /// Per slot, the address of caller-owned memory that names its event (the C ABI's
    /// `struct event`), or 0; grown only when an owner is first recorded.
    owners: Vec<usize>,
    /// Per slot, the last completion delivered to its event (result, flags); grown only when
    /// a completion-based backend delivers one.
    completions: Vec<(i32, u32)>,
}

const _: () = assert!(std::mem::size_of::<Slot>() == 64);

impl EventTable {
    /// Slots the table has room for without growing.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.slots.capacity()
    }

    pub(crate) fn growth(&self) -> super::Growth {
        self.growth
    }

    pub(crate) fn new(base: u32, growth: super::Growth) -> EventTable {
        EventTable {
            base,
            slots: Vec::new(),
            growth,
            free: Vec::new(),
            n_active: 0,
            n_added: 0,
            n_finalizing: 0,
            max_active: 0,
            max_added: 0,
            retired: 0,
            owners: Vec::new(),
            completions: Vec::new(),
        }
    }

    /// Stores the completion (result, flags) delivered to slot `idx`.
    pub(super) fn set_completion(&mut self, idx: usize, c: (i32, u32)) {
        if idx >= self.completions.len() {
            self.completions.resize(idx + 1, (0, 0));
        }
        self.completions[idx] = c;
    }

    /// The last completion delivered to slot `idx` ((0, 0) if none).
    #[cfg(test)]
    pub(super) fn completion(&self, idx: usize) -> (i32, u32) {
        self.completions.get(idx).copied().unwrap_or((0, 0))
    }

    /// Records (or, with 0, clears) the caller-owned memory naming slot `idx`.
    #[inline]
    pub(super) fn set_owner(&mut self, idx: usize, owner: usize) {
        if let Some(o) = self.owners.get_mut(idx) {
            *o = owner;
        } else if owner != 0 {
            self.owners.resize(idx + 1, 0);
            self.owners[idx] = owner;
        }
    }

    /// The caller-owned memory naming slot `idx`, or 0.
    pub(super) fn owner(&self, idx: usize) -> usize {
        self.owners.get(idx).copied().unwrap_or(0)
    }

    pub(crate) fn base_id(&self) -> u32 {
        self.base
    }

    /// Validates a handle, returning its slot index.
    #[inline]
    pub(crate) fn index(&self, ev: Event) -> io::Result<usize> {
        if ev.base != self.base {
            return Err(invalid(
                "event belongs to another event base (each event lives in exactly one base)",
            ));
        }
        match self.slots.get(ev.idx as usize) {
            Some(s) if s.live && s.gen == ev.gen => Ok(ev.idx as usize),
            _ => Err(invalid("stale event handle: the event was freed")),
        }
    }

    /// Is (idx, gen) still the same live event?
    #[inline]
    pub(crate) fn same(&self, idx: usize, gen: u32) -> bool {
        let s = &self.slots[idx];
        s.live && s.gen == gen
    }

    #[inline]
    pub(crate) fn event_at(&self, idx: usize) -> Event {
        Event {
            idx: idx as u32,
            gen: self.slots[idx].gen,
            base: self.base,
        }
    }

    /// Slot `idx` if the table has it.
    #[inline]
    pub(crate) fn try_get(&self, idx: usize) -> Option<&Slot> {
        self.slots.get(idx)
    }

    #[inline]
    pub(crate) fn get(&self, idx: usize) -> &Slot {
        &self.slots[idx]
    }

    #[inline]
    pub(super) fn get_mut(&mut self, idx: usize) -> &mut Slot {
        &mut self.slots[idx]
    }

    /// Room for `additional` more events without growing (free slots count as room).
    pub(super) fn reserve(&mut self, additional: usize) {
        let more = additional.saturating_sub(self.free.len());
        self.slots.reserve_exact(more);
        // Freeing them again must not grow the free list either.
        let all = self.slots.capacity();
        self.free.reserve_exact(all.saturating_sub(self.free.len()));
    }

    /// A fresh slot for an event (links clear, state empty but for INTERNAL and SPECIAL,
    /// which follow from the kind and interest), with the cache hint `hint`; returns it
    /// with its generation.
    #[inline]
    pub(super) fn alloc(
        &mut self,
        kind: Kind,
        fd: RawFd,
        events: What,
        pri: u8,
        hint: usize,
    ) -> io::Result<(usize, u32)> {
        let mut state = if matches!(kind, Kind::Internal(_)) {
            state::INTERNAL
        } else {
            0
        };
        if is_special(kind, events, 0) {
            state |= state::SPECIAL;
        }
        let Some(i) = self.free.pop() else {
            // A new slot, written once.
            if self.slots.len() >= NIL as usize - 1 {
                return Err(too_many_events());
            }
            super::reserve_one(&mut self.slots, self.growth);
            self.slots.push(Slot {
                live: true,
                state,
                kind,
                fd,
                events,
                pri,
                hint,
                ..Slot::vacant()
            });
            return Ok((self.slots.len() - 1, 0));
        };
        let idx = i as usize;
        let s = &mut self.slots[idx];
        s.live = true;
        s.kind = kind;
        s.fd = fd;
        s.events = events;
        s.pri = pri;
        s.state = state;
        s.res = What::empty();
        s.ncalls = 0;
        s.interval = 0;
        s.deadline = 0;
        s.hint = hint;
        let gen = s.gen;
        self.set_owner(idx, 0);
        if let Some(c) = self.completions.get_mut(idx) {
            *c = (0, 0);
        }
        Ok((idx, gen))
    }

    /// Frees a slot whose memberships are all gone. The generation moves on, so every handle
    /// to it goes stale; a slot whose generation would wrap is retired instead of reused (a
    /// wrapped generation would make a 2³²-frees-old handle valid again).
    pub(super) fn release(&mut self, idx: usize) {
        self.set_owner(idx, 0);
        let s = &mut self.slots[idx];
        debug_assert_eq!(
            // (A slot freed while finalizing keeps that bit: counted out below.)
            s.state & !(state::INTERNAL | state::SPECIAL | state::FINALIZING),
            0,
            "released with memberships"
        );
        if s.has(state::FINALIZING) {
            self.n_finalizing -= 1;
        }
        s.live = false;
        s.state = 0;
        s.hint = 0;
        match s.gen.checked_add(1) {
            Some(g) => {
                s.gen = g;
                self.free.push(idx as u32);
            }
            None => self.retired += 1,
        }
    }

    /// Sets or clears INSERTED or TIMEOUT, keeping the added-events counter right.
    #[inline]
    pub(super) fn set_pending_bit(&mut self, idx: usize, bit: u8, on: bool) {
        debug_assert!(bit == state::INSERTED || bit == state::TIMEOUT);
        let s = &mut self.slots[idx];
        if (s.state & bit != 0) == on {
            return;
        }
        s.state ^= bit;
        if !s.internal() {
            if on {
                self.n_added += 1;
                self.max_added = self.max_added.max(self.n_added);
            } else {
                self.n_added -= 1;
            }
        }
    }

    /// A staged timer of `idx` settled on deadline `at`.
    #[inline]
    pub(super) fn set_deadline(&mut self, idx: usize, at: u64) {
        self.slots[idx].deadline = at;
    }

    /// The slot's timer was (re)set to `at` (filed under the slot's index; 0 while staged):
    /// the slot records both and gains TIMEOUT (with the added-events counter), in one slot
    /// access.
    #[inline]
    pub(super) fn set_timer(&mut self, idx: usize, at: u64) {
        let s = &mut self.slots[idx];
        s.deadline = at;
        if s.has(state::TIMEOUT) {
            return;
        }
        s.state |= state::TIMEOUT;
        if !s.internal() {
            self.n_added += 1;
            self.max_added = self.max_added.max(self.n_added);
        }
    }

    /// The slot joins an active queue (`later`: the active-later one) with `link`: its
    /// link and state bit change together, with the count (one slot access).
    #[inline]
    pub(super) fn enqueue(&mut self, idx: usize, link: ActLink, later: bool) {
        let s = &mut self.slots[idx];
        debug_assert!(!s.has(state::ANY_ACTIVE));
        s.act = link;
        s.state |= if later {
            state::ACTIVE_LATER
        } else {
            state::ACTIVE
        };
        self.n_active += 1;
        if self.n_active > self.max_active {
            self.max_active = self.n_active;
        }
    }

    /// The slot joins a priority queue with `link`, without the high-water mark (see
    /// [`note_active_peak`](Self::note_active_peak)).
    #[inline]
    pub(super) fn enqueue_unpeaked(&mut self, idx: usize, link: ActLink) {
        let s = &mut self.slots[idx];
        debug_assert!(!s.has(state::ANY_ACTIVE));
        s.act = link;
        s.state |= state::ACTIVE;
        self.n_active += 1;
    }

    /// Activation of a quiet slot (neither active nor finalizing) with `what`: `push`
    /// appends it to its priority's queue (given the priority) and returns its link, or
    /// `None` if that needs more (then nothing changed). Without the high-water mark (see
    /// [`note_active_peak`](Self::note_active_peak)). One slot access; false if the slot is
    /// not quiet or `push` declined.
    #[inline(always)]
    pub(super) fn activate_quiet(
        &mut self,
        idx: usize,
        what: What,
        push: impl FnOnce(usize) -> Option<ActLink>,
    ) -> bool {
        let s = &mut self.slots[idx];
        if s.has(state::FINALIZING | state::ANY_ACTIVE) {
            return false;
        }
        let Some(link) = push(s.pri as usize) else {
            return false;
        };
        s.res = what;
        s.act = link;
        s.state |= state::ACTIVE;
        self.n_active += 1;
        true
    }

    /// Expiry of the timer of a quiet user slot (neither active, finalizing, internal nor a
    /// signal event): its TIMEOUT bit goes (the timer already left the wheel)
    /// and it joins its priority's queue through `push` with `TIMEOUT`, as
    /// [`activate_quiet`](Self::activate_quiet) does — one slot access for what
    /// `set_pending_bit` plus an activation would do. False (nothing changed) if the slot
    /// is not such a slot or `push` declined.
    #[inline(always)]
    pub(super) fn expire_quiet(
        &mut self,
        idx: usize,
        push: impl FnOnce(usize) -> Option<ActLink>,
    ) -> bool {
        let s = &mut self.slots[idx];
        if s.has(state::FINALIZING | state::ANY_ACTIVE | state::INTERNAL)
            || s.events.contains(What::SIGNAL)
        {
            return false;
        }
        debug_assert!(s.has(state::TIMEOUT));
        let Some(link) = push(s.pri as usize) else {
            return false;
        };
        s.res = What::TIMEOUT;
        s.act = link;
        s.state = (s.state & !state::TIMEOUT) | state::ACTIVE;
        self.n_added -= 1;
        self.n_active += 1;
        true
    }

    /// After a batch of [`enqueue_unpeaked`](Self::enqueue_unpeaked) (which only added):
    /// the high-water mark of active events catches up.
    #[inline]
    pub(super) fn note_active_peak(&mut self) {
        if self.n_active > self.max_active {
            self.max_active = self.n_active;
        }
    }

    /// The slot leaves its active queue: its link is cleared (the old one returned), its
    /// active bit and the count drop (one slot access).
    #[inline]
    pub(super) fn dequeue(&mut self, idx: usize) -> ActLink {
        let s = &mut self.slots[idx];
        let link = std::mem::take(&mut s.act);
        if s.state & state::ANY_ACTIVE != 0 {
            s.state &= !state::ANY_ACTIVE;
            self.n_active -= 1;
        }
        link
    }

    /// The slot was just taken off its priority queue by a pop (so it is ACTIVE): its
    /// active bit and the count drop (its stale position is never read again: only a queued
    /// slot's is). Returns the slot, for the loop's look at it.
    #[inline]
    pub(super) fn dequeue_popped(&mut self, idx: usize) -> &Slot {
        let s = &mut self.slots[idx];
        debug_assert!(s.has(state::ACTIVE), "popped slot {idx} is not active");
        s.state &= !state::ANY_ACTIVE;
        self.n_active -= 1;
        s
    }

    /// Sets an active bit (and the count) without linking: for tests that corrupt a base.
    #[cfg(test)]
    pub(super) fn mark_active(&mut self, idx: usize, later: bool) {
        let link = self.slots[idx].act;
        self.enqueue(idx, link, later);
    }

    /// The slot left its active queue (its link already handled).
    #[cfg(test)]
    pub(super) fn mark_inactive(&mut self, idx: usize) {
        let s = &mut self.slots[idx];
        if s.state & state::ANY_ACTIVE != 0 {
            s.state &= !state::ANY_ACTIVE;
            self.n_active -= 1;
        }
    }

    /// Enters or leaves finalization.
    pub(super) fn set_finalizing(&mut self, idx: usize, on: bool) {
        let s = &mut self.slots[idx];
        if s.has(state::FINALIZING) == on {
            return;
        }
        if on {
            s.state |= state::FINALIZING;
            self.n_finalizing += 1;
        } else {
            s.state &= !state::FINALIZING;
            self.n_finalizing -= 1;
        }
    }

    /// Events being finalized (the FINALIZING bits).
    pub(crate) fn n_finalizing(&self) -> usize {
        self.n_finalizing
    }

    /// Makes an internal event count like a user event (the loopexit timer).
    pub(super) fn clear_internal(&mut self, idx: usize) {
        let s = &mut self.slots[idx];
        debug_assert_eq!(s.state & !state::SPECIAL, state::INTERNAL);
        s.state &= !state::INTERNAL;
    }

    pub(crate) fn n_active(&self) -> usize {
        self.n_active
    }

    pub(crate) fn n_added(&self) -> usize {
        self.n_added
    }

    /// High-water marks (active, added); `clear` resets them to the current values.
    /// The high-water marks (active, added); `clear` resets each one it names (active,
    /// added) to the current count.
    pub(super) fn max_counts(&mut self, clear: (bool, bool)) -> (usize, usize) {
        let m = (self.max_active, self.max_added);
        if clear.0 {
            self.max_active = self.n_active;
        }
        if clear.1 {
            self.max_added = self.n_added;
        }
        m
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Every live slot with its index.
    pub(crate) fn live(&self) -> impl Iterator<Item = (usize, &Slot)> {
        self.slots.iter().enumerate().filter(|(_, s)| s.live)
    }

    /// Counts recomputed from the bits, and the free list's consistency (for `verify`).
    pub(super) fn check(&self) -> Result<(), String> {
        let mut active = 0;
        let mut added = 0;
        let mut finalizing = 0;
        for (i, s) in self.slots.iter().enumerate() {
            if !s.live {
                if s.state != 0 {
                    return Err(format!("free slot {i} has state bits {:#x}", s.state));
                }
                continue;
            }
            if s.state & state::ACTIVE != 0 && s.state & state::ACTIVE_LATER != 0 {
                return Err(format!("slot {i} is on two active queues"));
            }
            if s.has(state::ANY_ACTIVE) {
                active += 1;
            }
            finalizing += usize::from(s.has(state::FINALIZING));
            if !s.internal() {
                added += usize::from(s.has(state::INSERTED)) + usize::from(s.has(state::TIMEOUT));
            }
            if s.has(state::SPECIAL) != s.is_special() {
                return Err(format!(
                    "slot {i}: SPECIAL bit disagrees with its kind/interest"
                ));
            }
        }
        if active != self.n_active {
            return Err(format!(
                "n_active is {} but {active} slots are active",
                self.n_active
            ));
        }
        if added != self.n_added {
            return Err(format!(
                "n_added is {} but the bits count {added}",
                self.n_added
            ));
        }
        if finalizing != self.n_finalizing {
            return Err(format!(
                "n_finalizing is {} but {finalizing} slots are finalizing",
                self.n_finalizing
            ));
        }
        for &f in &self.free {
            if self.slots.get(f as usize).is_none_or(|s| s.live) {
                return Err(format!("free list names live or missing slot {f}"));
            }
        }
        if self.free.len() + self.retired + self.live().count() != self.slots.len() {
            return Err("free list, retired and live slots do not add up".into());
        }
        Ok(())
    }

    #[cfg(test)]
    pub(super) fn force_generation(&mut self, idx: usize, gen: u32) {
        self.slots[idx].gen = gen;
    }
}

pub(crate) fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.into())
}
