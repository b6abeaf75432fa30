//! tokio 1.x, `current_thread` runtime with a `LocalSet`.
//!
//! * pipechain: one task per ring element. Every socket is one `tokio::net::UnixStream`
//!   (shared through an `Rc`, since in the duplex layout one socket is both an element's
//!   read end and another element's write end). A task loops on `readable().await` +
//!   `try_read` of one byte (tokio is edge-triggered: readiness is cleared only by an
//!   `EAGAIN` read, as for mio), then `try_write`s one byte to the next element. The main
//!   task injects the bytes and awaits a `Notify` that the task finishing the run signals.
//!   Timed: from after injection until the main task resumes.
//! * timers add/del: add = create a `Sleep` (`tokio::time::sleep`, boxed so it can be kept)
//!   and poll it once with a no-op waker, which registers it with the timer wheel;
//!   del = drop it. The box allocation is part of tokio's cost here.
//! * timers fire: one spawned local task per timer (`sleep(d).await`, then count).

use crate::common::{
    adddel_deadlines, cpu_ns, fire_deadlines, now_ns, sample, user_ns, write_fd, Bench, Counters,
    Params, Ring, READ_BUF,
};
use std::cell::Cell;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::os::unix::io::{FromRawFd, RawFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Waker};
use tokio::net::UnixStream;
use tokio::sync::Notify;

const PEER: &str = "tokio";

fn runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
}

fn stream(fd: RawFd) -> io::Result<UnixStream> {
    // SAFETY: the caller hands over sole ownership of an open, nonblocking socket.
    let s = unsafe { std::os::unix::net::UnixStream::from_raw_fd(fd) };
    UnixStream::from_std(s)
}

/// Child entry: pipechain.
pub fn pipechain(p: &Params) -> io::Result<()> {
    let rt = runtime()?;
    let local = tokio::task::LocalSet::new();
    let p = *p;
    local.block_on(&rt, async move {
        let mut ring = Ring::new(p.n, p.duplex)?;
        let owned = std::mem::take(&mut ring.owned);
        let (rd, wr) = (ring.rd.clone(), ring.wr.clone());
        let wr_raw = wr.clone();
        let n = p.n;
        let c = Rc::new(Counters::default());
        let target = Rc::new(Cell::new(0u64));
        let done = Rc::new(Notify::new());
        let mut streams: HashMap<RawFd, Rc<UnixStream>> = HashMap::with_capacity(owned.len());
        for fd in owned {
            streams.insert(fd, Rc::new(stream(fd)?));
        }
        for i in 0..n {
            let rd = streams[&rd[i]].clone();
            let next = streams[&wr[(i + 1) % n]].clone();
            let (c, target, done) = (c.clone(), target.clone(), done.clone());
            tokio::task::spawn_local(async move {
                let mut buf = [0u8; READ_BUF];
                loop {
                    if rd.readable().await.is_err() {
                        return;
                    }
                    let r = match rd.try_read(&mut buf) {
                        Ok(0) => return,
                        Ok(r) => r,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                        Err(_) => return,
                    };
                    let reads = c.reads.get() + r as u64;
                    c.reads.set(reads);
                    let left = c.writes_left.get();
                    let k = (r as u64).min(left);
                    if k > 0 {
                        c.writes_left.set(left - k);
                        let mut out = &buf[..k as usize];
                        while !out.is_empty() {
                            match next.try_write(out) {
                                Ok(w) => out = &out[w..],
                                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                                    if next.writable().await.is_err() {
                                        return;
                                    }
                                }
                                Err(_) => return,
                            }
                        }
                    }
                    if reads == target.get() {
                        done.notify_one();
                    }
                }
            });
        }
        let space = (n / p.active.max(1)).max(1);
        let mut ns = Vec::with_capacity(p.reps);
        let (mut u0, mut c0) = (user_ns(), cpu_ns());
        for rep in 0..p.warmup + p.reps {
            if rep == p.warmup {
                (u0, c0) = (user_ns(), cpu_ns());
            }
            c.start(p.writes);
            target.set((p.active + p.writes) as u64);
            for k in 0..p.active {
                write_fd(wr_raw[(k * space) % n], b"e");
            }
            let t0 = now_ns();
            done.notified().await;
            if rep >= p.warmup {
                ns.push(now_ns() - t0);
            }
        }
        sample(
            Bench::Pipechain,
            PEER,
            p.n,
            "events",
            (p.active + p.writes) as u64,
        );
        let (user, cpu) = (user_ns() - u0, cpu_ns() - c0);
        for v in ns {
            sample(Bench::Pipechain, PEER, p.n, "run_ns", v);
        }
        sample(
            Bench::Pipechain,
            PEER,
            p.n,
            "user_ns_per_run",
            user / p.reps.max(1) as u64,
        );
        sample(
            Bench::Pipechain,
            PEER,
            p.n,
            "cpu_ns_per_run",
            cpu / p.reps.max(1) as u64,
        );
        Ok(())
    })
}

/// Child entry: add then delete `n` sleeps.
pub fn timers_adddel(p: &Params) -> io::Result<()> {
    let d = adddel_deadlines(p.n);
    let rt = runtime()?;
    let _guard = rt.enter();
    let mut cx = Context::from_waker(Waker::noop());
    let mut sleeps: Vec<Pin<Box<tokio::time::Sleep>>> = Vec::with_capacity(p.n);
    for rep in 0..p.warmup + p.reps {
        let t0 = now_ns();
        for &d in &d {
            let mut s = Box::pin(tokio::time::sleep(d));
            let _ = s.as_mut().poll(&mut cx);
            sleeps.push(s);
        }
        sleeps.clear();
        let ns = now_ns() - t0;
        if rep >= p.warmup {
            sample(Bench::TimersAddDel, PEER, p.n, "op_ns", ns / p.n as u64);
        }
    }
    Ok(())
}

/// Child entry: `n` sleeping tasks.
pub fn timers_fire(p: &Params) -> io::Result<()> {
    let d = fire_deadlines(p.n);
    let rt = runtime()?;
    let local = tokio::task::LocalSet::new();
    let p = *p;
    local.block_on(&rt, async move {
        for rep in 0..p.warmup + p.reps {
            let fired = Rc::new(Cell::new(0usize));
            let done = Rc::new(Notify::new());
            let (c0, t0) = (cpu_ns(), now_ns());
            for &d in &d {
                let (fired, done) = (fired.clone(), done.clone());
                tokio::task::spawn_local(async move {
                    tokio::time::sleep(d).await;
                    fired.set(fired.get() + 1);
                    if fired.get() == p.n {
                        done.notify_one();
                    }
                });
            }
            done.notified().await;
            let (c1, t1) = (cpu_ns(), now_ns());
            if rep >= p.warmup {
                sample(Bench::TimersFire, PEER, p.n, "cpu_ns", c1 - c0);
                sample(Bench::TimersFire, PEER, p.n, "wall_ns", t1 - t0);
            }
        }
        Ok(())
    })
}

/// The last task of an xthread `spawn` run signals this (a static: capturing an `Arc` would
/// add two contended reference-count updates per task).
static XT_DONE: Notify = Notify::const_new();

/// Child entry: cross-thread throughput on a `current_thread` runtime (I/O and time drivers
/// enabled, so the loop thread parks in `epoll_wait` like the reactors) driven by `block_on`
/// on this thread; `p.n` producer threads each send `p.writes` commands:
///
/// * `tokio/spawn`: `Handle::spawn` of a task that counts (and captures the total); the one
///   that counts the last signals a static `Notify` the main future awaits. The `JoinHandle`
///   is dropped at once.
/// * `tokio/mpsc`: `UnboundedSender::send(u64)` on one `unbounded_channel`; the main future
///   receives and counts until the total. No per-command allocation (the channel allocates
///   in blocks of 32) and no boxed closure: the cheapest tokio way to hand work over.
pub fn xthread_tput(p: &Params) -> io::Result<()> {
    use crate::common::{xt_bump, xt_reset, XtputSample};
    use std::sync::{Arc, Barrier};

    let rt = runtime()?;
    let (nprod, k) = (p.n.max(1), p.writes as u64);
    let total = nprod as u64 * k;
    let mut out: Vec<(&str, XtputSample)> = Vec::new();
    for rep in 0..p.warmup + p.reps {
        for variant in ["tokio/spawn", "tokio/mpsc"] {
            xt_reset();
            let start = Arc::new(Barrier::new(nprod + 1));
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
            let spawn = variant == "tokio/spawn";
            let producers: Vec<_> = (0..nprod)
                .map(|_| {
                    let (h, start, tx) = (rt.handle().clone(), start.clone(), tx.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        for i in 0..k {
                            if spawn {
                                h.spawn(async move {
                                    if xt_bump() == total {
                                        XT_DONE.notify_one();
                                    }
                                });
                            } else if tx.send(i).is_err() {
                                break;
                            }
                        }
                    })
                })
                .collect();
            drop(tx);
            start.wait();
            let t0 = now_ns();
            let callbacks = rt.block_on(async {
                if spawn {
                    XT_DONE.notified().await;
                    total
                } else {
                    let mut n = 0;
                    while rx.recv().await.is_some() {
                        n += 1;
                        if n == total {
                            break;
                        }
                    }
                    n
                }
            });
            let wall = now_ns() - t0;
            for t in producers {
                t.join()
                    .map_err(|_| io::Error::other("producer panicked"))?;
            }
            if callbacks != total {
                return Err(io::Error::other(format!("ran {callbacks} of {total}")));
            }
            if rep >= p.warmup {
                out.push((
                    variant,
                    XtputSample {
                        wall_ns: wall,
                        cmds: total,
                        callbacks,
                        wakes: None,
                    },
                ));
            }
        }
    }
    for (label, s) in out {
        s.print(label, p.n);
    }
    Ok(())
}

/// Child entry: cross-thread latency, `tokio/mpsc`: one producer sends the ping number over
/// an `unbounded_channel` and spins until the main future (in `block_on` on this thread),
/// which receives it, has stored it in the reply atomic.
pub fn xthread_lat(p: &Params) -> io::Result<()> {
    use crate::common::{latency_samples, spin_until};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    let rt = runtime()?;
    let pong = Arc::new(AtomicU64::new(0));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let (warm, reps) = (p.warmup as u64, p.reps as u64);
    let pong2 = pong.clone();
    let pinger = std::thread::spawn(move || {
        let mut rtt = Vec::with_capacity(reps as usize);
        for i in 1..=warm + reps {
            let t0 = now_ns();
            if tx.send(i).is_err() {
                break;
            }
            spin_until(&pong2, i);
            if i > warm {
                rtt.push(now_ns() - t0);
            }
        }
        rtt
    });
    rt.block_on(async {
        while let Some(i) = rx.recv().await {
            pong.store(i, Ordering::Release);
        }
    });
    let mut rtt = pinger
        .join()
        .map_err(|_| io::Error::other("pinger panicked"))?;
    latency_samples("tokio/mpsc", p.n, &mut rtt);
    Ok(())
}
