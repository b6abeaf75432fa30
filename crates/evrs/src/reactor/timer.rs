//! Timers: a hierarchical timing wheel with O(1) insert and remove.
//!
//! Six levels of 64 slots; level `L` slots are `64^L` ticks wide and a tick is one millisecond,
//! so the wheel spans 64^6 ms (about 2.2 years); anything further waits in an overflow list
//! and is re-filed when the wheel gets there. Each level keeps a 64-bit occupancy mask, so the
//! next expiry is found with a couple of `trailing_zeros`.
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

/// A timer that has expired: its deadline (ns) and the token it was inserted with (`pos` is
/// the sort's scratch key).
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
    /// Scratch space for sorting long runs of expiries (grows to the longest run).
    scratch: Vec<Expired<T>>,
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
            scratch: Vec::new(),
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
    /// appending it to `out` in firing order: by deadline to the microsecond, timers in the
    /// same microsecond in add order. Lists come out tick by tick, each in add order, so
    /// each is sorted on its own as it is handed out.
    pub(crate) fn poll(&mut self, now_ns: u64, out: &mut Vec<Expired<T>>) {
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
                self.occupied[loc as usize / SLOTS] &= !(1 << (loc as usize % SLOTS));
            }
            let fire = loc == DUE || loc < SLOTS as Loc;
            let start = out.len();
            while key != NIL {
                let n = &self.nodes[key as usize];
                let (next, deadline, token) = (n.next, n.deadline, n.token);
                if fire {
                    self.release(key);
                    out.push(Expired {
                        deadline,
                        token,
                        pos: 0,
                    });
                } else {
                    self.file(key, deadline);
                }
                key = next;
            }
            if fire {
                // A slot of level 0 is exactly one tick; the due list may span several.
                let tick = (loc != DUE).then_some(at);
                sort_run(&mut out[start..], tick, &mut self.scratch);
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

/// Within a tick, expiries are ordered at this resolution (a microsecond, libevent's own
/// clock resolution); deadlines in the same microsecond fire in add order.
pub(crate) const SUB_NS: u64 = 1_000;
const SUBS: usize = (TICK_NS / SUB_NS) as usize;
/// Runs of expiries at least this long are counting sorted, shorter ones by comparison.
const COUNTING_MIN: usize = 128;

/// The microsecond of its tick a deadline falls in (`0..SUBS`), ceil-aligned as ticks are:
/// `base` is the start of the tick (`(tick - 1) * TICK_NS`), the deadline in `base + 1 ..=
/// base + TICK_NS` (tick 0 holds only deadline 0, which wraps to the last microsecond).
#[inline]
fn sub_of(deadline: u64, base: u64) -> u32 {
    ((deadline.wrapping_sub(base).wrapping_sub(1) / SUB_NS) as u32).min(SUBS as u32 - 1)
}

/// Positions within a short run, below the microsecond in a comparison sort's key.
const POS_BITS: u32 = 22;
const _: () = assert!(COUNTING_MIN <= 1 << POS_BITS && (SUBS as u64) << POS_BITS <= 1 << 32);

/// Puts one fired list in firing order (by the microsecond of the deadline, ties in add
/// order): a list is in add order, so it is usually sorted already (timers with one
/// timeout added over time) and costs one scan. `tick`: the one tick every deadline of the
/// list falls in, or `None` (the due list, which may span ticks). Long one-tick lists are
/// counting sorted, the rest compared on a key of (microsecond, position in the list).
fn sort_run<T: Copy>(run: &mut [Expired<T>], tick: Option<u64>, scratch: &mut Vec<Expired<T>>) {
    if run.len() < 2 || run.is_sorted_by_key(|e| e.deadline) {
        return;
    }
    match tick {
        Some(tick) if run.len() >= COUNTING_MIN => {
            counting_sort(run, tick.saturating_sub(1) * TICK_NS, scratch)
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

/// Stable counting sort of one tick's run on the microsecond of each deadline: one pass
/// that keys and counts, one scatter into `scratch`, one copy back; equal keys keep their
/// order.
fn counting_sort<T: Copy>(run: &mut [Expired<T>], base: u64, scratch: &mut Vec<Expired<T>>) {
    let mut at = [0u32; SUBS];
    let mut sorted = true;
    let mut last = 0;
    for e in run.iter_mut() {
        let k = sub_of(e.deadline, base);
        e.pos = k;
        sorted &= k >= last;
        last = k;
        at[k as usize] += 1;
    }
    if sorted {
        return;
    }
    let mut sum = 0;
    for a in at.iter_mut() {
        let n = *a;
        *a = sum;
        sum += n;
    }
    scratch.clear();
    scratch.extend_from_slice(run);
    for e in scratch.iter() {
        let k = &mut at[e.pos as usize];
        run[*k as usize] = *e;
        *k += 1;
    }
}

#[cfg(test)]
#[path = "timer_tests.rs"]
mod tests;
