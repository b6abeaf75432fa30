//! Listeners (libevent's evconnlistener) on every backend, with real TCP on 127.0.0.1 and
//! ::1 and real Unix-domain sockets: accepting and peer addresses, enable/disable, freeing
//! from callbacks, stale handles, the socket options of the flags, and the rule that running
//! out of fds pauses the listener instead of spinning (measured in a child process whose fd
//! limit is lowered).
mod util;
use evrs::{EventBase, Listener, ListenerFlags, PeerAddr};
use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::time::{Duration, Instant};
use util::*;

fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn port_of(b: &EventBase, l: Listener) -> SocketAddr {
    b.listener_local_addr(l)
        .unwrap()
        .as_inet()
        .expect("an inet listener")
}

/// Runs the loop for `d` (a timer of our own ends it), then returns.
fn run_for(b: &mut EventBase, d: Duration) {
    let t = b.new_timer(|b, _ev, _w| b.loopbreak()).unwrap();
    b.add(t, Some(d)).unwrap();
    b.run(evrs::LoopFlags::NO_EXIT_ON_EMPTY).unwrap();
    b.free(t).unwrap();
}

/// Runs the loop until `done` holds (checked by a 1 ms persistent timer) or `bound` passes.
fn run_until(b: &mut EventBase, bound: Duration, done: impl Fn() -> bool + 'static) -> bool {
    let start = Instant::now();
    let t = b
        .new_event(-1, evrs::What::PERSIST, move |b, ev, _w| {
            if done() || start.elapsed() > bound {
                b.del(ev).unwrap();
                b.loopbreak();
            }
        })
        .unwrap();
    b.add(t, Some(Duration::from_millis(1))).unwrap();
    b.run(evrs::LoopFlags::NO_EXIT_ON_EMPTY).unwrap();
    b.free(t).unwrap();
    start.elapsed() <= bound
}

/// (st_dev, st_ino) of an open fd, or None if it is closed.
fn identity(fd: RawFd) -> Option<(u64, u64)> {
    // SAFETY: `st` is a valid, writable stat buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above; any fd number is acceptable to fstat.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return None;
    }
    Some((st.st_dev, st.st_ino))
}

fn fl(fd: RawFd) -> (i32, i32) {
    // SAFETY: F_GETFL/F_GETFD take no pointers.
    unsafe {
        (
            libc::fcntl(fd, libc::F_GETFL),
            libc::fcntl(fd, libc::F_GETFD),
        )
    }
}

fn sockopt(fd: RawFd, level: i32, name: i32) -> i32 {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `v` and `len` are live and sized for an int option.
    let r = unsafe { libc::getsockopt(fd, level, name, (&mut v as *mut i32).cast(), &mut len) };
    assert_eq!(r, 0, "getsockopt: {}", std::io::Error::last_os_error());
    v
}

fn temp_path(m: evrs::Method, name: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!(
        "evrs-listener-{}-{:?}-{name}.sock",
        std::process::id(),
        m
    ));
    let _ = std::fs::remove_file(&p);
    p
}

type Accepted = Rc<RefCell<Vec<(OwnedFd, PeerAddr)>>>;

/// An accept callback that keeps each connection and its peer address.
fn keep(acc: &Accepted) -> impl FnMut(&mut EventBase, Listener, OwnedFd, PeerAddr) + 'static {
    let acc = acc.clone();
    move |_b, _l, fd, peer| acc.borrow_mut().push((fd, peer))
}

// ----- The EMFILE test's child: a process of its own, whose fd limit it may lower ----------

const CHILD_ENV: &str = "EVRS_LISTENER_EMFILE_CHILD";
const CLIENTS: usize = 5;

fn cpu_time() -> Duration {
    // SAFETY: `ru` is a valid, writable rusage.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) }, 0);
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// In the child: fd limit 256, a listener, CLIENTS connections, then every fd used up, so
/// each accept fails with EMFILE. The loop runs 300 ms: its CPU time must be a small part
/// of it, the error callback must have seen EMFILE (a few times: once per pause), and once
/// fds are released the queued connections must be accepted.
fn emfile_child(m: evrs::Method) {
    let rl = libc::rlimit {
        rlim_cur: 256,
        rlim_max: 256,
    };
    // SAFETY: `rl` is a valid rlimit; this process is the child made for this test alone.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rl) }, 0);
    let mut b = base(m);
    let acc: Accepted = Rc::default();
    let l = b
        .listen(localhost(), ListenerFlags::CLOSE_ON_FREE, -1, keep(&acc))
        .unwrap();
    let errors = Rc::new(RefCell::new(Vec::new()));
    let errs = errors.clone();
    b.listener_set_error_cb(l, move |_b, _l, e| errs.borrow_mut().push(e.raw_os_error()))
        .unwrap();
    let addr = port_of(&b, l);
    let clients: Vec<TcpStream> = (0..CLIENTS)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    // Use up the fd table.
    let mut filler: Vec<OwnedFd> = Vec::new();
    let probe = clients[0].as_raw_fd();
    loop {
        // SAFETY: F_DUPFD_CLOEXEC takes no pointer; `probe` is open.
        let fd = unsafe { libc::fcntl(probe, libc::F_DUPFD_CLOEXEC, 0) };
        if fd < 0 {
            assert_eq!(
                std::io::Error::last_os_error().raw_os_error(),
                Some(libc::EMFILE)
            );
            break;
        }
        // SAFETY: `fd` was just made and is owned by nothing else.
        filler.push(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) });
        assert!(filler.len() < 300, "the fd limit did not take");
    }
    let (cpu0, t0) = (cpu_time(), Instant::now());
    run_for(&mut b, Duration::from_millis(300));
    let (cpu, wall) = (cpu_time() - cpu0, t0.elapsed());
    let pauses = errors.borrow().len();
    assert!(
        acc.borrow().is_empty(),
        "nothing can be accepted without fds"
    );
    assert!(pauses >= 1, "the error callback reported the EMFILE");
    assert!(
        errors.borrow().iter().all(|e| *e == Some(libc::EMFILE)),
        "{errors:?}"
    );
    // 10+20+40+80+160 ms of back-off fit in 300 ms: about 5 pauses, not 100,000s of tries.
    assert!(
        pauses <= 12,
        "{pauses} pauses in {wall:?}: the back-off does not grow"
    );
    assert!(
        cpu.as_secs_f64() < 0.2 * wall.as_secs_f64(),
        "the listener spun: {cpu:?} CPU in {wall:?}"
    );
    // Release fds: the queued connections are accepted after the current pause.
    filler.truncate(filler.len() - 2 * CLIENTS);
    let a = acc.clone();
    let accepted_in = Instant::now();
    assert!(
        run_until(&mut b, Duration::from_secs(5), move || a.borrow().len()
            == CLIENTS),
        "the pending connections were accepted after fds were freed"
    );
    println!(
        "EMFILE: {:?} CPU in {wall:?} ({:.1}%), {pauses} pauses reported, \
         {CLIENTS} connections accepted {:?} after fds were freed",
        cpu,
        100.0 * cpu.as_secs_f64() / wall.as_secs_f64(),
        accepted_in.elapsed()
    );
    assert!(b.listener_free(l).unwrap().is_none());
    drop(clients);
}

on_every_backend! {
    fn accepts_many_tcp_clients_with_their_addresses(m) {
        let mut b = base(m);
        let acc: Accepted = Rc::default();
        let l = b.listen(localhost(), ListenerFlags::CLOSE_ON_FREE, -1, keep(&acc)).unwrap();
        let addr = port_of(&b, l);
        assert_eq!(addr.ip(), localhost().ip());
        assert_ne!(addr.port(), 0, "port 0 picked a port");
        // More than one batch (16 per wakeup) queued at once.
        const N: usize = 40;
        let clients: Vec<TcpStream> = (0..N).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let a = acc.clone();
        assert!(run_until(&mut b, Duration::from_secs(10), move || a.borrow().len() == N));
        let want: HashSet<PeerAddr> =
            clients.iter().map(|c| PeerAddr::Inet(c.local_addr().unwrap())).collect();
        let got: HashSet<PeerAddr> = acc.borrow().iter().map(|(_, p)| p.clone()).collect();
        assert_eq!(got, want, "each peer address is the client's");
        // The accepted fds are the server ends of those connections.
        for (fd, _) in acc.borrow().iter() {
            let s = std::net::TcpStream::from(fd.try_clone().unwrap());
            (&s).write_all(b"x").unwrap();
        }
        for mut c in clients {
            let mut byte = [0u8; 1];
            c.read_exact(&mut byte).unwrap();
            assert_eq!(&byte, b"x");
        }
        assert!(b.listener_free(l).unwrap().is_none());
    }

    fn a_batch_accepts_at_most_sixteen(m) {
        let mut b = base(m);
        // Per loop iteration (counted by a check hook), how many were accepted.
        let iteration = Rc::new(Cell::new(0usize));
        let per_iter: Rc<RefCell<Vec<usize>>> = Rc::default();
        let it = iteration.clone();
        let check = b.new_check(move |_b, _ev, _w| it.set(it.get() + 1)).unwrap();
        b.add(check, None).unwrap();
        let (it, pi) = (iteration.clone(), per_iter.clone());
        let l = b
            .listen(localhost(), ListenerFlags::CLOSE_ON_FREE, -1, move |_b, _l, _fd, _p| {
                let mut v = pi.borrow_mut();
                let i = it.get();
                if v.len() <= i {
                    v.resize(i + 1, 0);
                }
                v[i] += 1;
            })
            .unwrap();
        let addr = port_of(&b, l);
        let _clients: Vec<TcpStream> =
            (0..40).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let pi = per_iter.clone();
        assert!(run_until(&mut b, Duration::from_secs(10), move || {
            pi.borrow().iter().sum::<usize>() == 40
        }));
        let v = per_iter.borrow().clone();
        assert!(v.iter().all(|&n| n <= 16), "per iteration: {v:?}");
        assert!(v.iter().filter(|&&n| n > 0).count() >= 3, "per iteration: {v:?}");
        b.free(check).unwrap();
        b.listener_free(l).unwrap();
    }

    fn accepts_unix_clients(m) {
        let path = temp_path(m, "accept");
        let mut b = base(m);
        let acc: Accepted = Rc::default();
        let l = b.listen_unix(&path, ListenerFlags::CLOSE_ON_FREE, 16, keep(&acc)).unwrap();
        assert_eq!(b.listener_local_addr(l).unwrap(), PeerAddr::Unix(Some(path.clone())));
        let clients: Vec<_> =
            (0..3).map(|_| std::os::unix::net::UnixStream::connect(&path).unwrap()).collect();
        let a = acc.clone();
        assert!(run_until(&mut b, Duration::from_secs(10), move || a.borrow().len() == 3));
        for (_, peer) in acc.borrow().iter() {
            assert_eq!(*peer, PeerAddr::Unix(None), "an unbound client is unnamed");
        }
        assert!(b.listener_free(l).unwrap().is_none());
        drop(clients);
        std::fs::remove_file(&path).unwrap();
    }

    fn accepts_ipv6_clients_where_available(m) {
        let mut b = base(m);
        let acc: Accepted = Rc::default();
        let flags = ListenerFlags::CLOSE_ON_FREE | ListenerFlags::BIND_IPV6ONLY;
        let l = match b.listen("[::1]:0".parse().unwrap(), flags, -1, keep(&acc)) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("SKIPPED accepts_ipv6_clients_where_available: no ::1 ({e})");
                return;
            }
        };
        let fd = b.listener_fd(l).unwrap();
        assert_eq!(sockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY), 1);
        let addr = port_of(&b, l);
        let c = TcpStream::connect(addr).unwrap();
        let a = acc.clone();
        assert!(run_until(&mut b, Duration::from_secs(10), move || a.borrow().len() == 1));
        assert_eq!(acc.borrow()[0].1, PeerAddr::Inet(c.local_addr().unwrap()));
        assert!(acc.borrow()[0].1.as_inet().unwrap().is_ipv6());
        b.listener_free(l).unwrap();
    }

    fn a_disabled_listener_accepts_nothing_until_enabled(m) {
        let mut b = base(m);
        let acc: Accepted = Rc::default();
        let flags = ListenerFlags::CLOSE_ON_FREE | ListenerFlags::DISABLED;
        let l = b.listen(localhost(), flags, -1, keep(&acc)).unwrap();
        let addr = port_of(&b, l);
        let _c: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
        assert!(b.dispatch().is_ok(), "a disabled listener keeps no loop alive");
        run_for(&mut b, Duration::from_millis(30));
        assert!(acc.borrow().is_empty(), "created disabled");
        b.listener_enable(l).unwrap();
        b.listener_enable(l).unwrap(); // twice is fine
        let a = acc.clone();
        assert!(run_until(&mut b, Duration::from_secs(10), move || a.borrow().len() == 3));
        // Disabled again from its own callback: the rest stays queued.
        let n = Rc::new(Cell::new(0));
        let n2 = n.clone();
        b.listener_set_cb(l, move |b, l, _fd, _p| {
            n2.set(n2.get() + 1);
            b.listener_disable(l).unwrap();
        })
        .unwrap();
        let _d: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
        run_for(&mut b, Duration::from_millis(50));
        assert_eq!(n.get(), 1, "the callback's disable ends the batch");
        b.listener_disable(l).unwrap();
        run_for(&mut b, Duration::from_millis(20));
        assert_eq!(n.get(), 1);
        b.listener_enable(l).unwrap();
        let n3 = n.clone();
        assert!(run_until(&mut b, Duration::from_secs(10), move || n3.get() == 2));
        b.listener_free(l).unwrap();
    }

    fn a_listener_frees_itself_from_its_callback(m) {
        let mut b = base(m);
        let calls = Rc::new(Cell::new(0));
        let c = calls.clone();
        let l = b
            .listen(localhost(), ListenerFlags::CLOSE_ON_FREE, -1, move |b, l, fd, _p| {
                c.set(c.get() + 1);
                assert!(b.listener_free(l).unwrap().is_none());
                assert!(b.listener_free(l).is_err(), "freed once");
                assert!(b.listener_enable(l).is_err());
                drop(fd);
            })
            .unwrap();
        let addr = port_of(&b, l);
        let _c: Vec<TcpStream> = (0..5).map(|_| TcpStream::connect(addr).unwrap()).collect();
        b.dispatch().unwrap(); // returns: the listener freed itself
        assert_eq!(calls.get(), 1, "the rest of the batch is not run");
        assert!(TcpStream::connect(addr).is_err(), "the socket is closed");
    }

    fn a_listener_is_freed_from_other_callbacks(m) {
        let mut b = base(m);
        let acc: Accepted = Rc::default();
        let victim = b.listen(localhost(), ListenerFlags::CLOSE_ON_FREE, -1, keep(&acc)).unwrap();
        // Freed by another listener's callback, right when both have connections.
        let freed = Rc::new(Cell::new(false));
        let f = freed.clone();
        let killer = b
            .listen(localhost(), ListenerFlags::CLOSE_ON_FREE, -1, move |b, l, _fd, _p| {
                if !f.replace(true) {
                    b.listener_free(victim).unwrap();
                }
                b.listener_free(l).unwrap();
            })
            .unwrap();
        let (va, ka) = (port_of(&b, victim), port_of(&b, killer));
        let _v = TcpStream::connect(va).unwrap();
        let _k = TcpStream::connect(ka).unwrap();
        b.dispatch().unwrap();
        assert!(freed.get());
        assert!(acc.borrow().len() <= 1);
        // And from a timer.
        let l = b.listen(localhost(), ListenerFlags::CLOSE_ON_FREE, -1, keep(&acc)).unwrap();
        let t = b.new_timer(move |b, _ev, _w| b.listener_free(l).map(drop).unwrap()).unwrap();
        b.add(t, Some(Duration::from_millis(5))).unwrap();
        b.dispatch().unwrap();
        assert!(b.listener_fd(l).is_err());
        b.free(t).unwrap();
    }

    fn stale_and_foreign_handles_are_refused(m) {
        let mut b = base(m);
        let l = b.listen(localhost(), ListenerFlags::CLOSE_ON_FREE, -1, |_, _, _, _| {}).unwrap();
        let mut other = base(m);
        assert!(other.listener_enable(l).is_err(), "a handle of another base");
        assert!(other.listener_free(l).is_err());
        assert!(other.listener_fd(l).is_err());
        b.listener_free(l).unwrap();
        // A new listener may take the slot: the old handle stays stale.
        let l2 = b.listen(localhost(), ListenerFlags::CLOSE_ON_FREE, -1, |_, _, _, _| {}).unwrap();
        assert_ne!(l, l2);
        let e = b.listener_enable(l).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("stale"), "{e}");
        assert!(b.listener_disable(l).is_err());
        assert!(b.listener_free(l).is_err());
        assert!(b.listener_fd(l).is_err());
        assert!(b.listener_local_addr(l).is_err());
        assert!(b.listener_set_cb(l, |_, _, _, _| {}).is_err());
        assert!(b.listener_set_error_cb(l, |_, _, _| {}).is_err());
        assert!(b.listener_fd(l2).is_ok(), "the new one is untouched");
        b.listener_free(l2).unwrap();
    }

    fn close_on_free_closes_and_its_absence_hands_the_socket_back(m) {
        let mut b = base(m);
        let l = b.listen(localhost(), ListenerFlags::CLOSE_ON_FREE, -1, |_, _, _, _| {}).unwrap();
        let (fd, addr) = (b.listener_fd(l).unwrap(), port_of(&b, l));
        let id = identity(fd).unwrap();
        assert!(b.listener_free(l).unwrap().is_none());
        // Closed: the number is free (or, reused by a parallel test, names another file).
        assert_ne!(identity(fd), Some(id), "CLOSE_ON_FREE closed the socket");
        assert!(TcpStream::connect(addr).is_err());

        let l = b.listen(localhost(), ListenerFlags::empty(), -1, |_, _, _, _| {}).unwrap();
        let (fd, addr) = (b.listener_fd(l).unwrap(), port_of(&b, l));
        let id = identity(fd).unwrap();
        let back = b.listener_free(l).unwrap().expect("the socket is handed back");
        assert_eq!(back.as_raw_fd(), fd);
        assert_eq!(identity(fd), Some(id), "still open");
        assert!(fl(fd).1 >= 0);
        let _c = TcpStream::connect(addr).expect("still listening");
        drop(back);
        assert_ne!(identity(fd), Some(id));

        // listener_from_fd: the same, for a socket the caller made.
        let std_l = std::net::TcpListener::bind(localhost()).unwrap();
        let addr = std_l.local_addr().unwrap();
        let fd = std_l.as_raw_fd();
        let l = b.listener_from_fd(OwnedFd::from(std_l), ListenerFlags::empty(), 0, |_, _, _, _| {})
            .unwrap();
        assert_eq!(b.listener_fd(l).unwrap(), fd);
        let back = b.listener_free(l).unwrap().unwrap();
        let again = b.listener_from_fd(back, ListenerFlags::CLOSE_ON_FREE, 0, |_, _, _, _| {})
            .unwrap();
        let _c = TcpStream::connect(addr).unwrap();
        assert!(b.listener_free(again).unwrap().is_none());
    }

    fn listener_from_fd_listens_or_checks(m) {
        let mut b = base(m);
        let bound = || {
            let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                .unwrap();
            s.bind(&localhost().into()).unwrap();
            s
        };
        let not_listening = bound();
        let e = b
            .listener_from_fd(OwnedFd::from(not_listening), ListenerFlags::CLOSE_ON_FREE, 0,
                |_, _, _, _| {})
            .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}");
        // Unless told to take it as it is (libevent's way): the failed accept then reaches
        // the error callback.
        let (x, y) = std::os::unix::net::UnixStream::pair().unwrap();
        (&y).write_all(b"x").unwrap();
        let l = b
            .listener_from_fd(OwnedFd::from(x), ListenerFlags::UNCHECKED_BACKLOG_0, 0,
                |_, _, _, _| {})
            .unwrap();
        let errs = Rc::new(Cell::new(0));
        let e2 = errs.clone();
        b.listener_set_error_cb(l, move |_, _, _| e2.set(e2.get() + 1)).unwrap();
        let e3 = errs.clone();
        assert!(run_until(&mut b, Duration::from_secs(10), move || e3.get() > 0));
        b.listener_free(l).unwrap();
        let s = bound();
        let acc: Accepted = Rc::default();
        let flags = ListenerFlags::CLOSE_ON_FREE | ListenerFlags::CLOSE_ON_EXEC;
        let l = b.listener_from_fd(OwnedFd::from(s), flags, 4, keep(&acc)).unwrap();
        let fd = b.listener_fd(l).unwrap();
        assert_ne!(fl(fd).0 & libc::O_NONBLOCK, 0, "made non-blocking");
        assert_ne!(fl(fd).1 & libc::FD_CLOEXEC, 0);
        let _c = TcpStream::connect(port_of(&b, l)).unwrap();
        let a = acc.clone();
        assert!(run_until(&mut b, Duration::from_secs(10), move || a.borrow().len() == 1));
        b.listener_free(l).unwrap();
        assert!(b.listen(localhost(), ListenerFlags::empty(), 0, |_, _, _, _| {}).is_err(),
            "listen with backlog 0 is refused, as evconnlistener_new_bind does");
    }

    fn accepted_sockets_are_nonblocking_unless_left_blocking(m) {
        for (flags, nonblocking) in [
            (ListenerFlags::CLOSE_ON_FREE, true),
            (ListenerFlags::CLOSE_ON_FREE | ListenerFlags::LEAVE_SOCKETS_BLOCKING, false),
        ] {
            let mut b = base(m);
            let acc: Accepted = Rc::default();
            let l = b.listen(localhost(), flags, -1, keep(&acc)).unwrap();
            let _c = TcpStream::connect(port_of(&b, l)).unwrap();
            let a = acc.clone();
            assert!(run_until(&mut b, Duration::from_secs(10), move || a.borrow().len() == 1));
            let (flags_fl, fd_fl) = fl(acc.borrow()[0].0.as_raw_fd());
            assert_eq!(flags_fl & libc::O_NONBLOCK != 0, nonblocking, "{flags:?}");
            assert_ne!(fd_fl & libc::FD_CLOEXEC, 0, "accepted sockets are close-on-exec");
            b.listener_free(l).unwrap();
        }
    }

    fn reuseable_rebinds_a_port_in_time_wait(m) {
        let mut b = base(m);
        let plain = b.listen(localhost(), ListenerFlags::CLOSE_ON_FREE, -1, |_, _, _, _| {}).unwrap();
        let fd = b.listener_fd(plain).unwrap();
        assert_eq!(sockopt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR), 0);
        assert_eq!(sockopt(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE), 1, "as libevent");
        b.listener_free(plain).unwrap();

        let flags = ListenerFlags::CLOSE_ON_FREE | ListenerFlags::REUSEABLE;
        let acc: Accepted = Rc::default();
        let l = b.listen(localhost(), flags, -1, keep(&acc)).unwrap();
        assert_eq!(sockopt(b.listener_fd(l).unwrap(), libc::SOL_SOCKET, libc::SO_REUSEADDR), 1);
        let addr = port_of(&b, l);
        let mut c = TcpStream::connect(addr).unwrap();
        let a = acc.clone();
        assert!(run_until(&mut b, Duration::from_secs(10), move || a.borrow().len() == 1));
        // The server closes first: its end of the connection goes to TIME_WAIT.
        acc.borrow_mut().clear();
        let mut buf = [0u8; 1];
        assert_eq!(c.read(&mut buf).unwrap(), 0);
        drop(c);
        b.listener_free(l).unwrap();
        std::thread::sleep(Duration::from_millis(10));
        let l = b.listen(addr, flags, -1, |_, _, _, _| {}).expect("rebound with REUSEABLE");
        assert_eq!(port_of(&b, l), addr);
        b.listener_free(l).unwrap();
    }

    fn reuseable_port_and_deferred_accept(m) {
        let mut b = base(m);
        let flags = ListenerFlags::CLOSE_ON_FREE | ListenerFlags::REUSEABLE_PORT;
        let one = b.listen(localhost(), flags, -1, |_, _, _, _| {}).unwrap();
        let addr = port_of(&b, one);
        let two = b.listen(addr, flags, -1, |_, _, _, _| {}).expect("SO_REUSEPORT: same port");
        assert_eq!(sockopt(b.listener_fd(two).unwrap(), libc::SOL_SOCKET, libc::SO_REUSEPORT), 1);
        b.listener_free(one).unwrap();
        b.listener_free(two).unwrap();

        let acc: Accepted = Rc::default();
        let flags = ListenerFlags::CLOSE_ON_FREE | ListenerFlags::DEFERRED_ACCEPT;
        let l = b.listen(localhost(), flags, -1, keep(&acc)).unwrap();
        assert!(sockopt(b.listener_fd(l).unwrap(), libc::IPPROTO_TCP, libc::TCP_DEFER_ACCEPT) > 0);
        let addr = port_of(&b, l);
        let _silent = TcpStream::connect(addr).unwrap();
        run_for(&mut b, Duration::from_millis(50));
        assert!(acc.borrow().is_empty(), "a client that has sent nothing is not reported");
        let mut talker = TcpStream::connect(addr).unwrap();
        talker.write_all(b"hi").unwrap();
        let a = acc.clone();
        assert!(run_until(&mut b, Duration::from_secs(10), move || a.borrow().len() == 1));
        b.listener_free(l).unwrap();
    }

    fn set_cb_from_the_callback_takes_effect_next(m) {
        let mut b = base(m);
        let log = log();
        let lg = log.clone();
        let l = b
            .listen(localhost(), ListenerFlags::CLOSE_ON_FREE, -1, move |b, l, _fd, _p| {
                lg.borrow_mut().push("first".into());
                let lg2 = lg.clone();
                b.listener_set_cb(l, move |b, l, _fd, _p| {
                    lg2.borrow_mut().push("second".into());
                    b.listener_free(l).unwrap();
                })
                .unwrap();
            })
            .unwrap();
        let addr = port_of(&b, l);
        let _c: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
        b.dispatch().unwrap();
        assert_eq!(entries(&log), ["first", "second"]);
    }

    fn a_panicking_accept_callback_leaves_the_base_usable(m) {
        let mut b = base(m);
        let l = b
            .listen(localhost(), ListenerFlags::CLOSE_ON_FREE, -1, |_b, _l, _fd, _p| {
                panic!("boom in the accept callback")
            })
            .unwrap();
        let _c = TcpStream::connect(port_of(&b, l)).unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| b.dispatch()));
        assert!(r.is_err(), "the panic unwinds out of the loop");
        b.verify().unwrap();
        // The listener can still be configured and freed; nothing stays registered.
        let _ = b.listener_enable(l);
        b.listener_set_cb(l, |_, _, _, _| {}).unwrap();
        assert!(b.listener_free(l).unwrap().is_none());
    }

    fn dropping_the_base_closes_only_close_on_free_sockets(m) {
        let mut b = base(m);
        let closing = b.listen(localhost(), ListenerFlags::CLOSE_ON_FREE, -1, |_, _, _, _| {})
            .unwrap();
        let kept = b.listen(localhost(), ListenerFlags::empty(), -1, |_, _, _, _| {}).unwrap();
        let (cfd, kfd) = (b.listener_fd(closing).unwrap(), b.listener_fd(kept).unwrap());
        let (cid, kid) = (identity(cfd).unwrap(), identity(kfd).unwrap());
        assert_ne!(fl(cfd).1 & libc::FD_CLOEXEC, 0, "listen's socket is close-on-exec");
        b.leave_registered("the listeners' read events: dropping the base frees them");
        assert_ne!(identity(cfd), Some(cid), "closed with the base");
        assert_eq!(identity(kfd), Some(kid), "left open, as libevent does");
        // SAFETY: the fd is ours now (the base let go of it) and closed once.
        drop(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(kfd) });
    }

    fn running_out_of_fds_pauses_instead_of_spinning(m) {
        if std::env::var_os(CHILD_ENV).is_some() {
            return emfile_child(m);
        }
        // The parent: runs this very test in a child process of its own, whose fd limit
        // the child lowers (this process's limit is shared by the tests running in parallel).
        let name = std::thread::current().name().unwrap().to_string();
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([name.as_str(), "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
        assert!(stdout.contains("1 passed"), "the child ran the test:\n{stdout}");
        let line = stdout
            .lines()
            .find_map(|l| l.find("EMFILE:").map(|i| &l[i..]))
            .expect("the child's report");
        // Past the harness's capture: the measurement shows in a passing run.
        let _ = writeln!(std::io::stderr().lock(), "{name}: {line}");
    }
}
