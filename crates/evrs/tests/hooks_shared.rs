//! Prepare/check/idle hooks on `SharedBase`, every backend: phase order with the lock
//! released while hooks run, start/stop and priorities, idle under load, a hook keeping the
//! loop alive until another thread stops it, panics. (`hooks.rs` has the `EventBase` side.)
mod util;
use evrs::{Count, Event, LoopFlags, RunOutcome, SharedBase, What};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use util::*;

on_every_backend! {
    fn shared_phase_order_and_hooks_run_unlocked(m) {
        let _w = watchdog("shared_phase_order_and_hooks_run_unlocked", util::WATCHDOG_BOUND);
        let b = shared(m);
        let log: Arc<Mutex<Vec<&'static str>>> = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        let p = b.new_prepare(move |base, _, what| {
            assert_eq!(what, What::PREPARE);
            // The lock is released: calling into the base from the hook works.
            let _ = base.num_events(Count::Active);
            base.verify().unwrap();
            l.lock().unwrap().push("prepare");
        }).unwrap();
        let l = log.clone();
        let c = b.new_check(move |base, _, what| {
            assert_eq!(what, What::CHECK);
            let _ = base.num_events(Count::Added);
            l.lock().unwrap().push("check");
        }).unwrap();
        let l = log.clone();
        let i = b.new_idle(move |_, _, what| {
            assert_eq!(what, What::IDLE);
            l.lock().unwrap().push("idle");
        }).unwrap();
        for h in [p, c, i] {
            b.add(h, None).unwrap();
        }
        let l = log.clone();
        let ev = b.new_timer(move |_, _, _| l.lock().unwrap().push("event")).unwrap();
        b.activate(ev, What::TIMEOUT, 1).unwrap();
        assert_eq!(b.run(LoopFlags::ONCE).unwrap(), RunOutcome::Exited);
        assert_eq!(std::mem::take(&mut *log.lock().unwrap()), ["prepare", "check", "event"]);
        assert_eq!(b.run(LoopFlags::ONCE).unwrap(), RunOutcome::Exited);
        assert_eq!(std::mem::take(&mut *log.lock().unwrap()), ["prepare", "check", "idle"]);
        assert_eq!(b.run(LoopFlags::NONBLOCK).unwrap(), RunOutcome::Exited);
        assert_eq!(std::mem::take(&mut *log.lock().unwrap()), ["prepare", "check", "idle"]);
        // Timeouts refused for shared hooks too.
        assert!(b.add(p, Some(Duration::from_millis(1))).is_err());
        b.verify().unwrap();
        for h in [p, c, i] {
            b.free(h).unwrap();
        }
    }

    fn shared_hooks_start_stop_and_priorities(m) {
        let _w = watchdog("shared_hooks_start_stop_and_priorities", util::WATCHDOG_BOUND);
        let b = shared(m);
        b.priority_init(3).unwrap();
        let log: Arc<Mutex<Vec<&'static str>>> = Arc::new(Mutex::new(Vec::new()));
        let mk = |name: &'static str| {
            let l = log.clone();
            let h = b.new_prepare(move |_, _, _| l.lock().unwrap().push(name)).unwrap();
            b.add(h, None).unwrap();
            h
        };
        let low = mk("low");
        b.set_priority(low, 2).unwrap();
        let victim = mk("victim");
        let urgent = mk("urgent");
        b.set_priority(urgent, 0).unwrap();
        let late = Arc::new(Mutex::new(None::<Event>));
        let (l, lt) = (log.clone(), late.clone());
        let killer = b.new_prepare(move |base, ev, _| {
            l.lock().unwrap().push("killer");
            base.del(victim).unwrap();
            let l2 = l.clone();
            let n = base.new_prepare(move |_, _, _| l2.lock().unwrap().push("new")).unwrap();
            base.add(n, None).unwrap();
            *lt.lock().unwrap() = Some(n);
            base.del(ev).unwrap();
        }).unwrap();
        b.set_priority(killer, 0).unwrap();
        b.add(killer, None).unwrap();
        b.verify().unwrap();
        b.run(LoopFlags::NONBLOCK).unwrap();
        assert_eq!(std::mem::take(&mut *log.lock().unwrap()), ["urgent", "killer", "low"]);
        b.run(LoopFlags::NONBLOCK).unwrap();
        // `new` has the default (middle) priority.
        assert_eq!(std::mem::take(&mut *log.lock().unwrap()), ["urgent", "new", "low"]);
        assert!(late.lock().unwrap().is_some());
        b.verify().unwrap();
        let new = late.lock().unwrap().unwrap();
        for h in [low, urgent, new] {
            b.free(h).unwrap();
        }
    }

    fn shared_idle_does_not_block_and_starves_under_load(m) {
        let _w = watchdog("shared_idle_does_not_block_and_starves_under_load", util::WATCHDOG_BOUND);
        let b = shared(m);
        let idle_runs = Arc::new(AtomicUsize::new(0));
        let ir = idle_runs.clone();
        let idle = b.new_idle(move |_, _, _| {
            ir.fetch_add(1, Ordering::SeqCst);
        }).unwrap();
        b.add(idle, None).unwrap();
        let at = Arc::new(AtomicUsize::new(0));
        let (ir, a) = (idle_runs.clone(), at.clone());
        let timer = b.new_timer(move |base, _, _| {
            a.store(ir.load(Ordering::SeqCst), Ordering::SeqCst);
            base.del(idle).unwrap();
        }).unwrap();
        let start = Instant::now();
        b.add(timer, Some(Duration::from_millis(300))).unwrap();
        assert_eq!(b.dispatch().unwrap(), RunOutcome::NoEvents);
        assert!(start.elapsed() >= Duration::from_millis(300));
        assert!(at.load(Ordering::SeqCst) > 30, "idle ran {} times", at.load(Ordering::SeqCst));
        // Starvation: an always-readable persistent fd keeps idle from running.
        b.add(idle, None).unwrap();
        idle_runs.store(0, Ordering::SeqCst);
        let (x, y) = pair();
        write(&x, b"never drained");
        let reads = Arc::new(AtomicUsize::new(0));
        let r = reads.clone();
        let rd = b.new_event(fd(&y), What::READ | What::PERSIST, move |_, _, _| {
            r.fetch_add(1, Ordering::SeqCst);
        }).unwrap();
        b.add(rd, None).unwrap();
        for _ in 0..100 {
            b.run(LoopFlags::ONCE).unwrap();
        }
        assert_eq!(reads.load(Ordering::SeqCst), 100);
        assert_eq!(idle_runs.load(Ordering::SeqCst), 0);
        b.del(rd).unwrap();
        b.run(LoopFlags::ONCE).unwrap();
        assert_eq!(idle_runs.load(Ordering::SeqCst), 1);
        b.verify().unwrap();
        b.free(idle).unwrap();
    }

    fn shared_started_hook_keeps_the_loop_alive_until_stopped_from_another_thread(m) {
        let _w = watchdog("shared_started_hook_keeps_the_loop_alive", util::WATCHDOG_BOUND);
        let b = shared(m);
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        let p = b.new_prepare(move |_, _, _| {
            r.fetch_add(1, Ordering::SeqCst);
        }).unwrap();
        b.add(p, None).unwrap();
        let b2 = b.clone();
        let start = Instant::now();
        let stopper = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            b2.del(p).unwrap();
        });
        assert_eq!(b.dispatch().unwrap(), RunOutcome::NoEvents);
        assert!(start.elapsed() >= Duration::from_millis(100));
        assert!(runs.load(Ordering::SeqCst) >= 1);
        stopper.join().unwrap();
        b.verify().unwrap();
    }

    fn shared_a_panicking_hook_propagates_and_is_freed(m) {
        let _w = watchdog("shared_a_panicking_hook_propagates_and_is_freed", util::WATCHDOG_BOUND);
        for kind in [What::PREPARE, What::CHECK, What::IDLE] {
            let b = shared(m);
            let cb = |_: &SharedBase, _: Event, _: What| panic!("hook failure");
            let h = match kind {
                k if k == What::PREPARE => b.new_prepare(cb),
                k if k == What::CHECK => b.new_check(cb),
                _ => b.new_idle(cb),
            }.unwrap();
            b.add(h, None).unwrap();
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| b.run(LoopFlags::NONBLOCK)));
            assert!(r.is_err(), "{kind:?}");
            assert!(!b.is_running());
            assert!(!b.with(|base| base.is_initialized(h)), "{kind:?}: hook freed");
            b.verify().unwrap();
            let ok = Arc::new(AtomicUsize::new(0));
            let o = ok.clone();
            let ev = b.new_timer(move |_, _, _| {
                o.fetch_add(1, Ordering::SeqCst);
            }).unwrap();
            b.activate(ev, What::TIMEOUT, 1).unwrap();
            b.dispatch().unwrap();
            assert_eq!(ok.load(Ordering::SeqCst), 1, "{kind:?}: base usable");
            b.verify().unwrap();
        }
    }
}
