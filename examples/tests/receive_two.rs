//! receive_two with two real clients that take turns, in an order a blocking reader could
//! not follow (client 2 speaks first, and client 1 cannot continue until it has been heard).

mod common;

use common::{connect, TIMEOUT};
use evrs_examples::{bind_listener, receive_two::receive_two};
use std::io::Write;
use std::net::Shutdown;
use std::sync::mpsc;
use std::thread;

on_every_backend! {
    fn two_clients_in_any_order() {
        let listener = bind_listener("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        let server = thread::spawn(move || receive_two(listener, move |l| tx.send(l).unwrap()));
        let next = || {
            rx.recv_timeout(TIMEOUT)
                .expect("no report from receive_two")
        };

        assert_eq!(next(), "Printing from two incoming connections");
        let mut c1 = connect(addr);
        assert_eq!(next(), "CLIENT 1 connected");
        let mut c2 = connect(addr);
        assert_eq!(next(), "CLIENT 2 connected");

        // Each step waits for the server's report, so the order is fixed — and it is the order a
        // program blocked in a read on client 1 could never produce.
        c2.write_all(b"two speaks first").unwrap();
        assert_eq!(next(), "CLIENT 2: two speaks first");
        c1.write_all(b"then one").unwrap();
        assert_eq!(next(), "CLIENT 1: then one");
        c2.write_all(b"two again").unwrap();
        assert_eq!(next(), "CLIENT 2: two again");
        c2.shutdown(Shutdown::Both).unwrap();
        assert_eq!(next(), "CLIENT 2 closed");
        c1.write_all(b"one is last").unwrap();
        assert_eq!(next(), "CLIENT 1: one is last");
        drop(c1);
        assert_eq!(next(), "CLIENT 1 closed");
        assert_eq!(next(), "All connections closed");
        server.join().unwrap().unwrap(); // dispatch returned by itself: no events were left
    }
}
