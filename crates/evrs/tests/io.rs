//! fd readiness: READ, WRITE, CLOSED, PERSIST, ET, several events per fd, dup'd fds, bad fds.
mod util;
use evrs::{LoopFlags, Method, RunOutcome, What};
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;
use util::*;

on_every_backend! {
    fn read_readiness_runs_callback_once_and_deletes_nonpersistent(m) {
        let mut b = base(m);
        let (x, y) = pair();
        let hits = Rc::new(Cell::new(0));
        let h = hits.clone();
        let ev = b.new_event(fd(&y), What::READ, move |base, ev, what| {
            assert_eq!(what, What::READ);
            // Deleted before the callback runs: no longer pending.
            assert_eq!(base.pending(ev, What::READ).unwrap().0, What::empty());
            h.set(h.get() + 1);
        }).unwrap();
        b.add(ev, None).unwrap();
        write(&x, b"a");
        assert_eq!(b.dispatch().unwrap(), RunOutcome::NoEvents);
        assert_eq!(hits.get(), 1);
    }

    fn write_readiness(m) {
        let mut b = base(m);
        let (_x, y) = pair();
        let got = Rc::new(Cell::new(What::empty()));
        let g = got.clone();
        let ev = b.new_event(fd(&y), What::WRITE, move |_, _, what| g.set(what)).unwrap();
        b.add(ev, None).unwrap();
        b.dispatch().unwrap();
        assert_eq!(got.get(), What::WRITE);
    }

    fn persistent_event_keeps_firing_until_deleted(m) {
        let mut b = base(m);
        let (x, y) = pair();
        let n = Rc::new(Cell::new(0));
        let c = n.clone();
        write(&x, b"go");
        let ev = b.new_event(fd(&y), What::READ | What::PERSIST, move |base, ev, _| {
            assert!(!read_all(&y).is_empty());
            c.set(c.get() + 1);
            // A persistent event is still pending inside its callback.
            assert!(base.pending(ev, What::READ).unwrap().0.contains(What::READ));
            if c.get() == 3 {
                base.del(ev).unwrap();
            } else {
                write(&x, b"more");
            }
        }).unwrap();
        b.add(ev, None).unwrap();
        within(std::time::Duration::from_secs(10), || b.dispatch().unwrap());
        assert_eq!(n.get(), 3);
    }

    fn several_events_on_one_fd_each_get_readiness_newest_first(m) {
        let mut b = base(m);
        let (x, y) = pair();
        let l = log();
        let mut evs = Vec::new();
        for name in ["first", "second", "third"] {
            let l = l.clone();
            let ev = b.new_event(fd(&y), What::READ, move |_, _, _| l.borrow_mut().push(name.into())).unwrap();
            b.add(ev, None).unwrap();
            evs.push(ev);
        }
        let wl = l.clone();
        let w = b.new_event(fd(&y), What::WRITE, move |_, _, _| wl.borrow_mut().push("writer".into())).unwrap();
        b.add(w, None).unwrap();
        write(&x, b"z");
        b.run(LoopFlags::ONCE).unwrap();
        let got = entries(&l);
        assert_eq!(got.len(), 4, "{got:?}");
        let readers: Vec<_> = got.iter().filter(|s| *s != "writer").cloned().collect();
        assert_eq!(readers, ["third", "second", "first"]);
    }

    fn closed_event_reports_peer_close(m) {
        let mut b = base(m);
        let (x, y) = pair();
        let got = Rc::new(Cell::new(What::empty()));
        let g = got.clone();
        let ev = b.new_event(fd(&y), What::CLOSED, move |_, _, what| g.set(what)).unwrap();
        b.add(ev, None).unwrap();
        drop(x);
        if m == Method::Select {
            // select cannot report early close: the event stays pending.
            b.run(LoopFlags::NONBLOCK).unwrap();
            assert_eq!(got.get(), What::empty());
            b.del(ev).unwrap();
        } else {
            b.dispatch().unwrap();
            assert!(got.get().contains(What::CLOSED), "{:?}", got.get());
        }
    }

    fn dup_fds_are_independent_registrations(m) {
        let mut b = base(m);
        let (x, y) = pair();
        // SAFETY-free: dup via std.
        let y2 = y.try_clone().unwrap();
        let hits = Rc::new(Cell::new(0));
        for s in [&y, &y2] {
            let h = hits.clone();
            let ev = b.new_event(fd(s), What::READ, move |_, _, _| h.set(h.get() + 1)).unwrap();
            b.add(ev, None).unwrap();
        }
        write(&x, b"q");
        b.dispatch().unwrap();
        assert_eq!(hits.get(), 2);
    }

    /// libevent's rule, opted into: an I/O event on fd -1 is added and never polled; its
    /// timeout, activations and deletion work, and `verify` holds throughout.
    fn unpolled_negative_fd_events_are_added_and_time_out(m) {
        let mut b = base(m);
        b.allow_unpolled_negative_fds(true);
        let fired = Rc::new(Cell::new(What::empty()));
        let f = fired.clone();
        let ev = b.new_event(-1, What::READ | What::PERSIST, move |base, _, what| {
            f.set(f.get() | what);
            if what.contains(What::TIMEOUT) {
                base.loopbreak();
            }
        }).unwrap();
        b.add(ev, Some(Duration::from_millis(20))).unwrap();
        assert_eq!(b.pending(ev, What::READ | What::TIMEOUT).unwrap().0, What::READ | What::TIMEOUT);
        // Counted once as inserted and once as timed, as libevent counts it.
        assert_eq!(b.num_events(evrs::Count::Added), 2);
        b.verify().unwrap();
        b.activate(ev, What::READ, 1).unwrap();
        b.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
        assert_eq!(fired.get(), What::READ);
        b.run(LoopFlags::empty()).unwrap();
        assert!(fired.get().contains(What::TIMEOUT));
        b.verify().unwrap();
        b.del(ev).unwrap();
        assert_eq!(b.num_events(evrs::Count::Added), 0);
        b.verify().unwrap();
        // Off again: refused, as by default.
        b.allow_unpolled_negative_fds(false);
        assert!(b.add(ev, None).is_err());
        b.free(ev).unwrap();
    }

    fn invalid_and_closed_fds_are_refused_and_base_stays_usable(m) {
        let mut b = base(m);
        let ev = b.new_event(-1, What::READ, |_, _, _| {}).unwrap();
        assert!(b.add(ev, None).is_err());
        let (x, y) = pair();
        // A closed number no parallel test can be handed (`fd(&y)` after `drop(y)` could
        // be reopened by one before the add, and then the add succeeds).
        let raw = closed_fd(m, &y);
        drop(y);
        let ev2 = b.new_event(raw, What::READ, |_, _, _| {}).unwrap();
        let e = b.add(ev2, None).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EBADF), "{e}");
        assert_eq!(b.pending(ev2, What::READ).unwrap().0, What::empty());
        // Still usable.
        let (p, q) = pair();
        let ok = Rc::new(Cell::new(false));
        let o = ok.clone();
        let ev3 = b.new_event(fd(&q), What::READ, move |_, _, _| o.set(true)).unwrap();
        b.add(ev3, None).unwrap();
        write(&p, b"1");
        b.dispatch().unwrap();
        assert!(ok.get());
        drop(x);
    }

    fn a_readiness_consumed_before_the_wait_is_reported_at_most_once(m) {
        // The fd becomes readable while the loop is not waiting, and the program reads it
        // before the next wait. epoll, poll and select look at the fd during the wait and
        // report nothing; io_uring reports the wake-up it saw, once (a spurious readiness:
        // the read gets EAGAIN). Never more, never a spin.
        let mut b = base(m);
        let (x, y) = pair();
        let n = Rc::new(Cell::new(0));
        let c = n.clone();
        let yfd = fd(&y);
        let ev = b.new_event(yfd, What::READ | What::PERSIST, move |_, _, _| {
            c.set(c.get() + 1);
            let mut buf = [0u8; 8];
            // SAFETY: a valid buffer; the fd stays open for the test.
            let r = unsafe { libc::read(yfd, buf.as_mut_ptr().cast(), buf.len()) };
            assert_eq!(r, -1, "nothing to read: the byte was taken before the wait");
        }).unwrap();
        b.add(ev, None).unwrap();
        b.run(LoopFlags::NONBLOCK | LoopFlags::ONCE).unwrap(); // the fd is watched
        write(&x, b"!");
        std::thread::sleep(Duration::from_millis(5)); // the kernel's wake-up happens now
        assert_eq!(read_all(&y), b"!");
        for _ in 0..5 {
            b.run(LoopFlags::NONBLOCK | LoopFlags::ONCE).unwrap();
        }
        let most = if m == Method::IoUring { 1 } else { 0 };
        assert!(n.get() <= most, "{} reports of a consumed readiness on {m}", n.get());
        b.free(ev).unwrap();
    }

    fn edge_triggered_fires_once_per_edge_where_supported(m) {
        let mut b = base(m);
        let (x, y) = pair();
        let n = Rc::new(Cell::new(0));
        let c = n.clone();
        let ev = b.new_event(fd(&y), What::READ | What::PERSIST | What::ET, move |_, _, what| {
            assert!(what.contains(What::READ));
            c.set(c.get() + 1);
        }).unwrap();
        b.add(ev, None).unwrap();
        write(&x, b"abc");
        for _ in 0..3 {
            // NONBLOCK alone iterates while callbacks keep coming (level-triggered would
            // never stop); with ONCE it stops after one round of callbacks.
            b.run(LoopFlags::NONBLOCK | LoopFlags::ONCE).unwrap();
        }
        if m.features().contains(evrs::Features::ET) {
            assert_eq!(n.get(), 1, "edge-triggered: one callback for one edge");
        } else {
            assert_eq!(n.get(), 3, "level-triggered backends ignore ET");
        }
        b.free(ev).unwrap();
    }
}

#[test]
fn select_refuses_fds_beyond_fd_setsize() {
    let _w = watchdog_here(WATCHDOG_BOUND);
    let mut b = base(Method::Select);
    let (_x, y) = pair();
    // SAFETY: dup2 onto an unused high number; we close it below.
    let high = unsafe { libc::fcntl(fd(&y), libc::F_DUPFD_CLOEXEC, 1500) };
    if high < 0 {
        eprintln!("cannot dup to fd >= 1500 (RLIMIT_NOFILE too low); skipping");
        return;
    }
    let ev = b.new_event(high, What::READ, |_, _, _| {}).unwrap();
    let e = b.add(ev, None).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("select"), "{e}");
    // SAFETY: we own `high`.
    unsafe { libc::close(high) };
}

#[test]
fn epoll_change_list_coalesces_changes_within_an_iteration() {
    let _w = watchdog_here(WATCHDOG_BOUND);
    let mut b = base(Method::Epoll);
    let (x, y) = pair();
    let n = Rc::new(Cell::new(0));
    let c = n.clone();
    write(&x, b"first");
    // A non-persistent event is deleted before its callback and re-added inside it, several
    // times over: within one iteration that nets out to (at most) one epoll_ctl.
    let ev = b
        .new_event(fd(&y), What::READ, move |base, ev, _| {
            read_all(&y);
            c.set(c.get() + 1);
            if c.get() < 50 {
                for _ in 0..3 {
                    base.add(ev, None).unwrap();
                    base.del(ev).unwrap();
                }
                base.add(ev, None).unwrap();
                write(&x, b"again");
            }
        })
        .unwrap();
    b.add(ev, None).unwrap();
    let before = b.backend_ctl_calls();
    b.dispatch().unwrap();
    assert_eq!(n.get(), 50);
    let calls = b.backend_ctl_calls() - before;
    // 49 re-arms (one MOD each, issued because a DEL was cancelled) plus the final DEL.
    assert!(calls <= 50, "{calls} epoll_ctl calls for 50 iterations");
}
