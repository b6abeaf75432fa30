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
//! * End of file closes the connection once the answers still waiting are sent; an error
//!   closes it at once (the bufferevent frees itself from its own callbacks).

use crate::rot13::{rot13_char, Counters};
use evrs::buffer::{EolStyle, Error as BufError};
use evrs::bufferevent::{BevCtx, BevEvents, BevHandler, BevOptions};
use evrs::{EventBase, ListenerFlags, What};
use std::io;
use std::net::TcpListener;
use std::os::fd::{IntoRawFd, OwnedFd};
use std::rc::Rc;

/// The longest line a client may send.
pub const MAX_LINE: usize = 16 * 1024;
/// How many bytes of answers may wait per connection before we stop reading from it.
pub const MAX_PENDING: usize = 64 * 1024;

/// One client's callbacks and state.
pub struct Rot13 {
    counters: Rc<Counters>,
    /// The client has finished sending: close once its answers are out.
    closing: bool,
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
        if self.closing {
            if bev.output().is_empty() {
                self.close(bev);
            }
            return;
        }
        // The output drained to the low watermark: take input again.
        let _ = bev.enable(What::READ);
    }

    fn event(&mut self, bev: &mut BevCtx<'_>, what: BevEvents) {
        if what.contains(BevEvents::ERROR) || bev.output().is_empty() {
            return self.close(bev);
        }
        // End of file with answers still waiting: send them first (the write callback
        // closes once the output is empty: its low watermark becomes 0).
        self.closing = true;
        let _ = bev.disable(What::READ);
        let _ = bev.set_watermark(What::WRITE, 0, 0);
    }
}

impl Rot13 {
    fn close(&mut self, bev: &mut BevCtx<'_>) {
        self.counters.closed.set(self.counters.closed.get() + 1);
        bev.free();
    }
}

/// Sets up the server on `base`: from now on, running the loop serves `listener`'s
/// clients (through an evrs [`Listener`](evrs::Listener), which pauses instead of spinning
/// when the process runs out of descriptors). Returns counters the caller may watch.
pub fn listen(base: &mut EventBase, listener: TcpListener) -> io::Result<Rc<Counters>> {
    let counters = Rc::new(Counters::default());
    let c = counters.clone();
    let fd = OwnedFd::from(listener);
    let l = base.listener_from_fd(
        fd,
        ListenerFlags::CLOSE_ON_FREE,
        0, // already listening
        move |base, _l, fd, _peer| {
            if let Err(e) = serve(base, fd, c.clone()) {
                eprintln!("rot13: cannot take a connection: {e}");
            }
        },
    )?;
    base.listener_set_error_cb(l, |_, _, e| eprintln!("rot13: accept paused: {e}"))?;
    Ok(counters)
}

/// The book's `do_accept` body: a bufferevent for the new client.
pub fn serve(base: &mut EventBase, fd: OwnedFd, counters: Rc<Counters>) -> io::Result<()> {
    let bev = base.bufferevent_socket(fd.into_raw_fd(), BevOptions::CLOSE_ON_FREE)?;
    counters.accepted.set(counters.accepted.get() + 1);
    base.bev_set_handler(
        bev,
        Rot13 {
            counters,
            closing: false,
        },
    )?;
    base.bev_setwatermark(bev, What::WRITE, MAX_PENDING / 2, 0)?;
    base.bev_enable(bev, What::READ | What::WRITE)
}
