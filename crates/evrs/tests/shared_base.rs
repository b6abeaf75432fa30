//! `SharedBase`: libevent's locked, multi-threaded base. Real threads on every backend; every
//! wait is bounded so a lost wake-up or a deadlock fails fast with a message.
mod util;
use evrs::{DelMode, LoopFlags, RunOutcome, SharedBase, What};
use std::io;
use std::os::unix::io::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use util::*;

const LIMIT: Duration = Duration::from_secs(20);

/// Starts the loop on its own thread and returns once it runs.
fn spawn_loop(b: &SharedBase) -> JoinHandle<io::Result<RunOutcome>> {
    let b2 = b.clone();
    let h = std::thread::spawn(move || b2.run(LoopFlags::NO_EXIT_ON_EMPTY));
    wait_until("the loop to start", || b.is_running());
    h
}

/// Starts the loop on its own thread and returns once it sleeps in its backend (checked in
/// /proc), with the loop thread's kernel id.
fn spawn_sleeping_loop(b: &SharedBase) -> (JoinHandle<io::Result<RunOutcome>>, i32) {
    let (b2, (tx, rx)) = (b.clone(), mpsc::channel());
    let h = std::thread::spawn(move || {
        tx.send(gettid()).unwrap();
        b2.run(LoopFlags::NO_EXIT_ON_EMPTY)
    });
    let tid = rx.recv_timeout(LIMIT).unwrap();
    assert!(
        wait_until_blocked_in(tid, &backend_wait_syscalls(), LIMIT),
        "the loop never slept in its backend"
    );
    (h, tid)
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < LIMIT, "timed out waiting for {what}");
        std::thread::yield_now();
    }
}

fn stop(b: &SharedBase, h: JoinHandle<io::Result<RunOutcome>>) {
    b.loopbreak();
    assert_eq!(h.join().unwrap().unwrap(), RunOutcome::Exited);
}

/// A callback that reports it started, then holds until released, then marks itself done.
struct Gate {
    started: AtomicBool,
    release: AtomicBool,
    done: AtomicBool,
    runs: AtomicUsize,
}

impl Gate {
    fn new() -> Arc<Gate> {
        Arc::new(Gate {
            started: AtomicBool::new(false),
            release: AtomicBool::new(false),
            done: AtomicBool::new(false),
            runs: AtomicUsize::new(0),
        })
    }

    /// The body of the gated callback.
    fn hold(&self) {
        self.runs.fetch_add(1, Ordering::SeqCst);
        self.started.store(true, Ordering::SeqCst);
        wait_until("the test to release the callback", || {
            self.release.load(Ordering::SeqCst)
        });
        self.done.store(true, Ordering::SeqCst);
    }
}

/// A persistent event that is always ready (level-triggered READ on a socket with unread
/// data) and runs the gate: were it not deleted, it would run again at once.
fn gated_event(
    b: &SharedBase,
    gate: &Arc<Gate>,
    extra: What,
) -> (evrs::Event, std::os::unix::net::UnixStream) {
    let (x, y) = pair();
    write(&y, b"always readable");
    let g = gate.clone();
    let ev = b
        .new_event(
            x.as_raw_fd(),
            What::READ | What::PERSIST | extra,
            move |_, _, _| g.hold(),
        )
        .unwrap();
    b.add(ev, None).unwrap();
    std::mem::forget(x); // closed with the process; keeps the fd number from being reused
    (ev, y)
}

/// Runs `del` on another thread while the gated callback runs; returns whether the callback
/// had finished when `del` returned.
fn del_while_running(
    b: &SharedBase,
    ev: evrs::Event,
    gate: &Arc<Gate>,
    mode: DelMode,
) -> (io::Result<()>, bool) {
    wait_until("the callback to start", || {
        gate.started.load(Ordering::SeqCst)
    });
    let (tx, rx) = mpsc::channel();
    let (tid_tx, tid_rx) = mpsc::channel();
    let (b2, g2) = (b.clone(), gate.clone());
    let deleter = std::thread::spawn(move || {
        tid_tx.send(gettid()).unwrap();
        let r = b2.del_with(ev, mode);
        tx.send(()).unwrap();
        (r, g2.done.load(Ordering::SeqCst))
    });
    // Release the callback once the deleter has returned, or sleeps (on the condition
    // variable a blocking delete waits on): a blocking delete must be seen asleep first.
    let tid = tid_rx.recv_timeout(LIMIT).unwrap();
    let mut early = false;
    let futex = futex_syscalls();
    wait_until("the delete to block or return", || {
        early = rx.try_recv().is_ok();
        early || is_blocked_in(tid, &futex)
    });
    gate.release.store(true, Ordering::SeqCst);
    let (r, done_at_return) = deleter.join().unwrap();
    if mode == DelMode::Block {
        assert!(!early, "a blocking delete returned while the callback ran");
    }
    (r, done_at_return)
}

on_every_backend! {
    fn io_callbacks_run_unlocked_and_may_use_the_base(m) {
        let b = shared(m);
        let (x, y) = pair();
        let (tx, rx) = mpsc::channel();
        let ev = b
            .new_event(x.as_raw_fd(), What::READ | What::PERSIST, move |base, ev, what| {
                // Taking the lock from inside the callback works: it runs unlocked.
                let pending = base.pending(ev, What::READ).unwrap().0;
                tx.send((what, pending, read_all(&x))).unwrap();
            })
            .unwrap();
        b.add(ev, None).unwrap();
        let h = spawn_loop(&b);
        write(&y, b"ping");
        let (what, pending, data) = rx.recv_timeout(LIMIT).expect("callback ran");
        assert!(what.contains(What::READ));
        assert!(pending.contains(What::READ), "persistent event stays pending");
        assert_eq!(data, b"ping");
        stop(&b, h);
        b.free(ev).unwrap();
    }

    fn an_add_from_another_thread_wakes_a_sleeping_loop(m) {
        let b = shared(m);
        let (h, _) = spawn_sleeping_loop(&b);
        // The loop sleeps with nothing to wait for; a 1 ms timer added now must wake it.
        let (tx, rx) = mpsc::channel();
        let ev = b.new_timer(move |_, _, what| tx.send(what).unwrap()).unwrap();
        b.add(ev, Some(Duration::from_millis(1))).unwrap();
        assert_eq!(rx.recv_timeout(LIMIT).expect("timer fired"), What::TIMEOUT);
        // And an fd registered from another thread is watched from then on.
        let (x, y) = pair();
        let (tx, rx) = mpsc::channel();
        let io = b
            .new_event(x.as_raw_fd(), What::READ, move |_, _, what| tx.send(what).unwrap())
            .unwrap();
        b.add(io, None).unwrap();
        write(&y, b"!");
        assert!(rx.recv_timeout(LIMIT).expect("fd event fired").contains(What::READ));
        stop(&b, h);
        drop(x);
    }

    fn activations_from_many_threads_are_each_delivered(m) {
        const THREADS: usize = 4;
        const PER: usize = 500;
        // PRECISE_TIMER: the cached time (which names the iteration below) is then read from
        // the nanosecond clock, not the coarse one, whose millisecond ticks span iterations.
        let b = shared_with(
            evrs::EventConfig::new()
                .method(m)
                .flags(evrs::BaseFlags::IGNORE_ENV | evrs::BaseFlags::PRECISE_TIMER),
        );
        let h = spawn_loop(&b);
        let start = Arc::new(Barrier::new(THREADS));
        let iterations = Arc::new(Mutex::new(std::collections::HashSet::new()));
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                let (b, start, iterations) = (b.clone(), start.clone(), iterations.clone());
                std::thread::spawn(move || {
                    let seen = Arc::new(AtomicUsize::new(0));
                    let (s, it) = (seen.clone(), iterations.clone());
                    let ev = b
                        .new_timer(move |base, _, _| {
                            // The cached time names the loop iteration running us.
                            it.lock().unwrap().insert(base.gettimeofday_cached());
                            s.fetch_add(1, Ordering::SeqCst);
                        })
                        .unwrap();
                    start.wait();
                    for i in 0..PER {
                        b.activate(ev, What::TIMEOUT, 1).unwrap();
                        wait_until("an activation to run", || {
                            seen.load(Ordering::SeqCst) == i + 1
                        });
                    }
                    b.free(ev).unwrap();
                    seen.load(Ordering::SeqCst)
                })
            })
            .collect();
        for w in workers {
            assert_eq!(w.join().unwrap(), PER, "each activation ran exactly once");
        }
        // The eventfd is written only to wake a sleeping loop, once per sleep: every write
        // is followed by an iteration that runs the activation's callback (or takes a free:
        // THREADS of them, +1 for the stop). Writing once per change would exceed that, as
        // four threads' activations often land in one iteration.
        let writes = b.wake_writes();
        let iterations = iterations.lock().unwrap().len() as u64;
        eprintln!("{m}: {} activations in {iterations} iterations, {writes} eventfd writes", THREADS * PER);
        assert!(
            writes <= iterations + THREADS as u64 + 1,
            "{writes} eventfd writes for {iterations} iterations"
        );
        stop(&b, h);
    }

    fn adds_and_dels_from_many_threads_against_a_running_loop(m) {
        // Each thread: add a timer and wait for it (it must fire exactly once), add one and
        // delete it before it can fire (it must never fire), and churn an fd event.
        const THREADS: usize = 4;
        const ROUNDS: usize = 200;
        let b = shared(m);
        let h = spawn_loop(&b);
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                let b = b.clone();
                std::thread::spawn(move || {
                    let fired = Arc::new(AtomicUsize::new(0));
                    let never = Arc::new(AtomicUsize::new(0));
                    let (f, n) = (fired.clone(), never.clone());
                    let t = b.new_timer(move |_, _, _| { f.fetch_add(1, Ordering::SeqCst); }).unwrap();
                    let d = b.new_timer(move |_, _, _| { n.fetch_add(1, Ordering::SeqCst); }).unwrap();
                    let (x, y) = pair();
                    let io = b.new_event(x.as_raw_fd(), What::READ, |_, _, _| {}).unwrap();
                    for i in 0..ROUNDS {
                        b.add(t, Some(Duration::ZERO)).unwrap();
                        wait_until("a timer to fire", || fired.load(Ordering::SeqCst) == i + 1);
                        b.add(d, Some(Duration::from_secs(60))).unwrap();
                        b.del_block(d).unwrap();
                        b.add(io, None).unwrap();
                        b.del(io).unwrap();
                    }
                    b.free(t).unwrap();
                    b.free(d).unwrap();
                    b.free(io).unwrap();
                    drop((x, y));
                    (fired.load(Ordering::SeqCst), never.load(Ordering::SeqCst))
                })
            })
            .collect();
        for w in workers {
            assert_eq!(w.join().unwrap(), (ROUNDS, 0));
        }
        assert_eq!(b.num_events(evrs::Count::Added), 0, "every event was freed");
        stop(&b, h);
    }

    fn del_block_returns_only_after_the_running_callback(m) {
        let b = shared(m);
        let gate = Gate::new();
        let (ev, _peer) = gated_event(&b, &gate, What::empty());
        let h = spawn_loop(&b);
        let (r, done) = del_while_running(&b, ev, &gate, DelMode::Block);
        r.unwrap();
        assert!(done, "del_block returned before the callback finished");
        assert!(b.pending(ev, What::READ).unwrap().0.is_empty());
        stop(&b, h);
        // Deleted before the wait: the always-ready event never ran again.
        assert_eq!(gate.runs.load(Ordering::SeqCst), 1);
    }

    fn del_block_of_an_event_that_frees_itself_meanwhile_succeeds(m) {
        let b = shared(m);
        let gate = Gate::new();
        let (x, y) = pair();
        write(&y, b"always readable");
        let g = gate.clone();
        let ev = b
            .new_event(x.as_raw_fd(), What::READ | What::PERSIST, move |base, ev, _| {
                g.hold();
                base.free(ev).unwrap();
            })
            .unwrap();
        b.add(ev, None).unwrap();
        let h = spawn_loop(&b);
        let (r, done) = del_while_running(&b, ev, &gate, DelMode::Block);
        r.expect("the event was deleted; that its callback then freed it is no error");
        assert!(done);
        assert!(!b.with(|base| base.is_initialized(ev)));
        stop(&b, h);
        drop((x, y));
    }

    fn del_noblock_returns_while_the_callback_runs(m) {
        let b = shared(m);
        let gate = Gate::new();
        let (ev, _peer) = gated_event(&b, &gate, What::empty());
        let h = spawn_loop(&b);
        wait_until("the callback to start", || gate.started.load(Ordering::SeqCst));
        b.del_noblock(ev).unwrap();
        assert!(!gate.done.load(Ordering::SeqCst), "del_noblock waited");
        gate.release.store(true, Ordering::SeqCst);
        stop(&b, h);
        assert_eq!(gate.runs.load(Ordering::SeqCst), 1);
    }

    fn auto_mode_blocks_unless_the_event_has_finalize(m) {
        let b = shared(m);
        let gate = Gate::new();
        let (ev, _peer) = gated_event(&b, &gate, What::empty());
        let h = spawn_loop(&b);
        let (r, done) = del_while_running(&b, ev, &gate, DelMode::Auto);
        r.unwrap();
        assert!(done, "auto mode did not block for a plain event");
        stop(&b, h);

        let gate = Gate::new();
        let (ev, _peer) = gated_event(&b, &gate, What::FINALIZE);
        let h = spawn_loop(&b);
        wait_until("the callback to start", || gate.started.load(Ordering::SeqCst));
        b.del(ev).unwrap();
        assert!(!gate.done.load(Ordering::SeqCst), "auto mode blocked for a FINALIZE event");
        gate.release.store(true, Ordering::SeqCst);
        stop(&b, h);
    }

    fn a_finalizer_runs_on_the_loop_thread_after_the_callback(m) {
        let b = shared(m);
        let gate = Gate::new();
        let (ev, _peer) = gated_event(&b, &gate, What::FINALIZE);
        let loop_thread = Arc::new(Mutex::new(None));
        let h = {
            let (b2, lt) = (b.clone(), loop_thread.clone());
            let h = std::thread::spawn(move || {
                *lt.lock().unwrap() = Some(std::thread::current().id());
                b2.run(LoopFlags::NO_EXIT_ON_EMPTY)
            });
            wait_until("the loop to start", || b.is_running());
            h
        };
        wait_until("the callback to start", || gate.started.load(Ordering::SeqCst));
        let (tx, rx) = mpsc::channel();
        let g = gate.clone();
        b.free_finalize(ev, move |fev| {
            tx.send((fev, g.done.load(Ordering::SeqCst), std::thread::current().id()))
                .unwrap();
        })
        .unwrap();
        assert!(!gate.done.load(Ordering::SeqCst), "finalize must not wait");
        assert!(b.add(ev, None).is_err() || b.pending(ev, What::READ).is_err());
        gate.release.store(true, Ordering::SeqCst);
        let (fev, done, thread) = rx.recv_timeout(LIMIT).expect("finalizer ran");
        assert_eq!(fev, ev);
        assert!(done, "the finalizer ran while the callback was still running");
        assert_eq!(Some(thread), *loop_thread.lock().unwrap());
        // Freed right after the finalizer returns.
        wait_until("the event to be freed", || b.pending(ev, What::READ).is_err());
        stop(&b, h);
    }

    fn free_from_its_own_callback_and_from_another_thread(m) {
        let b = shared(m);
        let (tx, rx) = mpsc::channel();
        let ev = b
            .new_timer(move |base, ev, _| {
                base.free(ev).unwrap(); // own callback: must not wait for itself
                tx.send(()).unwrap();
            })
            .unwrap();
        b.add(ev, Some(Duration::from_millis(1))).unwrap();
        let h = spawn_loop(&b);
        rx.recv_timeout(LIMIT).expect("self-freeing callback ran");
        assert!(b.pending(ev, What::TIMEOUT).is_err(), "stale handle is refused");

        let gate = Gate::new();
        let (ev, _peer) = gated_event(&b, &gate, What::empty());
        wait_until("the callback to start", || gate.started.load(Ordering::SeqCst));
        let (b2, g2) = (b.clone(), gate.clone());
        let (tid_tx, tid_rx) = mpsc::channel();
        let freer = std::thread::spawn(move || {
            tid_tx.send(gettid()).unwrap();
            b2.free(ev).unwrap();
            g2.done.load(Ordering::SeqCst)
        });
        // free waits for the running callback: release it once the freer sleeps (or ended).
        let tid = tid_rx.recv_timeout(LIMIT).unwrap();
        let futex = futex_syscalls();
        wait_until("the free to block", || freer.is_finished() || is_blocked_in(tid, &futex));
        gate.release.store(true, Ordering::SeqCst);
        assert!(freer.join().unwrap(), "free returned while the callback ran");
        stop(&b, h);
    }

    fn a_second_concurrent_run_is_an_error(m) {
        let b = shared(m);
        let h = spawn_loop(&b);
        assert!(b.run(LoopFlags::NONBLOCK).is_err());
        let b2 = b.clone();
        assert!(std::thread::spawn(move || b2.run(LoopFlags::NONBLOCK)).join().unwrap().is_err());
        stop(&b, h);
        // Afterwards the base runs again.
        assert_eq!(b.run(LoopFlags::NONBLOCK).unwrap(), RunOutcome::NoEvents);
    }

    fn a_panicking_callback_leaves_the_base_usable(m) {
        let b = shared(m);
        let ev = b.new_timer(|_, _, _| panic!("callback panics")).unwrap();
        b.activate(ev, What::TIMEOUT, 1).unwrap();
        let b2 = b.clone();
        let r = std::thread::spawn(move || b2.dispatch()).join();
        assert!(r.is_err(), "the panic reaches run's caller");
        assert!(!b.is_running());
        let (tx, rx) = mpsc::channel();
        let ok = b.new_timer(move |_, _, _| tx.send(()).unwrap()).unwrap();
        b.activate(ok, What::TIMEOUT, 1).unwrap();
        b.dispatch().unwrap();
        rx.try_recv().expect("the base still runs callbacks");
    }

    fn loopexit_and_loopbreak_from_another_thread(m) {
        let b = shared(m);
        let h = spawn_loop(&b);
        b.loopexit(None).unwrap();
        assert_eq!(h.join().unwrap().unwrap(), RunOutcome::Exited);
        assert!(b.got_exit());
        let h = spawn_loop(&b);
        b.loopbreak();
        assert_eq!(h.join().unwrap().unwrap(), RunOutcome::Exited);
        assert!(b.got_break());
    }

    fn signals_are_delivered_once_each_with_the_lock_released(m) {
        let _serial = SIGNALS.lock().unwrap_or_else(|e| e.into_inner());
        let b = shared(m);
        let (tx, rx) = mpsc::channel();
        let ev = b
            .new_signal(libc::SIGUSR2, move |base, ev, what| {
                assert!(base.pending(ev, What::SIGNAL).is_ok());
                tx.send(what).unwrap();
            })
            .unwrap();
        b.add(ev, None).unwrap();
        let h = spawn_loop(&b);
        for _ in 0..3 {
            // SAFETY: raise has no memory-safety preconditions; SIGUSR2 has our handler.
            assert_eq!(unsafe { libc::raise(libc::SIGUSR2) }, 0);
            assert!(rx.recv_timeout(LIMIT).expect("signal delivered").contains(What::SIGNAL));
        }
        b.free(ev).unwrap();
        stop(&b, h);
    }

    fn only_the_most_urgent_priority_runs_per_iteration(m) {
        let b = shared_with(
            evrs::EventConfig::new().method(m).flags(evrs::BaseFlags::IGNORE_ENV).priorities(3),
        );
        let l = Arc::new(Mutex::new(Vec::<&str>::new()));
        let (x, y) = pair();
        let lr = l.clone();
        let reader = b
            .new_event(y.as_raw_fd(), What::READ, move |_, _, _| {
                read_all(&y);
                lr.lock().unwrap().push("io");
            })
            .unwrap();
        let lw = l.clone();
        let writer = b
            .new_timer(move |_, _, _| {
                write(&x, b"!");
                lw.lock().unwrap().push("writer");
            })
            .unwrap();
        let mk = |name: &'static str, p: usize| {
            let l = l.clone();
            let ev = b.new_timer(move |_, _, _| l.lock().unwrap().push(name)).unwrap();
            b.set_priority(ev, p).unwrap();
            ev
        };
        let (low, mid, high) = (mk("low", 2), mk("mid", 1), mk("high", 0));
        b.set_priority(reader, 0).unwrap();
        b.set_priority(writer, 0).unwrap();
        b.add(reader, None).unwrap();
        for ev in [low, mid, high, writer] {
            b.activate(ev, What::TIMEOUT, 1).unwrap();
        }
        // One priority per iteration: after priority 0's queue the loop polls again, so the
        // readiness the writer caused (priority 0) runs before the queued priorities 1 and 2.
        b.run(LoopFlags::NONBLOCK).unwrap();
        assert_eq!(*l.lock().unwrap(), ["high", "writer", "io", "mid", "low"]);
    }

    fn once_and_nonblock_end_the_run_after_one_iteration(m) {
        let b = shared(m);
        // An always-ready persistent event: every iteration runs it, so only ONCE ends the run
        // (if ONCE were ignored the callback stops the loop itself on its third call).
        let (x, y) = pair();
        write(&y, b"always readable");
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let ev = b
            .new_event(x.as_raw_fd(), What::READ | What::PERSIST, move |base, _, _| {
                if c.fetch_add(1, Ordering::SeqCst) + 1 == 3 {
                    base.loopbreak();
                }
            })
            .unwrap();
        b.add(ev, None).unwrap();
        assert_eq!(b.run(LoopFlags::ONCE).unwrap(), RunOutcome::Exited);
        assert_eq!(calls.load(Ordering::SeqCst), 1, "ONCE ran more than one iteration");
        assert!(!b.got_break());
        assert_eq!(b.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap(), RunOutcome::Exited);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        b.free(ev).unwrap();
        // ONCE waits for the first activity; NONBLOCK does not wait at all.
        let (tx, rx) = mpsc::channel();
        let t = b.new_timer(move |_, _, _| tx.send(()).unwrap()).unwrap();
        b.add(t, Some(Duration::from_secs(60))).unwrap();
        let start = Instant::now();
        assert_eq!(b.run(LoopFlags::NONBLOCK).unwrap(), RunOutcome::Exited);
        assert!(start.elapsed() < Duration::from_secs(30), "NONBLOCK waited");
        b.add(t, Some(Duration::from_millis(5))).unwrap();
        assert_eq!(b.run(LoopFlags::ONCE).unwrap(), RunOutcome::Exited);
        rx.try_recv().expect("ONCE returned before the timer fired");
        drop(x);
    }

    fn bad_input_is_an_error_and_the_base_stays_usable(m) {
        let (b1, b2) = (shared(m), shared(m));
        let ev = b1.new_timer(|_, _, _| {}).unwrap();
        assert!(b2.add(ev, None).is_err(), "event of another base");
        assert!(b2.del(ev).is_err());
        assert!(b2.activate(ev, What::TIMEOUT, 1).is_err());
        assert!(b1.new_event(-5, What::READ, |_, _, _| {}).and_then(|e| b1.add(e, None)).is_err());
        assert!(b1.new_signal(9999, |_, _, _| {}).is_err());
        assert!(b1.add(ev, Some(Duration::MAX)).is_err(), "overflowing timeout");
        b1.free(ev).unwrap();
        assert!(b1.free(ev).is_err(), "double free is refused");
        assert!(b1.activate(ev, What::TIMEOUT, 1).is_err(), "stale handle");
        assert_eq!(b1.run(LoopFlags::NONBLOCK).unwrap(), RunOutcome::NoEvents);
    }
}

static SIGNALS: Mutex<()> = Mutex::new(());

/// A wake-up from another thread re-arms: the loop blocks again afterwards instead of
/// polling without a timeout for ever (it used to leave the wake-up flag set, so it spun).
#[test]
fn loop_sleeps_again_after_a_cross_thread_wake() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let b = shared_with(evrs::EventConfig::new());
    let iterations = Arc::new(AtomicU64::new(0));
    let n = iterations.clone();
    let check = b
        .new_check(move |_, _, _| {
            n.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    b.add(check, None).unwrap();
    let h = spawn_loop(&b);
    std::thread::sleep(Duration::from_millis(20));
    let before = iterations.load(Ordering::Relaxed);
    // Wakes the loop asleep in the backend.
    let t = b.new_timer(|_, _, _| {}).unwrap();
    b.add(t, Some(Duration::from_secs(60))).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let woken = iterations.load(Ordering::Relaxed) - before;
    stop(&b, h);
    assert!(
        woken < 20,
        "the loop spun: {woken} iterations in 100 ms after one wake-up"
    );
    b.free(check).unwrap();
    b.free(t).unwrap();
}
