//! Async/await on the same loop: a single-threaded executor ([`Runtime`]) whose tasks run
//! on an [`EventBase`](crate::EventBase) between its callbacks, with awaitable I/O
//! ([`Async`], [`TcpListener`], [`TcpStream`], [`UdpSocket`], [`UnixListener`],
//! [`UnixStream`], the streams with `futures-io`'s `AsyncRead`/`AsyncWrite` — unbuffered,
//! as tokio's and async-io's: `futures::io::BufReader` makes them `AsyncBufRead` — and
//! tokio's with the `tokio-io` feature; hyper 1.x's runtime traits in `rt::hyper` with the `hyper`
//! feature) and timers ([`sleep`], [`timeout`],
//! [`interval`]) on the base's wheel; [`spawn_blocking`] runs what would block the thread
//! (`getaddrinfo`, file I/O) on a small pool.
//!
//! Callback code and async code share the base, so a program can move one piece at a time:
//! a callback may [`spawn`] a task and hand it a connection it made as a [`BevStream`] (a
//! bufferevent — socket, pair, filter, TLS — as an async stream, buffered itself:
//! `AsyncBufRead` without a copy); a task may wait for what a
//! callback does through a channel (`futures-channel`'s `oneshot` works: the callback
//! sends, the task awaits).
//!
//! ```
//! use evrs::{rt, EventBase};
//!
//! let mut base = EventBase::new()?;
//! let rt = rt::Runtime::new(&mut base)?;
//! let echoed = rt.block_on(&mut base, async {
//!     let listener = rt::TcpListener::bind("127.0.0.1:0")?;
//!     let addr = listener.local_addr()?;
//!     let server = rt::spawn(async move {
//!         let (s, _) = listener.accept().await?;
//!         let mut buf = [0u8; 64];
//!         let n = s.read(&mut buf).await?;
//!         s.write_all(&buf[..n]).await?;
//!         Ok::<_, std::io::Error>(())
//!     })?;
//!     let c = rt::TcpStream::connect(addr).await?;
//!     c.write_all(b"hello").await?;
//!     let mut buf = [0u8; 64];
//!     let n = c.read(&mut buf).await?;
//!     server.await??;
//!     Ok::<_, std::io::Error>(buf[..n].to_vec())
//! })??;
//! assert_eq!(echoed, b"hello");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! How it runs: the runtime's driver is a deferred callback of the base. A waker called on
//! the loop thread queues its task and defers the driver (no lock, no syscall; repeats
//! coalesce on one atomic flag per task); from another thread it goes through the base's
//! [`Handle`](crate::Handle). A task's poll has no `&mut EventBase`, so the registrations it
//! asks for (watch an fd, arm a timer) are queued and applied by the driver right after its
//! polls, before the loop waits. A task that panics ends with
//! [`JoinError::Panicked`]; the loop and the other tasks go on.

mod bev;
mod blocking;
#[cfg(feature = "hyper")]
pub mod hyper;
mod io;
mod net;
mod signal;
mod task;
mod task_cell;
mod time;

pub use bev::{BevStream, BEV_READ_LIMIT, BEV_WRITE_LIMIT};
pub use blocking::{
    spawn_blocking, Blocking, IDLE as BLOCKING_IDLE, MAX_THREADS as BLOCKING_THREADS,
};
pub use io::{Async, Ready};
pub use net::{Incoming, BACKLOG};
pub use net::{TcpListener, TcpStream, UdpSocket, UnixListener, UnixStream};
pub use signal::{signal, Signals};
pub use task::{spawn, JoinError, JoinHandle, Runtime};
pub use time::{interval, sleep, sleep_until, timeout, Elapsed, Interval, Sleep};
