//! [`SharedBase`]: one base shared by threads under a lock (libevent's threading model).
//! `mod.rs` holds the type and its operations, `run.rs` the loop that releases the lock
//! around waits and callbacks.

mod run;

use crate::base::handle::Handle;
use crate::base::inspect::Count;
use crate::base::model::{SharedHandler, SharedKind};
use crate::base::{once_interest, EventBase, Shared};
use crate::config::EventConfig;
use crate::event::{Event, RawArg, SharedRawCallback};
use crate::flags::BaseFlags;
use crate::flags::{Features, Method, What};
use crate::reactor::{HookKind, Kind};
use crate::wait_graph;
use std::io;
use std::os::unix::io::RawFd;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::ThreadId;
use std::time::{Duration, SystemTime};

/// How [`SharedBase::del_with`] treats a callback of the event running on another thread
/// (libevent's `EVENT_DEL_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DelMode {
    /// Wait until it returns (`EVENT_DEL_BLOCK`).
    Block,
    /// Do not wait (`EVENT_DEL_NOBLOCK`).
    NoBlock,
    /// Wait unless the event has [`What::FINALIZE`] (`EVENT_DEL_AUTOBLOCK`).
    Auto,
}

/// The base and the loop's bookkeeping, behind the mutex.
/// `Send` by construction: an `EventBase<Shared>` holds only `Send` callbacks.
pub(crate) struct Core {
    pub(crate) base: EventBase<Shared>,
    /// The thread running the loop, while one runs.
    pub(crate) loop_thread: Option<ThreadId>,
    /// The loop sleeps in the backend with the lock released: changes must wake it.
    pub(crate) in_wait: bool,
    /// The event whose callback runs right now with the lock released.
    pub(crate) running: Option<Event>,
    /// Threads blocked until `running` changes (so the loop signals only when needed).
    pub(crate) waiters: usize,
}

pub(crate) struct Inner {
    core: Mutex<Core>,
    /// Signalled when a callback that ran unlocked returns.
    callback_done: Condvar,
    /// The base's own eventfd handle, used only to wake the loop (never for commands: a
    /// command closure gets `&mut EventBase` and could store a non-`Send` callback).
    waker: Handle,
    id: u32,
}

/// An event base shared by many threads under a lock: libevent's threading model
/// (`evthread_use_pthreads` + `evthread_make_base_notifiable`), the model the C ABI maps
/// onto. The single-owner [`EventBase`] plus [`Handle`](crate::Handle) is the faster and
/// simpler choice for Rust code; `SharedBase` is for programs that want libevent's rules.
///
/// # The lock
/// Every operation takes the base's mutex, does its work and releases it. The loop holds the
/// mutex while it moves readiness into queues and picks the next callback, and **releases
/// it while it sleeps in the backend and while a callback runs** — as libevent does — so
/// other threads (and the callback itself) can add, delete and activate events meanwhile. A
/// change made while the loop sleeps wakes it through the base's eventfd (coalesced: one
/// write until the loop has woken).
///
/// # Deleting an event whose callback is running
/// `del` comes in libevent's three modes:
/// * [`del_block`](SharedBase::del_block) — returns only once the event's callback is not
///   running on another thread (`EVENT_DEL_BLOCK`). The event is deleted *before* waiting,
///   so the callback cannot be started again in between (libevent 2.1 waits first: #225).
/// * [`del_noblock`](SharedBase::del_noblock) — deletes and returns at once
///   (`EVENT_DEL_NOBLOCK`).
/// * [`del`](SharedBase::del) — blocks unless the event was created with
///   [`What::FINALIZE`] (`EVENT_DEL_AUTOBLOCK`, what libevent's `event_del` does).
///
/// Called from the loop thread (from any callback, including the event's own) nothing ever
/// waits: the callback of the event cannot be running anywhere else.
///
/// # Why it cannot deadlock on its own
/// A blocking delete waits for exactly one thread: the one running the base's loop. A cycle
/// of such waits — loop A's callback deletes an event whose callback loop B runs, while that
/// callback deletes one of A's — hangs libevent forever (see `tests/shared_deadlock.rs`,
/// which runs the same program against Debian's libevent). evrs keeps a process-wide
/// wait-for graph: the wait that would close the cycle fails with
/// `io::ErrorKind::Deadlock`, changing nothing, and the caller can fall back to
/// `del_noblock` or a finalizer. What no library can see are your own locks: do not wait
/// for a callback while holding a mutex that callback takes (libevent #512/#1311); use the
/// non-blocking delete or [`finalize`](SharedBase::finalize) there.
///
/// ```
/// use evrs::{LoopFlags, SharedBase, What};
///
/// let base = SharedBase::new()?;
/// let (tx, rx) = std::sync::mpsc::channel();
/// let ev = base.new_timer(move |_base, _ev, _what| tx.send(()).unwrap())?;
/// let looper = {
///     let base = base.clone();
///     std::thread::spawn(move || base.run(LoopFlags::NO_EXIT_ON_EMPTY))
/// };
/// for _ in 0..3 {
///     base.activate(ev, What::TIMEOUT, 1)?; // from this thread, while the loop runs
///     rx.recv().unwrap();
/// }
/// base.loopbreak(); // the loop is running: it saw the activations
/// looper.join().unwrap()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct SharedBase {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SharedBase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedBase")
            .field("id", &self.inner.id)
            .finish_non_exhaustive()
    }
}

impl SharedBase {
    /// A shared base with the default configuration.
    pub fn new() -> io::Result<SharedBase> {
        Self::with_config(EventConfig::new())
    }

    /// A shared base from `cfg` (backend choice, priorities, flags…).
    /// `BaseFlags::NOLOCK` is refused: a shared base without its lock would be unsound.
    pub fn with_config(cfg: EventConfig) -> io::Result<SharedBase> {
        if cfg.flags.contains(BaseFlags::NOLOCK) {
            return Err(crate::reactor::invalid(
                "a SharedBase cannot be NOLOCK: use an EventBase for a single-threaded base",
            ));
        }
        let mut base: EventBase<Shared> = cfg.build_model()?;
        let waker = base.handle()?;
        Ok(SharedBase {
            inner: Arc::new(Inner {
                id: base.id(),
                core: Mutex::new(Core {
                    base,
                    loop_thread: None,
                    in_wait: false,
                    running: None,
                    waiters: 0,
                }),
                callback_done: Condvar::new(),
                waker,
            }),
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Core> {
        // Callbacks run unlocked, so a poisoned lock only means an internal panic elsewhere;
        // the base's state is kept consistent at every unlock, so carry on.
        self.inner.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// After a change: a loop asleep in the backend must see it (new fd, earlier timer,
    /// activation, stop request). Coalesced by the waker.
    fn changed(&self, core: &Core) {
        if core.in_wait {
            let _ = self.inner.waker.wake();
        }
    }

    /// Runs `f` with read access to the base (inspection: `pending`, `num_events`,
    /// `foreach_event`, `dump_events`…), under the lock.
    pub fn with<R>(&self, f: impl FnOnce(&EventBase<Shared>) -> R) -> R {
        f(&self.lock().base)
    }

    // ----- events ---------------------------------------------------------------------

    /// Creates an event (as [`EventBase::new_event`]); the callback gets this base.
    pub fn new_event<F>(&self, fd: RawFd, events: What, cb: F) -> io::Result<Event>
    where
        F: FnMut(&SharedBase, Event, What) + Send + 'static,
    {
        let h = SharedHandler(SharedKind::Fn(Box::new(cb)));
        self.lock().base.alloc_with(Kind::Event, fd, events, h)
    }

    /// An event with a plain function pointer and opaque argument as its callback (no
    /// allocation; the C ABI's form).
    pub fn new_event_raw(
        &self,
        fd: RawFd,
        events: What,
        cb: SharedRawCallback,
        arg: RawArg,
    ) -> io::Result<Event> {
        let h = SharedHandler(SharedKind::Raw(cb, arg));
        self.lock().base.alloc_with(Kind::Event, fd, events, h)
    }

    fn new_hook<F>(&self, kind: HookKind, cb: F) -> io::Result<Event>
    where
        F: FnMut(&SharedBase, Event, What) + Send + 'static,
    {
        let h = SharedHandler(SharedKind::Fn(Box::new(cb)));
        self.lock()
            .base
            .alloc_with(Kind::Hook(kind), -1, What::PERSIST, h)
    }

    /// A prepare hook (as [`EventBase::new_prepare`]); runs on the loop thread without the
    /// lock, right before the loop polls.
    pub fn new_prepare<F>(&self, cb: F) -> io::Result<Event>
    where
        F: FnMut(&SharedBase, Event, What) + Send + 'static,
    {
        self.new_hook(HookKind::Prepare, cb)
    }

    /// A check hook (as [`EventBase::new_check`]).
    pub fn new_check<F>(&self, cb: F) -> io::Result<Event>
    where
        F: FnMut(&SharedBase, Event, What) + Send + 'static,
    {
        self.new_hook(HookKind::Check, cb)
    }

    /// An idle hook (as [`EventBase::new_idle`]).
    pub fn new_idle<F>(&self, cb: F) -> io::Result<Event>
    where
        F: FnMut(&SharedBase, Event, What) + Send + 'static,
    {
        self.new_hook(HookKind::Idle, cb)
    }

    /// A pure timer or user-activated event.
    pub fn new_timer<F>(&self, cb: F) -> io::Result<Event>
    where
        F: FnMut(&SharedBase, Event, What) + Send + 'static,
    {
        self.new_event(-1, What::empty(), cb)
    }

    /// A persistent event for signal `signo`.
    pub fn new_signal<F>(&self, signo: i32, cb: F) -> io::Result<Event>
    where
        F: FnMut(&SharedBase, Event, What) + Send + 'static,
    {
        self.new_event(signo, What::SIGNAL | What::PERSIST, cb)
    }

    /// Re-initializes an event that is neither pending nor active (as
    /// [`EventBase::assign`]).
    pub fn assign<F>(&self, ev: Event, fd: RawFd, events: What, cb: F) -> io::Result<()>
    where
        F: FnMut(&SharedBase, Event, What) + Send + 'static,
    {
        let h = SharedHandler(SharedKind::Fn(Box::new(cb)));
        let old = self.lock().base.reassign_with(ev, fd, events, h)?;
        // The replaced closure is dropped here, without the lock (the guard is gone).
        drop(old);
        Ok(())
    }

    /// Runs `cb` once when `fd` is ready or `timeout` passes (as [`EventBase::once`]).
    pub fn once<F>(
        &self,
        fd: RawFd,
        events: What,
        timeout: Option<Duration>,
        cb: F,
    ) -> io::Result<()>
    where
        F: FnOnce(&SharedBase, What) + Send + 'static,
    {
        let io = once_interest(events)?;
        let mut cb = Some(cb);
        let ev = self.new_event(fd, io, move |base, ev, what| {
            let _ = base.free(ev);
            if let Some(cb) = cb.take() {
                cb(base, what);
            }
        })?;
        let mut core = self.lock();
        let (res, leftover) = core.base.arm_once(ev, io, timeout);
        if res.is_ok() {
            self.changed(&core);
        }
        drop(core);
        // Without the lock: the closure's destructor is user code.
        drop(leftover);
        res
    }

    /// Makes `ev` pending (as [`EventBase::add`]), waking the loop if it sleeps.
    pub fn add(&self, ev: Event, timeout: Option<Duration>) -> io::Result<()> {
        let mut core = self.lock();
        core.base.add(ev, timeout)?;
        self.changed(&core);
        Ok(())
    }

    /// Makes `ev` active (as [`EventBase::activate`]), waking the loop if it sleeps.
    pub fn activate(&self, ev: Event, what: What, ncalls: u16) -> io::Result<()> {
        let mut core = self.lock();
        core.base.activate(ev, what, ncalls)?;
        self.changed(&core);
        Ok(())
    }

    /// Makes `ev` active in the loop's next iteration (as [`EventBase::activate_later`]).
    pub fn activate_later(&self, ev: Event, what: What) -> io::Result<()> {
        let mut core = self.lock();
        core.base.activate_later(ev, what)?;
        self.changed(&core);
        Ok(())
    }

    /// libevent's `event_del`: [`DelMode::Auto`] (blocks unless the event has
    /// [`What::FINALIZE`]).
    pub fn del(&self, ev: Event) -> io::Result<()> {
        self.del_with(ev, DelMode::Auto)
    }

    /// Deletes `ev` and, if its callback is running on another thread, waits for it to
    /// return. Fails with `ErrorKind::Deadlock` (and deletes nothing) if that thread is
    /// itself waiting, directly or through others, for this one.
    pub fn del_block(&self, ev: Event) -> io::Result<()> {
        self.del_with(ev, DelMode::Block)
    }

    /// Deletes `ev` without waiting for a running callback of it.
    pub fn del_noblock(&self, ev: Event) -> io::Result<()> {
        self.del_with(ev, DelMode::NoBlock)
    }

    /// Deletes `ev` in the given mode (libevent's `event_del_block`/`_noblock` family).
    pub fn del_with(&self, ev: Event, mode: DelMode) -> io::Result<()> {
        let core = self.lock();
        let mut core = self.settle(core, ev, mode, |base| base.del(ev))?;
        // Again after a wait, in case the callback re-added the event; if it freed the
        // event instead, there is nothing left to delete.
        if core.base.is_initialized(ev) {
            core.base.del(ev)?;
        }
        self.changed(&core);
        Ok(())
    }

    /// Applies `op` to `ev`, then — in a blocking mode, from a thread other than the loop's —
    /// waits until `ev`'s callback is not running. Returns the re-taken lock.
    fn settle<'a>(
        &'a self,
        mut core: MutexGuard<'a, Core>,
        ev: Event,
        mode: DelMode,
        op: impl FnOnce(&mut EventBase<Shared>) -> io::Result<()>,
    ) -> io::Result<MutexGuard<'a, Core>> {
        let block = match mode {
            DelMode::Block => true,
            DelMode::NoBlock => false,
            DelMode::Auto => !core.base.events(ev)?.contains(What::FINALIZE),
        };
        let me = std::thread::current().id();
        let runner = core.loop_thread.filter(|&t| t != me);
        let (Some(runner), true, Some(running)) = (runner, block, core.running) else {
            op(&mut core.base)?;
            return Ok(core);
        };
        if running != ev {
            op(&mut core.base)?;
            return Ok(core);
        }
        // Record the wait first: if it would close a cycle, fail before changing anything.
        let edge = wait_graph::enter(me, runner)?;
        op(&mut core.base)?;
        core.waiters += 1;
        while core.running == Some(ev) {
            core = self
                .inner
                .callback_done
                .wait(core)
                .unwrap_or_else(|e| e.into_inner());
        }
        core.waiters -= 1;
        drop(edge);
        Ok(core)
    }

    /// Deletes `ev` (waiting as [`del`](Self::del) does) and frees it (libevent's
    /// `event_free`). From the event's own callback it does not wait; the closure is
    /// dropped when the callback returns.
    pub fn free(&self, ev: Event) -> io::Result<()> {
        let core = self.lock();
        let mut core = self.settle(core, ev, DelMode::Auto, |base| base.del(ev))?;
        let old = core.base.free_take(ev)?;
        self.changed(&core);
        drop(core);
        // Without the lock: the closure's destructor is user code and may call into the base.
        drop(old);
        Ok(())
    }

    /// libevent's `event_finalize`: deletes `ev` without waiting, and runs `cb` on the loop
    /// thread (without the lock) once the event's callback can no longer run. Meanwhile
    /// `add` fails and `activate` is ignored. Pending finalizers also run when the last
    /// clone of the base is dropped.
    pub fn finalize<F>(&self, ev: Event, cb: F) -> io::Result<()>
    where
        F: FnOnce(Event) + Send + 'static,
    {
        self.finalize_with(ev, Box::new(cb), false)
    }

    /// [`finalize`](Self::finalize), then frees the event (libevent's
    /// `event_free_finalize`).
    pub fn free_finalize<F>(&self, ev: Event, cb: F) -> io::Result<()>
    where
        F: FnOnce(Event) + Send + 'static,
    {
        self.finalize_with(ev, Box::new(cb), true)
    }

    fn finalize_with(
        &self,
        ev: Event,
        cb: Box<crate::event::SharedFinalizeCallback>,
        free: bool,
    ) -> io::Result<()> {
        let mut core = self.lock();
        let old = core
            .base
            .finalize_with(ev, SharedHandler(SharedKind::Finalize(cb, free)))?;
        self.changed(&core);
        drop(core);
        drop(old);
        Ok(())
    }

    /// Removes only `ev`'s timeout (as [`EventBase::remove_timer`]).
    pub fn remove_timer(&self, ev: Event) -> io::Result<()> {
        self.lock().base.remove_timer(ev)
    }

    /// Which of `what` is `ev` pending or active for, and its timeout's deadline.
    pub fn pending(&self, ev: Event, what: What) -> io::Result<(What, Option<SystemTime>)> {
        self.lock().base.pending(ev, what)
    }

    /// Sets `ev`'s priority (as [`EventBase::set_priority`]).
    pub fn set_priority(&self, ev: Event, pri: usize) -> io::Result<()> {
        self.lock().base.set_priority(ev, pri)
    }

    /// Makes room for `additional` more events (see [`EventBase::reserve_events`]).
    pub fn reserve_events(&self, additional: usize) {
        self.lock().base.reserve_events(additional)
    }

    /// Sets the number of priorities (only while no event is active).
    pub fn priority_init(&self, n: usize) -> io::Result<()> {
        self.lock().base.priority_init(n)
    }

    // ----- the loop -------------------------------------------------------------------

    /// Stops the loop after `after`, or at the end of this iteration (remembered if no
    /// loop runs, as [`EventBase::loopexit`]).
    pub fn loopexit(&self, after: Option<Duration>) -> io::Result<()> {
        let mut core = self.lock();
        core.base.loopexit(after)?;
        self.changed(&core);
        Ok(())
    }

    /// Stops the loop after the running callback (ignored if no loop runs).
    pub fn loopbreak(&self) {
        let mut core = self.lock();
        core.base.loopbreak();
        self.changed(&core);
    }

    /// Ends the loop's current pass over the active queue (as
    /// [`EventBase::loopcontinue`]).
    pub fn loopcontinue(&self) {
        self.lock().base.loopcontinue();
    }

    /// Did the last run end because of `loopexit`?
    pub fn got_exit(&self) -> bool {
        self.lock().base.got_exit()
    }

    /// Did the last run end because of `loopbreak`?
    pub fn got_break(&self) -> bool {
        self.lock().base.got_break()
    }

    /// Is a thread running this base's loop?
    pub fn is_running(&self) -> bool {
        self.lock().loop_thread.is_some()
    }

    /// The event whose callback is running, when asked from the loop thread (libevent's
    /// `event_base_get_running_event`); `None` from any other thread.
    pub fn running_event(&self) -> Option<Event> {
        let core = self.lock();
        if core.loop_thread == Some(std::thread::current().id()) {
            core.base.running_event()
        } else {
            None
        }
    }

    /// The backend in use.
    pub fn method(&self) -> Method {
        self.lock().base.method()
    }

    /// What the backend supports.
    pub fn features(&self) -> Features {
        self.lock().base.features()
    }

    /// Events counted by kind (as [`EventBase::num_events`]).
    pub fn num_events(&self, what: Count) -> usize {
        self.lock().base.num_events(what)
    }

    /// The loop's cached wall-clock time (as [`EventBase::gettimeofday_cached`]).
    pub fn gettimeofday_cached(&self) -> SystemTime {
        self.lock().base.gettimeofday_cached()
    }

    /// Refreshes the cached time (as [`EventBase::update_cache_time`]).
    pub fn update_cache_time(&self) {
        self.lock().base.update_cache_time()
    }

    /// Checks every invariant of the base (as [`EventBase::verify`]).
    pub fn verify(&self) -> io::Result<()> {
        self.lock().base.verify()
    }

    /// Re-creates the backend after `fork` (as [`EventBase::reinit`]). Call it in the child
    /// before any other thread exists there.
    pub fn reinit(&self) -> io::Result<()> {
        self.lock().base.reinit()
    }

    /// How many times the base's eventfd was written to wake the loop (the rest of the
    /// cross-thread changes were coalesced into those writes).
    pub fn wake_writes(&self) -> u64 {
        self.inner.waker.wake_writes()
    }
}
