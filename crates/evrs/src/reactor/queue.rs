//! Active queues: one FIFO per priority plus the active-later queue. Each FIFO is an array
//! of slot indices with a read cursor (libev's pending arrays, kept in FIFO order): a push
//! appends, a pop advances the cursor, and a removal leaves a tombstone at the slot's
//! recorded position — O(1) each, and a push or pop touches no other slot (a linked list
//! would write its neighbour's link, a cache miss per event on a large queue). The arrays
//! keep their capacity: no allocation once a queue has reached its high-water mark.
//!
//! The queues own the positions; the event table owns the ACTIVE bits and counts, which every
//! operation here keeps in step.

use super::events::{state, EventTable, NIL};

/// Which FIFO.
#[derive(Clone, Copy)]
enum Queue {
    Priority(usize),
    Later,
}

/// A slot's place in an active queue (its position in the queue's array; private to the
/// queues).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ActLink {
    pos: u32,
}

impl Default for ActLink {
    fn default() -> Self {
        ActLink { pos: NIL }
    }
}

/// One FIFO: `items[head..]` are queued slots in order, NIL where one was removed.
/// 32 bytes (the counters are `u32`, as slot indices are), so indexing the array of FIFOs
/// by priority is a shift.
#[derive(Default)]
struct Fifo {
    items: Vec<u32>,
    head: u32,
    /// Queued slots (entries of `items[head..]` that are not NIL).
    live: u32,
}

const _: () = assert!(std::mem::size_of::<Fifo>() == 32);

impl Fifo {
    #[inline]
    fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Appends `idx`, returning its position. When the array is full and at most half of it
    /// is live, the live entries move to the front first (positions change: `t` is updated),
    /// so a queue that never drains does not grow without bound.
    #[inline]
    fn push(&mut self, t: &mut EventTable, idx: usize) -> u32 {
        if self.items.len() == self.items.capacity() {
            self.make_room(t);
        }
        let pos = self.items.len() as u32;
        self.items.push(idx as u32);
        self.live += 1;
        pos
    }

    /// The array is full: compact it if at most half of it is live, else grow it — to
    /// twice the number of slots the table has, at least: then a full array is always at
    /// least half dead (no slot is queued twice), so it compacts and never grows again
    /// until the table does (no allocation at a new high of simultaneous activations).
    #[cold]
    #[inline(never)]
    fn make_room(&mut self, t: &mut EventTable) {
        if self.items.is_empty() || self.live as usize > self.items.len() / 2 {
            let want = (2 * t.len()).max(16).max(self.items.len() + 1);
            self.items.reserve(want - self.items.len());
            return;
        }
        let mut pos = 0;
        for k in self.head as usize..self.items.len() {
            let i = self.items[k];
            if i != NIL {
                self.items[pos] = i;
                t.get_mut(i as usize).act.pos = pos as u32;
                pos += 1;
            }
        }
        self.items.truncate(pos);
        self.head = 0;
    }

    /// Takes the first queued slot.
    #[inline]
    fn pop(&mut self) -> Option<usize> {
        while let Some(&i) = self.items.get(self.head as usize) {
            self.head += 1;
            if i != NIL {
                self.live -= 1;
                if self.live == 0 {
                    self.reset();
                }
                return Some(i as usize);
            }
        }
        None
    }

    /// Removes the slot at `pos` (it must be there).
    #[inline]
    fn remove(&mut self, pos: u32) {
        self.items[pos as usize] = NIL;
        self.live -= 1;
        if self.live == 0 {
            self.reset();
        }
    }

    #[inline]
    fn reset(&mut self) {
        self.items.clear();
        self.head = 0;
    }

    /// The first two entries from the cursor, raw: NIL (a tombstone, or past the end) names
    /// no slot, and every lookup of it misses.
    #[cfg(test)]
    fn first_two(&self) -> (u32, u32) {
        match self.items.get(self.head as usize..) {
            Some([a, b, ..]) => (*a, *b),
            Some([a]) => (*a, NIL),
            _ => (NIL, NIL),
        }
    }
}

/// A FIFO for every priority a slot can name (its `u8`), so indexing by a slot's priority
/// needs no bounds check; the first [`ActiveQueues::priorities`] are in use. (An unused
/// FIFO is an empty `Vec`: no allocation.)
const FIFOS: usize = u8::MAX as usize + 1;
const _: () = assert!(super::MAX_PRIORITIES < FIFOS);

pub(crate) struct ActiveQueues {
    by_priority: Box<[Fifo; FIFOS]>,
    n: usize,
    later: Fifo,
}

impl ActiveQueues {
    pub(crate) fn new(priorities: usize) -> ActiveQueues {
        debug_assert!(priorities <= super::MAX_PRIORITIES);
        ActiveQueues {
            by_priority: Box::new(std::array::from_fn(|_| Fifo::default())),
            n: priorities,
            later: Fifo::default(),
        }
    }

    pub(crate) fn priorities(&self) -> usize {
        self.n
    }

    /// Re-sizes to `n` priorities; only while every queue is empty.
    pub(super) fn resize(&mut self, n: usize) {
        debug_assert!(self.is_idle() && n <= super::MAX_PRIORITIES);
        for q in self.by_priority.iter_mut() {
            *q = Fifo::default();
        }
        self.n = n;
    }

    /// The queues in use.
    fn in_use(&self) -> &[Fifo] {
        &self.by_priority[..self.n]
    }

    /// The FIFO of priority `p` (< [`priorities`](Self::priorities), so it fits a slot's
    /// `u8` and indexes the array without a check).
    #[inline(always)]
    fn fifo_at(&mut self, p: usize) -> &mut Fifo {
        debug_assert!(p < self.n);
        &mut self.by_priority[usize::from(p as u8)]
    }

    pub(crate) fn is_idle(&self) -> bool {
        self.later.is_empty() && self.in_use().iter().all(Fifo::is_empty)
    }

    #[inline]
    pub(crate) fn is_empty(&self, p: usize) -> bool {
        self.in_use()[p].is_empty()
    }

    pub(crate) fn later_is_empty(&self) -> bool {
        self.later.is_empty()
    }

    /// The next two entries of priority `p`, NIL for none.
    #[cfg(test)]
    pub(crate) fn upcoming(&self, p: usize) -> (u32, u32) {
        self.in_use()[p].first_two()
    }

    #[inline]
    fn fifo(&mut self, q: Queue) -> &mut Fifo {
        match q {
            Queue::Later => &mut self.later,
            Queue::Priority(p) => self.fifo_at(p),
        }
    }

    #[inline]
    fn link_tail(&mut self, t: &mut EventTable, idx: usize, q: Queue) {
        let pos = self.fifo(q).push(t, idx);
        t.enqueue(idx, ActLink { pos }, matches!(q, Queue::Later));
    }

    /// Appends to the event's priority queue and marks it ACTIVE.
    #[inline]
    pub(crate) fn push(&mut self, t: &mut EventTable, idx: usize) {
        let pri = t.get(idx).pri as usize;
        self.link_tail(t, idx, Queue::Priority(pri));
    }

    /// Appends to priority queue `pri` (the event's own priority, already read).
    #[inline]
    pub(crate) fn push_at(&mut self, t: &mut EventTable, idx: usize, pri: usize) {
        self.link_tail(t, idx, Queue::Priority(pri));
    }

    /// Appends `idx` to priority queue `pri` if its array has room (no compaction or
    /// growth: those need the table), returning the slot's link for
    /// `EventTable::activate_quiet`.
    #[inline(always)]
    pub(crate) fn try_push(&mut self, pri: usize, idx: usize) -> Option<ActLink> {
        let q = self.fifo_at(pri);
        if q.items.len() == q.items.capacity() {
            return None;
        }
        let pos = q.items.len() as u32;
        q.items.push(idx as u32);
        q.live += 1;
        Some(ActLink { pos })
    }

    /// Appends to priority queue `pri` (the event's own) without updating the high-water
    /// mark of active events: for a batch that ends with `EventTable::note_active_peak`.
    #[inline]
    pub(crate) fn push_unpeaked(&mut self, t: &mut EventTable, idx: usize, pri: usize) {
        let pos = self.fifo_at(pri).push(t, idx);
        t.enqueue_unpeaked(idx, ActLink { pos });
    }

    /// Appends to the active-later queue.
    pub(crate) fn push_later(&mut self, t: &mut EventTable, idx: usize) {
        self.link_tail(t, idx, Queue::Later);
    }

    /// Takes the head of priority queue `p`, clearing ACTIVE.
    #[cfg(test)]
    pub(crate) fn pop(&mut self, t: &mut EventTable, p: usize) -> Option<usize> {
        let idx = self.fifo_at(p).pop()?;
        t.dequeue(idx);
        Some(idx)
    }

    /// Takes the head of priority queue `p` for the loop (the caller clears ACTIVE with
    /// `EventTable::dequeue_popped`): also brings the next entry's slot into the cache and
    /// hints its callback's state (while the queue's array is at hand).
    #[inline]
    pub(crate) fn pop_hinting(&mut self, t: &EventTable, p: usize) -> Option<usize> {
        let q = self.fifo_at(p);
        let idx = q.pop()?;
        // The next entry's slot and its callback's state are the next misses: reading the
        // slot's hint address brings the slot in, and the hint starts on the state.
        if let Some(&n) = q.items.get(q.head as usize) {
            if let Some(s) = t.try_get(n as usize) {
                crate::sys::prefetch::prefetch_addr(s.hint);
            }
        }
        Some(idx)
    }

    /// Unlinks from whichever queue holds the event.
    #[inline]
    pub(crate) fn remove(&mut self, t: &mut EventTable, idx: usize) {
        let s = t.get(idx);
        let q = if s.has(state::ACTIVE_LATER) {
            Queue::Later
        } else {
            Queue::Priority(s.pri as usize)
        };
        let pos = t.dequeue(idx).pos;
        self.fifo(q).remove(pos);
    }

    /// Moves every active-later event to the tail of its priority queue.
    pub(crate) fn promote_later(&mut self, t: &mut EventTable) {
        while let Some(idx) = self.later.pop() {
            t.dequeue(idx);
            self.push(t, idx);
        }
    }

    /// The largest array any queue holds (entries, consumed ones included): for tests that
    /// a queue which never drains stays bounded.
    #[cfg(test)]
    pub(super) fn footprint(&self) -> usize {
        self.in_use()
            .iter()
            .chain(std::iter::once(&self.later))
            .map(|q| q.items.len())
            .max()
            .unwrap_or(0)
    }

    /// Priority `p`'s array as (cursor, entries, capacity): for tests of when it grows,
    /// compacts or resets.
    #[cfg(test)]
    pub(super) fn shape(&self, p: usize) -> (usize, usize, usize) {
        let q = &self.in_use()[p];
        (q.head as usize, q.items.len(), q.items.capacity())
    }

    /// Every queue's live entries carry the matching bit, priority and position, its count
    /// is right, and the members add up to the table's active count (for `verify`).
    pub(super) fn check(&self, t: &EventTable) -> Result<(), String> {
        let mut total = 0;
        if self.by_priority[self.n..]
            .iter()
            .any(|q| !q.items.is_empty())
        {
            return Err("a queue of a priority not in use holds entries".into());
        }
        let lists = self
            .in_use()
            .iter()
            .enumerate()
            .map(|(p, q)| (Some(p), q))
            .chain(std::iter::once((None, &self.later)));
        for (p, q) in lists {
            if q.head as usize > q.items.len() {
                return Err("an active queue's cursor is past its end".into());
            }
            let mut live = 0u32;
            for (pos, &cur) in q.items.iter().enumerate().skip(q.head as usize) {
                if cur == NIL {
                    continue;
                }
                live += 1;
                if cur as usize >= t.len() {
                    return Err(format!("an active queue names missing slot {cur}"));
                }
                let s = t.get(cur as usize);
                let bit = if p.is_some() {
                    state::ACTIVE
                } else {
                    state::ACTIVE_LATER
                };
                if !s.is_live() || !s.has(bit) {
                    return Err(format!("slot {cur} is queued without its active bit"));
                }
                if let Some(p) = p {
                    if s.pri as usize != p {
                        return Err(format!("slot {cur} of priority {} is on queue {p}", s.pri));
                    }
                }
                if s.act.pos as usize != pos {
                    return Err(format!(
                        "slot {cur} is at position {pos} of an active queue but records {}",
                        s.act.pos
                    ));
                }
            }
            if live != q.live {
                return Err(format!(
                    "an active queue holds {live} events but counts {}",
                    q.live
                ));
            }
            total += live as usize;
        }
        if total != t.n_active() {
            return Err(format!(
                "{total} events on active queues, but {} marked active",
                t.n_active()
            ));
        }
        Ok(())
    }
}
