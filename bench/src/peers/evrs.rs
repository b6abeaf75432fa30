//! evrs: one persistent read event per ring element whose callback forwards the bytes; the loop is
//! `run(LoopFlags::ONCE)` until the run's bytes are all read (libevent's bench.c shape).

use crate::common::{
    adddel_deadlines, cpu_ns, fire_deadlines, forward, now_ns, pipechain_samples, sample, Bench,
    Counters, Params, Ring,
};
use evrs::{Event, EventBase, EventConfig, LoopFlags, Method, RawArg, What};
use std::cell::Cell;
use std::io;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A pipechain driven by an evrs base.
pub struct EvrsChain {
    base: EventBase,
    events: Vec<Event>,
    c: Rc<Counters>,
    // Declared after `base`: the base (and its events) is dropped before the fds close.
    ring: Ring,
}

impl EvrsChain {
    /// Creates the ring on a base using `method` and adds one `READ | PERSIST` event per element.
    pub fn new(n: usize, duplex: bool, method: Method) -> io::Result<EvrsChain> {
        let mut base = EventConfig::new().method(method).build()?;
        let ring = Ring::new(n, duplex)?;
        let c = Rc::new(Counters::default());
        let mut events = Vec::with_capacity(n);
        for i in 0..n {
            let (fd, next) = (ring.rd[i], ring.next_wr(i));
            let c = c.clone();
            let ev = base.new_event(fd, What::READ | What::PERSIST, move |_, _, _| {
                forward(fd, next, &c);
            })?;
            base.add(ev, None)?;
            events.push(ev);
        }
        Ok(EvrsChain {
            base,
            events,
            c,
            ring,
        })
    }

    /// One run; returns the dispatch time in ns.
    pub fn run(&mut self, active: usize, writes: usize) -> io::Result<u64> {
        self.c.start(writes);
        self.ring.inject(active);
        let target = (active + writes) as u64;
        let t0 = now_ns();
        while self.c.reads.get() < target {
            self.base.run(LoopFlags::ONCE)?;
        }
        Ok(now_ns() - t0)
    }

    /// Events (one per ring element).
    pub fn events(&self) -> &[Event] {
        &self.events
    }
}

/// The peer name for a method (`evrs` for epoll, `evrs-poll`, `evrs-select`,
/// `evrs-uring`).
pub fn peer_name(method: Method) -> &'static str {
    match method {
        Method::Epoll => "evrs",
        Method::Poll => "evrs-poll",
        Method::Select => "evrs-select",
        Method::IoUring => "evrs-uring",
    }
}

/// Child entry: pipechain.
pub fn pipechain(p: &Params, method: Method) -> io::Result<()> {
    let mut chain = EvrsChain::new(p.n, p.duplex, method)?;
    pipechain_samples(peer_name(method), p, || chain.run(p.active, p.writes))
}

/// Child entry: add then delete `n` timers (created beforehand, untimed).
pub fn timers_adddel(p: &Params, method: Method) -> io::Result<()> {
    let d = adddel_deadlines(p.n);
    let mut base = EventConfig::new().method(method).build()?;
    let mut timers = Vec::with_capacity(p.n);
    for _ in 0..p.n {
        timers.push(base.new_timer(|_, _, _| {})?);
    }
    for rep in 0..p.warmup + p.reps {
        let t0 = now_ns();
        for (&ev, &d) in timers.iter().zip(d.iter()) {
            base.add(ev, Some(d))?;
        }
        for &ev in &timers {
            base.del(ev)?;
        }
        let ns = now_ns() - t0;
        if rep >= p.warmup {
            sample(
                Bench::TimersAddDel,
                peer_name(method),
                p.n,
                "op_ns",
                ns / p.n as u64,
            );
        }
    }
    Ok(())
}

/// Child entry: `n` one-shot timers (created, added, dispatched) in one timed run.
pub fn timers_fire(p: &Params, method: Method) -> io::Result<()> {
    let d = fire_deadlines(p.n);
    for rep in 0..p.warmup + p.reps {
        let mut base = EventConfig::new().method(method).build()?;
        let fired = Rc::new(Cell::new(0usize));
        let mut timers = Vec::with_capacity(p.n);
        let (c0, t0) = (cpu_ns(), now_ns());
        for &d in &d {
            let fired = fired.clone();
            let ev = base.new_timer(move |_, _, _| fired.set(fired.get() + 1))?;
            base.add(ev, Some(d))?;
            timers.push(ev);
        }
        base.dispatch()?;
        let (c1, t1) = (cpu_ns(), now_ns());
        fire_samples(peer_name(method), p, rep, fired.get(), c1 - c0, t1 - t0)?;
    }
    Ok(())
}

static RAW_FIRED: AtomicUsize = AtomicUsize::new(0);

fn raw_count(_: &mut EventBase, _: Event, _: What, _: RawArg) {
    // A plain increment, as libev's `fired++` (only this thread touches it).
    RAW_FIRED.store(RAW_FIRED.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

/// Child entry `evrs-raw timers_fire`: the same run with a plain function callback
/// (`new_event_raw`), which stores no closure and so allocates nothing per timer, like
/// libev's `ev_timer_init` (the C peers' callbacks are function pointers too), and with the
/// room for the timers reserved at once (`reserve_events`), as the libev peer allocates its
/// watchers in one block. The plain `evrs` row keeps its owned closures and lets the table
/// grow.
pub fn timers_fire_raw(p: &Params, method: Method) -> io::Result<()> {
    let d = fire_deadlines(p.n);
    for rep in 0..p.warmup + p.reps {
        let mut base = EventConfig::new().method(method).build()?;
        RAW_FIRED.store(0, Ordering::Relaxed);
        let mut timers = Vec::with_capacity(p.n);
        let (c0, t0) = (cpu_ns(), now_ns());
        base.reserve_events(p.n);
        for &d in &d {
            let ev = base.new_event_raw(-1, What::empty(), raw_count, RawArg::from_usize(0))?;
            base.add(ev, Some(d))?;
            timers.push(ev);
        }
        base.dispatch()?;
        let (c1, t1) = (cpu_ns(), now_ns());
        let fired = RAW_FIRED.load(Ordering::Relaxed);
        fire_samples("evrs-raw", p, rep, fired, c1 - c0, t1 - t0)?;
    }
    Ok(())
}

fn fire_samples(
    peer: &str,
    p: &Params,
    rep: usize,
    fired: usize,
    cpu: u64,
    wall: u64,
) -> io::Result<()> {
    if fired != p.n {
        return Err(io::Error::other(format!("fired {fired} of {}", p.n)));
    }
    if rep >= p.warmup {
        sample(Bench::TimersFire, peer, p.n, "cpu_ns", cpu);
        sample(Bench::TimersFire, peer, p.n, "wall_ns", wall);
    }
    Ok(())
}

/// Child entry: cross-thread throughput. `p.n` producer threads each send `p.writes`
/// commands to a loop running `run(NO_EXIT_ON_EMPTY)` on this thread, in two variants:
///
/// * `evrs/run_in_loop`: `Handle::run_in_loop` closures (each captures the total, so each is
///   one small boxed allocation), counting; the one that counts the last loopbreaks.
/// * `evrs/activate`: `Handle::activate` of the producer's own event; an event already active
///   is coalesced (one callback), as in libevent. After its last activation, the last
///   producer to finish activates a "done" event, queued behind every earlier activation,
///   whose callback loopbreaks.
pub fn xthread_tput(p: &Params) -> io::Result<()> {
    use crate::common::{xt_bump, xt_reset, XtputSample, XT_COUNT};
    use std::sync::atomic::Ordering;

    let (nprod, k) = (p.n.max(1), p.writes as u64);
    let total = nprod as u64 * k;
    let mut base = EventConfig::new().method(Method::Epoll).build()?;
    let h = base.handle()?;
    let evs = (0..nprod)
        .map(|_| {
            base.new_event(-1, What::empty(), |_, _, _| {
                xt_bump();
            })
        })
        .collect::<io::Result<Vec<Event>>>()?;
    let done = base.new_event(-1, What::empty(), |b, _, _| b.loopbreak())?;
    let mut out: Vec<(&str, XtputSample)> = Vec::new();
    for rep in 0..p.warmup + p.reps {
        for variant in ["evrs/run_in_loop", "evrs/activate"] {
            let closures = variant == "evrs/run_in_loop";
            xt_reset();
            let w0 = h.wake_writes();
            let (hs, evs) = (h.clone(), evs.clone());
            let send = move |i: usize| -> io::Result<()> {
                if closures {
                    hs.run_in_loop(move |b| {
                        if xt_bump() == total {
                            b.loopbreak();
                        }
                    })
                } else {
                    hs.activate(evs[i], What::READ, 1)
                }
            };
            let hd = h.clone();
            let finish = move || {
                if closures {
                    Ok(()) // the closure that counts the last one loopbreaks
                } else {
                    hd.activate(done, What::READ, 1)
                }
            };
            let wall = with_producers(nprod, k, send, finish, || {
                base.run(LoopFlags::NO_EXIT_ON_EMPTY).map(|_| ())
            })?;
            let callbacks = XT_COUNT.load(Ordering::Relaxed);
            if closures && callbacks != total {
                return Err(io::Error::other(format!("ran {callbacks} of {total}")));
            }
            if rep >= p.warmup {
                out.push((
                    variant,
                    XtputSample {
                        wall_ns: wall,
                        cmds: total,
                        callbacks,
                        wakes: Some(h.wake_writes() - w0),
                    },
                ));
            }
        }
    }
    for rep in 0..p.warmup + p.reps {
        let s = xthread_tput_shared(nprod, k)?;
        if rep >= p.warmup {
            out.push(("evrs/shared_activate", s));
        }
    }
    for (label, s) in out {
        s.print(label, p.n);
    }
    Ok(())
}

/// Runs `nprod` producer threads that each call `send(their index)` `k` times once released
/// together; the last to finish calls `finish`. Meanwhile `run_loop` runs on this thread;
/// returns its wall time (from the release until it returns) after joining the producers.
fn with_producers<S, F>(
    nprod: usize,
    k: u64,
    send: S,
    finish: F,
    run_loop: impl FnOnce() -> io::Result<()>,
) -> io::Result<u64>
where
    S: Fn(usize) -> io::Result<()> + Send + Sync + 'static,
    F: Fn() -> io::Result<()> + Send + Sync + 'static,
{
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier};

    let start = Arc::new(Barrier::new(nprod + 1));
    let finished = Arc::new(AtomicUsize::new(0));
    let (send, finish) = (Arc::new(send), Arc::new(finish));
    let producers: Vec<_> = (0..nprod)
        .map(|i| {
            let (start, finished) = (start.clone(), finished.clone());
            let (send, finish) = (send.clone(), finish.clone());
            std::thread::spawn(move || -> io::Result<()> {
                start.wait();
                for _ in 0..k {
                    send(i)?;
                }
                if finished.fetch_add(1, Ordering::AcqRel) + 1 == nprod {
                    finish()?;
                }
                Ok(())
            })
        })
        .collect();
    start.wait();
    let t0 = now_ns();
    let res = run_loop();
    let wall = now_ns() - t0;
    for t in producers {
        t.join()
            .map_err(|_| io::Error::other("producer panicked"))??;
    }
    res.map(|()| wall)
}

/// libevent's own model on evrs: `SharedBase::activate` from `nprod` threads (base lock,
/// activate, wake the loop if it sleeps), the loop running on this thread.
fn xthread_tput_shared(nprod: usize, k: u64) -> io::Result<crate::common::XtputSample> {
    use crate::common::{xt_bump, xt_reset, XtputSample, XT_COUNT};
    use std::sync::atomic::Ordering;

    let base = evrs::SharedBase::with_config(EventConfig::new().method(Method::Epoll))?;
    let evs = (0..nprod)
        .map(|_| {
            base.new_event(-1, What::empty(), |_, _, _| {
                xt_bump();
            })
        })
        .collect::<io::Result<Vec<Event>>>()?;
    let done = base.new_event(-1, What::empty(), |b, _, _| b.loopbreak())?;
    xt_reset();
    let w0 = base.wake_writes();
    let (bs, bd) = (base.clone(), base.clone());
    let wall = with_producers(
        nprod,
        k,
        move |i| bs.activate(evs[i], What::READ, 1),
        move || bd.activate(done, What::READ, 1),
        || base.run(LoopFlags::NO_EXIT_ON_EMPTY).map(|_| ()),
    )?;
    Ok(XtputSample {
        wall_ns: wall,
        cmds: nprod as u64 * k,
        callbacks: XT_COUNT.load(Ordering::Relaxed),
        wakes: Some(base.wake_writes() - w0),
    })
}

/// Child entry: cross-thread latency. One producer thread pings `p.reps` times (after
/// `p.warmup` untimed pings): stores the ping number, sends it, and spins until the loop
/// thread has copied it to the reply atomic. Variants: `evrs/activate` (`Handle::activate`
/// of an event whose callback replies) and `evrs/run_in_loop` (a closure that replies).
pub fn xthread_lat(p: &Params) -> io::Result<()> {
    use crate::common::{latency_samples, spin_until};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    let mut base = EventConfig::new().method(Method::Epoll).build()?;
    let h = base.handle()?;
    let ping = Arc::new(AtomicU64::new(0));
    let pong = Arc::new(AtomicU64::new(0));
    let ev = {
        let (ping, pong) = (ping.clone(), pong.clone());
        base.new_event(-1, What::empty(), move |_, _, _| {
            pong.store(ping.load(Ordering::Acquire), Ordering::Release);
        })?
    };
    let (warm, reps) = (p.warmup as u64, p.reps as u64);
    let mut out = Vec::new();
    for variant in ["evrs/activate", "evrs/run_in_loop"] {
        ping.store(0, Ordering::Relaxed);
        pong.store(0, Ordering::Relaxed);
        let (h2, ping2, pong2) = (h.clone(), ping.clone(), pong.clone());
        let closures = variant == "evrs/run_in_loop";
        let pinger = std::thread::spawn(move || -> io::Result<Vec<u64>> {
            let mut rtt = Vec::with_capacity(reps as usize);
            for i in 1..=warm + reps {
                let pong = pong2.clone();
                let t0 = now_ns();
                if closures {
                    h2.run_in_loop(move |_| pong.store(i, Ordering::Release))?;
                } else {
                    ping2.store(i, Ordering::Release);
                    h2.activate(ev, What::READ, 1)?;
                }
                spin_until(&pong2, i);
                if i > warm {
                    rtt.push(now_ns() - t0);
                }
            }
            h2.loopbreak()?;
            Ok(rtt)
        });
        base.run(LoopFlags::NO_EXIT_ON_EMPTY)?;
        let rtt = pinger
            .join()
            .map_err(|_| io::Error::other("pinger panicked"))??;
        out.push((variant, rtt));
    }
    out.push(("evrs/shared_activate", xthread_lat_shared(warm, reps)?));
    for (label, mut rtt) in out {
        latency_samples(label, p.n, &mut rtt);
    }
    Ok(())
}

/// Ping-pong through `SharedBase::activate` (libevent's model: lock, activate, wake).
fn xthread_lat_shared(warm: u64, reps: u64) -> io::Result<Vec<u64>> {
    use crate::common::spin_until;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    let base = evrs::SharedBase::with_config(EventConfig::new().method(Method::Epoll))?;
    let ping = Arc::new(AtomicU64::new(0));
    let pong = Arc::new(AtomicU64::new(0));
    let ev = {
        let (ping, pong) = (ping.clone(), pong.clone());
        base.new_event(-1, What::empty(), move |_, _, _| {
            pong.store(ping.load(Ordering::Acquire), Ordering::Release);
        })?
    };
    let b2 = base.clone();
    let pinger = std::thread::spawn(move || -> io::Result<Vec<u64>> {
        while !b2.is_running() {
            std::thread::yield_now();
        }
        let mut rtt = Vec::with_capacity(reps as usize);
        for i in 1..=warm + reps {
            let t0 = now_ns();
            ping.store(i, Ordering::Release);
            b2.activate(ev, What::READ, 1)?;
            spin_until(&pong, i);
            if i > warm {
                rtt.push(now_ns() - t0);
            }
        }
        b2.loopbreak();
        Ok(rtt)
    });
    base.run(LoopFlags::NO_EXIT_ON_EMPTY)?;
    pinger
        .join()
        .map_err(|_| io::Error::other("pinger panicked"))?
}
