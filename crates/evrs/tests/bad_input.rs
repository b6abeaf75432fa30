//! Bad input is refused with an error and the base stays usable: absurd fds (no table
//! growth), `priority_init` from a running callback, panicking callbacks on a `SharedBase`.
mod util;
use evrs::{Count, EventBase, LoopFlags, What};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use util::*;

/// The process's resident set size in KiB.
fn vm_rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// The base still delivers readiness on a real fd.
fn still_usable(b: &mut EventBase) {
    let (x, y) = pair();
    let ok = Rc::new(Cell::new(false));
    let o = ok.clone();
    let ev = b
        .new_event(fd(&y), What::READ, move |_, _, _| o.set(true))
        .unwrap();
    b.add(ev, None).unwrap();
    write(&x, b"1");
    within(Duration::from_secs(5), || b.dispatch()).unwrap();
    assert!(ok.get());
    b.free(ev).unwrap();
}

on_every_backend! {
    fn absurd_fds_are_refused_without_growing_the_fd_table(m) {
        let _w = watchdog("absurd_fds_are_refused_without_growing_the_fd_table", util::WATCHDOG_BOUND);
        let mut b = base(m);
        for bad in [i32::MAX, 50_000_000, 1 << 20] {
            for what in [What::READ, What::WRITE | What::PERSIST, What::CLOSED] {
                let before = vm_rss_kib();
                let ev = b.new_event(bad, what, |_, _, _| panic!("ran for a bogus fd")).unwrap();
                let e = b.add(ev, None).unwrap_err();
                assert!(
                    matches!(e.kind(), std::io::ErrorKind::InvalidInput) || e.raw_os_error() == Some(libc::EBADF),
                    "{m} fd {bad}: {e}"
                );
                // With a timeout too: nothing half-added.
                assert!(b.add(ev, Some(Duration::from_secs(1))).is_err());
                let grown = vm_rss_kib().saturating_sub(before);
                // A table sized by the fd would be hundreds of MiB (or abort).
                assert!(grown < 64 * 1024, "{m} fd {bad}: RSS grew by {grown} KiB");
                assert_eq!(b.pending(ev, What::all()).unwrap().0 & !What::TIMEOUT, What::empty());
                b.del(ev).unwrap();
                b.free(ev).unwrap();
                b.verify().unwrap();
            }
        }
        assert_eq!(b.num_events(Count::Added), 0);
        still_usable(&mut b);
        b.verify().unwrap();
    }

    fn absurd_fds_on_a_shared_base(m) {
        let _w = watchdog("absurd_fds_on_a_shared_base", util::WATCHDOG_BOUND);
        let b = shared(m);
        for bad in [i32::MAX, 50_000_000] {
            let ev = b.new_event(bad, What::READ, |_, _, _| panic!("ran for a bogus fd")).unwrap();
            assert!(b.add(ev, None).is_err());
            b.free(ev).unwrap();
            b.verify().unwrap();
        }
        b.run(LoopFlags::NONBLOCK).unwrap();
        b.verify().unwrap();
    }

    fn priority_init_from_a_running_callback_is_refused(m) {
        let _w = watchdog("priority_init_from_a_running_callback_is_refused", util::WATCHDOG_BOUND);
        let mut b = base(m);
        b.priority_init(3).unwrap();
        let refused = Rc::new(Cell::new(None));
        let r = refused.clone();
        let ev = b.new_timer(move |base, _, _| {
            r.set(Some(base.priority_init(1).map_err(|e| e.kind())));
            assert_eq!(base.priorities(), 3);
        }).unwrap();
        b.set_priority(ev, 2).unwrap();
        let later = Rc::new(Cell::new(0));
        let l = later.clone();
        let other = b.new_timer(move |_, _, _| l.set(l.get() + 1)).unwrap();
        b.set_priority(other, 2).unwrap();
        b.activate(ev, What::TIMEOUT, 1).unwrap();
        b.activate(other, What::TIMEOUT, 1).unwrap();
        within(Duration::from_secs(5), || b.dispatch()).unwrap();
        assert_eq!(refused.get(), Some(Err(std::io::ErrorKind::ResourceBusy)));
        assert_eq!(later.get(), 1, "the rest of the pass ran");
        b.verify().unwrap();
        // Between runs it works.
        b.priority_init(1).unwrap();
        assert_eq!(b.priority(ev).unwrap(), 0);
        b.verify().unwrap();
        still_usable(&mut b);
    }

    fn priority_init_from_a_running_shared_callback_is_refused(m) {
        let _w = watchdog("priority_init_from_a_running_shared_callback_is_refused", util::WATCHDOG_BOUND);
        let b = shared(m);
        b.priority_init(3).unwrap();
        let refused = Arc::new(AtomicUsize::new(0));
        let r = refused.clone();
        let ev = b.new_timer(move |base, _, _| {
            if base.priority_init(1).is_err() {
                r.fetch_add(1, Ordering::SeqCst);
            }
        }).unwrap();
        b.set_priority(ev, 2).unwrap();
        b.activate(ev, What::TIMEOUT, 1).unwrap();
        b.dispatch().unwrap();
        assert_eq!(refused.load(Ordering::SeqCst), 1);
        b.verify().unwrap();
    }

    fn a_panicking_persistent_shared_callback_propagates_and_is_freed(m) {
        let _w = watchdog("a_panicking_persistent_shared_callback_propagates_and_is_freed", util::WATCHDOG_BOUND);
        let b = shared(m);
        let (x, y) = pair();
        let per = b.new_event(fd(&y), What::READ | What::PERSIST, |_, _, _| panic!("io failure")).unwrap();
        b.add(per, None).unwrap();
        write(&x, b"!");
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| b.dispatch()));
        assert!(r.is_err(), "the panic propagates to the caller of run");
        assert!(!b.is_running());
        assert!(!b.with(|base| base.is_initialized(per)), "persistent event freed after its panic");
        assert_eq!(b.num_events(Count::Added), 0);
        b.verify().unwrap();
        // A one-shot timer too.
        let bad = b.new_timer(|_, _, _| panic!("callback failure")).unwrap();
        b.activate(bad, What::TIMEOUT, 1).unwrap();
        assert!(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| b.dispatch())).is_err());
        assert!(!b.with(|base| base.is_initialized(bad)));
        b.verify().unwrap();
        // Usable: another thread can still drive it, and a new event runs.
        let ok = Arc::new(AtomicUsize::new(0));
        let o = ok.clone();
        let good = b.new_event(fd(&y), What::READ, move |_, _, _| {
            o.fetch_add(1, Ordering::SeqCst);
        }).unwrap();
        b.add(good, None).unwrap();
        let b2 = b.clone();
        let t = std::thread::spawn(move || b2.dispatch().unwrap());
        t.join().unwrap();
        assert_eq!(ok.load(Ordering::SeqCst), 1);
        b.verify().unwrap();
    }
}

mod internal_events {
    use super::*;

    on_every_backend! {
        fn the_bases_own_events_cannot_be_touched_through_a_handle(m) {
            let mut b = util::base(m);
            let _h = b.handle().unwrap(); // creates the internal notify event
            let sig = b.new_signal(libc::SIGWINCH, |_, _, _| {}).unwrap();
            b.add(sig, None).unwrap(); // creates the internal signal-pipe event
            b.loopexit(Some(std::time::Duration::from_secs(60))).unwrap(); // an internal timer
            let mut internal = Vec::new();
            let _ = b.foreach_event(|i| {
                if i.internal || (i.fd == -1 && i.timeout.is_some()) {
                    internal.push(i.event);
                }
                std::ops::ControlFlow::Continue(())
            });
            assert!(internal.len() >= 3, "{m}: {internal:?}");
            for ev in internal {
                let forged = evrs::Event::from_raw(ev.into_raw());
                assert!(b.free(forged).is_err(), "{m}: freed an internal event");
                assert!(b.del(forged).is_err());
                assert!(b.activate(forged, evrs::What::READ, 1).is_err());
                assert!(b.assign(forged, -1, evrs::What::empty(), |_, _, _| {}).is_err());
            }
            b.verify().unwrap();
            b.free(sig).unwrap();
            b.leave_registered(
                "the loopexit(60 s) timer the test forges a handle to: a loopexit cannot be \
                 cancelled, only run, and running it would take a minute",
            );
        }
    }
}
