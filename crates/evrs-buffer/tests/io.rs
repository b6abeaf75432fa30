//! Socket I/O on real file descriptors (socketpairs), and file segments on
//! real temporary files.
#![cfg(not(miri))]

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use evrs_buffer::{Error, EvBuffer, FileSegment, SegmentFlags, DEFAULT_MAX_READ};

fn pair() -> (UnixStream, UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    (a, b)
}

fn temp_file(content: &[u8]) -> (PathBuf, File) {
    static N: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "evrs-buffer-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    File::create(&path).unwrap().write_all(content).unwrap();
    let f = File::open(&path).unwrap();
    (path, f)
}

fn read_all(s: &mut UnixStream, n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    s.set_nonblocking(false).unwrap();
    s.read_exact(&mut out).unwrap();
    s.set_nonblocking(true).unwrap();
    out
}

#[test]
fn read_is_capped_at_4096_by_default_and_configurable() {
    let (mut a, b) = pair();
    let data: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
    a.write_all(&data).unwrap();
    let mut buf = EvBuffer::new();
    assert_eq!(buf.max_read(), DEFAULT_MAX_READ);
    assert_eq!(buf.read_from(b.as_raw_fd(), None).unwrap(), 4096);
    assert_eq!(buf.read_from(b.as_raw_fd(), Some(10)).unwrap(), 10);
    buf.set_max_read(1 << 20).unwrap();
    assert_eq!(buf.read_from(b.as_raw_fd(), None).unwrap(), 10_000 - 4106);
    assert_eq!(buf.to_vec(), data);
    assert_eq!(buf.read_from(b.as_raw_fd(), Some(0)).unwrap(), 0);
    match buf.read_from(b.as_raw_fd(), None) {
        Err(Error::Io(e)) => assert_eq!(e.kind(), ErrorKind::WouldBlock),
        other => panic!("expected WouldBlock, got {other:?}"),
    }
    drop(a);
    assert_eq!(buf.read_from(b.as_raw_fd(), None).unwrap(), 0, "EOF");
}

#[test]
fn read_appends_after_existing_data_across_chunks() {
    let (mut a, b) = pair();
    let mut buf = EvBuffer::new();
    buf.set_max_read(3000).unwrap();
    let mut expect = Vec::new();
    for round in 0..20u8 {
        let piece = vec![round; 1000 + round as usize * 97];
        a.write_all(&piece).unwrap();
        expect.extend_from_slice(&piece);
        while buf.len() < expect.len() {
            buf.read_from(b.as_raw_fd(), None).unwrap();
        }
        if round % 3 == 0 {
            let n = buf.len() / 2;
            buf.drain(n).unwrap();
            expect.drain(..n);
        }
    }
    assert_eq!(buf.to_vec(), expect);
}

#[test]
fn read_from_bad_fd_is_an_error() {
    let mut buf = EvBuffer::new();
    assert!(matches!(buf.read_from(-1, None), Err(Error::Io(_))));
    buf.add(b"x").unwrap();
    assert!(matches!(buf.write(-1), Err(Error::Io(_))));
    assert_eq!(buf.len(), 1);
}

#[test]
fn write_many_chunks_and_atmost() {
    let (a, mut b) = pair();
    let mut buf = EvBuffer::new();
    let mut expect = Vec::new();
    for i in 0..300u32 {
        let piece = format!("chunk {i};").into_bytes();
        expect.extend_from_slice(&piece);
        buf.add_bytes(piece.into()).unwrap();
    }
    assert!(buf.write(a.as_raw_fd()).unwrap() > 0);
    assert_eq!(buf.write_atmost(a.as_raw_fd(), Some(5)).unwrap(), 5);
    while !buf.is_empty() {
        buf.write(a.as_raw_fd()).unwrap();
    }
    assert_eq!(read_all(&mut b, expect.len()), expect);
    // Empty buffer: Ok(0), no system call (libevent returns -1 here).
    assert_eq!(buf.write(a.as_raw_fd()).unwrap(), 0);
}

#[test]
fn write_stops_at_would_block_and_keeps_data() {
    let (a, mut b) = pair();
    let mut buf = EvBuffer::new();
    buf.add(&vec![9u8; 8 << 20]).unwrap();
    let mut sent = 0;
    loop {
        match buf.write(a.as_raw_fd()) {
            Ok(n) => sent += n,
            Err(Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(buf.len(), (8 << 20) - sent);
    let got = read_all(&mut b, sent);
    assert!(got.iter().all(|&x| x == 9));
}

#[test]
fn file_segment_via_writev_and_sendfile() {
    let content: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    let (path, f) = temp_file(&content);
    for sendfile in [false, true] {
        let (a, mut b) = pair();
        let mut buf = EvBuffer::new();
        buf.set_drains_to_fd(sendfile);
        buf.add(b"header:").unwrap();
        buf.add_file(f.try_clone().unwrap(), 100, Some(40_000))
            .unwrap();
        buf.add(b":trailer").unwrap();
        let total = buf.len();
        let mut got = Vec::new();
        while !buf.is_empty() {
            match buf.write(a.as_raw_fd()) {
                Ok(_) => {}
                Err(Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
            let mut tmp = vec![0u8; 65536];
            if let Ok(n) = b.read(&mut tmp) {
                got.extend_from_slice(&tmp[..n]);
            }
        }
        while got.len() < total {
            let mut tmp = vec![0u8; 65536];
            let n = b.read(&mut tmp).unwrap_or(0);
            got.extend_from_slice(&tmp[..n]);
        }
        let mut want = b"header:".to_vec();
        want.extend_from_slice(&content[100..40_100]);
        want.extend_from_slice(b":trailer");
        assert_eq!(got, want, "sendfile={sendfile}");
    }
    std::fs::remove_file(path).ok();
}

#[test]
fn file_segments_are_readable_and_shareable() {
    let (path, f) = temp_file(b"0123456789abcdef");
    for flags in [
        SegmentFlags::default(),
        SegmentFlags {
            disable_mmap: true,
            disable_sendfile: true,
        },
    ] {
        let seg = FileSegment::new(f.try_clone().unwrap(), 3, None, flags).unwrap();
        assert_eq!(seg.len(), 13);
        let cleaned = Arc::new(AtomicBool::new(false));
        let c = Arc::clone(&cleaned);
        seg.set_cleanup(move || c.store(true, Ordering::SeqCst));
        let mut a = EvBuffer::new();
        let mut b = EvBuffer::new();
        a.add_file_segment(&seg, 0, Some(4)).unwrap();
        b.add_file_segment(&seg, 10, None).unwrap();
        assert_eq!(a.to_vec(), b"3456");
        assert_eq!(b.to_vec(), b"def");
        assert_eq!(a.search(b"56", None).unwrap().map(|p| p.pos()), Some(2));
        assert!(matches!(
            a.add_file_segment(&seg, 14, None),
            Err(Error::OutOfRange)
        ));
        assert!(matches!(
            a.add_file_segment(&seg, 10, Some(4)),
            Err(Error::OutOfRange)
        ));
        a.add_file_segment(&seg, 13, None).unwrap(); // empty range: nothing added
        assert_eq!(a.len(), 4);
        drop(seg);
        drop(a);
        assert!(!cleaned.load(Ordering::SeqCst));
        drop(b);
        assert!(cleaned.load(Ordering::SeqCst));
    }
    assert!(matches!(
        FileSegment::new(f.try_clone().unwrap(), 17, None, SegmentFlags::default()),
        Err(Error::OutOfRange)
    ));
    assert!(matches!(
        FileSegment::new(f.try_clone().unwrap(), 0, Some(17), SegmentFlags::default()),
        Err(Error::OutOfRange)
    ));
    let empty = FileSegment::new(f, 16, None, SegmentFlags::default()).unwrap();
    assert!(empty.is_empty());
    std::fs::remove_file(path).ok();
}

#[test]
fn reserve_then_read_like_a_socket() {
    let (mut a, mut b) = pair();
    a.write_all(b"direct").unwrap();
    let mut buf = EvBuffer::new();
    let mut v = buf.reserve_space(64, 1).unwrap();
    let n = b.read(v[0]).unwrap();
    buf.commit_space(&[n]).unwrap();
    assert_eq!(buf.to_vec(), b"direct");
}
