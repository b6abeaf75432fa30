//! Positions and searching.

mod util;
use evrs_buffer::{Error, EvBuffer};
use util::chunked;

#[test]
fn search_across_chunks() {
    let buf = chunked(&[b"xxab", b"c", b"dabcd"]);
    assert_eq!(buf.search(b"abcd", None).unwrap().map(|p| p.pos()), Some(2));
    let from = buf.ptr_at(3).unwrap();
    assert_eq!(
        buf.search(b"abcd", Some(&from)).unwrap().map(|p| p.pos()),
        Some(6)
    );
    assert_eq!(buf.search(b"abcde", None).unwrap(), None);
}

#[test]
fn search_loop_with_ptr_add() {
    let buf = chunked(&[b"a,b,", b",c", b","]);
    let mut found = Vec::new();
    let mut at = buf.ptr_at(0).unwrap();
    while let Some(p) = buf.search(b",", Some(&at)).unwrap() {
        found.push(p.pos());
        at = p;
        buf.ptr_add(&mut at, 1).unwrap();
    }
    assert_eq!(found, vec![1, 3, 4, 6]);
}

#[test]
fn empty_needle_matches_at_start() {
    let buf = chunked(&[b"abc"]);
    let p = buf.ptr_at(2).unwrap();
    assert_eq!(buf.search(b"", Some(&p)).unwrap().map(|p| p.pos()), Some(2));
    let end = buf.ptr_at(3).unwrap();
    assert_eq!(
        buf.search(b"", Some(&end)).unwrap().map(|p| p.pos()),
        Some(3)
    );
}

#[test]
fn search_range_end_limits_match_end() {
    let buf = chunked(&[b"aXbb", b"Xb"]);
    let end = buf.ptr_at(5).unwrap();
    assert_eq!(
        buf.search_range(b"Xb", None, Some(&end))
            .unwrap()
            .map(|p| p.pos()),
        Some(1)
    );
    let from = buf.ptr_at(2).unwrap();
    assert_eq!(
        buf.search_range(b"Xb", Some(&from), Some(&end)).unwrap(),
        None
    );
    let end = buf.ptr_at(6).unwrap();
    assert_eq!(
        buf.search_range(b"Xb", Some(&from), Some(&end))
            .unwrap()
            .map(|p| p.pos()),
        Some(4)
    );
}

#[test]
fn positions_out_of_range() {
    let mut buf = chunked(&[b"abc"]);
    assert!(buf.ptr_at(3).is_ok());
    assert!(matches!(buf.ptr_at(4), Err(Error::OutOfRange)));
    let mut p = buf.ptr_at(2).unwrap();
    assert!(matches!(buf.ptr_add(&mut p, 2), Err(Error::OutOfRange)));
    assert_eq!(p.pos(), 2);
    assert!(matches!(
        buf.ptr_add(&mut p, usize::MAX),
        Err(Error::OutOfRange)
    ));
    buf.ptr_add(&mut p, 1).unwrap();
    assert_eq!(p.pos(), 3);
    // A stale position past the new end is rejected, not trusted.
    buf.drain(2).unwrap();
    assert!(matches!(buf.search(b"c", Some(&p)), Err(Error::OutOfRange)));
    let mut out = [0u8; 1];
    assert!(matches!(
        buf.copyout_from(&p, &mut out),
        Err(Error::OutOfRange)
    ));
    assert!(buf.peek(None, Some(&p)).is_err());
    // A stale position still in range is re-resolved by offset.
    let q = buf.ptr_at(0).unwrap();
    buf.prepend(b"zz").unwrap();
    assert_eq!(
        buf.search(b"c", Some(&q)).unwrap().map(|p| p.pos()),
        Some(2)
    );
    // A position from another buffer is resolved by offset too.
    let other = chunked(&[b"cc"]);
    assert_eq!(
        other.search(b"c", Some(&q)).unwrap().map(|p| p.pos()),
        Some(0)
    );
}

#[test]
fn peek_returns_chunks() {
    let buf = chunked(&[b"ab", b"cd", b"ef"]);
    let p = buf.ptr_at(1).unwrap();
    let v = buf.peek(Some(2), Some(&p)).unwrap();
    assert_eq!(v, vec![&b"b"[..], &b"cd"[..]]);
    assert_eq!(buf.peek(Some(0), None).unwrap().len(), 0);
    assert_eq!(buf.peek(None, None).unwrap().concat(), b"abcdef");
}

/// Needles spanning several chunk boundaries, longer than the chunks, and
/// boundary matches that would end past the `end` limit.
#[test]
fn search_spanning_many_small_chunks() {
    let buf = chunked(&[b"xa", b"b", b"c", b"d", b"ex", b"abcde"]);
    assert_eq!(
        buf.search(b"abcde", None).unwrap().map(|p| p.pos()),
        Some(1)
    );
    assert_eq!(
        buf.search(b"bcdex", None).unwrap().map(|p| p.pos()),
        Some(2)
    );
    let from = buf.ptr_at(2).unwrap();
    assert_eq!(
        buf.search(b"abcde", Some(&from)).unwrap().map(|p| p.pos()),
        Some(7)
    );
    // The spanning match at 1 ends at 6: allowed with end 6, not with 5.
    let end = buf.ptr_at(6).unwrap();
    assert_eq!(
        buf.search_range(b"abcde", None, Some(&end))
            .unwrap()
            .map(|p| p.pos()),
        Some(1)
    );
    let end = buf.ptr_at(5).unwrap();
    assert_eq!(buf.search_range(b"abcde", None, Some(&end)).unwrap(), None);
}

/// Many false candidates (the prefilter gives way to a substring finder)
/// with the only match straddling a chunk boundary.
#[test]
fn search_many_false_hits_match_on_boundary() {
    let mut needle = vec![b'a'; 40];
    needle.push(b'b');
    let mut buf = EvBuffer::new();
    let mut data = vec![b'a'; 10_000];
    data.push(b'b');
    data.extend_from_slice(&[b'a'; 500]);
    for piece in data.chunks(97) {
        buf.add_bytes(piece.to_vec().into()).unwrap();
    }
    let want = 10_000 - 40;
    assert_eq!(
        buf.search(&needle, None).unwrap().map(|p| p.pos()),
        Some(want)
    );
    let from = buf.ptr_at(want + 1).unwrap();
    assert_eq!(buf.search(&needle, Some(&from)).unwrap(), None);
    let end = buf.ptr_at(want + 40).unwrap();
    assert_eq!(buf.search_range(&needle, None, Some(&end)).unwrap(), None);
}
