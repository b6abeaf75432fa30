//! Change callbacks: counts, ordering, enable/disable, deferred mode.

use std::sync::{Arc, Mutex};

use evrs_buffer::{CallbackInfo, EvBuffer};

type Log = Arc<Mutex<Vec<(&'static str, CallbackInfo)>>>;

fn logger(log: &Log, name: &'static str) -> impl FnMut(&EvBuffer, &CallbackInfo) + Send {
    let log = Arc::clone(log);
    move |_, info| log.lock().unwrap().push((name, *info))
}

fn info(orig_size: usize, n_added: usize, n_deleted: usize) -> CallbackInfo {
    CallbackInfo {
        orig_size,
        n_added,
        n_deleted,
    }
}

#[test]
fn counts_and_newest_first() {
    let log: Log = Default::default();
    let mut buf = EvBuffer::new();
    buf.add_cb(logger(&log, "old"));
    buf.add_cb(logger(&log, "new"));
    buf.add(b"hello").unwrap();
    buf.drain(2).unwrap();
    buf.add(b"").unwrap(); // no change, no callback
    buf.drain(0).unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        vec![
            ("new", info(0, 5, 0)),
            ("old", info(0, 5, 0)),
            ("new", info(5, 0, 2)),
            ("old", info(5, 0, 2)),
        ]
    );
}

#[test]
fn callback_sees_the_buffer() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    let mut buf = EvBuffer::new();
    buf.add_cb(move |b, _| s.lock().unwrap().push(b.to_vec()));
    buf.add(b"ab").unwrap();
    buf.prepend(b"x").unwrap();
    assert_eq!(*seen.lock().unwrap(), vec![b"ab".to_vec(), b"xab".to_vec()]);
}

#[test]
fn enable_disable_remove() {
    let log: Log = Default::default();
    let mut buf = EvBuffer::new();
    let id = buf.add_cb(logger(&log, "a"));
    assert!(buf.disable_cb(id));
    buf.add(b"x").unwrap();
    assert!(log.lock().unwrap().is_empty());
    assert!(buf.enable_cb(id));
    buf.add(b"y").unwrap();
    assert_eq!(log.lock().unwrap().len(), 1);
    assert!(buf.remove_cb(id));
    assert!(!buf.remove_cb(id));
    assert!(!buf.enable_cb(id));
    buf.add(b"z").unwrap();
    assert_eq!(log.lock().unwrap().len(), 1);
}

#[test]
fn add_buffer_runs_source_then_destination() {
    let log: Log = Default::default();
    let mut src = EvBuffer::new();
    let mut dst = EvBuffer::new();
    src.add(b"abc").unwrap();
    src.add_cb(logger(&log, "src"));
    dst.add_cb(logger(&log, "dst"));
    dst.add_buffer(&mut src).unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        vec![("src", info(3, 0, 3)), ("dst", info(0, 3, 0))]
    );
}

#[test]
fn deferred_counts_accumulate_between_runs() {
    let log: Log = Default::default();
    let scheduled = Arc::new(Mutex::new(0));
    let s = Arc::clone(&scheduled);
    let mut buf = EvBuffer::new();
    buf.add(b"0123456789").unwrap();
    buf.add_cb(logger(&log, "deferred"));
    buf.add_cb_immediate(logger(&log, "now"));
    buf.defer_callbacks(Some(Box::new(move || *s.lock().unwrap() += 1)));

    buf.add(b"abc").unwrap();
    buf.drain(5).unwrap();
    buf.add(b"de").unwrap();
    assert!(buf.has_pending_callbacks());
    assert_eq!(*scheduled.lock().unwrap(), 1, "scheduled once per batch");
    // Only the immediate callback ran so far.
    assert!(log.lock().unwrap().iter().all(|(n, _)| *n == "now"));
    assert_eq!(log.lock().unwrap().len(), 3);
    log.lock().unwrap().clear();

    buf.run_deferred_callbacks();
    assert_eq!(*log.lock().unwrap(), vec![("deferred", info(10, 5, 5))]);
    assert!(!buf.has_pending_callbacks());
    buf.run_deferred_callbacks();
    assert_eq!(log.lock().unwrap().len(), 1);

    buf.drain(1).unwrap();
    assert_eq!(*scheduled.lock().unwrap(), 2);
    buf.defer_callbacks(None);
    buf.run_deferred_callbacks();
    assert_eq!(
        log.lock().unwrap().last().unwrap(),
        &("deferred", info(10, 0, 1))
    );
}
