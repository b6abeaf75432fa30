//! `EventConfig`: how a base is built (libevent's `event_config`).

use crate::base::EventBase;
use crate::flags::{BaseFlags, Features, Method};
use std::io;
use std::time::Duration;

/// Builder for an [`EventBase`]: backend choice, required features, clock, priorities and the
/// dispatch caps.
///
/// ```
/// use evrs::{EventConfig, Features, Method};
/// let base = EventConfig::new()
///     .avoid_method(Method::Select)
///     .require_features(Features::O1)
///     .priorities(3)
///     .build()
///     .unwrap();
/// assert_eq!(base.method(), Method::Epoll);
/// ```
#[derive(Clone, Debug)]
pub struct EventConfig {
    pub(crate) avoid: Vec<Method>,
    pub(crate) only: Option<Method>,
    pub(crate) required: Features,
    pub(crate) flags: BaseFlags,
    pub(crate) priorities: usize,
    pub(crate) max_interval: Option<Duration>,
    pub(crate) max_callbacks: Option<u32>,
    pub(crate) limit_from_priority: usize,
    pub(crate) changelist: bool,
    pub(crate) growth: crate::reactor::Growth,
}

impl Default for EventConfig {
    fn default() -> Self {
        EventConfig::new()
    }
}

impl EventConfig {
    /// The defaults: best available backend, one priority, coarse cached time, no caps.
    pub fn new() -> EventConfig {
        EventConfig {
            avoid: Vec::new(),
            only: None,
            required: Features::empty(),
            flags: BaseFlags::empty(),
            priorities: 1,
            max_interval: None,
            max_callbacks: None,
            limit_from_priority: 1,
            changelist: true,
            growth: crate::reactor::Growth::Quarter,
        }
    }

    /// Use exactly this method (fails at `build` if it cannot be used).
    pub fn method(mut self, m: Method) -> Self {
        self.only = Some(m);
        self
    }

    /// Never use this method (repeatable).
    pub fn avoid_method(mut self, m: Method) -> Self {
        self.avoid.push(m);
        self
    }

    /// Only accept a method with all of these features (replaces earlier requirements).
    pub fn require_features(mut self, f: Features) -> Self {
        self.required = f;
        self
    }

    /// Adds base flags (`IGNORE_ENV`, `NO_CACHE_TIME`, `PRECISE_TIMER`, ...).
    pub fn flags(mut self, f: BaseFlags) -> Self {
        self.flags |= f;
        self
    }

    /// Number of priority queues (1..=255); events default to the middle one.
    pub fn priorities(mut self, n: usize) -> Self {
        self.priorities = n;
        self
    }

    /// Bounds how long the loop runs callbacks before it checks for new events again:
    /// after `max_interval` or `max_callbacks` callbacks, whichever comes first, counting only
    /// queues of priority `>= min_priority` (libevent's
    /// `event_config_set_max_dispatch_interval`).
    pub fn max_dispatch_interval(
        mut self,
        max_interval: Option<Duration>,
        max_callbacks: Option<u32>,
        min_priority: usize,
    ) -> Self {
        self.max_interval = max_interval;
        self.max_callbacks = max_callbacks;
        self.limit_from_priority = min_priority;
        self
    }

    /// Batch epoll interest changes per loop iteration (default on). Turn it off if your
    /// program closes `dup`ed fds right after deleting their events inside callbacks.
    pub fn changelist(mut self, on: bool) -> Self {
        self.changelist = on;
        self
    }

    /// Grow the base's per-event arrays (its event table and callback table) by doubling
    /// instead of by a quarter (default off).
    ///
    /// By a quarter, at most a fifth of each array is unused — what a server with a slot per
    /// idle connection wants — but a table that climbs from empty to 100,000 events moves
    /// about four times its final size on the way, each move onto memory never touched
    /// before (page faults included). Doubling moves a quarter as much and leaves up to half
    /// unused. [`EventBase::reserve_events`](crate::EventBase::reserve_events) avoids the
    /// moves altogether when the scale is known. The C ABI's bases double: libevent programs
    /// create events one at a time, never reserve, and spend ~1 KiB per event elsewhere.
    pub fn grow_tables_by_doubling(mut self, on: bool) -> Self {
        self.growth = if on {
            crate::reactor::Growth::Double
        } else {
            crate::reactor::Growth::Quarter
        };
        self
    }

    /// The methods this config would try, in order, after avoidances, required features and
    /// (unless `IGNORE_ENV`) the environment: `EVRS_BACKEND=<name>` puts one first (the
    /// others follow as fallbacks, should it be unavailable), and `EVENT_NOEPOLL`,
    /// `EVENT_NOPOLL`, `EVENT_NOSELECT`, `EVENT_NOIO_URING` skip one, as in libevent.
    ///
    /// The program's explicit choices win over the environment: with [`method`](Self::method)
    /// the environment is not consulted at all, and `EVRS_BACKEND` naming a method that the
    /// avoidances or required features exclude is ignored (it steers the automatic choice
    /// only; it never makes a build fail that would succeed without it).
    pub fn candidates(&self) -> Vec<Method> {
        let use_env = !self.flags.contains(BaseFlags::IGNORE_ENV) && self.only.is_none();
        let allowed: Vec<Method> = Method::ALL
            .into_iter()
            .filter(|m| self.only.is_none_or(|o| o == *m))
            .filter(|m| !self.avoid.contains(m))
            .filter(|m| m.features().contains(self.required))
            .collect();
        if !use_env {
            return allowed;
        }
        let forced = std::env::var("EVRS_BACKEND")
            .ok()
            .and_then(|v| Method::from_name(v.trim()))
            .filter(|m| allowed.contains(m));
        let mut out: Vec<Method> = allowed
            .into_iter()
            .filter(|m| std::env::var_os(format!("EVENT_NO{}", m.name().to_uppercase())).is_none())
            .collect();
        if let Some(f) = forced.filter(|f| out.contains(f)) {
            // The named method first (unless an `EVENT_NO*` vetoes it); the others stay
            // behind it as fallbacks (io_uring can be refused at run time: an old kernel,
            // `kernel.io_uring_disabled`, seccomp).
            out.retain(|m| *m != f);
            out.insert(0, f);
        }
        out
    }

    /// The reactor setup for `method`: flags plus what the environment adds
    /// (`EVENT_PRECISE_TIMER`) unless `IGNORE_ENV`.
    pub(crate) fn setup(&self, method: Method) -> crate::reactor::Setup {
        let mut flags = self.flags;
        if !flags.contains(BaseFlags::IGNORE_ENV)
            && std::env::var_os("EVENT_PRECISE_TIMER").is_some()
        {
            flags |= BaseFlags::PRECISE_TIMER;
        }
        crate::reactor::Setup {
            method,
            // libevent's flag asks for the change list, which evrs uses by default anyway.
            changelist: self.changelist || flags.contains(BaseFlags::EPOLL_USE_CHANGELIST),
            flags,
            priorities: self.priorities,
            max_interval: self.max_interval,
            max_callbacks: self.max_callbacks,
            limit_from_priority: self.limit_from_priority,
            growth: self.growth,
        }
    }

    /// Builds the base with the first method that works.
    pub fn build(self) -> io::Result<EventBase> {
        self.build_model()
    }

    /// Builds a base of threading model `M` with the first method that works.
    pub(crate) fn build_model<M: crate::base::Model>(&self) -> io::Result<EventBase<M>> {
        if self.priorities == 0 || self.priorities > crate::base::MAX_PRIORITIES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "priorities must be 1..={}, not {}",
                    crate::base::MAX_PRIORITIES,
                    self.priorities
                ),
            ));
        }
        let mut last_err = None;
        for m in self.candidates() {
            match EventBase::<M>::from_setup(&self.setup(m)) {
                Ok(b) => return Ok(b),
                Err(e) => {
                    log::warn!("evrs: the {m} backend is unavailable ({e}); trying the next one");
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.unwrap_or_else(|| {
            io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "no event mechanism available: none of epoll, poll, select, io_uring is allowed \
                     and has the required features {:?}",
                    self.required
                ),
            )
        }))
    }
}
