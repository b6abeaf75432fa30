//! The Rust peers. Each exposes child entry points that print `SAMPLE` lines.

pub mod epoll_raw;
#[cfg(feature = "evrs")]
pub mod evrs;
pub mod mio;
pub mod tokio;
