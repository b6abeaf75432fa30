//! # evrs — libevent, re-imagined in Rust
//!
//! evrs is an event-notification library: you tell it which file descriptors, timeouts and
//! signals you care about, and it calls your code when they happen. It follows libevent 2.1's
//! model and semantics — an [`EventBase`] (the loop) and [`Event`]s (fd readiness, timeouts,
//! signals, user activation) with priorities and loop flags — over epoll, poll, select or (opt-in)
//! io_uring.
//!
//! ## A first loop
//!
//! ```
//! use evrs::{EventBase, What};
//! use std::os::unix::io::AsRawFd;
//! use std::os::unix::net::UnixStream;
//! use std::io::{Read, Write};
//!
//! let mut base = EventBase::new()?;
//! let (mut a, b) = UnixStream::pair()?;
//! b.set_nonblocking(true)?;
//! let fd = b.as_raw_fd();
//! let mut b = Some(b);
//! let ev = base.new_event(fd, What::READ | What::PERSIST, move |base, ev, _what| {
//!     let mut buf = [0u8; 64];
//!     let n = b.as_mut().unwrap().read(&mut buf).unwrap();
//!     assert_eq!(&buf[..n], b"hello");
//!     base.free(ev).unwrap(); // an event may free itself from its own callback
//! })?;
//! base.add(ev, None)?;
//! a.write_all(b"hello")?;
//! base.dispatch()?; // returns once no events are left
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! ## Chapters
//! * **The base** — [`EventBase::new`], or [`EventConfig`] to choose a backend
//!   ([`Method`]), require [`Features`], pick the clock, set priorities and dispatch caps.
//!   `EVRS_BACKEND=poll` (or libevent's `EVENT_NOEPOLL`, ...) steer the choice from the
//!   environment unless [`BaseFlags::IGNORE_ENV`] is set.
//! * **Events** — [`EventBase::new_event`] for fds ([`What::READ`], [`What::WRITE`],
//!   [`What::CLOSED`], [`What::ET`], [`What::PERSIST`]), [`EventBase::new_timer`],
//!   [`EventBase::new_signal`], [`EventBase::once`]. [`EventBase::add`] with an optional
//!   timeout, [`EventBase::del`], [`EventBase::activate`], [`EventBase::pending`],
//!   [`EventBase::set_priority`], [`EventBase::assign`], [`EventBase::free`].
//! * **The loop** — [`EventBase::run`] with [`LoopFlags`] (`ONCE`, `NONBLOCK`,
//!   `NO_EXIT_ON_EMPTY`), [`EventBase::dispatch`], [`EventBase::loopexit`],
//!   [`EventBase::loopbreak`], [`EventBase::loopcontinue`]. Only the most urgent non-empty
//!   priority runs per iteration; within it callbacks run in activation order.
//! * **Time** — a timer never fires before its timeout has really passed since the `add`
//!   call: every deadline counts from a fresh `CLOCK_MONOTONIC` reading (not libevent's
//!   iteration-start cached time, which a long callback leaves behind, nor the coarse clock,
//!   whose lag exceeds its reported resolution), and expiry and waits use that clock too.
//!   The time callbacks read through [`EventBase::gettimeofday_cached`] is cached once per
//!   iteration, from the coarse clock unless [`BaseFlags::PRECISE_TIMER`]. Timers sit on a
//!   hierarchical timing wheel (O(1) add and delete).
//! * **Threads** — a [`Handle`] (`Send + Sync`) lets other threads activate, add or delete
//!   events, run closures on the loop thread, and stop the loop; wake-ups are coalesced.
//!   [`SharedBase`] is libevent's own model instead: one base shared by threads under a lock
//!   that the loop releases while it waits and while callbacks run, with blocking,
//!   non-blocking and automatic deletes that refuse (rather than enter) a deadlock.
//!   Errors a `Handle` command meets on the loop thread are logged (`log` facade) and
//!   counted ([`Handle::failed_commands`]); after the base is dropped every call fails.
//! * **Loop phases** — hooks that run at fixed points of every iteration (libev's and
//!   libuv's watchers of the same names): [`EventBase::new_prepare`] right before the poll
//!   (flush writes batched during the iteration, tell another library's loop we are about to
//!   sleep), [`EventBase::new_check`] right after it (dispatch that library's events), and
//!   [`EventBase::new_idle`] when nothing else was active (background work in small steps;
//!   the loop does not block while one is started). Start with `add`, stop with `del`; a
//!   started hook keeps the loop alive. [`SharedBase`] has them too.
//! * **Same-thread wake-ups** — a [`LocalHandle`] reaches the loop from code on its thread
//!   that holds no `&mut EventBase` (an executor's waker, a buffer's scheduler): no lock, no
//!   atomic, no syscall. Deferred callbacks ([`EventBase::new_deferred`], scheduled with
//!   [`LocalHandle::defer`]: libevent's `event_deferred_cb`) and
//!   [`EventBase::defer_buffer_callbacks`] use it.
//! * **Listeners** — libevent's evconnlistener: [`EventBase::listen`] (TCP, bind + listen),
//!   [`EventBase::listen_unix`], [`EventBase::listener_from_fd`] (a socket you bound) with
//!   [`ListenerFlags`]; the loop accepts connections (`accept4`, non-blocking and
//!   close-on-exec, at most 16 per wakeup) and hands each to your callback as an `OwnedFd`
//!   with its [`PeerAddr`]. [`EventBase::listener_enable`], [`EventBase::listener_disable`],
//!   [`EventBase::listener_set_cb`], [`EventBase::listener_free`] (also from the listener's
//!   own callback). Running out of fds (`EMFILE`/`ENFILE`) or memory **pauses** the
//!   listener with a growing back-off (10 ms to 1 s) and reports it once per pause through
//!   [`EventBase::listener_set_error_cb`], where libevent spins at 100% CPU.
//! * **For foreign code (the C ABI)** — [`EventBase::new_event_raw`]: a plain function
//!   pointer plus a [`RawArg`], no allocation; [`EventBase::assign_owned`]: an event named by
//!   caller-owned memory, released when that memory is assigned again or the base goes.
//! * **Bufferevents** — [`bufferevent`]: a socket with an input and an output
//!   [`buffer::EvBuffer`], read into and written from by the base (libevent's
//!   `bufferevent_socket_*`): [`EventBase::bufferevent_socket`], [`EventBase::bev_connect`],
//!   callbacks as one [`bufferevent::BevHandler`] that owns the connection's state (or three
//!   closures, [`EventBase::bev_setcb`]), each given a [`bufferevent::BevCtx`] with the
//!   buffers, the base and the bufferevent's controls; watermarks, timeouts, enable/disable,
//!   flush, `DEFER_CALLBACKS`, and freeing from any callback, its own included.
//! * **Checking** — [`EventBase::verify`] checks every invariant of the base (libevent's
//!   `event_base_assert_ok_`, libev's `ev_verify`); the test suite calls it after its tests.
//! * **Bad input** — an fd that is closed or beyond `RLIMIT_NOFILE` (checked before any table
//!   grows), a signal no program may catch, a timeout the clock cannot hold, a stale handle
//!   (generations never wrap: a slot is retired first), a priority change under a running
//!   pass: each is an `io::Error`, and the base stays usable. A panicking callback unwinds
//!   out of `run` with the base usable and its event freed. Errors, hang-ups and closed fds
//!   reach the events watching them (CLOSED watchers included) once, never as a spin.
//!
//! ## Differences from libevent
//! Events are handles into the base rather than caller-owned structs (the C ABI layer maps
//! `struct event` onto them); errors are `io::Error`s with a message instead of `-1`; a
//! closed or invalid fd, an fd too large for select, a bad signal number, an overflowing
//! timeout or a stale handle is refused with an error and the base stays usable. A relative
//! timeout never counts from the iteration's cached time as in libevent (which fires early
//! after a long callback): added while the loop is awake (from a hook or callback, or from
//! another thread meanwhile) it is staged and counts from one clock reading the loop takes
//! right before it next sleeps — no earlier than the `add`, and no reading per `add`, at
//! the price of firing later by what the rest of that pass took; added outside the loop it
//! counts from the `add` itself. `PRECISE_TIMER` only picks the clock of the cached time.

#![deny(missing_docs)]
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod backend;
mod base;
pub mod bufferevent;
mod config;
mod event;
mod flags;
mod layers;
mod listener;
mod pending_activations;
mod reactor;
pub mod rt;
mod shared;
#[allow(unsafe_code)] // the system layer: every syscall and unsafe block lives below sys/
mod sys;
mod wait_graph;
mod wake_queue;

pub use base::handle::Handle;
pub use base::inspect::{Count, EventInfo};
pub use base::local::LocalHandle;
pub use base::wait_lock::WaitLock;
pub use base::{EventBase, Local, Model, Shared, MAX_PRIORITIES};
pub use config::EventConfig;
pub use event::{
    Callback, Event, FinalizeCallback, OnceCallback, RawArg, RawCallback, SharedCallback,
    SharedFinalizeCallback, SharedRawCallback,
};
/// libevent's evbuffer: the `evrs-buffer` crate (see [`EventBase::defer_buffer_callbacks`]
/// to run its callbacks from a loop).
pub use evrs_buffer as buffer;
pub use flags::{BaseFlags, Features, LoopFlags, Method, What};
pub use listener::{
    AcceptCallback, Listener, ListenerErrorCallback, ListenerFlags, PeerAddr,
    DEFAULT_LISTEN_BACKLOG,
};
pub use reactor::run_loop::RunOutcome;
pub use shared::{DelMode, SharedBase};

/// For `evrs-capi` only (not part of the API): what the C layer shares with the core.
#[doc(hidden)]
pub mod __capi {
    pub use crate::base::owned::AddrHasher;
}

/// The version of libevent whose behaviour evrs follows.
pub const LIBEVENT_VERSION: &str = "2.1.12-stable";

/// Compiles the README's examples as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
