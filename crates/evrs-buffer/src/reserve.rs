//! Reserving writable space and committing it (libevent's
//! `evbuffer_reserve_space` / `evbuffer_commit_space`).

use bytes::BytesMut;

use crate::chunk::{next_chunk_size, try_alloc, Chunk};
use crate::error::{Error, Result};
use crate::EvBuffer;

/// Space handed out by `reserve_space`, waiting for `commit_space`.
#[derive(Debug)]
pub(crate) struct Reservation {
    /// The buffer generation right after reserving; any later change
    /// invalidates the reservation.
    gen: u64,
    /// The reserved regions in chain order, zero-filled.
    parts: Vec<Part>,
}

/// One reserved region: the spare capacity split off an existing chunk
/// (joined back on commit), or a new chunk (pushed at the end).
#[derive(Debug)]
struct Part {
    /// Index of the chunk the region was split from.
    from: Option<usize>,
    mem: BytesMut,
}

impl EvBuffer {
    /// Reserves `n` writable bytes at the end, in at most `nvec` slices
    /// (libevent's `evbuffer_reserve_space`). With `nvec == 1` the space is
    /// one contiguous slice. With more, the free space of the chunks at the
    /// end of the chain is used first, one slice each (at most `nvec - 1`
    /// of them unless they cover `n`), and one new chunk takes the rest. The
    /// slices add up to exactly `n` bytes and start zero-filled; `n == 0`
    /// gives no slices.
    ///
    /// Write into them, then call [`commit_space`](Self::commit_space) with
    /// how much of each was filled. Any other change to the buffer in
    /// between cancels the reservation. Fails if the end is frozen or
    /// `nvec == 0` ([`Error::InvalidReservation`]), or with
    /// [`Error::NoMemory`] if `n` bytes cannot be allocated (the buffer is
    /// then unchanged and has no reservation).
    ///
    /// ```
    /// use evrs_buffer::EvBuffer;
    /// let mut buf = EvBuffer::new();
    /// let mut vecs = buf.reserve_space(16, 1).unwrap();
    /// vecs[0][..5].copy_from_slice(b"hello");
    /// buf.commit_space(&[5]).unwrap();
    /// assert_eq!(buf.to_vec(), b"hello");
    /// ```
    pub fn reserve_space(&mut self, n: usize, nvec: usize) -> Result<Vec<&mut [u8]>> {
        self.check_end()?;
        if nvec == 0 {
            return Err(Error::InvalidReservation);
        }
        self.cancel_reservation();
        self.touch();
        let mut parts = Vec::new();
        if n > 0 {
            if let Err(e) = self.reserve_parts(n, nvec, &mut parts) {
                // Give the space split off existing chunks back.
                self.reservation = Some(Box::new(Reservation {
                    gen: self.gen,
                    parts,
                }));
                self.cancel_reservation();
                return Err(e);
            }
        }
        self.reservation = Some(Box::new(Reservation {
            gen: self.gen,
            parts,
        }));
        Ok(self
            .reservation
            .as_mut()
            .map(|r| r.parts.iter_mut().map(|p| &mut p.mem[..]).collect())
            .unwrap_or_default())
    }

    /// Drops a pending reservation; if the chain is unchanged since, the
    /// space split off existing chunks goes back to them.
    fn cancel_reservation(&mut self) {
        let Some(r) = self.reservation.take() else {
            return;
        };
        if r.gen != self.gen {
            return;
        }
        for Part { from, mut mem } in r.parts {
            if let Some(Chunk::Mem(t)) = from.and_then(|ci| self.chunks.get_mut(ci)) {
                mem.clear();
                t.unsplit(mem);
            }
        }
    }

    /// Splits `n > 0` bytes of zero-filled space into `parts`. On
    /// [`Error::NoMemory`] the parts split so far are still in `parts`.
    fn reserve_parts(&mut self, n: usize, nvec: usize, parts: &mut Vec<Part>) -> Result<()> {
        // Chunks with usable spare capacity: the last one holding data (if
        // owned memory) and the empty owned ones after it.
        let first = match self.chunks.iter().rposition(|c| c.len() > 0) {
            Some(i) if matches!(self.chunks.get(i), Some(Chunk::Mem(_))) => i,
            Some(i) => i + 1,
            None => 0,
        };
        let count = self.chunks.len();
        let spare_of = |c: &Chunk| match c {
            Chunk::Mem(t) => t.capacity() - t.len(),
            _ => 0,
        };
        // A lone empty tail grows in place instead of adding a chunk.
        let others: usize = (first..count.saturating_sub(1))
            .filter_map(|i| self.chunks.get(i).map(spare_of))
            .sum();
        if let Some(Chunk::Mem(t)) = self.chunks.back_mut() {
            if t.is_empty() && t.capacity() < n && (nvec == 1 || others == 0) {
                *t = try_alloc(n)?;
            }
        }
        let mut left = n;
        for i in first..count {
            let Some(Chunk::Mem(t)) = self.chunks.get_mut(i) else {
                continue;
            };
            let spare = t.capacity() - t.len();
            if spare == 0 {
                continue;
            }
            if nvec == 1 && spare < n {
                continue;
            }
            if parts.len() + 1 == nvec && spare < left {
                // Keep the last slice for a new chunk holding the rest.
                break;
            }
            let take = spare.min(left);
            let mut mem = t.split_off(t.len());
            mem.resize(take, 0);
            parts.push(Part { from: Some(i), mem });
            left -= take;
            if left == 0 || parts.len() == nvec {
                break;
            }
        }
        if left > 0 {
            let last_cap = match self.chunks.back() {
                Some(Chunk::Mem(t)) => t.capacity(),
                _ => 0,
            };
            let mut mem = try_alloc(next_chunk_size(left, last_cap))?;
            mem.resize(left, 0);
            parts.push(Part { from: None, mem });
        }
        Ok(())
    }

    /// Adds the first `lens[i]` bytes of each reserved slice to the buffer
    /// (libevent's `evbuffer_commit_space`) and returns the total. Committing
    /// less than was reserved is fine; an empty `lens` commits nothing and
    /// returns 0.
    ///
    /// Fails with [`Error::InvalidReservation`] (adding nothing) if there is
    /// no reservation, the buffer changed since it was made, `lens` has more
    /// entries than there were slices, or any length exceeds its slice. All
    /// of this is checked before anything is added; after a bad `lens` the
    /// reservation is still there to commit correctly.
    pub fn commit_space(&mut self, lens: &[usize]) -> Result<usize> {
        self.check_end()?;
        if lens.is_empty() {
            return Ok(0);
        }
        let Some(r) = self.reservation.take() else {
            return Err(Error::InvalidReservation);
        };
        if r.gen != self.gen {
            return Err(Error::InvalidReservation);
        }
        if lens.len() > r.parts.len() || lens.iter().zip(&r.parts).any(|(&l, p)| l > p.mem.len()) {
            // Nothing happened: the reservation stays usable.
            self.reservation = Some(r);
            return Err(Error::InvalidReservation);
        }
        let orig = self.len;
        let mut total = 0;
        for (i, Part { from, mut mem }) in r.parts.into_iter().enumerate() {
            let l = lens.get(i).copied().unwrap_or(0);
            mem.truncate(l);
            total += l;
            // The generation check guarantees the chain is as it was, so
            // `from` still names the chunk the region came from.
            if let Some(Chunk::Mem(t)) = from.and_then(|ci| self.chunks.get_mut(ci)) {
                t.unsplit(mem);
            } else if l > 0 {
                self.push_back_chunk(Chunk::Mem(mem));
            }
        }
        self.len += total;
        self.changed(orig, total, 0);
        Ok(total)
    }
}
