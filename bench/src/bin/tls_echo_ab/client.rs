//! The client child process (rustls over raw non-blocking sockets in one level-triggered
//! epoll loop) and the parent's handle on it. Commands on stdin, one answer line each:
//!
//!   connect PORT N   open N connections to 127.0.0.1:PORT and complete their TLS
//!                    handshakes                                        -> (nothing)
//!   status           (after connect)           -> ok VERSION SUITE GROUP
//!   run M            M round trips over the connections                -> done
//!   close            close the connections (no close_notify)           -> ok
//!
//! `connect` answers nothing: the servers' stop fd is this process's stdout, and a line
//! there during the handshakes would wake them every loop turn. The parent asks `status`
//! once its server has counted N handshakes. On an error the client prints it to stderr
//! and exits, which makes the stop fd readable: the server then stops too.

use super::*;
use rustls::ClientConnection;
use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The longest a phase may take before the client gives up.
const PHASE_LIMIT: Duration = Duration::from_secs(120);

struct Conn {
    sock: TcpStream,
    tls: ClientConnection,
    handshaking: bool,
    /// Plaintext bytes received towards the next whole message.
    got: usize,
}

impl Conn {
    /// Writes everything rustls has queued. The socket never fills here (one small message
    /// or one handshake flight in flight per connection): `WouldBlock` is an error.
    fn flush(&mut self) -> io::Result<()> {
        // Bounded: each write_tls takes bytes from rustls's queue.
        while self.tls.wants_write() {
            if self.tls.write_tls(&mut self.sock)? == 0 {
                return Err(io::Error::other("client: socket wrote 0 bytes"));
            }
        }
        Ok(())
    }

    /// One read from the socket (the loop is level-triggered: what remains is reported
    /// again), then the records: returns the plaintext bytes it carried.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.tls.read_tls(&mut self.sock) {
            Ok(0) => return Err(io::Error::other("client: the server closed a connection")),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
            Err(e) => return Err(e),
        }
        let state = self
            .tls
            .process_new_packets()
            .map_err(|e| io::Error::other(format!("client: TLS: {e}")))?;
        let mut n = 0;
        // Bounded by what rustls decrypted.
        for _ in 0..=state.plaintext_bytes_to_read() {
            match self.tls.reader().read(buf) {
                Ok(0) => return Err(io::Error::other("client: close_notify from the server")),
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        if self.handshaking && !self.tls.is_handshaking() {
            self.handshaking = false;
        }
        Ok(n)
    }

    fn send(&mut self, msg: &[u8]) -> io::Result<()> {
        use std::io::Write as _;
        self.tls.writer().write_all(msg)?;
        self.flush()
    }
}

/// Waits for events (at most 1 s, so deadlines are checked), `Interrupted` as none.
fn wait(ep: &OwnedFd, events: &mut [libc::epoll_event]) -> io::Result<usize> {
    // SAFETY: `events` is a valid buffer of its length.
    let n = unsafe {
        libc::epoll_wait(
            ep.as_raw_fd(),
            events.as_mut_ptr(),
            events.len() as i32,
            1000,
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(0)
        } else {
            Err(e)
        };
    }
    Ok(n as usize)
}

fn check_deadline(start: Instant, what: &str) -> io::Result<()> {
    if start.elapsed() > PHASE_LIMIT {
        return Err(io::Error::other(format!(
            "client: {what} took over {PHASE_LIMIT:?}"
        )));
    }
    Ok(())
}

/// Opens `n` connections and runs their handshakes to the end.
fn connect(
    ep: &OwnedFd,
    events: &mut [libc::epoll_event],
    config: &Arc<rustls::ClientConfig>,
    port: u16,
    n: usize,
) -> io::Result<Vec<Conn>> {
    let name = rustls::pki_types::ServerName::try_from("localhost").map_err(io::Error::other)?;
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let sock = TcpStream::connect(("127.0.0.1", port))?;
        sock.set_nodelay(true)?;
        sock.set_nonblocking(true)?;
        epoll_add(ep.as_raw_fd(), sock.as_raw_fd(), i as u64)?;
        let tls = ClientConnection::new(config.clone(), name.clone()).map_err(io::Error::other)?;
        let mut c = Conn {
            sock,
            tls,
            handshaking: true,
            got: 0,
        };
        c.flush()?; // the ClientHello
        conns.push(c);
    }
    let mut buf = [0u8; 4096];
    let mut pending = n;
    let start = Instant::now();
    while pending > 0 {
        check_deadline(start, "the handshakes")?;
        let k = wait(ep, events)?;
        for ev in &events[..k] {
            let c = &mut conns[ev.u64 as usize];
            let was = c.handshaking;
            if c.read(&mut buf)? > 0 {
                return Err(io::Error::other("client: data during the handshake"));
            }
            c.flush()?;
            if was && !c.handshaking {
                pending -= 1;
            }
        }
    }
    Ok(conns)
}

/// `m` round trips: one message out per connection (up to `m`), and each echo received
/// sends the next on its connection.
fn run(
    ep: &OwnedFd,
    events: &mut [libc::epoll_event],
    conns: &mut [Conn],
    m: usize,
) -> io::Result<()> {
    let msg = [b'x'; MSG];
    let mut buf = [0u8; 4096];
    let mut sent = 0;
    for c in conns.iter_mut().take(m) {
        c.send(&msg)?;
        sent += 1;
    }
    let mut done = 0;
    let start = Instant::now();
    while done < m {
        check_deadline(start, "a run")?;
        let k = wait(ep, events)?;
        for ev in &events[..k] {
            let c = &mut conns[ev.u64 as usize];
            c.got += c.read(&mut buf)?;
            // Bounded by the bytes received.
            while c.got >= MSG {
                c.got -= MSG;
                done += 1;
                if sent < m {
                    c.send(&msg)?;
                    sent += 1;
                }
            }
        }
    }
    Ok(())
}

pub(crate) fn client_main(cert_der: &str) -> io::Result<()> {
    let config = pki::client_config(std::path::Path::new(cert_der))?;
    let ep = epoll_new()?;
    let mut conns: Vec<Conn> = Vec::new();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let mut out = io::stdout().lock();
    for line in io::stdin().lock().lines() {
        let line = line?;
        let w: Vec<&str> = line.split_whitespace().collect();
        let num = |i: usize| -> io::Result<usize> {
            w.get(i)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| io::Error::other(format!("bad command {line:?}")))
        };
        match w.first().copied() {
            Some("connect") => {
                conns.clear();
                let (port, n) = (num(1)? as u16, num(2)?);
                conns = connect(&ep, &mut events, &config, port, n)?;
                continue; // no answer: see the module docs
            }
            Some("status") => {
                let c = conns
                    .first()
                    .ok_or_else(|| io::Error::other("status before connect"))?;
                let t = &c.tls;
                writeln!(
                    out,
                    "ok {} {} {}",
                    t.protocol_version()
                        .map_or("-".into(), |v| format!("{v:?}")),
                    t.negotiated_cipher_suite()
                        .map_or("-".into(), |s| format!("{:?}", s.suite())),
                    t.negotiated_key_exchange_group()
                        .map_or("-".into(), |g| format!("{:?}", g.name())),
                )?;
            }
            Some("run") => {
                run(&ep, &mut events, &mut conns, num(1)?)?;
                writeln!(out, "done")?;
            }
            Some("close") => {
                conns.clear();
                writeln!(out, "ok")?;
            }
            _ => return Err(io::Error::other(format!("bad command {line:?}"))),
        }
        out.flush()?;
    }
    Ok(())
}

/// The parent's end of the client.
pub(crate) type Client = evrs_bench::ab::ClientProcess;
