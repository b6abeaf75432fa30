//! Async TCP and Unix-domain sockets on [`Async`], with the `futures-io` traits.

use super::io::Async;
use futures_io::{AsyncRead, AsyncWrite};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::os::unix::net as unix;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// The listen backlog of [`TcpListener::bind`] (tokio's too).
pub const BACKLOG: i32 = 1024;

/// A TCP listener whose `accept` is awaited.
#[derive(Debug)]
pub struct TcpListener {
    io: Async<std::net::TcpListener>,
}

impl TcpListener {
    /// Binds and listens on `addr` (the first address it resolves to that binds), with
    /// `SO_REUSEADDR` and a backlog of [`BACKLOG`] (std's `bind` listens with 128, which a
    /// burst of connects overflows: each dropped SYN then waits a second to be retried).
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let mut last = None;
        for a in addr.to_socket_addrs()? {
            let sock =
                socket2::Socket::new(socket2::Domain::for_address(a), socket2::Type::STREAM, None)?;
            sock.set_reuse_address(true)?;
            match sock.bind(&a.into()).and_then(|()| sock.listen(BACKLOG)) {
                Ok(()) => return TcpListener::from_std(sock.into()),
                Err(e) => last = Some(e),
            }
        }
        Err(last
            .unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind")))
    }

    /// Wraps a listening socket (switched to non-blocking).
    pub fn from_std(l: std::net::TcpListener) -> io::Result<TcpListener> {
        Ok(TcpListener { io: Async::new(l)? })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// Waits for the next connection.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (s, peer) = self.io.read_with(|l| l.accept()).await?;
        Ok((TcpStream::from_std(s)?, peer))
    }

    /// The connections, as a `futures_core::Stream` (it never ends; an accept error is an
    /// item, and the next one may succeed).
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { l: self }
    }
}

/// The stream of [`TcpListener::incoming`].
#[derive(Debug)]
#[must_use = "streams do nothing unless polled"]
pub struct Incoming<'a> {
    l: &'a TcpListener,
}

impl futures_core::Stream for Incoming<'_> {
    type Item = io::Result<TcpStream>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.l
            .io
            .poll_op(0, cx, |l| l.accept())
            .map(|r| Some(r.and_then(|(s, _)| TcpStream::from_std(s))))
    }
}

/// A TCP connection with `futures_io::AsyncRead` and `AsyncWrite`.
#[derive(Debug)]
pub struct TcpStream {
    pub(super) io: Async<std::net::TcpStream>,
}

impl TcpStream {
    /// Connects to `addr` without blocking the thread.
    pub async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
        let domain = socket2::Domain::for_address(addr);
        let sock = socket2::Socket::new(domain, socket2::Type::STREAM, None)?;
        sock.set_nonblocking(true)?;
        match sock.connect(&addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        let s = TcpStream::from_std(sock.into())?;
        s.io.writable().await?;
        match s.io.get_ref().take_error()? {
            Some(e) => Err(e),
            None => Ok(s),
        }
    }

    /// [`connect`](Self::connect) that gives up after `limit` (`TimedOut`).
    pub async fn connect_timeout(addr: SocketAddr, limit: Duration) -> io::Result<TcpStream> {
        super::time::timeout(limit, TcpStream::connect(addr)).await?
    }

    /// Wraps a connected socket (switched to non-blocking).
    pub fn from_std(s: std::net::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream { io: Async::new(s)? })
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// `TCP_NODELAY`.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.io.get_ref().set_nodelay(on)
    }

    /// Shuts down one or both directions.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get_ref().shutdown(how)
    }
}

/// A UDP socket whose sends and receives are awaited.
#[derive(Debug)]
pub struct UdpSocket {
    io: Async<std::net::UdpSocket>,
}

impl UdpSocket {
    /// Binds to `addr`.
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            io: Async::new(std::net::UdpSocket::bind(addr)?)?,
        })
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// Sets the default peer (for [`send`](Self::send) / [`recv`](Self::recv)).
    pub fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        self.io.get_ref().connect(addr)
    }

    /// Sends one datagram to `addr`.
    pub async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> io::Result<usize> {
        self.io.write_with(|s| s.send_to(buf, addr)).await
    }

    /// Receives one datagram and its sender.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io.read_with(|s| s.recv_from(buf)).await
    }

    /// Sends one datagram to the connected peer.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io.write_with(|s| s.send(buf)).await
    }

    /// Receives one datagram from the connected peer.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.read_with(|s| s.recv(buf)).await
    }
}

/// A Unix-domain stream listener whose `accept` is awaited.
#[derive(Debug)]
pub struct UnixListener {
    io: Async<unix::UnixListener>,
}

impl UnixListener {
    /// Binds and listens on `path`.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        Ok(UnixListener {
            io: Async::new(unix::UnixListener::bind(path)?)?,
        })
    }

    /// Waits for the next connection.
    pub async fn accept(&self) -> io::Result<UnixStream> {
        let (s, _) = self.io.read_with(|l| l.accept()).await?;
        UnixStream::from_std(s)
    }
}

/// A Unix-domain stream with `futures_io::AsyncRead` and `AsyncWrite`.
#[derive(Debug)]
pub struct UnixStream {
    pub(super) io: Async<unix::UnixStream>,
}

impl UnixStream {
    /// Connects to `path` (a local connect does not block).
    pub fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        UnixStream::from_std(unix::UnixStream::connect(path)?)
    }

    /// A connected pair.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = unix::UnixStream::pair()?;
        Ok((UnixStream::from_std(a)?, UnixStream::from_std(b)?))
    }

    /// Wraps a connected socket (switched to non-blocking).
    pub fn from_std(s: unix::UnixStream) -> io::Result<UnixStream> {
        Ok(UnixStream { io: Async::new(s)? })
    }

    /// Shuts down one or both directions.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get_ref().shutdown(how)
    }
}

/// Reads and writes for a stream type whose `&T` reads and writes: the inherent `read`,
/// `write` and `write_all` (through `&self`, so one task may read while another writes),
/// and `futures_io::AsyncRead` / `AsyncWrite`. A read or write that moved less than asked
/// drained the socket's buffer (or filled it): the next one waits for readiness instead of
/// making a system call that would fail.
macro_rules! async_stream_io {
    ($t:ty) => {
        impl $t {
            /// Reads into `buf` (0: end of stream).
            pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
                std::future::poll_fn(|cx| self.poll_read_ref(cx, buf)).await
            }

            /// Writes from `buf`; returns how much was written.
            pub async fn write(&self, buf: &[u8]) -> io::Result<usize> {
                std::future::poll_fn(|cx| self.poll_write_ref(cx, buf)).await
            }

            /// Writes all of `buf`.
            pub async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
                while !buf.is_empty() {
                    let n = self.write(buf).await?;
                    if n == 0 {
                        return Err(io::ErrorKind::WriteZero.into());
                    }
                    buf = &buf[n..];
                }
                Ok(())
            }

            pub(super) fn poll_read_ref(
                &self,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                let want = buf.len();
                let r = self.io.poll_op(0, cx, |mut s| s.read(buf));
                if matches!(r, Poll::Ready(Ok(n)) if n > 0 && n < want) {
                    self.io.drained(0);
                }
                r
            }

            pub(super) fn poll_write_ref(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
                let want = buf.len();
                let r = self.io.poll_op(1, cx, |mut s| s.write(buf));
                if matches!(r, Poll::Ready(Ok(n)) if n < want) {
                    self.io.drained(1);
                }
                r
            }
        }

        impl AsyncRead for $t {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                self.poll_read_ref(cx, buf)
            }
        }

        impl AsyncWrite for $t {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.poll_write_ref(cx, buf)
            }

            fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(self.io.get_ref().shutdown(Shutdown::Write))
            }
        }
    };
}

async_stream_io!(TcpStream);
async_stream_io!(UnixStream);

/// tokio's `AsyncRead` / `AsyncWrite` (feature `tokio-io`) over the same polls.
#[cfg(feature = "tokio-io")]
macro_rules! tokio_stream_io {
    ($t:ty) => {
        impl tokio::io::AsyncRead for $t {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut tokio::io::ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                let n = std::task::ready!(self.poll_read_ref(cx, buf.initialize_unfilled()))?;
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
        }

        impl tokio::io::AsyncWrite for $t {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.poll_write_ref(cx, buf)
            }

            fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(self.io.get_ref().shutdown(Shutdown::Write))
            }
        }
    };
}

#[cfg(feature = "tokio-io")]
tokio_stream_io!(TcpStream);
#[cfg(feature = "tokio-io")]
tokio_stream_io!(UnixStream);
