//! File data that is not in memory ([`Chunk::Lazy`]): reading it in bounded
//! pieces when a buffer operation needs it.
//!
//! A file segment that is not mapped (mmap disabled or failed) and longer
//! than [`PIECE`] is never read whole. Calls that consume the front and
//! want the bytes in place (`readln`, `write`, `pullup`, `remove_bytes`)
//! load the piece they need into a [`Chunk::File`] before it; `copyout` and
//! `remove` read straight into the caller's memory; scans (`search`,
//! `search_eol`, the line-length checks) read through a reusable scratch
//! piece ([`Pieces`]). So a buffer never holds more of such a segment in
//! memory than what it was asked to return plus about a megabyte.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;

use crate::chunk::{try_alloc, Chunk};
use crate::error::{Error, Result};
use crate::ptr::Cursor;
use crate::EvBuffer;

/// The size of the pieces lazy file data is read in (`pullup` and
/// `remove_bytes` read what they are asked for), and the longest segment
/// that is read whole when created.
pub(crate) const PIECE: usize = 256 * 1024;
/// The first scan read of lazy data; later reads double up to [`PIECE`],
/// so a match or end of line near the start costs little.
const FIRST_SCAN_READ: usize = 16 * 1024;
/// The most lazy file data one `write` call loads for `writev`.
pub(crate) const WRITE_LOAD: usize = 1024 * 1024;

/// Reads `len` bytes of `file` at `off` into new memory; a short file is an
/// [`Error::Io`] (`UnexpectedEof`), memory that cannot be had
/// [`Error::NoMemory`].
pub(crate) fn read_at(file: &File, off: u64, len: usize) -> Result<Bytes> {
    let mut b = try_alloc(len)?;
    b.resize(len, 0);
    file.read_exact_at(&mut b, off)?;
    Ok(b.freeze())
}

/// Fills `out` from `len` bytes of lazy data at `file_off`, starting `off`
/// bytes into it (callers keep `off + out.len() <= len`).
#[inline]
pub(crate) fn read_lazy(file: &File, file_off: u64, off: usize, out: &mut [u8]) -> Result<()> {
    let at = file_off.checked_add(off as u64).ok_or(Error::OutOfRange)?;
    file.read_exact_at(out, at)?;
    Ok(())
}

/// Reads a buffer's data piece by piece from a cursor: chunks in memory as
/// they are, lazy file data through a scratch buffer of at most [`PIECE`]
/// bytes.
pub(crate) struct Pieces<'a> {
    buf: &'a EvBuffer,
    scratch: Vec<u8>,
    next_read: usize,
}

impl<'a> Pieces<'a> {
    pub(crate) fn new(buf: &'a EvBuffer) -> Self {
        Pieces {
            buf,
            scratch: Vec::new(),
            next_read: FIRST_SCAN_READ,
        }
    }

    /// At most `max` bytes starting at `c` and lying in `c`'s chunk (all of
    /// the rest of it for a chunk in memory, at most a piece of lazy data).
    /// Empty only at the end or for `max == 0`. `c` must be normalised.
    pub(crate) fn at(&mut self, c: Cursor, max: usize) -> Result<&[u8]> {
        let buf = self.buf;
        let Some(ch) = buf.chunks.get(c.chunk) else {
            return Ok(&[]);
        };
        let Chunk::Lazy {
            seg, file_off, len, ..
        } = ch
        else {
            let s = ch.as_slice().get(c.off..).unwrap_or(&[]);
            return Ok(s.get(..max).unwrap_or(s));
        };
        let k = len.saturating_sub(c.off).min(max).min(self.next_read);
        self.next_read = self.next_read.saturating_mul(2).min(PIECE);
        if self.scratch.len() < k {
            self.scratch
                .try_reserve_exact(k - self.scratch.len())
                .map_err(|_| Error::NoMemory)?;
            self.scratch.resize(k, 0);
        }
        let out = self.scratch.get_mut(..k).unwrap_or(&mut []);
        read_lazy(&seg.file, *file_off, c.off, out)?;
        Ok(out)
    }
}

impl EvBuffer {
    /// If chunk `i` is lazy, reads its first `want` bytes (at most all of
    /// them) into a [`Chunk::File`] put in its place, followed by the
    /// lazy rest. Changes no content; fails, changing nothing, if the read
    /// or the allocation fails.
    pub(crate) fn load_chunk(&mut self, i: usize, want: usize) -> Result<()> {
        let Some(Chunk::Lazy { seg, file_off, len }) = self.chunks.get(i) else {
            return Ok(());
        };
        let k = want.min(*len);
        if k == 0 {
            return Ok(());
        }
        let loaded = Chunk::File {
            data: read_at(&seg.file, *file_off, k)?,
            seg: Arc::clone(seg),
            file_off: *file_off,
        };
        let whole = k >= *len;
        if whole {
            if let Some(c) = self.chunks.get_mut(i) {
                *c = loaded;
            }
        } else {
            if let Some(c) = self.chunks.get_mut(i) {
                c.advance(k);
            }
            self.chunks.insert(i, loaded);
        }
        self.touch();
        Ok(())
    }

    /// Makes the first chunk readable in place, loading one piece of it if
    /// it is lazy.
    #[inline]
    pub(crate) fn load_front(&mut self) -> Result<()> {
        if matches!(self.chunks.front(), Some(Chunk::Lazy { .. })) {
            self.load_chunk(0, PIECE)
        } else {
            Ok(())
        }
    }

    /// Loads the lazy data among the first `limit` bytes and `max_chunks`
    /// chunks (in pieces of at most [`PIECE`]), stopping before a chunk for
    /// which `stop(index, chunk)` is true.
    pub(crate) fn load_prefix(
        &mut self,
        limit: usize,
        max_chunks: usize,
        stop: impl Fn(usize, &Chunk) -> bool,
    ) -> Result<()> {
        let mut seen = 0usize;
        let mut i = 0;
        while seen < limit && i < max_chunks {
            let Some(c) = self.chunks.get(i) else { break };
            if stop(i, c) {
                break;
            }
            if !c.in_memory() {
                self.load_chunk(i, (limit - seen).min(PIECE))?;
            }
            seen = seen.saturating_add(self.chunks.get(i).map_or(0, Chunk::len));
            i += 1;
        }
        Ok(())
    }

    /// Copies up to `out.len()` bytes starting at a cursor (see
    /// [`copy_from`](Self::copy_from)).
    #[inline]
    pub(crate) fn copy_at(&self, c: Cursor, out: &mut [u8]) -> Result<usize> {
        self.copy_from(c.chunk, c.off, out)
    }
}
