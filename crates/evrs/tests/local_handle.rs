//! `LocalHandle`: activations and wake-ups from same-thread code that holds no `&mut
//! EventBase` — served in order, without eventfd writes and without blocking the loop; and
//! deferred buffer callbacks, which ride on it.
mod util;
use evrs::buffer::EvBuffer;
use evrs::{Event, EventBase, LocalHandle, LoopFlags, RunOutcome, What};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};
use util::*;

type Trace = Rc<RefCell<Vec<&'static str>>>;

fn logger(b: &mut EventBase, name: &'static str, t: &Trace) -> Event {
    let t = t.clone();
    b.new_timer(move |_, _, what| {
        assert!(what.contains(What::TIMEOUT), "{what:?}");
        t.borrow_mut().push(name)
    })
    .unwrap()
}

on_every_backend! {
    fn activate_from_a_stored_closure_called_inside_another_callback(m) {
        let _w = watchdog("activate_from_a_stored_closure_called_inside_another_callback", util::WATCHDOG_BOUND);
        let mut b = base(m);
        let t: Trace = Rc::default();
        let target = logger(&mut b, "target", &t);
        let local = b.local_handle();
        // Code elsewhere (an executor's waker, say) that only has the local handle.
        let waker: Rc<dyn Fn()> = Rc::new(move || local.activate(target, What::TIMEOUT).unwrap());
        let tc = t.clone();
        let caller = b.new_timer(move |_, _, _| {
            tc.borrow_mut().push("caller");
            waker();
        }).unwrap();
        b.activate(caller, What::TIMEOUT, 1).unwrap();
        assert_eq!(within(Duration::from_secs(5), || b.dispatch()).unwrap(), RunOutcome::NoEvents);
        assert_eq!(*t.borrow(), ["caller", "target"]);
        b.verify().unwrap();
    }

    fn a_request_made_in_a_callback_is_served_without_another_poll(m) {
        let _w = watchdog("a_request_made_in_a_callback_is_served_without_another_poll", util::WATCHDOG_BOUND);
        let mut b = base(m);
        let polls = Rc::new(Cell::new(0));
        let p = polls.clone();
        let chk = b.new_check(move |_, _, _| p.set(p.get() + 1)).unwrap();
        b.add(chk, None).unwrap();
        let seen = Rc::new(Cell::new(None));
        let (s, p2) = (seen.clone(), polls.clone());
        let target = b.new_timer(move |_, _, _| s.set(Some(p2.get()))).unwrap();
        let local = b.local_handle();
        let first = b.new_timer(move |_, _, _| local.activate(target, What::TIMEOUT).unwrap()).unwrap();
        b.activate(first, What::TIMEOUT, 1).unwrap();
        b.run(LoopFlags::ONCE).unwrap();
        assert_eq!(seen.get(), Some(1), "served in the same iteration as the request");
        b.verify().unwrap();
        b.free(chk).unwrap();
    }

    fn requests_are_served_in_the_order_made(m) {
        let _w = watchdog("requests_are_served_in_the_order_made", util::WATCHDOG_BOUND);
        let mut b = base(m);
        let t: Trace = Rc::default();
        let a = logger(&mut b, "a", &t);
        let bb = logger(&mut b, "b", &t);
        let c = logger(&mut b, "c", &t);
        let local = b.local_handle();
        let l2 = local.clone();
        for ev in [c, a, bb] {
            l2.activate(ev, What::TIMEOUT).unwrap();
        }
        // Repeats before the loop takes them just add bits: one callback each.
        local.activate(c, What::READ).unwrap();
        b.run(LoopFlags::ONCE).unwrap();
        assert_eq!(*t.borrow(), ["c", "a", "b"]);
        b.verify().unwrap();
    }

    fn a_request_for_an_event_freed_meanwhile_is_dropped(m) {
        let _w = watchdog("a_request_for_an_event_freed_meanwhile_is_dropped", util::WATCHDOG_BOUND);
        let mut b = base(m);
        let t: Trace = Rc::default();
        let gone = b.new_timer(|_, _, _| panic!("freed event ran")).unwrap();
        let kept = logger(&mut b, "kept", &t);
        let local = b.local_handle();
        local.activate(gone, What::TIMEOUT).unwrap();
        local.activate(kept, What::TIMEOUT).unwrap();
        b.free(gone).unwrap();
        // Its slot is reused by a new event: the stale request must not hit it.
        let _reuser = b.new_timer(|_, _, _| panic!("request for a freed event hit its slot's new event")).unwrap();
        b.run(LoopFlags::ONCE).unwrap();
        assert_eq!(*t.borrow(), ["kept"]);
        b.verify().unwrap();
    }

    fn after_the_base_is_dropped_calls_fail_with_not_connected(m) {
        let _w = watchdog("after_the_base_is_dropped_calls_fail_with_not_connected", util::WATCHDOG_BOUND);
        let mut b = base(m);
        let ev = b.new_timer(|_, _, _| {}).unwrap();
        let local = b.local_handle();
        local.activate(ev, What::TIMEOUT).unwrap(); // pending when the base goes
        b.verify().unwrap();
        drop(b);
        assert_eq!(local.activate(ev, What::TIMEOUT).unwrap_err().kind(), std::io::ErrorKind::NotConnected);
        assert_eq!(local.wake().unwrap_err().kind(), std::io::ErrorKind::NotConnected);
        let clone = local.clone();
        assert_eq!(clone.wake().unwrap_err().kind(), std::io::ErrorKind::NotConnected);
    }

    fn an_event_of_another_base_is_refused(m) {
        let _w = watchdog("an_event_of_another_base_is_refused", util::WATCHDOG_BOUND);
        let mut b1 = base(m);
        let mut b2 = base(m);
        let foreign = b2.new_timer(|_, _, _| panic!("ran on the wrong base")).unwrap();
        let local = b1.local_handle();
        assert_eq!(local.activate(foreign, What::TIMEOUT).unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
        b1.run(LoopFlags::NONBLOCK).unwrap();
        b2.run(LoopFlags::NONBLOCK).unwrap();
        b1.verify().unwrap();
        b2.verify().unwrap();
    }

    fn no_eventfd_writes_and_no_blocking_for_local_requests(m) {
        let _w = watchdog("no_eventfd_writes_and_no_blocking_for_local_requests", util::WATCHDOG_BOUND);
        let mut b = base(m);
        let handle = b.handle().unwrap(); // the eventfd exists: it must still not be written
        let t: Trace = Rc::default();
        let target = logger(&mut b, "target", &t);
        // Something to block on for a long time if the loop ignored the request.
        let far = b.new_timer(|_, _, _| panic!("far timer fired")).unwrap();
        b.add(far, Some(Duration::from_secs(20))).unwrap();
        let local = b.local_handle();
        // From outside run: run(ONCE) must not block.
        local.activate(target, What::TIMEOUT).unwrap();
        let start = Instant::now();
        assert_eq!(b.run(LoopFlags::ONCE).unwrap(), RunOutcome::Exited);
        assert!(start.elapsed() < Duration::from_secs(2), "blocked: {:?}", start.elapsed());
        assert_eq!(*t.borrow(), ["target"]);
        // From inside callbacks, many times.
        let n = Rc::new(Cell::new(0));
        let (n2, l2) = (n.clone(), local.clone());
        let chain = b.new_timer(move |base, ev, _| {
            n2.set(n2.get() + 1);
            if n2.get() < 100 {
                l2.activate(ev, What::TIMEOUT).unwrap();
            } else {
                base.loopbreak();
            }
        }).unwrap();
        local.activate(chain, What::TIMEOUT).unwrap();
        let start = Instant::now();
        b.dispatch().unwrap();
        assert!(start.elapsed() < Duration::from_secs(2));
        assert_eq!(n.get(), 100);
        local.wake().unwrap();
        b.run(LoopFlags::NONBLOCK).unwrap();
        assert_eq!(handle.wake_writes(), 0, "a LocalHandle must never write the eventfd");
        b.del(far).unwrap();
        b.verify().unwrap();
    }

    fn a_pending_request_keeps_an_otherwise_empty_loop_running(m) {
        let _w = watchdog("a_pending_request_keeps_an_otherwise_empty_loop_running", util::WATCHDOG_BOUND);
        let mut b = base(m);
        let t: Trace = Rc::default();
        // Not added: only the local request makes it run.
        let target = logger(&mut b, "target", &t);
        b.local_handle().activate(target, What::TIMEOUT).unwrap();
        assert_eq!(within(Duration::from_secs(5), || b.dispatch()).unwrap(), RunOutcome::NoEvents);
        assert_eq!(*t.borrow(), ["target"]);
        b.verify().unwrap();
    }

    fn deferred_buffer_callbacks_use_the_local_handle_not_the_eventfd(m) {
        let _w = watchdog("deferred_buffer_callbacks_use_the_local_handle_not_the_eventfd", util::WATCHDOG_BOUND);
        let mut b = base(m);
        let handle = b.handle().unwrap();
        let buf = Rc::new(RefCell::new(EvBuffer::new()));
        // Buffer callbacks must be Send.
        let runs = std::sync::Arc::new(std::sync::Mutex::new((0usize, 0usize)));
        let r = runs.clone();
        buf.borrow_mut().add_cb(move |_buf, info| {
            let mut g = r.lock().unwrap();
            g.0 += 1;
            g.1 += info.n_added;
        });
        let ev = b.defer_buffer_callbacks(&buf).unwrap();
        buf.borrow_mut().add(b"hello ").unwrap();
        buf.borrow_mut().add(b"world").unwrap();
        assert_eq!(*runs.lock().unwrap(), (0, 0), "nothing inline");
        let start = Instant::now();
        b.dispatch().unwrap();
        assert!(start.elapsed() < Duration::from_secs(2));
        assert_eq!(*runs.lock().unwrap(), (1, 11), "one run with summed counts");
        // From inside a callback on the loop thread, too.
        let b2 = buf.clone();
        let writer = b.new_timer(move |_, _, _| b2.borrow_mut().add(b"again").unwrap()).unwrap();
        b.activate(writer, What::TIMEOUT, 1).unwrap();
        b.dispatch().unwrap();
        assert_eq!(*runs.lock().unwrap(), (2, 16));
        assert_eq!(handle.wake_writes(), 0, "deferred callbacks on the loop thread wrote the eventfd");
        b.verify().unwrap();
        // Dropping the buffer: the scheduled event frees itself at its next run.
        b.free(writer).unwrap(); // its closure holds a clone of the buffer
        drop(buf);
        b.activate(ev, What::TIMEOUT, 1).unwrap();
        b.dispatch().unwrap();
        assert!(!b.is_initialized(ev));
        b.verify().unwrap();
    }
}

/// `wake()` made from inside a callback must make the next iteration non-blocking ("makes
/// the loop run another iteration without blocking"). Returns how long the iteration after
/// the wake-up took to reach its check phase.
fn wake_from(m: evrs::Method, from_prepare: bool) -> Duration {
    let mut b = base(m);
    let local: LocalHandle = b.local_handle();
    let fallback = b.new_timer(|base, _, _| base.loopbreak()).unwrap();
    b.add(fallback, Some(Duration::from_secs(3))).unwrap();
    let checks = Rc::new(Cell::new(0));
    let took = Rc::new(Cell::new(Duration::ZERO));
    let woke_at = Rc::new(Cell::new(Instant::now()));
    let (c, tk, wa) = (checks.clone(), took.clone(), woke_at.clone());
    let chk = b
        .new_check(move |base, _, _| {
            c.set(c.get() + 1);
            if c.get() == 2 {
                tk.set(wa.get().elapsed());
                base.loopbreak();
            }
        })
        .unwrap();
    b.add(chk, None).unwrap();
    let mut started = vec![fallback, chk];
    let (l, wa) = (local.clone(), woke_at.clone());
    let done = Rc::new(Cell::new(false));
    if from_prepare {
        let p = b
            .new_prepare(move |_, _, _| {
                if !done.replace(true) {
                    // Skip the first iteration's wait with nothing active: wake.
                    wa.set(Instant::now());
                    l.wake().unwrap();
                }
            })
            .unwrap();
        b.add(p, None).unwrap();
        started.push(p);
        // The first prepare's wake makes iteration 1 non-blocking; its check is check #1,
        // so measure from the wake to check #1 instead.
        checks.set(1);
    } else {
        let ev = b
            .new_timer(move |_, _, _| {
                wa.set(Instant::now());
                l.wake().unwrap();
            })
            .unwrap();
        b.activate(ev, What::TIMEOUT, 1).unwrap();
    }
    b.dispatch().unwrap();
    b.verify().unwrap();
    for ev in started {
        b.free(ev).unwrap();
    }
    took.get()
}

#[test]
fn a_wake_from_inside_a_callback_makes_the_next_iteration_non_blocking() {
    let _w = watchdog(
        "a_wake_from_inside_a_callback_makes_the_next_iteration_non_blocking",
        util::WATCHDOG_BOUND,
    );
    for m in evrs::Method::ALL {
        let took = wake_from(m, false);
        assert!(
            took < Duration::from_secs(1),
            "{m}: blocked {took:?} after wake() in a callback"
        );
    }
}

#[test]
fn a_wake_from_inside_a_prepare_hook_makes_the_poll_non_blocking() {
    let _w = watchdog(
        "a_wake_from_inside_a_prepare_hook_makes_the_poll_non_blocking",
        util::WATCHDOG_BOUND,
    );
    for m in evrs::Method::ALL {
        let took = wake_from(m, true);
        assert!(
            took < Duration::from_secs(1),
            "{m}: blocked {took:?} after wake() in a prepare hook"
        );
    }
}

#[test]
fn a_wake_from_outside_run_makes_one_iteration_non_blocking() {
    let _w = watchdog(
        "a_wake_from_outside_run_makes_one_iteration_non_blocking",
        util::WATCHDOG_BOUND,
    );
    for m in evrs::Method::ALL {
        let mut b = base(m);
        let local = b.local_handle();
        let far = b.new_timer(|_, _, _| {}).unwrap();
        b.add(far, Some(Duration::from_secs(20))).unwrap();
        let checked = Rc::new(Cell::new(None));
        let c = checked.clone();
        let start = Instant::now();
        let chk = b
            .new_check(move |base, _, _| {
                c.set(Some(start.elapsed()));
                base.loopbreak();
            })
            .unwrap();
        b.add(chk, None).unwrap();
        local.wake().unwrap();
        b.dispatch().unwrap();
        let took = checked.get().unwrap();
        assert!(
            took < Duration::from_secs(2),
            "{m}: the first poll blocked {took:?}"
        );
        b.del(far).unwrap();
        b.verify().unwrap();
        b.free(chk).unwrap();
    }
}

mod deferred {
    use super::*;

    on_every_backend! {
        fn deferred_callbacks_coalesce_run_at_their_priority_in_order_and_never_write_the_eventfd(m) {
            let mut b = checked(evrs::EventConfig::new()
                .method(m)
                .flags(evrs::BaseFlags::IGNORE_ENV)
                .priorities(3)
                .build()
                .unwrap());
            let handle = b.handle().unwrap();
            let local = b.local_handle();
            let log = Rc::new(std::cell::RefCell::new(Vec::new()));
            let mk = |b: &mut evrs::EventBase, pri: usize, name: &'static str| {
                let l = log.clone();
                b.new_deferred(pri, move |_, _, what| {
                    assert_eq!(what, What::empty());
                    l.borrow_mut().push(name)
                })
                .unwrap()
            };
            let low = mk(&mut b, 2, "low");
            let a = mk(&mut b, 0, "a");
            let z = mk(&mut b, 0, "z");
            assert!(b.new_deferred(3, |_, _, _| {}).is_err(), "priority out of range");
            // Scheduled from a callback that holds no &mut EventBase for them.
            let l2 = local.clone();
            let kick = b
                .new_timer(move |_, _, _| {
                    for ev in [low, z, a, z, z] {
                        l2.defer(ev).unwrap();
                    }
                })
                .unwrap();
            b.set_priority(kick, 1).unwrap();
            b.activate(kick, What::TIMEOUT, 1).unwrap();
            for _ in 0..4 {
                b.run(LoopFlags::NONBLOCK).unwrap();
            }
            // Each ran once; the urgent ones first, in scheduling order; the low one last.
            assert_eq!(*log.borrow(), ["z", "a", "low"], "{m}");
            assert_eq!(handle.wake_writes(), 0, "{m}: no eventfd write for deferred callbacks");
            b.verify().unwrap();
        }
    }
}
