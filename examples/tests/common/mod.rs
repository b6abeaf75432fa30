//! Test helpers: run an example's server on its own thread, with a real listening socket on
//! an ephemeral 127.0.0.1 port, and stop it deterministically.
#![allow(dead_code)]

use evrs::EventBase;
use evrs_examples::{bind_listener, stop_handle, StopHandle};
use std::io::{self, BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Generous: only hit if something is broken.
pub const TIMEOUT: Duration = Duration::from_secs(20);

pub struct Server<R> {
    pub addr: SocketAddr,
    stop: StopHandle,
    thread: JoinHandle<R>,
}

/// Binds 127.0.0.1:0, lets `setup` register the server's events on a fresh base, then runs
/// the loop on a new thread until `Server::stop`. `report` turns whatever `setup` returned
/// into the thread's result once the loop has ended.
pub fn spawn_server<T, R, S, F>(setup: S, report: F) -> Server<R>
where
    S: FnOnce(&mut EventBase, TcpListener) -> io::Result<T> + Send + 'static,
    F: FnOnce(&mut EventBase, T) -> R + Send + 'static,
    R: Send + 'static,
{
    let listener = bind_listener("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    let thread = thread::spawn(move || {
        let mut base = EventBase::new().unwrap();
        let state = setup(&mut base, listener).unwrap();
        tx.send(stop_handle(&mut base).unwrap()).unwrap();
        base.dispatch().unwrap();
        report(&mut base, state)
    });
    let stop = rx
        .recv_timeout(TIMEOUT)
        .expect("server thread did not start");
    Server { addr, stop, thread }
}

impl<R> Server<R> {
    /// Stops the loop and returns the server's report.
    pub fn stop(self) -> R {
        self.stop.stop();
        self.thread.join().expect("server thread panicked")
    }
}

/// A blocking client with read/write timeouts, so a broken server fails the test instead of
/// hanging it.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_write_timeout(Some(TIMEOUT)).unwrap();
    s
}

pub fn read_line(r: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    line
}

/// Every connection sends `msg(i)`, reads its echo back byte for byte, half-closes, and sees
/// the server close; returns the bytes echoed. `who` labels a failing client.
pub fn echo_round(
    conns: &mut [TcpStream],
    msg: impl Fn(usize) -> String,
    who: impl Fn(usize) -> String,
) -> u64 {
    use std::io::{Read, Write};
    for (i, c) in conns.iter_mut().enumerate() {
        c.write_all(msg(i).as_bytes()).unwrap();
    }
    let mut total = 0;
    for (i, c) in conns.iter_mut().enumerate() {
        let want = msg(i);
        let mut got = vec![0; want.len()];
        c.read_exact(&mut got).unwrap();
        assert_eq!(got, want.as_bytes(), "client {}", who(i));
        total += want.len() as u64;
    }
    // Half-close and wait for the server's close: proves it saw every end of file.
    for c in conns.iter() {
        c.shutdown(std::net::Shutdown::Write).unwrap();
    }
    for c in conns.iter_mut() {
        assert_eq!(c.read(&mut [0; 1]).unwrap(), 0, "the server must close");
    }
    total
}
