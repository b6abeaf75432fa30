//! Tasks: the [`Runtime`] (a single-threaded executor on one [`EventBase`]), its driver
//! callback, wakers and [`JoinHandle`]s.
//!
//! A runtime keeps its tasks in a slab on the loop thread. Each task's waker is made once,
//! at spawn, and reused for every poll: waking it sets the task's `scheduled` flag (a
//! repeated wake before the task runs costs one atomic swap and nothing else), then either
//! — on the loop thread — queues the task on the runtime's local ready queue and defers the
//! driver (no lock, no syscall), or — from another thread — pushes it on the runtime's
//! remote queue and activates the driver through the base's [`Handle`] (a mutex and, while
//! the loop sleeps, one coalesced eventfd write). The driver is a deferred callback of the
//! base: it takes the remote queue, polls the ready tasks — and those their polls wake, up
//! to 64 polls, then the backend gets its turn — and applies the registrations the polls
//! asked for (see `io.rs`), all with `&mut EventBase` in hand.

use super::io::Ops;
pub use super::task_cell::JoinError;
use super::task_cell::{new_task, JoinSide, Task};
use crate::sys::thread_bound::this_thread;
use crate::{Event, EventBase, Handle, LocalHandle, What};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

/// A task's place in its runtime: slot index and the slot's generation then.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TaskId {
    slot: u32,
    gen: u32,
}

/// A task's one allocation (future, output, join waker), as its slot sees it.
type TaskRef = Pin<Rc<dyn Task>>;

struct Slot {
    gen: u32,
    /// The task, out of the slot while it is being polled.
    task: Option<TaskRef>,
    /// Kept when the task ends: the slot's next task reuses it if nobody else holds a
    /// clone (so a spawn in steady state allocates only its task).
    waker: Option<Arc<TaskWaker>>,
    /// `abort` came while the future was out being polled: drop it when it comes back.
    aborted: bool,
    live: bool,
}

/// What other threads reach of a runtime (through its tasks' wakers).
struct Remote {
    id: u64,
    thread: u64,
    queue: Mutex<Vec<TaskId>>,
    pending: AtomicBool,
    handle: Handle,
    driver: Event,
    closed: AtomicBool,
}

struct TaskWaker {
    task: TaskId,
    scheduled: AtomicBool,
    remote: Arc<Remote>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let r = &self.remote;
        if r.closed.load(Ordering::Acquire) {
            return;
        }
        if this_thread() == r.thread {
            with_runtime(r.id, |rt| rt.schedule(self.task));
        } else {
            r.queue
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(self.task);
            if !r.pending.swap(true, Ordering::AcqRel) {
                // A base that is gone cannot run the task any more: nothing to do.
                let _ = r.handle.activate(r.driver, What::empty(), 1);
            }
        }
    }
}

/// The loop-thread side of a runtime.
pub(crate) struct Inner {
    id: u64,
    tasks: RefCell<Vec<Slot>>,
    free: RefCell<Vec<u32>>,
    ready: RefCell<VecDeque<TaskId>>,
    /// The driver is deferred already (until it starts).
    scheduled: Cell<bool>,
    local: LocalHandle,
    remote: Arc<Remote>,
    live: Cell<usize>,
    /// The driver is running (it applies queued registrations when its polls are done).
    in_drive: Cell<bool>,
    /// Shared with the driver, which applies what is left after the runtime is dropped.
    ops: Rc<Ops>,
    /// The task `block_on` waits for, and whether it has ended (the driver then breaks
    /// the loop, which other ready tasks would keep running).
    target: Cell<Option<TaskId>>,
    target_done: Cell<bool>,
}

static NEXT_RUNTIME: AtomicU64 = AtomicU64::new(1);

/// Polls one run of the driver may make before the loop polls the backend again (tokio's
/// current-thread scheduler checks its I/O driver every 61 ticks).
const POLL_BUDGET: usize = 64;

/// In debug builds, a poll longer than this is logged: the task blocks the loop's thread.
#[cfg(debug_assertions)]
const SLOW_POLL: std::time::Duration = std::time::Duration::from_millis(100);

thread_local! {
    /// This thread's runtimes; the last one is where free functions (`spawn`, `Async::new`,
    /// `sleep`) go: the one whose driver runs, else the newest.
    static RUNTIMES: RefCell<Vec<Rc<Inner>>> = const { RefCell::new(Vec::new()) };
}

fn with_runtime<R>(id: u64, f: impl FnOnce(&Rc<Inner>) -> R) -> Option<R> {
    let rt = RUNTIMES.with(|r| r.borrow().iter().rev().find(|i| i.id == id).cloned())?;
    Some(f(&rt))
}

/// The runtime free functions use on this thread.
pub(crate) fn current() -> io::Result<Rc<Inner>> {
    RUNTIMES
        .with(|r| r.borrow().last().cloned())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "no evrs runtime on this thread (make one with rt::Runtime::new)",
            )
        })
}

/// Makes `rt` the current runtime while `f` runs.
fn entered<R>(rt: &Rc<Inner>, f: impl FnOnce() -> R) -> R {
    struct Leave(u64);
    impl Drop for Leave {
        fn drop(&mut self) {
            RUNTIMES.with(|r| {
                let mut r = r.borrow_mut();
                if let Some(i) = r.iter().rposition(|i| i.id == self.0) {
                    let rt = r.remove(i);
                    r.insert(0, rt);
                }
            });
        }
    }
    RUNTIMES.with(|r| {
        let mut r = r.borrow_mut();
        if let Some(i) = r.iter().position(|i| i.id == rt.id) {
            let me = r.remove(i);
            r.push(me);
        }
    });
    let _leave = Leave(rt.id);
    f()
}

impl Inner {
    /// Queues `task` to be polled and makes sure the driver runs.
    fn schedule(&self, task: TaskId) {
        self.ready.borrow_mut().push_back(task);
        self.wake_driver();
    }

    /// The driver runs in the loop's callback pass (no lock, no syscall). While it runs,
    /// nothing: it re-arms itself for the next iteration when it is done.
    pub(crate) fn wake_driver(&self) {
        if !self.in_drive.get() && !self.scheduled.replace(true) {
            let _ = self.local.defer(self.remote.driver);
        }
    }

    /// Queues a registration for the driver (which runs it with `&mut EventBase`).
    pub(crate) fn queue_op(&self, op: super::io::Op) {
        self.ops.push(op);
        if !self.in_drive.get() {
            self.wake_driver();
        }
    }

    fn spawn_task(&self, task: TaskRef) -> TaskId {
        let mut tasks = self.tasks.borrow_mut();
        let slot = match self.free.borrow_mut().pop() {
            Some(i) => i,
            None => {
                tasks.push(Slot {
                    gen: 0,
                    task: None,
                    waker: None,
                    aborted: false,
                    live: false,
                });
                (tasks.len() - 1) as u32
            }
        };
        let s = &mut tasks[slot as usize];
        let id = TaskId { slot, gen: s.gen };
        s.task = Some(task);
        s.aborted = false;
        s.live = true;
        match s.waker.as_mut().and_then(Arc::get_mut) {
            Some(w) => {
                // Nobody else holds this waker: it cannot wake the old task any more.
                w.task = id;
                *w.scheduled.get_mut() = true;
            }
            None => {
                s.waker = Some(Arc::new(TaskWaker {
                    task: id,
                    scheduled: AtomicBool::new(true),
                    remote: self.remote.clone(),
                }))
            }
        }
        drop(tasks);
        self.live.set(self.live.get() + 1);
        self.schedule(id);
        id
    }

    /// Ends task `id`: its slot is freed; returns its task (to fail or drop outside the
    /// borrow).
    fn retire(&self, id: TaskId) -> Option<TaskRef> {
        let mut tasks = self.tasks.borrow_mut();
        let s = tasks.get_mut(id.slot as usize)?;
        if !s.live || s.gen != id.gen {
            return None;
        }
        s.live = false;
        s.gen = s.gen.wrapping_add(1);
        if self.target.get() == Some(id) {
            self.target_done.set(true);
        }
        let out = s.task.take();
        drop(tasks);
        self.free.borrow_mut().push(id.slot);
        self.live.set(self.live.get() - 1);
        out
    }

    /// Cancels task `id`: its future is dropped now (or, if it is being polled, as soon as
    /// the poll returns).
    pub(crate) fn abort(&self, id: TaskId) {
        let mut tasks = self.tasks.borrow_mut();
        let Some(s) = tasks.get_mut(id.slot as usize) else {
            return;
        };
        if !s.live || s.gen != id.gen {
            return;
        }
        if s.task.is_none() {
            s.aborted = true;
            return;
        }
        drop(tasks);
        if let Some(task) = self.retire(id) {
            task.as_ref().fail(None);
        }
    }

    /// One poll of task `id`.
    fn poll_task(&self, id: TaskId) {
        let (task, waker) = {
            let mut tasks = self.tasks.borrow_mut();
            let Some(s) = tasks.get_mut(id.slot as usize) else {
                return;
            };
            if !s.live || s.gen != id.gen {
                return;
            }
            let (Some(task), Some(w)) = (s.task.take(), s.waker.clone()) else {
                return;
            };
            (task, w)
        };
        waker.scheduled.store(false, Ordering::Release);
        let w = Waker::from(waker);
        let mut cx = Context::from_waker(&w);
        #[cfg(debug_assertions)]
        let t0 = std::time::Instant::now();
        let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            task.as_ref().poll_task(&mut cx)
        }));
        #[cfg(debug_assertions)]
        if t0.elapsed() > SLOW_POLL {
            log::warn!(
                "evrs::rt: a task's poll took {:?}: it blocks the loop's thread (use \
                 spawn_blocking, or await instead of blocking)",
                t0.elapsed()
            );
        }
        let aborted = {
            let mut tasks = self.tasks.borrow_mut();
            let s = &mut tasks[id.slot as usize];
            match res {
                Ok(Poll::Pending) if !s.aborted => {
                    s.task = Some(task);
                    return;
                }
                _ => s.aborted,
            }
        };
        self.retire(id);
        match res {
            Err(p) => task.as_ref().fail(Some(p)),
            Ok(Poll::Pending) if aborted => task.as_ref().fail(None),
            Ok(_) => {}
        }
    }

    /// The driver: remote wakes, then the tasks ready when it started, then the
    /// registrations they asked for.
    fn drive(self: &Rc<Self>, base: &mut EventBase) {
        self.scheduled.set(false);
        if self.remote.pending.swap(false, Ordering::AcqRel) {
            let mut q = self.remote.queue.lock().unwrap_or_else(|e| e.into_inner());
            self.ready.borrow_mut().extend(q.drain(..));
        }
        self.in_drive.set(true);
        entered(self, || {
            // The tasks ready now, then those their polls woke, up to a budget: a task
            // that yields is polled again without a trip through the backend, but a run
            // of yields gives the backend its turn every `POLL_BUDGET` polls.
            let mut budget = POLL_BUDGET;
            while budget > 0 {
                let batch = self.ready.borrow().len().min(budget);
                if batch == 0 {
                    break;
                }
                budget -= batch;
                for _ in 0..batch {
                    let Some(id) = self.ready.borrow_mut().pop_front() else {
                        break;
                    };
                    self.poll_task(id);
                }
                if self.target_done.get() {
                    break;
                }
            }
        });
        self.ops.apply(base);
        self.in_drive.set(false);
        if self.target_done.replace(false) {
            base.loopbreak();
        }
        if !self.ready.borrow().is_empty() && !self.scheduled.replace(true) {
            // Tasks woken by the polls run in the next iteration, after the backend was
            // polled: a task that keeps yielding cannot starve I/O (or make a pass endless).
            let _ = base.activate_later(self.remote.driver, What::empty());
        }
    }
}

/// A single-threaded async executor on an [`EventBase`]: tasks (`!Send` allowed) run on the
/// loop thread, between the base's other callbacks, woken by readiness, timers and wakers
/// from any thread.
///
/// ```
/// use evrs::{rt, EventBase};
/// let mut base = EventBase::new()?;
/// let rt = rt::Runtime::new(&mut base)?;
/// let answer = rt.block_on(&mut base, async {
///     let task = rt::spawn(async { 6 * 7 }).unwrap();
///     task.await.unwrap()
/// })?;
/// assert_eq!(answer, 42);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Runtime {
    inner: Rc<Inner>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("tasks", &self.inner.live.get())
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// A runtime on `base` (its driver is a deferred callback of the base); it becomes the
    /// current runtime of this thread for [`spawn`](super::spawn), [`Async::new`](super::Async::new)
    /// and [`sleep`](super::sleep).
    pub fn new(base: &mut EventBase) -> io::Result<Runtime> {
        let id = NEXT_RUNTIME.fetch_add(1, Ordering::Relaxed);
        let handle = base.handle()?;
        let local = base.local_handle();
        let cell: Rc<RefCell<Option<std::rc::Weak<Inner>>>> = Rc::new(RefCell::new(None));
        let c = cell.clone();
        let ops = Rc::new(Ops::default());
        let o = ops.clone();
        let driver = base.new_deferred(0, move |base, ev, _| {
            let rt = c.borrow().as_ref().and_then(|w| w.upgrade());
            match rt {
                Some(rt) => rt.drive(base),
                None => {
                    // The runtime was dropped: release what its tasks left, then the driver.
                    o.apply(base);
                    let _ = base.free(ev);
                }
            }
        })?;
        let inner = Rc::new(Inner {
            id,
            tasks: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
            ready: RefCell::new(VecDeque::new()),
            scheduled: Cell::new(false),
            local,
            remote: Arc::new(Remote {
                id,
                thread: this_thread(),
                queue: Mutex::new(Vec::new()),
                pending: AtomicBool::new(false),
                handle,
                driver,
                closed: AtomicBool::new(false),
            }),
            live: Cell::new(0),
            in_drive: Cell::new(false),
            ops,
            target: Cell::new(None),
            target_done: Cell::new(false),
        });
        *cell.borrow_mut() = Some(Rc::downgrade(&inner));
        RUNTIMES.with(|r| r.borrow_mut().push(inner.clone()));
        Ok(Runtime { inner })
    }

    /// Starts `fut` as a task; it runs when the base's loop runs.
    pub fn spawn<T: 'static>(&self, fut: impl Future<Output = T> + 'static) -> JoinHandle<T> {
        spawn_on(&self.inner, fut)
    }

    /// Runs the base's loop until `fut` (run as a task) finishes, and returns its output;
    /// other tasks and callbacks run meanwhile. A panic in `fut` resumes here.
    pub fn block_on<T: 'static>(
        &self,
        base: &mut EventBase,
        fut: impl Future<Output = T> + 'static,
    ) -> io::Result<T> {
        let task = self.spawn(fut);
        let outer = self.inner.target.replace(Some(task.id));
        let r = self.wait_for(base, &task);
        self.inner.target.set(outer);
        r
    }

    fn wait_for<T>(&self, base: &mut EventBase, task: &JoinHandle<T>) -> io::Result<T> {
        loop {
            if let Some(r) = task.try_take() {
                return match r {
                    Ok(v) => Ok(v),
                    Err(JoinError::Panicked(p)) => std::panic::resume_unwind(p),
                    Err(e) => Err(io::Error::other(e.to_string())),
                };
            }
            base.run(crate::LoopFlags::ONCE | crate::LoopFlags::NO_EXIT_ON_EMPTY)?;
        }
    }

    /// Runs the base's loop without blocking until no task is ready; returns how many
    /// tasks are left (waiting for I/O, a timer or a waker). A task that keeps waking
    /// itself never lets it return.
    pub fn run_until_stalled(&self, base: &mut EventBase) -> io::Result<usize> {
        while self.inner.scheduled.get() || !self.inner.ready.borrow().is_empty() {
            base.run(crate::LoopFlags::NONBLOCK)?;
        }
        Ok(self.inner.live.get())
    }

    /// Tasks that have not finished.
    pub fn tasks(&self) -> usize {
        self.inner.live.get()
    }

    /// Drops the runtime with every task, and releases at once the events their I/O and
    /// timers held (a plain drop leaves that, and the driver's own event, to the base's
    /// next loop pass).
    pub fn shutdown(self, base: &mut EventBase) {
        let ops = self.inner.ops.clone();
        let driver = self.inner.remote.driver;
        drop(self);
        ops.apply(base);
        let _ = base.free(driver);
    }
}

impl Drop for Runtime {
    /// Drops every task's future here, on the loop thread; their `JoinHandle`s report
    /// [`JoinError::Cancelled`], and wakers called afterwards do nothing.
    fn drop(&mut self) {
        self.inner.remote.closed.store(true, Ordering::Release);
        RUNTIMES.with(|r| r.borrow_mut().retain(|i| i.id != self.inner.id));
        let ids: Vec<TaskId> = {
            let tasks = self.inner.tasks.borrow();
            tasks
                .iter()
                .enumerate()
                .filter(|(_, s)| s.live)
                .map(|(i, s)| TaskId {
                    slot: i as u32,
                    gen: s.gen,
                })
                .collect()
        };
        for id in ids {
            self.inner.abort(id);
        }
        // What the dropped futures released is applied by the driver's last run.
        let _ = self.inner.local.defer(self.inner.remote.driver);
    }
}

/// Starts `fut` as a task on this thread's current runtime (inside a task: its own).
pub fn spawn<T: 'static>(fut: impl Future<Output = T> + 'static) -> io::Result<JoinHandle<T>> {
    Ok(spawn_on(&current()?, fut))
}

fn spawn_on<T: 'static>(rt: &Rc<Inner>, fut: impl Future<Output = T> + 'static) -> JoinHandle<T> {
    let cell = new_task(fut);
    let id = rt.spawn_task(cell.clone());
    JoinHandle {
        rt: Rc::downgrade(rt),
        id,
        cell,
        detached: false,
    }
}

/// A spawned task: await it for the task's output. Dropping it cancels the task (its
/// future is dropped) unless it was [`detach`](Self::detach)ed.
pub struct JoinHandle<T> {
    rt: std::rc::Weak<Inner>,
    id: TaskId,
    cell: Pin<Rc<dyn JoinSide<T>>>,
    detached: bool,
}

impl<T> std::fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.is_finished())
            .finish_non_exhaustive()
    }
}

impl<T> JoinHandle<T> {
    /// Lets the task run to its end with nobody awaiting it.
    pub fn detach(mut self) {
        self.detached = true;
    }

    /// Cancels the task: its future is dropped (at once, or when its running poll returns);
    /// awaiting the handle then gives [`JoinError::Cancelled`].
    pub fn abort(&self) {
        if let Some(rt) = self.rt.upgrade() {
            rt.abort(self.id);
        }
    }

    /// Has the task finished (with output, a panic or cancelled)?
    pub fn is_finished(&self) -> bool {
        self.cell.is_finished()
    }

    fn try_take(&self) -> Option<Result<T, JoinError>> {
        self.cell.as_ref().try_take()
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(r) = self.try_take() {
            return Poll::Ready(r);
        }
        self.cell.set_join_waker(cx.waker());
        Poll::Pending
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        if !self.detached && !self.is_finished() {
            self.abort();
        }
    }
}
