//! The cross-thread handle: a `Send + Sync` [`Handle`] queues commands (activate, add, del,
//! run a closure, loopexit, loopbreak) for a base and wakes its loop through an eventfd that
//! the loop watches as an internal event.
//!
//! # The wake-up protocol
//! A caller pushes its command under the queue's mutex, then swaps `pending` to `true` and
//! writes the eventfd only if it was `false`: however many threads call in before the loop
//! runs, the eventfd is written once per loop iteration. The loop, woken, resets the eventfd,
//! stores `pending = false`, and only then takes the queue. A command pushed before a caller
//! saw `pending == true` is therefore already in the queue when the loop takes it; a command
//! pushed after the loop cleared `pending` comes with its own eventfd write. No wake-up is lost
//! and none is duplicated (`tests/handle.rs` checks this with many threads).
//!
//! # Errors across threads
//! What a caller's thread can check is checked there and returned: a foreign event, a
//! timeout the base's clock cannot hold, a dropped base. Dropping the base closes the queue
//! (under its mutex, see [`WakeQueue`]): a command is either queued before that — and then
//! the loop runs it, or the drop drops it — or refused with `NotConnected`. What can only
//! fail on the loop thread (an add of an event whose fd was closed, a command about an event
//! freed meanwhile) is returned by the waiting forms ([`Handle::call`],
//! [`Handle::add_blocking`], [`Handle::del_blocking`], [`Handle::free_blocking`]); for the
//! fire-and-forget ones it is logged as a `log::warn!` (target `evrs::handle`) and counted
//! in [`Handle::failed_commands`].

use super::{EventBase, Local, Model};
use crate::event::{Event, Internal};
use crate::flags::What;
use crate::pending_activations::{Mark, PendingActivations};
use crate::sys;
use crate::wake_queue::WakeQueue;
use std::io;
use std::os::unix::io::RawFd;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Bytes for a layer's object, appended on the loop thread by `apply(base, key, bytes)`
/// (a `BevRemote::write`). Consecutive appends to the same object coalesce into one command
/// while it waits in the queue: one allocation, one lock and one `apply` for many writes.
pub(crate) struct Append {
    /// Names the caller for reports (`BevRemote::write`) and, with `key`, the target.
    pub(crate) what: &'static str,
    pub(crate) key: u64,
    pub(crate) apply: fn(&mut EventBase, u64, &[u8]) -> io::Result<()>,
    pub(crate) data: Vec<u8>,
}

/// An append merges into the one before it only while both stay small: a large write is
/// copied outside the queue's lock, and a batch stops growing at the cap.
const APPEND_MERGE_MAX: usize = 4 * 1024;
const APPEND_BATCH_MAX: usize = 256 * 1024;

/// Work queued for the loop thread.
pub(crate) enum Command {
    Activate(Event, What, u16),
    /// Deliver the bits gathered in the pending-activations table for this event.
    ActivatePending(Event),
    Add(Event, Option<Duration>),
    Del(Event),
    Run(Box<dyn FnOnce(&mut EventBase) + Send>),
    /// A [`Handle::call`]: like `Run`, but its caller waits for the result and learns of a
    /// dropped base itself (so a discarded one is not counted as a failure).
    Call(Box<dyn FnOnce(&mut EventBase) + Send>),
    /// Bytes to append (see [`Append`]); an error is reported as a failed command.
    Append(Append),
    LoopExit(Option<Duration>),
    LoopBreak,
}

impl Command {
    /// The `Handle` method that queued it, and its event (for reports).
    fn describe(&self) -> (&'static str, Option<Event>) {
        match self {
            Command::Activate(ev, ..) | Command::ActivatePending(ev) => {
                ("Handle::activate", Some(*ev))
            }
            Command::Add(ev, _) => ("Handle::add", Some(*ev)),
            Command::Del(ev) => ("Handle::del", Some(*ev)),
            Command::Run(_) => ("Handle::run_in_loop", None),
            Command::Call(_) => ("Handle::call", None),
            Command::Append(a) => (a.what, None),
            Command::LoopExit(_) => ("Handle::loopexit", None),
            Command::LoopBreak => ("Handle::loopbreak", None),
        }
    }
}

/// Refuses, on the caller's thread, a timeout that the base would refuse when it runs the
/// command: the same rule as [`EventBase::add`]'s (a bound on the duration alone, so it
/// cannot depend on when the loop gets to the command).
fn check_timeout(timeout: Option<Duration>) -> io::Result<()> {
    match timeout {
        Some(d) => crate::reactor::check_timeout(d),
        None => Ok(()),
    }
}

fn not_connected() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the event base behind this handle was dropped",
    )
}

pub(crate) struct NotifyShared {
    /// Replaced (atomically) when a forked child re-creates its eventfd.
    fd: AtomicI32,
    base_id: u32,
    /// The thread that owns the base (an `EventBase` never changes threads).
    owner: std::thread::ThreadId,
    queue: WakeQueue<Command>,
    /// Activations waiting for the loop, one word per event (coalesces repeats lock-free).
    pending: PendingActivations,
    /// eventfd writes made so far (shows the coalescing).
    writes: AtomicU64,
    /// Commands accepted (`Ok`) but not carried out: failed on the loop thread, or dropped
    /// with the base.
    failed: AtomicU64,
}

impl NotifyShared {
    pub(crate) fn new(fd: RawFd, base_id: u32) -> NotifyShared {
        NotifyShared {
            fd: AtomicI32::new(fd),
            base_id,
            owner: std::thread::current().id(),
            queue: WakeQueue::new(),
            pending: PendingActivations::new(),
            writes: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }

    /// Commands (or a wake-up) are waiting for the loop.
    pub(crate) fn has_pending(&self) -> bool {
        self.queue.is_pending()
    }

    /// The base is being dropped: from now on every command is refused (`NotConnected`), and
    /// what was queued before is dropped (closures unrun — their destructors run here, on the
    /// dropping thread, after the queue's lock is released), counted in `failed_commands`
    /// and logged in one warning. Threads waiting in `Handle::call` see their channel close.
    pub(crate) fn detach(&self) {
        let mut dropped = Vec::new();
        self.queue.close_and_take(&mut dropped);
        // A `call` caller gets `NotConnected` when its closure is dropped: not a silent loss.
        let unreported = dropped
            .iter()
            .filter(|c| !matches!(c, Command::Call(_)))
            .count();
        if unreported > 0 {
            self.failed.fetch_add(unreported as u64, Ordering::Relaxed);
            log::warn!(
                "evrs: event base {} dropped with {unreported} Handle command(s) queued; \
                 they were not carried out",
                self.base_id
            );
        }
        drop(dropped);
    }

    /// A fire-and-forget command failed on the loop thread: nobody waits for its result, so
    /// log and count it.
    fn command_failed(&self, what: &str, ev: Option<Event>, e: &io::Error) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        match ev {
            Some(ev) => log::warn!(
                "evrs: {what} of {ev:?} failed on the loop thread of event base {}: {e}",
                self.base_id
            ),
            None => log::warn!(
                "evrs: {what} failed on the loop thread of event base {}: {e}",
                self.base_id
            ),
        }
    }
}

impl NotifyShared {
    fn fd(&self) -> RawFd {
        self.fd.load(Ordering::SeqCst)
    }
}

impl Drop for NotifyShared {
    fn drop(&mut self) {
        sys::close(self.fd());
    }
}

/// A `Send + Sync`, clonable handle to an [`EventBase`] for other threads: activate, add or
/// delete its events, run a closure on the loop thread, or stop the loop. Each call queues a
/// command and wakes the loop (coalesced: one eventfd write per loop iteration at most).
///
/// Commands run on the loop thread, in the order each thread issued them, the next time the
/// loop iterates.
///
/// # Errors
/// Calls fail at once for an event of another base, for a timeout the base's clock cannot
/// hold, and with `NotConnected` once the base is dropped. A command that returned `Ok` is
/// run by the loop or, if the base is dropped first, dropped with it (a closure's captures
/// are dropped unrun — that is how a `run_in_loop` caller can tell). A command that fails
/// on the loop thread — an add of an event whose fd is closed, any command about an event
/// freed in the meantime — has no caller left to return to: it is logged (`log::warn!`,
/// with the command, the event and the error) and counted in
/// [`failed_commands`](Self::failed_commands), as are commands dropped with the base. Use
/// [`add_blocking`](Self::add_blocking), [`del_blocking`](Self::del_blocking) or
/// [`call`](Self::call) to get such an error back instead.
///
/// ```
/// use evrs::{EventBase, LoopFlags};
/// let mut base = EventBase::new()?;
/// let h = base.handle()?;
/// std::thread::spawn(move || {
///     h.run_in_loop(|base| println!("on the loop thread, {} backend", base.method())).unwrap();
///     h.loopbreak().unwrap();
/// });
/// base.run(LoopFlags::NO_EXIT_ON_EMPTY)?; // returns when the loopbreak arrives
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Handle {
    shared: Arc<NotifyShared>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("base", &self.shared.base_id)
            .field("fd", &self.shared.fd())
            .finish()
    }
}

impl Handle {
    /// A hint (see [`WakeQueue::is_closed`]); `send` decides exactly.
    fn check_attached(&self) -> io::Result<()> {
        if self.shared.queue.is_closed() {
            Err(not_connected())
        } else {
            Ok(())
        }
    }

    /// Wakes the loop without queuing anything (one eventfd write per loop iteration at most,
    /// however many callers). Fails once the base is gone.
    pub fn wake(&self) -> io::Result<()> {
        self.check_attached()?;
        if self.shared.queue.request_wake() {
            self.signal()?;
        }
        Ok(())
    }

    /// Writes the eventfd. It cannot fail short of a closed eventfd (saturation is not an
    /// error); if it did, the command is queued all the same and runs at the loop's next
    /// iteration, though a loop asleep in the backend may not wake for it.
    fn signal(&self) -> io::Result<()> {
        self.shared.writes.fetch_add(1, Ordering::Relaxed);
        sys::notify::wake(self.shared.fd())
    }

    /// How many times any handle of this base actually wrote the eventfd (the rest of the
    /// calls were coalesced into those writes).
    pub fn wake_writes(&self) -> u64 {
        self.shared.writes.load(Ordering::Relaxed)
    }

    /// Queues `cmd`, or refuses it (and drops it, here) once the base is gone.
    fn send(&self, cmd: Command) -> io::Result<()> {
        match self.shared.queue.push(cmd) {
            Ok(true) => self.signal(),
            Ok(false) => Ok(()),
            Err(refused) => {
                drop(refused);
                Err(not_connected())
            }
        }
    }

    /// Commands of this base's handles that returned `Ok` but were not carried out: they
    /// failed on the loop thread (each also logged with `log::warn!`), or were still queued
    /// when the base was dropped. Failures of the waiting forms ([`call`](Self::call),
    /// [`add_blocking`](Self::add_blocking), …) are returned to their caller instead and not
    /// counted. Activations coalesced into one pending command count once, as that command,
    /// and so do [`BevRemote::write`](crate::bufferevent::BevRemote::write)s coalesced into
    /// one append.
    pub fn failed_commands(&self) -> u64 {
        self.shared.failed.load(Ordering::Relaxed)
    }

    fn check_event(&self, ev: Event) -> io::Result<()> {
        if ev.base != self.shared.base_id {
            return Err(crate::reactor::invalid(
                "event belongs to another event base than this handle's",
            ));
        }
        Ok(())
    }

    /// [`EventBase::activate`] from another thread. Activating an event whose earlier
    /// cross-thread activation the loop has not delivered yet only adds `what` to it: no
    /// command, no lock, no wake-up (one atomic load when the bits are already there).
    /// `ncalls` other than 1 (signal events) always queues a command of its own.
    ///
    /// One race is reported loosely: an activation coalesced into a pending one just as the
    /// base is dropped returns `Ok` and is not delivered (its command is dropped with the base
    /// — counted once in [`failed_commands`](Self::failed_commands) — or refused to the thread
    /// that queued it). Every activation made once the base is gone is an error.
    pub fn activate(&self, ev: Event, what: What, ncalls: u16) -> io::Result<()> {
        self.check_event(ev)?;
        if ncalls == 1 {
            match self.shared.pending.mark(ev, what.bits()) {
                Mark::Coalesced => return self.check_attached(),
                Mark::Queued => return self.send(Command::ActivatePending(ev)),
                Mark::Fallback => {}
            }
        }
        self.send(Command::Activate(ev, what, ncalls))
    }

    /// [`EventBase::add`] from another thread. A timeout the base's clock cannot hold is
    /// refused here; a failure on the loop thread (say, the event's fd was closed) is logged
    /// and counted (see [`Handle`]'s errors) — [`add_blocking`](Self::add_blocking) returns it.
    pub fn add(&self, ev: Event, timeout: Option<Duration>) -> io::Result<()> {
        self.check_event(ev)?;
        check_timeout(timeout)?;
        self.send(Command::Add(ev, timeout))
    }

    /// [`add`](Self::add) that waits for the loop to do it and returns its result, as
    /// [`EventBase::add`] would. See [`call`](Self::call) for the waiting and its errors.
    pub fn add_blocking(&self, ev: Event, timeout: Option<Duration>) -> io::Result<()> {
        self.check_event(ev)?;
        check_timeout(timeout)?;
        self.call(move |base| base.add(ev, timeout))?
    }

    /// [`EventBase::del`] from another thread. It takes effect on the loop thread, between
    /// callbacks; it does not wait for a running callback.
    pub fn del(&self, ev: Event) -> io::Result<()> {
        self.check_event(ev)?;
        self.send(Command::Del(ev))
    }

    /// Runs `f` on the loop thread with the base, at its next iteration.
    pub fn run_in_loop<F>(&self, f: F) -> io::Result<()>
    where
        F: FnOnce(&mut EventBase) + Send + 'static,
    {
        self.send(Command::Run(Box::new(f)))
    }

    /// Queues `data` for `apply(base, key, data)` on the loop thread, joined to the
    /// previous command if that is still queued and appends to the same `(what, key)` (see
    /// [`Append`]): the bytes of consecutive appends stay in their order, and nothing
    /// queued between them is overtaken. An error `apply` returns is logged and counted in
    /// [`failed_commands`](Self::failed_commands) under `what` — once per coalesced command.
    pub(crate) fn append(
        &self,
        what: &'static str,
        key: u64,
        apply: fn(&mut EventBase, u64, &[u8]) -> io::Result<()>,
        data: &[u8],
    ) -> io::Result<()> {
        let make = || {
            Command::Append(Append {
                what,
                key,
                apply,
                data: data.to_vec(),
            })
        };
        if data.len() > APPEND_MERGE_MAX {
            // Copied outside the queue's lock, and never merged.
            return self.send(make());
        }
        let merge = |last: &mut Command| match last {
            Command::Append(a)
                if a.key == key && a.what == what && a.data.len() < APPEND_BATCH_MAX =>
            {
                a.data.extend_from_slice(data);
                true
            }
            _ => false,
        };
        match self.shared.queue.push_or_merge(merge, make) {
            Ok(true) => self.signal(),
            Ok(false) => Ok(()),
            Err(()) => Err(not_connected()),
        }
    }

    /// Runs `f` on the loop thread and waits for its result: a synchronous cross-thread call.
    ///
    /// `f` runs between callbacks, never during one, so when `call` returns no callback of the
    /// base is running because of it — and nothing `f` did can be undone by a callback that
    /// was in flight. The waiting thread holds no evrs lock while it waits (evrs has none), so
    /// evrs itself never closes a wait cycle — libevent's #512/#1311 came from its own
    /// bufferevent/base locks being held by the deleting thread. A cycle *you* build still
    /// deadlocks: do not hold a lock that a callback of this base needs while calling `call`
    /// (or `del_blocking`); use the non-blocking [`del`](Self::del) there. Fails with
    /// `WouldBlock` when called on the base's own thread (it would wait for itself), and with
    /// `NotConnected` if the base is dropped before `f` runs (promptly: the drop drops the
    /// queued `f`, which closes the reply channel) — on any thread, once the base is gone. If the loop is not running, the call
    /// waits until it next runs.
    pub fn call<R, F>(&self, f: F) -> io::Result<R>
    where
        F: FnOnce(&mut EventBase) -> R + Send + 'static,
        R: Send + 'static,
    {
        // A dropped base is reported as such on every thread, its own included.
        self.check_attached()?;
        if std::thread::current().id() == self.shared.owner {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "Handle::call on the event base's own thread would wait for itself; \
                 use the EventBase directly",
            ));
        }
        // The loop thread may itself be blocked waiting for this one (two loops calling
        // into each other): refuse the wait that would close that cycle.
        let _edge = crate::wait_graph::enter(std::thread::current().id(), self.shared.owner)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        // The receiver is gone only if this thread panicked while waiting: nobody to tell.
        self.send(Command::Call(Box::new(move |base| {
            let _ = tx.send(f(base));
        })))?;
        loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(r) => return Ok(r),
                // A safety net only: a dropped base drops `f`, which disconnects `rx`.
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => self.check_attached()?,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(io::Error::new(
                        io::ErrorKind::NotConnected,
                        "the event base was dropped before the call ran (or the call panicked)",
                    ))
                }
            }
        }
    }

    /// Deletes `ev` and returns only once the loop has done it — so its callback is not
    /// running and will not run again (libevent's blocking `event_del` from another thread,
    /// without its deadlock). See [`call`](Self::call) for the errors.
    pub fn del_blocking(&self, ev: Event) -> io::Result<()> {
        self.check_event(ev)?;
        self.call(move |base| base.del(ev))?
    }

    /// Frees `ev` once its callback is certainly not running, and returns after that (the
    /// safe form of "free after del" from another thread).
    pub fn free_blocking(&self, ev: Event) -> io::Result<()> {
        self.check_event(ev)?;
        self.call(move |base| base.free(ev))?
    }

    /// [`EventBase::loopexit`] from another thread. A delay the base's clock cannot hold is
    /// refused here.
    pub fn loopexit(&self, after: Option<Duration>) -> io::Result<()> {
        check_timeout(after)?;
        self.send(Command::LoopExit(after))
    }

    /// [`EventBase::loopbreak`] from another thread: the loop stops after the callback it is
    /// running (if any) finishes.
    pub fn loopbreak(&self) -> io::Result<()> {
        self.send(Command::LoopBreak)
    }
}

impl<M: Model> EventBase<M> {
    /// A handle other threads can use to reach this base (creates the eventfd on first use).
    pub fn handle(&mut self) -> io::Result<Handle> {
        if let Some((shared, _)) = &self.notify {
            return Ok(Handle {
                shared: shared.clone(),
            });
        }
        let fd = sys::notify::new()?;
        let shared = Arc::new(NotifyShared::new(fd, self.id()));
        let idx = match self.core.new_internal_fd(fd, Internal::Notify) {
            Ok(idx) => idx,
            Err(e) => {
                // `shared` owns the fd and closes it when dropped.
                return Err(e);
            }
        };
        self.notify = Some((shared.clone(), idx));
        Ok(Handle { shared })
    }

    /// The eventfd is readable: reset it, re-arm wake-ups and take the queued commands into
    /// `self.commands` ([`WakeQueue::take_signalled`]). A `SharedBase` takes nothing (its
    /// handle only wakes) but must re-arm all the same, or its loop would never block again.
    pub(crate) fn take_notified(&mut self) {
        if let Some((shared, _)) = &self.notify {
            let fd = shared.fd();
            shared
                .queue
                .take_signalled(|| sys::notify::drain(fd), &mut self.commands);
        }
    }

    /// Before blocking in the backend: is a wake-up or command pending that no eventfd write
    /// announced? Then it is taken into `self.commands` and the loop must not block
    /// ([`WakeQueue::take_before_sleep`]). Otherwise the loop counts as asleep until
    /// [`woke_up`](Self::woke_up).
    #[inline]
    pub(crate) fn take_before_sleep(&mut self) -> bool {
        matches!(&self.notify, Some((shared, _)) if shared.queue.take_before_sleep(&mut self.commands))
    }

    /// Back from the backend: producers need not signal any more.
    #[inline]
    pub(crate) fn woke_up(&mut self) {
        if let Some((shared, _)) = &self.notify {
            shared.queue.woke();
        }
    }

    /// Fork: a fresh eventfd (the inherited one would wake the parent too).
    pub(crate) fn reinit_notify(&mut self) -> io::Result<()> {
        let Some((shared, idx)) = self.notify.clone() else {
            return Ok(());
        };
        let fd = sys::notify::new()?;
        self.core.replace_internal_fd(idx, fd)?;
        let old = shared.fd.swap(fd, Ordering::SeqCst);
        sys::close(old);
        // Whatever the inherited `pending` flag says, wake the child's own eventfd once so
        // anything queued before the fork is taken by the child's loop.
        shared.queue.request_wake();
        sys::notify::wake(fd)?;
        Ok(())
    }

    /// Base teardown: handles see the base gone; queued commands are dropped now, so
    /// threads waiting in `Handle::call` see the closed channel.
    pub(crate) fn detach_notify(&mut self) {
        if let Some((shared, _)) = self.notify.take() {
            shared.detach();
        }
    }
}

impl EventBase<Local> {
    /// The eventfd fired: reset it, re-arm coalescing, then run the queued commands (see
    /// the protocol in the module docs).
    pub(crate) fn notify_ready(&mut self) {
        self.take_notified();
        self.run_commands();
    }

    /// Before blocking: commands queued while the loop was busy (no eventfd write was made
    /// for them) run now. Returns `true` if it ran any.
    #[inline]
    pub(crate) fn commands_before_sleep(&mut self) -> bool {
        if self.take_before_sleep() {
            self.run_commands();
            true
        } else {
            false
        }
    }

    /// Runs the commands just taken into `self.commands`.
    fn run_commands(&mut self) {
        let Some((shared, _)) = &self.notify else {
            return;
        };
        let shared = shared.clone();
        let mut cmds = std::mem::take(&mut self.commands);
        // A closure that panics does not cost the rest of the batch: every command runs (an
        // activation dropped here would leave its coalescing word set and every later
        // `Handle::activate` of that event swallowed); the first panic propagates after.
        let mut panicked = None;
        for cmd in cmds.drain(..) {
            let (what, ev) = cmd.describe();
            let r = match cmd {
                Command::Activate(ev, what, n) => self.activate(ev, what, n),
                Command::ActivatePending(ev) => match shared.pending.take(ev) {
                    0 => Ok(()),
                    bits => self.activate(ev, What::from_bits_retain(u16::from(bits)), 1),
                },
                Command::Add(ev, t) => self.add(ev, t),
                Command::Del(ev) => self.del(ev),
                Command::Run(f) | Command::Call(f) => {
                    let run = std::panic::AssertUnwindSafe(|| f(self));
                    if let Err(p) = std::panic::catch_unwind(run) {
                        panicked.get_or_insert(p);
                    }
                    Ok(())
                }
                // A layer's code may run user callbacks (an error found while writing).
                Command::Append(a) => {
                    let run = std::panic::AssertUnwindSafe(|| (a.apply)(self, a.key, &a.data));
                    std::panic::catch_unwind(run).unwrap_or_else(|p| {
                        panicked.get_or_insert(p);
                        Ok(())
                    })
                }
                Command::LoopExit(after) => self.loopexit(after),
                Command::LoopBreak => {
                    self.loopbreak();
                    Ok(())
                }
            };
            if let Err(e) = r {
                shared.command_failed(what, ev, &e);
            }
        }
        self.commands = cmds;
        if let Some(p) = panicked {
            std::panic::resume_unwind(p);
        }
    }
}
