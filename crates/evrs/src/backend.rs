//! The one place that picks between the selectors in `sys/`: a plain enum, so the loop's
//! calls are direct (no dynamic dispatch on the hot path).

use crate::flags::Method;
use crate::sys;
use std::io;
use std::os::unix::io::RawFd;
use std::time::Duration;

pub(crate) enum Backend {
    Epoll(sys::epoll::Selector),
    Poll(sys::poll::Selector),
    // Boxed: two fd_sets make it large, and it is the rarely used fallback.
    Select(Box<sys::select::Selector>),
}

impl Backend {
    pub(crate) fn new(method: Method, changelist: bool) -> io::Result<Backend> {
        Ok(match method {
            Method::Epoll => Backend::Epoll(sys::epoll::Selector::new(changelist)?),
            Method::Poll => Backend::Poll(sys::poll::Selector::new()),
            Method::Select => Backend::Select(Box::new(sys::select::Selector::new())),
        })
    }

    pub(crate) fn method(&self) -> Method {
        match self {
            Backend::Epoll(_) => Method::Epoll,
            Backend::Poll(_) => Method::Poll,
            Backend::Select(_) => Method::Select,
        }
    }

    /// An fd's combined interest changes from `old` to `new` (0 = none).
    #[inline]
    pub(crate) fn change(&mut self, fd: RawFd, old: u8, new: u8) -> io::Result<()> {
        match self {
            Backend::Epoll(s) => s.change(fd, old, new),
            Backend::Poll(s) => s.change(fd, old, new),
            Backend::Select(s) => s.change(fd, old, new),
        }
    }

    /// While the loop runs callbacks, the epoll change list batches changes.
    pub(crate) fn set_deferring(&mut self, on: bool) -> io::Result<()> {
        match self {
            Backend::Epoll(s) => s.set_deferring(on),
            _ => Ok(()),
        }
    }

    #[inline]
    pub(crate) fn dispatch(
        &mut self,
        timeout: Option<Duration>,
        ready: &mut Vec<(RawFd, u8)>,
    ) -> io::Result<()> {
        match self {
            Backend::Epoll(s) => s.dispatch(timeout, ready),
            Backend::Poll(s) => s.dispatch(timeout, ready),
            Backend::Select(s) => s.dispatch(timeout, ready),
        }
    }

    /// Readies a detached wait: flushes pending changes and gives `w` what the wait needs
    /// (the epoll fd, or copies of the poll/select sets). `w` is re-made if it was built for
    /// another backend.
    pub(crate) fn prepare_wait(&mut self, w: &mut Waiter) {
        match (self, &mut *w) {
            (Backend::Epoll(s), Waiter::Epoll(x)) => s.prepare_wait(x),
            (Backend::Poll(s), Waiter::Poll(x)) => s.prepare_wait(x),
            (Backend::Select(s), Waiter::Select(x)) => s.prepare_wait(x),
            (b, w) => {
                *w = Waiter::for_method(b.method());
                b.prepare_wait(w);
            }
        }
    }

    /// Rebuilds kernel state in a forked child (only epoll keeps any between calls).
    pub(crate) fn reinit(&mut self) -> io::Result<()> {
        match self {
            Backend::Epoll(s) => s.reinit(),
            _ => Ok(()),
        }
    }

    /// Kernel interest-set updates issued so far (epoll only; 0 elsewhere).
    pub(crate) fn ctl_calls(&self) -> u64 {
        match self {
            Backend::Epoll(s) => s.ctl_calls,
            _ => 0,
        }
    }
}

/// A wait detached from its backend, for a loop that releases the base's lock while it
/// sleeps ([`SharedBase`](crate::SharedBase)): other threads change the backend meanwhile
/// and wake the loop, which then prepares a fresh wait.
pub(crate) enum Waiter {
    Epoll(sys::epoll::Waiter),
    Poll(sys::poll::Waiter),
    Select(Box<sys::select::Waiter>),
}

impl Waiter {
    pub(crate) fn for_method(method: Method) -> Waiter {
        match method {
            Method::Epoll => Waiter::Epoll(sys::epoll::Waiter::new()),
            Method::Poll => Waiter::Poll(sys::poll::Waiter::new()),
            Method::Select => Waiter::Select(Box::new(sys::select::Waiter::new())),
        }
    }

    /// Waits (no lock held) and appends `(fd, ready bits)` to `ready`.
    pub(crate) fn wait(
        &mut self,
        timeout: Option<Duration>,
        ready: &mut Vec<(RawFd, u8)>,
    ) -> io::Result<()> {
        match self {
            Waiter::Epoll(w) => w.wait(timeout, ready),
            Waiter::Poll(w) => w.wait(timeout, ready),
            Waiter::Select(w) => w.wait(timeout, ready),
        }
    }
}
