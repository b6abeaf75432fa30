//! Rate limits measured on real sockets, on every backend: a bufferevent's own read and
//! write buckets, and a group's shared bucket, each within tolerance of rate × ticks.
mod util;
use evrs::bufferevent::{BevCtx, BevEvents, BevOptions, RateLimit};
use evrs::{EventBase, LoopFlags, What};
use std::cell::Cell;
use std::io::{Read, Write};
use std::os::fd::IntoRawFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use util::*;

const RATE: usize = 4_000;
const TICK: Duration = Duration::from_millis(50);
const RUN: Duration = Duration::from_millis(500);

/// Bytes a bucket starting at RATE lets through in RUN: the first bucket plus one refill
/// per tick.
fn expected() -> usize {
    RATE * (1 + (RUN.as_millis() / TICK.as_millis()) as usize)
}

fn within_tolerance(got: usize, what: &str) {
    let want = expected();
    assert!(
        got >= want * 6 / 10 && got <= want * 13 / 10,
        "{what}: {got} bytes in {RUN:?}, expected about {want}"
    );
}

/// A thread that keeps `s` full until `stop` (bounded: 2 MB at most).
fn flood(
    mut s: std::os::unix::net::UnixStream,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    s.set_nonblocking(false).unwrap();
    s.set_write_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    std::thread::spawn(move || {
        let chunk = [b'x'; 1024];
        let mut sent = 0;
        while !stop.load(Ordering::Relaxed) && sent < 2_000_000 {
            match s.write(&chunk) {
                Ok(n) => sent += n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break,
            }
        }
    })
}

fn run_for(b: &mut EventBase, d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        b.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
        std::thread::sleep(Duration::from_micros(500));
    }
}

on_every_backend! {
    fn the_read_bucket_limits_reading(m) {
        let mut b = base(m);
        let (x, y) = pair();
        let bev = b.bufferevent_socket(x.into_raw_fd(), BevOptions::CLOSE_ON_FREE).unwrap();
        let got = Rc::new(Cell::new(0usize));
        let g = got.clone();
        b.bev_setcb(bev, Some(move |bev: &mut BevCtx<'_>| {
            let n = bev.input().len();
            bev.input().drain(n).unwrap();
            g.set(g.get() + n);
        }), None::<fn(&mut BevCtx<'_>)>, None::<fn(&mut BevCtx<'_>, BevEvents)>).unwrap();
        b.bev_set_rate_limit(bev, Some(RateLimit::new(RATE, RATE, RATE, RATE, Some(TICK)).unwrap())).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let t = flood(y, stop.clone());
        b.bev_enable(bev, What::READ).unwrap();
        run_for(&mut b, RUN);
        stop.store(true, Ordering::Relaxed);
        within_tolerance(got.get(), "read");
        b.bev_free(bev).unwrap();
        t.join().unwrap();
    }

    fn the_write_bucket_limits_writing(m) {
        let mut b = base(m);
        let (x, mut y) = pair();
        let bev = b.bufferevent_socket(x.into_raw_fd(), BevOptions::CLOSE_ON_FREE).unwrap();
        b.bev_set_rate_limit(bev, Some(RateLimit::new(RATE, RATE, RATE, RATE, Some(TICK)).unwrap())).unwrap();
        b.bev_write(bev, &vec![b'y'; 400_000]).unwrap();
        let mut got = 0;
        let mut buf = vec![0u8; 65536];
        let start = Instant::now();
        while start.elapsed() < RUN {
            b.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
            while let Ok(n) = y.read(&mut buf) {
                if n == 0 { break; }
                got += n;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        within_tolerance(got, "write");
        b.bev_free(bev).unwrap();
    }

    fn a_group_shares_one_bucket(m) {
        let mut b = base(m);
        let group = b.rate_limit_group(RateLimit::new(RATE, RATE, RATE, RATE, Some(TICK)).unwrap()).unwrap();
        let got = Rc::new(Cell::new(0usize));
        let stop = Arc::new(AtomicBool::new(false));
        let mut bevs = Vec::new();
        let mut floods = Vec::new();
        for _ in 0..2 {
            let (x, y) = pair();
            let bev = b.bufferevent_socket(x.into_raw_fd(), BevOptions::CLOSE_ON_FREE).unwrap();
            let g = got.clone();
            b.bev_setcb(bev, Some(move |bev: &mut BevCtx<'_>| {
                let n = bev.input().len();
                bev.input().drain(n).unwrap();
                g.set(g.get() + n);
            }), None::<fn(&mut BevCtx<'_>)>, None::<fn(&mut BevCtx<'_>, BevEvents)>).unwrap();
            b.bev_add_to_rate_limit_group(bev, group).unwrap();
            b.bev_enable(bev, What::READ).unwrap();
            floods.push(flood(y, stop.clone()));
            bevs.push(bev);
        }
        run_for(&mut b, RUN);
        stop.store(true, Ordering::Relaxed);
        within_tolerance(got.get(), "group read");
        let (read, _written) = b.rate_limit_group_totals(group).unwrap();
        assert_eq!(read as usize, got.get(), "group totals");
        for bev in bevs {
            b.bev_free(bev).unwrap();
        }
        b.rate_limit_group_free(group).unwrap();
        for t in floods {
            t.join().unwrap();
        }
    }

    fn bad_configurations_are_refused(m) {
        let _ = m;
        assert!(RateLimit::new(0, 10, 1, 1, None).is_err(), "rate 0");
        assert!(RateLimit::new(10, 5, 1, 1, None).is_err(), "rate above burst");
        assert_eq!(RateLimit::new(1, 1, 1, 1, None).unwrap().tick(), Duration::from_secs(1));
        assert_eq!(RateLimit::new(1, 1, 1, 1, Some(Duration::from_micros(10))).unwrap().tick(), Duration::from_millis(1));
    }
}
