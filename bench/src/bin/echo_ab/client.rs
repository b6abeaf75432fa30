//! The client child process and the parent's handle on it.

use super::*;
// ---------------------------------------------------------------------------------------
// The client (a child process): a raw epoll loop driven by commands on stdin.
//
//   connect ID PORT N   open N connections to 127.0.0.1:PORT      -> ok
//   run ID M            M round trips over ID's connections       -> done
//   close ID            close ID's connections                    -> ok

pub(crate) fn client_main() -> io::Result<()> {
    let ep = epoll_new()?;
    let mut conns: Vec<Vec<std::net::TcpStream>> = Vec::new();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let msg = [b'x'; MSG];
    let mut buf = [0u8; 4096];
    let mut out = io::stdout().lock();
    for line in io::stdin().lock().lines() {
        let line = line?;
        let w: Vec<&str> = line.split_whitespace().collect();
        let num = |i: usize| -> io::Result<usize> {
            w.get(i)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| io::Error::other(format!("bad command {line:?}")))
        };
        let id = num(1)?;
        if conns.len() <= id {
            conns.resize_with(id + 1, Vec::new);
        }
        match w[0] {
            "connect" => {
                let (port, n) = (num(2)? as u16, num(3)?);
                for i in 0..n {
                    let s = std::net::TcpStream::connect(("127.0.0.1", port))?;
                    s.set_nodelay(true)?;
                    s.set_nonblocking(true)?;
                    epoll_add(
                        ep.as_raw_fd(),
                        s.as_raw_fd(),
                        ((id as u64) << 32) | i as u64,
                    )?;
                    conns[id].push(s);
                }
                writeln!(out, "ok")?;
            }
            "run" => {
                let m = num(2)?;
                let c = &conns[id];
                let mut got = vec![0usize; c.len()];
                let mut sent = 0;
                for s in c.iter().take(m) {
                    send(s.as_raw_fd(), &msg)?;
                    sent += 1;
                }
                let mut done = 0;
                while done < m {
                    // SAFETY: `events` is a valid buffer of its length.
                    let n = unsafe {
                        libc::epoll_wait(
                            ep.as_raw_fd(),
                            events.as_mut_ptr(),
                            events.len() as i32,
                            -1,
                        )
                    };
                    if n < 0 {
                        let e = io::Error::last_os_error();
                        if e.kind() == io::ErrorKind::Interrupted {
                            continue;
                        }
                        return Err(e);
                    }
                    for ev in &events[..n as usize] {
                        let (eid, i) = ((ev.u64 >> 32) as usize, ev.u64 as u32 as usize);
                        let fd = conns[eid][i].as_raw_fd();
                        // SAFETY: `buf` is valid for its length.
                        let r = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
                        if r == 0 {
                            return Err(io::Error::other("client: server closed a connection"));
                        }
                        if r < 0 {
                            let e = io::Error::last_os_error();
                            if e.kind() == io::ErrorKind::WouldBlock {
                                continue;
                            }
                            return Err(e);
                        }
                        if eid != id {
                            return Err(io::Error::other("client: data from an idle server"));
                        }
                        got[i] += r as usize;
                        while got[i] >= MSG {
                            got[i] -= MSG;
                            done += 1;
                            if sent < m {
                                send(fd, &msg)?;
                                sent += 1;
                            }
                        }
                    }
                }
                writeln!(out, "done")?;
            }
            "close" => {
                conns[id].clear();
                writeln!(out, "ok")?;
            }
            _ => return Err(io::Error::other(format!("bad command {line:?}"))),
        }
        out.flush()?;
    }
    Ok(())
}

pub(crate) fn send(fd: RawFd, msg: &[u8]) -> io::Result<()> {
    // SAFETY: `msg` is valid for its length.
    let w = unsafe { libc::write(fd, msg.as_ptr().cast(), msg.len()) };
    if w as usize == msg.len() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "client: short write ({w}): {}",
            io::Error::last_os_error()
        )))
    }
}

/// The parent's end of the client.
pub(crate) type Client = evrs_bench::ab::ClientProcess;
