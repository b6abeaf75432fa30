//! Socket bufferevents on every backend, over real AF_UNIX socket pairs and TCP on
//! 127.0.0.1: reading, writing, watermarks, timeouts, connect, EOF and errors, freeing
//! from callbacks, deferred callbacks, stale handles.
mod util;
use evrs::bufferevent::{BevCtx, BevEvents, BevHandler, BevOptions, BufferEvent, Family, Flush};
use evrs::{EventBase, LoopFlags, What};
use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::os::fd::IntoRawFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::{Duration, Instant};
use util::*;

/// Runs the loop until `done()` or a generous bound passes (then fails).
fn run_until(b: &mut EventBase, what: &str, mut done: impl FnMut(&mut EventBase) -> bool) {
    let start = Instant::now();
    while !done(b) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for: {what}"
        );
        b.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
        if !done(b) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Echoes whatever arrives, and records the events it was told of.
struct Echo {
    events: Rc<RefCell<Vec<BevEvents>>>,
}

impl BevHandler for Echo {
    fn read(&mut self, bev: &mut BevCtx<'_>) {
        let (input, output) = bev.buffers();
        output.add_buffer(input).unwrap();
    }
    fn event(&mut self, _bev: &mut BevCtx<'_>, what: BevEvents) {
        self.events.borrow_mut().push(what);
    }
}

fn read_exactly(s: &mut UnixStream, n: usize, b: &mut EventBase) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let start = Instant::now();
    while got.len() < n {
        assert!(start.elapsed() < Duration::from_secs(20), "read timed out");
        b.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => got.extend_from_slice(&buf[..k]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(e) => panic!("{e}"),
        }
    }
    got
}

on_every_backend! {
    fn echo_through_a_handler(m) {
        let mut b = base(m);
        let events = Rc::new(RefCell::new(Vec::new()));
        let (bev, mut peer) = bev_pair(&mut b, BevOptions::empty());
        b.bev_set_handler(bev, Echo { events: events.clone() }).unwrap();
        b.bev_enable(bev, What::READ | What::WRITE).unwrap();
        peer.write_all(b"hello, bufferevent").unwrap();
        let back = read_exactly(&mut peer, 18, &mut b);
        assert_eq!(back, b"hello, bufferevent");
        // Idle again, the connection holds no buffer memory: it went back to the base's pool.
        assert!(!b.bev_input(bev).unwrap().holds_memory(), "the idle input kept memory");
        assert!(!b.bev_output(bev).unwrap().holds_memory(), "the idle output kept memory");
        // EOF from the peer reaches the event callback as READING|EOF.
        drop(peer);
        run_until(&mut b, "EOF", |_| !events.borrow().is_empty());
        assert_eq!(events.borrow()[0], BevEvents::READING | BevEvents::EOF);
        b.bev_free(bev).unwrap();
        assert_eq!(b.bev_count(), 0);
    }

    fn reading_is_off_until_enabled_and_stops_when_disabled(m) {
        let mut b = base(m);
        let (bev, mut peer) = bev_pair(&mut b, BevOptions::empty());
        let reads = Rc::new(Cell::new(0));
        let r = reads.clone();
        b.bev_setcb(bev, Some(move |_: &mut BevCtx<'_>| r.set(r.get() + 1)), None::<fn(&mut BevCtx<'_>)>, None::<fn(&mut BevCtx<'_>, BevEvents)>).unwrap();
        assert_eq!(b.bev_get_enabled(bev).unwrap(), What::WRITE, "libevent's default");
        peer.write_all(b"x").unwrap();
        b.run(LoopFlags::NONBLOCK).unwrap();
        assert_eq!(reads.get(), 0, "read without READ enabled");
        b.bev_enable(bev, What::READ).unwrap();
        run_until(&mut b, "first read", |_| reads.get() == 1);
        b.bev_disable(bev, What::READ).unwrap();
        peer.write_all(b"y").unwrap();
        b.run(LoopFlags::NONBLOCK).unwrap();
        assert_eq!(reads.get(), 1, "read while disabled");
        let mut buf = [0u8; 8];
        assert_eq!(b.bev_read(bev, &mut buf).unwrap(), 1, "the first byte waits in the input");
        b.bev_free(bev).unwrap();
    }

    fn the_high_watermark_suspends_reading_until_the_input_drains(m) {
        let mut b = base(m);
        let (bev, mut peer) = bev_pair(&mut b, BevOptions::empty());
        let seen = Rc::new(RefCell::new(Vec::new()));
        let s = seen.clone();
        // The callback does not drain: the input fills to the high mark and stops there.
        b.bev_setcb(bev, Some(move |bev: &mut BevCtx<'_>| s.borrow_mut().push(bev.input().len())), None::<fn(&mut BevCtx<'_>)>, None::<fn(&mut BevCtx<'_>, BevEvents)>).unwrap();
        b.bev_setwatermark(bev, What::READ, 0, 4).unwrap();
        b.bev_enable(bev, What::READ).unwrap();
        peer.write_all(b"0123456789").unwrap();
        run_until(&mut b, "input at the high mark", |_| seen.borrow().last() == Some(&4));
        for _ in 0..5 {
            b.run(LoopFlags::NONBLOCK).unwrap();
        }
        assert_eq!(b.bev_input(bev).unwrap().len(), 4, "read past the high watermark");
        // Draining below the mark resumes reading: the next four bytes, then the last two.
        b.bev_input(bev).unwrap().drain(4).unwrap();
        run_until(&mut b, "reading resumed", |b| seen.borrow().len() >= 2 && b_input_len(b, bev) == 4);
        assert_eq!(b.bev_input(bev).unwrap().to_vec(), b"4567");
        b.bev_input(bev).unwrap().drain(4).unwrap();
        run_until(&mut b, "the rest", |b| b_input_len(b, bev) == 2);
        assert_eq!(b.bev_input(bev).unwrap().to_vec(), b"89");
        assert!(seen.borrow().iter().all(|&n| n <= 4), "over the high mark: {:?}", seen.borrow());
        b.bev_free(bev).unwrap();
    }

    fn the_read_low_watermark_waits_for_enough_bytes(m) {
        let mut b = base(m);
        let (bev, mut peer) = bev_pair(&mut b, BevOptions::empty());
        let seen = Rc::new(RefCell::new(Vec::new()));
        let s = seen.clone();
        b.bev_setcb(bev, Some(move |bev: &mut BevCtx<'_>| s.borrow_mut().push(bev.input().len())), None::<fn(&mut BevCtx<'_>)>, None::<fn(&mut BevCtx<'_>, BevEvents)>).unwrap();
        b.bev_setwatermark(bev, What::READ, 5, 0).unwrap();
        b.bev_enable(bev, What::READ).unwrap();
        peer.write_all(b"abc").unwrap();
        for _ in 0..5 {
            b.run(LoopFlags::NONBLOCK).unwrap();
        }
        assert!(seen.borrow().is_empty(), "read callback below the low watermark");
        peer.write_all(b"de").unwrap();
        run_until(&mut b, "5 bytes", |_| !seen.borrow().is_empty());
        assert_eq!(seen.borrow()[0], 5);
        b.bev_free(bev).unwrap();
    }

    fn inverted_watermarks_are_refused(m) {
        let mut b = base(m);
        let (bev, _peer) = bev_pair(&mut b, BevOptions::empty());
        let e = b.bev_setwatermark(bev, What::READ, 10, 5).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        assert_eq!(b.bev_getwatermark(bev, What::READ).unwrap(), (0, 0), "unchanged");
        b.bev_setwatermark(bev, What::WRITE, 3, 0).unwrap();
        assert_eq!(b.bev_getwatermark(bev, What::WRITE).unwrap(), (3, 0));
        b.bev_free(bev).unwrap();
    }

    fn large_output_drains_under_a_tiny_send_buffer_then_the_write_callback_runs(m) {
        let mut b = base(m);
        let (x, mut peer) = pair();
        let sz: libc::c_int = 4096;
        // SAFETY: a valid c_int option value of its size.
        unsafe {
            libc::setsockopt(fd(&x), libc::SOL_SOCKET, libc::SO_SNDBUF, (&sz as *const libc::c_int).cast(), 4);
        }
        let bev = b.bufferevent_socket(x.into_raw_fd(), BevOptions::CLOSE_ON_FREE).unwrap();
        let writes = Rc::new(Cell::new(0));
        let w = writes.clone();
        b.bev_setcb(bev, None::<fn(&mut BevCtx<'_>)>, Some(move |_: &mut BevCtx<'_>| w.set(w.get() + 1)), None::<fn(&mut BevCtx<'_>, BevEvents)>).unwrap();
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        b.bev_write(bev, &data).unwrap();
        let got = read_exactly(&mut peer, data.len(), &mut b);
        assert_eq!(got.len(), data.len());
        assert!(got == data, "bytes arrived out of order or changed");
        run_until(&mut b, "write callback", |_| writes.get() > 0);
        assert_eq!(writes.get(), 1, "one write callback, when the output drained");
        b.bev_free(bev).unwrap();
    }

    fn a_write_goes_out_at_once_and_its_callback_runs_from_the_loop(m) {
        let mut b = base(m);
        let (bev, mut peer) = bev_pair(&mut b, BevOptions::empty());
        let writes = Rc::new(Cell::new(0));
        let w = writes.clone();
        b.bev_setcb(bev, None::<fn(&mut BevCtx<'_>)>, Some(move |_: &mut BevCtx<'_>| w.set(w.get() + 1)), None::<fn(&mut BevCtx<'_>, BevEvents)>).unwrap();
        b.bev_write(bev, b"no loop needed").unwrap();
        // Sent by bev_write itself (the socket had room), not at the next writability.
        let mut buf = [0u8; 64];
        assert_eq!(peer.read(&mut buf).unwrap(), 14);
        assert_eq!(&buf[..14], b"no loop needed");
        assert!(b.bev_output(bev).unwrap().is_empty());
        // The write callback is not run inside bev_write, but by the loop.
        assert_eq!(writes.get(), 0);
        b.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
        assert_eq!(writes.get(), 1, "one write callback for the drained output");
        for _ in 0..5 {
            b.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
        }
        assert_eq!(writes.get(), 1, "and only one");
        b.bev_free(bev).unwrap();
    }

    /// A handler that says it has no write callback is not called for drained output (the
    /// call is skipped, not made and ignored: this `write` would panic).
    fn a_handler_without_a_write_callback_is_not_called_for_it(m) {
        struct NoWrite(Rc<Cell<usize>>);
        impl BevHandler for NoWrite {
            fn read(&mut self, bev: &mut BevCtx<'_>) {
                self.0.set(self.0.get() + 1);
                let (input, output) = bev.buffers();
                let _ = output.add_buffer(input);
            }
            fn write(&mut self, _bev: &mut BevCtx<'_>) {
                panic!("write called although wants_write is false");
            }
            fn wants_write(&self) -> bool {
                false
            }
        }
        let mut b = base(m);
        let (bev, mut peer) = bev_pair(&mut b, BevOptions::empty());
        let reads = Rc::new(Cell::new(0));
        b.bev_set_handler(bev, NoWrite(reads.clone())).unwrap();
        b.bev_enable(bev, What::READ | What::WRITE).unwrap();
        for msg in [&b"one"[..], b"two", b"three"] {
            peer.write_all(msg).unwrap();
            assert_eq!(read_exactly(&mut peer, msg.len(), &mut b), msg);
        }
        b.bev_write(bev, b"direct").unwrap();
        assert_eq!(read_exactly(&mut peer, 6, &mut b), b"direct");
        assert_eq!(reads.get(), 3);
        b.bev_free(bev).unwrap();
    }

    fn output_added_through_the_guard_is_sent(m) {
        let mut b = base(m);
        let (bev, mut peer) = bev_pair(&mut b, BevOptions::empty());
        b.bev_output(bev).unwrap().add(b"via the guard").unwrap();
        assert_eq!(read_exactly(&mut peer, 13, &mut b), b"via the guard");
        b.bev_free(bev).unwrap();
    }

    fn a_callback_frees_its_own_bufferevent(m) {
        let mut b = base(m);
        let (bev, mut peer) = bev_pair(&mut b, BevOptions::empty());
        let fdn = b.bev_fd(bev).unwrap();
            let id = fd_identity(fdn);
        let ran = Rc::new(Cell::new(0));
        let r = ran.clone();
        b.bev_setcb(bev, Some(move |bev: &mut BevCtx<'_>| {
            r.set(r.get() + 1);
            bev.free();
            // After free the buffers are empty stand-ins and controls refuse.
            assert!(bev.input().is_empty());
            assert!(bev.enable(What::WRITE).is_err());
        }), None::<fn(&mut BevCtx<'_>)>, None::<fn(&mut BevCtx<'_>, BevEvents)>).unwrap();
        b.bev_enable(bev, What::READ).unwrap();
        peer.write_all(b"bye").unwrap();
        run_until(&mut b, "callback", |_| ran.get() == 1);
        assert_eq!(b.bev_count(), 0);
        assert!(!still_open(fdn, id), "CLOSE_ON_FREE did not close the socket");
        assert!(b.bev_enable(bev, What::READ).is_err(), "stale handle accepted");
        assert!(b.bev_free(bev).is_err());
        peer.write_all(b"more").ok();
        b.run(LoopFlags::NONBLOCK).unwrap();
        assert_eq!(ran.get(), 1);
    }

    fn a_callback_frees_another_bufferevent(m) {
        let mut b = base(m);
        let (victim, _vpeer) = bev_pair(&mut b, BevOptions::empty());
        let (bev, mut peer) = bev_pair(&mut b, BevOptions::empty());
        b.bev_setcb(bev, Some(move |bev: &mut BevCtx<'_>| {
            bev.base().bev_free(victim).unwrap();
        }), None::<fn(&mut BevCtx<'_>)>, None::<fn(&mut BevCtx<'_>, BevEvents)>).unwrap();
        b.bev_enable(bev, What::READ).unwrap();
        peer.write_all(b"!").unwrap();
        run_until(&mut b, "victim freed", |b| b.bev_count() == 1);
        assert!(b.bev_fd(victim).is_err());
        b.bev_free(bev).unwrap();
    }

    fn without_close_on_free_the_socket_stays_open(m) {
        let mut b = base(m);
        let (x, _y) = pair();
        let raw = fd(&x);
        let bev = b.bufferevent_socket(raw, BevOptions::empty()).unwrap();
        b.bev_free(bev).unwrap();
        assert!(fd_identity(raw).is_some());
        drop(x);
    }

    fn a_read_timeout_reports_reading_timeout_and_disables_reading(m) {
        let mut b = base(m);
        let (bev, _peer) = bev_pair(&mut b, BevOptions::empty());
        let events = Rc::new(RefCell::new(Vec::new()));
        b.bev_set_handler(bev, Echo { events: events.clone() }).unwrap();
        b.bev_set_timeouts(bev, Some(Duration::from_millis(30)), None).unwrap();
        let t0 = Instant::now();
        b.bev_enable(bev, What::READ).unwrap();
        run_until(&mut b, "read timeout", |_| !events.borrow().is_empty());
        assert!(t0.elapsed() >= Duration::from_millis(30), "timeout fired early");
        assert_eq!(events.borrow()[0], BevEvents::READING | BevEvents::TIMEOUT);
        assert!(!b.bev_get_enabled(bev).unwrap().contains(What::READ));
        b.bev_free(bev).unwrap();
    }

    fn connect_to_a_tcp_listener_reports_connected_and_carries_data(m) {
        let mut b = base(m);
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let bev = b.bufferevent_socket(-1, BevOptions::CLOSE_ON_FREE).unwrap();
        let events = Rc::new(RefCell::new(Vec::new()));
        let e = events.clone();
        b.bev_setcb(bev, None::<fn(&mut BevCtx<'_>)>, None::<fn(&mut BevCtx<'_>)>, Some(move |_: &mut BevCtx<'_>, what| e.borrow_mut().push(what))).unwrap();
        b.bev_connect(bev, addr).unwrap();
        b.bev_write(bev, b"early").unwrap();
        let (mut srv, _) = l.accept().unwrap();
        run_until(&mut b, "connected", |_| !events.borrow().is_empty());
        assert_eq!(events.borrow()[0], BevEvents::CONNECTED);
        srv.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut got = [0u8; 5];
        let start = Instant::now();
        let mut n = 0;
        while n < 5 {
            assert!(start.elapsed() < Duration::from_secs(10));
            b.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
            srv.set_nonblocking(true).unwrap();
            if let Ok(k) = srv.read(&mut got[n..]) {
                n += k;
            }
        }
        assert_eq!(&got, b"early", "data written before the connect finished");
        b.bev_free(bev).unwrap();
    }

    fn connect_refused_reports_an_error_with_its_errno(m) {
        let mut b = base(m);
        // A port nothing listens on: bind one, note it, close it.
        let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let bev = b.bufferevent_socket(-1, BevOptions::CLOSE_ON_FREE).unwrap();
        let events = Rc::new(RefCell::new(Vec::new()));
        let e = events.clone();
        b.bev_setcb(bev, None::<fn(&mut BevCtx<'_>)>, None::<fn(&mut BevCtx<'_>)>, Some(move |_: &mut BevCtx<'_>, what| e.borrow_mut().push(what))).unwrap();
        b.bev_connect(bev, addr).unwrap();
        run_until(&mut b, "connect error", |_| !events.borrow().is_empty());
        assert!(events.borrow()[0].contains(BevEvents::ERROR), "{:?}", events.borrow());
        assert_eq!(b.bev_socket_error(bev).unwrap(), Some(libc::ECONNREFUSED));
        b.bev_free(bev).unwrap();
    }

    fn flush_finished_shuts_the_write_side_down(m) {
        let mut b = base(m);
        let (bev, mut peer) = bev_pair(&mut b, BevOptions::empty());
        b.bev_write(bev, b"last words").unwrap();
        b.bev_flush(bev, Flush::Finished).unwrap();
        let got = read_exactly(&mut peer, 11, &mut b);
        assert_eq!(got, b"last words", "then EOF");
        b.bev_free(bev).unwrap();
    }

    fn deferred_callbacks_run_from_the_deferred_queue(m) {
        let mut b = base(m);
        let events = Rc::new(RefCell::new(Vec::new()));
        let (bev, mut peer) = bev_pair(&mut b, BevOptions::DEFER_CALLBACKS);
        b.bev_set_handler(bev, Echo { events: events.clone() }).unwrap();
        b.bev_enable(bev, What::READ | What::WRITE).unwrap();
        peer.write_all(b"deferred").unwrap();
        assert_eq!(read_exactly(&mut peer, 8, &mut b), b"deferred");
        drop(peer);
        run_until(&mut b, "EOF", |_| !events.borrow().is_empty());
        assert_eq!(events.borrow()[0], BevEvents::READING | BevEvents::EOF);
        b.bev_free(bev).unwrap();
    }

    fn a_handler_replaced_from_its_own_callback_takes_over(m) {
        let mut b = base(m);
        let (bev, mut peer) = bev_pair(&mut b, BevOptions::empty());
        let (first, second) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
        let (f1, s2) = (first.clone(), second.clone());
        b.bev_setcb(bev, Some(move |bev: &mut BevCtx<'_>| {
            bev.input().drain(usize::MAX).unwrap();
            f1.set(f1.get() + 1);
            let s = s2.clone();
            let me = bev.handle();
            bev.base().bev_setcb(me, Some(move |bev: &mut BevCtx<'_>| {
                bev.input().drain(usize::MAX).unwrap();
                s.set(s.get() + 1)
            }), None::<fn(&mut BevCtx<'_>)>, None::<fn(&mut BevCtx<'_>, BevEvents)>).unwrap();
        }), None::<fn(&mut BevCtx<'_>)>, None::<fn(&mut BevCtx<'_>, BevEvents)>).unwrap();
        b.bev_enable(bev, What::READ).unwrap();
        peer.write_all(b"1").unwrap();
        run_until(&mut b, "first handler", |_| first.get() == 1);
        peer.write_all(b"2").unwrap();
        run_until(&mut b, "second handler", |_| second.get() == 1);
        assert_eq!(first.get(), 1, "the replaced handler ran again");
        b.bev_free(bev).unwrap();
    }

    fn connect_by_host_name_resolves_off_the_loop_and_connects(m) {
        let mut b = base(m);
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let bev = b.bufferevent_socket(-1, BevOptions::CLOSE_ON_FREE).unwrap();
        let events = Rc::new(RefCell::new(Vec::new()));
        let e = events.clone();
        b.bev_setcb(bev, None::<fn(&mut BevCtx<'_>)>, None::<fn(&mut BevCtx<'_>)>, Some(move |_: &mut BevCtx<'_>, what| e.borrow_mut().push(what))).unwrap();
        // "localhost" comes from /etc/hosts: no traffic leaves the machine.
        b.bev_connect_hostname(bev, Family::V4, "localhost", port).unwrap();
        // The lookup keeps the loop alive: dispatch runs until the connect is reported.
        let start = Instant::now();
        while events.borrow().is_empty() {
            assert!(start.elapsed() < Duration::from_secs(20), "no connect");
            b.run(LoopFlags::ONCE).unwrap();
        }
        assert_eq!(events.borrow()[0], BevEvents::CONNECTED);
        let _ = l.accept().unwrap();
        b.bev_free(bev).unwrap();
    }

    fn a_host_name_without_an_address_of_the_family_is_an_error(m) {
        let mut b = base(m);
        let bev = b.bufferevent_socket(-1, BevOptions::CLOSE_ON_FREE).unwrap();
        let events = Rc::new(RefCell::new(Vec::new()));
        let e = events.clone();
        b.bev_setcb(bev, None::<fn(&mut BevCtx<'_>)>, None::<fn(&mut BevCtx<'_>)>, Some(move |_: &mut BevCtx<'_>, what| e.borrow_mut().push(what))).unwrap();
        assert!(b.bev_connect_hostname(bev, Family::Any, "127.0.0.1", 0).is_err(), "port 0");
        // A numeric IPv4 name asked for as IPv6: resolved locally, no address qualifies.
        b.bev_connect_hostname(bev, Family::V6, "127.0.0.1", 80).unwrap();
        let start = Instant::now();
        while events.borrow().is_empty() {
            assert!(start.elapsed() < Duration::from_secs(20), "no error");
            b.run(LoopFlags::ONCE).unwrap();
        }
        assert_eq!(events.borrow()[0], BevEvents::ERROR);
        assert!(b.bev_dns_error(bev).unwrap().is_some());
        b.bev_free(bev).unwrap();
    }

    fn freeing_during_a_lookup_cancels_the_connect(m) {
        let mut b = base(m);
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let bev = b.bufferevent_socket(-1, BevOptions::CLOSE_ON_FREE).unwrap();
        b.bev_connect_hostname(bev, Family::V4, "localhost", port).unwrap();
        b.bev_free(bev).unwrap();
        assert_eq!(b.bev_count(), 0);
        // The answer still comes back through the handle; it must find nothing to connect.
        for _ in 0..50 {
            b.run(LoopFlags::NONBLOCK).unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
        l.set_nonblocking(true).unwrap();
        assert!(l.accept().is_err(), "a freed bufferevent connected");
    }

    fn handles_of_another_base_and_bad_fds_are_refused(m) {
        let mut b = base(m);
        let mut other = base(m);
        let (bev, _peer) = bev_pair(&mut b, BevOptions::empty());
        assert!(other.bev_enable(bev, What::READ).is_err());
        assert!(other.bev_free(bev).is_err());
        assert!(b.bufferevent_socket(-5, BevOptions::empty()).is_err());
        assert!(b.bev_set_max_single(bev, 0, 10).is_err());
        b.bev_free(bev).unwrap();
        drop(other);
    }
}

fn b_input_len(b: &mut EventBase, bev: BufferEvent) -> usize {
    b.bev_input(bev).map(|i| i.len()).unwrap_or(0)
}
