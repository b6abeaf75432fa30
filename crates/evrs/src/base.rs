//! `EventBase`: the reactor. It owns the backend, every event's slot, the fd and signal
//! tables, the active queues and the timer wheel. This file holds construction and the event
//! operations (new, assign, add, del, activate, free, pending); the loop itself is in
//! `run.rs`, the fd/signal tables in `io_map.rs`, the queues in `queue.rs`.

use crate::backend::Backend;
use crate::config::EventConfig;
use crate::event::{state, Event, Handler, Internal, Slot, NIL};
use crate::flags::{BaseFlags, Features, Method, What};
use crate::handle::{Command, NotifyShared};
use crate::io_map::{FdEntry, SigEntry};
use crate::queue::Queue;
use crate::sys;
use crate::timer::{Expired, Wheel};
use std::io;
use std::os::unix::io::RawFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Most priority queues a base can have (libevent's `EVENT_MAX_PRIORITIES`).
pub const MAX_PRIORITIES: usize = 256 - 1;

static NEXT_BASE_ID: AtomicU32 = AtomicU32::new(1);

/// The interest of a `once` event: its I/O bits; SIGNAL and PERSIST are refused.
pub(crate) fn once_interest(events: What) -> io::Result<What> {
    if events.intersects(What::SIGNAL | What::PERSIST) {
        return Err(invalid("once events cannot be SIGNAL or PERSIST"));
    }
    Ok(events & (What::READ | What::WRITE | What::CLOSED | What::ET))
}

/// A `once` event with no I/O and no (or a zero) timeout is activated for the next
/// iteration; any other is added and waits.
pub(crate) fn once_fires_now(io: What, timeout: Option<Duration>) -> bool {
    io.is_empty() && timeout.is_none_or(|t| t.is_zero())
}

pub(crate) fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.into())
}

/// The event loop: it tracks pending events, asks the kernel which are ready, and runs their
/// callbacks (libevent's `event_base`).
///
/// Callbacks receive `&mut EventBase`, so they may add, delete, activate, re-assign or free
/// any event — themselves included — and stop the loop, with no `RefCell` and no aliasing:
/// the loop holds no borrow while user code runs.
///
/// ```
/// use evrs::{EventBase, What};
/// use std::time::Duration;
///
/// let mut base = EventBase::new()?;
/// let ticks = std::rc::Rc::new(std::cell::Cell::new(0));
/// let t = ticks.clone();
/// let ev = base.new_timer(move |base, ev, _what| {
///     t.set(t.get() + 1);
///     if t.get() < 3 {
///         base.add(ev, Some(Duration::from_millis(1))).unwrap();
///     }
/// })?;
/// base.add(ev, Some(Duration::from_millis(1)))?;
/// base.dispatch()?; // returns when no events are left
/// assert_eq!(ticks.get(), 3);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct EventBase {
    pub(crate) id: u32,
    pub(crate) backend: Backend,
    pub(crate) slots: Vec<Slot>,
    pub(crate) free_slots: Vec<u32>,
    pub(crate) fds: Vec<FdEntry>,
    pub(crate) sigs: Vec<SigEntry>,
    /// Signal self-pipe (read, write) and its internal event.
    pub(crate) sig_pipe: Option<(RawFd, RawFd, Event)>,
    pub(crate) sig_counts: [u32; sys::signal::NSIG],
    pub(crate) notify: Option<(Arc<NotifyShared>, Event)>,
    /// Reused buffer for commands taken from the handle's queue.
    pub(crate) commands: Vec<Command>,
    pub(crate) active: Vec<Queue>,
    pub(crate) active_later: Queue,
    pub(crate) n_active: usize,
    pub(crate) n_added: usize,
    pub(crate) max_active: usize,
    pub(crate) max_added: usize,
    pub(crate) wheel: Wheel<u32>,
    pub(crate) expired: Vec<Expired<u32>>,
    pub(crate) ready: Vec<(RawFd, u8)>,
    // Loop state.
    pub(crate) running: bool,
    pub(crate) got_exit: bool,
    pub(crate) got_break: bool,
    pub(crate) cont: bool,
    pub(crate) running_event: Option<Event>,
    pub(crate) running_priority: Option<usize>,
    pub(crate) cache: Option<u64>,
    pub(crate) wall_offset: Option<(u64, i128)>,
    // Configuration.
    pub(crate) flags: BaseFlags,
    pub(crate) precise: bool,
    pub(crate) round_ns: u64,
    pub(crate) max_interval: Option<Duration>,
    pub(crate) max_callbacks: Option<u32>,
    pub(crate) limit_from_priority: usize,
}

impl std::fmt::Debug for EventBase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBase")
            .field("method", &self.method())
            .field("active", &self.n_active)
            .field("added", &self.n_added)
            .finish_non_exhaustive()
    }
}

impl EventBase {
    /// A base with the default configuration: epoll, else poll, else select.
    pub fn new() -> io::Result<EventBase> {
        EventConfig::new().build()
    }

    /// A base using exactly `method` (environment variables still apply unless the config
    /// says `IGNORE_ENV`; use [`EventConfig`] for more control).
    pub fn with_backend(method: Method) -> io::Result<EventBase> {
        EventConfig::new()
            .method(method)
            .flags(BaseFlags::IGNORE_ENV)
            .build()
    }

    pub(crate) fn with_method(cfg: &EventConfig, method: Method) -> io::Result<EventBase> {
        let mut flags = cfg.flags;
        if !flags.contains(BaseFlags::IGNORE_ENV)
            && std::env::var_os("EVENT_PRECISE_TIMER").is_some()
        {
            flags |= BaseFlags::PRECISE_TIMER;
        }
        let precise = flags.contains(BaseFlags::PRECISE_TIMER);
        let round_ns = if precise {
            0
        } else {
            sys::clock::coarse_resolution_ns()
        };
        let backend = Backend::new(method, cfg.changelist)?;
        Ok(EventBase {
            id: NEXT_BASE_ID.fetch_add(1, Ordering::Relaxed),
            backend,
            slots: Vec::new(),
            free_slots: Vec::new(),
            fds: Vec::new(),
            sigs: (0..sys::signal::NSIG)
                .map(|_| SigEntry::default())
                .collect(),
            sig_pipe: None,
            sig_counts: [0; sys::signal::NSIG],
            notify: None,
            commands: Vec::new(),
            active: vec![Queue::default(); cfg.priorities],
            active_later: Queue::default(),
            n_active: 0,
            n_added: 0,
            max_active: 0,
            max_added: 0,
            wheel: Wheel::new(sys::clock::now_ns(precise)),
            expired: Vec::new(),
            ready: Vec::new(),
            running: false,
            got_exit: false,
            got_break: false,
            cont: false,
            running_event: None,
            running_priority: None,
            cache: None,
            wall_offset: None,
            flags,
            precise,
            round_ns,
            max_interval: cfg.max_interval,
            max_callbacks: cfg.max_callbacks,
            limit_from_priority: cfg.limit_from_priority,
        })
    }

    /// The backend in use.
    pub fn method(&self) -> Method {
        self.backend.method()
    }

    /// The backend's features.
    pub fn features(&self) -> Features {
        self.method().features()
    }

    /// The base's flags (as configured, plus `PRECISE_TIMER` from the environment).
    pub fn flags(&self) -> BaseFlags {
        self.flags
    }

    /// Number of priority queues.
    pub fn priorities(&self) -> usize {
        self.active.len()
    }

    /// Changes the number of priorities (1..=255). Fails while any callback is active.
    /// Existing events keep their priority; one beyond the new range is clamped to the
    /// least urgent.
    pub fn priority_init(&mut self, n: usize) -> io::Result<()> {
        if n == 0 || n > MAX_PRIORITIES {
            return Err(invalid(format!(
                "priorities must be 1..={MAX_PRIORITIES}, not {n}"
            )));
        }
        if self.n_active > 0 || !self.active_later.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                "cannot change priorities while callbacks are active",
            ));
        }
        self.active = vec![Queue::default(); n];
        for s in self.slots.iter_mut().filter(|s| s.live) {
            s.pri = s.pri.min((n - 1) as u8);
        }
        Ok(())
    }

    // ----- handles -------------------------------------------------------------------------

    /// Validates a handle, returning its slot index.
    #[inline]
    pub(crate) fn index(&self, ev: Event) -> io::Result<usize> {
        if ev.base != self.id {
            return Err(invalid(
                "event belongs to another event base (each event lives in exactly one base)",
            ));
        }
        match self.slots.get(ev.idx as usize) {
            Some(s) if s.live && s.gen == ev.gen => Ok(ev.idx as usize),
            _ => Err(invalid("stale event handle: the event was freed")),
        }
    }

    #[inline]
    pub(crate) fn event_at(&self, idx: usize) -> Event {
        Event {
            idx: idx as u32,
            gen: self.slots[idx].gen,
            base: self.id,
        }
    }

    pub(crate) fn alloc(&mut self, fd: RawFd, events: What, handler: Handler) -> io::Result<Event> {
        if events.contains(What::SIGNAL) {
            if events.intersects(What::READ | What::WRITE | What::CLOSED) {
                return Err(invalid(
                    "an event cannot be both a signal and an fd event (SIGNAL with READ/WRITE/CLOSED)",
                ));
            }
            sys::signal::validate(fd)?;
        }
        let idx = match self.free_slots.pop() {
            Some(i) => i as usize,
            None => {
                if self.slots.len() >= NIL as usize - 1 {
                    return Err(io::Error::new(
                        io::ErrorKind::OutOfMemory,
                        "too many events",
                    ));
                }
                self.slots.push(Slot::vacant());
                self.slots.len() - 1
            }
        };
        let pri = (self.active.len() / 2) as u8;
        let s = &mut self.slots[idx];
        s.live = true;
        s.fd = fd;
        s.events = events;
        s.pri = pri;
        s.state = 0;
        s.res = What::empty();
        s.ncalls = 0;
        s.handler = Some(handler);
        s.interval = None;
        s.deadline = 0;
        Ok(self.event_at(idx))
    }

    /// Creates an event (libevent's `event_new`): `fd` with `READ`, `WRITE`, `CLOSED`
    /// (optionally `ET`, `PERSIST`), or a signal number with `SIGNAL`, or `-1` with no I/O
    /// bits for a pure timer/user event. The event is not pending until [`add`](Self::add).
    ///
    /// ```
    /// use evrs::{EventBase, What};
    /// let mut base = EventBase::new()?;
    /// let (a, b) = std::os::unix::net::UnixStream::pair()?;
    /// use std::os::unix::io::AsRawFd;
    /// let ev = base.new_event(a.as_raw_fd(), What::READ, |_base, _ev, what| {
    ///     assert!(what.contains(What::READ));
    /// })?;
    /// base.add(ev, None)?;
    /// std::io::Write::write_all(&mut &b, b"x")?;
    /// base.dispatch()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new_event<F>(&mut self, fd: RawFd, events: What, cb: F) -> io::Result<Event>
    where
        F: FnMut(&mut EventBase, Event, What) + 'static,
    {
        self.alloc(fd, events, Handler::Fn(Box::new(cb)))
    }

    /// A pure timer or user-activated event (`fd` -1, no I/O interest).
    pub fn new_timer<F>(&mut self, cb: F) -> io::Result<Event>
    where
        F: FnMut(&mut EventBase, Event, What) + 'static,
    {
        self.new_event(-1, What::empty(), cb)
    }

    /// A persistent event for signal `signo` (libevent's `evsignal_new`). The callback runs
    /// once per delivery (deliveries the kernel coalesced count once).
    pub fn new_signal<F>(&mut self, signo: i32, cb: F) -> io::Result<Event>
    where
        F: FnMut(&mut EventBase, Event, What) + 'static,
    {
        self.new_event(signo, What::SIGNAL | What::PERSIST, cb)
    }

    pub(crate) fn new_internal(
        &mut self,
        fd: RawFd,
        events: What,
        kind: Internal,
    ) -> io::Result<Event> {
        let ev = self.alloc(fd, events, Handler::Internal(kind))?;
        let idx = ev.idx as usize;
        self.slots[idx].state |= state::INTERNAL;
        self.slots[idx].pri = 0;
        Ok(ev)
    }

    /// Runs `cb` once when `fd` is ready for `events` (READ/WRITE/CLOSED) or `timeout`
    /// passes, or — with `fd` -1 and no I/O bits — once after `timeout` (`None`: at the next
    /// iteration). The event frees itself; it cannot be cancelled (libevent's
    /// `event_base_once`).
    pub fn once<F>(
        &mut self,
        fd: RawFd,
        events: What,
        timeout: Option<Duration>,
        cb: F,
    ) -> io::Result<()>
    where
        F: FnOnce(&mut EventBase, What) + 'static,
    {
        let io = once_interest(events)?;
        let ev = self.alloc(
            fd,
            io,
            Handler::Once(Box::new(move |base, _ev, what| cb(base, what))),
        )?;
        let res = if once_fires_now(io, timeout) {
            self.activate(ev, What::TIMEOUT, 1)
        } else {
            self.add(ev, timeout)
        };
        if res.is_err() {
            let _ = self.free(ev);
        }
        res
    }

    /// Re-initializes an event that is not pending or active (libevent's `event_assign` on an
    /// existing event): new fd, interest and callback; priority and timeout interval reset.
    pub fn assign<F>(&mut self, ev: Event, fd: RawFd, events: What, cb: F) -> io::Result<()>
    where
        F: FnMut(&mut EventBase, Event, What) + 'static,
    {
        self.assign_handler(ev, fd, events, Handler::Fn(Box::new(cb)))
    }

    pub(crate) fn assign_handler(
        &mut self,
        ev: Event,
        fd: RawFd,
        events: What,
        handler: Handler,
    ) -> io::Result<()> {
        let idx = self.index(ev)?;
        let s = &self.slots[idx];
        if s.has(state::INSERTED | state::ACTIVE | state::ACTIVE_LATER | state::TIMEOUT) {
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                "cannot re-assign an event that is pending or active: delete it first",
            ));
        }
        if events.contains(What::SIGNAL) {
            if events.intersects(What::READ | What::WRITE | What::CLOSED) {
                return Err(invalid("SIGNAL cannot be combined with READ/WRITE/CLOSED"));
            }
            sys::signal::validate(fd)?;
        }
        let pri = (self.active.len() / 2) as u8;
        let s = &mut self.slots[idx];
        s.fd = fd;
        s.events = events;
        s.pri = pri;
        s.res = What::empty();
        s.ncalls = 0;
        s.interval = None;
        let old = s.handler.replace(handler);
        // Dropped last: a closure's destructor may run arbitrary user code.
        drop(old);
        Ok(())
    }

    // ----- time ----------------------------------------------------------------------------

    /// "Now" on the base's clock — the iteration's cached time while callbacks run (unless
    /// `NO_CACHE_TIME`), else a fresh reading — plus how far behind real time that reading may be. The per-iteration cache is
    /// read from the precise clock (one cheap vDSO read per iteration), so it is exact; a
    /// fresh reading outside the loop uses the coarse clock unless `PRECISE_TIMER`, which can
    /// lag by up to its resolution.
    #[inline]
    pub(crate) fn now_and_slack(&self) -> (u64, u64) {
        match self.cache {
            Some(t) => (t, 0),
            None => (sys::clock::now_ns(self.precise), self.round_ns),
        }
    }

    /// Deadline `d` from now, rounded up by the clock's possible lag so a timer never fires
    /// before `d` has really passed.
    pub(crate) fn deadline_after(&self, d: Duration) -> io::Result<u64> {
        let (now, slack) = self.now_and_slack();
        if d.is_zero() {
            // "Next iteration": a deadline at the start of the current wheel tick is due at
            // the very next timer check, whatever the clock reads then.
            return Ok(now - now % 1_000_000);
        }
        sys::clock::deadline_ns(now, slack, d)
            .ok_or_else(|| invalid(format!("timeout {d:?} overflows the clock")))
    }

    // ----- add / del -----------------------------------------------------------------------

    /// Makes an event pending (libevent's `event_add`). With `Some(timeout)` the event also
    /// fires with `TIMEOUT` after that long (replacing any earlier timeout; for a `PERSIST`
    /// event it becomes the repeat interval). With `None` an existing timeout is kept.
    pub fn add(&mut self, ev: Event, timeout: Option<Duration>) -> io::Result<()> {
        let idx = self.index(ev)?;
        if self.slots[idx].has(state::FINALIZING) {
            return Err(invalid("event is being finalized"));
        }
        let deadline = match timeout {
            Some(d) => Some((self.deadline_after(d)?, d)),
            None => None,
        };
        self.add_idx(idx, deadline.map(|(t, d)| (t, Some(d))))
    }

    /// `deadline`: absolute ns plus the relative interval to remember for PERSIST (None when
    /// re-arming).
    pub(crate) fn add_idx(
        &mut self,
        idx: usize,
        deadline: Option<(u64, Option<Duration>)>,
    ) -> io::Result<()> {
        let s = &self.slots[idx];
        let wants_io = s
            .events
            .intersects(What::READ | What::WRITE | What::CLOSED | What::SIGNAL);
        if wants_io && !s.has(state::INSERTED) {
            if s.events.contains(What::SIGNAL) {
                self.signal_insert(idx)?;
            } else {
                self.io_insert(idx)?;
            }
            self.set_state(idx, state::INSERTED, true);
        }
        if let Some((at, rel)) = deadline {
            let s = &mut self.slots[idx];
            if let Some(d) = rel {
                if s.events.contains(What::PERSIST) {
                    s.interval = Some(d.as_nanos() as u64);
                }
            }
            if s.has(state::ACTIVE) && s.res.contains(What::TIMEOUT) {
                s.ncalls = 0;
                self.queue_remove(idx);
            }
            self.set_timer(idx, at);
        }
        Ok(())
    }

    /// (Re)sets the timer of an event to absolute `at`.
    pub(crate) fn set_timer(&mut self, idx: usize, at: u64) {
        let old = self.slots[idx].timer;
        if old != NIL {
            self.wheel.remove(old);
        }
        let key = self.wheel.insert(at, idx as u32);
        let s = &mut self.slots[idx];
        s.timer = key;
        s.deadline = at;
        self.set_state(idx, state::TIMEOUT, true);
    }

    pub(crate) fn clear_timer(&mut self, idx: usize) {
        let key = self.slots[idx].timer;
        if key != NIL {
            self.wheel.remove(key);
            self.slots[idx].timer = NIL;
        }
        self.set_state(idx, state::TIMEOUT, false);
    }

    /// Sets or clears INSERTED or TIMEOUT, keeping the added-events counter right. (ACTIVE
    /// and ACTIVE_LATER are kept by the queue operations, which also count them.)
    #[inline]
    pub(crate) fn set_state(&mut self, idx: usize, bit: u8, on: bool) {
        debug_assert!(bit == state::INSERTED || bit == state::TIMEOUT);
        let s = &mut self.slots[idx];
        if (s.state & bit != 0) == on {
            return;
        }
        s.state ^= bit;
        if !s.internal() {
            if on {
                self.n_added += 1;
                self.max_added = self.max_added.max(self.n_added);
            } else {
                self.n_added -= 1;
            }
        }
    }

    /// Makes an event non-pending and non-active (libevent's `event_del`). Deleting an event
    /// that is not pending succeeds and does nothing. The timeout interval of a `PERSIST`
    /// event is remembered, as in libevent.
    pub fn del(&mut self, ev: Event) -> io::Result<()> {
        let idx = self.index(ev)?;
        if self.slots[idx].has(state::FINALIZING) {
            return Ok(());
        }
        self.del_idx(idx);
        Ok(())
    }

    pub(crate) fn del_idx(&mut self, idx: usize) {
        let s = &mut self.slots[idx];
        s.ncalls = 0;
        if s.has(state::TIMEOUT) {
            self.clear_timer(idx);
        }
        if self.slots[idx].has(state::ACTIVE | state::ACTIVE_LATER) {
            self.queue_remove(idx);
        }
        if self.slots[idx].has(state::INSERTED) {
            if self.slots[idx].events.contains(What::SIGNAL) {
                self.signal_remove(idx);
            } else {
                self.io_remove(idx);
            }
            self.set_state(idx, state::INSERTED, false);
        }
    }

    /// Removes only the timeout (and the persistent interval) of an event; its I/O or signal
    /// interest stays (libevent's `event_remove_timer`).
    pub fn remove_timer(&mut self, ev: Event) -> io::Result<()> {
        let idx = self.index(ev)?;
        self.clear_timer(idx);
        self.slots[idx].interval = None;
        Ok(())
    }

    /// Deletes and frees an event. Safe from inside the event's own callback (the closure is
    /// dropped when it returns); the handle is stale afterwards.
    pub fn free(&mut self, ev: Event) -> io::Result<()> {
        let idx = self.index(ev)?;
        self.del_idx(idx);
        self.release(idx);
        Ok(())
    }

    pub(crate) fn release(&mut self, idx: usize) {
        let s = &mut self.slots[idx];
        s.live = false;
        s.gen = s.gen.wrapping_add(1);
        s.state = 0;
        let handler = s.handler.take();
        self.free_slots.push(idx as u32);
        // Dropped last: a closure's destructor may run arbitrary user code.
        drop(handler);
    }

    /// Finalizes an event (libevent's `event_finalize`): deletes it without waiting, replaces
    /// its callback with `cb`, and runs `cb` on the loop thread at the event's priority once
    /// the event can no longer run. Meanwhile `add` fails, `activate` is ignored and `del` is
    /// a no-op. Pending finalizers also run when the base is dropped. Safe from inside the
    /// event's own callback (the old closure is dropped when it returns).
    pub fn finalize<F>(&mut self, ev: Event, cb: F) -> io::Result<()>
    where
        F: FnOnce(&mut EventBase, Event) + 'static,
    {
        self.finalize_idx(ev, Handler::Finalize(Box::new(cb), false))
    }

    /// Like [`finalize`](Self::finalize), then frees the event (libevent's
    /// `event_free_finalize`).
    pub fn free_finalize<F>(&mut self, ev: Event, cb: F) -> io::Result<()>
    where
        F: FnOnce(&mut EventBase, Event) + 'static,
    {
        self.finalize_idx(ev, Handler::Finalize(Box::new(cb), true))
    }

    /// Queues `finalizer` (a `Finalize` or `SharedFinalize` handler) in place of the callback.
    pub(crate) fn finalize_idx(&mut self, ev: Event, finalizer: Handler) -> io::Result<()> {
        let idx = self.index(ev)?;
        if self.slots[idx].has(state::FINALIZING) {
            return Err(invalid("event is already being finalized"));
        }
        self.del_idx(idx);
        let old = {
            let s = &mut self.slots[idx];
            s.state |= state::FINALIZING;
            s.res = What::FINALIZE;
            s.handler.replace(finalizer)
        };
        self.queue_push(idx);
        drop(old);
        Ok(())
    }

    /// Runs every pending finalizer (base teardown).
    fn run_pending_finalizers(&mut self) {
        for idx in 0..self.slots.len() {
            let s = &mut self.slots[idx];
            if !(s.live && s.has(state::FINALIZING)) {
                continue;
            }
            let (ev, free) = match s.handler.take() {
                Some(Handler::Finalize(f, free)) => {
                    let ev = self.prepare_finalizer(idx);
                    f(self, ev);
                    (ev, free)
                }
                Some(Handler::SharedFinalize(f, free)) => {
                    let ev = self.prepare_finalizer(idx);
                    f(ev);
                    (ev, free)
                }
                other => {
                    s.handler = other;
                    continue;
                }
            };
            if free && self.index(ev).is_ok() {
                self.release(idx);
            }
        }
    }

    fn prepare_finalizer(&mut self, idx: usize) -> Event {
        if self.slots[idx].has(state::ACTIVE | state::ACTIVE_LATER) {
            self.queue_remove(idx);
        }
        self.slots[idx].state &= !state::FINALIZING;
        self.event_at(idx)
    }

    // ----- activation ----------------------------------------------------------------------

    /// Makes an event active as if `what` happened (libevent's `event_active`); `ncalls` is
    /// the repeat count for signal events. The event need not be pending. An event that is
    /// already active just gains the new bits.
    pub fn activate(&mut self, ev: Event, what: What, ncalls: u16) -> io::Result<()> {
        let idx = self.index(ev)?;
        self.activate_idx(idx, what, ncalls);
        Ok(())
    }

    /// Like [`activate`](Self::activate) but the callback runs in the *next* loop iteration,
    /// after the backend has been polled (libevent's deferred "active later" queue).
    pub fn activate_later(&mut self, ev: Event, what: What) -> io::Result<()> {
        let idx = self.index(ev)?;
        let s = &mut self.slots[idx];
        if s.has(state::FINALIZING) {
            return Ok(());
        }
        if s.has(state::ACTIVE | state::ACTIVE_LATER) {
            s.res |= what;
            return Ok(());
        }
        s.res = what;
        s.ncalls = 1;
        self.queue_push_later(idx);
        Ok(())
    }

    #[inline]
    pub(crate) fn activate_idx(&mut self, idx: usize, what: What, ncalls: u16) {
        let s = &mut self.slots[idx];
        if s.state & (state::FINALIZING | state::ACTIVE | state::ACTIVE_LATER) != 0 {
            if s.has(state::FINALIZING) {
                return;
            }
            s.res |= what;
            if s.has(state::ACTIVE) {
                return;
            }
            // Active-later: move to the tail of its priority queue now.
            self.queue_remove(idx);
        } else {
            s.res = what;
        }
        let s = &mut self.slots[idx];
        if s.events.contains(What::SIGNAL) {
            s.ncalls = ncalls;
        }
        let pri = s.pri as usize;
        if let Some(rp) = self.running_priority {
            if pri < rp {
                self.cont = true;
            }
        }
        self.queue_push(idx);
    }

    // ----- inspection ----------------------------------------------------------------------

    /// Which of `what` the event is pending or active for, and — if `what` has `TIMEOUT` and a
    /// timeout is pending — when it expires, on the wall clock (libevent's `event_pending`).
    pub fn pending(&self, ev: Event, what: What) -> io::Result<(What, Option<SystemTime>)> {
        let idx = self.index(ev)?;
        let s = &self.slots[idx];
        let mut flags = What::empty();
        if s.has(state::INSERTED) {
            flags |= s.events & (What::READ | What::WRITE | What::CLOSED | What::SIGNAL);
        }
        if s.has(state::ACTIVE | state::ACTIVE_LATER) {
            flags |= s.res;
        }
        if s.has(state::TIMEOUT) {
            flags |= What::TIMEOUT;
        }
        let when = if what.contains(What::TIMEOUT) && s.has(state::TIMEOUT) {
            let now = sys::clock::now_ns(self.precise);
            let wall = SystemTime::now();
            Some(if s.deadline >= now {
                wall + Duration::from_nanos(s.deadline - now)
            } else {
                wall - Duration::from_nanos(now - s.deadline)
            })
        } else {
            None
        };
        Ok((flags & what, when))
    }

    /// Is this handle a live event of this base?
    pub fn is_initialized(&self, ev: Event) -> bool {
        self.index(ev).is_ok()
    }

    /// The event's fd (or signal number; -1 for timers).
    pub fn fd(&self, ev: Event) -> io::Result<RawFd> {
        Ok(self.slots[self.index(ev)?].fd)
    }

    /// The event's interest bits as created.
    pub fn events(&self, ev: Event) -> io::Result<What> {
        Ok(self.slots[self.index(ev)?].events)
    }

    /// The event's priority.
    pub fn priority(&self, ev: Event) -> io::Result<usize> {
        Ok(self.slots[self.index(ev)?].pri as usize)
    }

    /// Sets an event's priority (0 = most urgent). Fails while the event is active.
    pub fn set_priority(&mut self, ev: Event, pri: usize) -> io::Result<()> {
        let idx = self.index(ev)?;
        if pri >= self.active.len() {
            return Err(invalid(format!(
                "priority {pri} out of range 0..{}",
                self.active.len()
            )));
        }
        if self.slots[idx].has(state::ACTIVE) {
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                "cannot change the priority of an active event",
            ));
        }
        self.slots[idx].pri = pri as u8;
        Ok(())
    }

    /// The event whose callback is running, if called from inside one.
    pub fn running_event(&self) -> Option<Event> {
        self.running_event
    }
}

impl Drop for EventBase {
    fn drop(&mut self) {
        self.run_pending_finalizers();
        for signo in 0..self.sigs.len() {
            if let Some(saved) = self.sigs[signo].saved.take() {
                sys::signal::restore(signo as i32, &saved);
            }
        }
        if let Some((r, w, _)) = self.sig_pipe.take() {
            sys::signal::release(w);
            sys::close(r);
            sys::close(w);
        }
        if let Some((shared, _)) = self.notify.take() {
            shared.detach();
            // Drop queued commands now, so threads waiting in Handle::call see the closed
            // channel instead of waiting for a loop that will never run.
            shared.discard_queued();
        }
        // Drop user closures before the rest of the base (their destructors may be arbitrary).
        for s in &mut self.slots {
            s.handler = None;
        }
    }
}
