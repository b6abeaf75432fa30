//! `reserve_extents` (libevent's layout of `evbuffer_reserve_space`, for the C layer) and
//! `has_buffer_references` (libevent refuses to reference referenced content again).

use evrs_buffer::{Error, EvBuffer};

#[test]
fn extents_are_whole_free_spaces_and_outlive_an_uncommitted_reservation() {
    let mut buf = EvBuffer::new();
    // The first chunk is handed out whole.
    let mut v = buf.reserve_extents(1024, 2).unwrap();
    assert_eq!(v.len(), 1);
    let (cp, cap) = (v[0].as_ptr() as usize, v[0].len());
    assert!(cap >= 1024);
    v[0][..512].fill(b'X');
    buf.commit_space(&[512]).unwrap();
    // A small request: all the room after the data, not just 32 bytes.
    let v = buf.reserve_extents(32, 2).unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!((v[0].as_ptr() as usize, v[0].len()), (cp + 512, cap - 512));
    // More than that room: a second, new chunk.
    let room = cap - 512;
    let mut v = buf.reserve_extents(room + 64, 2).unwrap();
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].len(), room);
    assert!(v[1].len() >= 64);
    let cp2 = v[1].as_ptr() as usize;
    v[0][0] = b'Z';
    buf.commit_space(&[1]).unwrap();
    // Nothing was committed to the new chunk: it is handed out again.
    let mut v = buf.reserve_extents(room - 1 + 64, 2).unwrap();
    assert_eq!(v.len(), 2);
    assert_eq!(v[1].as_ptr() as usize, cp2);
    v[1][..3].copy_from_slice(b"abc");
    buf.commit_space(&[0, 3]).unwrap();
    let mut want = vec![b'X'; 512];
    want.extend_from_slice(b"Zabc");
    assert_eq!(buf.to_vec(), want);
    assert_eq!(buf.chunks().count(), 2);
}

#[test]
fn running_out_of_extents_replaces_the_empty_chunks() {
    for data in [false, true] {
        let mut buf = EvBuffer::new();
        let mut v = buf.reserve_extents(128, 2).unwrap();
        let c1 = v[0].as_ptr() as usize;
        let mut sz = v[0].len();
        if data {
            v[0][0] = b'X';
            buf.commit_space(&[1]).unwrap();
        }
        let v = buf.reserve_extents(sz + 128, 2).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].as_ptr() as usize, c1 + usize::from(data));
        let c2 = v[1].as_ptr() as usize;
        sz = v.iter().map(|s| s.len()).sum();
        let v = buf.reserve_extents(sz + 128, 3).unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[1].as_ptr() as usize, c2);
        sz = v.iter().map(|s| s.len()).sum();
        // Two vectors cannot cover it: the empty chunks make way for one big one.
        let v = buf.reserve_extents(sz + 128, 2).unwrap();
        assert_eq!(v.len(), 1 + usize::from(data));
        assert!(v.iter().map(|s| s.len()).sum::<usize>() >= sz + 128);
        let lens: Vec<usize> = v.iter().map(|s| s.len()).collect();
        for s in v {
            s.fill(b'y');
        }
        let total: usize = lens.iter().sum();
        assert_eq!(buf.commit_space(&lens).unwrap(), total);
        assert_eq!(buf.len(), total + usize::from(data));
    }
}

#[test]
fn extents_after_other_changes_and_errors() {
    let mut buf = EvBuffer::new();
    assert!(matches!(
        buf.reserve_extents(10, 0),
        Err(Error::InvalidReservation)
    ));
    assert!(buf.reserve_extents(0, 2).unwrap().is_empty());
    let mut v = buf.reserve_extents(100, 2).unwrap();
    v[0][0] = b'a';
    // A change in between cancels the reservation and its empty chunk.
    buf.add(b"b").unwrap();
    assert!(matches!(
        buf.commit_space(&[1]),
        Err(Error::InvalidReservation)
    ));
    let mut v = buf.reserve_extents(10, 1).unwrap();
    v[0][0] = b'c';
    buf.commit_space(&[1]).unwrap();
    buf.add(b"d").unwrap();
    assert_eq!(buf.to_vec(), b"bcd");
    assert!(matches!(
        buf.reserve_extents(usize::MAX / 2, 3),
        Err(Error::NoMemory)
    ));
    assert_eq!(buf.to_vec(), b"bcd");
    buf.add(b"e").unwrap();
    assert_eq!(buf.to_vec(), b"bcde");
}

#[test]
fn referenced_content_is_marked_until_it_is_gone() {
    let (mut a, mut b, mut c) = (EvBuffer::new(), EvBuffer::new(), EvBuffer::new());
    a.add(b"If you have found the answer").unwrap();
    b.add_buffer_reference(&mut a).unwrap();
    assert!(b.has_buffer_references());
    assert!(!a.has_buffer_references());
    // Moving the chunks keeps the mark; the part of a chunk moved is unmarked (libevent
    // copies it), what stays behind keeps it.
    c.add_buffer(&mut b).unwrap();
    assert!(c.has_buffer_references() && !b.has_buffer_references());
    c.remove_buffer(&mut b, 3).unwrap();
    assert!(c.has_buffer_references() && !b.has_buffer_references());
    c.drain(c.len()).unwrap();
    assert!(!c.has_buffer_references());
    b.drain(b.len()).unwrap();
    b.add_buffer_reference(&mut a).unwrap();
    // A pullup copies the referenced bytes into the buffer's own memory.
    b.add(b"...").unwrap();
    assert!(b.has_buffer_references());
    assert_eq!(b.pullup_all().unwrap(), b"If you have found the answer...");
    assert!(!b.has_buffer_references());
}
