//! Signals as events: delivery counts, several events per signal, handler restore, SIGCHLD
//! with a real fork. Signals are process-wide, so these tests take a lock and run one at a
//! time (one base owns signal delivery at a time, as in libevent).
mod util;
use evrs::{LoopFlags, What};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::Mutex;
use std::time::Duration;
use util::*;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sends `sig` to this thread: the handler has run when `raise` returns.
fn raise(sig: i32) {
    // SAFETY: raise takes no pointers; the signal has a handler installed by the base.
    unsafe {
        libc::raise(sig);
    }
}

fn current_handler(sig: i32) -> usize {
    // SAFETY: reads the current action into a zeroed struct.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig, std::ptr::null(), &mut old);
        old.sa_sigaction
    }
}

on_every_backend! {
    fn signal_event_fires_once_per_delivery(m) {
        let _g = serial();
        let mut b = base(m);
        let n = Rc::new(Cell::new(0));
        let c = n.clone();
        let ev = b.new_signal(libc::SIGUSR1, move |base, ev, what| {
            assert_eq!(what, What::SIGNAL);
            c.set(c.get() + 1);
            if c.get() == 1 {
                base.del(ev).unwrap();
            }
        }).unwrap();
        b.add(ev, None).unwrap();
        raise(libc::SIGUSR1);
        within(Duration::from_secs(5), || b.dispatch().unwrap());
        assert_eq!(n.get(), 1);
    }

    fn several_events_per_signal_and_handler_restored(m) {
        let _g = serial();
        let before = current_handler(libc::SIGUSR2);
        let mut b = base(m);
        let n = Rc::new(Cell::new(0));
        let mut evs = Vec::new();
        for _ in 0..2 {
            let c = n.clone();
            let ev = b.new_signal(libc::SIGUSR2, move |base, ev, _| {
                c.set(c.get() + 1);
                base.del(ev).unwrap();
            }).unwrap();
            b.add(ev, None).unwrap();
            evs.push(ev);
        }
        assert_ne!(current_handler(libc::SIGUSR2), before);
        raise(libc::SIGUSR2);
        within(Duration::from_secs(5), || b.dispatch().unwrap());
        assert_eq!(n.get(), 2);
        assert_eq!(current_handler(libc::SIGUSR2), before, "handler restored after last del");
    }

    fn coalesced_deliveries_are_counted(m) {
        let _g = serial();
        let mut b = base(m);
        let n = Rc::new(Cell::new(0));
        let c = n.clone();
        let ev = b.new_signal(libc::SIGWINCH, move |_, _, _| c.set(c.get() + 1)).unwrap();
        b.add(ev, None).unwrap();
        for _ in 0..3 {
            raise(libc::SIGWINCH);
        }
        // All three bytes sit in the pipe: one activation with ncalls = 3.
        b.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
        assert_eq!(n.get(), 3);
        b.free(ev).unwrap();
    }

    fn sigchld_with_real_fork_and_waitpid(m) {
        let _g = serial();
        let mut b = base(m);
        let reaped = Rc::new(Cell::new(None));
        let r = reaped.clone();
        let ev = b.new_signal(libc::SIGCHLD, move |base, ev, _| {
            let mut status = 0;
            // SAFETY: status is a valid out-pointer.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid > 0 {
                r.set(Some(libc::WEXITSTATUS(status)));
                base.del(ev).unwrap();
            }
        }).unwrap();
        b.add(ev, None).unwrap();
        // SAFETY: the child only calls async-signal-safe _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // SAFETY: terminate the child at once.
            unsafe { libc::_exit(7) };
        }
        within(Duration::from_secs(10), || b.dispatch().unwrap());
        assert_eq!(reaped.get(), Some(7));
    }

    fn bad_signal_numbers_are_refused(m) {
        let _g = serial();
        let mut b = base(m);
        for bad in [-1, 0, 65, 1000, libc::SIGKILL, libc::SIGSTOP] {
            let e = b.new_signal(bad, |_, _, _| {}).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{bad}: {e}");
        }
        assert_eq!(b.dispatch().unwrap(), evrs::RunOutcome::NoEvents);
    }

    fn a_signal_handled_on_another_thread_reaches_the_owning_base(m) {
        let _g = serial();
        let mut b = base(m);
        let n = Rc::new(Cell::new(0));
        let c = n.clone();
        let ev = b
            .new_signal(libc::SIGUSR1, move |base, ev, _| {
                c.set(c.get() + 1);
                base.del(ev).unwrap();
            })
            .unwrap();
        b.add(ev, None).unwrap();
        // Another thread takes the signal (pthread_kill targets it): its handler must still
        // write to this base's pipe.
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            // SAFETY: pthread_self/pthread_kill take no pointers; the handler is installed.
            unsafe { libc::pthread_kill(libc::pthread_self(), libc::SIGUSR1) };
            tx.send(()).unwrap();
        });
        rx.recv().unwrap();
        t.join().unwrap();
        within(Duration::from_secs(5), || b.dispatch().unwrap());
        assert_eq!(n.get(), 1);
    }

    fn a_one_shot_signal_event_is_deleted_and_still_called_per_delivery(m) {
        let _g = serial();
        let mut b = base(m);
        let n = Rc::new(Cell::new(0));
        let c = n.clone();
        let ev = b.new_event(libc::SIGUSR1, What::SIGNAL, move |_, _, what| {
            assert_eq!(what, What::SIGNAL);
            c.set(c.get() + 1);
        }).unwrap();
        b.add(ev, None).unwrap();
        for _ in 0..3 {
            raise(libc::SIGUSR1);
        }
        // One activation with ncalls = 3: without PERSIST the event is deleted first, then
        // called once per delivery.
        b.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
        assert_eq!(n.get(), 3);
        assert_eq!(b.pending(ev, What::all()).unwrap().0, What::empty(), "deleted");
        b.run(LoopFlags::NONBLOCK).unwrap();
        assert_eq!(n.get(), 3);
        b.free(ev).unwrap();
    }

    fn the_finalizer_of_a_signal_event_runs(m) {
        let _g = serial();
        let mut b = base(m);
        let ev = b.new_signal(libc::SIGUSR1, |_, _, _| panic!("the callback ran")).unwrap();
        b.add(ev, None).unwrap();
        let done = Rc::new(Cell::new(0));
        let d = done.clone();
        b.free_finalize(ev, move |_, _| d.set(d.get() + 1)).unwrap();
        // The finalizer runs once, though a signal event's callback runs once per delivery
        // (and its delivery count is zero).
        b.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
        assert_eq!(done.get(), 1);
        assert!(!b.is_initialized(ev));
    }
}
