//! A thread-per-core echo server: one acceptor loop (on the main thread) hands each accepted
//! connection, round-robin, to one of N worker threads, each running its own event loop. The
//! code, and why one acceptor means no thundering herd, is in `src/multi_loop.rs`.
//!
//! ```text
//! cargo run --release --example multi_loop_echo               # port 12346, one worker per CPU
//! cargo run --release --example multi_loop_echo -- 5555 4     # or ECHO_PORT=5555 ECHO_WORKERS=4
//! cargo run --release --example multi_loop_echo -- --measure  # round trips/s, 1 vs N workers
//! nc 127.0.0.1 12346
//! ```
//!
//! Ctrl-C stops the acceptor; the workers are then stopped through their handles and joined,
//! and each one's count of connections is printed. The test `examples/tests/multi_loop_echo.rs`
//! drives it with 500 concurrent clients.

use evrs::EventBase;
use evrs_examples::multi_loop::{self, Workers};
use evrs_examples::{bind_listener, port_from_args, stop_on_ctrl_c};
use std::rc::Rc;

fn main() -> std::io::Result<()> {
    let env_workers = std::env::var("ECHO_WORKERS").ok();
    let n = std::env::args()
        .nth(2)
        .or(env_workers)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(multi_loop::default_workers);

    if std::env::args().nth(1).as_deref() == Some("--measure") {
        // 4 client threads x 16 connections x 1,000 round trips of 64 bytes.
        let n = multi_loop::default_workers().max(2);
        for workers in [1, n] {
            let rate = multi_loop::round_trips_per_sec(workers, 4, 16, 1_000)?;
            println!("{workers} worker(s): {rate:.0} round trips/s");
        }
        return Ok(());
    }

    let port = port_from_args("ECHO_PORT", multi_loop::DEFAULT_PORT);
    let listener = bind_listener(("0.0.0.0", port))?;
    let workers = Rc::new(Workers::spawn(n)?);
    let mut base = EventBase::new()?;
    multi_loop::listen(&mut base, listener, workers.clone())?;
    stop_on_ctrl_c(&mut base)?;
    println!(
        "multi-loop echo server on port {port}: 1 acceptor + {} workers ({} backend)",
        workers.len(),
        base.method()
    );
    base.dispatch()?;
    drop(base); // frees the acceptor's event, and its reference to the workers
    let workers = Rc::try_unwrap(workers).map_err(|_| std::io::Error::other("still shared"))?;
    for (k, r) in workers.stop()?.iter().enumerate() {
        println!(
            "worker {k}: {} connections, {} bytes echoed",
            r.accepted, r.bytes
        );
    }
    Ok(())
}
