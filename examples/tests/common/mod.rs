//! Test helpers: run an example's server on its own thread, with a real listening socket on
//! an ephemeral 127.0.0.1 port, and stop it deterministically; run each test on every
//! backend, under a watchdog.
#![allow(dead_code)]

#[path = "../../../crates/evrs/tests/util/watchdog.rs"]
mod watchdog;
#[allow(unused_imports)]
pub use watchdog::{watchdog, watchdog_here, Watchdog, WATCHDOG_BOUND};

/// The examples build their bases with `EventBase::new()`, which honours `EVRS_BACKEND`, so
/// each test runs once per backend: `fn name() { ... }` becomes `epoll::name`, `poll::name`
/// and `select::name`. The variant the environment already selects runs in this process;
/// the others re-run this test binary for that one test with `EVRS_BACKEND` set (the
/// environment is process-wide, so it cannot be changed per test in-process). Each arms a
/// watchdog.
#[macro_export]
macro_rules! on_every_backend {
    ($( $(#[$attr:meta])* fn $name:ident() $body:block )*) => {
        mod epoll {
            #[allow(unused_imports)]
            use super::*;
            $( $(#[$attr])* #[test] fn $name() {
                $crate::common::on_backend(
                    concat!("epoll::", stringify!($name)), evrs::Method::Epoll, || $body)
            } )*
        }
        mod poll {
            #[allow(unused_imports)]
            use super::*;
            $( $(#[$attr])* #[test] fn $name() {
                $crate::common::on_backend(
                    concat!("poll::", stringify!($name)), evrs::Method::Poll, || $body)
            } )*
        }
        mod select {
            #[allow(unused_imports)]
            use super::*;
            $( $(#[$attr])* #[test] fn $name() {
                $crate::common::on_backend(
                    concat!("select::", stringify!($name)), evrs::Method::Select, || $body)
            } )*
        }
    };
}

/// Runs `body` where `EventBase::new()` picks `m` (see [`on_every_backend!`]).
pub fn on_backend(test: &str, m: evrs::Method, body: impl FnOnce()) {
    let _w = watchdog(test, WATCHDOG_BOUND);
    let chosen = EventBase::new().map(|b| b.method()).ok();
    if chosen == Some(m) {
        return body();
    }
    assert!(
        std::env::var_os("EVRS_EXAMPLES_CHILD").is_none(),
        "{test}: EVRS_BACKEND={m} did not make EventBase::new() choose {m} ({chosen:?})"
    );
    let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env("EVRS_BACKEND", m.name())
        .env("EVRS_EXAMPLES_CHILD", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for v in ["EVENT_NOEPOLL", "EVENT_NOPOLL", "EVENT_NOSELECT"] {
        cmd.env_remove(v);
    }
    let out = run_with_deadline(cmd, WATCHDOG_BOUND + Duration::from_secs(10));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{test} (EVRS_BACKEND={m}, child process) failed: {:?}\n{stdout}\n{stderr}",
        out.status
    );
    // Show the child's output (skips, figures) as the test's own.
    print!("{stdout}");
    eprint!("{stderr}");
}

/// Runs a child process to completion, killing it (and failing) after `bound`. Its output is
/// read on helper threads, so a chatty child cannot block on a full pipe.
pub fn run_with_deadline(mut cmd: std::process::Command, bound: Duration) -> std::process::Output {
    use std::io::Read;
    let start = std::time::Instant::now();
    let mut child = cmd.spawn().expect("spawn the child process");
    let pipe = |r: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut v);
            }
            v
        })
    };
    let out_t = pipe(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let err_t = pipe(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > bound {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "child process still running after {bound:?}, killed:\n{}\n{}",
                String::from_utf8_lossy(&out_t.join().unwrap()),
                String::from_utf8_lossy(&err_t.join().unwrap())
            );
        }
        thread::sleep(Duration::from_millis(5));
    };
    std::process::Output {
        status,
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    }
}

use evrs::EventBase;
use evrs_examples::{bind_listener, stop_handle, StopHandle};
use std::io::{self, BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Generous: only hit if something is broken.
pub const TIMEOUT: Duration = Duration::from_secs(20);

pub struct Server<R> {
    pub addr: SocketAddr,
    stop: StopHandle,
    thread: JoinHandle<R>,
}

/// Binds 127.0.0.1:0, lets `setup` register the server's events on a fresh base, then runs
/// the loop on a new thread until `Server::stop`. `report` turns whatever `setup` returned
/// into the thread's result once the loop has ended.
pub fn spawn_server<T, R, S, F>(setup: S, report: F) -> Server<R>
where
    S: FnOnce(&mut EventBase, TcpListener) -> io::Result<T> + Send + 'static,
    F: FnOnce(&mut EventBase, T) -> R + Send + 'static,
    R: Send + 'static,
{
    let listener = bind_listener("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    let thread = thread::spawn(move || {
        let mut base = EventBase::new().unwrap();
        let state = setup(&mut base, listener).unwrap();
        tx.send(stop_handle(&mut base).unwrap()).unwrap();
        base.dispatch().unwrap();
        report(&mut base, state)
    });
    let stop = rx
        .recv_timeout(TIMEOUT)
        .expect("server thread did not start");
    Server { addr, stop, thread }
}

impl<R> Server<R> {
    /// Stops the loop and returns the server's report.
    pub fn stop(self) -> R {
        self.stop.stop();
        self.thread.join().expect("server thread panicked")
    }
}

/// A blocking client with read/write timeouts, so a broken server fails the test instead of
/// hanging it.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_write_timeout(Some(TIMEOUT)).unwrap();
    s
}

pub fn read_line(r: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    line
}

/// Every connection sends `msg(i)`, reads its echo back byte for byte, half-closes, and sees
/// the server close; returns the bytes echoed. `who` labels a failing client.
pub fn echo_round(
    conns: &mut [TcpStream],
    msg: impl Fn(usize) -> String,
    who: impl Fn(usize) -> String,
) -> u64 {
    use std::io::{Read, Write};
    for (i, c) in conns.iter_mut().enumerate() {
        c.write_all(msg(i).as_bytes()).unwrap();
    }
    let mut total = 0;
    for (i, c) in conns.iter_mut().enumerate() {
        let want = msg(i);
        let mut got = vec![0; want.len()];
        c.read_exact(&mut got).unwrap();
        assert_eq!(got, want.as_bytes(), "client {}", who(i));
        total += want.len() as u64;
    }
    // Half-close and wait for the server's close: proves it saw every end of file.
    for c in conns.iter() {
        c.shutdown(std::net::Shutdown::Write).unwrap();
    }
    for c in conns.iter_mut() {
        assert_eq!(c.read(&mut [0; 1]).unwrap(), 0, "the server must close");
    }
    total
}
