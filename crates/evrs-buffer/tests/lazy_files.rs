//! File data that is not in memory (segments without mmap, longer than one
//! 256 KiB piece, read on demand) must behave exactly like the same bytes in
//! memory: checked against a model on real temporary files, deterministic
//! and proptest-driven, plus the error paths (files that shrink, bad ranges).
#![cfg(not(miri))]

mod util;

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use evrs_buffer::{EolStyle, Error, EvBuffer, FileSegment, SegmentFlags};
use proptest::prelude::*;
use util::{model_eol, model_readln, model_search, STYLES};

fn temp_path() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "evrs-buffer-lazy-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ))
}

/// A file holding `content`, already unlinked (the open handle keeps it
/// alive, and nothing is left behind whatever happens), opened read-write.
fn unlinked_file(content: &[u8]) -> File {
    let path = temp_path();
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    f.write_all(content).unwrap();
    f
}

const NO_MMAP: SegmentFlags = SegmentFlags {
    disable_mmap: true,
    disable_sendfile: false,
};

/// Deterministic bytes: lines of 0..300 bytes ending in CRLF, LF or a lone
/// CR, with NULs, and needles placed across the 16 KiB and 256 KiB edges.
fn content(len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len + 400);
    let mut x: u32 = 12345;
    while v.len() < len {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let n = (x >> 8) as usize % 300;
        for i in 0..n {
            v.push(b"abcdefgh01"[(i + (x as usize >> 20)) % 10]);
        }
        match x % 7 {
            0 => v.push(b'\n'),
            1 => v.push(b'\r'),
            2 => v.push(0),
            _ => v.extend_from_slice(b"\r\n"),
        }
    }
    v.truncate(len);
    for at in [16 * 1024 - 3, 48 * 1024 - 1, 256 * 1024 - 5, 512 * 1024 - 2] {
        if at + 6 <= v.len() {
            v[at..at + 6].copy_from_slice(b"NEEDLE");
        }
    }
    v
}

fn write_all_to_socket(buf: &mut EvBuffer) -> Vec<u8> {
    let (a, mut b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    b.set_nonblocking(true).unwrap();
    let total = buf.len();
    let mut got = Vec::new();
    let mut tmp = vec![0u8; 64 * 1024];
    while got.len() < total {
        match buf.write(a.as_raw_fd()) {
            Ok(_) => {}
            Err(Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("write: {e}"),
        }
        match b.read(&mut tmp) {
            Ok(k) => got.extend_from_slice(&tmp[..k]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("read: {e}"),
        }
    }
    got
}

/// "head\r\n", then the file from offset 7 on (not in memory), then "tail".
fn framed(seg: &FileSegment, data: &[u8]) -> (EvBuffer, Vec<u8>) {
    let mut buf = EvBuffer::new();
    buf.add(b"head\r\n").unwrap();
    buf.add_file_segment(seg, 7, None).unwrap();
    buf.add(b"tail").unwrap();
    let mut model = b"head\r\n".to_vec();
    model.extend_from_slice(&data[7..]);
    model.extend_from_slice(b"tail");
    (buf, model)
}

#[test]
fn long_unmapped_segment_matches_its_bytes() {
    let data = content(800_000);
    let seg = FileSegment::new(unlinked_file(&data), 0, None, NO_MMAP).unwrap();
    let (buf, model) = framed(&seg, &data);
    let n = model.len();
    assert_eq!(buf.len(), n);
    assert_eq!(buf.try_to_vec().unwrap(), model);
    assert_eq!(buf.to_vec(), model);
    // Only the head is lent out in place.
    assert_eq!(buf.chunks().collect::<Vec<_>>(), [&b"head\r\n"[..]]);
    assert_eq!(buf.peek(None, None).unwrap(), [&b"head\r\n"[..]]);
    let inside = buf.ptr_at(100).unwrap();
    assert!(buf.peek(None, Some(&inside)).unwrap().is_empty());

    let edges = [
        0,
        5,
        6,
        7,
        100,
        16_380,
        16_390,
        262_140,
        262_150,
        524_290,
        n - 300,
        n - 5,
        n,
    ];
    for &p in &edges {
        let mut out = vec![0u8; 1000];
        let got = buf.copyout_from(&buf.ptr_at(p).unwrap(), &mut out).unwrap();
        assert_eq!(&out[..got], &model[p..(p + 1000).min(n)], "copyout at {p}");
        for what in [&b"NEEDLE"[..], b"\r\n\r", b"tail", b"a", b"\0"] {
            let from = buf.ptr_at(p).unwrap();
            let hit = buf.search(what, Some(&from)).unwrap().map(|h| h.pos());
            assert_eq!(hit, model_search(&model, what, p, n), "{what:?} from {p}");
            let end = buf.ptr_at((p + 70_000).min(n)).unwrap();
            let hit = buf.search_range(what, Some(&from), Some(&end)).unwrap();
            let want = model_search(&model, what, p, end.pos());
            assert_eq!(
                hit.map(|h| h.pos()),
                want,
                "{what:?} from {p} to {}",
                end.pos()
            );
        }
        for style in STYLES {
            let got = buf
                .search_eol(Some(&buf.ptr_at(p).unwrap()), style)
                .unwrap();
            let got = got.map(|(q, l)| (q.pos(), l));
            assert_eq!(got, model_eol(&model, p, style), "{style:?} from {p}");
        }
    }

    // Every line, in every style and with limits, by all three readers.
    for style in STYLES {
        for max in [None, Some(280), Some(40)] {
            let (mut buf, model) = framed(&seg, &data);
            let mut at = 0; // what the model has consumed
            let mut i = 0usize;
            let mut line = Vec::new();
            loop {
                i += 1;
                let got = match i % 3 {
                    0 => buf.readln(style, max).map(|l| l.map(|l| l.to_vec())),
                    1 => buf.readln_with(style, max, |l| l.to_vec()),
                    _ => {
                        line.clear();
                        buf.readln_into(style, max, &mut line)
                            .map(|o| o.map(|_| line.clone()))
                    }
                };
                match (got, model_readln(&model[at..], style, max)) {
                    (Ok(None), Ok(None)) => break,
                    (Err(Error::LineTooLong { .. }), Err(())) => {
                        // Skip the long line, as a caller would.
                        let skip = (max.unwrap_or(0) + 1).min(model.len() - at);
                        assert_eq!(buf.drain(skip).unwrap(), skip);
                        at += skip;
                    }
                    (Ok(Some(l)), Ok(Some((want, consumed)))) => {
                        assert_eq!(l, want, "{style:?} {max:?} line {i}");
                        at += consumed;
                    }
                    (g, w) => panic!("{style:?} {max:?} line {i}: got {g:?} want {w:?}"),
                }
                assert_eq!(buf.len(), model.len() - at);
            }
            assert_eq!(buf.to_vec(), &model[at..]);
        }
    }

    // Moving, pulling up and removing, across every kind of edge.
    let (mut buf, mut model) = framed(&seg, &data);
    let mut dst = EvBuffer::new();
    let mut moved = Vec::new();
    for k in [3, 500, 513, 100_000, 262_144, 1, 200_000] {
        let got = buf.remove_buffer(&mut dst, k).unwrap();
        moved.extend(model.drain(..got));
        assert_eq!(buf.pullup(2000).unwrap(), &model[..2000]);
        let b = buf.remove_bytes(777).unwrap();
        assert_eq!(&b[..], &model[..777]);
        model.drain(..777);
        assert_eq!(buf.contiguous_space() > 0, !model.is_empty());
    }
    assert_eq!(dst.to_vec(), moved);
    assert_eq!(buf.pullup(150_000).unwrap(), &model[..150_000]);
    assert_eq!(buf.pullup_all().unwrap(), &model[..]);

    // Out through writev, and through sendfile.
    for sendfile in [false, true] {
        let (mut buf, model) = framed(&seg, &data);
        buf.set_drains_to_fd(sendfile);
        assert_eq!(write_all_to_socket(&mut buf), model, "sendfile={sendfile}");
        assert!(buf.is_empty());
    }
}

#[test]
fn segment_that_shrinks_gives_io_errors() {
    let data = content(2 << 20);
    let f = unlinked_file(&data);
    let seg = FileSegment::new(f.try_clone().unwrap(), 0, None, NO_MMAP).unwrap();
    let mut buf = EvBuffer::new();
    buf.add_file_segment(&seg, 0, None).unwrap();
    f.set_len(1 << 20).unwrap();
    let n = buf.len();
    let eof = |r: Result<usize, Error>| matches!(r, Err(Error::Io(e)) if e.kind() == ErrorKind::UnexpectedEof);
    // What is still in the file reads fine; what is gone is an error.
    let mut out = vec![0u8; 4096];
    assert_eq!(buf.copyout(&mut out).unwrap(), 4096);
    assert_eq!(out, &data[..4096]);
    let late = buf.ptr_at(3 << 19).unwrap();
    assert!(eof(buf.copyout_from(&late, &mut out)));
    assert!(matches!(
        buf.search(b"no such bytes", None),
        Err(Error::Io(_))
    ));
    assert!(matches!(
        buf.search_eol(Some(&late), EolStyle::Lf),
        Err(Error::Io(_))
    ));
    assert!(matches!(buf.pullup_all(), Err(Error::Io(_))));
    assert!(matches!(buf.remove_bytes(n), Err(Error::Io(_))));
    assert!(matches!(buf.try_to_vec(), Err(Error::Io(_))));
    assert!(buf.to_vec().is_empty());
    assert_eq!(buf.len(), n);
    // Nothing was consumed by the failures; draining still works.
    buf.drain((1 << 20) - 10).unwrap();
    assert!(eof(buf.remove(&mut out)));
    assert_eq!(buf.len(), n - (1 << 20) + 10);
    let (a, _b) = UnixStream::pair().unwrap();
    assert!(matches!(buf.write(a.as_raw_fd()), Err(Error::Io(_))));
    assert_eq!(buf.len(), n - (1 << 20) + 10);
    assert_eq!(buf.drain(usize::MAX).unwrap(), n - (1 << 20) + 10);
}

#[test]
fn file_ranges_are_checked() {
    let data = content(300_000);
    let f = unlinked_file(&data);
    let size = data.len() as u64;
    let clone = || f.try_clone().unwrap();
    for flags in [SegmentFlags::default(), NO_MMAP] {
        for (off, len) in [
            (u64::MAX, None),
            (u64::MAX, Some(1)),
            (1, Some(u64::MAX)),
            (u64::MAX, Some(u64::MAX)),
            (0, Some(size + 1)),
            (size + 1, Some(0)),
            (size - 10, Some(11)),
        ] {
            let r = FileSegment::new(clone(), off, len, flags);
            assert!(matches!(r, Err(Error::OutOfRange)), "{off} {len:?}");
            let mut buf = EvBuffer::new();
            let r = buf.add_file(clone(), off, len);
            assert!(matches!(r, Err(Error::OutOfRange)), "{off} {len:?}");
            assert!(buf.is_empty());
        }
        assert!(FileSegment::new(clone(), size, None, flags)
            .unwrap()
            .is_empty());
        let seg = FileSegment::new(clone(), 10, None, flags).unwrap();
        assert_eq!(seg.len() as u64, size - 10);
        let mut buf = EvBuffer::new();
        for (off, len) in [
            (u64::MAX, None),
            (1, Some(u64::MAX)),
            (u64::MAX, Some(u64::MAX)),
            (seg.len() as u64 + 1, None),
            (5, Some(seg.len() as u64 - 4)),
        ] {
            let r = buf.add_file_segment(&seg, off, len);
            assert!(matches!(r, Err(Error::OutOfRange)), "{off} {len:?}");
        }
        assert!(buf.is_empty());
        buf.add_file_segment(&seg, 5, Some(seg.len() as u64 - 5))
            .unwrap();
        assert_eq!(buf.to_vec(), &data[15..]);
    }
}

/// The shared file for the proptests: 300 KiB of bytes from a small
/// alphabet, so that windows of it are file data not in memory.
fn fuzz_file() -> &'static (Vec<u8>, FileSegment) {
    static FILE: OnceLock<(Vec<u8>, FileSegment)> = OnceLock::new();
    FILE.get_or_init(|| {
        let mut x: u32 = 99;
        let data: Vec<u8> = (0..300 * 1024)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                [b'a', b'b', b'\r', b'\n', 0u8][(x >> 16) as usize % 5]
            })
            .collect();
        let seg = FileSegment::new(unlinked_file(&data), 0, None, NO_MMAP).unwrap();
        (data, seg)
    })
}

/// A buffer from pieces: (kind, file offset, length); kind 0 copies the
/// bytes in, 1 adds a window of the file (not in memory), 2 moves such a
/// window in from another buffer, 3 adds it by reference.
fn build(pieces: &[(u8, usize, usize)]) -> (EvBuffer, Vec<u8>) {
    let (data, seg) = fuzz_file();
    let mut buf = EvBuffer::new();
    let mut model = Vec::new();
    for &(kind, off, len) in pieces {
        let off = off % data.len();
        let len = len.min(data.len() - off);
        let bytes = &data[off..off + len];
        let (o, l) = (off as u64, Some(len as u64));
        match kind % 4 {
            0 => buf.add(bytes).unwrap(),
            1 => buf.add_file_segment(seg, o, l).unwrap(),
            2 => {
                let mut other = EvBuffer::new();
                other.add_file_segment(seg, o, l).unwrap();
                buf.add_buffer(&mut other).unwrap();
            }
            _ => {
                let mut other = EvBuffer::new();
                other.add_file_segment(seg, o, l).unwrap();
                buf.add_buffer_reference(&mut other).unwrap();
            }
        }
        model.extend_from_slice(bytes);
    }
    (buf, model)
}

fn pieces() -> impl Strategy<Value = Vec<(u8, usize, usize)>> {
    prop::collection::vec((any::<u8>(), any::<usize>(), 0usize..40), 0..10)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: util::cases(500), ..ProptestConfig::default() })]

    #[test]
    fn readln_over_file_windows(
        pieces in pieces(),
        style in 0usize..5,
        max in prop::option::of(0usize..30),
    ) {
        let style = STYLES[style];
        let (mut buf, mut model) = build(&pieces);
        let mut i = 0usize;
        loop {
            i += 1;
            let got = if i % 2 == 0 {
                buf.readln(style, max).map(|l| l.map(|l| l.to_vec()))
            } else {
                buf.readln_with(style, max, |l| l.to_vec())
            };
            match (got, model_readln(&model, style, max)) {
                (Ok(None), Ok(None)) => break,
                (Err(Error::LineTooLong { .. }), Err(())) => break,
                (Ok(Some(line)), Ok(Some((want, consumed)))) => {
                    prop_assert_eq!(&line[..], &want[..]);
                    model.drain(..consumed);
                }
                (g, w) => prop_assert!(false, "got {:?} want {:?}", g, w),
            }
            prop_assert_eq!(buf.to_vec(), model.clone());
        }
    }

    #[test]
    fn search_and_copy_over_file_windows(
        pieces in pieces(),
        needle in prop::collection::vec(prop::sample::select(vec![b'a', b'\r', b'\n', 0u8]), 0..4),
        from in 0usize..400,
        end in prop::option::of(0usize..400),
        take in 0usize..100,
    ) {
        let (mut buf, model) = build(&pieces);
        let n = model.len();
        let Ok(start) = buf.ptr_at(from) else {
            prop_assert!(from > n);
            return Ok(());
        };
        let end_ptr = end.and_then(|e| buf.ptr_at(e).ok());
        let limit = end_ptr.map_or(n, |p| p.pos());
        let got = buf.search_range(&needle, Some(&start), end_ptr.as_ref()).unwrap();
        prop_assert_eq!(got.map(|p| p.pos()), model_search(&model, &needle, from, limit));
        for style in STYLES {
            let got = buf.search_eol(Some(&start), style).unwrap().map(|(p, l)| (p.pos(), l));
            prop_assert_eq!(got, model_eol(&model, from, style));
        }
        let mut out = vec![0u8; take];
        let k = buf.copyout_from(&start, &mut out).unwrap();
        prop_assert_eq!(&out[..k], &model[from..(from + take).min(n)]);
        let t = take.min(n);
        prop_assert_eq!(buf.pullup(t).unwrap(), &model[..t]);
        let mut dst = EvBuffer::new();
        prop_assert_eq!(buf.remove_buffer(&mut dst, from).unwrap(), from);
        prop_assert_eq!(dst.to_vec(), &model[..from]);
        let b = buf.remove_bytes(take).unwrap();
        prop_assert_eq!(&b[..], &model[from..(from + take).min(n)]);
        prop_assert_eq!(buf.to_vec(), &model[(from + take).min(n)..]);
    }
}

#[test]
fn has_file_data_sees_mapped_and_lazy_segments_until_drained() {
    for flags in [
        SegmentFlags::default(),
        SegmentFlags {
            disable_mmap: true,
            ..SegmentFlags::default()
        },
    ] {
        let data = content(300 * 1024);
        let seg = FileSegment::new(unlinked_file(&data), 0, None, flags).unwrap();
        let mut buf = EvBuffer::new();
        buf.add(b"head").unwrap();
        assert!(!buf.has_file_data());
        buf.add_file_segment(&seg, 0, Some(10)).unwrap();
        assert!(buf.has_file_data());
        let mut other = EvBuffer::new();
        other.add_file_segment(&seg, 0, None).unwrap();
        assert!(other.has_file_data());
        buf.drain(usize::MAX).unwrap();
        assert!(!buf.has_file_data());
        other.drain(usize::MAX).unwrap();
        assert!(!other.has_file_data());
    }
}
