//! The cross-thread handle: commands from many threads arrive exactly once, wake-ups are
//! coalesced, and misuse is an error. Real threads; waits are bounded, never sleeps.
mod util;
use evrs::{LoopFlags, RunOutcome, What};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::time::Duration;
use util::*;

on_every_backend! {
    fn repeated_activations_coalesce_into_one_callback_with_every_bit(m) {
        const PER: usize = 1_000;
        let mut b = base(m);
        let h = b.handle().unwrap();
        let seen = Rc::new(std::cell::RefCell::new(Vec::new()));
        let s = seen.clone();
        let ev = b.new_timer(move |_, _, what| s.borrow_mut().push(what)).unwrap();
        // The loop is not running: every activation after the first finds one pending.
        let threads: Vec<_> = [What::READ, What::WRITE, What::TIMEOUT, What::CLOSED]
            .into_iter()
            .map(|bit| {
                let h = h.clone();
                std::thread::spawn(move || {
                    for _ in 0..PER {
                        h.activate(ev, bit, 1).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // One command; no eventfd write at all, as the loop is not asleep in the backend.
        assert_eq!(h.wake_writes(), 0, "4,000 activations of an idle loop need no wake-up");
        b.run(LoopFlags::NONBLOCK).unwrap();
        assert_eq!(
            *seen.borrow(),
            vec![What::READ | What::WRITE | What::TIMEOUT | What::CLOSED]
        );
        // Delivered: the next activation queues anew.
        h.activate(ev, What::READ, 1).unwrap();
        b.run(LoopFlags::NONBLOCK).unwrap();
        assert_eq!(seen.borrow().len(), 2);
        // A freed event's pending activation is dropped, and its slot's next event is
        // not confused with it.
        h.activate(ev, What::WRITE, 1).unwrap();
        b.free(ev).unwrap();
        let s2 = seen.clone();
        let ev2 = b.new_timer(move |_, _, what| s2.borrow_mut().push(what)).unwrap();
        h.activate(ev2, What::TIMEOUT, 1).unwrap();
        b.run(LoopFlags::NONBLOCK).unwrap();
        assert_eq!(seen.borrow().len(), 3);
        assert_eq!(seen.borrow()[2], What::TIMEOUT);
    }

    fn closures_from_many_threads_each_run_exactly_once(m) {
        const THREADS: usize = 8;
        const PER: usize = 2_000;
        let mut b = base(m);
        let h = b.handle().unwrap();
        let count = Arc::new(AtomicUsize::new(0));
        let iterations = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
        // The loop's iteration number, moved on by a check hook at the end of each
        // iteration. (Not the cached time: the coarse clock gives iterations within one tick
        // the same value.)
        let iteration_no = Arc::new(AtomicUsize::new(0));
        let n = iteration_no.clone();
        let counter = b.new_check(move |_, _, _| { n.fetch_add(1, Ordering::SeqCst); }).unwrap();
        b.add(counter, None).unwrap();
        let start = Arc::new(Barrier::new(THREADS));
        let threads: Vec<_> = (0..THREADS)
            .map(|_| {
                let (h, count, start, iterations, iteration_no) =
                    (h.clone(), count.clone(), start.clone(), iterations.clone(), iteration_no.clone());
                std::thread::spawn(move || {
                    start.wait();
                    for _ in 0..PER {
                        let (c, it, no) = (count.clone(), iterations.clone(), iteration_no.clone());
                        h.run_in_loop(move |base| {
                            it.lock().unwrap().insert(no.load(Ordering::SeqCst));
                            if c.fetch_add(1, Ordering::SeqCst) + 1 == THREADS * PER {
                                base.loopbreak();
                            }
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        // A watchdog turns a lost wake-up into a clear failure instead of a hang.
        b.loopexit(Some(Duration::from_secs(20))).unwrap();
        b.run(LoopFlags::NO_EXIT_ON_EMPTY).unwrap();
        for t in threads {
            t.join().unwrap();
        }
        assert!(!b.got_exit(), "watchdog fired: only {} of {} closures ran", count.load(Ordering::SeqCst), THREADS * PER);
        assert_eq!(count.load(Ordering::SeqCst), THREADS * PER);
        // Coalescing: the eventfd is written only to wake a sleeping loop, at most once per
        // sleep, and every wake-up is followed by an iteration that takes the queued closures.
        // So writes cannot outnumber the iterations that ran closures (+1: the last write may
        // find the loop already stopping) — and those are far fewer than the calls, as each
        // takes every closure queued meanwhile.
        let writes = h.wake_writes();
        let iterations = iterations.lock().unwrap().len() as u64;
        eprintln!("{m}: {} commands in {iterations} iterations, {writes} eventfd writes", THREADS * PER);
        assert!(writes <= iterations + 1, "{writes} eventfd writes for {iterations} iterations");
        assert!(
            writes <= (THREADS * PER / 2) as u64,
            "{writes} eventfd writes for {} calls: not coalesced",
            THREADS * PER
        );
        b.free(counter).unwrap();
        b.leave_registered(
            "the 20 s loopexit watchdog, which did not fire (the loop ended by loopbreak): \
             a loopexit cannot be cancelled",
        );
    }

    fn activations_ping_pong_exactly_once_each(m) {
        const THREADS: usize = 4;
        const ROUNDS: usize = 200;
        let mut b = base(m);
        let h = b.handle().unwrap();
        let done = Rc::new(Cell::new(0));
        let mut threads = Vec::new();
        for _ in 0..THREADS {
            let (tx, rx) = mpsc::channel::<()>();
            let d = done.clone();
            let calls = Rc::new(Cell::new(0));
            let ev = b.new_timer(move |base, _, what| {
                assert_eq!(what, What::READ);
                calls.set(calls.get() + 1);
                tx.send(()).unwrap();
                if calls.get() == ROUNDS {
                    d.set(d.get() + 1);
                    if d.get() == THREADS {
                        base.loopbreak();
                    }
                }
            }).unwrap();
            let h = h.clone();
            threads.push(std::thread::spawn(move || {
                for _ in 0..ROUNDS {
                    h.activate(ev, What::READ, 1).unwrap();
                    rx.recv_timeout(Duration::from_secs(20)).expect("callback ran");
                }
            }));
        }
        b.loopexit(Some(Duration::from_secs(30))).unwrap();
        b.run(LoopFlags::NO_EXIT_ON_EMPTY).unwrap();
        assert!(!b.got_exit(), "watchdog fired");
        assert_eq!(done.get(), THREADS);
        for t in threads {
            t.join().unwrap();
        }
        b.leave_registered(
            "the 30 s loopexit watchdog, which did not fire (the loop ended by loopbreak): \
             a loopexit cannot be cancelled",
        );
    }

    fn add_del_and_loopexit_from_another_thread(m) {
        let mut b = base(m);
        let h = b.handle().unwrap();
        let (x, y) = pair();
        let hits = Rc::new(Cell::new(0));
        let c = hits.clone();
        let ev = b.new_event(fd(&y), What::READ | What::PERSIST, move |_, _, _| {
            read_all(&y);
            c.set(c.get() + 1);
        }).unwrap();
        let t = std::thread::spawn(move || {
            h.add(ev, None).unwrap();
            h.run_in_loop(move |_| write(&x, b"from afar")).unwrap();
            h
        });
        let h = t.join().unwrap();
        // Nothing is added yet (the add is queued), so the loop must not exit on empty; it
        // runs the queued add, then the write makes the event fire.
        within(Duration::from_secs(10), || {
            while hits.get() == 0 {
                b.run(LoopFlags::ONCE | LoopFlags::NO_EXIT_ON_EMPTY).unwrap();
            }
        });
        let t = std::thread::spawn(move || {
            h.del(ev).unwrap();
            h.loopexit(None).unwrap();
            h
        });
        let h = t.join().unwrap();
        assert_eq!(within(Duration::from_secs(10), || b.run(LoopFlags::NO_EXIT_ON_EMPTY).unwrap()), RunOutcome::Exited);
        assert!(b.got_exit());
        assert_eq!(b.pending(ev, What::READ).unwrap().0, What::empty());
        drop(h);
    }

    fn loopbreak_from_another_thread_stops_a_blocked_loop(m) {
        let mut b = base(m);
        let h = b.handle().unwrap();
        let t = b.new_timer(|_, _, _| panic!("the loop should have been stopped first")).unwrap();
        b.add(t, Some(Duration::from_secs(60))).unwrap();
        let loop_tid = gettid();
        let th = std::thread::spawn(move || {
            // Only once the loop sleeps in its backend (60 s to go) does the break arrive.
            let blocked =
                wait_until_blocked_in(loop_tid, &backend_wait_syscalls(), Duration::from_secs(10));
            h.loopbreak().unwrap();
            blocked
        });
        let r = within(Duration::from_secs(20), || b.dispatch().unwrap());
        assert!(th.join().unwrap(), "the loop never slept in its backend");
        assert_eq!(r, RunOutcome::Exited);
        assert!(b.got_break());
        b.free(t).unwrap();
    }

    fn handle_refuses_foreign_events_and_a_dropped_base(m) {
        let mut a = base(m);
        let mut b = base(m);
        let ha = a.handle().unwrap();
        let ev_b = b.new_timer(|_, _, _| {}).unwrap();
        let e = ha.activate(ev_b, What::TIMEOUT, 1).unwrap_err();
        assert!(e.to_string().contains("another event base"), "{e}");
        assert!(ha.add(ev_b, None).is_err());
        assert!(ha.del(ev_b).is_err());
        drop(a);
        for r in [ha.wake(), ha.loopbreak(), ha.run_in_loop(|_| {})] {
            assert_eq!(r.unwrap_err().kind(), std::io::ErrorKind::NotConnected);
        }
        // The other base is untouched.
        let ran = Rc::new(Cell::new(false));
        let r = ran.clone();
        b.assign(ev_b, -1, What::empty(), move |_, _, _| r.set(true)).unwrap();
        b.activate(ev_b, What::TIMEOUT, 1).unwrap();
        b.dispatch().unwrap();
        assert!(ran.get());
    }

    fn del_blocking_returns_only_after_the_running_callback_finished(m) {
        use std::sync::atomic::AtomicBool;
        let finished = Arc::new(AtomicBool::new(false));
        let release = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(AtomicUsize::new(0));
        let (handle_tx, handle_rx) = mpsc::channel();
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let (f, c, rel) = (finished.clone(), calls.clone(), release.clone());
        let loop_thread = std::thread::spawn(move || {
            let mut b = base(m);
            let ev = b
                .new_event(-1, What::PERSIST, move |_, _, _| {
                    c.fetch_add(1, Ordering::SeqCst);
                    let _ = started_tx.send(());
                    // Holds until the deleting thread is blocked in del_blocking.
                    assert!(
                        eventually(Duration::from_secs(20), || rel.load(Ordering::SeqCst)),
                        "never released"
                    );
                    f.store(true, Ordering::SeqCst);
                })
                .unwrap();
            b.add(ev, Some(Duration::from_millis(1))).unwrap();
            handle_tx.send((b.handle().unwrap(), ev)).unwrap();
            b.loopexit(Some(Duration::from_secs(30))).unwrap(); // a lost command ends the loop
            b.run(LoopFlags::NO_EXIT_ON_EMPTY).unwrap();
            let exited = b.got_exit();
            if !exited {
                b.leave_registered(
                    "the 30 s loopexit watchdog, which did not fire (the loop ended by \
                     loopbreak): a loopexit cannot be cancelled",
                );
            }
            exited
        });
        let (h, ev) = handle_rx.recv_timeout(Duration::from_secs(20)).unwrap();
        started_rx.recv_timeout(Duration::from_secs(20)).unwrap();
        // Release the callback only once this thread sleeps inside del_blocking (a futex
        // wait for the loop's answer): proof that del_blocking waits, not just returns late.
        let me = gettid();
        let rel = release.clone();
        let watcher = std::thread::spawn(move || {
            let blocked = wait_until_blocked_in(me, &futex_syscalls(), Duration::from_secs(10));
            rel.store(true, Ordering::SeqCst);
            blocked
        });
        h.del_blocking(ev).unwrap();
        assert!(
            finished.load(Ordering::SeqCst),
            "del returned while the callback still ran"
        );
        assert!(watcher.join().unwrap(), "del_blocking never blocked");
        let n = calls.load(Ordering::SeqCst);
        // Deleted: no further calls, even though it was a persistent 1 ms timer.
        h.call(|_| ()).unwrap();
        h.free_blocking(ev).unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), n);
        h.loopbreak().unwrap();
        assert!(!loop_thread.join().unwrap(), "the loop's 30 s loopexit fired");
    }

    fn call_on_the_loop_thread_is_refused_instead_of_deadlocking(m) {
        let mut b = base(m);
        let h = b.handle().unwrap();
        let e = h.call(|_| ()).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
        let ev = b.new_timer(|_, _, _| {}).unwrap();
        assert_eq!(
            h.del_blocking(ev).unwrap_err().kind(),
            std::io::ErrorKind::WouldBlock
        );
    }

    fn call_fails_when_the_base_is_dropped_before_running_it(m) {
        let (tx, rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let owner = std::thread::spawn(move || {
            let mut b = base(m);
            tx.send(b.handle().unwrap()).unwrap();
            go_rx.recv().unwrap();
            drop(b); // never runs its loop
        });
        let h = rx.recv().unwrap();
        let waiter = std::thread::spawn(move || h.call(|_| 42));
        go_tx.send(()).unwrap();
        owner.join().unwrap();
        let r = within(Duration::from_secs(10), || waiter.join().unwrap());
        assert_eq!(r.unwrap_err().kind(), std::io::ErrorKind::NotConnected);
    }

    fn commands_queued_before_the_loop_starts_keep_it_alive(m) {
        let mut b = base(m);
        let h = b.handle().unwrap();
        let hit = Rc::new(Cell::new(false));
        let c = hit.clone();
        let ev = b.new_timer(move |_, _, _| c.set(true)).unwrap();
        std::thread::spawn(move || h.add(ev, Some(Duration::from_millis(1))).unwrap())
            .join()
            .unwrap();
        // Nothing is added yet, only queued: dispatch must still take the command, then run
        // the timer, then return because no events are left.
        let r = within(Duration::from_secs(10), || b.dispatch().unwrap());
        assert_eq!(r, RunOutcome::NoEvents);
        assert!(hit.get());
    }
}

mod more {
    use super::*;

    on_every_backend! {
        fn commands_sent_to_a_busy_loop_need_no_wake_up_and_it_sleeps_again(m) {
            // One eventfd write wakes the sleeping loop; 50 commands sent while it is busy in a
            // callback (awake) need none; once they ran, the loop blocks again instead of
            // spinning (a check hook counts iterations).
            const BOUND: Duration = Duration::from_secs(10);
            let mut b = base(m);
            let h = b.handle().unwrap();
            let iterations = Rc::new(Cell::new(0u32));
            let c = iterations.clone();
            let check = b.new_check(move |_, _, _| c.set(c.get() + 1)).unwrap();
            b.add(check, None).unwrap();
            let loop_tid = gettid();
            let ran = Arc::new(AtomicUsize::new(0));
            let r2 = ran.clone();
            let t = std::thread::spawn(move || {
                let waits = backend_wait_syscalls();
                let (running_tx, running_rx) = mpsc::channel();
                let (go_tx, go_rx) = mpsc::channel::<()>();
                let r = (|| {
                    if !wait_until_blocked_in(loop_tid, &waits, BOUND) {
                        return Err("the loop never went to sleep in its backend");
                    }
                    h.run_in_loop(move |_| {
                        running_tx.send(()).unwrap();
                        let _ = go_rx.recv_timeout(BOUND);
                    }).unwrap();
                    running_rx.recv_timeout(BOUND).map_err(|_| "the first command did not run")?;
                    for _ in 0..50 {
                        let r = r2.clone();
                        h.run_in_loop(move |_| {
                            r.fetch_add(1, Ordering::SeqCst);
                        }).unwrap();
                    }
                    let writes = h.wake_writes();
                    go_tx.send(()).unwrap();
                    if !eventually(BOUND, || r2.load(Ordering::SeqCst) == 50) {
                        return Err("the commands sent to the busy loop did not run");
                    }
                    if !wait_until_blocked_in(loop_tid, &waits, BOUND) {
                        return Err("the loop did not go back to sleep");
                    }
                    // A loop that does not block would iterate thousands of times meanwhile.
                    std::thread::sleep(Duration::from_millis(100));
                    Ok(writes)
                })();
                h.loopbreak().unwrap(); // always: a failed check must end the loop, not hang it
                r
            });
            let outcome = b.run(LoopFlags::NO_EXIT_ON_EMPTY).unwrap();
            let writes = t.join().unwrap().unwrap();
            assert_eq!(outcome, RunOutcome::Exited);
            assert_eq!(ran.load(Ordering::SeqCst), 50);
            assert_eq!(writes, 1, "only the command to the sleeping loop writes the eventfd");
            assert!(iterations.get() < 20, "{} loop iterations: the loop spins", iterations.get());
            b.free(check).unwrap();
        }

        fn free_blocking_frees_the_event_before_it_returns(m) {
            let mut b = base(m);
            let h = b.handle().unwrap();
            let ev = b.new_timer(|_, _, _| {}).unwrap();
            b.add(ev, Some(Duration::from_secs(3600))).unwrap();
            let t = std::thread::spawn(move || {
                let first = h.free_blocking(ev);
                // The event is gone: a second free fails on the loop thread, and says so.
                let second = h.free_blocking(ev);
                (first, second)
            });
            let (first, second) = within(Duration::from_secs(10), || {
                // NONBLOCK: running commands is internal work, which would not end a ONCE run.
                while !t.is_finished() {
                    b.run(LoopFlags::NONBLOCK).unwrap();
                }
                t.join().unwrap()
            });
            first.unwrap();
            assert!(second.is_err(), "free_blocking of a freed event succeeded");
            assert!(b.pending(ev, What::TIMEOUT).is_err(), "the event was not freed");
        }

        fn a_signal_activation_from_another_thread_keeps_its_count(m) {
            // `ncalls` other than 1 is not coalesced: a signal event's callback runs that often.
            let mut b = base(m);
            let h = b.handle().unwrap();
            let n = Rc::new(Cell::new(0));
            let c = n.clone();
            let ev = b.new_signal(libc::SIGUSR2, move |_, _, _| c.set(c.get() + 1)).unwrap();
            std::thread::spawn(move || h.activate(ev, What::SIGNAL, 3).unwrap()).join().unwrap();
            b.run(LoopFlags::NONBLOCK).unwrap();
            assert_eq!(n.get(), 3);
        }
    }
}

#[test]
fn handle_debug_names_the_base_and_its_eventfd() {
    let mut b = util::default_base();
    let h = b.handle().unwrap();
    let s = format!("{h:?}");
    assert!(s.starts_with("Handle {"), "{s}");
    assert!(s.contains("base: ") && s.contains("fd: "), "{s}");
}

#[test]
fn handle_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<evrs::Handle>();
}

/// The fd number in a handle's `Debug` (`Handle { base: 3, fd: 7 }`).
fn eventfd_of(h: &evrs::Handle) -> i32 {
    let s = format!("{h:?}");
    let rest = s.split("fd: ").nth(1).expect("fd in Debug");
    rest.trim_end_matches([' ', '}'])
        .parse()
        .expect("an fd number")
}

#[test]
fn the_eventfd_is_closed_once_the_base_and_every_handle_are_gone() {
    const NAME: &str = "the_eventfd_is_closed_once_the_base_and_every_handle_are_gone";
    // Run alone, in a child process (this test binary, filtered to this test): otherwise a
    // test running in parallel could be handed the fd number as soon as it is closed.
    if std::env::var_os("EVRS_EVENTFD_CHILD").is_none() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", NAME, "--test-threads=1"])
            .env("EVRS_EVENTFD_CHILD", "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
        assert!(
            stdout.contains("1 passed"),
            "the child ran no test:\n{stdout}"
        );
        return;
    }
    let is_open = |fd: i32| {
        // SAFETY: fcntl(F_GETFD) takes no pointers.
        unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
    };
    let mut b = util::default_base();
    let h = b.handle().unwrap();
    let fd = eventfd_of(&h);
    assert!(is_open(fd));
    drop(b);
    assert!(is_open(fd), "closed while a handle still refers to it");
    drop(h);
    assert!(!is_open(fd), "the eventfd {fd} leaked");
}
