//! A mail-drop server in the lecture's `addToInbox` shape, on `evrs::rt` (the code is in
//! `src/mail_drop.rs`): `ADD <message id> <recipient>` per line, answered `OK` or
//! `ERR <reason>`.
//!
//! ```text
//! cargo run --release --example mail_drop -- STORE_DIR [PORT]   # port 40717
//! mkdir -p STORE_DIR/messages STORE_DIR/mailboxes/ann
//! echo hello > STORE_DIR/messages/1; echo 1000 > STORE_DIR/mailboxes/ann/quota
//! printf 'ADD 1 ann\n' | nc 127.0.0.1 40717
//! OK
//! ```

use evrs::EventBase;
use evrs_examples::{bind_listener, mail_drop, stop_on_ctrl_c};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let store = args.next().unwrap_or_else(|| ".".into());
    let port = args
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(mail_drop::DEFAULT_PORT);
    let listener = bind_listener(("0.0.0.0", port))?;
    let mut base = EventBase::new()?;
    let rt = mail_drop::listen(&mut base, listener, store.clone().into())?;
    stop_on_ctrl_c(&mut base)?;
    println!(
        "mail drop on port {port}, store {store}; try: printf 'ADD 1 ann\\n' | nc 127.0.0.1 {port}"
    );
    base.dispatch()?;
    rt.shutdown(&mut base);
    Ok(())
}
