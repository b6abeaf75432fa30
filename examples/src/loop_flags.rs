//! The libevent book's loop pseudo-code, made visible:
//!
//! ```text
//! while (any events are registered with the loop, or EVLOOP_NO_EXIT_ON_EMPTY was set) {
//!     if (EVLOOP_NONBLOCK was set, or any events are already active)
//!         If any registered events have triggered, mark them active.
//!     else
//!         Wait until at least one event has triggered, and mark it active.
//!     for (p = 0; p < n_priorities; ++p) {
//!        if (any event with priority of p is active) {
//!           Run all active events with priority of p.
//!           break; /* Do not run any events of a less important priority */
//!        }
//!     }
//!     if (EVLOOP_ONCE was set or EVLOOP_NONBLOCK was set)
//!        break;
//! }
//! ```
//!
//! One refinement the pseudo-code glosses over (libevent and evrs agree): `ONCE` and
//! `NONBLOCK` leave only when no callbacks are *still active*; so one `run` works through
//! every priority level, one level per iteration, before it returns.
//!
//! [`demo`] runs four small scenes and returns what happened, line by line.

use evrs::{Count, Event, EventBase, EventConfig, LoopFlags, What};
use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

type Log = Rc<RefCell<Vec<String>>>;

fn say(log: &Log, line: impl Into<String>) {
    log.borrow_mut().push(line.into());
}

/// Runs the scenes; returns the transcript.
pub fn demo() -> io::Result<Vec<String>> {
    let log: Log = Rc::default();
    priorities(&log)?;
    once(&log)?;
    nonblock(&log)?;
    no_exit_on_empty(&log)?;
    let lines = log.borrow().clone();
    Ok(lines)
}

/// A user event at priority `pri` that logs its name and how many callbacks are still
/// waiting when it runs.
fn named(base: &mut EventBase, log: &Log, name: &'static str, pri: usize) -> io::Result<Event> {
    let l = log.clone();
    let ev = base.new_timer(move |base, _ev, _what| {
        let waiting = base.num_events(Count::Active);
        say(
            &l,
            format!("  ran {name} (priority {pri}); {waiting} still active"),
        );
    })?;
    base.set_priority(ev, pri)?;
    Ok(ev)
}

/// Scene 1: only the most urgent active priority runs per iteration.
fn priorities(log: &Log) -> io::Result<()> {
    say(
        log,
        "1. priorities: activate low(2), mid(1), high-a(0), high-b(0), in that order",
    );
    let mut base = EventConfig::new().priorities(3).build()?;
    let low = named(&mut base, log, "low", 2)?;
    // `mid` also activates `urgent` (priority 0) while priority 1 is running: the loop
    // finishes mid's level, then polls again and runs urgent before it gets to low.
    let l = log.clone();
    let urgent = named(&mut base, log, "urgent", 0)?;
    let mid = base.new_timer(move |base, _ev, _what| {
        say(
            &l,
            "  ran mid (priority 1); it activates urgent (priority 0)",
        );
        base.activate(urgent, What::TIMEOUT, 1).unwrap();
    })?;
    base.set_priority(mid, 1)?;
    let high_a = named(&mut base, log, "high-a", 0)?;
    let high_b = named(&mut base, log, "high-b", 0)?;
    for ev in [low, mid, high_a, high_b] {
        base.activate(ev, What::TIMEOUT, 1)?;
    }
    // One run works through all three levels; afterwards no event is pending or active, so
    // the loop reports NoEvents (libevent's return value 1).
    let outcome = base.run(LoopFlags::NONBLOCK)?;
    say(
        log,
        format!("  run(NONBLOCK) -> {outcome:?}: all ran, nothing is left"),
    );
    Ok(())
}

/// A one-shot read event on `sock` that logs `name`.
fn reader(
    base: &mut EventBase,
    log: &Log,
    name: &'static str,
    sock: &UnixStream,
) -> io::Result<Event> {
    let l = log.clone();
    let mut s = sock.try_clone()?;
    base.new_event(sock.as_raw_fd(), What::READ, move |_base, _ev, _what| {
        let _ = s.read(&mut [0u8; 64]);
        say(&l, format!("  ran {name}"));
    })
}

/// Scene 2: ONCE waits for something to happen, runs it, and returns.
fn once(log: &Log) -> io::Result<()> {
    say(
        log,
        "2. ONCE: a socket with data waiting, and a one-minute timer",
    );
    let mut base = EventBase::new()?;
    let (mut a, b) = UnixStream::pair()?;
    b.set_nonblocking(true)?;
    let ready = reader(&mut base, log, "the socket's read callback", &b)?;
    base.add(ready, None)?;
    let slow = named(&mut base, log, "slow timer", 0)?;
    base.add(slow, Some(Duration::from_secs(60)))?;
    a.write_all(b"x")?;
    let outcome = base.run(LoopFlags::ONCE)?;
    let (pending, _) = base.pending(slow, What::TIMEOUT)?;
    say(
        log,
        format!(
            "  run(ONCE) -> {outcome:?}; slow timer still pending: {}",
            !pending.is_empty()
        ),
    );

    // With nothing ready, ONCE blocks until the earliest timer.
    let quick = named(&mut base, log, "20 ms timer", 0)?;
    base.add(quick, Some(Duration::from_millis(20)))?;
    let start = Instant::now();
    let outcome = base.run(LoopFlags::ONCE)?;
    let waited = start.elapsed() >= Duration::from_millis(20);
    say(
        log,
        format!("  run(ONCE) -> {outcome:?}; it waited for the timer: {waited}"),
    );
    Ok(())
}

/// Scene 3: NONBLOCK never waits.
fn nonblock(log: &Log) -> io::Result<()> {
    say(
        log,
        "3. NONBLOCK: the same socket, nothing written yet; a one-minute timer",
    );
    let mut base = EventBase::new()?;
    let (mut a, b) = UnixStream::pair()?;
    b.set_nonblocking(true)?;
    let ev = reader(&mut base, log, "the socket's read callback", &b)?;
    base.add(ev, None)?;
    let slow = named(&mut base, log, "slow timer", 0)?;
    base.add(slow, Some(Duration::from_secs(60)))?;
    let start = Instant::now();
    let outcome = base.run(LoopFlags::NONBLOCK)?;
    let quick = start.elapsed() < Duration::from_secs(30);
    say(
        log,
        format!("  run(NONBLOCK) -> {outcome:?}; nothing ran, returned at once: {quick}"),
    );
    a.write_all(b"x")?;
    let outcome = base.run(LoopFlags::NONBLOCK)?;
    say(log, format!("  wrote a byte; run(NONBLOCK) -> {outcome:?}"));
    Ok(())
}

/// Scene 4: NO_EXIT_ON_EMPTY, and loopexit.
fn no_exit_on_empty(log: &Log) -> io::Result<()> {
    say(
        log,
        "4. NO_EXIT_ON_EMPTY and loopexit, on a base with no events",
    );
    let mut base = EventBase::new()?;
    let outcome = base.dispatch()?;
    say(
        log,
        format!("  dispatch() -> {outcome:?} (nothing to wait for)"),
    );
    let outcome = base.run(LoopFlags::NO_EXIT_ON_EMPTY | LoopFlags::NONBLOCK)?;
    say(
        log,
        format!("  run(NO_EXIT_ON_EMPTY | NONBLOCK) -> {outcome:?} (empty is no reason to stop)"),
    );
    // Without NONBLOCK, an empty loop with NO_EXIT_ON_EMPTY would wait forever (for events
    // another part of the program might add); loopexit is how it ends.
    base.loopexit(Some(Duration::from_millis(20)))?;
    let start = Instant::now();
    let outcome = base.run(LoopFlags::NO_EXIT_ON_EMPTY)?;
    let waited = start.elapsed() >= Duration::from_millis(20);
    say(
        log,
        format!(
            "  loopexit(20 ms); run(NO_EXIT_ON_EMPTY) -> {outcome:?}; got_exit: {}; waited: {waited}",
            base.got_exit()
        ),
    );
    Ok(())
}
