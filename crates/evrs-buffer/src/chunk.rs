//! One link of the chain: owned writable memory, shared immutable bytes, or a
//! window of a file segment.

use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};

use crate::file::SegmentInner;

/// Smallest chunk the buffer allocates on its own (libevent: 1024 bytes).
pub(crate) const MIN_CHUNK: usize = 1024;
/// Chunk sizes double while the tail fills up, but never past this.
pub(crate) const MAX_AUTO_CHUNK: usize = 64 * 1024;

/// A chunk of the chain. Only `Mem` chunks have writable spare capacity.
pub(crate) enum Chunk {
    /// Owned memory: `len()` bytes of data, then spare capacity.
    Mem(BytesMut),
    /// Immutable shared bytes: references, zero-copy adds, pulled lines.
    Shared(Bytes),
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
}

impl Chunk {
    #[inline]
    pub(crate) fn len(&self) -> usize {
        match self {
            Chunk::Mem(b) => b.len(),
            Chunk::Shared(b) => b.len(),
            Chunk::Front { buf, start } => buf.len().saturating_sub(*start),
            Chunk::File { data, .. } => data.len(),
        }
    }

    #[inline]
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Chunk::Mem(b) => b,
            Chunk::Shared(b) => b,
            Chunk::Front { buf, start } => buf.get(*start..).unwrap_or(&[]),
            Chunk::File { data, .. } => data,
        }
    }

    /// Drops `n` bytes from the front. Callers guarantee `n <= len()`.
    #[inline]
    pub(crate) fn advance(&mut self, n: usize) {
        let n = n.min(self.len());
        match self {
            Chunk::Mem(b) => b.advance(n),
            Chunk::Shared(b) => b.advance(n),
            Chunk::Front { start, .. } => *start += n,
            Chunk::File { data, file_off, .. } => {
                data.advance(n);
                *file_off += n as u64;
            }
        }
    }

    /// Splits off the first `n` bytes (clamped to `len()`) as a new chunk
    /// without copying.
    pub(crate) fn split_to(&mut self, n: usize) -> Chunk {
        let n = n.min(self.len());
        match self {
            Chunk::Mem(b) => Chunk::Mem(b.split_to(n)),
            Chunk::Shared(b) => Chunk::Shared(b.split_to(n)),
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
        }
    }

    /// Splits off the first `n` bytes (clamped) as immutable `Bytes`.
    pub(crate) fn split_to_bytes(&mut self, n: usize) -> Bytes {
        match self.split_to(n) {
            Chunk::Mem(b) => b.freeze(),
            Chunk::Shared(b) => b,
            Chunk::Front { mut buf, start } => {
                buf.advance(start.min(buf.len()));
                buf.freeze()
            }
            Chunk::File { data, .. } => data,
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

/// Capacity for a new chunk that must hold at least `need` bytes, given the
/// capacity of the chunk it follows (libevent-style doubling, capped).
#[inline]
pub(crate) fn next_chunk_size(need: usize, last_cap: usize) -> usize {
    let grown = if last_cap == 0 {
        MIN_CHUNK
    } else {
        last_cap.saturating_mul(2).clamp(MIN_CHUNK, MAX_AUTO_CHUNK)
    };
    need.max(grown)
}
