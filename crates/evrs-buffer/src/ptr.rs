//! Positions inside a buffer (libevent's `evbuffer_ptr`) and peeking.

use crate::chunk::Chunk;
use crate::error::{Error, Result};
use crate::lazy::read_lazy;
use crate::EvBuffer;

/// A position in a buffer: an offset from the start plus a cached chunk
/// location, so walking forward (search loops) does not rescan the chain.
///
/// Get one from [`EvBuffer::ptr_at`] or a search; move it with
/// [`EvBuffer::ptr_add`]. A position equal to the length is valid (just past
/// the end). libevent says any change to the buffer invalidates positions;
/// here a position taken before a change is simply re-resolved from its
/// offset, and one beyond the new end is rejected with
/// [`Error::OutOfRange`].
///
/// ```
/// use evrs_buffer::EvBuffer;
/// let mut buf = EvBuffer::new();
/// buf.add(b"key=value").unwrap();
/// let eq = buf.search(b"=", None).unwrap().unwrap();
/// assert_eq!(eq.pos(), 3);
/// let mut p = eq;
/// buf.ptr_add(&mut p, 1).unwrap();
/// let mut value = [0u8; 5];
/// assert_eq!(buf.copyout_from(&p, &mut value).unwrap(), 5);
/// assert_eq!(&value, b"value");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferPtr {
    pos: usize,
    chunk: usize,
    off: usize,
    id: u64,
    gen: u64,
}

impl BufferPtr {
    /// Offset from the start of the buffer.
    #[inline]
    pub fn pos(&self) -> usize {
        self.pos
    }
}

/// A resolved location: absolute position, chunk index, offset in chunk.
/// Normalised so that `off < chunks[chunk].len()`, or `chunk ==
/// chunks.len()` at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub(crate) pos: usize,
    pub(crate) chunk: usize,
    pub(crate) off: usize,
}

impl EvBuffer {
    /// A position `pos` bytes from the start (libevent's `evbuffer_ptr_set`
    /// with `EVBUFFER_PTR_SET`). `pos == len()` is allowed; beyond that is
    /// [`Error::OutOfRange`].
    pub fn ptr_at(&self, pos: usize) -> Result<BufferPtr> {
        let c = self.cursor_at(pos)?;
        Ok(self.make_ptr(c))
    }

    /// Moves `ptr` forward by `n` bytes (`EVBUFFER_PTR_ADD`). Moving past the
    /// end fails with [`Error::OutOfRange`] and leaves `ptr` unchanged
    /// (libevent sets it to -1 instead).
    pub fn ptr_add(&self, ptr: &mut BufferPtr, n: usize) -> Result<()> {
        let target = ptr.pos.checked_add(n).ok_or(Error::OutOfRange)?;
        if target > self.len {
            return Err(Error::OutOfRange);
        }
        let start = self.resolve(Some(ptr))?;
        let c = self.walk(start, n);
        *ptr = self.make_ptr(c);
        Ok(())
    }

    #[inline]
    pub(crate) fn make_ptr(&self, c: Cursor) -> BufferPtr {
        BufferPtr {
            pos: c.pos,
            chunk: c.chunk,
            off: c.off,
            id: self.id,
            gen: self.gen,
        }
    }

    /// The cursor for `ptr`, or the start of the buffer for `None`.
    #[inline]
    pub(crate) fn resolve(&self, ptr: Option<&BufferPtr>) -> Result<Cursor> {
        match ptr {
            None => Ok(self.normalize(Cursor {
                pos: 0,
                chunk: 0,
                off: 0,
            })),
            Some(p) if p.id == self.id && p.gen == self.gen && p.pos <= self.len => Ok(Cursor {
                pos: p.pos,
                chunk: p.chunk,
                off: p.off,
            }),
            Some(p) => self.cursor_at(p.pos),
        }
    }

    pub(crate) fn cursor_at(&self, pos: usize) -> Result<Cursor> {
        if pos > self.len {
            return Err(Error::OutOfRange);
        }
        let start = self.normalize(Cursor {
            pos: 0,
            chunk: 0,
            off: 0,
        });
        Ok(self.walk(start, pos))
    }

    /// Skips exhausted chunks so the cursor points at a readable byte or at
    /// the end.
    #[inline]
    pub(crate) fn normalize(&self, mut c: Cursor) -> Cursor {
        while let Some(ch) = self.chunks.get(c.chunk) {
            if c.off < ch.len() {
                return c;
            }
            c.off -= ch.len().min(c.off);
            c.chunk += 1;
        }
        c.chunk = self.chunks.len();
        c.off = 0;
        c
    }

    /// Moves a cursor forward by `n` bytes (clamped to the end).
    pub(crate) fn walk(&self, mut c: Cursor, mut n: usize) -> Cursor {
        while n > 0 {
            let Some(ch) = self.chunks.get(c.chunk) else {
                break;
            };
            let left = ch.len().saturating_sub(c.off);
            if n < left {
                c.off += n;
                c.pos += n;
                return c;
            }
            n -= left;
            c.pos += left;
            c.chunk += 1;
            c.off = 0;
        }
        self.normalize(c)
    }

    /// Byte at a cursor, if any (read from the file for data not in
    /// memory).
    #[inline]
    pub(crate) fn byte_at(&self, c: Cursor) -> Result<Option<u8>> {
        match self.chunks.get(c.chunk) {
            Some(Chunk::Lazy { seg, file_off, len }) if c.off < *len => {
                let mut b = [0u8];
                read_lazy(&seg.file, *file_off, c.off, &mut b)?;
                Ok(Some(b[0]))
            }
            Some(ch) => Ok(ch.as_slice().get(c.off).copied()),
            None => Ok(None),
        }
    }

    /// Slices of the stored data without copying (libevent's
    /// `evbuffer_peek`): starting at `start` (or the front), covering at
    /// least `len` bytes if given (whole chunks, so possibly more), or
    /// everything to the end for `None`. The slices stop before file data
    /// that is not in memory (see [`FileSegment`](crate::FileSegment)), so
    /// they may cover less; read that data with
    /// [`copyout_from`](Self::copyout_from).
    ///
    /// ```
    /// use evrs_buffer::EvBuffer;
    /// let mut a = EvBuffer::new();
    /// let mut b = EvBuffer::new();
    /// a.add(b"hello ").unwrap();
    /// b.add(b"world").unwrap();
    /// a.add_buffer(&mut b).unwrap();
    /// let total: usize = a.peek(None, None).unwrap().iter().map(|s| s.len()).sum();
    /// assert_eq!(total, 11);
    /// ```
    pub fn peek(&self, len: Option<usize>, start: Option<&BufferPtr>) -> Result<Vec<&[u8]>> {
        let c = self.resolve(start)?;
        let mut out = Vec::new();
        let mut got = 0usize;
        let mut off = c.off;
        for ch in self.chunks.iter().skip(c.chunk) {
            if len.is_some_and(|l| got >= l) || !ch.in_memory() {
                break;
            }
            let s = ch.as_slice().get(off..).unwrap_or(&[]);
            off = 0;
            if s.is_empty() {
                continue;
            }
            got += s.len();
            out.push(s);
        }
        Ok(out)
    }
}
