//! The libevent book's last ROT13 server (chapter 1, "with bufferevents"): one listener, one
//! bufferevent per client. The bufferevent reads into its input buffer and writes its output
//! buffer for us, so the connection's code is only the protocol: take each complete line
//! (LF-terminated) from the input, put its ROT13 in the output.
//!
//! The connection's state is its handler ([`Rot13`]): the read, write and event callbacks
//! share it without `Rc<RefCell>`. Bad input is bounded:
//!
//! * A line longer than [`MAX_LINE`] bytes closes that connection (the book's server kept
//!   accumulating it); the other clients go on being served.
//! * A client that sends faster than it reads its answers is paused: once [`MAX_PENDING`]
//!   bytes of answers wait, reading stops, and resumes when the output has drained to half
//!   of that (the write low watermark).
//! * End of file or an error closes the connection (the bufferevent frees itself from its
//!   own event callback).

use crate::rot13::{rot13_char, Counters};
use evrs::buffer::{EolStyle, Error as BufError};
use evrs::bufferevent::{BevCtx, BevEvents, BevHandler, BevOptions};
use evrs::{Event, EventBase, What};
use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::IntoRawFd;
use std::os::unix::io::AsRawFd;
use std::rc::Rc;

/// The longest line a client may send.
pub const MAX_LINE: usize = 16 * 1024;
/// How many bytes of answers may wait per connection before we stop reading from it.
pub const MAX_PENDING: usize = 64 * 1024;

/// One client's callbacks and state.
pub struct Rot13 {
    counters: Rc<Counters>,
}

impl BevHandler for Rot13 {
    fn read(&mut self, bev: &mut BevCtx<'_>) {
        let (input, output) = bev.buffers();
        // Bounded: each round removes a line from the input, or stops.
        loop {
            match input.readln(EolStyle::Lf, Some(MAX_LINE)) {
                Ok(Some(line)) => {
                    let rotated: Vec<u8> = line.iter().map(|&c| rot13_char(c)).collect();
                    let _ = output.add(&rotated);
                    let _ = output.add(b"\n");
                }
                Ok(None) => break,
                Err(BufError::LineTooLong { .. }) => {
                    self.counters.overlong.set(self.counters.overlong.get() + 1);
                    return self.close(bev);
                }
                Err(_) => return self.close(bev),
            }
        }
        if bev.output().len() >= MAX_PENDING {
            // Wait for the answers to drain (see `write`).
            self.counters.paused.set(self.counters.paused.get() + 1);
            let _ = bev.disable(What::READ);
        }
    }

    fn write(&mut self, bev: &mut BevCtx<'_>) {
        // The output drained to the low watermark: take input again.
        let _ = bev.enable(What::READ);
    }

    fn event(&mut self, bev: &mut BevCtx<'_>, what: BevEvents) {
        if what.intersects(BevEvents::EOF | BevEvents::ERROR) {
            self.close(bev);
        }
    }
}

impl Rot13 {
    fn close(&mut self, bev: &mut BevCtx<'_>) {
        self.counters.closed.set(self.counters.closed.get() + 1);
        bev.free();
    }
}

/// Sets up the server on `base`: from now on, running the loop serves `listener`'s
/// clients. Returns counters the caller may watch.
pub fn listen(base: &mut EventBase, listener: TcpListener) -> io::Result<Rc<Counters>> {
    listener.set_nonblocking(true)?;
    let counters = Rc::new(Counters::default());
    let c = counters.clone();
    let fd = listener.as_raw_fd();
    let ev = base.new_event(fd, What::READ | What::PERSIST, move |base, ev: Event, _| {
        crate::accept_pending(base, ev, &listener, "rot13", |base, stream| {
            serve(base, stream, c.clone())
        });
    })?;
    base.add(ev, None)?;
    Ok(counters)
}

/// The book's `do_accept` body: a bufferevent for the new client.
pub fn serve(base: &mut EventBase, stream: TcpStream, counters: Rc<Counters>) -> io::Result<()> {
    stream.set_nonblocking(true)?;
    let bev = base.bufferevent_socket(stream.into_raw_fd(), BevOptions::CLOSE_ON_FREE)?;
    counters.accepted.set(counters.accepted.get() + 1);
    base.bev_set_handler(bev, Rot13 { counters })?;
    base.bev_setwatermark(bev, What::WRITE, MAX_PENDING / 2, 0)?;
    base.bev_enable(bev, What::READ | What::WRITE)
}
