//! Taking data out: drain, remove, copyout, zero-copy removal into another
//! buffer, and pullup.

use std::io;

use bytes::Bytes;

use crate::chunk::{try_alloc, Chunk};
use crate::error::{Error, Result};
use crate::lazy::PIECE;
use crate::ptr::BufferPtr;
use crate::EvBuffer;

/// Partial chunks up to this size are copied by `remove_buffer`; larger
/// ones are split without copying.
const COPY_PARTIAL_MAX: usize = 512;

impl EvBuffer {
    /// Discards up to `n` bytes from the front and returns how many were
    /// discarded (libevent's `evbuffer_drain`; `n` larger than the buffer
    /// drains everything). An empty buffer returns 0 even when frozen;
    /// otherwise a frozen start fails.
    pub fn drain(&mut self, n: usize) -> Result<usize> {
        if self.len == 0 {
            return Ok(0);
        }
        self.check_start()?;
        let orig = self.len;
        let n = n.min(self.len);
        self.drop_front(n);
        self.changed(orig, 0, n);
        Ok(n)
    }

    /// Copies up to `out.len()` bytes from the front into `out` without
    /// removing them; returns the count (libevent's `evbuffer_copyout`).
    ///
    /// Nothing to copy returns 0; otherwise a frozen start fails (a libevent
    /// quirk kept on purpose: nothing would be removed).
    pub fn copyout(&self, out: &mut [u8]) -> Result<usize> {
        let n = out.len().min(self.len);
        if n == 0 {
            return Ok(0);
        }
        self.check_start()?;
        let c = self.resolve(None)?;
        self.copy_from(c.chunk, c.off, &mut out[..n])
    }

    /// Like [`copyout`](Self::copyout) but starting at `pos`
    /// (libevent's `evbuffer_copyout_from`). A stale position beyond the end
    /// fails with [`Error::OutOfRange`].
    pub fn copyout_from(&self, pos: &BufferPtr, out: &mut [u8]) -> Result<usize> {
        let c = self.resolve(Some(pos))?;
        let n = out.len().min(self.len - c.pos);
        if n == 0 {
            return Ok(0);
        }
        self.check_start()?;
        self.copy_from(c.chunk, c.off, &mut out[..n])
    }

    /// Copies up to `out.len()` bytes from the front into `out` and removes
    /// them (libevent's `evbuffer_remove`).
    #[inline]
    pub fn remove(&mut self, out: &mut [u8]) -> Result<usize> {
        let n = self.copyout(out)?;
        if n > 0 {
            let orig = self.len;
            self.drop_front(n);
            self.changed(orig, 0, n);
        }
        Ok(n)
    }

    /// Removes up to `n` bytes from the front and returns them as `Bytes`,
    /// without copying when they lie in one chunk. When they must be copied
    /// (or read from a file) and that much memory cannot be allocated, fails
    /// with [`Error::NoMemory`] and removes nothing.
    pub fn remove_bytes(&mut self, n: usize) -> Result<Bytes> {
        let n = n.min(self.len);
        if n == 0 {
            return Ok(Bytes::new());
        }
        self.check_start()?;
        let orig = self.len;
        let b = self.take_front(n)?;
        self.changed(orig, 0, n);
        Ok(b)
    }

    /// Internal: removes exactly `n <= len` bytes from the front as `Bytes`.
    /// On an error nothing is removed.
    pub(crate) fn take_front(&mut self, n: usize) -> Result<Bytes> {
        self.drop_empty_front();
        if n > 0 && self.chunks.front().is_some_and(|f| f.len() >= n) {
            // Lazy file data is read in exactly, then split off.
            self.load_chunk(0, n)?;
        }
        if let Some(front) = self.chunks.front_mut() {
            if front.len() >= n && front.in_memory() {
                let b = front.split_to_bytes(n);
                self.len -= n;
                if front.len() == 0 && self.chunks.len() > 1 {
                    self.chunks.pop_front();
                }
                return Ok(b);
            }
        }
        let mut v = try_alloc(n)?;
        v.resize(n, 0);
        let got = self.copy_from(0, 0, &mut v)?;
        v.truncate(got);
        self.drop_front(got);
        Ok(v.freeze())
    }

    /// Moves up to `n` bytes from the front of `self` to the end of `dst`
    /// (libevent's `evbuffer_remove_buffer`). Whole chunks are relinked; a
    /// partial chunk is split without copying (or copied if small). Returns
    /// the bytes moved; `n == 0` returns 0 without checks. Fails with
    /// [`Error::OutOfRange`] if `dst` would hold more than `usize::MAX`
    /// bytes.
    pub fn remove_buffer(&mut self, dst: &mut EvBuffer, n: usize) -> Result<usize> {
        if n == 0 {
            return Ok(0);
        }
        dst.check_end()?;
        self.check_start()?;
        dst.len
            .checked_add(n.min(self.len))
            .ok_or(Error::OutOfRange)?;
        if n >= self.len {
            return dst.add_buffer(self);
        }
        let (orig_src, orig_dst) = (self.len, dst.len);
        let mut left = n;
        if matches!(dst.chunks.back(), Some(t) if t.len() == 0) {
            dst.chunks.pop_back();
        }
        while left > 0 {
            let Some(front) = self.chunks.front_mut() else {
                break;
            };
            let l = front.len();
            if l <= left {
                if let Some(c) = self.chunks.pop_front() {
                    if l > 0 {
                        dst.chunks.push_back(c);
                    }
                }
                left -= l;
            } else if left <= COPY_PARTIAL_MAX && front.in_memory() {
                let data = front.as_slice().get(..left).unwrap_or(&[]);
                dst.append(data);
                dst.len -= left; // `append` counted it; counted below
                front.advance(left);
                left = 0;
            } else {
                dst.chunks.push_back(front.split_to(left));
                left = 0;
            }
        }
        let moved = n - left;
        self.len -= moved;
        dst.len += moved;
        self.drop_empty_front();
        dst.changed(orig_dst, moved, 0);
        self.changed(orig_src, 0, moved);
        Ok(moved)
    }

    /// Makes the first `n` bytes contiguous and returns them (libevent's
    /// `evbuffer_pullup`). Copies only when they span several chunks (or
    /// are file data not in memory, which is read in: at least 256 KiB of
    /// it if there is that much, so that small pullups stay cheap).
    ///
    /// `n == 0` returns an empty slice (libevent returns NULL); `n` larger
    /// than the buffer fails with [`Error::OutOfRange`]; `n` bytes that
    /// cannot be allocated fail with [`Error::NoMemory`], a file read that
    /// fails with [`Error::Io`], and leave the content as it was. Use
    /// [`pullup_all`](Self::pullup_all) for everything.
    pub fn pullup(&mut self, n: usize) -> Result<&[u8]> {
        if n > self.len {
            return Err(Error::OutOfRange);
        }
        self.touch();
        if n == 0 {
            return Ok(&[]);
        }
        self.drop_empty_front();
        if self.chunks.front().is_some_and(|f| f.len() >= n) {
            self.load_chunk(0, n.max(PIECE))?;
        }
        let first_len = self.chunks.front().map_or(0, Chunk::len);
        if first_len < n {
            let mut v = try_alloc(n)?;
            v.resize(n, 0);
            let got = self.copy_from(0, 0, &mut v)?;
            v.truncate(got);
            // Remove the copied bytes chunk by chunk, keeping the count.
            let total = self.len;
            self.drop_front(got);
            self.len = total;
            self.drop_empty_front_all();
            self.chunks.push_front(Chunk::Mem(v));
        }
        let front = self.chunks.front().map_or(&[][..], Chunk::as_slice);
        Ok(front.get(..n).unwrap_or(front))
    }

    /// Makes the whole content contiguous and returns it.
    pub fn pullup_all(&mut self) -> Result<&[u8]> {
        self.pullup(self.len)
    }

    /// Removes every empty chunk at the front, including an empty tail.
    fn drop_empty_front_all(&mut self) {
        while self.chunks.front().is_some_and(|c| c.len() == 0) {
            self.chunks.pop_front();
        }
    }
}

impl io::Read for EvBuffer {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        Ok(self.remove(out)?)
    }
}
