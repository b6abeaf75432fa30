//! Runs `tls_echo_ab --quick` (10 TLS connections, 300 round trips per run, 2 rounds) so CI
//! proves the TLS echo benchmark works end to end; a few seconds. The libevent row needs
//! the C peer (`build.rs` compiles it when the OpenSSL and libevent headers are there); a
//! missing one is a printed skip, or a failure when `EVRS_REQUIRE_C_PEERS=1` (CI).
#![cfg(feature = "evrs")]

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn tls_echo_ab_quick_runs() {
    let t0 = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_tls_echo_ab"))
        .arg("--quick")
        .output()
        .expect("run tls_echo_ab");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tls_echo_ab --quick failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("| 10 | evrs |"),
        "no row for evrs:\n{stdout}"
    );
    assert!(
        stdout.contains("negotiated with evrs: client saw TLSv1_3 TLS13_AES_128_GCM_SHA256"),
        "evrs did not negotiate TLS 1.3 with AES-128-GCM:\n{stdout}"
    );
    let required = std::env::var("EVRS_REQUIRE_C_PEERS").is_ok_and(|v| v == "1");
    if cfg!(have_libevent_openssl) {
        assert!(
            stdout.contains("| 10 | libevent |"),
            "no row for libevent:\n{stdout}"
        );
        assert!(
            stdout
                .contains("negotiated with libevent: client saw TLSv1_3 TLS13_AES_128_GCM_SHA256"),
            "libevent did not negotiate TLS 1.3 with AES-128-GCM:\n{stdout}"
        );
    } else {
        assert!(
            !required,
            "the libevent TLS echo peer was not built (see build.rs's warning), and \
             EVRS_REQUIRE_C_PEERS=1 forbids skipping (apt-get install -y libssl-dev \
             libevent-dev)"
        );
        // Straight to fd 2, past the harness's capture: a skip must be visible.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr().lock(),
            "SKIPPED tls_echo_ab's libevent row: the C peer was not built (apt-get install -y \
             libssl-dev libevent-dev; set EVRS_REQUIRE_C_PEERS=1 to make this a failure)"
        );
    }
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "quick mode too slow"
    );
}
