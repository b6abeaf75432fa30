//! `raw-uring`: a hand-written io_uring echo server with the ring flags evrs's io_uring
//! backend uses (`SINGLE_ISSUER | DEFER_TASKRUN`), completion-style: per connection one
//! `RECV` into its own 1 KiB buffer, its bytes sent back with one `SEND`, then the next
//! `RECV` — no readiness round trip, one `io_uring_enter` per turn that submits and waits.
//! The yardstick for evrs's io_uring completion mode (issue 18), as raw-epoll is for the
//! readiness backends. Accepts are plain `accept4` on a poll of the listener (the A/B's
//! connections are made before the timed part).

use super::sys::{accept, readable_now};
use io_uring::{opcode, squeue, types, IoUring};
use std::io;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, RawFd};

const BUF: usize = 1024;
const LISTENER: u64 = u64::MAX;
const STOP: u64 = u64::MAX - 1;
/// Tokens: connection slot << 1 | (0 recv, 1 send).
const SEND_BIT: u64 = 1;

struct Conn {
    fd: RawFd,
    buf: Box<[u8; BUF]>,
}

pub(crate) struct RawUringEcho {
    ring: IoUring,
    listener: TcpListener,
    stop_fd: RawFd,
    conns: Vec<Conn>,
    accepted: usize,
    /// Completions of the current turn (kept: no allocation per turn).
    done: Vec<(u64, i32)>,
}

impl RawUringEcho {
    pub(crate) fn new(l: TcpListener, stop_fd: RawFd) -> io::Result<RawUringEcho> {
        let ring = IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_cqsize(16384)
            .build(4096)?;
        let mut s = RawUringEcho {
            ring,
            listener: l,
            stop_fd,
            conns: Vec::new(),
            accepted: 0,
            done: Vec::new(),
        };
        let lfd = s.listener.as_raw_fd();
        s.push(
            opcode::PollAdd::new(types::Fd(lfd), libc::POLLIN as u32)
                .multi(true)
                .build()
                .user_data(LISTENER),
        )?;
        s.push(
            opcode::PollAdd::new(types::Fd(stop_fd), libc::POLLIN as u32)
                .multi(true)
                .build()
                .user_data(STOP),
        )?;
        Ok(s)
    }

    fn push(&mut self, sqe: squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: every buffer a request points at (a connection's boxed buffer) stays
            // allocated while the server lives, and a slot's buffer has one request at a time.
            if unsafe { self.ring.submission().push(&sqe) }.is_ok() {
                return Ok(());
            }
            self.ring.submit()?;
        }
    }

    fn recv(&mut self, slot: usize) -> io::Result<()> {
        let c = &mut self.conns[slot];
        let sqe = opcode::Recv::new(types::Fd(c.fd), c.buf.as_mut_ptr(), BUF as u32)
            .build()
            .user_data((slot as u64) << 1);
        self.push(sqe)
    }

    fn send(&mut self, slot: usize, n: usize) -> io::Result<()> {
        let c = &self.conns[slot];
        let sqe = opcode::Send::new(types::Fd(c.fd), c.buf.as_ptr(), n as u32)
            .build()
            .user_data((slot as u64) << 1 | SEND_BIT);
        self.push(sqe)
    }

    /// One enter (submit + wait for one) and its completions; true if the stop fd is readable.
    fn turn(&mut self) -> io::Result<bool> {
        match self.ring.submit_and_wait(1) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => return Ok(false),
            Err(e) => return Err(e),
        }
        let mut done = std::mem::take(&mut self.done);
        done.extend(self.ring.completion().map(|e| (e.user_data(), e.result())));
        let mut stop = false;
        for &(tok, res) in &done {
            match tok {
                LISTENER => {
                    while let Some(fd) = accept(self.listener.as_raw_fd())? {
                        self.conns.push(Conn {
                            fd,
                            buf: Box::new([0; BUF]),
                        });
                        self.accepted += 1;
                        self.recv(self.conns.len() - 1)?;
                    }
                }
                STOP => stop |= readable_now(self.stop_fd),
                _ => {
                    let slot = (tok >> 1) as usize;
                    if res <= 0 {
                        continue; // EOF or error: the connection is left (closed at drop)
                    }
                    if tok & SEND_BIT == 0 {
                        self.send(slot, res as usize)?;
                    } else {
                        self.recv(slot)?;
                    }
                }
            }
        }
        done.clear();
        self.done = done;
        Ok(stop)
    }
}

impl super::servers::Server for RawUringEcho {
    fn accept_until(&mut self, total: usize) -> io::Result<()> {
        while self.accepted < total {
            self.turn()?;
        }
        Ok(())
    }
    fn serve(&mut self) -> io::Result<()> {
        while !self.turn()? {}
        Ok(())
    }
}

impl Drop for RawUringEcho {
    fn drop(&mut self) {
        for c in self.conns.drain(..) {
            // SAFETY: the server owns the accepted fds.
            unsafe { libc::close(c.fd) };
            // A request may still point at the buffer until the ring's teardown (which the
            // kernel finishes asynchronously) has cancelled it: leave it allocated.
            Box::leak(c.buf);
        }
    }
}
