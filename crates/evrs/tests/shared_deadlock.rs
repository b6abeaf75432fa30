//! The deadlock libevent has and evrs does not: two loops, each running a callback that
//! blocking-deletes the event whose callback the other loop is running.
//!
//! libevent's `event_del` (with `evthread_use_pthreads`) waits for a running callback of the
//! event on another thread, unconditionally; here each thread waits for the other forever.
//! evrs's blocking delete records the wait in a wait-for graph first and refuses (with
//! `ErrorKind::Deadlock`, changing nothing) the one wait that would close the cycle; that
//! callback falls back to the non-blocking delete and returns, which releases the other.
//! `libevent_deadlocks_where_evrs_does_not` runs the same program against Debian's libevent
//! (`tests/c/crossed_del.c`) and against evrs, on every backend. Without libevent-dev or a C
//! compiler it is skipped with a printed reason, unless `EVRS_REQUIRE_C_PEERS=1` (CI).
mod util;
use evrs::{LoopFlags, Method, SharedBase, What};
use std::io;
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(20);

type Target = Arc<Mutex<Option<(SharedBase, evrs::Event)>>>;

/// The scenario on evrs: returns each callback's `del_block` result (sorted: errors first).
fn crossed_deletes(m: Method) -> Vec<Result<(), io::ErrorKind>> {
    let (b1, b2) = (util::shared(m), util::shared(m));
    let both = Arc::new(Barrier::new(2));
    let results = Arc::new(Mutex::new(Vec::new()));
    let (to_b, to_a): (Target, Target) = Default::default();
    let mk = |b: &SharedBase, target: Target| {
        let (both, results) = (both.clone(), results.clone());
        b.new_timer(move |_, _, _| {
            both.wait(); // both callbacks are running now
            let (tb, tev) = target.lock().unwrap().clone().unwrap();
            let r = tb.del_block(tev);
            if r.is_err() {
                tb.del_noblock(tev).unwrap();
            }
            results.lock().unwrap().push(r.map_err(|e| e.kind()));
        })
        .unwrap()
    };
    let a = mk(&b1, to_b.clone());
    let b = mk(&b2, to_a.clone());
    *to_b.lock().unwrap() = Some((b2.clone(), b));
    *to_a.lock().unwrap() = Some((b1.clone(), a));
    b1.activate(a, What::TIMEOUT, 1).unwrap();
    b2.activate(b, What::TIMEOUT, 1).unwrap();
    let (tx, rx) = mpsc::channel();
    for base in [b1, b2] {
        let tx = tx.clone();
        std::thread::spawn(move || tx.send(base.run(LoopFlags::empty()).map_err(|e| e.kind())));
    }
    for _ in 0..2 {
        rx.recv_timeout(LIMIT)
            .expect("an evrs loop deadlocked")
            .unwrap();
    }
    // Break the Arc cycles (bases → callbacks → bases).
    to_a.lock().unwrap().take();
    to_b.lock().unwrap().take();
    let mut r = results.lock().unwrap().clone();
    r.sort_by_key(|x| x.is_ok());
    r
}

/// Builds `tests/c/crossed_del.c` against libevent and runs it once per test process (it
/// hangs until its 3 s alarm, so the backends' tests share the result). `None`: libevent or a
/// C compiler is missing (skipped, unless `EVRS_REQUIRE_C_PEERS=1`).
fn libevent_crossed_deletes() -> Option<&'static (std::process::ExitStatus, f64)> {
    static RESULT: std::sync::OnceLock<Option<(std::process::ExitStatus, f64)>> =
        std::sync::OnceLock::new();
    RESULT
        .get_or_init(|| {
            if !util::c_peer_available(
                "libevent_deadlocks_where_evrs_does_not",
                &["event2/event.h", "event2/thread.h"],
                "gcc libevent-dev",
            ) {
                return None;
            }
            let dir = env!("CARGO_TARGET_TMPDIR");
            let exe = format!("{dir}/crossed_del_libevent");
            let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/c/crossed_del.c");
            let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
            let out = std::process::Command::new(cc)
                .args([
                    "-O1",
                    "-o",
                    &exe,
                    src,
                    "-levent_core",
                    "-levent_pthreads",
                    "-lpthread",
                ])
                .output()
                .expect("run the C compiler");
            assert!(
                out.status.success(),
                "building the libevent program failed although its headers are installed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let start = Instant::now();
            let status = std::process::Command::new(&exe).status().unwrap();
            Some((status, start.elapsed().as_secs_f64()))
        })
        .as_ref()
}

on_every_backend! {
    fn crossed_blocking_deletes_on_two_loops_do_not_deadlock(m) {
        assert_eq!(crossed_deletes(m), vec![Err(io::ErrorKind::Deadlock), Ok(())]);
    }

    fn libevent_deadlocks_where_evrs_does_not(m) {
        let Some((status, libevent_secs)) = libevent_crossed_deletes() else {
            return;
        };
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(libc::SIGALRM),
            "expected libevent to hang until its 3 s alarm; it ended with {status:?}"
        );
        let start = Instant::now();
        assert_eq!(crossed_deletes(m), vec![Err(io::ErrorKind::Deadlock), Ok(())]);
        let evrs_secs = start.elapsed().as_secs_f64();
        eprintln!(
            "crossed blocking deletes: libevent hung (killed by its alarm after \
             {libevent_secs:.1} s); evrs ({m}) finished in {evrs_secs:.4} s"
        );
    }

    /// The same cycle through single-owner bases: each loop's callback makes a synchronous
    /// `Handle::call` into the other loop while that loop is blocked in the same call.
    fn crossed_handle_calls_on_two_loops_do_not_deadlock(m) {
        let both = Arc::new(Barrier::new(2));
        let (done_tx, done_rx) = mpsc::channel();
        let (h1_tx, h1_rx) = mpsc::channel::<evrs::Handle>();
        let (h2_tx, h2_rx) = mpsc::channel::<evrs::Handle>();
        let (stop_tx, stop_rx) = mpsc::channel::<evrs::Handle>();
        let mut loops = Vec::new();
        for (mine, theirs) in [(h1_tx, h2_rx), (h2_tx, h1_rx)] {
            let (both, done_tx, stop_tx) = (both.clone(), done_tx.clone(), stop_tx.clone());
            loops.push(std::thread::spawn(move || {
                let mut base = util::base(m);
                mine.send(base.handle().unwrap()).unwrap();
                stop_tx.send(base.handle().unwrap()).unwrap();
                let other = theirs.recv().unwrap();
                let ev = base
                    .new_timer(move |_, _, _| {
                        both.wait();
                        let r = other.call(|_| ()).map_err(|e| e.kind());
                        done_tx.send(r).unwrap();
                    })
                    .unwrap();
                base.activate(ev, What::TIMEOUT, 1).unwrap();
                // Keep running after the callback: the loop whose call was refused must
                // still serve the other loop's call (which may arrive just after).
                base.run(evrs::LoopFlags::NO_EXIT_ON_EMPTY).unwrap();
            }));
        }
        let mut r: Vec<_> = (0..2)
            .map(|_| done_rx.recv_timeout(LIMIT).expect("a loop deadlocked"))
            .collect();
        r.sort_by_key(|x| x.is_ok());
        assert_eq!(r, vec![Err(io::ErrorKind::Deadlock), Ok(())]);
        for h in stop_rx.iter().take(2) {
            h.loopbreak().unwrap();
        }
        for l in loops {
            l.join().unwrap();
        }
    }
}
