//! Timeouts: never early, equal deadlines in add order, re-add semantics, persistent
//! re-arming, remove_timer, overflow.
mod util;
use evrs::{BaseFlags, EventConfig, LoopFlags, What};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};
use util::*;

const MS: Duration = Duration::from_millis(1);

on_every_backend! {
    fn deadlines_closer_than_a_wheel_tick_fire_earliest_first(m) {
        let mut b = checked(EventConfig::new()
            .method(m)
            .flags(BaseFlags::PRECISE_TIMER | BaseFlags::IGNORE_ENV)
            .build()
            .unwrap());
        // 10 µs apart, added latest first, so all three nearly always share one 1 ms wheel
        // tick. Each add counts from its own precise reading (never early), so a preemption
        // of 10 µs between the adds could reorder the deadlines themselves: an attempt whose
        // adds took that long is repeated.
        for attempt in 0.. {
            let order = Rc::new(RefCell::new(String::new()));
            let clean = Rc::new(Cell::new(false));
            let (o, c) = (order.clone(), clean.clone());
            let start = b
                .new_timer(move |base, _, _| {
                    let evs: Vec<_> = [('a', 5_030u64), ('b', 5_010), ('c', 5_020)]
                        .map(|(name, us)| {
                            let o = o.clone();
                            let ev = base.new_timer(move |_, _, _| o.borrow_mut().push(name));
                            (ev.unwrap(), Duration::from_micros(us))
                        })
                        .to_vec();
                    let t0 = Instant::now();
                    for (ev, d) in evs {
                        base.add(ev, Some(d)).unwrap();
                    }
                    c.set(t0.elapsed() < Duration::from_micros(10));
                })
                .unwrap();
            b.add(start, Some(Duration::ZERO)).unwrap();
            b.dispatch().unwrap();
            if clean.get() || attempt == 100 {
                assert!(clean.get(), "100 attempts, every one preempted between its adds");
                assert_eq!(*order.borrow(), "bca");
                break;
            }
        }
    }

    fn timers_never_fire_early(m) {
        let mut b = base(m);
        let fired = Rc::new(Cell::new(0));
        for ms in [1u64, 2, 5, 10, 15, 25] {
            let f = fired.clone();
            let start = Instant::now();
            let d = Duration::from_millis(ms);
            let ev = b.new_timer(move |_, _, what| {
                assert_eq!(what, What::TIMEOUT);
                let el = start.elapsed();
                assert!(el >= d, "timer for {d:?} fired after only {el:?}");
                f.set(f.get() + 1);
            }).unwrap();
            b.add(ev, Some(d)).unwrap();
        }
        within(Duration::from_secs(10), || b.dispatch().unwrap());
        assert_eq!(fired.get(), 6);
    }

    fn equal_deadlines_fire_in_add_order(m) {
        let mut b = checked(EventConfig::new().method(m).flags(BaseFlags::IGNORE_ENV).build().unwrap());
        let l = log();
        // Added inside one callback, so they share the cached "now" and the same deadline.
        let l2 = l.clone();
        let starter = b.new_timer(move |base, _, _| {
            for i in 0..20 {
                let l = l2.clone();
                let ev = base.new_timer(move |_, _, _| l.borrow_mut().push(i.to_string())).unwrap();
                base.add(ev, Some(5 * MS)).unwrap();
            }
        }).unwrap();
        b.add(starter, None).unwrap();
        b.activate(starter, What::TIMEOUT, 1).unwrap();
        b.dispatch().unwrap();
        let want: Vec<String> = (0..20).map(|i| i.to_string()).collect();
        assert_eq!(entries(&l), want);
    }

    fn shorter_timers_fire_first(m) {
        let mut b = base(m);
        let l = log();
        // Added from one callback, so all three share the iteration's cached "now" (added
        // outside the loop, each add reads the clock afresh, and a slow machine — or Miri —
        // could space them further apart than the timeouts differ).
        let l2 = l.clone();
        let starter = b.new_timer(move |base, _, _| {
            for ms in [30u64, 10, 20] {
                let l = l2.clone();
                let ev = base.new_timer(move |_, _, _| l.borrow_mut().push(ms.to_string())).unwrap();
                base.add(ev, Some(Duration::from_millis(ms))).unwrap();
            }
        }).unwrap();
        b.activate(starter, What::TIMEOUT, 1).unwrap();
        b.dispatch().unwrap();
        assert_eq!(entries(&l), ["10", "20", "30"]);
    }

    fn readd_without_timeout_keeps_the_old_one(m) {
        let mut b = base(m);
        let (_x, y) = pair();
        let got = Rc::new(Cell::new(What::empty()));
        let g = got.clone();
        let ev = b.new_event(fd(&y), What::READ, move |_, _, w| g.set(w)).unwrap();
        b.add(ev, Some(10 * MS)).unwrap();
        b.add(ev, None).unwrap();
        assert!(b.pending(ev, What::TIMEOUT).unwrap().0.contains(What::TIMEOUT));
        within(Duration::from_secs(5), || b.dispatch().unwrap());
        assert_eq!(got.get(), What::TIMEOUT);
    }

    fn readd_with_timeout_replaces_it(m) {
        let mut b = base(m);
        let start = Instant::now();
        let at = Rc::new(Cell::new(Duration::ZERO));
        let a = at.clone();
        let ev = b.new_timer(move |_, _, _| a.set(start.elapsed())).unwrap();
        b.add(ev, Some(5 * MS)).unwrap();
        b.add(ev, Some(40 * MS)).unwrap();
        b.dispatch().unwrap();
        assert!(at.get() >= 40 * MS, "{:?}", at.get());
    }

    fn persistent_timer_rearms_from_previous_deadline(m) {
        let mut b = base(m);
        let start = Instant::now();
        let times = Rc::new(std::cell::RefCell::new(Vec::new()));
        let t = times.clone();
        let ev = b.new_event(-1, What::PERSIST, move |base, ev, what| {
            assert!(what.contains(What::TIMEOUT));
            // Pending again inside the callback.
            assert!(base.pending(ev, What::TIMEOUT).unwrap().0.contains(What::TIMEOUT));
            t.borrow_mut().push(start.elapsed());
            if t.borrow().len() == 10 {
                base.del(ev).unwrap();
            }
        }).unwrap();
        b.add(ev, Some(10 * MS)).unwrap();
        within(Duration::from_secs(5), || b.dispatch().unwrap());
        let t = times.borrow();
        assert_eq!(t.len(), 10);
        for (i, at) in t.iter().enumerate() {
            assert!(*at >= (i as u32 + 1) * 10 * MS, "tick {i} at {at:?}: early");
        }
        // Anchored to deadlines, so no drift accumulates (a loose bound: CI machines stall).
        assert!(t[9] < 250 * MS, "{:?}", t[9]);
    }

    fn a_late_persistent_timer_keeps_its_schedule(m) {
        // A 50 ms persistent timer (due at 50, 100, 150 ms) whose second firing is held up
        // until ≥ 120 ms by a slow callback (a one-shot timer at 80 ms working for 40 ms).
        // Late by less than a period, it stays on its schedule: the third firing is due at
        // 150 ms. Re-armed from the late firing instead, it would come at ≥ 170 ms.
        let mut b = checked(EventConfig::new()
            .method(m)
            .flags(BaseFlags::PRECISE_TIMER | BaseFlags::IGNORE_ENV)
            .build()
            .unwrap());
        let times = Rc::new(RefCell::new(Vec::new()));
        let t = times.clone();
        let start = Instant::now();
        let ev = b.new_event(-1, What::PERSIST, move |base, ev, _| {
            t.borrow_mut().push(start.elapsed());
            if t.borrow().len() == 3 {
                base.del(ev).unwrap();
            }
        }).unwrap();
        b.add(ev, Some(50 * MS)).unwrap();
        let slow = b.new_timer(|_, _, _| std::thread::sleep(40 * MS)).unwrap(); // simulated work
        b.add(slow, Some(80 * MS)).unwrap();
        within(Duration::from_secs(5), || b.dispatch().unwrap());
        let t = times.borrow();
        assert_eq!(t.len(), 3);
        assert!(t[1] >= 120 * MS, "the slow callback did not delay the second firing: {t:?}");
        assert!(t[2] >= 150 * MS, "early: {t:?}");
        assert!(t[2] < 165 * MS, "re-armed from the late firing, not its deadline: {t:?}");
    }

    fn persistent_io_event_timeout_restarts_after_io(m) {
        // READ | PERSIST with a 100 ms timeout; data arrives at 10 ms. The timeout restarts
        // from the read: it fires 100 ms after it (~110 ms), neither at the original 100 ms
        // nor one interval after the original deadline (200 ms).
        let mut b = base(m);
        let (x, y) = pair();
        let start = Instant::now();
        let l = Rc::new(RefCell::new(Vec::<(&str, Duration)>::new()));
        let l2 = l.clone();
        let mut y = Some(y);
        let yfd = fd(y.as_ref().unwrap());
        let ev = b.new_event(yfd, What::READ | What::PERSIST, move |base, ev, what| {
            if what.contains(What::READ) {
                read_all(y.as_ref().unwrap());
                l2.borrow_mut().push(("read", start.elapsed()));
            } else {
                l2.borrow_mut().push(("timeout", start.elapsed()));
                base.del(ev).unwrap();
                y.take();
            }
        }).unwrap();
        b.add(ev, Some(100 * MS)).unwrap();
        let writer = b.new_timer(move |_, _, _| write(&x, b"hi")).unwrap();
        b.add(writer, Some(10 * MS)).unwrap();
        within(Duration::from_secs(5), || b.dispatch().unwrap());
        let l = l.borrow();
        let names: Vec<&str> = l.iter().map(|e| e.0).collect();
        assert_eq!(names, ["read", "timeout"]);
        let (read_at, timeout_at) = (l[0].1, l[1].1);
        let after = timeout_at - read_at;
        assert!(
            after >= 100 * MS && after < 150 * MS,
            "timeout at {timeout_at:?}, {after:?} after the read at {read_at:?}"
        );
    }

    fn del_then_add_none_brings_back_the_persistent_interval(m) {
        // libevent quirk kept on purpose: del remembers a PERSIST event's interval.
        let mut b = base(m);
        let n = Rc::new(Cell::new(0));
        let c = n.clone();
        let ev = b.new_event(-1, What::PERSIST, move |base, ev, what| {
            c.set(c.get() + 1);
            if what.contains(What::TIMEOUT) {
                base.del(ev).unwrap();
            }
        }).unwrap();
        b.add(ev, Some(5 * MS)).unwrap();
        b.del(ev).unwrap();
        b.add(ev, None).unwrap();
        assert_eq!(b.pending(ev, What::TIMEOUT).unwrap().0, What::empty());
        b.activate(ev, What::READ, 1).unwrap();
        b.run(LoopFlags::ONCE).unwrap();
        // After the activation the interval re-armed a timeout.
        assert!(b.pending(ev, What::TIMEOUT).unwrap().0.contains(What::TIMEOUT));
        within(Duration::from_secs(5), || b.dispatch().unwrap());
        assert_eq!(n.get(), 2);
    }

    fn remove_timer_keeps_io_interest(m) {
        let mut b = base(m);
        let (x, y) = pair();
        let got = Rc::new(Cell::new(What::empty()));
        let g = got.clone();
        let ev = b.new_event(fd(&y), What::READ, move |_, _, w| g.set(w)).unwrap();
        b.add(ev, Some(5 * MS)).unwrap();
        b.remove_timer(ev).unwrap();
        assert_eq!(b.pending(ev, What::TIMEOUT | What::READ).unwrap().0, What::READ);
        write(&x, b"!");
        b.dispatch().unwrap();
        assert_eq!(got.get(), What::READ);
    }

    fn overflowing_timeouts_are_refused(m) {
        let mut b = base(m);
        let ev = b.new_timer(|_, _, _| {}).unwrap();
        let e = b.add(ev, Some(Duration::MAX)).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        assert!(!b.pending(ev, What::TIMEOUT).unwrap().0.contains(What::TIMEOUT));
        // Very long but representable: accepted.
        b.add(ev, Some(Duration::from_secs(100 * 365 * 24 * 3600))).unwrap();
        b.del(ev).unwrap();
        assert_eq!(b.run(LoopFlags::NONBLOCK).unwrap(), evrs::RunOutcome::NoEvents);
    }

    fn zero_timeout_fires_next_iteration(m) {
        let mut b = base(m);
        let hit = Rc::new(Cell::new(false));
        let h = hit.clone();
        let ev = b.new_timer(move |_, _, w| { assert_eq!(w, What::TIMEOUT); h.set(true) }).unwrap();
        b.add(ev, Some(Duration::ZERO)).unwrap();
        b.run(LoopFlags::NONBLOCK).unwrap();
        assert!(hit.get());
    }

    fn pending_reports_wall_clock_deadline(m) {
        let mut b = base(m);
        let ev = b.new_timer(|_, _, _| {}).unwrap();
        let before = std::time::SystemTime::now();
        b.add(ev, Some(Duration::from_secs(10))).unwrap();
        let (w, when) = b.pending(ev, What::TIMEOUT).unwrap();
        assert_eq!(w, What::TIMEOUT);
        let when = when.unwrap();
        let d = when.duration_since(before).unwrap();
        assert!(d >= Duration::from_secs(10) && d < Duration::from_secs(11), "{d:?}");
        b.free(ev).unwrap();
    }

    fn precise_timer_flag_uses_precise_clock(m) {
        // What PRECISE_TIMER changes, observably: the clock of the iteration's cached time,
        // which `gettimeofday_cached` shows inside callbacks. Deadlines are computed from a
        // fresh precise reading on both settings (never early), so only the cache differs: on
        // the coarse clock it lags the real time by at least half a millisecond (the coarse
        // clock is updated late in each tick: measured 0.5-4.75 ms here), on the precise one
        // by only the time since the iteration started.
        let lag_us = |flags: BaseFlags| -> i64 {
            let mut b = checked(EventConfig::new().method(m).flags(flags | BaseFlags::IGNORE_ENV).build().unwrap());
            assert_eq!(b.flags().contains(BaseFlags::PRECISE_TIMER), flags.contains(BaseFlags::PRECISE_TIMER));
            let lags = Rc::new(std::cell::RefCell::new(Vec::new()));
            let l = lags.clone();
            let ev = b.new_event(-1, What::PERSIST, move |base, ev, _| {
                let cached = base.gettimeofday_cached();
                let lag = std::time::SystemTime::now().duration_since(cached).map_or(0, |d| d.as_micros() as i64);
                l.borrow_mut().push(lag);
                if l.borrow().len() == 21 {
                    base.del(ev).unwrap();
                }
            }).unwrap();
            b.add(ev, Some(MS)).unwrap();
            b.dispatch().unwrap();
            let mut v = lags.borrow().clone();
            v.sort_unstable();
            v[v.len() / 2]
        };
        let precise = lag_us(BaseFlags::PRECISE_TIMER);
        let coarse = lag_us(BaseFlags::empty());
        assert!(precise < 400, "{m}: precise cached time lags by a median {precise} µs");
        assert!(coarse >= 400, "{m}: coarse cached time lags by a median of only {coarse} µs");
        // And precise timers still never fire early.
        let mut b = checked(EventConfig::new().method(m).flags(BaseFlags::PRECISE_TIMER | BaseFlags::IGNORE_ENV).build().unwrap());
        let fired = Rc::new(Cell::new(0));
        for ms in [1u64, 2, 3] {
            let (f, start, d) = (fired.clone(), Instant::now(), Duration::from_millis(ms));
            let ev = b.new_timer(move |_, _, _| {
                assert!(start.elapsed() >= d, "{d:?} timer fired after {:?}", start.elapsed());
                f.set(f.get() + 1);
            }).unwrap();
            b.add(ev, Some(d)).unwrap();
        }
        within(Duration::from_secs(5), || b.dispatch().unwrap());
        assert_eq!(fired.get(), 3);
    }

    fn many_timers_added_and_deleted(m) {
        let mut b = base(m);
        let mut evs = Vec::new();
        for i in 0..10_000u64 {
            let ev = b.new_timer(|_, _, _| panic!("deleted timer fired")).unwrap();
            b.add(ev, Some(Duration::from_millis(1 + i % 1000))).unwrap();
            evs.push(ev);
        }
        assert_eq!(b.num_events(evrs::Count::Added), 10_000);
        for ev in evs {
            b.del(ev).unwrap();
        }
        assert_eq!(b.num_events(evrs::Count::Added), 0);
        assert_eq!(b.dispatch().unwrap(), evrs::RunOutcome::NoEvents);
    }
}
