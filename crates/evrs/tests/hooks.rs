//! Prepare/check/idle hooks: phase order, start/stop from inside hooks, priorities, idle
//! semantics (only when nothing else ran, never blocking, starvation), loop flags, keeping
//! the loop alive, bad uses and panics — on `EventBase`, every backend (`SharedBase`: in
//! `hooks_shared.rs`).
mod util;
use evrs::{Count, Event, EventBase, LoopFlags, RunOutcome, What};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};
use util::*;

type Trace = Rc<RefCell<Vec<&'static str>>>;

fn trace() -> Trace {
    Rc::new(RefCell::new(Vec::new()))
}

fn push(t: &Trace, s: &'static str) {
    t.borrow_mut().push(s);
}

fn take(t: &Trace) -> Vec<&'static str> {
    std::mem::take(&mut *t.borrow_mut())
}

/// A hook (of the kind `new` makes) that logs `name` and checks the `What` it gets.
fn logging_hook(b: &mut EventBase, kind: What, name: &'static str, t: &Trace) -> Event {
    let t = t.clone();
    let cb = move |_: &mut EventBase, _: Event, what: What| {
        assert_eq!(what, kind, "{name}");
        push(&t, name);
    };
    let ev = if kind == What::PREPARE {
        b.new_prepare(cb)
    } else if kind == What::CHECK {
        b.new_check(cb)
    } else {
        b.new_idle(cb)
    }
    .unwrap();
    b.add(ev, None).unwrap();
    ev
}

on_every_backend! {
    fn phase_order_prepare_poll_check_callbacks_then_idle(m) {
        let _w = watchdog("phase_order_prepare_poll_check_callbacks_then_idle", util::WATCHDOG_BOUND);
        let mut b = base(m);
        let t = trace();
        let (x, y) = pair();
        let x = Rc::new(x);
        // The prepare hook makes the fd readable: the poll right after it must see that, so
        // the read callback runs in this same iteration (prepare precedes the poll).
        let written = Rc::new(Cell::new(false));
        let (tp, xp, wp) = (t.clone(), x.clone(), written.clone());
        let prep = b.new_prepare(move |_, _, what| {
            assert_eq!(what, What::PREPARE);
            push(&tp, "prepare");
            if !wp.replace(true) {
                write(&xp, b"!");
            }
        }).unwrap();
        b.add(prep, None).unwrap();
        // A timer due now: expired before the check hook runs (check sees it active) and
        // its callback runs after the check hook.
        let tt = t.clone();
        let timer = b.new_timer(move |_, _, _| push(&tt, "timer")).unwrap();
        let tc = t.clone();
        let chk = b.new_check(move |base, _, what| {
            assert_eq!(what, What::CHECK);
            push(&tc, "check");
            // The timer has expired and the fd was polled: both callbacks are queued.
            let timer_state = base.pending(timer, What::TIMEOUT).unwrap().0;
            if timer_state.contains(What::TIMEOUT) && base.num_events(Count::Active) == 2 {
                push(&tc, "check-sees-active");
            }
        }).unwrap();
        b.add(chk, None).unwrap();
        let idle = logging_hook(&mut b, What::IDLE, "idle", &t);
        let tr = t.clone();
        let rd = b.new_event(fd(&y), What::READ, move |_, _, _| {
            read_all(&y);
            push(&tr, "read");
        }).unwrap();
        b.add(rd, None).unwrap();
        b.add(timer, Some(Duration::ZERO)).unwrap();
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(b.run(LoopFlags::ONCE).unwrap(), RunOutcome::Exited);
        let got = take(&t);
        assert_eq!(&got[..3], ["prepare", "check", "check-sees-active"], "{got:?}");
        let mut cbs = got[3..].to_vec();
        cbs.sort();
        assert_eq!(cbs, ["read", "timer"], "callbacks after check, no idle: {got:?}");
        // Nothing left to run but hooks: the next iteration ends with the idle hook.
        assert_eq!(b.run(LoopFlags::ONCE).unwrap(), RunOutcome::Exited);
        assert_eq!(take(&t), ["prepare", "check", "idle"]);
        b.verify().unwrap();
        for h in [prep, chk, idle] {
            b.free(h).unwrap();
        }
    }

    fn hook_callbacks_get_their_what_and_their_own_handle(m) {
        let _w = watchdog("hook_callbacks_get_their_what_and_their_own_handle", util::WATCHDOG_BOUND);
        let mut b = base(m);
        let seen: Rc<RefCell<Vec<(Event, What)>>> = Rc::new(RefCell::new(Vec::new()));
        let (s1, s2, s3) = (seen.clone(), seen.clone(), seen.clone());
        let p = b.new_prepare(move |_, ev, w| s1.borrow_mut().push((ev, w))).unwrap();
        let c = b.new_check(move |_, ev, w| s2.borrow_mut().push((ev, w))).unwrap();
        let i = b.new_idle(move |_, ev, w| s3.borrow_mut().push((ev, w))).unwrap();
        for h in [p, c, i] {
            // Not started yet: a fresh hook is not pending and does not run.
            assert_eq!(b.pending(h, What::all()).unwrap().0, What::empty());
            b.add(h, None).unwrap();
            b.verify().unwrap();
        }
        b.run(LoopFlags::NONBLOCK).unwrap();
        assert_eq!(
            *seen.borrow(),
            [(p, What::PREPARE), (c, What::CHECK), (i, What::IDLE)]
        );
        b.verify().unwrap();
        for h in [p, c, i] {
            b.free(h).unwrap();
        }
    }

    fn a_hook_stopped_by_an_earlier_hook_of_its_phase_does_not_run(m) {
        let _w = watchdog("a_hook_stopped_by_an_earlier_hook_of_its_phase_does_not_run", util::WATCHDOG_BOUND);
        let mut b = base(m);
        let t = trace();
        for kind in [What::PREPARE, What::CHECK, What::IDLE] {
            let victim_del: Rc<Cell<Option<Event>>> = Rc::new(Cell::new(None));
            let victim_free: Rc<Cell<Option<Event>>> = Rc::new(Cell::new(None));
            let (vd, vf, tk) = (victim_del.clone(), victim_free.clone(), t.clone());
            let killer_cb = move |base: &mut EventBase, ev: Event, _: What| {
                push(&tk, "killer");
                if let Some(v) = vd.take() {
                    base.del(v).unwrap();
                }
                if let Some(v) = vf.take() {
                    base.free(v).unwrap();
                }
                base.del(ev).unwrap();
            };
            let killer = match kind {
                k if k == What::PREPARE => b.new_prepare(killer_cb),
                k if k == What::CHECK => b.new_check(killer_cb),
                _ => b.new_idle(killer_cb),
            }.unwrap();
            b.add(killer, None).unwrap();
            let d = logging_hook(&mut b, kind, "deleted", &t);
            let f = logging_hook(&mut b, kind, "freed", &t);
            let keep = logging_hook(&mut b, kind, "kept", &t);
            victim_del.set(Some(d));
            victim_free.set(Some(f));
            b.run(LoopFlags::NONBLOCK).unwrap();
            assert_eq!(take(&t), ["killer", "kept"], "{kind:?}");
            assert!(b.is_initialized(d));
            assert!(!b.is_initialized(f));
            b.verify().unwrap();
            b.run(LoopFlags::NONBLOCK).unwrap();
            assert_eq!(take(&t), ["kept"], "{kind:?}");
            b.free(keep).unwrap();
            b.free(d).unwrap();
            b.verify().unwrap();
        }
    }

    fn a_hook_started_during_its_phase_runs_from_the_next_iteration(m) {
        let _w = watchdog("a_hook_started_during_its_phase_runs_from_the_next_iteration", util::WATCHDOG_BOUND);
        let mut b = base(m);
        let t = trace();
        let late: Rc<Cell<Option<Event>>> = Rc::new(Cell::new(None));
        let (tl, l2) = (t.clone(), late.clone());
        let starter = b.new_prepare(move |base, ev, _| {
            push(&tl, "starter");
            let tn = tl.clone();
            let n = base.new_prepare(move |_, _, _| push(&tn, "new")).unwrap();
            base.add(n, None).unwrap();
            l2.set(Some(n));
            base.del(ev).unwrap();
        }).unwrap();
        b.add(starter, None).unwrap();
        let idle = logging_hook(&mut b, What::IDLE, "idle", &t);
        b.run(LoopFlags::NONBLOCK).unwrap();
        assert_eq!(take(&t), ["starter", "idle"]);
        b.run(LoopFlags::NONBLOCK).unwrap();
        assert_eq!(take(&t), ["new", "idle"]);
        // A hook may also start itself again after stopping (from another phase).
        let n = late.get().unwrap();
        b.del(n).unwrap();
        b.run(LoopFlags::NONBLOCK).unwrap();
        assert_eq!(take(&t), ["idle"]);
        b.verify().unwrap();
        b.free(idle).unwrap();
    }

    fn hook_priorities_order_hooks_within_a_phase(m) {
        let _w = watchdog("hook_priorities_order_hooks_within_a_phase", util::WATCHDOG_BOUND);
        let mut b = base(m);
        b.priority_init(3).unwrap();
        let t = trace();
        for kind in [What::PREPARE, What::CHECK, What::IDLE] {
            let low = logging_hook(&mut b, kind, "low", &t);
            b.del(low).unwrap();
            b.set_priority(low, 2).unwrap();
            b.add(low, None).unwrap();
            let mid_a = logging_hook(&mut b, kind, "mid-a", &t);
            let urgent = logging_hook(&mut b, kind, "urgent", &t);
            b.set_priority(urgent, 0).unwrap(); // while started: re-ordered at once
            let mid_b = logging_hook(&mut b, kind, "mid-b", &t);
            b.verify().unwrap();
            b.run(LoopFlags::NONBLOCK).unwrap();
            assert_eq!(take(&t), ["urgent", "mid-a", "mid-b", "low"], "{kind:?}");
            // Moving a started hook to the end of its phase.
            b.set_priority(mid_a, 2).unwrap();
            b.verify().unwrap();
            b.run(LoopFlags::NONBLOCK).unwrap();
            let got = take(&t);
            assert_eq!(&got[..2], ["urgent", "mid-b"], "{kind:?}");
            assert_eq!(got.len(), 4, "{kind:?}");
            // Shrinking to one priority keeps the (now all-equal) hooks in a valid order.
            b.priority_init(1).unwrap();
            b.verify().unwrap();
            b.run(LoopFlags::NONBLOCK).unwrap();
            assert_eq!(take(&t).len(), 4);
            b.priority_init(3).unwrap();
            for h in [low, mid_a, urgent, mid_b] {
                b.free(h).unwrap();
            }
            b.verify().unwrap();
        }
    }

    fn idle_runs_only_in_iterations_where_nothing_else_was_active(m) {
        let _w = watchdog("idle_runs_only_in_iterations_where_nothing_else_was_active", util::WATCHDOG_BOUND);
        let mut b = base(m);
        let t = trace();
        let tt = t.clone();
        let ev = b.new_timer(move |_, _, _| push(&tt, "event")).unwrap();
        let ti = t.clone();
        let idle = b.new_idle(move |base, _, _| {
            push(&ti, "idle");
            let n = ti.borrow().iter().filter(|s| **s == "idle").count();
            if n < 3 {
                // Activating from idle: the next iteration runs the event, not idle.
                base.activate(ev, What::TIMEOUT, 1).unwrap();
            } else {
                base.loopbreak();
            }
        }).unwrap();
        b.add(idle, None).unwrap();
        b.activate(ev, What::TIMEOUT, 1).unwrap();
        b.run(LoopFlags::NO_EXIT_ON_EMPTY).unwrap();
        assert_eq!(take(&t), ["event", "idle", "event", "idle", "event", "idle"]);
        b.verify().unwrap();
        b.free(idle).unwrap();
    }

    fn while_an_idle_hook_is_started_the_loop_does_not_block(m) {
        let _w = watchdog("while_an_idle_hook_is_started_the_loop_does_not_block", util::WATCHDOG_BOUND);
        let mut b = base(m);
        let count = Rc::new(Cell::new(0u64));
        let c = count.clone();
        let idle = b.new_idle(move |_, _, _| c.set(c.get() + 1)).unwrap();
        b.add(idle, None).unwrap();
        let at_timer = Rc::new(Cell::new(0u64));
        let (c2, at) = (count.clone(), at_timer.clone());
        let timer = b.new_timer(move |base, _, _| {
            at.set(c2.get());
            base.del(idle).unwrap();
        }).unwrap();
        let start = Instant::now();
        b.add(timer, Some(Duration::from_secs(1))).unwrap();
        assert_eq!(b.dispatch().unwrap(), RunOutcome::NoEvents);
        let el = start.elapsed();
        assert!(el >= Duration::from_secs(1), "timer fired early: {el:?}");
        assert!(el < Duration::from_secs(5), "{el:?}");
        assert!(at_timer.get() > 100, "idle ran only {} times in 1 s", at_timer.get());
        assert_eq!(count.get(), at_timer.get(), "idle stopped with the timer");
        b.verify().unwrap();
    }

    fn idle_starves_while_events_are_active_every_iteration(m) {
        let _w = watchdog("idle_starves_while_events_are_active_every_iteration", util::WATCHDOG_BOUND);
        let mut b = base(m);
        let (x, y) = pair();
        write(&x, b"never drained");
        let idle_runs = Rc::new(Cell::new(0));
        let ir = idle_runs.clone();
        let idle = b.new_idle(move |_, _, _| ir.set(ir.get() + 1)).unwrap();
        b.add(idle, None).unwrap();
        let reads = Rc::new(Cell::new(0));
        let (r, ir2) = (reads.clone(), idle_runs.clone());
        let rd = b.new_event(fd(&y), What::READ | What::PERSIST, move |base, ev, _| {
            r.set(r.get() + 1);
            assert_eq!(ir2.get(), 0, "idle ran while an event was active every iteration");
            if r.get() == 200 {
                base.del(ev).unwrap();
            }
        }).unwrap();
        b.add(rd, None).unwrap();
        for _ in 0..200 {
            b.run(LoopFlags::ONCE).unwrap();
        }
        assert_eq!(reads.get(), 200);
        assert_eq!(idle_runs.get(), 0);
        // Once nothing is active any more, idle gets its turn.
        b.run(LoopFlags::ONCE).unwrap();
        assert_eq!(idle_runs.get(), 1);
        b.verify().unwrap();
        b.free(idle).unwrap();
    }

    fn once_and_nonblock_with_hooks(m) {
        let _w = watchdog("once_and_nonblock_with_hooks", util::WATCHDOG_BOUND);
        let mut b = base(m);
        let t = trace();
        let prep = logging_hook(&mut b, What::PREPARE, "prepare", &t);
        let chk = logging_hook(&mut b, What::CHECK, "check", &t);
        let idle = logging_hook(&mut b, What::IDLE, "idle", &t);
        // ONCE: nothing else active, so the iteration in which idle ran ends the run.
        assert_eq!(within(Duration::from_secs(5), || b.run(LoopFlags::ONCE)).unwrap(), RunOutcome::Exited);
        assert_eq!(take(&t), ["prepare", "check", "idle"]);
        // NONBLOCK: one pass.
        assert_eq!(b.run(LoopFlags::NONBLOCK).unwrap(), RunOutcome::Exited);
        assert_eq!(take(&t), ["prepare", "check", "idle"]);
        // Without idle, NONBLOCK still makes exactly one pass over prepare and check.
        b.del(idle).unwrap();
        assert_eq!(b.run(LoopFlags::NONBLOCK).unwrap(), RunOutcome::Exited);
        assert_eq!(take(&t), ["prepare", "check"]);
        // ONCE with an active event: returns after its callback, idle not run.
        b.add(idle, None).unwrap();
        let te = t.clone();
        let ev = b.new_timer(move |_, _, _| push(&te, "event")).unwrap();
        b.activate(ev, What::TIMEOUT, 1).unwrap();
        assert_eq!(b.run(LoopFlags::ONCE).unwrap(), RunOutcome::Exited);
        assert_eq!(take(&t), ["prepare", "check", "event"]);
        b.verify().unwrap();
        for h in [prep, chk, idle] {
            b.free(h).unwrap();
        }
    }

    fn started_hooks_keep_the_loop_alive(m) {
        let _w = watchdog("started_hooks_keep_the_loop_alive", util::WATCHDOG_BOUND);
        let mut b = base(m);
        // Only an idle hook: dispatch runs it until it stops itself.
        let n = Rc::new(Cell::new(0));
        let c = n.clone();
        let idle = b.new_idle(move |base, ev, _| {
            c.set(c.get() + 1);
            if c.get() == 50 {
                base.del(ev).unwrap();
            }
        }).unwrap();
        b.add(idle, None).unwrap();
        assert_eq!(b.dispatch().unwrap(), RunOutcome::NoEvents);
        assert_eq!(n.get(), 50);
        // Only a prepare hook (no timer, nothing to wait for): dispatch does not return
        // until the hook is stopped — here by another thread through a Handle.
        for kind in [What::PREPARE, What::CHECK] {
            let runs = Rc::new(Cell::new(0));
            let r = runs.clone();
            let cb = move |_: &mut EventBase, _: Event, _: What| r.set(r.get() + 1);
            let hook = if kind == What::PREPARE { b.new_prepare(cb) } else { b.new_check(cb) }.unwrap();
            b.add(hook, None).unwrap();
            let h = b.handle().unwrap();
            // Timed from before the stopper starts its sleep (not after: that raced).
            let start = Instant::now();
            let stopper = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                h.run_in_loop(move |base| base.del(hook).unwrap()).unwrap();
            });
            assert_eq!(b.dispatch().unwrap(), RunOutcome::NoEvents);
            assert!(start.elapsed() >= Duration::from_millis(100), "{kind:?}: returned early");
            assert!(runs.get() >= 1, "{kind:?}");
            stopper.join().unwrap();
            // Stopped: dispatch returns at once now.
            assert_eq!(within(Duration::from_secs(5), || b.dispatch()).unwrap(), RunOutcome::NoEvents);
            b.free(hook).unwrap();
        }
        b.verify().unwrap();
    }

    fn hooks_refuse_timeouts_and_fd_interest(m) {
        let _w = watchdog("hooks_refuse_timeouts_and_fd_interest", util::WATCHDOG_BOUND);
        let mut b = base(m);
        let (_x, y) = pair();
        for kind in [What::PREPARE, What::CHECK, What::IDLE] {
            let t = trace();
            let h = logging_hook(&mut b, kind, "h", &t);
            b.del(h).unwrap();
            let e = b.add(h, Some(Duration::from_millis(1))).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}");
            assert_eq!(b.pending(h, What::all()).unwrap().0, What::empty());
            b.verify().unwrap();
            // Started, a timeout is refused too and the hook stays started.
            b.add(h, None).unwrap();
            assert!(b.add(h, Some(Duration::ZERO)).is_err());
            b.verify().unwrap();
            b.del(h).unwrap();
            // Re-assigning a hook with fd interest is refused.
            assert!(b.assign(h, fd(&y), What::READ, |_, _, _| {}).is_err());
            b.verify().unwrap();
            b.free(h).unwrap();
            // A stale hook handle is refused.
            assert!(b.add(h, None).is_err());
            assert!(b.del(h).is_err());
        }
        assert_eq!(b.num_events(Count::Added), 0);
        b.verify().unwrap();
    }

    fn loopbreak_from_a_prepare_hook_returns_before_polling(m) {
        let _w = watchdog("loopbreak_from_a_prepare_hook_returns_before_polling", util::WATCHDOG_BOUND);
        let mut b = base(m);
        let t = trace();
        let tp = t.clone();
        let p = b.new_prepare(move |base, _, _| {
            push(&tp, "prepare");
            base.loopbreak();
        }).unwrap();
        b.add(p, None).unwrap();
        let chk = logging_hook(&mut b, What::CHECK, "check", &t);
        let te = t.clone();
        let ev = b.new_timer(move |_, _, _| push(&te, "event")).unwrap();
        b.activate(ev, What::TIMEOUT, 1).unwrap();
        assert_eq!(b.dispatch().unwrap(), RunOutcome::Exited);
        assert!(b.got_break());
        assert_eq!(take(&t), ["prepare"]);
        // The activation stays queued for the next run.
        b.del(p).unwrap();
        b.run(LoopFlags::ONCE).unwrap();
        assert_eq!(take(&t), ["check", "event"]);
        b.verify().unwrap();
        b.free(chk).unwrap();
    }

    fn a_panicking_hook_propagates_and_is_freed(m) {
        let _w = watchdog("a_panicking_hook_propagates_and_is_freed", util::WATCHDOG_BOUND);
        for kind in [What::PREPARE, What::CHECK, What::IDLE] {
            let mut b = base(m);
            let cb = |_: &mut EventBase, _: Event, _: What| panic!("hook failure");
            let h = match kind {
                k if k == What::PREPARE => b.new_prepare(cb),
                k if k == What::CHECK => b.new_check(cb),
                _ => b.new_idle(cb),
            }.unwrap();
            b.add(h, None).unwrap();
            let t = trace();
            let other = logging_hook(&mut b, kind, "other", &t);
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| b.run(LoopFlags::NONBLOCK)));
            assert!(r.is_err(), "{kind:?}: the panic propagates");
            assert!(!b.is_running());
            assert!(!b.is_initialized(h), "{kind:?}: the panicking hook is freed");
            b.verify().unwrap();
            // Base usable, the other hook still started.
            take(&t);
            b.run(LoopFlags::NONBLOCK).unwrap();
            assert_eq!(take(&t), ["other"], "{kind:?}");
            b.free(other).unwrap();
            assert_eq!(b.num_events(Count::Added), 0);
            b.verify().unwrap();
        }
    }
}

// ----- known bugs (ignored; run with --ignored) -----------------------------------------

#[test]
fn a_hook_freed_and_its_slot_reused_by_a_new_hook_does_not_run_the_new_one_early() {
    for m in evrs::Method::ALL {
        let _w = watchdog("slot_reuse_hook", util::WATCHDOG_BOUND);
        let mut b = base(m);
        let t = trace();
        let victim: Rc<Cell<Option<Event>>> = Rc::new(Cell::new(None));
        let started: Rc<Cell<Option<Event>>> = Rc::new(Cell::new(None));
        let (tk, v, st) = (t.clone(), victim.clone(), started.clone());
        let killer = b
            .new_prepare(move |base, ev, _| {
                push(&tk, "killer");
                if let Some(old) = v.take() {
                    base.free(old).unwrap();
                    // The freed slot is handed out again right away (free list).
                    let tn = tk.clone();
                    let n = base.new_prepare(move |_, _, _| push(&tn, "new")).unwrap();
                    base.add(n, None).unwrap();
                    st.set(Some(n));
                }
                base.del(ev).unwrap();
            })
            .unwrap();
        b.add(killer, None).unwrap();
        victim.set(Some(logging_hook(&mut b, What::PREPARE, "victim", &t)));
        b.run(LoopFlags::NONBLOCK).unwrap();
        assert_eq!(
            take(&t),
            ["killer"],
            "a hook started during its phase ran in it"
        );
        b.run(LoopFlags::NONBLOCK).unwrap();
        assert_eq!(take(&t), ["new"]);
        b.verify().unwrap();
        b.free(started.take().unwrap()).unwrap();
    }
}

#[test]
fn a_hook_freed_and_its_slot_reused_by_an_fd_event_does_not_call_it_as_a_hook() {
    for m in evrs::Method::ALL {
        let _w = watchdog("slot_reuse_fd", util::WATCHDOG_BOUND);
        let mut b = base(m);
        let t = trace();
        let (x, y) = pair();
        let y = Rc::new(y);
        let victim: Rc<Cell<Option<Event>>> = Rc::new(Cell::new(None));
        let added: Rc<Cell<Option<Event>>> = Rc::new(Cell::new(None));
        let (tk, v, yk, ad) = (t.clone(), victim.clone(), y.clone(), added.clone());
        let killer = b
            .new_prepare(move |base, ev, _| {
                push(&tk, "killer");
                if let Some(old) = v.take() {
                    base.free(old).unwrap();
                    let tn = tk.clone();
                    // An fd event (not readable yet) takes the freed slot and is added.
                    let n = base
                        .new_event(fd(&yk), What::READ | What::PERSIST, move |_, _, what| {
                            if what.contains(What::PREPARE) {
                                push(&tn, "fd-event-called-as-prepare-hook");
                            } else {
                                push(&tn, "read");
                            }
                        })
                        .unwrap();
                    base.add(n, None).unwrap();
                    ad.set(Some(n));
                }
                base.del(ev).unwrap();
            })
            .unwrap();
        b.add(killer, None).unwrap();
        victim.set(Some(logging_hook(&mut b, What::PREPARE, "victim", &t)));
        b.run(LoopFlags::NONBLOCK).unwrap();
        assert_eq!(take(&t), ["killer"]);
        drop(x);
        b.verify().unwrap();
        b.free(added.take().unwrap()).unwrap();
    }
}

#[test]
fn hooks_of_equal_priority_run_in_start_order_after_a_priority_change() {
    for m in evrs::Method::ALL {
        let _w = watchdog(
            "hooks_of_equal_priority_run_in_start_order_after_a_priority_change",
            util::WATCHDOG_BOUND,
        );
        let mut b = base(m);
        b.priority_init(3).unwrap();
        let t = trace();
        let low = logging_hook(&mut b, What::PREPARE, "low", &t);
        b.del(low).unwrap();
        b.set_priority(low, 2).unwrap();
        b.add(low, None).unwrap(); // started first
        let mid = logging_hook(&mut b, What::PREPARE, "mid", &t); // started second, priority 1
        b.set_priority(mid, 2).unwrap();
        b.run(LoopFlags::NONBLOCK).unwrap();
        assert_eq!(take(&t), ["low", "mid"], "equal priorities: start order");
        b.verify().unwrap();
        b.free(low).unwrap();
        b.free(mid).unwrap();
    }
}

#[test]
fn loopbreak_from_a_check_hook_runs_no_further_callback() {
    for m in evrs::Method::ALL {
        let _w = watchdog(
            "loopbreak_from_a_check_hook_runs_no_further_callback",
            util::WATCHDOG_BOUND,
        );
        let mut b = base(m);
        let t = trace();
        let tc = t.clone();
        let c = b
            .new_check(move |base, _, _| {
                push(&tc, "check");
                base.loopbreak();
            })
            .unwrap();
        b.add(c, None).unwrap();
        let idle = logging_hook(&mut b, What::IDLE, "idle", &t);
        let te = t.clone();
        let ev = b.new_timer(move |_, _, _| push(&te, "event")).unwrap();
        b.activate(ev, What::TIMEOUT, 1).unwrap();
        assert_eq!(b.dispatch().unwrap(), RunOutcome::Exited);
        // loopbreak: "stops the loop right after the current callback" — the check hook's.
        assert_eq!(
            take(&t),
            ["check"],
            "a callback ran after loopbreak in a check hook"
        );
        // Same with nothing active: the idle hooks must not run after the break either. A
        // run does not drain "event" (the check hook breaks before it again), so cancel it.
        b.run(LoopFlags::NONBLOCK).unwrap();
        assert_eq!(
            take(&t),
            ["check"],
            "the check hook broke before \"event\" again"
        );
        b.del(ev).unwrap();
        assert_eq!(b.num_events(Count::Active), 0);
        assert_eq!(b.dispatch().unwrap(), RunOutcome::Exited);
        assert_eq!(
            take(&t),
            ["check"],
            "idle ran after loopbreak in a check hook"
        );
        b.verify().unwrap();
        b.free(c).unwrap();
        b.free(idle).unwrap();
    }
}
