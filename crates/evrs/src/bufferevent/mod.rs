//! Bufferevents (libevent's `bufferevent.h`): a socket plus an input and an output
//! [`EvBuffer`], driven by the base. Data the peer sends is read into the input buffer and
//! the read callback runs; data put in the output buffer is written out when the socket
//! takes it, and the write callback runs once the output has drained to its low
//! watermark; EOF, errors, timeouts and a completed connect arrive at the event callback.
//!
//! A bufferevent lives in its base and is named by a [`BufferEvent`] handle (`Copy`, like an
//! [`Event`]); a freed one's handle gets an error. Its callbacks are one
//! [`BevHandler`] — usually the connection's own state, so the read, write and event
//! callbacks share it without `Rc<RefCell>` — or three closures
//! ([`EventBase::bev_setcb`](crate::EventBase::bev_setcb)). Each callback gets a [`BevCtx`]: the buffers, the base, and
//! the bufferevent's own controls (enable, watermarks, free). A callback may free its own
//! bufferevent or any other, and may re-enable, re-arm or re-assign callbacks: a
//! bufferevent freed while its callback runs is torn down when that callback returns.
//!
//! ```no_run
//! use evrs::bufferevent::{BevCtx, BevEvents, BevHandler, BevOptions};
//! use evrs::{EventBase, What};
//! use std::os::fd::IntoRawFd;
//!
//! /// Echoes lines back and counts them: the connection's state is the handler.
//! struct Echo {
//!     lines: usize,
//! }
//!
//! impl BevHandler for Echo {
//!     fn read(&mut self, bev: &mut BevCtx<'_>) {
//!         let (input, output) = bev.buffers();
//!         while let Ok(Some(line)) = input.readln(evrs::buffer::EolStyle::Lf, None) {
//!             self.lines += 1;
//!             let _ = output.add(&line);
//!             let _ = output.add(b"\n");
//!         }
//!     }
//!     fn event(&mut self, bev: &mut BevCtx<'_>, what: BevEvents) {
//!         if what.intersects(BevEvents::EOF | BevEvents::ERROR) {
//!             bev.free();
//!         }
//!     }
//! }
//!
//! let mut base = EventBase::new()?;
//! let (a, _b) = std::os::unix::net::UnixStream::pair()?;
//! a.set_nonblocking(true)?;
//! let bev = base.bufferevent_socket(a.into_raw_fd(), BevOptions::CLOSE_ON_FREE)?;
//! base.bev_set_handler(bev, Echo { lines: 0 })?;
//! base.bev_enable(bev, What::READ | What::WRITE)?;
//! base.dispatch()?;
//! # Ok::<(), std::io::Error>(())
//! ```

mod ctx;
mod filter;
mod ops;
mod pair;
mod ratelimit;
mod remote;
mod resolve;
mod socket;
mod spares;
mod sync;
mod timeouts;

pub use ctx::{BevCtx, BevHandler, BevOutput};
pub use filter::{Codec, FilterFn, FilterResult};
pub use ratelimit::{RateLimit, RateLimitGroup, RATE_LIMIT_MAX};
pub use remote::BevRemote;
pub use resolve::Family;

use crate::event::Event;
use crate::flags::What;
use crate::layers::table::Table;
use evrs_buffer::EvBuffer;
use std::io;
use std::os::unix::io::RawFd;
use std::time::Duration;

/// A bufferevent of an [`EventBase`](crate::EventBase) (libevent's `struct bufferevent *`):
/// a small `Copy` handle. Once the bufferevent is freed every copy of its handle gets an
/// error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BufferEvent {
    pub(crate) idx: u32,
    pub(crate) gen: u32,
    pub(crate) base: u32,
}

bitflags::bitflags! {
    /// What the event callback is told (libevent's `BEV_EVENT_*`, same values): the
    /// direction (`READING` / `WRITING`) and what happened.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct BevEvents: u16 {
        /// While reading (`BEV_EVENT_READING`).
        const READING = 0x01;
        /// While writing (`BEV_EVENT_WRITING`).
        const WRITING = 0x02;
        /// The peer closed its end (`BEV_EVENT_EOF`).
        const EOF = 0x10;
        /// A socket error; [`EventBase::bev_socket_error`](crate::EventBase::bev_socket_error) tells which (`BEV_EVENT_ERROR`).
        const ERROR = 0x20;
        /// The read or write timeout expired (`BEV_EVENT_TIMEOUT`).
        const TIMEOUT = 0x40;
        /// A connect finished (`BEV_EVENT_CONNECTED`).
        const CONNECTED = 0x80;
    }

    /// Options of a bufferevent (libevent's `BEV_OPT_*`, same values).
    ///
    /// libevent's two threading options are accepted (so the C ABI can pass its flags
    /// through) and change nothing, because a bufferevent of a [`Local`](crate::Local)
    /// base has no lock to take:
    /// * [`THREADSAFE`](Self::THREADSAFE): other threads reach any bufferevent — with this
    ///   bit or without it — through a [`BevRemote`]
    ///   ([`EventBase::bev_remote`](crate::EventBase::bev_remote)), whose calls run on the
    ///   loop thread between callbacks; `bufferevent_lock`/`unlock` grouping is
    ///   [`BevRemote::call`].
    /// * [`UNLOCK_CALLBACKS`](Self::UNLOCK_CALLBACKS): callbacks always run on the loop
    ///   thread with no lock held (there is none). As in libevent, it needs
    ///   `DEFER_CALLBACKS` (pairs always have it): without it, making the bufferevent fails.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct BevOptions: u8 {
        /// Close the socket when the bufferevent is freed (`BEV_OPT_CLOSE_ON_FREE`).
        const CLOSE_ON_FREE = 0x01;
        /// libevent's per-bufferevent lock (`BEV_OPT_THREADSAFE`): accepted, no effect;
        /// use a [`BevRemote`] from other threads (see above).
        const THREADSAFE = 0x02;
        /// Run callbacks from the loop's deferred queue instead of inline, so a long
        /// chain of bufferevents (a pair, a filter) cannot recurse
        /// (`BEV_OPT_DEFER_CALLBACKS`).
        const DEFER_CALLBACKS = 0x04;
        /// Run callbacks without the bufferevent's lock (`BEV_OPT_UNLOCK_CALLBACKS`):
        /// accepted with `DEFER_CALLBACKS`, no effect — evrs never holds a lock around a
        /// callback.
        const UNLOCK_CALLBACKS = 0x08;
    }
}

/// How [`EventBase::bev_flush`](crate::EventBase::bev_flush) treats the data in flight (libevent's
/// `bufferevent_flush_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flush {
    /// Write what the socket takes now (`BEV_NORMAL`).
    Normal,
    /// The same, for a socket bufferevent (`BEV_FLUSH`).
    Flush,
    /// Write what the socket takes, and no more data will come (`BEV_FINISHED`): for a
    /// socket bufferevent, the write side is shut down once the output has drained.
    Finished,
}

/// Read buffer cap per read when nothing else limits it (libevent reads at most 4096 at
/// once by default; a larger read halves the syscalls of a bulk transfer).
pub const DEFAULT_MAX_READ: usize = 16 * 1024;
/// Write cap per write when nothing else limits it (libevent's default).
pub const DEFAULT_MAX_WRITE: usize = 16 * 1024;

/// One bufferevent's state.
pub(crate) struct Bev {
    fd: RawFd,
    opts: BevOptions,
    /// The socket was made by `bev_connect`: it is closed on free whatever the options.
    owns_fd: bool,
    input: EvBuffer,
    output: EvBuffer,
    /// The persistent read and write events on `fd` (made when the fd is known).
    read_ev: Option<Event>,
    write_ev: Option<Event>,
    /// Whether each is pending now (kept in step by `sync`).
    read_added: bool,
    write_added: bool,
    /// READ and/or WRITE: what the user enabled.
    enabled: What,
    /// A connect is in progress: the write event waits for its end.
    connecting: bool,
    /// WRITE was just enabled with nothing to send: the next writability runs the write
    /// callback once (libevent does; programs use it to start a conversation).
    write_kick: bool,
    /// An inline write drained the output: the write callback is due (the write event was
    /// activated to run it from the loop).
    write_cb_due: bool,
    /// The read event's dispatch is running (reading and the read callback): a write
    /// callback that falls due meanwhile runs at its end.
    reading: bool,
    /// The output should be shut down once drained (`Flush::Finished`).
    shutdown_pending: bool,
    /// Read (low, high) watermarks; a high mark of 0 is none (the write ones are rare).
    read_wm: (usize, usize),
    /// What most bufferevents never use (a null pointer until first needed).
    rare: Option<Box<Rare>>,
    /// The callbacks; `None` while one of them runs (or if none were set).
    handler: Option<Box<dyn BevHandler>>,
    /// Callbacks of this bufferevent running now (they may nest: a callback that writes to
    /// its own pair partner, say).
    running: u32,
    /// `free` was asked for while a callback ran: done when the last one returns.
    free_requested: bool,
    /// A filter: its underlying bufferevent and filter functions. A filter has no fd.
    filter: Option<Box<filter::Filter>>,
    /// Its own token buckets (its group and refill timer are in `rare`).
    rate: Option<Box<ratelimit::Buckets>>,
}

// A table slot per connection: idle memory at 10,000 connections is mostly this (see
// docs/BENCHMARKS.md, heap per idle connection). Growing it is a decision, not a drift.
const _: () = assert!(std::mem::size_of::<Bev>() <= 272);

/// The parts of a bufferevent's state that most never use, out of its table slot (a
/// socket bufferevent with default caps, no write watermark, no error yet and inline
/// callbacks never makes one).
pub(crate) struct Rare {
    /// The last socket error reported (`bufferevent_socket_get_error`).
    last_error: Option<i32>,
    /// Write (low, high) watermarks; a high mark of 0 is none.
    write_wm: (usize, usize),
    max_read: usize,
    max_write: usize,
    /// DEFER_CALLBACKS: the deferred event and what it will report.
    deferred: Option<Event>,
    pending_read: bool,
    pending_write: bool,
    pending_events: BevEvents,
    /// A pair half: its partner (`None` once the partner is freed). A pair half has no fd.
    pair: Option<Option<BufferEvent>>,
    /// The error a failed connect left for the write callback to report.
    connect_error: Option<io::Error>,
    timeout_read: Option<Duration>,
    timeout_write: Option<Duration>,
    priority: Option<usize>,
    /// A host-name lookup is out: the timer that keeps the loop alive meanwhile.
    resolving: Option<Event>,
    /// Why the last host-name lookup failed.
    dns_error: Option<String>,
    /// Its rate-limit group, and the timer that waits for a refill.
    group: Option<RateLimitGroup>,
    refill_timer: Option<Event>,
    /// Shared with its [`BevRemote`]s: told when the bufferevent is freed.
    remote: Option<std::sync::Arc<remote::RemoteShared>>,
}

/// A `Rare` with nothing set.
const EMPTY_RARE: Rare = Rare {
    last_error: None,
    write_wm: (0, 0),
    max_read: DEFAULT_MAX_READ,
    max_write: DEFAULT_MAX_WRITE,
    deferred: None,
    pending_read: false,
    pending_write: false,
    pending_events: BevEvents::empty(),
    pair: None,
    connect_error: None,
    timeout_read: None,
    timeout_write: None,
    priority: None,
    resolving: None,
    dns_error: None,
    group: None,
    refill_timer: None,
    remote: None,
};

/// What a bufferevent without a `Rare` reads.
static NO_RARE: Rare = EMPTY_RARE;

impl Bev {
    /// Whether rate limits apply (its own buckets or a group's).
    pub(super) fn rate_limited(&self) -> bool {
        self.rate.is_some() || self.rare().group.is_some()
    }

    /// The write watermarks (low, high).
    pub(super) fn write_wm(&self) -> (usize, usize) {
        self.rare().write_wm
    }

    /// The largest single read and write.
    pub(super) fn max_read(&self) -> usize {
        self.rare().max_read
    }

    pub(super) fn max_write(&self) -> usize {
        self.rare().max_write
    }

    /// The deferred callback's event (DEFER_CALLBACKS), if any.
    pub(super) fn deferred(&self) -> Option<Event> {
        self.rare().deferred
    }

    /// A pair half's partner: `None` for no pair, `Some(None)` once the partner is freed.
    pub(super) fn pair(&self) -> Option<Option<BufferEvent>> {
        self.rare().pair
    }

    /// Records a socket error for `bev_socket_error`.
    pub(super) fn set_error(&mut self, e: &io::Error) {
        if let Some(code) = e.raw_os_error() {
            self.rare_mut().last_error = Some(code);
        } else if self.rare.is_some() {
            self.rare_mut().last_error = None;
        }
    }

    /// The rarely used state (all `None` if never set).
    pub(super) fn rare(&self) -> &Rare {
        self.rare.as_deref().unwrap_or(&NO_RARE)
    }

    /// The rarely used state, made on first use.
    pub(super) fn rare_mut(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(|| Box::new(EMPTY_RARE))
    }

    /// The rarely used state if it was made (to take from it without making it).
    pub(super) fn rare_if_any(&mut self) -> Option<&mut Rare> {
        self.rare.as_deref_mut()
    }

    fn new(fd: RawFd, opts: BevOptions) -> Bev {
        Bev {
            fd,
            opts,
            owns_fd: false,
            input: EvBuffer::new(),
            output: EvBuffer::new(),
            read_ev: None,
            write_ev: None,
            read_added: false,
            write_added: false,
            enabled: What::WRITE,
            connecting: false,
            write_kick: false,
            write_cb_due: false,
            reading: false,
            shutdown_pending: false,
            read_wm: (0, 0),
            rare: None,
            handler: None,
            running: 0,
            free_requested: false,
            filter: None,
            rate: None,
        }
    }
}

/// The bufferevents of one base.
#[derive(Default)]
pub(crate) struct Bevs {
    table: Table<Bev>,
    groups: ratelimit::Groups,
    /// Emptied buffers' memory, for the next buffer that reads (`spares.rs`).
    spares: Vec<evrs_buffer::Spare>,
}

impl Drop for Bevs {
    /// The base is going away: close the sockets the bufferevents own (their events go
    /// with the base; their buffers and callbacks are dropped here).
    fn drop(&mut self) {
        for (idx, gen) in self.table.handles() {
            if let Some(b) = self.table.remove(idx, gen) {
                if b.fd >= 0 && (b.owns_fd || b.opts.contains(BevOptions::CLOSE_ON_FREE)) {
                    crate::sys::stream::close(b.fd);
                }
            }
        }
    }
}

fn stale() -> io::Error {
    crate::layers::table::stale("bufferevent")
}
