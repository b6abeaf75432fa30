//! Warnings with no caller to return to go through the `log` facade: a signal delivery the
//! handler could not write (the base's pipe was full) is reported by the next drain; in
//! debug builds, an async task whose poll blocks the loop's thread for over 100 ms.
mod util;
use evrs::{LoopFlags, What};
use std::sync::Mutex;

struct Capture;

static RECORDS: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// The tests take turns: each clears and reads the one record list.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::Level::Warn
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            let mut v = RECORDS.lock().unwrap_or_else(|e| e.into_inner());
            v.push(r.args().to_string());
        }
    }
    fn flush(&self) {}
}

#[test]
fn dropped_signal_deliveries_are_logged() {
    let _w = util::watchdog("dropped_signal_deliveries_are_logged", util::WATCHDOG_BOUND);
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let _ = log::set_logger(&Capture);
    log::set_max_level(log::LevelFilter::Warn);
    for m in evrs::Method::ALL {
        RECORDS.lock().unwrap().clear();
        let mut b = util::base(m);
        let calls = std::rc::Rc::new(std::cell::Cell::new(0u64));
        let c = calls.clone();
        let ev = b
            .new_signal(libc::SIGWINCH, move |_, _, what| {
                assert!(what.contains(What::SIGNAL));
                c.set(c.get() + 1);
            })
            .unwrap();
        b.add(ev, None).unwrap();
        // More deliveries than a pipe holds (64 KiB): some cannot be written.
        for _ in 0..70_000 {
            // SAFETY: raise(2) with a signal whose handler evrs installed.
            unsafe { libc::raise(libc::SIGWINCH) };
        }
        b.run(LoopFlags::NONBLOCK).unwrap();
        assert!(calls.get() > 0, "{m}: the signal event ran");
        let warned = RECORDS
            .lock()
            .unwrap()
            .iter()
            .any(|w| w.contains("signal deliveries were dropped"));
        assert!(warned, "{m}: the dropped deliveries were logged");
        b.free(ev).unwrap();
        b.verify().unwrap();
    }
}

#[cfg(debug_assertions)]
#[test]
fn a_task_that_blocks_the_thread_is_logged_in_debug_builds() {
    let _w = util::watchdog(
        "a_task_that_blocks_the_thread_is_logged_in_debug_builds",
        util::WATCHDOG_BOUND,
    );
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let _ = log::set_logger(&Capture);
    log::set_max_level(log::LevelFilter::Warn);
    RECORDS.lock().unwrap_or_else(|e| e.into_inner()).clear();
    let mut base = evrs::EventBase::new().unwrap();
    let rt = evrs::rt::Runtime::new(&mut base).unwrap();
    rt.block_on(&mut base, async {
        std::thread::sleep(std::time::Duration::from_millis(150));
    })
    .unwrap();
    let logged = RECORDS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert!(
        logged
            .iter()
            .any(|r| r.contains("blocks the loop's thread")),
        "{logged:?}"
    );
    rt.shutdown(&mut base);
}
