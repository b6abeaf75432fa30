//! Filtering bufferevents on every backend, over a real socket pair: transformed input and
//! output, NEED_MORE (a line filter), errors reported, the high watermark, CLOSE_ON_FREE; the
//! pump's rules: no reading or writing while disabled, input exactly at the high mark is
//! full, output beyond the underlying's write mark, an underlying write timeout.
mod util;
use evrs::buffer::EvBuffer;
use evrs::bufferevent::{BevCtx, BevEvents, BevOptions, BufferEvent, FilterResult, Flush};
use evrs::{EventBase, LoopFlags, What};
use std::cell::RefCell;
use std::io::{Read, Write};
use std::os::fd::IntoRawFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::{Duration, Instant};
use util::*;

fn run_until(b: &mut EventBase, what: &str, mut done: impl FnMut(&mut EventBase) -> bool) {
    let start = Instant::now();
    while !done(b) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for: {what}"
        );
        b.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn upper(src: &mut EvBuffer, dst: &mut EvBuffer, limit: Option<usize>, _: Flush) -> FilterResult {
    let n = limit.map_or(src.len(), |l| l.min(src.len()));
    let mut v = vec![0u8; n];
    let got = src.remove(&mut v).unwrap();
    v.truncate(got);
    v.make_ascii_uppercase();
    dst.add(&v).unwrap();
    FilterResult::Ok
}

/// Passes whole lines only.
fn lines(src: &mut EvBuffer, dst: &mut EvBuffer, _: Option<usize>, _: Flush) -> FilterResult {
    match src.readln(evrs::buffer::EolStyle::Lf, None).unwrap() {
        Some(line) => {
            dst.add(&line).unwrap();
            dst.add(b";").unwrap();
            FilterResult::Ok
        }
        None => FilterResult::NeedMore,
    }
}

fn filtered(b: &mut EventBase, opts: BevOptions) -> (BufferEvent, BufferEvent, UnixStream) {
    let (x, y) = pair();
    let under = b
        .bufferevent_socket(x.into_raw_fd(), BevOptions::CLOSE_ON_FREE)
        .unwrap();
    let f = b
        .bufferevent_filter(under, Some(upper), Some(upper), opts)
        .unwrap();
    (f, under, y)
}

fn read_some(s: &mut UnixStream, n: usize, b: &mut EventBase) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    s.set_nonblocking(true).unwrap();
    let start = Instant::now();
    while got.len() < n {
        assert!(start.elapsed() < Duration::from_secs(20), "read timed out");
        b.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
        if let Ok(k) = s.read(&mut buf) {
            if k == 0 {
                break;
            }
            got.extend_from_slice(&buf[..k]);
        }
    }
    got
}

on_every_backend! {
    fn a_filter_read_timeout_fires_when_the_peer_is_silent(m) {
        let mut b = base(m);
        let (f, _under, mut peer) = filtered(&mut b, BevOptions::CLOSE_ON_FREE);
        let t0 = Instant::now();
        let events = Rc::new(RefCell::new(Vec::new()));
        let e = events.clone();
        let got = Rc::new(RefCell::new(Vec::new()));
        let g = got.clone();
        b.bev_setcb(f, Some(move |bev: &mut BevCtx<'_>| {
            let v = bev.input().to_vec();
            bev.input().drain(v.len()).unwrap();
            g.borrow_mut().extend_from_slice(&v);
        }), None::<fn(&mut BevCtx<'_>)>, Some(move |_: &mut BevCtx<'_>, what| e.borrow_mut().push((what, t0.elapsed())))).unwrap();
        b.bev_enable(f, What::READ).unwrap();
        b.bev_set_timeouts(f, Some(Duration::from_millis(200)), None).unwrap();
        // Data at ~100 ms restarts the timer: it expires ~200 ms after that.
        std::thread::sleep(Duration::from_millis(100));
        peer.write_all(b"late").unwrap();
        run_until(&mut b, "read timeout", |_| !events.borrow().is_empty());
        let (what, at) = events.borrow()[0];
        assert_eq!(what, BevEvents::READING | BevEvents::TIMEOUT);
        assert_eq!(&*got.borrow(), b"LATE");
        assert!(at >= Duration::from_millis(290), "not restarted by the data: fired at {at:?}");
        assert!(!b.bev_get_enabled(f).unwrap().contains(What::READ));
        b.bev_free(f).unwrap();
    }

    fn input_and_output_are_filtered(m) {
        let mut b = base(m);
        let (f, under, mut peer) = filtered(&mut b, BevOptions::CLOSE_ON_FREE);
        assert_eq!(b.bev_underlying(f).unwrap(), Some(under));
        let seen = Rc::new(RefCell::new(Vec::new()));
        let s = seen.clone();
        b.bev_setcb(f, Some(move |bev: &mut BevCtx<'_>| {
            let v = bev.input().to_vec();
            bev.input().drain(v.len()).unwrap();
            s.borrow_mut().extend_from_slice(&v);
        }), None::<fn(&mut BevCtx<'_>)>, None::<fn(&mut BevCtx<'_>, BevEvents)>).unwrap();
        b.bev_enable(f, What::READ | What::WRITE).unwrap();
        peer.write_all(b"quiet words").unwrap();
        run_until(&mut b, "filtered input", |_| seen.borrow().len() == 11);
        assert_eq!(&*seen.borrow(), b"QUIET WORDS");
        b.bev_write(f, b"loud reply").unwrap();
        assert_eq!(read_some(&mut peer, 10, &mut b), b"LOUD REPLY");
        b.bev_free(f).unwrap();
        assert_eq!(b.bev_count(), 0, "CLOSE_ON_FREE frees the underlying");
    }

    fn need_more_waits_for_a_whole_line(m) {
        let mut b = base(m);
        let (x, mut peer) = pair();
        let under = b.bufferevent_socket(x.into_raw_fd(), BevOptions::CLOSE_ON_FREE).unwrap();
        let f = b.bufferevent_filter(under, Some(lines), None::<fn(&mut EvBuffer, &mut EvBuffer, Option<usize>, Flush) -> FilterResult>, BevOptions::CLOSE_ON_FREE).unwrap();
        let seen = Rc::new(RefCell::new(Vec::new()));
        let s = seen.clone();
        b.bev_setcb(f, Some(move |bev: &mut BevCtx<'_>| {
            let v = bev.input().to_vec();
            bev.input().drain(v.len()).unwrap();
            s.borrow_mut().push(v);
        }), None::<fn(&mut BevCtx<'_>)>, None::<fn(&mut BevCtx<'_>, BevEvents)>).unwrap();
        b.bev_enable(f, What::READ).unwrap();
        peer.write_all(b"one\ntw").unwrap();
        run_until(&mut b, "first line", |_| !seen.borrow().is_empty());
        for _ in 0..5 {
            b.run(LoopFlags::NONBLOCK).unwrap();
        }
        assert_eq!(seen.borrow().concat(), b"one;", "a partial line went through");
        peer.write_all(b"o\n").unwrap();
        run_until(&mut b, "second line", |_| seen.borrow().concat() == b"one;two;");
        b.bev_free(f).unwrap();
    }

    fn a_filter_error_reaches_the_event_callback(m) {
        let mut b = base(m);
        let (x, mut peer) = pair();
        let under = b.bufferevent_socket(x.into_raw_fd(), BevOptions::CLOSE_ON_FREE).unwrap();
        let f = b.bufferevent_filter(under, Some(|_: &mut EvBuffer, _: &mut EvBuffer, _: Option<usize>, _: Flush| FilterResult::Error), None::<fn(&mut EvBuffer, &mut EvBuffer, Option<usize>, Flush) -> FilterResult>, BevOptions::CLOSE_ON_FREE).unwrap();
        let events = Rc::new(RefCell::new(Vec::new()));
        let e = events.clone();
        b.bev_setcb(f, None::<fn(&mut BevCtx<'_>)>, None::<fn(&mut BevCtx<'_>)>, Some(move |_: &mut BevCtx<'_>, what| e.borrow_mut().push(what))).unwrap();
        b.bev_enable(f, What::READ).unwrap();
        peer.write_all(b"garbage").unwrap();
        run_until(&mut b, "error", |_| !events.borrow().is_empty());
        assert_eq!(events.borrow()[0], BevEvents::READING | BevEvents::ERROR);
        b.bev_free(f).unwrap();
    }

    /// An output filter that keeps failing is reported once and stops writing (it used to
    /// run again from the event callback's own sync, and again, until the stack overflowed).
    fn a_failing_output_filter_reports_once_and_stops_writing(m) {
        let mut b = base(m);
        let (x, _peer) = pair();
        let under = b.bufferevent_socket(x.into_raw_fd(), BevOptions::CLOSE_ON_FREE).unwrap();
        let f = b.bufferevent_filter(under, None::<fn(&mut EvBuffer, &mut EvBuffer, Option<usize>, Flush) -> FilterResult>, Some(|_: &mut EvBuffer, _: &mut EvBuffer, _: Option<usize>, _: Flush| FilterResult::Error), BevOptions::CLOSE_ON_FREE).unwrap();
        let events = Rc::new(RefCell::new(Vec::new()));
        let e = events.clone();
        b.bev_setcb(f, None::<fn(&mut BevCtx<'_>)>, None::<fn(&mut BevCtx<'_>)>, Some(move |_: &mut BevCtx<'_>, what| e.borrow_mut().push(what))).unwrap();
        b.bev_write(f, b"never encoded").unwrap();
        for _ in 0..10 {
            b.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
        }
        assert_eq!(*events.borrow(), [BevEvents::WRITING | BevEvents::ERROR]);
        assert!(!b.bev_get_enabled(f).unwrap().contains(What::WRITE));
        assert_eq!(b.bev_output(f).unwrap().len(), 13, "the output is kept");
        b.bev_free(f).unwrap();
    }

    fn the_underlying_eof_is_forwarded(m) {
        let mut b = base(m);
        let (f, _under, peer) = filtered(&mut b, BevOptions::CLOSE_ON_FREE);
        let events = Rc::new(RefCell::new(Vec::new()));
        let e = events.clone();
        b.bev_setcb(f, None::<fn(&mut BevCtx<'_>)>, None::<fn(&mut BevCtx<'_>)>, Some(move |_: &mut BevCtx<'_>, what| e.borrow_mut().push(what))).unwrap();
        b.bev_enable(f, What::READ).unwrap();
        drop(peer);
        run_until(&mut b, "EOF", |_| !events.borrow().is_empty());
        assert_eq!(events.borrow()[0], BevEvents::READING | BevEvents::EOF);
        // The EOF is reported once: the filter, still reading, must not re-arm the
        // underlying's reading (which would read the EOF again, forever — the loop never
        // went idle).
        for _ in 0..20 {
            b.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
        }
        assert_eq!(events.borrow().len(), 1, "the EOF was reported again: {:?}", events.borrow());
        // Enabling reading again reads again, and finds the EOF once more.
        b.bev_enable(f, What::READ).unwrap();
        run_until(&mut b, "EOF again", |_| events.borrow().len() == 2);
        for _ in 0..20 {
            b.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
        }
        assert_eq!(events.borrow().len(), 2, "{:?}", events.borrow());
        b.bev_free(f).unwrap();
    }

    fn an_underlying_reset_is_reported_once(m) {
        let mut b = base(m);
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (srv, _) = l.accept().unwrap();
        srv.set_nonblocking(true).unwrap();
        let under = b.bufferevent_socket(srv.into_raw_fd(), BevOptions::CLOSE_ON_FREE).unwrap();
        let f = b.bufferevent_filter(under, Some(upper), Some(upper), BevOptions::CLOSE_ON_FREE).unwrap();
        let events = Rc::new(RefCell::new(Vec::new()));
        let e = events.clone();
        b.bev_setcb(f, None::<fn(&mut BevCtx<'_>)>, None::<fn(&mut BevCtx<'_>)>, Some(move |_: &mut BevCtx<'_>, what| e.borrow_mut().push(what))).unwrap();
        b.bev_enable(f, What::READ).unwrap();
        // SO_LINGER 0: the close sends a reset, and the underlying's read fails.
        socket2::SockRef::from(&client).set_linger(Some(Duration::ZERO)).unwrap();
        drop(client);
        run_until(&mut b, "the reset", |_| !events.borrow().is_empty());
        assert_eq!(events.borrow()[0], BevEvents::READING | BevEvents::ERROR);
        // The filter leaves its underlying stopped after an error too: reading again would
        // find the EOF after the reset and report it as a second end.
        for _ in 0..20 {
            b.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
        }
        assert_eq!(events.borrow().len(), 1, "{:?}", events.borrow());
        b.bev_free(f).unwrap();
    }

    fn without_close_on_free_the_underlying_survives(m) {
        let mut b = base(m);
        let (f, under, _peer) = filtered(&mut b, BevOptions::empty());
        b.bev_free(f).unwrap();
        assert!(b.bev_fd(under).is_ok(), "the underlying was freed");
        b.bev_free(under).unwrap();
        assert_eq!(b.bev_count(), 0);
    }

    fn the_filters_high_watermark_stops_the_underlying_reading(m) {
        let mut b = base(m);
        let (f, under, mut peer) = filtered(&mut b, BevOptions::CLOSE_ON_FREE);
        b.bev_setwatermark(f, What::READ, 0, 4).unwrap();
        b.bev_enable(f, What::READ).unwrap();
        peer.write_all(b"abcdefghij").unwrap();
        run_until(&mut b, "4 bytes", |b| b.bev_input(f).unwrap().len() == 4);
        for _ in 0..5 {
            b.run(LoopFlags::NONBLOCK).unwrap();
        }
        assert_eq!(b.bev_input(f).unwrap().to_vec(), b"ABCD");
        assert!(!b.bev_get_enabled(under).unwrap().contains(What::READ), "underlying still reads");
        b.bev_input(f).unwrap().drain(4).unwrap();
        run_until(&mut b, "resumed", |b| b.bev_input(f).unwrap().len() == 4);
        assert_eq!(b.bev_input(f).unwrap().to_vec(), b"EFGH");
        b.bev_free(f).unwrap();
    }

    /// The underlying's write callback encodes more of the filter's output each time the
    /// underlying drains: with a small write high watermark on the underlying, only 100 bytes
    /// are encoded at a time, and the rest must still go out.
    fn output_beyond_the_underlyings_write_high_watermark_goes_out(m) {
        let mut b = base(m);
        let (f, under, mut peer) = filtered(&mut b, BevOptions::CLOSE_ON_FREE);
        b.bev_setwatermark(under, What::WRITE, 0, 100).unwrap();
        let data: Vec<u8> = (0..64 * 1024).map(|i| b"abcdefghij"[i % 10]).collect();
        b.bev_write(f, &data).unwrap();
        assert!(b.bev_output(under).unwrap().len() <= 100, "encoded past the underlying's mark");
        let got = read_some(&mut peer, data.len(), &mut b);
        assert_eq!(got, data.to_ascii_uppercase());
        b.bev_free(f).unwrap();
    }

    /// A write timeout of the underlying stops only its writing: the filter keeps reading
    /// (here: the underlying, stopped at the filter's high watermark, starts again when the
    /// filter's input drains).
    fn an_underlying_write_timeout_leaves_the_filter_reading(m) {
        let mut b = base(m);
        let (f, under, mut peer) = filtered(&mut b, BevOptions::CLOSE_ON_FREE);
        let events = Rc::new(RefCell::new(Vec::new()));
        let e = events.clone();
        b.bev_setcb(f, None::<fn(&mut BevCtx<'_>)>, None::<fn(&mut BevCtx<'_>)>, Some(move |_: &mut BevCtx<'_>, what| e.borrow_mut().push(what))).unwrap();
        b.bev_setwatermark(f, What::READ, 0, 4).unwrap();
        b.bev_enable(f, What::READ).unwrap();
        b.bev_set_timeouts(under, None, Some(Duration::from_millis(100))).unwrap();
        // The peer does not read: the socket fills and the underlying's write times out.
        b.bev_write(f, &vec![b'x'; 8 << 20]).unwrap();
        run_until(&mut b, "write timeout", |_| !events.borrow().is_empty());
        assert_eq!(&*events.borrow(), &[BevEvents::WRITING | BevEvents::TIMEOUT]);
        peer.write_all(b"abcdefgh").unwrap();
        run_until(&mut b, "4 bytes", |b| b.bev_input(f).unwrap().len() == 4);
        assert!(!b.bev_get_enabled(under).unwrap().contains(What::READ));
        b.bev_input(f).unwrap().drain(4).unwrap();
        run_until(&mut b, "the rest after the drain", |b| b.bev_input(f).unwrap().len() == 4);
        assert_eq!(b.bev_input(f).unwrap().to_vec(), b"EFGH");
        assert_eq!(events.borrow().len(), 1, "{:?}", events.borrow());
        b.bev_free(f).unwrap();
    }

    /// With the filter's reading disabled its underlying does not read: the data waits in
    /// the socket until reading is enabled again.
    fn a_filter_not_reading_leaves_the_data_in_the_socket(m) {
        let mut b = base(m);
        let (f, under, mut peer) = filtered(&mut b, BevOptions::CLOSE_ON_FREE);
        let reads = Rc::new(RefCell::new(0));
        let r = reads.clone();
        b.bev_setcb(f, Some(move |_: &mut BevCtx<'_>| *r.borrow_mut() += 1), None::<fn(&mut BevCtx<'_>)>, None::<fn(&mut BevCtx<'_>, BevEvents)>).unwrap();
        b.bev_enable(f, What::READ).unwrap();
        assert!(b.bev_get_enabled(under).unwrap().contains(What::READ));
        b.bev_disable(f, What::READ).unwrap();
        assert!(!b.bev_get_enabled(under).unwrap().contains(What::READ), "the underlying still reads");
        peer.write_all(b"hello").unwrap();
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(200) {
            b.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(*reads.borrow(), 0, "the read callback ran");
        assert_eq!(b.bev_input(f).unwrap().len(), 0);
        assert_eq!(b.bev_input(under).unwrap().len(), 0, "the underlying read");
        b.bev_enable(f, What::READ).unwrap();
        run_until(&mut b, "data after enabling", |b| b.bev_input(f).unwrap().len() == 5);
        assert_eq!(b.bev_input(f).unwrap().to_vec(), b"HELLO");
        b.bev_free(f).unwrap();
    }

    /// Input exactly at the high watermark is full: a mark lowered to what the input holds
    /// stops the underlying reading, until the input drains.
    fn input_exactly_at_the_high_watermark_stops_the_underlying(m) {
        let mut b = base(m);
        let (f, under, mut peer) = filtered(&mut b, BevOptions::CLOSE_ON_FREE);
        b.bev_enable(f, What::READ).unwrap();
        peer.write_all(b"abcdefghij").unwrap();
        run_until(&mut b, "10 bytes", |b| b.bev_input(f).unwrap().len() == 10);
        assert!(b.bev_get_enabled(under).unwrap().contains(What::READ));
        b.bev_setwatermark(f, What::READ, 0, 10).unwrap();
        assert!(!b.bev_get_enabled(under).unwrap().contains(What::READ), "the underlying still reads");
        peer.write_all(b"klmno").unwrap();
        for _ in 0..20 {
            b.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(b.bev_input(f).unwrap().len(), 10);
        assert_eq!(b.bev_input(under).unwrap().len(), 0, "the underlying read at the mark");
        b.bev_input(f).unwrap().drain(10).unwrap();
        run_until(&mut b, "the rest after the drain", |b| b.bev_input(f).unwrap().len() == 5);
        assert_eq!(b.bev_input(f).unwrap().to_vec(), b"KLMNO");
        b.bev_free(f).unwrap();
    }

    /// With the filter's writing disabled its output stays: nothing reaches the peer until
    /// writing is enabled again.
    fn a_filter_not_writing_keeps_its_output(m) {
        let mut b = base(m);
        let (f, under, mut peer) = filtered(&mut b, BevOptions::CLOSE_ON_FREE);
        b.bev_disable(f, What::WRITE).unwrap();
        b.bev_write(f, b"quiet").unwrap();
        peer.set_nonblocking(true).unwrap();
        let start = Instant::now();
        let mut buf = [0u8; 16];
        while start.elapsed() < Duration::from_millis(200) {
            b.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
            assert!(peer.read(&mut buf).is_err(), "the output went out with WRITE disabled");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(b.bev_output(f).unwrap().len(), 5);
        assert_eq!(b.bev_output(under).unwrap().len(), 0);
        b.bev_enable(f, What::WRITE).unwrap();
        assert_eq!(read_some(&mut peer, 5, &mut b), b"QUIET");
        b.bev_free(f).unwrap();
    }
}
