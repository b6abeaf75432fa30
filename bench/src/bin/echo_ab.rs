//! In-process A/B of a TCP echo server over bufferevents (issue 15): N connections to one
//! single-threaded server, 64-byte messages ping-ponged. The servers (evrs bufferevent,
//! libevent bufferevent, a raw epoll loop — the floor — and tokio `current_thread`) live in
//! this process, each on its own listening socket on 127.0.0.1:0, and take turns run by run
//! as in `pipechain_ab` (the order rotating every round, the build order every epoch). Each
//! run is timed by this (the server) thread's CPU clock (`CLOCK_THREAD_CPUTIME_ID`: user +
//! kernel time of the server's own work, unaffected by being descheduled on this noisy VM).
//!
//! The client is a child process (this binary, `--client`) running a raw epoll loop, the
//! same for every server: it sends one 64-byte message per connection, and each echo
//! received sends the next on that connection until the run's M round trips are done; it
//! then says `done` on its stdout, a pipe every server watches as its stop fd. A separate
//! process because RLIMIT_NOFILE (20,000 here, and the hard limit cannot be raised) counts
//! both ends of every connection when they are in one process: 10,000 connections would not
//! fit. With the client outside, the server side needs N fds per server built; sizes where
//! all servers fit take turns by round, sizes where only fewer fit build them in groups
//! (at N = 10,000: one at a time, each for its share of the rounds), and sizes where not
//! even one fits are skipped (printed).
//!
//! Idle memory: around each build the heap is measured (`mallinfo2`: every allocation of
//! this process goes through glibc malloc — Rust's through the `System` allocator — so C and
//! Rust are counted alike, malloc headers included), after accepting the N connections and
//! again after one echo on each; a counting global allocator adds the bytes Rust asked for
//! and, for evrs, which allocation sizes the connections hold.
//!
//! `cargo run --release -p evrs-bench --bin echo_ab [ROUNDS] [n,n,..] [server,server,..]`
//! (default 12 rounds, n = 100,1000,10000, every server); `echo_ab --quick` is a smoke run
//! (10 connections, a few hundred round trips).

use evrs::bufferevent::{BevCtx, BevEvents, BevHandler, BevOptions};
use evrs::{EventBase, EventConfig, LoopFlags, Method, What};
use evrs_bench::common::raise_nofile;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashSet;
use std::io::{self, BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};

const MSG: usize = 64;
/// Untimed runs at the start of every epoch.
const WARMUP: usize = 2;

// ---------------------------------------------------------------------------------------
// Counting allocator (on only while a build is measured).

struct Counting;

static COUNT_ON: AtomicBool = AtomicBool::new(false);
static NET_BYTES: AtomicIsize = AtomicIsize::new(0);
static NET_ALLOCS: AtomicIsize = AtomicIsize::new(0);
/// Net live allocations by size, in 16-byte classes up to 4 KiB (the last class: larger).
const CLASSES: usize = 257;
static BY_SIZE: [AtomicIsize; CLASSES] = [const { AtomicIsize::new(0) }; CLASSES];

fn class(size: usize) -> usize {
    size.div_ceil(16).min(CLASSES - 1)
}

fn note(size: usize, sign: isize) {
    if COUNT_ON.load(Ordering::Relaxed) {
        NET_BYTES.fetch_add(sign * size as isize, Ordering::Relaxed);
        NET_ALLOCS.fetch_add(sign, Ordering::Relaxed);
        BY_SIZE[class(size)].fetch_add(sign, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to the system allocator unchanged; the counting only
// touches atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size(), 1);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size(), 1);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(layout.size(), -1);
        note(new_size, 1);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note(layout.size(), -1);
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Heap in use per glibc (small chunks + mmapped ones), bytes.
fn malloc_in_use() -> i64 {
    // SAFETY: mallinfo2 only reads the allocator's statistics.
    let m = unsafe { libc::mallinfo2() };
    (m.uordblks + m.hblkhd) as i64
}

/// A heap snapshot: glibc's in-use bytes, and the counting allocator's net bytes, count and
/// size classes.
#[derive(Clone)]
struct Heap {
    malloc: i64,
    bytes: isize,
    allocs: isize,
    by_size: Vec<isize>,
}

impl Heap {
    fn now() -> Heap {
        Heap {
            malloc: malloc_in_use(),
            bytes: NET_BYTES.load(Ordering::Relaxed),
            allocs: NET_ALLOCS.load(Ordering::Relaxed),
            by_size: BY_SIZE.iter().map(|a| a.load(Ordering::Relaxed)).collect(),
        }
    }
}

/// What N connections added to the heap, per connection.
#[derive(Clone)]
struct MemSample {
    /// glibc bytes per connection: accepted (no data yet), then after one echo each.
    accepted: f64,
    echoed: f64,
    /// glibc bytes per connection freed when the server was dropped after all its runs
    /// (less the empty server's own): what an idle connection holds after steady traffic.
    after_runs: f64,
    /// Rust-requested bytes and live allocations per connection after the echo.
    rust_bytes: f64,
    rust_allocs: f64,
    /// Net live allocations by size class after the echo, per connection.
    by_size: Vec<f64>,
    /// Rust bytes per connection in allocations above 4 KiB (the tables' arrays).
    big_bytes: f64,
    /// The empty server's heap (subtracted from `after_runs`).
    empty: i64,
}

// ---------------------------------------------------------------------------------------
// Clocks and small syscall helpers.

fn clock(id: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(id, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Whether `fd` is readable right now.
fn readable_now(fd: RawFd) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd; timeout 0.
    unsafe { libc::poll(&mut p, 1, 0) == 1 }
}

/// Accepts one connection (non-blocking, close-on-exec), `None` when there is none.
fn accept(lfd: RawFd) -> io::Result<Option<RawFd>> {
    // SAFETY: plain accept4 with no address out-parameters.
    let fd = unsafe {
        libc::accept4(
            lfd,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        )
    };
    if fd >= 0 {
        return Ok(Some(fd));
    }
    let e = io::Error::last_os_error();
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
        // Aborted before accepted: not ours to count.
        _ if e.raw_os_error() == Some(libc::ECONNABORTED) => Ok(None),
        _ => Err(e),
    }
}

/// A non-blocking listener on 127.0.0.1:0 with a deep backlog (the client connects faster
/// than a server that is not running yet accepts).
fn listener() -> io::Result<TcpListener> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    l.set_nonblocking(true)?;
    // SAFETY: re-listening on a listening socket only changes its backlog.
    cvt(unsafe { libc::listen(l.as_raw_fd(), 4096) })?;
    Ok(l)
}

fn epoll_add(ep: RawFd, fd: RawFd, data: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: data,
    };
    // SAFETY: `ev` is valid; the kernel copies it.
    cvt(unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) }).map(drop)
}

fn epoll_new() -> io::Result<OwnedFd> {
    // SAFETY: epoll_create1 returns a new fd or -1.
    let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
    // SAFETY: `fd` is ours.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

// ---------------------------------------------------------------------------------------
// The servers.

trait Server {
    /// Runs the loop until `total` connections have been accepted since the start.
    fn accept_until(&mut self, total: usize) -> io::Result<()>;
    /// Echoes until the stop fd is readable.
    fn serve(&mut self) -> io::Result<()>;
}

/// evrs: the listener is a plain READ event; a socket bufferevent per connection whose
/// handler moves the input to the output.
struct EvrsEcho {
    base: EventBase,
    accepted: Rc<Cell<usize>>,
    // After `base`: its events name this fd.
    _listener: TcpListener,
}

struct Echo;

impl BevHandler for Echo {
    fn read(&mut self, bev: &mut BevCtx<'_>) {
        let (input, output) = bev.buffers();
        let _ = output.add_buffer(input);
    }
    fn event(&mut self, bev: &mut BevCtx<'_>, what: BevEvents) {
        if what.intersects(BevEvents::EOF | BevEvents::ERROR) {
            bev.free();
        }
    }
}

impl EvrsEcho {
    fn new(l: TcpListener, stop_fd: RawFd) -> io::Result<EvrsEcho> {
        let mut base = EventConfig::new().method(Method::Epoll).build()?;
        let accepted = Rc::new(Cell::new(0));
        let (lfd, count) = (l.as_raw_fd(), accepted.clone());
        let ev = base.new_event(lfd, What::READ | What::PERSIST, move |base, _, _| {
            while let Ok(Some(fd)) = accept(lfd) {
                let made = base
                    .bufferevent_socket(fd, BevOptions::CLOSE_ON_FREE)
                    .and_then(|bev| {
                        base.bev_set_handler(bev, Echo)?;
                        base.bev_enable(bev, What::READ | What::WRITE)
                    });
                match made {
                    Ok(()) => count.set(count.get() + 1),
                    Err(e) => eprintln!("evrs: bufferevent: {e}"),
                }
            }
        })?;
        base.add(ev, None)?;
        let stop = base.new_event(stop_fd, What::READ | What::PERSIST, |base, _, _| {
            base.loopbreak();
        })?;
        base.add(stop, None)?;
        Ok(EvrsEcho {
            base,
            accepted,
            _listener: l,
        })
    }
}

impl Server for EvrsEcho {
    fn accept_until(&mut self, total: usize) -> io::Result<()> {
        while self.accepted.get() < total {
            self.base.run(LoopFlags::ONCE)?;
        }
        Ok(())
    }
    fn serve(&mut self) -> io::Result<()> {
        self.base.dispatch().map(drop)
    }
}

/// The floor: level-triggered epoll, one read per readiness, the bytes written straight back.
struct RawEcho {
    ep: OwnedFd,
    listener: TcpListener,
    stop_fd: RawFd,
    conns: HashSet<RawFd>,
    accepted: usize,
    events: Vec<libc::epoll_event>,
}

impl RawEcho {
    fn new(l: TcpListener, stop_fd: RawFd) -> io::Result<RawEcho> {
        let ep = epoll_new()?;
        epoll_add(ep.as_raw_fd(), l.as_raw_fd(), l.as_raw_fd() as u64)?;
        epoll_add(ep.as_raw_fd(), stop_fd, stop_fd as u64)?;
        Ok(RawEcho {
            ep,
            listener: l,
            stop_fd,
            conns: HashSet::new(),
            accepted: 0,
            events: vec![libc::epoll_event { events: 0, u64: 0 }; 1024],
        })
    }

    /// One epoll_wait and its events; true if the stop fd was among them.
    fn turn(&mut self) -> io::Result<bool> {
        // SAFETY: `events` is a valid buffer of its length.
        let n = unsafe {
            libc::epoll_wait(
                self.ep.as_raw_fd(),
                self.events.as_mut_ptr(),
                self.events.len() as i32,
                -1,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            };
        }
        let mut stop = false;
        let mut buf = [0u8; 4096];
        for k in 0..n as usize {
            let fd = self.events[k].u64 as RawFd;
            if fd == self.stop_fd {
                stop = true;
            } else if fd == self.listener.as_raw_fd() {
                while let Some(c) = accept(fd)? {
                    epoll_add(self.ep.as_raw_fd(), c, c as u64)?;
                    self.conns.insert(c);
                    self.accepted += 1;
                }
            } else {
                // SAFETY: `buf` is valid for its length.
                let r = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
                if r > 0 {
                    // SAFETY: the first `r` bytes of `buf` were just read.
                    let w = unsafe { libc::write(fd, buf.as_ptr().cast(), r as usize) };
                    if w != r {
                        return Err(io::Error::other("raw epoll: short write"));
                    }
                } else if r == 0 || io::Error::last_os_error().kind() != io::ErrorKind::WouldBlock {
                    self.conns.remove(&fd);
                    // SAFETY: the connection is ours; closing also leaves the epoll set.
                    unsafe { libc::close(fd) };
                }
            }
        }
        Ok(stop)
    }
}

impl Drop for RawEcho {
    fn drop(&mut self) {
        for &fd in &self.conns {
            // SAFETY: every fd in `conns` is an open connection we own.
            unsafe { libc::close(fd) };
        }
    }
}

impl Server for RawEcho {
    fn accept_until(&mut self, total: usize) -> io::Result<()> {
        while self.accepted < total {
            self.turn()?;
        }
        Ok(())
    }
    fn serve(&mut self) -> io::Result<()> {
        while !self.turn()? {}
        Ok(())
    }
}

/// tokio current_thread: a task per connection doing `read` + `write_all` with a 1 KiB
/// buffer (tokio's echo example).
struct TokioEcho {
    // Dropped first: cancels the connection tasks while the runtime still exists.
    local: tokio::task::LocalSet,
    listener: tokio::net::TcpListener,
    stop: tokio::io::unix::AsyncFd<StopFd>,
    accepted: usize,
    rt: tokio::runtime::Runtime,
}

struct StopFd(RawFd);

impl AsRawFd for StopFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

async fn tokio_echo(mut s: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = [0u8; 1024];
    loop {
        let n = match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if s.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

impl TokioEcho {
    fn new(l: TcpListener, stop_fd: RawFd) -> io::Result<TokioEcho> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        let _g = rt.enter();
        Ok(TokioEcho {
            local: tokio::task::LocalSet::new(),
            listener: tokio::net::TcpListener::from_std(l)?,
            // SAFETY: the client's stdout pipe outlives every server (the client is
            // dropped last), so the fd stays open while registered.
            stop: unsafe {
                tokio::io::unix::AsyncFd::register_with_interest(
                    StopFd(stop_fd),
                    tokio::io::Interest::READABLE,
                )
            }
            .map_err(io::Error::from)?,
            accepted: 0,
            rt,
        })
    }
}

impl Server for TokioEcho {
    fn accept_until(&mut self, total: usize) -> io::Result<()> {
        let mut accepted = self.accepted;
        let listener = &self.listener;
        let r = self.local.block_on(&self.rt, async {
            while accepted < total {
                let (s, _) = listener.accept().await?;
                tokio::task::spawn_local(tokio_echo(s));
                accepted += 1;
            }
            Ok(())
        });
        self.accepted = accepted;
        r
    }
    fn serve(&mut self) -> io::Result<()> {
        let stop = &self.stop;
        self.local.block_on(&self.rt, async {
            loop {
                let mut g = stop.readable().await?;
                // Readiness is edge-triggered and the pipe is drained by the caller: ask.
                if readable_now(stop.get_ref().0) {
                    return Ok(());
                }
                g.clear_ready();
            }
        })
    }
}

#[cfg(have_libevent)]
mod libevent {
    use std::ffi::c_int;
    use std::io;
    use std::net::TcpListener;
    use std::os::fd::{IntoRawFd, RawFd};

    #[link(name = "evrs_libevent_chain", kind = "static")]
    #[link(name = "event_core")]
    extern "C" {
        fn evrs_echo_libevent_new(listen_fd: c_int, stop_fd: c_int, cap: usize) -> c_int;
        fn evrs_echo_libevent_accept_until(total: usize) -> c_int;
        fn evrs_echo_libevent_serve() -> c_int;
        fn evrs_echo_libevent_free();
    }

    /// The C server (one at a time: it lives in C globals).
    pub struct Echo;

    impl Echo {
        pub fn new(l: TcpListener, stop_fd: RawFd, cap: usize) -> io::Result<Echo> {
            // SAFETY: one server at a time (the previous one was dropped); the C side takes
            // the listening fd.
            match unsafe { evrs_echo_libevent_new(l.into_raw_fd(), stop_fd, cap) } {
                0 => Ok(Echo),
                _ => Err(io::Error::other("libevent echo setup failed")),
            }
        }
    }

    impl Drop for Echo {
        fn drop(&mut self) {
            // SAFETY: frees what `new` built.
            unsafe { evrs_echo_libevent_free() }
        }
    }

    impl super::Server for Echo {
        fn accept_until(&mut self, total: usize) -> io::Result<()> {
            // SAFETY: the server was built by `new`.
            match unsafe { evrs_echo_libevent_accept_until(total) } {
                0 => Ok(()),
                _ => Err(io::Error::other("libevent accept loop failed")),
            }
        }
        fn serve(&mut self) -> io::Result<()> {
            // SAFETY: the server was built by `new`.
            match unsafe { evrs_echo_libevent_serve() } {
                0 => Ok(()),
                _ => Err(io::Error::other("libevent loop failed")),
            }
        }
    }
}

fn build(name: &str, l: TcpListener, stop_fd: RawFd, cap: usize) -> io::Result<Box<dyn Server>> {
    let _ = cap;
    Ok(match name {
        "evrs" => Box::new(EvrsEcho::new(l, stop_fd)?),
        "raw-epoll" => Box::new(RawEcho::new(l, stop_fd)?),
        "tokio" => Box::new(TokioEcho::new(l, stop_fd)?),
        #[cfg(have_libevent)]
        "libevent" => Box::new(libevent::Echo::new(l, stop_fd, cap)?),
        other => return Err(io::Error::other(format!("unknown server {other}"))),
    })
}

// ---------------------------------------------------------------------------------------
// The client (a child process): a raw epoll loop driven by commands on stdin.
//
//   connect ID PORT N   open N connections to 127.0.0.1:PORT      -> ok
//   run ID M            M round trips over ID's connections       -> done
//   close ID            close ID's connections                    -> ok

fn client_main() -> io::Result<()> {
    let ep = epoll_new()?;
    let mut conns: Vec<Vec<std::net::TcpStream>> = Vec::new();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let msg = [b'x'; MSG];
    let mut buf = [0u8; 4096];
    let mut out = io::stdout().lock();
    for line in io::stdin().lock().lines() {
        let line = line?;
        let w: Vec<&str> = line.split_whitespace().collect();
        let num = |i: usize| -> io::Result<usize> {
            w.get(i)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| io::Error::other(format!("bad command {line:?}")))
        };
        let id = num(1)?;
        if conns.len() <= id {
            conns.resize_with(id + 1, Vec::new);
        }
        match w[0] {
            "connect" => {
                let (port, n) = (num(2)? as u16, num(3)?);
                for i in 0..n {
                    let s = std::net::TcpStream::connect(("127.0.0.1", port))?;
                    s.set_nodelay(true)?;
                    s.set_nonblocking(true)?;
                    epoll_add(
                        ep.as_raw_fd(),
                        s.as_raw_fd(),
                        ((id as u64) << 32) | i as u64,
                    )?;
                    conns[id].push(s);
                }
                writeln!(out, "ok")?;
            }
            "run" => {
                let m = num(2)?;
                let c = &conns[id];
                let mut got = vec![0usize; c.len()];
                let mut sent = 0;
                for s in c.iter().take(m) {
                    send(s.as_raw_fd(), &msg)?;
                    sent += 1;
                }
                let mut done = 0;
                while done < m {
                    // SAFETY: `events` is a valid buffer of its length.
                    let n = unsafe {
                        libc::epoll_wait(
                            ep.as_raw_fd(),
                            events.as_mut_ptr(),
                            events.len() as i32,
                            -1,
                        )
                    };
                    if n < 0 {
                        let e = io::Error::last_os_error();
                        if e.kind() == io::ErrorKind::Interrupted {
                            continue;
                        }
                        return Err(e);
                    }
                    for ev in &events[..n as usize] {
                        let (eid, i) = ((ev.u64 >> 32) as usize, ev.u64 as u32 as usize);
                        let fd = conns[eid][i].as_raw_fd();
                        // SAFETY: `buf` is valid for its length.
                        let r = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
                        if r == 0 {
                            return Err(io::Error::other("client: server closed a connection"));
                        }
                        if r < 0 {
                            let e = io::Error::last_os_error();
                            if e.kind() == io::ErrorKind::WouldBlock {
                                continue;
                            }
                            return Err(e);
                        }
                        if eid != id {
                            return Err(io::Error::other("client: data from an idle server"));
                        }
                        got[i] += r as usize;
                        while got[i] >= MSG {
                            got[i] -= MSG;
                            done += 1;
                            if sent < m {
                                send(fd, &msg)?;
                                sent += 1;
                            }
                        }
                    }
                }
                writeln!(out, "done")?;
            }
            "close" => {
                conns[id].clear();
                writeln!(out, "ok")?;
            }
            _ => return Err(io::Error::other(format!("bad command {line:?}"))),
        }
        out.flush()?;
    }
    Ok(())
}

fn send(fd: RawFd, msg: &[u8]) -> io::Result<()> {
    // SAFETY: `msg` is valid for its length.
    let w = unsafe { libc::write(fd, msg.as_ptr().cast(), msg.len()) };
    if w as usize == msg.len() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "client: short write ({w}): {}",
            io::Error::last_os_error()
        )))
    }
}

/// The parent's end of the client.
struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    out: BufReader<ChildStdout>,
    fd: RawFd,
}

impl Client {
    fn spawn() -> io::Result<Client> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("--client")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped");
        let fd = stdout.as_raw_fd();
        Ok(Client {
            child,
            stdin,
            out: BufReader::new(stdout),
            fd,
        })
    }
    fn send(&mut self, cmd: &str) -> io::Result<()> {
        let s = self.stdin.as_mut().expect("client running");
        writeln!(s, "{cmd}")?;
        s.flush()
    }
    fn expect(&mut self, want: &str) -> io::Result<()> {
        let mut line = String::new();
        self.out.read_line(&mut line)?;
        if line.trim() == want {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "client said {line:?}, expected {want:?} (see its stderr)"
            )))
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// The A/B.

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[derive(Default)]
struct Stats {
    cpu_ns: Vec<f64>,
    wall_ns: Vec<f64>,
    mem: Vec<MemSample>,
}

/// Builds server `name` with `n` connections from the client (id `id`), measuring the heap
/// around it (accept, then one echo per connection).
fn setup(
    name: &str,
    id: usize,
    n: usize,
    client: &mut Client,
) -> io::Result<(Box<dyn Server>, MemSample)> {
    let l = listener()?;
    let port = l.local_addr()?.port();
    COUNT_ON.store(true, Ordering::Relaxed);
    let h0 = Heap::now();
    let mut s = build(name, l, client.fd, n)?;
    // The empty server (base, listener, runtime) is not per-connection memory.
    let h1 = Heap::now();
    client.send(&format!("connect {id} {port} {n}"))?;
    s.accept_until(n)?;
    client.expect("ok")?;
    let h2 = Heap::now();
    client.send(&format!("run {id} {n}"))?;
    s.serve()?;
    client.expect("done")?;
    let h3 = Heap::now();
    COUNT_ON.store(false, Ordering::Relaxed);
    let per = |b: i64| b as f64 / n as f64;
    let mem = MemSample {
        accepted: per(h2.malloc - h1.malloc),
        echoed: per(h3.malloc - h1.malloc),
        after_runs: 0.0,
        big_bytes: 0.0,
        empty: h1.malloc - h0.malloc,
        rust_bytes: per((h3.bytes - h1.bytes) as i64),
        rust_allocs: per((h3.allocs - h1.allocs) as i64),
        by_size: h3
            .by_size
            .iter()
            .zip(&h1.by_size)
            .map(|(a, b)| per((a - b) as i64))
            .collect(),
    };
    let small: isize = (1..CLASSES - 1)
        .map(|k| (h3.by_size[k] - h1.by_size[k]) * (k as isize * 16))
        .sum();
    let mut mem = mem;
    // Approximate (classes are rounded up to 16 B): the rest of the net bytes.
    mem.big_bytes = per((h3.bytes - h1.bytes - small) as i64);
    Ok((s, mem))
}

/// Heap per evrs event slot: `n` events made with `new_event_raw` (no closure), not added.
fn evrs_event_slot(n: usize) -> io::Result<f64> {
    fn cb(_: &mut EventBase, _: evrs::Event, _: What, _: evrs::RawArg) {}
    let mut base = EventConfig::new().method(Method::Epoll).build()?;
    let h0 = malloc_in_use();
    for i in 0..n {
        base.new_event_raw(-1, What::empty(), cb, evrs::RawArg::from_usize(i))?;
    }
    Ok((malloc_in_use() - h0) as f64 / n as f64)
}

struct Options {
    rounds: usize,
    sizes: Vec<usize>,
    servers: Vec<&'static str>,
    /// Round trips per run.
    msgs: fn(usize) -> usize,
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--client") {
        return client_main();
    }
    let all: &[&'static str] = if cfg!(have_libevent) {
        &["evrs", "libevent", "raw-epoll", "tokio"]
    } else {
        &["evrs", "raw-epoll", "tokio"]
    };
    if !cfg!(have_libevent) {
        println!(
            "libevent server skipped: <event2/buffer.h> or <event2/listener.h> not found, or \
             c/libevent_echo.c did not build (install libevent-dev)\n"
        );
    }
    let o = if args.first().map(String::as_str) == Some("--quick") {
        Options {
            rounds: 4,
            sizes: vec![10],
            servers: all.to_vec(),
            msgs: |_| 300,
        }
    } else {
        let mut a = args.iter();
        Options {
            rounds: a.next().and_then(|s| s.parse().ok()).unwrap_or(12),
            sizes: a
                .next()
                .map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect())
                .unwrap_or_else(|| vec![100, 1000, 10_000]),
            servers: match a.next() {
                Some(list) => all
                    .iter()
                    .copied()
                    .filter(|p| list.split(',').any(|x| x == *p))
                    .collect(),
                None => all.to_vec(),
            },
            msgs: |n| (2 * n).max(20_000),
        }
    };
    if o.servers.is_empty() {
        return Err(io::Error::other("no known server named"));
    }
    let limit = raise_nofile(u64::MAX >> 1) as usize;
    let mut client = Client::spawn()?;
    // SAFETY: ignoring SIGPIPE only turns a write to a closed socket into EPIPE.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };

    println!(
        "bufferevent echo in-process A/B: {MSG}-byte messages ping-ponged over N connections \
         to one single-threaded server; client: a raw epoll loop in a child process; {} \
         rounds; RLIMIT_NOFILE {limit}\n",
        o.rounds
    );
    let mut results: Vec<(usize, String, Vec<Stats>)> = Vec::new();
    let mut skipped = Vec::new();
    for &n in &o.sizes {
        // Per built server: n connections here and n in the client, plus a few fds.
        let fit = limit.saturating_sub(64) / (n + 8);
        if fit == 0 {
            skipped.push(format!(
                "n = {n}: {n} connection fds (+ listener, epoll, pipes) exceed RLIMIT_NOFILE \
                 {limit}"
            ));
            continue;
        }
        let group = fit.min(o.servers.len());
        let m = (o.msgs)(n);
        let names = &o.servers;
        let mut stats: Vec<Stats> = names.iter().map(|_| Stats::default()).collect();
        let epochs = names.len();
        let per_epoch = o.rounds.div_ceil(epochs);
        for epoch in 0..epochs {
            let order: Vec<usize> = (0..names.len())
                .map(|k| (k + epoch) % names.len())
                .collect();
            for chunk in order.chunks(group) {
                let mut servers: Vec<(usize, Box<dyn Server>)> = Vec::new();
                for &i in chunk {
                    let (s, mem) = setup(names[i], i, n, &mut client)?;
                    stats[i].mem.push(mem);
                    servers.push((i, s));
                }
                for round in 0..per_epoch + WARMUP {
                    let len = servers.len();
                    for k in 0..len {
                        let (i, s) = &mut servers[(k + round) % len];
                        let (c0, t0) = (
                            clock(libc::CLOCK_THREAD_CPUTIME_ID),
                            clock(libc::CLOCK_MONOTONIC),
                        );
                        client.send(&format!("run {i} {m}"))?;
                        s.serve()?;
                        let (c1, t1) = (
                            clock(libc::CLOCK_THREAD_CPUTIME_ID),
                            clock(libc::CLOCK_MONOTONIC),
                        );
                        client.expect("done")?;
                        if round >= WARMUP {
                            stats[*i].cpu_ns.push((c1 - c0) as f64 / m as f64);
                            stats[*i].wall_ns.push((t1 - t0) as f64 / m as f64);
                        }
                    }
                }
                for (i, s) in servers {
                    client.send(&format!("close {i}"))?;
                    client.expect("ok")?;
                    let before = malloc_in_use();
                    drop(s);
                    if let Some(m) = stats[i].mem.last_mut() {
                        let freed = before - malloc_in_use() - m.empty;
                        m.after_runs = freed as f64 / n as f64;
                    }
                }
            }
        }
        let label = if group < names.len() {
            format!("{n} (groups of {group})")
        } else {
            n.to_string()
        };
        results.push((
            n,
            label,
            stats
                .into_iter()
                .zip(names)
                .map(|(mut s, _)| {
                    // Keep order; sort copies only.
                    s.cpu_ns.sort_by(f64::total_cmp);
                    s.wall_ns.sort_by(f64::total_cmp);
                    s
                })
                .collect(),
        ));
        let _ = m;
    }
    report(&o, &mut results);
    for s in &skipped {
        println!("- skipped {s}");
    }
    Ok(())
}

fn report(o: &Options, results: &mut [(usize, String, Vec<Stats>)]) {
    let names = &o.servers;
    println!(
        "Median over the rounds. CPU ns/msg = server thread CPU time (CLOCK_THREAD_CPUTIME_ID, \
         user + kernel) per echoed message; k msgs/s (CPU) = 1e6 / CPU µs per message: the \
         server's throughput when it has a core to itself; k msgs/s (wall) = messages / wall \
         time of the run (client and server on 2 shared, loaded cores). Ratios: CPU per \
         message / raw-epoll's (≤ 1.10x is the target), and throughput (CPU) / libevent's \
         (≥ 1.15x is the target).\n"
    );
    println!(
        "| n | server | CPU ns/msg | best | k msgs/s (CPU) | k msgs/s (wall) | CPU vs raw-epoll \
         | throughput vs libevent |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|");
    for (_, label, stats) in results.iter_mut() {
        let med: Vec<f64> = stats.iter_mut().map(|s| median(&mut s.cpu_ns)).collect();
        let of = |p: &str| names.iter().position(|x| *x == p).map(|i| med[i]);
        let (raw, lib) = (of("raw-epoll"), of("libevent"));
        for (i, name) in names.iter().enumerate() {
            let s = &mut stats[i];
            let wall = median(&mut s.wall_ns);
            let best = s.cpu_ns.first().copied().unwrap_or(0.0);
            println!(
                "| {label} | {name} | {:.0} | {best:.0} | {:.0} | {:.0} | {} | {} |",
                med[i],
                1e6 / med[i],
                1e6 / wall,
                raw.map_or("-".into(), |r| format!("{:.2}x", med[i] / r)),
                lib.map_or("-".into(), |l| format!("{:.2}x", l / med[i])),
            );
        }
    }
    println!();
    println!(
        "Heap per connection (median over the builds): glibc bytes in use (mallinfo2 \
         uordblks + hblkhd, malloc headers included) after accepting N connections, and after \
         one 64-byte echo on each (idle again); Rust-requested bytes and live allocations per \
         connection (counting allocator; C allocations are not seen by it).\n"
    );
    println!(
        "| n | server | B/conn accepted | B/conn idle after 1 echo | B/conn idle after the runs \
         | Rust B/conn (1 echo) | Rust allocs/conn (1 echo) |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|");
    for (_, label, stats) in results.iter_mut() {
        for (i, name) in names.iter().enumerate() {
            let mem = &stats[i].mem;
            let m = |f: fn(&MemSample) -> f64| {
                let mut v: Vec<f64> = mem.iter().map(f).collect();
                median(&mut v)
            };
            let rust = if *name == "libevent" {
                ("-".to_string(), "-".to_string())
            } else {
                (
                    format!("{:.0}", m(|s| s.rust_bytes)),
                    format!("{:.2}", m(|s| s.rust_allocs)),
                )
            };
            println!(
                "| {label} | {name} | {:.0} | {:.0} | {:.0} | {} | {} |",
                m(|s| s.accepted),
                m(|s| s.echoed),
                m(|s| s.after_runs),
                rust.0,
                rust.1
            );
        }
    }
    // What evrs's bytes are: live allocations by size at the largest size measured.
    if let Some((n, _, stats)) = results.last() {
        for (i, name) in names.iter().enumerate() {
            if *name != "evrs" && *name != "tokio" {
                continue;
            }
            let Some(s) = stats[i].mem.last() else {
                continue;
            };
            let mut parts: Vec<String> = s
                .by_size
                .iter()
                .enumerate()
                .filter(|(_, c)| c.abs() >= 0.01)
                .map(|(k, c)| {
                    let size = if k == CLASSES - 1 {
                        ">4096".to_string()
                    } else {
                        format!("≤{}", k * 16)
                    };
                    format!("{c:.2} × {size} B")
                })
                .collect();
            if parts.is_empty() {
                parts.push("none".into());
            }
            println!(
                "\n{name} at n = {n}, after 1 echo: live Rust allocations per idle connection \
                 by size: {}; of its {:.0} Rust B/conn, ~{:.0} are in arrays above 4 KiB (table \
                 slots, amortised)",
                parts.join(", "),
                s.rust_bytes,
                s.big_bytes
            );
            if *name == "evrs" {
                if let Ok(slot) = evrs_event_slot(*n) {
                    println!(
                        "\nevrs sizes: EvBuffer {} B inline (two per bufferevent, in its table \
                         slot); an event slot (new_event_raw, not added) {slot:.0} B of heap \
                         each at {n} events (two per bufferevent)",
                        std::mem::size_of::<evrs::buffer::EvBuffer>()
                    );
                }
            }
        }
    }
    println!();
}
