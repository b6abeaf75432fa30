//! Bufferevent pairs on every backend: data crosses, callbacks are deferred (no
//! recursion), the read high watermark limits a transfer, flush and free propagate, read
//! and write timeouts (restarted by traffic).
mod util;
use evrs::bufferevent::{BevCtx, BevEvents, BevHandler, BevOptions, Flush};
use evrs::{EventBase, LoopFlags, What};
use std::cell::{Cell, RefCell};
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
    }
}

type Events = Rc<RefCell<Vec<(BevEvents, Duration)>>>;

/// Records each event with the time since `t0`.
fn record_events(b: &mut EventBase, bev: evrs::bufferevent::BufferEvent, t0: Instant) -> Events {
    let log: Events = Default::default();
    let l = log.clone();
    b.bev_setcb(
        bev,
        Some(|bev: &mut BevCtx<'_>| {
            let n = bev.input().len();
            bev.input().drain(n).unwrap();
        }),
        None::<fn(&mut BevCtx<'_>)>,
        Some(move |_: &mut BevCtx<'_>, what| l.borrow_mut().push((what, t0.elapsed()))),
    )
    .unwrap();
    log
}

/// Counts messages and answers each until `left` runs out; tracks callback nesting.
struct PingPong {
    got: Rc<Cell<usize>>,
    left: usize,
    depth: Rc<Cell<usize>>,
    max_depth: Rc<Cell<usize>>,
}

impl BevHandler for PingPong {
    fn read(&mut self, bev: &mut BevCtx<'_>) {
        self.depth.set(self.depth.get() + 1);
        self.max_depth
            .set(self.max_depth.get().max(self.depth.get()));
        let n = bev.input().len();
        bev.input().drain(n).unwrap();
        self.got.set(self.got.get() + n / 4);
        if self.left > 0 {
            self.left -= 1;
            bev.write(b"ping").unwrap();
        }
        self.depth.set(self.depth.get() - 1);
    }
}

on_every_backend! {
    /// When data moves, the reader's callback comes before the writer's (libevent's order;
    /// with deferred callbacks, the order their runs are queued in).
    fn the_reader_hears_before_the_writer(m) {
        for opts in [BevOptions::empty(), BevOptions::DEFER_CALLBACKS] {
            let mut b = base(m);
            let (x, y) = b.bufferevent_pair(opts).unwrap();
            let log = Rc::new(RefCell::new(Vec::new()));
            let (l1, l2) = (log.clone(), log.clone());
            b.bev_setcb(x, None::<fn(&mut BevCtx<'_>)>, Some(move |_: &mut BevCtx<'_>| l1.borrow_mut().push("write x")), None::<fn(&mut BevCtx<'_>, BevEvents)>).unwrap();
            b.bev_setcb(y, Some(move |c: &mut BevCtx<'_>| {
                let n = c.input().len();
                c.input().drain(n).unwrap();
                l2.borrow_mut().push("read y");
            }), None::<fn(&mut BevCtx<'_>)>, None::<fn(&mut BevCtx<'_>, BevEvents)>).unwrap();
            b.bev_enable(y, What::READ).unwrap();
            b.bev_write(x, b"data").unwrap();
            run_until(&mut b, "both callbacks", |_| log.borrow().len() == 2);
            assert_eq!(*log.borrow(), ["read y", "write x"], "{opts:?}");
            b.bev_free(x).unwrap();
            b.bev_free(y).unwrap();
        }
    }

    fn a_pair_read_timeout_fires_when_nothing_arrives_and_traffic_restarts_it(m) {
        let mut b = base(m);
        let (x, y) = b.bufferevent_pair(BevOptions::empty()).unwrap();
        let t0 = Instant::now();
        let log = record_events(&mut b, x, t0);
        b.bev_enable(x, What::READ).unwrap();
        b.bev_set_timeouts(x, Some(Duration::from_millis(150)), None).unwrap();
        // Traffic every 50 ms for 300 ms keeps the 150 ms read timeout from expiring.
        let sent = Rc::new(Cell::new(0));
        let s = sent.clone();
        let tick = b.new_event(-1, What::PERSIST, move |base: &mut EventBase, ev, _| {
            base.bev_write(y, b"tick").unwrap();
            s.set(s.get() + 1);
            if s.get() == 6 {
                base.del(ev).unwrap();
            }
        }).unwrap();
        b.add(tick, Some(Duration::from_millis(50))).unwrap();
        run_until(&mut b, "read timeout", |_| !log.borrow().is_empty());
        let (what, at) = log.borrow()[0];
        assert_eq!(what, BevEvents::READING | BevEvents::TIMEOUT);
        assert_eq!(sent.get(), 6);
        // The last tick went at ~300 ms: the timeout is 150 ms after it, not after the start.
        assert!(at >= Duration::from_millis(440), "fired at {at:?}, before traffic stopped + 150 ms");
        assert!(!b.bev_get_enabled(x).unwrap().contains(What::READ), "reading was not disabled");
        for _ in 0..5 {
            b.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
        }
        assert_eq!(log.borrow().len(), 1, "{:?}", log.borrow());
        b.free(tick).unwrap();
        b.bev_free(x).unwrap();
        b.bev_free(y).unwrap();
    }

    fn a_pair_write_timeout_fires_while_the_partner_does_not_read(m) {
        let mut b = base(m);
        let (x, y) = b.bufferevent_pair(BevOptions::empty()).unwrap();
        let t0 = Instant::now();
        let log = record_events(&mut b, x, t0);
        b.bev_disable(y, What::READ).unwrap();
        b.bev_set_timeouts(x, None, Some(Duration::from_millis(100))).unwrap();
        b.bev_write(x, b"stuck").unwrap();
        run_until(&mut b, "write timeout", |_| !log.borrow().is_empty());
        let (what, at) = log.borrow()[0];
        assert_eq!(what, BevEvents::WRITING | BevEvents::TIMEOUT);
        assert!(at >= Duration::from_millis(100), "fired early: {at:?}");
        assert!(!b.bev_get_enabled(x).unwrap().contains(What::WRITE));
        assert_eq!(b.bev_output(x).unwrap().len(), 5, "the output is kept");
        // With no timeout set and nothing pending, nothing more fires.
        b.bev_set_timeouts(x, None, None).unwrap();
        for _ in 0..5 {
            b.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
        }
        assert_eq!(log.borrow().len(), 1);
        b.bev_free(x).unwrap();
        b.bev_free(y).unwrap();
    }

    fn a_pair_timeout_runs_only_while_its_direction_is_enabled_and_waiting(m) {
        let mut b = base(m);
        let (x, y) = b.bufferevent_pair(BevOptions::empty()).unwrap();
        let t0 = Instant::now();
        let log = record_events(&mut b, x, t0);
        let idle = |b: &mut EventBase, ms: u64| {
            let start = Instant::now();
            while start.elapsed() < Duration::from_millis(ms) {
                b.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
        };
        // Reading off (the default), writing on with nothing to send: neither timer runs.
        let d = Duration::from_millis(150);
        b.bev_set_timeouts(x, Some(d), Some(d)).unwrap();
        idle(&mut b, 400);
        assert!(log.borrow().is_empty(), "a timer ran with nothing enabled or waiting: {:?}", log.borrow());
        // Output waiting but writing off: still nothing.
        b.bev_disable(y, What::READ).unwrap();
        b.bev_disable(x, What::WRITE).unwrap();
        b.bev_write(x, b"held").unwrap();
        idle(&mut b, 400);
        assert!(log.borrow().is_empty(), "the write timer ran with writing disabled: {:?}", log.borrow());
        // Reading on and at once off again: the timer stops, and starts afresh on the next enable.
        b.bev_enable(x, What::READ).unwrap();
        b.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
        b.bev_disable(x, What::READ).unwrap();
        idle(&mut b, 400);
        assert!(log.borrow().is_empty(), "the read timer ran after reading was disabled: {:?}", log.borrow());
        let on = Instant::now();
        b.bev_enable(x, What::READ).unwrap();
        // A sync that moved nothing (disabling WRITE again) leaves the running timer alone.
        b.bev_disable(x, What::WRITE).unwrap();
        run_until(&mut b, "read timeout after enabling again", |_| !log.borrow().is_empty());
        let (what, _) = log.borrow()[0];
        assert_eq!(what, BevEvents::READING | BevEvents::TIMEOUT);
        assert!(on.elapsed() >= d, "fired early: {:?}", on.elapsed());
        b.bev_free(x).unwrap();
        b.bev_free(y).unwrap();
    }

    fn changing_a_pair_timeout_replaces_the_running_timer(m) {
        let mut b = base(m);
        let (x, y) = b.bufferevent_pair(BevOptions::empty()).unwrap();
        let t0 = Instant::now();
        let log = record_events(&mut b, x, t0);
        b.bev_disable(y, What::READ).unwrap();
        b.bev_enable(x, What::READ).unwrap();
        b.bev_write(x, b"stuck").unwrap();
        b.bev_set_timeouts(x, Some(Duration::from_millis(100)), Some(Duration::from_millis(100))).unwrap();
        b.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
        let set = Instant::now();
        b.bev_set_timeouts(x, Some(Duration::from_millis(400)), Some(Duration::from_millis(400))).unwrap();
        // (Both expire together: the deferred event callback may get them in one call.)
        let seen = || log.borrow().iter().fold(BevEvents::empty(), |a, &(w, _)| a | w);
        run_until(&mut b, "both timeouts", |_| seen().contains(BevEvents::READING | BevEvents::WRITING));
        assert_eq!(seen(), BevEvents::READING | BevEvents::WRITING | BevEvents::TIMEOUT);
        let set_at = set - t0;
        for &(what, at) in log.borrow().iter() {
            assert!(at >= set_at + Duration::from_millis(400), "an old timer fired: {what:?} {:?} after the change", at - set_at);
        }
        b.bev_free(x).unwrap();
        b.bev_free(y).unwrap();
    }

    fn data_crosses_and_callbacks_never_nest(m) {
        let mut b = base(m);
        let _ = m;
        let (x, y) = b.bufferevent_pair(BevOptions::empty()).unwrap();
        assert_eq!(b.bev_pair_partner(x).unwrap(), Some(y));
        assert_eq!(b.bev_pair_partner(y).unwrap(), Some(x));
        let depth = Rc::new(Cell::new(0));
        let max_depth = Rc::new(Cell::new(0));
        let (gx, gy) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
        for (bev, got) in [(x, gx.clone()), (y, gy.clone())] {
            b.bev_set_handler(bev, PingPong { got, left: 500, depth: depth.clone(), max_depth: max_depth.clone() }).unwrap();
            b.bev_enable(bev, What::READ | What::WRITE).unwrap();
        }
        b.bev_write(x, b"ping").unwrap();
        run_until(&mut b, "1,000 messages", |_| gx.get() + gy.get() >= 1001);
        assert_eq!(max_depth.get(), 1, "pair callbacks nested: they must be deferred");
        b.bev_free(x).unwrap();
        b.bev_free(y).unwrap();
        assert_eq!(b.bev_count(), 0);
    }

    fn the_readers_high_watermark_limits_each_transfer(m) {
        let mut b = base(m);
        let _ = m;
        let (x, y) = b.bufferevent_pair(BevOptions::empty()).unwrap();
        let seen = Rc::new(RefCell::new(Vec::new()));
        let s = seen.clone();
        b.bev_setcb(y, Some(move |bev: &mut BevCtx<'_>| s.borrow_mut().push(bev.input().len())), None::<fn(&mut BevCtx<'_>)>, None::<fn(&mut BevCtx<'_>, BevEvents)>).unwrap();
        b.bev_setwatermark(y, What::READ, 0, 3).unwrap();
        b.bev_enable(y, What::READ).unwrap();
        b.bev_write(x, b"abcdefgh").unwrap();
        run_until(&mut b, "first transfer", |_| !seen.borrow().is_empty());
        assert_eq!(b.bev_input(y).unwrap().to_vec(), b"abc");
        assert_eq!(b.bev_output(x).unwrap().len(), 5, "the rest waits in the writer's output");
        b.bev_input(y).unwrap().drain(3).unwrap();
        run_until(&mut b, "second transfer", |b| b.bev_input(y).unwrap().len() == 3);
        assert_eq!(b.bev_input(y).unwrap().to_vec(), b"def");
        b.bev_free(x).unwrap();
        b.bev_free(y).unwrap();
    }

    fn freeing_one_half_tells_the_other_eof(m) {
        let mut b = base(m);
        let _ = m;
        let (x, y) = b.bufferevent_pair(BevOptions::empty()).unwrap();
        let events = Rc::new(RefCell::new(Vec::new()));
        let e = events.clone();
        b.bev_setcb(y, None::<fn(&mut BevCtx<'_>)>, None::<fn(&mut BevCtx<'_>)>, Some(move |_: &mut BevCtx<'_>, what| e.borrow_mut().push(what))).unwrap();
        b.bev_free(x).unwrap();
        run_until(&mut b, "EOF", |_| !events.borrow().is_empty());
        assert_eq!(events.borrow()[0], BevEvents::READING | BevEvents::EOF);
        assert_eq!(b.bev_pair_partner(y).unwrap(), None);
        assert!(b.bev_pair_partner(x).is_err(), "stale handle accepted");
        b.bev_free(y).unwrap();
    }

    fn flush_finished_moves_everything_then_eof(m) {
        let mut b = base(m);
        let _ = m;
        let (x, y) = b.bufferevent_pair(BevOptions::empty()).unwrap();
        let events = Rc::new(RefCell::new(Vec::new()));
        let e = events.clone();
        b.bev_setcb(y, None::<fn(&mut BevCtx<'_>)>, None::<fn(&mut BevCtx<'_>)>, Some(move |_: &mut BevCtx<'_>, what| e.borrow_mut().push(what))).unwrap();
        // Reading is not even enabled on y, and its high mark is tiny: a flush moves it all.
        b.bev_setwatermark(y, What::READ, 0, 2).unwrap();
        b.bev_write(x, b"everything").unwrap();
        assert!(b.bev_flush(x, Flush::Finished).unwrap());
        assert_eq!(b.bev_input(y).unwrap().to_vec(), b"everything");
        run_until(&mut b, "EOF", |_| !events.borrow().is_empty());
        assert!(events.borrow()[0].contains(BevEvents::EOF));
        b.bev_free(x).unwrap();
        b.bev_free(y).unwrap();
    }

    fn a_half_frees_itself_from_its_read_callback(m) {
        let mut b = base(m);
        let _ = m;
        let (x, y) = b.bufferevent_pair(BevOptions::empty()).unwrap();
        b.bev_setcb(y, Some(|bev: &mut BevCtx<'_>| bev.free()), None::<fn(&mut BevCtx<'_>)>, None::<fn(&mut BevCtx<'_>, BevEvents)>).unwrap();
        b.bev_enable(y, What::READ).unwrap();
        b.bev_write(x, b"x").unwrap();
        run_until(&mut b, "y freed", |b| b.bev_count() == 1);
        assert_eq!(b.bev_pair_partner(x).unwrap(), None);
        b.bev_free(x).unwrap();
    }
}
