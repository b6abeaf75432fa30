//! The async runtime on every backend: tasks and join handles, real TCP and Unix sockets,
//! timers that never end early, wakers from other threads, panics, cancellation, and the
//! `futures-io` traits driven by `futures-util`'s own utilities.
mod util;
use evrs::rt::{self, Async, JoinError, Runtime, TcpListener, TcpStream, UnixStream};
use futures_util::{AsyncReadExt, AsyncWriteExt, StreamExt};
use std::cell::Cell;
use std::io::{self, Read, Write};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};
use util::*;

const MS: Duration = Duration::from_millis(1);

/// Sets its flag when dropped (a future that was cancelled drops its state).
struct DropFlag(Rc<Cell<bool>>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

on_every_backend! {
    fn block_on_runs_tasks_and_returns_their_output(m) {
        let mut b = base(m);
        let rt = Runtime::new(&mut b).unwrap();
        let out = rt.block_on(&mut b, async {
            let tasks: Vec<_> = (0..100u64).map(|i| rt::spawn(async move { i * i }).unwrap()).collect();
            let mut sum = 0;
            for t in tasks {
                sum += t.await.unwrap();
            }
            sum
        }).unwrap();
        assert_eq!(out, (0..100u64).map(|i| i * i).sum());
        assert_eq!(rt.tasks(), 0);
        drop(rt);
    }

    fn tcp_echo_with_many_concurrent_connections(m) {
        let mut b = base(m);
        let rt = Runtime::new(&mut b).unwrap();
        let total = rt.block_on(&mut b, async {
            let listener = TcpListener::bind("127.0.0.1:0")?;
            let addr = listener.local_addr()?;
            let server = rt::spawn(async move {
                for _ in 0..200 {
                    let (s, _) = listener.accept().await?;
                    rt::spawn(async move {
                        let mut buf = [0u8; 1024];
                        loop {
                            let n = s.read(&mut buf).await?;
                            if n == 0 {
                                return Ok::<_, io::Error>(());
                            }
                            s.write_all(&buf[..n]).await?;
                        }
                    })?
                    .detach();
                }
                Ok::<_, io::Error>(())
            })?;
            let clients: Vec<_> = (0..200u32).map(|i| rt::spawn(async move {
                let c = TcpStream::connect(addr).await?;
                let mut got = 0;
                for round in 0..10u32 {
                    let msg = format!("client {i} round {round}");
                    c.write_all(msg.as_bytes()).await?;
                    let mut buf = vec![0u8; msg.len()];
                    let mut have = 0;
                    while have < buf.len() {
                        let n = c.read(&mut buf[have..]).await?;
                        assert!(n > 0, "early EOF");
                        have += n;
                    }
                    assert_eq!(buf, msg.as_bytes());
                    got += have;
                }
                Ok::<_, io::Error>(got)
            }).unwrap()).collect();
            let mut total = 0;
            for c in clients {
                total += c.await??;
            }
            server.await??;
            Ok::<_, io::Error>(total)
        }).unwrap().unwrap();
        assert!(total > 200 * 10 * 15);
        // Connection tasks still waiting for their EOF go with the runtime.
        rt.shutdown(&mut b);
    }

    fn futures_io_traits_work_with_futures_util(m) {
        let mut b = base(m);
        let rt = Runtime::new(&mut b).unwrap();
        rt.block_on(&mut b, async {
            let (mut a, mut z) = UnixStream::pair()?;
            let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
            let d2 = data.clone();
            let writer = rt::spawn(async move {
                a.write_all(&d2).await?;
                a.close().await?;
                Ok::<_, io::Error>(())
            })?;
            let mut got = Vec::new();
            z.read_to_end(&mut got).await?;
            writer.await??;
            assert_eq!(got, data);
            Ok::<_, io::Error>(())
        }).unwrap().unwrap();
    }

    fn a_stream_reads_lines_through_futures_bufreader(m) {
        // The raw streams are unbuffered (as tokio's and async-io's): `futures::io::BufReader`
        // gives them `AsyncBufRead` (a `BevStream` is buffered itself, see rt_bev.rs).
        use futures_util::io::{AsyncBufReadExt, BufReader};
        let mut b = base(m);
        let rt = Runtime::new(&mut b).unwrap();
        let lines = rt.block_on(&mut b, async {
            let (mut a, z) = UnixStream::pair()?;
            a.write_all(b"alpha\nbeta\ngam").await?;
            a.write_all(b"ma\n").await?;
            a.close().await?;
            let lines: Vec<String> = BufReader::new(z).lines().map(|l| l.unwrap()).collect().await;
            Ok::<_, io::Error>(lines)
        }).unwrap().unwrap();
        assert_eq!(lines, ["alpha", "beta", "gamma"]);
    }

    fn sleep_never_ends_early_and_timeout_elapses(m) {
        let mut b = base(m);
        let rt = Runtime::new(&mut b).unwrap();
        rt.block_on(&mut b, async {
            for ms in [1u32, 5, 20] {
                let t = Instant::now();
                rt::sleep(MS * ms).await;
                assert!(t.elapsed() >= MS * ms, "slept {:?} for {ms} ms", t.elapsed());
            }
            let t = Instant::now();
            let r = rt::timeout(20 * MS, rt::sleep(Duration::from_secs(60))).await;
            assert_eq!(r, Err(rt::Elapsed));
            assert!(t.elapsed() >= 20 * MS && t.elapsed() < Duration::from_secs(30));
            assert_eq!(rt::timeout(Duration::from_secs(60), async { 7 }).await, Ok(7));
            let mut iv = rt::interval(5 * MS);
            let first = iv.tick().await;
            let second = iv.tick().await;
            assert!(second >= first + 5 * MS);
        }).unwrap();
    }

    fn a_waker_called_from_another_thread_wakes_the_task(m) {
        let mut b = base(m);
        let rt = Runtime::new(&mut b).unwrap();
        let slot: Arc<Mutex<(bool, Option<Waker>)>> = Arc::new(Mutex::new((false, None)));
        let s = slot.clone();
        let t = std::thread::spawn(move || {
            // Wait for the task to park its waker, then wake it (twice: coalesced).
            loop {
                let mut g = s.lock().unwrap();
                if let Some(w) = g.1.take() {
                    g.0 = true;
                    drop(g);
                    w.wake_by_ref();
                    w.wake();
                    return;
                }
                drop(g);
                std::thread::sleep(MS);
            }
        });
        let s = slot.clone();
        rt.block_on(&mut b, std::future::poll_fn(move |cx| {
            let mut g = s.lock().unwrap();
            if g.0 {
                Poll::Ready(())
            } else {
                g.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        })).unwrap();
        t.join().unwrap();
    }

    fn a_panicking_task_ends_its_handle_not_the_loop(m) {
        let mut b = base(m);
        let rt = Runtime::new(&mut b).unwrap();
        rt.block_on(&mut b, async {
            let bad = rt::spawn(async {
                rt::sleep(MS).await;
                panic!("task panics on purpose");
            }).unwrap();
            let good = rt::spawn(async {
                rt::sleep(5 * MS).await;
                "still here"
            }).unwrap();
            assert!(matches!(bad.await, Err(JoinError::Panicked(_))));
            assert_eq!(good.await.unwrap(), "still here");
        }).unwrap();
    }

    fn dropping_a_handle_cancels_detach_keeps_and_abort_cancels(m) {
        let mut b = base(m);
        let rt = Runtime::new(&mut b).unwrap();
        let (dropped, detached_done, aborted) =
            (Rc::new(Cell::new(false)), Rc::new(Cell::new(false)), Rc::new(Cell::new(false)));
        let (d, dd, a) = (dropped.clone(), detached_done.clone(), aborted.clone());
        rt.block_on(&mut b, async move {
            let guard = DropFlag(d);
            drop(rt::spawn(async move {
                let _g = guard;
                rt::sleep(Duration::from_secs(60)).await;
            }).unwrap());
            rt::spawn(async move {
                rt::sleep(2 * MS).await;
                dd.set(true);
            }).unwrap().detach();
            let guard = DropFlag(a);
            let h = rt::spawn(async move {
                let _g = guard;
                rt::sleep(Duration::from_secs(60)).await;
            }).unwrap();
            rt::sleep(MS).await;
            h.abort();
            assert!(matches!(h.await, Err(JoinError::Cancelled)));
            rt::sleep(10 * MS).await;
        }).unwrap();
        assert!(dropped.get(), "a dropped handle's task was not cancelled");
        assert!(aborted.get(), "an aborted task's future was not dropped");
        assert!(detached_done.get(), "a detached task did not run to its end");
    }

    fn dropping_the_runtime_drops_pending_tasks(m) {
        let mut b = base(m);
        let rt = Runtime::new(&mut b).unwrap();
        let dropped = Rc::new(Cell::new(false));
        let guard = DropFlag(dropped.clone());
        rt.spawn(async move {
            let _g = guard;
            rt::sleep(Duration::from_secs(60)).await;
        }).detach();
        assert_eq!(rt.run_until_stalled(&mut b).unwrap(), 1);
        drop(rt);
        assert!(dropped.get());
        // The base goes on without it; its next pass releases the dropped timer's event
        // and the driver's.
        b.run(evrs::LoopFlags::NONBLOCK).unwrap();
    }

    fn a_dropped_read_future_loses_no_bytes(m) {
        let mut b = base(m);
        let rt = Runtime::new(&mut b).unwrap();
        let (ours, mut theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let ours = Async::new(ours).unwrap();
        rt.block_on(&mut b, async move {
            // A read raced against a timeout that wins: nothing was read.
            let r = rt::timeout(5 * MS, ours.read_with(|mut s| {
                let mut buf = [0u8; 16];
                s.read(&mut buf)
            })).await;
            assert!(r.is_err());
            theirs.write_all(b"kept").unwrap();
            let mut buf = [0u8; 16];
            let n = ours.read_with(|mut s| s.read(&mut buf)).await.unwrap();
            assert_eq!(&buf[..n], b"kept");
        }).unwrap();
    }

    fn a_task_that_keeps_yielding_does_not_starve_io_or_timers(m) {
        let mut b = base(m);
        let rt = Runtime::new(&mut b).unwrap();
        let spins = Rc::new(Cell::new(0u64));
        let s = spins.clone();
        rt.spawn(std::future::poll_fn(move |cx| {
            s.set(s.get() + 1);
            cx.waker().wake_by_ref();
            Poll::<()>::Pending
        })).detach();
        rt.block_on(&mut b, async {
            let (x, y) = UnixStream::pair()?;
            x.write_all(b"ping").await?;
            let mut buf = [0u8; 4];
            let mut have = 0;
            while have < 4 {
                have += y.read(&mut buf[have..]).await?;
            }
            rt::sleep(5 * MS).await;
            Ok::<_, io::Error>(())
        }).unwrap().unwrap();
        // It ran meanwhile, once per loop iteration.
        assert!(spins.get() > 1);
        rt.shutdown(&mut b);
    }

    fn incoming_is_a_stream_of_connections(m) {
        let mut b = base(m);
        let rt = Runtime::new(&mut b).unwrap();
        rt.block_on(&mut b, async {
            let l = TcpListener::bind("127.0.0.1:0")?;
            let addr = l.local_addr()?;
            let clients = rt::spawn(async move {
                let mut v = Vec::new();
                for _ in 0..5 {
                    v.push(TcpStream::connect(addr).await?);
                }
                Ok::<_, io::Error>(v)
            })?;
            let got: Vec<_> = l.incoming().take(5).collect().await;
            assert_eq!(got.len(), 5);
            for s in got {
                s?;
            }
            assert_eq!(clients.await??.len(), 5);
            Ok::<_, io::Error>(())
        }).unwrap().unwrap();
    }

    fn signals_are_a_stream_of_deliveries(m) {
        // A signal of its own per backend (the three run at once in this process);
        // SIGWINCH's default action is to ignore it, the others' the handler replaces.
        let signo = match m {
            evrs::Method::Epoll => libc::SIGUSR1,
            evrs::Method::Poll => libc::SIGUSR2,
            _ => libc::SIGWINCH,
        };
        let mut b = base(m);
        let rt = Runtime::new(&mut b).unwrap();
        rt.block_on(&mut b, async move {
            let mut s = rt::signal(signo)?;
            rt::sleep(MS).await; // the driver installs the watch after this task yields
            for _ in 0..3 {
                // SAFETY: kill with our own pid and a valid signal number.
                assert_eq!(unsafe { libc::kill(libc::getpid(), signo) }, 0);
                s.next().await.expect("a delivery")?;
            }
            Ok::<_, io::Error>(())
        }).unwrap().unwrap();
        rt.shutdown(&mut b);
    }

    fn spawn_blocking_runs_off_the_loop_thread_and_reports_panics(m) {
        let mut b = base(m);
        let rt = Runtime::new(&mut b).unwrap();
        let loop_thread = std::thread::current().id();
        rt.block_on(&mut b, async move {
            // More jobs than pool threads: the rest queue.
            let jobs: Vec<_> = (0..rt::BLOCKING_THREADS as u64 * 2)
                .map(|i| rt::spawn_blocking(move || {
                    std::thread::sleep(2 * MS);
                    (i, std::thread::current().id())
                }).unwrap())
                .collect();
            // The loop keeps serving meanwhile.
            let t = Instant::now();
            rt::sleep(MS).await;
            assert!(t.elapsed() < Duration::from_secs(5));
            for (i, j) in jobs.into_iter().enumerate() {
                let (k, thread) = j.await.unwrap();
                assert_eq!(k, i as u64);
                assert_ne!(thread, loop_thread);
            }
            let r = rt::spawn_blocking(|| -> u32 { panic!("blocking job panics on purpose") })
                .unwrap()
                .await;
            assert!(matches!(r, Err(JoinError::Panicked(_))));
        }).unwrap();
    }

    fn callbacks_and_tasks_share_the_base(m) {
        // A plain timer callback spawns a task and completes a channel a task awaits.
        let mut b = base(m);
        let rt = Runtime::new(&mut b).unwrap();
        let (tx, rx) = futures_channel::oneshot::channel::<&'static str>();
        let mut tx = Some(tx);
        let spawned = Rc::new(Cell::new(false));
        let s = spawned.clone();
        let ev = b.new_timer(move |_, _, _| {
            let s = s.clone();
            rt::spawn(async move { s.set(true) }).unwrap().detach();
            if let Some(tx) = tx.take() {
                let _ = tx.send("from a callback");
            }
        }).unwrap();
        b.add(ev, Some(2 * MS)).unwrap();
        let got = rt.block_on(&mut b, rx).unwrap().unwrap();
        assert_eq!(got, "from a callback");
        rt.run_until_stalled(&mut b).unwrap();
        assert!(spawned.get(), "the task a callback spawned did not run");
        b.free(ev).unwrap();
    }

    fn absurd_durations_and_signals_are_handled_not_panicked(m) {
        let mut b = base(m);
        let rt = Runtime::new(&mut b).unwrap();
        rt.block_on(&mut b, async {
            // A sleep past what `Instant` or the base can hold simply never ends.
            assert_eq!(rt::timeout(5 * MS, rt::sleep(Duration::MAX)).await, Err(rt::Elapsed));
            assert_eq!(rt::timeout(Duration::MAX, async { 3 }).await, Ok(3));
            let mut iv = rt::interval(Duration::MAX);
            iv.tick().await; // the first tick is due at once
            assert!(rt::timeout(5 * MS, iv.tick()).await.is_err());
            // A signal the base refuses: one error, then the stream ends.
            let mut s = rt::signal(100_000).unwrap();
            assert!(s.next().await.expect("the error").is_err());
            assert!(s.next().await.is_none());
        }).unwrap();
        rt.shutdown(&mut b);
    }

    fn udp_datagrams_round_trip(m) {
        let mut b = base(m);
        let rt = Runtime::new(&mut b).unwrap();
        rt.block_on(&mut b, async {
            let a = rt::UdpSocket::bind("127.0.0.1:0")?;
            let z = rt::UdpSocket::bind("127.0.0.1:0")?;
            let (aa, za) = (a.local_addr()?, z.local_addr()?);
            let echo = rt::spawn(async move {
                let mut buf = [0u8; 64];
                for _ in 0..10 {
                    let (n, from) = z.recv_from(&mut buf).await?;
                    z.send_to(&buf[..n], from).await?;
                }
                Ok::<_, io::Error>(())
            })?;
            a.connect(za)?;
            for i in 0..10u8 {
                a.send(&[i; 8]).await?;
                let mut buf = [0u8; 64];
                let n = a.recv(&mut buf).await?;
                assert_eq!(&buf[..n], &[i; 8]);
            }
            echo.await??;
            assert_ne!(aa, za);
            Ok::<_, io::Error>(())
        }).unwrap().unwrap();
    }

    fn connect_to_a_closed_port_fails_cleanly(m) {
        let mut b = base(m);
        let rt = Runtime::new(&mut b).unwrap();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let r = rt.block_on(&mut b, TcpStream::connect(port)).unwrap();
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::ConnectionRefused);
    }

    fn readable_and_writable_are_level_triggered(m) {
        let mut b = base(m);
        let rt = Runtime::new(&mut b).unwrap();
        let (ours, mut theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let ours = Async::new(ours).unwrap();
        rt.block_on(&mut b, async move {
            theirs.write_all(b"x").unwrap();
            // Readable while the byte stays unread, however often asked.
            for _ in 0..3 {
                rt::timeout(2000 * MS, ours.readable()).await.unwrap().unwrap();
                rt::timeout(2000 * MS, ours.writable()).await.unwrap().unwrap();
            }
            let mut buf = [0u8; 4];
            assert_eq!(ours.get_ref().read(&mut buf).unwrap(), 1);
            // Drained: not readable now, and readable again at the next byte.
            assert!(rt::timeout(20 * MS, ours.readable()).await.is_err());
            theirs.write_all(b"y").unwrap();
            rt::timeout(2000 * MS, ours.readable()).await.unwrap().unwrap();
            assert_eq!(ours.read_with(|mut s| s.read(&mut buf)).await.unwrap(), 1);
        }).unwrap();
    }

    fn eof_behind_data_is_seen_after_a_short_read(m) {
        // The reader waits first; then the peer writes and hangs up at once, so one
        // readiness may report both, and the short read that takes the data must not hide
        // the end of stream behind it.
        let mut b = base(m);
        let rt = Runtime::new(&mut b).unwrap();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut tcp_peer = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let tcp = TcpStream::from_std(l.accept().unwrap().0).unwrap();
        let (unix, unix_peer) = std::os::unix::net::UnixStream::pair().unwrap();
        let unix = UnixStream::from_std(unix).unwrap();
        let mut unix_peer = Some(unix_peer);
        rt.block_on(&mut b, async move {
            async fn two_reads(read: impl AsyncReadExt + Unpin) -> io::Result<(Vec<u8>, usize)> {
                let mut read = read;
                let mut buf = [0u8; 1024];
                let n = read.read(&mut buf).await?;
                Ok((buf[..n].to_vec(), read.read(&mut buf).await?))
            }
            let r_tcp = rt::spawn(two_reads(tcp))?;
            let r_unix = rt::spawn(two_reads(unix))?;
            rt::sleep(10 * MS).await; // both readers wait
            tcp_peer.write_all(b"0123456789")?;
            tcp_peer.shutdown(std::net::Shutdown::Write)?;
            let mut p = unix_peer.take().unwrap();
            p.write_all(b"abc")?;
            drop(p);
            let got = rt::timeout(2000 * MS, r_tcp).await.expect("tcp EOF seen").unwrap()?;
            assert_eq!(got, (b"0123456789".to_vec(), 0));
            let got = rt::timeout(2000 * MS, r_unix).await.expect("unix EOF seen").unwrap()?;
            assert_eq!(got, (b"abc".to_vec(), 0));
            Ok::<_, io::Error>(())
        }).unwrap().unwrap();
    }

    fn a_readiness_nobody_consumes_does_not_spin_the_loop(m) {
        let mut b = base(m);
        let rt = Runtime::new(&mut b).unwrap();
        let (ours, mut theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let ours = Async::new(ours).unwrap();
        let polls = Rc::new(Cell::new(0u64));
        let p = polls.clone();
        let hook = b.new_prepare(move |_, _, _| p.set(p.get() + 1)).unwrap();
        b.add(hook, None).unwrap();
        rt.block_on(&mut b, async move {
            theirs.write_all(b"unread").unwrap();
            ours.readable().await.unwrap();
            // The byte stays unread while the task sleeps: the loop must sleep too.
            rt::sleep(100 * MS).await;
            drop(theirs);
        }).unwrap();
        b.del(hook).unwrap();
        assert!(polls.get() < 20, "{} loop iterations in 100 ms", polls.get());
    }
}

#[test]
fn free_functions_outside_a_runtime_fail_clearly() {
    std::thread::spawn(|| {
        let e = rt::spawn(async {}).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert!(Async::new(a).is_err());
    })
    .join()
    .unwrap();
}
