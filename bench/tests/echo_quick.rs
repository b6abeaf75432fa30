//! Runs `echo_ab --quick` (10 connections, a few hundred round trips per run, every server)
//! so CI proves the bufferevent echo benchmark works end to end; well under 10 s.
#![cfg(feature = "evrs")]

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn echo_ab_quick_runs() {
    let t0 = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_echo_ab"))
        .arg("--quick")
        .output()
        .expect("run echo_ab");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "echo_ab --quick failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    for server in ["evrs", "raw-epoll", "tokio"] {
        assert!(
            stdout.contains(&format!("| 10 | {server} |")),
            "no row for {server}:\n{stdout}"
        );
    }
    if stdout.contains("| 10 | libevent |") {
        assert!(
            stdout.contains("| 10 | libevent-events |"),
            "no row for the plain-events C server:\n{stdout}"
        );
    }
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "quick mode too slow"
    );
}
