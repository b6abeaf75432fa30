//! The ROT13 server from chapter 1 of the libevent book ("yet another version of our
//! asynchronous ROT13 server ... this time, it uses Libevent"), with plain events.
//!
//! The server listens on a TCP port, reads its clients' input one line at a time and writes
//! back the ROT13 of each line as it arrives. All clients are served by one thread: every
//! socket is *non-blocking*, and instead of blocking in `recv` or `send` we ask the event
//! base to call us when a socket is ready. Because we return to the loop between calls, we
//! cannot keep a connection's progress on the stack the way the forking server did; it lives
//! in a per-connection `FdState` — the book's `struct fd_state` — shared by the
//! connection's two events:
//!
//! * a **read event** (`READ | PERSIST`), pending for as long as we want input, and
//! * a **write event** (`WRITE | PERSIST`), pending only while we have an answer to send.
//!   A socket is writable almost all the time, so leaving it pending would wake us for
//!   nothing; we add it when a line is complete and delete it once the answer is flushed.
//!
//! Bad input is bounded, unlike in the book's version (which silently dropped what did not
//! fit in its 16 KiB buffer):
//!
//! * A line longer than [`MAX_LINE`] bytes is answered in `MAX_LINE`-byte pieces as they
//!   fill up: the server never holds more than `MAX_LINE` bytes of an unfinished line.
//! * A client that sends faster than it reads its answers is paused: once [`MAX_PENDING`]
//!   bytes of answers are waiting, we delete the read event, and add it again when the
//!   answers have been sent. The kernel's socket buffers then push back on the client.
//! * When the client closes its sending side (end of file), the rest of its last line is
//!   answered, everything pending is flushed, and the connection is closed. A read or write
//!   error closes the connection at once.

use evrs::{Event, EventBase, What};
use std::cell::{Cell, RefCell};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::io::AsRawFd;
use std::rc::Rc;

/// The book's port.
pub const DEFAULT_PORT: u16 = 40713;
/// The longest unfinished line kept per connection (the book's `MAX_LINE`).
pub const MAX_LINE: usize = 16 * 1024;
/// How many bytes of answers may wait per connection before we stop reading from it.
pub const MAX_PENDING: usize = 64 * 1024;

/// ROT13 of one byte. Like the book, we avoid locale-dependent `isalpha`: only ASCII letters
/// rotate.
pub fn rot13_char(c: u8) -> u8 {
    match c {
        b'a'..=b'm' | b'A'..=b'M' => c + 13,
        b'n'..=b'z' | b'N'..=b'Z' => c - 13,
        _ => c,
    }
}

/// Connection counters, readable while the server runs or after it stopped.
#[derive(Debug, Default)]
pub struct Counters {
    /// Connections accepted.
    pub accepted: Cell<u64>,
    /// Connections closed (after end of file or an error).
    pub closed: Cell<u64>,
    /// Times a connection stopped being read because its answers piled up.
    pub paused: Cell<u64>,
    /// Connections closed for sending a line over the limit (the bufferevent version).
    pub overlong: Cell<u64>,
}

/// Everything we must remember about one client between callbacks (`struct fd_state`).
struct FdState {
    stream: TcpStream,
    /// ROT13 of the current, still unfinished line.
    line: Vec<u8>,
    /// Answers (complete lines) waiting to be sent; `out[..sent]` is already gone.
    out: Vec<u8>,
    sent: usize,
    /// Is the read event pending (false while paused, or after end of file)?
    reading: bool,
    /// Has the client closed its sending side?
    eof: bool,
    read_event: Event,
    write_event: Event,
}

/// The callbacks' shared handle on a connection; `None` once it is closed.
type Conn = Rc<RefCell<Option<FdState>>>;

impl FdState {
    /// Rotates `input` into the current line; each finished line moves to `out`.
    fn take_input(&mut self, input: &[u8]) {
        for &c in input {
            self.line.push(rot13_char(c));
            if c == b'\n' || self.line.len() == MAX_LINE {
                self.out.append(&mut self.line);
            }
        }
    }

    fn unsent(&self) -> usize {
        self.out.len() - self.sent
    }
}

/// Sets up the ROT13 server on `base`: from now on, running the loop serves `listener`'s
/// clients. Returns counters the caller may watch.
pub fn listen(base: &mut EventBase, listener: TcpListener) -> io::Result<Rc<Counters>> {
    listener.set_nonblocking(true)?;
    let counters = Rc::new(Counters::default());
    let c = counters.clone();
    // The listening socket is readable when a connection waits to be accepted. The event
    // owns the listener: the closure is the event's storage.
    let fd = listener.as_raw_fd();
    let ev = base.new_event(fd, What::READ | What::PERSIST, move |base, ev, _what| {
        do_accept(base, ev, &listener, &c)
    })?;
    base.add(ev, None)?;
    Ok(counters)
}

fn do_accept(
    base: &mut EventBase,
    listener_event: Event,
    listener: &TcpListener,
    c: &Rc<Counters>,
) {
    // The book's do_accept: take every waiting connection (see `accept_pending` for why all of
    // them, and how an out-of-descriptors error is survived).
    crate::accept_pending(base, listener_event, listener, "rot13", |base, stream| {
        new_connection(base, stream, c.clone())
    });
}

/// The book's `alloc_fd_state`, plus making the socket non-blocking and starting to read.
fn new_connection(base: &mut EventBase, stream: TcpStream, c: Rc<Counters>) -> io::Result<()> {
    stream.set_nonblocking(true)?;
    let fd = stream.as_raw_fd();
    let conn: Conn = Rc::new(RefCell::new(None));
    let (c1, c2) = (c.clone(), c.clone());
    let reader = conn.clone();
    let read_event = base.new_event(fd, What::READ | What::PERSIST, move |base, _ev, _what| {
        do_read(base, &reader, &c1)
    })?;
    let writer = conn.clone();
    let write_event = match base.new_event(fd, What::WRITE | What::PERSIST, move |base, _, _| {
        do_write(base, &writer, &c2)
    }) {
        Ok(ev) => ev,
        Err(e) => {
            let _ = base.free(read_event);
            return Err(e);
        }
    };
    *conn.borrow_mut() = Some(FdState {
        stream,
        line: Vec::new(),
        out: Vec::new(),
        sent: 0,
        reading: true,
        eof: false,
        read_event,
        write_event,
    });
    c.accepted.set(c.accepted.get() + 1);
    if let Err(e) = base.add(read_event, None) {
        close(base, &conn, &c);
        return Err(e);
    }
    Ok(())
}

/// The book's `free_fd_state`: free both events, then drop the socket (closing it). Freeing
/// the event whose callback is running is fine: evrs drops that closure when it returns.
fn close(base: &mut EventBase, conn: &Conn, c: &Counters) {
    let Some(state) = conn.borrow_mut().take() else {
        return;
    };
    let _ = base.free(state.read_event);
    let _ = base.free(state.write_event);
    c.closed.set(c.closed.get() + 1);
    drop(state); // closes the socket, after its events are gone
}

fn do_read(base: &mut EventBase, conn: &Conn, c: &Counters) {
    let mut guard = conn.borrow_mut();
    let Some(state) = guard.as_mut() else { return };
    let mut buf = [0u8; 4096];
    // Read until the kernel has nothing more for us (EAGAIN), as the book does — but stop
    // early if the client is not reading its answers.
    loop {
        if state.unsent() >= MAX_PENDING {
            let _ = base.del(state.read_event); // paused; do_write resumes us
            state.reading = false;
            c.paused.set(c.paused.get() + 1);
            break;
        }
        match state.stream.read(&mut buf) {
            Ok(0) => {
                // End of file: answer what is left of the last line, then finish up.
                let rest = std::mem::take(&mut state.line);
                state.out.extend_from_slice(&rest);
                state.eof = true;
                state.reading = false;
                let _ = base.del(state.read_event);
                break;
            }
            Ok(n) => state.take_input(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                eprintln!("rot13: recv: {e}");
                drop(guard);
                return close(base, conn, c);
            }
        }
    }
    if state.unsent() > 0 {
        // There is an answer to send: wait until the socket can take it.
        let _ = base.add(state.write_event, None);
    } else if state.eof {
        drop(guard);
        close(base, conn, c);
    }
}

fn do_write(base: &mut EventBase, conn: &Conn, c: &Counters) {
    let mut guard = conn.borrow_mut();
    let Some(state) = guard.as_mut() else { return };
    while state.unsent() > 0 {
        match state.stream.write(&state.out[state.sent..]) {
            Ok(0) => break, // cannot happen for a non-empty TCP send; treated as an error below
            Ok(n) => state.sent += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return, // the event stays pending
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                eprintln!("rot13: send: {e}");
                drop(guard);
                return close(base, conn, c);
            }
        }
    }
    if state.unsent() > 0 {
        drop(guard);
        return close(base, conn, c);
    }
    // Everything is flushed: nothing to wait for on the write side any more.
    state.out.clear();
    state.sent = 0;
    let _ = base.del(state.write_event);
    if state.eof {
        drop(guard);
        close(base, conn, c);
    } else if !state.reading {
        // We had paused reading because answers piled up; they are gone, so resume.
        state.reading = true;
        let _ = base.add(state.read_event, None);
    }
}
