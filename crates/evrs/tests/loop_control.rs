//! The loop: results, ONCE / NONBLOCK / NO_EXIT_ON_EMPTY, loopexit / loopbreak /
//! loopcontinue, priorities and activation order.
mod util;
use evrs::{EventConfig, LoopFlags, RunOutcome, What};
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;
use util::*;

fn prio_base(m: evrs::Method, n: usize) -> Checked {
    checked(
        EventConfig::new()
            .method(m)
            .flags(evrs::BaseFlags::IGNORE_ENV)
            .priorities(n)
            .build()
            .unwrap(),
    )
}

on_every_backend! {
    /// A hold keeps the loop running after its last event; releasing it (here from
    /// another thread, through the handle) lets it run out.
    fn a_hold_keeps_the_loop_from_running_out(m) {
        let mut b = base(m);
        assert_eq!(b.run(LoopFlags::NONBLOCK).unwrap(), RunOutcome::NoEvents);
        assert!(b.release_hold().is_err(), "released a hold never taken");
        b.hold_open();
        assert_eq!(b.holds(), 1);
        assert_eq!(b.run(LoopFlags::NONBLOCK).unwrap(), RunOutcome::Exited);
        let t = b.new_timer(|_, _, _| {}).unwrap();
        b.add(t, Some(Duration::from_millis(5))).unwrap();
        let h = b.handle().unwrap();
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(60));
            h.run_in_loop(|b| b.release_hold().unwrap()).unwrap();
        });
        let t0 = std::time::Instant::now();
        assert_eq!(b.run(LoopFlags::empty()).unwrap(), RunOutcome::NoEvents);
        assert!(t0.elapsed() >= Duration::from_millis(50), "ran out with the hold taken");
        assert_eq!(b.holds(), 0);
        releaser.join().unwrap();
        b.free(t).unwrap();
    }

    fn empty_base_returns_no_events(m) {
        let mut b = base(m);
        assert_eq!(b.dispatch().unwrap(), RunOutcome::NoEvents);
        assert_eq!(b.run(LoopFlags::NONBLOCK).unwrap(), RunOutcome::NoEvents);
        assert_eq!(b.run(LoopFlags::ONCE).unwrap(), RunOutcome::NoEvents);
    }

    fn active_events_run_in_activation_order(m) {
        let mut b = base(m);
        let l = log();
        let mut evs = Vec::new();
        for i in 0..10 {
            let l = l.clone();
            evs.push(b.new_timer(move |_, _, _| l.borrow_mut().push(i.to_string())).unwrap());
        }
        for &i in &[3usize, 1, 4, 0, 5, 9, 2, 6, 8, 7] {
            b.activate(evs[i], What::TIMEOUT, 1).unwrap();
        }
        // Activating an already active event keeps its place.
        b.activate(evs[3], What::READ, 1).unwrap();
        b.run(LoopFlags::NONBLOCK).unwrap();
        assert_eq!(entries(&l), ["3", "1", "4", "0", "5", "9", "2", "6", "8", "7"]);
    }

    fn activation_bits_accumulate(m) {
        let mut b = base(m);
        let got = Rc::new(Cell::new(What::empty()));
        let g = got.clone();
        let ev = b.new_timer(move |_, _, w| g.set(w)).unwrap();
        b.activate(ev, What::READ, 1).unwrap();
        b.activate(ev, What::WRITE, 1).unwrap();
        b.run(LoopFlags::NONBLOCK).unwrap();
        assert_eq!(got.get(), What::READ | What::WRITE);
    }

    fn only_the_most_urgent_priority_runs_per_iteration(m) {
        let mut b = prio_base(m, 3);
        let l = log();
        let mk = |b: &mut evrs::EventBase, name: &'static str, p: usize| {
            let l = l.clone();
            let ev = b.new_timer(move |_, _, _| l.borrow_mut().push(name.into())).unwrap();
            b.set_priority(ev, p).unwrap();
            ev
        };
        let low = mk(&mut b, "low", 2);
        let mid = mk(&mut b, "mid", 1);
        let high = mk(&mut b, "high", 0);
        let high2 = mk(&mut b, "high2", 0);
        for ev in [low, mid, high, high2] {
            b.activate(ev, What::TIMEOUT, 1).unwrap();
        }
        b.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
        // Most urgent first, activation order within a priority.
        assert_eq!(entries(&l), ["high", "high2", "mid", "low"]);
        l.borrow_mut().clear();
        // Per iteration: once priority 0's queue is done the loop polls again, so readiness
        // that arrived meanwhile (at priority 0) runs before the still-queued priority 1 and 2
        // events. A loop that ran every priority in one iteration would run them first.
        let (x, y) = pair();
        let lr = l.clone();
        let reader = b.new_event(fd(&y), What::READ, move |_, _, _| {
            read_all(&y);
            lr.borrow_mut().push("io".into());
        }).unwrap();
        b.set_priority(reader, 0).unwrap();
        b.add(reader, None).unwrap();
        let lw = l.clone();
        let writer = b.new_timer(move |_, _, _| {
            write(&x, b"!");
            lw.borrow_mut().push("writer".into());
        }).unwrap();
        b.set_priority(writer, 0).unwrap();
        for ev in [writer, mid, low] {
            b.activate(ev, What::TIMEOUT, 1).unwrap();
        }
        b.run(LoopFlags::NONBLOCK).unwrap();
        assert_eq!(entries(&l), ["writer", "io", "mid", "low"]);
    }

    fn urgent_activation_preempts_the_running_queue(m) {
        let mut b = prio_base(m, 2);
        let l = log();
        let l1 = l.clone();
        let urgent = b.new_timer(move |_, _, _| l1.borrow_mut().push("urgent".into())).unwrap();
        b.set_priority(urgent, 0).unwrap();
        let mut lows = Vec::new();
        for i in 0..3 {
            let l = l.clone();
            let ev = b.new_timer(move |base, _, _| {
                l.borrow_mut().push(format!("low{i}"));
                if i == 0 {
                    base.activate(urgent, What::TIMEOUT, 1).unwrap();
                }
            }).unwrap();
            b.set_priority(ev, 1).unwrap();
            lows.push(ev);
        }
        for ev in &lows {
            b.activate(*ev, What::TIMEOUT, 1).unwrap();
        }
        b.run(LoopFlags::NONBLOCK).unwrap();
        assert_eq!(entries(&l), ["low0", "urgent", "low1", "low2"]);
    }

    fn loopbreak_stops_after_current_callback_and_keeps_the_rest_queued(m) {
        let mut b = base(m);
        let l = log();
        let mut evs = Vec::new();
        for i in 0..3 {
            let l = l.clone();
            evs.push(b.new_timer(move |base, _, _| {
                l.borrow_mut().push(i.to_string());
                if i == 0 { base.loopbreak(); }
            }).unwrap());
        }
        for ev in &evs { b.activate(*ev, What::TIMEOUT, 1).unwrap(); }
        assert_eq!(b.dispatch().unwrap(), RunOutcome::Exited);
        assert!(b.got_break());
        assert!(!b.got_exit());
        assert_eq!(entries(&l), ["0"]);
        b.dispatch().unwrap();
        assert!(!b.got_break(), "flags reset when a loop starts");
        assert_eq!(entries(&l), ["0", "1", "2"]);
    }

    fn loopbreak_outside_a_loop_is_not_remembered(m) {
        let mut b = base(m);
        b.loopbreak();
        let hit = Rc::new(Cell::new(false));
        let h = hit.clone();
        let ev = b.new_timer(move |_, _, _| h.set(true)).unwrap();
        b.add(ev, Some(Duration::from_millis(1))).unwrap();
        assert_eq!(b.dispatch().unwrap(), RunOutcome::NoEvents);
        assert!(hit.get());
    }

    fn loopexit_outside_a_loop_is_remembered(m) {
        let mut b = base(m);
        let (_x, y) = pair();
        let ev = b.new_event(fd(&y), What::READ, |_, _, _| panic!("no data was sent")).unwrap();
        b.add(ev, None).unwrap();
        b.loopexit(None).unwrap();
        assert_eq!(within(Duration::from_secs(5), || b.dispatch().unwrap()), RunOutcome::Exited);
        assert!(b.got_exit());
        b.free(ev).unwrap();
    }

    fn loopexit_after_a_delay_runs_the_current_iteration_to_its_end(m) {
        let mut b = base(m);
        let n = Rc::new(Cell::new(0));
        let c = n.clone();
        let ev = b.new_event(-1, What::PERSIST, move |_, _, _| c.set(c.get() + 1)).unwrap();
        b.add(ev, Some(Duration::from_millis(2))).unwrap();
        b.loopexit(Some(Duration::from_millis(30))).unwrap();
        assert_eq!(within(Duration::from_secs(5), || b.dispatch().unwrap()), RunOutcome::Exited);
        assert!(n.get() >= 2, "persistent timer ran {} times", n.get());
        assert!(b.got_exit());
        b.free(ev).unwrap();
    }

    fn loopcontinue_ends_the_pass(m) {
        let mut b = base(m);
        let l = log();
        let mut evs = Vec::new();
        for i in 0..3 {
            let l = l.clone();
            evs.push(b.new_timer(move |base, _, _| {
                l.borrow_mut().push(format!("{i}:{}", base.num_events(evrs::Count::Active)));
                if i == 0 { base.loopcontinue(); }
            }).unwrap());
        }
        for ev in &evs { b.activate(*ev, What::TIMEOUT, 1).unwrap(); }
        b.run(LoopFlags::NONBLOCK).unwrap();
        assert_eq!(entries(&l), ["0:2", "1:1", "2:0"]);
    }

    fn once_waits_for_activity_then_drains(m) {
        let mut b = base(m);
        let (x, y) = pair();
        let n = Rc::new(Cell::new(0));
        let c = n.clone();
        let ev = b.new_event(fd(&y), What::READ | What::PERSIST, move |base, ev, _| {
            read_all(&y);
            c.set(c.get() + 1);
            base.del(ev).unwrap();
        }).unwrap();
        b.add(ev, None).unwrap();
        let t = std::thread::spawn(move || { write(&x, b"wake"); x });
        assert_eq!(within(Duration::from_secs(5), || b.run(LoopFlags::ONCE).unwrap()), RunOutcome::Exited);
        assert_eq!(n.get(), 1);
        drop(t.join());
    }

    fn nonblock_does_not_wait(m) {
        let mut b = base(m);
        let (_x, y) = pair();
        let ev = b.new_event(fd(&y), What::READ, |_, _, _| panic!("nothing to read")).unwrap();
        b.add(ev, Some(Duration::from_secs(60))).unwrap();
        let r = within(Duration::from_secs(1), || b.run(LoopFlags::NONBLOCK).unwrap());
        assert_eq!(r, RunOutcome::Exited);
        b.free(ev).unwrap();
    }

    fn no_exit_on_empty_keeps_running_until_loopexit(m) {
        // A base with no events at all (the handle's eventfd is internal and does not count):
        // with NO_EXIT_ON_EMPTY the loop sleeps in its backend instead of returning NoEvents,
        // until another thread stops it — once the kernel shows it asleep there.
        let mut b = base(m);
        let h = b.handle().unwrap();
        let loop_tid = gettid();
        let t = std::thread::spawn(move || {
            let blocked =
                wait_until_blocked_in(loop_tid, &backend_wait_syscalls(), Duration::from_secs(10));
            h.loopexit(None).unwrap();
            blocked
        });
        let r = within(Duration::from_secs(20), || b.run(LoopFlags::NO_EXIT_ON_EMPTY).unwrap());
        assert_eq!(r, RunOutcome::Exited, "NO_EXIT_ON_EMPTY must not exit on an empty base");
        assert!(t.join().unwrap(), "the loop never slept in its backend");
        assert!(b.got_exit());
        // Without the flag, an empty base (only internal events) returns at once.
        assert_eq!(b.dispatch().unwrap(), RunOutcome::NoEvents);
        // And NONBLOCK with it: one pass, then Exited rather than NoEvents.
        assert_eq!(
            b.run(LoopFlags::NO_EXIT_ON_EMPTY | LoopFlags::NONBLOCK).unwrap(),
            RunOutcome::Exited
        );
    }

    fn reentrant_run_is_an_error(m) {
        let mut b = base(m);
        let ok = Rc::new(Cell::new(false));
        let o = ok.clone();
        let ev = b.new_timer(move |base, _, _| {
            let e = base.dispatch().unwrap_err();
            assert!(e.to_string().contains("reentrant"));
            o.set(true);
        }).unwrap();
        b.activate(ev, What::TIMEOUT, 1).unwrap();
        b.dispatch().unwrap();
        assert!(ok.get());
    }

    fn once_events_fire_and_free_themselves(m) {
        let mut b = base(m);
        let l = log();
        for i in 0..3 {
            let l = l.clone();
            b.once(-1, What::TIMEOUT, None, move |_, w| {
                assert_eq!(w, What::TIMEOUT);
                l.borrow_mut().push(i.to_string());
            }).unwrap();
        }
        let (x, y) = pair();
        let l2 = l.clone();
        b.once(fd(&y), What::READ, Some(Duration::from_secs(30)), move |_, w| {
            assert_eq!(w, What::READ);
            l2.borrow_mut().push("io".into());
        }).unwrap();
        write(&x, b"x");
        b.dispatch().unwrap();
        assert_eq!(entries(&l), ["0", "1", "2", "io"]);
        assert_eq!(b.num_events(evrs::Count::Added), 0);
        assert!(b.once(-1, What::SIGNAL, None, |_, _| {}).is_err());
    }

    fn max_callbacks_cap_lets_the_loop_poll_between_batches(m) {
        let mut b = checked(EventConfig::new()
            .method(m)
            .flags(evrs::BaseFlags::IGNORE_ENV)
            .priorities(2)
            .max_dispatch_interval(None, Some(2), 0)
            .build()
            .unwrap());
        let l = log();
        let mut evs = Vec::new();
        for i in 0..5 {
            let l = l.clone();
            evs.push(b.new_timer(move |base, _, _| {
                l.borrow_mut().push(format!("{i}:{}", base.num_events(evrs::Count::Active)));
            }).unwrap());
        }
        for ev in &evs { b.activate(*ev, What::TIMEOUT, 1).unwrap(); }
        b.run(LoopFlags::NONBLOCK).unwrap();
        assert_eq!(entries(&l), ["0:4", "1:3", "2:2", "3:1", "4:0"]);
    }

    fn max_callbacks_cap_ends_a_pass_of_one_shot_and_of_persistent_events(m) {
        // Priority-1 events; the first queues an urgent priority-0 event for the next
        // iteration. A cap of 2 ends the pass after two callbacks, so the urgent one runs
        // third, whichever way the loop dispatches the events (persistent ones without a
        // timeout take its fast path).
        for kind in [What::empty(), What::PERSIST] {
            let mut b = checked(EventConfig::new()
                .method(m)
                .flags(evrs::BaseFlags::IGNORE_ENV)
                .priorities(2)
                .max_dispatch_interval(None, Some(2), 0)
                .build()
                .unwrap());
            let l = log();
            let lu = l.clone();
            let urgent = b.new_timer(move |_, _, _| lu.borrow_mut().push("urgent".into())).unwrap();
            b.set_priority(urgent, 0).unwrap();
            let mut evs = Vec::new();
            for i in 0..4 {
                let l = l.clone();
                let ev = b.new_event(-1, kind, move |base, _, _| {
                    l.borrow_mut().push(format!("e{i}"));
                    if i == 0 {
                        base.activate_later(urgent, What::TIMEOUT).unwrap();
                    }
                }).unwrap();
                b.set_priority(ev, 1).unwrap();
                evs.push(ev);
            }
            for ev in &evs { b.activate(*ev, What::TIMEOUT, 1).unwrap(); }
            b.run(LoopFlags::NONBLOCK).unwrap();
            assert_eq!(entries(&l), ["e0", "e1", "urgent", "e2", "e3"], "{kind:?}");
            for ev in evs { b.free(ev).unwrap(); }
        }
    }

    fn max_dispatch_interval_ends_a_pass_after_the_time_cap(m) {
        // Slow callbacks at priority 1; the first one queues an urgent priority-0 event for the
        // next iteration. With a 1 ms cap the pass ends after the first slow callback, so the
        // urgent event runs second; without it, it would run last.
        for (cap, want) in [
            (Some(Duration::from_millis(1)), ["s0", "urgent", "s1", "s2"]),
            (None, ["s0", "s1", "s2", "urgent"]),
        ] {
            let mut b = checked(EventConfig::new()
                .method(m)
                .flags(evrs::BaseFlags::IGNORE_ENV)
                .priorities(2)
                .max_dispatch_interval(cap, None, 0)
                .build()
                .unwrap());
            let l = log();
            let lu = l.clone();
            let urgent = b.new_timer(move |_, _, _| lu.borrow_mut().push("urgent".into())).unwrap();
            b.set_priority(urgent, 0).unwrap();
            let mut evs = Vec::new();
            for i in 0..3 {
                let l = l.clone();
                let ev = b.new_timer(move |base, _, _| {
                    l.borrow_mut().push(format!("s{i}"));
                    if i == 0 {
                        base.activate_later(urgent, What::TIMEOUT).unwrap();
                    }
                    // Simulated work longer than the cap (not synchronisation).
                    std::thread::sleep(Duration::from_millis(3));
                }).unwrap();
                b.set_priority(ev, 1).unwrap();
                evs.push(ev);
            }
            for ev in &evs { b.activate(*ev, What::TIMEOUT, 1).unwrap(); }
            b.run(LoopFlags::NONBLOCK).unwrap();
            assert_eq!(entries(&l), want, "cap {cap:?}");
        }
    }
}
