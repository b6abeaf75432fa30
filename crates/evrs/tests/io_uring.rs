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
        peer.set_read_timeout(Some(BOUND)).unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(peer.read(&mut buf).unwrap(), 0, "inside a loop: {inside}");
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
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "seccomp_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("EVRS_IO_URING_SECCOMP_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("SECCOMP CHILD OK"),
        "child: {:?}\n{stdout}\n{}",
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
