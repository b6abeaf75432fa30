//! Shared helpers for the integration tests: the backend matrix and real fds.
#![allow(dead_code)]

use evrs::{EventBase, EventConfig, EventInfo, Method, Model, SharedBase};
use std::cell::RefCell;
use std::ops::ControlFlow;
use std::os::unix::io::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

#[allow(dead_code)]
pub mod scale;
mod watchdog;
#[allow(unused_imports)]
pub use watchdog::{watchdog, watchdog_here, Watchdog, WATCHDOG_BOUND};

/// Runs each test body once per backend: `fn name(m) { ... }` becomes `epoll::name`,
/// `poll::name`, `select::name` and `io_uring::name`, each with `m` set to that backend. Every generated test
/// arms a [`Watchdog`] named after it: a hang aborts the run with the test's name.
/// Attributes (doc comments, `#[ignore = "..."]`) before a `fn` apply to its four tests.
#[macro_export]
macro_rules! on_every_backend {
    ($( $(#[$attr:meta])* fn $name:ident($m:ident) $body:block )*) => {
        mod epoll {
            #[allow(unused_imports)]
            use super::*;
            $( $(#[$attr])* #[test] fn $name() {
                let _watchdog = $crate::util::watchdog(
                    concat!(module_path!(), "::", stringify!($name)),
                    $crate::util::WATCHDOG_BOUND,
                );
                let $m = evrs::Method::Epoll;
                $body
            } )*
        }
        mod poll {
            #[allow(unused_imports)]
            use super::*;
            $( $(#[$attr])* #[test] fn $name() {
                let _watchdog = $crate::util::watchdog(
                    concat!(module_path!(), "::", stringify!($name)),
                    $crate::util::WATCHDOG_BOUND,
                );
                let $m = evrs::Method::Poll;
                $body
            } )*
        }
        mod select {
            #[allow(unused_imports)]
            use super::*;
            $( $(#[$attr])* #[test] fn $name() {
                let _watchdog = $crate::util::watchdog(
                    concat!(module_path!(), "::", stringify!($name)),
                    $crate::util::WATCHDOG_BOUND,
                );
                let $m = evrs::Method::Select;
                $body
            } )*
        }
        mod io_uring {
            #[allow(unused_imports)]
            use super::*;
            $( $(#[$attr])* #[test] fn $name() {
                let _watchdog = $crate::util::watchdog(
                    concat!(module_path!(), "::", stringify!($name)),
                    $crate::util::WATCHDOG_BOUND,
                );
                let $m = evrs::Method::IoUring;
                if !$crate::util::io_uring_available() {
                    eprintln!("skipped: the kernel refuses io_uring here");
                    return;
                }
                $body
            } )*
        }
    };
}

/// Whether this machine lets a process have an io_uring (Linux 5.13+, not disabled by
/// `kernel.io_uring_disabled` or a seccomp profile): the io_uring half of the matrix skips
/// itself, with a line on stderr, where it does not.
pub fn io_uring_available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| EventConfig::new().method(Method::IoUring).build().is_ok())
}

pub fn base(m: Method) -> Checked {
    let b = EventBase::with_backend(m).expect("backend available");
    assert_eq!(b.method(), m);
    Checked(Some(b))
}

/// The default base (`EventBase::new()`: the environment may pick the backend), checked at
/// the end like [`base`]'s.
pub fn default_base() -> Checked {
    Checked(Some(EventBase::new().expect("default backend available")))
}

/// A base the test built itself (`EventConfig::build`), checked at the end like [`base`]'s.
pub fn checked(b: EventBase) -> Checked {
    Checked(Some(b))
}

/// A test's base: derefs to the `EventBase`, and when the test is done with it (dropped
/// without a panic in flight) checks every invariant (`verify()`) and that nothing the test
/// added is still registered ([`assert_nothing_registered`]), so each reactor test ends with
/// the base proven consistent and empty (libuv's rule: no handle left open at the end).
/// A test that means to drop a base with events still registered says so and why, with
/// [`Checked::leave_registered`].
pub struct Checked(Option<EventBase>);

impl Checked {
    /// The base itself, for code that must own it (it is verified here; whoever owns it
    /// next is responsible for what is left on it).
    pub fn into_inner(mut self) -> EventBase {
        let b = self.0.take().expect("base present");
        b.verify().expect("base invariants at the end of the test");
        b
    }

    /// Ends the test's use of the base *deliberately* leaving events registered (a test of
    /// what dropping a non-empty base does): verifies the invariants, then drops the base
    /// without the emptiness check. `why` says what the leftovers are for; it must not be
    /// empty, and something must be left (else the reason is stale: let the base drop).
    pub fn leave_registered(mut self, why: &str) {
        assert!(!why.trim().is_empty(), "leave_registered needs a reason");
        let b = self.0.take().expect("base present");
        b.verify().expect("base invariants at the end of the test");
        assert!(
            !leftovers(&b).is_empty(),
            "leave_registered({why:?}), but nothing is left registered"
        );
        drop(b);
    }
}

impl std::ops::Deref for Checked {
    type Target = EventBase;
    fn deref(&self) -> &EventBase {
        self.0.as_ref().expect("base present")
    }
}

impl std::ops::DerefMut for Checked {
    fn deref_mut(&mut self) -> &mut EventBase {
        self.0.as_mut().expect("base present")
    }
}

impl Drop for Checked {
    fn drop(&mut self) {
        if let Some(b) = &self.0 {
            if !std::thread::panicking() {
                b.verify().expect("base invariants at the end of the test");
                assert_nothing_registered(b);
            }
        }
    }
}

/// Fails the test if any event that is not the base's own (signal pipe, notify fd) is still
/// pending or active on `b`: registered I/O or signal interest, a pending timeout, an
/// activation, or a started hook. The message lists each leftover.
pub fn assert_nothing_registered<M: Model>(b: &EventBase<M>) {
    let left = leftovers(b);
    assert!(
        left.is_empty(),
        "LEFTOVER events registered at the end of the test ({}):\n  {}",
        left.len(),
        left.join("\n  ")
    );
}

/// One line per non-internal pending or active event on `b`.
pub fn leftovers<M: Model>(b: &EventBase<M>) -> Vec<String> {
    let mut left = Vec::new();
    let _ = b.foreach_event(|e| {
        if !e.internal {
            left.push(describe(e));
        }
        ControlFlow::Continue(())
    });
    left
}

fn describe(e: &EventInfo) -> String {
    let mut state = Vec::new();
    if e.inserted {
        state.push("inserted");
    }
    if e.active {
        state.push("active");
    }
    let timeout = match e.timeout {
        Some(t) => format!("in {t:?}"),
        None => "none".to_string(),
    };
    format!(
        "{:?}: {} fd {} events {:?} priority {} timeout {} [{}]",
        e.event,
        if e.hook { "hook" } else { "event" },
        e.fd,
        e.events,
        e.priority,
        timeout,
        state.join(", "),
    )
}

/// A `SharedBase` on backend `m` (environment ignored), checked at the end like
/// [`Checked`].
pub fn shared(m: Method) -> CheckedShared {
    let b = shared_with(
        EventConfig::new()
            .method(m)
            .flags(evrs::BaseFlags::IGNORE_ENV),
    );
    assert_eq!(b.method(), m);
    b
}

/// A `SharedBase` made from `cfg`, checked at the end like [`Checked`].
pub fn shared_with(cfg: EventConfig) -> CheckedShared {
    CheckedShared(Some(SharedBase::with_config(cfg).expect("shared base")))
}

/// A test's `SharedBase`: derefs to it (clone it for other threads as usual), and when the
/// test is done with it (dropped without a panic in flight) runs [`assert_shared_clean`].
/// Threads holding clones must be joined before it drops. A test that means to leave events
/// registered says so and why, with [`CheckedShared::leave_registered`].
pub struct CheckedShared(Option<SharedBase>);

impl CheckedShared {
    /// Ends the test's use of the base *deliberately* leaving events registered: verifies
    /// the invariants, then drops this handle without the emptiness check. `why` says what
    /// the leftovers are for; it must not be empty, and something must be left.
    pub fn leave_registered(mut self, why: &str) {
        assert!(!why.trim().is_empty(), "leave_registered needs a reason");
        let b = self.0.take().expect("base present");
        b.verify().expect("base invariants at the end of the test");
        assert!(
            !b.with(leftovers).is_empty(),
            "leave_registered({why:?}), but nothing is left registered"
        );
        drop(b);
    }
}

impl std::ops::Deref for CheckedShared {
    type Target = SharedBase;
    fn deref(&self) -> &SharedBase {
        self.0.as_ref().expect("base present")
    }
}

impl Drop for CheckedShared {
    fn drop(&mut self) {
        if let Some(b) = &self.0 {
            if !std::thread::panicking() {
                assert_shared_clean(b);
            }
        }
    }
}

/// The end-of-test check for a `SharedBase`: its invariants hold and nothing the test added
/// is still registered.
pub fn assert_shared_clean(b: &SharedBase) {
    b.verify().expect("base invariants at the end of the test");
    b.with(assert_nothing_registered);
}

/// A connected, non-blocking socket pair.
pub fn pair() -> (UnixStream, UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    set_nonblocking(&a);
    set_nonblocking(&b);
    (a, b)
}
/// A socket bufferevent over one end of a fresh AF_UNIX pair (closed on free), and the
/// other end.
pub fn bev_pair(
    b: &mut EventBase,
    opts: evrs::bufferevent::BevOptions,
) -> (evrs::bufferevent::BufferEvent, UnixStream) {
    use std::os::fd::IntoRawFd;
    let (x, y) = pair();
    let bev = b
        .bufferevent_socket(
            x.into_raw_fd(),
            opts | evrs::bufferevent::BevOptions::CLOSE_ON_FREE,
        )
        .unwrap();
    (bev, y)
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

/// What an open descriptor refers to (device and inode), or `None` once it is closed.
///
/// Tests that check "this fd was closed" compare identities rather than asking whether the
/// number is open: tests run in parallel threads, and another one may be handed the same
/// number the moment it is freed.
pub fn fd_identity(fd: RawFd) -> Option<(u64, u64)> {
    // SAFETY: `st` is a properly sized out-parameter; fstat on a closed fd just fails.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        (libc::fstat(fd, &mut st) == 0).then_some((st.st_dev, st.st_ino))
    }
}

/// Whether `fd` still refers to the file it did when `before` was taken.
pub fn still_open(fd: RawFd, before: Option<(u64, u64)>) -> bool {
    before.is_some() && fd_identity(fd) == before
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

/// Runs `f` and fails the test if it takes longer than `limit`. A closure that never returns
/// cannot be failed from here, so a [`Watchdog`] (named after the running test) aborts the
/// process if `f` is still running well past the limit.
pub fn within<T>(limit: Duration, f: impl FnOnce() -> T) -> T {
    let _watchdog = watchdog_here(limit.saturating_mul(2).max(limit + Duration::from_secs(10)));
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

/// Polls `cond` (every millisecond, never as a substitute for it) until it holds or `bound`
/// passes; returns whether it held.
pub fn eventually(bound: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() > bound {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

// ----- Is a thread blocked in the kernel? (/proc/self/task/<tid>) ---------------------------
//
// Tests that must know a loop is *asleep in its backend* (not merely running) ask the kernel:
// the thread's scheduler state is `S` (interruptible sleep) and the system call it is in is
// one of the backends' waits. Tests that need a thread blocked on a lock or condition
// variable look for `futex`.

/// The calling thread's kernel thread id (for the `/proc` queries below).
pub fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

/// The system calls the backends sleep in (glibc may route a call to its `p` variant).
#[allow(clippy::unnecessary_cast)] // c_long is i32 on 32-bit targets
pub fn backend_wait_syscalls() -> Vec<i64> {
    let mut v = vec![
        libc::SYS_epoll_pwait as i64,
        libc::SYS_epoll_pwait2 as i64,
        libc::SYS_ppoll as i64,
        libc::SYS_io_uring_enter as i64,
        libc::SYS_pselect6 as i64,
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([
        libc::SYS_epoll_wait as i64,
        libc::SYS_poll as i64,
        libc::SYS_select as i64,
    ]);
    v
}

/// The system call a thread sleeps in when it waits on a std `Mutex`/`Condvar`/channel.
#[allow(clippy::unnecessary_cast)] // c_long is i32 on 32-bit targets
pub fn futex_syscalls() -> Vec<i64> {
    vec![libc::SYS_futex as i64]
}

/// The thread's scheduler state letter (`R`, `S`, `D`, ...) from `/proc/self/task/<tid>/stat`.
pub fn thread_state(tid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // "tid (comm) S ...": comm may contain spaces and parentheses; the state follows the last ')'.
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

/// The system call the thread is blocked in (`None` while it runs, or if `/proc` does not
/// say: then callers fall back to the state alone).
pub fn thread_syscall(tid: i32) -> Option<i64> {
    let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Is the thread asleep in one of `syscalls`? (If `/proc/<tid>/syscall` is unreadable, a
/// sleeping state observed twice, 1 ms apart, stands in.)
pub fn is_blocked_in(tid: i32, syscalls: &[i64]) -> bool {
    if thread_state(tid) != Some('S') {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")) {
        Ok(_) => thread_syscall(tid).is_some_and(|n| syscalls.contains(&n)),
        Err(_) => {
            std::thread::sleep(Duration::from_millis(1));
            thread_state(tid) == Some('S')
        }
    }
}

/// Waits (bounded) until the thread is asleep in one of `syscalls`; returns whether it was.
pub fn wait_until_blocked_in(tid: i32, syscalls: &[i64], bound: Duration) -> bool {
    eventually(bound, || is_blocked_in(tid, syscalls))
}

/// How many times the thread has gone to sleep voluntarily (`voluntary_ctxt_switches`): a
/// thread blocked in a wait with no timeout adds one only when something woke it.
pub fn voluntary_switches(tid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("voluntary_ctxt_switches in /proc/self/task/<tid>/status")
}

// ----- C peers (tests that compare with a C library) ----------------------------------------

/// Can a test that compiles a C program against `headers` (e.g. `event2/thread.h`) run here?
/// `true` if a C compiler and the headers are installed. If not, the test must skip: this
/// prints why and returns `false` — unless `EVRS_REQUIRE_C_PEERS=1` (CI sets it after
/// installing the packages), in which case a missing peer fails the test.
pub fn c_peer_available(test: &str, headers: &[&str], packages: &str) -> bool {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let have_cc = std::process::Command::new(&cc)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let mut dirs = vec![
        std::path::PathBuf::from("/usr/include"),
        "/usr/local/include".into(),
    ];
    if let Ok(extra) = std::env::var("CPATH") {
        dirs.extend(extra.split(':').filter(|s| !s.is_empty()).map(Into::into));
    }
    let missing: Vec<&str> = headers
        .iter()
        .copied()
        .filter(|h| !dirs.iter().any(|d| d.join(h).exists()))
        .collect();
    if have_cc && missing.is_empty() {
        return true;
    }
    let why = if have_cc {
        format!("<{}> not found", missing.join(">, <"))
    } else {
        format!("no C compiler ({cc})")
    };
    let required = std::env::var("EVRS_REQUIRE_C_PEERS").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "{test}: {why}, and EVRS_REQUIRE_C_PEERS=1 forbids skipping \
         (apt-get install -y {packages})"
    );
    // Straight to fd 2, past the harness's capture: a skip must be visible in a passing run.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED {test}: {why} (apt-get install -y {packages}; \
         set EVRS_REQUIRE_C_PEERS=1 to make this a failure)"
    );
    false
}

/// A closed fd number that no other test of this process can be handed meanwhile (the
/// kernel gives out the lowest free number, and this one is far above what tests hold),
/// distinct per backend as their tests run in parallel. `s` is any open fd to copy.
pub fn closed_fd(m: Method, s: &UnixStream) -> RawFd {
    let target = 1000 + m as i32;
    // SAFETY: fcntl/dup2/close take no pointers; `target` is unused by this process (checked).
    unsafe {
        assert_eq!(libc::fcntl(target, libc::F_GETFD), -1, "fd {target} in use");
        assert_eq!(libc::dup2(s.as_raw_fd(), target), target);
        assert_eq!(libc::close(target), 0);
    }
    target
}

/// Is `tool` (`curl`, `openssl`) installed? When not, the caller skips with a reason — unless
/// `EVRS_REQUIRE_C_PEERS=1` (CI installs the peers), where a missing peer fails.
pub fn tool_available(tool: &str) -> bool {
    let ok = std::process::Command::new(tool)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("EVRS_REQUIRE_C_PEERS").as_deref() != Ok("1"),
            "{tool} is required (EVRS_REQUIRE_C_PEERS=1)"
        );
        eprintln!("skipped: no {tool}");
    }
    ok
}

/// Lets every task of `runtime` end (their peers gone, their connections close), fails if
/// any is left after 20 s, and releases the runtime's events: what an async test ends with.
pub fn finish_runtime(runtime: evrs::rt::Runtime, b: &mut EventBase) {
    let start = Instant::now();
    while runtime.run_until_stalled(b).unwrap() > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "tasks left: {}",
            runtime.tasks()
        );
        b.run(evrs::LoopFlags::ONCE).unwrap();
    }
    runtime.shutdown(b);
}
