//! The bufferevent echo server (`echo_server_bev`) against real TCP clients, on every
//! backend.

mod common;

use common::{connect, echo_round, spawn_server, Server};
use evrs::{Count, EventBase};
use evrs_examples::echo_bev::{self, Counters, MAX_PENDING};
use std::io::{Read, Write};
use std::net::Shutdown;
use std::rc::Rc;

/// (accepted, closed, paused, bytes echoed, user events still registered, bufferevents left).
type Report = (u64, u64, u64, u64, usize, usize);

fn server() -> Server<Report> {
    spawn_server(echo_bev::listen, |base: &mut EventBase, c: Rc<Counters>| {
        (
            c.accepted.get(),
            c.closed.get(),
            c.paused.get(),
            c.echoed.get(),
            base.num_events(Count::Added),
            base.bev_count(),
        )
    })
}

on_every_backend! {
    fn two_hundred_clients_at_once() {
        let srv = server();
        let n = 200;
        let mut conns: Vec<_> = (0..n).map(|_| connect(srv.addr)).collect();
        // A few KB each, different per client.
        let msg = |i: usize| format!("client {i} says hello\n").repeat(100 + i % 50);
        let total = echo_round(&mut conns, msg, |i| i.to_string());
        let (accepted, closed, _, echoed, added, bevs) = srv.stop();
        assert_eq!((accepted, closed), (n as u64, n as u64));
        assert_eq!(echoed, total);
        assert_eq!((added, bevs), (1, 0), "only the listener may be left");
    }

    fn a_client_that_does_not_read_is_paused_and_the_echo_survives_eof() {
        let srv = server();
        let c = connect(srv.addr);
        // More than the kernel's socket buffers hold (several MB on loopback), so the
        // server's output really piles up past MAX_PENDING.
        let data: Vec<u8> = (0..256 * MAX_PENDING).map(|i| (i * 7 % 251) as u8).collect();
        // Send everything and half-close before reading a byte: the server must stop
        // reading while its output is full, and still send it all after our end of file.
        let mut w = c.try_clone().unwrap();
        let sent = data.clone();
        let writer = std::thread::spawn(move || {
            w.write_all(&sent).unwrap();
            w.shutdown(Shutdown::Write).unwrap();
        });
        std::thread::sleep(std::time::Duration::from_millis(100));
        let mut back = Vec::new();
        (&c).read_to_end(&mut back).unwrap();
        writer.join().unwrap();
        assert!(back == data, "the echo differs ({} of {} bytes)", back.len(), data.len());
        let (accepted, closed, paused, _, added, bevs) = srv.stop();
        assert_eq!((accepted, closed), (1, 1));
        assert!(paused > 0, "the server never stopped reading");
        assert_eq!((added, bevs), (1, 0), "only the listener may be left");
    }
}
