//! An echo server in async style on `evrs::rt` (the code is in `src/echo_async.rs`).
//!
//! ```text
//! cargo run --release --example async_echo            # port 40718
//! nc 127.0.0.1 40718
//! ```

use evrs::EventBase;
use evrs_examples::{bind_listener, echo_async, port_from_args, stop_on_ctrl_c};

fn main() -> std::io::Result<()> {
    let port = port_from_args("ECHO_PORT", echo_async::DEFAULT_PORT);
    let listener = bind_listener(("0.0.0.0", port))?;
    let mut base = EventBase::new()?;
    let (rt, counters) = echo_async::listen(&mut base, listener)?;
    stop_on_ctrl_c(&mut base)?;
    println!("async echo server on port {port}; try: nc 127.0.0.1 {port}");
    base.dispatch()?;
    println!(
        "served {} connections, echoed {} bytes",
        counters.accepted.get(),
        counters.echoed.get()
    );
    rt.shutdown(&mut base);
    Ok(())
}
