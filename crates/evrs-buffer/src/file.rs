//! File segments: a range of a file added to a buffer without copying it
//! through user space (mmap for reading, sendfile for writing to sockets).

use std::fmt;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::chunk::Chunk;
use crate::error::{Error, Result};
use crate::sys::Mmap;
use crate::EvBuffer;

/// Options for [`FileSegment::new`] (libevent's `EVBUF_FS_*` flags; closing
/// the file is implied by ownership, and locking does not apply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SegmentFlags {
    /// Read the range into memory instead of mapping it
    /// (`EVBUF_FS_DISABLE_MMAP`).
    pub disable_mmap: bool,
    /// Never use `sendfile(2)` for this segment
    /// (`EVBUF_FS_DISABLE_SENDFILE`).
    pub disable_sendfile: bool,
}

pub(crate) struct SegmentInner {
    pub(crate) file: File,
    /// File offset of `data[0]`.
    pub(crate) offset: u64,
    pub(crate) data: Bytes,
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
/// The range is mapped with `mmap` (or read into memory with
/// [`SegmentFlags::disable_mmap`]) when the segment is created, so every
/// buffer operation can see the bytes. When a buffer is marked with
/// [`EvBuffer::set_drains_to_fd`], [`EvBuffer::write`] sends segment data
/// with `sendfile(2)` instead. The file is closed when the segment and every
/// chunk using it are gone. As with any mapping, truncating the file while
/// it is mapped makes reads fault; don't.
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
            .field("len", &self.inner.data.len())
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
        let data = if len == 0 {
            Bytes::new()
        } else if flags.disable_mmap {
            let mut v = vec![0u8; len];
            file.read_exact_at(&mut v, offset)?;
            Bytes::from(v)
        } else {
            match Mmap::map(&file, offset, len) {
                Ok(m) => Bytes::from_owner(m),
                Err(_) => {
                    let mut v = vec![0u8; len];
                    file.read_exact_at(&mut v, offset)?;
                    Bytes::from(v)
                }
            }
        };
        Ok(FileSegment {
            inner: Arc::new(SegmentInner {
                file,
                offset,
                data,
                flags,
                cleanup: Mutex::new(None),
            }),
        })
    }

    /// Length of the segment in bytes.
    pub fn len(&self) -> usize {
        self.inner.data.len()
    }

    /// True for an empty segment.
    pub fn is_empty(&self) -> bool {
        self.inner.data.is_empty()
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
    /// `evbuffer_add_file_segment`). Fails if the end is frozen or the range
    /// is outside the segment.
    pub fn add_file_segment(
        &mut self,
        seg: &FileSegment,
        offset: u64,
        len: Option<u64>,
    ) -> Result<()> {
        self.check_end()?;
        let total = seg.inner.data.len() as u64;
        if offset > total {
            return Err(Error::OutOfRange);
        }
        let len = match len {
            Some(l) if l > total - offset => return Err(Error::OutOfRange),
            Some(l) => l,
            None => total - offset,
        };
        let (start, end) = (offset as usize, (offset + len) as usize);
        let orig = self.len;
        if len > 0 {
            self.len += end - start;
            self.push_back_chunk(Chunk::File {
                data: seg.inner.data.slice(start..end),
                seg: Arc::clone(&seg.inner),
                file_off: seg.inner.offset + offset,
            });
        }
        self.changed(orig, end - start, 0);
        Ok(())
    }

    /// Appends `len` bytes (`None`: to the end) of `file` from `offset`
    /// (libevent's `evbuffer_add_file`). The file is owned by the buffer and
    /// closed when the data is gone; like libevent, it is also closed when
    /// the call fails.
    pub fn add_file(&mut self, file: File, offset: u64, len: Option<u64>) -> Result<()> {
        self.check_end()?;
        let seg = FileSegment::new(file, offset, len, SegmentFlags::default())?;
        self.add_file_segment(&seg, 0, None)
    }
}
