//! Raw callbacks (a function pointer plus an opaque `RawArg`) on `EventBase` and
//! `SharedBase`, and caller-owned identities (`assign_owned`, `owned_event`,
//! `release_owned`): the C ABI's forms.
mod util;
use evrs::{Event, EventBase, LoopFlags, RawArg, SharedBase, What};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use util::*;

/// Calls seen by raw callbacks, keyed by their argument (unique per test: tests run in
/// parallel threads, so the map is global).
type CallLog = HashMap<usize, Vec<(Event, What)>>;
static CALLS: Mutex<Option<CallLog>> = Mutex::new(None);
static NEXT_ARG: AtomicUsize = AtomicUsize::new(1000);

fn fresh_arg() -> usize {
    NEXT_ARG.fetch_add(1, Ordering::SeqCst)
}

fn record(arg: RawArg, ev: Event, what: What) {
    CALLS
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .entry(arg.as_usize())
        .or_default()
        .push((ev, what));
}

fn calls(arg: usize) -> Vec<(Event, What)> {
    CALLS
        .lock()
        .unwrap()
        .as_ref()
        .and_then(|m| m.get(&arg).cloned())
        .unwrap_or_default()
}

fn rec_cb(_: &mut EventBase, ev: Event, what: What, arg: RawArg) {
    record(arg, ev, what);
}

/// Records, and deletes the event at its 3rd call.
fn three_then_del(base: &mut EventBase, ev: Event, what: What, arg: RawArg) {
    record(arg, ev, what);
    if calls(arg.as_usize()).len() == 3 {
        base.del(ev).unwrap();
    }
}

fn frees_itself(base: &mut EventBase, ev: Event, what: What, arg: RawArg) {
    record(arg, ev, what);
    base.free(ev).unwrap();
    assert!(base.add(ev, None).is_err(), "stale after free");
}

/// Records, and re-adds its (one-shot) event for 1 ms until its 3rd call.
fn readds_itself(base: &mut EventBase, ev: Event, what: What, arg: RawArg) {
    record(arg, ev, what);
    assert!(
        base.pending(ev, What::TIMEOUT).unwrap().0.is_empty(),
        "deleted before its call"
    );
    if calls(arg.as_usize()).len() < 3 {
        base.add(ev, Some(Duration::from_millis(1))).unwrap();
    }
}

fn panics(_: &mut EventBase, _: Event, _: What, _: RawArg) {
    panic!("raw callback panics");
}

fn never(_: &mut EventBase, _: Event, _: What, _: RawArg) {
    panic!("a released owned event's callback ran");
}

fn shared_rec(base: &SharedBase, ev: Event, what: What, arg: RawArg) {
    record(arg, ev, what);
    if calls(arg.as_usize()).len() == 3 {
        base.free(ev).unwrap();
    }
}

thread_local! {
    static REASSIGN: RefCell<Option<(usize, usize)>> = const { RefCell::new(None) };
}

/// Re-assigns its own caller-owned memory from inside its callback (a C program calling
/// `event_assign` on the running event).
fn reassign_self(base: &mut EventBase, ev: Event, what: What, arg: RawArg) {
    record(arg, ev, what);
    let (owner, next_arg) = REASSIGN.with(|r| r.borrow().unwrap());
    let new = base
        .assign_owned(
            owner,
            -1,
            What::empty(),
            rec_cb,
            RawArg::from_usize(next_arg),
        )
        .unwrap();
    assert_ne!(new, ev);
    assert!(!base.is_initialized(ev), "the old slot was released");
    base.activate(new, What::TIMEOUT, 1).unwrap();
}

on_every_backend! {
    fn raw_callback_gets_its_argument_event_and_what(m) {
        let _w = watchdog("raw_callback_gets_its_argument_event_and_what", util::WATCHDOG_BOUND);
        let mut b = base(m);
        let arg = fresh_arg();
        let ev = b.new_event_raw(-1, What::empty(), rec_cb, RawArg::from_usize(arg)).unwrap();
        b.add(ev, Some(Duration::from_millis(1))).unwrap();
        b.dispatch().unwrap();
        assert_eq!(calls(arg), [(ev, What::TIMEOUT)]);
        // A pointer round-trips through RawArg unchanged.
        let x = 5u64;
        let p = RawArg::from_ptr(&x as *const u64 as *mut std::ffi::c_void);
        assert_eq!(p.as_ptr() as *const u64, &x as *const u64);
        assert_eq!(RawArg::from_usize(arg).as_usize(), arg);
        b.verify().unwrap();
    }

    fn persistent_raw_fd_event_keeps_running(m) {
        let _w = watchdog("persistent_raw_fd_event_keeps_running", util::WATCHDOG_BOUND);
        let mut b = base(m);
        let (x, y) = pair();
        write(&x, b"never drained");
        let arg = fresh_arg();
        let ev = b.new_event_raw(fd(&y), What::READ | What::PERSIST, three_then_del, RawArg::from_usize(arg)).unwrap();
        b.add(ev, None).unwrap();
        within(Duration::from_secs(10), || b.dispatch()).unwrap();
        let got = calls(arg);
        assert_eq!(got.len(), 3);
        assert!(got.iter().all(|&(e, w)| e == ev && w.contains(What::READ)), "{got:?}");
        assert!(b.is_initialized(ev));
        b.verify().unwrap();
        b.free(ev).unwrap();
        b.verify().unwrap();
    }

    fn one_shot_raw_timer_readds_itself(m) {
        let _w = watchdog("one_shot_raw_timer_readds_itself", util::WATCHDOG_BOUND);
        let mut b = base(m);
        let arg = fresh_arg();
        let ev = b.new_event_raw(-1, What::empty(), readds_itself, RawArg::from_usize(arg)).unwrap();
        b.add(ev, Some(Duration::from_millis(1))).unwrap();
        b.dispatch().unwrap();
        assert_eq!(calls(arg), [(ev, What::TIMEOUT); 3]);
        assert!(b.is_initialized(ev), "a one-shot event is deleted, not freed");
        b.verify().unwrap();
        // Its callback is still there: it runs again when re-added.
        b.add(ev, Some(Duration::from_millis(1))).unwrap();
        b.dispatch().unwrap();
        assert_eq!(calls(arg).len(), 4);
        b.verify().unwrap();
    }

    fn one_shot_raw_timer_that_panics_is_freed(m) {
        let _w = watchdog("one_shot_raw_timer_that_panics_is_freed", util::WATCHDOG_BOUND);
        let mut b = base(m);
        let ev = b.new_event_raw(-1, What::empty(), panics, RawArg::from_usize(0)).unwrap();
        b.add(ev, Some(Duration::from_millis(1))).unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| b.dispatch()));
        assert!(r.is_err());
        // The panic rule of closures holds for raw callbacks too.
        assert!(!b.is_initialized(ev));
        b.verify().unwrap();
        assert_eq!(b.dispatch().unwrap(), evrs::RunOutcome::NoEvents);
    }

    fn one_shot_raw_timer_frees_itself(m) {
        let _w = watchdog("one_shot_raw_timer_frees_itself", util::WATCHDOG_BOUND);
        let mut b = base(m);
        let arg = fresh_arg();
        let ev = b.new_event_raw(-1, What::empty(), frees_itself, RawArg::from_usize(arg)).unwrap();
        b.add(ev, Some(Duration::from_millis(1))).unwrap();
        b.dispatch().unwrap();
        assert_eq!(calls(arg).len(), 1);
        assert!(!b.is_initialized(ev));
        b.verify().unwrap();
    }

    fn raw_event_frees_itself_from_its_callback(m) {
        let _w = watchdog("raw_event_frees_itself_from_its_callback", util::WATCHDOG_BOUND);
        let mut b = base(m);
        let arg = fresh_arg();
        let ev = b.new_event_raw(-1, What::PERSIST, frees_itself, RawArg::from_usize(arg)).unwrap();
        b.add(ev, Some(Duration::from_millis(1))).unwrap();
        b.dispatch().unwrap();
        assert_eq!(calls(arg).len(), 1);
        assert!(!b.is_initialized(ev));
        assert_eq!(b.num_events(evrs::Count::Added), 0);
        b.verify().unwrap();
    }

    fn shared_raw_events(m) {
        let _w = watchdog("shared_raw_events", util::WATCHDOG_BOUND);
        let b = shared(m);
        let (x, y) = pair();
        write(&x, b"never drained");
        let arg = fresh_arg();
        let ev = b.new_event_raw(fd(&y), What::READ | What::PERSIST, shared_rec, RawArg::from_usize(arg)).unwrap();
        b.add(ev, None).unwrap();
        within(Duration::from_secs(10), || b.dispatch()).unwrap();
        let got = calls(arg);
        assert_eq!(got.len(), 3, "persistent: ran until it freed itself");
        assert!(got.iter().all(|&(e, w)| e == ev && w.contains(What::READ)));
        assert!(!b.with(|base| base.is_initialized(ev)));
        b.verify().unwrap();
        // A raw timer on the shared base, activated from another thread.
        let arg2 = fresh_arg();
        let t = b.new_event_raw(-1, What::empty(), shared_rec, RawArg::from_usize(arg2)).unwrap();
        let b2 = b.clone();
        std::thread::spawn(move || b2.activate(t, What::TIMEOUT, 1).unwrap()).join().unwrap();
        b.dispatch().unwrap();
        assert_eq!(calls(arg2), [(t, What::TIMEOUT)]);
        b.verify().unwrap();
    }

    fn owned_event_names_the_current_assignment(m) {
        let _w = watchdog("owned_event_names_the_current_assignment", util::WATCHDOG_BOUND);
        let mut b = base(m);
        let mem = Box::new([0u8; 128]);
        let addr = mem.as_ptr() as usize;
        assert_eq!(b.owned_event(addr), None);
        let arg = fresh_arg();
        let ev = b.assign_owned(addr, -1, What::empty(), rec_cb, RawArg::from_usize(arg)).unwrap();
        assert_eq!(b.owned_event(addr), Some(ev));
        b.activate(ev, What::TIMEOUT, 1).unwrap();
        b.dispatch().unwrap();
        assert_eq!(calls(arg), [(ev, What::TIMEOUT)]);
        // Other memory names nothing.
        assert_eq!(b.owned_event(addr + 128), None);
        b.verify().unwrap();
        b.release_owned(addr);
        assert_eq!(b.owned_event(addr), None);
        assert!(!b.is_initialized(ev));
        // Releasing memory that names nothing is a no-op.
        b.release_owned(addr);
        b.release_owned(12345);
        b.verify().unwrap();
    }

    fn reassigning_owned_memory_releases_the_old_event_whatever_its_state(m) {
        let _w = watchdog("reassigning_owned_memory_releases_the_old_event_whatever_its_state", util::WATCHDOG_BOUND);
        let mut b = base(m);
        let (x, y) = pair();
        write(&x, b"ready");
        let mem = Box::new([0u8; 128]);
        let addr = mem.as_ptr() as usize;
        // Active.
        let old = b.assign_owned(addr, -1, What::empty(), never, RawArg::from_usize(0)).unwrap();
        b.activate(old, What::TIMEOUT, 1).unwrap();
        let arg = fresh_arg();
        let new = b.assign_owned(addr, -1, What::empty(), rec_cb, RawArg::from_usize(arg)).unwrap();
        assert!(!b.is_initialized(old), "old handle stale");
        assert!(b.activate(old, What::TIMEOUT, 1).is_err());
        assert_eq!(b.owned_event(addr), Some(new));
        b.verify().unwrap();
        // Pending on a readable fd and on a timer.
        let p1 = b.assign_owned(addr, fd(&y), What::READ | What::PERSIST, never, RawArg::from_usize(0)).unwrap();
        assert!(!b.is_initialized(new));
        b.add(p1, Some(Duration::from_millis(1))).unwrap();
        let arg2 = fresh_arg();
        let cur = b.assign_owned(addr, -1, What::empty(), rec_cb, RawArg::from_usize(arg2)).unwrap();
        assert_eq!(b.num_events(evrs::Count::Added), 0, "the old event's fd and timer are gone");
        b.verify().unwrap();
        std::thread::sleep(Duration::from_millis(5));
        b.run(LoopFlags::NONBLOCK).unwrap();
        assert!(calls(arg).is_empty());
        assert!(calls(arg2).is_empty());
        b.activate(cur, What::TIMEOUT, 1).unwrap();
        b.dispatch().unwrap();
        assert_eq!(calls(arg2), [(cur, What::TIMEOUT)]);
        // Freeing through the handle forgets the owner too.
        b.free(cur).unwrap();
        assert_eq!(b.owned_event(addr), None);
        b.verify().unwrap();
    }

    fn owned_memory_reassigned_from_its_own_callback(m) {
        let _w = watchdog("owned_memory_reassigned_from_its_own_callback", util::WATCHDOG_BOUND);
        let mut b = base(m);
        let mem = Box::new([0u8; 128]);
        let addr = mem.as_ptr() as usize;
        let (a1, a2) = (fresh_arg(), fresh_arg());
        REASSIGN.with(|r| *r.borrow_mut() = Some((addr, a2)));
        let ev = b.assign_owned(addr, -1, What::PERSIST, reassign_self, RawArg::from_usize(a1)).unwrap();
        b.activate(ev, What::TIMEOUT, 1).unwrap();
        within(Duration::from_secs(5), || b.dispatch()).unwrap();
        assert_eq!(calls(a1).len(), 1, "the old callback ran once and never again");
        let now = b.owned_event(addr).unwrap();
        assert_eq!(calls(a2), [(now, What::TIMEOUT)]);
        b.verify().unwrap();
    }

    fn owner_zero_is_refused(m) {
        let _w = watchdog("owner_zero_is_refused", util::WATCHDOG_BOUND);
        let mut b = base(m);
        let e = b.assign_owned(0, -1, What::empty(), rec_cb, RawArg::from_usize(0)).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        assert_eq!(b.owned_event(0), None);
        b.release_owned(0);
        b.verify().unwrap();
    }

    fn dropping_a_base_with_pending_owned_events_is_fine(m) {
        let _w = watchdog("dropping_a_base_with_pending_owned_events_is_fine", util::WATCHDOG_BOUND);
        let mut b = base(m);
        let (_x, y) = pair();
        let mems: Vec<Box<[u8; 128]>> = (0..8).map(|_| Box::new([0u8; 128])).collect();
        for (i, mem) in mems.iter().enumerate() {
            let addr = mem.as_ptr() as usize;
            let ev = if i % 2 == 0 {
                b.assign_owned(addr, fd(&y), What::WRITE | What::PERSIST, never, RawArg::from_usize(0)).unwrap()
            } else {
                b.assign_owned(addr, -1, What::empty(), never, RawArg::from_usize(0)).unwrap()
            };
            match i % 3 {
                0 => b.add(ev, None).unwrap(),
                1 => b.add(ev, Some(Duration::from_secs(60))).unwrap(),
                _ => b.activate(ev, What::TIMEOUT, 1).unwrap(),
            }
        }
        b.leave_registered("owned events added, timed and active: what the test drops the base with");
        drop(mems);
    }
}
