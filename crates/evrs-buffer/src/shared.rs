//! The locking surface (libevent's `evbuffer_enable_locking`,
//! `evbuffer_lock`, `evbuffer_unlock`).
//!
//! An [`EvBuffer`] is an ordinary owned value: every mutating call takes
//! `&mut self`, so the borrow checker already guarantees one writer at a
//! time and a per-buffer lock would only cost time. When a buffer really is
//! shared between threads, wrap it in a [`SharedEvBuffer`]: `lock()` is
//! `evbuffer_lock`, dropping the guard is `evbuffer_unlock`, and a sequence
//! of calls made through one guard is atomic, as between lock/unlock in C.
//!
//! For a future C ABI: `evbuffer_enable_locking(buf, NULL)` would move the
//! buffer behind such a mutex (and return -1 if it already is, as libevent
//! does); `evbuffer_lock`/`unlock` would take and release it, and are no-ops
//! on a buffer without a lock. libevent's locks are recursive; here a
//! thread holding the guard simply uses it rather than locking again.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};

use crate::EvBuffer;

/// An [`EvBuffer`] shared between threads: a cloneable handle to one buffer
/// behind a mutex (the `Arc<Mutex<EvBuffer>>` equivalent of a libevent
/// buffer with locking enabled).
///
/// ```
/// use evrs_buffer::{EvBuffer, SharedEvBuffer};
/// let shared = SharedEvBuffer::new(EvBuffer::new());
/// let other = shared.clone();
/// std::thread::spawn(move || other.lock().add(b"from a thread").unwrap())
///     .join()
///     .unwrap();
/// assert_eq!(shared.lock().len(), 13);
/// ```
#[derive(Debug, Clone, Default)]
pub struct SharedEvBuffer(Arc<Mutex<EvBuffer>>);

impl SharedEvBuffer {
    /// Puts `buf` behind a lock.
    pub fn new(buf: EvBuffer) -> Self {
        SharedEvBuffer(Arc::new(Mutex::new(buf)))
    }

    /// Waits for the lock and returns the buffer (`evbuffer_lock`); the lock
    /// is released when the guard is dropped (`evbuffer_unlock`).
    ///
    /// A callback that panicked while a guard was held does not make the
    /// buffer unusable: every `EvBuffer` call leaves it consistent, so the
    /// lock is taken anyway.
    pub fn lock(&self) -> MutexGuard<'_, EvBuffer> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Like [`lock`](Self::lock), but returns `None` instead of waiting.
    pub fn try_lock(&self) -> Option<MutexGuard<'_, EvBuffer>> {
        match self.0.try_lock() {
            Ok(g) => Some(g),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// True if both handles share one buffer.
    pub fn ptr_eq(&self, other: &SharedEvBuffer) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The buffer itself if this is the last handle, else `Err(self)`.
    pub fn try_unwrap(self) -> Result<EvBuffer, SharedEvBuffer> {
        Arc::try_unwrap(self.0)
            .map(|m| m.into_inner().unwrap_or_else(PoisonError::into_inner))
            .map_err(SharedEvBuffer)
    }
}

impl From<EvBuffer> for SharedEvBuffer {
    fn from(buf: EvBuffer) -> Self {
        SharedEvBuffer::new(buf)
    }
}
