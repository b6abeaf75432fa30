//! The base's pool of spare buffer memory: a bufferevent whose buffers are empty gives their
//! kept memory back after each dispatch, and one about to read takes some. An echo server
//! then allocates nothing per message and an idle connection holds no buffer memory at all
//! (otherwise every connection that ever moved data keeps a chunk per buffer).

use super::{Bev, BufferEvent};
use crate::base::EventBase;

/// Spares kept per base: enough for the connections active in one loop iteration's
/// bursts; beyond it emptied memory is freed.
pub(super) const MAX_SPARES: usize = 256;

impl EventBase {
    /// The state of `bev` about to read: an input that holds no memory gets a spare first,
    /// if the pool has one (one lookup for both).
    pub(super) fn bev_state_lending(&mut self, bev: BufferEvent) -> Option<&mut Bev> {
        if bev.base != self.id() {
            return None;
        }
        let bevs = self.bevs();
        let b = bevs.table.get_mut(bev.idx, bev.gen)?;
        if !b.input.holds_memory() {
            if let Some(spare) = bevs.spares.pop() {
                if let Some(back) = b.input.give_spare(spare) {
                    bevs.spares.push(back);
                }
            }
        }
        Some(b)
    }

    /// After a dispatch: the memory its empty buffers kept goes back to the pool (or is
    /// freed when the pool is full).
    pub(super) fn bev_reclaim_spares(&mut self, bev: BufferEvent) {
        if let Some((b, spares)) = self.bev_entry(bev) {
            reclaim_into(b, spares);
        }
    }

    /// The state of `bev` and the base's pool of spares (one lookup for both).
    #[inline]
    pub(super) fn bev_entry(&mut self, bev: BufferEvent) -> Option<(&mut Bev, &mut Spares)> {
        if bev.base != self.id() {
            return None;
        }
        let bevs = self.bevs();
        let b = bevs.table.get_mut(bev.idx, bev.gen)?;
        Some((b, &mut bevs.spares))
    }
}

/// The pool of spare buffer memory.
pub(super) type Spares = Vec<evrs_buffer::Spare>;

/// The memory `b`'s empty buffers kept goes to the pool (or is freed when the pool is full).
pub(super) fn reclaim_into(b: &mut Bev, spares: &mut Spares) {
    for buf in [&mut b.output, &mut b.input] {
        if !buf.is_empty() {
            continue;
        }
        if let Some(spare) = buf.take_spare() {
            if spares.len() < MAX_SPARES {
                if spares.capacity() == 0 {
                    spares.reserve_exact(MAX_SPARES);
                }
                spares.push(spare);
            }
        }
    }
}
