//! The echo server of [`echo_bev`](crate::echo_bev) over TLS: per connection, a socket
//! bufferevent and over it a TLS server bufferevent ([`evrs_tls`], with rustls). The TLS
//! bufferevent is a filter: the handler sees plaintext and echoes it exactly as the plain
//! server does, with the same backpressure.
//!
//! The certificate is self-signed, made at start-up with `rcgen` ([`Identity::generate`]);
//! a client trusts it by its DER ([`Identity::cert_der`], [`client_config`]).
//!
//! Closing differs from plain TCP: the client's end of file is its `close_notify`. We answer
//! with ours once the echo still waiting is encrypted ([`Flush::Finished`]: `close_notify`,
//! then the socket's write side is shut down when its output has drained), and free the
//! connection when the peer closes its socket, after an error, or after [`LINGER`] without
//! either. Freeing at once would drop encrypted bytes still in the socket's output.

use crate::echo_bev::{Counters, MAX_PENDING};
use evrs::bufferevent::{BevCtx, BevEvents, BevHandler, BevOptions, Flush};
use evrs::{EventBase, ListenerFlags, What};
use evrs_tls::{TlsBufferEvents, TlsOptions};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::io;
use std::net::TcpListener;
use std::os::fd::{IntoRawFd, OwnedFd};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// The port `tls_echo` listens on by default.
pub const DEFAULT_PORT: u16 = 40715;
/// How long a closing connection waits for its peer to close.
pub const LINGER: Duration = Duration::from_secs(10);

/// The server's certificate and private key.
pub struct Identity {
    cert: CertificateDer<'static>,
    cert_pem: String,
    key_der: Vec<u8>,
}

impl Identity {
    /// A fresh self-signed certificate for `localhost` and `127.0.0.1`.
    pub fn generate() -> io::Result<Identity> {
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let c = rcgen::generate_simple_self_signed(names).map_err(io::Error::other)?;
        Ok(Identity {
            cert: c.cert.der().clone(),
            cert_pem: c.cert.pem(),
            key_der: c.key_pair.serialize_der(),
        })
    }

    /// The certificate (DER), for a client to trust.
    pub fn cert_der(&self) -> CertificateDer<'static> {
        self.cert.clone()
    }

    /// The certificate as PEM (what `openssl s_client -CAfile` reads).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The rustls server configuration serving this certificate.
    pub fn server_config(&self) -> io::Result<Arc<ServerConfig>> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()));
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(vec![self.cert.clone()], key)
            .map_err(io::Error::other)?;
        Ok(Arc::new(config))
    }
}

/// A rustls client configuration that trusts `cert` (and nothing else).
pub fn client_config(cert: CertificateDer<'static>) -> io::Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    roots.add(cert).map_err(io::Error::other)?;
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Where a connection is in its life.
#[derive(PartialEq)]
enum State {
    Open,
    /// The peer sent `close_notify`: the echo still waiting goes out first.
    Draining,
    /// Our `close_notify` is sent: waiting for the peer to close its socket.
    Finished,
}

/// One client's callbacks and state (on the TLS bufferevent: all plaintext).
struct TlsEcho {
    counters: Rc<Counters>,
    state: State,
}

impl BevHandler for TlsEcho {
    fn read(&mut self, bev: &mut BevCtx<'_>) {
        let (input, output) = bev.buffers();
        let n = input.len() as u64;
        if output.add_buffer(input).is_err() {
            return self.close(bev);
        }
        self.counters.echoed.set(self.counters.echoed.get() + n);
        if bev.output().len() >= MAX_PENDING {
            self.counters.paused.set(self.counters.paused.get() + 1);
            let _ = bev.disable(What::READ);
        }
    }

    fn write(&mut self, bev: &mut BevCtx<'_>) {
        match self.state {
            State::Open => {
                let _ = bev.enable(What::READ);
            }
            State::Draining if bev.output().is_empty() => self.finish(bev),
            _ => {}
        }
    }

    fn event(&mut self, bev: &mut BevCtx<'_>, what: BevEvents) {
        if what == BevEvents::CONNECTED {
            return; // the handshake is done
        }
        if self.state != State::Open || !what.contains(BevEvents::EOF) {
            // An error, a dirty shutdown, a timeout, or the peer's close after ours.
            return self.close(bev);
        }
        // The peer's close_notify.
        self.state = State::Draining;
        if bev.output().is_empty() {
            self.finish(bev);
        } else {
            let _ = bev.set_watermark(What::WRITE, 0, 0); // `write` runs once all is out
        }
    }
}

impl TlsEcho {
    /// Sends our `close_notify` and waits (at most [`LINGER`]) for the peer to close.
    fn finish(&mut self, bev: &mut BevCtx<'_>) {
        self.state = State::Finished;
        let me = bev.handle();
        let base = bev.base();
        let _ = base.bev_flush(me, Flush::Finished);
        if let Ok(Some(socket)) = base.bev_underlying(me) {
            let _ = base.bev_set_timeouts(socket, Some(LINGER), Some(LINGER));
        }
        let _ = bev.enable(What::READ); // to see the peer's end of file
    }

    fn close(&mut self, bev: &mut BevCtx<'_>) {
        self.counters.closed.set(self.counters.closed.get() + 1);
        bev.free(); // the socket bufferevent under it too (CLOSE_ON_FREE)
    }
}

/// Sets up the TLS echo server on `base` for `listener`, serving `identity`'s certificate.
pub fn listen(
    base: &mut EventBase,
    listener: TcpListener,
    identity: &Identity,
) -> io::Result<Rc<Counters>> {
    let config = identity.server_config()?;
    let counters = Rc::new(Counters::default());
    let c = counters.clone();
    let l = base.listener_from_fd(
        OwnedFd::from(listener),
        ListenerFlags::CLOSE_ON_FREE,
        0, // already listening
        move |base, _l, fd, _peer| {
            if let Err(e) = serve(base, fd, config.clone(), c.clone()) {
                eprintln!("tls_echo: cannot take a connection: {e}");
            }
        },
    )?;
    base.listener_set_error_cb(l, |_, _, e| eprintln!("tls_echo: accept paused: {e}"))?;
    Ok(counters)
}

/// A socket bufferevent for a new client, and a TLS server bufferevent over it.
fn serve(
    base: &mut EventBase,
    fd: OwnedFd,
    config: Arc<ServerConfig>,
    counters: Rc<Counters>,
) -> io::Result<()> {
    let socket = base.bufferevent_socket(fd.into_raw_fd(), BevOptions::CLOSE_ON_FREE)?;
    let tls = match base.bufferevent_tls_server(
        socket,
        config,
        TlsOptions::default(),
        BevOptions::CLOSE_ON_FREE,
    ) {
        Ok(tls) => tls,
        Err(e) => {
            let _ = base.bev_free(socket);
            return Err(e);
        }
    };
    counters.accepted.set(counters.accepted.get() + 1);
    let echo = TlsEcho {
        counters,
        state: State::Open,
    };
    base.bev_set_handler(tls, echo)?;
    base.bev_setwatermark(tls, What::WRITE, MAX_PENDING / 2, 0)?;
    base.bev_enable(tls, What::READ | What::WRITE)
}
