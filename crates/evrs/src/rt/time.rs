//! Timers for tasks: [`sleep`], [`sleep_until`], [`timeout`] and [`Interval`], on the
//! base's timer wheel (so they never end early).

use super::io::Op;
use super::task::{current, Inner};
use crate::{Event, EventBase};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// What a [`Sleep`] shares with its timer's callback.
pub(crate) struct TimerSrc {
    deadline: Instant,
    waker: RefCell<Option<Waker>>,
    fired: Cell<bool>,
    ev: Cell<Option<Event>>,
    /// Dropped before the driver armed it.
    cancelled: Cell<bool>,
    error: RefCell<Option<io::Error>>,
}

impl TimerSrc {
    pub(crate) fn arm(self: &Rc<Self>, base: &mut EventBase) {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if self.cancelled.get() || left >= FOREVER {
            return; // (a deadline that far away stays pending: it never comes)
        }
        let weak = Rc::downgrade(self);
        let r = base
            .new_timer(move |_, _, _| {
                if let Some(t) = weak.upgrade() {
                    t.fired.set(true);
                    let w = t.waker.borrow_mut().take();
                    if let Some(w) = w {
                        w.wake();
                    }
                }
            })
            .and_then(|ev| {
                self.ev.set(Some(ev));
                // Counted from a reading taken after this one: never before `deadline`.
                base.add(ev, Some(left))
            });
        if let Err(e) = r {
            *self.error.borrow_mut() = Some(e);
            if let Some(w) = self.waker.borrow_mut().take() {
                w.wake();
            }
        }
    }
}

/// The future of [`sleep`] and [`sleep_until`]: ready once its deadline has passed.
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    deadline: Instant,
    src: Option<Rc<TimerSrc>>,
    rt: Option<Weak<Inner>>,
}

impl std::fmt::Debug for Sleep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

/// Waits `d` (never less), on the current runtime's base.
pub fn sleep(d: Duration) -> Sleep {
    sleep_until(after(Instant::now(), d))
}

/// Beyond this a timer is never armed: it cannot end within the life of any process (and
/// the base refuses timeouts past ~146 years).
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `t + d`, or [`FOREVER`] after `t` where that overflows `Instant`.
fn after(t: Instant, d: Duration) -> Instant {
    t.checked_add(d.min(FOREVER))
        .unwrap_or_else(|| t + Duration::from_secs(1 << 30))
}

/// Waits until `deadline` (never less).
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        src: None,
        rt: None,
    }
}

impl Sleep {
    /// When it ends.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    fn cancel(&mut self) {
        if let Some(src) = self.src.take() {
            src.cancelled.set(true);
            if let (Some(ev), Some(rt)) = (src.ev.take(), self.rt.as_ref().and_then(Weak::upgrade))
            {
                rt.queue_op(Op::Free(ev));
            }
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.src.is_none() {
            if Instant::now() >= self.deadline {
                return Poll::Ready(());
            }
            let rt = match current() {
                Ok(rt) => rt,
                // No runtime: nothing can wake this; a clear panic beats a silent hang.
                Err(e) => panic!("evrs::rt::sleep polled outside a runtime: {e}"),
            };
            let src = Rc::new(TimerSrc {
                deadline: self.deadline,
                waker: RefCell::new(Some(cx.waker().clone())),
                fired: Cell::new(false),
                ev: Cell::new(None),
                cancelled: Cell::new(false),
                error: RefCell::new(None),
            });
            rt.queue_op(Op::Timer(src.clone()));
            self.rt = Some(Rc::downgrade(&rt));
            self.src = Some(src);
            return Poll::Pending;
        }
        let src = self.src.as_ref().expect("armed above");
        if src.fired.get() {
            self.cancel();
            return Poll::Ready(());
        }
        if let Some(e) = src.error.borrow_mut().take() {
            panic!("evrs::rt::sleep: the base refused the timer: {e}");
        }
        let mut w = src.waker.borrow_mut();
        match w.as_ref() {
            Some(old) if old.will_wake(cx.waker()) => {}
            _ => *w = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// [`timeout`] ran out before its future finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

impl std::fmt::Display for Elapsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for io::Error {
    fn from(_: Elapsed) -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, Elapsed)
    }
}

/// Runs `fut` for at most `d`: its output, or [`Elapsed`] (then `fut` is dropped).
pub async fn timeout<F: Future>(d: Duration, fut: F) -> Result<F::Output, Elapsed> {
    let mut fut = std::pin::pin!(fut);
    let mut sleep = sleep(d);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Ok(v));
        }
        Pin::new(&mut sleep).poll(cx).map(|()| Err(Elapsed))
    })
    .await
}

/// A periodic timer ([`interval`]): each [`tick`](Interval::tick) ends one period after the
/// previous one was due (missed periods are skipped, not bunched).
#[derive(Debug)]
pub struct Interval {
    period: Duration,
    next: Instant,
}

/// A timer whose first tick is due at once, then every `period`.
pub fn interval(period: Duration) -> Interval {
    Interval {
        period,
        next: Instant::now(),
    }
}

impl Interval {
    /// Waits for the next tick; returns when it was due.
    pub async fn tick(&mut self) -> Instant {
        let due = self.next;
        sleep_until(due).await;
        let now = Instant::now();
        self.next = after(due, self.period);
        if self.next <= now {
            self.next = after(now, self.period);
        }
        due
    }
}
