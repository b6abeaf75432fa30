//! Callback code and async code on one base, both ways: a bufferevent used as an async
//! stream (`rt::BevStream`), a listener callback that spawns a task per connection, and a
//! task that waits for a callback through a channel — on every backend.
mod util;
use evrs::bufferevent::BevOptions;
use evrs::rt::{self, BevStream, Runtime, BEV_READ_LIMIT};
use evrs::ListenerFlags;
use evrs::{EventBase, What};
use futures_util::io::{AsyncReadExt, AsyncWriteExt};
use std::cell::Cell;
use std::io;
use std::os::fd::IntoRawFd;
use std::rc::Rc;
use std::time::Duration;
use util::*;

/// A socket bufferevent on one end of a fresh socketpair, and the other end as a task's
/// stream.
fn bev_and_peer(b: &mut EventBase) -> (evrs::bufferevent::BufferEvent, rt::UnixStream) {
    let (a, z) = std::os::unix::net::UnixStream::pair().unwrap();
    let bev = b
        .bufferevent_socket(a.into_raw_fd(), BevOptions::CLOSE_ON_FREE)
        .unwrap();
    (bev, rt::UnixStream::from_std(z).unwrap())
}

on_every_backend! {
    fn a_socket_bufferevent_as_a_stream_moves_megabytes_both_ways(m) {
        let mut b = base(m);
        let runtime = Runtime::new(&mut b).unwrap();
        let (bev, peer) = bev_and_peer(&mut b);
        let stream = BevStream::new(&mut b, bev).unwrap();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
        let (d1, d2) = (data.clone(), data.clone());
        let (from_peer, from_bev) = runtime
            .block_on(&mut b, async move {
                // The peer writes 3 MB and reads 3 MB; the BevStream side echoes.
                let (mut pr, mut pw) = peer.split();
                let writer = rt::spawn(async move {
                    pw.write_all(&d1).await?;
                    pw.close().await?;
                    Ok::<_, io::Error>(())
                })?;
                let echo = rt::spawn(async move {
                    let (mut r, mut w) = stream.split();
                    let n = futures_util::io::copy(&mut r, &mut w).await?;
                    w.close().await?;
                    Ok::<_, io::Error>(n)
                })?;
                let mut back = Vec::new();
                pr.read_to_end(&mut back).await?;
                writer.await??;
                Ok::<_, io::Error>((back, echo.await??))
            })
            .unwrap()
            .unwrap();
        assert_eq!(from_bev, d2.len() as u64);
        assert!(from_peer == data, "echoed {} of {} bytes, or changed", from_peer.len(), data.len());
        finish_runtime(runtime, &mut b);
        assert_eq!(b.bev_count(), 0, "dropping the stream freed the bufferevent");
    }

    fn a_slow_reader_pauses_the_bufferevent_instead_of_buffering_everything(m) {
        let mut b = base(m);
        let runtime = Runtime::new(&mut b).unwrap();
        let (bev, peer) = bev_and_peer(&mut b);
        let mut stream = BevStream::new(&mut b, bev).unwrap();
        let total = 8 * BEV_READ_LIMIT;
        let writer = runtime.spawn(async move {
            let chunk = vec![7u8; 64 * 1024];
            let mut sent = 0;
            while sent < total {
                sent += peer.write(&chunk).await?;
            }
            Ok::<_, io::Error>(peer)
        });
        // Let the writer fill everything it can while nobody reads the stream.
        for _ in 0..50 {
            b.run(evrs::LoopFlags::NONBLOCK).unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
        let buffered = b.bev_input(stream.bufferevent()).unwrap().len();
        assert!(!writer.is_finished(), "the kernel and the stream hold at most the limits");
        assert!(
            buffered <= evrs::bufferevent::DEFAULT_MAX_READ,
            "the bufferevent stopped reading ({buffered} bytes in its input)"
        );
        let got = runtime
            .block_on(&mut b, async move {
                let mut got = 0;
                let mut buf = vec![0u8; 64 * 1024];
                while got < total {
                    let n = stream.read(&mut buf).await?;
                    assert!(n > 0, "early EOF at {got}");
                    got += n;
                }
                let _peer = writer.await??;
                Ok::<_, io::Error>(got)
            })
            .unwrap()
            .unwrap();
        assert_eq!(got, total);
        finish_runtime(runtime, &mut b);
    }

    fn a_bufferevent_pair_carries_a_conversation_and_eof(m) {
        let mut b = base(m);
        let runtime = Runtime::new(&mut b).unwrap();
        let (x, y) = b.bufferevent_pair(BevOptions::empty()).unwrap();
        let mut sx = BevStream::new(&mut b, x).unwrap();
        let mut sy = BevStream::new(&mut b, y).unwrap();
        let got = runtime
            .block_on(&mut b, async move {
                sx.write_all(b"ping").await?;
                let mut buf = [0u8; 4];
                sy.read_exact(&mut buf).await?;
                assert_eq!(&buf, b"ping");
                sy.write_all(b"pong").await?;
                sy.close().await?;
                let mut rest = Vec::new();
                sx.read_to_end(&mut rest).await?;
                Ok::<_, io::Error>(rest)
            })
            .unwrap()
            .unwrap();
        assert_eq!(got, b"pong");
        finish_runtime(runtime, &mut b);
        assert_eq!(b.bev_count(), 0);
    }

    fn a_bev_stream_is_buffered_lines_arrive_in_pieces(m) {
        use futures_util::io::AsyncBufReadExt;
        use futures_util::StreamExt;
        let mut b = base(m);
        let runtime = Runtime::new(&mut b).unwrap();
        let (bev, mut peer) = bev_and_peer(&mut b);
        let mut stream = BevStream::new(&mut b, bev).unwrap();
        let got = runtime
            .block_on(&mut b, async move {
                let writer = rt::spawn(async move {
                    for piece in [&b"one\ntw"[..], b"o\nthr", b"ee\n", b"last, unterminated"] {
                        peer.write_all(piece).await?;
                        rt::sleep(Duration::from_millis(5)).await;
                    }
                    peer.close().await
                })?;
                // fill_buf/consume by hand: the first chunk, then a partial consume.
                let first = stream.fill_buf().await?.to_vec();
                assert!(b"one\ntwo\n".starts_with(&first) && !first.is_empty(), "{first:?}");
                stream.consume_unpin(2);
                let mut two = [0u8; 2];
                stream.read_exact(&mut two).await?; // a plain read continues after the consume
                assert_eq!(&two, b"e\n");
                let lines: Vec<String> = (&mut stream).lines().map(|l| l.unwrap()).collect().await;
                writer.await??;
                Ok::<_, io::Error>(lines)
            })
            .unwrap()
            .unwrap();
        assert_eq!(got, ["two", "three", "last, unterminated"]);
        finish_runtime(runtime, &mut b);
        assert_eq!(b.bev_count(), 0);
    }

    fn a_peer_reset_ends_the_stream_with_an_error_not_a_hang(m) {
        let mut b = base(m);
        let runtime = Runtime::new(&mut b).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let bev = b
            .bufferevent_socket(server.into_raw_fd(), BevOptions::CLOSE_ON_FREE)
            .unwrap();
        let mut stream = BevStream::new(&mut b, bev).unwrap();
        // Unread data at close makes the kernel send RST.
        socket2::SockRef::from(&client).set_linger(Some(Duration::ZERO)).unwrap();
        drop(client);
        let r = runtime
            .block_on(&mut b, async move {
                let mut buf = [0u8; 16];
                let mut r = stream.read(&mut buf).await;
                if matches!(r, Ok(0)) {
                    // Some kernels report the reset as an EOF; a write then fails.
                    let _ = stream.write_all(b"x").await;
                    r = stream.flush().await.map(|_| 0).and(stream.write_all(b"y").await.map(|_| 0));
                }
                // The error stays: every later operation reports it (none is lost silently).
                let later = [
                    stream.write(b"z").await.map(|_| ()),
                    stream.flush().await,
                    stream.read(&mut buf).await.map(|_| ()),
                ];
                (r, later)
            })
            .unwrap();
        let (r, later) = r;
        for l in later {
            assert!(l.is_err(), "an operation after the error succeeded: {l:?}");
        }
        let e = r.expect_err("a reset connection is an error");
        assert!(
            matches!(e.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe),
            "{e:?}"
        );
        finish_runtime(runtime, &mut b);
    }

    fn a_listener_callback_spawns_a_task_per_connection(m) {
        let mut b = base(m);
        let runtime = Runtime::new(&mut b).unwrap();
        let served = Rc::new(Cell::new(0));
        let s2 = served.clone();
        let lst = b
            .listen(
                "127.0.0.1:0".parse().unwrap(),
                ListenerFlags::REUSEABLE | ListenerFlags::CLOSE_ON_FREE,
                16,
                move |base, _, fd, _addr| {
                    // Callback code hands the connection to async code.
                    let bev = base
                        .bufferevent_socket(fd.into_raw_fd(), BevOptions::CLOSE_ON_FREE)
                        .unwrap();
                    let mut stream = BevStream::new(base, bev).unwrap();
                    let served = s2.clone();
                    rt::spawn(async move {
                        let mut line = Vec::new();
                        let mut byte = [0u8; 1];
                        while stream.read(&mut byte).await? == 1 && byte[0] != b'\n' {
                            line.push(byte[0]);
                        }
                        line.reverse();
                        line.push(b'\n');
                        stream.write_all(&line).await?;
                        stream.close().await?;
                        served.set(served.get() + 1);
                        Ok::<_, io::Error>(())
                    })
                    .unwrap()
                    .detach();
                },
            )
            .unwrap();
        let evrs::PeerAddr::Inet(addr) = b.listener_local_addr(lst).unwrap() else {
            panic!("a TCP listener")
        };
        let replies = runtime
            .block_on(&mut b, async move {
                let mut replies = Vec::new();
                for i in 0..5 {
                    let c = rt::TcpStream::connect(addr).await?;
                    c.write_all(format!("abc{i}\n").as_bytes()).await?;
                    let mut out = Vec::new();
                    let mut buf = [0u8; 64];
                    loop {
                        let n = c.read(&mut buf).await?;
                        if n == 0 {
                            break;
                        }
                        out.extend_from_slice(&buf[..n]);
                    }
                    replies.push(String::from_utf8(out).unwrap());
                }
                Ok::<_, io::Error>(replies)
            })
            .unwrap()
            .unwrap();
        assert_eq!(replies, (0..5).map(|i| format!("{i}cba\n")).collect::<Vec<_>>());
        assert_eq!(served.get(), 5);
        b.listener_free(lst).unwrap();
        finish_runtime(runtime, &mut b);
        assert_eq!(b.bev_count(), 0);
    }

    fn a_task_awaits_a_callback_through_a_channel(m) {
        let mut b = base(m);
        let runtime = Runtime::new(&mut b).unwrap();
        let (tx, rx) = futures_channel::oneshot::channel::<What>();
        let mut tx = Some(tx);
        let (r, w) = std::os::unix::net::UnixStream::pair().unwrap();
        let ev = b
            .new_event(r.into_raw_fd(), What::READ, move |_, _, what| {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(what);
                }
            })
            .unwrap();
        b.add(ev, None).unwrap();
        let what = runtime
            .block_on(&mut b, async move {
                rt::sleep(Duration::from_millis(10)).await;
                (&w).write_all_sync(b"x");
                rx.await.unwrap()
            })
            .unwrap();
        assert!(what.contains(What::READ));
        b.free(ev).unwrap();
        finish_runtime(runtime, &mut b);
    }
}

/// A tiny blocking write for the channel test's std socket.
trait WriteAllSync {
    fn write_all_sync(self, data: &[u8]);
}

impl WriteAllSync for &std::os::unix::net::UnixStream {
    fn write_all_sync(self, data: &[u8]) {
        use std::io::Write;
        let mut s = self;
        s.write_all(data).unwrap();
    }
}

#[test]
fn a_bev_stream_needs_a_runtime() {
    let mut b = EventBase::new().unwrap();
    let (bev, _peer) = {
        let (a, z) = std::os::unix::net::UnixStream::pair().unwrap();
        let bev = b
            .bufferevent_socket(a.into_raw_fd(), BevOptions::CLOSE_ON_FREE)
            .unwrap();
        (bev, z)
    };
    let e = BevStream::new(&mut b, bev).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    b.bev_free(bev).unwrap();
}
