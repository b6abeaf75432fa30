//! One link of the chain: owned writable memory, shared immutable bytes, or a
//! window of a file segment (in memory, or read from the file when needed).

use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};

use crate::error::{Error, Result};
use crate::file::SegmentInner;

/// Smallest allocation a chunk stands for, header included (libevent's `MIN_BUFFER_SIZE`):
/// the room of the smallest chunk is this less `LIBEVENT_CHAIN_HEADER`.
pub(crate) const MIN_CHUNK: usize = 1024;
/// Chunk sizes double while the tail fills up, but never past this.
pub(crate) const MAX_AUTO_CHUNK: usize = 64 * 1024;

/// A chunk of the chain. Only `Mem` chunks have writable spare capacity.
pub(crate) enum Chunk {
    /// Owned memory: `len()` bytes of data, then spare capacity.
    Mem(BytesMut),
    /// Immutable shared bytes: references, zero-copy adds, pulled lines.
    Shared(Bytes),
    /// Immutable bytes shared with another buffer by `add_buffer_reference`
    /// (libevent's multicast chains, which a later `add_buffer_reference`
    /// refuses to share again: see [`EvBuffer::has_buffer_references`]).
    ///
    /// [`EvBuffer::has_buffer_references`]: crate::EvBuffer::has_buffer_references
    Multicast(Bytes),
    /// Owned memory filled from the back by `prepend`: the data is
    /// `buf[start..]` and `buf[..start]` is free room for later prepends
    /// (libevent's misalign). `buf` is fully initialised.
    Front { buf: BytesMut, start: usize },
    /// A window of a file segment. `data` is the in-memory view (mmap or a
    /// copy); `file_off` is where `data` starts in the file, for sendfile.
    File {
        data: Bytes,
        seg: Arc<SegmentInner>,
        file_off: u64,
    },
    /// A window of a file segment that is not in memory: `len` bytes of the
    /// file from `file_off`, read in bounded pieces when they are needed
    /// (see `lazy.rs`). `as_slice` is empty for it; every reader of chunk
    /// data checks [`Chunk::in_memory`] first.
    Lazy {
        seg: Arc<SegmentInner>,
        file_off: u64,
        len: usize,
    },
}

impl Chunk {
    #[inline]
    pub(crate) fn len(&self) -> usize {
        match self {
            Chunk::Mem(b) => b.len(),
            Chunk::Shared(b) | Chunk::Multicast(b) => b.len(),
            Chunk::Front { buf, start } => buf.len().saturating_sub(*start),
            Chunk::File { data, .. } => data.len(),
            Chunk::Lazy { len, .. } => *len,
        }
    }

    /// False for file data that is not in memory ([`Chunk::Lazy`]), whose
    /// `as_slice` is empty although `len` is not.
    #[inline]
    pub(crate) fn in_memory(&self) -> bool {
        !matches!(self, Chunk::Lazy { .. })
    }

    /// The file segment this chunk is a window of, and where the window
    /// starts in the file.
    #[inline]
    pub(crate) fn file_part(&self) -> Option<(&Arc<SegmentInner>, u64)> {
        match self {
            Chunk::File { seg, file_off, .. } | Chunk::Lazy { seg, file_off, .. } => {
                Some((seg, *file_off))
            }
            _ => None,
        }
    }

    #[inline]
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Chunk::Mem(b) => b,
            Chunk::Shared(b) | Chunk::Multicast(b) => b,
            Chunk::Front { buf, start } => buf.get(*start..).unwrap_or(&[]),
            Chunk::File { data, .. } => data,
            Chunk::Lazy { .. } => &[],
        }
    }

    /// Drops `n` bytes from the front. Callers guarantee `n <= len()`.
    #[inline]
    pub(crate) fn advance(&mut self, n: usize) {
        let n = n.min(self.len());
        match self {
            Chunk::Mem(b) => b.advance(n),
            Chunk::Shared(b) | Chunk::Multicast(b) => b.advance(n),
            Chunk::Front { start, .. } => *start += n,
            Chunk::File { data, file_off, .. } => {
                data.advance(n);
                *file_off += n as u64;
            }
            Chunk::Lazy { file_off, len, .. } => {
                *len -= n;
                *file_off += n as u64;
            }
        }
    }

    /// Removes the first `line + eol` bytes (callers guarantee they exist
    /// and are in memory) and returns the first `line` of them as `Bytes`,
    /// without copying.
    #[inline]
    pub(crate) fn split_line(&mut self, line: usize, eol: usize) -> Bytes {
        match self {
            Chunk::Mem(b) => {
                let mut l = b.split_to(line.saturating_add(eol).min(b.len()));
                l.truncate(line);
                l.freeze()
            }
            // (`Bytes::truncate` may cost a second reference count, so the
            // shared and file kinds split and advance instead.)
            _ => {
                let l = self.split_to_bytes(line);
                self.advance(eol);
                l
            }
        }
    }

    /// Splits off the first `n` bytes (clamped to `len()`) as a new chunk
    /// without copying.
    #[inline]
    pub(crate) fn split_to(&mut self, n: usize) -> Chunk {
        let n = n.min(self.len());
        match self {
            Chunk::Mem(b) => Chunk::Mem(b.split_to(n)),
            Chunk::Shared(b) => Chunk::Shared(b.split_to(n)),
            // (Unmarked: libevent copies a part of a chain it moves.)
            Chunk::Multicast(b) => Chunk::Shared(b.split_to(n)),
            Chunk::Front { buf, start } => {
                // The front room goes with the split-off part's
                // allocation; what stays keeps none.
                buf.advance((*start).min(buf.len()));
                *start = 0;
                Chunk::Mem(buf.split_to(n))
            }
            Chunk::File {
                data,
                seg,
                file_off,
            } => {
                let front = Chunk::File {
                    data: data.split_to(n),
                    seg: Arc::clone(seg),
                    file_off: *file_off,
                };
                *file_off += n as u64;
                front
            }
            Chunk::Lazy { seg, file_off, len } => {
                let front = Chunk::Lazy {
                    seg: Arc::clone(seg),
                    file_off: *file_off,
                    len: n,
                };
                *file_off += n as u64;
                *len -= n;
                front
            }
        }
    }

    /// Splits off the first `n` bytes (clamped) as immutable `Bytes`.
    /// Callers guarantee the chunk is in memory; a [`Chunk::Lazy`] window is
    /// split off but gives empty `Bytes`.
    #[inline]
    pub(crate) fn split_to_bytes(&mut self, n: usize) -> Bytes {
        match self.split_to(n) {
            Chunk::Mem(b) => b.freeze(),
            Chunk::Shared(b) | Chunk::Multicast(b) => b,
            Chunk::Front { mut buf, start } => {
                buf.advance(start.min(buf.len()));
                buf.freeze()
            }
            Chunk::File { data, .. } => data,
            Chunk::Lazy { .. } => Bytes::new(),
        }
    }

    /// Room before the data that `prepend` may fill.
    #[inline]
    pub(crate) fn front_room(&self) -> usize {
        match self {
            Chunk::Front { start, .. } => *start,
            _ => 0,
        }
    }

    /// Copies `data` into the room before the data. Callers guarantee
    /// `data.len() <= front_room()`; otherwise nothing happens.
    #[inline]
    pub(crate) fn prepend_in_place(&mut self, data: &[u8]) -> bool {
        if let Chunk::Front { buf, start } = self {
            if let Some(at) = start.checked_sub(data.len()) {
                if let Some(dst) = buf.get_mut(at..*start) {
                    dst.copy_from_slice(data);
                    *start = at;
                    return true;
                }
            }
        }
        false
    }

    /// A chunk holding a copy of `data` at its end, with `room` free bytes
    /// before it for later prepends.
    pub(crate) fn new_front(data: &[u8], room: usize) -> Chunk {
        let buf = BytesMut::zeroed(room.saturating_add(data.len()));
        let mut c = Chunk::Front {
            buf,
            start: room.saturating_add(data.len()),
        };
        c.prepend_in_place(data);
        c
    }
}

/// Large copies are issued to `memcpy` in pieces of this size.
const COPY_PIECE: usize = 2048;
/// Copies longer than this (and up to `COPY_PIECEWISE_MAX`) are split.
const COPY_PIECEWISE_MIN: usize = 2 * COPY_PIECE;
/// Copies longer than this go to `memcpy` whole, so that its non-temporal
/// path for huge copies is kept.
const COPY_PIECEWISE_MAX: usize = 1 << 20;

/// Copies `src` into `dst` (equal lengths). Copies of 4 KiB to 1 MiB are
/// done in 2 KiB pieces: glibc's `memcpy` switches to `rep movsb` above
/// about 4 KiB, whose speed depends on the relative alignment of source and
/// destination (measured on this project's AMD EPYC machines: 10-25 %
/// slower for some alignments, and ~20x slower when `dst - src` is 16 modulo
/// 4096), while its vector loop for 2 KiB pieces is never slower than the
/// best case. Chunk memory meets arbitrary user buffers, so every
/// alignment occurs.
#[inline]
pub(crate) fn copy_bytes(dst: &mut [u8], src: &[u8]) {
    if src.len() <= COPY_PIECEWISE_MIN || src.len() > COPY_PIECEWISE_MAX {
        dst.copy_from_slice(src);
        return;
    }
    for (d, s) in dst.chunks_mut(COPY_PIECE).zip(src.chunks(COPY_PIECE)) {
        d.copy_from_slice(s);
    }
}

/// `b.extend_from_slice(src)`, copying like [`copy_bytes`].
#[inline]
pub(crate) fn extend_bytes(b: &mut BytesMut, src: &[u8]) {
    if src.len() <= COPY_PIECEWISE_MIN || src.len() > COPY_PIECEWISE_MAX {
        b.extend_from_slice(src);
        return;
    }
    b.reserve(src.len());
    for s in src.chunks(COPY_PIECE) {
        b.extend_from_slice(s);
    }
}

/// An empty chunk buffer with room for at least `cap` bytes, for sizes that
/// come from the caller rather than from data that already exists
/// (`expand`, `reserve_space`). A size the allocator cannot satisfy is an
/// [`Error::NoMemory`] instead of a panic or an abort.
pub(crate) fn try_alloc(cap: usize) -> Result<BytesMut> {
    let mut v: Vec<u8> = Vec::new();
    v.try_reserve_exact(cap).map_err(|_| Error::NoMemory)?;
    // `Vec -> BytesMut` through `FromIterator` keeps an untouched vector's
    // allocation; should it not, `reserve` below restores the capacity.
    let mut b: BytesMut = v.into_iter().collect();
    if b.capacity() < cap {
        b.reserve(cap);
    }
    Ok(b)
}

/// libevent's chain header on x86_64 (`sizeof(struct evbuffer_chain)`): a chain is one
/// allocation of a power of two (at least [`MIN_CHUNK`]) with the header inside, so the
/// room it offers is `2^k - 48` — 976 bytes for the first. Programs see it: how many
/// iovecs `reserve_space` needs, where `add` starts a new chunk.
const LIBEVENT_CHAIN_HEADER: usize = 48;

/// Capacity for a new chunk that must hold at least `need` bytes, given the capacity of
/// the chunk it follows: libevent's sizes (double the last, at least what is needed, in a
/// power-of-two allocation less its header) up to [`MAX_AUTO_CHUNK`], exactly `need`
/// beyond it (libevent would round a large add up to the next power of two).
#[inline]
pub(crate) fn next_chunk_size(need: usize, last_cap: usize) -> usize {
    let grown = if last_cap == 0 {
        0
    } else {
        last_cap.saturating_mul(2).min(MAX_AUTO_CHUNK)
    };
    let want = need.max(grown);
    match want.checked_add(LIBEVENT_CHAIN_HEADER) {
        Some(alloc) if alloc <= MAX_AUTO_CHUNK => {
            alloc.next_power_of_two().max(MIN_CHUNK) - LIBEVENT_CHAIN_HEADER
        }
        _ => want,
    }
}
