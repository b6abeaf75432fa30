//! `evrs-buffer`: libevent's `evbuffer` as a safe Rust type, [`EvBuffer`].
//!
//! An `EvBuffer` is a byte queue stored as a chain of chunks. You append at
//! the end and consume from the front; whole chunks move between buffers
//! without copying, and references to memory you own (or to files) join the
//! chain without copying either. It is what a buffered connection keeps its
//! input and output in.
//!
//! # A short guide
//!
//! ```
//! use evrs_buffer::{EolStyle, EvBuffer};
//!
//! let mut input = EvBuffer::new();
//!
//! // Data arrives in pieces (normally via `read_from(fd, None)`).
//! input.add(b"HELO example.org\r\nMAIL FROM:<a@b>").unwrap();
//! input.add(b"\r\nDATA\r\n").unwrap();
//!
//! // Read lines, refusing lines longer than 512 bytes.
//! let mut lines = Vec::new();
//! while let Some(line) = input.readln(EolStyle::Crlf, Some(512)).unwrap() {
//!     lines.push(line);
//! }
//! assert_eq!(lines, ["HELO example.org", "MAIL FROM:<a@b>", "DATA"].map(|s| s.as_bytes()));
//!
//! // Build a reply in one buffer and move it into the output without copying.
//! let mut reply = EvBuffer::new();
//! reply.add_fmt(format_args!("250 {} ok\r\n", 3)).unwrap();
//! let mut output = EvBuffer::new();
//! output.add_buffer(&mut reply).unwrap();
//! assert!(reply.is_empty());
//! assert_eq!(output.to_vec(), b"250 3 ok\r\n");
//!
//! // Positions and searching work across chunk boundaries.
//! let p = output.search(b"ok", None).unwrap().unwrap();
//! assert_eq!(p.pos(), 6);
//!
//! // Take data out: copy, remove, or drain.
//! let mut code = [0u8; 3];
//! output.remove(&mut code).unwrap();
//! assert_eq!(&code, b"250");
//! output.drain(usize::MAX).unwrap();
//! assert!(output.is_empty());
//! ```
//!
//! # Where things are
//!
//! * Adding: [`EvBuffer::add`], [`add_iovec`](EvBuffer::add_iovec),
//!   [`add_bytes`](EvBuffer::add_bytes),
//!   [`add_buffer`](EvBuffer::add_buffer),
//!   [`add_buffer_reference`](EvBuffer::add_buffer_reference),
//!   [`add_reference_with_cleanup`](EvBuffer::add_reference_with_cleanup),
//!   [`add_fmt`](EvBuffer::add_fmt), [`prepend`](EvBuffer::prepend),
//!   [`add_file`](EvBuffer::add_file), [`reserve_space`](EvBuffer::reserve_space)
//!   / [`commit_space`](EvBuffer::commit_space).
//! * Removing: [`drain`](EvBuffer::drain), [`remove`](EvBuffer::remove),
//!   [`remove_buffer`](EvBuffer::remove_buffer), [`readln`](EvBuffer::readln),
//!   [`copyout`](EvBuffer::copyout), [`pullup`](EvBuffer::pullup),
//!   [`peek`](EvBuffer::peek).
//! * Finding: [`BufferPtr`], [`search`](EvBuffer::search),
//!   [`search_range`](EvBuffer::search_range),
//!   [`search_eol`](EvBuffer::search_eol), [`EolStyle`].
//! * I/O: [`read_from`](EvBuffer::read_from), [`write`](EvBuffer::write),
//!   [`write_atmost`](EvBuffer::write_atmost).
//! * Callbacks: [`add_cb`](EvBuffer::add_cb), [`CallbackInfo`], deferred
//!   mode via [`defer_callbacks`](EvBuffer::defer_callbacks) and
//!   [`run_deferred_callbacks`](EvBuffer::run_deferred_callbacks).
//! * Sharing between threads (libevent's `evbuffer_enable_locking`,
//!   `evbuffer_lock`/`unlock`): [`SharedEvBuffer`]; a plain `EvBuffer` needs
//!   no lock because `&mut` already means one writer.
//!
//! # Differences from libevent
//!
//! Errors are [`Error`] values rather than -1/NULL, and never panics.
//! Positions from before a change are re-resolved by offset instead of
//! being undefined. `pullup(0)` returns an empty slice; `write` on an empty
//! buffer returns `Ok(0)`; `read_from`'s 4096-byte cap is configurable; file
//! segments are always readable in memory (mmap), with `sendfile` used for
//! writing when the buffer drains to a socket.
#![deny(missing_docs, missing_debug_implementations, unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod add;
mod buffer;
mod callbacks;
mod chunk;
mod eol;
mod error;
mod file;
mod io;
mod ptr;
mod remove;
mod reserve;
mod search;
mod shared;
mod sys;

pub use buffer::{EvBuffer, DEFAULT_MAX_READ};
pub use bytes::Bytes;
pub use callbacks::{Callback, CallbackId, CallbackInfo, Scheduler};
pub use eol::EolStyle;
pub use error::{End, Error, Result};
pub use file::{FileSegment, SegmentFlags};
pub use ptr::BufferPtr;
pub use shared::SharedEvBuffer;
