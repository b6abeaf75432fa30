//! The TLS echo server (`tls_echo`) against evrs TLS clients and `openssl s_client` on
//! 127.0.0.1, on every backend. The `openssl` test is skipped with a printed reason when the
//! tool is missing, unless EVRS_REQUIRE_C_PEERS=1.

mod common;

use common::{spawn_server, Server, TIMEOUT};
use evrs::bufferevent::{BevCtx, BevEvents, BevHandler, BevOptions, Flush};
use evrs::{Count, EventBase, LoopFlags, What};
use evrs_examples::echo_bev::Counters;
use evrs_examples::tls_echo::{self, client_config, Identity};
use evrs_tls::{TlsBufferEvents, TlsOptions};
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use std::cell::RefCell;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// (accepted, closed, bytes echoed, user events still registered, bufferevents left).
type Report = (u64, u64, u64, usize, usize);

fn server(identity: Identity) -> Server<Report> {
    spawn_server(
        move |base: &mut EventBase, l| tls_echo::listen(base, l, &identity),
        |base: &mut EventBase, c: Rc<Counters>| {
            // The loop was stopped; let it finish the closes still in flight (a client's
            // last packets may not have been read yet).
            let start = Instant::now();
            while base.bev_count() > 0 && start.elapsed() < TIMEOUT {
                base.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
            (
                c.accepted.get(),
                c.closed.get(),
                c.echoed.get(),
                base.num_events(Count::Added),
                base.bev_count(),
            )
        },
    )
}

/// How one client's round trip ended: the bytes it got back, or an error.
type Results = Rc<RefCell<Vec<Result<Vec<u8>, String>>>>;

/// An evrs TLS client: sends `want`, reads it back, then closes cleanly (`close_notify`).
struct Client {
    want: Vec<u8>,
    got: Vec<u8>,
    results: Results,
}

impl BevHandler for Client {
    fn read(&mut self, bev: &mut BevCtx<'_>) {
        let input = bev.input();
        self.got.extend(input.to_vec());
        let n = input.len();
        input.drain(n).unwrap();
        if self.got.len() >= self.want.len() {
            let me = bev.handle();
            bev.base().bev_flush(me, Flush::Finished).unwrap();
        }
    }

    fn event(&mut self, bev: &mut BevCtx<'_>, what: BevEvents) {
        if what == BevEvents::CONNECTED {
            return;
        }
        let r = if what.contains(BevEvents::EOF) {
            Ok(std::mem::take(&mut self.got))
        } else {
            let me = bev.handle();
            let why = bev.base().bev_filter_error(me).ok().flatten();
            Err(format!("{what:?}: {why:?}"))
        };
        self.results.borrow_mut().push(r);
        bev.free();
    }
}

fn start_client(
    base: &mut EventBase,
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    want: Vec<u8>,
    results: &Results,
) {
    let sock = base
        .bufferevent_socket(-1, BevOptions::CLOSE_ON_FREE)
        .unwrap();
    base.bev_connect(sock, addr).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let tls = base
        .bufferevent_tls_client(
            sock,
            config,
            name,
            TlsOptions::default(),
            BevOptions::CLOSE_ON_FREE,
        )
        .unwrap();
    base.bev_write(tls, &want).unwrap();
    let client = Client {
        want,
        got: Vec::new(),
        results: results.clone(),
    };
    base.bev_set_handler(tls, client).unwrap();
    base.bev_enable(tls, What::READ | What::WRITE).unwrap();
}

/// Whether `tool` runs; if not, the test is skipped (or fails with EVRS_REQUIRE_C_PEERS=1).
fn tool_available(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("version")
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

on_every_backend! {
    fn evrs_tls_clients_get_their_echo() {
        let identity = Identity::generate().unwrap();
        let config = client_config(identity.cert_der()).unwrap();
        let srv = server(identity);
        let n = 20;
        let mut base = EventBase::new().unwrap();
        let results: Results = Default::default();
        // From one byte to several TLS records (16 KiB each).
        let msg = |i: usize| -> Vec<u8> {
            (0..1 + i * 5_000).map(|k| b'a' + ((i + k) % 26) as u8).collect()
        };
        for i in 0..n {
            start_client(&mut base, srv.addr, config.clone(), msg(i), &results);
        }
        base.dispatch().unwrap(); // until every client has freed itself
        let results = results.take();
        assert_eq!(results.len(), n);
        let mut total = 0;
        for r in &results {
            let got = r.as_ref().unwrap_or_else(|e| panic!("a client failed: {e}"));
            assert!((0..n).any(|i| msg(i) == *got), "an echo ({} bytes) differs", got.len());
            total += got.len() as u64;
        }
        assert_eq!(total, (0..n).map(|i| msg(i).len() as u64).sum::<u64>());
        let (accepted, closed, echoed, added, bevs) = srv.stop();
        assert_eq!((accepted, closed), (n as u64, n as u64));
        assert_eq!(echoed, total);
        assert_eq!((added, bevs), (1, 0), "only the listener may be left");
    }

    fn openssl_s_client_gets_its_echo() {
        if !tool_available("openssl") {
            return;
        }
        let identity = Identity::generate().unwrap();
        let dir = std::env::temp_dir().join(format!("evrs-tls-echo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pem = dir.join("cert.pem");
        std::fs::write(&pem, identity.cert_pem()).unwrap();
        let srv = server(identity);
        let mut child = Command::new("openssl")
            .args(["s_client", "-quiet", "-verify_return_error", "-servername", "localhost"])
            .arg("-connect")
            .arg(srv.addr.to_string())
            .arg("-CAfile")
            .arg(&pem)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        child.stdin.as_mut().unwrap().write_all(b"hello from s_client\n").unwrap();
        // s_client prints what it receives; -quiet ignores end of file on stdin, so once the
        // echo is back we end it, and the server sees its socket close.
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let got = rx.recv_timeout(TIMEOUT);
        let _ = child.kill();
        let _ = child.wait();
        let _ = reader.join();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(got.as_deref(), Ok("hello from s_client"));
        let (accepted, closed, _, added, bevs) = srv.stop();
        assert_eq!((accepted, closed), (1, 1));
        assert_eq!((added, bevs), (1, 0), "only the listener may be left");
    }
}
