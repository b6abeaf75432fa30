//! The mail-drop server (`mail_drop`, the lecture's `addToInbox` on `evrs::rt`) against a
//! real TCP client and a store in a temporary directory, on every backend: delivery,
//! each error (unknown message, unknown recipient, quota, bad request), several requests
//! per connection.

mod common;

use common::{connect, read_line, spawn_server};
use evrs::EventBase;
use evrs_examples::mail_drop;
use std::io::{BufReader, Write};
use std::path::PathBuf;

fn store(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("evrs-mail-drop-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("messages")).unwrap();
    std::fs::create_dir_all(dir.join("mailboxes/ann")).unwrap();
    std::fs::write(dir.join("messages/1"), "hello ann").unwrap();
    std::fs::write(dir.join("messages/big"), vec![b'x'; 100]).unwrap();
    std::fs::write(dir.join("mailboxes/ann/quota"), "64\n").unwrap();
    dir
}

on_every_backend! {
    fn delivers_and_reports_each_error() {
        let dir = store(&format!("{:?}", std::thread::current().id()));
        let d = dir.clone();
        let srv = spawn_server(
            move |base: &mut EventBase, l| mail_drop::listen(base, l, d),
            |base: &mut EventBase, rt: evrs::rt::Runtime| rt.shutdown(base),
        );
        let mut c = BufReader::new(connect(srv.addr));
        for (req, want) in [
            ("ADD 1 ann", "OK"),
            ("ADD 1 ann", "OK"),
            ("ADD 2 ann", "ERR no message 2"),
            ("ADD 1 bob", "ERR no recipient bob"),
            ("ADD big ann", "ERR inbox full (121 bytes over a quota of 64)"),
            ("ADD ../1 ann", "ERR bad request"),
            ("HELLO", "ERR bad request"),
        ] {
            c.get_mut().write_all(format!("{req}\n").as_bytes()).unwrap();
            assert_eq!(read_line(&mut c), format!("{want}\n"), "{req}");
        }
        srv.stop();
        let inbox = std::fs::read_to_string(dir.join("mailboxes/ann/inbox")).unwrap();
        assert_eq!(inbox, "hello ann\nhello ann\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
