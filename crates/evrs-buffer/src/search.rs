//! Searching for byte strings across chunk boundaries.

use memchr::memmem;

use crate::error::Result;
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
        Ok(self.find_from(what, c, limit).map(|c| self.make_ptr(c)))
    }

    /// First match of `what` starting at or after `c` and ending at or
    /// before `limit` (an absolute position).
    pub(crate) fn find_from(&self, what: &[u8], c: Cursor, limit: usize) -> Option<Cursor> {
        let m = what.len();
        if c.pos.checked_add(m)? > limit {
            return None;
        }
        if m == 0 {
            return Some(c);
        }
        let first = what[0];
        let mut scan = Scan {
            finder: None,
            false_hits: 0,
            scanned: 0,
        };
        let mut base = c.pos - c.off; // absolute position of chunk start
        let mut off = c.off;
        for (i, ch) in self.chunks.iter().enumerate().skip(c.chunk) {
            let data = ch.as_slice();
            let clen = data.len();
            // Matches wholly inside this chunk, within the limit.
            let region_end = clen.min(limit.saturating_sub(base));
            if off < region_end {
                let hay = &data[off..region_end];
                let hit = if m == 1 {
                    memchr::memchr(first, hay)
                } else {
                    scan.find(what, hay)
                };
                if let Some(p) = hit {
                    let o = off + p;
                    return Some(Cursor {
                        pos: base + o,
                        chunk: i,
                        off: o,
                    });
                }
            }
            // Matches that start here and continue in later chunks.
            if m > 1 {
                let from = off.max(clen.saturating_sub(m - 1));
                for (q, &b) in data.iter().enumerate().skip(from) {
                    if base + q + m > limit {
                        return None;
                    }
                    if b == first && self.matches_at(i, q, what) {
                        return Some(Cursor {
                            pos: base + q,
                            chunk: i,
                            off: q,
                        });
                    }
                }
            }
            base += clen;
            off = 0;
            if base + m > limit {
                return None;
            }
        }
        None
    }

    /// True if `what` occurs at chunk `ci`, offset `off` (may span chunks).
    pub(crate) fn matches_at(&self, mut ci: usize, mut off: usize, mut what: &[u8]) -> bool {
        while !what.is_empty() {
            let Some(ch) = self.chunks.get(ci) else {
                return false;
            };
            let s = ch.as_slice().get(off..).unwrap_or(&[]);
            let k = s.len().min(what.len());
            if s[..k] != what[..k] {
                return false;
            }
            what = &what[k..];
            ci += 1;
            off = 0;
        }
        true
    }
}

/// In-chunk search strategy: like libevent, jump between occurrences of the
/// first byte (fast when it is rare); once false hits become frequent,
/// switch to a substring finder for the rest of the search.
struct Scan<'w> {
    finder: Option<memmem::Finder<'w>>,
    false_hits: usize,
    scanned: usize,
}

impl<'w> Scan<'w> {
    /// First match of `what` (at least 2 bytes) wholly inside `hay`.
    fn find(&mut self, what: &'w [u8], hay: &[u8]) -> Option<usize> {
        if let Some(f) = &self.finder {
            return f.find(hay);
        }
        let m = what.len();
        let mut i = 0;
        while let Some(p) = crate::sys::memchr(what[0], hay.get(i..)?) {
            let o = i + p;
            let cand = hay.get(o..o + m)?;
            if cand == what {
                return Some(o);
            }
            i = o + 1;
            self.false_hits += 1;
            if self.false_hits > 32 && self.false_hits * 64 > self.scanned + i {
                let f = memmem::Finder::new(what);
                let r = f.find(hay.get(i..)?).map(|p| i + p);
                self.finder = Some(f);
                return r;
            }
        }
        self.scanned += hay.len();
        None
    }
}
