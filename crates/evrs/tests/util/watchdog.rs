//! A watchdog for tests that wait on an event loop: a hung test aborts the test process
//! with its name instead of hanging CI until its global timeout.
//!
//! `let _w = watchdog("my_test", Duration::from_secs(60));` starts a thread that waits for
//! the guard to be dropped; if it is still alive after `bound`, the thread writes
//! `test my_test hung for 60s` straight to fd 2 (not through the test harness's output
//! capture, which an abort would throw away) and calls `std::process::abort()`. Cheap: one
//! parked thread per guard, woken once when the guard drops.
//!
//! Shared by the evrs, examples and bench test suites (`#[path]`-included there).
#![allow(dead_code)]

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The default bound for one test: generous (only a hang reaches it), far below CI's limit.
pub const WATCHDOG_BOUND: Duration = Duration::from_secs(60);

/// Aborts the process if not dropped within its bound. See the module docs.
#[must_use = "the watchdog is disarmed as soon as the guard is dropped"]
pub struct Watchdog {
    done: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

/// Arms a watchdog for the test `name` (use the test's path, e.g. `epoll::timers_fire`).
pub fn watchdog(name: &str, bound: Duration) -> Watchdog {
    let done = Arc::new((Mutex::new(false), Condvar::new()));
    let d = done.clone();
    let name = name.to_string();
    let thread = std::thread::Builder::new()
        .name(format!("watchdog {name}"))
        .spawn(move || {
            let deadline = Instant::now() + bound;
            let (lock, cvar) = &*d;
            let mut finished = lock.lock().unwrap_or_else(|e| e.into_inner());
            while !*finished {
                let now = Instant::now();
                if now >= deadline {
                    hung(&name, bound);
                }
                finished = cvar
                    .wait_timeout(finished, deadline - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        })
        .expect("spawn the watchdog thread");
    Watchdog {
        done,
        thread: Some(thread),
    }
}

/// A watchdog named after the running test: libtest names each test's thread after the test.
pub fn watchdog_here(bound: Duration) -> Watchdog {
    let name = std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_string();
    watchdog(&name, bound)
}

fn hung(name: &str, bound: Duration) -> ! {
    use std::io::Write;
    let msg = format!("\ntest {name} hung for {bound:?}: aborting the test process\n");
    // Straight to fd 2: the harness's capture of eprintln! would be lost with the process.
    let _ = std::io::stderr().lock().write_all(msg.as_bytes());
    std::process::abort();
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let (lock, cvar) = &*self.done;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cvar.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
