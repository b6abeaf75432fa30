//! Base configuration, inspection, and waking a loop from another thread.
mod util;
use evrs::{BaseFlags, Count, EventConfig, Features, LoopFlags, Method, RunOutcome, What};
use std::ops::ControlFlow;
use std::time::Duration;
use util::*;

on_every_backend! {
    fn notifier_wakes_a_blocked_loop_from_another_thread(m) {
        // The loop has nothing to do and no timeout: it sleeps in its backend until woken. The
        // kernel tells the other thread when it sleeps there (/proc) and that it woke up (one
        // more voluntary context switch once it is back asleep); a wake() that does nothing
        // fails the test within BOUND instead of hanging it.
        const BOUND: Duration = Duration::from_secs(10);
        let mut b = base(m);
        let n = b.handle().unwrap();
        let loop_tid = gettid();
        let waker = std::thread::spawn(move || {
            let waits = backend_wait_syscalls();
            let r = if !wait_until_blocked_in(loop_tid, &waits, BOUND) {
                Err("the loop never went to sleep in its backend")
            } else {
                let before = voluntary_switches(loop_tid);
                for _ in 0..100 {
                    n.wake().unwrap(); // coalesced: at most one eventfd write per iteration
                }
                let woke = eventually(BOUND, || {
                    voluntary_switches(loop_tid) > before && is_blocked_in(loop_tid, &waits)
                });
                if woke { Ok(()) } else { Err("wake() did not wake the sleeping loop") }
            };
            n.loopbreak().unwrap(); // always: a failed check must end the loop, not hang it
            (r, n)
        });
        let outcome = b.run(LoopFlags::NO_EXIT_ON_EMPTY).unwrap();
        let (r, n) = waker.join().unwrap();
        r.unwrap();
        assert_eq!(outcome, RunOutcome::Exited);
        assert!(b.got_break());
        assert!(n.wake_writes() >= 1);
        drop(b);
        let e = n.wake().unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotConnected);
    }

    fn counts_foreach_and_dump(m) {
        let mut b = base(m);
        let (_x, y) = pair();
        let io = b.new_event(fd(&y), What::READ | What::PERSIST, |_, _, _| {}).unwrap();
        b.add(io, Some(Duration::from_secs(5))).unwrap();
        let t = b.new_timer(|_, _, _| {}).unwrap();
        b.add(t, Some(Duration::from_secs(5))).unwrap();
        let a = b.new_timer(|_, _, _| {}).unwrap();
        b.activate(a, What::TIMEOUT, 1).unwrap();
        assert_eq!(b.num_events(Count::Added), 3); // io: inserted + timeout, t: timeout
        assert_eq!(b.num_events(Count::Active), 1);
        let mut seen = Vec::new();
        let _ = b.foreach_event(|i| { seen.push(i.event); ControlFlow::Continue(()) });
        assert_eq!(seen.len(), 3);
        let mut first = 0;
        let r = b.foreach_event(|_| { first += 1; ControlFlow::Break(()) });
        assert_eq!((r, first), (ControlFlow::Break(()), 1));
        let mut out = Vec::new();
        b.dump_events(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("Inserted events:"), "{text}");
        assert!(text.contains("Read Persist Timeout="), "{text}");
        assert!(text.contains("Active events:"), "{text}");
        assert!(b.max_events(Count::Added, true) >= 3);
        b.free(io).unwrap();
        b.free(t).unwrap();
        b.free(a).unwrap();
        // Clearing one kind's high-water mark leaves the other's (libevent clears only the
        // kinds asked for).
        assert!(b.max_events(Count::Added, false) >= 3);
        assert_eq!(b.max_events(Count::Active, true), 1);
        assert!(b.max_events(Count::Added, false) >= 3, "clearing Active cleared Added");
        assert_eq!(b.max_events(Count::Active, false), 0);
        assert_eq!(b.num_events(Count::Added), 0);
        assert_eq!(b.num_events(Count::Active), 0);
        assert_eq!(b.run(LoopFlags::NONBLOCK).unwrap(), RunOutcome::NoEvents);
    }

    fn cached_time_is_stable_within_a_callback(m) {
        let mut b = base(m);
        let ran = std::rc::Rc::new(std::cell::Cell::new(false));
        let r = ran.clone();
        let ev = b.new_timer(move |base, _, _| {
            r.set(true);
            let a = base.gettimeofday_cached();
            std::thread::sleep(Duration::from_millis(20)); // deliberately slow callback
            let b2 = base.gettimeofday_cached();
            assert_eq!(a, b2, "cached time does not move within an iteration");
            base.update_cache_time();
            let c = base.gettimeofday_cached();
            assert!(c > a, "update_cache_time refreshes it");
            let wall = std::time::SystemTime::now();
            let diff = wall.duration_since(c).unwrap_or_default();
            assert!(diff < Duration::from_millis(100), "{diff:?}");
        }).unwrap();
        b.activate(ev, What::TIMEOUT, 1).unwrap();
        b.dispatch().unwrap();
        assert!(ran.get(), "the callback (and its assertions) ran");
    }
}

#[test]
fn backend_choice_avoidance_and_features() {
    let b = EventConfig::new()
        .flags(BaseFlags::IGNORE_ENV)
        .build()
        .unwrap();
    assert_eq!(b.method(), Method::Epoll);
    let b = EventConfig::new()
        .flags(BaseFlags::IGNORE_ENV)
        .avoid_method(Method::Epoll)
        .build()
        .unwrap();
    assert_eq!(b.method(), Method::Poll);
    let b = EventConfig::new()
        .flags(BaseFlags::IGNORE_ENV)
        .avoid_method(Method::Epoll)
        .avoid_method(Method::Poll)
        .build()
        .unwrap();
    assert_eq!(b.method(), Method::Select);
    let b = EventConfig::new()
        .flags(BaseFlags::IGNORE_ENV)
        .require_features(Features::FDS)
        .build()
        .unwrap();
    assert_eq!(b.method(), Method::Poll);
    // Edge-triggering and any fd: nobody (io_uring refuses regular files as epoll does).
    let e = EventConfig::new()
        .flags(BaseFlags::IGNORE_ENV)
        .require_features(Features::ET | Features::FDS)
        .build()
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::Unsupported);
    assert!(e.to_string().contains("no event mechanism"), "{e}");
    assert!(EventConfig::new().priorities(0).build().is_err());
    assert!(EventConfig::new().priorities(256).build().is_err());
    assert_eq!(
        EventConfig::new()
            .priorities(255)
            .build()
            .unwrap()
            .priorities(),
        255
    );
}

#[test]
fn environment_steers_the_backend_unless_ignored() {
    // The only test in this binary that touches the environment (the others build their
    // bases with an explicit method, which the environment does not steer).
    let saved: Vec<_> = [
        "EVRS_BACKEND",
        "EVENT_NOEPOLL",
        "EVENT_NOPOLL",
        "EVENT_NOSELECT",
        "EVENT_NOIO_URING",
    ]
    .into_iter()
    .map(|k| (k, std::env::var_os(k)))
    .collect();
    for (k, _) in &saved {
        std::env::remove_var(k);
    }
    let cfg = EventConfig::new();
    std::env::set_var("EVRS_BACKEND", "poll");
    // The named method first, the others behind it as fallbacks.
    assert_eq!(
        cfg.candidates(),
        [Method::Poll, Method::Epoll, Method::Select, Method::IoUring]
    );
    // The rule: the program's explicit choice wins over the environment. An explicit method
    // is used as asked (EVRS_BACKEND=poll must not make `method(Epoll)` fail to build: the
    // bench's allocation test builds exactly that)...
    let explicit = EventConfig::new().method(Method::Epoll);
    assert_eq!(explicit.candidates(), [Method::Epoll]);
    assert_eq!(explicit.build().unwrap().method(), Method::Epoll);
    // ...and EVRS_BACKEND naming a method the config's avoidances or required features
    // exclude is ignored rather than leaving no method at all.
    let needs_o1 = EventConfig::new()
        .avoid_method(Method::Select)
        .require_features(Features::O1);
    assert_eq!(needs_o1.candidates(), [Method::Epoll, Method::IoUring]);
    std::env::remove_var("EVRS_BACKEND");
    std::env::set_var("EVENT_NOEPOLL", "1");
    assert_eq!(
        cfg.candidates(),
        [Method::Poll, Method::Select, Method::IoUring]
    );
    std::env::set_var("EVENT_NOIO_URING", "1");
    assert_eq!(cfg.candidates(), [Method::Poll, Method::Select]);
    // A veto wins over the name that puts a method first (libevent's regress sets
    // EVENT_NO<default method> and expects another method, whatever else is set).
    std::env::set_var("EVRS_BACKEND", "io_uring");
    assert_eq!(cfg.candidates(), [Method::Poll, Method::Select]);
    std::env::remove_var("EVRS_BACKEND");
    std::env::remove_var("EVENT_NOIO_URING");
    assert_eq!(
        EventConfig::new().method(Method::Epoll).candidates(),
        [Method::Epoll],
        "EVENT_NOEPOLL does not veto an explicit method either"
    );
    let ignoring = EventConfig::new().flags(BaseFlags::IGNORE_ENV);
    assert_eq!(ignoring.candidates(), Method::ALL);
    std::env::remove_var("EVENT_NOEPOLL");
    assert_eq!(cfg.candidates(), Method::ALL);
    for (k, v) in saved {
        if let Some(v) = v {
            std::env::set_var(k, v);
        }
    }
}
