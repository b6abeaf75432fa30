//! The only `unsafe` code in the crate: thin wrappers over `read`, `readv`,
//! `write`, `writev`, `sendfile`, `ioctl(FIONREAD)` and `mmap`.
#![allow(unsafe_code)]

use std::fs::File;
use std::io::{self, IoSlice};
use std::os::unix::io::{AsRawFd, RawFd};

use bytes::BytesMut;

/// Most slices passed to one `writev` (libevent: min(128, IOV_MAX)).
pub(crate) const MAX_WRITE_IOV: usize = 128;

fn check(r: libc::ssize_t) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// Bytes readable on `fd` right now, or an error if the fd does not say.
pub(crate) fn fionread(fd: RawFd) -> io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through the pointer, which points
    // to a live local.
    let r = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n as *mut libc::c_int) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n.max(0) as usize)
}

/// `readv` into the spare capacity of up to four buffers, at most `want`
/// bytes into each, then extends each buffer by what the kernel wrote.
pub(crate) fn readv_spare(fd: RawFd, bufs: &mut [(&mut BytesMut, usize)]) -> io::Result<usize> {
    let mut iov = [libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }; 4];
    let mut cnt = 0;
    for (b, want) in bufs.iter_mut().take(4) {
        let spare = b.spare_capacity_mut();
        let k = (*want).min(spare.len());
        iov[cnt] = libc::iovec {
            iov_base: spare.as_mut_ptr().cast(),
            iov_len: k,
        };
        cnt += 1;
    }
    // SAFETY: each iovec describes writable, allocated spare capacity of a
    // BytesMut that we borrow mutably for the whole call, so nothing else can
    // touch it; `cnt <= 4` entries are initialised.
    let r = check(unsafe { libc::readv(fd, iov.as_ptr(), cnt as libc::c_int) })?;
    let mut left = r;
    for (i, (b, _)) in bufs.iter_mut().enumerate().take(cnt) {
        let k = left.min(iov[i].iov_len);
        // SAFETY: the kernel initialised the first `k` bytes of this
        // buffer's spare capacity (readv fills iovecs in order), and
        // `len + k <= capacity` because `k <= iov_len <= spare`.
        unsafe { b.set_len(b.len() + k) };
        left -= k;
    }
    Ok(r)
}

/// `read` into the spare capacity of one buffer, at most `want` bytes, then extends it
/// by what the kernel wrote (the one-buffer case of [`readv_spare`]: no iovec for the
/// kernel to copy in).
pub(crate) fn read_spare(fd: RawFd, b: &mut BytesMut, want: usize) -> io::Result<usize> {
    let spare = b.spare_capacity_mut();
    let k = want.min(spare.len());
    // SAFETY: the pointer and `k` describe writable, allocated spare capacity of a
    // BytesMut that we borrow mutably for the whole call.
    let r = check(unsafe { libc::read(fd, spare.as_mut_ptr().cast(), k) })?;
    let r = r.min(k);
    // SAFETY: the kernel initialised the first `r <= k` bytes of the spare capacity, so
    // `len + r <= capacity`.
    unsafe { b.set_len(b.len() + r) };
    Ok(r)
}

/// `write` of one slice (the one-slice case of [`writev`]).
pub(crate) fn write(fd: RawFd, data: &[u8]) -> io::Result<usize> {
    // SAFETY: `data` is live memory for the duration of the call; the kernel only reads
    // it.
    check(unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) })
}

/// `writev` of the given slices.
pub(crate) fn writev(fd: RawFd, slices: &[IoSlice<'_>]) -> io::Result<usize> {
    let cnt = slices.len().min(MAX_WRITE_IOV);
    // SAFETY: `IoSlice` is guaranteed ABI-compatible with `struct iovec` on
    // Unix; the slices borrow live memory for the duration of the call and
    // the kernel only reads it.
    check(unsafe { libc::writev(fd, slices.as_ptr().cast(), cnt as libc::c_int) })
}

/// `sendfile(2)` of `count` bytes of `file` at `offset` to `out`.
pub(crate) fn sendfile(out: RawFd, file: &File, offset: u64, count: usize) -> io::Result<usize> {
    let mut off = libc::off_t::try_from(offset)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file offset too large"))?;
    // SAFETY: `off` is a live local the kernel updates; both fds are plain
    // integers the kernel validates.
    check(unsafe { libc::sendfile(out, file.as_raw_fd(), &mut off, count) })
}

/// A read-only private file mapping, unmapped on drop.
///
/// Like every mmap wrapper, the view is only stable while nobody truncates
/// or rewrites the file: truncation makes access fault (SIGBUS). This is
/// documented on [`FileSegment`](crate::FileSegment).
pub(crate) struct Mmap {
    ptr: *mut libc::c_void,
    map_len: usize,
    /// Where the requested range starts inside the mapping (page rounding).
    skip: usize,
    len: usize,
}

// SAFETY: the mapping is read-only and owned by this value; sharing a
// pointer to immutable memory between threads is fine.
unsafe impl Send for Mmap {}
// SAFETY: as above; `&Mmap` only gives `&[u8]`.
unsafe impl Sync for Mmap {}

impl Mmap {
    /// Maps `len > 0` bytes of `file` starting at `offset`.
    pub(crate) fn map(file: &File, offset: u64, len: usize) -> io::Result<Mmap> {
        // SAFETY: sysconf has no memory-safety preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let page = if page > 0 { page as u64 } else { 4096 };
        let aligned = offset - offset % page;
        let skip = (offset - aligned) as usize;
        let map_len = skip
            .checked_add(len)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "length overflow"))?;
        let off = libc::off_t::try_from(aligned)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file offset too large"))?;
        // SAFETY: a fresh private read-only mapping at an address the kernel
        // picks; the arguments are checked by the kernel and failure is
        // reported as MAP_FAILED.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                off,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mmap {
            ptr,
            map_len,
            skip,
            len,
        })
    }
}

impl AsRef<[u8]> for Mmap {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: the mapping covers `skip + len` readable bytes and lives
        // as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<u8>().add(self.skip), self.len) }
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`map_len` are exactly what mmap returned; nothing
        // borrows the mapping any more (borrows are tied to `&self`).
        unsafe { libc::munmap(self.ptr, self.map_len) };
    }
}
