//! Adding data: copies, zero-copy moves between buffers, references,
//! formatting, prepending and expanding.

use std::fmt;
use std::io;

use bytes::{Buf, Bytes, BytesMut};

use crate::chunk::{extend_bytes, next_chunk_size, try_alloc, Chunk};
use crate::error::{Error, Result};
use crate::EvBuffer;

/// Runs a cleanup closure when the last reference to its data is dropped.
struct Cleanup<T: AsRef<[u8]>, F: FnOnce(T)> {
    data: Option<T>,
    cleanup: Option<F>,
}

impl<T: AsRef<[u8]>, F: FnOnce(T)> AsRef<[u8]> for Cleanup<T, F> {
    fn as_ref(&self) -> &[u8] {
        self.data.as_ref().map_or(&[], |d| d.as_ref())
    }
}

impl<T: AsRef<[u8]>, F: FnOnce(T)> Drop for Cleanup<T, F> {
    fn drop(&mut self) {
        if let (Some(d), Some(f)) = (self.data.take(), self.cleanup.take()) {
            f(d);
        }
    }
}

impl EvBuffer {
    /// Appends a copy of `data` (libevent's `evbuffer_add`).
    ///
    /// Fails with [`Error::Frozen`] if the end is frozen.
    #[inline]
    pub fn add(&mut self, data: &[u8]) -> Result<()> {
        self.check_end()?;
        let orig = self.len;
        self.append(data);
        self.changed(orig, data.len(), 0);
        Ok(())
    }

    /// Appends copies of several slices in order, like one [`add`](Self::add)
    /// of their concatenation (libevent's `evbuffer_add_iovec`), and returns
    /// the bytes added. The tail's free space is filled first; at most one
    /// new chunk is allocated, sized for everything that is left.
    ///
    /// ```
    /// use evrs_buffer::EvBuffer;
    /// let mut buf = EvBuffer::new();
    /// let n = buf.add_iovec(&[&b"GET "[..], b"/ ", b"HTTP/1.1\r\n"]).unwrap();
    /// assert_eq!(n, 16);
    /// assert_eq!(buf.to_vec(), b"GET / HTTP/1.1\r\n");
    /// ```
    pub fn add_iovec<S: AsRef<[u8]>>(&mut self, slices: &[S]) -> Result<usize> {
        self.check_end()?;
        let total = slices
            .iter()
            .try_fold(0usize, |t, s| t.checked_add(s.as_ref().len()))
            .ok_or(Error::OutOfRange)?;
        if total == 0 {
            return Ok(0);
        }
        let orig = self.len;
        let (mut spare, last_cap) = match self.chunks.back() {
            Some(Chunk::Mem(t)) => (t.capacity() - t.len(), t.capacity()),
            _ => (0, 0),
        };
        let mut fresh = (total > spare)
            .then(|| BytesMut::with_capacity(next_chunk_size(total - spare, last_cap)));
        for s in slices {
            let mut d = s.as_ref();
            if spare > 0 {
                let k = spare.min(d.len());
                if let Some(Chunk::Mem(t)) = self.chunks.back_mut() {
                    extend_bytes(t, d.get(..k).unwrap_or(d));
                }
                spare -= k;
                d = d.get(k..).unwrap_or(&[]);
            }
            if let Some(f) = fresh.as_mut() {
                extend_bytes(f, d);
            }
        }
        if let Some(f) = fresh.filter(|f| !f.is_empty()) {
            self.push_back_chunk(Chunk::Mem(f));
        }
        self.len += total;
        self.changed(orig, total, 0);
        Ok(total)
    }

    /// Appends `data` without copying: the `Bytes` becomes a chunk.
    pub fn add_bytes(&mut self, data: Bytes) -> Result<()> {
        self.check_end()?;
        let (orig, n) = (self.len, data.len());
        if n > 0 {
            self.len += n;
            self.push_back_chunk(Chunk::Shared(data));
        }
        self.changed(orig, n, 0);
        Ok(())
    }

    /// Appends memory the caller owns without copying it
    /// (libevent's `evbuffer_add_reference` without a cleanup function). The
    /// owner is dropped when the buffer (and every buffer or line sharing the
    /// data) is done with it.
    pub fn add_reference<T>(&mut self, data: T) -> Result<()>
    where
        T: AsRef<[u8]> + Send + 'static,
    {
        self.check_end()?;
        self.add_bytes(Bytes::from_owner(data))
    }

    /// Appends memory without copying and calls `cleanup(data)` once the
    /// last use of it is gone (libevent's `evbuffer_add_reference` with a
    /// cleanup function).
    ///
    /// If the end is frozen this fails and `cleanup` is **not** called
    /// (libevent does the same); `data` is simply dropped.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    /// use evrs_buffer::EvBuffer;
    ///
    /// let freed = Arc::new(AtomicBool::new(false));
    /// let flag = Arc::clone(&freed);
    /// let mut buf = EvBuffer::new();
    /// buf.add_reference_with_cleanup(&b"static"[..], move |_| flag.store(true, Ordering::SeqCst))
    ///     .unwrap();
    /// buf.drain(6).unwrap();
    /// assert!(freed.load(Ordering::SeqCst));
    /// ```
    pub fn add_reference_with_cleanup<T, F>(&mut self, data: T, cleanup: F) -> Result<()>
    where
        T: AsRef<[u8]> + Send + 'static,
        F: FnOnce(T) + Send + 'static,
    {
        self.check_end()?;
        self.add_bytes(Bytes::from_owner(Cleanup {
            data: Some(data),
            cleanup: Some(cleanup),
        }))
    }

    /// Moves all of `src` to the end of `self` by relinking chunks, without
    /// copying (libevent's `evbuffer_add_buffer`). Returns the bytes moved.
    ///
    /// An empty `src` moves nothing and succeeds (even if frozen, as in
    /// libevent). Otherwise fails if `self`'s end or `src`'s start is
    /// frozen, or with [`Error::OutOfRange`] if `self` would hold more than
    /// `usize::MAX` bytes (possible only with file segments). `src`'s
    /// callbacks run before `self`'s.
    #[inline]
    pub fn add_buffer(&mut self, src: &mut EvBuffer) -> Result<usize> {
        let n = src.len;
        if n == 0 {
            return Ok(0);
        }
        self.check_end()?;
        src.check_start()?;
        if self.chunks.is_empty() && self.cbs.is_empty() && src.cbs.is_empty() {
            // Fast path: an empty destination takes the whole chain.
            std::mem::swap(&mut self.chunks, &mut src.chunks);
            self.len = n;
            src.len = 0;
            self.touch();
            src.touch();
            return Ok(n);
        }
        let new_len = self.len.checked_add(n).ok_or(Error::OutOfRange)?;
        let (orig_dst, orig_src) = (self.len, src.len);
        if self.len == 0 && self.chunks.iter().all(|c| c.len() == 0) {
            std::mem::swap(&mut self.chunks, &mut src.chunks);
            // `src` gets `self`'s emptied memory back: one empty chunk is kept for its next
            // append (an echo moving input to output then reads into the output's old
            // chunk: no allocation per message).
            src.chunks.truncate(1);
            if !matches!(src.chunks.front(), Some(Chunk::Mem(_))) {
                src.chunks.clear();
            }
        } else {
            if matches!(self.chunks.back(), Some(t) if t.len() == 0) {
                self.chunks.pop_back();
            }
            self.chunks.extend(src.chunks.drain(..));
        }
        self.len = new_len;
        src.len = 0;
        src.changed(orig_src, 0, n);
        self.changed(orig_dst, n, 0);
        Ok(n)
    }

    /// Moves all of `src` to the front of `self` without copying
    /// (libevent's `evbuffer_prepend_buffer`). Returns the bytes moved.
    ///
    /// Fails if `self`'s start or `src`'s start is frozen, or with
    /// [`Error::OutOfRange`] if `self` would hold more than `usize::MAX`
    /// bytes.
    pub fn prepend_buffer(&mut self, src: &mut EvBuffer) -> Result<usize> {
        self.check_start()?;
        src.check_start()?;
        let n = src.len;
        if n == 0 {
            return Ok(0);
        }
        self.len.checked_add(n).ok_or(Error::OutOfRange)?;
        let (orig_dst, orig_src) = (self.len, src.len);
        let mut moved = std::mem::take(&mut src.chunks);
        moved.retain(|c| c.len() > 0);
        if self.len == 0 {
            self.chunks.clear();
        }
        while let Some(c) = moved.pop_back() {
            self.chunks.push_front(c);
        }
        self.len += n;
        src.len = 0;
        src.changed(orig_src, 0, n);
        self.changed(orig_dst, n, 0);
        Ok(n)
    }

    /// Appends `src`'s content to `self` without copying and without
    /// removing it from `src` (libevent's `evbuffer_add_buffer_reference`).
    /// Both buffers then share the memory; either may keep changing.
    /// Returns the bytes added. Fails if the end is frozen, or with
    /// [`Error::OutOfRange`] if `self` would hold more than `usize::MAX`
    /// bytes.
    pub fn add_buffer_reference(&mut self, src: &mut EvBuffer) -> Result<usize> {
        self.check_end()?;
        let n = src.len;
        if n == 0 {
            return Ok(0);
        }
        self.len.checked_add(n).ok_or(Error::OutOfRange)?;
        src.share_all();
        let orig = self.len;
        for c in src.chunks.iter() {
            let shared = match c {
                Chunk::Shared(b) | Chunk::Multicast(b) => Chunk::Multicast(b.clone()),
                Chunk::File {
                    data,
                    seg,
                    file_off,
                } => Chunk::File {
                    data: data.clone(),
                    seg: seg.clone(),
                    file_off: *file_off,
                },
                Chunk::Lazy { seg, file_off, len } => Chunk::Lazy {
                    seg: seg.clone(),
                    file_off: *file_off,
                    len: *len,
                },
                // share_all left only the empty tail as Mem, and no Front.
                Chunk::Mem(_) | Chunk::Front { .. } => continue,
            };
            if shared.len() > 0 {
                self.push_back_chunk(shared);
            }
        }
        self.len += n;
        self.changed(orig, n, 0);
        Ok(n)
    }

    /// True if some of the content came from another buffer through
    /// [`add_buffer_reference`](Self::add_buffer_reference) (possibly moved
    /// here since by `add_buffer` / `remove_buffer`). libevent refuses such a
    /// buffer as the source of another `evbuffer_add_buffer_reference`
    /// ("nested references are not allowed"); the C layer checks this.
    ///
    /// ```
    /// use evrs_buffer::EvBuffer;
    /// let (mut a, mut b) = (EvBuffer::new(), EvBuffer::new());
    /// a.add(b"shared").unwrap();
    /// b.add_buffer_reference(&mut a).unwrap();
    /// assert!(b.has_buffer_references() && !a.has_buffer_references());
    /// b.drain(6).unwrap();
    /// assert!(!b.has_buffer_references());
    /// ```
    pub fn has_buffer_references(&self) -> bool {
        self.chunks
            .iter()
            .any(|c| c.len() > 0 && matches!(c, Chunk::Multicast(_)))
    }

    /// Turns every `Mem` chunk's data into shared bytes in place; the tail
    /// keeps its spare capacity as a trailing empty `Mem` chunk.
    fn share_all(&mut self) {
        self.touch();
        let old = std::mem::take(&mut self.chunks);
        let count = old.len();
        for (i, c) in old.into_iter().enumerate() {
            match c {
                Chunk::Mem(mut b) => {
                    if !b.is_empty() {
                        self.chunks.push_back(Chunk::Shared(b.split().freeze()));
                    }
                    if i + 1 == count && b.capacity() > 0 {
                        self.chunks.push_back(Chunk::Mem(b));
                    }
                }
                Chunk::Front { mut buf, start } => {
                    buf.advance(start.min(buf.len()));
                    if !buf.is_empty() {
                        self.chunks.push_back(Chunk::Shared(buf.freeze()));
                    }
                }
                other => self.chunks.push_back(other),
            }
        }
    }

    /// Puts a copy of `data` before the current content (libevent's
    /// `evbuffer_prepend`). Empty `data` succeeds without a change. Fails if
    /// the start is frozen.
    pub fn prepend(&mut self, data: &[u8]) -> Result<()> {
        self.check_start()?;
        if data.is_empty() {
            return Ok(());
        }
        let orig = self.len;
        if self.len == 0 {
            self.chunks.clear();
            self.append(data);
        } else {
            self.drop_empty_front();
            // Fill the first chunk's front room with the end of `data`, then
            // one new chunk for the rest, with room for more prepends
            // (libevent reuses the first chain's misalign the same way).
            let room = self.chunks.front().map_or(0, Chunk::front_room);
            let (rest, last) = data.split_at(data.len().saturating_sub(room));
            if !last.is_empty() {
                if let Some(front) = self.chunks.front_mut() {
                    front.prepend_in_place(last);
                }
            }
            if !rest.is_empty() {
                let room = next_chunk_size(rest.len(), 0) - rest.len();
                self.chunks.push_front(Chunk::new_front(rest, room));
            }
            self.len += data.len();
        }
        self.changed(orig, data.len(), 0);
        Ok(())
    }

    /// Appends formatted text, like libevent's `evbuffer_add_printf`, and
    /// returns the number of bytes added. Nothing is added if a `Display`
    /// implementation fails ([`Error::Format`]).
    ///
    /// ```
    /// use evrs_buffer::EvBuffer;
    /// let mut buf = EvBuffer::new();
    /// assert_eq!(buf.add_fmt(format_args!("{}-{:03}", "id", 7)).unwrap(), 6);
    /// assert_eq!(buf.to_vec(), b"id-007");
    /// ```
    pub fn add_fmt(&mut self, args: fmt::Arguments<'_>) -> Result<usize> {
        self.check_end()?;
        if let Some(s) = args.as_str() {
            self.add(s.as_bytes())?;
            return Ok(s.len());
        }
        let mut s = String::new();
        fmt::write(&mut s, args).map_err(|_| Error::Format)?;
        self.add(s.as_bytes())?;
        Ok(s.len())
    }

    /// Makes sure the tail has at least `n` contiguous free bytes, so the
    /// next `n` bytes of appends need no allocation (libevent's
    /// `evbuffer_expand`). A size that cannot be allocated fails with
    /// [`Error::NoMemory`] and changes nothing.
    pub fn expand(&mut self, n: usize) -> Result<()> {
        self.touch();
        let (spare, empty_tail, last_cap) = match self.chunks.back() {
            Some(Chunk::Mem(t)) => (t.capacity() - t.len(), t.is_empty(), t.capacity()),
            _ => (0, false, 0),
        };
        if spare >= n {
            return Ok(());
        }
        // An empty tail is replaced by a bigger one; otherwise a new chunk
        // follows the data.
        let b = try_alloc(if empty_tail {
            n
        } else {
            next_chunk_size(n, last_cap)
        })?;
        if empty_tail {
            self.chunks.pop_back();
        }
        self.chunks.push_back(Chunk::Mem(b));
        Ok(())
    }
}

impl fmt::Write for EvBuffer {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.add(s.as_bytes()).map_err(|_| fmt::Error)
    }
}

impl io::Write for EvBuffer {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.add(data)?;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
