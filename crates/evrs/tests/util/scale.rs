//! The 10,000-connection tests' shared parts: the fd limit, and the client process (the
//! test binary re-run in client mode).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The parent side of a scale test, ready to serve (see [`start`]).
pub struct Parent {
    /// The test's name (the client process re-runs exactly it).
    pub name: String,
    /// The fd limit now.
    pub limit: u64,
    _turn: MutexGuard<'static, ()>,
    _watchdog: super::Watchdog,
}

/// Starts a scale test of `n` connections with `msg`-byte messages. In the client process
/// (`client_env` set to the parent's address) it runs [`client`] and returns `None`; in the
/// parent it takes `turn` (the tests of a binary would need twice the fds together), raises
/// the fd limit — `None`, with a `SKIPPED` line, if the hard one is too low — and arms a
/// watchdog of `bound` plus a minute.
pub fn start(
    turn: &'static Mutex<()>,
    client_env: &str,
    n: usize,
    msg: usize,
    bound: Duration,
) -> Option<Parent> {
    let name = std::thread::current().name().unwrap().to_string();
    if let Ok(addr) = std::env::var(client_env) {
        client(addr.parse().unwrap(), n, msg);
        return None;
    }
    let guard = turn.lock().unwrap_or_else(|e| e.into_inner());
    let limit = match raise_fd_limit(n as u64 + 100) {
        Ok(l) => l,
        Err(why) => {
            let _ = writeln!(std::io::stderr().lock(), "SKIPPED {name}: {why}");
            return None;
        }
    };
    let watchdog = super::watchdog(&name, bound + Duration::from_secs(60));
    Some(Parent {
        name,
        limit,
        _turn: guard,
        _watchdog: watchdog,
    })
}

/// Raises the soft fd limit to the hard one; `Err` with the reason if that is below what
/// `need` fds take.
pub fn raise_fd_limit(need: u64) -> Result<u64, String> {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `rl` is a valid, writable rlimit.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) }, 0);
    if rl.rlim_max < need {
        return Err(format!(
            "hard RLIMIT_NOFILE is {}, {need} fds are needed (ulimit -Hn)",
            rl.rlim_max
        ));
    }
    rl.rlim_cur = rl.rlim_max;
    // SAFETY: as above; raising the soft limit up to the hard one is always allowed.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rl) }, 0);
    Ok(rl.rlim_cur)
}

/// The client process: `n` connections, all open at once; a `msg`-byte message on each;
/// each echo read back and checked; then all closed. Prints `CLIENT OK <n> ...` for the
/// parent.
pub fn client(addr: SocketAddr, n: usize, msg: usize) {
    raise_fd_limit(n as u64 + 100).unwrap();
    let t0 = Instant::now();
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect #{i}: {e}"));
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        s.set_nodelay(true).unwrap();
        conns.push(s);
    }
    let connected = t0.elapsed();
    for (i, s) in conns.iter_mut().enumerate() {
        s.write_all(format!("{i:0msg$}").as_bytes())
            .unwrap_or_else(|e| panic!("write #{i}: {e}"));
    }
    for (i, s) in conns.iter_mut().enumerate() {
        let mut back = vec![0u8; msg];
        s.read_exact(&mut back)
            .unwrap_or_else(|e| panic!("echo #{i}: {e}"));
        assert_eq!(back, format!("{i:0msg$}").as_bytes(), "echo #{i}");
    }
    let echoed = t0.elapsed();
    drop(conns);
    println!("CLIENT OK {n} connected in {connected:?}, all echoed by {echoed:?}");
}
