//! Timers: a hierarchical timing wheel with O(1) insert and remove.
//!
//! A tick is one millisecond. The first level has 256 slots of one tick each (the classic
//! Linux wheel's `tv1`: timeouts up to a quarter second, the common ones, are filed once and
//! never cascade), the five above it 64 slots each, level `L` slots `256 * 64^(L-1)` ticks
//! wide, so the wheel spans 2^38 ms (about 8.7 years); anything further waits in an overflow
//! list and is re-filed when the wheel gets there. Each level keeps 64-bit occupancy words,
//! so the next expiry is found with a couple of `trailing_zeros`.
//!
//! Deadlines are kept in nanoseconds. A timer is filed under the tick `ceil(deadline / 1 ms)`
//! and the wheel only advances to `floor(now / 1 ms)`, so a timer can never fire before its
//! deadline (it may fire up to one tick late). Lists come out in tick order, each in the
//! order its timers were added (every list is FIFO, and a cascade moves a slot's entries down
//! in list order before any later insert can land in the slots it fills: a direct insert into
//! a lower level needs the wheel to be inside that slot's range already, which is exactly
//! when it cascaded). Each list handed out is then sorted on its own by the microsecond of
//! the deadline, stably, so timers fire earliest first and equal deadlines in add order.
//!
//! A timer is keyed by its event's slot index, chosen by the caller: node `key` of one array
//! is that event's, so there is no free list, no token and no key to keep in the slot.
//! Nodes link into per-list doubly linked lists; nothing allocates once the node array and
//! the expiry buffer have grown to their working size (the highest key, the most timers).

const LEVELS: usize = 6;
/// Slots of the first level, and their bits of a tick.
const L0_SLOTS: usize = 256;
const L0_BITS: u32 = 8;
/// Slots of every level above the first, and their bits of a tick.
const SLOTS: usize = 64;
const SLOT_BITS: u32 = 6;
/// The bits of a tick below level `level`'s digit.
const fn shift(level: usize) -> u32 {
    if level == 0 {
        0
    } else {
        L0_BITS + SLOT_BITS * (level as u32 - 1)
    }
}
/// Ticks the whole wheel spans, as bits.
const SPAN_BITS: u32 = shift(LEVELS);
/// The list of slot 0 of level `level`.
const fn first_loc(level: usize) -> usize {
    if level == 0 {
        0
    } else {
        L0_SLOTS + SLOTS * (level - 1)
    }
}
const TICK_NS: u64 = 1_000_000;
const NIL: u32 = u32::MAX;

/// Where a node is filed: `level * 64 + slot` for a wheel slot, or one of these. Every list
/// is `lists[loc]`, so filing and unlinking index one array whatever the list.
type Loc = u16;
const WHEEL_LISTS: Loc = first_loc(LEVELS) as Loc;
/// Occupancy words: list `loc`'s bit is `loc % 64` of word `loc / 64`, whatever its level.
const WORDS: usize = WHEEL_LISTS as usize / 64;
const _: () = assert!(WHEEL_LISTS as usize % 64 == 0 && L0_SLOTS == 1 << L0_BITS);
const DUE: Loc = WHEEL_LISTS;
const OVERFLOW: Loc = WHEEL_LISTS + 1;
const N_LISTS: usize = WHEEL_LISTS as usize + 2;
/// Per bit of a tick from `L0_BITS` up: the shift of the level holding that bit, and the
/// list of the level's slot 0 (`OVERFLOW` beyond the wheel).
const LEVEL_OF_BIT: [(u32, Loc); 64] = {
    let mut t = [(0, OVERFLOW); 64];
    let mut bit = L0_BITS as usize;
    while bit < 64 {
        let level = (bit - L0_BITS as usize) / SLOT_BITS as usize + 1;
        if level < LEVELS {
            t[bit] = (shift(level), first_loc(level) as Loc);
        }
        bit += 1;
    }
    t
};
/// A node with no timer.
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

/// 24 bytes: the tick is recomputed from the deadline when filing, and a node without a
/// timer is marked by its `loc` rather than wrapped in an `Option`.
#[derive(Clone, Copy)]
struct Node {
    deadline: u64,
    prev: u32,
    next: u32,
    loc: Loc,
}

const UNUSED: Node = Node {
    deadline: 0,
    prev: NIL,
    next: NIL,
    loc: FREE,
};

/// A timer that has expired: its deadline (ns) and its key (`pos` is the sort's scratch
/// key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Expired {
    pub(crate) deadline: u64,
    pub(crate) key: TimerKey,
    pos: u32,
}

pub(crate) struct Wheel {
    /// Indexed by key; grown to the highest key inserted.
    nodes: Vec<Node>,
    lists: [List; N_LISTS],
    occupied: [u64; WORDS],
    /// Ticks the wheel has advanced to.
    elapsed: u64,
    len: usize,
    /// Scratch space for sorting long runs of expiries (grows to the longest run).
    scratch: Vec<Expired>,
}

/// Key of a timer: the caller's (the event's slot index), below `u32::MAX`.
pub(crate) type TimerKey = u32;

#[inline]
fn tick_of(deadline: u64) -> u64 {
    // `div_ceil` without its remainder test (a deadline this close to the end of the
    // clock is refused long before: `MAX_TIMEOUT`).
    deadline.saturating_add(TICK_NS - 1) / TICK_NS
}

impl Wheel {
    pub(crate) fn new(now_ns: u64) -> Wheel {
        Wheel {
            nodes: Vec::new(),
            lists: [EMPTY; N_LISTS],
            occupied: [0; WORDS],
            elapsed: now_ns / TICK_NS,
            len: 0,
            scratch: Vec::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Files timer `key` for `deadline` (ns on the base's clock), moving it if it is filed
    /// already (a re-add).
    #[inline]
    pub(crate) fn set(&mut self, key: TimerKey, deadline: u64) {
        let i = key as usize;
        if i >= self.nodes.len() {
            self.grow(i);
        }
        if self.nodes[i].loc == FREE {
            self.len += 1;
        } else {
            self.unlink(key);
        }
        self.nodes[i].deadline = deadline;
        self.file(key, deadline);
    }

    /// Room for key `i` (and, growing by at least a quarter, for the keys after it).
    #[cold]
    fn grow(&mut self, i: usize) {
        let want = (i + 1).max(self.nodes.len() + self.nodes.len() / 4);
        self.nodes.resize(want, UNUSED);
    }

    /// The deadline of a filed timer (for `verify`).
    pub(crate) fn get(&self, key: TimerKey) -> Option<u64> {
        let n = self.nodes.get(key as usize)?;
        (n.loc != FREE).then_some(n.deadline)
    }

    /// Removes a timer; false if `key` has none.
    #[inline]
    pub(crate) fn remove(&mut self, key: TimerKey) -> bool {
        match self.nodes.get(key as usize) {
            Some(n) if n.loc != FREE => {
                self.unlink(key);
                self.release(key);
                true
            }
            _ => false,
        }
    }

    #[inline]
    fn release(&mut self, key: u32) {
        self.nodes[key as usize].loc = FREE;
        self.len -= 1;
    }

    /// The list a tick belongs on, relative to `elapsed`.
    #[inline(always)]
    fn loc_of(&self, tick: u64) -> Loc {
        if tick <= self.elapsed {
            return DUE;
        }
        let diff = self.elapsed ^ tick;
        if diff < L0_SLOTS as u64 {
            return (tick as usize & (L0_SLOTS - 1)) as Loc;
        }
        // The level is that of the highest bit where the tick differs from the wheel's.
        let (shift, first) = LEVEL_OF_BIT[63 - diff.leading_zeros() as usize];
        if first == OVERFLOW {
            return OVERFLOW;
        }
        first + ((tick >> shift) as Loc & (SLOTS as Loc - 1))
    }

    /// Appends a node to the list its deadline belongs on.
    #[inline(always)]
    fn file(&mut self, key: u32, deadline: u64) {
        let loc = self.loc_of(tick_of(deadline));
        let list = &mut self.lists[loc as usize];
        let tail = list.tail;
        list.tail = key;
        if tail == NIL {
            list.head = key;
        }
        if loc < WHEEL_LISTS {
            self.occupied[loc as usize / 64] |= 1 << (loc as usize % 64);
        }
        let n = &mut self.nodes[key as usize];
        n.loc = loc;
        n.prev = tail;
        n.next = NIL;
        if tail != NIL {
            self.nodes[tail as usize].next = key;
        }
    }

    #[inline(always)]
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
            self.occupied[loc as usize / 64] &= !(1 << (loc as usize % 64));
        }
    }

    /// The next point (in ticks) where the wheel has work, and what that work is.
    fn next_expiration(&self) -> Option<(u64, Loc)> {
        if self.lists[DUE as usize].head != NIL {
            return Some((self.elapsed, DUE));
        }
        // The first level: its first occupied slot. Every occupied slot of a level is after
        // the wheel's own digit there (a slot the wheel reaches is fired or cascaded at
        // once), so the lowest set bit is the next one.
        for w in 0..L0_SLOTS / 64 {
            let occ = self.occupied[w];
            if occ != 0 {
                let slot = w * 64 + occ.trailing_zeros() as usize;
                let at = (self.elapsed & !(L0_SLOTS as u64 - 1)) + slot as u64;
                return Some((at, slot as Loc));
            }
        }
        for level in 1..LEVELS {
            let occ = self.occupied[first_loc(level) / 64];
            if occ == 0 {
                continue;
            }
            let shift = shift(level);
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
            return Some((at, (first_loc(level) + slot) as Loc));
        }
        if self.lists[OVERFLOW as usize].head != NIL {
            let at = ((self.elapsed >> SPAN_BITS) + 1) << SPAN_BITS;
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
    /// appending it to `out` in firing order: by deadline to the microsecond, timers in the
    /// same microsecond in add order. Lists come out tick by tick, each in add order, so
    /// each is sorted on its own as it is handed out.
    pub(crate) fn poll(&mut self, now_ns: u64, out: &mut Vec<Expired>) {
        // Room in the sort's scratch buffer for the longest run there can be (every timer at
        // once), before the first sort needs it: it grows only when the timer count reaches
        // a new high, never because of a luckier batch.
        if self.scratch.capacity() < self.len {
            self.scratch.reserve(self.len);
        }
        let now_tick = now_ns / TICK_NS;
        while let Some((at, loc)) = self.next_expiration() {
            if at > now_tick {
                break;
            }
            self.elapsed = self.elapsed.max(at);
            let mut key = std::mem::replace(&mut self.lists[loc as usize], EMPTY).head;
            if loc < WHEEL_LISTS {
                self.occupied[loc as usize / 64] &= !(1 << (loc as usize % 64));
            }
            let fire = loc == DUE || loc < L0_SLOTS as Loc;
            let start = out.len();
            while key != NIL {
                let n = &self.nodes[key as usize];
                let (next, deadline) = (n.next, n.deadline);
                if fire {
                    self.release(key);
                    out.push(Expired {
                        deadline,
                        key,
                        pos: 0,
                    });
                } else {
                    self.file(key, deadline);
                }
                key = next;
            }
            if fire {
                // A slot of the first level is exactly one tick; the due list may span several.
                let tick = (loc != DUE).then_some(at);
                sort_run(&mut out[start..], tick, &mut self.scratch);
            }
        }
        self.elapsed = self.elapsed.max(now_tick);
    }

    /// The wheel's own invariants (for `verify`): every filed node is on the list its tick
    /// belongs on now, linked both ways, each occupancy bit set exactly for a non-empty slot,
    /// no node is marked filed without being on a list, and `len` counts the filed ones.
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
                let bit = self.occupied[loc / 64] >> (loc % 64) & 1 == 1;
                if bit != (n > 0) {
                    return Err(format!("wheel list {loc}: occupancy bit {bit}, {n} nodes"));
                }
            }
            live += n;
        }
        if live != self.len {
            return Err(format!("wheel: {live} linked timers, len {}", self.len));
        }
        let marked = self.nodes.iter().filter(|n| n.loc != FREE).count();
        if live != marked {
            return Err(format!(
                "wheel: {live} linked timers, {marked} nodes marked filed"
            ));
        }
        Ok(())
    }
}

/// Within a tick, expiries are ordered at this resolution (a microsecond, libevent's own
/// clock resolution); deadlines in the same microsecond fire in add order.
pub(crate) const SUB_NS: u64 = 1_000;
const SUBS: usize = (TICK_NS / SUB_NS) as usize;
/// Runs of expiries at least this long are radix sorted, shorter ones by comparison.
const RADIX_MIN: usize = 32;
/// The radix sort's digits: two of 5 bits cover a microsecond of the tick (`SUBS` ≤ 1024).
const DIGIT_BITS: u32 = 5;
const DIGITS: usize = 1 << DIGIT_BITS;
const _: () = assert!(SUBS <= DIGITS * DIGITS);

/// The microsecond of its tick a deadline falls in (`0..SUBS`), ceil-aligned as ticks are:
/// `base` is the start of the tick (`(tick - 1) * TICK_NS`), the deadline in `base + 1 ..=
/// base + TICK_NS` (tick 0 holds only deadline 0, which wraps to the last microsecond).
#[inline]
fn sub_of(deadline: u64, base: u64) -> u32 {
    ((deadline.wrapping_sub(base).wrapping_sub(1) / SUB_NS) as u32).min(SUBS as u32 - 1)
}

/// Positions within a short run, below the microsecond in a comparison sort's key.
const POS_BITS: u32 = 22;
const _: () = assert!(RADIX_MIN <= 1 << POS_BITS && (SUBS as u64) << POS_BITS <= 1 << 32);

/// Puts one fired list in firing order (by the microsecond of the deadline, ties in add
/// order): a list is in add order, so it is usually sorted already (timers with one
/// timeout added over time) and costs one scan. `tick`: the one tick every deadline of the
/// list falls in, or `None` (the due list, which may span ticks). Long one-tick lists are
/// radix sorted, the rest compared on a key of (microsecond, position in the list).
fn sort_run(run: &mut [Expired], tick: Option<u64>, scratch: &mut Vec<Expired>) {
    if run.len() < 2 || run.is_sorted_by_key(|e| e.deadline) {
        return;
    }
    match tick {
        Some(tick) if run.len() >= RADIX_MIN => {
            radix_sort(run, tick.saturating_sub(1) * TICK_NS, scratch)
        }
        Some(tick) => {
            let base = tick.saturating_sub(1) * TICK_NS;
            for (i, e) in run.iter_mut().enumerate() {
                e.pos = (sub_of(e.deadline, base) << POS_BITS) | i as u32;
            }
            run.sort_unstable_by_key(|e| e.pos);
        }
        _ => {
            for (i, e) in run.iter_mut().enumerate() {
                e.pos = i as u32;
            }
            run.sort_unstable_by_key(|e| (e.deadline.div_ceil(SUB_NS), e.pos));
        }
    }
}

/// Stable LSD radix sort of one tick's run on the microsecond of each deadline, in two
/// digits of 5 bits: one pass that keys and counts both digits, a scatter by the low digit
/// into `scratch`, one by the high digit back; equal keys keep their order. Its fixed cost
/// is two 32-entry tables, not one entry per microsecond of the tick (a list of a few
/// hundred timers would pay more for a 1000-bucket table than for its own elements).
fn radix_sort(run: &mut [Expired], base: u64, scratch: &mut Vec<Expired>) {
    let mut lo = [0u32; DIGITS];
    let mut hi = [0u32; DIGITS];
    let mut sorted = true;
    let mut last = 0;
    for e in run.iter_mut() {
        let k = sub_of(e.deadline, base);
        e.pos = k;
        sorted &= k >= last;
        last = k;
        lo[k as usize % DIGITS] += 1;
        hi[(k >> DIGIT_BITS) as usize % DIGITS] += 1;
    }
    if sorted {
        return;
    }
    for counts in [&mut lo, &mut hi] {
        let mut sum = 0;
        for a in counts.iter_mut() {
            let n = *a;
            *a = sum;
            sum += n;
        }
    }
    // Scratch holds the longest run there has been (grown only at a new high).
    if scratch.len() < run.len() {
        scratch.resize(run.len(), run[0]);
    }
    let tmp = &mut scratch[..run.len()];
    for e in run.iter() {
        let at = &mut lo[e.pos as usize % DIGITS];
        tmp[*at as usize] = *e;
        *at += 1;
    }
    for e in tmp.iter() {
        let at = &mut hi[(e.pos >> DIGIT_BITS) as usize % DIGITS];
        run[*at as usize] = *e;
        *at += 1;
    }
}

#[cfg(test)]
#[path = "timer_tests.rs"]
mod tests;
