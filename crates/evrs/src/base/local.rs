//! [`LocalHandle`]: reaching the loop from code on its own thread that holds no
//! `&mut EventBase` — an executor's waker, a buffer's deferred-callback scheduler. A request
//! is a push onto a same-thread queue (`Rc` + `Cell`/`RefCell`: no lock, no atomic, no
//! syscall); the loop takes the queue before it decides how long to wait and after every
//! callback, so a request made while callbacks run is served without another poll.

use super::{EventBase, Local};
use crate::event::Event;
use crate::flags::What;
use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;

/// A same-thread queue of activation requests.
#[derive(Default)]
pub(crate) struct Queue {
    requests: RefCell<Vec<(Event, What)>>,
    pending: Cell<bool>,
    /// The base is gone.
    closed: Cell<bool>,
    base: Cell<u32>,
}

/// The base's side: the queue, made on first use.
#[derive(Default)]
pub struct LocalState {
    queue: Option<Rc<Queue>>,
    scratch: Vec<(Event, What)>,
    /// Requests were taken since the loop last decided how long to wait (a `wake` made in
    /// a callback must keep the next poll from blocking).
    woken: bool,
    /// The state of the layers built on this base (bufferevents, listeners).
    pub(super) ext: super::ext::Extensions,
    /// The caller's lock the loop releases around its wait, if one is installed.
    pub(super) unlocking: Option<Box<super::wait_lock::Unlocking>>,
}

impl Drop for LocalState {
    fn drop(&mut self) {
        if let Some(q) = &self.queue {
            q.closed.set(true);
            q.requests.borrow_mut().clear();
        }
    }
}

/// A `!Send`, cheap-to-clone handle to an [`EventBase`] for code on the loop's own thread
/// that has no `&mut EventBase` (an executor's `Waker`, a buffer's scheduler): activate
/// events or wake the loop with no lock, no atomic operation and no syscall. Requests are
/// served before the loop next decides to wait (and after the callback that made them),
/// in the order made; a request for an event freed meanwhile is dropped. Other threads use
/// [`Handle`](crate::Handle).
///
/// ```
/// use evrs::{EventBase, What};
/// let mut base = EventBase::new()?;
/// let local = base.local_handle();
/// let ev = base.new_timer(|base, _ev, _what| base.loopbreak())?;
/// let t = base.new_timer(move |_base, _ev, _what| local.activate(ev, What::TIMEOUT).unwrap())?;
/// base.activate(t, What::TIMEOUT, 1)?;
/// base.dispatch()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct LocalHandle {
    queue: Rc<Queue>,
}

impl std::fmt::Debug for LocalHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalHandle")
            .field("base", &self.queue.base.get())
            .finish_non_exhaustive()
    }
}

impl LocalHandle {
    fn open(&self) -> io::Result<()> {
        if self.queue.closed.get() {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the event base behind this local handle was dropped",
            ));
        }
        Ok(())
    }

    /// Makes `ev` active with `what` (as [`EventBase::activate`], applied when the loop next
    /// takes requests; repeats before then just add bits).
    pub fn activate(&self, ev: Event, what: What) -> io::Result<()> {
        self.open()?;
        if ev.base != self.queue.base.get() {
            return Err(crate::reactor::invalid(
                "event belongs to another event base than this local handle's",
            ));
        }
        self.queue.requests.borrow_mut().push((ev, what));
        self.queue.pending.set(true);
        Ok(())
    }

    /// Schedules a deferred callback (made with [`EventBase::new_deferred`]): it runs once
    /// at its priority in the loop's next callback pass, however many times it was
    /// scheduled before (libevent's `event_deferred_cb_schedule_`).
    pub fn defer(&self, ev: Event) -> io::Result<()> {
        self.activate(ev, What::empty())
    }

    /// Makes the loop run another iteration without blocking (nothing else).
    pub fn wake(&self) -> io::Result<()> {
        self.open()?;
        self.queue.pending.set(true);
        Ok(())
    }
}

impl EventBase<Local> {
    /// A deferred callback (libevent's `event_deferred_cb`): an event with no fd, signal or
    /// timeout, at `priority`, scheduled from code on the loop thread with
    /// [`LocalHandle::defer`] (no lock, no atomic, no syscall) or [`EventBase::activate`].
    /// Repeated scheduling before it runs coalesces into one run; it runs in the callback
    /// pass of its priority, in scheduling order among equals. Bufferevents use them for
    /// `DEFER_CALLBACKS`.
    pub fn new_deferred<F>(&mut self, priority: usize, cb: F) -> io::Result<Event>
    where
        F: FnMut(&mut EventBase, Event, What) + 'static,
    {
        let ev = self.new_timer(cb)?;
        if let Err(e) = self.set_priority(ev, priority) {
            let _ = self.free(ev);
            return Err(e);
        }
        Ok(ev)
    }

    /// A same-thread handle to this base (see [`LocalHandle`]).
    pub fn local_handle(&mut self) -> LocalHandle {
        let id = self.id();
        let q = self.local.queue.get_or_insert_with(|| {
            let q = Rc::new(Queue::default());
            q.base.set(id);
            q
        });
        LocalHandle { queue: q.clone() }
    }

    /// Are same-thread requests waiting?
    #[inline(always)]
    pub(crate) fn local_pending(&self) -> bool {
        self.local.queue.as_ref().is_some_and(|q| q.pending.get())
    }

    /// Takes the same-thread requests; `true` if there were any (the loop must not block).
    /// The check is inlined into the dispatch path (one load when no handle exists); the
    /// work is out of line.
    #[inline(always)]
    pub(crate) fn take_local(&mut self) {
        if self.local_pending() {
            self.take_local_requests();
        }
    }

    /// Before the wait: takes waiting requests; `true` if any were taken since the last
    /// wait (then the loop must not block).
    #[inline]
    pub(crate) fn local_woken(&mut self) -> bool {
        self.take_local();
        std::mem::take(&mut self.local.woken)
    }

    #[cold]
    #[inline(never)]
    fn take_local_requests(&mut self) {
        let Some(q) = self.local.queue.clone() else {
            return;
        };
        q.pending.set(false);
        self.local.woken = true;
        let mut reqs = std::mem::take(&mut self.local.scratch);
        std::mem::swap(&mut reqs, &mut *q.requests.borrow_mut());
        for (ev, what) in reqs.drain(..) {
            // A request for an event freed since is dropped, as the docs say.
            let _ = self.core.activate(ev, what, 1);
        }
        self.local.scratch = reqs;
    }
}
