//! The libevent book's ROT13 server, built on plain evrs events (no bufferevents): the
//! book's middle chapter. `rot13_server` is the bufferevent version.
//!
//! It listens on port 40713 and answers every line a client sends with the line's ROT13,
//! serving any number of clients from one thread. The code — per-connection state, a read
//! and a write event per client, bounded buffers — is in `src/rot13.rs`.
//!
//! ```text
//! cargo run --release --example rot13_server_events            # port 40713
//! cargo run --release --example rot13_server_events -- 5555    # or ROT13_PORT=5555
//! nc 127.0.0.1 40713
//! Hello
//! Uryyb
//! ```

use evrs::EventBase;
use evrs_examples::{bind_listener, port_from_args, rot13, stop_on_ctrl_c};

fn main() -> std::io::Result<()> {
    let port = port_from_args("ROT13_PORT", rot13::DEFAULT_PORT);
    // Like the book: SO_REUSEADDR, bind, listen (see bind_listener).
    let listener = bind_listener(("0.0.0.0", port))?;
    let mut base = EventBase::new()?;
    let counters = rot13::listen(&mut base, listener)?;
    stop_on_ctrl_c(&mut base)?;
    println!(
        "rot13 server on port {port} ({} backend); try: nc 127.0.0.1 {port}",
        base.method()
    );
    base.dispatch()?;
    println!(
        "served {} connections ({} closed)",
        counters.accepted.get(),
        counters.closed.get()
    );
    Ok(())
}
