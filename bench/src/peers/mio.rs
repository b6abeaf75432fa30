//! mio 1.x: `Poll` + `SourceFd`, edge-triggered. mio has no timers, so only pipechain.

use crate::common::{forward, now_ns, pipechain_samples, skip, Bench, Counters, Params, Ring};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use std::io;

const PEER: &str = "mio";

/// A pipechain driven by `mio::Poll`.
pub struct MioChain {
    poll: Poll,
    events: Events,
    ring: Ring,
    c: Counters,
}

impl MioChain {
    /// Creates the ring and registers every read end for `READABLE`.
    pub fn new(n: usize, duplex: bool) -> io::Result<MioChain> {
        let poll = Poll::new()?;
        let ring = Ring::new(n, duplex)?;
        for (i, fd) in ring.rd.iter().enumerate() {
            poll.registry()
                .register(&mut SourceFd(fd), Token(i), Interest::READABLE)?;
        }
        Ok(MioChain {
            poll,
            events: Events::with_capacity(256),
            ring,
            c: Counters::default(),
        })
    }

    /// One run; returns the dispatch time in ns.
    pub fn run(&mut self, active: usize, writes: usize) -> io::Result<u64> {
        self.c.start(writes);
        self.ring.inject(active);
        let target = (active + writes) as u64;
        let t0 = now_ns();
        while self.c.reads.get() < target {
            match self.poll.poll(&mut self.events, None) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for ev in self.events.iter() {
                let i = ev.token().0;
                // Edge-triggered: drain until EAGAIN.
                while forward(self.ring.rd[i], self.ring.next_wr(i), &self.c) > 0 {}
            }
        }
        Ok(now_ns() - t0)
    }
}

/// Child entry: pipechain.
pub fn pipechain(p: &Params) -> io::Result<()> {
    let mut chain = MioChain::new(p.n, p.duplex)?;
    pipechain_samples(PEER, p, || chain.run(p.active, p.writes))
}

/// Child entry for the timer benchmarks: mio has no timers.
pub fn timers(bench: Bench, p: &Params) -> io::Result<()> {
    skip(bench, PEER, p.n, "mio has no timers");
    Ok(())
}
