//! `BevRemote` (a bufferevent used from other threads: libevent's `BEV_OPT_THREADSAFE`) on
//! every backend, with real sockets and threads while the loop runs: ordered writes from
//! many threads, `call` grouping against the loop's callbacks, enable/disable and free from
//! another thread, stale handles after a free and after the base's drop, the deadlock rule
//! on the loop thread, the panic rule, and the threading option bits.
mod util;
use evrs::bufferevent::{BevCtx, BevEvents, BevOptions, BevRemote, Flush};
use evrs::{EventBase, Handle, LoopFlags, What};
use std::cell::RefCell;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::IntoRawFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use util::*;

/// Generous: only a broken build gets near it.
const BOUND: Duration = Duration::from_secs(20);

/// Breaks the loop when dropped, so a thread that fails still lets the test end.
struct BreakOnDrop(Handle);

impl Drop for BreakOnDrop {
    fn drop(&mut self) {
        let _ = self.0.loopbreak();
    }
}

/// Runs `f` on another thread while the loop runs on this one; the loop stops when `f`
/// returns (or panics: the panic is then re-raised here).
fn run_with<T: Send + 'static>(b: &mut EventBase, f: impl FnOnce() -> T + Send + 'static) -> T {
    let stop = BreakOnDrop(b.handle().unwrap());
    let t = thread::spawn(move || {
        let _stop = stop;
        f()
    });
    b.run(LoopFlags::NO_EXIT_ON_EMPTY).unwrap();
    match t.join() {
        Ok(v) => v,
        Err(p) => std::panic::resume_unwind(p),
    }
}

/// Reads exactly `n` bytes from a blocking `s` (bounded by its read timeout).
fn read_n(s: &mut UnixStream, n: usize) -> Vec<u8> {
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(BOUND)).unwrap();
    let mut got = vec![0u8; n];
    s.read_exact(&mut got)
        .expect("the peer received everything in time");
    got
}

/// Reads a blocking `s` to EOF (bounded by its read timeout).
fn read_to_eof(s: &mut UnixStream) -> Vec<u8> {
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(BOUND)).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).expect("EOF in time");
    got
}

/// Runs the loop in non-blocking steps until `done()` (bounded).
fn run_until(b: &mut EventBase, what: &str, mut done: impl FnMut(&mut EventBase) -> bool) {
    let start = Instant::now();
    while !done(b) {
        assert!(start.elapsed() < BOUND, "timed out waiting for: {what}");
        b.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
        thread::sleep(Duration::from_millis(1));
    }
}

fn kind<T: std::fmt::Debug>(r: std::io::Result<T>) -> ErrorKind {
    r.expect_err("the call must fail").kind()
}

#[test]
fn a_remote_is_send_sync_clone() {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<BevRemote>();
}

on_every_backend! {
    fn four_threads_write_in_order(m) {
        const THREADS: u8 = 4;
        const N: u32 = 10_000;
        const REC: usize = 8;
        let mut b = base(m);
        let (bev, mut peer) = bev_pair(&mut b, BevOptions::empty());
        let remote = b.bev_remote(bev).unwrap();
        let writers_remote = remote.clone();
        let got = run_with(&mut b, move || {
            // The peer reads while four threads write through clones of one remote.
            let reader = thread::spawn(move || read_n(&mut peer, THREADS as usize * N as usize * REC));
            let writers: Vec<_> = (0..THREADS)
                .map(|t| {
                    let r = writers_remote.clone();
                    thread::spawn(move || {
                        for i in 0..N {
                            let mut rec = [b'.'; REC];
                            rec[0] = t;
                            rec[1..5].copy_from_slice(&i.to_le_bytes());
                            r.write(&rec).unwrap();
                        }
                    })
                })
                .collect();
            for w in writers {
                w.join().unwrap();
            }
            reader.join().unwrap()
        });
        // Every record whole, every thread's records in its order, none lost or repeated.
        let mut next = [0u32; THREADS as usize];
        for rec in got.chunks(REC) {
            let t = rec[0] as usize;
            assert!(t < THREADS as usize, "a record was split or corrupted: {rec:?}");
            assert_eq!(&rec[5..], b"...", "a record was split: {rec:?}");
            let i = u32::from_le_bytes(rec[1..5].try_into().unwrap());
            assert_eq!(i, next[t], "thread {t}'s writes out of order");
            next[t] += 1;
        }
        assert_eq!(next, [N; THREADS as usize]);
        assert_eq!(remote.handle().failed_commands(), 0);
        assert_eq!(remote.output_len().err().map(|e| e.kind()), Some(ErrorKind::WouldBlock),
            "a waiting call on the loop thread is refused");
        b.bev_free(bev).unwrap();
    }

    fn writes_of_every_size_stay_whole_and_in_order(m) {
        // Small writes coalesce in the queue, large ones (over 4 KiB) never do, and a batch
        // stops growing near 256 KiB: across all three, from two threads, every write
        // arrives whole and each thread's in its order.
        const SIZES: [usize; 7] = [1, 7, 4096, 4097, 20_000, 3, 300_000];
        const ROUNDS: u32 = 30;
        let record = |t: u8, i: u32, len: usize| {
            let mut r = vec![t, 0, 0, 0, 0, 0, 0, 0, 0];
            r[1..5].copy_from_slice(&i.to_le_bytes());
            r[5..9].copy_from_slice(&(len as u32).to_le_bytes());
            r.extend(std::iter::repeat_n(i as u8, len));
            r
        };
        let total: usize = 2 * ROUNDS as usize * SIZES.iter().map(|l| l + 9).sum::<usize>();
        let mut b = base(m);
        let (bev, mut peer) = bev_pair(&mut b, BevOptions::empty());
        let remote = b.bev_remote(bev).unwrap();
        let got = run_with(&mut b, move || {
            let reader = thread::spawn(move || read_n(&mut peer, total));
            let ws: Vec<_> = (0..2u8).map(|t| {
                let r = remote.clone();
                thread::spawn(move || {
                    for i in 0..ROUNDS * SIZES.len() as u32 {
                        r.write(&record(t, i, SIZES[i as usize % SIZES.len()])).unwrap();
                    }
                })
            }).collect();
            for w in ws {
                w.join().unwrap();
            }
            reader.join().unwrap()
        });
        let (mut at, mut next) = (0, [0u32; 2]);
        while at < got.len() {
            let t = got[at] as usize;
            let i = u32::from_le_bytes(got[at + 1..at + 5].try_into().unwrap());
            let len = u32::from_le_bytes(got[at + 5..at + 9].try_into().unwrap()) as usize;
            assert!(t < 2 && i == next[t], "record {i} of thread {t} out of place at {at}");
            assert_eq!(len, SIZES[i as usize % SIZES.len()], "a header was corrupted");
            assert!(got[at + 9..at + 9 + len].iter().all(|&x| x == i as u8), "split record");
            next[t] += 1;
            at += 9 + len;
        }
        assert_eq!(next, [ROUNDS * SIZES.len() as u32; 2]);
        b.bev_free(bev).unwrap();
    }

    fn a_write_does_not_overtake_other_commands(m) {
        // write, run_in_loop, write from one thread: the closure sees the first write's
        // bytes and not the second's (coalescing joins only writes that meet in the queue).
        let mut b = base(m);
        let (bev, _peer) = bev_pair(&mut b, BevOptions::empty());
        b.bev_disable(bev, What::WRITE).unwrap(); // so the output stays to be measured
        let remote = b.bev_remote(bev).unwrap();
        let h = b.handle().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let r = remote.clone();
        thread::spawn(move || {
            r.write(b"aa").unwrap();
            r.write(b"a").unwrap();
            h.run_in_loop(move |base| {
                tx.send(base.bev_output(bev).unwrap().len()).unwrap();
            }).unwrap();
            r.write(b"bbb").unwrap();
        }).join().unwrap();
        b.run(LoopFlags::NONBLOCK).unwrap();
        assert_eq!(rx.recv().unwrap(), 3, "a write overtook the closure, or fell behind it");
        assert_eq!(b.bev_output(bev).unwrap().to_vec(), b"aaabbb");
        b.bev_free(bev).unwrap();
    }

    fn call_is_atomic_against_the_loops_callbacks(m) {
        // The loop echoes the peer's records "[nnnnnnnn]" from a read callback while another
        // thread appends its own "<nnnnnnnn>" in three writes inside one `call`: the peer
        // must see every record whole — nothing ran between a call's three writes.
        const N: usize = 2_000;
        const REC: usize = 10;
        let mut b = base(m);
        let (bev, peer) = bev_pair(&mut b, BevOptions::empty());
        let in_call = Arc::new(AtomicBool::new(false));
        let overlaps = Rc::new(RefCell::new(0usize));
        let (ic, ov) = (in_call.clone(), overlaps.clone());
        b.bev_setcb(bev, Some(move |ctx: &mut BevCtx<'_>| {
            if ic.load(Ordering::SeqCst) {
                *ov.borrow_mut() += 1;
            }
            let (input, output) = ctx.buffers();
            let whole = input.len() / REC * REC;
            input.remove_buffer(output, whole).unwrap();
        }), None::<fn(&mut BevCtx<'_>)>, None::<fn(&mut BevCtx<'_>, BevEvents)>).unwrap();
        b.bev_setwatermark(bev, What::READ, REC, 0).unwrap();
        b.bev_enable(bev, What::READ | What::WRITE).unwrap();
        let remote = b.bev_remote(bev).unwrap();
        let got = run_with(&mut b, move || {
            let mut writer = peer.try_clone().unwrap();
            let mut reader = peer;
            let rx = thread::spawn(move || read_n(&mut reader, 2 * N * REC));
            let tx = thread::spawn(move || {
                writer.set_nonblocking(false).unwrap();
                for i in 0..N {
                    writer.write_all(format!("[{i:08}]").as_bytes()).unwrap();
                }
            });
            for i in 0..N {
                let ic = in_call.clone();
                remote.call(move |ctx| {
                    ic.store(true, Ordering::SeqCst);
                    ctx.write(b"<").unwrap();
                    ctx.write(format!("{i:08}").as_bytes()).unwrap();
                    ctx.write(b">").unwrap();
                    ic.store(false, Ordering::SeqCst);
                }).unwrap();
            }
            tx.join().unwrap();
            rx.join().unwrap()
        });
        assert_eq!(*overlaps.borrow(), 0, "a callback ran inside a call");
        let (mut echoed, mut called) = (0, 0);
        for rec in got.chunks(REC) {
            let n: usize = std::str::from_utf8(&rec[1..9]).expect("a whole record").parse().unwrap();
            match (rec[0], rec[9]) {
                (b'[', b']') => { assert_eq!(n, echoed); echoed += 1 }
                (b'<', b'>') => { assert_eq!(n, called); called += 1 }
                _ => panic!("records interleaved: {:?}", String::from_utf8_lossy(rec)),
            }
        }
        assert_eq!((echoed, called), (N, N));
        b.bev_free(bev).unwrap();
    }

    fn call_returns_its_result_and_may_free(m) {
        let mut b = base(m);
        let (bev, mut peer) = bev_pair(&mut b, BevOptions::empty());
        peer.write_all(b"abc").unwrap();
        b.bev_enable(bev, What::READ).unwrap();
        run_until(&mut b, "input", |b| b.bev_input(bev).map(|i| i.len()).unwrap_or(0) == 3);
        let remote = b.bev_remote(bev).unwrap();
        let r = remote.clone();
        let (lens, after) = run_with(&mut b, move || {
            let lens = r.call(|ctx| {
                ctx.write(b"bye").unwrap();
                (ctx.input().len(), ctx.output().len())
            }).unwrap();
            // Freed inside the call: torn down when it returns (unsent output would go with
            // it, as with bev_free: flush first).
            r.call(|ctx| {
                let h = ctx.handle();
                ctx.base().bev_flush(h, Flush::Normal).unwrap();
                ctx.free();
            }).unwrap();
            (lens, (r.is_freed(), kind(r.input_len())))
        });
        assert_eq!(lens, (3, 3), "the call saw the input and its own output");
        assert_eq!(after, (true, ErrorKind::InvalidInput), "freed inside the call");
        assert_eq!(b.bev_count(), 0);
        assert_eq!(read_to_eof(&mut peer), b"bye");
        assert!(remote.is_freed());
    }

    fn enable_and_disable_from_another_thread_take_effect(m) {
        let mut b = base(m);
        let (bev, peer) = bev_pair(&mut b, BevOptions::THREADSAFE);
        let remote = b.bev_remote(bev).unwrap();
        run_with(&mut b, move || {
            let mut peer = peer;
            assert_eq!(remote.get_enabled().unwrap(), What::WRITE, "libevent's default");
            peer.write_all(b"12345").unwrap();
            thread::sleep(Duration::from_millis(30));
            assert_eq!(remote.input_len().unwrap(), 0, "read while READ was off");
            remote.enable(What::READ).unwrap();
            assert_eq!(remote.get_enabled().unwrap(), What::READ | What::WRITE);
            assert!(eventually(BOUND, || remote.input_len().unwrap() == 5), "no read after enable");
            remote.disable(What::READ).unwrap();
            assert_eq!(remote.get_enabled().unwrap(), What::WRITE);
            peer.write_all(b"67890").unwrap();
            thread::sleep(Duration::from_millis(30));
            assert_eq!(remote.input_len().unwrap(), 5, "read after disable returned");
            // A high watermark of 7 set from here: reading stops at 7 of the 10 bytes.
            remote.set_watermark(What::READ, 0, 7).unwrap();
            remote.enable(What::READ).unwrap();
            assert!(eventually(BOUND, || remote.input_len().unwrap() == 7), "high mark ignored");
            // Errors on the loop thread come back: inverted watermarks.
            assert_eq!(kind(remote.set_watermark(What::READ, 10, 5)), ErrorKind::InvalidInput);
            let drained = remote.call(|ctx| ctx.input().drain(7).unwrap()).unwrap();
            assert_eq!(drained, 7);
            assert!(eventually(BOUND, || remote.input_len().unwrap() == 3), "no resume below the mark");
            remote.free().unwrap();
        });
        assert_eq!(b.bev_count(), 0);
    }

    fn free_from_another_thread_drops_pending_output(m) {
        // The peer does not read: most of 4 MiB waits in the output when another thread
        // frees the bufferevent. As bev_free (and libevent), the rest is dropped, never
        // flushed, and the socket is closed (CLOSE_ON_FREE): the peer gets a prefix, then EOF.
        const LEN: usize = 4 << 20;
        let data: Vec<u8> = (0..LEN).map(|i| (i % 251) as u8).collect();
        let mut b = base(m);
        let (bev, mut peer) = bev_pair(&mut b, BevOptions::empty());
        let remote = b.bev_remote(bev).unwrap();
        let r = remote.clone();
        let d = data.clone();
        run_with(&mut b, move || {
            r.write_blocking(&d).unwrap();
            let pending = r.output_len().unwrap();
            assert!(pending > 0 && pending < LEN, "pending {pending}");
            r.free().unwrap();
            assert!(r.is_freed());
            // Every call of every clone fails now, the fire-and-forget write included.
            let other = r.clone();
            assert_eq!(kind(other.write(b"x")), ErrorKind::InvalidInput);
            assert_eq!(kind(other.write(b"")), ErrorKind::InvalidInput);
            assert_eq!(kind(r.write_blocking(b"x")), ErrorKind::InvalidInput);
            assert_eq!(kind(r.output_len()), ErrorKind::InvalidInput);
            assert_eq!(kind(r.input_len()), ErrorKind::InvalidInput);
            assert_eq!(kind(r.enable(What::READ)), ErrorKind::InvalidInput);
            assert_eq!(kind(r.disable(What::READ)), ErrorKind::InvalidInput);
            assert_eq!(kind(r.get_enabled()), ErrorKind::InvalidInput);
            assert_eq!(kind(r.set_watermark(What::READ, 0, 0)), ErrorKind::InvalidInput);
            assert_eq!(kind(r.flush(Flush::Normal)), ErrorKind::InvalidInput);
            assert_eq!(kind(r.call(|_| ())), ErrorKind::InvalidInput);
            assert_eq!(kind(r.free()), ErrorKind::InvalidInput);
        });
        assert_eq!(b.bev_count(), 0);
        let got = read_to_eof(&mut peer);
        assert!(!got.is_empty() && got.len() < LEN, "received {}", got.len());
        assert_eq!(got[..], data[..got.len()], "the prefix is the data, in order");
        assert_eq!(remote.handle().failed_commands(), 0, "nothing was lost quietly");
        assert_eq!(b.bev_remote(bev).err().map(|e| e.kind()), Some(ErrorKind::InvalidInput));
    }

    fn a_write_that_fails_on_the_loop_is_counted(m) {
        // Queued, then the bufferevent is freed before the loop runs the write: the error
        // has no caller to go back to, so it is counted (and logged), not lost.
        let mut b = base(m);
        let (bev, _peer) = bev_pair(&mut b, BevOptions::empty());
        let remote = b.bev_remote(bev).unwrap();
        remote.write(b"late").unwrap(); // on the loop thread: queued all the same
        b.bev_free(bev).unwrap();
        assert!(remote.is_freed());
        b.run(LoopFlags::NONBLOCK).unwrap();
        assert_eq!(remote.handle().failed_commands(), 1);
        assert_eq!(kind(remote.write(b"again")), ErrorKind::InvalidInput, "known freed: refused");
    }

    fn calls_after_the_base_is_dropped_fail(m) {
        let mut b = base(m);
        let (bev, _peer) = bev_pair(&mut b, BevOptions::empty());
        let remote = b.bev_remote(bev).unwrap();
        // A thread already waiting (the loop is not running) is let go by the drop.
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let r = remote.clone();
        let waiter = thread::spawn(move || {
            tid_tx.send(gettid()).unwrap();
            r.output_len().err().map(|e| e.kind())
        });
        let tid = tid_rx.recv().unwrap();
        assert!(wait_until_blocked_in(tid, &futex_syscalls(), BOUND), "the call did not wait");
        drop(b.into_inner());
        assert_eq!(waiter.join().unwrap(), Some(ErrorKind::NotConnected));
        assert!(!remote.is_freed(), "the base went, not (first) the bufferevent");
        assert_eq!(kind(remote.write(b"x")), ErrorKind::NotConnected);
        assert_eq!(kind(remote.write(b"")), ErrorKind::NotConnected, "even an empty one");
        assert_eq!(kind(remote.write_blocking(b"x")), ErrorKind::NotConnected);
        assert_eq!(kind(remote.enable(What::READ)), ErrorKind::NotConnected);
        assert_eq!(kind(remote.get_enabled()), ErrorKind::NotConnected);
        assert_eq!(kind(remote.call(|ctx| ctx.output().len())), ErrorKind::NotConnected);
        assert_eq!(kind(remote.free()), ErrorKind::NotConnected);
        // And from another thread too.
        let r = remote.clone();
        assert_eq!(thread::spawn(move || kind(r.input_len())).join().unwrap(), ErrorKind::NotConnected);
    }

    fn waiting_calls_inside_a_callback_do_not_deadlock(m) {
        // On the loop thread a waiting call would wait for itself: it fails at once with
        // WouldBlock; the fire-and-forget write works (it runs at the next iteration).
        let mut b = base(m);
        let (bev, mut peer) = bev_pair(&mut b, BevOptions::empty());
        let remote = b.bev_remote(bev).unwrap();
        let seen = Rc::new(RefCell::new(Vec::new()));
        let s = seen.clone();
        b.bev_setcb(bev, Some(move |ctx: &mut BevCtx<'_>| {
            let n = ctx.input().len();
            ctx.input().drain(n).unwrap();
            let start = Instant::now();
            let mut v = s.borrow_mut();
            v.push(kind(remote.output_len()));
            v.push(kind(remote.enable(What::READ)));
            v.push(kind(remote.call(|_| ())));
            v.push(kind(remote.free()));
            assert!(start.elapsed() < Duration::from_secs(5), "a refused call waited");
            remote.write(b"pong").unwrap();
        }), None::<fn(&mut BevCtx<'_>)>, None::<fn(&mut BevCtx<'_>, BevEvents)>).unwrap();
        b.bev_enable(bev, What::READ | What::WRITE).unwrap();
        peer.write_all(b"ping").unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 16];
        run_until(&mut b, "pong", |_| {
            if let Ok(n) = peer.read(&mut buf) {
                got.extend_from_slice(&buf[..n]);
            }
            got.len() >= 4
        });
        assert_eq!(got, b"pong");
        assert_eq!(*seen.borrow(), vec![ErrorKind::WouldBlock; 4]);
        assert_eq!(b.bev_count(), 1, "the refused free freed nothing");
        b.bev_free(bev).unwrap();
    }

    fn two_loops_writing_into_each_other_do_not_deadlock(m) {
        // libevent #1750: two threads writing into each other's threadsafe bufferevents from
        // read callbacks deadlock on the two locks. Here each loop's read callback forwards
        // what its peer sends to the *other* loop's bufferevent with write_blocking: a wait
        // that would close the cycle fails with Deadlock at once (then the callback falls
        // back to the queued write), and everything arrives.
        const ROUNDS: usize = 300;
        type Setup = (BevRemote, Handle);
        let (to_main, from_loops) = std::sync::mpsc::channel::<(usize, Setup)>();
        let mut others = Vec::new();
        let mut loops = Vec::new();
        let mut peers = Vec::new();
        for side in 0..2 {
            let (mine, peer) = pair();
            peers.push(peer);
            let (other_tx, other_rx) = std::sync::mpsc::channel::<BevRemote>();
            others.push(other_tx);
            let to_main = to_main.clone();
            loops.push(thread::spawn(move || {
                let mut b = base(m);
                let bev = b.bufferevent_socket(mine.into_raw_fd(), BevOptions::CLOSE_ON_FREE).unwrap();
                to_main.send((side, (b.bev_remote(bev).unwrap(), b.handle().unwrap()))).unwrap();
                let other = other_rx.recv().unwrap();
                let outcomes = Rc::new(RefCell::new((0usize, 0usize)));
                let o = outcomes.clone();
                b.bev_setcb(bev, Some(move |ctx: &mut BevCtx<'_>| {
                    let data = ctx.input().to_vec();
                    let n = data.len();
                    ctx.input().drain(n).unwrap();
                    match other.write_blocking(&data) {
                        Ok(()) => o.borrow_mut().0 += 1,
                        Err(e) => {
                            assert_eq!(e.kind(), ErrorKind::Deadlock, "{e}");
                            o.borrow_mut().1 += 1;
                            other.write(&data).unwrap();
                        }
                    }
                }), None::<fn(&mut BevCtx<'_>)>, None::<fn(&mut BevCtx<'_>, BevEvents)>).unwrap();
                b.bev_enable(bev, What::READ | What::WRITE).unwrap();
                b.run(LoopFlags::NO_EXIT_ON_EMPTY).unwrap();
                b.bev_free(bev).unwrap();
                let r = *outcomes.borrow();
                r
            }));
        }
        let mut setups: Vec<Option<Setup>> = vec![None, None];
        for _ in 0..2 {
            let (side, s) = from_loops.recv().unwrap();
            setups[side] = Some(s);
        }
        let setups: Vec<Setup> = setups.into_iter().map(Option::unwrap).collect();
        others[0].send(setups[1].0.clone()).unwrap();
        others[1].send(setups[0].0.clone()).unwrap();
        // Both peers send at once, a byte at a time; each receives what the other sent.
        let senders: Vec<_> = peers.iter().enumerate().map(|(side, p)| {
            let mut p = p.try_clone().unwrap();
            thread::spawn(move || {
                p.set_nonblocking(false).unwrap();
                for _ in 0..ROUNDS {
                    p.write_all(&[b'a' + side as u8]).unwrap();
                }
            })
        }).collect();
        for (side, p) in peers.iter_mut().enumerate() {
            let got = read_n(p, ROUNDS);
            assert!(got.iter().all(|&c| c == b'a' + (1 - side) as u8), "side {side} got {got:?}");
        }
        for s in senders {
            s.join().unwrap();
        }
        for (_, h) in &setups {
            h.loopbreak().unwrap();
        }
        let outcomes: Vec<(usize, usize)> = loops.into_iter().map(|l| l.join().unwrap()).collect();
        // Each side forwarded something; whether a Deadlock refusal happened is timing.
        assert!(outcomes.iter().all(|&(ok, refused)| ok + refused > 0), "{outcomes:?}");
        eprintln!("{m:?}: (waited, refused as Deadlock) per loop: {outcomes:?}");
    }

    fn a_panic_in_call_resumes_on_the_caller_and_the_loop_carries_on(m) {
        let mut b = base(m);
        let (bev, mut peer) = bev_pair(&mut b, BevOptions::empty());
        let remote = b.bev_remote(bev).unwrap();
        let (payload, alive) = run_with(&mut b, move || {
            let r = remote.clone();
            let caught = std::panic::catch_unwind(move || {
                r.call(|ctx| {
                    ctx.write(b"half").unwrap();
                    panic!("boom in call");
                })
            });
            let payload = caught.expect_err("the panic came back to the caller");
            let msg = payload.downcast_ref::<&str>().copied().unwrap_or("?").to_string();
            // The loop ran on; the bufferevent is alive, with what the closure wrote.
            remote.write_blocking(b"+after").unwrap();
            (msg, remote.call(|ctx| ctx.handle()).is_ok())
        });
        assert_eq!(payload, "boom in call");
        assert!(alive);
        assert_eq!(read_n(&mut peer, 10), b"half+after");
        assert_eq!(b.bev_count(), 1);
        b.bev_free(bev).unwrap();
    }

    fn the_threading_option_bits_are_libevents_and_accepted(m) {
        assert_eq!(BevOptions::THREADSAFE.bits(), 0x02);
        assert_eq!(BevOptions::UNLOCK_CALLBACKS.bits(), 0x08);
        let mut b = base(m);
        // Accepted, with no effect on how the bufferevent behaves.
        let (bev, mut peer) = bev_pair(&mut b, BevOptions::THREADSAFE);
        b.bev_write(bev, b"ts").unwrap();
        let (bev2, mut peer2) = bev_pair(
            &mut b,
            BevOptions::THREADSAFE | BevOptions::DEFER_CALLBACKS | BevOptions::UNLOCK_CALLBACKS,
        );
        b.bev_write(bev2, b"unlocked").unwrap();
        let (p, q) = b.bufferevent_pair(BevOptions::THREADSAFE | BevOptions::UNLOCK_CALLBACKS).unwrap();
        // As libevent: UNLOCK_CALLBACKS needs DEFER_CALLBACKS.
        let (x, _y) = pair();
        let refused = b.bufferevent_socket(x.into_raw_fd(), BevOptions::UNLOCK_CALLBACKS | BevOptions::CLOSE_ON_FREE);
        assert_eq!(refused.err().map(|e| e.kind()), Some(ErrorKind::InvalidInput));
        assert_eq!(b.bev_count(), 4);
        b.run(LoopFlags::NONBLOCK).unwrap();
        assert_eq!(read_n(&mut peer, 2), b"ts");
        assert_eq!(read_n(&mut peer2, 8), b"unlocked");
        for bev in [bev, bev2, p, q] {
            b.bev_free(bev).unwrap();
        }
    }

    /// A measurement, not a check: `cargo test --release -p evrs --test bufferevent_remote
    /// -- --ignored --nocapture --test-threads=1 throughput`. Two ways each, local
    /// `bev_write` on the loop thread against 4 threads' `BevRemote::write`: into the
    /// output buffer alone (WRITE disabled: the cost of getting the bytes there), and on
    /// through the socket to a peer thread that reads them all.
    #[ignore = "measurement"]
    fn throughput(m) {
        const THREADS: usize = 4;
        const N: usize = 250_000;
        const MSG: usize = 64;
        let total = THREADS * N * MSG;
        let msgs = (THREADS * N) as f64;
        let msg = [7u8; MSG];
        let mut b = base(m);
        let (bev, peer) = bev_pair(&mut b, BevOptions::empty());
        let remote = b.bev_remote(bev).unwrap();
        let ns = |d: Duration, n: f64| d.as_nanos() as f64 / n;

        // 1. Into the output buffer only.
        b.bev_disable(bev, What::WRITE).unwrap();
        let start = Instant::now();
        for _ in 0..THREADS * N {
            b.bev_write(bev, &msg).unwrap();
        }
        let local_buf = start.elapsed();
        b.bev_output(bev).unwrap().drain(total).unwrap();
        let r = remote.clone();
        let (enq_buf, remote_buf) = run_with(&mut b, move || {
            let start = Instant::now();
            let ws: Vec<_> = (0..THREADS).map(|_| {
                let r = r.clone();
                thread::spawn(move || for _ in 0..N { r.write(&msg).unwrap() })
            }).collect();
            for w in ws { w.join().unwrap(); }
            let enqueued = start.elapsed();
            assert_eq!(r.output_len().unwrap(), total, "all appended when the call returns");
            (enqueued, start.elapsed())
        });
        b.bev_output(bev).unwrap().drain(total).unwrap();

        // 2. Through the socket to a reading peer.
        b.bev_enable(bev, What::WRITE).unwrap();
        let batches = THREADS * N / 1024;
        let reader = thread::spawn(move || {
            let mut peer = peer;
            let got = read_n(&mut peer, batches * 1024 * MSG).len();
            (peer, got)
        });
        let start = Instant::now();
        for _ in 0..batches {
            for _ in 0..1024 {
                b.bev_write(bev, &msg).unwrap();
            }
            b.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
        }
        run_until(&mut b, "drained", |_| reader.is_finished());
        let local_sock = start.elapsed();
        let (mut peer, got) = reader.join().unwrap();
        assert_eq!(got, batches * 1024 * MSG);
        let r = remote.clone();
        let remote_sock = run_with(&mut b, move || {
            let reader = thread::spawn(move || read_n(&mut peer, total).len());
            let start = Instant::now();
            let ws: Vec<_> = (0..THREADS).map(|_| {
                let r = r.clone();
                thread::spawn(move || for _ in 0..N { r.write(&msg).unwrap() })
            }).collect();
            for w in ws { w.join().unwrap(); }
            assert_eq!(reader.join().unwrap(), total);
            start.elapsed()
        });
        eprintln!(
            "{m:?}, {MSG}-byte writes, {THREADS} x {N}: into the output buffer: local \
             bev_write {:.0} ns/write ({:.1} M/s), remote {:.2} M/s end to end ({:.0} ns/msg; \
             enqueue {:.0} ns/write per thread); through the socket: local {:.2} M/s, remote \
             {:.2} M/s (per-write cost there {:.0} vs {:.0} ns)",
            ns(local_buf, msgs),
            msgs / local_buf.as_secs_f64() / 1e6,
            msgs / remote_buf.as_secs_f64() / 1e6,
            ns(remote_buf, msgs),
            ns(enq_buf, N as f64),
            (batches * 1024) as f64 / local_sock.as_secs_f64() / 1e6,
            msgs / remote_sock.as_secs_f64() / 1e6,
            ns(remote_sock, msgs),
            ns(local_sock, (batches * 1024) as f64),
        );
        assert_eq!(remote.handle().failed_commands(), 0);
        b.bev_free(bev).unwrap();
    }
}
