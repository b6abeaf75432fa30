//! evbuffer callbacks deferred to the loop: changes between iterations collapse into one run
//! with summed counts, and inline callbacks see nothing until the loop runs.
mod util;
use evrs::buffer::EvBuffer;
use evrs::LoopFlags;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

on_every_backend! {
    fn deferred_buffer_callbacks_run_from_the_loop_with_summed_counts(m) {
        let mut base = util::base(m);
        let buf = Rc::new(RefCell::new(EvBuffer::new()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        buf.borrow_mut().add_cb(move |b, info| {
            s.lock()
                .unwrap()
                .push((info.orig_size, info.n_added, info.n_deleted, b.len()));
        });
        let ev = base.defer_buffer_callbacks(&buf).unwrap();
        buf.borrow_mut().add(b"abc").unwrap();
        buf.borrow_mut().add(b"defg").unwrap();
        buf.borrow_mut().drain(2).unwrap();
        assert!(seen.lock().unwrap().is_empty(), "{m}: nothing runs inline");
        base.run(LoopFlags::ONCE | LoopFlags::NO_EXIT_ON_EMPTY)
            .unwrap();
        assert_eq!(*seen.lock().unwrap(), [(0, 7, 2, 5)], "{m}");
        // Dropping the buffer frees the loop's event at its next run.
        drop(buf);
        base.activate(ev, evrs::What::TIMEOUT, 1).unwrap();
        base.run(LoopFlags::NONBLOCK).unwrap();
        assert!(!base.is_initialized(ev), "{m}");
    }
}
