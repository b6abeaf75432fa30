//! The lock-plus-flags queue behind [`Handle`](crate::Handle), separated from the eventfd so
//! that the protocol can be model-checked with `loom` (`RUSTFLAGS="--cfg loom" cargo test -p
//! evrs --lib loom`): every interleaving of producers and the loop is explored, and no wake-up
//! may be lost.
//!
//! Two flags. `pending`: work was queued that the loop has not taken. `sleeping`: the loop is
//! about to block (or blocks) in the backend.
//!
//! Producers: push under the mutex, then `swap(pending, true)`; only the caller that flips
//! it from `false` may have to signal (write the eventfd), and only if `sleeping` — a loop
//! that is awake takes the work before it next blocks, with no syscall on either side.
//! The loop, before blocking: `store(sleeping, true)`, then `load(pending)`; if set, it
//! un-sleeps and takes the queue at once instead of blocking. A `SeqCst` fence sits between
//! each side's store and load, so either the producer sees `sleeping` or the loop sees
//! `pending`: no lost wake-up. The loop does this check on every iteration, not only when
//! it would block: a loop kept busy (say, by an overdue timer) still takes its commands.
//! Taking: `store(pending, false)`, *then* take the queue, so anything pushed after the
//! store comes with a new flip of `pending`.

#[cfg(loom)]
use loom::sync::{
    atomic::{fence, AtomicBool, Ordering},
    Mutex,
};
#[cfg(not(loom))]
use std::sync::{
    atomic::{fence, AtomicBool, Ordering},
    Mutex,
};

pub(crate) struct WakeQueue<T> {
    queue: Mutex<Vec<T>>,
    pending: AtomicBool,
    sleeping: AtomicBool,
}

impl<T> WakeQueue<T> {
    pub(crate) fn new() -> Self {
        WakeQueue {
            queue: Mutex::new(Vec::new()),
            pending: AtomicBool::new(false),
            sleeping: AtomicBool::new(false),
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
        if self.pending.swap(true, Ordering::SeqCst) {
            return false;
        }
        // Pairs with the fence in `prepare_sleep` (a store-load pattern needs both).
        fence(Ordering::SeqCst);
        self.sleeping.load(Ordering::SeqCst)
    }

    /// The loop is about to block. Returns `true` if work is pending: then it must not
    /// block but [`take`](Self::take) it now (nobody signalled it).
    pub(crate) fn prepare_sleep(&self) -> bool {
        self.sleeping.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if self.pending.load(Ordering::SeqCst) {
            self.sleeping.store(false, Ordering::SeqCst);
            return true;
        }
        false
    }

    /// The loop is awake again (a producer that still saw it asleep just signals once more).
    pub(crate) fn woke(&self) {
        self.sleeping.store(false, Ordering::SeqCst);
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

    /// Two producers and the loop race; the loop either takes the work before blocking or
    /// blocks. If it blocks, anything still queued must have a signal outstanding (no lost
    /// wake-up), and nothing is delivered twice.
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
            // One iteration of the loop: take work now, or block.
            let mut got = Vec::new();
            let asleep = if q.prepare_sleep() {
                q.take(&mut got);
                false
            } else {
                true
            };
            for p in producers {
                p.join().unwrap();
            }
            let outstanding = signal.load(Ordering::SeqCst) > 0;
            let mut rest = Vec::new();
            q.take(&mut rest);
            if asleep {
                assert!(
                    rest.is_empty() || outstanding,
                    "loop blocked with items queued and no wake-up pending"
                );
            }
            got.extend(rest);
            got.sort();
            assert_eq!(got, vec![0, 1], "each item delivered exactly once");
        });
    }
}
