//! Active queues: one intrusive FIFO per priority (plus the active-later queue), linked
//! through the slots themselves, so activation and removal are O(1) and never allocate.

use crate::base::EventBase;
use crate::event::{state, NIL};

#[derive(Clone, Copy, Debug)]
pub(crate) struct Queue {
    pub(crate) head: u32,
    pub(crate) tail: u32,
}

impl Default for Queue {
    fn default() -> Self {
        Queue {
            head: NIL,
            tail: NIL,
        }
    }
}

impl Queue {
    pub(crate) fn is_empty(&self) -> bool {
        self.head == NIL
    }
}

impl EventBase {
    fn queue_of(&mut self, idx: usize) -> &mut Queue {
        let s = &self.slots[idx];
        if s.has(state::ACTIVE_LATER) {
            &mut self.active_later
        } else {
            let p = (s.pri as usize).min(self.active.len() - 1);
            &mut self.active[p]
        }
    }

    fn link_tail(&mut self, idx: usize, later: bool) {
        let p = (self.slots[idx].pri as usize).min(self.active.len() - 1);
        let q = if later {
            &mut self.active_later
        } else {
            &mut self.active[p]
        };
        let tail = q.tail;
        q.tail = idx as u32;
        if tail == NIL {
            q.head = idx as u32;
        }
        if tail != NIL {
            self.slots[tail as usize].act_next = idx as u32;
        }
        let s = &mut self.slots[idx];
        s.act_prev = tail;
        s.act_next = NIL;
    }

    /// Appends to the event's priority queue and marks it ACTIVE.
    #[inline]
    pub(crate) fn queue_push(&mut self, idx: usize) {
        self.link_tail(idx, false);
        self.set_state(idx, state::ACTIVE, true);
    }

    /// Appends to the active-later queue.
    pub(crate) fn queue_push_later(&mut self, idx: usize) {
        self.link_tail(idx, true);
        self.set_state(idx, state::ACTIVE_LATER, true);
    }

    /// Unlinks from whichever queue holds the event.
    #[inline]
    pub(crate) fn queue_remove(&mut self, idx: usize) {
        let (prev, next) = (self.slots[idx].act_prev, self.slots[idx].act_next);
        let q = self.queue_of(idx);
        if prev == NIL {
            q.head = next;
        }
        if next == NIL {
            q.tail = prev;
        }
        if prev != NIL {
            self.slots[prev as usize].act_next = next;
        }
        if next != NIL {
            self.slots[next as usize].act_prev = prev;
        }
        let s = &mut self.slots[idx];
        s.act_prev = NIL;
        s.act_next = NIL;
        // An event is on at most one queue, so this clears exactly one bit.
        self.set_state(idx, state::ACTIVE | state::ACTIVE_LATER, false);
    }

    /// Moves every active-later event to the tail of its priority queue.
    pub(crate) fn promote_active_later(&mut self) {
        while self.active_later.head != NIL {
            let idx = self.active_later.head as usize;
            self.queue_remove(idx);
            self.queue_push(idx);
        }
    }
}
