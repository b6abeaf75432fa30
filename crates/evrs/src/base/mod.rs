//! [`EventBase`]: the reactor as users see it. It owns the [`Reactor`] (every part that
//! holds no callback: event table, fd/signal tables, queues, wheel, hooks, backend) and the
//! callbacks of its threading [`Model`]. This file: construction, creating events and
//! hooks, and the event operations; `run.rs` the loop driver, `handle.rs` the cross-thread
//! `Handle`, `local.rs` the same-thread `LocalHandle`, `inspect.rs` introspection,
//! `owned.rs` caller-owned identities for the C ABI.

mod deferred;
pub(crate) mod ext;
pub(crate) mod handle;
pub(crate) mod inspect;
pub(crate) mod local;
pub(crate) mod model;
pub(crate) mod owned;
mod run;
pub(crate) mod wait_lock;

use crate::config::EventConfig;
use crate::event::{Event, RawArg, RawCallback};
use crate::flags::{BaseFlags, Features, Method, What};
use crate::reactor::{HookKind, Kind, Reactor, Setup};
use handle::NotifyShared;
use model::{HandlerSlot, Handlers, LocalHandler, LocalKind};
pub use model::{Local, Model, Shared};
use std::io;
use std::os::unix::io::RawFd;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub use crate::reactor::MAX_PRIORITIES;

/// The interest of a `once` event: its I/O bits; SIGNAL and PERSIST are refused.
pub(crate) fn once_interest(events: What) -> io::Result<What> {
    if events.intersects(What::SIGNAL | What::PERSIST) {
        return Err(crate::reactor::invalid(
            "once events cannot be SIGNAL or PERSIST",
        ));
    }
    Ok(events & (What::READ | What::WRITE | What::CLOSED | What::ET))
}

/// A `once` event with no I/O and no (or a zero) timeout is activated for the next
/// iteration; any other is added and waits.
fn once_fires_now(io: What, timeout: Option<Duration>) -> bool {
    io.is_empty() && timeout.is_none_or(|t| t.is_zero())
}

/// The event loop: it tracks pending events, asks the kernel which are ready, and runs their
/// callbacks (libevent's `event_base`).
///
/// Callbacks receive `&mut EventBase`, so they may add, delete, activate, re-assign or free
/// any event — themselves included — and stop the loop, with no `RefCell` and no aliasing:
/// the loop holds no borrow while user code runs.
///
/// The type parameter is the threading [`Model`]: always the default [`Local`] in your
/// code; the base inside a [`SharedBase`](crate::SharedBase) is an `EventBase<Shared>`.
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
pub struct EventBase<M: Model = Local> {
    core: Reactor,
    handlers: Handlers<M::Handler>,
    /// The cross-thread channel and the slot of its eventfd event, once made.
    notify: Option<(Arc<NotifyShared>, usize)>,
    /// Reused buffer for commands taken from the handle's queue.
    commands: Vec<handle::Command>,
    local: M::Local,
    owned: owned::Owned,
}

impl<M: Model> std::fmt::Debug for EventBase<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (active, added) = self.core.counts();
        f.debug_struct("EventBase")
            .field("method", &self.method())
            .field("active", &active)
            .field("added", &added)
            .finish_non_exhaustive()
    }
}

impl EventBase {
    /// A base with the default configuration: epoll, else poll, else select.
    pub fn new() -> io::Result<EventBase> {
        EventConfig::new().build()
    }

    /// A base using exactly `method`. A method asked for in code wins over the environment
    /// (`EVRS_BACKEND`, `EVENT_NO*` are ignored); use [`EventConfig`] for more control.
    pub fn with_backend(method: Method) -> io::Result<EventBase> {
        EventConfig::new()
            .method(method)
            .flags(BaseFlags::IGNORE_ENV)
            .build()
    }
}

impl<M: Model> EventBase<M> {
    pub(crate) fn from_setup(setup: &Setup) -> io::Result<EventBase<M>> {
        Ok(Self::from_reactor(Reactor::new(setup)?))
    }

    pub(crate) fn from_reactor(core: Reactor) -> EventBase<M> {
        EventBase {
            handlers: Handlers::new(core.growth()),
            core,
            notify: None,
            commands: Vec::new(),
            local: M::Local::default(),
            owned: owned::Owned::default(),
        }
    }

    pub(crate) fn id(&self) -> u32 {
        self.core.id()
    }

    /// Callbacks the callback table has room for without growing.
    #[cfg(test)]
    pub(crate) fn handler_capacity(&self) -> usize {
        self.handlers.capacity()
    }

    pub(crate) fn reactor(&self) -> &Reactor {
        &self.core
    }

    pub(crate) fn reactor_mut(&mut self) -> &mut Reactor {
        &mut self.core
    }

    /// The backend in use.
    pub fn method(&self) -> Method {
        self.core.method()
    }

    /// The backend's features.
    pub fn features(&self) -> Features {
        self.method().features()
    }

    /// The base's flags (as configured, plus `PRECISE_TIMER` from the environment).
    pub fn flags(&self) -> BaseFlags {
        self.core.flags()
    }

    /// libevent compatibility (off by default): `add` then accepts an I/O event on a
    /// negative fd instead of refusing it. Such an event is added — counted, pending for
    /// [`pending`](Self::pending), its timeout and activations work — and never polled,
    /// as libevent treats it (C programs use fd -1 events as timers that also take
    /// `event_active`). The C ABI turns this on for its bases.
    pub fn allow_unpolled_negative_fds(&mut self, on: bool) {
        self.core.set_unpolled_negative_fds(on);
    }

    /// libevent compatibility (off by default): of the bases that turn this on, only one
    /// receives signals — the one that most recently added a signal event or started its
    /// loop (libevent's rule on Linux; its docs say not to rely on it). Other bases, and
    /// by default every base, receive every signal they watch. Set it before adding signal
    /// events. The C ABI turns it on for its bases.
    pub fn exclusive_signals(&mut self, on: bool) {
        self.core.set_exclusive_signals(on);
    }

    /// Takes a hold on the loop: while any is taken, `run` does not stop for lack of events
    /// (it waits, as with `NO_EXIT_ON_EMPTY`, for timers, fds, activations or a wake-up).
    /// For work the base does not see as an event (libevent's "virtual events", libuv's
    /// referenced handles). Each hold is given back with [`release_hold`](Self::release_hold).
    pub fn hold_open(&mut self) {
        self.core.hold(true);
    }

    /// Gives back a hold taken with [`hold_open`](Self::hold_open); an error if none is.
    pub fn release_hold(&mut self) -> io::Result<()> {
        if self.core.hold(false) {
            Ok(())
        } else {
            Err(crate::reactor::invalid("release_hold: no hold is taken"))
        }
    }

    /// How many holds are taken.
    pub fn holds(&self) -> usize {
        self.core.holds()
    }

    /// Number of priority queues.
    pub fn priorities(&self) -> usize {
        self.core.priorities()
    }

    /// Makes room for `additional` more events, so creating them moves no memory (the
    /// event table otherwise grows by a quarter at a time, which at 100,000 events moves
    /// about four times the table). Like `Vec::reserve_exact`: a program that knows its
    /// scale — a timer per connection, 100,000 connections — reserves it once, as a libev
    /// program allocates its watchers in one block.
    pub fn reserve_events(&mut self, additional: usize) {
        self.core.reserve(additional);
        self.handlers
            .reserve_to(self.core.table().len().saturating_add(additional));
    }

    /// Changes the number of priorities (1..=255). Fails while any callback is active or a
    /// loop pass over a priority is running (so no queue can vanish under the loop).
    /// Existing events keep their priority; one beyond the new range is clamped to the
    /// least urgent.
    pub fn priority_init(&mut self, n: usize) -> io::Result<()> {
        self.core.priority_init(n)
    }

    /// Creates an event slot holding `h`.
    #[inline]
    pub(crate) fn alloc_with(
        &mut self,
        kind: Kind,
        fd: RawFd,
        events: What,
        h: M::Handler,
    ) -> io::Result<Event> {
        // The slot is made with its cache hint (what `install` would set).
        let (idx, gen) = self
            .core
            .alloc_hinted(kind, fd, events, h.hint().unwrap_or(0))?;
        self.handlers.put_new(idx, h);
        Ok(self.core.event_with(idx, gen))
    }

    /// Stores `h` as the callback of slot `idx` (returning the old one), and tells the slot
    /// where the callback's state lives, for the loop's cache hints.
    fn install(&mut self, idx: usize, h: M::Handler) -> Option<M::Handler> {
        self.core.set_hint(idx, h.hint().unwrap_or(0));
        self.handlers.put(idx, h)
    }

    /// Re-initializes an event that is not pending or active with a new callback.
    /// Returns the replaced callback: the caller drops it last (a closure's destructor may run
    /// arbitrary user code; a `SharedBase` drops it after releasing its lock).
    #[must_use = "the replaced callback must be dropped by the caller"]
    pub(crate) fn reassign_with(
        &mut self,
        ev: Event,
        fd: RawFd,
        events: What,
        h: M::Handler,
    ) -> io::Result<Option<M::Handler>> {
        let idx = self.core.index(ev)?;
        self.core.reassign(idx, fd, events)?;
        Ok(self.install(idx, h))
    }

    /// Makes an event pending (libevent's `event_add`). With `Some(timeout)` the event also
    /// fires with `TIMEOUT` after that long (replacing any earlier timeout; for a `PERSIST`
    /// event it becomes the repeat interval). With `None` an existing timeout is kept. For a
    /// hook, `add` starts it (no timeout allowed).
    ///
    /// The timeout never ends early. Outside the loop it counts from this call; from a
    /// callback or hook it counts from the clock reading the loop takes before it next
    /// sleeps (one reading for every timeout added in the pass, none per `add`), so it may
    /// end later by what the rest of the pass took.
    pub fn add(&mut self, ev: Event, timeout: Option<Duration>) -> io::Result<()> {
        self.core.add(ev, timeout)
    }

    /// Makes an event non-pending and non-active (libevent's `event_del`); stops a hook.
    /// Deleting an event that is not pending succeeds and does nothing. The timeout interval
    /// of a `PERSIST` event is remembered, as in libevent.
    pub fn del(&mut self, ev: Event) -> io::Result<()> {
        self.core.del(ev)
    }

    /// Removes only the timeout (and the persistent interval) of an event; its I/O or signal
    /// interest stays (libevent's `event_remove_timer`).
    pub fn remove_timer(&mut self, ev: Event) -> io::Result<()> {
        self.core.remove_timer(ev)
    }

    /// Deletes and frees an event. Safe from inside the event's own callback (the closure is
    /// dropped when it returns); the handle is stale afterwards.
    pub fn free(&mut self, ev: Event) -> io::Result<()> {
        let idx = self.core.index(ev)?;
        self.free_idx(idx);
        Ok(())
    }

    pub(crate) fn free_idx(&mut self, idx: usize) {
        let h = self.release_idx(idx);
        // Dropped last: a closure's destructor may run arbitrary user code.
        drop(h);
    }

    /// Frees the slot and hands its callback to the caller to drop (see `reassign_with`).
    pub(crate) fn release_idx(&mut self, idx: usize) -> Option<M::Handler> {
        self.owned.forget_slot(self.core.owner(idx));
        self.core.free_idx(idx);
        self.handlers.take(idx)
    }

    /// [`free`](Self::free), handing the callback to the caller to drop.
    pub(crate) fn free_take(&mut self, ev: Event) -> io::Result<Option<M::Handler>> {
        let idx = self.core.index(ev)?;
        Ok(self.release_idx(idx))
    }

    /// Takes an event's callback out to run it.
    #[inline]
    pub(crate) fn take_handler(&mut self, idx: usize) -> Option<M::Handler> {
        self.handlers.take(idx)
    }

    /// Puts a callback back after it ran if the event is still the same and no other
    /// callback was stored meanwhile; otherwise hands it back to be dropped.
    #[inline]
    pub(crate) fn put_back_handler(
        &mut self,
        idx: usize,
        gen: u32,
        h: M::Handler,
    ) -> Option<M::Handler> {
        if self.core.table().same(idx, gen) {
            self.handlers.put_back(idx, h)
        } else {
            Some(h)
        }
    }

    /// After a panic unwound out of a callback: the event whose closure was lost is freed.
    /// Only the very event that was running: if the callback freed itself and the slot went
    /// to another event (even one of the base's own) before the panic, nothing is freed.
    pub(crate) fn free_after_panic(&mut self, running: Option<(usize, u32)>) {
        if let Some((idx, gen)) = running {
            let same = self.core.table().same(idx, gen);
            let internal = matches!(self.core.table().get(idx).kind(), Kind::Internal(_));
            if same && !internal && self.handlers.lost_by_unwind(idx) {
                self.free_idx(idx);
            }
        }
    }

    /// Puts `finalizer` in place of the callback and queues it.
    /// Returns the replaced callback for the caller to drop (see `reassign_with`).
    #[must_use = "the replaced callback must be dropped by the caller"]
    pub(crate) fn finalize_with(
        &mut self,
        ev: Event,
        finalizer: M::Handler,
    ) -> io::Result<Option<M::Handler>> {
        let idx = self.core.begin_finalize(ev)?;
        Ok(self.install(idx, finalizer))
    }

    /// Makes an event active as if `what` happened (libevent's `event_active`); `ncalls` is
    /// the repeat count for signal events. The event need not be pending. An event that is
    /// already active just gains the new bits.
    pub fn activate(&mut self, ev: Event, what: What, ncalls: u16) -> io::Result<()> {
        self.core.activate(ev, what, ncalls)
    }

    /// Like [`activate`](Self::activate) but the callback runs in the *next* loop iteration,
    /// after the backend has been polled (libevent's deferred "active later" queue).
    pub fn activate_later(&mut self, ev: Event, what: What) -> io::Result<()> {
        self.core.activate_later(ev, what)
    }

    /// Which of `what` the event is pending or active for, and — if `what` has `TIMEOUT` and a
    /// timeout is pending — when it expires, on the wall clock (libevent's `event_pending`).
    pub fn pending(&self, ev: Event, what: What) -> io::Result<(What, Option<SystemTime>)> {
        self.core.pending(ev, what)
    }

    /// Is this handle a live event of this base?
    pub fn is_initialized(&self, ev: Event) -> bool {
        self.core.index(ev).is_ok()
    }

    /// The event's fd (or signal number; -1 for timers and hooks).
    pub fn fd(&self, ev: Event) -> io::Result<RawFd> {
        Ok(self.core.table().get(self.core.index(ev)?).fd())
    }

    /// The event's interest bits as created.
    pub fn events(&self, ev: Event) -> io::Result<What> {
        Ok(self.core.table().get(self.core.index(ev)?).events())
    }

    /// The event's priority.
    pub fn priority(&self, ev: Event) -> io::Result<usize> {
        Ok(self.core.table().get(self.core.index(ev)?).priority())
    }

    /// Sets an event's (or hook's) priority (0 = most urgent). Fails while the event is
    /// active.
    pub fn set_priority(&mut self, ev: Event, pri: usize) -> io::Result<()> {
        self.core.set_priority(ev, pri)
    }

    /// The event whose callback is running, if called from inside one.
    pub fn running_event(&self) -> Option<Event> {
        self.core.running_event()
    }

    /// Checks every invariant of the base — state bits against queue, fd-list, signal-list,
    /// hook-list and wheel membership; per-fd interest counts against the events and the
    /// backend; the active/added counters; wheel keys; the free list — and reports the
    /// first one broken (libevent's `event_base_assert_ok_`, libev's `ev_verify`). Cheap
    /// enough for tests after every operation; O(events + fds).
    pub fn verify(&self) -> io::Result<()> {
        self.core
            .verify()
            .map_err(|e| io::Error::other(format!("event base invariant broken: {e}")))
    }

    /// The rule of `once` for both models: a just-made `once` event is activated for the next
    /// iteration (no I/O and no or a zero timeout) or added; if that fails it is freed again,
    /// and its callback is handed back for the caller to drop (a `SharedBase` drops it after
    /// releasing its lock).
    pub(crate) fn arm_once(
        &mut self,
        ev: Event,
        io: What,
        timeout: Option<Duration>,
    ) -> (io::Result<()>, Option<M::Handler>) {
        let res = if once_fires_now(io, timeout) {
            self.activate(ev, What::TIMEOUT, 1)
        } else {
            self.add(ev, timeout)
        };
        let leftover = match res {
            Ok(()) => None,
            Err(_) => self.free_take(ev).ok().flatten(),
        };
        (res, leftover)
    }

    /// The last completion (result, flags) a completion-based backend delivered to `ev`.
    #[cfg(test)]
    pub(crate) fn completion(&self, ev: Event) -> io::Result<(i32, u32)> {
        self.core.completion(ev)
    }
}

impl EventBase<Local> {
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
        self.alloc_with(Kind::Event, fd, events, model::local_fn(cb))
    }

    /// An event whose callback is a plain function pointer and an opaque argument: no
    /// allocation for the callback (libevent's `event_new` with `cb` + `arg`; the C ABI's
    /// form).
    pub fn new_event_raw(
        &mut self,
        fd: RawFd,
        events: What,
        cb: RawCallback,
        arg: RawArg,
    ) -> io::Result<Event> {
        self.alloc_with(
            Kind::Event,
            fd,
            events,
            LocalHandler(LocalKind::Raw(cb, arg)),
        )
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

    fn new_hook<F>(&mut self, kind: HookKind, cb: F) -> io::Result<Event>
    where
        F: FnMut(&mut EventBase, Event, What) + 'static,
    {
        self.alloc_with(Kind::Hook(kind), -1, What::PERSIST, model::local_fn(cb))
    }

    /// A **prepare** hook (libev's `ev_prepare`, libuv's `uv_prepare`): once started with
    /// [`add`](Self::add), its callback runs at every loop iteration right before the loop
    /// polls (and possibly blocks) — e.g. to flush writes batched during the iteration, or to
    /// tell another library's loop that we are about to sleep. Stop it with
    /// [`del`](Self::del). A started hook keeps the loop alive, as in libev and libuv.
    pub fn new_prepare<F>(&mut self, cb: F) -> io::Result<Event>
    where
        F: FnMut(&mut EventBase, Event, What) + 'static,
    {
        self.new_hook(HookKind::Prepare, cb)
    }

    /// A **check** hook (libev's `ev_check`): runs at every iteration right after the poll
    /// and the timer expiry, before the iteration's callbacks — e.g. to dispatch another
    /// library's events that became ready while we slept.
    pub fn new_check<F>(&mut self, cb: F) -> io::Result<Event>
    where
        F: FnMut(&mut EventBase, Event, What) + 'static,
    {
        self.new_hook(HookKind::Check, cb)
    }

    /// An **idle** hook (libev's `ev_idle`): runs in an iteration in which no other callback
    /// was active; while one is started the loop polls without blocking. For background
    /// work in small steps that must never delay I/O.
    pub fn new_idle<F>(&mut self, cb: F) -> io::Result<Event>
    where
        F: FnMut(&mut EventBase, Event, What) + 'static,
    {
        self.new_hook(HookKind::Idle, cb)
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
        let h = LocalHandler(LocalKind::Once(Box::new(move |base, _ev, what| {
            cb(base, what)
        })));
        let ev = self.alloc_with(Kind::Event, fd, io, h)?;
        let (res, leftover) = self.arm_once(ev, io, timeout);
        drop(leftover);
        res
    }

    /// Re-initializes an event that is not pending or active (libevent's `event_assign` on an
    /// existing event): new fd, interest and callback; priority and timeout interval reset.
    pub fn assign<F>(&mut self, ev: Event, fd: RawFd, events: What, cb: F) -> io::Result<()>
    where
        F: FnMut(&mut EventBase, Event, What) + 'static,
    {
        let old = self.reassign_with(ev, fd, events, model::local_fn(cb))?;
        drop(old);
        Ok(())
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
        let old = self.finalize_with(ev, LocalHandler(LocalKind::Finalize(Box::new(cb), false)))?;
        drop(old);
        Ok(())
    }

    /// Like [`finalize`](Self::finalize), then frees the event (libevent's
    /// `event_free_finalize`).
    pub fn free_finalize<F>(&mut self, ev: Event, cb: F) -> io::Result<()>
    where
        F: FnOnce(&mut EventBase, Event) + 'static,
    {
        let old = self.finalize_with(ev, LocalHandler(LocalKind::Finalize(Box::new(cb), true)))?;
        drop(old);
        Ok(())
    }
}

impl<M: Model> Drop for EventBase<M> {
    fn drop(&mut self) {
        M::run_finalizers(self);
        self.core.teardown();
        self.detach_notify();
        // Drop user closures before the rest of the base (their destructors may be arbitrary).
        self.handlers.clear();
    }
}
