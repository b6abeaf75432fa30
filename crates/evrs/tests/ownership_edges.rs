//! Who owns what at the edges: the base's own events are not the user's; the panic rule
//! frees only the event that panicked; finalizers always run (signal events, finalizers
//! queued by finalizers at teardown); `SharedBase` drops user closures without its lock; a
//! panicking `Handle` closure costs no other command; a failed batched epoll registration is
//! told, not swallowed. (Each was a bug found by review of the core reshaping.)
mod util;
use evrs::{Count, Event, EventBase, Handle, LoopFlags, SharedBase, What};
use std::cell::{Cell, RefCell};
use std::ops::ControlFlow;
use std::os::unix::io::AsRawFd;
use std::rc::Rc;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;
use util::*;

/// The base's internal events (notify eventfd, signal pipe, loopexit) as `foreach_event`
/// lists them, with their handles.
fn internal_events(b: &EventBase) -> Vec<Event> {
    let mut out = Vec::new();
    let _ = b.foreach_event(|i| {
        if i.internal {
            out.push(i.event);
        }
        ControlFlow::Continue(())
    });
    out
}

/// A command sent from another thread ~50 ms into the run must run promptly (the notify
/// eventfd wakes the loop), not only when the loop next wakes on its own (a timer due at
/// 1 s). Returns whether it ran within 400 ms of the start.
fn handle_command_runs_promptly(b: &mut EventBase, h: Handle) -> bool {
    let t0 = std::time::Instant::now();
    let ran_at = Arc::new(std::sync::Mutex::new(None));
    let r = ran_at.clone();
    let sender = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        h.run_in_loop(move |_| *r.lock().unwrap() = Some(t0.elapsed()))
            .unwrap();
    });
    let timer = b.new_timer(|base, _, _| base.loopbreak()).unwrap();
    b.add(timer, Some(Duration::from_secs(1))).unwrap();
    b.run(LoopFlags::NO_EXIT_ON_EMPTY).unwrap();
    sender.join().unwrap();
    let ran = *ran_at.lock().unwrap();
    ran.is_some_and(|d| d < Duration::from_millis(400))
}

on_every_backend! {
    /// `foreach_event` hands out the handle of the base's notify event, and every user
    /// operation accepts it: `del` unregisters the eventfd, so no `Handle` can wake the
    /// loop any more.
    fn deleting_the_internal_notify_event_is_refused(m) {
        let mut b = base(m);
        let h = b.handle().unwrap();
        let internal = internal_events(&b);
        assert_eq!(internal.len(), 1, "the notify event is listed");
        let del = b.del(internal[0]);
        let prompt = handle_command_runs_promptly(&mut b, h);
        b.verify().unwrap();
        assert!(
            del.is_err() || prompt,
            "del of the internal notify event succeeded and the Handle can no longer wake the loop"
        );
    }

    /// Freeing the notify event through its listed handle leaves `EventBase::notify` naming
    /// a free slot; the next user event gets that slot, and `reinit` then moves the *user's*
    /// event onto the new eventfd.
    fn freeing_the_internal_notify_event_is_refused(m) {
        let mut b = base(m);
        let _h = b.handle().unwrap();
        let internal = internal_events(&b)[0];
        let freed = b.free(internal);
        let (_x, y) = pair();
        let ev = b.new_event(fd(&y), What::READ, |_, _, _| {}).unwrap();
        b.add(ev, None).unwrap();
        b.reinit().unwrap();
        assert!(
            freed.is_err() || b.fd(ev).unwrap() == fd(&y),
            "reinit moved a user event from fd {} to fd {} (the new eventfd)",
            fd(&y),
            b.fd(ev).unwrap()
        );
        b.free(ev).unwrap();
    }

    /// A callback frees its own event, then makes the base's first `Handle` (its notify
    /// event takes the freed slot: the free list is LIFO), then panics. The panic rule
    /// (`free_after_panic`) sees "slot live, no handler" and frees the *notify* event.
    fn panic_after_self_free_keeps_the_internal_event_that_took_the_slot(m) {
        let mut b = base(m);
        let slot: Rc<RefCell<Option<Handle>>> = Rc::new(RefCell::new(None));
        let s = slot.clone();
        let ev = b
            .new_timer(move |base, ev, _| {
                base.free(ev).unwrap();
                *s.borrow_mut() = Some(base.handle().unwrap());
                panic!("review_findings: deliberate panic");
            })
            .unwrap();
        b.activate(ev, What::TIMEOUT, 1).unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| b.run(LoopFlags::empty())));
        assert!(r.is_err());
        let h = slot.borrow_mut().take().expect("the handle was made");
        b.verify().unwrap();
        assert!(
            handle_command_runs_promptly(&mut b, h),
            "after the panic the Handle no longer wakes the loop: its notify event was freed"
        );
    }

    /// A finalizer of a signal event is queued with `ncalls` 0 (begin_finalize -> del_idx),
    /// and the loop's SIGNAL branch calls the handler once per `ncalls`: the finalizer never
    /// runs — not in the loop, not at teardown (FINALIZING was cleared by prepare_callback).
    fn finalizer_of_a_signal_event_runs(m) {
        let ran = Rc::new(Cell::new(0));
        {
            let mut b = base(m);
            let ev = b.new_signal(libc::SIGUSR2, |_, _, _| {}).unwrap();
            b.add(ev, None).unwrap();
            let r = ran.clone();
            b.free_finalize(ev, move |_, _| r.set(r.get() + 1)).unwrap();
            b.dispatch().unwrap();
            b.verify().unwrap();
        }
        assert_eq!(ran.get(), 1, "the signal event's finalizer ran neither in the loop nor at teardown");
    }

    /// Inside a callback (change list on), an fd event is freed, its fd number is re-used
    /// for a file epoll cannot watch (/dev/null), and a new event is added on it. Outside a
    /// loop `add` fails (EPERM); here it returns Ok, the deferred EPOLL_CTL fails in
    /// `apply_changes` and is dropped (`let _ = self.apply_one(fd)`): the event is INSERTED
    /// but never fires and the table and backend disagree.
    fn deferred_epoll_change_failure_is_not_silent(m) {
        let mut b = base(m);
        let (_x, y) = pair();
        let yfd = fd(&y);
        let old = b.new_event(yfd, What::READ | What::PERSIST, |_, _, _| {}).unwrap();
        b.add(old, None).unwrap();
        let fired = Rc::new(Cell::new(false));
        let added: Rc<RefCell<Option<std::io::Result<()>>>> = Rc::new(RefCell::new(None));
        let (f, a) = (fired.clone(), added.clone());
        let t = b
            .new_timer(move |base, _, _| {
                base.free(old).unwrap();
                let devnull = std::fs::File::open("/dev/null").unwrap();
                // SAFETY: dup2 onto a descriptor this test owns (`y`'s), closing its socket.
                assert_eq!(unsafe { libc::dup2(devnull.as_raw_fd(), yfd) }, yfd);
                let f = f.clone();
                let ev = base
                    .new_event(yfd, What::READ, move |base, _, _| {
                        f.set(true);
                        base.loopbreak();
                    })
                    .unwrap();
                *a.borrow_mut() = Some(base.add(ev, None));
            })
            .unwrap();
        b.add(t, Some(Duration::from_millis(1))).unwrap();
        let stop = b.new_timer(|base, _, _| base.loopbreak()).unwrap();
        b.add(stop, Some(Duration::from_millis(500))).unwrap();
        b.run(LoopFlags::empty()).unwrap();
        let add_failed = added.borrow().as_ref().expect("the timer ran").is_err();
        assert!(
            add_failed || fired.get(),
            "add returned Ok but the event never fired (verify: {:?})",
            b.verify()
        );
        b.free(stop).unwrap(); // still pending when the new event's callback broke the loop
    }

    /// libevent's regress main/dup_fd, in Rust: an fd is closed while a `dup` of it keeps
    /// the file (and so its epoll registration) alive, then deleted; the stale report that
    /// follows makes epoll rebuild its set. The program then `dup2`s onto the number it
    /// closed. The rebuilt set must not have taken that number (it keeps the old one), or
    /// the `dup2` silently closes the base's epoll fd and every later call fails.
    fn a_rebuilt_epoll_set_keeps_its_fd_number(m) {
        let mut b = base(m);
        let (x, y) = pair();
        write(&x, b"Hello world");
        let yfd = fd(&y);
        // The copy gets a number far above what other tests hold (the kernel hands out the
        // lowest free one), distinct per backend, so no parallel test is given it between
        // the close and the dup2 below (below 1024 for select).
        let dfd = 1010 + m as i32;
        // SAFETY: fcntl/dup2 take no pointers; `dfd` is unused by this process (checked).
        unsafe {
            assert_eq!(libc::fcntl(dfd, libc::F_GETFD), -1, "fd {dfd} in use");
            assert_eq!(libc::dup2(yfd, dfd), dfd);
        }
        let got = Rc::new(Cell::new((What::empty(), What::empty())));
        let g = got.clone();
        let ev1 = b.new_event(yfd, What::READ | What::PERSIST, move |_, _, w| g.set((w, g.get().1))).unwrap();
        let g = got.clone();
        let ev2 = b.new_event(dfd, What::READ | What::PERSIST, move |_, _, w| g.set((g.get().0, w))).unwrap();
        b.add(ev1, None).unwrap();
        b.add(ev2, None).unwrap();
        b.run(LoopFlags::ONCE).unwrap();
        assert_eq!(got.get(), (What::READ, What::READ));
        // SAFETY: closes the dup made above.
        unsafe { libc::close(dfd) };
        b.del(ev2).unwrap();
        got.set((What::empty(), What::empty()));
        b.run(LoopFlags::ONCE).unwrap();
        assert_eq!(got.get().1, What::empty(), "a deleted event fired");
        // SAFETY: dup2 onto the number this test closed above.
        assert_eq!(unsafe { libc::dup2(yfd, dfd) }, dfd);
        b.free(ev2).unwrap();
        let g = got.clone();
        let ev2 = b.new_event(dfd, What::WRITE | What::PERSIST, move |_, _, w| g.set((g.get().0, w))).unwrap();
        b.add(ev2, None).expect("the base's own fd survived the program's dup2");
        got.set((What::empty(), What::empty()));
        b.run(LoopFlags::ONCE).unwrap();
        assert_eq!(got.get().1, What::WRITE);
        b.free(ev1).unwrap();
        b.free(ev2).unwrap();
        // SAFETY: closes the second dup.
        unsafe { libc::close(dfd) };
    }

    /// A `Handle::run_in_loop` closure panics while an `ActivatePending` command is in the
    /// same batch: `run_commands` unwinds with the batch (dropped, uncounted) and the
    /// pending-activation word stays set, so every later `Handle::activate` of that event
    /// "coalesces" into a command that no longer exists — forever.
    fn panic_in_a_handle_closure_does_not_wedge_handle_activate(m) {
        let mut b = base(m);
        let h = b.handle().unwrap();
        let count = Rc::new(Cell::new(0));
        let c = count.clone();
        let ev = b.new_timer(move |_, _, _| c.set(c.get() + 1)).unwrap();
        let h2 = h.clone();
        thread::spawn(move || {
            h2.run_in_loop(|_| panic!("review_findings: deliberate panic")).unwrap();
            h2.activate(ev, What::TIMEOUT, 1).unwrap();
        })
        .join()
        .unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| b.run(LoopFlags::NONBLOCK)));
        assert!(r.is_err());
        // Whatever was lost with the panic, a new activation must be delivered.
        thread::spawn(move || h.activate(ev, What::TIMEOUT, 1).unwrap()).join().unwrap();
        let stop = b.new_timer(|base, _, _| base.loopbreak()).unwrap();
        b.add(stop, Some(Duration::from_millis(300))).unwrap();
        b.run(LoopFlags::empty()).unwrap();
        assert!(count.get() >= 1, "Handle::activate after the panic was never delivered");
    }

    /// A finalizer run at teardown finalizes another event: that second finalizer is not in
    /// `run_finalizers`' snapshot and is dropped unrun (libevent loops until none is left).
    fn finalizer_queued_by_a_finalizer_at_teardown_runs(m) {
        let ran = Rc::new(Cell::new(0));
        {
            let mut b = base(m);
            let a = b.new_timer(|_, _, _| {}).unwrap();
            let c = b.new_timer(|_, _, _| {}).unwrap();
            let (r1, r2) = (ran.clone(), ran.clone());
            b.finalize(a, move |base, _| {
                r1.set(r1.get() + 1);
                base.finalize(c, move |_, _| r2.set(r2.get() + 1)).unwrap();
            })
            .unwrap();
            b.leave_registered("the queued finalizer: the base's teardown must run it, and the one it queues");
        }
        assert_eq!(ran.get(), 2, "the second finalizer was dropped unrun");
    }
}

/// A closure whose destructor calls into the shared base: legal (callbacks run unlocked,
/// and the loop drops leftover closures without the lock, see shared/run.rs).
struct CallsBaseOnDrop(SharedBase);

impl Drop for CallsBaseOnDrop {
    fn drop(&mut self) {
        let _ = self.0.num_events(Count::Added);
    }
}

/// Runs `op` on another thread; true if it returned within 5 s (false: deadlock or panic).
fn completes(op: impl FnOnce() + Send + 'static) -> bool {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        op();
        let _ = tx.send(());
    });
    rx.recv_timeout(Duration::from_secs(5)).is_ok()
}

/// `SharedBase::free` drops the event's closure inside `EventBase::free_idx`, i.e. with the
/// base's mutex held: a destructor that touches the base self-deadlocks.
#[test]
fn shared_free_drops_the_closure_without_the_lock() {
    let _w = watchdog("review_findings::shared_free", WATCHDOG_BOUND);
    let base = shared_with(evrs::EventConfig::new());
    let guard = CallsBaseOnDrop(base.clone());
    let ev = base
        .new_timer(move |_, _, _| {
            let _ = &guard;
        })
        .unwrap();
    let b = base.clone();
    assert!(
        completes(move || b.free(ev).unwrap()),
        "SharedBase::free deadlocked: the closure was dropped under the lock"
    );
}

/// Same for `SharedBase::assign` (`reassign_with` drops the old closure under the lock) and
/// `finalize` (`finalize_with` drops the replaced closure under the lock).
#[test]
fn shared_assign_and_finalize_drop_the_old_closure_without_the_lock() {
    let _w = watchdog("review_findings::shared_assign", WATCHDOG_BOUND);
    let base = shared_with(evrs::EventConfig::new());
    let guard = CallsBaseOnDrop(base.clone());
    let ev = base
        .new_timer(move |_, _, _| {
            let _ = &guard;
        })
        .unwrap();
    let b = base.clone();
    assert!(
        completes(move || b.assign(ev, -1, What::empty(), |_, _, _| {}).unwrap()),
        "SharedBase::assign deadlocked"
    );
    let guard = CallsBaseOnDrop(base.clone());
    let ev = base
        .new_timer(move |_, _, _| {
            let _ = &guard;
        })
        .unwrap();
    let b = base.clone();
    assert!(
        completes(move || b.finalize(ev, |_| {}).unwrap()),
        "SharedBase::finalize deadlocked"
    );
    base.run(LoopFlags::NONBLOCK).unwrap(); // runs the queued finalizer
}

/// A `SharedBase::once` whose add fails (an fd beyond the process's limit: refused by `add`,
/// after the event was made) frees its event again and drops the closure without the lock.
#[test]
fn shared_once_that_cannot_be_added_leaves_nothing_and_drops_without_the_lock() {
    let _w = watchdog("shared_once_cannot_be_added", WATCHDOG_BOUND);
    let base = shared_with(evrs::EventConfig::new());
    let closed = 1 << 30;
    let guard = CallsBaseOnDrop(base.clone());
    let b = base.clone();
    let res = std::sync::Arc::new(std::sync::Mutex::new(None));
    let r = res.clone();
    assert!(
        completes(move || {
            let out = b.once(closed, What::READ, None, move |_, _| {
                let _ = &guard;
            });
            *r.lock().unwrap() = Some(out.is_err());
        }),
        "SharedBase::once deadlocked dropping its closure"
    );
    assert_eq!(
        *res.lock().unwrap(),
        Some(true),
        "once on an impossible fd is an error"
    );
    assert_eq!(base.num_events(Count::Added), 0);
    base.verify().unwrap();
}
