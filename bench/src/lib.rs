//! Benchmarks comparing evrs with a raw epoll loop, libevent 2.1, libev, mio and tokio.
//!
//! The runner (`src/main.rs`) starts every (peer, benchmark, size) in its own child process;
//! children print `SAMPLE` lines (see [`common::sample`]). The Rust peers live in
//! [`peers`], the C peers in `bench/c/`. See `bench/README.md`.

pub mod ab;
pub mod common;
pub mod peers;
