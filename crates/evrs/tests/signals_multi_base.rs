//! Signals across several bases (issue 14, #9): every base that watches a signal gets each
//! delivery, the handler stays while any base watches, and the original disposition comes
//! back only when the last watcher goes. Signals are process-wide, so every test here takes
//! one lock, and a watchdog aborts the binary (naming the test) if one hangs for 30 s.
#[macro_use]
mod util;
use evrs::{EventBase, LoopFlags, Method};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use util::*;

static SERIAL: Mutex<()> = Mutex::new(());

/// Held for a test's duration: the signal lock plus a watchdog that aborts after 30 s.
struct Guard {
    _serial: MutexGuard<'static, ()>,
    _watchdog: mpsc::Sender<()>,
}

fn start(name: &str, m: Method) -> Guard {
    let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (tx, rx) = mpsc::channel::<()>();
    let name = format!("{name} ({m:?})");
    std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(Duration::from_secs(30)) {
            eprintln!("watchdog: test {name} took more than 30 s; aborting");
            std::process::abort();
        }
    });
    Guard {
        _serial: serial,
        _watchdog: tx,
    }
}

/// Sends `sig` to this thread: the handler has run when `raise` returns.
fn raise(sig: i32) {
    // SAFETY: raise takes no pointers.
    unsafe {
        libc::raise(sig);
    }
}

/// The current action for `sig`.
fn action(sig: i32) -> libc::sigaction {
    // SAFETY: reads the current action into a zeroed struct.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        assert_eq!(libc::sigaction(sig, std::ptr::null(), &mut old), 0);
        old
    }
}

fn set_action(sig: i32, sa: &libc::sigaction) {
    // SAFETY: `sa` is a fully initialised action.
    assert_eq!(unsafe { libc::sigaction(sig, sa, std::ptr::null_mut()) }, 0);
}

/// An action with the given handler (or SIG_DFL / SIG_IGN) and flags, blocking SIGUSR1.
fn make_action(handler: usize, flags: libc::c_int) -> libc::sigaction {
    // SAFETY: a zeroed sigaction is valid; the mask is initialised before use.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler;
        sa.sa_flags = flags;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaddset(&mut sa.sa_mask, libc::SIGUSR1);
        sa
    }
}

fn same_action(a: &libc::sigaction, b: &libc::sigaction) -> bool {
    // SAFETY: sigismember only reads the initialised masks.
    let same_mask = (1..65)
        .all(|s| unsafe { libc::sigismember(&a.sa_mask, s) == libc::sigismember(&b.sa_mask, s) });
    a.sa_sigaction == b.sa_sigaction && a.sa_flags == b.sa_flags && same_mask
}

/// A base with a counting event for `sig`, added.
fn watching(m: Method, sig: i32) -> (util::Checked, Rc<Cell<usize>>, evrs::Event) {
    let mut b = base(m);
    let n = Rc::new(Cell::new(0));
    let c = n.clone();
    let ev = b
        .new_signal(sig, move |_, _, _| c.set(c.get() + 1))
        .unwrap();
    b.add(ev, None).unwrap();
    (b, n, ev)
}

/// Runs non-blocking loop passes until `done` or 5 s pass, then one more pass (so a count
/// checked afterwards includes anything still queued).
fn pump(b: &mut EventBase, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        b.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
        if done() || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    b.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
}

/// Non-blocking loop passes for a base that should get nothing: `raise` has run the handler
/// (and written any bytes) before it returns, so no waiting is needed.
fn settle(b: &mut EventBase) {
    for _ in 0..2 {
        b.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
    }
}

static CUSTOM_HITS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn custom_handler(_: libc::c_int) {
    CUSTOM_HITS.fetch_add(1, Ordering::SeqCst);
}

on_every_backend! {
    /// libevent's rule, opted into: of the exclusive bases only the latest to add a signal
    /// event or start its loop receives signals; a base that did not opt in gets them all.
    fn exclusive_bases_take_turns_and_the_others_get_every_signal(m) {
        let _g = start("exclusive_bases_take_turns_and_the_others_get_every_signal", m);
        let sig = libc::SIGUSR2;
        let make = |exclusive: bool| {
            let mut b = base(m);
            b.exclusive_signals(exclusive);
            let n = Rc::new(Cell::new(0));
            let c = n.clone();
            let ev = b.new_signal(sig, move |_, _, _| c.set(c.get() + 1)).unwrap();
            b.add(ev, None).unwrap();
            (b, n, ev)
        };
        let (mut b1, n1, e1) = make(true);
        let (mut b2, n2, e2) = make(true); // the latest to add: it receives
        let (mut b3, n3, e3) = make(false);
        raise(sig);
        pump(&mut b2, || n2.get() == 1);
        settle(&mut b1); // (running claims the signals for b1, after this delivery)
        pump(&mut b3, || n3.get() == 1);
        assert_eq!((n1.get(), n2.get(), n3.get()), (0, 1, 1));
        raise(sig);
        pump(&mut b1, || n1.get() == 1);
        settle(&mut b2);
        pump(&mut b3, || n3.get() == 2);
        assert_eq!((n1.get(), n2.get(), n3.get()), (1, 1, 2));
        b1.free(e1).unwrap();
        b2.free(e2).unwrap();
        b3.free(e3).unwrap();
    }

    fn deleting_one_bases_event_keeps_the_handler_for_the_other(m) {
        let _g = start("deleting_one_bases_event_keeps_the_handler_for_the_other", m);
        // Both orders: the deleting base installed first, or second.
        for deleter_first in [true, false] {
            let (mut a, mut b, na, nb, ea, eb);
            if deleter_first {
                (a, na, ea) = watching(m, libc::SIGUSR1);
                (b, nb, eb) = watching(m, libc::SIGUSR1);
            } else {
                (b, nb, eb) = watching(m, libc::SIGUSR1);
                (a, na, ea) = watching(m, libc::SIGUSR1);
            }
            a.del(ea).unwrap();
            // Before the fix this restored SIG_DFL and the raise killed the process.
            raise(libc::SIGUSR1);
            pump(&mut b, || nb.get() >= 1);
            settle(&mut a);
            assert_eq!((na.get(), nb.get()), (0, 1), "deleter_first = {deleter_first}");
            a.free(ea).unwrap();
            b.free(eb).unwrap();
        }
        assert_eq!(action(libc::SIGUSR1).sa_sigaction, libc::SIG_DFL);
    }

    fn dropping_a_base_keeps_the_other_receiving(m) {
        let _g = start("dropping_a_base_keeps_the_other_receiving", m);
        // Drop the newer base, then (second round) the older one.
        for drop_newer in [true, false] {
            let older = watching(m, libc::SIGUSR2);
            let newer = watching(m, libc::SIGUSR2);
            let ((mut survivor, n, _), victim) = if drop_newer {
                (older, newer)
            } else {
                (newer, older)
            };
            victim.0.leave_registered("its SIGUSR2 watcher: dropping a watching base is the test");
            assert_ne!(action(libc::SIGUSR2).sa_sigaction, libc::SIG_DFL);
            raise(libc::SIGUSR2);
            pump(&mut survivor, || n.get() >= 1);
            assert_eq!(n.get(), 1, "drop_newer = {drop_newer}");
            survivor.leave_registered("its SIGUSR2 watcher: dropping the last watching base restores SIG_DFL");
            assert_eq!(action(libc::SIGUSR2).sa_sigaction, libc::SIG_DFL);
        }
    }

    fn one_delivery_reaches_every_watching_base(m) {
        let _g = start("one_delivery_reaches_every_watching_base", m);
        let (mut a, na, ea) = watching(m, libc::SIGWINCH);
        let (mut b, nb, eb) = watching(m, libc::SIGWINCH);
        // A base watching another signal gets nothing.
        let (mut c, nc, ec) = watching(m, libc::SIGURG);
        raise(libc::SIGWINCH);
        pump(&mut a, || na.get() >= 1);
        pump(&mut b, || nb.get() >= 1);
        settle(&mut c);
        assert_eq!((na.get(), nb.get(), nc.get()), (1, 1, 0));
        raise(libc::SIGWINCH);
        raise(libc::SIGWINCH);
        pump(&mut a, || na.get() >= 3);
        pump(&mut b, || nb.get() >= 3);
        settle(&mut c);
        assert_eq!((na.get(), nb.get(), nc.get()), (3, 3, 0));
        a.free(ea).unwrap();
        b.free(eb).unwrap();
        c.free(ec).unwrap();
    }

    fn original_disposition_returns_after_the_last_watcher(m) {
        let _g = start("original_disposition_returns_after_the_last_watcher", m);
        // A handler of our own (with flags and a mask to preserve), and SIG_IGN.
        let custom = make_action(custom_handler as extern "C" fn(libc::c_int) as usize, libc::SA_RESTART);
        let ignore = make_action(libc::SIG_IGN, 0);
        for (sig, original) in [(libc::SIGWINCH, custom), (libc::SIGUSR2, ignore)] {
            set_action(sig, &original);
            let before = action(sig);
            let hits = CUSTOM_HITS.load(Ordering::SeqCst);
            let (mut a, na, ea) = watching(m, sig);
            let (mut b, nb, eb) = watching(m, sig);
            assert!(!same_action(&action(sig), &before), "evrs handler installed");
            a.del(ea).unwrap();
            assert!(!same_action(&action(sig), &before), "still installed while b watches");
            raise(sig);
            pump(&mut b, || nb.get() >= 1);
            assert_eq!((na.get(), nb.get()), (0, 1));
            b.del(eb).unwrap();
            assert!(same_action(&action(sig), &before), "signal {sig}: original action back");
            // And it works: our handler runs (or the signal is ignored).
            raise(sig);
            settle(&mut b);
            assert_eq!(nb.get(), 1);
            let expect = if sig == libc::SIGWINCH { hits + 1 } else { hits };
            assert_eq!(CUSTOM_HITS.load(Ordering::SeqCst), expect);
            // Re-adding installs again; dropping both bases restores again.
            a.add(ea, None).unwrap();
            b.add(eb, None).unwrap();
            assert!(!same_action(&action(sig), &before));
            a.leave_registered("its re-added watcher: dropping a watching base is the test");
            assert!(!same_action(&action(sig), &before));
            b.leave_registered("its re-added watcher: dropping the last watching base restores the action");
            assert!(same_action(&action(sig), &before));
            set_action(sig, &make_action(libc::SIG_DFL, 0));
        }
    }

    fn bases_on_two_threads_both_get_the_signal(m) {
        let _g = start("bases_on_two_threads_both_get_the_signal", m);
        let (ready_tx, ready_rx) = mpsc::channel::<()>();
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let ready = ready_tx.clone();
                std::thread::spawn(move || {
                    let mut b = base(m);
                    let n = Arc::new(AtomicUsize::new(0));
                    let c = n.clone();
                    let ev = b
                        .new_signal(libc::SIGURG, move |base, _, _| {
                            c.fetch_add(1, Ordering::SeqCst);
                            base.loopbreak();
                        })
                        .unwrap();
                    b.add(ev, None).unwrap();
                    // Give up after 10 s so a missed signal fails the assertion, not the
                    // watchdog.
                    b.loopexit(Some(Duration::from_secs(10))).unwrap();
                    ready.send(()).unwrap();
                    b.dispatch().unwrap();
                    b.free(ev).unwrap();
                    if !b.got_exit() {
                        b.leave_registered(
                            "the 10 s loopexit, which did not fire (the signal's callback broke \
                             the loop): a loopexit cannot be cancelled",
                        );
                    }
                    n.load(Ordering::SeqCst)
                })
            })
            .collect();
        ready_rx.recv().unwrap();
        ready_rx.recv().unwrap();
        // Process-directed: any thread (maybe a loop thread) runs the handler.
        // SAFETY: kill/getpid take no pointers; both bases have the handler installed.
        unsafe { libc::kill(libc::getpid(), libc::SIGURG) };
        let counts: Vec<usize> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(counts, vec![1, 1]);
        assert_eq!(action(libc::SIGURG).sa_sigaction, libc::SIG_DFL);
    }

    fn fork_child_reinit_gets_signals_and_parent_keeps_them(m) {
        let _g = start("fork_child_reinit_gets_signals_and_parent_keeps_them", m);
        let (mut a, na, ea) = watching(m, libc::SIGUSR1);
        let (mut b, nb, eb) = watching(m, libc::SIGUSR1);
        // SAFETY: the child uses only its own copies of the bases, raw syscalls and the
        // allocator, and leaves with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                // SAFETY: alarm takes no pointers; SIGALRM's default kills a hung child.
                unsafe { libc::alarm(20) };
                if a.reinit().is_err() || b.reinit().is_err() {
                    return 1;
                }
                raise(libc::SIGUSR1);
                pump(&mut a, || na.get() >= 1);
                pump(&mut b, || nb.get() >= 1);
                if (na.get(), nb.get()) != (1, 1) {
                    return 10 + na.get().min(9) as i32 * 3 + nb.get().min(2) as i32;
                }
                // Dropping one child base leaves the other receiving.
                b.leave_registered("its SIGUSR1 watcher: dropping a watching base is the test");
                raise(libc::SIGUSR1);
                pump(&mut a, || na.get() >= 2);
                if na.get() != 2 {
                    return 2;
                }
                a.leave_registered("its SIGUSR1 watcher: dropping the last watching base restores SIG_DFL");
                if action(libc::SIGUSR1).sa_sigaction != libc::SIG_DFL {
                    return 3;
                }
                0
            }))
            .unwrap_or(99);
            // SAFETY: ends the child without running the parent's atexit handlers.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waits for our own child with a valid status pointer.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status), "child did not exit normally: {status}");
        assert_eq!(libc::WEXITSTATUS(status), 0, "child failed");
        // The child's deliveries did not reach the parent's pipes.
        settle(&mut a);
        settle(&mut b);
        assert_eq!((na.get(), nb.get()), (0, 0));
        raise(libc::SIGUSR1);
        pump(&mut a, || na.get() >= 1);
        pump(&mut b, || nb.get() >= 1);
        assert_eq!((na.get(), nb.get()), (1, 1), "the parent still receives its signals");
        a.free(ea).unwrap();
        b.free(eb).unwrap();
    }

    fn a_full_pipe_still_wakes_every_base(m) {
        let _g = start("a_full_pipe_still_wakes_every_base", m);
        let (mut a, na, ea) = watching(m, libc::SIGWINCH);
        let (mut b, nb, eb) = watching(m, libc::SIGWINCH);
        // More deliveries than a pipe holds (64 KiB): later bytes are dropped.
        for _ in 0..70_000 {
            raise(libc::SIGWINCH);
        }
        pump(&mut a, || na.get() >= 1);
        pump(&mut b, || nb.get() >= 1);
        assert!(na.get() >= 1 && na.get() <= 70_000, "{}", na.get());
        assert!(nb.get() >= 1 && nb.get() <= 70_000, "{}", nb.get());
        // Still working after the overflow.
        let (a0, b0) = (na.get(), nb.get());
        raise(libc::SIGWINCH);
        pump(&mut a, || na.get() > a0);
        pump(&mut b, || nb.get() > b0);
        assert_eq!((na.get(), nb.get()), (a0 + 1, b0 + 1));
        a.free(ea).unwrap();
        b.free(eb).unwrap();
    }

    fn too_many_watching_bases_is_an_error(m) {
        let _g = start("too_many_watching_bases_is_an_error", m);
        let mut bases = Vec::new();
        let mut refused = None;
        for i in 0..300 {
            let mut b = base(m);
            let ev = b.new_signal(libc::SIGURG, |_, _, _| {}).unwrap();
            match b.add(ev, None) {
                Ok(()) => bases.push(b),
                Err(e) => {
                    refused = Some((i, e));
                    break;
                }
            }
        }
        let (i, e) = refused.expect("a limit on watching bases");
        assert_eq!(i, 256, "{e}");
        assert!(e.to_string().contains("256"), "{e}");
        // The watchers already registered still get the signal.
        raise(libc::SIGURG);
        for b in bases {
            b.leave_registered("its SIGURG watcher: dropping the watching bases frees their slots");
        }
        assert_eq!(action(libc::SIGURG).sa_sigaction, libc::SIG_DFL);
        // Slots are freed when bases go away: many more, one after another, all fit.
        for _ in 0..300 {
            let (b, _, _) = watching(m, libc::SIGURG);
            b.leave_registered("its SIGURG watcher: dropping a watching base frees its slot");
        }
        assert_eq!(action(libc::SIGURG).sa_sigaction, libc::SIG_DFL);
    }

    fn bases_come_and_go_while_signals_fly(m) {
        let _g = start("bases_come_and_go_while_signals_fly", m);
        use std::sync::atomic::AtomicBool;
        // A smoke test of registration racing the handler on other threads (the window in
        // which a handler could write to a just-closed fd is too small to hit reliably, so
        // this passes even without the release wait; it checks that nothing goes wrong).
        // SIGWINCH is ignored by default, so a signal pending after the last base goes is
        // harmless. The keeper holds the handler installed throughout.
        let (mut keeper, nk, ek) = watching(m, libc::SIGWINCH);
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        // Bounded and paced: a tight kill loop on a loaded 2-core machine keeps the other
        // threads in the signal handler and starves the test itself (seen: a 30 s hang).
        let spammer = std::thread::spawn(move || {
            for _ in 0..100_000 {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                // SAFETY: kill/getpid take no pointers.
                unsafe { libc::kill(libc::getpid(), libc::SIGWINCH) };
                std::thread::sleep(Duration::from_micros(10));
            }
        });
        let (mut stray, mut rounds) = (0, 0);
        let deadline = Instant::now() + Duration::from_millis(300);
        while Instant::now() < deadline {
            let (b, _, _) = watching(m, libc::SIGWINCH);
            b.leave_registered("its SIGWINCH watcher: bases dropped while watching are the test");
            // The numbers just freed go to this pipe: a handler still holding the old write
            // end's number would write here.
            let mut fds = [-1; 2];
            // SAFETY: `fds` has room for the two descriptors.
            assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) }, 0);
            std::thread::sleep(Duration::from_micros(200));
            let mut buf = [0u8; 64];
            // SAFETY: reads into a live local buffer; then closes the fds we own.
            unsafe {
                let n = libc::read(fds[0], buf.as_mut_ptr().cast(), buf.len());
                if n > 0 {
                    stray += n;
                }
                libc::close(fds[0]);
                libc::close(fds[1]);
            }
            rounds += 1;
        }
        stop.store(true, Ordering::Relaxed);
        spammer.join().unwrap();
        assert_eq!(stray, 0, "stray bytes in {rounds} rounds");
        pump(&mut keeper, || nk.get() > 0);
        assert!(nk.get() > 0);
        keeper.free(ek).unwrap();
    }
}
