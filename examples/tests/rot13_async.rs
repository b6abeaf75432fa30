//! The async ROT13 server (`async_rot13`, on `evrs::rt`) against real TCP clients, on every
//! backend: line by line, many clients at once, an overlong line, end of file mid-line.

mod common;

use common::{connect, read_line, spawn_server, Server};
use evrs::EventBase;
use evrs_examples::rot13_async::{self, AsyncServer, MAX_LINE};
use std::io::{BufReader, Read, Write};
use std::net::Shutdown;

/// (accepted, closed, overlong).
type Report = (u64, u64, u64);

fn server() -> Server<Report> {
    spawn_server(
        rot13_async::listen,
        |base: &mut EventBase, s: AsyncServer| {
            let c = (
                s.counters.accepted.get(),
                s.counters.closed.get(),
                s.counters.overlong.get(),
            );
            s.rt.shutdown(base);
            c
        },
    )
}

on_every_backend! {
    fn hello_becomes_uryyb_line_by_line() {
        let srv = server();
        let mut c = BufReader::new(connect(srv.addr));
        c.get_mut().write_all(b"Hello\n").unwrap();
        assert_eq!(read_line(&mut c), "Uryyb\n");
        c.get_mut().write_all(b"abc\nxyz\nNOP").unwrap();
        assert_eq!(read_line(&mut c), "nop\n");
        assert_eq!(read_line(&mut c), "klm\n");
        c.get_mut().write_all(b"QRS\nlast").unwrap();
        assert_eq!(read_line(&mut c), "ABCDEF\n");
        // The rest of a last line without its newline is answered at end of file.
        c.get_ref().shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"ynfg");
        let (accepted, closed, overlong) = srv.stop();
        assert_eq!((accepted, closed, overlong), (1, 1, 0));
    }

    fn many_clients_at_once() {
        let srv = server();
        let mut clients: Vec<_> = (0..50).map(|_| BufReader::new(connect(srv.addr))).collect();
        for round in 0..5 {
            for (i, c) in clients.iter_mut().enumerate() {
                c.get_mut().write_all(format!("client {i} round {round}\n").as_bytes()).unwrap();
            }
            for (i, c) in clients.iter_mut().enumerate() {
                assert_eq!(read_line(c), format!("pyvrag {i} ebhaq {round}\n"));
            }
        }
        drop(clients);
        let (accepted, _, overlong) = srv.stop();
        assert_eq!((accepted, overlong), (50, 0));
    }

    fn an_overlong_line_closes_only_that_client() {
        let srv = server();
        let mut good = BufReader::new(connect(srv.addr));
        let mut bad = connect(srv.addr);
        let _ = bad.write_all(&vec![b'x'; MAX_LINE + 10]);
        let mut rest = Vec::new();
        let _ = bad.read_to_end(&mut rest); // closed by the server (or reset)
        good.get_mut().write_all(b"still here\n").unwrap();
        assert_eq!(read_line(&mut good), "fgvyy urer\n");
        let (_, _, overlong) = srv.stop();
        assert_eq!(overlong, 1);
    }
}
