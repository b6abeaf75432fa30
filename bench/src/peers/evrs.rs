//! evrs: one persistent read event per ring element whose callback forwards the bytes; the loop is
//! `run(LoopFlags::ONCE)` until the run's bytes are all read (libevent's bench.c shape).

use crate::common::{
    adddel_deadlines, cpu_ns, fire_deadlines, forward, now_ns, pipechain_samples, sample, Bench,
    Counters, Params, Ring,
};
use evrs::{Event, EventBase, EventConfig, LoopFlags, Method, What};
use std::cell::Cell;
use std::io;
use std::rc::Rc;

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

/// The peer name for a method (`evrs` for epoll, `evrs-poll`, `evrs-select`).
pub fn peer_name(method: Method) -> &'static str {
    match method {
        Method::Epoll => "evrs",
        Method::Poll => "evrs-poll",
        Method::Select => "evrs-select",
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
        if fired.get() != p.n {
            return Err(io::Error::other(format!(
                "fired {} of {}",
                fired.get(),
                p.n
            )));
        }
        if rep >= p.warmup {
            sample(Bench::TimersFire, peer_name(method), p.n, "cpu_ns", c1 - c0);
            sample(
                Bench::TimersFire,
                peer_name(method),
                p.n,
                "wall_ns",
                t1 - t0,
            );
        }
    }
    Ok(())
}
