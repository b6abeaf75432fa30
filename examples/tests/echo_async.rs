//! The async echo server (`async_echo`, on `evrs::rt`) against 200 real TCP clients at
//! once, on every backend.

mod common;

use common::{connect, echo_round, spawn_server};
use evrs::EventBase;
use evrs_examples::echo_async::{self, Counters};
use std::rc::Rc;

on_every_backend! {
    fn two_hundred_clients_at_once() {
        let srv = spawn_server(
            echo_async::listen,
            |base: &mut EventBase, (rt, c): (evrs::rt::Runtime, Rc<Counters>)| {
                rt.shutdown(base);
                (c.accepted.get(), c.closed.get(), c.echoed.get())
            },
        );
        let n = 200;
        let mut conns: Vec<_> = (0..n).map(|_| connect(srv.addr)).collect();
        let msg = |i: usize| format!("client {i} says hello\n").repeat(100 + i % 50);
        let total = echo_round(&mut conns, msg, |i| i.to_string());
        let (accepted, closed, echoed) = srv.stop();
        assert_eq!((accepted, closed), (n as u64, n as u64));
        assert_eq!(echoed, total);
    }
}
