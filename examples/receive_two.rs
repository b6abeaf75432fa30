//! Waiting for input from two connections at once, the epoll lecture's first example
//! (`receiveTwoConnections`), with an evrs event per connection. Code: `src/receive_two.rs`.
//!
//! ```text
//! cargo run --release --example receive_two            # port 12345, or an argument / R2_PORT
//! nc 127.0.0.1 12345        # in a second terminal: "client 1"
//! nc 127.0.0.1 12345        # in a third terminal: "client 2"
//! ```
//!
//! Type into either `nc` in any order: each line shows up at once, prefixed by its client.
//! The program exits after both clients have closed (Ctrl-D in `nc`).

use evrs_examples::{bind_listener, port_from_args, receive_two};

fn main() -> std::io::Result<()> {
    let port = port_from_args("R2_PORT", receive_two::DEFAULT_PORT);
    let listener = bind_listener(("0.0.0.0", port))?;
    println!("waiting for two clients on port {port}");
    receive_two::receive_two(listener, |line| println!("{}", line.trim_end()))
}
