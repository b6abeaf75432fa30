//! The two TLS echo servers: evrs (a socket bufferevent under `bufferevent_tls_server`,
//! rustls) and libevent (`bufferevent_openssl_socket_new`, OpenSSL; C, linked in).

use super::*;
use evrs::bufferevent::{BevCtx, BevEvents, BevHandler, BevOptions};
use evrs::{EventBase, EventConfig, LoopFlags, Method, What};
use evrs_tls::{tls_info, TlsBufferEvents, TlsOptions};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

pub(crate) trait Server {
    /// Runs the loop until `total` handshakes have completed since the server was built;
    /// an error if one failed or the client stopped first.
    fn handshake_until(&mut self, total: usize) -> io::Result<()>;
    /// Echoes until the stop fd is readable.
    fn serve(&mut self) -> io::Result<()>;
    /// What the server says its first handshake negotiated ("version cipher").
    fn negotiated(&self) -> String;
}

/// What the evrs connections report to the server.
#[derive(Default)]
struct Counters {
    handshakes: Cell<usize>,
    failures: Cell<usize>,
    stopped: Cell<bool>,
    negotiated: RefCell<String>,
}

/// evrs: the listener is a plain READ event (as in `echo_ab`); per connection a socket
/// bufferevent and over it a TLS server bufferevent whose handler moves the plaintext input
/// to the output.
pub(crate) struct EvrsTls {
    base: EventBase,
    counters: Rc<Counters>,
    // After `base`: its events name this fd.
    _listener: TcpListener,
}

struct TlsEcho {
    counters: Rc<Counters>,
    connected: bool,
}

impl BevHandler for TlsEcho {
    fn read(&mut self, bev: &mut BevCtx<'_>) {
        let (input, output) = bev.buffers();
        let _ = output.add_buffer(input);
    }
    fn event(&mut self, bev: &mut BevCtx<'_>, what: BevEvents) {
        let c = &self.counters;
        if what.contains(BevEvents::CONNECTED) && !self.connected {
            self.connected = true;
            c.handshakes.set(c.handshakes.get() + 1);
            if c.handshakes.get() == 1 {
                let h = bev.handle();
                if let Some(info) = tls_info(bev.base(), h) {
                    *c.negotiated.borrow_mut() = format!(
                        "{} {}",
                        info.version.unwrap_or_default(),
                        info.cipher.unwrap_or_default()
                    );
                }
            }
        }
        if what.intersects(BevEvents::EOF | BevEvents::ERROR) {
            if !self.connected {
                c.failures.set(c.failures.get() + 1);
                let h = bev.handle();
                if let Ok(Some(why)) = bev.base().bev_filter_error(h) {
                    eprintln!("evrs: handshake failed: {why}");
                }
            }
            bev.free();
        }
    }
}

impl EvrsTls {
    pub(crate) fn new(
        l: TcpListener,
        stop_fd: RawFd,
        config: Arc<rustls::ServerConfig>,
    ) -> io::Result<EvrsTls> {
        let mut base = EventConfig::new().method(Method::Epoll).build()?;
        let counters = Rc::new(Counters::default());
        let (lfd, c) = (l.as_raw_fd(), counters.clone());
        let ev = base.new_event(lfd, What::READ | What::PERSIST, move |base, _, _| {
            // Bounded by the accept queue: stops at EAGAIN.
            while let Ok(Some(fd)) = accept(lfd) {
                let made = base
                    .bufferevent_socket(fd, BevOptions::CLOSE_ON_FREE)
                    .and_then(|sock| {
                        base.bufferevent_tls_server(
                            sock,
                            config.clone(),
                            TlsOptions::default(),
                            BevOptions::CLOSE_ON_FREE,
                        )
                    })
                    .and_then(|tls| {
                        let h = TlsEcho {
                            counters: c.clone(),
                            connected: false,
                        };
                        base.bev_set_handler(tls, h)?;
                        base.bev_enable(tls, What::READ | What::WRITE)
                    });
                if let Err(e) = made {
                    eprintln!("evrs: TLS bufferevent: {e}");
                    c.failures.set(c.failures.get() + 1);
                }
            }
        })?;
        base.add(ev, None)?;
        let c = counters.clone();
        let stop = base.new_event(stop_fd, What::READ | What::PERSIST, move |base, _, _| {
            c.stopped.set(true);
            base.loopbreak();
        })?;
        base.add(stop, None)?;
        Ok(EvrsTls {
            base,
            counters,
            _listener: l,
        })
    }
}

impl Server for EvrsTls {
    fn handshake_until(&mut self, total: usize) -> io::Result<()> {
        let c = &self.counters;
        c.stopped.set(false);
        // Bounded: each turn blocks until something happens; a client that gives up exits,
        // which makes the stop fd readable.
        while c.handshakes.get() < total {
            if c.failures.get() > 0 || c.stopped.get() {
                return Err(io::Error::other(format!(
                    "evrs: {} handshakes done, {} failed, client stopped: {}",
                    c.handshakes.get(),
                    c.failures.get(),
                    c.stopped.get()
                )));
            }
            self.base.run(LoopFlags::ONCE)?;
        }
        Ok(())
    }
    fn serve(&mut self) -> io::Result<()> {
        self.base.dispatch().map(drop)
    }
    fn negotiated(&self) -> String {
        self.counters.negotiated.borrow().clone()
    }
}

#[cfg(have_libevent_openssl)]
pub(crate) mod libevent {
    use std::ffi::{c_char, c_int, CStr, CString};
    use std::io;
    use std::net::TcpListener;
    use std::os::fd::{IntoRawFd, RawFd};
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    #[link(name = "evrs_libevent_tls", kind = "static")]
    #[link(name = "event_openssl")]
    #[link(name = "event_core")]
    #[link(name = "ssl")]
    #[link(name = "crypto")]
    extern "C" {
        fn evrs_tls_libevent_load(cert: *const c_char, key: *const c_char) -> c_int;
        fn evrs_tls_libevent_unload();
        fn evrs_tls_libevent_new(listen_fd: c_int, stop_fd: c_int, cap: usize) -> c_int;
        fn evrs_tls_libevent_handshake_until(total: usize) -> c_int;
        fn evrs_tls_libevent_serve() -> c_int;
        fn evrs_tls_libevent_negotiated() -> *const c_char;
        fn evrs_tls_libevent_free();
    }

    fn c_path(p: &Path) -> io::Result<CString> {
        CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other)
    }

    /// The C side's SSL_CTX (one per process, in a C global), loaded with the certificate.
    pub(crate) struct Ctx;

    impl Ctx {
        pub(crate) fn load(cert: &Path, key: &Path) -> io::Result<Ctx> {
            let (cert, key) = (c_path(cert)?, c_path(key)?);
            // SAFETY: called once per process (main); the paths are NUL-terminated and
            // outlive the call.
            match unsafe { evrs_tls_libevent_load(cert.as_ptr(), key.as_ptr()) } {
                0 => Ok(Ctx),
                _ => Err(io::Error::other(
                    "libevent TLS echo: loading the certificate into OpenSSL failed",
                )),
            }
        }
    }

    impl Drop for Ctx {
        fn drop(&mut self) {
            // SAFETY: the servers using the SSL_CTX are gone (each is dropped at the end of
            // its round; this lives in main's `Shared`).
            unsafe { evrs_tls_libevent_unload() }
        }
    }

    /// The C server (one at a time: it lives in C globals).
    pub(crate) struct Echo;

    impl Echo {
        pub(crate) fn new(
            l: TcpListener,
            stop_fd: RawFd,
            cap: usize,
            _ctx: &Ctx,
        ) -> io::Result<Echo> {
            // SAFETY: one server at a time (the previous one was dropped), the SSL_CTX is
            // loaded (`_ctx`); the C side takes the listening fd.
            let r = unsafe { evrs_tls_libevent_new(l.into_raw_fd(), stop_fd, cap) };
            // Dropped (and so freed) on failure too: `free` undoes a partial `new`.
            let echo = Echo;
            match r {
                0 => Ok(echo),
                _ => Err(io::Error::other("libevent TLS echo setup failed")),
            }
        }
    }

    impl Drop for Echo {
        fn drop(&mut self) {
            // SAFETY: frees what `new` built (NULL-safe for what it did not get to).
            unsafe { evrs_tls_libevent_free() }
        }
    }

    impl super::Server for Echo {
        fn handshake_until(&mut self, total: usize) -> io::Result<()> {
            // SAFETY: the server was built by `new`.
            match unsafe { evrs_tls_libevent_handshake_until(total) } {
                0 => Ok(()),
                _ => Err(io::Error::other(
                    "libevent: a handshake failed or the client stopped",
                )),
            }
        }
        fn serve(&mut self) -> io::Result<()> {
            // SAFETY: the server was built by `new`.
            match unsafe { evrs_tls_libevent_serve() } {
                0 => Ok(()),
                _ => Err(io::Error::other("libevent loop failed")),
            }
        }
        fn negotiated(&self) -> String {
            // SAFETY: the C side returns a pointer to its NUL-terminated static buffer,
            // valid until the next `new`; copied at once.
            unsafe { CStr::from_ptr(evrs_tls_libevent_negotiated()) }
                .to_string_lossy()
                .into_owned()
        }
    }
}

/// What every server built shares for the whole run, as a long-running server would: the
/// evrs server's rustls configuration and the C server's loaded SSL_CTX.
pub(crate) struct Shared {
    evrs: Arc<rustls::ServerConfig>,
    #[cfg(have_libevent_openssl)]
    libevent: libevent::Ctx,
}

impl Shared {
    pub(crate) fn new(pki: &Pki) -> io::Result<Shared> {
        Ok(Shared {
            evrs: pki.server_config()?,
            #[cfg(have_libevent_openssl)]
            libevent: libevent::Ctx::load(&pki.cert_pem(), &pki.key_pem())?,
        })
    }
}

/// Server `name` on `l` for up to `cap` connections.
pub(crate) fn build(
    name: &str,
    l: TcpListener,
    stop_fd: RawFd,
    cap: usize,
    shared: &Shared,
) -> io::Result<Box<dyn Server>> {
    let _ = cap;
    Ok(match name {
        "evrs" => Box::new(EvrsTls::new(l, stop_fd, shared.evrs.clone())?),
        #[cfg(have_libevent_openssl)]
        "libevent" => Box::new(libevent::Echo::new(l, stop_fd, cap, &shared.libevent)?),
        other => return Err(io::Error::other(format!("unknown server {other}"))),
    })
}
