//! End-of-line styles, `search_eol` and `readln`.

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::ptr::{BufferPtr, Cursor};
use crate::EvBuffer;

/// How [`EvBuffer::readln`] and [`EvBuffer::search_eol`] recognise the end of
/// a line (libevent's `enum evbuffer_eol_style`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EolStyle {
    /// Any run of CR and LF bytes ends the line and is consumed whole:
    /// `"a\r\n\r\nb"` reads as `"a"`, `"b"` (blank lines vanish), and `"x\r"`
    /// is returned before its `"\n"` arrives, which then reads as `""`.
    Any,
    /// LF, together with one CR right before it if present. A lone CR is
    /// data.
    Crlf,
    /// Exactly `"\r\n"`.
    CrlfStrict,
    /// Exactly `"\n"` (a CR before it stays in the line).
    Lf,
    /// A single NUL byte.
    Nul,
}

impl EvBuffer {
    /// Finds the first end of line at or after `start` (libevent's
    /// `evbuffer_search_eol`): its position and length in bytes.
    pub fn search_eol(
        &self,
        start: Option<&BufferPtr>,
        style: EolStyle,
    ) -> Result<Option<(BufferPtr, usize)>> {
        let c = self.resolve(start)?;
        Ok(self
            .find_eol(c, style, self.len)
            .map(|(c, n)| (self.make_ptr(c), n)))
    }

    /// Removes and returns the first line, without its end of line
    /// (libevent's `evbuffer_readln`). `Ok(None)` means no complete line yet.
    ///
    /// With `max_len = Some(limit)`, a line longer than `limit` bytes fails
    /// with [`Error::LineTooLong`] as soon as that is certain, and nothing is
    /// consumed: at most `limit + 2` bytes are scanned, so a peer that never
    /// sends an end of line cannot make this call slow. The caller decides
    /// what to do next (drain, close...). Precisely: it fails when the first
    /// end of line starts after `limit`, or when there is none and the buffer
    /// holds more than `limit` bytes (except, for `Crlf`/`CrlfStrict`, when
    /// exactly `limit + 1` bytes end in a CR that a LF may still follow).
    ///
    /// The line is returned as `Bytes`, without copying when it lies in one
    /// chunk. A frozen start fails.
    ///
    /// ```
    /// use evrs_buffer::{EolStyle, EvBuffer, Error};
    /// let mut buf = EvBuffer::new();
    /// buf.add(b"one\r\n\r\ntwo\nthree").unwrap();
    /// assert_eq!(buf.readln(EolStyle::Any, None).unwrap().as_deref(), Some(&b"one"[..]));
    /// assert_eq!(buf.readln(EolStyle::Any, None).unwrap().as_deref(), Some(&b"two"[..]));
    /// assert_eq!(buf.readln(EolStyle::Any, None).unwrap(), None);
    /// assert!(matches!(buf.readln(EolStyle::Any, Some(3)), Err(Error::LineTooLong { limit: 3 })));
    /// assert_eq!(buf.len(), 5);
    /// ```
    pub fn readln(&mut self, style: EolStyle, max_len: Option<usize>) -> Result<Option<Bytes>> {
        self.check_start()?;
        if let Some(line) = self.readln_front(style, max_len) {
            return Ok(Some(line));
        }
        let scan = match max_len {
            Some(m) => self.len.min(m.saturating_add(1)),
            None => self.len,
        };
        let start = self.resolve(None)?;
        match self.find_eol(start, style, scan) {
            Some((eol, eol_len)) => {
                let orig = self.len;
                let line = self.take_front(eol.pos);
                self.drop_front(eol_len);
                self.changed(orig, 0, eol.pos + eol_len);
                Ok(Some(line))
            }
            None => match max_len {
                Some(limit) if self.len > limit && !self.may_complete(style, limit) => {
                    Err(Error::LineTooLong { limit })
                }
                _ => Ok(None),
            },
        }
    }

    /// Fast path: the line and its whole end of line lie in the first
    /// chunk. `None` means "use the general path" (which gives the same
    /// answer whenever this one gives any).
    #[inline]
    fn readln_front(&mut self, style: EolStyle, max_len: Option<usize>) -> Option<Bytes> {
        let front = self.chunks.front_mut()?;
        let s = front.as_slice();
        let lim = max_len.map_or(s.len(), |m| s.len().min(m.saturating_add(1)));
        let (p, n) = eol_in_slice(s, lim, style)?;
        let line = front.split_to_bytes(p);
        front.advance(n);
        if front.len() == 0 && self.chunks.len() > 1 {
            self.chunks.pop_front();
        }
        let orig = self.len;
        self.len -= p + n;
        self.changed(orig, 0, p + n);
        Some(line)
    }

    /// For the CR-LF styles, a buffer of exactly `limit + 1` bytes ending in
    /// CR may still become a line of `limit` bytes.
    fn may_complete(&self, style: EolStyle, limit: usize) -> bool {
        matches!(style, EolStyle::Crlf | EolStyle::CrlfStrict)
            && self.len == limit.saturating_add(1)
            && self
                .chunks()
                .last()
                .and_then(|c| c.last())
                .is_some_and(|&b| b == b'\r')
    }

    /// First end of line that starts at or after `c` and before `scan` (an
    /// absolute position); the EOL itself may extend past `scan`.
    pub(crate) fn find_eol(
        &self,
        c: Cursor,
        style: EolStyle,
        scan: usize,
    ) -> Option<(Cursor, usize)> {
        match style {
            EolStyle::Lf => self
                .find_byte(c, scan, |s| memchr::memchr(b'\n', s))
                .map(|c| (c, 1)),
            EolStyle::Nul => self
                .find_byte(c, scan, |s| memchr::memchr(0, s))
                .map(|c| (c, 1)),
            EolStyle::CrlfStrict => {
                let limit = scan.saturating_add(1).min(self.len);
                self.find_from(b"\r\n", c, limit).map(|c| (c, 2))
            }
            EolStyle::Any => {
                let at = self.find_byte(c, scan, |s| memchr::memchr2(b'\r', b'\n', s))?;
                Some((at, self.eol_run(at)))
            }
            EolStyle::Crlf => {
                let mut from = c;
                loop {
                    let at = self.find_byte(from, scan, |s| memchr::memchr2(b'\r', b'\n', s))?;
                    if self.byte_at(at) == Some(b'\n') {
                        return Some((at, 1));
                    }
                    let next = self.walk(at, 1);
                    if self.byte_at(next) == Some(b'\n') {
                        return Some((at, 2));
                    }
                    from = next;
                }
            }
        }
    }

    /// Length of the run of CR/LF bytes starting at `c`.
    fn eol_run(&self, c: Cursor) -> usize {
        let mut n = 0;
        let mut off = c.off;
        for ch in self.chunks.iter().skip(c.chunk) {
            let s = ch.as_slice().get(off..).unwrap_or(&[]);
            off = 0;
            let k = s
                .iter()
                .position(|&b| b != b'\r' && b != b'\n')
                .unwrap_or(s.len());
            n += k;
            if k < s.len() {
                break;
            }
        }
        n
    }

    /// First position at or after `c` and before `scan` where `find`
    /// reports a hit within a chunk.
    #[inline]
    fn find_byte(
        &self,
        c: Cursor,
        scan: usize,
        find: impl Fn(&[u8]) -> Option<usize>,
    ) -> Option<Cursor> {
        let mut base = c.pos - c.off;
        let mut off = c.off;
        for (i, ch) in self.chunks.iter().enumerate().skip(c.chunk) {
            if base >= scan {
                return None;
            }
            let data = ch.as_slice();
            let end = data.len().min(scan - base);
            if off < end {
                if let Some(p) = find(&data[off..end]) {
                    let o = off + p;
                    return Some(Cursor {
                        pos: base + o,
                        chunk: i,
                        off: o,
                    });
                }
            }
            base += data.len();
            off = 0;
        }
        None
    }
}

/// The first end of line in `s` starting before `lim`, if it is complete
/// within `s` (so bytes after `s` cannot change the answer).
#[inline]
fn eol_in_slice(s: &[u8], lim: usize, style: EolStyle) -> Option<(usize, usize)> {
    let hay = s.get(..lim)?;
    match style {
        EolStyle::Lf => memchr::memchr(b'\n', hay).map(|p| (p, 1)),
        EolStyle::Nul => memchr::memchr(0, hay).map(|p| (p, 1)),
        EolStyle::Any => {
            let p = memchr::memchr2(b'\r', b'\n', hay)?;
            let run = s.get(p..)?.iter().position(|&b| b != b'\r' && b != b'\n')?;
            Some((p, run))
        }
        EolStyle::Crlf | EolStyle::CrlfStrict => {
            let mut i = 0;
            loop {
                let rest = hay.get(i..)?;
                let p = i + match style {
                    EolStyle::Crlf => memchr::memchr2(b'\r', b'\n', rest)?,
                    _ => memchr::memchr(b'\r', rest)?,
                };
                if s.get(p) == Some(&b'\n') {
                    return Some((p, 1));
                }
                match s.get(p + 1)? {
                    b'\n' => return Some((p, 2)),
                    _ => i = p + 1,
                }
            }
        }
    }
}
