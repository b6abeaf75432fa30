//! Timeouts added while the loop is awake are staged and get their deadlines on one clock
//! reading right before the loop next sleeps: never early, in add order, reported by
//! `pending` and `verify` while staged; added outside the loop they count from the `add`.
mod util;
use evrs::{EventBase, LoopFlags, What};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};
use util::*;

const MS: Duration = Duration::from_millis(1);

/// Spins (a slow callback: no sleep, so nothing else of the loop runs meanwhile).
fn busy_wait(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}

on_every_backend! {
    fn a_timer_added_in_a_slow_callback_never_fires_early(m) {
        let mut b = base(m);
        let times = Rc::new(Cell::new(None::<(Instant, Instant)>));
        let fired = Rc::new(Cell::new(None::<Instant>));
        let (t, f) = (times.clone(), fired.clone());
        let start = b.new_timer(move |base, _, _| {
            let f = f.clone();
            let ev = base.new_timer(move |_, _, _| f.set(Some(Instant::now()))).unwrap();
            let added = Instant::now();
            base.add(ev, Some(40 * MS)).unwrap();
            // Staged: `verify` accepts it, `pending` reports it.
            base.verify().unwrap();
            assert_eq!(base.pending(ev, What::TIMEOUT).unwrap().0, What::TIMEOUT);
            busy_wait(30 * MS);
            t.set(Some((added, Instant::now())));
        }).unwrap();
        b.add(start, Some(Duration::ZERO)).unwrap();
        within(Duration::from_secs(10), || b.dispatch().unwrap());
        let ((added, pass_end), fired) = (times.get().unwrap(), fired.get().unwrap());
        assert!(fired - added >= 40 * MS, "fired {:?} after its add", fired - added);
        // Counted from no later than the end of the pass (plus a generous bound for a
        // loaded machine).
        assert!(fired - pass_end < 40 * MS + Duration::from_secs(2), "{:?}", fired - pass_end);
    }

    fn a_timer_added_outside_the_loop_counts_from_the_add(m) {
        let mut b = base(m);
        let fired = Rc::new(Cell::new(None::<Instant>));
        let f = fired.clone();
        let ev = b.new_timer(move |_, _, _| f.set(Some(Instant::now()))).unwrap();
        let added = Instant::now();
        b.add(ev, Some(40 * MS)).unwrap();
        // Setup work before the loop runs: the timer's time passes meanwhile.
        busy_wait(30 * MS);
        within(Duration::from_secs(10), || b.dispatch().unwrap());
        let el = fired.get().unwrap() - added;
        assert!(el >= 40 * MS, "fired after only {el:?}");
        // Were it counted from the start of the run, it could not fire before 70 ms; the
        // slack left for a loaded machine is the 30 ms of setup.
        for attempt in 0..5 {
            let f = fired.clone();
            let ev = b.new_timer(move |_, _, _| f.set(Some(Instant::now()))).unwrap();
            let added = Instant::now();
            b.add(ev, Some(40 * MS)).unwrap();
            busy_wait(30 * MS);
            b.dispatch().unwrap();
            let el = fired.get().unwrap() - added;
            assert!(el >= 40 * MS, "fired after only {el:?}");
            if el < 70 * MS {
                return;
            }
            eprintln!("attempt {attempt}: fired {el:?} after its add (a loaded machine?)");
        }
        panic!("5 timers added outside the loop all counted from the run instead of the add");
    }

    fn staged_timers_keep_their_add_order_through_removals_and_readds(m) {
        let mut b = base(m);
        let l = log();
        let l2 = l.clone();
        let start = b.new_timer(move |base, _, _| {
            let evs: Vec<_> = "abcdef".chars().map(|c| {
                let l = l2.clone();
                base.new_timer(move |_, _, _| l.borrow_mut().push(c.to_string())).unwrap()
            }).collect();
            for &ev in &evs {
                base.add(ev, Some(5 * MS)).unwrap();
            }
            base.del(evs[1]).unwrap(); // b: gone
            base.add(evs[2], Some(5 * MS)).unwrap(); // c: moves behind f
            base.add(evs[4], Some(2 * MS)).unwrap(); // e: earlier than all
            base.free(evs[5]).unwrap(); // f: freed while staged
            base.verify().unwrap();
        }).unwrap();
        b.add(start, Some(Duration::ZERO)).unwrap();
        within(Duration::from_secs(10), || b.dispatch().unwrap());
        assert_eq!(entries(&l), ["e", "a", "d", "c"]);
    }

    fn pending_reports_a_staged_deadline(m) {
        let mut b = base(m);
        let seen = Rc::new(RefCell::new(None));
        let s = seen.clone();
        let start = b.new_timer(move |base, _, _| {
            let ev = base.new_timer(|_, _, _| {}).unwrap();
            let before = SystemTime::now();
            base.add(ev, Some(Duration::from_secs(10))).unwrap();
            let (w, when) = base.pending(ev, What::TIMEOUT).unwrap();
            *s.borrow_mut() = Some((w, when.unwrap().duration_since(before).unwrap()));
            base.free(ev).unwrap();
        }).unwrap();
        b.add(start, Some(Duration::ZERO)).unwrap();
        within(Duration::from_secs(10), || b.dispatch().unwrap());
        let (w, d) = seen.borrow_mut().take().unwrap();
        assert_eq!(w, What::TIMEOUT);
        assert!(d >= Duration::from_secs(10) && d < Duration::from_secs(11), "{d:?}");
    }

    fn a_loop_that_ends_with_timers_staged_settles_them(m) {
        // A loopbreak right after the add: the timer is settled as the run ends, so it
        // counts from then, not from whenever the next run starts (30 ms later: it would
        // fire no sooner than 70 ms after the first run ended).
        let mut b = base(m);
        for attempt in 0..5 {
            let fired = Rc::new(Cell::new(None::<Instant>));
            let f = fired.clone();
            let timer = b.new_timer(move |_, _, _| f.set(Some(Instant::now()))).unwrap();
            let start = b.new_timer(move |base: &mut EventBase, _, _| {
                base.add(timer, Some(40 * MS)).unwrap();
                base.loopbreak();
            }).unwrap();
            b.add(start, Some(Duration::ZERO)).unwrap();
            b.run(LoopFlags::empty()).unwrap();
            let ended = Instant::now();
            b.verify().unwrap();
            busy_wait(30 * MS);
            within(Duration::from_secs(10), || b.dispatch().unwrap());
            b.free(start).unwrap();
            let el = fired.get().unwrap() - ended;
            if el < 70 * MS {
                return;
            }
            eprintln!("attempt {attempt}: fired {el:?} after the run ended (a loaded machine?)");
        }
        panic!("5 timers staged when the loop ended all counted from the next run");
    }
}
