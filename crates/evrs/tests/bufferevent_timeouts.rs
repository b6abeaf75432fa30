//! Bufferevent timeouts where no socket carries them: a socket bufferevent before its
//! socket is set, a filter with nothing to write, a pair half (libevent's rules for each).

#[macro_use]
mod util;
use evrs::bufferevent::{BevCtx, BevEvents, BevOptions, BufferEvent};
use evrs::{EventBase, LoopFlags, What};
use std::cell::RefCell;
use std::io::Read;
use std::os::fd::IntoRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};
use util::*;

/// Runs the loop for `d`.
fn run_for(b: &mut EventBase, d: Duration) {
    let t = b.new_timer(|b, _ev, _w| b.loopbreak()).unwrap();
    b.add(t, Some(d)).unwrap();
    b.run(LoopFlags::NO_EXIT_ON_EMPTY).unwrap();
    b.free(t).unwrap();
}

type Events = Rc<RefCell<Vec<(BevEvents, Duration)>>>;

/// Records each event with when it came (since `t0`).
fn record(b: &mut EventBase, bev: BufferEvent, t0: Instant) -> Events {
    let events: Events = Rc::default();
    let e = events.clone();
    b.bev_setcb(
        bev,
        None::<fn(&mut BevCtx<'_>)>,
        None::<fn(&mut BevCtx<'_>)>,
        Some(move |_: &mut BevCtx<'_>, what| e.borrow_mut().push((what, t0.elapsed()))),
    )
    .unwrap();
    events
}

fn whats(e: &Events) -> Vec<BevEvents> {
    e.borrow().iter().map(|(w, _)| *w).collect()
}

on_every_backend! {
    /// Without a socket nothing moves, so both timeouts expire — the write one although
    /// the output is empty (libevent arms it when writing is enabled).
    fn a_socket_bufferevent_without_its_socket_times_out(m) {
        let mut b = base(m);
        let bev = b.bufferevent_socket(-1, BevOptions::empty()).unwrap();
        let t0 = Instant::now();
        let events = record(&mut b, bev, t0);
        b.bev_set_timeouts(bev, Some(Duration::from_millis(60)), Some(Duration::from_millis(30))).unwrap();
        b.bev_enable(bev, What::READ | What::WRITE).unwrap();
        run_for(&mut b, Duration::from_millis(150));
        assert_eq!(
            whats(&events),
            [BevEvents::WRITING | BevEvents::TIMEOUT, BevEvents::READING | BevEvents::TIMEOUT]
        );
        let (w_at, r_at) = (events.borrow()[0].1, events.borrow()[1].1);
        assert!(w_at >= Duration::from_millis(30) && r_at >= Duration::from_millis(60), "early: {w_at:?} {r_at:?}");
        assert!(b.bev_get_enabled(bev).unwrap().is_empty(), "both directions disabled");
        b.bev_free(bev).unwrap();
    }

    /// Once a socket is set, its events carry the timeouts: the timers made before are gone
    /// (one timeout per expiry, not two), and data on the socket restarts the read timeout.
    fn a_socket_set_later_takes_over_the_timeouts(m) {
        let mut b = base(m);
        let bev = b.bufferevent_socket(-1, BevOptions::CLOSE_ON_FREE).unwrap();
        let t0 = Instant::now();
        let events = record(&mut b, bev, t0);
        b.bev_set_timeouts(bev, Some(Duration::from_millis(40)), Some(Duration::from_millis(40))).unwrap();
        let (x, mut y) = pair();
        b.bev_set_fd(bev, x.into_raw_fd()).unwrap();
        b.bev_enable(bev, What::READ | What::WRITE).unwrap();
        b.bev_write(bev, b"out").unwrap();
        run_for(&mut b, Duration::from_millis(150));
        let mut got = [0u8; 8];
        assert_eq!(y.read(&mut got).unwrap(), 3);
        assert_eq!(&got[..3], b"out");
        // The socket took the output, so only reading times out, once.
        assert_eq!(whats(&events), [BevEvents::READING | BevEvents::TIMEOUT]);
        b.bev_free(bev).unwrap();
    }

    /// A filter's write timer runs while writing is enabled, output or not; a pair half's
    /// only while output waits (libevent's rules).
    fn a_filter_times_out_writing_with_empty_output_and_a_pair_does_not(m) {
        let mut b = base(m);
        let (p, q) = b.bufferevent_pair(BevOptions::empty()).unwrap();
        let (x, _y) = pair();
        let under = b.bufferevent_socket(x.into_raw_fd(), BevOptions::CLOSE_ON_FREE).unwrap();
        let f = b.bufferevent_filter(under, None::<evrs::bufferevent::FilterFn>, None::<evrs::bufferevent::FilterFn>, BevOptions::CLOSE_ON_FREE).unwrap();
        let t0 = Instant::now();
        let (pe, fe) = (record(&mut b, p, t0), record(&mut b, f, t0));
        for bev in [p, f] {
            b.bev_set_timeouts(bev, None, Some(Duration::from_millis(30))).unwrap();
            b.bev_enable(bev, What::WRITE).unwrap();
        }
        run_for(&mut b, Duration::from_millis(120));
        assert_eq!(whats(&fe), [BevEvents::WRITING | BevEvents::TIMEOUT]);
        assert!(whats(&pe).is_empty(), "{:?}", whats(&pe));
        b.bev_free(f).unwrap();
        b.bev_free(p).unwrap();
        b.bev_free(q).unwrap();
    }
}
