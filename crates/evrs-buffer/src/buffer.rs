//! The `EvBuffer` type itself: state, construction, freezing, flags and the
//! small internal helpers every other module uses.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::BytesMut;

use crate::callbacks::Callbacks;
use crate::chunk::{copy_bytes, extend_bytes, next_chunk_size, Chunk};
use crate::error::{End, Error, Result};
use crate::lazy::{read_lazy, PIECE};
use crate::reserve::Reservation;

/// libevent's per-call read cap (`EVBUFFER_MAX_READ`).
pub const DEFAULT_MAX_READ: usize = 4096;

/// The largest per-call read cap [`EvBuffer::set_max_read`] accepts.
pub const MAX_READ_LIMIT: usize = i32::MAX as usize;

/// Buffer-wide options (libevent's `EVBUFFER_FLAG_*` bits, for
/// `evbuffer_set_flags` / `evbuffer_clear_flags`): see
/// [`EvBuffer::set_flags`].
///
/// ```
/// use evrs_buffer::{BufferFlags, EvBuffer};
/// let mut buf = EvBuffer::new();
/// buf.set_flags(BufferFlags::DRAINS_TO_FD);
/// assert!(buf.flags().contains(BufferFlags::DRAINS_TO_FD));
/// buf.clear_flags(BufferFlags::DRAINS_TO_FD);
/// assert_eq!(buf.flags(), BufferFlags::empty());
/// assert_eq!(BufferFlags::from_bits(1), Some(BufferFlags::DRAINS_TO_FD));
/// assert_eq!(BufferFlags::from_bits(2), None); // no such flag
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BufferFlags(u64);

impl BufferFlags {
    /// The buffer is only ever drained by writing it to an fd, draining or
    /// moving it whole (`EVBUFFER_FLAG_DRAINS_TO_FD`, value 1): lets
    /// [`EvBuffer::write`] send file segments with `sendfile(2)`.
    pub const DRAINS_TO_FD: BufferFlags = BufferFlags(1);
    const ALL: u64 = 1;

    /// No flags.
    pub const fn empty() -> Self {
        BufferFlags(0)
    }

    /// libevent's numeric value.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// The flags for libevent's numeric value, or `None` if `bits` has a
    /// bit no flag uses (libevent 2.1 would store it and ignore it).
    pub const fn from_bits(bits: u64) -> Option<Self> {
        if bits & !Self::ALL == 0 {
            Some(BufferFlags(bits))
        } else {
            None
        }
    }

    /// True if every flag in `other` is set in `self`.
    pub const fn contains(self, other: BufferFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for BufferFlags {
    type Output = BufferFlags;
    fn bitor(self, rhs: BufferFlags) -> BufferFlags {
        BufferFlags(self.0 | rhs.0)
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A growable byte queue made of a chain of chunks: libevent's `evbuffer`.
///
/// Data is appended at the end and consumed from the start. Moving data
/// between buffers ([`add_buffer`](Self::add_buffer),
/// [`remove_buffer`](Self::remove_buffer)) relinks chunks instead of copying
/// them, and [`add_bytes`](Self::add_bytes),
/// [`add_reference`](Self::add_reference) and file segments add data
/// without copying at all.
///
/// ```
/// use evrs_buffer::{EolStyle, EvBuffer};
///
/// let mut buf = EvBuffer::new();
/// buf.add(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
/// let line = buf.readln(EolStyle::CrlfStrict, Some(8192)).unwrap();
/// assert_eq!(line.as_deref(), Some(&b"GET / HTTP/1.1"[..]));
/// assert_eq!(buf.len(), 11);
/// ```
pub struct EvBuffer {
    pub(crate) chunks: VecDeque<Chunk>,
    pub(crate) len: usize,
    /// Identity, so a position from another buffer is never trusted.
    pub(crate) id: u64,
    /// Bumped by every mutation; stale positions and reservations notice.
    pub(crate) gen: u64,
    pub(crate) freeze_start: bool,
    pub(crate) freeze_end: bool,
    pub(crate) drains_to_fd: bool,
    /// At most `MAX_READ_LIMIT`, so 32 bits (the buffer is held twice per connection).
    pub(crate) max_read: u32,
    /// (Boxed: rare, and the buffer is held twice per bufferevent connection.)
    pub(crate) reservation: Option<Box<Reservation>>,
    pub(crate) cbs: Callbacks,
}

const _: () = assert!(MAX_READ_LIMIT <= u32::MAX as usize);
// Held twice per bufferevent connection: its size is idle memory per connection.
const _: () = assert!(std::mem::size_of::<EvBuffer>() <= 80);

impl Default for EvBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for EvBuffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EvBuffer")
            .field("len", &self.len)
            .field("chunks", &self.chunks.len())
            .field("freeze_start", &self.freeze_start)
            .field("freeze_end", &self.freeze_end)
            .field("callbacks", &self.cbs)
            .finish()
    }
}

impl EvBuffer {
    /// An empty buffer. Allocates nothing until data arrives.
    pub fn new() -> Self {
        EvBuffer {
            chunks: VecDeque::new(),
            len: 0,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            gen: 0,
            freeze_start: false,
            freeze_end: false,
            drains_to_fd: false,
            max_read: DEFAULT_MAX_READ as u32,
            reservation: None,
            cbs: Callbacks::default(),
        }
    }

    /// Number of bytes stored (libevent's `evbuffer_get_length`).
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if no bytes are stored.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Length of the first chunk: the bytes readable without a pullup
    /// (libevent's `evbuffer_get_contiguous_space`). For file data that is
    /// not in memory (see [`FileSegment`](crate::FileSegment)) it is the
    /// most that [`pullup`](Self::pullup) reads in one piece (256 KiB, or
    /// less if the data is shorter).
    pub fn contiguous_space(&self) -> usize {
        self.chunks.iter().find(|c| c.len() > 0).map_or(0, |c| {
            if c.in_memory() {
                c.len()
            } else {
                c.len().min(PIECE)
            }
        })
    }

    /// Iterates over the stored data chunk by chunk, front to back. Stops
    /// before file data that is not in memory (see
    /// [`FileSegment`](crate::FileSegment)); read that with
    /// [`copyout_from`](Self::copyout_from) or [`remove`](Self::remove).
    pub fn chunks(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.chunks
            .iter()
            .take_while(|c| c.in_memory())
            .map(Chunk::as_slice)
            .filter(|s| !s.is_empty())
    }

    /// Copies the whole content into a new `Vec` (a convenience for tests and
    /// small buffers; nothing is removed). If that fails (see
    /// [`try_to_vec`](Self::try_to_vec)) the `Vec` is empty.
    pub fn to_vec(&self) -> Vec<u8> {
        self.try_to_vec().unwrap_or_default()
    }

    /// Copies the whole content into a new `Vec`, reading file data that is
    /// not in memory. Fails with [`Error::NoMemory`] if the length cannot
    /// be allocated, or with [`Error::Io`] if reading the file fails.
    pub fn try_to_vec(&self) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        v.try_reserve_exact(self.len).map_err(|_| Error::NoMemory)?;
        for c in self.chunks.iter() {
            match c {
                Chunk::Lazy { seg, file_off, len } => {
                    let at = v.len();
                    v.resize(at + len, 0);
                    read_lazy(&seg.file, *file_off, 0, v.get_mut(at..).unwrap_or(&mut []))?;
                }
                _ => v.extend_from_slice(c.as_slice()),
            }
        }
        Ok(v)
    }

    /// Freezes one end: calls that would change that end fail with
    /// [`Error::Frozen`] until [`unfreeze`](Self::unfreeze). Freezing
    /// `End::Start` blocks drain, remove, copyout, readln, write and prepend
    /// (and being the source of `add_buffer`/`remove_buffer`); freezing
    /// `End::End` blocks add, formatting, references, files, read,
    /// reserve/commit and being their destination.
    pub fn freeze(&mut self, end: End) {
        match end {
            End::Start => self.freeze_start = true,
            End::End => self.freeze_end = true,
        }
    }

    /// Undoes [`freeze`](Self::freeze) for that end.
    pub fn unfreeze(&mut self, end: End) {
        match end {
            End::Start => self.freeze_start = false,
            End::End => self.freeze_end = false,
        }
    }

    /// True if that end is frozen.
    pub fn is_frozen(&self, end: End) -> bool {
        match end {
            End::Start => self.freeze_start,
            End::End => self.freeze_end,
        }
    }

    /// Marks the buffer as one that is written to a socket
    /// (`EVBUFFER_FLAG_DRAINS_TO_FD`): file segments added afterwards are sent
    /// with `sendfile(2)` by [`write`](Self::write).
    pub fn set_drains_to_fd(&mut self, on: bool) {
        self.drains_to_fd = on;
    }

    /// True if [`set_drains_to_fd`](Self::set_drains_to_fd) is on.
    pub fn drains_to_fd(&self) -> bool {
        self.drains_to_fd
    }

    /// Sets the given flags, keeping the others (libevent's
    /// `evbuffer_set_flags`).
    pub fn set_flags(&mut self, flags: BufferFlags) {
        if flags.contains(BufferFlags::DRAINS_TO_FD) {
            self.drains_to_fd = true;
        }
    }

    /// Clears the given flags, keeping the others (libevent's
    /// `evbuffer_clear_flags`).
    pub fn clear_flags(&mut self, flags: BufferFlags) {
        if flags.contains(BufferFlags::DRAINS_TO_FD) {
            self.drains_to_fd = false;
        }
    }

    /// The flags that are set.
    pub fn flags(&self) -> BufferFlags {
        if self.drains_to_fd {
            BufferFlags::DRAINS_TO_FD
        } else {
            BufferFlags::empty()
        }
    }

    #[inline]
    pub(crate) fn check_start(&self) -> Result<()> {
        if self.freeze_start {
            Err(Error::Frozen(End::Start))
        } else {
            Ok(())
        }
    }

    #[inline]
    pub(crate) fn check_end(&self) -> Result<()> {
        if self.freeze_end {
            Err(Error::Frozen(End::End))
        } else {
            Ok(())
        }
    }

    /// Structural change without a change of content.
    #[inline]
    pub(crate) fn touch(&mut self) {
        self.gen = self.gen.wrapping_add(1);
    }

    /// Appends bytes at the end: fills the tail's spare space, then one new
    /// chunk for the rest. No callbacks, no freeze check.
    #[inline]
    pub(crate) fn append(&mut self, mut data: &[u8]) {
        if data.is_empty() {
            return;
        }
        self.len += data.len();
        let mut last_cap = 0;
        if let Some(Chunk::Mem(tail)) = self.chunks.back_mut() {
            let spare = tail.capacity() - tail.len();
            if spare >= data.len() {
                extend_bytes(tail, data);
                return;
            }
            if tail.is_empty() && tail.try_reclaim(data.len()) {
                extend_bytes(tail, data);
                return;
            }
            if spare > 0 {
                let (now, rest) = data.split_at(spare);
                extend_bytes(tail, now);
                data = rest;
            }
            last_cap = tail.capacity();
        }
        let mut b = BytesMut::with_capacity(next_chunk_size(data.len(), last_cap));
        extend_bytes(&mut b, data);
        self.push_back_chunk(Chunk::Mem(b));
    }

    /// Pushes a chunk at the back, replacing an empty trailing chunk.
    #[inline]
    pub(crate) fn push_back_chunk(&mut self, c: Chunk) {
        if matches!(self.chunks.back(), Some(t) if t.len() == 0) {
            self.chunks.pop_back();
        }
        self.chunks.push_back(c);
    }

    /// Drops `n` bytes from the front (clamped). No callbacks, no checks.
    pub(crate) fn drop_front(&mut self, mut n: usize) {
        n = n.min(self.len);
        self.len -= n;
        while n > 0 {
            let last = self.chunks.len() == 1;
            let Some(front) = self.chunks.front_mut() else {
                break;
            };
            let l = front.len();
            if l > n {
                front.advance(n);
                break;
            }
            n -= l;
            if last {
                if let Chunk::Mem(b) = front {
                    // Keep the tail's memory for the next append.
                    b.clear();
                    break;
                }
            }
            self.chunks.pop_front();
        }
        self.drop_empty_front();
    }

    /// Removes empty chunks at the front, keeping a lone empty `Mem` tail.
    #[inline]
    pub(crate) fn drop_empty_front(&mut self) {
        while self.chunks.len() > 1 && self.chunks.front().is_some_and(|c| c.len() == 0) {
            self.chunks.pop_front();
        }
        if self.chunks.len() == 1
            && matches!(self.chunks.front(), Some(c) if c.len() == 0 && !matches!(c, Chunk::Mem(_)))
        {
            self.chunks.pop_front();
        }
    }

    /// Copies up to `out.len()` bytes starting at chunk `ci`, offset `off`;
    /// file data that is not in memory is read straight into `out`.
    pub(crate) fn copy_from(&self, mut ci: usize, mut off: usize, out: &mut [u8]) -> Result<usize> {
        let mut done = 0;
        while done < out.len() {
            let Some(c) = self.chunks.get(ci) else { break };
            if let Chunk::Lazy { seg, file_off, len } = c {
                let k = len.saturating_sub(off).min(out.len() - done);
                read_lazy(&seg.file, *file_off, off, &mut out[done..done + k])?;
                done += k;
            } else {
                let s = c.as_slice().get(off..).unwrap_or(&[]);
                let k = s.len().min(out.len() - done);
                copy_bytes(&mut out[done..done + k], &s[..k]);
                done += k;
            }
            ci += 1;
            off = 0;
        }
        Ok(done)
    }
}
