//! The lock-plus-flag queue behind [`Handle`](crate::Handle), separated from the eventfd so
//! that the protocol can be model-checked with `loom` (`RUSTFLAGS="--cfg loom" cargo test -p
//! evrs --lib loom`): every interleaving of producers and the loop is explored, and no wake-up
//! may be lost.
//!
//! Producers: push under the mutex, then `swap(pending, true)`; only the caller that flips it
//! from `false` must signal (write the eventfd). Consumer (the loop, after the eventfd woke it
//! and was reset): `store(pending, false)`, *then* take the queue.

#[cfg(loom)]
use loom::sync::{
    atomic::{AtomicBool, Ordering},
    Mutex,
};
#[cfg(not(loom))]
use std::sync::{
    atomic::{AtomicBool, Ordering},
    Mutex,
};

pub(crate) struct WakeQueue<T> {
    queue: Mutex<Vec<T>>,
    pending: AtomicBool,
}

impl<T> WakeQueue<T> {
    pub(crate) fn new() -> Self {
        WakeQueue {
            queue: Mutex::new(Vec::new()),
            pending: AtomicBool::new(false),
        }
    }

    /// Queues `item`; returns `true` if the caller must signal the consumer.
    pub(crate) fn push(&self, item: T) -> bool {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(item);
        self.request_wake()
    }

    /// A wake-up without an item; returns `true` if the caller must signal.
    pub(crate) fn request_wake(&self) -> bool {
        !self.pending.swap(true, Ordering::SeqCst)
    }

    /// Has a wake-up been requested that the consumer has not taken yet?
    pub(crate) fn is_pending(&self) -> bool {
        self.pending.load(Ordering::SeqCst)
    }

    /// Consumer side, after the signal was reset: re-arms wake-ups, then moves every queued
    /// item into `out` (which should be empty; its capacity is reused).
    pub(crate) fn take(&self, out: &mut Vec<T>) {
        self.pending.store(false, Ordering::SeqCst);
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::swap(out, &mut *q);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::WakeQueue;
    use loom::sync::atomic::{AtomicUsize, Ordering};
    use loom::sync::Arc;
    use loom::thread;

    /// Two producers and the loop race; afterwards, anything still queued must have a signal
    /// outstanding (no lost wake-up) and nothing is delivered twice.
    #[test]
    fn loom_no_lost_wakeups() {
        loom::model(|| {
            let q = Arc::new(WakeQueue::new());
            // The eventfd: a counter the loop resets when it reads it.
            let signal = Arc::new(AtomicUsize::new(0));
            let producers: Vec<_> = (0..2)
                .map(|i| {
                    let (q, signal) = (q.clone(), signal.clone());
                    thread::spawn(move || {
                        if q.push(i) {
                            signal.fetch_add(1, Ordering::SeqCst);
                        }
                    })
                })
                .collect();
            // The loop: one wake-up's worth of work, if it was signalled.
            let mut got = Vec::new();
            if signal.swap(0, Ordering::SeqCst) > 0 {
                q.take(&mut got);
            }
            for p in producers {
                p.join().unwrap();
            }
            let mut rest = Vec::new();
            let outstanding = signal.load(Ordering::SeqCst) > 0;
            q.take(&mut rest);
            assert!(
                rest.is_empty() || outstanding,
                "items queued with no wake-up pending"
            );
            got.extend(rest);
            got.sort();
            assert_eq!(got, vec![0, 1], "each item delivered exactly once");
        });
    }
}
