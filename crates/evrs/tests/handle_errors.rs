//! Errors across threads (issue 14): what a `Handle` call can check fails at the call; what
//! fails on the loop thread is logged and counted; once the base is dropped every call fails,
//! and every command accepted before was either run or dropped. Real threads; every test has a
//! watchdog that aborts the process, naming the test, instead of letting it hang.
mod util;
use evrs::{Event, Handle, LoopFlags, Method, What};
use std::io::ErrorKind;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::time::Duration;
use util::*;

/// Aborts the process (a hang would block the whole test binary) if the test named `name`
/// is still running after 30 s. Disarmed when dropped.
struct Watchdog(Option<mpsc::Sender<()>>);

fn watchdog(name: &'static str) -> Watchdog {
    let (tx, rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(Duration::from_secs(30)) {
            // Not eprintln!: the test harness would capture it, and abort discards that.
            use std::io::Write;
            let msg = format!("watchdog: test {name} still running after 30 s; aborting\n");
            let _ = std::io::stderr().write_all(msg.as_bytes());
            std::process::abort();
        }
    });
    Watchdog(Some(tx))
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.0.take());
    }
}

// ----- a log capturing warnings -------------------------------------------------------------

struct Capture;

static RECORDS: Mutex<Vec<(log::Level, String)>> = Mutex::new(Vec::new());

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::Level::Warn
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            RECORDS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((r.level(), r.args().to_string()));
        }
    }
    fn flush(&self) {}
}

fn capture_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        log::set_logger(&Capture).unwrap();
        log::set_max_level(log::LevelFilter::Warn);
    });
}

/// Warnings logged so far that mention `needle` (tests run in parallel: each looks for its
/// own event).
fn warnings_about(needle: &str) -> Vec<String> {
    RECORDS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|(l, m)| *l == log::Level::Warn && m.contains(needle))
        .map(|(_, m)| m.clone())
        .collect()
}

// ----- validated at the call ----------------------------------------------------------------

#[test]
fn timeouts_that_overflow_the_clock_fail_at_the_call_from_another_thread() {
    let _w = watchdog("timeouts_that_overflow_the_clock_fail_at_the_call_from_another_thread");
    let mut b = default_base();
    let h = b.handle().unwrap();
    let ev = b.new_timer(|_, _, _| {}).unwrap();
    // The base's own rule, for reference.
    assert_eq!(
        b.add(ev, Some(Duration::MAX)).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    let huge = [
        Duration::MAX,
        Duration::from_secs(u64::MAX),
        Duration::from_nanos(u64::MAX / 2),
    ];
    let t = std::thread::spawn(move || {
        for d in huge {
            let e = h.add(ev, Some(d)).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "add {d:?}: {e}");
            let e = h.add_blocking(ev, Some(d)).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "add_blocking {d:?}: {e}");
            let e = h.loopexit(Some(d)).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "loopexit {d:?}: {e}");
        }
        // Ordinary (and zero) timeouts are accepted.
        h.add(ev, Some(Duration::from_secs(3600))).unwrap();
        h.loopexit(Some(Duration::ZERO)).unwrap();
        h
    });
    let h = t.join().unwrap();
    // Nothing was queued for the refused calls: the two accepted commands run, and none fails.
    b.run(LoopFlags::NONBLOCK).unwrap();
    assert_eq!(h.failed_commands(), 0);
    assert!(b.pending(ev, What::TIMEOUT).unwrap().1.is_some());
    b.free(ev).unwrap();
}

// ----- failures on the loop thread ----------------------------------------------------------

on_every_backend! {
    fn add_of_an_event_on_a_closed_fd_from_another_thread_is_logged_and_counted(m) {
        let _w = watchdog("add_of_an_event_on_a_closed_fd_from_another_thread_is_logged_and_counted");
        capture_logs();
        let mut b = base(m);
        let h = b.handle().unwrap();
        let (_x, y) = pair();
        let ev = b.new_event(closed_fd(m, &y), What::READ, |_, _, _| {}).unwrap();
        let needle = format!("{ev:?}");
        let h2 = h.clone();
        // Only the loop can tell that the fd is closed: the call is accepted...
        std::thread::spawn(move || h2.add(ev, None).unwrap()).join().unwrap();
        assert_eq!(h.failed_commands(), 0);
        b.run(LoopFlags::NONBLOCK).unwrap();
        // ...and its failure is counted and logged, with the command, the event and the error.
        assert_eq!(h.failed_commands(), 1);
        let warned = warnings_about(&needle);
        assert_eq!(warned.len(), 1, "{warned:?}");
        assert!(warned[0].contains("add"), "{}", warned[0]);
        assert_eq!(b.pending(ev, What::READ).unwrap().0, What::empty());
        // The waiting form returns the error instead (and does not count it).
        let h2 = h.clone();
        let t = std::thread::spawn(move || h2.add_blocking(ev, None));
        let r = within(Duration::from_secs(10), || {
            // NONBLOCK: running commands is internal work, which would not end a ONCE run.
            while !t.is_finished() {
                b.run(LoopFlags::NONBLOCK).unwrap();
            }
            t.join().unwrap()
        });
        assert!(r.is_err(), "add_blocking of a closed fd succeeded");
        assert_eq!(h.failed_commands(), 1);
        // The base stays usable, from this thread and from others.
        let hit = Arc::new(AtomicBool::new(false));
        let c = hit.clone();
        let ok = b.new_event(fd(&y), What::READ, move |_, _, _| c.store(true, Ordering::SeqCst)).unwrap();
        let h2 = h.clone();
        let x = _x;
        std::thread::spawn(move || {
            h2.add(ok, None).unwrap();
            h2.run_in_loop(move |_| write(&x, b"!")).unwrap();
        }).join().unwrap();
        within(Duration::from_secs(10), || {
            while !hit.load(Ordering::SeqCst) {
                b.run(LoopFlags::ONCE | LoopFlags::NO_EXIT_ON_EMPTY).unwrap();
            }
        });
        assert_eq!(h.failed_commands(), 1);
    }

    fn commands_about_a_freed_event_are_counted(m) {
        let _w = watchdog("commands_about_a_freed_event_are_counted");
        capture_logs();
        let mut b = base(m);
        let h = b.handle().unwrap();
        let ev = b.new_timer(|_, _, _| {}).unwrap();
        b.free(ev).unwrap();
        let h2 = h.clone();
        std::thread::spawn(move || {
            h2.add(ev, None).unwrap();
            h2.del(ev).unwrap();
            h2.activate(ev, What::TIMEOUT, 1).unwrap();
        }).join().unwrap();
        b.run(LoopFlags::NONBLOCK).unwrap();
        assert_eq!(h.failed_commands(), 3);
        assert_eq!(warnings_about(&format!("{ev:?}")).len(), 3);
    }

    // ----- the base dropped while threads call in -------------------------------------------

    fn run_in_loop_racing_the_drop_of_the_base_loses_nothing(m) {
        let _w = watchdog("run_in_loop_racing_the_drop_of_the_base_loses_nothing");
        for round in 0..50 {
            drop_mid_hammering(m, round);
        }
    }

    fn call_racing_the_drop_of_the_base_returns_promptly(m) {
        let _w = watchdog("call_racing_the_drop_of_the_base_returns_promptly");
        for round in 0..20 {
            let (tx, rx) = mpsc::channel();
            let owner = std::thread::spawn(move || {
                let mut b = base(m);
                tx.send(b.handle().unwrap()).unwrap();
                // Serve calls for a while (0–3 ms), then drop the base. (NONBLOCK: running
                // commands is internal work, which would not end a ONCE run.)
                let until = std::time::Instant::now() + Duration::from_millis(round as u64 % 4);
                while std::time::Instant::now() < until {
                    b.run(LoopFlags::NONBLOCK).unwrap();
                }
            });
            let h: Handle = rx.recv().unwrap();
            let callers: Vec<_> = (0..2).map(|_| {
                let h = h.clone();
                std::thread::spawn(move || loop {
                    // Each call either ran, or fails as soon as the base is gone.
                    match within(Duration::from_secs(2), || h.call(|_| 7)) {
                        Ok(v) => assert_eq!(v, 7),
                        Err(e) => {
                            assert_eq!(e.kind(), ErrorKind::NotConnected, "{e}");
                            return;
                        }
                    }
                })
            }).collect();
            owner.join().unwrap();
            for c in callers {
                c.join().unwrap();
            }
            assert_eq!(h.call(|_| ()).unwrap_err().kind(), ErrorKind::NotConnected);
            // A discarded `call` was reported to its caller: not counted as a silent failure.
            assert_eq!(h.failed_commands(), 0);
        }
    }
}

/// Counts what happened to each closure handed to `run_in_loop`.
#[derive(Default)]
struct Fates {
    /// `run_in_loop` calls that returned `Ok` so far.
    accepted: AtomicUsize,
    ran: AtomicUsize,
    dropped: AtomicUsize,
}

/// Travels inside a closure: counts it as dropped unless the closure ran.
struct Guard {
    fates: Arc<Fates>,
    ran: bool,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !self.ran {
            self.fates.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// One round: a base in its own thread runs its loop (a little, or not at all) and is dropped
/// while 4 threads hammer `run_in_loop`.
fn drop_mid_hammering(m: Method, round: usize) {
    const HAMMERS: usize = 4;
    let fates = Arc::new(Fates::default());
    let dropped_flag = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(HAMMERS + 1));
    let (tx, rx) = mpsc::channel();
    let owner = {
        let (fates, dropped_flag, start) = (fates.clone(), dropped_flag.clone(), start.clone());
        std::thread::spawn(move || {
            let mut b = base(m);
            let ev = b.new_timer(|_, _, _| {}).unwrap();
            tx.send((b.handle().unwrap(), ev)).unwrap();
            start.wait();
            // Vary the moment of the drop: before the loop ever ran, or after some closures
            // (bounded, so a loop starved of CPU does not make a round take seconds).
            let ran_before_drop = [0, 1, 50, 500][round % 4];
            // NONBLOCK: running commands is internal work, which would not end a ONCE run.
            while fates.ran.load(Ordering::SeqCst) < ran_before_drop
                && fates.accepted.load(Ordering::SeqCst) < 20_000
            {
                b.run(LoopFlags::NONBLOCK).unwrap();
            }
            drop(b);
            dropped_flag.store(true, Ordering::SeqCst);
        })
    };
    let (h, ev): (Handle, Event) = rx.recv().unwrap();
    let hammers: Vec<_> = (0..HAMMERS)
        .map(|_| {
            let (h, fates, dropped_flag, start) = (
                h.clone(),
                fates.clone(),
                dropped_flag.clone(),
                start.clone(),
            );
            std::thread::spawn(move || {
                start.wait();
                let (mut accepted, mut refused) = (0usize, 0usize);
                while refused < 100 {
                    let after_drop = dropped_flag.load(Ordering::SeqCst);
                    let g = Guard {
                        fates: fates.clone(),
                        ran: false,
                    };
                    let r = h.run_in_loop(move |_| {
                        let mut g = g;
                        g.ran = true;
                        g.fates.ran.fetch_add(1, Ordering::SeqCst);
                    });
                    match r {
                        Ok(()) => {
                            assert!(refused == 0, "accepted after a refusal");
                            assert!(!after_drop, "accepted after the base was dropped");
                            accepted += 1;
                            if fates.accepted.fetch_add(1, Ordering::SeqCst) > 20_000 {
                                // Still hammering, but leave the owner some CPU to drop.
                                std::thread::yield_now();
                            }
                        }
                        Err(e) => {
                            assert_eq!(e.kind(), ErrorKind::NotConnected, "{e}");
                            refused += 1;
                        }
                    }
                }
                accepted
            })
        })
        .collect();
    owner.join().unwrap();
    let accepted: usize = hammers.into_iter().map(|t| t.join().unwrap()).sum();
    // `h` is still alive, so nothing was dropped by the handles' shared state going away.
    let (ran, dropped) = (
        fates.ran.load(Ordering::SeqCst),
        fates.dropped.load(Ordering::SeqCst),
    );
    let refused_drops = HAMMERS * 100;
    assert_eq!(
        ran + dropped,
        accepted + refused_drops,
        "round {round}: {accepted} accepted, {ran} ran, {} dropped unrun at the drop: \
         {} accepted closures neither ran nor were dropped",
        dropped - refused_drops.min(dropped),
        (accepted + refused_drops).saturating_sub(ran + dropped)
    );
    assert_eq!(
        h.failed_commands() as usize,
        dropped - refused_drops,
        "round {round}: the closures dropped with the base are counted"
    );
    assert_eq!(h.wake().unwrap_err().kind(), ErrorKind::NotConnected);
    assert_eq!(
        h.run_in_loop(|_| {}).unwrap_err().kind(),
        ErrorKind::NotConnected
    );
    assert_eq!(
        h.activate(ev, What::TIMEOUT, 1).unwrap_err().kind(),
        ErrorKind::NotConnected
    );
    assert_eq!(h.add(ev, None).unwrap_err().kind(), ErrorKind::NotConnected);
    assert_eq!(
        h.loopexit(None).unwrap_err().kind(),
        ErrorKind::NotConnected
    );
    assert_eq!(h.loopbreak().unwrap_err().kind(), ErrorKind::NotConnected);
    for r in [
        h.add_blocking(ev, None),
        h.del_blocking(ev),
        h.free_blocking(ev),
    ] {
        assert_eq!(r.unwrap_err().kind(), ErrorKind::NotConnected);
    }
}

/// The base id in a handle's `Debug` (`Handle { base: 3, fd: 7 }`).
fn base_id(h: &Handle) -> String {
    let s = format!("{h:?}");
    let rest = s.split("base: ").nth(1).expect("base id in Debug");
    rest.split(',').next().unwrap().trim().to_string()
}

mod more {
    use super::*;

    on_every_backend! {
        fn dropping_a_base_warns_only_about_commands_left_queued(m) {
            let _w = watchdog("dropping_a_base_warns_only_about_commands_left_queued");
            capture_logs();
            // Nothing queued: no warning, nothing counted.
            let mut b = base(m);
            let h = b.handle().unwrap();
            let needle = format!("event base {} dropped", base_id(&h));
            drop(b);
            assert!(warnings_about(&needle).is_empty(), "{:?}", warnings_about(&needle));
            assert_eq!(h.failed_commands(), 0);
            // One command left in the queue: one warning, one failure.
            let mut b = base(m);
            let h = b.handle().unwrap();
            let needle = format!("event base {} dropped", base_id(&h));
            let h2 = h.clone();
            std::thread::spawn(move || h2.run_in_loop(|_| {}).unwrap()).join().unwrap();
            drop(b);
            let warned = warnings_about(&needle);
            assert_eq!(warned.len(), 1, "{warned:?}");
            assert!(warned[0].contains("with 1 Handle command"), "{}", warned[0]);
            assert_eq!(h.failed_commands(), 1);
        }
    }
}
