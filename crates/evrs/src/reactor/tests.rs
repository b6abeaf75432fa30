//! Unit tests of the core against the test-only backend and the event table's limits.

use super::*;
use crate::backend::scripted::Scripted;
use crate::base::EventBase;
use crate::event::Event;
use crate::flags::{LoopFlags, What};
use crate::sys::interest;
use std::cell::Cell;
use std::rc::Rc;

fn scripted_base() -> (EventBase, Scripted) {
    let script = Scripted::default();
    let setup = Setup {
        method: Method::Poll,
        changelist: true,
        flags: BaseFlags::empty(),
        priorities: 1,
        max_interval: None,
        max_callbacks: None,
        limit_from_priority: 1,
        growth: Default::default(),
    };
    let core = Reactor::with_backend(&setup, Backend::Scripted(script.clone())).unwrap();
    (EventBase::from_reactor(core), script)
}

#[test]
fn test_backend_delivers_readiness_and_completions() {
    let (mut base, script) = scripted_base();
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    let fd = std::os::unix::io::AsRawFd::as_raw_fd(&a);
    let seen = Rc::new(Cell::new(What::empty()));
    let s = seen.clone();
    let ev = base
        .new_event(fd, What::READ | What::PERSIST, move |_b, _e, what| {
            s.set(s.get() | what)
        })
        .unwrap();
    base.add(ev, None).unwrap();
    assert_eq!(
        script.0.lock().unwrap().interest.get(&fd),
        Some(&interest::READ)
    );
    base.verify().unwrap();
    // Readiness for the fd, then a completion naming the event.
    let idx = base.reactor().index(ev).unwrap();
    let token = base.reactor().completion_token(idx);
    {
        let mut sc = script.0.lock().unwrap();
        sc.batches
            .push_back(vec![Polled::ready(fd, interest::READ)]);
        sc.batches.push_back(vec![Polled::Done {
            token,
            res: 42,
            flags: 7,
        }]);
        // A stale token is ignored.
        sc.batches.push_back(vec![Polled::Done {
            token: token ^ (1 << 32),
            res: 1,
            flags: 0,
        }]);
    }
    base.run(LoopFlags::ONCE).unwrap();
    assert_eq!(seen.get(), What::READ);
    seen.set(What::empty());
    base.run(LoopFlags::ONCE).unwrap();
    assert_eq!(seen.get(), What::READ);
    assert_eq!(base.completion(ev).unwrap(), (42, 7));
    seen.set(What::empty());
    base.run(LoopFlags::NONBLOCK).unwrap();
    assert_eq!(seen.get(), What::empty());
    base.verify().unwrap();
    base.free(ev).unwrap();
    assert!(script.0.lock().unwrap().interest.is_empty());
    // The loop blocked (no timeout) only when nothing was active.
    assert!(script.0.lock().unwrap().polls >= 3);
}

#[test]
fn a_slot_whose_generation_would_wrap_is_retired() {
    let mut base = EventBase::new().unwrap();
    let ev = base.new_timer(|_, _, _| {}).unwrap();
    let idx = ev.idx as usize;
    base.free(ev).unwrap();
    base.reactor_mut().table.force_generation(idx, u32::MAX);
    // The slot is free with the last generation: reuse it once more...
    let last = base.new_timer(|_, _, _| {}).unwrap();
    assert_eq!(last.idx as usize, idx);
    assert_eq!(last.gen, u32::MAX);
    base.free(last).unwrap();
    // ...then it is retired: a handle from 2^32 frees ago can never come back to life.
    let stale = Event {
        idx: idx as u32,
        gen: 0,
        base: base.id(),
    };
    let next = base.new_timer(|_, _, _| {}).unwrap();
    assert_ne!(next.idx as usize, idx);
    assert!(base.free(stale).is_err());
    assert!(base.is_initialized(next));
    base.verify().unwrap();
}

#[test]
fn verify_catches_a_broken_base() {
    let mut base = EventBase::new().unwrap();
    let ev = base.new_timer(|_, _, _| {}).unwrap();
    base.add(ev, Some(std::time::Duration::from_secs(5)))
        .unwrap();
    base.verify().unwrap();
    // Break it: the timer leaves the wheel behind the table's back.
    base.reactor_mut().wheel.remove(ev.idx);
    let err = base.verify().unwrap_err().to_string();
    assert!(err.contains("wheel"), "{err}");
    // And another: a counter drifts.
    let (mut b2, _s) = scripted_base();
    let e2 = b2.new_timer(|_, _, _| {}).unwrap();
    b2.activate(e2, What::TIMEOUT, 1).unwrap();
    b2.verify().unwrap();
    b2.reactor_mut().table.mark_inactive(e2.idx as usize);
    assert!(b2.verify().is_err());
}

/// A base with `n` priorities and nothing else: every slot is one of the test's events.
fn plain_base(priorities: usize) -> EventBase {
    let (mut base, _script) = scripted_base();
    base.priority_init(priorities).unwrap();
    base
}

#[test]
fn active_queues_report_idle_and_the_next_two_events() {
    let mut base = plain_base(1);
    // Two slots first, so that no event below sits at index 0 or 1.
    for _ in 0..2 {
        base.new_timer(|_, _, _| {}).unwrap();
    }
    let evs: Vec<Event> = (0..3)
        .map(|_| base.new_timer(|_, _, _| {}).unwrap())
        .collect();
    let idx: Vec<usize> = evs.iter().map(|e| e.idx as usize).collect();
    assert!(idx.iter().all(|&i| i > 1));
    let q = |b: &EventBase| {
        let (n1, n2) = b.reactor().upcoming(0);
        let named = |i: u32| (i != crate::reactor::events::NIL).then_some(i as usize);
        (b.reactor().queues.is_idle(), (named(n1), named(n2)))
    };
    assert_eq!(q(&base), (true, (None, None)));
    // Active later only: not idle, yet priority 0 is empty.
    base.activate_later(evs[0], What::TIMEOUT).unwrap();
    assert_eq!(q(&base), (false, (None, None)));
    assert!(base.reactor().queues.is_empty(0));
    assert!(!base.reactor().queues.later_is_empty());
    base.activate(evs[1], What::TIMEOUT, 1).unwrap();
    assert_eq!(q(&base), (false, (Some(idx[1]), None)));
    base.activate(evs[2], What::TIMEOUT, 1).unwrap();
    assert_eq!(q(&base), (false, (Some(idx[1]), Some(idx[2]))));
    base.reactor_mut().before_poll();
    assert!(base.reactor().queues.later_is_empty());
    assert_eq!(base.reactor_mut().pop_active(0), Some(idx[1]));
    assert_eq!(q(&base), (false, (Some(idx[2]), Some(idx[0]))));
    base.verify().unwrap();
    base.run(LoopFlags::NONBLOCK).unwrap();
    assert_eq!(q(&base), (true, (None, None)));
}

#[test]
fn a_queue_holding_every_slot_verifies() {
    let mut base = plain_base(1);
    let evs: Vec<Event> = (0..3)
        .map(|_| base.new_timer(|_, _, _| {}).unwrap())
        .collect();
    for &ev in &evs {
        base.activate(ev, What::TIMEOUT, 1).unwrap();
    }
    assert_eq!(base.reactor().table.len(), evs.len());
    base.verify().unwrap();
}

#[test]
fn verify_catches_broken_active_queues() {
    // Each corruption of a valid queue [a, b, c] (with d inactive) must be reported, with
    // the queue check's own message.
    type Corrupt = fn(&mut Reactor, &[usize]);
    let cases: [(Corrupt, &str); 4] = [
        (
            // (New events get the middle priority, 1 of 2.)
            |r, i| r.table.get_mut(i[1]).pri = 0,
            "of priority 0 is on queue 1",
        ),
        (
            |r, i| r.table.get_mut(i[2]).act = r.table.get(i[1]).act,
            "but records",
        ),
        (
            // An active-later bit on an event that is on no queue: the counts disagree.
            |r, i| r.table.mark_active(i[3], true),
            "marked active",
        ),
        (
            |r, i| {
                r.table.mark_inactive(i[1]);
                r.table.mark_active(i[1], true);
            },
            "without its active bit",
        ),
    ];
    for (n, (corrupt, want)) in cases.into_iter().enumerate() {
        let mut base = plain_base(2);
        let evs: Vec<Event> = (0..4)
            .map(|_| base.new_timer(|_, _, _| {}).unwrap())
            .collect();
        for &ev in &evs[..3] {
            base.activate(ev, What::TIMEOUT, 1).unwrap();
        }
        base.verify().unwrap();
        let idx: Vec<usize> = evs.iter().map(|e| e.idx as usize).collect();
        corrupt(base.reactor_mut(), &idx);
        let err = base
            .reactor()
            .queues
            .check(&base.reactor().table)
            .expect_err(want);
        assert!(err.contains(want), "case {n}: {err}");
        // Leave nothing for Drop to trip over.
        std::mem::forget(base);
    }
}

#[test]
fn a_completion_for_a_deleted_event_is_ignored() {
    let (mut base, script) = scripted_base();
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    let fd = std::os::unix::io::AsRawFd::as_raw_fd(&a);
    let runs = Rc::new(Cell::new(0));
    let r = runs.clone();
    let ev = base
        .new_event(fd, What::READ | What::PERSIST, move |_, _, _| {
            r.set(r.get() + 1)
        })
        .unwrap();
    base.add(ev, None).unwrap();
    let token = base.reactor().completion_token(ev.idx as usize);
    base.del(ev).unwrap();
    script
        .0
        .lock()
        .unwrap()
        .batches
        .push_back(vec![Polled::Done {
            token,
            res: 5,
            flags: 0,
        }]);
    base.run(LoopFlags::NONBLOCK).unwrap();
    assert_eq!(runs.get(), 0, "the callback of a deleted event ran");
    base.verify().unwrap();
}

#[test]
fn a_queue_that_never_drains_stays_bounded() {
    // Two events take turns: one is always queued, so the queue never empties (its array is
    // never reset) and only compaction keeps it from growing with every push.
    let mut base = plain_base(1);
    let evs: Vec<Event> = (0..2)
        .map(|_| base.new_timer(|_, _, _| {}).unwrap())
        .collect();
    base.activate(evs[0], What::TIMEOUT, 1).unwrap();
    for i in 0..100_000 {
        base.activate(evs[(i + 1) % 2], What::TIMEOUT, 1).unwrap();
        let popped = base.reactor_mut().pop_active(0).unwrap();
        assert_eq!(popped, evs[i % 2].idx as usize, "FIFO order at step {i}");
    }
    assert!(
        base.reactor().queues.footprint() <= 64,
        "queue array grew to {}",
        base.reactor().queues.footprint()
    );
    base.verify().unwrap();
    // The one left queued (the last step queued evs[0]) is removed at its recorded
    // position, which compactions have moved.
    base.del(evs[0]).unwrap();
    base.verify().unwrap();
    assert!(base.reactor().queues.is_idle());
}

#[test]
fn slots_know_where_their_callback_state_lives() {
    // The loop hints the next event's closure into the cache from its slot; the slot must
    // follow the closure through assign and forget it on free.
    fn nop(_: &mut EventBase, _: Event, _: What, _: crate::event::RawArg) {}
    let mut base = plain_base(1);
    let ev = base.new_timer(|_, _, _| {}).unwrap();
    let hint = |b: &EventBase, ev: Event| b.reactor().table.get(ev.idx as usize).hint();
    let first = hint(&base, ev);
    assert_ne!(first, 0, "a closure event's slot has no hint");
    base.assign(ev, -1, What::empty(), |_, _, _| {}).unwrap();
    assert_ne!(hint(&base, ev), 0);
    let idx = ev.idx as usize;
    base.free(ev).unwrap();
    assert_eq!(
        base.reactor().table.get(idx).hint(),
        0,
        "a freed slot keeps a hint"
    );
    let raw = base
        .new_event_raw(-1, What::empty(), nop, crate::event::RawArg::from_usize(0))
        .unwrap();
    assert_eq!(hint(&base, raw), 0, "a raw callback has no state to hint");
    base.free(raw).unwrap();
}

/// Priority 0 of a `plain_base(1)` driven as a FIFO model: `push` activates an idle event,
/// `pop` takes the head and checks it is the oldest one queued.
struct QueueModel {
    base: EventBase,
    idle: std::collections::VecDeque<Event>,
    queued: std::collections::VecDeque<Event>,
}

impl QueueModel {
    fn new(events: usize) -> QueueModel {
        let mut base = plain_base(1);
        let idle = (0..events)
            .map(|_| base.new_timer(|_, _, _| {}).unwrap())
            .collect();
        QueueModel {
            base,
            idle,
            queued: Default::default(),
        }
    }

    /// (cursor, entries, capacity) of the queue's array.
    fn shape(&self) -> (usize, usize, usize) {
        self.base.reactor().queues.shape(0)
    }

    fn push(&mut self) {
        let ev = self.idle.pop_front().expect("enough events");
        self.base.activate(ev, What::TIMEOUT, 1).unwrap();
        self.queued.push_back(ev);
    }

    fn pop(&mut self) {
        let want = self.queued.pop_front().unwrap();
        let got = self.base.reactor_mut().pop_active(0);
        assert_eq!(got, Some(want.idx as usize), "FIFO order");
        self.idle.push_back(want);
    }
}

#[test]
fn a_queue_array_grows_or_compacts_only_when_full() {
    // The first growth sizes the array for twice the table's slots: a queue can then never
    // be full of live entries, so once full it is at least half dead and compacts instead
    // of growing (no allocation at a new high of activations).
    let mut m = QueueModel::new(40);
    m.push();
    let (_, _, cap) = m.shape();
    assert!(cap >= 80, "capacity {cap} for 40 slots");
    // A queue that never drains (one to five queued at any time) cycles through far more
    // pushes than its capacity: compactions keep the capacity and the FIFO order.
    let mut compactions = 0;
    for i in 0..10 * cap {
        let before = m.shape();
        m.push();
        if m.shape().0 == 0 && before.0 != 0 {
            compactions += 1;
        }
        if i % 2 == 1 || m.queued.len() > 5 {
            m.pop();
        }
        assert_eq!(m.shape().2, cap, "the array grew at step {i}");
    }
    assert!(compactions > 0, "never compacted");
    m.base.verify().unwrap();
    // A removal after the moves finds its event at the recorded position.
    let mid = m.queued.remove(1).unwrap();
    m.base.del(mid).unwrap();
    m.idle.push_back(mid);
    m.base.verify().unwrap();
    // Drained: the array is reset (the next push writes at 0).
    while !m.queued.is_empty() {
        m.pop();
    }
    assert_eq!(m.shape().0, 0);
    assert_eq!(m.shape().1, 0);
    m.push();
    assert_eq!(m.shape().1, 1);
    m.pop();
    assert_eq!(m.base.reactor_mut().pop_active(0), None);
}

#[test]
fn removals_leave_the_rest_in_order_and_the_last_one_resets_the_array() {
    let mut m = QueueModel::new(8);
    for _ in 0..5 {
        m.push();
    }
    m.pop();
    // Remove from the middle, the tail and the head.
    for at in [1, 2, 0] {
        let ev = m.queued.remove(at).unwrap();
        m.base.del(ev).unwrap();
        m.idle.push_back(ev);
        m.base.verify().unwrap();
    }
    assert_eq!(m.queued.len(), 1);
    assert!(!m.base.reactor().queues.is_empty(0));
    let (head, len, _) = m.shape();
    assert_eq!((head, len), (1, 5), "tombstones, not moves");
    let last = m.queued.pop_front().unwrap();
    m.base.del(last).unwrap();
    assert_eq!(m.shape().0..m.shape().1, 0..0, "reset by the last removal");
    assert!(m.base.reactor().queues.is_empty(0));
    m.base.verify().unwrap();
    // And the queue works on from there.
    m.idle.push_back(last);
    m.push();
    m.push();
    m.pop();
    m.pop();
    assert_eq!(m.base.reactor_mut().pop_active(0), None);
}

/// The event and callback tables grow by a quarter by default (little left unused per
/// idle connection), by doubling when the config asks (fewer moves).
#[test]
fn tables_grow_by_a_quarter_or_by_doubling() {
    let caps = |doubling: bool| {
        let mut base = crate::EventConfig::new()
            .grow_tables_by_doubling(doubling)
            .build()
            .unwrap();
        let mut seen = Vec::new();
        for _ in 0..2000 {
            base.new_timer(|_, _, _| {}).unwrap();
            let c = (base.reactor().table.capacity(), base.handler_capacity());
            if seen.last() != Some(&c) {
                seen.push(c);
            }
        }
        seen
    };
    let quarter = caps(false);
    let double = caps(true);
    for w in quarter.windows(2) {
        assert!(
            w[1].0 <= w[0].0 + w[0].0 / 4 + 16 && w[1].1 <= w[0].1 + w[0].1 / 4 + 16,
            "{w:?}"
        );
    }
    for w in double.windows(2) {
        assert!(w[1].0 >= 2 * w[0].0 && w[1].1 >= 2 * w[0].1, "{w:?}");
    }
    assert!(
        double.len() < quarter.len() / 2,
        "{} vs {} moves",
        double.len(),
        quarter.len()
    );
}
