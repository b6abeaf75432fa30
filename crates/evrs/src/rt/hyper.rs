//! hyper 1.x on evrs (feature `hyper`): hyper's runtime traits — [`hyper::rt::Read`] and
//! [`hyper::rt::Write`] on [`TcpStream`] and [`UnixStream`], an [`Executor`] that spawns
//! hyper's background futures as tasks, and a [`Timer`] on the base's wheel — so a hyper
//! server or client runs on an evrs [`Runtime`](super::Runtime) beside callback code.
//!
//! ```no_run
//! # // (no_run: the server runs until killed)
//! use evrs::{rt, EventBase};
//! use http_body_util::Full;
//! use hyper::{body::Bytes, server::conn::http1, service::service_fn, Response};
//!
//! let mut base = EventBase::new()?;
//! let runtime = rt::Runtime::new(&mut base)?;
//! runtime.block_on(&mut base, async {
//!     let listener = rt::TcpListener::bind("127.0.0.1:8080")?;
//!     loop {
//!         let (stream, _) = listener.accept().await?;
//!         rt::spawn(async move {
//!             let hello = service_fn(|_req| async {
//!                 Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::from("hello\n"))))
//!             });
//!             let conn = http1::Builder::new()
//!                 .timer(rt::hyper::Timer)
//!                 .serve_connection(stream, hello);
//!             if let Err(e) = conn.await {
//!                 eprintln!("connection: {e}");
//!             }
//!         })?
//!         .detach();
//!     }
//!     #[allow(unreachable_code)]
//!     Ok::<(), std::io::Error>(())
//! })??;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! hyper asks for `Send + Sync` sleeps; evrs's timers live on one thread. A [`Timer`] sleep
//! may be moved anywhere but must be polled on the thread that made it (a runtime's loop
//! thread, where hyper polls it); one dropped on another thread is leaked, not freed.

use super::net::{TcpStream, UnixStream};
use crate::sys::hyper_io::read_to_cursor;
use crate::sys::thread_bound::ThreadBound;
use std::future::Future;
use std::io::{self, IoSlice, Write as _};
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// hyper's executor on evrs: each future hyper hands over (an HTTP/2 connection's
/// background work, say) becomes a detached task of the current runtime. Futures need not
/// be `Send`. Outside a runtime the future cannot run: it is dropped with an error logged.
#[derive(Clone, Copy, Debug, Default)]
pub struct Executor;

impl<F> hyper::rt::Executor<F> for Executor
where
    F: Future + 'static,
    F::Output: 'static,
{
    fn execute(&self, fut: F) {
        match super::spawn(fut) {
            Ok(task) => task.detach(),
            Err(e) => log::error!("evrs::rt::hyper::Executor: a future was dropped: {e}"),
        }
    }
}

/// hyper's timer on evrs: [`sleep`](super::sleep)s on the base's wheel (never early), for
/// hyper's header-read and keep-alive timeouts.
#[derive(Clone, Copy, Debug, Default)]
pub struct Timer;

impl hyper::rt::Timer for Timer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(Sleep(ThreadBound::new(super::sleep(duration))))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(Sleep(ThreadBound::new(super::sleep_until(deadline))))
    }
}

/// An evrs [`Sleep`](super::Sleep) made `Send + Sync` for hyper by staying on its thread.
struct Sleep(ThreadBound<super::Sleep>);

impl Future for Sleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.get_mut().0.get_mut() {
            Some(sleep) => Pin::new(sleep).poll(cx),
            // hyper polls its sleeps inside the connection's future, on the loop thread.
            None => {
                panic!("evrs::rt::hyper::Timer: a sleep was polled off the thread that made it")
            }
        }
    }
}

impl hyper::rt::Sleep for Sleep {}

/// hyper's `Read` / `Write` over the same polls as the futures-io traits: reads go straight
/// into hyper's buffer, and vectored writes are one `writev`.
macro_rules! hyper_stream_io {
    ($t:ty) => {
        impl hyper::rt::Read for $t {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                mut buf: hyper::rt::ReadBufCursor<'_>,
            ) -> Poll<io::Result<()>> {
                let want = buf.remaining();
                let r = self
                    .io
                    .poll_op(0, cx, |s| read_to_cursor(s.as_fd(), &mut buf));
                if matches!(r, Poll::Ready(Ok(n)) if n > 0 && n < want) {
                    self.io.drained(0);
                }
                r.map_ok(|_| ())
            }
        }

        impl hyper::rt::Write for $t {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.poll_write_ref(cx, buf)
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                let want: usize = bufs.iter().map(|b| b.len()).sum();
                let r = self.io.poll_op(1, cx, |mut s| s.write_vectored(bufs));
                if matches!(r, Poll::Ready(Ok(n)) if n < want) {
                    self.io.drained(1);
                }
                r
            }

            fn is_write_vectored(&self) -> bool {
                true
            }

            fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(match self.io.get_ref().shutdown(Shutdown::Write) {
                    // (the peer may have gone already: nothing is left to shut)
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
                    r => r,
                })
            }
        }
    };
}

hyper_stream_io!(TcpStream);
hyper_stream_io!(UnixStream);
