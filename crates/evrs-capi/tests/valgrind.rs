//! The C test programs under valgrind's memcheck on evrs: no invalid read or write, no use
//! of uninitialised memory, no definitely lost block (issue 16: "valgrind clean on the C
//! tests"). Skipped without valgrind unless `EVRS_REQUIRE_C_PEERS=1` (CI installs it).

use std::process::{Command, Stdio};

mod util;

fn have_valgrind() -> bool {
    util::present(util::runs("valgrind"), "valgrind")
}

#[test]
fn the_c_tests_are_memcheck_clean_on_evrs() {
    if !util::have_debian_libevent() || !have_valgrind() {
        return;
    }
    let core: &[&str] = &["-levent_core"];
    for (name, libs) in [
        ("events", core),
        ("event_more", core),
        ("util", core),
        ("buffer", core),
        ("bufferevent", core),
        ("listener", core),
        ("deferred", core),
        ("threads", &["-levent_core", "-levent_pthreads"][..]),
    ] {
        let bin = util::compile(name, libs);
        let out = Command::new("valgrind")
            .args([
                "--error-exitcode=99",
                "--leak-check=full",
                "--errors-for-leak-kinds=definite",
                "-q",
            ])
            .arg(&bin)
            .env("LD_LIBRARY_PATH", util::libs())
            .stdout(Stdio::null())
            .output()
            .expect("run valgrind");
        assert!(
            out.status.success(),
            "{name} under memcheck on evrs: {:?}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
