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
//! is that event's (its deadline and where its entry is), so there is no free list, no
//! token and no key to keep in the slot. A list is a chain of one-cache-line blocks of keys
//! from a shared pool, not a linked list of nodes: firing or cascading a list reads its keys
//! in order and the nodes they name independently, where walking linked nodes was one
//! dependent cache miss per timer (93 % of the time `poll` took for 100,000 timers, a third
//! of the whole run). Removing a timer leaves a tombstone (the entry is not written: its
//! node no longer points back at it), except that removing a list's first entry (the
//! common order) moves the list's start instead; a list with more
//! tombstones than timers is compacted, and a drained list gives its blocks back, so the
//! pool holds about as many entries as there are timers. Nothing allocates once the node
//! array, the pool and the expiry buffer have grown to their working size.

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
/// Timers waiting for a clock reading (see [`Wheel::stage`]): a node's `deadline` holds the
/// timeout until then.
const STAGED: Loc = WHEEL_LISTS + 2;
const N_LISTS: usize = WHEEL_LISTS as usize + 3;
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
/// Entries per block: a list is a chain of blocks, each full but the last.
const BLOCK: usize = 16;
/// A list is compacted once its tombstones outnumber its timers by this many.
const COMPACT_SLACK: u32 = 2 * BLOCK as u32;

/// A list: a chain of blocks from the shared pool (`NIL` head: empty), its entries from
/// index `start` of the head block to index `fill` of the tail block; `live` timers and
/// `dead` tombstones among them. Removing the entry at `start` moves `start` past it
/// (freeing an emptied head block, and the tombstones at the start of the next), so timers
/// removed in the order they were added — the common case — leave nothing behind.
#[derive(Clone, Copy)]
struct List {
    head: u32,
    tail: u32,
    start: u32,
    fill: u32,
    live: u32,
    dead: u32,
}

/// An empty list: no blocks, and a "full" tail, so `file` needs one test for both.
const EMPTY: List = List {
    head: NIL,
    tail: NIL,
    start: 0,
    fill: BLOCK as u32,
    live: 0,
    dead: 0,
};

impl List {
    /// The entries of block `b` of this list that are in it: `from..to`.
    #[inline(always)]
    fn span(&self, b: u32) -> (u32, u32) {
        let from = if b == self.head { self.start } else { 0 };
        let to = if b == self.tail {
            self.fill
        } else {
            BLOCK as u32
        };
        (from, to)
    }
}

/// A block of a list: the keys of its timers in add order (an entry whose timer's node
/// does not point back at it is a tombstone: the timer was removed or moved), one cache
/// line, read in order when the list fires or cascades.
#[derive(Clone, Copy)]
#[repr(align(64))]
struct Block([TimerKey; BLOCK]);

const _: () = assert!(std::mem::size_of::<Block>() == 64);

/// Timer `key`: its deadline, its entry's index in the pool (`block * BLOCK + i`) and its
/// list (`FREE`: no timer). 16 bytes, in key order: the event's slot index.
#[derive(Clone, Copy)]
struct Node {
    deadline: u64,
    pos: u32,
    loc: Loc,
}

const UNUSED: Node = Node {
    deadline: 0,
    pos: NIL,
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
    /// Indexed by key; grown to the highest key filed.
    nodes: Vec<Node>,
    /// The block pool, and each block's successor in its list (or in the free list).
    blocks: Vec<Block>,
    next_block: Vec<u32>,
    /// Head of the free blocks: a drained list gives its chain back in one step.
    free_blocks: u32,
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
            blocks: Vec::new(),
            next_block: Vec::new(),
            free_blocks: NIL,
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
    #[inline(always)]
    pub(crate) fn set(&mut self, key: TimerKey, deadline: u64) {
        self.take_node(key);
        self.file(key, deadline);
    }

    /// Node `key`, off any list and counted, for the caller to file.
    #[inline(always)]
    fn take_node(&mut self, key: TimerKey) {
        let i = key as usize;
        if i >= self.nodes.len() {
            self.grow(i);
        }
        if self.nodes[i].loc == FREE {
            self.len += 1;
        } else {
            self.unlink(key);
        }
    }

    /// Room for key `i` (and, growing by at least a quarter, for the keys after it).
    #[cold]
    fn grow(&mut self, i: usize) {
        let want = (i + 1).max(self.nodes.len() + self.nodes.len() / 4);
        self.nodes.resize(want, UNUSED);
    }

    /// Stages timer `key` to fire `timeout` ns after the clock reading of the next
    /// [`settle`](Self::settle), moving it if it is filed or staged already. The base stages
    /// the timers added while its loop is awake and settles them before it sleeps: one clock
    /// reading for all of them, each deadline counted from a moment no earlier than its add
    /// (never early), where a deadline per add needs a reading per add. Staged timers wait
    /// on a list of their own (FIFO, so equal timeouts keep their add order), which `poll`
    /// and `next_deadline` do not see.
    #[inline(always)]
    pub(crate) fn stage(&mut self, key: TimerKey, timeout: u64) {
        self.take_node(key);
        self.file_on(key, timeout, STAGED);
    }

    /// Files every staged timer for `now` + its timeout (a zero timeout: the start of the
    /// current tick, due at the very next poll), in stage order, telling `filed` each
    /// deadline.
    pub(crate) fn settle(&mut self, now: u64, mut filed: impl FnMut(TimerKey, u64)) {
        let list = std::mem::replace(&mut self.lists[STAGED as usize], EMPTY);
        let mut b = list.head;
        while b != NIL {
            let (from, to) = list.span(b);
            let keys = self.blocks[b as usize].0;
            for i in from..to {
                let key = keys[i as usize];
                let n = self.nodes[key as usize];
                if n.loc != STAGED || n.pos != b * BLOCK as u32 + i {
                    continue; // a tombstone
                }
                let timeout = n.deadline;
                let at = if timeout == 0 {
                    now - now % TICK_NS
                } else {
                    now.saturating_add(timeout)
                };
                self.file(key, at);
                filed(key, at);
            }
            b = self.next_block[b as usize];
        }
        if list.head != NIL {
            self.next_block[list.tail as usize] = self.free_blocks;
            self.free_blocks = list.head;
        }
    }

    /// Are timers staged (waiting for a [`settle`](Self::settle))?
    #[inline]
    pub(crate) fn has_staged(&self) -> bool {
        self.lists[STAGED as usize].head != NIL
    }

    /// The deadline of a filed timer (`None`: none, or staged).
    pub(crate) fn get(&self, key: TimerKey) -> Option<u64> {
        let n = self.nodes.get(key as usize)?;
        (n.loc != FREE && n.loc != STAGED).then_some(n.deadline)
    }

    /// The timeout of a staged timer.
    pub(crate) fn staged(&self, key: TimerKey) -> Option<u64> {
        let n = self.nodes.get(key as usize)?;
        (n.loc == STAGED).then_some(n.deadline)
    }

    /// Removes a timer; false if `key` has none.
    #[inline]
    pub(crate) fn remove(&mut self, key: TimerKey) -> bool {
        match self.nodes.get(key as usize) {
            Some(n) if n.loc != FREE => {
                self.unlink(key);
                self.nodes[key as usize].loc = FREE;
                self.len -= 1;
                true
            }
            _ => false,
        }
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

    /// The key at pool index `pos` (`block * BLOCK + i`).
    #[inline(always)]
    fn key_at(&self, pos: u32) -> TimerKey {
        self.blocks[(pos / BLOCK as u32) as usize].0[pos as usize % BLOCK]
    }

    #[inline(always)]
    fn set_key(&mut self, pos: u32, key: TimerKey) {
        self.blocks[(pos / BLOCK as u32) as usize].0[pos as usize % BLOCK] = key;
    }

    /// A block from the pool (the free list first).
    #[inline]
    fn take_block(&mut self) -> u32 {
        let b = self.free_blocks;
        if b != NIL {
            self.free_blocks = self.next_block[b as usize];
            self.next_block[b as usize] = NIL;
            return b;
        }
        self.new_block()
    }

    /// The pool is out of blocks: one more, with room reserved for as many as the current
    /// timers can ever need, so the pool grows only when the timer count reaches a new
    /// high. A list holds at most `live + dead` entries with `dead <= live + COMPACT_SLACK`,
    /// in full blocks plus a partial head and tail; a cascade holds the walked list's
    /// blocks while it files their timers again: at most `len / 4 + 4` blocks per list.
    #[cold]
    fn new_block(&mut self) -> u32 {
        if self.blocks.len() == self.blocks.capacity() {
            let bound = self.len / 4 + 4 * self.len.min(N_LISTS) + 4;
            let want = bound.max(self.blocks.len() + 1);
            self.blocks.reserve_exact(want - self.blocks.len());
            self.next_block.reserve_exact(want - self.next_block.len());
        }
        let b = self.next_block.len() as u32;
        self.next_block.push(NIL);
        self.blocks.push(Block([NIL; BLOCK]));
        b
    }

    /// Appends timer `key` to the list its deadline belongs on.
    #[inline(always)]
    fn file(&mut self, key: TimerKey, deadline: u64) {
        self.file_on(key, deadline, self.loc_of(tick_of(deadline)));
    }

    /// Appends timer `key` to list `loc`, its node holding `deadline`.
    #[inline(always)]
    fn file_on(&mut self, key: TimerKey, deadline: u64, loc: Loc) {
        if self.lists[loc as usize].fill == BLOCK as u32 {
            self.extend(loc);
        }
        let list = &mut self.lists[loc as usize];
        // (`fill` < BLOCK here: the mask only spares a bounds check.)
        let (tail, fill) = (list.tail, list.fill as usize & (BLOCK - 1));
        list.fill += 1;
        list.live += 1;
        self.blocks[tail as usize].0[fill] = key;
        let pos = tail * BLOCK as u32 + fill as u32;
        self.nodes[key as usize] = Node { deadline, pos, loc };
    }

    /// List `loc`'s tail block is full (or it has none): a new tail block from the pool.
    #[inline]
    fn extend(&mut self, loc: Loc) {
        let b = self.take_block();
        let list = &mut self.lists[loc as usize];
        if list.tail == NIL {
            list.head = b;
            list.start = 0;
            if loc < WHEEL_LISTS {
                self.occupied[loc as usize / 64] |= 1 << (loc as usize % 64);
            }
        } else {
            self.next_block[list.tail as usize] = b;
        }
        list.tail = b;
        list.fill = 0;
    }

    /// Takes a filed timer off its list, its node marked free (the caller files it again or
    /// leaves it so). Its entry stays behind as a tombstone without being written: an entry
    /// is a timer's only while that timer's node points back at it ([`Self::live_at`]), so
    /// a removal touches the node and the list's counts, not the entry's block (a cache
    /// miss saved per random removal). The list's first entry is passed over instead, and
    /// an emptied head block given back; an emptied list gives its blocks back, one with
    /// too many tombstones is compacted.
    #[inline(always)]
    fn unlink(&mut self, key: TimerKey) {
        let Node { pos, loc, .. } = self.nodes[key as usize];
        self.nodes[key as usize].loc = FREE;
        let list = &mut self.lists[loc as usize];
        list.live -= 1;
        if list.live == 0 {
            self.release_list(loc);
            return;
        }
        if pos == list.head * BLOCK as u32 + list.start {
            list.start += 1;
            let to = if list.head == list.tail {
                list.fill
            } else {
                BLOCK as u32
            };
            // (Tombstones right after it are left for the next removal to count, or for
            // `trim_head` when the block runs out: telling one from a timer reads its
            // node, a cache miss on a random removal.)
            if list.start == to {
                self.trim_head(loc);
            }
            return;
        }
        list.dead += 1;
        if list.dead > list.live + COMPACT_SLACK {
            self.compact(loc);
        }
    }

    /// Is the entry at pool index `pos` of list `loc` a timer's (its node points back at it),
    /// not a tombstone?
    #[inline(always)]
    fn live_at(&self, pos: u32, loc: Loc) -> bool {
        let key = self.key_at(pos);
        self.nodes
            .get(key as usize)
            .is_some_and(|n| n.loc == loc && n.pos == pos)
    }

    /// Moves list `loc`'s `start` past its leading tombstones, giving emptied head blocks
    /// back to the pool (each tombstone is passed once; the list has a timer, so this
    /// stops at it).
    #[cold]
    fn trim_head(&mut self, loc: Loc) {
        let mut list = self.lists[loc as usize];
        loop {
            let (_, to) = list.span(list.head);
            let base = list.head * BLOCK as u32;
            while list.start < to && !self.live_at(base + list.start, loc) {
                list.start += 1;
                list.dead -= 1;
            }
            if list.start < to {
                break;
            }
            let b = list.head;
            list.head = self.next_block[b as usize];
            list.start = 0;
            self.next_block[b as usize] = self.free_blocks;
            self.free_blocks = b;
        }
        self.lists[loc as usize] = list;
    }

    /// Empties list `loc`, its chain of blocks going back to the pool in one step.
    fn release_list(&mut self, loc: Loc) {
        let list = std::mem::replace(&mut self.lists[loc as usize], EMPTY);
        if list.head != NIL {
            self.next_block[list.tail as usize] = self.free_blocks;
            self.free_blocks = list.head;
        }
        if loc < WHEEL_LISTS {
            self.occupied[loc as usize / 64] &= !(1 << (loc as usize % 64));
        }
    }

    /// Moves list `loc`'s timers to the front of its chain, in order, dropping its
    /// tombstones (each moved timer's node follows); blocks no longer needed go back to the
    /// pool. Amortized: a list is compacted only after more removals than it has timers.
    #[cold]
    fn compact(&mut self, loc: Loc) {
        let list = self.lists[loc as usize];
        let (mut wb, mut wi) = (list.head, 0u32);
        let mut rb = list.head;
        while rb != NIL {
            let (from, to) = list.span(rb);
            for ri in from..to {
                let at = rb * BLOCK as u32 + ri;
                if !self.live_at(at, loc) {
                    continue;
                }
                let key = self.key_at(at);
                if wi == BLOCK as u32 {
                    wb = self.next_block[wb as usize];
                    wi = 0;
                }
                let pos = wb * BLOCK as u32 + wi;
                self.set_key(pos, key);
                self.nodes[key as usize].pos = pos;
                wi += 1;
            }
            rb = self.next_block[rb as usize];
        }
        // `wb` is the new tail (the list has a timer: compaction needs `live` > 0); the
        // blocks after it are free.
        let rest = std::mem::replace(&mut self.next_block[wb as usize], NIL);
        if rest != NIL {
            self.next_block[list.tail as usize] = self.free_blocks;
            self.free_blocks = rest;
        }
        let l = &mut self.lists[loc as usize];
        l.tail = wb;
        l.start = 0;
        l.fill = wi;
        l.dead = 0;
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
            // Detached while it is walked (its blocks go back to the pool after: a cascade
            // files into lower lists, which take blocks from the pool meanwhile).
            let list = std::mem::replace(&mut self.lists[loc as usize], EMPTY);
            if loc < WHEEL_LISTS {
                self.occupied[loc as usize / 64] &= !(1 << (loc as usize % 64));
            }
            let fire = loc == DUE || loc < L0_SLOTS as Loc;
            let start = out.len();
            let mut b = list.head;
            while b != NIL {
                let (from, to) = list.span(b);
                let next = self.next_block[b as usize];
                let keys = self.blocks[b as usize].0;
                for i in from..to {
                    let key = keys[i as usize];
                    let n = &mut self.nodes[key as usize];
                    if n.loc != loc || n.pos != b * BLOCK as u32 + i {
                        continue; // a tombstone
                    }
                    let deadline = n.deadline;
                    if fire {
                        n.loc = FREE;
                        self.len -= 1;
                        out.push(Expired {
                            deadline,
                            key,
                            pos: 0,
                        });
                    } else {
                        self.file(key, deadline);
                    }
                }
                b = next;
            }
            if list.head != NIL {
                self.next_block[list.tail as usize] = self.free_blocks;
                self.free_blocks = list.head;
            }
            if fire {
                // A slot of the first level is exactly one tick; the due list may span several.
                let tick = (loc != DUE).then_some(at);
                sort_run(&mut out[start..], tick, &mut self.scratch);
            }
        }
        self.elapsed = self.elapsed.max(now_tick);
    }
}

mod check;
mod sort;
use sort::sort_run;

#[cfg(test)]
mod tests;
