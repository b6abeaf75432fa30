//! End-of-line styles, `search_eol` and `readln`.

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::lazy::Pieces;
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
            .find_eol(c, style, self.len)?
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
    /// chunk (the `Bytes` shares the chunk's memory, at the cost of a
    /// reference count). [`readln_with`](Self::readln_with) and
    /// [`readln_into`](Self::readln_into) avoid even that and are about twice
    /// as fast on short lines. A frozen start fails. A line that must be
    /// copied and cannot be allocated fails with [`Error::NoMemory`], a
    /// file read that fails with [`Error::Io`]; nothing is consumed then.
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
        self.load_front()?;
        if let Some(front) = self.chunks.front_mut() {
            if let Some((p, n)) = front_eol(front.as_slice(), style, max_len) {
                let line = front.split_line(p, n);
                self.consumed_front(p + n);
                return Ok(Some(line));
            }
        }
        match self.locate_eol(style, max_len)? {
            Some((p, n)) => {
                let orig = self.len;
                let line = self.take_front(p)?;
                self.drop_front(n);
                self.changed(orig, 0, p + n);
                Ok(Some(line))
            }
            None => Ok(None),
        }
    }

    /// Like [`readln`](Self::readln), but lends the line to `f` instead of
    /// returning it, and returns what `f` returns. This is the fastest way to
    /// read lines: when the line lies in one chunk (almost always) `f` sees
    /// it in place, with no allocation, copy or reference count; a line that
    /// spans chunks is copied once into a temporary.
    ///
    /// Errors, limits and the EOL styles are exactly those of `readln`, and
    /// `Ok(None)` (no complete line yet) does not call `f`. `f` runs before
    /// the line and its end of line are removed; change callbacks run after
    /// `f`. If `f` panics, nothing is removed.
    ///
    /// ```
    /// use evrs_buffer::{EolStyle, EvBuffer};
    /// let mut buf = EvBuffer::new();
    /// buf.add(b"PING\r\nQUIT\r\npartial").unwrap();
    /// let mut words = Vec::new();
    /// while let Some(len) = buf.readln_with(EolStyle::Crlf, Some(512), |line| {
    ///     words.push(String::from_utf8_lossy(line).into_owned());
    ///     line.len()
    /// })? {
    ///     assert_eq!(len, 4);
    /// }
    /// assert_eq!(words, ["PING", "QUIT"]);
    /// assert_eq!(buf.to_vec(), b"partial");
    /// # Ok::<(), evrs_buffer::Error>(())
    /// ```
    #[inline]
    pub fn readln_with<R>(
        &mut self,
        style: EolStyle,
        max_len: Option<usize>,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<Option<R>> {
        self.check_start()?;
        self.load_front()?;
        if let Some(front) = self.chunks.front_mut() {
            let s = front.as_slice();
            if let Some((p, n)) = front_eol(s, style, max_len) {
                let r = f(s.get(..p).unwrap_or(&[]));
                front.advance(p + n);
                self.consumed_front(p + n);
                return Ok(Some(r));
            }
        }
        match self.locate_eol(style, max_len)? {
            Some((p, n)) => {
                let mut tmp = Vec::new();
                tmp.try_reserve_exact(p).map_err(|_| Error::NoMemory)?;
                tmp.resize(p, 0);
                let got = self.copy_from(0, 0, &mut tmp)?;
                let r = f(tmp.get(..got).unwrap_or(&[]));
                let orig = self.len;
                self.drop_front(p + n);
                self.changed(orig, 0, p + n);
                Ok(Some(r))
            }
            None => Ok(None),
        }
    }

    /// Like [`readln`](Self::readln), but appends the line (without its end
    /// of line) to `out` and returns its length, so one `Vec` can be reused
    /// for every line (`out` is not cleared first, as with
    /// [`BufRead::read_line`](std::io::BufRead::read_line)). On `Ok(None)`
    /// and on errors `out` is unchanged.
    ///
    /// ```
    /// use evrs_buffer::{EolStyle, EvBuffer};
    /// let mut buf = EvBuffer::new();
    /// buf.add(b"a=1\nbb=22\n").unwrap();
    /// let mut line = Vec::new();
    /// while buf.readln_into(EolStyle::Lf, Some(80), &mut line)?.is_some() {
    ///     line.push(b';');
    /// }
    /// assert_eq!(line, b"a=1;bb=22;");
    /// # Ok::<(), evrs_buffer::Error>(())
    /// ```
    pub fn readln_into(
        &mut self,
        style: EolStyle,
        max_len: Option<usize>,
        out: &mut Vec<u8>,
    ) -> Result<Option<usize>> {
        self.readln_with(style, max_len, |line| {
            out.extend_from_slice(line);
            line.len()
        })
    }

    /// Bookkeeping after `n` bytes were advanced off the first chunk.
    #[inline]
    fn consumed_front(&mut self, n: usize) {
        if self.chunks.len() > 1 && self.chunks.front().is_some_and(|c| c.len() == 0) {
            self.chunks.pop_front();
        }
        let orig = self.len;
        self.len -= n;
        self.changed(orig, 0, n);
    }

    /// General path of the readln family: the first end of line as (line
    /// length, EOL length), `Ok(None)` if there is none yet, or
    /// [`Error::LineTooLong`].
    fn locate_eol(
        &self,
        style: EolStyle,
        max_len: Option<usize>,
    ) -> Result<Option<(usize, usize)>> {
        let scan = match max_len {
            Some(m) => self.len.min(m.saturating_add(1)),
            None => self.len,
        };
        let start = self.resolve(None)?;
        match self.find_eol(start, style, scan)? {
            Some((eol, eol_len)) => Ok(Some((eol.pos, eol_len))),
            None => match max_len {
                Some(limit) if self.len > limit && !self.may_complete(style, limit)? => {
                    Err(Error::LineTooLong { limit })
                }
                _ => Ok(None),
            },
        }
    }

    /// For the CR-LF styles, a buffer of exactly `limit + 1` bytes ending in
    /// CR may still become a line of `limit` bytes.
    fn may_complete(&self, style: EolStyle, limit: usize) -> Result<bool> {
        if !matches!(style, EolStyle::Crlf | EolStyle::CrlfStrict)
            || self.len != limit.saturating_add(1)
        {
            return Ok(false);
        }
        let last = self.cursor_at(self.len - 1)?;
        Ok(self.byte_at(last)? == Some(b'\r'))
    }

    /// First end of line that starts at or after `c` and before `scan` (an
    /// absolute position); the EOL itself may extend past `scan`.
    pub(crate) fn find_eol(
        &self,
        c: Cursor,
        style: EolStyle,
        scan: usize,
    ) -> Result<Option<(Cursor, usize)>> {
        Ok(match style {
            EolStyle::Lf => self
                .find_byte(c, scan, |s| memchr::memchr(b'\n', s))?
                .map(|c| (c, 1)),
            EolStyle::Nul => self
                .find_byte(c, scan, |s| memchr::memchr(0, s))?
                .map(|c| (c, 1)),
            EolStyle::CrlfStrict => {
                let limit = scan.saturating_add(1).min(self.len);
                self.find_from(b"\r\n", c, limit)?.map(|c| (c, 2))
            }
            EolStyle::Any => {
                match self.find_byte(c, scan, |s| memchr::memchr2(b'\r', b'\n', s))? {
                    Some(at) => Some((at, self.eol_run(at)?)),
                    None => None,
                }
            }
            EolStyle::Crlf => {
                let mut from = c;
                loop {
                    let Some(at) =
                        self.find_byte(from, scan, |s| memchr::memchr2(b'\r', b'\n', s))?
                    else {
                        break None;
                    };
                    if self.byte_at(at)? == Some(b'\n') {
                        break Some((at, 1));
                    }
                    let next = self.walk(at, 1);
                    if self.byte_at(next)? == Some(b'\n') {
                        break Some((at, 2));
                    }
                    from = next;
                }
            }
        })
    }

    /// Length of the run of CR/LF bytes starting at `c`.
    fn eol_run(&self, c: Cursor) -> Result<usize> {
        let mut n = 0;
        let mut c = self.normalize(c);
        let mut pieces = Pieces::new(self);
        loop {
            let s = pieces.at(c, usize::MAX)?;
            let k = s
                .iter()
                .position(|&b| b != b'\r' && b != b'\n')
                .unwrap_or(s.len());
            n += k;
            if k < s.len() || s.is_empty() {
                return Ok(n);
            }
            c = self.walk(c, k);
        }
    }

    /// First position at or after `c` and before `scan` where `find`
    /// reports a hit within a piece of data (a chunk in memory, or a piece
    /// of file data read in).
    #[inline]
    fn find_byte(
        &self,
        c: Cursor,
        scan: usize,
        find: impl Fn(&[u8]) -> Option<usize>,
    ) -> Result<Option<Cursor>> {
        let mut c = self.normalize(c);
        let mut pieces = Pieces::new(self);
        while c.pos < scan {
            let s = pieces.at(c, scan - c.pos)?;
            if s.is_empty() {
                break;
            }
            if let Some(p) = find(s) {
                return Ok(Some(Cursor {
                    pos: c.pos + p,
                    chunk: c.chunk,
                    off: c.off + p,
                }));
            }
            let k = s.len();
            c = self.walk(c, k);
        }
        Ok(None)
    }
}

/// Fast path of the readln family: the line and its whole end of line lie
/// in the first chunk `s`; returns (line length, EOL length). `None` means
/// "use the general path" (which gives the same answer whenever this one
/// gives any).
#[inline]
fn front_eol(s: &[u8], style: EolStyle, max_len: Option<usize>) -> Option<(usize, usize)> {
    let lim = max_len.map_or(s.len(), |m| s.len().min(m.saturating_add(1)));
    eol_in_slice(s, lim, style)
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
