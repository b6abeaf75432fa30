//! What only the io_uring backend has to get right (the whole reactor matrix runs on it
//! too, through `on_every_backend!`): more registrations than its submission queue holds,
//! more reports at once than its completion queue holds, files held by poll requests, a
//! loop that changes threads (the ring's single issuer), and the fallback when the kernel
//! refuses io_uring (a seccomp filter in a child process).
mod util;
use evrs::{EventConfig, LoopFlags, Method, SharedBase, What};
use std::cell::Cell;
use std::io::Read;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use util::*;

const BOUND: Duration = Duration::from_secs(10);

#[test]
fn more_fds_than_either_queue_holds_are_all_reported_once() {
    let _w = watchdog_here(WATCHDOG_BOUND);
    // 5,000 socketpairs: 10,000 fds, every one writable at once. The 10,000 polls pass
    // through a 1,024-entry submission queue, and their 10,000 reports come in one wait to
    // an 8,192-entry completion queue (the kernel keeps the rest aside; they are flushed).
    let mut b = base(Method::IoUring);
    let pairs: Vec<_> = (0..5000).map(|_| pair()).collect();
    let fired = Rc::new(Cell::new(0usize));
    let mut evs = Vec::new();
    for (x, y) in &pairs {
        for s in [x, y] {
            let f = fired.clone();
            let ev = b
                .new_event(fd(s), What::WRITE, move |_, _, what| {
                    assert!(what.contains(What::WRITE));
                    f.set(f.get() + 1);
                })
                .unwrap();
            b.add(ev, None).unwrap();
            evs.push(ev);
        }
    }
    let start = Instant::now();
    while fired.get() < 10_000 && start.elapsed() < BOUND {
        b.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
    }
    assert_eq!(
        fired.get(),
        10_000,
        "each one-shot write event fired exactly once"
    );
    for ev in evs {
        b.free(ev).unwrap();
    }
}

#[test]
fn deleting_an_armed_multishot_poll_releases_its_file() {
    let _w = watchdog_here(WATCHDOG_BOUND);
    // A poll request holds its file: deleting the event and closing the fd must really close
    // the socket (the peer reads EOF), inside a loop and outside one.
    for inside in [false, true] {
        let mut b = base(Method::IoUring);
        let (ours, mut peer) = pair();
        let ev = b
            .new_event(
                fd(&ours),
                What::READ | What::PERSIST | What::ET,
                |_, _, _| {},
            )
            .unwrap();
        b.add(ev, None).unwrap();
        b.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap(); // the multishot poll is armed
        if inside {
            let t = b
                .new_timer(move |base, t, _| base.free(t).unwrap())
                .unwrap();
            let cell = Rc::new(Cell::new(Some(ours)));
            let c = cell.clone();
            let closer = b
                .new_timer(move |base, t, _| {
                    base.free(ev).unwrap();
                    drop(c.take()); // closed in the callback: the removal waits for the wait
                    base.free(t).unwrap();
                })
                .unwrap();
            b.add(closer, Some(Duration::from_millis(1))).unwrap();
            b.add(t, Some(Duration::from_millis(20))).unwrap();
            b.dispatch().unwrap();
        } else {
            b.free(ev).unwrap();
            drop(ours);
        }
        assert_eof(&mut peer, &format!("inside a loop: {inside}"));
    }
}

#[test]
fn a_shared_base_loop_moving_to_another_thread_keeps_working() {
    let _w = watchdog_here(WATCHDOG_BOUND);
    // The ring's issuer is the thread that first waited; another thread's loop gets EEXIST
    // from the kernel, and the backend rebuilds the ring for it, interest re-armed.
    let sb = Arc::new(SharedBase::with_config(EventConfig::new().method(Method::IoUring)).unwrap());
    assert_eq!(sb.method(), Method::IoUring);
    let (x, y) = pair();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let yfd = fd(&y);
    let ev = sb
        .new_event(yfd, What::READ | What::PERSIST, move |base, ev, _| {
            let mut buf = [0u8; 16];
            // SAFETY: reading into a valid buffer from an fd the test keeps open.
            let _ = unsafe { libc::read(yfd, buf.as_mut_ptr().cast(), buf.len()) };
            h.fetch_add(1, Ordering::SeqCst);
            let _ = base.del(ev);
        })
        .unwrap();
    for round in 0..3 {
        sb.add(ev, None).unwrap();
        write(&x, b"!");
        let s = sb.clone();
        std::thread::spawn(move || s.dispatch().unwrap())
            .join()
            .unwrap();
        assert_eq!(hits.load(Ordering::SeqCst), round + 1, "round {round}");
    }
    sb.free(ev).unwrap();
    drop((x, y));
}

/// The child half of [`refused_io_uring_falls_back_or_fails_clearly`] (run in a child
/// process: it installs a seccomp filter for good).
#[test]
fn seccomp_child() {
    if std::env::var_os("EVRS_IO_URING_SECCOMP_CHILD").is_none() {
        return;
    }
    deny_io_uring_setup();
    // Asked for by name: a clear error (the kernel's EPERM), no panic.
    let e = EventConfig::new()
        .method(Method::IoUring)
        .build()
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
    // Put first by the environment: the next backend.
    std::env::set_var("EVRS_BACKEND", "io_uring");
    let b = EventConfig::new().build().unwrap();
    assert_eq!(b.method(), Method::Epoll);
    println!("SECCOMP CHILD OK");
}

#[test]
fn refused_io_uring_falls_back_or_fails_clearly() {
    let _w = watchdog_here(WATCHDOG_BOUND);
    run_child(
        "seccomp_child",
        "EVRS_IO_URING_SECCOMP_CHILD",
        "SECCOMP CHILD OK",
    );
}

/// Reads `peer` until its end of stream, blocking with a bound: the release of a file held
/// by a poll may finish just after the call that asked for it (a rebuilt ring's teardown is
/// asynchronous), and a signal may interrupt the read.
fn assert_eof(peer: &mut std::os::unix::net::UnixStream, what: &str) {
    peer.set_nonblocking(false).unwrap();
    peer.set_read_timeout(Some(BOUND)).unwrap();
    let mut buf = [0u8; 1];
    loop {
        match peer.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => {
                assert_eq!(r.unwrap(), 0, "{what}");
                return;
            }
        }
    }
}

/// Runs test `name` of this binary alone in a child process (with `env` set, so the test
/// does its part) and checks that it passed and printed `ok_line`.
fn run_child(name: &str, env: &str, ok_line: &str) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(env, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(ok_line),
        "child {name}: {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A seccomp filter on this thread (and the threads it starts) making `io_uring_setup`
/// fail with EPERM, as a container runtime's default profile does.
fn deny_io_uring_setup() {
    const RET_ALLOW: u32 = 0x7fff_0000;
    const RET_ERRNO: u32 = 0x0005_0000;
    let nr = libc::SYS_io_uring_setup as u32;
    let filter = [
        // A = seccomp_data.nr
        libc::sock_filter {
            code: 0x20,
            jt: 0,
            jf: 0,
            k: 0,
        },
        // if A == nr: next, else skip one
        libc::sock_filter {
            code: 0x15,
            jt: 0,
            jf: 1,
            k: nr,
        },
        libc::sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: RET_ERRNO | libc::EPERM as u32,
        },
        libc::sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: RET_ALLOW,
        },
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: PR_SET_NO_NEW_PRIVS takes integer arguments; PR_SET_SECCOMP reads `prog`,
    // which points at `filter`, both alive for the call.
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        let r = libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &prog as *const libc::sock_fprog,
        );
        assert_eq!(r, 0, "seccomp: {}", std::io::Error::last_os_error());
    }
}

#[test]
fn a_loop_moving_threads_with_more_changes_than_the_queue_holds_loses_none() {
    let _w = watchdog_here(WATCHDOG_BOUND);
    // The first thread's wait made it the ring's issuer; the next run is on another thread
    // with 1,100 new registrations queued (more than the 1,024-entry submission queue):
    // the ring is rebuilt for the new thread before anything is queued, and every one of
    // them reports.
    let sb = Arc::new(SharedBase::with_config(EventConfig::new().method(Method::IoUring)).unwrap());
    let (x0, y0) = pair();
    let e0 = sb
        .new_event(fd(&y0), What::READ | What::PERSIST, |_, _, _| {})
        .unwrap();
    sb.add(e0, None).unwrap();
    sb.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
    const N: usize = 1100;
    let pairs: Vec<_> = (0..N).map(|_| pair()).collect();
    let hits = Arc::new(AtomicUsize::new(0));
    let mut evs = Vec::new();
    for (a, b) in &pairs {
        let h = hits.clone();
        let ev = sb
            .new_event(fd(a), What::READ, move |_, _, _| {
                h.fetch_add(1, Ordering::SeqCst);
            })
            .unwrap();
        sb.add(ev, None).unwrap();
        evs.push(ev);
        write(b, b"!");
    }
    let (s, h) = (sb.clone(), hits.clone());
    let errors = std::thread::spawn(move || {
        let mut errors = Vec::new();
        let start = Instant::now();
        while h.load(Ordering::SeqCst) < N && start.elapsed() < BOUND {
            if let Err(e) = s.run(LoopFlags::ONCE | LoopFlags::NONBLOCK) {
                errors.push(e.to_string());
            }
        }
        errors
    })
    .join()
    .unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(hits.load(Ordering::SeqCst), N);
    for ev in evs.into_iter().chain([e0]) {
        sb.free(ev).unwrap();
    }
    drop((x0, y0, pairs));
}

#[test]
fn regular_files_and_directories_are_refused_as_on_epoll() {
    let _w = watchdog_here(WATCHDOG_BOUND);
    // A poll of one is always ready: an edge-triggered poll would be re-armed forever.
    let dir = std::env::temp_dir();
    let path = dir.join(format!("evrs-io-uring-regular-{}", std::process::id()));
    let f = std::fs::File::create(&path).unwrap();
    let d = std::fs::File::open(&dir).unwrap();
    for m in [Method::Epoll, Method::IoUring] {
        let mut b = base(m);
        for raw in [
            std::os::fd::AsRawFd::as_raw_fd(&f),
            std::os::fd::AsRawFd::as_raw_fd(&d),
        ] {
            let ev = b
                .new_event(raw, What::WRITE | What::PERSIST | What::ET, |_, _, _| {})
                .unwrap();
            let e = b.add(ev, None).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{m}: {e}");
            b.free(ev).unwrap();
        }
    }
    drop(f);
    let _ = std::fs::remove_file(path);
}

#[test]
fn a_delete_outside_a_loop_on_a_thread_that_is_not_the_issuer_releases_the_file() {
    let _w = watchdog_here(WATCHDOG_BOUND);
    let sb = Arc::new(SharedBase::with_config(EventConfig::new().method(Method::IoUring)).unwrap());
    let (ours, mut peer) = pair();
    let ev = sb
        .new_event(fd(&ours), What::READ | What::PERSIST, |_, _, _| {})
        .unwrap();
    sb.add(ev, None).unwrap();
    let s = sb.clone();
    // The loop runs once on another thread (the ring's issuer), which then ends.
    std::thread::spawn(move || s.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap())
        .join()
        .unwrap();
    sb.free(ev).unwrap();
    drop(ours);
    assert_eof(&mut peer, "the socket was really closed");
}

/// The child half of [`a_fork_in_a_callback_leaves_the_parents_ring_alone`].
#[test]
fn fork_child() {
    if std::env::var_os("EVRS_IO_URING_FORK_CHILD").is_none() {
        return;
    }
    // One thread in this process (`--test-threads=1`), so the forked child may allocate.
    let mut b = base(Method::IoUring);
    let (ours, mut peer) = pair();
    let (c_ours, _c_peer) = pair();
    let cev = b
        .new_event(fd(&c_ours), What::READ | What::PERSIST, |_, _, _| {})
        .unwrap();
    b.add(cev, None).unwrap();
    b.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
    let ofd = fd(&ours);
    let made: Rc<Cell<Option<evrs::Event>>> = Rc::default();
    let m = made.clone();
    let t = b
        .new_timer(move |base, t, _| {
            // Pending at the fork: an edge-triggered add and a removal.
            let ev = base
                .new_event(ofd, What::READ | What::PERSIST | What::ET, |_, _, _| {})
                .unwrap();
            base.add(ev, None).unwrap();
            base.free(cev).unwrap();
            m.set(Some(ev));
            // SAFETY: this process has one thread; the child only re-initializes its base
            // and leaves with `_exit`.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                let code = if base.reinit().is_ok() { 0 } else { 1 };
                // SAFETY: ends the child without running the parent's destructors.
                unsafe { libc::_exit(code) };
            }
            let mut status = 0;
            // SAFETY: waits for the child just made.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            assert_eq!(status, 0, "the child's reinit");
            base.free(t).unwrap();
        })
        .unwrap();
    b.add(t, Some(Duration::from_millis(1))).unwrap();
    while made.get().is_none() {
        b.run(LoopFlags::ONCE).unwrap();
    }
    b.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
    b.free(made.take().unwrap()).unwrap();
    drop(ours);
    b.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
    // Had the child submitted into the shared ring, a second poll would hold the socket.
    assert_eof(&mut peer, "the socket was really closed");
    println!("FORK CHILD OK");
}

#[test]
fn a_fork_in_a_callback_leaves_the_parents_ring_alone() {
    let _w = watchdog_here(WATCHDOG_BOUND);
    run_child("fork_child", "EVRS_IO_URING_FORK_CHILD", "FORK CHILD OK");
}
