//! The echo server against many real TCP clients at once.

mod common;

use common::{spawn_server, TIMEOUT};
use evrs::{Count, EventBase};
use evrs_examples::echo;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::rc::Rc;
use std::time::Duration;

/// (accepted, closed, bytes echoed, user events left)
type Report = (u64, u64, u64, usize);

fn report(base: &mut EventBase, s: Rc<echo::Stats>) -> Report {
    (
        s.accepted.get(),
        s.closed.get(),
        s.bytes.get(),
        base.num_events(Count::Added),
    )
}

/// Opens `n` connections (all open at once), sends each a distinct message, checks every
/// echo, then closes them and checks the server freed every connection.
fn many_clients(n: usize) {
    let srv = spawn_server(echo::listen, report);
    let clients = run_clients(srv.addr, n);
    let (accepted, closed, bytes, added) = srv.stop();
    assert_eq!(accepted, n as u64);
    assert_eq!(
        closed, n as u64,
        "every end of file must close its connection"
    );
    assert_eq!(bytes, clients);
    assert_eq!(added, 1, "only the listener's event may be left");
}

/// The client side; returns the bytes echoed. Every connection is open before the first
/// message is sent, so the server really holds `n` clients at once.
fn run_clients(addr: SocketAddr, n: usize) -> u64 {
    let mut conns: Vec<TcpStream> = (0..n)
        .map(|i| {
            let s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("client {i}: {e}"));
            s.set_read_timeout(Some(TIMEOUT)).unwrap();
            s
        })
        .collect();
    let msg = |i: usize| format!("hello from client {i}\n").repeat(1 + i % 3);
    common::echo_round(&mut conns, msg, |i| i.to_string())
}

/// How many descriptors this process may open: raises the soft limit to `want` (at most the
/// hard limit, which an unprivileged process cannot raise). Returns the limit now in force.
fn raise_nofile_limit(want: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        if lim.rlim_cur < want {
            lim.rlim_cur = want.min(lim.rlim_max);
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
        }
    }
    lim.rlim_cur
}

/// The client half of `ten_thousand_clients`, run in a child process; does nothing unless
/// that test started it.
#[test]
fn client_process() {
    let Ok(addr) = std::env::var("ECHO_TEST_ADDR") else {
        return;
    };
    let n: usize = std::env::var("ECHO_TEST_CLIENTS").unwrap().parse().unwrap();
    let _w = common::watchdog("client_process", common::WATCHDOG_BOUND);
    assert!(raise_nofile_limit(n as u64 + 100) >= n as u64 + 100);
    run_clients(addr.parse().unwrap(), n);
}

on_every_backend! {
    fn one_thousand_clients() {
        // select(2) cannot watch descriptors >= 1024 (evrs refuses them, and the server closes
        // such a client); with clients and server in one process that allows ~500 clients.
        let select = EventBase::new().unwrap().method() == evrs::Method::Select;
        many_clients(if select { 400 } else { 1000 });
    }

    fn big_transfer_with_backpressure() {
        // 8 MiB through one connection, written by one thread while another reads: the server
        // must switch between its read and write events without losing or reordering bytes.
        let srv = spawn_server(echo::listen, report);
        let mut c = TcpStream::connect(srv.addr).unwrap();
        c.set_read_timeout(Some(TIMEOUT)).unwrap();
        let data: Vec<u8> = (0..8 << 20).map(|i: u32| (i % 251) as u8).collect();
        let mut w = c.try_clone().unwrap();
        let sent = data.clone();
        let writer = std::thread::spawn(move || {
            w.write_all(&sent).unwrap();
            w.shutdown(Shutdown::Write).unwrap();
        });
        let mut got = Vec::new();
        c.read_to_end(&mut got).unwrap();
        writer.join().unwrap();
        assert!(
            got == data,
            "echo differs ({} of {} bytes)",
            got.len(),
            data.len()
        );
        let (_, closed, bytes, _) = srv.stop();
        assert_eq!((closed, bytes), (1, data.len() as u64));
    }

    /// 10,000 simultaneous clients, as in the lecture. Each connection needs a descriptor on
    /// both ends, so the clients run in a child process (this test binary, re-run for
    /// `client_process`) while the server runs here; each process raises its soft fd limit
    /// to what it needs, and the test is skipped (with a printed reason) if the hard limit is
    /// too low. select(2) cannot watch descriptors >= 1024: skipped there.
    fn ten_thousand_clients() {
        const N: usize = 10_000;
        if EventBase::new().unwrap().method() == evrs::Method::Select {
            eprintln!("SKIPPED ten_thousand_clients on select: it cannot watch fds >= 1024");
            return;
        }
        let limit = raise_nofile_limit(N as u64 + 100);
        if limit < N as u64 + 100 {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr().lock(),
                "SKIPPED ten_thousand_clients: RLIMIT_NOFILE hard limit {limit} < {} \
                 (raise it, e.g. ulimit -Hn 20000 as root)",
                N + 100
            );
            return;
        }
        let started = std::time::Instant::now();
        let srv = spawn_server(echo::listen, report);
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args(["--exact", "client_process", "--nocapture", "--test-threads=1"])
            .env("ECHO_TEST_ADDR", srv.addr.to_string())
            .env("ECHO_TEST_CLIENTS", N.to_string())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let out = common::run_with_deadline(cmd, Duration::from_secs(50));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "client process failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("1 passed"), "client process did not run:\n{stdout}");
        let (accepted, closed, _, added) = srv.stop();
        assert_eq!((accepted, closed, added), (N as u64, N as u64, 1));
        println!("{N} clients in {:.2?}", started.elapsed());
    }
}
