//! [`PinCell`]: a `RefCell` whose value is structurally pinned, so a task's future can live
//! inside the same `Rc` allocation as its output and join waker (one allocation per task)
//! and still be polled in place. The one pin projection of the crate, proven here.

use std::cell::RefCell;
use std::pin::Pin;

pub(crate) struct PinCell<T> {
    value: RefCell<T>,
}

impl<T> PinCell<T> {
    pub(crate) fn new(value: T) -> PinCell<T> {
        PinCell {
            value: RefCell::new(value),
        }
    }

    /// Runs `f` on the pinned value; `None` (without running it) if the value is borrowed
    /// already (a re-entrant call from inside `f`).
    pub(crate) fn try_with_pin<R>(self: Pin<&Self>, f: impl FnOnce(Pin<&mut T>) -> R) -> Option<R> {
        let mut guard = self.get_ref().value.try_borrow_mut().ok()?;
        // SAFETY: `self` is pinned, so the `RefCell` and the `T` inside it stay at this
        // address until they are dropped. No method of `PinCell` moves the `T` out or hands
        // out an unpinned `&mut T` (there is no `get_mut`, `replace` or `into_inner`), so
        // every mutable access goes through a `Pin<&mut T>`; replacing the value is done by
        // `Pin::set`, which drops the old one in place. The `RefCell` borrow makes this the
        // only access while `f` runs.
        let pinned = unsafe { Pin::new_unchecked(&mut *guard) };
        Some(f(pinned))
    }

    /// Runs `f` on a shared view of the value; `None` if it is mutably borrowed.
    pub(crate) fn try_with<R>(&self, f: impl FnOnce(&T) -> R) -> Option<R> {
        let guard = self.value.try_borrow().ok()?;
        Some(f(&guard))
    }
}
