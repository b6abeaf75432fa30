//! [`ThreadBound`]: a value that may be *moved* to other threads but is only ever touched —
//! read or dropped — on the thread that made it. Lets a same-thread handle (`Rc`-based, no
//! atomics) ride inside a closure that an API requires to be `Send`, with a `Send` fallback
//! for the other threads. The crate's only `unsafe impl Send` (and `Sync`), proven here.

use std::cell::Cell;
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT_THREAD: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static THREAD: Cell<u64> = const { Cell::new(0) };
}

/// This thread's number (one atomic increment the first time a thread asks, then a plain
/// thread-local read).
pub(crate) fn this_thread() -> u64 {
    THREAD.with(|t| {
        if t.get() == 0 {
            t.set(NEXT_THREAD.fetch_add(1, Ordering::Relaxed));
        }
        t.get()
    })
}

pub(crate) struct ThreadBound<T> {
    value: ManuallyDrop<T>,
    owner: u64,
}

// SAFETY: the `T` inside is reachable only through `get`, which hands out a reference on the
// owner thread alone, and `drop` drops it only on the owner thread (elsewhere it is leaked,
// never touched). So no two threads ever access the `T`, and a non-`Send` `T` (an `Rc`) is
// never used off its thread; moving the wrapper itself moves only bytes.
unsafe impl<T> Send for ThreadBound<T> {}

// SAFETY: a shared `&ThreadBound` lets other threads see only `owner` (a plain integer):
// `get` and `get_mut` return `None` there, so the `T` is still touched on its thread alone.
unsafe impl<T> Sync for ThreadBound<T> {}

impl<T> ThreadBound<T> {
    pub(crate) fn new(value: T) -> ThreadBound<T> {
        ThreadBound {
            value: ManuallyDrop::new(value),
            owner: this_thread(),
        }
    }

    /// The value, on the thread that made it; `None` elsewhere.
    #[inline]
    pub(crate) fn get(&self) -> Option<&T> {
        (this_thread() == self.owner).then_some(&*self.value)
    }

    /// The value, mutably, on the thread that made it; `None` elsewhere.
    #[cfg(feature = "hyper")]
    #[inline]
    pub(crate) fn get_mut(&mut self) -> Option<&mut T> {
        (this_thread() == self.owner).then_some(&mut *self.value)
    }
}

impl<T> Drop for ThreadBound<T> {
    fn drop(&mut self) {
        if this_thread() == self.owner {
            // SAFETY: dropped once, here, on the owner thread; `value` is not used after.
            unsafe { ManuallyDrop::drop(&mut self.value) };
        }
        // Elsewhere the value is leaked: touching it (even its refcount) would race.
    }
}
