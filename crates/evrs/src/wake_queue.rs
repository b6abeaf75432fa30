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
//!
//! Closing (the base is dropped): [`close`](WakeQueue::close) sets `closed` under the mutex,
//! and `push` tests it under the same mutex, refusing (and handing back) the item once it is
//! set. So an item is either in the queue before the close — and the consumer's next `take`
//! gets it (the base's `Drop` takes and drops what is left) — or it is refused and the
//! producer learns so: none is accepted and then forgotten.

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
    /// Written only under `queue`'s mutex (and never reset); `push` reads it under the mutex.
    /// Reads without the mutex ([`is_closed`](Self::is_closed)) are advisory.
    closed: AtomicBool,
}

impl<T> WakeQueue<T> {
    pub(crate) fn new() -> Self {
        WakeQueue {
            queue: Mutex::new(Vec::new()),
            pending: AtomicBool::new(false),
            sleeping: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        }
    }

    /// Queues `item`; `Ok(true)` if the caller must signal the consumer. A closed queue
    /// refuses the item and hands it back: `Err(item)`.
    pub(crate) fn push(&self, item: T) -> Result<bool, T> {
        {
            let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            // Under the mutex: `close` cannot slip in between this test and the push.
            if self.closed.load(Ordering::SeqCst) {
                return Err(item);
            }
            q.push(item);
        }
        Ok(self.request_wake())
    }

    /// [`push`](Self::push) of a small item, unless the last queued item absorbs it:
    /// `merge(last)` runs under the mutex and returns whether it did. Absorbed, nothing is
    /// pushed and no signal is needed (`Ok(false)`): `last` is still queued, so the wake-up
    /// its own push arranged has not been consumed, and the `take` it leads to takes the
    /// merged item. Otherwise `make()` builds the item, under the mutex (keep it cheap).
    /// Only the very last item is offered, so no other item is overtaken. A closed queue
    /// refuses: `Err(())`, and neither closure ran.
    pub(crate) fn push_or_merge(
        &self,
        merge: impl FnOnce(&mut T) -> bool,
        make: impl FnOnce() -> T,
    ) -> Result<bool, ()> {
        {
            let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            if self.closed.load(Ordering::SeqCst) {
                return Err(());
            }
            if q.last_mut().is_some_and(merge) {
                return Ok(false);
            }
            q.push(make());
        }
        Ok(self.request_wake())
    }

    /// Refuses every later [`push`](Self::push). What was queued before stays queued for the
    /// consumer's next [`take`](Self::take) (which should follow, to drop it).
    pub(crate) fn close(&self) {
        let _q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        self.closed.store(true, Ordering::SeqCst);
    }

    /// Has [`close`](Self::close) been called? Without the mutex this is only a hint: `false`
    /// can be stale by the time the caller acts on it (a `push` then still decides exactly).
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
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

/// The consumer's (the loop's) use of the queue, in the order the loop runs it. The real
/// loops (`EventBase` and `SharedBase`, via `base/handle.rs`) and the loom model of the loop
/// below call exactly these, so the model checks the use, not a copy of it:
///
/// 1. before the wait, [`take_before_sleep`](Self::take_before_sleep) — if `true`, the loop
///    runs what it took and polls without blocking;
/// 2. the wait (blocks on the signal when nothing else is due), then [`woke`](Self::woke);
/// 3. if the signal fired, [`take_signalled`](Self::take_signalled) and run what it took.
///
/// Both takes re-arm wake-ups even when they take nothing: a loop that saw a wake-up and
/// left `pending` set would never block again (no producer would signal it any more).
impl<T> WakeQueue<T> {
    /// Before the wait: work pending that no signal announced is taken into `out` (which
    /// should be empty); returns `true` if so, and then the loop must not block. Otherwise
    /// the loop counts as asleep until [`woke`](Self::woke).
    #[inline]
    pub(crate) fn take_before_sleep(&self, out: &mut Vec<T>) -> bool {
        if self.prepare_sleep() {
            self.take(out);
            true
        } else {
            false
        }
    }

    /// The signal fired: `reset` it (read the eventfd), then [`take`](Self::take) into `out`.
    pub(crate) fn take_signalled(&self, reset: impl FnOnce(), out: &mut Vec<T>) {
        reset();
        self.take(out);
    }

    /// The consumer goes away: [`close`](Self::close), then take what was queued into `out`
    /// (to drop it). Every item accepted by a `push` is in `out` or was taken before.
    pub(crate) fn close_and_take(&self, out: &mut Vec<T>) {
        self.close();
        self.take(out);
    }
}

/// The protocol step by step on one thread (the interleavings are `loom_tests`' job).
#[cfg(all(test, not(loom)))]
mod tests {
    use super::WakeQueue;

    #[test]
    fn only_the_first_push_to_a_sleeping_loop_must_signal() {
        let q = WakeQueue::new();
        assert!(!q.is_pending());
        // The loop is awake: nobody signals, however many pushes.
        assert_eq!(q.push(1), Ok(false));
        assert!(q.is_pending());
        assert_eq!(q.push(2), Ok(false));
        // Work is pending: the loop must not block, and is awake again.
        assert!(q.prepare_sleep());
        let mut out = Vec::new();
        q.take(&mut out);
        assert_eq!(out, [1, 2]);
        assert!(!q.is_pending());
        assert_eq!(
            q.push(3),
            Ok(false),
            "prepare_sleep that found work un-sleeps"
        );
        out.clear();
        q.take(&mut out);
        // Nothing pending: the loop may block; the first push signals, the next does not.
        assert!(!q.prepare_sleep());
        assert_eq!(q.push(4), Ok(true));
        assert_eq!(q.push(5), Ok(false));
        assert!(!q.request_wake(), "a wake-up already requested");
        q.woke();
        out.clear();
        q.take(&mut out);
        assert_eq!(out, [4, 5]);
        // Awake after `woke`: no signal; a bare wake-up also counts as pending work.
        assert!(!q.request_wake() && q.is_pending());
        assert!(q.prepare_sleep());
        q.take(&mut out);
        assert!(!q.prepare_sleep());
        assert!(
            q.request_wake(),
            "a bare wake-up of a sleeping loop signals"
        );
    }

    #[test]
    fn the_loops_steps_take_what_is_queued_and_rearm() {
        let q = WakeQueue::new();
        let mut out = Vec::new();
        // Nothing queued: the loop may sleep, and then the first push must signal.
        assert!(!q.take_before_sleep(&mut out));
        assert!(out.is_empty());
        assert_eq!(q.push(1), Ok(true));
        q.woke();
        // Queued while awake: taken before the wait, which must not block.
        assert_eq!(q.push(2), Ok(false));
        assert!(q.take_before_sleep(&mut out));
        assert_eq!(out, [1, 2]);
        assert!(!q.is_pending(), "taking re-arms wake-ups");
        // The signal fired: it is reset first, then the queue is taken.
        out.clear();
        assert!(!q.take_before_sleep(&mut out));
        assert_eq!(q.push(3), Ok(true));
        let mut reset = false;
        q.take_signalled(|| reset = true, &mut out);
        assert!(reset);
        assert_eq!(out, [3]);
        assert!(!q.is_pending());
        // Going away: what is queued comes out, later pushes are refused.
        out.clear();
        q.woke();
        assert_eq!(q.push(4), Ok(false));
        q.close_and_take(&mut out);
        assert_eq!(out, [4]);
        assert_eq!(q.push(5), Err(5));
    }

    #[test]
    fn a_merge_joins_only_the_last_item_and_needs_no_signal() {
        let q = WakeQueue::new();
        let mut out: Vec<Vec<u8>> = Vec::new();
        // Appends `item` to the last item if it starts with the same byte.
        let push = |item: &[u8]| {
            let item = item.to_vec();
            let it = item.clone();
            q.push_or_merge(
                move |last: &mut Vec<u8>| {
                    if last[0] != it[0] {
                        return false;
                    }
                    last.extend_from_slice(&it);
                    true
                },
                move || item,
            )
        };
        assert!(!q.prepare_sleep());
        // Nothing to merge into: a push, which signals the sleeping loop.
        assert_eq!(push(&[1]), Ok(true));
        assert_eq!(push(&[1, 1]), Ok(false));
        // Another kind goes after; a later one of the first kind does not overtake it.
        assert_eq!(push(&[2]), Ok(false));
        assert_eq!(push(&[1, 9]), Ok(false));
        q.woke();
        q.take(&mut out);
        assert_eq!(out, [vec![1, 1, 1], vec![2], vec![1, 9]]);
        // Taken: the next one is pushed anew (and, the loop asleep, signals).
        out.clear();
        assert!(!q.prepare_sleep());
        assert_eq!(push(&[1]), Ok(true));
        q.close_and_take(&mut out);
        assert_eq!(out, [vec![1]]);
        assert_eq!(push(&[1]), Err(()));
    }

    #[test]
    fn a_closed_queue_refuses_pushes_and_keeps_what_it_had() {
        let q = WakeQueue::new();
        assert_eq!(q.push("kept"), Ok(false));
        assert!(!q.is_closed());
        q.close();
        assert!(q.is_closed());
        assert_eq!(q.push("refused"), Err("refused"));
        let mut out = Vec::new();
        q.take(&mut out);
        assert_eq!(out, ["kept"]);
        q.close();
        assert_eq!(q.push("again"), Err("again"));
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::WakeQueue;
    use loom::sync::atomic::{AtomicUsize, Ordering};
    use loom::sync::{Arc, Condvar, Mutex};
    use loom::thread;

    /// Preemptions explored per execution: enough for every interleaving of these small
    /// models that matters (a lost wake-up needs one or two), bounded so the loom run stays
    /// short.
    const PREEMPTIONS: usize = 3;

    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut b = loom::model::Builder::new();
        b.preemption_bound = Some(PREEMPTIONS);
        b.check(f);
    }

    /// The eventfd: a write adds to the counter, a read resets it; a poll that blocks returns
    /// once it is non-zero. It also counts the producers that are done (not part of the real
    /// eventfd: it lets a poll that would block for ever fail with a message, where loom
    /// would only report a deadlock).
    struct EventFd {
        state: Mutex<(u64, usize)>,
        ready: Condvar,
        producers: usize,
    }

    impl EventFd {
        fn new(producers: usize) -> Self {
            EventFd {
                state: Mutex::new((0, 0)),
                ready: Condvar::new(),
                producers,
            }
        }

        /// `Handle::signal`.
        fn write(&self) {
            self.state.lock().unwrap().0 += 1;
            self.ready.notify_one();
        }

        /// A producer thread returns.
        fn producer_done(&self) {
            self.state.lock().unwrap().1 += 1;
            self.ready.notify_one();
        }

        /// A poll with a zero timeout: is it readable?
        fn readable(&self) -> bool {
            self.state.lock().unwrap().0 > 0
        }

        /// A poll that blocks with nothing else due. Returns `false` if it would block for
        /// ever: unreadable with every producer done.
        fn wait_readable(&self) -> bool {
            let mut state = self.state.lock().unwrap();
            while state.0 == 0 {
                if state.1 == self.producers {
                    return false;
                }
                state = self.ready.wait(state).unwrap();
            }
            true
        }

        /// `sys::notify::drain`.
        fn drain(&self) {
            self.state.lock().unwrap().0 = 0;
        }
    }

    /// What a producer thread does: `Handle::send` of a command, or `Handle::wake`.
    #[derive(Clone, Copy)]
    enum Producer {
        Push(usize),
        Wake,
    }

    /// The loop's side of the model: what it ran, and whether it has noticed a `Wake`
    /// (taken the queue after the producer requested it).
    struct Loop {
        q: Arc<WakeQueue<usize>>,
        efd: Arc<EventFd>,
        wake_requested: Arc<Mutex<bool>>,
        ran: Vec<usize>,
        wake_seen: bool,
        cmds: Vec<usize>,
    }

    impl Loop {
        /// "Runs" the commands just taken into `cmds`.
        fn run_commands(&mut self) {
            // Under a mutex: loom weakens `SeqCst` atomics to acquire/release, so a flag
            // could look unset to a take that came after the `wake`.
            if *self.wake_requested.lock().unwrap() {
                self.wake_seen = true;
            }
            self.ran.append(&mut self.cmds);
        }

        /// One iteration, sequenced as `run_loop::run` and `base/handle.rs` do it (only the
        /// eventfd is watched, so the poll blocks unless `block` is false or work was
        /// taken). Returns `false` if it found nothing at all: a loop free to block would
        /// have slept in the kernel.
        fn iteration(&mut self, block: bool) -> bool {
            // Phase 4, `take_commands` -> `commands_before_sleep`.
            let took = self.q.take_before_sleep(&mut self.cmds);
            if took {
                self.run_commands();
            }
            // Phase 5, `wait`: the poll (zero timeout once work was taken), then `woke_up`.
            let readable = if took || !block {
                self.efd.readable()
            } else {
                assert!(
                    self.efd.wait_readable(),
                    "lost wake-up: the loop blocks for ever in the poll, having run only {:?}",
                    self.ran
                );
                true
            };
            self.q.woke();
            // The eventfd's internal event: `notify_ready`.
            if readable {
                let efd = self.efd.clone();
                self.q.take_signalled(|| efd.drain(), &mut self.cmds);
                self.run_commands();
            }
            took || readable
        }
    }

    /// Bound on the loop's iterations until it has everything: each one blocks until a
    /// signal or takes what a producer's flip of `pending` announced, and the producers make
    /// at most two flips and two signals.
    const MAX_ITERATIONS: usize = 6;

    /// The loop as the real loop runs it, against two producers: every command sent is run
    /// exactly once, and every `wake` makes the loop take the queue after it, within a
    /// bounded number of iterations and without the loop ever blocking while work is queued
    /// (loom reports that as a deadlock). Once the producers are done the loop goes back to
    /// sleep: no wake-up is left armed (a loop that never re-arms would spin).
    fn loop_model(producers: [Producer; 2]) {
        model(move || {
            let q = Arc::new(WakeQueue::new());
            let efd = Arc::new(EventFd::new(producers.len()));
            let wake_requested = Arc::new(Mutex::new(false));
            let threads: Vec<_> = producers
                .iter()
                .map(|&p| {
                    let (q, efd, wake_requested) = (q.clone(), efd.clone(), wake_requested.clone());
                    thread::spawn(move || {
                        let signal = match p {
                            Producer::Push(i) => q.push(i) == Ok(true),
                            Producer::Wake => {
                                *wake_requested.lock().unwrap() = true;
                                q.request_wake()
                            }
                        };
                        if signal {
                            efd.write();
                        }
                        efd.producer_done();
                    })
                })
                .collect();
            let mut expected: Vec<usize> = producers
                .iter()
                .filter_map(|p| match p {
                    Producer::Push(i) => Some(*i),
                    Producer::Wake => None,
                })
                .collect();
            let wake_expected = expected.len() < producers.len();
            let mut lp = Loop {
                q,
                efd,
                wake_requested,
                ran: Vec::new(),
                wake_seen: false,
                cmds: Vec::new(),
            };
            let mut iterations = 0;
            while lp.ran.len() < expected.len() || (wake_expected && !lp.wake_seen) {
                assert!(
                    iterations < MAX_ITERATIONS,
                    "the loop ran {iterations} iterations without taking everything: ran {:?}",
                    lp.ran
                );
                lp.iteration(true);
                iterations += 1;
            }
            for t in threads {
                t.join().unwrap();
            }
            // Everything is taken: within a couple of iterations the loop must find nothing
            // left to do, i.e. it can block again.
            let mut settled = false;
            for _ in 0..3 {
                if !lp.iteration(false) {
                    settled = true;
                    break;
                }
            }
            assert!(
                settled,
                "the loop never goes back to sleep (a wake-up stays armed)"
            );
            assert!(!lp.q.is_pending());
            lp.ran.sort();
            expected.sort();
            assert_eq!(lp.ran, expected, "each command run exactly once");
        });
    }

    #[test]
    fn loom_loop_runs_every_command() {
        loop_model([Producer::Push(0), Producer::Push(1)]);
    }

    #[test]
    fn loom_loop_sees_every_wake() {
        loop_model([Producer::Push(0), Producer::Wake]);
    }

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
                        if q.push(i) == Ok(true) {
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

    /// `push_or_merge` (a `BevRemote::write` that joins the queue's last item) against the
    /// loop: a merge sends no signal, so it must only ever join an item that is still
    /// queued. Two producers each append one element (merging into whatever item is last);
    /// the loop takes work before blocking or blocks. If it blocked with anything queued a
    /// signal must be outstanding, and every element is delivered exactly once.
    #[test]
    fn loom_merged_pushes_lose_no_wakeup() {
        loom::model(|| {
            let q: Arc<WakeQueue<Vec<usize>>> = Arc::new(WakeQueue::new());
            let signal = Arc::new(AtomicUsize::new(0));
            let producers: Vec<_> = (0..2)
                .map(|i| {
                    let (q, signal) = (q.clone(), signal.clone());
                    thread::spawn(move || {
                        let pushed = q.push_or_merge(
                            |last: &mut Vec<usize>| {
                                last.push(i);
                                true
                            },
                            || vec![i],
                        );
                        if pushed == Ok(true) {
                            signal.fetch_add(1, Ordering::SeqCst);
                        }
                    })
                })
                .collect();
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
                    "loop blocked with merged items queued and no wake-up pending"
                );
            }
            got.extend(rest);
            let mut all: Vec<usize> = got.into_iter().flatten().collect();
            all.sort();
            assert_eq!(all, vec![0, 1], "each element delivered exactly once");
        });
    }

    /// Two producers race the base's drop, which may first run one loop iteration, then
    /// closes the queue and takes (drops) what is left. Every item is either refused (the
    /// producer gets it back) or taken exactly once — by the loop or by the drop — and nothing
    /// accepted stays behind in the closed queue; a push after the close is refused.
    #[test]
    fn loom_close_vs_push_loses_nothing() {
        for run_loop_first in [false, true] {
            loom::model(move || {
                let q = Arc::new(WakeQueue::new());
                let producers: Vec<_> = (0..2)
                    .map(|i| {
                        let q = q.clone();
                        thread::spawn(move || match q.push(i) {
                            Ok(_) => Some(i),
                            Err(back) => {
                                assert_eq!(back, i, "a refused push hands its own item back");
                                None
                            }
                        })
                    })
                    .collect();
                let mut ran = Vec::new();
                // The loop's own calls: phase 4 of an iteration, then `EventBase::drop`
                // (`NotifyShared::detach`).
                if run_loop_first {
                    q.take_before_sleep(&mut ran);
                }
                let mut discarded = Vec::new();
                q.close_and_take(&mut discarded);
                let mut accepted: Vec<_> = producers
                    .into_iter()
                    .filter_map(|p| p.join().unwrap())
                    .collect();
                assert!(q.is_closed());
                assert_eq!(q.push(9), Err(9), "pushes after the close are refused");
                let mut left = Vec::new();
                q.take(&mut left);
                assert!(
                    left.is_empty(),
                    "an accepted item outlived the close: {left:?}"
                );
                let mut got = ran;
                got.extend(discarded);
                got.sort();
                accepted.sort();
                assert_eq!(got, accepted, "each accepted item taken exactly once");
            });
        }
    }
}
