//! A real crate built on the futures-io traits runs on evrs::rt's streams: futures-rustls
//! (TLS over any `AsyncRead + AsyncWrite`), client and server on one runtime, and the real
//! `curl` against a futures-rustls server on evrs, on every backend.
mod util;
use evrs::rt::{self, Runtime, TcpListener, TcpStream};
use futures_rustls::rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName,
};
use futures_rustls::rustls::{self as rustls, ClientConfig, RootCertStore, ServerConfig};
use futures_rustls::{TlsAcceptor, TlsConnector};
use futures_util::io::{AsyncReadExt, AsyncWriteExt};
use std::io;
use std::process::{Command, Stdio};
use std::sync::Arc;
use util::*;

struct Pki {
    cert: CertificateDer<'static>,
    key: Vec<u8>,
}

fn pki() -> Pki {
    let c = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    Pki {
        cert: c.cert.der().clone(),
        key: c.key_pair.serialize_der(),
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn acceptor(p: &Pki) -> TlsAcceptor {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(p.key.clone()));
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![p.cert.clone()], key)
        .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

fn connector(trusted: &Pki) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    roots.add(trusted.cert.clone()).unwrap();
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

on_every_backend! {
    fn futures_rustls_client_and_server_echo_a_megabyte(m) {
        let mut b = base(m);
        let runtime = Runtime::new(&mut b).unwrap();
        let p = pki();
        let (acc, conn) = (acceptor(&p), connector(&p));
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let sent = data.clone();
        let back = runtime
            .block_on(&mut b, async move {
                let listener = TcpListener::bind("127.0.0.1:0")?;
                let addr = listener.local_addr()?;
                let server = rt::spawn(async move {
                    let (s, _) = listener.accept().await?;
                    let tls = acc.accept(s).await?;
                    let (mut r, mut w) = tls.split();
                    // An echo through futures-util's own copy over the TLS halves.
                    futures_util::io::copy(&mut r, &mut w).await?;
                    w.close().await?;
                    Ok::<_, io::Error>(())
                })?;
                let s = TcpStream::connect(addr).await?;
                let name = ServerName::try_from("localhost").unwrap();
                let tls = conn.connect(name, s).await?;
                let (mut r, mut w) = tls.split();
                let writer = rt::spawn(async move {
                    w.write_all(&sent).await?;
                    w.close().await?; // close_notify, then the TCP write half
                    Ok::<_, io::Error>(())
                })?;
                let mut back = Vec::new();
                r.read_to_end(&mut back).await?;
                writer.await??;
                server.await??;
                Ok::<_, io::Error>(back)
            })
            .unwrap()
            .unwrap();
        assert!(back == data, "echoed {} of {} bytes, or changed", back.len(), data.len());
        runtime.shutdown(&mut b);
    }

    fn a_client_that_does_not_trust_the_certificate_fails_cleanly(m) {
        let mut b = base(m);
        let runtime = Runtime::new(&mut b).unwrap();
        let (server_pki, other) = (pki(), pki());
        let acc = acceptor(&server_pki);
        let conn = connector(&other);
        let (client, server) = runtime
            .block_on(&mut b, async move {
                let listener = TcpListener::bind("127.0.0.1:0")?;
                let addr = listener.local_addr()?;
                let server = rt::spawn(async move {
                    let (s, _) = listener.accept().await?;
                    acc.accept(s).await.map(|_| ())
                })?;
                let s = TcpStream::connect(addr).await?;
                let name = ServerName::try_from("localhost").unwrap();
                let client = conn.connect(name, s).await.map(|_| ());
                Ok::<_, io::Error>((client, server.await?))
            })
            .unwrap()
            .unwrap();
        let e = client.expect_err("an untrusted certificate is refused");
        assert!(e.to_string().contains("certificate"), "{e}");
        assert!(server.is_err(), "the server sees the handshake fail");
        runtime.shutdown(&mut b);
    }

    fn curl_fetches_over_tls_from_a_futures_rustls_server_on_evrs(m) {
        if !tool_available("curl") {
            return;
        }
        let mut b = base(m);
        let runtime = Runtime::new(&mut b).unwrap();
        let acc = acceptor(&pki());
        let out = runtime
            .block_on(&mut b, async move {
                let listener = TcpListener::bind("127.0.0.1:0")?;
                let port = listener.local_addr()?.port();
                let server = rt::spawn(async move {
                    let (s, _) = listener.accept().await?;
                    let mut tls = acc.accept(s).await?;
                    let mut req = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !req.ends_with(b"\r\n\r\n") {
                        let n = tls.read(&mut buf).await?;
                        if n == 0 {
                            return Err(io::ErrorKind::UnexpectedEof.into());
                        }
                        req.extend_from_slice(&buf[..n]);
                    }
                    tls.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nConnection: close\r\n\r\nhello, async\n",
                    )
                    .await?;
                    tls.close().await?;
                    Ok::<_, io::Error>(())
                })?;
                let out = rt::spawn_blocking(move || {
                    Command::new("curl")
                        .args(["-sSk", "--max-time", "20", "--resolve"])
                        .arg(format!("localhost:{port}:127.0.0.1"))
                        .arg(format!("https://localhost:{port}/"))
                        .stdin(Stdio::null())
                        .output()
                })?
                .await??;
                server.await??;
                Ok::<_, io::Error>(out)
            })
            .unwrap()
            .unwrap();
        assert!(out.status.success(), "curl: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hello, async\n");
        runtime.shutdown(&mut b);
    }
}
