//! The libevent book's synchronous web client, on a bufferevent instead (the code is in
//! `src/webclient.rs`): look the host up, connect, send `GET`, print the response as it
//! arrives, stop at end of file.
//!
//! ```text
//! cargo run --example webclient                          # http://localhost:80/
//! cargo run --example webclient -- localhost 8000 /index.html
//! ```

use evrs_examples::webclient;

fn main() {
    let mut args = std::env::args().skip(1);
    let host = args.next().unwrap_or_else(|| "localhost".into());
    let port = match args.next().map(|p| p.parse::<u16>()) {
        None => 80,
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            eprintln!("bad port: {e}");
            std::process::exit(2);
        }
    };
    let path = args.next().unwrap_or_else(|| "/".into());
    match webclient::get(&host, port, &path, std::io::stdout()) {
        Ok(o) if o.complete => {}
        Ok(o) => {
            let why = o.error.unwrap_or_else(|| "the response stopped".into());
            eprintln!("webclient: {host}:{port}: {why}");
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("webclient: {e}");
            std::process::exit(1);
        }
    }
}
