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
            Chunk::File { data, .. } => data.len(),
        }
    }

    #[inline]
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Chunk::Mem(b) => b,
            Chunk::Shared(b) => b,
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
            Chunk::File { data, .. } => data,
        }
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
