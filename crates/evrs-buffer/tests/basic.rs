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
fn large_copies_at_every_alignment() {
    // Copies of 4 KiB to 1 MiB go to memcpy in pieces; check the seams at
    // odd sizes and offsets, in and out, and a copy too big to be split.
    let sizes: &[usize] = if cfg!(miri) {
        &[4097, 6001]
    } else {
        &[4096, 4097, 6001, 65536, 65537, 100_003, (1 << 20) + 5]
    };
    for &n in sizes {
        for skew in [0usize, 1, 16, 33] {
            let src: Vec<u8> = (0..n + skew).map(|j| (j * 7 + n) as u8).collect();
            let mut buf = EvBuffer::new();
            buf.add(b"x").unwrap(); // the data starts at an odd offset
            buf.add(&src[skew..]).unwrap();
            buf.drain(1).unwrap();
            let mut out = vec![0u8; n + skew];
            assert_eq!(buf.copyout(&mut out[skew..]).unwrap(), n);
            assert_eq!(&out[skew..], &src[skew..]);
            let mut part = vec![0u8; n - 3];
            assert_eq!(buf.remove(&mut part).unwrap(), n - 3);
            assert_eq!(&part[..], &src[skew..skew + n - 3]);
            assert_eq!(buf.len(), 3);
        }
    }
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

#[test]
fn repeated_small_prepends_reuse_front_room() {
    let mut buf = EvBuffer::new();
    buf.add(b"tail").unwrap();
    let mut want = b"tail".to_vec();
    for i in 0..200u8 {
        let b = b'a' + i % 26;
        buf.prepend(&[b, b]).unwrap();
        want.splice(0..0, [b, b]);
    }
    assert_eq!(buf.to_vec(), want);
    // One chunk for "tail", one (1 KiB, filled from the back) for all the
    // prepends.
    assert_eq!(buf.chunks().count(), 2);
    // Drained front space of that chunk is reused too.
    buf.drain(100).unwrap();
    buf.prepend(&[b'z'; 100]).unwrap();
    want.drain(..100);
    want.splice(0..0, [b'z'; 100]);
    assert_eq!(buf.to_vec(), want);
    assert_eq!(buf.chunks().count(), 2);
    // A prepend larger than the room fills it and adds one chunk.
    buf.prepend(&[b'y'; 5000]).unwrap();
    want.splice(0..0, [b'y'; 5000]);
    assert_eq!(buf.to_vec(), want);
    assert_eq!(buf.chunks().count(), 3);
    // Zero-copy consumers see the right bytes.
    let line = buf.remove_bytes(5001).unwrap();
    assert_eq!(&line[..], &want[..5001]);
    let mut other = EvBuffer::new();
    other.add_buffer_reference(&mut buf).unwrap();
    assert_eq!(other.to_vec(), &want[5001..]);
}

#[test]
fn add_iovec_adds_all_slices_in_one_allocation() {
    let mut buf = EvBuffer::new();
    let parts: Vec<Vec<u8>> = (0..10u8).map(|i| vec![b'0' + i; 300]).collect();
    assert_eq!(buf.add_iovec(&parts).unwrap(), 3000);
    assert_eq!(buf.to_vec(), parts.concat());
    assert_eq!(buf.chunks().count(), 1);
    // Tail space first, then one chunk for the rest.
    let n = buf
        .add_iovec(&[&[b'a'; 700][..], &[b'b'; 5000][..]])
        .unwrap();
    assert_eq!(n, 5700);
    assert_eq!(buf.chunks().count(), 2);
    let mut want = parts.concat();
    want.extend_from_slice(&[b'a'; 700]);
    want.extend_from_slice(&[b'b'; 5000]);
    assert_eq!(buf.to_vec(), want);
    assert_eq!(buf.add_iovec::<&[u8]>(&[]).unwrap(), 0);
    buf.freeze(evrs_buffer::End::End);
    assert!(buf.add_iovec(&[b"x"]).is_err());
    assert_eq!(buf.len(), want.len());
}

#[test]
fn reserve_space_uses_up_to_nvec_chunks() {
    let mut buf = EvBuffer::new();
    buf.add(b"abc").unwrap(); // one chunk of libevent's first size (976): 973 bytes free
    buf.expand(2000).unwrap(); // an empty chunk with >= 2000 free after it
    let vecs = buf.reserve_space(10_000, 3).unwrap();
    let sizes: Vec<usize> = vecs.iter().map(|v| v.len()).collect();
    assert_eq!(sizes.len(), 3, "{sizes:?}");
    assert_eq!(sizes[0], 973);
    assert_eq!(sizes.iter().sum::<usize>(), 10_000);
    for (i, v) in vecs.into_iter().enumerate() {
        v.fill(b'x' + i as u8);
    }
    assert_eq!(buf.commit_space(&sizes).unwrap(), 10_000);
    let mut want = b"abc".to_vec();
    for (i, &s) in sizes.iter().enumerate() {
        want.extend(std::iter::repeat_n(b'x' + i as u8, s));
    }
    assert_eq!(buf.to_vec(), want);
    assert_eq!(buf.chunks().count(), 3);

    // nvec = 1: one contiguous slice even if the tail has some room.
    let mut buf = EvBuffer::new();
    buf.add(b"abc").unwrap();
    let vecs = buf.reserve_space(4000, 1).unwrap();
    assert_eq!(vecs.len(), 1);
    assert_eq!(vecs[0].len(), 4000);
    // A large nvec uses only what it needs.
    let vecs = buf.reserve_space(100, 8).unwrap();
    assert_eq!(vecs.len(), 1);
    // Validation happens before any effect: a bad length adds nothing.
    let vecs = buf.reserve_space(3000, 4).unwrap();
    let sizes: Vec<usize> = vecs.iter().map(|v| v.len()).collect();
    assert_eq!(sizes.len(), 2);
    assert!(buf.commit_space(&[sizes[0], sizes[1] + 1]).is_err());
    assert_eq!(buf.to_vec(), b"abc");
    // Partial commits keep the data in order.
    let mut vecs = buf.reserve_space(3000, 4).unwrap();
    vecs[0][..2].copy_from_slice(b"de");
    vecs[1][..2].copy_from_slice(b"fg");
    assert_eq!(buf.commit_space(&[2, 2]).unwrap(), 4);
    assert_eq!(buf.to_vec(), b"abcdefg");
    buf.add(b"h").unwrap();
    assert_eq!(buf.to_vec(), b"abcdefgh");
}

#[test]
fn shared_buffer_locks() {
    use evrs_buffer::SharedEvBuffer;
    let shared = SharedEvBuffer::new(EvBuffer::new());
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let s = shared.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    // Two calls under one lock stay together.
                    let mut g = s.lock();
                    g.add(b"<").unwrap();
                    g.add(b">").unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let guard = shared.try_lock().unwrap();
    assert_eq!(guard.to_vec(), b"<>".repeat(200));
    drop(guard);
    let other = shared.clone();
    assert!(other.ptr_eq(&shared));
    let shared = shared.try_unwrap().unwrap_err();
    drop(other);
    assert_eq!(shared.try_unwrap().unwrap().len(), 400);
}

#[test]
fn spare_memory_moves_between_empty_buffers_only() {
    let mut a = EvBuffer::new();
    assert!(!a.holds_memory());
    assert!(
        a.take_spare().is_none(),
        "nothing to take from a new buffer"
    );
    a.add(&[7u8; 100]).unwrap();
    assert!(
        a.take_spare().is_none(),
        "a buffer with data keeps its memory"
    );
    a.drain(100).unwrap();
    assert!(
        a.holds_memory(),
        "a drained buffer keeps its chunk for the next append"
    );
    let spare = a.take_spare().unwrap();
    assert!(!a.holds_memory());
    // The spare carries the drained chunk's memory (its Debug shows the capacity).
    let shown = format!("{spare:?}");
    let cap: usize = shown
        .strip_prefix("Spare { chunk_capacity: ")
        .and_then(|r| r.strip_suffix(" }"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected Debug: {shown}"));
    assert!(cap >= 100, "the spare lost the chunk: {shown}");
    a.add(b"still works").unwrap();
    assert_eq!(a.to_vec(), b"still works");
    // A buffer that holds memory gives the spare back; an empty one takes it and uses it.
    let spare = a.give_spare(spare).unwrap();
    let mut b = EvBuffer::new();
    assert!(b.give_spare(spare).is_none());
    assert!(b.holds_memory());
    b.add(b"into the spare").unwrap();
    assert_eq!(b.to_vec(), b"into the spare");
    // A frozen buffer keeps what it has.
    b.drain(14).unwrap();
    b.freeze(End::End);
    assert!(b.take_spare().is_none());
}
