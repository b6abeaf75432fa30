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
    let key = base.reactor().table.get(ev.idx as usize).timer;
    base.reactor_mut().wheel.remove(key);
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
