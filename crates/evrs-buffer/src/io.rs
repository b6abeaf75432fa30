//! Socket I/O: reading from and writing to file descriptors.

use std::io::IoSlice;

use bytes::Buf;
use std::os::unix::io::RawFd;

use crate::chunk::{next_chunk_size, try_alloc, Chunk};
use crate::error::Result;
use crate::lazy::WRITE_LOAD;
use crate::sys;
use crate::EvBuffer;

/// Tail spare space smaller than this is not worth a second iovec.
const MIN_TAIL_IOV: usize = 64;

impl EvBuffer {
    /// The most bytes one [`read_from`](Self::read_from) call reads
    /// (default [`DEFAULT_MAX_READ`](crate::DEFAULT_MAX_READ) = 4096, as
    /// libevent's `EVBUFFER_MAX_READ`).
    pub fn max_read(&self) -> usize {
        self.max_read as usize
    }

    /// Sets the per-call read cap (libevent 2.2's `evbuffer_set_max_read`;
    /// 2.1 has the fixed 4096). The fixed 4096 costs many wakeups on fast
    /// links (libevent #798); raise it here. 0 is treated as 1. More than
    /// [`MAX_READ_LIMIT`](crate::MAX_READ_LIMIT) (`i32::MAX`, libevent
    /// 2.2's limit too) fails with [`Error::OutOfRange`](crate::Error::OutOfRange)
    /// and keeps the old cap.
    pub fn set_max_read(&mut self, n: usize) -> Result<()> {
        if n > crate::MAX_READ_LIMIT {
            return Err(crate::Error::OutOfRange);
        }
        self.max_read = n.max(1) as u32;
        Ok(())
    }

    /// Reads from `fd` into the end of the buffer (libevent's `evbuffer_read`). Returns
    /// the bytes read; 0 means end of file. Errors, including `WouldBlock`, come back as
    /// [`Error::Io`](crate::Error::Io).
    ///
    /// How much: at most the cap, [`max_read`](Self::max_read) (so one call never reads
    /// unboundedly), and at most `howmuch` if given. When the last chunk has room, one
    /// `read` goes straight into it — the common case of small messages costs that one
    /// system call; only if that room fills up does the rest of the cap go into a new chunk
    /// sized by `ioctl(FIONREAD)`. (libevent asks FIONREAD before every read.)
    /// `Some(0)` returns 0 without a system call. Fails if the end is frozen, and with
    /// [`Error::NoMemory`](crate::Error::NoMemory) (reading nothing) if the space for the
    /// read cannot be allocated: a large cap is allocated whole when the fd does not say
    /// how much is ready.
    pub fn read_from(&mut self, fd: RawFd, howmuch: Option<usize>) -> Result<usize> {
        self.check_end()?;
        let max = self.max_read();
        let cap = howmuch.map_or(max, |h| h.min(max));
        if cap == 0 {
            return Ok(0);
        }
        let room = self.tail_room(cap);
        if room < MIN_TAIL_IOV && room < cap {
            return self.read_sized(fd, cap);
        }
        let want = room.min(cap);
        let orig = self.len;
        let got = match self.chunks.back_mut() {
            Some(Chunk::Mem(t)) => sys::read_spare(fd, t, want)?,
            _ => 0,
        };
        self.len += got;
        self.changed(orig, got, 0);
        if got < want || got == cap {
            return Ok(got);
        }
        // The room filled up and the cap allows more: more may be waiting.
        match self.read_sized(fd, cap - got) {
            Ok(more) => Ok(got + more),
            // What was read stands; an error (or the EOF) is met again by the next call.
            Err(_) => Ok(got),
        }
    }

    /// The free bytes at the end of the last chunk, which is first made whole again if it
    /// is empty and was drained from the front (`need` is how much the caller could use).
    fn tail_room(&mut self, need: usize) -> usize {
        match self.chunks.back_mut() {
            Some(Chunk::Mem(t)) => {
                // (A power-of-two capacity is, in practice, a chunk as allocated, never
                // drained from the front: reclaiming it cannot give more room, and trying
                // costs a call per read of every small message.)
                let cap = t.capacity();
                if t.is_empty() && cap < need && !cap.is_power_of_two() {
                    let _ = t.try_reclaim(need);
                }
                t.capacity() - t.len()
            }
            _ => 0,
        }
    }

    /// One `readv` of up to `cap` bytes, sized by `ioctl(FIONREAD)`: into the tail's free
    /// bytes (if worth an iovec) and one new chunk for the rest.
    fn read_sized(&mut self, fd: RawFd, cap: usize) -> Result<usize> {
        let avail = match sys::fionread(fd) {
            Ok(n) if n > 0 && n <= cap => n,
            _ => cap,
        };
        let n = avail;
        let orig = self.len;
        // Space: the tail's free bytes, plus one new chunk for the rest.
        let mut last_cap = 0;
        let mut tail_spare = 0;
        if let Some(Chunk::Mem(t)) = self.chunks.back_mut() {
            tail_spare = t.capacity() - t.len();
            last_cap = t.capacity();
        }
        let use_tail = tail_spare >= n || tail_spare >= MIN_TAIL_IOV;
        let use_tail_n = if use_tail { tail_spare.min(n) } else { 0 };
        let need_new = n - use_tail_n;
        let mut fresh = match need_new {
            0 => None,
            _ => Some(try_alloc(next_chunk_size(need_new, last_cap))?),
        };
        let got = {
            // (No allocation: at most two pieces, on the stack.)
            let tail = match self.chunks.back_mut() {
                Some(Chunk::Mem(t)) if use_tail_n > 0 => Some(t),
                _ => None,
            };
            match (tail, fresh.as_mut()) {
                (Some(t), Some(f)) => sys::readv_spare(fd, &mut [(t, use_tail_n), (f, need_new)])?,
                (Some(t), None) => sys::readv_spare(fd, &mut [(t, use_tail_n)])?,
                (None, Some(f)) => sys::readv_spare(fd, &mut [(f, need_new)])?,
                (None, None) => 0,
            }
        };
        if let Some(f) = fresh {
            if !f.is_empty() {
                self.push_back_chunk(Chunk::Mem(f));
            }
        }
        self.len += got;
        self.changed(orig, got, 0);
        Ok(got)
    }

    /// Writes as much of the buffer as `fd` takes and drains it
    /// (libevent's `evbuffer_write`). See
    /// [`write_atmost`](Self::write_atmost).
    pub fn write(&mut self, fd: RawFd) -> Result<usize> {
        self.write_atmost(fd, None)
    }

    /// Writes up to `n` bytes (`None`: everything) from the front to `fd`
    /// with one `writev` of up to 128 chunks (one `write` when the data is a
    /// single chunk of memory), or one `sendfile` when the first chunk is a file segment and the buffer drains to an fd
    /// (libevent's `evbuffer_write_atmost`). Drains and returns what was
    /// written.
    ///
    /// File data that is not in memory (see
    /// [`FileSegment`](crate::FileSegment)) goes out by `sendfile`, or is
    /// read in for `writev`, at most 1 MiB of it per call.
    ///
    /// An empty buffer (or `n == Some(0)`) returns `Ok(0)` without a system
    /// call; libevent returns -1 there. Fails if the start is frozen. Like
    /// libevent this uses `writev` (or `write`), so writing to a closed socket raises
    /// `SIGPIPE` unless the program ignores it.
    pub fn write_atmost(&mut self, fd: RawFd, n: Option<usize>) -> Result<usize> {
        self.check_start()?;
        let n = n.map_or(self.len, |n| n.min(self.len));
        if n == 0 {
            return Ok(0);
        }
        if self.chunks.len() == 1 {
            if let Some(Chunk::Mem(b)) = self.chunks.front_mut() {
                // The usual case of small messages: the data is one chunk of memory, sent
                // with one `write` (the general path below costs ~200 instructions more).
                let k = n.min(b.len());
                let written = sys::write(fd, &b[..k])?.min(k);
                if written == b.len() {
                    // Keep the tail's memory for the next append (as `drop_front`).
                    b.clear();
                } else {
                    b.advance(written);
                }
                let orig = self.len;
                self.len -= written;
                self.changed(orig, 0, written);
                return Ok(written);
            }
        }
        self.drop_empty_front();
        let drains = self.drains_to_fd;
        let by_sendfile = move |c: &Chunk| {
            drains
                && c.file_part()
                    .is_some_and(|(s, _)| !s.flags.disable_sendfile)
        };
        if !self.chunks.front().is_some_and(by_sendfile) {
            // What writev sends must be in memory: file data that is not is
            // read in first (bounded), up to a chunk that goes by sendfile.
            let stop = |i: usize, c: &Chunk| i > 0 && by_sendfile(c);
            self.load_prefix(n.min(WRITE_LOAD), sys::MAX_WRITE_IOV, stop)?;
        }
        let written = match self.chunks.front() {
            Some(c) if by_sendfile(c) => match c.file_part() {
                Some((seg, file_off)) => sys::sendfile(fd, &seg.file, file_off, c.len().min(n))?,
                None => 0,
            },
            // On the stack: no allocation per write (and a small array for the usual few
            // chunks: filling 128 slices would cost more than the write's own work).
            _ if self.chunks.len() <= 4 => self.writev_front::<4>(fd, n, by_sendfile)?,
            _ => self.writev_front::<{ sys::MAX_WRITE_IOV }>(fd, n, by_sendfile)?,
        };
        let written = written.min(self.len);
        let orig = self.len;
        self.drop_front(written);
        self.changed(orig, 0, written);
        Ok(written)
    }

    /// One `writev` of up to `n` bytes from the front: up to `N` in-memory chunks, stopping
    /// before a file segment that goes by sendfile or is not read in.
    fn writev_front<const N: usize>(
        &self,
        fd: RawFd,
        n: usize,
        by_sendfile: impl Fn(&Chunk) -> bool,
    ) -> Result<usize> {
        let mut iov = [IoSlice::new(&[]); N];
        let mut cnt = 0;
        let mut left = n;
        for c in self.chunks.iter() {
            if left == 0 || cnt == N {
                break;
            }
            if (by_sendfile(c) && cnt > 0) || !c.in_memory() {
                break;
            }
            let s = c.as_slice();
            let k = s.len().min(left);
            if k > 0 {
                iov[cnt] = IoSlice::new(&s[..k]);
                cnt += 1;
                left -= k;
            }
        }
        Ok(sys::writev(fd, &iov[..cnt])?)
    }
}
