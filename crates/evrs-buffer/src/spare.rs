//! Handing an emptied buffer's memory to another buffer: a server with many idle
//! connections keeps a small pool of it instead of one chunk per connection.

use std::collections::VecDeque;

use crate::chunk::Chunk;
use crate::EvBuffer;

/// The memory an empty buffer kept for its next data — its chunk list and at most one empty
/// memory chunk — taken out with [`EvBuffer::take_spare`] and given to an empty buffer with
/// [`EvBuffer::give_spare`].
pub struct Spare(VecDeque<Chunk>);

impl std::fmt::Debug for Spare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cap = match self.0.front() {
            Some(Chunk::Mem(b)) => b.capacity(),
            _ => 0,
        };
        f.debug_struct("Spare")
            .field("chunk_capacity", &cap)
            .finish()
    }
}

impl EvBuffer {
    /// Whether the buffer holds memory (data, or space kept for the next data).
    #[inline]
    pub fn holds_memory(&self) -> bool {
        self.len != 0 || self.chunks.capacity() != 0
    }

    /// Takes the memory an empty buffer kept for its next append (`None` if it holds
    /// data or nothing, is frozen, or has space reserved). The buffer then holds no memory
    /// until it gets data (or a spare) again.
    #[inline]
    pub fn take_spare(&mut self) -> Option<Spare> {
        if self.len != 0
            || self.chunks.capacity() == 0
            || self.freeze_start
            || self.freeze_end
            || self.reservation.is_some()
        {
            return None;
        }
        // An empty buffer holds at most one empty chunk; only a memory one is worth keeping.
        if self.chunks.len() > 1 {
            self.chunks.truncate(1);
        }
        if !matches!(self.chunks.front(), None | Some(Chunk::Mem(_))) {
            self.chunks.clear();
        }
        self.touch();
        Some(Spare(std::mem::take(&mut self.chunks)))
    }

    /// Gives an empty buffer that holds no memory `spare` for its next data; returns it
    /// back if the buffer cannot take it (it holds memory already).
    #[inline]
    pub fn give_spare(&mut self, spare: Spare) -> Option<Spare> {
        if self.holds_memory() {
            return Some(spare);
        }
        let none = std::mem::replace(&mut self.chunks, spare.0);
        // A buffer that holds no memory has an unallocated chunk list: nothing to drop
        // (forgetting it skips the drop code's work, on every read of an echo).
        debug_assert_eq!(none.capacity(), 0);
        std::mem::forget(none);
        self.touch();
        None
    }
}
