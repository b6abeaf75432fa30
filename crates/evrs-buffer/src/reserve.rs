//! Reserving writable space and committing it (libevent's
//! `evbuffer_reserve_space` / `evbuffer_commit_space`).

use bytes::BytesMut;

use crate::chunk::{next_chunk_size, Chunk};
use crate::error::{Error, Result};
use crate::EvBuffer;

/// Space handed out by `reserve_space`, waiting for `commit_space`.
#[derive(Debug)]
pub(crate) struct Reservation {
    /// The buffer generation right after reserving; any later change
    /// invalidates the reservation.
    gen: u64,
    /// The reserved regions, zero-filled. The first may have been split off
    /// the tail chunk's spare capacity (`from_tail`) and is joined back.
    parts: Vec<BytesMut>,
    from_tail: bool,
}

impl EvBuffer {
    /// Reserves `n` writable bytes at the end, in at most `nvec` slices
    /// (libevent's `evbuffer_reserve_space`). With `nvec == 1` the space is
    /// one contiguous slice; with more it may use the tail's free space plus
    /// one new chunk (never more than two slices). The slices add up to
    /// exactly `n` bytes and start zero-filled.
    ///
    /// Write into them, then call [`commit_space`](Self::commit_space) with
    /// how much of each was filled. Any other change to the buffer in
    /// between cancels the reservation. Fails if the end is frozen or
    /// `nvec == 0`.
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
        self.touch();
        let mut parts = Vec::with_capacity(2);
        let mut from_tail = false;
        let mut last_cap = 0;
        if let Some(Chunk::Mem(t)) = self.chunks.back_mut() {
            let spare = t.capacity() - t.len();
            last_cap = t.capacity();
            if t.is_empty() && spare < n {
                t.reserve(n);
            }
            let spare = t.capacity() - t.len();
            if n > 0 && (spare >= n || (nvec > 1 && spare > 0)) {
                let mut p = t.split_off(t.len());
                p.resize(spare.min(n), 0);
                parts.push(p);
                from_tail = true;
            }
        }
        let have: usize = parts.iter().map(|p| p.len()).sum();
        if have < n {
            let mut p = BytesMut::with_capacity(next_chunk_size(n - have, last_cap));
            p.resize(n - have, 0);
            parts.push(p);
        }
        self.reservation = Some(Reservation {
            gen: self.gen,
            parts,
            from_tail,
        });
        Ok(self
            .reservation
            .as_mut()
            .map(|r| r.parts.iter_mut().map(|p| &mut p[..]).collect())
            .unwrap_or_default())
    }

    /// Adds the first `lens[i]` bytes of each reserved slice to the buffer
    /// (libevent's `evbuffer_commit_space`) and returns the total. Committing
    /// less than was reserved is fine; an empty `lens` commits nothing and
    /// returns 0.
    ///
    /// Fails with [`Error::InvalidReservation`] (adding nothing) if there is
    /// no reservation, the buffer changed since it was made, `lens` has more
    /// entries than there were slices, or any length exceeds its slice.
    pub fn commit_space(&mut self, lens: &[usize]) -> Result<usize> {
        self.check_end()?;
        if lens.is_empty() {
            return Ok(0);
        }
        let Some(r) = self.reservation.take() else {
            return Err(Error::InvalidReservation);
        };
        if r.gen != self.gen
            || lens.len() > r.parts.len()
            || lens.iter().zip(&r.parts).any(|(&l, p)| l > p.len())
        {
            return Err(Error::InvalidReservation);
        }
        let orig = self.len;
        let mut total = 0;
        for (i, mut p) in r.parts.into_iter().enumerate() {
            let l = lens.get(i).copied().unwrap_or(0);
            p.truncate(l);
            total += l;
            if i == 0 && r.from_tail {
                if let Some(Chunk::Mem(t)) = self.chunks.back_mut() {
                    t.unsplit(p);
                    continue;
                }
            }
            if l > 0 {
                self.push_back_chunk(Chunk::Mem(p));
            }
        }
        self.len += total;
        self.changed(orig, total, 0);
        Ok(total)
    }
}
