//! Core operations, zero-copy behaviour, freezing and bad input.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use evrs_buffer::{End, Error, EvBuffer};

#[test]
fn add_remove_roundtrip_many_sizes() {
    let mut buf = EvBuffer::new();
    let mut expect = Vec::new();
    let rounds = if cfg!(miri) { 12 } else { 200 };
    for i in 0..rounds {
        let piece: Vec<u8> = (0..i * 37 % 5000).map(|j| (i + j) as u8).collect();
        buf.add(&piece).unwrap();
        expect.extend_from_slice(&piece);
    }
    assert_eq!(buf.len(), expect.len());
    let mut out = vec![0u8; expect.len() + 10];
    assert_eq!(buf.remove(&mut out).unwrap(), expect.len());
    assert_eq!(&out[..expect.len()], &expect[..]);
    assert!(buf.is_empty());
}

#[test]
fn drain_more_than_length_drains_all() {
    let mut buf = EvBuffer::new();
    assert_eq!(buf.drain(10).unwrap(), 0);
    buf.add(b"hello").unwrap();
    assert_eq!(buf.drain(usize::MAX).unwrap(), 5);
    assert!(buf.is_empty());
}

#[test]
fn add_buffer_moves_chunks_without_copy() {
    let mut src = EvBuffer::new();
    let big = if cfg!(miri) { 1 << 12 } else { 1 << 20 };
    src.add_bytes(vec![7u8; big].into()).unwrap();
    let before = src.peek(None, None).unwrap()[0].as_ptr();
    let mut dst = EvBuffer::new();
    dst.add(b"head").unwrap();
    assert_eq!(dst.add_buffer(&mut src).unwrap(), big);
    assert!(src.is_empty());
    assert_eq!(dst.len(), 4 + big);
    let after = dst.peek(None, None).unwrap()[1].as_ptr();
    assert_eq!(before, after, "chunk was copied");
}

#[test]
fn remove_buffer_moves_whole_chunks_and_splits_partial() {
    let mut src = EvBuffer::new();
    src.add_bytes(vec![1u8; 3000].into()).unwrap();
    src.add_bytes(vec![2u8; 3000].into()).unwrap();
    let second = src.peek(None, None).unwrap()[1].as_ptr();
    let mut dst = EvBuffer::new();
    assert_eq!(src.remove_buffer(&mut dst, 4000).unwrap(), 4000);
    assert_eq!(src.len(), 2000);
    assert_eq!(dst.len(), 4000);
    let v = dst.peek(None, None).unwrap();
    assert_eq!(v[1].as_ptr(), second, "partial chunk was copied");
    assert_eq!(src.remove_buffer(&mut dst, 0).unwrap(), 0);
    assert_eq!(src.remove_buffer(&mut dst, usize::MAX).unwrap(), 2000);
    assert!(src.is_empty());
}

#[test]
fn prepend_and_prepend_buffer() {
    let mut buf = EvBuffer::new();
    buf.add(b"world").unwrap();
    buf.prepend(b"hello ").unwrap();
    let mut other = EvBuffer::new();
    other.add(b">> ").unwrap();
    buf.prepend_buffer(&mut other).unwrap();
    assert_eq!(buf.to_vec(), b">> hello world");
    assert!(other.is_empty());
    buf.prepend(b"").unwrap();
    assert_eq!(buf.len(), 14);
}

#[test]
fn add_buffer_reference_shares_and_both_stay_usable() {
    let mut src = EvBuffer::new();
    src.add(b"shared").unwrap();
    let mut dst = EvBuffer::new();
    dst.add_buffer_reference(&mut src).unwrap();
    src.add(b" more").unwrap();
    src.drain(3).unwrap();
    dst.add(b"!").unwrap();
    assert_eq!(src.to_vec(), b"red more");
    assert_eq!(dst.to_vec(), b"shared!");
}

#[test]
fn reference_cleanup_runs_once_when_last_user_is_gone() {
    let count = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&count);
    let mut a = EvBuffer::new();
    a.add_reference_with_cleanup(vec![1u8, 2, 3, 4], move |v| {
        assert_eq!(v, vec![1, 2, 3, 4]);
        c.fetch_add(1, Ordering::SeqCst);
    })
    .unwrap();
    let mut b = EvBuffer::new();
    b.add_buffer_reference(&mut a).unwrap();
    a.drain(4).unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 0);
    let line = b.remove_bytes(2).unwrap();
    drop(b);
    assert_eq!(count.load(Ordering::SeqCst), 0);
    drop(line);
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[test]
fn reference_on_frozen_end_fails_without_cleanup() {
    let count = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&count);
    let mut a = EvBuffer::new();
    a.freeze(End::End);
    let r = a.add_reference_with_cleanup(vec![1u8], move |_| {
        c.fetch_add(1, Ordering::SeqCst);
    });
    assert!(matches!(r, Err(Error::Frozen(End::End))));
    assert_eq!(count.load(Ordering::SeqCst), 0);
}

#[test]
fn frozen_end_rejects_adds() {
    let mut a = EvBuffer::new();
    let mut b = EvBuffer::new();
    b.add(b"x").unwrap();
    a.freeze(End::End);
    assert!(a.is_frozen(End::End));
    assert!(matches!(a.add(b"x"), Err(Error::Frozen(End::End))));
    assert!(matches!(
        a.add_bytes(b"x"[..].into()),
        Err(Error::Frozen(End::End))
    ));
    assert!(matches!(
        a.add_fmt(format_args!("{}", 1)),
        Err(Error::Frozen(End::End))
    ));
    assert!(matches!(a.add_buffer(&mut b), Err(Error::Frozen(End::End))));
    assert!(matches!(
        b.remove_buffer(&mut a, 1),
        Err(Error::Frozen(End::End))
    ));
    assert!(matches!(
        a.reserve_space(10, 1),
        Err(Error::Frozen(End::End))
    ));
    assert!(matches!(
        a.read_from(-1, None),
        Err(Error::Frozen(End::End))
    ));
    // The front still works.
    a.unfreeze(End::End);
    a.add(b"ab").unwrap();
    a.freeze(End::End);
    assert_eq!(a.drain(1).unwrap(), 1);
    assert_eq!(a.to_vec(), b"b");
    assert_eq!(b.len(), 1);
}

#[test]
fn frozen_start_rejects_removal() {
    let mut a = EvBuffer::new();
    let mut other = EvBuffer::new();
    // Empty buffer: drain and copyout return 0 even when frozen (libevent).
    a.freeze(End::Start);
    assert_eq!(a.drain(5).unwrap(), 0);
    assert_eq!(a.copyout(&mut [0u8; 4]).unwrap(), 0);
    a.unfreeze(End::Start);
    a.add(b"abc").unwrap();
    a.freeze(End::Start);
    let mut out = [0u8; 2];
    assert!(matches!(a.drain(1), Err(Error::Frozen(End::Start))));
    assert!(matches!(a.remove(&mut out), Err(Error::Frozen(End::Start))));
    assert!(matches!(
        a.copyout(&mut out),
        Err(Error::Frozen(End::Start))
    ));
    assert!(matches!(a.prepend(b"x"), Err(Error::Frozen(End::Start))));
    assert!(matches!(
        other.add_buffer(&mut a),
        Err(Error::Frozen(End::Start))
    ));
    assert!(matches!(
        a.remove_buffer(&mut other, 1),
        Err(Error::Frozen(End::Start))
    ));
    assert!(matches!(a.write(-1), Err(Error::Frozen(End::Start))));
    // The end still works.
    a.add(b"d").unwrap();
    assert_eq!(a.len(), 4);
    assert!(other.is_empty());
}

#[test]
fn pullup_edges() {
    let mut buf = EvBuffer::new();
    for p in [&b"ab"[..], b"cd", b"ef"] {
        buf.add_bytes(p.to_vec().into()).unwrap();
    }
    assert_eq!(buf.pullup(0).unwrap(), b"");
    assert!(matches!(buf.pullup(7), Err(Error::OutOfRange)));
    assert_eq!(buf.pullup(3).unwrap(), b"abc");
    assert_eq!(buf.contiguous_space(), 3);
    assert_eq!(buf.pullup_all().unwrap(), b"abcdef");
    assert_eq!(buf.to_vec(), b"abcdef");
}

#[test]
fn reserve_commit_edges() {
    let mut buf = EvBuffer::new();
    assert!(matches!(
        buf.reserve_space(10, 0),
        Err(Error::InvalidReservation)
    ));
    assert!(matches!(
        buf.commit_space(&[1]),
        Err(Error::InvalidReservation)
    ));
    assert_eq!(buf.commit_space(&[]).unwrap(), 0);
    // Too many lengths, or a length larger than the slice.
    buf.reserve_space(10, 1).unwrap();
    assert!(matches!(
        buf.commit_space(&[1, 1]),
        Err(Error::InvalidReservation)
    ));
    buf.reserve_space(10, 1).unwrap();
    assert!(matches!(
        buf.commit_space(&[11]),
        Err(Error::InvalidReservation)
    ));
    // A change in between cancels the reservation.
    let mut v = buf.reserve_space(10, 1).unwrap();
    v[0][0] = b'x';
    buf.add(b"y").unwrap();
    assert!(matches!(
        buf.commit_space(&[1]),
        Err(Error::InvalidReservation)
    ));
    assert_eq!(buf.to_vec(), b"y");
    // Two vectors spanning the tail's free space and a new chunk.
    buf.expand(100).unwrap();
    let v = buf.reserve_space(5000, 2).unwrap();
    let sizes: Vec<usize> = v.iter().map(|s| s.len()).collect();
    assert_eq!(sizes.iter().sum::<usize>(), 5000);
    for s in v {
        s.fill(b'z');
    }
    assert_eq!(buf.commit_space(&sizes).unwrap(), 5000);
    assert_eq!(buf.len(), 5001);
}

#[test]
fn fmt_and_io_traits() {
    use std::io::{Read as _, Write as _};
    let mut buf = EvBuffer::new();
    std::fmt::Write::write_fmt(&mut buf, format_args!("{}+{}", 1, 2)).unwrap();
    buf.write_all(b"=3").unwrap();
    let mut s = String::new();
    buf.read_to_string(&mut s).unwrap();
    assert_eq!(s, "1+2=3");
    struct Bad;
    impl std::fmt::Display for Bad {
        fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            Err(std::fmt::Error)
        }
    }
    assert!(matches!(
        buf.add_fmt(format_args!("a{}", Bad)),
        Err(Error::Format)
    ));
    assert!(buf.is_empty());
}

#[test]
fn error_converts_to_io_error() {
    let e: std::io::Error = Error::LineTooLong { limit: 3 }.into();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
    let e: std::io::Error = Error::Frozen(End::Start).into();
    assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied);
    assert!(!format!("{}", Error::OutOfRange).is_empty());
}
