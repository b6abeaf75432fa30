//! The bufferevent ROT13 server (`rot13_server`) against real TCP clients, on every backend.

mod common;

use common::{connect, read_line, spawn_server, Server};
use evrs::{Count, EventBase};
use evrs_examples::rot13::{self, rot13_char};
use evrs_examples::rot13_bev::{self, MAX_LINE};
use std::io::{BufReader, Read, Write};
use std::net::Shutdown;

/// Half-closes and reads to the end: returns once the server closed the connection.
fn finish(c: &mut BufReader<std::net::TcpStream>) -> Vec<u8> {
    c.get_ref().shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).unwrap();
    rest
}

/// (accepted, closed, overlong, user events still registered, bufferevents left).
type Report = (u64, u64, u64, usize, usize);

fn server() -> Server<Report> {
    spawn_server(
        rot13_bev::listen,
        |base: &mut EventBase, c: std::rc::Rc<rot13::Counters>| {
            (
                c.accepted.get(),
                c.closed.get(),
                c.overlong.get(),
                base.num_events(Count::Added),
                base.bev_count(),
            )
        },
    )
}

fn rot13(s: &[u8]) -> Vec<u8> {
    s.iter().map(|&c| rot13_char(c)).collect()
}

on_every_backend! {
    fn hello_becomes_uryyb_line_by_line() {
        let srv = server();
        let mut c = BufReader::new(connect(srv.addr));
        c.get_mut().write_all(b"Hello\n").unwrap();
        assert_eq!(read_line(&mut c), "Uryyb\n");
        // Two lines in one segment, and one line split over two segments.
        c.get_mut().write_all(b"abc\nxyz\nNOP").unwrap();
        assert_eq!(read_line(&mut c), "nop\n");
        assert_eq!(read_line(&mut c), "klm\n");
        c.get_mut().write_all(b"QRS\n").unwrap();
        assert_eq!(read_line(&mut c), "ABCDEF\n");
        // A last line right before the end of file is still answered.
        c.get_mut().write_all(b"last\n").unwrap();
        assert_eq!(finish(&mut c), b"ynfg\n");
        let (accepted, closed, overlong, added, bevs) = srv.stop();
        assert_eq!((accepted, closed, overlong), (1, 1, 0));
        assert_eq!((added, bevs), (1, 0), "only the listener may be left");
    }

    fn many_clients_are_served_at_once() {
        let srv = server();
        let mut clients: Vec<_> = (0..50).map(|_| BufReader::new(connect(srv.addr))).collect();
        for (i, c) in clients.iter_mut().enumerate() {
            c.get_mut().write_all(format!("client {i}\n").as_bytes()).unwrap();
        }
        for (i, c) in clients.iter_mut().enumerate() {
            let want = String::from_utf8(rot13(format!("client {i}\n").as_bytes())).unwrap();
            assert_eq!(read_line(c), want);
        }
        for c in &mut clients {
            assert!(finish(c).is_empty());
        }
        let (accepted, closed, _, added, bevs) = srv.stop();
        assert_eq!((accepted, closed), (50, 50));
        assert_eq!((added, bevs), (1, 0), "every connection freed");
    }

    fn an_overlong_line_closes_only_that_client() {
        let srv = server();
        let mut good = BufReader::new(connect(srv.addr));
        let mut bad = connect(srv.addr);
        let long = vec![b'a'; MAX_LINE * 2];
        // The server closes on us mid-write: the write may fail with a reset.
        let _ = bad.write_all(&long);
        let mut rest = Vec::new();
        let _ = bad.read_to_end(&mut rest);
        assert!(rest.is_empty(), "the overlong line was answered");
        good.get_mut().write_all(b"still here\n").unwrap();
        assert_eq!(read_line(&mut good), "fgvyy urer\n");
        assert!(finish(&mut good).is_empty());
        let (accepted, closed, overlong, _, _) = srv.stop();
        assert_eq!((accepted, closed, overlong), (2, 2, 1));
    }
}
