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
    /// [`reserve_extents`](EvBuffer::reserve_extents) only: the memory of
    /// empty chunks that logically follow the chain (libevent keeps the
    /// empty chains a reservation added until something else is linked in),
    /// in order. Reused by the next `reserve_extents` while `gen` matches.
    idle: Vec<BytesMut>,
    /// Made by `reserve_extents`: its empty chunks outlive a commit.
    extents: bool,
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
                    idle: Vec::new(),
                    extents: false,
                }));
                self.cancel_reservation();
                return Err(e);
            }
        }
        self.reservation = Some(Box::new(Reservation {
            gen: self.gen,
            parts,
            idle: Vec::new(),
            extents: false,
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
        let keep_idle = r.extents;
        let mut idle = Vec::new();
        for (i, Part { from, mut mem }) in r.parts.into_iter().enumerate() {
            let l = lens.get(i).copied().unwrap_or(0);
            mem.truncate(l);
            total += l;
            // The generation check guarantees the chain is as it was, so
            // `from` still names the chunk the region came from.
            if let Some(Chunk::Mem(t)) = from.and_then(|ci| self.chunks.get_mut(ci)) {
                t.unsplit(mem);
            } else if l > 0 {
                // Empty chunks before this one would sit before data: gone.
                idle.clear();
                self.push_back_chunk(Chunk::Mem(mem));
            } else if keep_idle {
                idle.push(mem);
            }
        }
        self.len += total;
        if keep_idle {
            idle.extend(r.idle);
            if !idle.is_empty() {
                // Valid as long as nothing but the `changed` below happens.
                self.reservation = Some(Box::new(Reservation {
                    gen: self.gen.wrapping_add(1),
                    parts: Vec::new(),
                    idle,
                    extents: true,
                }));
            }
        }
        self.changed(orig, total, 0);
        Ok(total)
    }
}

impl EvBuffer {
    /// Reserves at least `n` writable bytes at the end in at most `nvec`
    /// slices, laid out as libevent 2.1's `evbuffer_reserve_space` lays them
    /// out (for the C layer; [`reserve_space`](Self::reserve_space) is the
    /// exact-size variant). Each slice is the **whole** free space of its
    /// chunk, so together they may exceed `n`: first the free space after
    /// the last data (if any), then empty chunks, one slice each. With
    /// `nvec == 1` that is one chunk with at least `n` free bytes. With more,
    /// the free space after the data and the empty chunks after it are
    /// counted until they hold `n`; if `nvec` of them do not, one new chunk
    /// is added for the rest, or, when all `nvec` are used up, the empty
    /// chunks are replaced by one chunk big enough. `n == 0` gives no slices.
    ///
    /// New chunks stay in the chain when nothing is committed to them, as
    /// libevent's do: a later `reserve_extents` with no other change in
    /// between hands the same memory out again. Commit with
    /// [`commit_space`](Self::commit_space). Fails like `reserve_space`.
    ///
    /// ```
    /// use evrs_buffer::EvBuffer;
    /// let mut buf = EvBuffer::new();
    /// let v = buf.reserve_extents(100, 2).unwrap();
    /// assert_eq!(v.len(), 1);
    /// assert!(v[0].len() >= 100); // the whole new chunk
    /// let (first, len) = (v[0].as_ptr(), v[0].len());
    /// // Nothing committed: the chunk stays, and one more comes after it.
    /// let v = buf.reserve_extents(len + 10, 2).unwrap();
    /// assert_eq!((v.len(), v[0].as_ptr()), (2, first));
    /// ```
    pub fn reserve_extents(&mut self, n: usize, nvec: usize) -> Result<Vec<&mut [u8]>> {
        self.check_end()?;
        if nvec == 0 {
            return Err(Error::InvalidReservation);
        }
        let mut idle = self.take_idle();
        self.touch();
        let mut parts = Vec::new();
        let r = if n > 0 {
            self.extent_parts(n, nvec, &mut idle, &mut parts)
        } else {
            Ok(())
        };
        self.reservation = Some(Box::new(Reservation {
            gen: self.gen,
            parts,
            idle,
            extents: true,
        }));
        r?;
        Ok(self
            .reservation
            .as_mut()
            .map(|r| r.parts.iter_mut().map(|p| &mut p.mem[..]).collect())
            .unwrap_or_default())
    }

    /// Ends a pending reservation and returns the empty chunks' memory that
    /// logically follows the chain, in order: the trailing empty chunks of
    /// the chain itself, then those the reservation kept (if the buffer is
    /// unchanged since; else they are dropped). Space split off the last
    /// chunk with data goes back to it.
    fn take_idle(&mut self) -> Vec<BytesMut> {
        let mut kept = Vec::new();
        if let Some(r) = self.reservation.take() {
            if r.gen == self.gen {
                for Part { from, mut mem } in r.parts {
                    mem.clear();
                    match from.and_then(|ci| self.chunks.get_mut(ci)) {
                        Some(Chunk::Mem(t)) => t.unsplit(mem),
                        _ if from.is_none() => kept.push(mem),
                        _ => {}
                    }
                }
                kept.extend(r.idle);
            }
        }
        let mut tail = Vec::new();
        while let Some(Chunk::Mem(t)) = self.chunks.back() {
            if !t.is_empty() {
                break;
            }
            if let Some(Chunk::Mem(t)) = self.chunks.pop_back() {
                tail.push(t);
            }
        }
        tail.reverse();
        tail.extend(kept);
        tail
    }

    /// The slices for `reserve_extents`: see there. Allocates before it
    /// splits anything off, so on [`Error::NoMemory`] `parts` is empty.
    fn extent_parts(
        &mut self,
        n: usize,
        nvec: usize,
        idle: &mut Vec<BytesMut>,
        parts: &mut Vec<Part>,
    ) -> Result<()> {
        let last = self.chunks.iter().rposition(|c| c.len() > 0);
        let (spare, last_cap) = match last.and_then(|i| self.chunks.get(i)) {
            Some(Chunk::Mem(t)) => (t.capacity() - t.len(), t.capacity()),
            _ => (0, 0),
        };
        let last_cap = idle.last().map_or(last_cap, |m| m.capacity());
        // How many slices of the free space after the data and of the empty
        // chunks there are, and which (`use_spare`, then `from_idle` of them).
        let (use_spare, from_idle) = if nvec == 1 {
            if spare >= n {
                (true, 0)
            } else if idle.first().is_some_and(|m| m.capacity() >= n) {
                (false, 1)
            } else {
                let m = try_alloc(next_chunk_size(n, last_cap))?;
                idle.clear();
                idle.push(m);
                (false, 1)
            }
        } else {
            let mut used = usize::from(spare > 0);
            let mut avail = spare;
            let mut k = 0;
            while avail < n && used < nvec && k < idle.len() {
                avail += idle.get(k).map_or(0, |m| m.capacity());
                used += 1;
                k += 1;
            }
            if avail < n {
                if used < nvec {
                    idle.push(try_alloc(next_chunk_size(n - avail, last_cap))?);
                    k += 1;
                } else {
                    // Every slice used: one chunk for what the data's chunk lacks.
                    let m = try_alloc(next_chunk_size(n - spare, last_cap))?;
                    idle.clear();
                    idle.push(m);
                    k = 1;
                }
            }
            (spare > 0, k)
        };
        if use_spare {
            if let Some(Chunk::Mem(t)) = last.and_then(|i| self.chunks.get_mut(i)) {
                let mut mem = t.split_off(t.len());
                let cap = mem.capacity();
                mem.resize(cap, 0);
                parts.push(Part { from: last, mem });
            }
        }
        for mut mem in idle.drain(..from_idle.min(idle.len())) {
            let cap = mem.capacity();
            mem.resize(cap, 0);
            parts.push(Part { from: None, mem });
        }
        Ok(())
    }
}
