//! An echo server for thousands of clients on one thread: the epoll lecture's event loop
//! ("this model can easily support 10k+ simultaneous connections with just a single
//! thread"), written with evrs events. The server code is in `src/echo.rs`.
//!
//! ```text
//! ulimit -n 20000                                     # one descriptor per client
//! cargo run --release --example echo_server           # port 12345
//! cargo run --release --example echo_server -- 5555   # or ECHO_PORT=5555
//! nc 127.0.0.1 12345
//! ```
//!
//! Once a second, if anything changed, it prints how many clients are connected. The test
//! `examples/tests/echo.rs` drives it with 1,000 clients (and, `--ignored`, 10,000).

use evrs::{EventBase, What};
use evrs_examples::{bind_listener, echo, port_from_args, stop_on_ctrl_c};
use std::time::Duration;

fn main() -> std::io::Result<()> {
    let port = port_from_args("ECHO_PORT", echo::DEFAULT_PORT);
    let listener = bind_listener(("0.0.0.0", port))?;
    let mut base = EventBase::new()?;
    let stats = echo::listen(&mut base, listener)?;
    stop_on_ctrl_c(&mut base)?;

    // A persistent timer: a timeout-only event with PERSIST fires every interval.
    let s = stats.clone();
    let mut last = (0, 0);
    let status = base.new_event(-1, What::PERSIST, move |_base, _ev, _what| {
        let now = (s.accepted.get(), s.bytes.get());
        if now != last {
            last = now;
            println!(
                "{} clients connected, {} served, {} bytes echoed",
                s.open(),
                now.0,
                now.1
            );
        }
    })?;
    base.add(status, Some(Duration::from_secs(1)))?;

    println!("echo server on port {port} ({} backend)", base.method());
    base.dispatch()?;
    println!("bye: served {} clients", stats.accepted.get());
    Ok(())
}
