//! A thread-per-core echo server: N worker threads, each running its own [`EventBase`], and
//! ONE acceptor that hands every accepted connection to a worker, round-robin.
//!
//! ```text
//!            acceptor loop (main thread)           worker loops (one thread each)
//!   listener ──► accept() ──► Handle::run_in_loop ──► worker k: echo::add_client(base, fd)
//!                             (k = 0, 1, .., N-1, 0, ..)
//! ```
//!
//! An [`EventBase`] is not `Send`: each worker creates its base *inside* its thread and sends
//! back only a [`Handle`] (`Send + Sync`). The acceptor owns the listening socket, watched by a
//! persistent read event on its own base. When it fires, it accepts until `EAGAIN` and, for
//! each new [`TcpStream`] (which *is* `Send`), queues a closure on the next worker with
//! [`Handle::run_in_loop`]; the closure runs on that worker's loop thread and registers the
//! connection's read/write events there ([`echo::add_client`], the single-threaded echo
//! server's per-connection code, unchanged). From then on the connection lives entirely on
//! its worker: no locks, no sharing, one loop per core.
//!
//! # No thundering herd
//! The epoll lecture warns about the *thundering herd* when several threads wait on the same
//! event: "a large number of processes or threads waiting for an event are awoken when that
//! event occurs, but only one process is able to handle the event". Had every worker put the
//! *same* listening socket in its own epoll set, each new connection could wake all N loops;
//! one would win `accept`, the others would get `EAGAIN` having burnt a wake-up (and the
//! kernel's balancing between them is poor — see the lecture's further reading on epoll and
//! socket balancing). Here only the acceptor watches the listener, so exactly one thread
//! wakes per batch of connections, and the hand-off wakes exactly one worker (and
//! [`Handle`] coalesces wake-ups: one eventfd write per loop iteration however many
//! connections are queued). The price is one extra hop per *connection*, not per request, and
//! a single accepting thread, which at some connection rate becomes the bottleneck.
//!
//! The usual alternative is **`SO_REUSEPORT`**: every worker binds its own listening socket
//! to the same port and the kernel spreads incoming connections across them (by a hash of the
//! 4-tuple), so there is no acceptor and no hand-off, and still no herd since each socket has
//! one waiter. Its drawbacks: the hash ignores how busy a worker is, and closing one of the
//! sockets drops the connections waiting in its accept queue. (`EPOLLEXCLUSIVE`, for a
//! shared listener, wakes "one or more" waiters rather than all.)
//!
//! # Shutdown
//! [`Workers::stop`] / [`Server::stop`] use the handles only: `loopbreak` on every base, then
//! join the threads. The acceptor is stopped first, so that no hand-off can arrive after its
//! worker's `loopbreak`; connections still open are closed when their worker's base drops.

use crate::bind_listener;
use crate::echo;
use evrs::{Count, EventBase, Handle, LoopFlags, What};
use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::io::AsRawFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The port the example listens on by default.
pub const DEFAULT_PORT: u16 = 12346;

/// The default number of workers: one per CPU.
pub fn default_workers() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

thread_local! {
    /// The echo counters of the worker running on this thread. The closures sent with
    /// `run_in_loop` must be `Send`, so they cannot carry the worker's `Rc<echo::Stats>`;
    /// they find it here instead, on the loop thread where they run.
    static STATS: Rc<echo::Stats> = Rc::new(echo::Stats::default());
}

/// What a worker reports once its loop has stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WorkerReport {
    /// Connections this worker served.
    pub accepted: u64,
    /// Connections it closed (the client had closed its end).
    pub closed: u64,
    /// Bytes it echoed.
    pub bytes: u64,
    /// User events still added when the loop stopped (one per open connection: its read or
    /// its write event).
    pub events_left: usize,
}

/// The worker threads: one [`EventBase`] each, reachable through its [`Handle`].
pub struct Workers {
    handles: Vec<Handle>,
    threads: Vec<JoinHandle<io::Result<WorkerReport>>>,
    /// Connections registered on each worker so far (bumped on the worker's own thread).
    counts: Arc<[AtomicU64]>,
    next: Cell<usize>,
}

impl Workers {
    /// Starts `n` (at least 1) worker threads and waits until each loop is ready.
    pub fn spawn(n: usize) -> io::Result<Workers> {
        let n = n.max(1);
        let counts: Arc<[AtomicU64]> = (0..n).map(|_| AtomicU64::new(0)).collect();
        let mut handles = Vec::with_capacity(n);
        let mut threads = Vec::with_capacity(n);
        for k in 0..n {
            let (tx, rx) = mpsc::channel();
            let thread = thread::Builder::new()
                .name(format!("echo-worker-{k}"))
                .spawn(move || -> io::Result<WorkerReport> {
                    block_sigint();
                    // The base is created here, on its own thread: EventBase is not Send.
                    let mut base = EventBase::new()?;
                    let _ = tx.send(base.handle());
                    base.run(LoopFlags::NO_EXIT_ON_EMPTY)?;
                    let s = STATS.with(Rc::clone);
                    Ok(WorkerReport {
                        accepted: s.accepted.get(),
                        closed: s.closed.get(),
                        bytes: s.bytes.get(),
                        events_left: base.num_events(Count::Added),
                    })
                })?;
            threads.push(thread);
            let handle = rx
                .recv()
                .map_err(|_| io::Error::other("worker thread died while starting"))??;
            handles.push(handle);
        }
        Ok(Workers {
            handles,
            threads,
            counts,
            next: Cell::new(0),
        })
    }

    /// How many workers there are.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Always false: there is at least one worker.
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// Connections registered on each worker so far (they count on their own threads).
    pub fn connection_counts(&self) -> Vec<u64> {
        counts(&self.counts)
    }

    /// A shareable view of the per-worker counts, readable from any thread.
    pub fn counters(&self) -> Arc<[AtomicU64]> {
        self.counts.clone()
    }

    /// Hands `stream` to the next worker, round-robin: the closure runs on that worker's
    /// loop thread and registers the connection's events on its base.
    pub fn dispatch(&self, stream: TcpStream) -> io::Result<()> {
        let k = self.next.get();
        self.next.set((k + 1) % self.handles.len());
        let counts = self.counts.clone();
        self.handles[k].run_in_loop(move |base| {
            let stats = STATS.with(Rc::clone);
            match echo::add_client(base, stream, &stats) {
                Ok(()) => {
                    counts[k].fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => eprintln!("worker {k}: cannot add client: {e}"),
            }
        })
    }

    /// Stops every worker loop (`loopbreak` through its handle) and joins the threads.
    /// Connections still open are closed. Returns each worker's report, in order.
    pub fn stop(mut self) -> io::Result<Vec<WorkerReport>> {
        for h in &self.handles {
            h.loopbreak()?;
        }
        std::mem::take(&mut self.threads)
            .into_iter()
            .map(|t| {
                t.join()
                    .map_err(|_| io::Error::other("worker thread panicked"))?
            })
            .collect()
    }
}

impl Drop for Workers {
    /// Workers dropped without [`stop`](Workers::stop) (say, on an error path) still end
    /// their loops; their threads are detached.
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            for h in &self.handles {
                let _ = h.loopbreak();
            }
        }
    }
}

/// Workers leave SIGINT to the acceptor's thread (where the example's Ctrl-C event lives):
/// the kernel delivers a process signal to any thread that does not block it.
fn block_sigint() {
    // SAFETY: sigset operations on a local set, then pthread_sigmask for this thread only.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

fn counts(c: &[AtomicU64]) -> Vec<u64> {
    c.iter().map(|n| n.load(Ordering::Relaxed)).collect()
}

/// Registers the acceptor on `base`: a persistent read event on `listener` that accepts
/// until `EAGAIN` and hands each connection to `workers`, round-robin. Running `base`'s loop
/// then serves `listener`'s clients; the workers' loops do the echoing.
pub fn listen(base: &mut EventBase, listener: TcpListener, workers: Rc<Workers>) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let fd = listener.as_raw_fd();
    let ev = base.new_event(fd, What::READ | What::PERSIST, move |base, me, _| {
        crate::accept_pending(base, me, &listener, "acceptor", |_, stream| {
            workers.dispatch(stream)
        })
    })?;
    base.add(ev, None)
}

/// The whole server with its acceptor on a thread of its own (the example's `main` runs the
/// acceptor on the main thread instead), as the tests and [`round_trips_per_sec`] use it.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    acceptor: Handle,
    thread: JoinHandle<io::Result<Workers>>,
    counts: Arc<[AtomicU64]>,
}

impl Server {
    /// Binds `addr` (use port 0 for an ephemeral port), starts `workers` worker loops and the
    /// acceptor loop, and returns once all of them are running.
    pub fn start(addr: &str, workers: usize) -> io::Result<Server> {
        let listener = bind_listener(addr)?;
        let addr = listener.local_addr()?;
        let (tx, rx) = mpsc::channel();
        let thread = thread::Builder::new().name("echo-acceptor".into()).spawn(
            move || -> io::Result<Workers> {
                let setup = || -> io::Result<_> {
                    let workers = Rc::new(Workers::spawn(workers)?);
                    let mut base = EventBase::new()?;
                    listen(&mut base, listener, workers.clone())?;
                    let handle = base.handle()?;
                    Ok((workers, base, handle))
                };
                let (workers, mut base, handle) = match setup() {
                    Ok(v) => v,
                    Err(e) => {
                        let _ = tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                        return Err(e);
                    }
                };
                let _ = tx.send(Ok((handle, workers.counters())));
                base.run(LoopFlags::NO_EXIT_ON_EMPTY)?;
                drop(base); // frees the listener event, the last other owner of `workers`
                Rc::try_unwrap(workers).map_err(|_| io::Error::other("workers still shared"))
            },
        )?;
        let (acceptor, counts) = rx
            .recv()
            .map_err(|_| io::Error::other("acceptor thread died while starting"))??;
        Ok(Server {
            addr,
            acceptor,
            thread,
            counts,
        })
    }

    /// Connections registered on each worker so far.
    pub fn connection_counts(&self) -> Vec<u64> {
        counts(&self.counts)
    }

    /// Stops the acceptor (so no more hand-offs), then every worker, joining all threads.
    pub fn stop(self) -> io::Result<Vec<WorkerReport>> {
        self.acceptor.loopbreak()?;
        let workers = self
            .thread
            .join()
            .map_err(|_| io::Error::other("acceptor thread panicked"))??;
        workers.stop()
    }
}

/// A tiny load generator: `client_threads` threads, each with `conns` connections, each
/// connection doing `rounds` ping-pongs of `msg_len` bytes (every round: write to all of the
/// thread's connections, then read every echo back and check it). Returns the round trips
/// completed per second (all connections together) and checks every byte.
pub fn load(
    addr: SocketAddr,
    client_threads: usize,
    conns: usize,
    rounds: usize,
    msg_len: usize,
) -> io::Result<f64> {
    let start = Instant::now();
    let threads: Vec<_> = (0..client_threads)
        .map(|t| thread::spawn(move || ping_pong(addr, t, conns, rounds, msg_len)))
        .collect();
    for t in threads {
        t.join()
            .map_err(|_| io::Error::other("client thread panicked"))??;
    }
    let total = (client_threads * conns * rounds) as f64;
    Ok(total / start.elapsed().as_secs_f64())
}

fn ping_pong(
    addr: SocketAddr,
    t: usize,
    conns: usize,
    rounds: usize,
    msg_len: usize,
) -> io::Result<()> {
    let timeout = Some(Duration::from_secs(30));
    let mut streams = Vec::with_capacity(conns);
    for _ in 0..conns {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(timeout)?;
        s.set_write_timeout(timeout)?;
        streams.push(s);
    }
    let mut got = vec![0; msg_len];
    for r in 0..rounds {
        let msg = |c: usize| -> Vec<u8> {
            (0..msg_len)
                .map(|i| (t * 131 + c * 31 + r * 7 + i) as u8)
                .collect()
        };
        for (c, s) in streams.iter_mut().enumerate() {
            s.write_all(&msg(c))?;
        }
        for (c, s) in streams.iter_mut().enumerate() {
            s.read_exact(&mut got)?;
            if got != msg(c) {
                return Err(io::Error::other(format!(
                    "client {t}/{c}: wrong echo in round {r}"
                )));
            }
        }
    }
    Ok(())
}

/// Round trips per second through a fresh server with `workers` workers on 127.0.0.1 (see
/// [`load`]). Only a rough figure: the clients share the machine with the server.
pub fn round_trips_per_sec(
    workers: usize,
    client_threads: usize,
    conns: usize,
    rounds: usize,
) -> io::Result<f64> {
    let server = Server::start("127.0.0.1:0", workers)?;
    let rate = load(server.addr, client_threads, conns, rounds, 64);
    server.stop()?;
    rate
}
