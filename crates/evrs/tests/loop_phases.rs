//! The phases of one loop iteration: prepare hooks, the wait, check hooks, callbacks, idle
//! hooks — their order, when the wait is zero, and how ONCE / NONBLOCK / loopbreak and the
//! dispatch caps end an iteration.
mod util;
use evrs::{EventConfig, LoopFlags, RunOutcome, What};
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};
use util::*;

fn hook_name(w: What) -> &'static str {
    if w.contains(What::PREPARE) {
        "prepare"
    } else if w.contains(What::CHECK) {
        "check"
    } else if w.contains(What::IDLE) {
        "idle"
    } else {
        "?"
    }
}

on_every_backend! {
    fn hooks_run_in_phase_order_and_idle_only_when_nothing_ran(m) {
        let mut b = base(m);
        let l = log();
        let mut hooks = Vec::new();
        for kind in ["prepare", "check", "idle"] {
            let l = l.clone();
            let cb = move |_: &mut evrs::EventBase, _: evrs::Event, w: What| {
                l.borrow_mut().push(hook_name(w).into())
            };
            let h = match kind {
                "prepare" => b.new_prepare(cb),
                "check" => b.new_check(cb),
                _ => b.new_idle(cb),
            }
            .unwrap();
            b.add(h, None).unwrap();
            hooks.push(h);
        }
        let (x, y) = pair();
        let li = l.clone();
        let io = b.new_event(fd(&y), What::READ, move |_, _, w| {
            assert_eq!(w, What::READ);
            li.borrow_mut().push("io".into());
        }).unwrap();
        b.add(io, None).unwrap();
        write(&x, b"x");
        // NONBLOCK: the iteration that ran a callback goes on to the next; the next one runs
        // nothing, so its idle hooks run and the loop ends.
        assert_eq!(b.run(LoopFlags::NONBLOCK).unwrap(), RunOutcome::Exited);
        assert_eq!(entries(&l), ["prepare", "check", "io", "prepare", "check", "idle"]);
        // ONCE ends right after the iteration that ran a callback.
        l.borrow_mut().clear();
        b.add(io, None).unwrap();
        assert_eq!(b.run(LoopFlags::ONCE).unwrap(), RunOutcome::Exited);
        assert_eq!(entries(&l), ["prepare", "check", "io"]);
        for h in hooks {
            b.free(h).unwrap();
        }
    }

    fn once_ends_after_an_iteration_that_ran_only_idle_hooks(m) {
        let mut b = base(m);
        let n = Rc::new(Cell::new(0));
        let c = n.clone();
        // Stops itself after 5 calls, so a loop that wrongly goes on still ends.
        let idle = b.new_idle(move |base, ev, _| {
            c.set(c.get() + 1);
            if c.get() == 5 {
                base.del(ev).unwrap();
            }
        }).unwrap();
        b.add(idle, None).unwrap();
        assert_eq!(b.run(LoopFlags::ONCE).unwrap(), RunOutcome::Exited);
        assert_eq!(n.get(), 1);
        assert_eq!(b.run(LoopFlags::NONBLOCK).unwrap(), RunOutcome::Exited);
        assert_eq!(n.get(), 2);
        // Without ONCE/NONBLOCK idle hooks run every iteration while started (and keep the
        // loop alive, without blocking).
        assert_eq!(within(Duration::from_secs(5), || b.dispatch().unwrap()), RunOutcome::NoEvents);
        assert_eq!(n.get(), 5);
    }

    fn a_hook_stopped_by_an_earlier_one_does_not_run(m) {
        let mut b = base(m);
        let l = log();
        let second = Rc::new(Cell::new(None));
        let (l1, s1) = (l.clone(), second.clone());
        let first = b.new_prepare(move |base, _, _| {
            l1.borrow_mut().push("first".into());
            if let Some(ev) = s1.get() {
                base.del(ev).unwrap();
            }
        }).unwrap();
        let l2 = l.clone();
        let sec = b.new_prepare(move |_, _, _| l2.borrow_mut().push("second".into())).unwrap();
        second.set(Some(sec));
        b.add(first, None).unwrap();
        b.add(sec, None).unwrap();
        assert_eq!(b.run(LoopFlags::NONBLOCK).unwrap(), RunOutcome::Exited);
        assert_eq!(entries(&l), ["first"]);
        b.verify().unwrap();
        b.free(first).unwrap();
        b.free(sec).unwrap();
    }

    fn loopbreak_in_a_prepare_hook_ends_the_run_before_the_poll(m) {
        let mut b = base(m);
        let l = log();
        let l1 = l.clone();
        let first = b.new_prepare(move |base, _, _| {
            l1.borrow_mut().push("first".into());
            base.loopbreak();
        }).unwrap();
        let l2 = l.clone();
        let second = b.new_prepare(move |_, _, _| l2.borrow_mut().push("second".into())).unwrap();
        b.add(first, None).unwrap();
        b.add(second, None).unwrap();
        let (x, y) = pair();
        let l3 = l.clone();
        let io = b.new_event(fd(&y), What::READ, move |_, _, _| l3.borrow_mut().push("io".into()))
            .unwrap();
        b.add(io, None).unwrap();
        write(&x, b"x");
        assert_eq!(within(Duration::from_secs(5), || b.dispatch().unwrap()), RunOutcome::Exited);
        assert!(b.got_break());
        assert_eq!(entries(&l), ["first"]);
        for ev in [first, second, io] {
            b.free(ev).unwrap();
        }
    }

    fn the_loop_sleeps_until_the_next_timer(m) {
        // A check hook counts iterations: waiting 40 ms for a timer takes a few, not a spin.
        let mut b = base(m);
        let iterations = Rc::new(Cell::new(0u32));
        let it = iterations.clone();
        let check = b.new_check(move |_, _, _| it.set(it.get() + 1)).unwrap();
        b.add(check, None).unwrap();
        let t = b.new_timer(move |base, _, _| base.del(check).unwrap()).unwrap();
        b.add(t, Some(Duration::from_millis(40))).unwrap();
        let start = Instant::now();
        assert_eq!(within(Duration::from_secs(5), || b.dispatch().unwrap()), RunOutcome::NoEvents);
        assert!(start.elapsed() >= Duration::from_millis(40));
        assert!(iterations.get() <= 5, "{} iterations for one timer: the loop spins", iterations.get());
    }

    fn an_active_callback_makes_the_wait_zero(m) {
        // A pending fd event with a long timeout and an active callback: the loop must not
        // wait before running the callback.
        let mut b = base(m);
        let (_x, y) = pair();
        let io = b.new_event(fd(&y), What::READ, |_, _, _| panic!("nothing sent")).unwrap();
        b.add(io, Some(Duration::from_secs(3))).unwrap();
        let ran = Rc::new(Cell::new(false));
        let r = ran.clone();
        let t = b.new_timer(move |_, _, _| r.set(true)).unwrap();
        b.activate(t, What::TIMEOUT, 1).unwrap();
        let start = Instant::now();
        assert_eq!(b.run(LoopFlags::ONCE).unwrap(), RunOutcome::Exited);
        assert!(ran.get());
        assert!(start.elapsed() < Duration::from_secs(1), "waited {:?}", start.elapsed());
        b.free(io).unwrap();
    }

    fn nonblock_with_an_idle_hook_does_not_wait_for_a_timer(m) {
        let mut b = base(m);
        let idle = b.new_idle(|_, _, _| {}).unwrap();
        b.add(idle, None).unwrap();
        let t = b.new_timer(|_, _, _| panic!("not due")).unwrap();
        b.add(t, Some(Duration::from_secs(3))).unwrap();
        let start = Instant::now();
        assert_eq!(b.run(LoopFlags::NONBLOCK).unwrap(), RunOutcome::Exited);
        assert!(start.elapsed() < Duration::from_secs(1), "waited {:?}", start.elapsed());
        // NONBLOCK with nothing started: still no wait.
        b.del(idle).unwrap();
        let start = Instant::now();
        assert_eq!(b.run(LoopFlags::NONBLOCK).unwrap(), RunOutcome::Exited);
        assert!(start.elapsed() < Duration::from_secs(1), "waited {:?}", start.elapsed());
        b.free(t).unwrap();
    }

    fn dispatch_goes_on_after_a_pass_that_emptied_the_queues(m) {
        // Without ONCE, draining the active queues does not end the run: a later timer
        // still fires in the same dispatch.
        let mut b = base(m);
        let l = log();
        let l1 = l.clone();
        let now = b.new_timer(move |_, _, _| l1.borrow_mut().push("now".into())).unwrap();
        b.activate(now, What::TIMEOUT, 1).unwrap();
        let l2 = l.clone();
        let later = b.new_timer(move |_, _, _| l2.borrow_mut().push("later".into())).unwrap();
        b.add(later, Some(Duration::from_millis(10))).unwrap();
        assert_eq!(within(Duration::from_secs(5), || b.dispatch().unwrap()), RunOutcome::NoEvents);
        assert_eq!(entries(&l), ["now", "later"]);
    }

    fn once_is_not_ended_by_a_cross_thread_wake_up(m) {
        // A wake-up runs only the internal notify callback: ONCE goes on waiting for a user
        // callback (here a timer).
        let mut b = base(m);
        let h = b.handle().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let prep = b.new_prepare(move |base, ev, _| {
            let _ = tx.send(());
            base.del(ev).unwrap();
        }).unwrap();
        b.add(prep, None).unwrap();
        let waker = std::thread::spawn(move || {
            rx.recv().unwrap();
            // Lands while the loop waits for the timer (not synchronisation: if late, the
            // test just checks less).
            std::thread::sleep(Duration::from_millis(20));
            h.wake().unwrap();
        });
        let fired = Rc::new(Cell::new(false));
        let f = fired.clone();
        let t = b.new_timer(move |_, _, _| f.set(true)).unwrap();
        b.add(t, Some(Duration::from_millis(150))).unwrap();
        assert_eq!(within(Duration::from_secs(5), || b.run(LoopFlags::ONCE).unwrap()), RunOutcome::Exited);
        assert!(fired.get(), "ONCE returned before a user callback ran");
        waker.join().unwrap();
    }

    fn a_cross_thread_command_queued_on_an_empty_base_is_run(m) {
        let mut b = base(m);
        let h = b.handle().unwrap();
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let r = ran.clone();
        std::thread::spawn(move || {
            h.run_in_loop(move |_| r.store(true, std::sync::atomic::Ordering::SeqCst)).unwrap()
        })
        .join()
        .unwrap();
        within(Duration::from_secs(5), || b.dispatch().unwrap());
        assert!(ran.load(std::sync::atomic::Ordering::SeqCst));
    }

    fn the_callback_cap_spares_priorities_below_its_threshold(m) {
        // Cap of 1 callback per pass, from priority 1 on: priority 0 runs all in one pass.
        let mut b = checked(EventConfig::new()
            .method(m)
            .flags(evrs::BaseFlags::IGNORE_ENV)
            .priorities(2)
            .max_dispatch_interval(None, Some(1), 1)
            .build()
            .unwrap());
        let l = log();
        // A prepare hook marks each iteration.
        let lp = l.clone();
        let prep = b.new_prepare(move |_, _, _| lp.borrow_mut().push("|".into())).unwrap();
        b.add(prep, None).unwrap();
        let mut evs = Vec::new();
        for i in 0..3 {
            let l = l.clone();
            let ev = b.new_timer(move |_, _, _| l.borrow_mut().push(i.to_string())).unwrap();
            b.set_priority(ev, 0).unwrap();
            evs.push(ev);
        }
        let l1 = l.clone();
        let capped = b.new_timer(move |_, _, _| l1.borrow_mut().push("p1".into())).unwrap();
        b.set_priority(capped, 1).unwrap();
        for ev in &evs { b.activate(*ev, What::TIMEOUT, 1).unwrap(); }
        b.run(LoopFlags::NONBLOCK).unwrap();
        assert_eq!(entries(&l), ["|", "0", "1", "2", "|"]);
        // Priority 1 is capped: one callback per pass.
        l.borrow_mut().clear();
        let l2 = l.clone();
        let capped2 = b.new_timer(move |_, _, _| l2.borrow_mut().push("p1b".into())).unwrap();
        b.set_priority(capped2, 1).unwrap();
        b.activate(capped, What::TIMEOUT, 1).unwrap();
        b.activate(capped2, What::TIMEOUT, 1).unwrap();
        b.run(LoopFlags::NONBLOCK).unwrap();
        assert_eq!(entries(&l), ["|", "p1", "|", "p1b", "|"]);
        b.free(prep).unwrap();
    }

    fn an_ordinary_event_runs_once_whatever_its_activation_count(m) {
        let mut b = base(m);
        let n = Rc::new(Cell::new(0));
        let c = n.clone();
        let t = b.new_timer(move |_, _, _| c.set(c.get() + 1)).unwrap();
        b.activate(t, What::TIMEOUT, 3).unwrap();
        b.run(LoopFlags::NONBLOCK).unwrap();
        assert_eq!(n.get(), 1);
    }
}
