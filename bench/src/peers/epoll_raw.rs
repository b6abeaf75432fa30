//! The floor: a hand-written level-triggered epoll loop, and an indexed binary heap for
//! timers. No abstraction, no callbacks through pointers, nothing to pay for.

use crate::common::{
    adddel_deadlines, cpu_ns, fire_deadlines, forward, now_ns, pipechain_samples, sample, Bench,
    Counters, Params, Ring,
};
use std::io;
use std::os::unix::io::RawFd;

const PEER: &str = "raw-epoll";

/// Epoll events fetched per `epoll_wait` (libevent grows its array up to 4096; the ring
/// never has more than `active` sockets ready at once).
const MAX_EVENTS: usize = 256;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

struct Epoll(RawFd);

impl Epoll {
    fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes no pointers.
        cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) }).map(Epoll)
    }

    fn add(&self, fd: RawFd, data: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: data,
        };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call.
        cvt(unsafe { libc::epoll_ctl(self.0, libc::EPOLL_CTL_ADD, fd, &mut ev) }).map(drop)
    }

    fn wait(&self, events: &mut [libc::epoll_event], timeout_ms: i32) -> io::Result<usize> {
        // SAFETY: `events` is valid for `events.len()` entries of writing.
        let r = unsafe {
            libc::epoll_wait(
                self.0,
                events.as_mut_ptr(),
                events.len() as libc::c_int,
                timeout_ms,
            )
        };
        match cvt(r) {
            Ok(k) => Ok(k as usize),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(e),
        }
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        // SAFETY: we own the epoll descriptor.
        unsafe { libc::close(self.0) };
    }
}

/// A pipechain driven by a bare epoll loop.
pub struct EpollChain {
    ep: Epoll,
    ring: Ring,
    c: Counters,
    events: Vec<libc::epoll_event>,
}

impl EpollChain {
    /// Creates the ring and registers every read end (level-triggered `EPOLLIN`).
    pub fn new(n: usize, duplex: bool) -> io::Result<EpollChain> {
        let ep = Epoll::new()?;
        let ring = Ring::new(n, duplex)?;
        for (i, &fd) in ring.rd.iter().enumerate() {
            ep.add(fd, i as u64)?;
        }
        Ok(EpollChain {
            ep,
            ring,
            c: Counters::default(),
            events: vec![libc::epoll_event { events: 0, u64: 0 }; MAX_EVENTS],
        })
    }

    /// One run; returns the dispatch time in ns.
    pub fn run(&mut self, active: usize, writes: usize) -> io::Result<u64> {
        self.c.start(writes);
        self.ring.inject(active);
        let target = (active + writes) as u64;
        let t0 = now_ns();
        while self.c.reads.get() < target {
            let k = self.ep.wait(&mut self.events, -1)?;
            for e in &self.events[..k] {
                let i = e.u64 as usize;
                forward(self.ring.rd[i], self.ring.next_wr(i), &self.c);
            }
        }
        Ok(now_ns() - t0)
    }
}

/// Child entry: pipechain.
pub fn pipechain(p: &Params) -> io::Result<()> {
    let mut chain = EpollChain::new(p.n, p.duplex)?;
    pipechain_samples(PEER, p, || chain.run(p.active, p.writes))
}

const NIL: u32 = u32::MAX;

/// A binary min-heap of `(deadline, id)` that knows where each id sits, so a timer can be
/// removed in O(log n) - the structure libevent and libev use.
pub struct TimerHeap {
    heap: Vec<(u64, u32)>,
    pos: Vec<u32>,
}

impl TimerHeap {
    /// A heap for ids `0..ids`.
    pub fn new(ids: usize) -> TimerHeap {
        TimerHeap {
            heap: Vec::with_capacity(ids),
            pos: vec![NIL; ids],
        }
    }

    fn place(&mut self, i: usize, item: (u64, u32)) {
        self.heap[i] = item;
        self.pos[item.1 as usize] = i as u32;
    }

    fn sift_up(&mut self, mut i: usize) {
        let item = self.heap[i];
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.heap[parent].0 <= item.0 {
                break;
            }
            let p = self.heap[parent];
            self.place(i, p);
            i = parent;
        }
        self.place(i, item);
    }

    fn sift_down(&mut self, mut i: usize) {
        let len = self.heap.len();
        let item = self.heap[i];
        loop {
            let l = 2 * i + 1;
            if l >= len {
                break;
            }
            let c = if l + 1 < len && self.heap[l + 1].0 < self.heap[l].0 {
                l + 1
            } else {
                l
            };
            if self.heap[c].0 >= item.0 {
                break;
            }
            let ch = self.heap[c];
            self.place(i, ch);
            i = c;
        }
        self.place(i, item);
    }

    /// Schedules `id` at `deadline` (it must not be scheduled already).
    pub fn push(&mut self, id: u32, deadline: u64) {
        self.heap.push((deadline, id));
        self.sift_up(self.heap.len() - 1);
    }

    /// Unschedules `id` if it is scheduled.
    pub fn remove(&mut self, id: u32) {
        let i = self.pos[id as usize];
        if i == NIL {
            return;
        }
        self.pos[id as usize] = NIL;
        let last = self.heap.pop().expect("heap holds id");
        let i = i as usize;
        if i < self.heap.len() {
            self.place(i, last);
            if i > 0 && self.heap[(i - 1) / 2].0 > last.0 {
                self.sift_up(i);
            } else {
                self.sift_down(i);
            }
        }
    }

    /// The earliest deadline.
    pub fn peek(&self) -> Option<u64> {
        self.heap.first().map(|e| e.0)
    }

    /// Removes and returns the earliest timer.
    pub fn pop(&mut self) -> Option<(u64, u32)> {
        let top = *self.heap.first()?;
        self.remove(top.1);
        Some(top)
    }
}

/// Child entry: add then delete `n` timers.
pub fn timers_adddel(p: &Params) -> io::Result<()> {
    let d = adddel_deadlines(p.n);
    let mut heap = TimerHeap::new(p.n);
    for rep in 0..p.warmup + p.reps {
        let t0 = now_ns();
        for (i, d) in d.iter().enumerate() {
            heap.push(i as u32, t0 + d.as_nanos() as u64);
        }
        for i in 0..p.n {
            heap.remove(i as u32);
        }
        let ns = now_ns() - t0;
        if rep >= p.warmup {
            sample(Bench::TimersAddDel, PEER, p.n, "op_ns", ns / p.n as u64);
        }
    }
    Ok(())
}

/// Child entry: `n` timers firing through an epoll_wait loop.
pub fn timers_fire(p: &Params) -> io::Result<()> {
    let d = fire_deadlines(p.n);
    let ep = Epoll::new()?;
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 8];
    for rep in 0..p.warmup + p.reps {
        let (c0, t0) = (cpu_ns(), now_ns());
        let mut heap = TimerHeap::new(p.n);
        for (i, d) in d.iter().enumerate() {
            heap.push(i as u32, now_ns() + d.as_nanos() as u64);
        }
        let mut fired = 0usize;
        loop {
            let now = now_ns();
            while heap.peek().is_some_and(|t| t <= now) {
                heap.pop();
                fired += 1;
            }
            let Some(next) = heap.peek() else { break };
            let ms = (next - now).div_ceil(1_000_000) as i32;
            ep.wait(&mut events, ms)?;
        }
        let (c1, t1) = (cpu_ns(), now_ns());
        if fired != p.n {
            return Err(io::Error::other(format!("fired {fired} of {}", p.n)));
        }
        if rep >= p.warmup {
            sample(Bench::TimersFire, PEER, p.n, "cpu_ns", c1 - c0);
            sample(Bench::TimersFire, PEER, p.n, "wall_ns", t1 - t0);
        }
    }
    Ok(())
}
