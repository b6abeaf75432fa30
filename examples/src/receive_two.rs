//! The lecture's `receiveTwoConnections`, on an event loop.
//!
//! The problem: read from two connections without knowing which one will send first. A
//! blocking `read` on client 1 would miss client 2's data; a non-blocking busy loop over
//! both "doesn't block... at all... even when there is no data to process". The lecture's
//! answer is `epoll_wait`: sleep until one of the watched descriptors is ready. Here the
//! watch set is an [`EventBase`] and each client gets a persistent read event.
//!
//! The loop itself tells us when we are done: `dispatch` returns once no events are left,
//! so each client's event frees itself when its client closes, and the listener's event
//! frees itself after accepting the second client. No connection counter is needed.

use evrs::{EventBase, RunOutcome, What};
use std::cell::RefCell;
use std::io::{self, ErrorKind, Read};
use std::net::{TcpListener, TcpStream};
use std::os::unix::io::AsRawFd;
use std::rc::Rc;

/// The lecture's port.
pub const DEFAULT_PORT: u16 = 12345;

/// Where the transcript goes: `println!` in the example, a `Vec` in the test.
type Report = Rc<RefCell<dyn FnMut(String)>>;

/// Accepts two clients on `listener`, then reports everything they send
/// (`"CLIENT 1: ..."`), each close (`"CLIENT 1 closed"`) and finally
/// `"All connections closed"`. Returns when both have closed.
pub fn receive_two(listener: TcpListener, report: impl FnMut(String) + 'static) -> io::Result<()> {
    let report: Report = Rc::new(RefCell::new(report));
    let mut base = EventBase::new()?;
    listener.set_nonblocking(true)?;
    let fd = listener.as_raw_fd();
    let r = report.clone();
    let mut accepted = 0;
    let ev = base.new_event(fd, What::READ | What::PERSIST, move |base, me, _| {
        while accepted < 2 {
            match listener.accept() {
                Ok((stream, _)) => {
                    accepted += 1;
                    (r.borrow_mut())(format!("CLIENT {accepted} connected"));
                    if let Err(e) = watch(base, stream, accepted, r.clone()) {
                        (r.borrow_mut())(format!("CLIENT {accepted}: cannot watch: {e}"));
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) => return (r.borrow_mut())(format!("accept: {e}")),
            }
        }
        // Both are here: stop listening. Freeing our own event drops this closure — and
        // with it the listener — once we return.
        let _ = base.free(me);
    })?;
    base.add(ev, None)?;
    (report.borrow_mut())("Printing from two incoming connections".into());
    let outcome = base.dispatch()?;
    debug_assert_eq!(outcome, RunOutcome::NoEvents);
    (report.borrow_mut())("All connections closed".into());
    Ok(())
}

/// Adds a persistent read event for one client. The closure owns the socket: it is the
/// event's per-connection storage, and freeing the event closes the socket.
fn watch(base: &mut EventBase, stream: TcpStream, n: usize, report: Report) -> io::Result<()> {
    stream.set_nonblocking(true)?;
    let fd = stream.as_raw_fd();
    let mut stream = Some(stream);
    let ev = base.new_event(fd, What::READ | What::PERSIST, move |base, me, _| {
        let Some(s) = stream.as_mut() else { return };
        // The lecture's receiveFromFd: read until the kernel has nothing more (EAGAIN).
        let mut buf = [0u8; 512];
        let closed = loop {
            match s.read(&mut buf) {
                Ok(0) => break true,
                Ok(k) => {
                    let text = String::from_utf8_lossy(&buf[..k]);
                    (report.borrow_mut())(format!("CLIENT {n}: {text}"));
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    (report.borrow_mut())(format!("CLIENT {n}: read: {e}"));
                    break true;
                }
            }
        };
        if closed {
            (report.borrow_mut())(format!("CLIENT {n} closed"));
            stream = None; // close the socket...
            let _ = base.free(me); // ...and forget the event
        }
    })?;
    base.add(ev, None)
}
