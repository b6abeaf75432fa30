//! Huge file segments on real sparse files (issue 14): a segment that is not
//! mapped must never need its whole length in memory, and sizes that cannot
//! be allocated are errors, not aborts.
//!
//! This binary counts heap use with its own global allocator, which also
//! refuses every single allocation above 1 GiB (as a machine without that
//! much memory would), so that "allocates the whole length" shows up as an
//! abort of the test binary instead of depending on the machine. Its tests
//! take a lock so that the counts of one are not disturbed by another.
#![cfg(not(miri))]

use std::alloc::{GlobalAlloc, Layout, System};
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use evrs_buffer::{Error, EvBuffer, FileSegment, SegmentFlags, MAX_READ_LIMIT};

/// Single allocations above this fail (return null).
const REFUSE_ABOVE: usize = 1 << 30;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

struct Counting;

fn note_alloc(size: usize) {
    let now = CURRENT.fetch_add(size, Ordering::SeqCst) + size;
    PEAK.fetch_max(now, Ordering::SeqCst);
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged (or returns null, which `GlobalAlloc` allows for a failed
// allocation); the counters are only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > REFUSE_ABOVE {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note_alloc(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > REFUSE_ABOVE {
            return std::ptr::null_mut();
        }
        // SAFETY: as in `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            note_alloc(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator (so from `System`) with
        // this layout.
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > REFUSE_ABOVE {
            return std::ptr::null_mut();
        }
        // SAFETY: `ptr`/`layout` came from this allocator, and the caller
        // upholds `realloc`'s contract for `new_size`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
            note_alloc(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts a peak measurement; returns the current heap use.
fn reset_peak() -> usize {
    let now = CURRENT.load(Ordering::SeqCst);
    PEAK.store(now, Ordering::SeqCst);
    now
}

/// Resident set size from /proc, in bytes.
fn vm_rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map_or(0, |kb| kb * 1024)
}

const GIB: u64 = 1 << 30;
const MIB: usize = 1 << 20;

/// A sparse temporary file with a few known bytes in it; removed on drop.
struct Sparse {
    path: PathBuf,
    file: File,
    marks: Vec<(u64, &'static [u8])>,
}

impl Sparse {
    fn create(dir: &Path, size: u64, marks: &[(u64, &'static [u8])]) -> std::io::Result<Sparse> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = dir.join(format!(
            "evrs-buffer-huge-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        let sparse = Sparse {
            path,
            file,

            marks: marks.to_vec(),
        };
        sparse.file.set_len(size)?;
        for (at, bytes) in marks {
            sparse.file.write_all_at(bytes, *at)?;
        }
        Ok(sparse)
    }

    fn handle(&self) -> File {
        self.file.try_clone().unwrap()
    }

    /// The file's bytes `start..start + len`.
    fn expect(&self, start: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        let end = start + len as u64;
        for &(at, bytes) in &self.marks {
            for (i, &b) in bytes.iter().enumerate() {
                let p = at + i as u64;
                if p >= start && p < end {
                    v[(p - start) as usize] = b;
                }
            }
        }
        v
    }
}

impl Drop for Sparse {
    fn drop(&mut self) {
        std::fs::remove_file(&self.path).ok();
    }
}

fn unmapped() -> SegmentFlags {
    SegmentFlags {
        disable_mmap: true,
        disable_sendfile: false,
    }
}

fn copy_at(buf: &EvBuffer, pos: usize, len: usize) -> Vec<u8> {
    let p = buf.ptr_at(pos).unwrap();
    let mut out = vec![0u8; len];
    let n = buf.copyout_from(&p, &mut out).unwrap();
    out.truncate(n);
    out
}

/// Writes `n` bytes of `buf` to a socketpair and returns what arrived.
fn write_through_socket(buf: &mut EvBuffer, n: usize) -> Vec<u8> {
    let (a, mut b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    let mut got = Vec::with_capacity(n);
    let mut sent = 0;
    let mut tmp = vec![0u8; 64 * 1024];
    while got.len() < n {
        if sent < n {
            match buf.write_atmost(a.as_raw_fd(), Some(n - sent)) {
                Ok(k) => sent += k,
                Err(Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("write: {e}"),
            }
        }
        match b.read(&mut tmp) {
            Ok(k) => got.extend_from_slice(&tmp[..k]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("read: {e}"),
        }
    }
    got
}

const SIZE_8G: u64 = 8 * GIB;
const MID: u64 = 4 * GIB + 12_345;
/// Straddles the boundary between the first two scan reads (16 KiB).
const SCAN_EDGE: u64 = 16 * 1024 - 3;
/// Straddles the end of the first 256 KiB piece.
const PIECE_EDGE: u64 = 256 * 1024 - 4;

fn marks_8g() -> Vec<(u64, &'static [u8])> {
    vec![
        (0, b"START-OF-FILE\n"),
        (SCAN_EDGE, b"across"),
        (PIECE_EDGE, b"line over the piece edge\n"),
        (MID, b"middle-mark"),
        (SIZE_8G - 9, b"END-MARK\n"),
    ]
}

#[test]
fn huge_unmapped_file_is_read_in_pieces() {
    let _guard = serial();
    let f = Sparse::create(&std::env::temp_dir(), SIZE_8G, &marks_8g()).unwrap();
    let rss_before = vm_rss();
    let heap_before = reset_peak();
    let len = SIZE_8G as usize;

    let seg = FileSegment::new(f.handle(), 0, None, unmapped()).unwrap();
    assert_eq!(seg.len(), len);
    let mut buf = EvBuffer::new();
    buf.add_file_segment(&seg, 0, None).unwrap();
    assert_eq!(buf.len(), len);

    // Reading without consuming: the start, the middle, the end.
    assert_eq!(copy_at(&buf, 0, 64 * 1024), f.expect(0, 64 * 1024));
    let m = MID as usize;
    assert_eq!(copy_at(&buf, m - 100, 4096), f.expect(MID - 100, 4096));
    assert_eq!(copy_at(&buf, len - 9, 100), b"END-MARK\n");
    assert_eq!(buf.ptr_at(len).unwrap().pos(), len);

    // Searches read a piece at a time, also across piece edges.
    let from = buf.ptr_at(m - MIB).unwrap();
    let to = buf.ptr_at(m + MIB).unwrap();
    let hit = buf.search_range(b"middle-mark", Some(&from), Some(&to));
    assert_eq!(hit.unwrap().map(|p| p.pos()), Some(m));
    let to = buf.ptr_at(MIB).unwrap();
    let hit = buf.search_range(b"across", None, Some(&to)).unwrap();
    assert_eq!(hit.map(|p| p.pos()), Some(SCAN_EDGE as usize));
    let (eol, n) = buf
        .search_eol(None, evrs_buffer::EolStyle::Lf)
        .unwrap()
        .unwrap();
    assert_eq!((eol.pos(), n), (13, 1));

    // peek and chunks lend nothing that is not in memory.
    assert!(buf.peek(None, None).unwrap().is_empty());
    assert_eq!(buf.chunks().count(), 0);
    assert_eq!(buf.contiguous_space(), 256 * 1024);

    // Lines: the first from the first piece, the next over its edge.
    let style = evrs_buffer::EolStyle::Lf;
    let line = buf.readln(style, Some(100)).unwrap().unwrap();
    assert_eq!(&line[..], b"START-OF-FILE");
    assert!(matches!(
        buf.readln(style, Some(100)),
        Err(Error::LineTooLong { limit: 100 })
    ));
    let skip = PIECE_EDGE as usize - 14;
    assert_eq!(buf.drain(skip).unwrap(), skip);
    let line = buf.readln(style, Some(100)).unwrap().unwrap();
    assert_eq!(&line[..], b"line over the piece edge");
    let mut consumed = PIECE_EDGE as usize + 25;
    assert_eq!(buf.len(), len - consumed);

    // Writing a bounded prefix to a socket (writev: read in 1 MiB a call).
    let got = write_through_socket(&mut buf, 3 * MIB);
    assert_eq!(got, f.expect(consumed as u64, 3 * MIB));
    consumed += 3 * MIB;

    // Moving part of it to another buffer, then reading both.
    let mut other = EvBuffer::new();
    assert_eq!(buf.remove_buffer(&mut other, 5 * MIB).unwrap(), 5 * MIB);
    assert_eq!(other.len(), 5 * MIB);
    assert_eq!(copy_at(&other, 0, 1000), f.expect(consumed as u64, 1000));
    consumed += 5 * MIB;
    drop(other);

    // Draining to just before the middle, then removing across the mark.
    buf.drain(m - 10 - consumed).unwrap();
    let mut out = [1u8; 64];
    assert_eq!(buf.remove(&mut out).unwrap(), 64);
    assert_eq!(&out[..], &f.expect(MID - 10, 64)[..]);
    assert_eq!(buf.len(), len - (m + 54));

    // Small pullups and removals read just what they need.
    assert_eq!(buf.pullup(100).unwrap(), &f.expect(MID + 54, 100)[..]);
    assert_eq!(
        &buf.remove_bytes(1000).unwrap()[..],
        &f.expect(MID + 54, 1000)[..]
    );

    // Whole-length operations cannot be had: clear errors, nothing lost.
    let left = buf.len();
    assert!(matches!(buf.pullup_all(), Err(Error::NoMemory)));
    assert!(matches!(buf.remove_bytes(usize::MAX), Err(Error::NoMemory)));
    assert!(matches!(buf.remove_bytes(left - 1), Err(Error::NoMemory)));
    assert!(matches!(buf.try_to_vec(), Err(Error::NoMemory)));
    assert!(buf.to_vec().is_empty());
    assert_eq!(buf.len(), left);
    assert_eq!(copy_at(&buf, left - 9, 9), b"END-MARK\n");

    let heap_peak = PEAK.load(Ordering::SeqCst) - heap_before;
    let rss_growth = vm_rss().saturating_sub(rss_before);
    assert!(heap_peak < 64 * MIB, "heap peak grew by {heap_peak} bytes");
    assert!(rss_growth < 64 * MIB, "RSS grew by {rss_growth} bytes");

    assert_eq!(buf.drain(usize::MAX).unwrap(), left);
    assert!(buf.is_empty());
}

#[test]
fn huge_unmapped_file_goes_out_by_sendfile() {
    let _guard = serial();
    let f = Sparse::create(&std::env::temp_dir(), SIZE_8G, &marks_8g()).unwrap();
    let heap_before = reset_peak();
    let seg = FileSegment::new(f.handle(), 0, None, unmapped()).unwrap();
    let mut buf = EvBuffer::new();
    buf.set_drains_to_fd(true);
    buf.add(b"HTTP/1.1 200 OK\r\n\r\n").unwrap();
    buf.add_file_segment(&seg, MID - 1000, Some(GIB)).unwrap();
    let got = write_through_socket(&mut buf, 19 + 2 * MIB);
    assert_eq!(&got[..19], b"HTTP/1.1 200 OK\r\n\r\n");
    assert_eq!(&got[19..], &f.expect(MID - 1000, 2 * MIB)[..]);
    assert_eq!(buf.len(), GIB as usize - 2 * MIB);
    let heap_peak = PEAK.load(Ordering::SeqCst) - heap_before;
    assert!(heap_peak < 64 * MIB, "heap peak grew by {heap_peak} bytes");
}

#[test]
fn huge_mapped_file_is_still_mapped() {
    let _guard = serial();
    let f = Sparse::create(&std::env::temp_dir(), SIZE_8G, &marks_8g()).unwrap();
    let heap_before = reset_peak();
    let mut buf = EvBuffer::new();
    buf.add_file(f.handle(), 0, None).unwrap();
    assert_eq!(buf.len(), SIZE_8G as usize);
    // One mapped chunk: the whole length is contiguous without a copy.
    let all = buf.pullup_all().unwrap();
    assert_eq!(&all[..14], b"START-OF-FILE\n");
    assert_eq!(&all[all.len() - 9..], b"END-MARK\n");
    let heap_peak = PEAK.load(Ordering::SeqCst) - heap_before;
    assert!(heap_peak < 64 * MIB, "heap peak grew by {heap_peak} bytes");
}

/// A file larger than the address space cannot be mapped, so `add_file`
/// falls back to reading it on demand; and buffer lengths cannot overflow.
/// ext4 (the usual temp dir) stops at 16 TiB, so this uses tmpfs if the
/// temp dir refuses; it is skipped where neither takes such a file.
#[test]
fn unmappable_file_falls_back_and_lengths_do_not_overflow() {
    let _guard = serial();
    let size: u64 = 1 << 62;
    let marks: &[(u64, &'static [u8])] = &[(size - 16, b"sixteen bytes!!\n")];
    let f = match Sparse::create(&std::env::temp_dir(), size, marks)
        .or_else(|_| Sparse::create(Path::new("/dev/shm"), size, marks))
    {
        Ok(f) => f,
        Err(e) => {
            eprintln!("skipped: no file system here takes a 4 EiB sparse file ({e})");
            return;
        }
    };
    let q = size as usize;
    let heap_before = reset_peak();
    let mut buf = EvBuffer::new();
    buf.add_file(f.handle(), 0, None).unwrap();
    assert_eq!(buf.len(), q);
    assert_eq!(copy_at(&buf, q - 16, 64), b"sixteen bytes!!\n");
    assert_eq!(copy_at(&buf, 1 << 40, 8), [0u8; 8]);

    // Three of them fit in a usize, the fourth does not.
    let seg = FileSegment::new(f.handle(), 0, None, SegmentFlags::default()).unwrap();
    buf.add_file_segment(&seg, 0, None).unwrap();
    buf.add_file_segment(&seg, 0, None).unwrap();
    assert_eq!(buf.len(), 3 * q);
    assert!(matches!(
        buf.add_file_segment(&seg, 0, None),
        Err(Error::OutOfRange)
    ));
    assert!(matches!(
        buf.add_file(f.handle(), 0, None),
        Err(Error::OutOfRange)
    ));
    let mut other = EvBuffer::new();
    other.add_file_segment(&seg, 0, None).unwrap();
    assert!(matches!(buf.add_buffer(&mut other), Err(Error::OutOfRange)));
    assert!(matches!(
        buf.add_buffer_reference(&mut other),
        Err(Error::OutOfRange)
    ));
    assert!(matches!(
        buf.prepend_buffer(&mut other),
        Err(Error::OutOfRange)
    ));
    assert!(matches!(
        other.remove_buffer(&mut buf, usize::MAX),
        Err(Error::OutOfRange)
    ));
    assert_eq!((buf.len(), other.len()), (3 * q, q));
    // Just fits: one byte less than would overflow.
    other.drain(q - (usize::MAX - 3 * q)).unwrap();
    assert_eq!(buf.add_buffer(&mut other).unwrap(), usize::MAX - 3 * q);
    assert_eq!(buf.len(), usize::MAX);

    // Contiguous copies of it cannot be allocated.
    assert!(matches!(buf.pullup_all(), Err(Error::NoMemory)));
    assert!(matches!(buf.pullup(q), Err(Error::NoMemory)));
    assert!(matches!(buf.remove_bytes(usize::MAX), Err(Error::NoMemory)));
    assert_eq!(buf.len(), usize::MAX);
    let heap_peak = PEAK.load(Ordering::SeqCst) - heap_before;
    assert!(heap_peak < 64 * MIB, "heap peak grew by {heap_peak} bytes");
}

/// Caller-supplied sizes that cannot be allocated are errors.
#[test]
fn huge_sizes_from_the_caller_fail_cleanly() {
    let _guard = serial();
    let (a, b) = UnixStream::pair().unwrap();
    b.set_nonblocking(true).unwrap();
    let mut buf = EvBuffer::new();
    buf.add(b"keep").unwrap();
    buf.set_max_read(MAX_READ_LIMIT).unwrap();
    // The last chunk has room: the read goes there first, and finds nothing ready.
    assert!(matches!(
        buf.read_from(b.as_raw_fd(), None),
        Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock
    ));
    // Without a chunk to read into, nothing is ready, so the fd cannot say how much: the
    // cap is allocated, and cannot be.
    let mut empty = EvBuffer::new();
    empty.set_max_read(MAX_READ_LIMIT).unwrap();
    assert!(matches!(
        empty.read_from(b.as_raw_fd(), None),
        Err(Error::NoMemory)
    ));
    assert!(matches!(buf.expand(2 * GIB as usize), Err(Error::NoMemory)));
    assert!(matches!(
        buf.reserve_space(2 * GIB as usize, 1),
        Err(Error::NoMemory)
    ));
    assert!(matches!(
        buf.reserve_space(2 * GIB as usize, 4),
        Err(Error::NoMemory)
    ));
    assert_eq!(buf.to_vec(), b"keep");
    // With data ready, the read is sized by what is there.
    let mut a = a;
    a.write_all(b" going").unwrap();
    assert_eq!(buf.read_from(b.as_raw_fd(), None).unwrap(), 6);
    assert_eq!(buf.to_vec(), b"keep going");
}
