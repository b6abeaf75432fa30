//! Searching for byte strings across chunk boundaries.
//!
//! Each chunk is searched with one matcher per search (see `Finder`: a
//! `memchr` prefilter on the needle's rarest byte, falling back to a
//! `memchr::memmem` finder when candidates are frequent); file data that is
//! not in memory is searched a piece at a time. Matches that start in one
//! chunk (or piece) and end in a later one are found by searching a small
//! window: the last `needle_len - 1` bytes of the chunk followed by at most
//! `needle_len - 1` bytes of what comes next.

use memchr::arch::all::packedpair::Pair;
use memchr::memmem;

use crate::error::Result;
use crate::lazy::Pieces;
use crate::ptr::{BufferPtr, Cursor};
use crate::EvBuffer;

impl EvBuffer {
    /// Finds the first occurrence of `what` at or after `start` (or the
    /// front) (libevent's `evbuffer_search`). An empty `what` matches at
    /// `start`. A stale `start` beyond the end fails with
    /// [`Error::OutOfRange`](crate::Error::OutOfRange).
    pub fn search(&self, what: &[u8], start: Option<&BufferPtr>) -> Result<Option<BufferPtr>> {
        self.search_range(what, start, None)
    }

    /// Like [`search`](Self::search), but the match must also end at or
    /// before `end` (libevent's `evbuffer_search_range`).
    ///
    /// ```
    /// use evrs_buffer::EvBuffer;
    /// let mut buf = EvBuffer::new();
    /// buf.add(b"abcabc").unwrap();
    /// let end = buf.ptr_at(5).unwrap();
    /// let from = buf.ptr_at(1).unwrap();
    /// assert_eq!(buf.search_range(b"bc", Some(&from), Some(&end)).unwrap().map(|p| p.pos()), Some(1));
    /// let from = buf.ptr_at(2).unwrap();
    /// assert_eq!(buf.search_range(b"bc", Some(&from), Some(&end)).unwrap(), None);
    /// ```
    pub fn search_range(
        &self,
        what: &[u8],
        start: Option<&BufferPtr>,
        end: Option<&BufferPtr>,
    ) -> Result<Option<BufferPtr>> {
        let c = self.resolve(start)?;
        let limit = match end {
            Some(e) => e.pos().min(self.len),
            None => self.len,
        };
        Ok(self.find_from(what, c, limit)?.map(|c| self.make_ptr(c)))
    }

    /// First match of `what` starting at or after `c` and ending at or
    /// before `limit` (an absolute position).
    pub(crate) fn find_from(&self, what: &[u8], c: Cursor, limit: usize) -> Result<Option<Cursor>> {
        let m = what.len();
        if c.pos.checked_add(m).is_none_or(|e| e > limit) {
            return Ok(None);
        }
        if m == 0 {
            return Ok(Some(c));
        }
        let mut finder = Finder::new(what);
        // Bytes around a piece boundary: < m from the end of one piece, then
        // < m of what follows.
        let mut window: Vec<u8> = Vec::new();
        let mut c = self.normalize(c);
        let mut pieces = Pieces::new(self);
        loop {
            // A chunk in memory, or a piece of file data read in, cut at
            // the limit.
            let data = pieces.at(c, limit - c.pos)?;
            let clen = data.len();
            if clen == 0 {
                return Ok(None);
            }
            // Matches wholly inside this piece.
            if let Some(p) = finder.find(data) {
                return Ok(Some(Cursor {
                    pos: c.pos + p,
                    chunk: c.chunk,
                    off: c.off + p,
                }));
            }
            let next_pos = c.pos + clen;
            let next = self.walk(c, clen);
            // Matches that start here and continue after the piece; only
            // possible if the limit lies beyond it.
            let tail_len = clen.min(m - 1);
            if m > 1 && limit > next_pos {
                window.clear();
                window.extend_from_slice(data.get(clen - tail_len..).unwrap_or(&[]));
                let more = (m - 1).min(limit - next_pos);
                window.resize(tail_len + more, 0);
                let got = self.copy_at(next, window.get_mut(tail_len..).unwrap_or(&mut []))?;
                window.truncate(tail_len + got);
                if let Some(p) = finder.find(&window).filter(|&p| p < tail_len) {
                    let back = tail_len - p;
                    return Ok(Some(Cursor {
                        pos: next_pos - back,
                        chunk: c.chunk,
                        off: c.off + clen - back,
                    }));
                }
            }
            c = next;
            if c.pos.checked_add(m).is_none_or(|e| e > limit) {
                return Ok(None);
            }
        }
    }
}

/// One search's matcher, used for every chunk and every boundary window.
///
/// A one-byte needle is a plain `memchr`. A longer needle starts as a
/// prefilter: `memchr` for the needle's rarest byte (by `memchr`'s
/// frequency ranking), then a compare. That is the fastest scan when the
/// byte is rare, which is the common case (measured: about 2x faster than a
/// `memmem::Finder` on cached data, and never slower on data that has to
/// come from memory). If false candidates become frequent (more than one
/// per 64 bytes scanned) the search switches to a `memmem::Finder`, whose
/// worst case is linear.
struct Finder<'w> {
    what: &'w [u8],
    /// Index of the byte the prefilter looks for.
    rare: usize,
    mm: Option<memmem::Finder<'w>>,
    false_hits: usize,
    scanned: usize,
}

impl<'w> Finder<'w> {
    fn new(what: &'w [u8]) -> Self {
        let rare = if what.len() > 1 {
            Pair::new(what).map_or(0, |p| usize::from(p.index1()))
        } else {
            0
        };
        Finder {
            what,
            rare: rare.min(what.len().saturating_sub(1)),
            mm: None,
            false_hits: 0,
            scanned: 0,
        }
    }

    /// First match of the needle (non-empty) wholly inside `hay`.
    #[inline]
    fn find(&mut self, hay: &[u8]) -> Option<usize> {
        let what = self.what;
        let m = what.len();
        if m == 1 {
            return memchr::memchr(*what.first()?, hay);
        }
        let last_start = hay.len().checked_sub(m)?;
        if let Some(f) = &self.mm {
            return f.find(hay);
        }
        let k = self.rare;
        let b = *what.get(k)?;
        let mut s = 0; // first start not yet ruled out
        while s <= last_start {
            let p = memchr::memchr(b, hay.get(s + k..=last_start + k)?)?;
            let cand = s + p;
            if hay.get(cand..cand + m)? == what {
                return Some(cand);
            }
            s = cand + 1;
            self.false_hits += 1;
            if self.false_hits > 32 && self.false_hits * 64 > self.scanned + s {
                let f = self.mm.insert(memmem::Finder::new(what));
                return f.find(hay.get(s..)?).map(|p| s + p);
            }
        }
        self.scanned += hay.len();
        None
    }
}
