//! Finalizers (libevent's event_finalize / event_free_finalize): the finalizer runs on the loop
//! thread once the event can no longer run, the event refuses new work meanwhile, and base
//! teardown runs pending finalizers.
mod util;
use evrs::{LoopFlags, What};
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;
use util::*;

on_every_backend! {
    fn finalizer_replaces_the_callback_and_blocks_new_work(m) {
        let mut b = base(m);
        let (x, y) = pair();
        let l = log();
        let l1 = l.clone();
        let ev = b.new_event(fd(&y), What::READ | What::PERSIST, move |_, _, _| {
            l1.borrow_mut().push("callback".into());
        }).unwrap();
        b.add(ev, Some(Duration::from_millis(1))).unwrap();
        let l2 = l.clone();
        b.finalize(ev, move |base, e| {
            assert_eq!(e, ev);
            assert_eq!(base.pending(e, What::all()).unwrap().0, What::empty());
            l2.borrow_mut().push("finalizer".into());
        }).unwrap();
        // While finalizing: add fails, activate is ignored, del is a no-op success.
        assert!(b.add(ev, None).is_err());
        b.activate(ev, What::READ, 1).unwrap();
        b.del(ev).unwrap();
        assert!(b.finalize(ev, |_, _| {}).is_err(), "finalize twice");
        write(&x, b"data"); // the old callback must not run any more
        b.run(LoopFlags::NONBLOCK | LoopFlags::ONCE).unwrap();
        assert_eq!(entries(&l), ["finalizer"]);
        // Not freed: the handle stays valid and can be re-assigned.
        b.assign(ev, -1, What::empty(), |_, _, _| {}).unwrap();
        drop(y);
    }

    fn free_finalize_from_inside_its_own_callback(m) {
        let mut b = base(m);
        let l = log();
        let l1 = l.clone();
        let ev = b.new_event(-1, What::PERSIST, move |base, ev, _| {
            l1.borrow_mut().push("callback".into());
            let l2 = l1.clone();
            base.free_finalize(ev, move |_, _| l2.borrow_mut().push("finalizer".into())).unwrap();
        }).unwrap();
        b.add(ev, Some(Duration::from_millis(1))).unwrap();
        b.dispatch().unwrap();
        assert_eq!(entries(&l), ["callback", "finalizer"]);
        assert!(!b.is_initialized(ev), "free_finalize frees the event");
    }

    fn base_teardown_runs_pending_finalizers(m) {
        let mut b = base(m);
        let ran = Rc::new(Cell::new(0));
        for _ in 0..3 {
            let ev = b.new_timer(|_, _, _| {}).unwrap();
            let r = ran.clone();
            b.free_finalize(ev, move |_, _| r.set(r.get() + 1)).unwrap();
        }
        b.leave_registered("the three finalizers still queued: dropping the base must run them");
        assert_eq!(ran.get(), 3);
    }

    fn finalizer_of_a_stale_handle_is_an_error(m) {
        let mut b = base(m);
        let ev = b.new_timer(|_, _, _| {}).unwrap();
        b.free(ev).unwrap();
        assert!(b.finalize(ev, |_, _| {}).is_err());
    }

    fn finalizing_a_persistent_event_without_a_timeout_ends_once_the_finalizer_ran(m) {
        // (Persistent, no interval: the kind of event the loop's fast path calls directly,
        // which must not take a finalizer.)
        let mut b = base(m);
        let ev = b.new_event(-1, What::PERSIST, |_, _, _| panic!("the callback ran")).unwrap();
        b.add(ev, None).unwrap();
        let done = Rc::new(Cell::new(0));
        let d = done.clone();
        b.finalize(ev, move |_, _| d.set(d.get() + 1)).unwrap();
        b.run(LoopFlags::NONBLOCK | LoopFlags::ONCE).unwrap();
        assert_eq!(done.get(), 1);
        // Finalization is over: the event takes new work again.
        let runs = Rc::new(Cell::new(0));
        let r = runs.clone();
        b.assign(ev, -1, What::PERSIST, move |_, _, _| r.set(r.get() + 1)).unwrap();
        b.add(ev, None).unwrap();
        b.activate(ev, What::TIMEOUT, 1).unwrap();
        b.run(LoopFlags::NONBLOCK).unwrap();
        assert_eq!((done.get(), runs.get()), (1, 1));
        b.verify().unwrap();
        b.free(ev).unwrap();
    }

    fn freeing_an_event_that_is_finalizing_drops_its_finalizer(m) {
        let mut b = base(m);
        let ev = b.new_timer(|_, _, _| panic!("the callback ran")).unwrap();
        b.activate(ev, What::TIMEOUT, 1).unwrap();
        b.finalize(ev, |_, _| panic!("the finalizer ran")).unwrap();
        b.free(ev).unwrap();
        b.verify().unwrap();
        b.run(LoopFlags::NONBLOCK).unwrap();
        b.verify().unwrap();
    }
}
