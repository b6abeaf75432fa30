//! Compiles the C peers (bench/c/*.c) into executables in OUT_DIR when their libraries are
//! installed, and tells the runner where they are through `EVRS_BENCH_<PEER>_BIN`.
//! A missing header or a failed compile only skips that peer (with a cargo warning). The
//! in-process A/B binaries get their C servers as static libraries instead (`cfg`
//! `have_libevent`, `have_libevent_openssl`).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

struct CPeer {
    name: &'static str,
    source: &'static str,
    header: &'static str,
    /// Linker flags (libraries).
    libs: &'static [&'static str],
    env: &'static str,
}

const PEERS: [CPeer; 2] = [
    CPeer {
        name: "libevent",
        source: "c/libevent_bench.c",
        header: "event2/event.h",
        // event_pthreads + -pthread for the xthread benchmark (evthread_use_pthreads).
        libs: &["-levent_core", "-levent_pthreads", "-pthread"],
        env: "EVRS_BENCH_LIBEVENT_BIN",
    },
    CPeer {
        name: "libev",
        source: "c/libev_bench.c",
        header: "ev.h",
        libs: &["-lev"],
        env: "EVRS_BENCH_LIBEV_BIN",
    },
];

fn header_exists(header: &str) -> bool {
    let dirs = ["/usr/include", "/usr/local/include"];
    let extra = env::var("CPATH").unwrap_or_default();
    dirs.iter()
        .map(PathBuf::from)
        .chain(
            extra
                .split(':')
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
        )
        .any(|d| d.join(header).exists())
}

/// Compiles `c/<source>.c` for each source and archives them into `lib<lib>.a` in OUT_DIR,
/// which becomes a link search path; false (nothing linked) if a step fails.
fn static_lib(sources: &[&str], lib: &str) -> bool {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let cc = env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let objs: Vec<PathBuf> = sources.iter().map(|s| out.join(format!("{s}.o"))).collect();
    let ok = sources.iter().zip(&objs).all(|(s, obj)| {
        Command::new(&cc)
            .args(["-O2", "-Wall", "-Wextra", "-fPIC", "-c", "-o"])
            .arg(obj)
            .arg(format!("c/{s}.c"))
            .status()
            .is_ok_and(|s| s.success())
    }) && Command::new("ar")
        .arg("rcs")
        .arg(out.join(format!("lib{lib}.a")))
        .args(&objs)
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        // The binaries name the libraries in `#[link]` attributes; this is where ours are.
        println!("cargo:rustc-link-search=native={}", out.display());
    }
    ok
}

/// `c/libevent_chain.c` and `c/libevent_echo.c` (the pipechain ring and the bufferevent
/// echo server of `pipechain_ab` and `echo_ab`), linked with libevent_core: sets
/// `cfg(have_libevent)`, or warns and skips.
fn link_libevent_chain() {
    if static_lib(&["libevent_chain", "libevent_echo"], "evrs_libevent_chain") {
        println!("cargo:rustc-cfg=have_libevent");
    } else {
        println!(
            "cargo:warning=in-process libevent A/B skipped: building c/libevent_chain.c or \
             c/libevent_echo.c failed"
        );
    }
}

/// `c/libevent_tls_echo.c` (libevent's bufferevent_openssl echo server, for
/// `tls_echo_ab`; the binary names `-levent_openssl -levent_core -lssl -lcrypto`): sets
/// `cfg(have_libevent_openssl)`, or warns and skips (`tls_echo_ab` then runs evrs alone).
fn link_libevent_tls() {
    if static_lib(&["libevent_tls_echo"], "evrs_libevent_tls") {
        println!("cargo:rustc-cfg=have_libevent_openssl");
    } else {
        println!("cargo:warning=libevent TLS echo skipped: building c/libevent_tls_echo.c failed");
    }
}

/// `c/libev_timers.c` (libev's side of `timers_ab`; the binary names `-lev`): sets
/// `cfg(have_libev)`, or warns and skips (`timers_ab` then runs the evrs peers alone).
fn link_libev_timers() {
    if static_lib(&["libev_timers"], "evrs_libev_timers") {
        println!("cargo:rustc-cfg=have_libev");
    } else {
        println!("cargo:warning=libev timers A/B skipped: building c/libev_timers.c failed");
    }
}

fn main() {
    println!("cargo:rustc-check-cfg=cfg(have_libevent)");
    println!("cargo:rustc-check-cfg=cfg(have_libev)");
    println!("cargo:rustc-check-cfg=cfg(have_libevent_openssl)");
    println!("cargo:rerun-if-changed=c");
    if header_exists("event2/buffer.h") && header_exists("event2/listener.h") {
        // The in-process A/B binaries (src/bin/*_ab.rs) call libevent directly.
        link_libevent_chain();
    }
    if header_exists("ev.h") {
        link_libev_timers();
    } else {
        println!("cargo:warning=libev timers A/B skipped: <ev.h> not found (install libev-dev)");
    }
    let tls_headers = [
        "openssl/ssl.h",
        "event2/bufferevent_ssl.h",
        "event2/listener.h",
    ];
    match tls_headers.iter().find(|h| !header_exists(h)) {
        None => link_libevent_tls(),
        Some(h) => println!(
            "cargo:warning=libevent TLS echo (tls_echo_ab) skipped: <{h}> not found (install \
             libssl-dev and libevent-dev)"
        ),
    }
    println!("cargo:rerun-if-env-changed=CC");
    println!("cargo:rerun-if-env-changed=CPATH");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let cc = env::var("CC").unwrap_or_else(|_| "cc".to_string());
    for p in PEERS {
        println!("cargo:rerun-if-changed={}", p.source);
        if !header_exists(p.header) {
            println!(
                "cargo:warning={} peer skipped: <{}> not found (install its -dev package)",
                p.name, p.header
            );
            continue;
        }
        let bin = out.join(format!("{}_bench", p.name));
        let status = Command::new(&cc)
            .args(["-O2", "-Wall", "-Wextra", "-o"])
            .arg(&bin)
            .arg(Path::new(p.source))
            .args(p.libs)
            .status();
        match status {
            Ok(s) if s.success() => println!("cargo:rustc-env={}={}", p.env, bin.display()),
            Ok(s) => println!(
                "cargo:warning={} peer skipped: {cc} exited with {s}",
                p.name
            ),
            Err(e) => println!(
                "cargo:warning={} peer skipped: cannot run {cc}: {e}",
                p.name
            ),
        }
    }
}
