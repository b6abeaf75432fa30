//! In-process A/B of a TLS echo server (issue 15: "TLS echo vs the same server over OpenSSL
//! (libevent_openssl) in C"): N TLS connections to one single-threaded server, then 64-byte
//! messages ping-ponged over them. Two servers, both serving the same certificate (one
//! self-signed ECDSA P-256 certificate made with rcgen at start-up, written as PEM files to a
//! temporary directory):
//!
//! - **evrs**: a socket bufferevent per connection under `bufferevent_tls_server`
//!   (evrs-tls, rustls with its `ring` provider, rustls's default server configuration), a
//!   handler that moves the plaintext input to the output;
//! - **libevent**: `bench/c/libevent_tls_echo.c`, an `evconnlistener` and per connection
//!   `bufferevent_openssl_socket_new(.., BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE)`
//!   over an `SSL_CTX` with OpenSSL's defaults, echoing with `evbuffer_add_buffer`.
//!
//! Why in-process: the C server is compiled by `build.rs` into a static library and linked
//! into this binary (`-levent_openssl -levent_core -lssl -lcrypto`, as `echo_ab` links the
//! plain libevent echo), so both servers run on this thread and are timed by the same clock,
//! `CLOCK_THREAD_CPUTIME_ID` (user + kernel time of the server's own work, unaffected by
//! being descheduled on this noisy VM), alternating run by run in one process that sees the
//! same machine state. A child process measured through `/proc/<pid>/stat` would give tick
//! resolution (10 ms) and a process of its own; ring's and OpenSSL's symbols do not clash
//! (ring prefixes its own), so nothing forces that. Only one server is built at a time (the
//! C server lives in C globals), so each round builds every server afresh, in an order that
//! rotates every round; the TLS configurations (rustls's `ServerConfig`, OpenSSL's
//! `SSL_CTX` with the certificate loaded) are made once and shared by every build, as a
//! long-running server keeps its own.
//!
//! Each (round, server): build it; the client opens N connections and runs their
//! handshakes — timed on the server thread from the `connect` command until the server has
//! counted N completed handshakes (accept, bufferevent set-up, the TLS 1.3 handshake, and the
//! session tickets both servers send by default): the **handshake** figure; then one
//! untimed echo per connection (warm-up); then a timed run of M round trips: the **echo**
//! figure; then the client closes the connections and the server is dropped. The first
//! round is a warm-up and is not counted.
//!
//! The client is a child process (this binary, `--client CERT.der`): rustls over raw
//! non-blocking sockets in one level-triggered epoll loop, the same for both servers. It
//! offers exactly TLS 1.3, TLS13_AES_128_GCM_SHA256 and X25519 (so both servers negotiate
//! the same without being configured away from their defaults; the negotiated parameters
//! are printed as each side saw them), pins the certificate (no chain building, the
//! handshake signature still checked) and never resumes a session. The client is slower per
//! handshake than the servers (it verifies a signature, they make one), so wall-clock
//! handshake rates are the client's; the CPU figures are the server's own. Heap per
//! connection (glibc `mallinfo2`, C and Rust alike) is measured after the handshakes and
//! after the warm-up echo.
//!
//! `cargo run --release -p evrs-bench --bin tls_echo_ab [ROUNDS] [n,n,..] [server,..]`
//! (default 4 rounds, n = 10,100,1000, both servers); `tls_echo_ab --quick` is a smoke run
//! (10 connections, 300 round trips, 2 rounds).

use std::io::{self, BufRead, Write};
use std::net::TcpListener;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

mod client;
mod pki;
mod servers;
// The clock and syscall helpers `echo_ab` uses (accept, the listener, epoll, the clocks);
// its `readable_now` is for its tokio server, unused here.
#[path = "../echo_ab/sys.rs"]
#[allow(dead_code)]
mod sys;

use client::*;
use pki::Pki;
use servers::*;
use sys::*;

const MSG: usize = 64;
/// Untimed rounds at the start.
const WARMUP: usize = 1;

struct Options {
    rounds: usize,
    sizes: Vec<usize>,
    servers: Vec<&'static str>,
    /// Round trips per timed run.
    msgs: fn(usize) -> usize,
}

/// One (round, server) measurement at one n.
#[derive(Default)]
struct Stats {
    /// Server CPU and wall time per handshake, ns.
    hs_cpu: Vec<f64>,
    hs_wall: Vec<f64>,
    /// Server CPU and wall time per echoed message, ns.
    echo_cpu: Vec<f64>,
    echo_wall: Vec<f64>,
    /// glibc heap per connection after the handshakes and after one echo each, bytes.
    heap_hs: Vec<f64>,
    heap_echo: Vec<f64>,
    /// As the client saw it and as the server saw it.
    negotiated: Option<(String, String)>,
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Heap in use per glibc (small chunks + mmapped ones), bytes.
fn malloc_in_use() -> i64 {
    // SAFETY: mallinfo2 only reads the allocator's statistics.
    let m = unsafe { libc::mallinfo2() };
    (m.uordblks + m.hblkhd) as i64
}

/// One round of server `name` at `n` connections, `m` round trips timed.
fn measure(
    name: &str,
    n: usize,
    m: usize,
    shared: &Shared,
    client: &mut Client,
    st: &mut Stats,
    counted: bool,
) -> io::Result<()> {
    let l = listener()?;
    let port = l.local_addr()?.port();
    let mut s = build(name, l, client.fd, n, shared)?;
    let h0 = malloc_in_use();
    let (c0, t0) = (
        clock(libc::CLOCK_THREAD_CPUTIME_ID),
        clock(libc::CLOCK_MONOTONIC),
    );
    client.send(&format!("connect {port} {n}"))?;
    s.handshake_until(n)?;
    let (c1, t1) = (
        clock(libc::CLOCK_THREAD_CPUTIME_ID),
        clock(libc::CLOCK_MONOTONIC),
    );
    let h1 = malloc_in_use();
    client.send("status")?;
    let seen = client.expect("ok")?;
    // Warm-up: one echo per connection.
    client.send(&format!("run {n}"))?;
    s.serve()?;
    client.expect("done")?;
    let h2 = malloc_in_use();
    let (c2, t2) = (
        clock(libc::CLOCK_THREAD_CPUTIME_ID),
        clock(libc::CLOCK_MONOTONIC),
    );
    client.send(&format!("run {m}"))?;
    s.serve()?;
    let (c3, t3) = (
        clock(libc::CLOCK_THREAD_CPUTIME_ID),
        clock(libc::CLOCK_MONOTONIC),
    );
    client.expect("done")?;
    client.send("close")?;
    client.expect("ok")?;
    let negotiated = s.negotiated();
    drop(s);
    if counted {
        let (n, m) = (n as f64, m as f64);
        st.hs_cpu.push((c1 - c0) as f64 / n);
        st.hs_wall.push((t1 - t0) as f64 / n);
        st.echo_cpu.push((c3 - c2) as f64 / m);
        st.echo_wall.push((t3 - t2) as f64 / m);
        st.heap_hs.push((h1 - h0) as f64 / n);
        st.heap_echo.push((h2 - h0) as f64 / n);
    }
    st.negotiated.get_or_insert((seen, negotiated));
    Ok(())
}

fn parse_args(args: &[String], all: &[&'static str]) -> io::Result<Options> {
    if args.first().map(String::as_str) == Some("--quick") {
        return Ok(Options {
            rounds: 2,
            sizes: vec![10],
            servers: all.to_vec(),
            msgs: |_| 300,
        });
    }
    let (rounds, sizes, servers) = evrs_bench::ab::parse_args(args, 4, &[10, 100, 1000], all);
    let o = Options {
        rounds,
        sizes,
        servers,
        msgs: |n| (2 * n).max(20_000),
    };
    if o.servers.is_empty() {
        return Err(io::Error::other(format!(
            "no known server named (known: {})",
            all.join(",")
        )));
    }
    Ok(o)
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--client") {
        let cert = args
            .get(1)
            .ok_or_else(|| io::Error::other("--client needs the certificate's DER file"))?;
        return client_main(cert);
    }
    let all: &[&'static str] = if cfg!(have_libevent_openssl) {
        &["evrs", "libevent"]
    } else {
        println!(
            "libevent server skipped: <openssl/ssl.h>, <event2/bufferevent_ssl.h> or \
             <event2/listener.h> not found, or c/libevent_tls_echo.c did not build (install \
             libssl-dev and libevent-dev)\n"
        );
        &["evrs"]
    };
    let o = parse_args(&args, all)?;
    let limit = evrs_bench::common::raise_nofile(u64::MAX >> 1) as usize;
    let pki = Pki::generate()?;
    let shared = Shared::new(&pki)?;
    let cert = pki.cert_der_path();
    let mut client = Client::spawn(&[&cert.to_string_lossy()])?;
    // SAFETY: ignoring SIGPIPE only turns a write to a closed socket into EPIPE.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    println!(
        "TLS echo in-process A/B: N TLS connections to one single-threaded server, then \
         {MSG}-byte messages ping-ponged; client: rustls in a raw epoll loop in a child \
         process; {} rounds (+{WARMUP} warm-up); RLIMIT_NOFILE {limit}\n",
        o.rounds
    );
    let mut results: Vec<(usize, Vec<Stats>)> = Vec::new();
    let mut skipped = Vec::new();
    for &n in &o.sizes {
        // N connection fds here (and N in the client), plus listener, epoll, pipes.
        if n == 0 || n + 64 > limit {
            skipped.push(format!("n = {n}: does not fit RLIMIT_NOFILE {limit}"));
            continue;
        }
        let m = (o.msgs)(n);
        let names = &o.servers;
        let mut stats: Vec<Stats> = names.iter().map(|_| Stats::default()).collect();
        for round in 0..o.rounds + WARMUP {
            for k in 0..names.len() {
                let i = (k + round) % names.len();
                measure(
                    names[i],
                    n,
                    m,
                    &shared,
                    &mut client,
                    &mut stats[i],
                    round >= WARMUP,
                )?;
            }
        }
        results.push((n, stats));
    }
    report(&o, &results);
    for s in &skipped {
        println!("- skipped {s}");
    }
    Ok(())
}

fn report(o: &Options, results: &[(usize, Vec<Stats>)]) {
    let names = &o.servers;
    println!(
        "Median over the rounds. Server CPU = the server thread's CPU time \
         (CLOCK_THREAD_CPUTIME_ID, user + kernel). Handshake: from the client's connect \
         command until the server counted N completed handshakes, per handshake; k hs/s (CPU) \
         = 1e6 / CPU µs per handshake, the server's rate with a core to itself; hs/s (wall) = \
         N / wall time of that phase (set by the client, which does more per handshake). \
         Echo: per 64-byte round trip. Ratios: evrs's CPU / libevent's in the same round, \
         median (min–max) over the rounds (below 1.00x evrs costs less).\n"
    );
    println!(
        "| n | server | handshake CPU µs | k hs/s (CPU) | hs/s (wall) | hs CPU vs libevent \
         | echo CPU ns/msg | k msgs/s (CPU) | k msgs/s (wall) | echo CPU vs libevent \
         | heap KiB/conn (after hs / after echo) |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (n, stats) in results {
        let lib = names.iter().position(|x| *x == "libevent");
        // Round by round: the two servers of a round ran back to back, under the same load.
        let ratio = |f: fn(&Stats) -> &Vec<f64>, i: usize| {
            lib.map_or("-".to_string(), |l| {
                let r: Vec<f64> = f(&stats[i])
                    .iter()
                    .zip(f(&stats[l]))
                    .map(|(a, b)| a / b)
                    .collect();
                let (lo, hi) = r
                    .iter()
                    .fold((f64::MAX, 0.0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
                if i == l {
                    "1.00x".to_string()
                } else {
                    format!("{:.2}x ({lo:.2}–{hi:.2})", median(&r))
                }
            })
        };
        for (i, name) in names.iter().enumerate() {
            let s = &stats[i];
            let hs = median(&s.hs_cpu);
            let echo = median(&s.echo_cpu);
            println!(
                "| {n} | {name} | {:.1} | {:.1} | {:.0} | {} | {:.0} | {:.1} | {:.1} | {} | \
                 {:.1} / {:.1} |",
                hs / 1e3,
                1e6 / hs,
                1e9 / median(&s.hs_wall),
                ratio(|s| &s.hs_cpu, i),
                echo,
                1e6 / echo,
                1e6 / median(&s.echo_wall),
                ratio(|s| &s.echo_cpu, i),
                median(&s.heap_hs) / 1024.0,
                median(&s.heap_echo) / 1024.0,
            );
        }
    }
    println!();
    if let Some((_, stats)) = results.first() {
        for (i, name) in names.iter().enumerate() {
            if let Some((client, server)) = &stats[i].negotiated {
                println!("negotiated with {name}: client saw {client}; server saw {server}");
            }
        }
    }
    println!();
}
