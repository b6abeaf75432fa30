//! An echo server over TLS: a listener, and per client a socket bufferevent with a TLS
//! server bufferevent (rustls, through `evrs-tls`) over it. The code is in
//! `src/tls_echo.rs`.
//!
//! At start-up it makes a self-signed certificate for `localhost` and writes it (PEM) to
//! the temporary directory, so a client can trust it:
//!
//! ```text
//! cargo run --release --example tls_echo            # port 40715
//! cargo run --release --example tls_echo -- 5555    # or TLS_ECHO_PORT=5555
//! openssl s_client -connect 127.0.0.1:40715 -quiet -CAfile /tmp/evrs-tls-echo-cert.pem
//! ```

use evrs::EventBase;
use evrs_examples::tls_echo::{self, Identity};
use evrs_examples::{bind_listener, port_from_args, stop_on_ctrl_c};

fn main() -> std::io::Result<()> {
    let port = port_from_args("TLS_ECHO_PORT", tls_echo::DEFAULT_PORT);
    let identity = Identity::generate()?;
    let pem_path = std::env::temp_dir().join("evrs-tls-echo-cert.pem");
    std::fs::write(&pem_path, identity.cert_pem())?;
    let listener = bind_listener(("0.0.0.0", port))?;
    let mut base = EventBase::new()?;
    let counters = tls_echo::listen(&mut base, listener, &identity)?;
    stop_on_ctrl_c(&mut base)?;
    println!(
        "TLS echo server on port {port} ({} backend), self-signed certificate in {}",
        base.method(),
        pem_path.display()
    );
    println!(
        "try: openssl s_client -connect 127.0.0.1:{port} -quiet -CAfile {}",
        pem_path.display()
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
