//! The test watchdog itself: a test whose loop never returns aborts the test process with
//! the test's name on stderr, within the watchdog's bound (checked in a child process, as the
//! abort takes the whole process down).
mod util;
use evrs::LoopFlags;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};
use util::*;

#[test]
fn a_hung_loop_aborts_the_test_process_with_the_test_name() {
    let _w = watchdog_here(WATCHDOG_BOUND);
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "hangs_forever", "--ignored", "--nocapture"])
        .env("EVRS_WATCHDOG_SELFTEST", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the watchdog did not stop the hung child within 30 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.signal(), Some(libc::SIGABRT), "{status:?}\n{stderr}");
    assert!(
        stderr.contains("test watchdog_selftest::hangs_forever hung for 200ms"),
        "{stderr}"
    );
    assert!(start.elapsed() < Duration::from_secs(20));
}

/// The child's test: a loop with nothing to do and `NO_EXIT_ON_EMPTY` never returns.
#[test]
#[ignore = "helper: run by a_hung_loop_aborts_the_test_process_with_the_test_name"]
fn hangs_forever() {
    if std::env::var_os("EVRS_WATCHDOG_SELFTEST").is_none() {
        return;
    }
    let _w = watchdog(
        "watchdog_selftest::hangs_forever",
        Duration::from_millis(200),
    );
    let mut b = base(evrs::Method::Epoll);
    let _ = b.run(LoopFlags::NO_EXIT_ON_EMPTY);
    unreachable!("an empty loop with NO_EXIT_ON_EMPTY returned");
}
