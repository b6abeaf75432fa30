//! Active queues: one intrusive FIFO per priority (plus the active-later queue), linked
//! through the slots themselves, so activation and removal are O(1) and never allocate.

use crate::base::EventBase;
use crate::event::{state, Handler, NIL};
use crate::sys;

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
            &mut self.active[s.pri as usize]
        }
    }

    #[inline]
    fn link_tail(&mut self, idx: usize, later: bool) {
        let pri = self.slots[idx].pri as usize;
        let q = if later {
            &mut self.active_later
        } else {
            // Priorities are kept below the queue count (priority_init clamps them).
            &mut self.active[pri]
        };
        let tail = q.tail;
        q.tail = idx as u32;
        if tail == NIL {
            q.head = idx as u32;
        } else {
            self.slots[tail as usize].act_next = idx as u32;
        }
        let s = &mut self.slots[idx];
        s.act_prev = tail;
        s.act_next = NIL;
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

    /// Appends to the event's priority queue and marks it ACTIVE.
    #[inline]
    pub(crate) fn queue_push(&mut self, idx: usize) {
        self.link_tail(idx, false);
    }

    /// Appends to the active-later queue.
    pub(crate) fn queue_push_later(&mut self, idx: usize) {
        self.link_tail(idx, true);
    }

    /// Takes the head of priority queue `p` (the loop's fast path), clearing ACTIVE.
    #[inline]
    pub(crate) fn queue_pop(&mut self, p: usize) -> Option<usize> {
        let head = self.active[p].head;
        if head == NIL {
            return None;
        }
        let idx = head as usize;
        let s = &mut self.slots[idx];
        let next = s.act_next;
        s.act_next = NIL;
        s.act_prev = NIL;
        s.state &= !state::ACTIVE;
        self.n_active -= 1;
        let q = &mut self.active[p];
        q.head = next;
        if next == NIL {
            q.tail = NIL;
        } else {
            self.slots[next as usize].act_prev = NIL;
        }
        Some(idx)
    }

    /// While the event just popped runs: hint the closure of the next event in queue `p`
    /// (whose slot the previous call hinted) and the slot of the one after it.
    #[inline]
    pub(crate) fn prefetch_upcoming(&self, p: usize) {
        let n1 = self.active[p].head;
        if n1 == NIL {
            return;
        }
        let s1 = &self.slots[n1 as usize];
        match &s1.handler {
            Some(Handler::Fn(f)) => {
                sys::prefetch::prefetch_addr(&**f as *const _ as *const u8 as usize)
            }
            Some(Handler::Shared(f)) => {
                sys::prefetch::prefetch_addr(&**f as *const _ as *const u8 as usize)
            }
            _ => {}
        }
        if let Some(s2) = self.slots.get(s1.act_next as usize) {
            sys::prefetch::prefetch(s2);
        }
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
        if s.state & (state::ACTIVE | state::ACTIVE_LATER) != 0 {
            s.state &= !(state::ACTIVE | state::ACTIVE_LATER);
            self.n_active -= 1;
        }
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
