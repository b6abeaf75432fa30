//! An echo server on a listener and a bufferevent per client (the code is in
//! `src/echo_bev.rs`; `echo_server` is the same server on plain events).
//!
//! It listens on port 40714 and sends every byte a client sends straight back, serving any
//! number of clients from one thread.
//!
//! ```text
//! cargo run --release --example echo_server_bev            # port 40714
//! cargo run --release --example echo_server_bev -- 5555    # or ECHO_PORT=5555
//! nc 127.0.0.1 40714
//! ```

use evrs::EventBase;
use evrs_examples::{bind_listener, echo_bev, port_from_args, stop_on_ctrl_c};

fn main() -> std::io::Result<()> {
    let port = port_from_args("ECHO_PORT", echo_bev::DEFAULT_PORT);
    let listener = bind_listener(("0.0.0.0", port))?;
    let mut base = EventBase::new()?;
    let counters = echo_bev::listen(&mut base, listener)?;
    stop_on_ctrl_c(&mut base)?;
    println!(
        "echo server (bufferevents) on port {port} ({} backend); try: nc 127.0.0.1 {port}",
        base.method()
    );
    base.dispatch()?;
    println!(
        "served {} connections ({} closed), echoed {} bytes",
        counters.accepted.get(),
        counters.closed.get(),
        counters.echoed.get()
    );
    Ok(())
}
