//! TLS bufferevents: evrs client against evrs server over a socket pair, a certificate the
//! client does not trust, garbage records, and the real `openssl s_client` and `curl`
//! against an evrs TLS server on 127.0.0.1 (skipped with a reason when the tool is
//! missing, unless EVRS_REQUIRE_C_PEERS=1, which CI sets after installing them).
use evrs::bufferevent::{BevCtx, BevEvents, BevOptions, BufferEvent, Flush};
use evrs::{EventBase, LoopFlags, What};
use evrs_tls::{tls_info, TlsBufferEvents, TlsOptions};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::cell::RefCell;
use std::io::Write;
use std::os::fd::IntoRawFd;
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Pki {
    cert: CertificateDer<'static>,
    key: Vec<u8>,
    cert_pem: String,
    key_pem: String,
}

fn pki() -> Pki {
    let c = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    Pki {
        cert: c.cert.der().clone(),
        key: c.key_pair.serialize_der(),
        cert_pem: c.cert.pem(),
        key_pem: c.key_pair.serialize_pem(),
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn server_config(p: &Pki) -> Arc<ServerConfig> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(p.key.clone()));
    Arc::new(
        ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![p.cert.clone()], key)
            .unwrap(),
    )
}

fn client_config(trusted: &Pki) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(trusted.cert.clone()).unwrap();
    Arc::new(
        ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

type Log = Rc<RefCell<Vec<BevEvents>>>;

fn log_events(b: &mut EventBase, bev: BufferEvent, log: &Log, echo: bool) {
    let l = log.clone();
    b.bev_setcb(
        bev,
        Some(move |bev: &mut BevCtx<'_>| {
            if echo {
                let (i, o) = bev.buffers();
                o.add_buffer(i).unwrap();
            }
        }),
        None::<fn(&mut BevCtx<'_>)>,
        Some(move |_: &mut BevCtx<'_>, what| l.borrow_mut().push(what)),
    )
    .unwrap();
    b.bev_enable(bev, What::READ | What::WRITE).unwrap();
}

fn run_until(b: &mut EventBase, what: &str, mut done: impl FnMut(&mut EventBase) -> bool) {
    let start = Instant::now();
    while !done(b) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out: {what}"
        );
        b.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
        std::thread::sleep(Duration::from_micros(300));
    }
}

/// A server and a client TLS bufferevent over a socket pair.
fn tls_pair(b: &mut EventBase, server: &Pki, trusted: &Pki) -> (BufferEvent, BufferEvent) {
    let (x, y) = std::os::unix::net::UnixStream::pair().unwrap();
    x.set_nonblocking(true).unwrap();
    y.set_nonblocking(true).unwrap();
    let sx = b
        .bufferevent_socket(x.into_raw_fd(), BevOptions::CLOSE_ON_FREE)
        .unwrap();
    let sy = b
        .bufferevent_socket(y.into_raw_fd(), BevOptions::CLOSE_ON_FREE)
        .unwrap();
    let srv = b
        .bufferevent_tls_server(
            sx,
            server_config(server),
            TlsOptions::default(),
            BevOptions::CLOSE_ON_FREE,
        )
        .unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let cli = b
        .bufferevent_tls_client(
            sy,
            client_config(trusted),
            name,
            TlsOptions::default(),
            BevOptions::CLOSE_ON_FREE,
        )
        .unwrap();
    (srv, cli)
}

#[test]
fn a_client_and_a_server_handshake_and_echo() {
    let p = pki();
    let mut b = EventBase::new().unwrap();
    let (srv, cli) = tls_pair(&mut b, &p, &p);
    let (ls, lc): (Log, Log) = Default::default();
    log_events(&mut b, srv, &ls, true);
    log_events(&mut b, cli, &lc, false);
    b.bev_write(cli, b"ping over tls").unwrap();
    run_until(&mut b, "echo", |b| b.bev_input(cli).unwrap().len() == 13);
    assert_eq!(b.bev_input(cli).unwrap().to_vec(), b"ping over tls");
    assert!(
        ls.borrow().contains(&BevEvents::CONNECTED),
        "server: {:?}",
        ls.borrow()
    );
    assert!(
        lc.borrow().contains(&BevEvents::CONNECTED),
        "client: {:?}",
        lc.borrow()
    );
    // A clean close: the client's close_notify is the server's EOF.
    b.bev_flush(cli, Flush::Finished).unwrap();
    run_until(&mut b, "server EOF", |_| {
        ls.borrow().iter().any(|e| e.contains(BevEvents::EOF))
    });
    b.bev_free(cli).unwrap();
    b.bev_free(srv).unwrap();
    assert_eq!(b.bev_count(), 0);
}

#[test]
fn an_untrusted_certificate_fails_with_a_readable_reason() {
    let (p, other) = (pki(), pki());
    let mut b = EventBase::new().unwrap();
    let (srv, cli) = tls_pair(&mut b, &p, &other);
    let (ls, lc): (Log, Log) = Default::default();
    log_events(&mut b, srv, &ls, true);
    log_events(&mut b, cli, &lc, false);
    run_until(&mut b, "client error", |_| {
        lc.borrow().iter().any(|e| e.contains(BevEvents::ERROR))
    });
    let why = b.bev_filter_error(cli).unwrap().unwrap_or_default();
    assert!(why.to_lowercase().contains("certificate"), "reason: {why}");
    assert!(!lc.borrow().contains(&BevEvents::CONNECTED));
    b.bev_free(cli).unwrap();
    b.bev_free(srv).unwrap();
}

#[test]
fn garbage_records_are_an_error_not_a_panic() {
    let p = pki();
    let mut b = EventBase::new().unwrap();
    let (x, mut y) = std::os::unix::net::UnixStream::pair().unwrap();
    x.set_nonblocking(true).unwrap();
    let sx = b
        .bufferevent_socket(x.into_raw_fd(), BevOptions::CLOSE_ON_FREE)
        .unwrap();
    let srv = b
        .bufferevent_tls_server(
            sx,
            server_config(&p),
            TlsOptions::default(),
            BevOptions::CLOSE_ON_FREE,
        )
        .unwrap();
    let ls: Log = Default::default();
    log_events(&mut b, srv, &ls, true);
    y.write_all(&[0x17, 0x03, 0x03, 0xff, 0xff, 1, 2, 3, 4, 5, 6, 7, 8])
        .unwrap();
    y.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    run_until(&mut b, "server error", |_| {
        ls.borrow().iter().any(|e| e.contains(BevEvents::ERROR))
    });
    assert!(b.bev_filter_error(srv).unwrap().is_some());
    b.bev_free(srv).unwrap();
}

#[test]
fn a_dirty_shutdown_is_an_error_unless_allowed() {
    let p = pki();
    for allow in [false, true] {
        let mut b = EventBase::new().unwrap();
        let (x, y) = std::os::unix::net::UnixStream::pair().unwrap();
        x.set_nonblocking(true).unwrap();
        y.set_nonblocking(true).unwrap();
        // The client's end, kept to shut it down without TLS's close_notify.
        let y_end = y.try_clone().unwrap();
        let sx = b
            .bufferevent_socket(x.into_raw_fd(), BevOptions::CLOSE_ON_FREE)
            .unwrap();
        let sy = b
            .bufferevent_socket(y.into_raw_fd(), BevOptions::CLOSE_ON_FREE)
            .unwrap();
        let opts = TlsOptions {
            allow_dirty_shutdown: allow,
        };
        let srv = b
            .bufferevent_tls_server(sx, server_config(&p), opts, BevOptions::CLOSE_ON_FREE)
            .unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let cli = b
            .bufferevent_tls_client(
                sy,
                client_config(&p),
                name,
                TlsOptions::default(),
                BevOptions::CLOSE_ON_FREE,
            )
            .unwrap();
        let (ls, lc): (Log, Log) = Default::default();
        log_events(&mut b, srv, &ls, true);
        log_events(&mut b, cli, &lc, false);
        run_until(&mut b, "handshake", |_| {
            lc.borrow().contains(&BevEvents::CONNECTED)
        });
        // The client's socket stops sending without close_notify. (Not by closing it: with
        // data unread — a TLS 1.3 session ticket, say — the peer would see a reset, an
        // error whatever the option.)
        y_end.shutdown(std::net::Shutdown::Write).unwrap();
        run_until(&mut b, "server sees the end", |_| {
            !ls.borrow().iter().all(|e| *e == BevEvents::CONNECTED)
        });
        let last = *ls.borrow().last().unwrap();
        if allow {
            assert!(last.contains(BevEvents::EOF), "{last:?}");
        } else {
            assert!(last.contains(BevEvents::ERROR), "{last:?}");
            assert!(b
                .bev_filter_error(srv)
                .unwrap()
                .unwrap()
                .contains("close_notify"));
        }
        b.bev_free(cli).unwrap();
        drop(y_end);
        b.bev_free(srv).unwrap();
    }
}

fn tool_available(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
        || Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
    if !ok {
        assert!(
            std::env::var("EVRS_REQUIRE_C_PEERS").as_deref() != Ok("1"),
            "{tool} is required (EVRS_REQUIRE_C_PEERS=1) but missing"
        );
        eprintln!("skipped: {tool} is not installed (apt-get install {tool})");
    }
    ok
}

/// Serves one TLS connection on 127.0.0.1 with `respond` as the read callback, while the
/// child process `cmd` runs; returns the child's stdout.
fn serve_one(p: &Pki, mut cmd: Command, respond: fn(&mut BevCtx<'_>)) -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    l.set_nonblocking(true).unwrap();
    // The command reads the port from the environment (it is known only once bound).
    let mut child = cmd
        .env("EVRS_TEST_PORT", port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _ = child
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"hello from s_client\n");
    let mut b = EventBase::new().unwrap();
    let start = Instant::now();
    let mut bev = None;
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the peer did not finish"
        );
        if bev.is_none() {
            if let Ok((s, _)) = l.accept() {
                s.set_nonblocking(true).unwrap();
                let sock = b
                    .bufferevent_socket(s.into_raw_fd(), BevOptions::CLOSE_ON_FREE)
                    .unwrap();
                let tls = b
                    .bufferevent_tls_server(
                        sock,
                        server_config(p),
                        TlsOptions {
                            allow_dirty_shutdown: true,
                        },
                        BevOptions::CLOSE_ON_FREE,
                    )
                    .unwrap();
                b.bev_setcb(
                    tls,
                    Some(respond),
                    None::<fn(&mut BevCtx<'_>)>,
                    None::<fn(&mut BevCtx<'_>, BevEvents)>,
                )
                .unwrap();
                b.bev_enable(tls, What::READ | What::WRITE).unwrap();
                bev = Some(tls);
            }
        }
        b.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    if let Some(t) = bev {
        let _ = b.bev_free(t);
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn echo_and_close(bev: &mut BevCtx<'_>) {
    let (i, o) = bev.buffers();
    o.add_buffer(i).unwrap();
    let me = bev.handle();
    let _ = bev.base().bev_flush(me, Flush::Finished);
}

fn http_ok(bev: &mut BevCtx<'_>) {
    let n = bev.input().len();
    bev.input().drain(n).unwrap();
    bev.write(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: close\r\n\r\nhello, curl\n")
        .unwrap();
    let me = bev.handle();
    let _ = bev.base().bev_flush(me, Flush::Finished);
}

#[test]
fn openssl_s_client_talks_to_an_evrs_tls_server() {
    if !tool_available("openssl") {
        return;
    }
    let p = pki();
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "exec openssl s_client -connect 127.0.0.1:$EVRS_TEST_PORT -servername localhost -quiet 2>/dev/null",
    ]);
    let out = serve_one(&p, cmd, echo_and_close);
    assert!(
        out.contains("hello from s_client"),
        "s_client printed: {out:?}"
    );
}

#[test]
fn curl_fetches_from_an_evrs_tls_server() {
    if !tool_available("curl") {
        return;
    }
    let p = pki();
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "exec curl -sk --max-time 10 --resolve localhost:$EVRS_TEST_PORT:127.0.0.1 https://localhost:$EVRS_TEST_PORT/",
    ]);
    let out = serve_one(&p, cmd, http_ok);
    assert_eq!(out, "hello, curl\n");
}

#[test]
fn sni_and_alpn_are_negotiated_and_reported() {
    let p = pki();
    let mut b = EventBase::new().unwrap();
    let (x, y) = std::os::unix::net::UnixStream::pair().unwrap();
    x.set_nonblocking(true).unwrap();
    y.set_nonblocking(true).unwrap();
    let sx = b
        .bufferevent_socket(x.into_raw_fd(), BevOptions::CLOSE_ON_FREE)
        .unwrap();
    let sy = b
        .bufferevent_socket(y.into_raw_fd(), BevOptions::CLOSE_ON_FREE)
        .unwrap();
    let mut scfg = (*server_config(&p)).clone();
    scfg.alpn_protocols = vec![b"evrs/1".to_vec(), b"h2".to_vec()];
    let mut ccfg = (*client_config(&p)).clone();
    ccfg.alpn_protocols = vec![b"evrs/1".to_vec()];
    let srv = b
        .bufferevent_tls_server(
            sx,
            Arc::new(scfg),
            TlsOptions::default(),
            BevOptions::CLOSE_ON_FREE,
        )
        .unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let cli = b
        .bufferevent_tls_client(
            sy,
            Arc::new(ccfg),
            name,
            TlsOptions::default(),
            BevOptions::CLOSE_ON_FREE,
        )
        .unwrap();
    let (ls, lc): (Log, Log) = Default::default();
    log_events(&mut b, srv, &ls, true);
    log_events(&mut b, cli, &lc, false);
    run_until(&mut b, "handshake", |_| {
        lc.borrow().contains(&BevEvents::CONNECTED) && ls.borrow().contains(&BevEvents::CONNECTED)
    });
    let si = tls_info(&b, srv).expect("a TLS bufferevent");
    let ci = tls_info(&b, cli).expect("a TLS bufferevent");
    assert_eq!(si.sni.as_deref(), Some("localhost"));
    assert_eq!(si.alpn.as_deref(), Some(&b"evrs/1"[..]));
    assert_eq!(ci.alpn.as_deref(), Some(&b"evrs/1"[..]));
    assert!(ci.version.is_some() && ci.cipher.is_some(), "{ci:?}");
    // A plain socket bufferevent is not a TLS one.
    assert!(tls_info(&b, sx).is_none());
    b.bev_free(cli).unwrap();
    b.bev_free(srv).unwrap();
}

#[test]
fn an_evrs_tls_client_talks_to_openssl_s_server() {
    if !tool_available("openssl") {
        return;
    }
    let p = pki();
    let dir = std::env::temp_dir().join(format!("evrs-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, &p.cert_pem).unwrap();
    std::fs::write(&key, &p.key_pem).unwrap();
    // A free port: bind, note, release (s_server binds it right after).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new("openssl")
        .args(["s_server", "-naccept", "1", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // s_server prints "ACCEPT" once it listens; everything after is what it receives.
    let stdout = server.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let start = Instant::now();
    loop {
        let left = Duration::from_secs(10).saturating_sub(start.elapsed());
        match rx.recv_timeout(left) {
            Ok(l) if l.contains("ACCEPT") => break,
            Ok(_) => {}
            Err(_) => panic!("s_server did not start"),
        }
    }
    let mut b = EventBase::new().unwrap();
    let sock = b.bufferevent_socket(-1, BevOptions::CLOSE_ON_FREE).unwrap();
    b.bev_connect(sock, format!("127.0.0.1:{port}").parse().unwrap())
        .unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let cli = b
        .bufferevent_tls_client(
            sock,
            client_config(&p),
            name,
            TlsOptions {
                allow_dirty_shutdown: true,
            },
            BevOptions::CLOSE_ON_FREE,
        )
        .unwrap();
    let lc: Log = Default::default();
    log_events(&mut b, cli, &lc, false);
    run_until(&mut b, "handshake with s_server", |_| {
        lc.borrow().contains(&BevEvents::CONNECTED)
    });
    b.bev_write(cli, b"hello s_server\n").unwrap();
    server
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"hello evrs\n")
        .unwrap();
    run_until(&mut b, "data from s_server", |b| {
        b.bev_input(cli)
            .unwrap()
            .to_vec()
            .ends_with(b"hello evrs\n")
    });
    b.bev_flush(cli, Flush::Finished).unwrap();
    b.run(LoopFlags::NONBLOCK).unwrap();
    b.bev_free(cli).unwrap();
    drop(server.stdin.take());
    let start = Instant::now();
    while server.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(10) {
            let _ = server.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = server.wait();
    let _ = reader.join();
    let _ = std::fs::remove_dir_all(&dir);
    let text: Vec<String> = rx.try_iter().collect();
    let text = text.join("\n");
    assert!(
        text.contains("hello s_server"),
        "s_server printed: {text:?}"
    );
}
