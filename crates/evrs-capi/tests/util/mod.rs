//! Shared by the C ABI tests: builds the SONAME libraries once, compiles C test programs
//! against Debian's libevent headers and libraries (the way existing binaries were built),
//! and runs them against both Debian's libevent and ours (through `LD_LIBRARY_PATH`).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The cargo target profile directory holding `libevrs_capi.so`.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test>-<hash>
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

/// Where the SONAME libraries are (built on first use).
pub fn libs() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let prof = profile_dir();
        let out = prof.join("evrs-capi-libs");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("build-libs.sh");
        // `cargo test` builds the cdylib into deps/ (only `cargo build` copies it up).
        let st = Command::new("bash")
            .arg(&script)
            .arg(prof.join("deps"))
            .arg(&out)
            .stdout(Stdio::null())
            .status()
            .expect("run build-libs.sh");
        assert!(st.success(), "build-libs.sh failed");
        out
    })
}

/// Whether Debian's libevent (headers, libraries) and a compiler are here. When they are
/// not, a test skips with a message, unless `EVRS_REQUIRE_C_PEERS=1` (CI) makes it fail.
pub fn have_debian_libevent() -> bool {
    let ok = Path::new("/usr/include/event2/event.h").exists() && runs("cc");
    present(ok, "libevent-dev or cc")
}

/// Whether `tool --version` runs.
pub fn runs(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `ok`, after the skip rule for a missing peer `what`: a message when absent, and a
/// failure instead under `EVRS_REQUIRE_C_PEERS=1` (CI, which installs every peer).
pub fn present(ok: bool, what: &str) -> bool {
    if !ok {
        assert!(
            std::env::var("EVRS_REQUIRE_C_PEERS").as_deref() != Ok("1"),
            "{what} missing, and EVRS_REQUIRE_C_PEERS=1"
        );
        eprintln!("skipped: {what} not installed");
    }
    ok
}

/// Compiles `tests/c/<name>.c` against Debian's headers, linked to Debian's libraries
/// `libs` (e.g. `["-levent_core"]`). Returns the binary.
pub fn compile(name: &str, libs: &[&str]) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/c")
        .join(format!("{name}.c"));
    compile_file(&src, name, libs)
}

/// Compiles any C file as [`compile`] does (once per name and test process: tests that
/// share a program share the binary).
pub fn compile_file(src: &Path, name: &str, libs: &[&str]) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let bin = profile_dir().join("evrs-capi-ctests").join(name);
    if built.iter().any(|n| n == name) {
        return bin;
    }
    built.push(name.to_string());
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    let mut args: Vec<String> = libs.iter().map(|l| l.to_string()).collect();
    args.push("-lpthread".into());
    cc(&bin, src, &args);
    bin
}

/// Compiles `src` into `bin` with the tests' flags (warnings on, implicit declarations
/// an error) and `extra` arguments; fails the test with the compiler's message.
pub fn cc(bin: &Path, src: &Path, extra: &[String]) {
    let out = Command::new("cc")
        .args([
            "-std=gnu11",
            "-O1",
            "-g",
            "-Wall",
            "-Werror=implicit-function-declaration",
            "-o",
        ])
        .arg(bin)
        .arg(src)
        .args(extra)
        .output()
        .expect("run cc");
    assert!(
        out.status.success(),
        "cc {}: {}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Which library a program runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lib {
    /// Debian's libevent 2.1.12.
    Debian,
    /// evrs, through `LD_LIBRARY_PATH`.
    Evrs,
}

/// Runs `bin args` on `lib` with a watchdog of `limit`; its output.
pub fn run(bin: &Path, args: &[&str], lib: Lib, limit: Duration) -> Output {
    let mut cmd = Command::new(bin);
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    // Never cargo's LD_LIBRARY_PATH (its target dirs): only ours, or none for Debian's.
    match lib {
        Lib::Evrs => cmd.env("LD_LIBRARY_PATH", libs()),
        Lib::Debian => cmd.env_remove("LD_LIBRARY_PATH"),
    };
    let mut child = cmd.spawn().expect("spawn C test");
    let t0 = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "{} on {lib:?} hung for {limit:?}; stdout so far:\n{}\nstderr:\n{}",
                bin.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `bin args` on evrs only (for checks where libevent 2.1.12 crashes, spins or is
/// undefined), asserts it succeeded, and returns its standard output.
pub fn evrs_only(bin: &Path, args: &[&str]) -> String {
    let out = run(bin, args, Lib::Evrs, Duration::from_secs(30));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// Runs `bin` on both libraries and asserts the same exit status and standard output;
/// returns evrs's output.
pub fn same_on_both(bin: &Path, args: &[&str]) -> String {
    let limit = Duration::from_secs(30);
    let deb = run(bin, args, Lib::Debian, limit);
    let ours = run(bin, args, Lib::Evrs, limit);
    let (d, o) = (
        String::from_utf8_lossy(&deb.stdout),
        String::from_utf8_lossy(&ours.stdout),
    );
    assert!(
        deb.status.success(),
        "{} fails on Debian's libevent: {}\n{d}",
        bin.display(),
        String::from_utf8_lossy(&deb.stderr)
    );
    if d != o || deb.status.code() != ours.status.code() {
        let diff: Vec<String> = d
            .lines()
            .zip(o.lines().chain(std::iter::repeat("<missing>")))
            .filter(|(a, b)| a != b)
            .take(10)
            .map(|(a, b)| format!("  libevent: {a}\n  evrs:     {b}"))
            .collect();
        panic!(
            "{} differs (status {:?} vs {:?}):\n{}\nevrs stderr:\n{}\nevrs stdout:\n{o}",
            bin.display(),
            deb.status.code(),
            ours.status.code(),
            diff.join("\n"),
            String::from_utf8_lossy(&ours.stderr)
        );
    }
    o.into_owned()
}
