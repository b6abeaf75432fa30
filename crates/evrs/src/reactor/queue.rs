//! Active queues: one intrusive FIFO per priority plus the active-later queue, linked through
//! the slots (O(1) push, pop and removal, no allocation). The queues own the links; the event
//! table owns the ACTIVE bits and counts, which every operation here keeps in step.

use super::events::{state, EventTable, NIL};

/// Which FIFO.
#[derive(Clone, Copy)]
enum Queue {
    Priority(usize),
    Later,
}

/// A slot's place in an active queue (fields private to the queues).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ActLink {
    prev: u32,
    next: u32,
}

impl Default for ActLink {
    fn default() -> Self {
        ActLink {
            prev: NIL,
            next: NIL,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Fifo {
    head: u32,
    tail: u32,
}

const EMPTY: Fifo = Fifo {
    head: NIL,
    tail: NIL,
};

pub(crate) struct ActiveQueues {
    by_priority: Vec<Fifo>,
    later: Fifo,
}

impl ActiveQueues {
    pub(crate) fn new(priorities: usize) -> ActiveQueues {
        ActiveQueues {
            by_priority: vec![EMPTY; priorities],
            later: EMPTY,
        }
    }

    pub(crate) fn priorities(&self) -> usize {
        self.by_priority.len()
    }

    /// Re-sizes to `n` priorities; only while every queue is empty.
    pub(super) fn resize(&mut self, n: usize) {
        debug_assert!(self.is_idle());
        self.by_priority = vec![EMPTY; n];
    }

    pub(crate) fn is_idle(&self) -> bool {
        self.later.head == NIL && self.by_priority.iter().all(|q| q.head == NIL)
    }

    #[inline]
    pub(crate) fn is_empty(&self, p: usize) -> bool {
        self.by_priority[p].head == NIL
    }

    pub(crate) fn later_is_empty(&self) -> bool {
        self.later.head == NIL
    }

    /// The head of priority `p`, if any.
    #[inline]
    pub(crate) fn peek(&self, p: usize) -> Option<usize> {
        let h = self.by_priority[p].head;
        (h != NIL).then_some(h as usize)
    }

    /// The event after `idx` in its queue.
    #[inline]
    pub(crate) fn next_of(&self, t: &EventTable, idx: usize) -> Option<usize> {
        let n = t.get(idx).act.next;
        (n != NIL).then_some(n as usize)
    }

    #[inline]
    fn link_tail(&mut self, t: &mut EventTable, idx: usize, q: Queue) {
        let fifo = match q {
            Queue::Later => &mut self.later,
            Queue::Priority(p) => &mut self.by_priority[p],
        };
        let tail = fifo.tail;
        fifo.tail = idx as u32;
        if tail == NIL {
            fifo.head = idx as u32;
        } else {
            t.get_mut(tail as usize).act.next = idx as u32;
        }
        let link = ActLink {
            prev: tail,
            next: NIL,
        };
        t.enqueue(idx, link, matches!(q, Queue::Later));
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

    /// Appends to the active-later queue.
    pub(crate) fn push_later(&mut self, t: &mut EventTable, idx: usize) {
        self.link_tail(t, idx, Queue::Later);
    }

    /// Takes the head of priority queue `p` (the loop's fast path), clearing ACTIVE.
    #[inline]
    pub(crate) fn pop(&mut self, t: &mut EventTable, p: usize) -> Option<usize> {
        let head = self.by_priority[p].head;
        if head == NIL {
            return None;
        }
        let idx = head as usize;
        let next = t.dequeue(idx).next;
        let q = &mut self.by_priority[p];
        q.head = next;
        if next == NIL {
            q.tail = NIL;
        } else {
            t.get_mut(next as usize).act.prev = NIL;
        }
        Some(idx)
    }

    /// Unlinks from whichever queue holds the event.
    #[inline]
    pub(crate) fn remove(&mut self, t: &mut EventTable, idx: usize) {
        let s = t.get(idx);
        let ActLink { prev, next } = s.act;
        let q = if s.has(state::ACTIVE_LATER) {
            &mut self.later
        } else {
            &mut self.by_priority[s.pri as usize]
        };
        if prev == NIL {
            q.head = next;
        }
        if next == NIL {
            q.tail = prev;
        }
        if prev != NIL {
            t.get_mut(prev as usize).act.next = next;
        }
        if next != NIL {
            t.get_mut(next as usize).act.prev = prev;
        }
        t.dequeue(idx);
    }

    /// Moves every active-later event to the tail of its priority queue.
    pub(crate) fn promote_later(&mut self, t: &mut EventTable) {
        while self.later.head != NIL {
            let idx = self.later.head as usize;
            self.remove(t, idx);
            self.push(t, idx);
        }
    }

    /// Every queue is a well-formed list whose members carry the matching bit and priority,
    /// and the members add up to the table's active count (for `verify`).
    pub(super) fn check(&self, t: &EventTable) -> Result<(), String> {
        let mut total = 0;
        let lists = self
            .by_priority
            .iter()
            .enumerate()
            .map(|(p, q)| (Some(p), q))
            .chain(std::iter::once((None, &self.later)));
        for (p, q) in lists {
            let mut prev = NIL;
            let mut cur = q.head;
            while cur != NIL {
                total += 1;
                if total > t.len() {
                    return Err("an active queue has a cycle".into());
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
                if s.act.prev != prev {
                    return Err(format!("slot {cur}: broken back link in an active queue"));
                }
                prev = cur;
                cur = s.act.next;
            }
            if q.tail != prev {
                return Err("an active queue's tail is not its last element".into());
            }
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
