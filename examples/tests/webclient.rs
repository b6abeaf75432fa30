//! The bufferevent web client against a one-request HTTP server on loopback, on every
//! backend: the whole response arrives and the loop ends by itself.

mod common;

use common::TIMEOUT;
use evrs::{Count, EventBase};
use evrs_examples::webclient::{fetch, Outcome};
use std::cell::RefCell;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::rc::Rc;
use std::thread::JoinHandle;

/// Where the client writes the response, readable by the test afterwards.
#[derive(Clone, Default)]
struct Sink(Rc<RefCell<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A fixed response, large enough to arrive in many reads.
fn response() -> Vec<u8> {
    let body: String = (0..5_000).map(|i| format!("line {i}\n")).collect();
    let head = format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
    [head.into_bytes(), body.into_bytes()].concat()
}

/// Answers one request on `addr` with [`response`], then closes; returns the request's
/// header lines.
fn serve_one(addr: SocketAddr) -> (SocketAddr, JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind(addr).unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut lines = Vec::new();
        let mut reader = BufReader::new(&stream);
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            lines.push(line.trim_end().to_string());
        }
        (&stream).write_all(&response()).unwrap();
        lines // dropping the stream closes it: end of file ends the response
    });
    (addr, server)
}

/// Fetches `path` from `host:port` on a fresh base; returns the outcome and the output once
/// the loop has returned by itself, checking nothing was left in it.
fn get(host: &str, port: u16, path: &str) -> (Outcome, Vec<u8>) {
    let mut base = EventBase::new().unwrap();
    let sink = Sink::default();
    let outcome = fetch(&mut base, host, port, path, sink.clone()).unwrap();
    base.dispatch().unwrap();
    assert_eq!(base.bev_count(), 0, "the bufferevent must be freed");
    assert_eq!(base.num_events(Count::Added), 0, "nothing may be left");
    let out = sink.0.take();
    (outcome.take(), out)
}

on_every_backend! {
    fn the_whole_response_arrives() {
        let (addr, server) = serve_one("127.0.0.1:0".parse().unwrap());
        let (outcome, out) = get("127.0.0.1", addr.port(), "/some/page.html");
        let request = server.join().unwrap();
        assert_eq!(request[0], "GET /some/page.html HTTP/1.0");
        assert!(request.contains(&"Host: 127.0.0.1".to_string()), "{request:?}");
        assert!(outcome.complete && outcome.error.is_none(), "{outcome:?}");
        assert_eq!(outcome.received, response().len() as u64);
        assert!(out == response(), "the response differs ({} bytes)", out.len());
    }

    fn a_host_name_is_looked_up() {
        // Wherever "localhost" resolves first (127.0.0.1 or ::1): loopback either way.
        let first = ("localhost", 0).to_socket_addrs().unwrap().next().unwrap();
        assert!(first.ip().is_loopback(), "{first}");
        let (addr, server) = serve_one(first);
        let (outcome, out) = get("localhost", addr.port(), "/");
        let request = server.join().unwrap();
        assert_eq!(request[0], "GET / HTTP/1.0");
        assert!(request.contains(&"Host: localhost".to_string()), "{request:?}");
        assert!(outcome.complete, "{outcome:?}");
        assert!(out == response());
    }

    fn a_refused_connection_is_reported() {
        let closed = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let (outcome, out) = get("127.0.0.1", port, "/");
        assert!(!outcome.complete && out.is_empty());
        let why = outcome.error.unwrap();
        assert!(why.contains("refused"), "{why}");
    }
}
