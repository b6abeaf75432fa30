//! The libevent book's C programs (`../shared/seeds/c-examples/`), unchanged: compiled
//! against our headers and linked to our libraries, and compiled against Debian's but run
//! on ours, each ROT13 server answers a real client on 127.0.0.1.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod util;

fn seed(name: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/seeds/c-examples")
        .join(name);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("skipped: {} not found", p.display());
        None
    }
}

/// Compiles `src` against our headers, linked to our `libevent`.
fn compile_ours(src: &Path, name: &str) -> PathBuf {
    let libs = util::libs();
    let bin = libs.join(name);
    let inc = Path::new(env!("CARGO_MANIFEST_DIR")).join("include");
    // cargo's LD_LIBRARY_PATH may hold other builds of libevrs_capi.so: the linker must
    // resolve the NEEDED one beside our libevent.
    let args = [
        format!("-I{}", inc.display()),
        format!("-L{}", libs.display()),
        format!("-Wl,-rpath-link,{}", libs.display()),
        "-levent".to_string(),
    ];
    util::cc(&bin, src, &args);
    bin
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `bin` on our libraries and talks ROT13 to it on `port`. The seeds listen on a
/// fixed port: one server at a time.
fn rot13_round_trip(bin: &Path, port: u16) {
    static PORT: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = PORT.lock().unwrap_or_else(|e| e.into_inner());
    let mut server = Server(
        Command::new(bin)
            .env("LD_LIBRARY_PATH", util::libs())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start server"),
    );
    let t0 = Instant::now();
    let stream = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(e) => {
                if let Ok(Some(st)) = server.0.try_wait() {
                    panic!("{} exited ({st}) before listening: {e}", bin.display());
                }
                assert!(
                    t0.elapsed() < Duration::from_secs(20),
                    "{} never listened on {port}: {e}",
                    bin.display()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    for (line, want) in [("Hello, world\n", "Uryyb, jbeyq\n"), ("evrs\n", "rief\n")] {
        w.write_all(line.as_bytes()).unwrap();
        let mut got = String::new();
        r.read_line(&mut got).expect("server answers");
        assert_eq!(got, want);
    }
    drop(server);
}

#[test]
fn the_book_rot13_server_with_events_runs_on_evrs() {
    if !util::have_debian_libevent() {
        return;
    }
    let Some(src) = seed("01_rot13_server_libevent.c") else {
        return;
    };
    // Built against our headers and libraries...
    let ours = compile_ours(&src, "seed_rot13_libevent");
    rot13_round_trip(&ours, 40713);
    // ...and built against Debian's, then run on ours.
    let deb = util::compile_file(&src, "seed_rot13_libevent_debian", &["-levent"]);
    rot13_round_trip(&deb, 40713);
}

#[test]
fn the_book_rot13_server_with_bufferevents_runs_on_evrs() {
    if !util::have_debian_libevent() {
        return;
    }
    let Some(src) = seed("01_rot13_server_bufferevent.c") else {
        return;
    };
    // Built against our headers and libraries...
    let ours = compile_ours(&src, "seed_rot13_bufferevent");
    rot13_round_trip(&ours, 40713);
    // ...and built against Debian's, then run on ours.
    let deb = util::compile_file(&src, "seed_rot13_bufferevent_debian", &["-levent"]);
    rot13_round_trip(&deb, 40713);
}

#[test]
fn every_seed_program_compiles_unchanged_against_our_headers() {
    let inc = Path::new(env!("CARGO_MANIFEST_DIR")).join("include");
    for name in [
        "01_rot13_server_bufferevent.c",
        "01_rot13_server_forking.c",
        "01_rot13_server_libevent.c",
        "01_rot13_server_select.c",
        "01_sync_webclient.c",
    ] {
        let Some(src) = seed(name) else { return };
        let out = Command::new("cc")
            .args(["-std=gnu11", "-fsyntax-only", "-Wall", "-Werror"])
            .arg("-I")
            .arg(&inc)
            .arg(&src)
            .output()
            .expect("run cc");
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn install_sh_gives_a_prefix_that_pkg_config_builds_against() {
    if !util::have_debian_libevent() {
        return;
    }
    let Some(src) = seed("01_rot13_server_libevent.c") else {
        return;
    };
    if Command::new("pkg-config")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: pkg-config not installed");
        return;
    }
    let prefix = util::libs().parent().unwrap().join("evrs-capi-prefix");
    let _ = std::fs::remove_dir_all(&prefix);
    let st = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("install.sh"))
        .arg("--debug")
        .arg(&prefix)
        .status()
        .expect("run install.sh");
    assert!(st.success());
    let flags = Command::new("pkg-config")
        .args(["--cflags", "--libs", "libevent"])
        .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig"))
        .output()
        .expect("pkg-config");
    let flags = String::from_utf8(flags.stdout).unwrap();
    assert!(
        flags.contains(&format!("-I{}/include", prefix.display())),
        "{flags}"
    );
    let bin = prefix.join("rot13_via_pkg_config");
    let out = Command::new("cc")
        .arg("-o")
        .arg(&bin)
        .arg(&src)
        .args(flags.split_whitespace())
        .arg(format!("-Wl,-rpath,{}/lib", prefix.display()))
        .output()
        .expect("cc");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // It runs on evrs without LD_LIBRARY_PATH (rpath into the prefix).
    let ldd = Command::new("ldd")
        .arg(&bin)
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .expect("ldd");
    let ldd = String::from_utf8_lossy(&ldd.stdout);
    assert!(
        ldd.contains(&format!("{}/lib/libevent-2.1.so.7", prefix.display())),
        "{ldd}"
    );
    assert!(ldd.contains("libevrs_capi.so"), "{ldd}");
    rot13_round_trip(&bin, 40713);
}
