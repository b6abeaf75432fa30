//! Listeners: libevent's `evconnlistener` for a [`Local`] base — a listening socket whose
//! connections are accepted by the loop and handed to a callback as [`OwnedFd`]s.
//!
//! A listener is a [`Listener`] handle (like [`Event`]: `Copy`, refused with an `io::Error`
//! once freed or on another base) into a [`Table`] kept in the base's extension slot
//! (`base/ext.rs`). Each listener owns two events of the base: its socket's `READ |
//! PERSIST` event, whose closure runs the accept batch (`accept.rs`), and the timer of its
//! back-off. The user's callbacks are stored in the table and taken out while they run, so
//! a callback may free or reconfigure its own listener; it is put back only if the listener
//! still exists and was not given a new callback meanwhile.

mod accept;
mod addr;

pub use addr::PeerAddr;

use crate::base::ext::ExtKind;
use crate::base::{EventBase, Local};
use crate::event::Event;
use crate::flags::What;
use crate::layers::table::{stale, Table};
use bitflags::bitflags;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::Duration;

/// The backlog used when `listen` is given a negative one (libevent's choice).
pub const DEFAULT_LISTEN_BACKLOG: i32 = 128;

bitflags! {
    /// How a listener is set up (libevent's `LEV_OPT_*`, same values; `LEV_OPT_THREADSAFE`
    /// has no counterpart: a [`Local`] base is used by one thread).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct ListenerFlags: u16 {
        /// Accepted sockets stay blocking (`LEV_OPT_LEAVE_SOCKETS_BLOCKING`); by default
        /// they are made non-blocking.
        const LEAVE_SOCKETS_BLOCKING = 0x1;
        /// [`EventBase::listener_free`] closes the listening socket
        /// (`LEV_OPT_CLOSE_ON_FREE`); without it the socket is handed back.
        const CLOSE_ON_FREE = 0x2;
        /// Set close-on-exec on the listening socket (`LEV_OPT_CLOSE_ON_EXEC`). Sockets
        /// evrs makes (the listening socket of `listen`/`listen_unix`, every accepted one)
        /// are close-on-exec anyway; this matters for [`EventBase::listener_from_fd`].
        const CLOSE_ON_EXEC = 0x4;
        /// `SO_REUSEADDR` before binding (`LEV_OPT_REUSEABLE`): a port whose earlier
        /// connections linger in `TIME_WAIT` can be bound again at once.
        const REUSEABLE = 0x8;
        /// Create the listener disabled (`LEV_OPT_DISABLED`): connections queue in the
        /// backlog until [`EventBase::listener_enable`].
        const DISABLED = 0x20;
        /// `TCP_DEFER_ACCEPT` (1 s) before binding (`LEV_OPT_DEFERRED_ACCEPT`): the kernel
        /// reports a connection only once it has data to read. For protocols where the
        /// client speaks first.
        const DEFERRED_ACCEPT = 0x40;
        /// `SO_REUSEPORT` before binding (`LEV_OPT_REUSEABLE_PORT`): several sockets may
        /// listen on the same port; the kernel spreads the connections.
        const REUSEABLE_PORT = 0x80;
        /// `IPV6_V6ONLY` before binding an IPv6 address (`LEV_OPT_BIND_IPV6ONLY`): IPv4
        /// clients are not accepted through it.
        const BIND_IPV6ONLY = 0x100;
        /// With backlog 0, take the socket as it is, without checking that it listens
        /// (libevent's way: accepting on a socket that does not listen then fails, and
        /// the error callback is told). Without it such a socket is refused at once. The C
        /// ABI sets it.
        const UNCHECKED_BACKLOG_0 = 0x8000;
    }
}

/// A handle to a listener of an [`EventBase`] (libevent's `struct evconnlistener *`).
/// `Copy`; using it after [`EventBase::listener_free`], or on another base, is an error.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Listener {
    idx: u32,
    gen: u32,
    base: u32,
}

/// The accept callback (libevent's `evconnlistener_cb`): the base, the listener, the
/// accepted connection (non-blocking unless [`ListenerFlags::LEAVE_SOCKETS_BLOCKING`],
/// close-on-exec) and the peer's address. Dropping the fd closes the connection. If it
/// panics, the panic unwinds out of `run` and the listener accepts no more (free it).
pub type AcceptCallback = dyn FnMut(&mut EventBase, Listener, OwnedFd, PeerAddr);

/// The error callback (libevent's `evconnlistener_errorcb`): `accept` failed in a way that
/// paused the listener (see [`EventBase::listener_set_error_cb`]).
pub type ListenerErrorCallback = dyn FnMut(&mut EventBase, Listener, io::Error);

pub(crate) struct Entry {
    /// `None` only while being freed.
    sock: Option<Socket>,
    flags: ListenerFlags,
    read_ev: Event,
    timer: Event,
    /// The user's wish (`listener_enable`/`listener_disable`).
    enabled: bool,
    /// Backing off after a resource error: the read event is deleted, the timer pending.
    paused: bool,
    /// The next pause's length.
    backoff: Duration,
    /// `None` while it runs.
    cb: Option<Box<AcceptCallback>>,
    errcb: Option<Box<ListenerErrorCallback>>,
}

impl Drop for Entry {
    /// Reached when the base is dropped with the listener alive: the socket is closed only
    /// with `CLOSE_ON_FREE` (otherwise it stays open, as in libevent: `listener_fd` named it).
    fn drop(&mut self) {
        if let Some(s) = self.sock.take() {
            if !self.flags.contains(ListenerFlags::CLOSE_ON_FREE) {
                let _ = s.into_raw_fd();
            }
        }
    }
}

/// The listeners of one base.
#[derive(Default)]
pub(crate) struct Listeners {
    table: Table<Entry>,
}

/// A handle no base accepts, in an entry until its events are made.
const UNSET: Event = Event {
    idx: u32::MAX,
    gen: u32::MAX,
    base: u32::MAX,
};

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

impl EventBase<Local> {
    pub(crate) fn listeners(&mut self) -> &mut Listeners {
        self.ext::<Listeners>(ExtKind::Listeners)
    }

    fn check_listener_base(&self, l: Listener) -> io::Result<()> {
        if l.base != self.id() {
            return Err(invalid(
                "listener belongs to another event base (each listener lives in exactly one base)",
            ));
        }
        Ok(())
    }

    fn listener_entry(&mut self, l: Listener) -> io::Result<&mut Entry> {
        self.check_listener_base(l)?;
        self.listeners()
            .table
            .get_mut(l.idx, l.gen)
            .ok_or_else(|| stale("listener"))
    }

    fn listener_ref(&self, l: Listener) -> io::Result<&Entry> {
        self.check_listener_base(l)?;
        self.ext_ref::<Listeners>(ExtKind::Listeners)
            .and_then(|ls| ls.table.get(l.idx, l.gen))
            .ok_or_else(|| stale("listener"))
    }

    /// Binds a TCP socket to `addr` and listens on it (libevent's
    /// `evconnlistener_new_bind`): `SO_KEEPALIVE` (inherited by accepted sockets, as in
    /// libevent), the options of `flags`, then `listen(backlog)` — a negative backlog means
    /// [`DEFAULT_LISTEN_BACKLOG`]; 0 is refused (there is no socket to be "already listening").
    /// Port 0 picks a free port: read it with [`listener_local_addr`](Self::listener_local_addr).
    /// Unless [`ListenerFlags::DISABLED`], the loop accepts connections from now on, calling
    /// `cb` for each.
    ///
    /// ```
    /// use evrs::{EventBase, ListenerFlags};
    /// let mut base = EventBase::new()?;
    /// let l = base.listen("127.0.0.1:0".parse().unwrap(), ListenerFlags::CLOSE_ON_FREE, -1,
    ///     |base, l, conn, peer| {
    ///         println!("connection from {peer}");
    ///         drop(conn);
    ///         base.listener_free(l).unwrap();
    ///     })?;
    /// let addr = base.listener_local_addr(l)?.as_inet().unwrap();
    /// let _client = std::net::TcpStream::connect(addr)?;
    /// base.dispatch()?; // until the callback freed the listener
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn listen<F>(
        &mut self,
        addr: SocketAddr,
        flags: ListenerFlags,
        backlog: i32,
        cb: F,
    ) -> io::Result<Listener>
    where
        F: FnMut(&mut EventBase, Listener, OwnedFd, PeerAddr) + 'static,
    {
        if backlog == 0 {
            return Err(invalid(
                "backlog 0 means \"already listening\": use listener_from_fd for such a socket",
            ));
        }
        let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        sock.set_keepalive(true)?;
        if flags.contains(ListenerFlags::REUSEABLE) {
            sock.set_reuse_address(true)?;
        }
        if flags.contains(ListenerFlags::REUSEABLE_PORT) {
            sock.set_reuse_port(true)?;
        }
        if flags.contains(ListenerFlags::BIND_IPV6ONLY) && addr.is_ipv6() {
            sock.set_only_v6(true)?;
        }
        if flags.contains(ListenerFlags::DEFERRED_ACCEPT) {
            crate::sys::socket::set_defer_accept(sock.as_raw_fd(), 1)?;
        }
        sock.bind(&addr.into())?;
        self.install_listener(sock, flags, backlog, Box::new(cb))
    }

    /// Binds a Unix-domain stream socket to `path` and listens on it, as
    /// [`listen`](Self::listen) (the TCP options of `flags` do not apply). An existing file
    /// at `path` makes the bind fail (`AddrInUse`); the path is not removed on free.
    pub fn listen_unix<F>(
        &mut self,
        path: impl AsRef<Path>,
        flags: ListenerFlags,
        backlog: i32,
        cb: F,
    ) -> io::Result<Listener>
    where
        F: FnMut(&mut EventBase, Listener, OwnedFd, PeerAddr) + 'static,
    {
        if backlog == 0 {
            return Err(invalid(
                "backlog 0 means \"already listening\": use listener_from_fd for such a socket",
            ));
        }
        let sock = Socket::new(Domain::UNIX, Type::STREAM, None)?;
        sock.bind(&SockAddr::unix(path)?)?;
        self.install_listener(sock, flags, backlog, Box::new(cb))
    }

    /// Makes a listener of a socket the caller bound (libevent's `evconnlistener_new`): a
    /// positive `backlog` calls `listen(backlog)`, a negative one `listen(`[`DEFAULT_LISTEN_BACKLOG`]`)`,
    /// and 0 means it is listening already (checked). The socket is made non-blocking (and
    /// close-on-exec with [`ListenerFlags::CLOSE_ON_EXEC`]). On error the fd is closed.
    pub fn listener_from_fd<F>(
        &mut self,
        fd: OwnedFd,
        flags: ListenerFlags,
        backlog: i32,
        cb: F,
    ) -> io::Result<Listener>
    where
        F: FnMut(&mut EventBase, Listener, OwnedFd, PeerAddr) + 'static,
    {
        let sock = Socket::from(fd);
        if flags.contains(ListenerFlags::CLOSE_ON_EXEC) {
            sock.set_cloexec(true)?;
        }
        if backlog == 0
            && !flags.contains(ListenerFlags::UNCHECKED_BACKLOG_0)
            && !sock.is_listener()?
        {
            return Err(invalid(
                "backlog 0 means \"already listening\", but the socket is not listening",
            ));
        }
        self.install_listener(sock, flags, backlog, Box::new(cb))
    }

    fn install_listener(
        &mut self,
        sock: Socket,
        flags: ListenerFlags,
        backlog: i32,
        cb: Box<AcceptCallback>,
    ) -> io::Result<Listener> {
        sock.set_nonblocking(true)?;
        match backlog {
            b if b > 0 => sock.listen(b)?,
            b if b < 0 => sock.listen(DEFAULT_LISTEN_BACKLOG)?,
            _ => {}
        }
        let fd = sock.as_raw_fd();
        let (idx, gen) = self.listeners().table.insert(Entry {
            sock: Some(sock),
            flags,
            read_ev: UNSET,
            timer: UNSET,
            enabled: !flags.contains(ListenerFlags::DISABLED),
            paused: false,
            backoff: accept::INITIAL_BACKOFF,
            cb: Some(cb),
            errcb: None,
        });
        let l = Listener {
            idx,
            gen,
            base: self.id(),
        };
        match self.listener_events(l, fd) {
            Ok(()) => Ok(l),
            Err(e) => {
                // Undo: free what was made; the socket is closed (it was handed to us).
                if let Some(mut entry) = self.listeners().table.remove(idx, gen) {
                    let _ = self.free(entry.read_ev);
                    let _ = self.free(entry.timer);
                    drop(entry.sock.take());
                    drop(entry);
                }
                Err(e)
            }
        }
    }

    /// Makes the listener's two events (and adds the read event if enabled).
    fn listener_events(&mut self, l: Listener, fd: RawFd) -> io::Result<()> {
        let read_ev = self.new_event(fd, What::READ | What::PERSIST, move |base, _ev, _what| {
            accept::on_readable(base, l)
        })?;
        self.listener_entry(l)?.read_ev = read_ev;
        let timer = self.new_timer(move |base, _ev, _what| accept::resume(base, l))?;
        let e = self.listener_entry(l)?;
        e.timer = timer;
        if e.enabled {
            self.add(read_ev, None)?;
        }
        Ok(())
    }

    /// Starts accepting again (libevent's `evconnlistener_enable`). Connections that queued
    /// in the backlog meanwhile are accepted by the loop's next iterations. During a
    /// back-off pause, accepting resumes when it ends. Enabling an enabled listener does
    /// nothing.
    pub fn listener_enable(&mut self, l: Listener) -> io::Result<()> {
        let e = self.listener_entry(l)?;
        e.enabled = true;
        if e.paused {
            return Ok(());
        }
        let ev = e.read_ev;
        self.add(ev, None)
    }

    /// Stops accepting (libevent's `evconnlistener_disable`): the socket stays open and
    /// connections queue in its backlog (and are refused once it is full). From an accept
    /// callback, the rest of the batch is left queued. Ends a back-off pause: a later
    /// [`listener_enable`](Self::listener_enable) accepts at once.
    pub fn listener_disable(&mut self, l: Listener) -> io::Result<()> {
        let e = self.listener_entry(l)?;
        e.enabled = false;
        let paused = std::mem::replace(&mut e.paused, false);
        let (read_ev, timer) = (e.read_ev, e.timer);
        self.del(read_ev)?;
        if paused {
            self.del(timer)?;
        }
        Ok(())
    }

    /// Frees a listener (libevent's `evconnlistener_free`): its events are freed, and its
    /// socket is closed with [`ListenerFlags::CLOSE_ON_FREE`], or else handed back (dropping
    /// it closes it). Safe from any callback, the listener's own included (the running
    /// callback is dropped when it returns; the rest of the accept batch is not run). The
    /// handle is stale afterwards.
    pub fn listener_free(&mut self, l: Listener) -> io::Result<Option<OwnedFd>> {
        self.listener_entry(l)?;
        let Some(mut e) = self.listeners().table.remove(l.idx, l.gen) else {
            return Err(stale("listener"));
        };
        // The events go first, so no backend watches the socket when it closes.
        let _ = self.free(e.read_ev);
        let _ = self.free(e.timer);
        let sock = e.sock.take();
        let fd = match sock {
            Some(s) if !e.flags.contains(ListenerFlags::CLOSE_ON_FREE) => Some(OwnedFd::from(s)),
            other => {
                drop(other);
                None
            }
        };
        // The user's closures are dropped last (their destructors may be arbitrary code).
        drop(e);
        Ok(fd)
    }

    /// The listening socket (libevent's `evconnlistener_get_fd`).
    pub fn listener_fd(&self, l: Listener) -> io::Result<RawFd> {
        self.listener_ref(l)?
            .sock
            .as_ref()
            .map(|s| s.as_raw_fd())
            .ok_or_else(|| stale("listener"))
    }

    /// The address the listener is bound to (`getsockname`): with port 0, the port picked.
    pub fn listener_local_addr(&self, l: Listener) -> io::Result<PeerAddr> {
        let e = self.listener_ref(l)?;
        let sock = e.sock.as_ref().ok_or_else(|| stale("listener"))?;
        Ok(PeerAddr::from_sockaddr(&sock.local_addr()?))
    }

    /// Replaces the accept callback (libevent's `evconnlistener_set_cb`). From inside the
    /// callback, the new one is used from the next connection on.
    pub fn listener_set_cb<F>(&mut self, l: Listener, cb: F) -> io::Result<()>
    where
        F: FnMut(&mut EventBase, Listener, OwnedFd, PeerAddr) + 'static,
    {
        let old = self.listener_entry(l)?.cb.replace(Box::new(cb));
        drop(old);
        Ok(())
    }

    /// Sets the error callback (libevent's `evconnlistener_set_error_cb`), called when
    /// `accept` fails in a way that retrying at once would repeat: out of fds (`EMFILE`,
    /// `ENFILE`) or memory (`ENOBUFS`, `ENOMEM`), or an unexpected error. Such an error
    /// **pauses** the listener instead of spinning: its read event is deleted, this callback
    /// runs once with the error (without one, a warning is logged), and accepting resumes
    /// after a back-off of 10 ms, doubling up to 1 s while it keeps failing and reset by a
    /// successful accept. Meanwhile connections wait in the backlog. (libevent stays enabled
    /// and spins at 100% CPU.) Errors that concern one connection (`ECONNABORTED`, `EPROTO`,
    /// `EINTR`, network errors) skip it silently.
    pub fn listener_set_error_cb<F>(&mut self, l: Listener, cb: F) -> io::Result<()>
    where
        F: FnMut(&mut EventBase, Listener, io::Error) + 'static,
    {
        let old = self.listener_entry(l)?.errcb.replace(Box::new(cb));
        drop(old);
        Ok(())
    }
}
