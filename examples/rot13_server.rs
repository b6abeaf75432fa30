//! The libevent book's ROT13 server in its final form: a listener and a bufferevent per
//! client (the code is in `src/rot13_bev.rs`; `rot13_server_events` is the plain-events
//! version).
//!
//! It listens on port 40713 and answers every line a client sends with the line's ROT13,
//! serving any number of clients from one thread. A line over 16 KiB closes that client.
//!
//! ```text
//! cargo run --release --example rot13_server            # port 40713
//! cargo run --release --example rot13_server -- 5555    # or ROT13_PORT=5555
//! nc 127.0.0.1 40713
//! Hello
//! Uryyb
//! ```

use evrs::EventBase;
use evrs_examples::{bind_listener, port_from_args, rot13, rot13_bev, stop_on_ctrl_c};

fn main() -> std::io::Result<()> {
    let port = port_from_args("ROT13_PORT", rot13::DEFAULT_PORT);
    let listener = bind_listener(("0.0.0.0", port))?;
    let mut base = EventBase::new()?;
    let counters = rot13_bev::listen(&mut base, listener)?;
    stop_on_ctrl_c(&mut base)?;
    println!(
        "rot13 server (bufferevents) on port {port} ({} backend); try: nc 127.0.0.1 {port}",
        base.method()
    );
    base.dispatch()?;
    println!(
        "served {} connections ({} closed, {} for an overlong line)",
        counters.accepted.get(),
        counters.closed.get(),
        counters.overlong.get()
    );
    Ok(())
}
