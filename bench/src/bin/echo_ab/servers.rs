//! The servers: evrs bufferevents, libevent bufferevents (C), a raw epoll loop, tokio.

use super::*;
// ---------------------------------------------------------------------------------------
// The servers.

pub(crate) trait Server {
    /// Runs the loop until `total` connections have been accepted since the start.
    fn accept_until(&mut self, total: usize) -> io::Result<()>;
    /// Echoes until the stop fd is readable.
    fn serve(&mut self) -> io::Result<()>;
}

/// evrs: the listener is a plain READ event; a socket bufferevent per connection whose
/// handler moves the input to the output.
pub(crate) struct EvrsEcho {
    pub(crate) base: EventBase,
    pub(crate) accepted: Rc<Cell<usize>>,
    // After `base`: its events name this fd.
    pub(crate) _listener: TcpListener,
}

pub(crate) struct Echo;

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
    fn wants_write(&self) -> bool {
        false
    }
}

impl EvrsEcho {
    pub(crate) fn new(l: TcpListener, stop_fd: RawFd, m: Method) -> io::Result<EvrsEcho> {
        let mut base = EventConfig::new().method(m).build()?;
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
        let stop = base.new_event(stop_fd, What::READ | What::PERSIST, move |base, _, _| {
            // io_uring may report a readiness already consumed (the harness read the line
            // after the kernel's wake-up and before this wait): ask the pipe.
            if readable_now(stop_fd) {
                base.loopbreak();
            }
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
pub(crate) struct RawEcho {
    pub(crate) ep: OwnedFd,
    pub(crate) listener: TcpListener,
    pub(crate) stop_fd: RawFd,
    pub(crate) conns: HashSet<RawFd>,
    pub(crate) accepted: usize,
    pub(crate) events: Vec<libc::epoll_event>,
}

impl RawEcho {
    pub(crate) fn new(l: TcpListener, stop_fd: RawFd) -> io::Result<RawEcho> {
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
    pub(crate) fn turn(&mut self) -> io::Result<bool> {
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
pub(crate) struct TokioEcho {
    // Dropped first: cancels the connection tasks while the runtime still exists.
    pub(crate) local: tokio::task::LocalSet,
    pub(crate) listener: tokio::net::TcpListener,
    pub(crate) stop: tokio::io::unix::AsyncFd<StopFd>,
    pub(crate) accepted: usize,
    pub(crate) rt: tokio::runtime::Runtime,
}

pub(crate) struct StopFd(RawFd);

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
    pub(crate) fn new(l: TcpListener, stop_fd: RawFd) -> io::Result<TokioEcho> {
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

/// evrs::rt: tokio's echo shape (a task per connection, `read` + `write_all` with a 1 KiB
/// buffer) on an evrs base.
pub(crate) struct EvrsAsyncEcho {
    pub(crate) rt: Option<evrs::rt::Runtime>,
    pub(crate) base: EventBase,
    pub(crate) listener: Rc<evrs::rt::TcpListener>,
    pub(crate) stop: Rc<evrs::rt::Async<StopFd>>,
    pub(crate) accepted: usize,
}

impl std::os::fd::AsFd for StopFd {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        // SAFETY: the client's stdout pipe outlives every server (see `TokioEcho::new`).
        unsafe { std::os::fd::BorrowedFd::borrow_raw(self.0) }
    }
}

async fn evrs_async_echo(s: evrs::rt::TcpStream) {
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

impl EvrsAsyncEcho {
    pub(crate) fn new(l: TcpListener, stop_fd: RawFd, m: Method) -> io::Result<EvrsAsyncEcho> {
        let mut base = EventConfig::new().method(m).build()?;
        let rt = evrs::rt::Runtime::new(&mut base)?;
        let stop = evrs::rt::Async::new(StopFd(stop_fd))?;
        // `Async::new` made the client's pipe non-blocking; the harness reads it blocking
        // (and this server only waits for it to be readable).
        // SAFETY: F_GETFL/F_SETFL on an open fd take integer arguments.
        unsafe {
            let flags = libc::fcntl(stop_fd, libc::F_GETFL);
            libc::fcntl(stop_fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
        }
        Ok(EvrsAsyncEcho {
            listener: Rc::new(evrs::rt::TcpListener::from_std(l)?),
            stop: Rc::new(stop),
            rt: Some(rt),
            base,
            accepted: 0,
        })
    }
}

impl Server for EvrsAsyncEcho {
    fn accept_until(&mut self, total: usize) -> io::Result<()> {
        let rt = self.rt.as_ref().expect("runtime until drop");
        let (listener, start) = (self.listener.clone(), self.accepted);
        let accepted = rt.block_on(&mut self.base, async move {
            let mut accepted = start;
            while accepted < total {
                let (s, _) = listener.accept().await?;
                evrs::rt::spawn(evrs_async_echo(s))?.detach();
                accepted += 1;
            }
            Ok::<_, io::Error>(accepted)
        })??;
        self.accepted = accepted;
        Ok(())
    }
    fn serve(&mut self) -> io::Result<()> {
        let rt = self.rt.as_ref().expect("runtime until drop");
        let stop = self.stop.clone();
        rt.block_on(&mut self.base, async move {
            loop {
                stop.readable().await?;
                // A readiness may be one already consumed (io_uring reports wake-ups, and
                // the harness reads this pipe): ask it.
                if readable_now(stop.get_ref().0) {
                    return Ok(());
                }
            }
        })?
    }
}

impl Drop for EvrsAsyncEcho {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown(&mut self.base);
        }
    }
}

/// smol (async-executor's `LocalExecutor` + async-io's reactor): the same echo task.
pub(crate) struct SmolEcho {
    pub(crate) ex: Rc<async_executor::LocalExecutor<'static>>,
    pub(crate) listener: Rc<async_io::Async<TcpListener>>,
    pub(crate) stop: Rc<async_io::Async<StopFd>>,
    pub(crate) accepted: usize,
}

async fn smol_echo(mut s: async_io::Async<std::net::TcpStream>) {
    use futures_lite::{AsyncReadExt, AsyncWriteExt};
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

impl SmolEcho {
    pub(crate) fn new(l: TcpListener, stop_fd: RawFd) -> io::Result<SmolEcho> {
        let stop = async_io::Async::new(StopFd(stop_fd))?;
        // As for evrs-async: the harness reads this pipe blocking.
        // SAFETY: F_GETFL/F_SETFL on an open fd take integer arguments.
        unsafe {
            let flags = libc::fcntl(stop_fd, libc::F_GETFL);
            libc::fcntl(stop_fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
        }
        Ok(SmolEcho {
            ex: Rc::new(async_executor::LocalExecutor::new()),
            listener: Rc::new(async_io::Async::new(l)?),
            stop: Rc::new(stop),
            accepted: 0,
        })
    }
}

impl Server for SmolEcho {
    fn accept_until(&mut self, total: usize) -> io::Result<()> {
        let (ex, listener, start) = (self.ex.clone(), self.listener.clone(), self.accepted);
        let accepted = async_io::block_on(self.ex.run(async move {
            let mut accepted = start;
            while accepted < total {
                let (s, _) = listener.accept().await?;
                ex.spawn(smol_echo(s)).detach();
                accepted += 1;
            }
            Ok::<_, io::Error>(accepted)
        }))?;
        self.accepted = accepted;
        Ok(())
    }
    fn serve(&mut self) -> io::Result<()> {
        let stop = self.stop.clone();
        async_io::block_on(self.ex.run(async move { stop.readable().await }))
    }
}

#[cfg(have_libevent)]
pub(crate) mod libevent {
    use std::ffi::c_int;
    use std::io;
    use std::net::TcpListener;
    use std::os::fd::{IntoRawFd, RawFd};

    #[link(name = "evrs_libevent_chain", kind = "static")]
    #[link(name = "event_core")]
    extern "C" {
        fn evrs_echo_libevent_new(
            listen_fd: c_int,
            stop_fd: c_int,
            cap: usize,
            plain: c_int,
        ) -> c_int;
        fn evrs_echo_libevent_accept_until(plain: c_int, total: usize) -> c_int;
        fn evrs_echo_libevent_serve(plain: c_int) -> c_int;
        fn evrs_echo_libevent_free(plain: c_int);
    }

    /// A C server: on bufferevents, or (`plain`) on plain events that read and write the
    /// socket. One of each kind at a time (each lives in C globals).
    pub struct Echo {
        plain: c_int,
    }

    impl Echo {
        pub fn new(l: TcpListener, stop_fd: RawFd, cap: usize, plain: bool) -> io::Result<Echo> {
            let plain = c_int::from(plain);
            // SAFETY: one server of this kind at a time (the previous one was dropped); the
            // C side takes the listening fd.
            match unsafe { evrs_echo_libevent_new(l.into_raw_fd(), stop_fd, cap, plain) } {
                0 => Ok(Echo { plain }),
                _ => Err(io::Error::other("libevent echo setup failed")),
            }
        }
    }

    impl Drop for Echo {
        fn drop(&mut self) {
            // SAFETY: frees what `new` built.
            unsafe { evrs_echo_libevent_free(self.plain) }
        }
    }

    impl super::Server for Echo {
        fn accept_until(&mut self, total: usize) -> io::Result<()> {
            // SAFETY: the server was built by `new`.
            match unsafe { evrs_echo_libevent_accept_until(self.plain, total) } {
                0 => Ok(()),
                _ => Err(io::Error::other("libevent accept loop failed")),
            }
        }
        fn serve(&mut self) -> io::Result<()> {
            // SAFETY: the server was built by `new`.
            match unsafe { evrs_echo_libevent_serve(self.plain) } {
                0 => Ok(()),
                _ => Err(io::Error::other("libevent loop failed")),
            }
        }
    }
}

pub(crate) fn build(
    name: &str,
    l: TcpListener,
    stop_fd: RawFd,
    cap: usize,
) -> io::Result<Box<dyn Server>> {
    let _ = cap;
    Ok(match name {
        "evrs" => Box::new(EvrsEcho::new(l, stop_fd, Method::Epoll)?),
        "evrs-uring" => Box::new(EvrsEcho::new(l, stop_fd, Method::IoUring)?),
        "raw-epoll" => Box::new(RawEcho::new(l, stop_fd)?),
        "raw-uring" => Box::new(super::raw_uring::RawUringEcho::new(l, stop_fd)?),
        "tokio" => Box::new(TokioEcho::new(l, stop_fd)?),
        "evrs-async" => Box::new(EvrsAsyncEcho::new(l, stop_fd, Method::Epoll)?),
        "evrs-async-uring" => Box::new(EvrsAsyncEcho::new(l, stop_fd, Method::IoUring)?),
        "smol" => Box::new(SmolEcho::new(l, stop_fd)?),
        #[cfg(have_libevent)]
        "libevent" => Box::new(libevent::Echo::new(l, stop_fd, cap, false)?),
        #[cfg(have_libevent)]
        "libevent-events" => Box::new(libevent::Echo::new(l, stop_fd, cap, true)?),
        other => return Err(io::Error::other(format!("unknown server {other}"))),
    })
}
