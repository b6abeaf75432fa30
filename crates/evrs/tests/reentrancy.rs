//! Callbacks may add, del, activate, re-assign or free any event — themselves included — and
//! stale or foreign handles are refused.
mod util;
use evrs::{EventBase, LoopFlags, What};
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;
use util::*;

/// Tracks drops of a closure's captured state, to prove freed closures are released.
struct DropFlag(Rc<Cell<bool>>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

on_every_backend! {
    fn callback_frees_itself(m) {
        let mut b = base(m);
        let dropped = Rc::new(Cell::new(false));
        let flag = DropFlag(dropped.clone());
        let calls = Rc::new(Cell::new(0));
        let c = calls.clone();
        let ev = b.new_event(-1, What::PERSIST, move |base, ev, _| {
            let _keep = &flag;
            base.free(ev).unwrap();
            // The closure is still running: its state must not be gone yet.
            assert!(!_keep.0.get());
            // Our own handle is stale now.
            assert!(base.add(ev, None).is_err());
            c.set(c.get() + 1); // counted once its assertions held
        }).unwrap();
        b.add(ev, Some(Duration::from_millis(1))).unwrap();
        b.dispatch().unwrap();
        assert_eq!(calls.get(), 1);
        assert!(dropped.get(), "closure dropped after it returned");
        assert!(b.del(ev).is_err());
    }

    fn callback_frees_another_active_event_which_then_never_runs(m) {
        let mut b = base(m);
        let victim = b.new_timer(|_, _, _| panic!("freed event ran")).unwrap();
        let killed = Rc::new(Cell::new(false));
        let k = killed.clone();
        let killer = b.new_timer(move |base, _, _| {
            base.free(victim).unwrap();
            k.set(true);
        }).unwrap();
        b.activate(killer, What::TIMEOUT, 1).unwrap();
        b.activate(victim, What::TIMEOUT, 1).unwrap();
        b.dispatch().unwrap();
        assert!(killed.get(), "the killer ran");
        assert!(!b.is_initialized(victim));
    }

    fn callback_deletes_another_active_event(m) {
        let mut b = base(m);
        let victim = b.new_timer(|_, _, _| panic!("deleted event ran")).unwrap();
        let killed = Rc::new(Cell::new(false));
        let k = killed.clone();
        let killer = b.new_timer(move |base, _, _| {
            base.del(victim).unwrap();
            k.set(true);
        }).unwrap();
        b.activate(killer, What::TIMEOUT, 1).unwrap();
        b.activate(victim, What::TIMEOUT, 1).unwrap();
        b.dispatch().unwrap();
        assert!(killed.get(), "the killer ran");
        assert!(b.is_initialized(victim));
    }

    fn callback_creates_and_adds_new_events(m) {
        let mut b = base(m);
        let depth = Rc::new(Cell::new(0));
        fn spawn(base: &mut EventBase, depth: Rc<Cell<u32>>) {
            let ev = base.new_timer(move |base, ev, _| {
                depth.set(depth.get() + 1);
                base.free(ev).unwrap();
                if depth.get() < 50 {
                    spawn(base, depth.clone());
                }
            }).unwrap();
            base.add(ev, Some(Duration::ZERO)).unwrap();
        }
        spawn(&mut b, depth.clone());
        b.dispatch().unwrap();
        assert_eq!(depth.get(), 50);
        assert_eq!(b.num_events(evrs::Count::Added), 0);
    }

    fn callback_readds_itself_with_a_timeout(m) {
        let mut b = base(m);
        let n = Rc::new(Cell::new(0));
        let c = n.clone();
        let ev = b.new_timer(move |base, ev, _| {
            c.set(c.get() + 1);
            if c.get() < 5 {
                base.add(ev, Some(Duration::from_millis(1))).unwrap();
            }
        }).unwrap();
        b.add(ev, Some(Duration::from_millis(1))).unwrap();
        b.dispatch().unwrap();
        assert_eq!(n.get(), 5);
    }

    fn callback_activates_itself(m) {
        let mut b = base(m);
        let n = Rc::new(Cell::new(0));
        let c = n.clone();
        let ev = b.new_timer(move |base, ev, _| {
            c.set(c.get() + 1);
            if c.get() < 3 {
                base.activate(ev, What::TIMEOUT, 1).unwrap();
            }
        }).unwrap();
        b.activate(ev, What::TIMEOUT, 1).unwrap();
        b.run(LoopFlags::NONBLOCK).unwrap();
        assert_eq!(n.get(), 3);
    }

    fn callback_reassigns_itself(m) {
        let mut b = base(m);
        let l = log();
        let l1 = l.clone();
        let ev = b.new_timer(move |base, ev, _| {
            l1.borrow_mut().push("old".into());
            let l2 = l1.clone();
            base.assign(ev, -1, What::empty(), move |_, _, _| l2.borrow_mut().push("new".into())).unwrap();
            base.activate(ev, What::TIMEOUT, 1).unwrap();
        }).unwrap();
        b.activate(ev, What::TIMEOUT, 1).unwrap();
        b.run(LoopFlags::NONBLOCK).unwrap();
        assert_eq!(entries(&l), ["old", "new"]);
    }

    fn freed_slot_reuse_does_not_confuse_a_running_callback(m) {
        // The callback frees itself and creates a new event that reuses its slot: the new
        // closure must be kept, the old one dropped.
        let mut b = base(m);
        let l = log();
        let l1 = l.clone();
        let ev = b.new_timer(move |base, ev, _| {
            base.free(ev).unwrap();
            let l2 = l1.clone();
            let fresh = base.new_timer(move |_, _, _| l2.borrow_mut().push("fresh".into())).unwrap();
            assert_ne!(fresh, ev);
            base.activate(fresh, What::TIMEOUT, 1).unwrap();
        }).unwrap();
        b.activate(ev, What::TIMEOUT, 1).unwrap();
        b.run(LoopFlags::NONBLOCK).unwrap();
        assert_eq!(entries(&l), ["fresh"]);
    }

    fn callback_deletes_and_readds_its_fd_event(m) {
        let mut b = base(m);
        let (x, y) = pair();
        let n = Rc::new(Cell::new(0));
        let c = n.clone();
        write(&x, b"1");
        let ev = b.new_event(fd(&y), What::READ, move |base, ev, _| {
            read_all(&y);
            c.set(c.get() + 1);
            if c.get() < 4 {
                base.add(ev, None).unwrap();
                base.del(ev).unwrap();
                base.add(ev, None).unwrap();
                write(&x, b"more");
            }
        }).unwrap();
        b.add(ev, None).unwrap();
        within(Duration::from_secs(5), || b.dispatch().unwrap());
        assert_eq!(n.get(), 4);
    }

    fn running_event_is_visible_inside_callbacks_only(m) {
        let mut b = base(m);
        assert_eq!(b.running_event(), None);
        let ok = Rc::new(Cell::new(false));
        let o = ok.clone();
        let ev = b.new_timer(move |base, ev, _| o.set(base.running_event() == Some(ev))).unwrap();
        b.activate(ev, What::TIMEOUT, 1).unwrap();
        b.dispatch().unwrap();
        assert!(ok.get());
        assert_eq!(b.running_event(), None);
    }

    fn handles_of_another_base_are_refused(m) {
        let mut a = base(m);
        let mut b2 = base(m);
        let ev = a.new_timer(|_, _, _| {}).unwrap();
        let e = b2.add(ev, None).unwrap_err();
        assert!(e.to_string().contains("another event base"), "{e}");
        assert!(b2.activate(ev, What::TIMEOUT, 1).is_err());
        assert!(b2.free(ev).is_err());
        a.add(ev, Some(Duration::from_millis(1))).unwrap();
        a.dispatch().unwrap();
    }

    fn del_of_a_non_pending_event_is_a_noop(m) {
        let mut b = base(m);
        let ev = b.new_timer(|_, _, _| {}).unwrap();
        b.del(ev).unwrap();
        b.del(ev).unwrap();
        assert_eq!(b.pending(ev, What::all()).unwrap().0, What::empty());
    }

    fn assign_on_a_pending_event_is_refused(m) {
        let mut b = base(m);
        let ev = b.new_timer(|_, _, _| {}).unwrap();
        b.add(ev, Some(Duration::from_secs(5))).unwrap();
        assert!(b.assign(ev, -1, What::empty(), |_, _, _| {}).is_err());
        b.del(ev).unwrap();
        b.assign(ev, -1, What::empty(), |_, _, _| {}).unwrap();
    }

    fn invalid_event_definitions_are_refused(m) {
        let mut b = base(m);
        assert!(b.new_event(libc::SIGUSR1, What::SIGNAL | What::READ, |_, _, _| {}).is_err());
        assert!(b.new_signal(0, |_, _, _| {}).is_err());
        assert!(b.new_signal(65, |_, _, _| {}).is_err());
        assert!(b.new_signal(libc::SIGKILL, |_, _, _| {}).is_err());
        assert!(b.new_signal(libc::SIGSTOP, |_, _, _| {}).is_err());
        let ev = b.new_timer(|_, _, _| {}).unwrap();
        assert!(b.set_priority(ev, 5).is_err());
        assert!(b.priority_init(0).is_err());
        assert!(b.priority_init(256).is_err());
        b.priority_init(4).unwrap();
        b.set_priority(ev, 3).unwrap();
    }
}

#[test]
fn a_panicking_callback_leaves_the_base_usable() {
    let _w = watchdog_here(WATCHDOG_BOUND);
    for m in evrs::Method::ALL {
        let mut b = base(m);
        let bad = b.new_timer(|_, _, _| panic!("callback failure")).unwrap();
        b.activate(bad, What::TIMEOUT, 1).unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| b.dispatch()));
        assert!(r.is_err(), "the panic propagates to the caller of run");
        assert!(!b.is_running());
        // The panicking closure may have left its state half-updated, so its event is freed
        // (not left pending as a zombie that calls it again).
        assert!(
            !b.is_initialized(bad),
            "{m}: the event whose callback panicked is freed"
        );
        b.verify().unwrap();
        // The same for a persistent fd event that stays pending across callbacks.
        let (x, y) = util::pair();
        let per = b
            .new_event(util::fd(&x), What::READ | What::PERSIST, |_, _, _| {
                panic!("io failure")
            })
            .unwrap();
        b.add(per, None).unwrap();
        std::io::Write::write_all(&mut &y, b"!").unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| b.dispatch()));
        assert!(r.is_err());
        assert!(
            !b.is_initialized(per),
            "{m}: persistent event freed after its panic"
        );
        assert_eq!(
            b.num_events(evrs::Count::Added),
            0,
            "{m}: nothing left pending"
        );
        b.verify().unwrap();
        let ok = Rc::new(Cell::new(false));
        let o = ok.clone();
        let good = b.new_timer(move |_, _, _| o.set(true)).unwrap();
        b.activate(good, What::TIMEOUT, 1).unwrap();
        b.dispatch().unwrap();
        assert!(ok.get(), "{m}: base usable after a panic");
    }
}

#[test]
fn a_callback_that_reassigns_its_event_then_panics_keeps_the_new_callback() {
    // The panic rule frees the event whose callback panicked, but only if that callback is
    // still the event's: one re-assigned meanwhile is a fresh closure, and the event stays.
    let _w = watchdog_here(WATCHDOG_BOUND);
    for m in evrs::Method::ALL {
        let mut b = base(m);
        let ran_new = Rc::new(Cell::new(false));
        let r = ran_new.clone();
        let ev = b
            .new_timer(move |base, ev, _| {
                let r = r.clone();
                base.assign(ev, -1, What::empty(), move |_, _, _| r.set(true))
                    .unwrap();
                panic!("after re-assigning");
            })
            .unwrap();
        b.activate(ev, What::TIMEOUT, 1).unwrap();
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| b.dispatch()));
        assert!(res.is_err(), "{m}: the panic propagates");
        assert!(b.is_initialized(ev), "{m}: the re-assigned event was freed");
        b.verify().unwrap();
        b.activate(ev, What::TIMEOUT, 1).unwrap();
        b.dispatch().unwrap();
        assert!(ran_new.get(), "{m}: the new callback did not run");
        b.free(ev).unwrap();
    }
}
