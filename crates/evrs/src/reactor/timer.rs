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
//! Nodes live in a slab and link into per-slot doubly linked lists, so nothing allocates once
//! the slab and the expiry buffer have grown to their working size.

const LEVELS: usize = 6;
const SLOTS: usize = 64;
const SLOT_BITS: u32 = 6;
const TICK_NS: u64 = 1_000_000;
const NIL: u32 = u32::MAX;

/// Where a node is filed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Loc {
    Wheel(u8, u8),
    Due,
    Overflow,
}

#[derive(Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
}

const EMPTY: List = List {
    head: NIL,
    tail: NIL,
};

struct Node<T> {
    deadline: u64,
    tick: u64,
    seq: u64,
    token: T,
    prev: u32,
    next: u32,
    loc: Loc,
}

/// A timer that has expired: its deadline (ns) and the token it was inserted with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Expired<T> {
    pub(crate) deadline: u64,
    pub(crate) seq: u64,
    pub(crate) token: T,
}

pub(crate) struct Wheel<T> {
    nodes: Vec<Option<Node<T>>>,
    free: Vec<u32>,
    lists: [[List; SLOTS]; LEVELS],
    occupied: [u64; LEVELS],
    due: List,
    overflow: List,
    /// Ticks the wheel has advanced to.
    elapsed: u64,
    seq: u64,
    len: usize,
}

/// Key of an inserted timer.
pub(crate) type TimerKey = u32;

impl<T: Copy> Wheel<T> {
    pub(crate) fn new(now_ns: u64) -> Wheel<T> {
        Wheel {
            nodes: Vec::new(),
            free: Vec::new(),
            lists: [[EMPTY; SLOTS]; LEVELS],
            occupied: [0; LEVELS],
            due: EMPTY,
            overflow: EMPTY,
            elapsed: now_ns / TICK_NS,
            seq: 0,
            len: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Files a timer for `deadline` (ns on the base's clock).
    pub(crate) fn insert(&mut self, deadline: u64, token: T) -> TimerKey {
        let tick = deadline.div_ceil(TICK_NS);
        self.seq += 1;
        let node = Node {
            deadline,
            tick,
            seq: self.seq,
            token,
            prev: NIL,
            next: NIL,
            loc: Loc::Due,
        };
        let key = match self.free.pop() {
            Some(k) => {
                self.nodes[k as usize] = Some(node);
                k
            }
            None => {
                self.nodes.push(Some(node));
                // The free list can hold every node: freeing never allocates, however many
                // timers expire together.
                let n = self.nodes.len();
                self.free.reserve(n.saturating_sub(self.free.len()));
                (n - 1) as u32
            }
        };
        self.len += 1;
        self.file(key);
        key
    }

    /// The deadline and token of a live timer (for `verify`).
    pub(crate) fn get(&self, key: TimerKey) -> Option<(u64, T)> {
        let n = self.nodes.get(key as usize)?.as_ref()?;
        Some((n.deadline, n.token))
    }

    /// Removes a timer, returning its token (None if the key is not live).
    pub(crate) fn remove(&mut self, key: TimerKey) -> Option<T> {
        let node = self.nodes.get(key as usize)?.as_ref()?;
        let token = node.token;
        self.unlink(key);
        self.nodes[key as usize] = None;
        self.free.push(key);
        self.len -= 1;
        Some(token)
    }

    fn node(&mut self, key: u32) -> &mut Node<T> {
        self.nodes[key as usize]
            .as_mut()
            .expect("timer wheel: linked key must be live")
    }

    fn list(&mut self, loc: Loc) -> &mut List {
        match loc {
            Loc::Wheel(l, s) => &mut self.lists[l as usize][s as usize],
            Loc::Due => &mut self.due,
            Loc::Overflow => &mut self.overflow,
        }
    }

    /// Puts a node on the list its tick belongs to, relative to `elapsed`.
    fn file(&mut self, key: u32) {
        let tick = self.node(key).tick;
        let loc = if tick <= self.elapsed {
            Loc::Due
        } else {
            let masked = (self.elapsed ^ tick) | (SLOTS as u64 - 1);
            let significant = 63 - masked.leading_zeros();
            let level = (significant / SLOT_BITS) as usize;
            if level >= LEVELS {
                Loc::Overflow
            } else {
                let slot = ((tick >> (level as u32 * SLOT_BITS)) as usize) & (SLOTS - 1);
                Loc::Wheel(level as u8, slot as u8)
            }
        };
        let tail = self.list(loc).tail;
        {
            let n = self.node(key);
            n.loc = loc;
            n.prev = tail;
            n.next = NIL;
        }
        if tail != NIL {
            self.node(tail).next = key;
        } else {
            self.list(loc).head = key;
        }
        self.list(loc).tail = key;
        if let Loc::Wheel(l, s) = loc {
            self.occupied[l as usize] |= 1 << s;
        }
    }

    fn unlink(&mut self, key: u32) {
        let (prev, next, loc) = {
            let n = self.node(key);
            (n.prev, n.next, n.loc)
        };
        if prev != NIL {
            self.node(prev).next = next;
        } else {
            self.list(loc).head = next;
        }
        if next != NIL {
            self.node(next).prev = prev;
        } else {
            self.list(loc).tail = prev;
        }
        if let Loc::Wheel(l, s) = loc {
            if self.lists[l as usize][s as usize].head == NIL {
                self.occupied[l as usize] &= !(1 << s);
            }
        }
    }

    /// The next point (in ticks) where the wheel has work, and what that work is.
    fn next_expiration(&self) -> Option<(u64, Loc)> {
        if self.due.head != NIL {
            return Some((self.elapsed, Loc::Due));
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
            return Some((at, Loc::Wheel(level as u8, slot as u8)));
        }
        if self.overflow.head != NIL {
            let span_bits = LEVELS as u32 * SLOT_BITS;
            let at = ((self.elapsed >> span_bits) + 1) << span_bits;
            return Some((at, Loc::Overflow));
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
            let mut key = std::mem::replace(self.list(loc), EMPTY).head;
            if let Loc::Wheel(l, s) = loc {
                self.occupied[l as usize] &= !(1 << s);
            }
            while key != NIL {
                let next = self.node(key).next;
                let fire = matches!(loc, Loc::Due | Loc::Wheel(0, _));
                if fire {
                    let n = self.nodes[key as usize].take().expect("live timer");
                    self.free.push(key);
                    self.len -= 1;
                    out.push(Expired {
                        deadline: n.deadline,
                        seq: n.seq,
                        token: n.token,
                    });
                } else {
                    self.file(key);
                }
                key = next;
            }
        }
        self.elapsed = self.elapsed.max(now_tick);
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
                        let expect: Vec<u32> = model.iter()
                            .filter(|((tick, _), _)| *tick <= now / MS)
                            .map(|(_, (_, t))| *t).collect();
                        let got: Vec<u32> = out.iter().map(|e| e.token).collect();
                        prop_assert_eq!(&got, &expect);
                        for e in &out {
                            prop_assert!(e.deadline <= now, "fired early");
                            let mk = (e.deadline.div_ceil(MS), e.seq);
                            model.remove(&mk);
                            keys.retain(|(_, k)| *k != mk);
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
            }
        }
    }
}
