//! 10,000 async tasks serving 10,000 simultaneous TCP connections on one `evrs::rt`
//! runtime: an accept task spawns an echo task per connection, against a client process
//! (this test binary re-run in client mode, `util::scale::client`) that opens 10,000
//! connections, keeps all of them open, sends a 16-byte message on each, reads each echo
//! back, then closes them all. Every connection must be served, all 10,000 tasks alive at
//! once, and each must end on its EOF. The fd limit is raised to the hard one (CI's is
//! 20,000); too low a hard limit skips the test with the reason printed. Epoll and poll
//! (select's `fd_set` holds fds below 1024 only); the two take turns (a lock).
mod util;
use evrs::rt::{self, Runtime, TcpListener};
use evrs::Method;
use std::cell::Cell;
use std::io::{Read, Write};
use std::rc::Rc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const CONNS: usize = 10_000;
const MSG: usize = 16;
const CLIENT_ENV: &str = "EVRS_RT_SCALE_CLIENT";
const BOUND: Duration = Duration::from_secs(180);

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[derive(Default)]
struct Counts {
    served: Cell<usize>,
    live: Cell<usize>,
    peak: Cell<usize>,
    ended: Cell<usize>,
}

async fn echo(s: rt::TcpStream, c: Rc<Counts>) {
    c.live.set(c.live.get() + 1);
    c.peak.set(c.peak.get().max(c.live.get()));
    let mut buf = [0u8; 64];
    let mut got = 0;
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if s.write_all(&buf[..n]).await.is_err() {
                    break;
                }
                got += n;
                if got == MSG {
                    c.served.set(c.served.get() + 1);
                }
            }
        }
    }
    c.live.set(c.live.get() - 1);
    c.ended.set(c.ended.get() + 1);
}

fn ten_thousand_tasks(m: Method) {
    let Some(parent) = util::scale::start(&ONE_AT_A_TIME, CLIENT_ENV, CONNS, MSG, BOUND) else {
        return;
    };
    let (name, limit) = (parent.name.clone(), parent.limit);
    let mut b = util::base(m);
    let rt = Runtime::new(&mut b).unwrap();
    let counts = Rc::new(Counts::default());
    let c = counts.clone();
    let t0 = Instant::now();
    let test = name.clone();
    let (status, out) = rt
        .block_on(&mut b, async move {
            let l = TcpListener::bind("127.0.0.1:0")?;
            let addr = l.local_addr()?;
            let mut child = std::process::Command::new(std::env::current_exe()?)
                .args([test.as_str(), "--exact", "--nocapture", "--test-threads=1"])
                .env(CLIENT_ENV, addr.to_string())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()?;
            let cc = c.clone();
            let acceptor = rt::spawn(async move {
                for _ in 0..CONNS {
                    let (s, _) = l.accept().await?;
                    rt::spawn(echo(s, cc.clone()))?.detach();
                }
                Ok::<_, std::io::Error>(())
            })?;
            // Until every task ended and the client is gone (or failed, or the bound).
            let status = loop {
                if let Some(st) = child.try_wait()? {
                    if !st.success() || c.ended.get() == CONNS {
                        break Some(st);
                    }
                }
                if t0.elapsed() > BOUND {
                    let _ = child.kill();
                    break None;
                }
                rt::sleep(Duration::from_millis(10)).await;
            };
            drop(acceptor);
            let mut out = String::new();
            child.stdout.take().unwrap().read_to_string(&mut out)?;
            child.stderr.take().unwrap().read_to_string(&mut out)?;
            let _ = child.wait();
            Ok::<_, std::io::Error>((status, out))
        })
        .unwrap()
        .unwrap();
    let took = t0.elapsed();
    rt.shutdown(&mut b);
    let status = status.unwrap_or_else(|| {
        panic!(
            "not done within {BOUND:?}: served {}, ended {}, peak {}\n{out}",
            counts.served.get(),
            counts.ended.get(),
            counts.peak.get()
        )
    });
    assert!(status.success(), "client failed ({status:?}):\n{out}");
    assert!(out.contains(&format!("CLIENT OK {CONNS}")), "{out}");
    assert_eq!(counts.served.get(), CONNS, "connections served");
    assert_eq!(counts.peak.get(), CONNS, "tasks alive at once");
    assert_eq!(counts.ended.get(), CONNS, "tasks ended");
    let _ = writeln!(
        std::io::stderr().lock(),
        "{name}: {CONNS} simultaneous echo tasks served and ended in {took:?} (fd limit {limit})"
    );
}

#[test]
fn epoll_ten_thousand_tasks_and_connections() {
    ten_thousand_tasks(Method::Epoll);
}

#[test]
fn poll_ten_thousand_tasks_and_connections() {
    ten_thousand_tasks(Method::Poll);
}

#[test]
fn io_uring_ten_thousand_tasks_and_connections() {
    ten_thousand_tasks(Method::IoUring);
}
