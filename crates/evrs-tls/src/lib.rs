//! # evrs-tls — TLS bufferevents with rustls
//!
//! libevent's `bufferevent_openssl`, without OpenSSL: a TLS client or server bufferevent is
//! a [`Codec`] filter over another bufferevent (usually a socket one), so everything a
//! bufferevent does — callbacks, watermarks, rate limits, freeing from a callback — works
//! on the plaintext side. The handshake runs as soon as the bufferevent is made; its end is
//! reported as [`BevEvents::CONNECTED`], a failure (an unknown certificate issuer, a
//! name mismatch, an alert, garbage records) as `ERROR` with a readable reason in
//! [`EventBase::bev_filter_error`]. A `close_notify` from the peer is `READING|EOF`; a
//! connection closed without one (a "dirty shutdown", which a truncation attack looks
//! like) is `ERROR` unless [`TlsOptions::allow_dirty_shutdown`] is set.
//!
//! Configuration — certificates, trust roots, ALPN protocols, SNI — is rustls's own
//! `ClientConfig` / `ServerConfig`.
//!
//! ```no_run
//! use evrs::bufferevent::{BevEvents, BevOptions};
//! use evrs::{EventBase, What};
//! use evrs_tls::{TlsBufferEvents, TlsOptions};
//! use std::sync::Arc;
//! # fn config() -> Arc<rustls::ClientConfig> { unimplemented!() }
//! let mut base = EventBase::new()?;
//! let sock = base.bufferevent_socket(-1, BevOptions::CLOSE_ON_FREE)?;
//! base.bev_connect(sock, "127.0.0.1:4433".parse().unwrap())?;
//! let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
//! let tls = base.bufferevent_tls_client(sock, config(), name, TlsOptions::default(), BevOptions::CLOSE_ON_FREE)?;
//! base.bev_enable(tls, What::READ | What::WRITE)?;
//! base.bev_write(tls, b"hello over TLS")?;
//! # Ok::<(), std::io::Error>(())
//! ```

use evrs::buffer::EvBuffer;
use evrs::bufferevent::{BevEvents, BevOptions, BufferEvent, Codec, FilterResult, Flush};
use evrs::EventBase;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};
use std::io::{self, BufRead, Write};
use std::sync::Arc;

/// How a TLS bufferevent treats the end of its connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// Report a close without `close_notify` as `EOF` instead of `ERROR` (libevent's
    /// `bufferevent_openssl_set_allow_dirty_shutdown`): for peers known to skip it.
    pub allow_dirty_shutdown: bool,
}

/// The codec: one rustls connection between the wire and the program.
pub struct TlsCodec {
    conn: Connection,
    opts: TlsOptions,
    connected: bool,
    closed: bool,
    events: BevEvents,
    error: Option<String>,
}

impl TlsCodec {
    /// A codec for a rustls connection (client or server).
    pub fn new(conn: Connection, opts: TlsOptions) -> TlsCodec {
        TlsCodec {
            conn,
            opts,
            connected: false,
            closed: false,
            events: BevEvents::empty(),
            error: None,
        }
    }

    fn flush_tls(&mut self, out: &mut EvBuffer) {
        // Bounded: each round writes what rustls has queued; it stops wanting to write.
        for _ in 0..64 {
            if !self.conn.wants_write() {
                break;
            }
            if self.conn.write_tls(out).is_err() {
                break;
            }
        }
    }

    fn fail(&mut self, why: String, reply: &mut EvBuffer) -> FilterResult {
        self.error = Some(why);
        // An alert, if rustls queued one, tells the peer why.
        self.flush_tls(reply);
        FilterResult::Error
    }
}

impl Codec for TlsCodec {
    fn decode(
        &mut self,
        wire: &mut EvBuffer,
        plain: &mut EvBuffer,
        reply: &mut EvBuffer,
        limit: Option<usize>,
        _mode: Flush,
    ) -> FilterResult {
        if self.error.is_some() {
            let n = wire.len();
            let _ = wire.drain(n);
            return FilterResult::Error;
        }
        // Bounded by the wire data: each round consumes some of it, or stops.
        loop {
            let before = wire.len();
            if before > 0 {
                if let Err(e) = self.conn.read_tls(wire) {
                    return self.fail(format!("TLS read: {e}"), reply);
                }
                if let Err(e) = self.conn.process_new_packets() {
                    return self.fail(format!("TLS: {e}"), reply);
                }
            }
            if !self.connected && !self.conn.is_handshaking() {
                self.connected = true;
                self.events |= BevEvents::CONNECTED;
            }
            // Plaintext out, within the limit: copied once, from rustls's buffer to `plain`.
            loop {
                let room = limit.map_or(usize::MAX, |l| l.saturating_sub(plain.len()));
                if room == 0 {
                    break;
                }
                let mut reader = self.conn.reader();
                match reader.fill_buf() {
                    Ok([]) => {
                        if !self.closed {
                            self.closed = true;
                            self.events |= BevEvents::READING | BevEvents::EOF;
                        }
                        break;
                    }
                    Ok(data) => {
                        let n = data.len().min(room);
                        if plain.add(&data[..n]).is_err() {
                            return self.fail("out of memory for plaintext".into(), reply);
                        }
                        reader.consume(n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return self.fail(format!("TLS: {e}"), reply),
                }
            }
            self.flush_tls(reply);
            if wire.is_empty() || wire.len() == before {
                break;
            }
        }
        FilterResult::Ok
    }

    fn encode(
        &mut self,
        plain: &mut EvBuffer,
        wire: &mut EvBuffer,
        _limit: Option<usize>,
        mode: Flush,
    ) -> FilterResult {
        if self.error.is_some() {
            return FilterResult::Error;
        }
        // Bounded: rustls takes what it can buffer; the rest waits for the next call.
        while !plain.is_empty() {
            let n = plain.len().min(16 * 1024);
            let written = match plain.pullup(n) {
                Ok(chunk) => self.conn.writer().write(chunk),
                Err(_) => return FilterResult::Error,
            };
            match written {
                Ok(0) => break,
                Ok(n) => {
                    let _ = plain.drain(n);
                }
                Err(e) => {
                    self.error = Some(format!("TLS write: {e}"));
                    return FilterResult::Error;
                }
            }
        }
        if mode == Flush::Finished {
            self.conn.send_close_notify();
        }
        self.flush_tls(wire);
        FilterResult::Ok
    }

    fn take_events(&mut self) -> BevEvents {
        std::mem::take(&mut self.events)
    }

    fn underlying_event(&mut self, what: BevEvents) -> BevEvents {
        if what.contains(BevEvents::EOF) && !self.closed && !self.opts.allow_dirty_shutdown {
            self.error =
                Some("the connection closed without a TLS close_notify (dirty shutdown)".into());
            return (what - BevEvents::EOF) | BevEvents::ERROR;
        }
        what
    }

    fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    fn error(&self) -> Option<String> {
        self.error.clone()
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

/// What a TLS bufferevent negotiated (once `CONNECTED`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsInfo {
    /// The ALPN protocol both sides agreed on, if any.
    pub alpn: Option<Vec<u8>>,
    /// The server name the client asked for (SNI), as the server saw it (`None` on a
    /// client, or if the client sent none).
    pub sni: Option<String>,
    /// The protocol version, e.g. "TLSv1_3".
    pub version: Option<String>,
    /// The cipher suite, e.g. "TLS13_AES_256_GCM_SHA384".
    pub cipher: Option<String>,
}

/// What the TLS bufferevent `bev` negotiated; `None` if `bev` is not a TLS bufferevent.
pub fn tls_info(base: &EventBase, bev: BufferEvent) -> Option<TlsInfo> {
    let codec = base.bev_codec(bev)?.as_any()?.downcast_ref::<TlsCodec>()?;
    let sni = match &codec.conn {
        Connection::Server(s) => s.server_name().map(str::to_string),
        Connection::Client(_) => None,
    };
    Some(TlsInfo {
        alpn: codec.conn.alpn_protocol().map(<[u8]>::to_vec),
        sni,
        version: codec.conn.protocol_version().map(|v| format!("{v:?}")),
        cipher: codec
            .conn
            .negotiated_cipher_suite()
            .map(|c| format!("{:?}", c.suite())),
    })
}

/// TLS bufferevents on an [`EventBase`].
pub trait TlsBufferEvents {
    /// A TLS client over `under` (libevent's `bufferevent_openssl_filter_new` in
    /// `BUFFEREVENT_SSL_CONNECTING` state): the handshake starts at once, for `server_name`
    /// (sent as SNI, and checked against the certificate).
    fn bufferevent_tls_client(
        &mut self,
        under: BufferEvent,
        config: Arc<ClientConfig>,
        server_name: ServerName<'static>,
        tls: TlsOptions,
        opts: BevOptions,
    ) -> io::Result<BufferEvent>;

    /// A TLS server over `under` (libevent's `BUFFEREVENT_SSL_ACCEPTING`).
    fn bufferevent_tls_server(
        &mut self,
        under: BufferEvent,
        config: Arc<ServerConfig>,
        tls: TlsOptions,
        opts: BevOptions,
    ) -> io::Result<BufferEvent>;
}

impl TlsBufferEvents for EventBase {
    fn bufferevent_tls_client(
        &mut self,
        under: BufferEvent,
        config: Arc<ClientConfig>,
        server_name: ServerName<'static>,
        tls: TlsOptions,
        opts: BevOptions,
    ) -> io::Result<BufferEvent> {
        let conn = ClientConnection::new(config, server_name)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        self.bufferevent_codec(under, TlsCodec::new(conn.into(), tls), opts)
    }

    fn bufferevent_tls_server(
        &mut self,
        under: BufferEvent,
        config: Arc<ServerConfig>,
        tls: TlsOptions,
        opts: BevOptions,
    ) -> io::Result<BufferEvent> {
        let conn = ServerConnection::new(config)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        self.bufferevent_codec(under, TlsCodec::new(conn.into(), tls), opts)
    }
}
