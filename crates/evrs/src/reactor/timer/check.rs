//! The wheel's invariant checker (`Wheel::check`, called by the base's `verify`).

use super::*;

impl Wheel {
    /// The wheel's own invariants (for `verify`): every timer's entry is on the list its
    /// tick belongs on now and its node points back at it; each list's counts, tail and
    /// fill match its chain, an empty list holds no blocks, each occupancy bit is set
    /// exactly for a non-empty wheel list; every block is on one list or the free list;
    /// `len` counts the timers and the nodes marked filed.
    pub(crate) fn check(&self) -> Result<(), String> {
        let (mut timers, mut used) = (0usize, 0usize);
        for (loc, list) in self.lists.iter().enumerate() {
            let (mut live, mut dead, mut blocks) = (0u32, 0u32, 0usize);
            let (mut b, mut last) = (list.head, NIL);
            while b != NIL {
                blocks += 1;
                if blocks > self.next_block.len() {
                    return Err(format!("wheel list {loc}: a cycle"));
                }
                let (from, to) = list.span(b);
                if from >= to || to > BLOCK as u32 {
                    return Err(format!("wheel list {loc}: block {b} spans {from}..{to}"));
                }
                for i in from..to {
                    let pos = b * BLOCK as u32 + i;
                    let key = self.key_at(pos);
                    if key as usize >= self.nodes.len() {
                        return Err(format!("wheel list {loc}: key {key} out of range"));
                    }
                    // A tombstone, unless its node points back (a node filed elsewhere, or
                    // pointing at an entry that is not its own, leaves `marked` above the
                    // timers counted here).
                    if !self.live_at(pos, loc as Loc) {
                        dead += 1;
                        continue;
                    }
                    let node = self.nodes[key as usize];
                    // Exactly where `set` would file it now: a poll cascades every slot the
                    // wheel reaches, so nothing is left behind in a coarser list (and no
                    // slot at or behind the wheel's own digit is occupied).
                    let home = self.loc_of(tick_of(node.deadline));
                    if loc != STAGED as usize && home as usize != loc {
                        return Err(format!("wheel list {loc}: key {key} belongs on {home}"));
                    }
                    live += 1;
                }
                last = b;
                b = self.next_block[b as usize];
            }
            if last != list.tail || (list.head == NIL) != (list.tail == NIL) {
                return Err(format!("wheel list {loc}: tail is not the last block"));
            }
            if live != list.live || dead != list.dead {
                return Err(format!(
                    "wheel list {loc}: {live} timers and {dead} tombstones, counted {} and {}",
                    list.live, list.dead
                ));
            }
            if list.head != NIL && live == 0 {
                return Err(format!("wheel list {loc}: no timers but {blocks} blocks"));
            }
            if loc < WHEEL_LISTS as usize {
                let bit = self.occupied[loc / 64] >> (loc % 64) & 1 == 1;
                if bit != (live > 0) {
                    return Err(format!(
                        "wheel list {loc}: occupancy bit {bit}, {live} timers"
                    ));
                }
            }
            timers += live as usize;
            used += blocks;
        }
        if timers != self.len {
            return Err(format!("wheel: {timers} timers on lists, len {}", self.len));
        }
        let marked = self.nodes.iter().filter(|n| n.loc != FREE).count();
        if marked != timers {
            return Err(format!(
                "wheel: {timers} timers on lists, {marked} nodes marked filed"
            ));
        }
        let (mut b, mut free) = (self.free_blocks, 0usize);
        while b != NIL {
            free += 1;
            if free > self.next_block.len() {
                return Err("wheel free blocks: a cycle".into());
            }
            b = self.next_block[b as usize];
        }
        if used + free != self.next_block.len() || self.blocks.len() != self.next_block.len() {
            return Err(format!(
                "wheel: {used} blocks on lists + {free} free of {}",
                self.next_block.len()
            ));
        }
        Ok(())
    }
}
