//! Errors, hang-ups and closed fds (issue 14): each reaches every event that watches the fd,
//! with a defined outcome per backend, and none makes the loop spin.
//!
//! "No spin" is measured as the CPU time of the loop's thread (`getrusage(RUSAGE_THREAD)`)
//! while the loop runs: a loop that is woken over and over for a condition no event consumes
//! burns its whole window, one that sleeps uses next to nothing. Every loop run is bounded by a
//! guard timer that breaks it, and every test by a watchdog thread that aborts the process
//! (naming the test) if it is still running after 30 s.
//!
//! Tests that close a watched fd number without deleting its event use a high fd number
//! (`F_DUPFD`, a range per test and backend), so no other test running in parallel in this
//! process is handed the freed number.
mod util;
use evrs::{EventBase, Method, RunOutcome, What};
use std::cell::{Cell, RefCell};
use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::unix::io::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use util::*;

/// How long a loop runs when the expected outcome is "nothing more happens".
const WINDOW: Duration = Duration::from_millis(300);
/// The bound on a loop that is expected to end by itself well before it.
const GUARD: Duration = Duration::from_secs(5);
/// CPU the loop's thread may use over a whole run. A sleeping loop uses well under a
/// millisecond in a 300 ms window (0.4 ms at most measured, debug build); a spinning one
/// uses most of the window, or still tens of milliseconds when the other tests of this file
/// spin on the same cores.
const MAX_CPU: Duration = Duration::from_millis(15);

// ----- harness ------------------------------------------------------------------------------

/// Aborts the process if the test is still running after 30 s (dropped at the end of a test).
struct Watchdog(#[allow(dead_code)] mpsc::Sender<()>);

fn watchdog(m: Method, test: &'static str) -> Watchdog {
    let (tx, rx) = mpsc::channel::<()>();
    let name = format!("hangup::{}::{test}", m.name());
    std::thread::spawn(move || {
        if rx.recv_timeout(Duration::from_secs(30)) == Err(mpsc::RecvTimeoutError::Timeout) {
            eprintln!("watchdog: {name} still running after 30 s; aborting");
            std::process::abort();
        }
    });
    Watchdog(tx)
}

/// CPU time (user + system) used so far by the calling thread.
fn thread_cpu() -> Duration {
    // SAFETY: getrusage writes one rusage into the zeroed struct we pass.
    let ru = unsafe {
        let mut ru = std::mem::zeroed::<libc::rusage>();
        assert_eq!(libc::getrusage(libc::RUSAGE_THREAD, &mut ru), 0);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// A timer that breaks the loop after `after` (the bound on one run).
struct Guard {
    ev: evrs::Event,
    fired: Rc<Cell<bool>>,
}

fn guard(b: &mut EventBase, after: Duration) -> Guard {
    let fired = Rc::new(Cell::new(false));
    let f = fired.clone();
    let ev = b
        .new_timer(move |base, _, _| {
            f.set(true);
            base.loopbreak();
        })
        .unwrap();
    b.add(ev, Some(after)).unwrap();
    Guard { ev, fired }
}

/// The result of one measured `dispatch`.
struct Ran {
    res: io::Result<RunOutcome>,
    cpu: Duration,
    wall: Duration,
}

fn measured(f: impl FnOnce() -> io::Result<RunOutcome>) -> Ran {
    let (cpu0, t0) = (thread_cpu(), Instant::now());
    let res = f();
    Ran {
        res,
        cpu: thread_cpu() - cpu0,
        wall: t0.elapsed(),
    }
}

fn run(b: &mut EventBase) -> Ran {
    measured(|| b.dispatch())
}

impl Ran {
    /// The run returned `want`, within its bound, without spinning.
    fn check(&self, want: RunOutcome, what: &str) {
        if let Err(e) = &self.res {
            panic!("{what}: the loop failed: {e}");
        }
        assert!(
            self.cpu < MAX_CPU,
            "{what}: the loop used {:?} of CPU in {:?}: it spins",
            self.cpu,
            self.wall
        );
        assert_eq!(*self.res.as_ref().unwrap(), want, "{what}: run outcome");
    }
}

/// A connected TCP pair on 127.0.0.1: (client, server side), non-blocking.
fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    c.set_nonblocking(true).unwrap();
    s.set_nonblocking(true).unwrap();
    (c, s)
}

/// Closes `s` with an RST (SO_LINGER 0), so its peer sees a reset, not a FIN.
fn reset(s: TcpStream) {
    let lin = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `lin` is a valid linger struct of the size we pass; the fd is open.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &lin as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "SO_LINGER: {}", io::Error::last_os_error());
    drop(s);
}

/// A non-blocking pipe: (read end, write end).
fn pipe() -> (OwnedFd, OwnedFd) {
    let mut p = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two fds into the array we pass.
    let r = unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
    assert_eq!(r, 0, "pipe2: {}", io::Error::last_os_error());
    // SAFETY: both fds were just created and are owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1])) }
}

/// `read(2)` on a raw fd: Ok(bytes) (empty at EOF) or the error.
fn raw_read(fd: RawFd) -> io::Result<Vec<u8>> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(buf[..n as usize].to_vec())
    }
}

/// `write(2)` of one byte on a raw fd (SIGPIPE is ignored in Rust binaries: EPIPE instead).
fn raw_write(fd: RawFd) -> io::Result<()> {
    // SAFETY: one valid byte.
    let n = unsafe { libc::write(fd, b"x".as_ptr().cast(), 1) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// A duplicate of `fd` at a high number private to (`m`, `slot`), below select's 1024.
fn high_fd(fd: RawFd, m: Method, slot: i32) -> RawFd {
    let idx = Method::ALL.iter().position(|&x| x == m).unwrap() as i32;
    let min = 400 + idx * 150 + slot * 12;
    // SAFETY: F_DUPFD_CLOEXEC takes an integer argument; `fd` is open.
    let hi = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min) };
    assert!(hi >= min, "F_DUPFD: {}", io::Error::last_os_error());
    assert!(hi < min + 12 && hi < 1024, "fd {hi} outside its range");
    hi
}

/// Closes an fd the test owns (while an event may still watch it: the point of the test).
fn close_raw(fd: RawFd) {
    // SAFETY: the caller owns `fd` and never uses it again.
    assert_eq!(unsafe { libc::close(fd) }, 0);
}

/// Collects what a callback saw.
#[derive(Clone, Default)]
struct Seen {
    calls: Rc<Cell<u32>>,
    what: Rc<Cell<What>>,
}

impl Seen {
    fn hit(&self, what: What) {
        self.calls.set(self.calls.get() + 1);
        self.what.set(self.what.get() | what);
    }
    fn calls(&self) -> u32 {
        self.calls.get()
    }
    fn what(&self) -> What {
        self.what.get()
    }
}

/// select(2) cannot report a peer's close (`CLOSED` is accepted but never delivered).
fn early_close(m: Method) -> bool {
    m != Method::Select
}

// ----- tests --------------------------------------------------------------------------------

on_every_backend! {
    // (a) The issue as reported: a CLOSED|PERSIST-only event and a peer that resets.
    fn closed_only_persistent_event_sees_peer_reset(m) {
        let _w = watchdog(m, "closed_only_persistent_event_sees_peer_reset");
        let mut b = base(m);
        let (client, server) = tcp_pair();
        let g = guard(&mut b, if early_close(m) { GUARD } else { WINDOW });
        let seen = Seen::default();
        let s = seen.clone();
        let gev = g.ev;
        let ev = b.new_event(server.as_raw_fd(), What::CLOSED | What::PERSIST, move |base, ev, what| {
            s.hit(what);
            base.del(ev).unwrap();
            base.del(gev).unwrap();
        }).unwrap();
        b.add(ev, None).unwrap();
        reset(client);
        let r = run(&mut b);
        if early_close(m) {
            // Deleting the only event (and the guard) in the callback ends the loop.
            r.check(RunOutcome::NoEvents, "CLOSED|PERSIST after RST");
            assert_eq!(seen.calls(), 1);
            assert_eq!(seen.what(), What::CLOSED);
            assert!(!g.fired.get());
        } else {
            r.check(RunOutcome::Exited, "select: CLOSED after RST");
            assert_eq!(seen.calls(), 0, "select never reports CLOSED");
            assert!(g.fired.get());
        }
        b.free(ev).unwrap(); // select: still registered, as it never fired
    }

    // A reset wakes every kind of watcher on the fd, each with the bit it asked for.
    fn reset_wakes_read_write_and_closed_watchers(m) {
        let _w = watchdog(m, "reset_wakes_read_write_and_closed_watchers");
        let mut b = base(m);
        let (client, server) = tcp_pair();
        let g = guard(&mut b, if early_close(m) { GUARD } else { WINDOW });
        let want = if early_close(m) { 3 } else { 2 };
        let left = Rc::new(Cell::new(want));
        let mut seen = Vec::new();
        let mut evs = Vec::new();
        for interest in [What::READ, What::WRITE, What::CLOSED] {
            let s = Seen::default();
            let (s2, left, gev) = (s.clone(), left.clone(), g.ev);
            let ev = b.new_event(server.as_raw_fd(), interest, move |base, _, what| {
                s2.hit(what);
                left.set(left.get() - 1);
                if left.get() == 0 && early_close(base.method()) {
                    base.del(gev).unwrap();
                }
            }).unwrap();
            b.add(ev, None).unwrap();
            evs.push(ev);
            seen.push((interest, s));
        }
        reset(client);
        let r = run(&mut b);
        if early_close(m) {
            r.check(RunOutcome::NoEvents, "three watchers after RST");
        } else {
            r.check(RunOutcome::Exited, "select: three watchers after RST");
        }
        for (interest, s) in &seen {
            if *interest == What::CLOSED && !early_close(m) {
                assert_eq!(s.calls(), 0);
            } else {
                assert_eq!(s.calls(), 1, "{interest:?}");
                assert_eq!(s.what(), *interest);
            }
        }
        for ev in evs {
            b.free(ev).unwrap(); // select: the CLOSED watcher is still registered
        }
    }

    // Level-triggered hang-up on an fd whose only event is a one-shot WRITE: it fires once,
    // leaves the backend, and the loop sleeps afterwards.
    fn oneshot_write_event_on_reset_socket_fires_once_then_sleeps(m) {
        let _w = watchdog(m, "oneshot_write_event_on_reset_socket_fires_once_then_sleeps");
        let mut b = base(m);
        let (client, server) = tcp_pair();
        let g = guard(&mut b, WINDOW);
        let seen = Seen::default();
        let s = seen.clone();
        let ev = b.new_event(server.as_raw_fd(), What::WRITE, move |_, _, what| s.hit(what)).unwrap();
        b.add(ev, None).unwrap();
        reset(client);
        run(&mut b).check(RunOutcome::Exited, "one-shot WRITE after RST");
        assert!(g.fired.get());
        assert_eq!(seen.calls(), 1);
        assert_eq!(seen.what(), What::WRITE);
        drop(server);
    }

    // (b) The user closes the fd without deleting its READ|PERSIST event. epoll: the fd left
    // the epoll set with the close, the event never fires. poll (POLLNVAL) and select (EBADF):
    // the event fires once with READ, then the fd is no longer watched. Never a spin, never
    // an error, in this run or the next.
    fn fd_closed_under_a_persistent_read_event_is_reported_at_most_once(m) {
        let _w = watchdog(m, "fd_closed_under_a_persistent_read_event_is_reported_at_most_once");
        let mut b = base(m);
        let (x, y) = pair();
        let hi = high_fd(fd(&y), m, 0);
        drop(y);
        let seen = Seen::default();
        let s = seen.clone();
        let ev = b.new_event(hi, What::READ | What::PERSIST, move |_, _, what| s.hit(what)).unwrap();
        b.add(ev, None).unwrap();
        close_raw(hi);
        let want = if m == Method::Epoll { 0 } else { 1 };
        for round in 0..2 {
            let g = guard(&mut b, WINDOW);
            run(&mut b).check(RunOutcome::Exited, &format!("closed fd, run {round}"));
            assert!(g.fired.get());
            assert_eq!(seen.calls(), want, "run {round}");
        }
        if want == 1 {
            assert_eq!(seen.what(), What::READ);
        }
        // Still pending; deleting it after the close is fine.
        assert!(b.pending(ev, What::READ).unwrap().0.contains(What::READ));
        b.del(ev).unwrap();
        drop(x);
    }

    // After such a report, the number can be reused: delete the stale event, open a new
    // socket on the same number, and its event fires as usual.
    fn closed_fd_number_can_be_reused_after_the_event_is_deleted(m) {
        let _w = watchdog(m, "closed_fd_number_can_be_reused_after_the_event_is_deleted");
        let mut b = base(m);
        let (x, y) = pair();
        let hi = high_fd(fd(&y), m, 1);
        drop(y);
        let stale = Seen::default();
        let s = stale.clone();
        let ev = b.new_event(hi, What::READ | What::PERSIST, move |_, _, what| s.hit(what)).unwrap();
        b.add(ev, None).unwrap();
        close_raw(hi);
        let g = guard(&mut b, WINDOW);
        run(&mut b).check(RunOutcome::Exited, "closed fd");
        assert!(g.fired.get());
        b.del(ev).unwrap();
        let (p, q) = pair();
        let hi2 = high_fd(fd(&q), m, 1);
        assert_eq!(hi2, hi, "the freed number is handed out again");
        let fresh = Seen::default();
        let f = fresh.clone();
        let g = guard(&mut b, GUARD);
        let gev = g.ev;
        let ev2 = b.new_event(hi2, What::READ, move |base, _, what| {
            f.hit(what);
            base.del(gev).unwrap();
        }).unwrap();
        b.add(ev2, None).unwrap();
        write(&p, b"!");
        run(&mut b).check(RunOutcome::NoEvents, "reused number");
        assert_eq!(fresh.calls(), 1);
        assert_eq!(stale.calls(), if m == Method::Epoll { 0 } else { 1 });
        close_raw(hi2);
        drop((x, q));
    }

    // The same, from inside the callback that reports the closed fd (poll and select report
    // it; epoll never runs the callback): the backend must not keep ignoring the number.
    fn closed_fd_number_reused_inside_the_report_callback(m) {
        let _w = watchdog(m, "closed_fd_number_reused_inside_the_report_callback");
        let mut b = base(m);
        let (x, y) = pair();
        let hi = high_fd(fd(&y), m, 2);
        drop(y);
        let fresh = Seen::default();
        let keep: Rc<RefCell<Vec<UnixStream>>> = Rc::default();
        let g = guard(&mut b, if m == Method::Epoll { WINDOW } else { GUARD });
        let (f, k, gev) = (fresh.clone(), keep.clone(), g.ev);
        let ev = b.new_event(hi, What::READ | What::PERSIST, move |base, ev, _| {
            base.del(ev).unwrap();
            let (p, q) = pair();
            let hi2 = high_fd(fd(&q), base.method(), 2);
            assert_eq!(hi2, hi);
            let f = f.clone();
            let ev2 = base.new_event(hi2, What::READ, move |base, _, what| {
                f.hit(what);
                base.del(gev).unwrap();
            }).unwrap();
            base.add(ev2, None).unwrap();
            write(&p, b"!");
            k.borrow_mut().extend([p, q]);
        }).unwrap();
        b.add(ev, None).unwrap();
        close_raw(hi);
        let r = run(&mut b);
        if m == Method::Epoll {
            r.check(RunOutcome::Exited, "epoll: closed fd");
            assert!(g.fired.get());
            assert_eq!(fresh.calls(), 0);
        } else {
            r.check(RunOutcome::NoEvents, "reuse in the callback");
            assert_eq!(fresh.calls(), 1);
            close_raw(hi);
        }
        drop(x);
        b.free(ev).unwrap(); // epoll: still registered, as its callback never ran
    }

    // (c) A closed fd among healthy ones: the healthy fd is served, and no run fails (select
    // used to return EBADF from every run until the event was deleted).
    fn closed_fd_does_not_fail_every_run_or_starve_other_fds(m) {
        let _w = watchdog(m, "closed_fd_does_not_fail_every_run_or_starve_other_fds");
        let mut b = base(m);
        let (x, y) = pair();
        let got = Rc::new(RefCell::new(Vec::new()));
        let g2 = got.clone();
        let reader = b.new_event(fd(&y), What::READ | What::PERSIST, move |_, _, _| {
            g2.borrow_mut().extend(read_all(&y));
        }).unwrap();
        b.add(reader, None).unwrap();
        let (p, q) = pair();
        let hi = high_fd(fd(&q), m, 3);
        drop(q);
        let bad = Seen::default();
        let s = bad.clone();
        let ev = b.new_event(hi, What::WRITE | What::PERSIST, move |_, _, what| s.hit(what)).unwrap();
        b.add(ev, None).unwrap();
        close_raw(hi);
        write(&x, b"hello");
        for round in 0..3 {
            let g = guard(&mut b, WINDOW);
            run(&mut b).check(RunOutcome::Exited, &format!("run {round}"));
            assert!(g.fired.get());
            if round == 1 {
                write(&x, b" again");
            }
        }
        assert_eq!(&*got.borrow(), b"hello again");
        assert_eq!(bad.calls(), if m == Method::Epoll { 0 } else { 1 });
        if bad.calls() == 1 {
            assert_eq!(bad.what(), What::WRITE);
        }
        drop(p);
        b.free(reader).unwrap();
        b.free(ev).unwrap();
    }

    // (d) Pipes. The write end watched for WRITE after the reader closed: EPOLLERR/POLLERR
    // (select: writable); the callback sees EPIPE and deletes the event.
    fn pipe_write_end_watched_for_write_after_reader_closed(m) {
        let _w = watchdog(m, "pipe_write_end_watched_for_write_after_reader_closed");
        let mut b = base(m);
        let (r, w) = pipe();
        drop(r);
        let g = guard(&mut b, GUARD);
        let seen = Seen::default();
        let epipe = Rc::new(Cell::new(false));
        let (s, e, gev, wfd) = (seen.clone(), epipe.clone(), g.ev, w.as_raw_fd());
        let ev = b.new_event(wfd, What::WRITE | What::PERSIST, move |base, ev, what| {
            s.hit(what);
            let err = raw_write(wfd).unwrap_err();
            e.set(err.raw_os_error() == Some(libc::EPIPE));
            base.del(ev).unwrap();
            base.del(gev).unwrap();
        }).unwrap();
        b.add(ev, None).unwrap();
        run(&mut b).check(RunOutcome::NoEvents, "pipe write end, reader gone");
        assert_eq!(seen.calls(), 1);
        assert_eq!(seen.what(), What::WRITE);
        assert!(epipe.get());
    }

    // The write end watched for CLOSED only: EPOLLERR/POLLERR with no IN/OUT/RDHUP bit used to
    // map to READ|WRITE, which no event consumed: a spin with no callback.
    fn pipe_write_end_watched_for_closed_after_reader_closed(m) {
        let _w = watchdog(m, "pipe_write_end_watched_for_closed_after_reader_closed");
        let mut b = base(m);
        let (r, w) = pipe();
        let g = guard(&mut b, if early_close(m) { GUARD } else { WINDOW });
        let seen = Seen::default();
        let (s, gev) = (seen.clone(), g.ev);
        let ev = b.new_event(w.as_raw_fd(), What::CLOSED, move |base, _, what| {
            s.hit(what);
            base.del(gev).unwrap();
        }).unwrap();
        b.add(ev, None).unwrap();
        drop(r);
        let res = run(&mut b);
        if early_close(m) {
            res.check(RunOutcome::NoEvents, "CLOSED on pipe write end");
            assert_eq!(seen.calls(), 1);
            assert_eq!(seen.what(), What::CLOSED);
        } else {
            res.check(RunOutcome::Exited, "select: CLOSED on pipe write end");
            assert_eq!(seen.calls(), 0);
        }
        b.free(ev).unwrap(); // select: still registered, as it never fired
    }

    // The write end watched for READ (it never becomes readable): the reader's close is an
    // error condition, which wakes READ watchers too.
    fn pipe_write_end_watched_for_read_after_reader_closed(m) {
        let _w = watchdog(m, "pipe_write_end_watched_for_read_after_reader_closed");
        let mut b = base(m);
        let (r, w) = pipe();
        let g = guard(&mut b, GUARD);
        let seen = Seen::default();
        let (s, gev) = (seen.clone(), g.ev);
        let ev = b.new_event(w.as_raw_fd(), What::READ, move |base, _, what| {
            s.hit(what);
            base.del(gev).unwrap();
        }).unwrap();
        b.add(ev, None).unwrap();
        drop(r);
        run(&mut b).check(RunOutcome::NoEvents, "READ on pipe write end");
        assert_eq!(seen.calls(), 1);
        assert_eq!(seen.what(), What::READ);
    }

    // The read end watched for READ|PERSIST after the writer wrote and closed (HUP, with or
    // without IN depending on the data left): the callback gets the data, then EOF.
    fn pipe_read_end_gets_data_then_eof_after_writer_closed(m) {
        let _w = watchdog(m, "pipe_read_end_gets_data_then_eof_after_writer_closed");
        let mut b = base(m);
        let (r, w) = pipe();
        raw_write(w.as_raw_fd()).unwrap();
        drop(w);
        let g = guard(&mut b, GUARD);
        let seen = Seen::default();
        let data = Rc::new(RefCell::new(Vec::new()));
        let (s, d, gev, rfd) = (seen.clone(), data.clone(), g.ev, r.as_raw_fd());
        let ev = b.new_event(rfd, What::READ | What::PERSIST, move |base, ev, what| {
            s.hit(what);
            let chunk = raw_read(rfd).unwrap();
            if chunk.is_empty() {
                base.del(ev).unwrap();
                base.del(gev).unwrap();
            }
            d.borrow_mut().extend(chunk);
        }).unwrap();
        b.add(ev, None).unwrap();
        run(&mut b).check(RunOutcome::NoEvents, "pipe read end, writer gone");
        assert_eq!(&*data.borrow(), b"x");
        assert_eq!(seen.calls(), 2, "one read for the data, one for EOF");
        assert_eq!(seen.what(), What::READ);
    }

    // The read end watched for CLOSED only after the writer closed: a bare EPOLLHUP/POLLHUP
    // (pipes have no RDHUP) used to map to READ|WRITE only: a spin with no callback.
    fn pipe_read_end_watched_for_closed_after_writer_closed(m) {
        let _w = watchdog(m, "pipe_read_end_watched_for_closed_after_writer_closed");
        let mut b = base(m);
        let (r, w) = pipe();
        let g = guard(&mut b, if early_close(m) { GUARD } else { WINDOW });
        let seen = Seen::default();
        let (s, gev) = (seen.clone(), g.ev);
        let ev = b.new_event(r.as_raw_fd(), What::CLOSED | What::PERSIST, move |base, ev, what| {
            s.hit(what);
            base.del(ev).unwrap();
            base.del(gev).unwrap();
        }).unwrap();
        b.add(ev, None).unwrap();
        drop(w);
        let res = run(&mut b);
        if early_close(m) {
            res.check(RunOutcome::NoEvents, "CLOSED on pipe read end");
            assert_eq!(seen.calls(), 1);
            assert_eq!(seen.what(), What::CLOSED);
        } else {
            res.check(RunOutcome::Exited, "select: CLOSED on pipe read end");
            assert_eq!(seen.calls(), 0);
        }
        b.free(ev).unwrap(); // select: still registered, as it never fired
    }

    // An fd closed before its event is deleted while a dup keeps the file open: epoll keys
    // registrations by open file, so the registration outlives the close, and the DEL by the
    // closed number fails (EBADF). The kernel then reports an fd no event watches; the backend
    // must get rid of it rather than be woken for it forever.
    fn fd_closed_then_deleted_while_a_dup_stays_open_does_not_spin(m) {
        let _w = watchdog(m, "fd_closed_then_deleted_while_a_dup_stays_open_does_not_spin");
        let mut b = base(m);
        let (x, y) = pair();
        let hi = high_fd(fd(&y), m, 6);
        let ev = b.new_event(hi, What::READ | What::PERSIST, |_, _, _| {
            panic!("a deleted event ran");
        }).unwrap();
        b.add(ev, None).unwrap();
        close_raw(hi);
        b.del(ev).unwrap();
        write(&x, b"unread");
        for round in 0..2 {
            let g = guard(&mut b, WINDOW);
            run(&mut b).check(RunOutcome::Exited, &format!("stale registration, run {round}"));
            assert!(g.fired.get());
        }
        // The dup is untouched and still works with a new event.
        let seen = Seen::default();
        let s = seen.clone();
        let g = guard(&mut b, GUARD);
        let gev = g.ev;
        let ev2 = b.new_event(fd(&y), What::READ, move |base, _, what| {
            s.hit(what);
            base.del(gev).unwrap();
        }).unwrap();
        b.add(ev2, None).unwrap();
        run(&mut b).check(RunOutcome::NoEvents, "the dup");
        assert_eq!(seen.calls(), 1);
        assert_eq!(read_all(&y), b"unread");
    }

    // The same inside a running loop (the change list defers the DEL past the close).
    fn fd_closed_then_deleted_in_a_callback_while_a_dup_stays_open_does_not_spin(m) {
        let _w = watchdog(m, "fd_closed_then_deleted_in_a_callback_while_a_dup_stays_open_does_not_spin");
        let mut b = base(m);
        let (x, y) = pair();
        let hi = high_fd(fd(&y), m, 7);
        let seen = Seen::default();
        let s = seen.clone();
        let ev = b.new_event(hi, What::READ | What::PERSIST, move |base, ev, what| {
            s.hit(what);
            close_raw(hi);
            base.del(ev).unwrap();
        }).unwrap();
        b.add(ev, None).unwrap();
        write(&x, b"unread");
        let g = guard(&mut b, WINDOW);
        run(&mut b).check(RunOutcome::Exited, "stale registration after a callback");
        assert!(g.fired.get());
        assert_eq!(seen.calls(), 1);
        drop(y);
    }

    // A SharedBase waits on a copy of the backend's state with its lock released: the
    // closed-fd report must still be delivered once, and reusing the number inside the
    // callback must still work.
    fn shared_base_fd_closed_under_an_event_is_reported_at_most_once(m) {
        let _w = watchdog(m, "shared_base_fd_closed_under_an_event_is_reported_at_most_once");
        let b = shared(m);
        let (x, y) = pair();
        let hi = high_fd(fd(&y), m, 4);
        drop(y);
        let calls = Arc::new(AtomicUsize::new(0));
        let what = Arc::new(AtomicU16::new(0));
        let fresh = Arc::new(AtomicUsize::new(0));
        let keep: Arc<Mutex<Vec<UnixStream>>> = Arc::default();
        let fired = Arc::new(AtomicBool::new(false));
        let fi = fired.clone();
        let gev = b.new_timer(move |base, _, _| {
            fi.store(true, Ordering::SeqCst);
            base.loopbreak();
        }).unwrap();
        b.add(gev, Some(if m == Method::Epoll { WINDOW } else { GUARD })).unwrap();
        let (c, wh, fr, k) = (calls.clone(), what.clone(), fresh.clone(), keep.clone());
        let ev = b.new_event(hi, What::READ | What::PERSIST, move |base, ev, w| {
            c.fetch_add(1, Ordering::SeqCst);
            wh.fetch_or(w.bits(), Ordering::SeqCst);
            base.del(ev).unwrap();
            let (p, q) = pair();
            let hi2 = high_fd(fd(&q), base.method(), 4);
            assert_eq!(hi2, hi);
            let fr = fr.clone();
            let ev2 = base.new_event(hi2, What::READ, move |base, _, _| {
                fr.fetch_add(1, Ordering::SeqCst);
                base.del(gev).unwrap();
            }).unwrap();
            base.add(ev2, None).unwrap();
            write(&p, b"!");
            k.lock().unwrap().extend([p, q]);
        }).unwrap();
        b.add(ev, None).unwrap();
        close_raw(hi);
        let r = measured(|| b.dispatch());
        if m == Method::Epoll {
            r.check(RunOutcome::Exited, "shared epoll: closed fd");
            assert!(fired.load(Ordering::SeqCst));
            assert_eq!(calls.load(Ordering::SeqCst), 0);
            b.del(ev).unwrap();
        } else {
            r.check(RunOutcome::NoEvents, "shared: closed fd, reuse in the callback");
            assert_eq!(calls.load(Ordering::SeqCst), 1);
            assert_eq!(what.load(Ordering::SeqCst), What::READ.bits());
            assert_eq!(fresh.load(Ordering::SeqCst), 1);
            close_raw(hi);
        }
        drop(x);
    }

    // The stale epoll registration of a dup'ed fd, on a SharedBase (whose detached wait is
    // checked at the next prepare_wait).
    fn shared_base_fd_closed_then_deleted_while_a_dup_stays_open_does_not_spin(m) {
        let _w = watchdog(m, "shared_base_fd_closed_then_deleted_while_a_dup_stays_open_does_not_spin");
        let b = shared(m);
        let (x, y) = pair();
        let hi = high_fd(fd(&y), m, 8);
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let ev = b.new_event(hi, What::READ | What::PERSIST, move |base, ev, _| {
            c.fetch_add(1, Ordering::SeqCst);
            close_raw(hi);
            base.del(ev).unwrap();
        }).unwrap();
        b.add(ev, None).unwrap();
        write(&x, b"unread");
        let gev = b.new_timer(|base, _, _| base.loopbreak()).unwrap();
        b.add(gev, Some(WINDOW)).unwrap();
        measured(|| b.dispatch()).check(RunOutcome::Exited, "shared: stale registration");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        drop(y);
    }

    // A SharedBase whose closed fd's event stays added: reported at most once, no spin.
    fn shared_base_closed_fd_left_registered_does_not_spin(m) {
        let _w = watchdog(m, "shared_base_closed_fd_left_registered_does_not_spin");
        let b = shared(m);
        let (x, y) = pair();
        let hi = high_fd(fd(&y), m, 5);
        drop(y);
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let ev = b.new_event(hi, What::READ | What::PERSIST, move |_, _, _| {
            c.fetch_add(1, Ordering::SeqCst);
        }).unwrap();
        b.add(ev, None).unwrap();
        close_raw(hi);
        let gev = b.new_timer(|base, _, _| base.loopbreak()).unwrap();
        for round in 0..2 {
            b.add(gev, Some(WINDOW)).unwrap();
            measured(|| b.dispatch()).check(RunOutcome::Exited, &format!("shared, run {round}"));
            assert_eq!(calls.load(Ordering::SeqCst), if m == Method::Epoll { 0 } else { 1 });
        }
        b.del(ev).unwrap();
        drop(x);
    }
}
