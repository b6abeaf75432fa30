//! The backend contract ([`Poller`]) and the one place that picks between the selectors in
//! `sys/`. A backend tells the kernel about interest changes and fills a reused buffer of
//! [`Polled`] entries: fd readiness (epoll, poll, select) or completions (a token, a result
//! and flags: the shape io_uring needs). Batching of changes, fork re-initialization and
//! detached waits (for [`SharedBase`](crate::SharedBase), which waits with its lock released)
//! are part of the contract: every backend says what it does for each.
//!
//! [`Backend`] is an enum over the implementations, so the loop's calls are static (one
//! predictable branch, no vtable) on the hot path.

#[cfg(test)]
pub(crate) mod scripted;

use crate::flags::Method;
use crate::sys::{self};
pub(crate) use crate::sys::{Polled, Sink};
use std::io;
use std::os::unix::io::RawFd;
use std::time::Duration;

/// What every backend implements.
pub(crate) trait Poller {
    /// The wait a [`SharedBase`](crate::SharedBase) loop runs without the base's lock.
    type Detached: DetachedWait;

    fn method(&self) -> Method;

    /// An fd's combined interest changes from `old` to `new` (0 = none). Errors for an fd
    /// the kernel refuses (closed, not pollable) are returned here where the backend can
    /// know them.
    fn change(&mut self, fd: RawFd, old: u8, new: u8) -> io::Result<()>;

    /// While `on` (the loop is running callbacks), changes may be batched until the next
    /// poll; turning it off applies them at once.
    fn set_batching(&mut self, on: bool);

    /// Applies batched changes, waits at most `timeout` (`None`: forever) and appends what
    /// happened to `out`. An interrupted wait returns `Ok` with nothing added.
    fn poll(&mut self, timeout: Option<Duration>, out: &mut Vec<Polled>) -> io::Result<()>;

    /// [`poll`](Self::poll), handing each entry to `sink` instead (`scratch` is a buffer
    /// for backends that collect first, left empty). Epoll hands its reports over as it
    /// reads them from the kernel's buffer.
    #[inline]
    fn poll_each(
        &mut self,
        timeout: Option<Duration>,
        scratch: &mut Vec<Polled>,
        sink: &mut impl Sink,
    ) -> io::Result<()> {
        let res = self.poll(timeout, scratch);
        for &p in scratch.iter() {
            sink.take(p);
        }
        scratch.clear();
        res
    }

    /// Applies batched changes and gives `w` what a wait needs, so it can run while other
    /// threads change this backend (they wake the waiter afterwards).
    fn detach(&mut self, w: &mut Self::Detached);

    /// In a forked child: replaces kernel state shared with the parent, keeping interest.
    fn reinit(&mut self) -> io::Result<()>;

    /// Kernel interest-set updates issued so far (0 where interest lives in user space).
    fn ctl_calls(&self) -> u64;

    /// The interest the backend holds for `fd` (for `verify`); ET only where supported.
    fn interest(&self, fd: RawFd) -> u8;

    /// Turns what a detached wait appended into readiness before it is absorbed (a wait
    /// without the lock may only copy raw results; io_uring's need the selector's state).
    fn settle(&mut self, _polled: &mut Vec<Polled>) {}
}

/// A wait detached from its backend.
pub(crate) trait DetachedWait: Send {
    fn wait(&mut self, timeout: Option<Duration>, out: &mut Vec<Polled>) -> io::Result<()>;
}

impl Poller for sys::epoll::Selector {
    type Detached = sys::epoll::Waiter;
    fn method(&self) -> Method {
        Method::Epoll
    }
    #[inline]
    fn change(&mut self, fd: RawFd, old: u8, new: u8) -> io::Result<()> {
        sys::epoll::Selector::change(self, fd, old, new)
    }
    fn set_batching(&mut self, on: bool) {
        self.set_deferring(on);
    }
    #[inline]
    fn poll(&mut self, timeout: Option<Duration>, out: &mut Vec<Polled>) -> io::Result<()> {
        self.dispatch(timeout, out)
    }
    #[inline]
    fn poll_each(
        &mut self,
        timeout: Option<Duration>,
        _scratch: &mut Vec<Polled>,
        sink: &mut impl Sink,
    ) -> io::Result<()> {
        self.dispatch_each(timeout, sink)
    }
    fn detach(&mut self, w: &mut Self::Detached) {
        self.prepare_wait(w)
    }
    fn reinit(&mut self) -> io::Result<()> {
        sys::epoll::Selector::reinit(self)
    }
    fn ctl_calls(&self) -> u64 {
        self.ctl_calls
    }
    fn interest(&self, fd: RawFd) -> u8 {
        self.wanted(fd)
    }
}

impl DetachedWait for sys::epoll::Waiter {
    fn wait(&mut self, timeout: Option<Duration>, out: &mut Vec<Polled>) -> io::Result<()> {
        sys::epoll::Waiter::wait(self, timeout, out)
    }
}

impl Poller for sys::poll::Selector {
    type Detached = sys::poll::Waiter;
    fn method(&self) -> Method {
        Method::Poll
    }
    #[inline]
    fn change(&mut self, fd: RawFd, old: u8, new: u8) -> io::Result<()> {
        sys::poll::Selector::change(self, fd, old, new)
    }
    /// poll(2) takes the whole set at every call: nothing to batch.
    fn set_batching(&mut self, _on: bool) {}
    #[inline]
    fn poll(&mut self, timeout: Option<Duration>, out: &mut Vec<Polled>) -> io::Result<()> {
        self.dispatch(timeout, out)
    }
    fn detach(&mut self, w: &mut Self::Detached) {
        self.prepare_wait(w)
    }
    /// The pollfd array lives in user space: nothing is shared with the parent.
    fn reinit(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn ctl_calls(&self) -> u64 {
        0
    }
    fn interest(&self, fd: RawFd) -> u8 {
        self.wanted(fd)
    }
}

impl DetachedWait for sys::poll::Waiter {
    fn wait(&mut self, timeout: Option<Duration>, out: &mut Vec<Polled>) -> io::Result<()> {
        sys::poll::Waiter::wait(self, timeout, out)
    }
}

impl Poller for sys::select::Selector {
    type Detached = Box<sys::select::Waiter>;
    fn method(&self) -> Method {
        Method::Select
    }
    #[inline]
    fn change(&mut self, fd: RawFd, old: u8, new: u8) -> io::Result<()> {
        sys::select::Selector::change(self, fd, old, new)
    }
    /// select(2) takes the whole set at every call: nothing to batch.
    fn set_batching(&mut self, _on: bool) {}
    #[inline]
    fn poll(&mut self, timeout: Option<Duration>, out: &mut Vec<Polled>) -> io::Result<()> {
        self.dispatch(timeout, out)
    }
    fn detach(&mut self, w: &mut Self::Detached) {
        self.prepare_wait(w)
    }
    /// The fd sets live in user space: nothing is shared with the parent.
    fn reinit(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn ctl_calls(&self) -> u64 {
        0
    }
    fn interest(&self, fd: RawFd) -> u8 {
        self.wanted(fd)
    }
}

impl Poller for sys::uring::Selector {
    type Detached = sys::uring::Waiter;
    fn method(&self) -> Method {
        Method::IoUring
    }
    #[inline]
    fn change(&mut self, fd: RawFd, old: u8, new: u8) -> io::Result<()> {
        sys::uring::Selector::change(self, fd, old, new)
    }
    /// Changes wait for the next `io_uring_enter` (one call submits and waits); a removal
    /// outside a loop is submitted at once (see the selector).
    fn set_batching(&mut self, on: bool) {
        sys::uring::Selector::set_batching(self, on)
    }
    #[inline]
    fn poll(&mut self, timeout: Option<Duration>, out: &mut Vec<Polled>) -> io::Result<()> {
        self.dispatch(timeout, out)
    }
    #[inline]
    fn poll_each(
        &mut self,
        timeout: Option<Duration>,
        _scratch: &mut Vec<Polled>,
        sink: &mut impl Sink,
    ) -> io::Result<()> {
        self.dispatch_each(timeout, sink)
    }
    fn detach(&mut self, w: &mut Self::Detached) {
        self.prepare_wait(w)
    }
    fn reinit(&mut self) -> io::Result<()> {
        sys::uring::Selector::reinit(self)
    }
    fn ctl_calls(&self) -> u64 {
        self.ctl_calls
    }
    fn interest(&self, fd: RawFd) -> u8 {
        self.wanted(fd)
    }
    fn settle(&mut self, polled: &mut Vec<Polled>) {
        sys::uring::Selector::settle(self, polled)
    }
}

impl DetachedWait for sys::uring::Waiter {
    fn wait(&mut self, timeout: Option<Duration>, out: &mut Vec<Polled>) -> io::Result<()> {
        sys::uring::Waiter::wait(self, timeout, out)
    }
}

impl DetachedWait for Box<sys::select::Waiter> {
    fn wait(&mut self, timeout: Option<Duration>, out: &mut Vec<Polled>) -> io::Result<()> {
        sys::select::Waiter::wait(self, timeout, out)
    }
}

/// A boxed backend is a backend (select's two fd_sets are kept off the base's cache lines).
impl<P: Poller> Poller for Box<P> {
    type Detached = P::Detached;
    fn method(&self) -> Method {
        (**self).method()
    }
    #[inline]
    fn change(&mut self, fd: RawFd, old: u8, new: u8) -> io::Result<()> {
        (**self).change(fd, old, new)
    }
    fn set_batching(&mut self, on: bool) {
        (**self).set_batching(on)
    }
    #[inline]
    fn poll(&mut self, timeout: Option<Duration>, out: &mut Vec<Polled>) -> io::Result<()> {
        (**self).poll(timeout, out)
    }
    fn detach(&mut self, w: &mut Self::Detached) {
        (**self).detach(w)
    }
    fn reinit(&mut self) -> io::Result<()> {
        (**self).reinit()
    }
    fn ctl_calls(&self) -> u64 {
        (**self).ctl_calls()
    }
    fn interest(&self, fd: RawFd) -> u8 {
        (**self).interest(fd)
    }
    fn settle(&mut self, polled: &mut Vec<Polled>) {
        (**self).settle(polled)
    }
}

/// Every backend a base can run on.
pub(crate) enum Backend {
    Epoll(sys::epoll::Selector),
    Poll(sys::poll::Selector),
    // Boxed: two fd_sets make it large, and it is the rarely used fallback.
    Select(Box<sys::select::Selector>),
    IoUring(sys::uring::Selector),
    #[cfg(test)]
    Scripted(scripted::Scripted),
}

/// A detached wait of any backend.
pub(crate) enum Waiter {
    None,
    Epoll(sys::epoll::Waiter),
    Poll(sys::poll::Waiter),
    Select(Box<sys::select::Waiter>),
    IoUring(sys::uring::Waiter),
    #[cfg(test)]
    Scripted(scripted::ScriptedWait),
}

/// Runs `$e` with `$b` bound to the backend inside `$self`.
macro_rules! each {
    ($self:expr, $b:ident => $e:expr) => {
        match $self {
            Backend::Epoll($b) => $e,
            Backend::Poll($b) => $e,
            Backend::Select($b) => $e,
            Backend::IoUring($b) => $e,
            #[cfg(test)]
            Backend::Scripted($b) => $e,
        }
    };
}

impl Backend {
    pub(crate) fn new(method: Method, changelist: bool) -> io::Result<Backend> {
        Ok(match method {
            Method::Epoll => Backend::Epoll(sys::epoll::Selector::new(changelist)?),
            Method::Poll => Backend::Poll(sys::poll::Selector::new()),
            Method::Select => Backend::Select(Box::new(sys::select::Selector::new())),
            Method::IoUring => Backend::IoUring(sys::uring::Selector::new()?),
        })
    }

    pub(crate) fn method(&self) -> Method {
        each!(self, b => b.method())
    }

    #[inline]
    pub(crate) fn change(&mut self, fd: RawFd, old: u8, new: u8) -> io::Result<()> {
        each!(self, b => Poller::change(b, fd, old, new))
    }

    pub(crate) fn set_batching(&mut self, on: bool) {
        each!(self, b => b.set_batching(on))
    }

    /// See [`Poller::poll_each`].
    #[inline]
    pub(crate) fn poll_each(
        &mut self,
        timeout: Option<Duration>,
        scratch: &mut Vec<Polled>,
        sink: &mut impl Sink,
    ) -> io::Result<()> {
        each!(self, b => Poller::poll_each(b, timeout, scratch, sink))
    }

    pub(crate) fn reinit(&mut self) -> io::Result<()> {
        each!(self, b => Poller::reinit(b))
    }

    pub(crate) fn ctl_calls(&self) -> u64 {
        each!(self, b => b.ctl_calls())
    }

    pub(crate) fn interest(&self, fd: RawFd) -> u8 {
        each!(self, b => b.interest(fd))
    }

    /// See [`Poller::settle`].
    pub(crate) fn settle(&mut self, polled: &mut Vec<Polled>) {
        each!(self, b => b.settle(polled))
    }

    /// Readies `w` for a wait without the lock (re-made if it was for another backend).
    pub(crate) fn detach(&mut self, w: &mut Waiter) {
        match (self, &mut *w) {
            (Backend::Epoll(b), Waiter::Epoll(x)) => b.detach(x),
            (Backend::Poll(b), Waiter::Poll(x)) => b.detach(x),
            (Backend::Select(b), Waiter::Select(x)) => b.detach(x),
            (Backend::IoUring(b), Waiter::IoUring(x)) => b.detach(x),
            #[cfg(test)]
            (Backend::Scripted(b), Waiter::Scripted(x)) => b.detach(x),
            (b, w) => {
                *w = match b {
                    Backend::Epoll(_) => Waiter::Epoll(sys::epoll::Waiter::new()),
                    Backend::Poll(_) => Waiter::Poll(sys::poll::Waiter::new()),
                    Backend::Select(_) => Waiter::Select(Box::new(sys::select::Waiter::new())),
                    Backend::IoUring(_) => Waiter::IoUring(sys::uring::Waiter::new()),
                    #[cfg(test)]
                    Backend::Scripted(_) => Waiter::Scripted(scripted::ScriptedWait::default()),
                };
                b.detach(w);
            }
        }
    }
}

impl Waiter {
    /// Waits (no lock held) and appends what happened to `out`.
    pub(crate) fn wait(
        &mut self,
        timeout: Option<Duration>,
        out: &mut Vec<Polled>,
    ) -> io::Result<()> {
        match self {
            Waiter::None => Err(io::Error::other("wait was not prepared")),
            Waiter::Epoll(w) => w.wait(timeout, out),
            Waiter::Poll(w) => w.wait(timeout, out),
            Waiter::Select(w) => w.wait(timeout, out),
            Waiter::IoUring(w) => w.wait(timeout, out),
            #[cfg(test)]
            Waiter::Scripted(w) => w.wait(timeout, out),
        }
    }
}
