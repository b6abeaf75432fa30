//! Signals as a `futures_core::Stream` ([`signal`]): one item per delivery (deliveries the
//! kernel coalesced count once), on the base's signal events.

use super::io::Op;
use super::task::{current, Inner};
use crate::{Event, EventBase};
use futures_core::Stream;
use std::cell::{Cell, RefCell};
use std::io;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

/// What a [`Signals`] stream shares with its signal event's callback.
pub(crate) struct SignalSrc {
    signo: i32,
    delivered: Cell<u64>,
    waker: RefCell<Option<Waker>>,
    ev: Cell<Option<Event>>,
    error: RefCell<Option<io::Error>>,
    dropped: Cell<bool>,
}

impl SignalSrc {
    pub(crate) fn arm(self: &Rc<Self>, base: &mut EventBase) {
        if self.dropped.get() {
            return;
        }
        let weak = Rc::downgrade(self);
        let r = base
            .new_signal(self.signo, move |_, _, _| {
                if let Some(s) = weak.upgrade() {
                    s.delivered.set(s.delivered.get() + 1);
                    let w = s.waker.borrow_mut().take();
                    if let Some(w) = w {
                        w.wake();
                    }
                }
            })
            .and_then(|ev| {
                self.ev.set(Some(ev));
                base.add(ev, None)
            });
        if let Err(e) = r {
            *self.error.borrow_mut() = Some(e);
            if let Some(w) = self.waker.borrow_mut().take() {
                w.wake();
            }
        }
    }
}

/// The deliveries of one signal, as a stream (see [`signal`]).
#[must_use = "streams do nothing unless polled"]
pub struct Signals {
    src: Rc<SignalSrc>,
    seen: u64,
    /// An error was reported: the stream has ended.
    ended: bool,
    rt: Weak<Inner>,
}

impl std::fmt::Debug for Signals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signals")
            .field("signo", &self.src.signo)
            .finish_non_exhaustive()
    }
}

/// Watches signal `signo` on the current runtime's base: the stream yields `Ok(())` once
/// per delivery from the moment the driver installs the watch (right after the task that
/// made it next yields), or one `Err` if the base refuses the signal (then ends).
pub fn signal(signo: i32) -> io::Result<Signals> {
    let rt = current()?;
    let src = Rc::new(SignalSrc {
        signo,
        delivered: Cell::new(0),
        waker: RefCell::new(None),
        ev: Cell::new(None),
        error: RefCell::new(None),
        dropped: Cell::new(false),
    });
    rt.queue_op(Op::Signal(src.clone()));
    Ok(Signals {
        src,
        seen: 0,
        ended: false,
        rt: Rc::downgrade(&rt),
    })
}

impl Stream for Signals {
    type Item = io::Result<()>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<io::Result<()>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let error = self.src.error.borrow_mut().take();
        if let Some(e) = error {
            self.ended = true;
            return Poll::Ready(Some(Err(e)));
        }
        if self.src.delivered.get() > self.seen {
            self.seen += 1;
            return Poll::Ready(Some(Ok(())));
        }
        let mut w = self.src.waker.borrow_mut();
        match w.as_ref() {
            Some(old) if old.will_wake(cx.waker()) => {}
            _ => *w = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl Signals {
    /// The next delivery (`None` after an error was reported).
    pub async fn recv(&mut self) -> Option<io::Result<()>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        self.src.dropped.set(true);
        if let (Some(ev), Some(rt)) = (self.src.ev.take(), self.rt.upgrade()) {
            rt.queue_op(Op::Free(ev));
        }
    }
}
