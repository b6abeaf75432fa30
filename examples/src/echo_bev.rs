//! An echo server on a listener and one bufferevent per connection: the bufferevent reads
//! into its input buffer and writes its output buffer for us, so echoing is one call —
//! move the whole input to the output (a zero-copy move of the buffer's chunks).
//!
//! A client that sends faster than it reads its echo is paused: once [`MAX_PENDING`] bytes
//! wait to be sent, reading stops, and resumes when the output has drained to half of that
//! (the write low watermark). End of file closes the connection once the echo still
//! waiting is sent; an error closes it at once.

use evrs::bufferevent::{BevCtx, BevEvents, BevHandler, BevOptions};
use evrs::{EventBase, ListenerFlags, What};
use std::cell::Cell;
use std::io;
use std::net::TcpListener;
use std::os::fd::{IntoRawFd, OwnedFd};
use std::rc::Rc;

/// The port `echo_server_bev` listens on by default.
pub const DEFAULT_PORT: u16 = 40714;
/// How many bytes of echo may wait per connection before we stop reading from it.
pub const MAX_PENDING: usize = 64 * 1024;

/// What the server has done so far (shared by every connection; the loop is one thread).
#[derive(Debug, Default)]
pub struct Counters {
    /// Connections accepted.
    pub accepted: Cell<u64>,
    /// Connections closed (after end of file or an error).
    pub closed: Cell<u64>,
    /// Times a connection stopped being read because its echo piled up.
    pub paused: Cell<u64>,
    /// Bytes echoed.
    pub echoed: Cell<u64>,
}

/// One client's callbacks and state.
struct Echo {
    counters: Rc<Counters>,
    /// The client has finished sending: close once its echo is out.
    closing: bool,
}

impl BevHandler for Echo {
    fn read(&mut self, bev: &mut BevCtx<'_>) {
        let (input, output) = bev.buffers();
        let n = input.len() as u64;
        if output.add_buffer(input).is_err() {
            return self.close(bev);
        }
        self.counters.echoed.set(self.counters.echoed.get() + n);
        if bev.output().len() >= MAX_PENDING {
            // Wait for the echo to drain (see `write`).
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
        // End of file with echo still waiting: send it first (the write callback closes
        // once the output is empty: its low watermark becomes 0).
        self.closing = true;
        let _ = bev.disable(What::READ);
        let _ = bev.set_watermark(What::WRITE, 0, 0);
    }
}

impl Echo {
    fn close(&mut self, bev: &mut BevCtx<'_>) {
        self.counters.closed.set(self.counters.closed.get() + 1);
        bev.free();
    }
}

/// Sets up the server on `base`: from now on, running the loop serves `listener`'s
/// clients. Returns counters the caller may watch.
pub fn listen(base: &mut EventBase, listener: TcpListener) -> io::Result<Rc<Counters>> {
    let counters = Rc::new(Counters::default());
    let c = counters.clone();
    let l = base.listener_from_fd(
        OwnedFd::from(listener),
        ListenerFlags::CLOSE_ON_FREE,
        0, // already listening
        move |base, _l, fd, _peer| {
            if let Err(e) = serve(base, fd, c.clone()) {
                eprintln!("echo: cannot take a connection: {e}");
            }
        },
    )?;
    base.listener_set_error_cb(l, |_, _, e| eprintln!("echo: accept paused: {e}"))?;
    Ok(counters)
}

/// A bufferevent for a new client.
fn serve(base: &mut EventBase, fd: OwnedFd, counters: Rc<Counters>) -> io::Result<()> {
    let bev = base.bufferevent_socket(fd.into_raw_fd(), BevOptions::CLOSE_ON_FREE)?;
    counters.accepted.set(counters.accepted.get() + 1);
    let echo = Echo {
        counters,
        closing: false,
    };
    base.bev_set_handler(bev, echo)?;
    base.bev_setwatermark(bev, What::WRITE, MAX_PENDING / 2, 0)?;
    base.bev_enable(bev, What::READ | What::WRITE)
}
