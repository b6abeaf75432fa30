//! `EventBase::set_wait_lock`: the loop releases a caller's lock while it waits, and only
//! then. The lock here is a real one another thread contends for; if the loop held it
//! through the wait, that thread could never wake the loop and the test would time out.

#[macro_use]
mod util;
use evrs::{EventBase, LoopFlags, WaitLock, What};
use std::cell::Cell;
use std::io::Write;
use std::rc::Rc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use util::*;

/// A lock that is not tied to a guard's scope (as a C lock is), counting its uses.
#[derive(Default)]
struct Sem {
    held: Mutex<bool>,
    freed: Condvar,
}

impl Sem {
    fn lock(&self) {
        let mut held = self.held.lock().unwrap();
        while *held {
            held = self.freed.wait(held).unwrap();
        }
        *held = true;
    }

    fn unlock(&self) {
        *self.held.lock().unwrap() = false;
        self.freed.notify_one();
    }

    fn is_held(&self) -> bool {
        *self.held.lock().unwrap()
    }
}

struct Counting {
    sem: Arc<Sem>,
    releases: Cell<u32>,
    acquires: Cell<u32>,
}

impl WaitLock for Counting {
    fn release(&self, _base: &mut EventBase) {
        assert!(self.sem.is_held(), "released a lock the loop did not hold");
        self.releases.set(self.releases.get() + 1);
        self.sem.unlock();
    }

    fn acquire(&self, _base: &mut EventBase) {
        self.sem.lock();
        self.acquires.set(self.acquires.get() + 1);
    }
}

on_every_backend! {
    fn another_thread_gets_the_lock_while_the_loop_waits(m) {
        let mut b = base(m);
        let sem = Arc::new(Sem::default());
        let lock = Rc::new(Counting { sem: sem.clone(), releases: Cell::new(0), acquires: Cell::new(0) });
        b.set_wait_lock(Some(lock.clone()));
        assert!(b.has_wait_lock());
        let (rx, mut tx) = pair();
        let got = Rc::new(Cell::new(false));
        let g = got.clone();
        let held_in_cb = Arc::clone(&sem);
        let ev = b.new_event(fd(&rx), What::READ, move |base, _, _| {
            // Callbacks run with the lock back (the caller's trampoline may release it).
            assert!(held_in_cb.is_held());
            g.set(true);
            base.loopbreak();
        }).unwrap();
        b.add(ev, None).unwrap();
        sem.lock();
        let s2 = sem.clone();
        let waker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            // Blocks for ever if the loop keeps the lock through its wait.
            s2.lock();
            tx.write_all(b"x").unwrap();
            s2.unlock();
        });
        b.run(LoopFlags::empty()).unwrap();
        assert!(got.get());
        assert!(sem.is_held(), "the loop returned without the lock");
        sem.unlock();
        waker.join().unwrap();
        assert!(lock.releases.get() >= 1);
        assert_eq!(lock.releases.get(), lock.acquires.get());
        b.free(ev).unwrap();
    }

    fn every_release_is_matched_and_a_removed_lock_is_left_alone(m) {
        let mut b = base(m);
        let sem = Arc::new(Sem::default());
        let lock = Rc::new(Counting { sem: sem.clone(), releases: Cell::new(0), acquires: Cell::new(0) });
        b.set_wait_lock(Some(lock.clone()));
        sem.lock();
        let t = b.new_timer(|_, _, _| {}).unwrap();
        b.add(t, Some(Duration::from_millis(5))).unwrap();
        b.run(LoopFlags::empty()).unwrap();
        // Every release was matched, and the lock is ours again.
        assert_eq!(lock.releases.get(), lock.acquires.get());
        assert!(sem.is_held());
        b.set_wait_lock(None);
        assert!(!b.has_wait_lock());
        let before = lock.releases.get();
        b.add(t, Some(Duration::from_millis(5))).unwrap();
        b.run(LoopFlags::empty()).unwrap();
        assert_eq!(lock.releases.get(), before, "a removed lock was still released");
        sem.unlock();
        b.free(t).unwrap();
    }
}
