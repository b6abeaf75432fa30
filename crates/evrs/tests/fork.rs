//! Fork re-init on every backend: the child gets its own backend, signal pipe and notify fd,
//! with timers, signals and I/O still working; the parent's loop is unaffected.
mod util;
use evrs::{LoopFlags, What};
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;
use util::*;

/// Runs `child` in a forked process and returns its exit code.
fn in_child(child: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child runs only `child` (no locks held by other threads are taken: it uses
    // its own base, raw fds and the allocator, which is fork-safe) and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(99);
        // SAFETY: ends the child without running the parent's atexit handlers.
        unsafe { libc::_exit(code) };
    }
    // Reap it, polling: a child stuck in its loop is killed and fails the test instead of
    // hanging it.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut status = 0;
    loop {
        // SAFETY: polls our own child with a valid status pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        assert!(r >= 0, "waitpid: {}", std::io::Error::last_os_error());
        if r == pid {
            break;
        }
        if std::time::Instant::now() > deadline {
            // SAFETY: kill and reap our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            panic!("the forked child did not exit within 30 s (killed)");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(
        libc::WIFEXITED(status),
        "child did not exit normally: {status}"
    );
    libc::WEXITSTATUS(status)
}

on_every_backend! {
    fn shared_base_reinit_in_child(m) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let b = shared(m);
        let (x, y) = pair();
        let reads = Arc::new(AtomicUsize::new(0));
        let r = reads.clone();
        let io = b
            .new_event(fd(&y), What::READ | What::PERSIST, move |_, _, _| {
                if !read_all(&y).is_empty() {
                    r.fetch_add(1, Ordering::SeqCst);
                }
            })
            .unwrap();
        b.add(io, None).unwrap();
        let fired = Arc::new(AtomicUsize::new(0));
        let f = fired.clone();
        let timer = b.new_timer(move |_, _, _| { f.fetch_add(1, Ordering::SeqCst); }).unwrap();
        b.add(timer, Some(Duration::from_millis(10))).unwrap();

        let code = in_child(|| {
            if b.reinit().is_err() { return 1; }
            write(&x, b"child");
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while (reads.load(Ordering::SeqCst) == 0 || fired.load(Ordering::SeqCst) == 0)
                && std::time::Instant::now() < deadline
            {
                if b.run(LoopFlags::ONCE).is_err() { return 2; }
            }
            if reads.load(Ordering::SeqCst) != 1 { return 3; }
            if fired.load(Ordering::SeqCst) != 1 { return 4; }
            0
        });
        assert_eq!(code, 0, "child failed at step {code}");
        // The parent's base is untouched by the child's reinit.
        assert_eq!(reads.load(Ordering::SeqCst), 0);
        write(&x, b"parent");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while (reads.load(Ordering::SeqCst) == 0 || fired.load(Ordering::SeqCst) == 0)
            && std::time::Instant::now() < deadline
        {
            b.run(LoopFlags::ONCE).unwrap();
        }
        assert_eq!((reads.load(Ordering::SeqCst), fired.load(Ordering::SeqCst)), (1, 1));
        b.free(io).unwrap();
    }

    fn reinit_gives_the_child_its_own_eventfd_and_closes_the_inherited_one(m) {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let mut b = base(m);
        let h = b.handle().unwrap();
        let fd_of = |h: &evrs::Handle| -> i32 {
            let s = format!("{h:?}");
            s.split("fd: ").nth(1).unwrap().trim_end_matches([' ', '}']).parse().unwrap()
        };
        let inherited = fd_of(&h);
        let code = in_child(|| {
            if b.reinit().is_err() { return 1; }
            let own = fd_of(&h);
            if own == inherited { return 2; }
            // SAFETY: fcntl(F_GETFD) takes no pointers.
            if unsafe { libc::fcntl(inherited, libc::F_GETFD) } != -1 { return 3; }
            // The child's loop is woken through its own eventfd.
            if h.wake().is_err() { return 4; }
            let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let r = ran.clone();
            if h.run_in_loop(move |_| r.store(true, std::sync::atomic::Ordering::SeqCst)).is_err() { return 5; }
            if b.run(LoopFlags::NONBLOCK).is_err() { return 6; }
            if !ran.load(std::sync::atomic::Ordering::SeqCst) { return 7; }
            0
        });
        assert_eq!(code, 0, "child failed at step {code}");
        // The parent's eventfd is untouched.
        assert_eq!(fd_of(&h), inherited);
        // SAFETY: fcntl(F_GETFD) takes no pointers.
        assert_ne!(unsafe { libc::fcntl(inherited, libc::F_GETFD) }, -1);
    }

    fn reinit_in_child_keeps_events_and_parent_unaffected(m) {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let mut b = base(m);
        let (x, y) = pair();
        let reads = Rc::new(Cell::new(0));
        let r = reads.clone();
        let yfd = fd(&y);
        let io = b.new_event(yfd, What::READ | What::PERSIST, move |_, _, _| {
            if !read_all(&y).is_empty() {
                r.set(r.get() + 1);
            }
        }).unwrap();
        b.add(io, None).unwrap();
        let sigs = Rc::new(Cell::new(0));
        let s = sigs.clone();
        let sig = b.new_signal(libc::SIGUSR1, move |_, _, _| s.set(s.get() + 1)).unwrap();
        b.add(sig, None).unwrap();
        let notifier = b.handle().unwrap();
        let timer_fired = Rc::new(Cell::new(false));
        let t = timer_fired.clone();
        let timer = b.new_timer(move |_, _, _| t.set(true)).unwrap();
        b.add(timer, Some(Duration::from_millis(20))).unwrap();

        let code = in_child(|| {
            if b.reinit().is_err() { return 1; }
            // Signal to ourselves: delivered to the child's new pipe.
            // SAFETY: raise takes no pointers; the handler is installed.
            unsafe { libc::raise(libc::SIGUSR1) };
            notifier.wake().unwrap();
            write(&x, b"child");
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while (sigs.get() == 0 || reads.get() == 0 || !timer_fired.get())
                && std::time::Instant::now() < deadline
            {
                if b.run(LoopFlags::ONCE).is_err() { return 2; }
            }
            if sigs.get() != 1 { return 3; }
            if reads.get() != 1 { return 4; }
            if !timer_fired.get() { return 5; }
            0
        });
        assert_eq!(code, 0, "child failed at step {code}");

        // Parent: its registrations survived the child's reinit.
        assert_eq!(reads.get(), 0);
        write(&x, b"parent");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while (reads.get() == 0 || !timer_fired.get()) && std::time::Instant::now() < deadline {
            b.run(LoopFlags::ONCE).unwrap();
        }
        assert_eq!(reads.get(), 1);
        assert!(timer_fired.get());
        // SAFETY: as above.
        unsafe { libc::raise(libc::SIGUSR1) };
        b.run(LoopFlags::ONCE).unwrap();
        assert_eq!(sigs.get(), 1, "the parent still receives its signals");
        b.free(sig).unwrap();
        b.free(io).unwrap();
    }
}

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
