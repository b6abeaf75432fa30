//! Shared helpers for the integration tests: the backend matrix and real fds.
#![allow(dead_code)]

use evrs::{EventBase, Method};
use std::cell::RefCell;
use std::os::unix::io::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Runs each test body once per backend: `fn name(m) { ... }` becomes `epoll::name`,
/// `poll::name` and `select::name`, each with `m` set to that backend.
#[macro_export]
macro_rules! on_every_backend {
    ($(fn $name:ident($m:ident) $body:block)*) => {
        mod epoll {
            #[allow(unused_imports)]
            use super::*;
            $( #[test] fn $name() { let $m = evrs::Method::Epoll; $body } )*
        }
        mod poll {
            #[allow(unused_imports)]
            use super::*;
            $( #[test] fn $name() { let $m = evrs::Method::Poll; $body } )*
        }
        mod select {
            #[allow(unused_imports)]
            use super::*;
            $( #[test] fn $name() { let $m = evrs::Method::Select; $body } )*
        }
    };
}

pub fn base(m: Method) -> EventBase {
    let b = EventBase::with_backend(m).expect("backend available");
    assert_eq!(b.method(), m);
    b
}

/// A connected, non-blocking socket pair.
pub fn pair() -> (UnixStream, UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    set_nonblocking(&a);
    set_nonblocking(&b);
    (a, b)
}

/// `fcntl(O_NONBLOCK)` rather than std's `ioctl(FIONBIO)`, so the tests also run under Miri.
pub fn set_nonblocking(s: &UnixStream) {
    let fd = s.as_raw_fd();
    // SAFETY: F_GETFL/F_SETFL take no pointers; `fd` is open for the duration.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        assert!(flags >= 0);
        assert_eq!(libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK), 0);
    }
}

pub fn fd(s: &UnixStream) -> RawFd {
    s.as_raw_fd()
}

pub fn write(s: &UnixStream, data: &[u8]) {
    use std::io::Write;
    (&*s).write_all(data).unwrap();
}

pub fn read_all(s: &UnixStream) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match (&*s).read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    out
}

/// A shared log callbacks append to.
pub type Log = Rc<RefCell<Vec<String>>>;

pub fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

pub fn entries(l: &Log) -> Vec<String> {
    l.borrow().clone()
}

/// Runs `f` and fails the test if it takes longer than `limit` (guards against hangs
/// without using sleeps as synchronisation).
pub fn within<T>(limit: Duration, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let r = f();
    assert!(
        start.elapsed() < limit,
        "took {:?}, limit {:?}",
        start.elapsed(),
        limit
    );
    r
}

/// Aborts the whole test process if the test holding it runs longer than 30 s (a hung loop
/// would otherwise stall the suite forever). Drop it (end of the test) to disarm.
pub struct Watchdog {
    done: Option<std::sync::mpsc::Sender<()>>,
}

/// Arms a [`Watchdog`] for the test `name`.
pub fn watchdog(name: &'static str) -> Watchdog {
    watchdog_for(name, Duration::from_secs(30))
}

/// Arms a [`Watchdog`] for the test `name` with a custom limit.
pub fn watchdog_for(name: &'static str, limit: Duration) -> Watchdog {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(limit) {
            eprintln!("watchdog: test `{name}` still running after {limit:?}; aborting");
            std::process::abort();
        }
    });
    Watchdog { done: Some(tx) }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(tx) = self.done.take() {
            let _ = tx.send(());
        }
    }
}
