//! hyper 1.x on evrs (feature `hyper`; the workspace's test run has it): hyper servers and
//! clients over evrs::rt's streams, with evrs's executor and timer, on every backend — and
//! the real `curl` as a client.
#![cfg(feature = "hyper")]
mod util;
use evrs::rt::{self, Runtime, TcpListener, TcpStream, UnixStream};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper::{Request, Response};
use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};
use util::*;

/// Answers with the request's body, or (when it has none) with its path.
async fn echo(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let path = req.uri().path().to_owned();
    let body = req.into_body().collect().await?.to_bytes();
    let out = if body.is_empty() {
        Bytes::from(format!("path {path}\n"))
    } else {
        body
    };
    Ok(Response::new(Full::new(out)))
}

/// Serves `conns` HTTP/1.1 connections on `listener`, each as its own task; counts them.
fn serve_http1(listener: TcpListener, conns: usize, count: Rc<Cell<usize>>) {
    rt::spawn(async move {
        for _ in 0..conns {
            let (s, _) = listener.accept().await?;
            count.set(count.get() + 1);
            rt::spawn(async move {
                let r = http1::Builder::new()
                    .timer(rt::hyper::Timer)
                    .serve_connection(s, service_fn(echo))
                    .await;
                if let Err(e) = r {
                    panic!("server connection: {e}");
                }
            })?
            .detach();
        }
        Ok::<_, io::Error>(())
    })
    .expect("in a runtime")
    .detach();
}

/// Serves one HTTP/2 connection on `listener`, with evrs's executor and timer.
fn serve_http2(listener: TcpListener) {
    rt::spawn(async move {
        let (s, _) = listener.accept().await?;
        http2::Builder::new(rt::hyper::Executor)
            .timer(rt::hyper::Timer)
            .serve_connection(s, service_fn(echo))
            .await
            .map_err(io::Error::other)
    })
    .expect("in a runtime")
    .detach();
}

/// `curl` with `args`, run off the loop thread (it blocks); its stdout.
async fn curl(args: Vec<String>) -> io::Result<String> {
    let out = rt::spawn_blocking(move || {
        Command::new("curl")
            .args(["-sS", "--max-time", "20"])
            .args(&args)
            .stdin(Stdio::null())
            .output()
    })?
    .await??;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "curl failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

on_every_backend! {
    fn curl_gets_from_a_hyper_server_on_one_kept_alive_connection(m) {
        if !tool_available("curl") {
            return;
        }
        let mut b = base(m);
        let runtime = Runtime::new(&mut b).unwrap();
        let count = Rc::new(Cell::new(0));
        let c2 = count.clone();
        let out = runtime
            .block_on(&mut b, async move {
                let listener = TcpListener::bind("127.0.0.1:0")?;
                let addr = listener.local_addr()?;
                serve_http1(listener, 2, c2);
                let url = |p: &str| format!("http://{addr}/{p}");
                let get = curl(vec![url("first"), url("second"), url("third")]).await?;
                let post = curl(vec!["--data-binary".into(), "rot13 me".into(), url("post")]).await?;
                Ok::<_, io::Error>((get, post))
            })
            .unwrap()
            .unwrap();
        finish_runtime(runtime, &mut b);
        assert_eq!(out.0, "path /first\npath /second\npath /third\n");
        assert_eq!(out.1, "rot13 me");
        assert_eq!(count.get(), 2, "curl reuses its connection for the three GETs");
    }

    fn curl_speaks_http2_to_a_hyper_server_on_evrs_executor(m) {
        if !tool_available("curl") {
            return;
        }
        let mut b = base(m);
        let runtime = Runtime::new(&mut b).unwrap();
        let out = runtime
            .block_on(&mut b, async move {
                let listener = TcpListener::bind("127.0.0.1:0")?;
                let addr = listener.local_addr()?;
                serve_http2(listener);
                let url = |p: &str| format!("http://{addr}/{p}");
                curl(vec![
                    "--http2-prior-knowledge".into(),
                    "-w".into(),
                    "http/%{http_version}\n".into(),
                    // (one URL: Debian's curl 7.88 fails a second request on a reused
                    // prior-knowledge connection, against hyper on tokio as well)
                    url("one"),
                ])
                .await
            })
            .unwrap()
            .unwrap();
        finish_runtime(runtime, &mut b);
        assert_eq!(out, "path /one\nhttp/2\n");
    }

    fn a_hyper_client_and_server_exchange_large_bodies_over_http1(m) {
        let mut b = base(m);
        let runtime = Runtime::new(&mut b).unwrap();
        runtime
            .block_on(&mut b, async {
                let listener = TcpListener::bind("127.0.0.1:0")?;
                let addr: SocketAddr = listener.local_addr()?;
                serve_http1(listener, 1, Rc::new(Cell::new(0)));
                let stream = TcpStream::connect(addr).await?;
                let (mut send, conn) = hyper::client::conn::http1::handshake(stream)
                    .await
                    .map_err(io::Error::other)?;
                rt::spawn(conn)?.detach();
                for round in 0..3u8 {
                    let body: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8 ^ round).collect();
                    let req = Request::post(format!("http://{addr}/r{round}"))
                        .body(Full::new(Bytes::from(body.clone())))
                        .unwrap();
                    let resp = send.send_request(req).await.map_err(io::Error::other)?;
                    assert_eq!(resp.status(), 200);
                    let got = resp.into_body().collect().await.map_err(io::Error::other)?;
                    assert_eq!(got.to_bytes().as_ref(), &body[..], "round {round}");
                }
                Ok::<_, io::Error>(())
            })
            .unwrap()
            .unwrap();
        finish_runtime(runtime, &mut b);
    }

    fn http2_streams_run_concurrently_on_evrs_executor(m) {
        let mut b = base(m);
        let runtime = Runtime::new(&mut b).unwrap();
        runtime
            .block_on(&mut b, async {
                let listener = TcpListener::bind("127.0.0.1:0")?;
                let addr = listener.local_addr()?;
                serve_http2(listener);
                let stream = TcpStream::connect(addr).await?;
                let (send, conn) =
                    hyper::client::conn::http2::handshake(rt::hyper::Executor, stream)
                        .await
                        .map_err(io::Error::other)?;
                rt::spawn(conn)?.detach();
                let mut tasks = Vec::new();
                for i in 0..50 {
                    let mut send = send.clone();
                    tasks.push(rt::spawn(async move {
                        let req = Request::get(format!("http://{addr}/s{i}"))
                            .body(Full::new(Bytes::new()))
                            .unwrap();
                        let resp = send.send_request(req).await.map_err(io::Error::other)?;
                        let got = resp.into_body().collect().await.map_err(io::Error::other)?;
                        Ok::<_, io::Error>(got.to_bytes())
                    })?);
                }
                for (i, t) in tasks.into_iter().enumerate() {
                    assert_eq!(t.await??, format!("path /s{i}\n"));
                }
                Ok::<_, io::Error>(())
            })
            .unwrap()
            .unwrap();
        finish_runtime(runtime, &mut b);
    }

    fn hyper_runs_over_unix_streams(m) {
        let mut b = base(m);
        let runtime = Runtime::new(&mut b).unwrap();
        let got = runtime
            .block_on(&mut b, async {
                let (client, server) = UnixStream::pair()?;
                rt::spawn(http1::Builder::new().serve_connection(server, service_fn(echo)))?
                    .detach();
                let (mut send, conn) = hyper::client::conn::http1::handshake(client)
                    .await
                    .map_err(io::Error::other)?;
                rt::spawn(conn)?.detach();
                let req = Request::get("/over-unix").body(Full::new(Bytes::new())).unwrap();
                let resp = send.send_request(req).await.map_err(io::Error::other)?;
                let got = resp.into_body().collect().await.map_err(io::Error::other)?;
                Ok::<_, io::Error>(got.to_bytes())
            })
            .unwrap()
            .unwrap();
        finish_runtime(runtime, &mut b);
        assert_eq!(got, "path /over-unix\n");
    }

    fn header_read_timeout_runs_on_evrs_timer_and_is_never_early(m) {
        let mut b = base(m);
        let runtime = Runtime::new(&mut b).unwrap();
        let (err, waited, eof) = runtime
            .block_on(&mut b, async {
                let listener = TcpListener::bind("127.0.0.1:0")?;
                let addr = listener.local_addr()?;
                let server = rt::spawn(async move {
                    let (s, _) = listener.accept().await?;
                    let start = Instant::now();
                    let r = http1::Builder::new()
                        .timer(rt::hyper::Timer)
                        .header_read_timeout(Duration::from_millis(200))
                        .serve_connection(s, service_fn(echo))
                        .await;
                    Ok::<_, io::Error>((r, start.elapsed()))
                })?;
                let c = TcpStream::connect(addr).await?;
                // Half a request line, then silence: the server must give up on its timer.
                c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await?;
                let (r, waited) = server.await??;
                let mut buf = [0u8; 256];
                let mut eof = false;
                for _ in 0..4 {
                    if c.read(&mut buf).await? == 0 {
                        eof = true;
                        break;
                    }
                }
                Ok::<_, io::Error>((r.err(), waited, eof))
            })
            .unwrap()
            .unwrap();
        finish_runtime(runtime, &mut b);
        let err = err.expect("the connection ends in an error");
        assert!(err.is_timeout(), "a header-read timeout, not {err}");
        assert!(waited >= Duration::from_millis(200), "ended early: {waited:?}");
        assert!(waited < Duration::from_secs(10), "took {waited:?}");
        assert!(eof, "the server closed the connection");
    }

    fn evrs_timer_sleeps_for_hyper_never_end_early(m) {
        let mut b = base(m);
        let runtime = Runtime::new(&mut b).unwrap();
        runtime
            .block_on(&mut b, async {
                use hyper::rt::Timer as _;
                let t = rt::hyper::Timer;
                let start = Instant::now();
                t.sleep(Duration::from_millis(30)).await;
                assert!(start.elapsed() >= Duration::from_millis(30));
                let deadline = Instant::now() + Duration::from_millis(20);
                let mut s = t.sleep_until(Instant::now() + Duration::from_secs(3600));
                t.reset(&mut s, deadline);
                s.await;
                assert!(Instant::now() >= deadline);
            })
            .unwrap();
        finish_runtime(runtime, &mut b);
    }
}

/// hyper's executor outside a runtime cannot run the future: it drops it, logs, and the
/// caller goes on (no panic).
#[test]
fn the_executor_outside_a_runtime_drops_the_future_without_panicking() {
    use hyper::rt::Executor as _;
    let dropped = Rc::new(Cell::new(false));
    struct Flag(Rc<Cell<bool>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let flag = Flag(dropped.clone());
    rt::hyper::Executor.execute(async move {
        let _keep = &flag;
    });
    assert!(dropped.get());
}
