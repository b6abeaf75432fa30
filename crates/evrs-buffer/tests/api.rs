//! The libevent-compatibility surface added last: borrowed line reading,
//! old-style callbacks, buffer flags, raw foreign references, and what bad
//! input does to each call.

mod util;
use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use util::chunked;

use evrs_buffer::{BufferFlags, End, EolStyle, Error, EvBuffer, MAX_READ_LIMIT};

#[test]
fn readln_with_lends_lines_in_place_and_across_chunks() {
    let mut buf = chunked(&[b"one\r\ntw", b"o\r", b"\nthree"]);
    let mut seen = Vec::new();
    while let Some(n) = buf
        .readln_with(EolStyle::CrlfStrict, None, |l| {
            seen.push(l.to_vec());
            l.len()
        })
        .unwrap()
    {
        assert!(n <= 3);
    }
    assert_eq!(seen, [b"one".to_vec(), b"two".to_vec()]);
    assert_eq!(buf.to_vec(), b"three");
}

#[test]
fn readln_with_keeps_every_readln_rule() {
    // Limit: a long line fails without consuming and without calling f.
    let mut buf = EvBuffer::new();
    buf.add(b"0123456789\nrest").unwrap();
    let r = buf.readln_with(EolStyle::Lf, Some(9), |_| panic!("not called"));
    assert!(matches!(r, Err(Error::LineTooLong { limit: 9 })));
    assert_eq!(buf.len(), 15);
    // No line yet: f is not called.
    let mut tail = chunked(&[b"abc\r"]);
    assert_eq!(
        tail.readln_with(EolStyle::Crlf, Some(3), |_| panic!("not called"))
            .unwrap(),
        None
    );
    // Frozen start.
    buf.freeze(End::Start);
    assert!(matches!(
        buf.readln_with(EolStyle::Lf, None, |_| ()),
        Err(Error::Frozen(End::Start))
    ));
    let mut v = Vec::new();
    assert!(matches!(
        buf.readln_into(EolStyle::Lf, None, &mut v),
        Err(Error::Frozen(End::Start))
    ));
    assert!(v.is_empty());
    buf.unfreeze(End::Start);
    // ANY swallows the whole CR/LF run, also when it spans chunks.
    let mut any = chunked(&[b"a\r", b"\n\r\nb\n"]);
    assert_eq!(
        any.readln_with(EolStyle::Any, None, |l| l.to_vec())
            .unwrap(),
        Some(b"a".to_vec())
    );
    assert_eq!(any.to_vec(), b"b\n");
}

#[test]
fn readln_with_runs_callbacks_after_the_closure() {
    let order = Arc::new(Mutex::new(Vec::new()));
    let o = Arc::clone(&order);
    let mut buf = EvBuffer::new();
    buf.add(b"hi\nthere").unwrap();
    buf.add_cb(move |b, info| {
        o.lock()
            .unwrap()
            .push(format!("cb -{} -> {}", info.n_deleted, b.len()))
    });
    let o = Arc::clone(&order);
    buf.readln_with(EolStyle::Lf, None, |l| {
        o.lock()
            .unwrap()
            .push(format!("line {}", String::from_utf8_lossy(l)))
    })
    .unwrap();
    assert_eq!(*order.lock().unwrap(), ["line hi", "cb -3 -> 5"]);
}

#[test]
fn readln_with_panicking_closure_consumes_nothing() {
    let mut buf = EvBuffer::new();
    buf.add(b"x\ny\n").unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = buf.readln_with(EolStyle::Lf, None, |_| panic!("boom"));
    }));
    assert!(r.is_err());
    assert_eq!(buf.to_vec(), b"x\ny\n");
}

#[test]
fn readln_into_appends_and_reuses_the_vec() {
    let mut buf = chunked(&[b"ab\n", b"c", b"d\n\n"]);
    let mut line = Vec::with_capacity(16);
    assert_eq!(
        buf.readln_into(EolStyle::Lf, Some(8), &mut line).unwrap(),
        Some(2)
    );
    assert_eq!(line, b"ab");
    line.clear();
    assert_eq!(
        buf.readln_into(EolStyle::Lf, Some(8), &mut line).unwrap(),
        Some(2)
    );
    assert_eq!(line, b"cd");
    assert_eq!(
        buf.readln_into(EolStyle::Lf, Some(8), &mut line).unwrap(),
        Some(0)
    );
    assert_eq!(line, b"cd");
    assert_eq!(
        buf.readln_into(EolStyle::Lf, Some(8), &mut line).unwrap(),
        None
    );
}

#[test]
fn set_cb_replaces_all_callbacks_with_an_old_style_one() {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let mut buf = EvBuffer::new();
    let hit = Arc::new(AtomicUsize::new(0));
    let h = Arc::clone(&hit);
    buf.add_cb(move |_, _| {
        h.fetch_add(1, Ordering::SeqCst);
    });
    let c = Arc::clone(&calls);
    let id = buf.set_cb(move |b, old, new| {
        assert_eq!(b.len(), new);
        c.lock().unwrap().push((old, new));
    });
    buf.add(b"abcdef").unwrap();
    buf.drain(4).unwrap();
    let mut other = EvBuffer::new();
    other.add(b"xyz").unwrap();
    buf.add_buffer(&mut other).unwrap();
    assert_eq!(hit.load(Ordering::SeqCst), 0);
    assert_eq!(*calls.lock().unwrap(), [(0, 6), (6, 2), (2, 5)]);
    // The id works like any other.
    assert_eq!(buf.is_cb_enabled(id), Some(true));
    assert!(buf.disable_cb(id));
    assert_eq!(buf.is_cb_enabled(id), Some(false));
    buf.add(b"!").unwrap();
    assert_eq!(calls.lock().unwrap().len(), 3);
    // A second set_cb replaces the first; clear_cbs removes it.
    let c2 = Arc::new(AtomicUsize::new(0));
    let c3 = Arc::clone(&c2);
    buf.set_cb(move |_, _, _| {
        c3.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(buf.is_cb_enabled(id), None);
    buf.add(b"?").unwrap();
    assert_eq!(c2.load(Ordering::SeqCst), 1);
    buf.clear_cbs();
    buf.add(b"?").unwrap();
    assert_eq!(c2.load(Ordering::SeqCst), 1);
}

#[test]
fn set_cb_in_deferred_mode_reports_first_and_last_length() {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let c = Arc::clone(&calls);
    let mut buf = EvBuffer::new();
    buf.add(b"12345").unwrap();
    buf.set_cb(move |_, old, new| c.lock().unwrap().push((old, new)));
    buf.defer_callbacks(Some(Box::new(|| {})));
    buf.add(b"678").unwrap();
    buf.drain(6).unwrap();
    assert!(calls.lock().unwrap().is_empty());
    buf.run_deferred_callbacks();
    assert_eq!(*calls.lock().unwrap(), [(5, 2)]);
}

#[test]
fn buffer_flags() {
    let mut buf = EvBuffer::new();
    assert_eq!(buf.flags(), BufferFlags::empty());
    buf.set_flags(BufferFlags::DRAINS_TO_FD);
    assert!(buf.drains_to_fd());
    assert_eq!(buf.flags().bits(), 1);
    buf.set_flags(BufferFlags::empty());
    assert!(buf.drains_to_fd());
    buf.clear_flags(BufferFlags::empty());
    assert!(buf.drains_to_fd());
    buf.clear_flags(BufferFlags::DRAINS_TO_FD | BufferFlags::empty());
    assert!(!buf.drains_to_fd());
    assert_eq!(BufferFlags::from_bits(0), Some(BufferFlags::empty()));
    assert_eq!(BufferFlags::from_bits(1 << 40), None);
}

static CLEANED: Mutex<Vec<(usize, usize, usize)>> = Mutex::new(Vec::new());

unsafe extern "C" fn record_cleanup(data: *const c_void, len: usize, extra: *mut c_void) {
    CLEANED
        .lock()
        .unwrap()
        .push((data as usize, len, extra as usize));
}

#[test]
fn raw_reference_runs_cleanup_once_after_last_use() {
    static DATA: [u8; 11] = *b"hello world";
    let extra = 0x1234usize as *mut c_void;
    let mut a = EvBuffer::new();
    // SAFETY: static data, readable from any thread; the cleanup only
    // records its arguments.
    unsafe {
        a.add_reference_raw(DATA.as_ptr(), DATA.len(), Some(record_cleanup), extra)
            .unwrap()
    };
    let mut b = EvBuffer::new();
    b.add_buffer_reference(&mut a).unwrap();
    let word = a.remove_bytes(5).unwrap();
    a.drain(usize::MAX).unwrap();
    drop(a);
    let mine = |v: &Vec<(usize, usize, usize)>| {
        v.iter()
            .filter(|e| e.0 == DATA.as_ptr() as usize)
            .copied()
            .collect::<Vec<_>>()
    };
    assert!(mine(&CLEANED.lock().unwrap()).is_empty());
    assert_eq!(&word[..], b"hello");
    drop(b);
    drop(word);
    assert_eq!(
        mine(&CLEANED.lock().unwrap()),
        [(DATA.as_ptr() as usize, 11, 0x1234)]
    );
}

#[test]
fn raw_reference_bad_input_fails_without_cleanup() {
    static DATA: [u8; 3] = *b"abc";
    let mut buf = EvBuffer::new();
    let count = |p: *const u8| {
        CLEANED
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.0 == p as usize)
            .count()
    };
    buf.freeze(End::End);
    // SAFETY: static data; the call fails anyway.
    let r = unsafe {
        buf.add_reference_raw(DATA.as_ptr(), 3, Some(record_cleanup), std::ptr::null_mut())
    };
    assert!(matches!(r, Err(Error::Frozen(End::End))));
    buf.unfreeze(End::End);
    // SAFETY: rejected before the pointer is used.
    let r = unsafe {
        buf.add_reference_raw(
            std::ptr::null(),
            3,
            Some(record_cleanup),
            std::ptr::null_mut(),
        )
    };
    assert!(matches!(r, Err(Error::OutOfRange)));
    // SAFETY: rejected before the pointer is used.
    let r = unsafe {
        buf.add_reference_raw(
            DATA.as_ptr(),
            usize::MAX,
            Some(record_cleanup),
            std::ptr::null_mut(),
        )
    };
    assert!(matches!(r, Err(Error::OutOfRange)));
    assert_eq!(count(DATA.as_ptr()), 0);
    assert!(buf.is_empty());
    // Empty: nothing added, cleanup at once; null is fine when empty.
    // SAFETY: zero bytes are read.
    unsafe {
        buf.add_reference_raw(DATA.as_ptr(), 0, Some(record_cleanup), std::ptr::null_mut())
            .unwrap();
        buf.add_reference_raw(std::ptr::null(), 0, None, std::ptr::null_mut())
            .unwrap();
    }
    assert_eq!(count(DATA.as_ptr()), 1);
    assert!(buf.is_empty());
}

#[test]
fn bad_sizes_are_errors_not_aborts() {
    let mut buf = EvBuffer::new();
    buf.add(b"keep").unwrap();
    assert!(matches!(buf.expand(usize::MAX), Err(Error::NoMemory)));
    assert!(matches!(
        buf.reserve_space(usize::MAX, 1),
        Err(Error::NoMemory)
    ));
    // Sizes the allocator itself refuses (Miri would stop at the attempt).
    if !cfg!(miri) {
        assert!(matches!(
            buf.expand(isize::MAX as usize),
            Err(Error::NoMemory)
        ));
        assert!(matches!(
            buf.reserve_space(usize::MAX / 2, 3),
            Err(Error::NoMemory)
        ));
    }
    // Nothing changed and the buffer still works, reservations included.
    assert_eq!(buf.to_vec(), b"keep");
    assert!(matches!(
        buf.commit_space(&[1]),
        Err(Error::InvalidReservation)
    ));
    let mut v = buf.reserve_space(3, 1).unwrap();
    v[0].copy_from_slice(b"!!!");
    assert_eq!(buf.commit_space(&[3]).unwrap(), 3);
    buf.expand(100).unwrap();
    buf.add(b"?").unwrap();
    assert_eq!(buf.to_vec(), b"keep!!!?");
    let e: std::io::Error = Error::NoMemory.into();
    assert_eq!(e.kind(), std::io::ErrorKind::OutOfMemory);
    // The read cap.
    assert!(matches!(
        buf.set_max_read(MAX_READ_LIMIT + 1),
        Err(Error::OutOfRange)
    ));
    assert_eq!(buf.max_read(), evrs_buffer::DEFAULT_MAX_READ);
    buf.set_max_read(MAX_READ_LIMIT).unwrap();
    buf.set_max_read(0).unwrap();
    assert_eq!(buf.max_read(), 1);
}

#[test]
fn oversized_removals_take_what_there_is() {
    let mut buf = chunked(&[b"abc", b"def"]);
    let mut out = [0u8; 100];
    assert_eq!(buf.copyout(&mut out).unwrap(), 6);
    assert_eq!(buf.remove(&mut out[..4]).unwrap(), 4);
    assert_eq!(&out[..4], b"abcd");
    let mut dst = EvBuffer::new();
    assert_eq!(buf.remove_buffer(&mut dst, usize::MAX).unwrap(), 2);
    assert_eq!(dst.to_vec(), b"ef");
    assert_eq!(dst.remove_bytes(usize::MAX).unwrap(), &b"ef"[..]);
    assert_eq!(buf.drain(usize::MAX).unwrap(), 0);
    assert_eq!(buf.remove(&mut out).unwrap(), 0);
    assert!(matches!(buf.pullup(1), Err(Error::OutOfRange)));
}

#[test]
fn positions_out_of_range_everywhere() {
    let mut buf = chunked(&[b"abc", b"def"]);
    let end = buf.ptr_at(6).unwrap();
    assert!(matches!(buf.ptr_at(7), Err(Error::OutOfRange)));
    let mut p = buf.ptr_at(5).unwrap();
    assert!(matches!(
        buf.ptr_add(&mut p, usize::MAX),
        Err(Error::OutOfRange)
    ));
    assert_eq!(p.pos(), 5);
    // At the end: valid, finds nothing, copies nothing.
    assert_eq!(buf.search(b"f", Some(&end)).unwrap(), None);
    assert_eq!(buf.search_eol(Some(&end), EolStyle::Any).unwrap(), None);
    assert_eq!(buf.copyout_from(&end, &mut [0u8; 4]).unwrap(), 0);
    assert!(buf.peek(None, Some(&end)).unwrap().is_empty());
    // Stale positions past the new end are refused by every user.
    buf.drain(3).unwrap();
    let mut out = [0u8; 2];
    assert!(matches!(
        buf.search(b"e", Some(&end)),
        Err(Error::OutOfRange)
    ));
    assert!(matches!(
        buf.search_range(b"e", Some(&end), None),
        Err(Error::OutOfRange)
    ));
    assert!(matches!(
        buf.search_eol(Some(&end), EolStyle::Lf),
        Err(Error::OutOfRange)
    ));
    assert!(matches!(
        buf.copyout_from(&end, &mut out),
        Err(Error::OutOfRange)
    ));
    assert!(matches!(
        buf.peek(Some(1), Some(&end)),
        Err(Error::OutOfRange)
    ));
    let mut stale = end;
    assert!(matches!(buf.ptr_add(&mut stale, 0), Err(Error::OutOfRange)));
    // A position from another buffer is re-resolved by offset.
    let other = chunked(&[b"zz"]);
    let q = other.ptr_at(1).unwrap();
    assert_eq!(buf.copyout_from(&q, &mut out).unwrap(), 2);
    assert_eq!(&out, b"ef");
    // An end before the start finds nothing.
    let s = buf.ptr_at(2).unwrap();
    let e = buf.ptr_at(1).unwrap();
    assert_eq!(buf.search_range(b"f", Some(&s), Some(&e)).unwrap(), None);
}
