//! File segments: a range of a file added to a buffer without copying it
//! through user space (mmap for reading, sendfile for writing to sockets),
//! or read from the file in bounded pieces when it cannot be mapped.

use std::fmt;
use std::fs::File;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::chunk::Chunk;
use crate::error::{Error, Result};
use crate::lazy::{read_at, PIECE};
use crate::sys::Mmap;
use crate::EvBuffer;

/// Options for [`FileSegment::new`] (libevent's `EVBUF_FS_*` flags; closing
/// the file is implied by ownership, and locking does not apply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SegmentFlags {
    /// Read the range with `pread` instead of mapping it
    /// (`EVBUF_FS_DISABLE_MMAP`): a range of at most 256 KiB when the
    /// segment is created, a longer one in pieces of at most 256 KiB when
    /// the buffer needs them (see [`FileSegment`]).
    pub disable_mmap: bool,
    /// Never use `sendfile(2)` for this segment
    /// (`EVBUF_FS_DISABLE_SENDFILE`).
    pub disable_sendfile: bool,
}

pub(crate) struct SegmentInner {
    pub(crate) file: File,
    /// File offset of the segment's first byte.
    pub(crate) offset: u64,
    /// Length of the segment.
    pub(crate) len: usize,
    /// The whole segment in memory (mapped, or read when short), or `None`
    /// when it is read piece by piece on demand.
    pub(crate) data: Option<Bytes>,
    pub(crate) flags: SegmentFlags,
    cleanup: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl Drop for SegmentInner {
    fn drop(&mut self) {
        let f = match self.cleanup.get_mut() {
            Ok(slot) => slot.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(f) = f {
            f();
        }
    }
}

/// A range of an open file that can be added to buffers any number of times
/// (libevent's `evbuffer_file_segment`).
///
/// The range is mapped with `mmap` when the segment is created, so every
/// buffer operation can see the bytes. With [`SegmentFlags::disable_mmap`],
/// or if mapping fails, a range of at most 256 KiB is read into memory
/// instead; a longer one is never held in memory whole: it stays in the
/// file and is read with `pread` in pieces of at most 256 KiB as the buffer
/// needs them (draining it costs nothing, [`copyout`](EvBuffer::copyout)
/// and [`remove`](EvBuffer::remove) read straight into the caller's memory,
/// searches read a piece at a time, and [`write`](EvBuffer::write) reads at
/// most 1 MiB per call). Such data is not lent out by
/// [`peek`](EvBuffer::peek) and [`chunks`](EvBuffer::chunks), and a read
/// that fails, for instance because the file shrank, is an
/// [`Error::Io`]. Calls that need it contiguous
/// ([`pullup`](EvBuffer::pullup), [`remove_bytes`](EvBuffer::remove_bytes),
/// a long line) allocate only what they return, and fail with
/// [`Error::NoMemory`] if they cannot.
///
/// When a buffer is marked with [`EvBuffer::set_drains_to_fd`],
/// [`EvBuffer::write`] sends segment data with `sendfile(2)` instead. The
/// file is closed when the segment and every chunk using it are gone. As
/// with any mapping, truncating the file while it is mapped makes reads
/// fault; don't. Data read on demand shows the file as it is when read.
///
/// ```
/// use std::io::Write;
/// use evrs_buffer::{EvBuffer, FileSegment, SegmentFlags};
///
/// let path = std::env::temp_dir().join(format!("evrs-doc-seg-{}", std::process::id()));
/// std::fs::File::create(&path).unwrap().write_all(b"0123456789").unwrap();
/// let seg = FileSegment::new(std::fs::File::open(&path).unwrap(), 2, Some(6), SegmentFlags::default()).unwrap();
/// let mut buf = EvBuffer::new();
/// buf.add_file_segment(&seg, 1, Some(3)).unwrap();
/// assert_eq!(buf.to_vec(), b"345");
/// # std::fs::remove_file(&path).ok();
/// ```
#[derive(Clone)]
pub struct FileSegment {
    inner: Arc<SegmentInner>,
}

impl fmt::Debug for FileSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSegment")
            .field("offset", &self.inner.offset)
            .field("len", &self.inner.len)
            .field("in_memory", &self.inner.data.is_some())
            .field("flags", &self.inner.flags)
            .finish()
    }
}

impl FileSegment {
    /// A segment of `len` bytes of `file` from `offset`; `None` means up to
    /// the end of the file (libevent: length -1, resolved with `fstat`).
    /// The range must lie within the file ([`Error::OutOfRange`] otherwise).
    pub fn new(file: File, offset: u64, len: Option<u64>, flags: SegmentFlags) -> Result<Self> {
        let size = file.metadata()?.len();
        if offset > size {
            return Err(Error::OutOfRange);
        }
        let len = match len {
            Some(l) if l > size - offset => return Err(Error::OutOfRange),
            Some(l) => l,
            None => size - offset,
        };
        let len = usize::try_from(len).map_err(|_| Error::OutOfRange)?;
        let mapped = if len == 0 {
            Some(Bytes::new())
        } else if flags.disable_mmap {
            None
        } else {
            Mmap::map(&file, offset, len).ok().map(Bytes::from_owner)
        };
        // Not mapped: a short range is read now, a long one on demand.
        let data = match mapped {
            Some(d) => Some(d),
            None if len <= PIECE => Some(read_at(&file, offset, len)?),
            None => None,
        };
        Ok(FileSegment {
            inner: Arc::new(SegmentInner {
                file,
                offset,
                len,
                data,
                flags,
                cleanup: Mutex::new(None),
            }),
        })
    }

    /// Length of the segment in bytes.
    pub fn len(&self) -> usize {
        self.inner.len
    }

    /// True for an empty segment.
    pub fn is_empty(&self) -> bool {
        self.inner.len == 0
    }

    /// Runs `f` once the segment and every chunk using it are dropped
    /// (libevent's `evbuffer_file_segment_add_cleanup_cb`). Replaces any
    /// earlier cleanup.
    pub fn set_cleanup<F: FnOnce() + Send + 'static>(&self, f: F) {
        let mut slot = match self.inner.cleanup.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        *slot = Some(Box::new(f));
    }
}

impl EvBuffer {
    /// Appends `len` bytes (`None`: to the end) of `seg` starting `offset`
    /// bytes into it, without copying (libevent's
    /// `evbuffer_add_file_segment`). Fails if the end is frozen, with
    /// [`Error::OutOfRange`] if the range is outside the segment or the
    /// buffer would hold more than `usize::MAX` bytes.
    pub fn add_file_segment(
        &mut self,
        seg: &FileSegment,
        offset: u64,
        len: Option<u64>,
    ) -> Result<()> {
        self.check_end()?;
        let total = seg.inner.len as u64;
        if offset > total {
            return Err(Error::OutOfRange);
        }
        let len = match len {
            Some(l) if l > total - offset => return Err(Error::OutOfRange),
            Some(l) => l,
            None => total - offset,
        };
        // Both fit: they are at most the segment's length, a `usize`.
        let (start, n) = (offset as usize, len as usize);
        let new_len = self.len.checked_add(n).ok_or(Error::OutOfRange)?;
        let orig = self.len;
        if n > 0 {
            let seg_ref = Arc::clone(&seg.inner);
            let file_off = seg.inner.offset + offset;
            self.push_back_chunk(match &seg.inner.data {
                Some(d) => Chunk::File {
                    data: d.slice(start..start + n),
                    seg: seg_ref,
                    file_off,
                },
                None => Chunk::Lazy {
                    seg: seg_ref,
                    file_off,
                    len: n,
                },
            });
            self.len = new_len;
        }
        self.changed(orig, n, 0);
        Ok(())
    }

    /// True if some of the content comes from a file segment
    /// ([`add_file`](Self::add_file), [`add_file_segment`](Self::add_file_segment)).
    /// A C ABI needs it: libevent's `evbuffer_add_buffer_reference` refuses such a
    /// source, where [`add_buffer_reference`](Self::add_buffer_reference) shares it.
    ///
    /// ```
    /// use evrs_buffer::EvBuffer;
    /// let mut buf = EvBuffer::new();
    /// buf.add(b"in memory").unwrap();
    /// assert!(!buf.has_file_data());
    /// ```
    pub fn has_file_data(&self) -> bool {
        self.chunks
            .iter()
            .any(|c| c.len() > 0 && c.file_part().is_some())
    }

    /// Appends `len` bytes (`None`: to the end) of `file` from `offset`
    /// (libevent's `evbuffer_add_file`). The file is owned by the buffer and
    /// closed when the data is gone; like libevent, it is also closed when
    /// the call fails. The range is mapped if possible, and otherwise read
    /// as described at [`FileSegment`]: a file of any size can be added.
    pub fn add_file(&mut self, file: File, offset: u64, len: Option<u64>) -> Result<()> {
        self.check_end()?;
        let seg = FileSegment::new(file, offset, len, SegmentFlags::default())?;
        self.add_file_segment(&seg, 0, None)
    }
}
