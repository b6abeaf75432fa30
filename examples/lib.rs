//! Shared code for the evrs examples.
//!
//! Each example under `examples/*.rs` is a thin `main` over one of the modules below, so the
//! tests in `examples/tests/` can run the very same code in-process against real sockets:
//!
//! | example              | module             | what it shows                                  |
//! |----------------------|--------------------|------------------------------------------------|
//! | `rot13_server`       | [`rot13_bev`]      | the book's ROT13 server, with bufferevents     |
//! | `rot13_server_events`| [`rot13`]          | the same server on plain events                |
//! | `async_rot13`        | [`rot13_async`]    | the same server in async style (`evrs::rt`)    |
//! | `mail_drop`          | [`mail_drop`]      | the lecture's `addToInbox` as an async server  |
//! | `async_echo`         | [`echo_async`]     | tokio's echo example on `evrs::rt`             |
//! | `receive_two`        | [`receive_two`]    | one loop waiting on two connections            |
//! | `echo_server`        | [`echo`]           | one thread serving thousands of clients        |
//! | `reactor_downloader` | [`downloader`]     | a reader/writer event per download             |
//! | `loop_flags`         | [`loop_flags`]     | priorities, `ONCE`, `NONBLOCK`, `loopexit`     |
//! | `multi_loop_echo`    | [`multi_loop`]     | one acceptor, a loop per core, via `Handle`    |
//! | `zlib_filter`        | [`zlib`]           | bufferevent filters compressing with `flate2`  |
//! | `echo_server_bev`    | [`echo_bev`]       | an echo server with a listener + bufferevents  |
//! | `tls_echo`           | [`tls_echo`]       | the same over TLS (rustls, self-signed cert)   |
//! | `webclient`          | [`webclient`]      | the book's web client on one bufferevent       |
//!
//! The helpers here are the small bits every server needs: a way to stop a loop from another
//! thread or from Ctrl-C, the port to listen on, and a non-blocking `connect`.

#[path = "src/downloader.rs"]
pub mod downloader;
#[path = "src/echo.rs"]
pub mod echo;
#[path = "src/echo_async.rs"]
pub mod echo_async;
#[path = "src/echo_bev.rs"]
pub mod echo_bev;
#[path = "src/loop_flags.rs"]
pub mod loop_flags;
#[path = "src/mail_drop.rs"]
pub mod mail_drop;
#[path = "src/multi_loop.rs"]
pub mod multi_loop;
#[path = "src/receive_two.rs"]
pub mod receive_two;
#[path = "src/rot13.rs"]
pub mod rot13;
#[path = "src/rot13_async.rs"]
pub mod rot13_async;
#[path = "src/rot13_bev.rs"]
pub mod rot13_bev;
#[path = "src/tls_echo.rs"]
pub mod tls_echo;
#[path = "src/webclient.rs"]
pub mod webclient;
#[path = "src/zlib.rs"]
pub mod zlib;

use evrs::{Event, EventBase, What};
use std::io::{self, ErrorKind, Read};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::unix::io::{AsRawFd, FromRawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// The other end of a [`stop_handle`]: dropping it (or calling [`StopHandle::stop`]) makes
/// the loop return. It is `Send`, so a test can stop a server running on another thread.
#[derive(Debug)]
pub struct StopHandle {
    _end: UnixStream,
}

impl StopHandle {
    /// Stops the loop (the same as dropping the handle).
    pub fn stop(self) {}
}

/// Registers an event that breaks `base`'s loop as soon as the returned handle is dropped.
///
/// It is an ordinary read event on one end of a socket pair: closing the other end makes
/// ours readable (end of file), and the callback calls `loopbreak`. Nothing evrs-specific
/// is needed to talk to a loop from outside — just a file descriptor it watches.
pub fn stop_handle(base: &mut EventBase) -> io::Result<StopHandle> {
    let (ours, theirs) = UnixStream::pair()?;
    ours.set_nonblocking(true)?;
    let fd = ours.as_raw_fd();
    let ev = base.new_event(fd, What::READ, move |base, ev, _what| {
        let _ = (&ours).read(&mut [0u8; 16]); // a byte or end of file: either means stop
        base.loopbreak();
        let _ = base.free(ev); // drops this closure, and with it `ours`
    })?;
    base.add(ev, None)?;
    Ok(StopHandle { _end: theirs })
}

/// Makes Ctrl-C (SIGINT) end `base`'s loop cleanly instead of killing the process.
pub fn stop_on_ctrl_c(base: &mut EventBase) -> io::Result<()> {
    let ev = base.new_signal(libc::SIGINT, |base, _ev, _what| {
        eprintln!("\ncaught SIGINT, leaving the loop");
        base.loopbreak();
    })?;
    base.add(ev, None)
}

/// The port to listen on: the first command-line argument, else the environment variable
/// `var`, else `default`.
pub fn port_from_args(var: &str, default: u16) -> u16 {
    let arg = std::env::args().nth(1).or_else(|| std::env::var(var).ok());
    match arg {
        Some(s) => s.parse().unwrap_or_else(|_| {
            eprintln!("bad port {s:?}, using {default}");
            default
        }),
        None => default,
    }
}

/// Binds a listening TCP socket with a deep accept queue.
///
/// std's `TcpListener::bind` already sets `SO_REUSEADDR` (like the book's `setsockopt`) but
/// its backlog is small; when thousands of clients connect at once, a full queue makes the
/// kernel drop their SYNs and each dropped client waits a second to retry. Calling `listen`
/// again on a listening socket just updates the backlog (capped by `net.core.somaxconn`).
pub fn bind_listener(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(addr)?;
    // SAFETY: listen(2) on a socket we own.
    if unsafe { libc::listen(listener.as_raw_fd(), 4096) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(listener)
}

/// Starts connecting to `addr` without waiting (std's `TcpStream::connect` blocks).
///
/// The socket is created non-blocking, so `connect` returns at once with `EINPROGRESS`; the
/// socket becomes *writable* when the handshake finishes, and `take_error()` then tells
/// whether it succeeded — exactly the dance the libevent book describes.
pub fn connect_nonblocking(addr: SocketAddr) -> io::Result<TcpStream> {
    let SocketAddr::V4(v4) = addr else {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this example only speaks IPv4",
        ));
    };
    let flags = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: plain socket(2) call; the result is checked below.
    let fd = unsafe { libc::socket(libc::AF_INET, flags, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh socket nobody else owns; the stream closes it on drop.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: v4.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*v4.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: `sin` is a valid sockaddr_in of `len` bytes that outlives the call.
    let r = unsafe { libc::connect(fd, (&sin as *const libc::sockaddr_in).cast(), len) };
    if r < 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(err);
        }
    }
    Ok(stream)
}

/// Accepts every connection waiting on `listener` — with many clients connecting at once,
/// one accept per wake-up would cost one trip through the loop per client — and hands each to
/// `on_stream`. On a real accept error (typically `EMFILE`, out of file descriptors) the
/// listener stays readable, so a level-triggered event would call us again at once, forever
/// (libevent #71): instead, stop watching `me` (the listener's event) for 100 ms and let a
/// one-shot timer resume it. `who` prefixes the log lines.
pub fn accept_pending(
    base: &mut EventBase,
    me: Event,
    listener: &TcpListener,
    who: &str,
    mut on_stream: impl FnMut(&mut EventBase, TcpStream) -> io::Result<()>,
) {
    loop {
        match listener.accept() {
            Ok((stream, _peer)) => {
                if let Err(e) = on_stream(base, stream) {
                    eprintln!("{who}: cannot take a connection: {e}");
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::Interrupted | ErrorKind::ConnectionAborted
                ) => {}
            Err(e) => {
                eprintln!("{who}: accept: {e}; pausing for 100 ms");
                let _ = base.del(me);
                let later = Some(Duration::from_millis(100));
                let _ = base.once(-1, What::empty(), later, move |base, _| {
                    let _ = base.add(me, None);
                });
                return;
            }
        }
    }
}
