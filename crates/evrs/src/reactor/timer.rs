//! Timers: a hierarchical timing wheel with O(1) insert and remove.
//!
//! Six levels of 64 slots; level `L` slots are `64^L` ticks wide and a tick is one millisecond,
//! so the wheel spans 64^6 ms (about 2.2 years); anything further waits in an overflow list
//! and is re-filed when the wheel gets there. Each level keeps a 64-bit occupancy mask, so the
//! next expiry is found with a couple of `trailing_zeros`.
//!
//! Deadlines are kept in nanoseconds. A timer is filed under the tick `ceil(deadline / 1 ms)`
//! and the wheel only advances to `floor(now / 1 ms)`, so a timer can never fire before its
//! deadline (it may fire up to one tick late). Expired timers come out in tick order, and
//! within a tick in the order they were added — so equal deadlines fire in add order, with no
//! sorting: every list is FIFO, and a cascade moves a slot's entries down in list order before
//! any later insert can land in the slots it fills (a direct insert into a lower level needs
//! the wheel to be inside that slot's range already, which is exactly when it cascaded).
//!
//! Nodes live in a slab and link into per-slot doubly linked lists (free nodes into a free
//! list through the same links), so nothing allocates once the slab and the expiry buffer
//! have grown to their working size.

const LEVELS: usize = 6;
const SLOTS: usize = 64;
const SLOT_BITS: u32 = 6;
const TICK_NS: u64 = 1_000_000;
const NIL: u32 = u32::MAX;

/// Where a node is filed: `level * 64 + slot` for a wheel slot, or one of these. Every list
/// is `lists[loc]`, so filing and unlinking index one array whatever the list.
type Loc = u16;
const WHEEL_LISTS: Loc = (LEVELS * SLOTS) as Loc;
const DUE: Loc = WHEEL_LISTS;
const OVERFLOW: Loc = WHEEL_LISTS + 1;
const N_LISTS: usize = WHEEL_LISTS as usize + 2;
/// A node on the free list (its `next` links the free list).
const FREE: Loc = Loc::MAX;

#[derive(Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
}

const EMPTY: List = List {
    head: NIL,
    tail: NIL,
};

/// 24 bytes for a `u32` token: the tick is recomputed from the deadline when filing, and a
/// free node is marked by its `loc` rather than wrapped in an `Option`.
struct Node<T> {
    deadline: u64,
    prev: u32,
    next: u32,
    token: T,
    loc: Loc,
}

/// A timer that has expired: its deadline (ns), the token it was inserted with, and its
/// position in the batch `poll` produced (which, for equal deadlines, is the add order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Expired<T> {
    pub(crate) deadline: u64,
    pub(crate) token: T,
    pos: u32,
}

pub(crate) struct Wheel<T> {
    nodes: Vec<Node<T>>,
    /// Head of the free nodes, linked through `next`: freeing never allocates.
    free: u32,
    lists: [List; N_LISTS],
    occupied: [u64; LEVELS],
    /// Ticks the wheel has advanced to.
    elapsed: u64,
    len: usize,
}

/// Key of an inserted timer.
pub(crate) type TimerKey = u32;

#[inline]
fn tick_of(deadline: u64) -> u64 {
    deadline.div_ceil(TICK_NS)
}

impl<T: Copy> Wheel<T> {
    pub(crate) fn new(now_ns: u64) -> Wheel<T> {
        Wheel {
            nodes: Vec::new(),
            free: NIL,
            lists: [EMPTY; N_LISTS],
            occupied: [0; LEVELS],
            elapsed: now_ns / TICK_NS,
            len: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Files a timer for `deadline` (ns on the base's clock).
    #[inline]
    pub(crate) fn insert(&mut self, deadline: u64, token: T) -> TimerKey {
        let key = if self.free != NIL {
            let key = self.free;
            let n = &mut self.nodes[key as usize];
            self.free = n.next;
            n.deadline = deadline;
            n.token = token;
            key
        } else {
            self.nodes.push(Node {
                deadline,
                prev: NIL,
                next: NIL,
                token,
                loc: FREE,
            });
            (self.nodes.len() - 1) as u32
        };
        self.len += 1;
        self.file(key, deadline);
        key
    }

    /// The deadline and token of a live timer (for `verify`).
    pub(crate) fn get(&self, key: TimerKey) -> Option<(u64, T)> {
        let n = self.nodes.get(key as usize)?;
        (n.loc != FREE).then_some((n.deadline, n.token))
    }

    /// Removes a timer, returning its token (None if the key is not live).
    #[inline]
    pub(crate) fn remove(&mut self, key: TimerKey) -> Option<T> {
        let n = self.nodes.get(key as usize)?;
        if n.loc == FREE {
            return None;
        }
        let token = n.token;
        self.unlink(key);
        self.release(key);
        Some(token)
    }

    /// Moves a live timer to a new deadline (a re-add): no trip through the free list.
    #[inline]
    pub(crate) fn reschedule(&mut self, key: TimerKey, deadline: u64) -> bool {
        match self.nodes.get(key as usize) {
            Some(n) if n.loc != FREE => {
                self.unlink(key);
                self.nodes[key as usize].deadline = deadline;
                self.file(key, deadline);
                true
            }
            _ => false,
        }
    }

    #[inline]
    fn release(&mut self, key: u32) {
        let n = &mut self.nodes[key as usize];
        n.loc = FREE;
        n.next = self.free;
        self.free = key;
        self.len -= 1;
    }

    /// The list a tick belongs on, relative to `elapsed`.
    #[inline]
    fn loc_of(&self, tick: u64) -> Loc {
        if tick <= self.elapsed {
            return DUE;
        }
        let masked = (self.elapsed ^ tick) | (SLOTS as u64 - 1);
        let significant = 63 - masked.leading_zeros();
        let level = significant / SLOT_BITS;
        if level as usize >= LEVELS {
            OVERFLOW
        } else {
            let slot = ((tick >> (level * SLOT_BITS)) as usize) & (SLOTS - 1);
            (level as usize * SLOTS + slot) as Loc
        }
    }

    /// Appends a node to the list its deadline belongs on.
    #[inline]
    fn file(&mut self, key: u32, deadline: u64) {
        let loc = self.loc_of(tick_of(deadline));
        let list = &mut self.lists[loc as usize];
        let tail = list.tail;
        list.tail = key;
        if tail == NIL {
            list.head = key;
        }
        if loc < WHEEL_LISTS {
            self.occupied[loc as usize / SLOTS] |= 1 << (loc as usize % SLOTS);
        }
        let n = &mut self.nodes[key as usize];
        n.loc = loc;
        n.prev = tail;
        n.next = NIL;
        if tail != NIL {
            self.nodes[tail as usize].next = key;
        }
    }

    #[inline]
    fn unlink(&mut self, key: u32) {
        let n = &self.nodes[key as usize];
        let (prev, next, loc) = (n.prev, n.next, n.loc);
        if prev != NIL {
            self.nodes[prev as usize].next = next;
        }
        if next != NIL {
            self.nodes[next as usize].prev = prev;
        }
        let list = &mut self.lists[loc as usize];
        if prev == NIL {
            list.head = next;
        }
        if next == NIL {
            list.tail = prev;
        }
        if list.head == NIL && loc < WHEEL_LISTS {
            self.occupied[loc as usize / SLOTS] &= !(1 << (loc as usize % SLOTS));
        }
    }

    /// The next point (in ticks) where the wheel has work, and what that work is.
    fn next_expiration(&self) -> Option<(u64, Loc)> {
        if self.lists[DUE as usize].head != NIL {
            return Some((self.elapsed, DUE));
        }
        for level in 0..LEVELS {
            let occ = self.occupied[level];
            if occ == 0 {
                continue;
            }
            let shift = level as u32 * SLOT_BITS;
            let slot_range = 1u64 << shift;
            let level_range = slot_range << SLOT_BITS;
            let now_slot = ((self.elapsed >> shift) as usize) & (SLOTS - 1);
            let zeros = occ.rotate_right(now_slot as u32).trailing_zeros() as usize;
            let slot = (zeros + now_slot) % SLOTS;
            let level_start = self.elapsed & !(level_range - 1);
            let mut at = level_start + slot as u64 * slot_range;
            if slot < now_slot {
                at += level_range;
            }
            return Some((at, (level * SLOTS + slot) as Loc));
        }
        if self.lists[OVERFLOW as usize].head != NIL {
            let span_bits = LEVELS as u32 * SLOT_BITS;
            let at = ((self.elapsed >> span_bits) + 1) << span_bits;
            return Some((at, OVERFLOW));
        }
        None
    }

    /// The earliest instant (ns) at which `poll` may have something to hand out.
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        self.next_expiration()
            .map(|(tick, _)| tick.saturating_mul(TICK_NS))
    }

    /// Advances the wheel to `now_ns`, removing every timer whose deadline has passed and
    /// appending it to `out` in (tick, insertion) order.
    pub(crate) fn poll(&mut self, now_ns: u64, out: &mut Vec<Expired<T>>) {
        let now_tick = now_ns / TICK_NS;
        while let Some((at, loc)) = self.next_expiration() {
            if at > now_tick {
                break;
            }
            self.elapsed = self.elapsed.max(at);
            let mut key = std::mem::replace(&mut self.lists[loc as usize], EMPTY).head;
            if loc < WHEEL_LISTS {
                self.occupied[loc as usize / SLOTS] &= !(1 << (loc as usize % SLOTS));
            }
            let fire = loc == DUE || loc < SLOTS as Loc;
            while key != NIL {
                let n = &self.nodes[key as usize];
                let (next, deadline, token) = (n.next, n.deadline, n.token);
                if fire {
                    self.release(key);
                    out.push(Expired {
                        deadline,
                        token,
                        pos: out.len() as u32,
                    });
                } else {
                    self.file(key, deadline);
                }
                key = next;
            }
        }
        self.elapsed = self.elapsed.max(now_tick);
    }

    /// The wheel's own invariants (for `verify`): every live node is on the list its tick
    /// belongs on now, linked both ways, each occupancy bit set exactly for a non-empty slot, the free list holds exactly the free nodes, and `len`
    /// counts the live ones.
    pub(crate) fn check(&self) -> Result<(), String> {
        let mut live = 0usize;
        for (loc, list) in self.lists.iter().enumerate() {
            let (mut prev, mut cur, mut n) = (NIL, list.head, 0usize);
            while cur != NIL {
                let node = self
                    .nodes
                    .get(cur as usize)
                    .ok_or_else(|| format!("wheel list {loc}: key {cur} out of range"))?;
                if node.loc as usize != loc || node.prev != prev {
                    return Err(format!("wheel list {loc}: key {cur} mislinked"));
                }
                // Exactly where `insert` would file it now: a poll cascades every slot the
                // wheel reaches, so nothing is left behind in a coarser list (and no slot at
                // or behind the wheel's own digit is occupied).
                let home = self.loc_of(tick_of(node.deadline));
                if home as usize != loc {
                    return Err(format!("wheel list {loc}: key {cur} belongs on {home}"));
                }
                n += 1;
                if n > self.nodes.len() {
                    return Err(format!("wheel list {loc}: a cycle"));
                }
                prev = cur;
                cur = node.next;
            }
            if list.tail != prev {
                return Err(format!("wheel list {loc}: tail is not the last node"));
            }
            if loc < WHEEL_LISTS as usize {
                let bit = self.occupied[loc / SLOTS] >> (loc % SLOTS) & 1 == 1;
                if bit != (n > 0) {
                    return Err(format!("wheel list {loc}: occupancy bit {bit}, {n} nodes"));
                }
            }
            live += n;
        }
        if live != self.len {
            return Err(format!("wheel: {live} linked timers, len {}", self.len));
        }
        let (mut cur, mut free) = (self.free, 0usize);
        while cur != NIL {
            let node = self
                .nodes
                .get(cur as usize)
                .ok_or_else(|| format!("wheel free list: key {cur} out of range"))?;
            if node.loc != FREE {
                return Err(format!("wheel free list: key {cur} is live"));
            }
            free += 1;
            if free > self.nodes.len() {
                return Err("wheel free list: a cycle".into());
            }
            cur = node.next;
        }
        if live + free != self.nodes.len() {
            return Err(format!(
                "wheel: {live} live + {free} free of {} nodes",
                self.nodes.len()
            ));
        }
        Ok(())
    }
}

/// Puts a batch from [`Wheel::poll`] in (deadline, add order) order. The batch is in tick
/// order already, each tick's timers in add order, so only timers sharing a tick can be out
/// of order: each such run is sorted on its own (a key of the deadline within the tick and
/// the position, which for equal deadlines is the add order), and only if that is not
/// enough (never, by the wheel's ordering; kept as a guard) is the whole batch sorted.
pub(crate) fn sort_expired<T>(out: &mut [Expired<T>]) {
    let sorted = |s: &[Expired<T>]| s.is_sorted_by_key(|e| e.deadline);
    if sorted(out) {
        return;
    }
    let mut start = 0;
    while start < out.len() {
        let tick = tick_of(out[start].deadline);
        let len = out[start..]
            .iter()
            .position(|e| tick_of(e.deadline) != tick)
            .unwrap_or(out.len() - start);
        let run = &mut out[start..start + len];
        if !sorted(run) {
            // deadline - base is in 0..=TICK_NS (20 bits), the position fits 32.
            let base = tick.saturating_sub(1) * TICK_NS;
            run.sort_unstable_by_key(|e| ((e.deadline - base) << 32) | u64::from(e.pos));
        }
        start += len;
    }
    if !sorted(out) {
        out.sort_unstable_by_key(|e| (e.deadline, e.pos));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    const MS: u64 = 1_000_000;

    #[test]
    fn fires_in_deadline_then_insert_order_and_never_early() {
        let mut w = Wheel::new(0);
        w.insert(5 * MS, 'a');
        w.insert(3 * MS, 'b');
        w.insert(5 * MS, 'c');
        w.insert(3 * MS + 1, 'd');
        let mut out = Vec::new();
        w.poll(3 * MS, &mut out);
        assert_eq!(out.iter().map(|e| e.token).collect::<String>(), "b");
        out.clear();
        w.poll(4 * MS - 1, &mut out);
        assert!(out.is_empty(), "3ms+1ns must not fire before 4ms tick");
        w.poll(4 * MS, &mut out);
        assert_eq!(out.iter().map(|e| e.token).collect::<String>(), "d");
        out.clear();
        w.poll(10 * MS, &mut out);
        assert_eq!(out.iter().map(|e| e.token).collect::<String>(), "ac");
        assert_eq!(w.len(), 0);
    }

    #[test]
    fn far_timers_cascade_and_overflow() {
        let mut w = Wheel::new(7 * MS);
        let year = 365 * 24 * 3600 * 1000 * MS;
        let k = w.insert(5 * year, 1u32);
        w.insert(70_000 * MS, 2);
        assert_eq!(w.next_deadline().map(|d| d <= 70_000 * MS), Some(true));
        let mut out = Vec::new();
        w.poll(69_999 * MS, &mut out);
        assert!(out.is_empty());
        w.poll(70_000 * MS, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(w.remove(k), Some(1));
        assert_eq!(w.remove(k), None);
        assert!(w.next_deadline().is_none());
    }

    fn tokens(out: &[Expired<char>]) -> String {
        out.iter().map(|e| e.token).collect()
    }

    /// Where the wheel's next work is, in ticks, for one timer at tick `t` filed when the
    /// wheel was at `e`: the start of the slot holding it at the lowest level whose block
    /// also holds `e`, or the next 64^6-tick boundary for the overflow list. Written
    /// independently of `file` and `next_expiration`.
    fn expected_next(e: u64, t: u64) -> u64 {
        if t <= e {
            return e;
        }
        let mut level = 0u32;
        while level < 6 && (e >> (6 * (level + 1))) != (t >> (6 * (level + 1))) {
            level += 1;
        }
        if level == 6 {
            ((e >> 36) + 1) << 36
        } else {
            t & !((1u64 << (6 * level)) - 1)
        }
    }

    /// `next_deadline` is exact (not merely early enough) at every level, in the overflow
    /// list, and after each cascade step; the timer fires at its own tick and not before.
    #[test]
    fn next_deadline_is_the_start_of_the_slot_holding_the_timer() {
        let starts = [0u64, 7, 63, 64 * 64 + 5, (1 << 36) + 5, (1 << 40) + 123];
        let offsets = [
            1u64,
            2,
            63,
            64,
            65,
            4095,
            4096,
            (1 << 20) + 3,
            (1 << 30) + 7,
            1 << 35,
            1 << 36,
            (1 << 36) + 64,
            5 << 36,
        ];
        let mut out = Vec::new();
        for e in starts {
            for off in offsets {
                let t = e + off;
                let mut w = Wheel::new(e * MS);
                w.insert(t * MS, 'x');
                let mut now = e;
                let mut steps = 0;
                loop {
                    steps += 1;
                    assert!(steps < 64, "e {e} t {t}: no end to cascading");
                    let d = w.next_deadline().expect("a timer is filed");
                    assert_eq!(d, expected_next(now, t) * MS, "e {e} t {t} now {now}");
                    assert!(d <= t * MS, "e {e} t {t}: next deadline after the timer");
                    out.clear();
                    w.poll(d - 1, &mut out);
                    assert!(out.is_empty(), "e {e} t {t}: fired before {d}");
                    assert_eq!(
                        w.next_deadline(),
                        Some(d),
                        "e {e} t {t}: a poll short of it"
                    );
                    w.poll(d, &mut out);
                    now = d / MS;
                    if !out.is_empty() {
                        assert_eq!(now, t, "e {e}: fired at tick {now}, not {t}");
                        break;
                    }
                }
                assert_eq!(w.len(), 0);
                assert_eq!(w.next_deadline(), None);
            }
        }
    }

    /// Removing a timer clears its slot's occupancy bit once the slot is empty (and not
    /// before): a stale bit would make the next deadline early.
    #[test]
    fn removal_clears_the_slot_once_it_is_empty() {
        let mut w = Wheel::new(0);
        let a = w.insert(100 * MS, 'a'); // level 1, slot 1: work at tick 64
        let b = w.insert(101 * MS, 'b'); // same slot
        let c = w.insert(5 * MS, 'c'); // level 0
        assert_eq!(w.next_deadline(), Some(5 * MS));
        assert_eq!(w.remove(c), Some('c'));
        assert_eq!(w.next_deadline(), Some(64 * MS));
        assert_eq!(w.remove(a), Some('a'));
        assert_eq!(w.next_deadline(), Some(64 * MS));
        assert_eq!(w.remove(b), Some('b'));
        assert_eq!(w.next_deadline(), None);
        assert_eq!(w.len(), 0);
        // A poll after all that finds nothing, and the wheel is reusable.
        let mut out = Vec::new();
        w.poll(200 * MS, &mut out);
        assert!(out.is_empty());
        w.insert(201 * MS, 'd');
        assert_eq!(w.next_deadline(), Some(201 * MS));
    }

    /// Unlinking the head, the middle or the tail of a slot's list keeps the others in
    /// order.
    #[test]
    fn removal_from_any_position_keeps_the_list_in_order() {
        for victim in 0..4 {
            let mut w = Wheel::new(0);
            let keys: Vec<_> = "abcd".chars().map(|c| w.insert(9 * MS, c)).collect();
            w.remove(keys[victim]);
            let mut out = Vec::new();
            w.poll(9 * MS, &mut out);
            let expect: String = "abcd"
                .chars()
                .enumerate()
                .filter(|&(i, _)| i != victim)
                .map(|(_, c)| c)
                .collect();
            assert_eq!(tokens(&out), expect);
            assert_eq!(w.len(), 0);
        }
    }

    /// A timer whose tick has already passed when it is added is due at once, and all such
    /// timers fire in the order they were added, whatever their deadlines.
    #[test]
    fn timers_added_in_the_past_fire_in_add_order() {
        let mut w = Wheel::new(10 * MS);
        w.insert(5 * MS, 'a');
        w.insert(10 * MS, 'b');
        w.insert(3 * MS, 'c');
        w.insert(11 * MS, 'd');
        assert_eq!(w.next_deadline(), Some(10 * MS));
        let mut out = Vec::new();
        w.poll(10 * MS, &mut out);
        assert_eq!(tokens(&out), "abc");
        out.clear();
        w.poll(11 * MS, &mut out);
        assert_eq!(tokens(&out), "d");
    }

    /// `get` (used by `verify`) reports a live timer's deadline and token, nothing else.
    #[test]
    fn get_reports_live_timers_only() {
        let mut w = Wheel::new(0);
        let k = w.insert(42 * MS + 7, 'x');
        let j = w.insert(3, 'y');
        assert_eq!(w.get(k), Some((42 * MS + 7, 'x')));
        assert_eq!(w.get(j), Some((3, 'y')));
        assert_eq!(w.remove(k), Some('x'));
        assert_eq!(w.get(k), None);
        assert_eq!(w.get(j + k + 100), None);
        assert_eq!(w.remove(k), None);
        assert_eq!(w.len(), 1);
    }

    /// `sort_expired` orders any batch by (deadline, position): within a tick, across
    /// ticks, and (the guard) when ticks themselves are out of order.
    #[test]
    fn sort_expired_orders_by_deadline_then_position() {
        let batch = |ds: &[u64]| -> Vec<Expired<usize>> {
            ds.iter()
                .enumerate()
                .map(|(i, &deadline)| Expired {
                    deadline,
                    token: i,
                    pos: i as u32,
                })
                .collect()
        };
        for ds in [
            &[
                3 * MS,
                3 * MS - 5,
                3 * MS - 5,
                2 * MS + 1,
                4 * MS,
                4 * MS - 1,
            ][..],
            &[9 * MS, 2 * MS, 9 * MS, 0, 5, 2 * MS, 1][..],
            &[7, 7, 7][..],
            &[][..],
        ] {
            let mut out = batch(ds);
            sort_expired(&mut out);
            let mut expect: Vec<(u64, usize)> = ds.iter().copied().zip(0..).collect();
            expect.sort_unstable();
            let got: Vec<(u64, usize)> = out.iter().map(|e| (e.deadline, e.token)).collect();
            assert_eq!(got, expect);
        }
    }

    /// `check` notices a stale occupancy bit, a node on the wrong list and a lost free node.
    #[test]
    fn check_catches_a_broken_wheel() {
        let mut w = Wheel::new(0);
        let a = w.insert(100 * MS, 'a');
        let b = w.insert(5 * MS, 'b');
        w.remove(b);
        assert_eq!(w.check(), Ok(()));
        w.occupied[0] |= 1 << 9;
        assert!(w.check().is_err());
        w.occupied[0] &= !(1 << 9);
        w.nodes[a as usize].deadline = 3 * MS;
        assert!(w.check().is_err());
        w.nodes[a as usize].deadline = 100 * MS;
        w.free = NIL;
        assert!(w.check().is_err());
    }

    /// The invariant that makes `next_expiration`'s wrap-around unreachable (see
    /// docs/MUTANTS.md): every occupied slot of a level is strictly after the wheel's own
    /// digit at that level (a slot the wheel reaches is cascaded or fired at once), so
    /// `slot < now_slot` never holds.
    fn occupied_slots_are_ahead_of_the_wheel<T: Copy>(w: &Wheel<T>) -> bool {
        (0..LEVELS).all(|l| {
            let digit = (w.elapsed >> (l as u32 * SLOT_BITS)) & (SLOTS as u64 - 1);
            w.occupied[l] & (u64::MAX >> (63 - digit)) == 0
        })
    }

    proptest! {
        #[test]
        fn matches_a_sorted_model(ops in proptest::collection::vec((0u8..4, 0u64..5_000_000_000u64), 1..200)) {
            let mut w = Wheel::new(0);
            // Keyed (tick, seq): the order timers come out in.
            let mut model: BTreeMap<(u64, u64), (u64, u32)> = BTreeMap::new();
            let mut keys: Vec<(TimerKey, (u64, u64))> = Vec::new();
            let mut now = 0u64;
            let mut seq = 0u64;
            let mut out = Vec::new();
            for (i, (op, v)) in ops.into_iter().enumerate() {
                match op {
                    0 | 1 => {
                        let deadline = now + v / (1 + op as u64 * 1000);
                        seq += 1;
                        let k = w.insert(deadline, i as u32);
                        model.insert((deadline.div_ceil(MS), seq), (deadline, i as u32));
                        keys.push((k, (deadline.div_ceil(MS), seq)));
                    }
                    2 => if !keys.is_empty() {
                        let (k, mk) = keys.swap_remove(v as usize % keys.len());
                        prop_assert_eq!(w.remove(k), model.remove(&mk).map(|(_, t)| t));
                    },
                    _ => {
                        now += v / 1000;
                        out.clear();
                        w.poll(now, &mut out);
                        let due: Vec<(u64, u64)> = model.keys()
                            .filter(|(tick, _)| *tick <= now / MS).copied().collect();
                        let expect: Vec<u32> = due.iter().map(|k| model[k].1).collect();
                        let got: Vec<u32> = out.iter().map(|e| e.token).collect();
                        prop_assert_eq!(&got, &expect);
                        for e in &out {
                            prop_assert!(e.deadline <= now, "fired early");
                        }
                        // The reactor's order: (deadline, add order).
                        let mut by_deadline: Vec<(u64, u64, u32)> =
                            due.iter().map(|k| (model[k].0, k.1, model[k].1)).collect();
                        by_deadline.sort_unstable();
                        sort_expired(&mut out);
                        let sorted: Vec<u32> = out.iter().map(|e| e.token).collect();
                        let expect: Vec<u32> = by_deadline.iter().map(|e| e.2).collect();
                        prop_assert_eq!(sorted, expect);
                        for mk in &due {
                            model.remove(mk);
                            keys.retain(|(_, k)| k != mk);
                        }
                        if let Some(next) = w.next_deadline() {
                            if let Some(((tick, _), _)) = model.iter().next() {
                                prop_assert!(next <= tick * MS);
                            }
                        }
                    }
                }
                prop_assert_eq!(w.len(), model.len());
                prop_assert!(occupied_slots_are_ahead_of_the_wheel(&w), "a slot at or behind the wheel");
                prop_assert_eq!(w.check(), Ok(()));
            }
        }
    }
}
