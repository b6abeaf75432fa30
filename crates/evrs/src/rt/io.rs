//! [`Async<T>`]: any `AsFd` I/O object made awaitable on the runtime's base, and the queue
//! of registrations the driver applies.
//!
//! A task's poll has no `&mut EventBase`, so what it asks of the base — watch this fd for
//! reading, arm this timer, free that event — is queued as an [`Op`] (an `Rc` clone, no
//! allocation) and applied by the driver right after its polls, before the loop waits.
//! Each direction of a source has one persistent evrs event, made on first use and added
//! when a task first waits on it, so a task that reads, writes and waits again costs no
//! `epoll_ctl`. Each direction also remembers whether the fd was last seen ready: after
//! `WouldBlock`, or a stream read that returned less than asked (the socket's buffer was
//! drained), the next attempt waits for the event instead of making a system call that
//! would fail.
//!
//! Where the backend has edge-triggering (epoll), the events are edge-triggered (as tokio's
//! and mio's): the kernel reports each fd once per change, not again at every wait while it
//! stays ready, which saves it a re-check of every reported fd per wait. That makes the
//! "last seen ready" state the only memory of a readiness, so two rules keep it truthful:
//! the read event also watches `CLOSED`, and once the peer hung up (no edge will follow) a
//! short read no longer counts as drained; and [`Async::readable`] / [`Async::writable`],
//! which promise level semantics, ask the fd (`poll` with a zero timeout) when an edge was
//! seen and not yet consumed. Without edge-triggering (poll, select) the events are
//! level-triggered, and a callback that finds no task waiting deletes its event (readiness
//! nobody consumes must not spin) until somebody waits again.

use super::task::{current, Inner};
use super::time::TimerSrc;
use crate::{Event, EventBase, Features, What};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

/// A registration for the driver.
pub(crate) enum Op {
    /// Watch `source` for one readiness in direction `dir` (0 read, 1 write).
    Arm(Rc<Source>, usize),
    /// Arm a timer (see `time.rs`).
    Timer(Rc<TimerSrc>),
    /// Watch a signal (see `signal.rs`).
    Signal(Rc<super::signal::SignalSrc>),
    /// Free an event whose owner is gone.
    Free(Event),
    /// Bring a bufferevent up to date with its stream (see `bev.rs`).
    Bev(Rc<super::bev::BevShared>),
}

/// The driver's queue of registrations (kept, so it does not allocate once grown).
#[derive(Default)]
pub(crate) struct Ops {
    queue: RefCell<Vec<Op>>,
    spare: RefCell<Vec<Op>>,
}

impl Ops {
    pub(crate) fn push(&self, op: Op) {
        self.queue.borrow_mut().push(op);
    }

    /// Applies every queued registration (and those queued meanwhile).
    pub(crate) fn apply(&self, base: &mut EventBase) {
        loop {
            let mut ops = std::mem::take(&mut *self.spare.borrow_mut());
            std::mem::swap(&mut ops, &mut *self.queue.borrow_mut());
            if ops.is_empty() {
                *self.spare.borrow_mut() = ops;
                return;
            }
            for op in ops.drain(..) {
                match op {
                    Op::Arm(src, dir) => src.arm(base, dir),
                    Op::Timer(t) => t.arm(base),
                    Op::Signal(s) => s.arm(base),
                    Op::Free(ev) => {
                        let _ = base.free(ev);
                    }
                    Op::Bev(b) => b.sync(base),
                }
            }
            *self.spare.borrow_mut() = ops;
        }
    }
}

/// One direction of a source.
#[derive(Default)]
struct Dir {
    waker: RefCell<Option<Waker>>,
    ev: Cell<Option<Event>>,
    /// An `Arm` is queued or the event is added.
    armed: Cell<bool>,
    /// The fd was not seen unready since the last readiness (attempt the operation).
    unready: Cell<bool>,
    /// Readinesses seen (for [`Async::readable`]'s futures).
    ticks: Cell<u64>,
    /// The base refused the registration (the fd was closed, say).
    error: RefCell<Option<io::Error>>,
    /// The peer hung up or the fd failed (edge-triggered reads only): no later edge will
    /// come, so a short read no longer proves the fd drained.
    closed: Cell<bool>,
}

/// What `Async<T>` shares with its events' callbacks.
pub(crate) struct Source {
    fd: RawFd,
    dirs: [Dir; 2],
    /// The events are edge-triggered (set when the first is made: the backend has ET).
    et: Cell<bool>,
}

impl Source {
    fn arm(self: &Rc<Self>, base: &mut EventBase, dir: usize) {
        let d = &self.dirs[dir];
        if !d.armed.get() {
            return; // disarmed since (its `Async` was dropped)
        }
        let ev = match d.ev.get() {
            Some(ev) => Ok(ev),
            None => {
                let weak = Rc::downgrade(self);
                let et = base.features().contains(Features::ET);
                self.et.set(et);
                let what = match (dir, et) {
                    (0, true) => What::READ | What::CLOSED | What::ET,
                    (0, false) => What::READ,
                    (_, true) => What::WRITE | What::ET,
                    (_, false) => What::WRITE,
                };
                base.new_event(self.fd, what | What::PERSIST, move |base, ev, fired| {
                    match weak.upgrade() {
                        // An edge nobody waits for stays recorded (`unready` cleared) and
                        // costs nothing more: the event stays added.
                        Some(s) if s.ready(dir, fired) || et => {}
                        _ => {
                            // Nobody waits: stop watching until somebody does.
                            let _ = base.del(ev);
                            if let Some(s) = weak.upgrade() {
                                s.dirs[dir].armed.set(false);
                            }
                        }
                    }
                })
            }
        };
        let r = ev.and_then(|ev| {
            d.ev.set(Some(ev));
            base.add(ev, None)
        });
        if let Err(e) = r {
            d.armed.set(false);
            *d.error.borrow_mut() = Some(e);
            if let Some(w) = d.waker.borrow_mut().take() {
                w.wake();
            }
        }
    }

    /// A readiness: wakes the waiting task; false if none waits.
    fn ready(&self, dir: usize, fired: What) -> bool {
        let d = &self.dirs[dir];
        d.ticks.set(d.ticks.get() + 1);
        d.unready.set(false);
        if fired.contains(What::CLOSED) {
            d.closed.set(true);
        }
        let w = d.waker.borrow_mut().take();
        match w {
            Some(w) => {
                w.wake();
                true
            }
            None => false,
        }
    }
}

/// An I/O object (anything with a file descriptor: a socket, a pipe, a tty) made
/// awaitable on the current runtime's base, as async-io's `Async`: the object is switched
/// to non-blocking mode, and [`read_with`](Self::read_with) / [`write_with`](Self::write_with)
/// retry an operation each time the fd is ready until it stops saying `WouldBlock`.
pub struct Async<T: AsFd> {
    io: Option<T>,
    src: Rc<Source>,
    rt: Weak<Inner>,
}

impl<T: AsFd> std::fmt::Debug for Async<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Async")
            .field("fd", &self.src.fd)
            .finish_non_exhaustive()
    }
}

impl<T: AsFd> Async<T> {
    /// Wraps `io` for the current runtime of this thread, switching its fd to non-blocking.
    pub fn new(io: T) -> io::Result<Async<T>> {
        let rt = current()?;
        let fd = io.as_fd().as_raw_fd();
        crate::sys::set_nonblocking(fd)?;
        Ok(Async {
            io: Some(io),
            src: Rc::new(Source {
                fd,
                dirs: Default::default(),
                et: Cell::new(false),
            }),
            rt: Rc::downgrade(&rt),
        })
    }

    /// The object.
    pub fn get_ref(&self) -> &T {
        self.io.as_ref().expect("present until into_inner")
    }

    /// The object, mutably (reading or writing through it directly bypasses the waiting).
    pub fn get_mut(&mut self) -> &mut T {
        self.io.as_mut().expect("present until into_inner")
    }

    /// Unwraps the object (still non-blocking); its events are released.
    pub fn into_inner(mut self) -> T {
        self.release();
        self.io.take().expect("present until into_inner")
    }

    /// Waits until the fd is readable (or reports an error, or hangs up). On the io_uring
    /// backend a readiness may be one already consumed (a spurious wake-up, see
    /// [`Method::IoUring`](crate::Method::IoUring)): an operation after it can still say
    /// `WouldBlock` — [`read_with`](Self::read_with) waits again then.
    pub fn readable(&self) -> Ready<'_, T> {
        Ready {
            io: self,
            dir: 0,
            start: None,
        }
    }

    /// Waits until the fd is writable.
    pub fn writable(&self) -> Ready<'_, T> {
        Ready {
            io: self,
            dir: 1,
            start: None,
        }
    }

    /// Runs `op` until it succeeds or fails with anything but `WouldBlock` (`Interrupted`
    /// is retried at once), waiting for readability in between.
    pub async fn read_with<R>(&self, mut op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        loop {
            match op(self.get_ref()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.src.dirs[0].unready.set(true);
                    self.readable().await?
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => return r,
            }
        }
    }

    /// As [`read_with`](Self::read_with), waiting for writability.
    pub async fn write_with<R>(&self, mut op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        loop {
            match op(self.get_ref()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.src.dirs[1].unready.set(true);
                    self.writable().await?
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => return r,
            }
        }
    }

    /// Polls for readiness in `dir`: `Ready(Ok)` once a readiness came after `since` (a
    /// tick count; `None`: arm and wait), else the task is woken when one comes.
    pub(crate) fn poll_ready(
        &self,
        dir: usize,
        since: Option<u64>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        let d = &self.src.dirs[dir];
        if let Some(e) = d.error.borrow_mut().take() {
            return Poll::Ready(Err(e));
        }
        if since.is_some_and(|t| d.ticks.get() != t) {
            return Poll::Ready(Ok(()));
        }
        let mut w = d.waker.borrow_mut();
        match w.as_ref() {
            Some(old) if old.will_wake(cx.waker()) => {}
            _ => *w = Some(cx.waker().clone()),
        }
        drop(w);
        if !d.armed.replace(true) {
            let Some(rt) = self.rt.upgrade() else {
                d.armed.set(false);
                return Poll::Ready(Err(gone()));
            };
            rt.queue_op(Op::Arm(self.src.clone(), dir));
        }
        Poll::Pending
    }

    fn release(&mut self) {
        let rt = self.rt.upgrade();
        for d in &self.src.dirs {
            d.armed.set(false);
            d.waker.borrow_mut().take();
            if let (Some(ev), Some(rt)) = (d.ev.take(), &rt) {
                rt.queue_op(Op::Free(ev));
            }
        }
    }

    /// Marks direction `dir` unready: the next attempt waits for a readiness first (a
    /// stream read that returned less than asked drained the socket).
    pub(crate) fn drained(&self, dir: usize) {
        let d = &self.src.dirs[dir];
        if !d.closed.get() {
            d.unready.set(true);
        }
    }

    /// One `op` attempt for a `poll_*` method: `WouldBlock` waits for direction `dir`, and
    /// so does a direction known to be unready, without attempting.
    pub(crate) fn poll_op<R>(
        &self,
        dir: usize,
        cx: &mut Context<'_>,
        mut op: impl FnMut(&T) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        let d = &self.src.dirs[dir];
        loop {
            let r = if d.unready.get() {
                Err(io::ErrorKind::WouldBlock.into())
            } else {
                op(self.get_ref())
            };
            match r {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    d.unready.set(true);
                    match self.poll_ready(dir, None, cx) {
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        // (`None` never reports a readiness: only errors are ready.)
                        Poll::Ready(Ok(())) | Poll::Pending => return Poll::Pending,
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => return Poll::Ready(r),
            }
        }
    }
}

impl<T: AsFd> Drop for Async<T> {
    fn drop(&mut self) {
        if self.io.is_some() {
            self.release();
        }
    }
}

pub(crate) fn gone() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the evrs runtime of this Async was dropped",
    )
}

/// The future of [`Async::readable`] / [`Async::writable`].
#[must_use = "futures do nothing unless awaited"]
pub struct Ready<'a, T: AsFd> {
    io: &'a Async<T>,
    dir: usize,
    start: Option<u64>,
}

impl<T: AsFd> std::fmt::Debug for Ready<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ready").field("dir", &self.dir).finish()
    }
}

impl<T: AsFd> Future for Ready<'_, T> {
    type Output = io::Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let (src, dir) = (&self.io.src, self.dir);
        let d = &src.dirs[dir];
        if self.start.is_none() && src.et.get() && d.ticks.get() > 0 && !d.unready.get() {
            // An edge came and was not consumed since: no new one comes while the fd stays
            // ready, so ask it (level semantics, as promised).
            match crate::sys::ready_now(src.fd, dir == 1) {
                Ok(true) => return Poll::Ready(Ok(())),
                Ok(false) => d.unready.set(true),
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        let start = *self.start.get_or_insert(d.ticks.get());
        let r = self.io.poll_ready(self.dir, Some(start), cx);
        if r.is_ready() {
            self.start = None;
        }
        r
    }
}
