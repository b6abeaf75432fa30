//! The lecture's "fully asynchronous" server (Ryan Eberhardt, *Asynchronous I/O*): one
//! thread, one event loop, any number of clients — here an echo server.
//!
//! The lecture's `main` is an *event loop*: it waits for something to happen, then does
//! something quick in response. The listening socket and every client socket sit in one
//! watch set; readiness of the listener means "accept some clients", readiness of a client
//! means "receive from it". With evrs the watch set is the [`EventBase`], and instead of a
//! `switch` on `event.data.fd` each socket's event has its own callback.
//!
//! Per connection we keep only what the lecture says async servers must keep — the state
//! the stack would hold in a threaded server: the socket and the bytes read but not yet
//! echoed. Each client has two events, and exactly one of them is pending at a time:
//!
//! * nothing waiting to be echoed → the **read event** is pending: read one chunk and echo
//!   it at once; if the socket takes all of it we stay in this state;
//! * echo only partly sent → the **write event** is pending instead: finish sending, then
//!   switch back. So a client that does not read its echoes is not read from either, and a
//!   connection never holds more than one chunk.
//!
//! We read one chunk per callback rather than until `EAGAIN`: events are level-triggered,
//! so the loop calls us again, and one busy client cannot starve the others (the lecture's
//! "fairness/starvation" pitfall).

use evrs::{Event, EventBase, What};
use std::cell::{Cell, RefCell};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::io::AsRawFd;
use std::rc::Rc;

/// The lecture's port.
pub const DEFAULT_PORT: u16 = 12345;
/// Bytes read per callback.
const CHUNK: usize = 16 * 1024;

/// Counters, readable while the server runs or after it stopped.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections accepted.
    pub accepted: Cell<u64>,
    /// Connections closed.
    pub closed: Cell<u64>,
    /// Bytes echoed.
    pub bytes: Cell<u64>,
}

impl Stats {
    /// Connections currently open.
    pub fn open(&self) -> u64 {
        self.accepted.get() - self.closed.get()
    }
}

struct Client {
    stream: TcpStream,
    /// Read but not yet echoed: `pending[sent..]`.
    pending: Vec<u8>,
    sent: usize,
    read_event: Event,
    write_event: Event,
}

type Shared = Rc<RefCell<Option<Client>>>;

/// Registers the echo server on `base`; running the loop then serves `listener`'s clients.
pub fn listen(base: &mut EventBase, listener: TcpListener) -> io::Result<Rc<Stats>> {
    listener.set_nonblocking(true)?;
    let stats = Rc::new(Stats::default());
    let s = stats.clone();
    let fd = listener.as_raw_fd();
    let ev = base.new_event(fd, What::READ | What::PERSIST, move |base, ev, _| {
        accept_some_clients(base, ev, &listener, &s)
    })?;
    base.add(ev, None)?;
    Ok(stats)
}

/// The lecture's `acceptSomeClients`: accept until `EAGAIN`.
fn accept_some_clients(base: &mut EventBase, me: Event, listener: &TcpListener, s: &Rc<Stats>) {
    crate::accept_pending(base, me, listener, "echo", |base, stream| {
        add_client(base, stream, s)
    });
}

/// Registers one accepted connection on `base` (its read and write events; see the module
/// docs). [`multi_loop`](crate::multi_loop) calls it on a worker's loop for the connections
/// its acceptor hands over.
pub fn add_client(base: &mut EventBase, stream: TcpStream, s: &Rc<Stats>) -> io::Result<()> {
    stream.set_nonblocking(true)?;
    let fd = stream.as_raw_fd();
    let shared: Shared = Rc::new(RefCell::new(None));
    let (c, st) = (shared.clone(), s.clone());
    let read_event = base.new_event(fd, What::READ | What::PERSIST, move |base, _, _| {
        on_readable(base, &c, &st)
    })?;
    let (c, st) = (shared.clone(), s.clone());
    let write_event = base
        .new_event(fd, What::WRITE | What::PERSIST, move |base, _, _| {
            on_writable(base, &c, &st)
        })
        .inspect_err(|_| {
            let _ = base.free(read_event);
        })?;
    *shared.borrow_mut() = Some(Client {
        stream,
        pending: Vec::new(),
        sent: 0,
        read_event,
        write_event,
    });
    s.accepted.set(s.accepted.get() + 1);
    base.add(read_event, None)
        .inspect_err(|_| close(base, &shared, s))
}

fn close(base: &mut EventBase, shared: &Shared, s: &Stats) {
    if let Some(client) = shared.borrow_mut().take() {
        let _ = base.free(client.read_event);
        let _ = base.free(client.write_event);
        s.closed.set(s.closed.get() + 1);
    } // the socket closes here, after its events are gone
}

/// Sends what is pending. `Ok(true)`: all sent.
fn flush(c: &mut Client, s: &Stats) -> io::Result<bool> {
    while c.sent < c.pending.len() {
        match c.stream.write(&c.pending[c.sent..]) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => {
                c.sent += n;
                s.bytes.set(s.bytes.get() + n as u64);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    c.pending.clear();
    c.sent = 0;
    Ok(true)
}

fn on_readable(base: &mut EventBase, shared: &Shared, s: &Stats) {
    let mut guard = shared.borrow_mut();
    let Some(c) = guard.as_mut() else { return };
    c.pending.resize(CHUNK, 0);
    let result = match c.stream.read(&mut c.pending) {
        Ok(0) => Err(None), // the client closed the connection
        Ok(n) => {
            c.pending.truncate(n);
            flush(c, s).map_err(Some)
        }
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
            c.pending.clear();
            Ok(true)
        }
        Err(e) => Err(Some(e)),
    };
    match result {
        Ok(true) => {}
        Ok(false) => {
            // The socket is full: wait until it is writable, and stop reading meanwhile.
            let _ = base.del(c.read_event);
            let _ = base.add(c.write_event, None);
        }
        Err(err) => {
            if let Some(e) = err {
                eprintln!("echo: {e}");
            }
            drop(guard);
            close(base, shared, s);
        }
    }
}

fn on_writable(base: &mut EventBase, shared: &Shared, s: &Stats) {
    let mut guard = shared.borrow_mut();
    let Some(c) = guard.as_mut() else { return };
    match flush(c, s) {
        Ok(false) => {} // still more to send; stay pending
        Ok(true) => {
            let _ = base.del(c.write_event);
            let _ = base.add(c.read_event, None);
        }
        Err(e) => {
            eprintln!("echo: {e}");
            drop(guard);
            close(base, shared, s);
        }
    }
}
