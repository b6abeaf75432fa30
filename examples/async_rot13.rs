//! The ROT13 server in async style (`evrs::rt`): a task per client, all on one thread and
//! one event base (the code is in `src/rot13_async.rs`; `rot13_server` is the bufferevent
//! version, `rot13_server_events` the plain-events one).
//!
//! ```text
//! cargo run --release --example async_rot13            # port 40716
//! cargo run --release --example async_rot13 -- 5555    # or ROT13_PORT=5555
//! nc 127.0.0.1 40716
//! Hello
//! Uryyb
//! ```

use evrs::EventBase;
use evrs_examples::{bind_listener, port_from_args, rot13_async, stop_on_ctrl_c};

fn main() -> std::io::Result<()> {
    let port = port_from_args("ROT13_PORT", rot13_async::DEFAULT_PORT);
    let listener = bind_listener(("0.0.0.0", port))?;
    let mut base = EventBase::new()?;
    let server = rot13_async::listen(&mut base, listener)?;
    stop_on_ctrl_c(&mut base)?;
    println!(
        "rot13 server (async) on port {port} ({} backend); try: nc 127.0.0.1 {port}",
        base.method()
    );
    base.dispatch()?;
    let c = &server.counters;
    println!(
        "served {} connections ({} closed, {} for an overlong line)",
        c.accepted.get(),
        c.closed.get(),
        c.overlong.get()
    );
    server.rt.shutdown(&mut base);
    Ok(())
}
