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
//!   [`readln_with`](EvBuffer::readln_with) (the line lent in place: the
//!   fastest), [`readln_into`](EvBuffer::readln_into),
//!   [`copyout`](EvBuffer::copyout), [`pullup`](EvBuffer::pullup),
//!   [`peek`](EvBuffer::peek).
//! * Finding: [`BufferPtr`], [`search`](EvBuffer::search),
//!   [`search_range`](EvBuffer::search_range),
//!   [`search_eol`](EvBuffer::search_eol), [`EolStyle`].
//! * I/O: [`read_from`](EvBuffer::read_from), [`write`](EvBuffer::write),
//!   [`write_atmost`](EvBuffer::write_atmost).
//! * Callbacks: [`add_cb`](EvBuffer::add_cb), [`set_cb`](EvBuffer::set_cb),
//!   [`CallbackInfo`], deferred
//!   mode via [`defer_callbacks`](EvBuffer::defer_callbacks) and
//!   [`run_deferred_callbacks`](EvBuffer::run_deferred_callbacks).
//! * Sharing between threads (libevent's `evbuffer_enable_locking`,
//!   `evbuffer_lock`/`unlock`): [`SharedEvBuffer`]; a plain `EvBuffer` needs
//!   no lock because `&mut` already means one writer.
//!
//! # libevent's functions and their equivalents
//!
//! Every function in libevent 2.1's `event2/buffer.h` and
//! `event2/buffer_compat.h`:
//!
//! | libevent | evrs |
//! |---|---|
//! | `evbuffer_new`, `evbuffer_free` | [`EvBuffer::new`], `drop` |
//! | `evbuffer_enable_locking`, `evbuffer_lock`, `evbuffer_unlock` | [`SharedEvBuffer::new`], [`SharedEvBuffer::lock`], dropping the guard (a plain `EvBuffer` needs no lock: `&mut` is exclusive) |
//! | `evbuffer_set_flags`, `evbuffer_clear_flags` | [`set_flags`](EvBuffer::set_flags), [`clear_flags`](EvBuffer::clear_flags), [`flags`](EvBuffer::flags) with [`BufferFlags`]; also [`set_drains_to_fd`](EvBuffer::set_drains_to_fd) |
//! | `evbuffer_get_length` | [`len`](EvBuffer::len) |
//! | `evbuffer_get_contiguous_space` | [`contiguous_space`](EvBuffer::contiguous_space) |
//! | `evbuffer_expand` | [`expand`](EvBuffer::expand) |
//! | `evbuffer_reserve_space`, `evbuffer_commit_space` | [`reserve_space`](EvBuffer::reserve_space) (exact sizes), [`reserve_extents`](EvBuffer::reserve_extents) (libevent's layout), [`commit_space`](EvBuffer::commit_space) |
//! | `evbuffer_add` | [`add`](EvBuffer::add) (also `io::Write`) |
//! | `evbuffer_add_iovec` | [`add_iovec`](EvBuffer::add_iovec) |
//! | `evbuffer_remove` | [`remove`](EvBuffer::remove) (also `io::Read`); [`remove_bytes`](EvBuffer::remove_bytes) without a copy |
//! | `evbuffer_copyout`, `evbuffer_copyout_from` | [`copyout`](EvBuffer::copyout), [`copyout_from`](EvBuffer::copyout_from) |
//! | `evbuffer_remove_buffer` | [`remove_buffer`](EvBuffer::remove_buffer) |
//! | `evbuffer_readln` | [`readln`](EvBuffer::readln) (owned `Bytes`), [`readln_with`](EvBuffer::readln_with) (borrowed), [`readln_into`](EvBuffer::readln_into) (into a reused `Vec`); all take a length limit |
//! | `evbuffer_add_buffer`, `evbuffer_prepend_buffer` | [`add_buffer`](EvBuffer::add_buffer), [`prepend_buffer`](EvBuffer::prepend_buffer) |
//! | `evbuffer_add_buffer_reference` | [`add_buffer_reference`](EvBuffer::add_buffer_reference) (libevent refuses sources holding file segments; evrs shares them too) |
//! | `evbuffer_add_reference` | safe: [`add_reference`](EvBuffer::add_reference), [`add_reference_with_cleanup`](EvBuffer::add_reference_with_cleanup), [`add_bytes`](EvBuffer::add_bytes); pointer + length + C cleanup function: `unsafe` [`add_reference_raw`](EvBuffer::add_reference_raw) with [`RefCleanupFn`] |
//! | `evbuffer_file_segment_new`, `evbuffer_file_segment_free` | [`FileSegment::new`] (takes the `File`: a C ABI without `EVBUF_FS_CLOSE_ON_FREE` passes a `dup` of the fd), dropping the segment |
//! | `evbuffer_file_segment_add_cleanup_cb` | [`FileSegment::set_cleanup`] |
//! | `evbuffer_add_file_segment`, `evbuffer_add_file` | [`add_file_segment`](EvBuffer::add_file_segment), [`add_file`](EvBuffer::add_file) |
//! | `evbuffer_add_printf`, `evbuffer_add_vprintf` | [`add_fmt`](EvBuffer::add_fmt)`(format_args!(..))` or `write!(buf, ..)` (`fmt::Write`); `fmt::Arguments` is Rust's `va_list`. printf format strings are a C ABI's business (format with `vsnprintf`, then [`add`](EvBuffer::add)) |
//! | `evbuffer_drain` | [`drain`](EvBuffer::drain) |
//! | `evbuffer_write`, `evbuffer_write_atmost` | [`write`](EvBuffer::write), [`write_atmost`](EvBuffer::write_atmost) |
//! | `evbuffer_read` | [`read_from`](EvBuffer::read_from); the per-call cap is [`max_read`](EvBuffer::max_read) / [`set_max_read`](EvBuffer::set_max_read) (libevent 2.2's `evbuffer_get_max_read` / `evbuffer_set_max_read`) |
//! | `evbuffer_search`, `evbuffer_search_range` | [`search`](EvBuffer::search), [`search_range`](EvBuffer::search_range) |
//! | `evbuffer_ptr_set` (`EVBUFFER_PTR_SET`, `EVBUFFER_PTR_ADD`) | [`ptr_at`](EvBuffer::ptr_at), [`ptr_add`](EvBuffer::ptr_add) |
//! | `evbuffer_search_eol` | [`search_eol`](EvBuffer::search_eol) |
//! | `evbuffer_peek` | [`peek`](EvBuffer::peek), or [`chunks`](EvBuffer::chunks) for everything |
//! | `evbuffer_add_cb`, `evbuffer_remove_cb_entry` | [`add_cb`](EvBuffer::add_cb) (its [`CallbackId`] is the `evbuffer_cb_entry`), [`remove_cb`](EvBuffer::remove_cb) |
//! | `evbuffer_remove_cb` (by function and argument) | [`remove_cb`](EvBuffer::remove_cb) by id: closures have no identity to compare, so a C ABI maps (function, argument) to the id |
//! | `evbuffer_cb_set_flags`, `evbuffer_cb_clear_flags` (`EVBUFFER_CB_ENABLED`) | [`enable_cb`](EvBuffer::enable_cb), [`disable_cb`](EvBuffer::disable_cb), [`is_cb_enabled`](EvBuffer::is_cb_enabled); libevent's internal `EVBUFFER_CB_NODEFER` is [`add_cb_immediate`](EvBuffer::add_cb_immediate) |
//! | `evbuffer_cb_suspend`, `evbuffer_cb_unsuspend` | none: disabled (`#if 0`) in 2.1's header and not exported |
//! | `evbuffer_freeze`, `evbuffer_unfreeze` | [`freeze`](EvBuffer::freeze), [`unfreeze`](EvBuffer::unfreeze), [`is_frozen`](EvBuffer::is_frozen) |
//! | `evbuffer_prepend` | [`prepend`](EvBuffer::prepend) |
//! | `evbuffer_pullup` | [`pullup`](EvBuffer::pullup); size -1 is [`pullup_all`](EvBuffer::pullup_all) |
//! | `evbuffer_defer_callbacks` | [`defer_callbacks`](EvBuffer::defer_callbacks) with a scheduler; `evrs::EventBase::defer_buffer_callbacks` wires it to a loop |
//! | `evbuffer_readline` (compat) | [`readln`](EvBuffer::readln)`(EolStyle::Any, None)` |
//! | `evbuffer_setcb` (compat) | [`set_cb`](EvBuffer::set_cb); with NULL: [`clear_cbs`](EvBuffer::clear_cbs) |
//! | `evbuffer_find` (compat) | [`search`](EvBuffer::search), then [`pullup`](EvBuffer::pullup) up to the match's end |
//! | `EVBUFFER_LENGTH`, `EVBUFFER_DATA` (compat macros) | [`len`](EvBuffer::len), [`pullup_all`](EvBuffer::pullup_all) |
//!
//! # Bad input
//!
//! No call panics on bad arguments; each case below is tested:
//!
//! * Positions beyond the end ([`ptr_at`](EvBuffer::ptr_at),
//!   [`ptr_add`](EvBuffer::ptr_add), and stale positions given to search,
//!   copyout_from, peek or search_eol): [`Error::OutOfRange`]; `ptr_add`
//!   leaves the position unchanged. A position exactly at the end is valid
//!   and finds nothing.
//! * Draining, removing or moving more than there is
//!   ([`drain`](EvBuffer::drain), [`remove`](EvBuffer::remove),
//!   [`remove_bytes`](EvBuffer::remove_bytes),
//!   [`remove_buffer`](EvBuffer::remove_buffer),
//!   [`copyout`](EvBuffer::copyout)): takes everything there is and returns
//!   the count, as libevent. [`pullup`](EvBuffer::pullup) of more than
//!   there is: [`Error::OutOfRange`].
//! * Lines longer than the caller's limit (the readln family):
//!   [`Error::LineTooLong`], nothing consumed, at most `limit + 2` bytes
//!   scanned.
//! * Writes to a frozen end, reads from a frozen start: [`Error::Frozen`],
//!   buffer unchanged (see [`EvBuffer::freeze`] for which calls count).
//! * Sizes that cannot be allocated ([`expand`](EvBuffer::expand),
//!   [`reserve_space`](EvBuffer::reserve_space), the space for one
//!   [`read_from`](EvBuffer::read_from) under a large cap, and copies that
//!   must be contiguous: [`pullup`](EvBuffer::pullup),
//!   [`remove_bytes`](EvBuffer::remove_bytes), a line from the readln
//!   family, [`try_to_vec`](EvBuffer::try_to_vec)): [`Error::NoMemory`]
//!   instead of an abort, with nothing changed; a read cap above
//!   [`MAX_READ_LIMIT`]: [`Error::OutOfRange`].
//! * Commits that do not match the reservation:
//!   [`Error::InvalidReservation`], nothing added.
//! * File ranges outside the file or segment (including offsets and
//!   lengths whose sum overflows): [`Error::OutOfRange`]. So is anything
//!   that would make a buffer longer than `usize::MAX` bytes (only file
//!   segments can get there). A file of any size can be added: a segment
//!   that is not mapped is read in bounded pieces, never whole (see
//!   [`FileSegment`]); a file read that fails is [`Error::Io`].
//!
//! # Differences from libevent
//!
//! Errors are [`Error`] values rather than -1/NULL, and never panics.
//! Positions from before a change are re-resolved by offset instead of
//! being undefined; moving a position past the end fails and leaves it
//! unchanged (libevent sets it to -1). An empty search string matches at
//! the start position (libevent's search reads a byte of it anyway, and its
//! ranged search finds nothing). `pullup(0)` returns an empty slice; `write` on an empty
//! buffer returns `Ok(0)`; `read_from`'s 4096-byte cap is configurable; file
//! segments are mapped when possible, with `sendfile` used for writing when
//! the buffer drains to a socket; one that is not mapped (libevent reads
//! it into memory whole) is read on demand in pieces of at most 256 KiB, so
//! [`peek`](EvBuffer::peek) and [`chunks`](EvBuffer::chunks) do not lend
//! the part not yet read.
#![deny(missing_docs, missing_debug_implementations, unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod add;
mod buffer;
mod callbacks;
mod chunk;
mod eol;
mod error;
mod file;
mod foreign;
mod io;
mod lazy;
mod ptr;
mod remove;
mod reserve;
mod search;
mod shared;
mod spare;
mod sys;

pub use buffer::{BufferFlags, EvBuffer, DEFAULT_MAX_READ, MAX_READ_LIMIT};
pub use bytes::Bytes;
pub use callbacks::{Callback, CallbackId, CallbackInfo, Scheduler};
pub use eol::EolStyle;
pub use error::{End, Error, Result};
pub use file::{FileSegment, SegmentFlags};
pub use foreign::RefCleanupFn;
pub use ptr::BufferPtr;
pub use shared::SharedEvBuffer;
pub use spare::Spare;
