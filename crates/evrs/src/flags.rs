//! The bit sets of the public API, with libevent's values so the C ABI maps them one to one.

use bitflags::bitflags;

bitflags! {
    /// What an event waits for, and what happened when its callback runs
    /// (libevent's `EV_*` bits, same values).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct What: u16 {
        /// A timeout expired (`EV_TIMEOUT`).
        const TIMEOUT = 0x01;
        /// The fd is readable (`EV_READ`).
        const READ = 0x02;
        /// The fd is writable (`EV_WRITE`).
        const WRITE = 0x04;
        /// A signal was delivered (`EV_SIGNAL`); the event's "fd" is the signal number.
        const SIGNAL = 0x08;
        /// Stay pending after the callback runs (`EV_PERSIST`).
        const PERSIST = 0x10;
        /// Edge-triggered readiness, where the backend supports it (`EV_ET`).
        const ET = 0x20;
        /// The event is being finalized (`EV_FINALIZE`).
        const FINALIZE = 0x40;
        /// The peer closed its end (`EV_CLOSED`, epoll and poll only).
        const CLOSED = 0x80;
        /// A prepare hook runs: the loop is about to poll (evrs; libev's `EV_PREPARE`).
        const PREPARE = 0x100;
        /// A check hook runs: the loop has just polled (evrs; libev's `EV_CHECK`).
        const CHECK = 0x200;
        /// An idle hook runs: nothing else was active (evrs; libev's `EV_IDLE`).
        const IDLE = 0x400;
    }
}

bitflags! {
    /// How [`EventBase::run`](crate::EventBase::run) behaves (libevent's `EVLOOP_*`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct LoopFlags: u8 {
        /// Wait for some event to become active, run every active callback, then return.
        const ONCE = 0x1;
        /// Never wait: run what is ready now, then return.
        const NONBLOCK = 0x2;
        /// Keep running when no events are pending (until `loopexit`/`loopbreak`).
        const NO_EXIT_ON_EMPTY = 0x4;
    }
}

bitflags! {
    /// Backend capabilities a base can require (libevent's `EV_FEATURE_*`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct Features: u8 {
        /// Edge-triggered readiness (`EV_FEATURE_ET`).
        const ET = 0x1;
        /// O(1) add, delete and per-event dispatch (`EV_FEATURE_O1`).
        const O1 = 0x2;
        /// Any kind of fd, not just sockets (`EV_FEATURE_FDS`).
        const FDS = 0x4;
        /// Reports a peer's close without reading (`EV_FEATURE_EARLY_CLOSE`).
        const EARLY_CLOSE = 0x8;
    }
}

bitflags! {
    /// Base options (libevent's `EVENT_BASE_FLAG_*`, same values).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct BaseFlags: u8 {
        /// No locking (evrs bases are single-threaded; accepted for compatibility).
        const NOLOCK = 0x01;
        /// Ignore `EVRS_BACKEND` and `EVENT_NO*` environment variables.
        const IGNORE_ENV = 0x02;
        /// No per-iteration cached time: `gettimeofday_cached` reads the real time at every
        /// call. (Timer deadlines never use the cache anyway: they count from a fresh precise
        /// reading at every `add`.)
        const NO_CACHE_TIME = 0x08;
        /// Use the epoll change list (evrs uses it by default; see `EventConfig::changelist`).
        const EPOLL_USE_CHANGELIST = 0x10;
        /// Read the iteration's cached time from `CLOCK_MONOTONIC` instead of
        /// `CLOCK_MONOTONIC_COARSE`, so `gettimeofday_cached` in a callback is exact rather
        /// than up to a kernel tick (or more) behind. Timers do not depend on it: on either
        /// setting their deadlines, expiry and waits use `CLOCK_MONOTONIC`, they never fire
        /// early and at most about one 1 ms wheel tick late.
        const PRECISE_TIMER = 0x20;
    }
}

/// A kernel notification mechanism ("backend").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    /// Linux epoll: O(1), edge-triggered, early close.
    Epoll,
    /// poll(2): any fd, early close via `POLLRDHUP`.
    Poll,
    /// select(2): fds below 1024 only.
    Select,
    /// io_uring (Linux 5.13+), readiness mode: a poll request per fd on one ring, one
    /// `io_uring_enter` per iteration that submits and waits. Not chosen automatically
    /// (as fast as epoll, not faster: see `docs/BENCHMARKS.md`): ask for it with
    /// [`EventConfig::method`] or `EVRS_BACKEND=io_uring`. Two differences from epoll: a
    /// report is the readiness the kernel saw at its wake-up (one consumed before the
    /// wait is still reported once, as a spurious wake-up), and an fd closed while its
    /// events are added stays open underneath until they are deleted (a poll request
    /// holds the file).
    ///
    /// [`EventConfig::method`]: crate::EventConfig::method
    IoUring,
}

impl Method {
    /// All methods in order of preference.
    pub const ALL: [Method; 4] = [Method::Epoll, Method::Poll, Method::Select, Method::IoUring];

    /// The name libevent uses (`"epoll"`, `"poll"`, `"select"`; `"io_uring"`, which libevent
    /// lacks).
    pub fn name(self) -> &'static str {
        match self {
            Method::Epoll => "epoll",
            Method::Poll => "poll",
            Method::Select => "select",
            Method::IoUring => "io_uring",
        }
    }

    /// Parses a name as [`Method::name`] prints it.
    pub fn from_name(name: &str) -> Option<Method> {
        Method::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }

    /// What the method can do.
    pub fn features(self) -> Features {
        match self {
            Method::Epoll => Features::ET | Features::O1 | Features::EARLY_CLOSE,
            Method::Poll => Features::FDS | Features::EARLY_CLOSE,
            Method::Select => Features::FDS,
            Method::IoUring => Features::ET | Features::O1 | Features::EARLY_CLOSE,
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
