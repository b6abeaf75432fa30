//! The thread-per-core echo server against hundreds of concurrent real TCP clients.

mod common;

use common::TIMEOUT;
use evrs::EventBase;
use evrs_examples::multi_loop::{self, Server};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Instant;

const WORKERS: usize = 4;
const CLIENT_THREADS: usize = 4;

/// Each client thread opens its connections, waits until every thread has (so all of them
/// are open at once), sends a distinct message on each, checks each echo byte for byte,
/// then half-closes and waits for the server's end of file. Returns the bytes echoed.
fn clients(addr: SocketAddr, t: usize, n: usize, all_open: Arc<Barrier>) -> u64 {
    let mut conns: Vec<TcpStream> = (0..n)
        .map(|i| {
            let s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("client {t}/{i}: {e}"));
            s.set_read_timeout(Some(TIMEOUT)).unwrap();
            s.set_write_timeout(Some(TIMEOUT)).unwrap();
            s
        })
        .collect();
    all_open.wait();
    let msg = |i: usize| format!("client {t}/{i} says hello\n").repeat(1 + (t + i) % 4);
    common::echo_round(&mut conns, msg, |i| format!("{t}/{i}"))
}

on_every_backend! {
    fn five_hundred_clients_spread_over_all_workers() {
        // select(2) cannot watch descriptors >= 1024, and clients and server share this process.
        let select = EventBase::new().unwrap().method() == evrs::Method::Select;
        let n = if select { 400 } else { 500 };
        let started = Instant::now();
        let srv = Server::start("127.0.0.1:0", WORKERS).unwrap();
        let all_open = Arc::new(Barrier::new(CLIENT_THREADS));
        let threads: Vec<_> = (0..CLIENT_THREADS)
            .map(|t| {
                let b = all_open.clone();
                let addr = srv.addr;
                thread::spawn(move || clients(addr, t, n / CLIENT_THREADS, b))
            })
            .collect();
        let echoed: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();

        // Every echo came back, so every connection was registered on its worker already.
        let counts = srv.connection_counts();
        assert_eq!(counts.iter().sum::<u64>(), n as u64);
        // Round-robin: each worker got exactly its share.
        assert_eq!(counts, vec![(n / WORKERS) as u64; WORKERS], "{counts:?}");

        let reports = srv.stop().unwrap();
        assert_eq!(reports.len(), WORKERS);
        for (k, r) in reports.iter().enumerate() {
            assert_eq!(r.accepted, counts[k], "worker {k}");
            assert_eq!(r.closed, r.accepted, "worker {k} must close what it served");
            assert_eq!(r.events_left, 0, "worker {k} must have freed every event");
        }
        assert_eq!(reports.iter().map(|r| r.bytes).sum::<u64>(), echoed);
        println!(
            "{n} clients over {WORKERS} workers {counts:?}: {:.2?}",
            started.elapsed()
        );
    }

    fn stop_closes_open_connections() {
        let srv = Server::start("127.0.0.1:0", 2).unwrap();
        let mut conns: Vec<TcpStream> = (0..4).map(|_| common::connect(srv.addr)).collect();
        for c in &mut conns {
            c.write_all(b"ping").unwrap();
            let mut got = [0; 4];
            c.read_exact(&mut got).unwrap();
            assert_eq!(&got, b"ping");
        }
        assert_eq!(srv.connection_counts(), vec![2, 2]);
        let reports = srv.stop().unwrap();
        // Still open when stopped: one event pending each (its read event), and dropping the
        // bases closes the sockets.
        for r in &reports {
            assert_eq!((r.accepted, r.closed, r.events_left), (2, 0, 2));
        }
        for c in &mut conns {
            assert_eq!(c.read(&mut [0; 1]).unwrap(), 0);
        }
    }

    /// Prints round trips per second with 1 worker and with N (run with `--nocapture` to see
    /// them). Nothing about speed is asserted: the clients run on the same cores as the server.
    fn round_trips_one_vs_n_workers() {
        let n = multi_loop::default_workers().max(2);
        let one = multi_loop::round_trips_per_sec(1, 4, 8, 300).unwrap();
        let many = multi_loop::round_trips_per_sec(n, 4, 8, 300).unwrap();
        println!("round trips/s: 1 worker {one:.0}, {n} workers {many:.0}");
        assert!(one > 0.0 && many > 0.0);
    }
}
