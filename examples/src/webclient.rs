//! The libevent book's first program, the synchronous web client, redone on a bufferevent.
//!
//! The book's version blocks at every step: `gethostbyname`, `connect`, a `send` loop, a
//! `recv` loop. Here each step is the bufferevent's: [`bev_connect_hostname`] looks the name
//! up off the loop and connects, the request waits in the output buffer until the connection
//! is up, and the read callback prints the response as it arrives. End of file is the end of
//! an HTTP/1.0 response: the bufferevent is freed, nothing is left in the loop, and
//! `dispatch` returns by itself.
//!
//! [`bev_connect_hostname`]: evrs::EventBase::bev_connect_hostname

use evrs::bufferevent::{BevCtx, BevEvents, BevHandler, BevOptions, Family};
use evrs::{EventBase, What};
use std::cell::RefCell;
use std::io::{self, Write};
use std::rc::Rc;
use std::time::Duration;

/// A response that makes no progress for this long is abandoned.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// How a fetch went (filled in as it runs).
#[derive(Debug, Default)]
pub struct Outcome {
    /// Bytes of response received (headers included).
    pub received: u64,
    /// The response ended with the server's end of file.
    pub complete: bool,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// The connection's callbacks: where the response goes, and what happened.
struct Client<W> {
    out: W,
    outcome: Rc<RefCell<Outcome>>,
}

impl<W: Write + 'static> BevHandler for Client<W> {
    fn read(&mut self, bev: &mut BevCtx<'_>) {
        let input = bev.input();
        let n = input.len();
        let written = input.chunks().try_for_each(|c| self.out.write_all(c));
        let _ = input.drain(n);
        self.outcome.borrow_mut().received += n as u64;
        if let Err(e) = written.and_then(|()| self.out.flush()) {
            self.fail(bev, format!("cannot write the response out: {e}"));
        }
    }

    fn event(&mut self, bev: &mut BevCtx<'_>, what: BevEvents) {
        if what.contains(BevEvents::CONNECTED) {
            return; // the request goes out now
        }
        if what.contains(BevEvents::EOF) {
            self.outcome.borrow_mut().complete = true;
            return bev.free();
        }
        let me = bev.handle();
        let base = bev.base();
        let why = if what.contains(BevEvents::TIMEOUT) {
            "timed out".to_string()
        } else if let Ok(Some(dns)) = base.bev_dns_error(me) {
            format!("cannot look the host up: {dns}")
        } else if let Ok(Some(errno)) = base.bev_socket_error(me) {
            io::Error::from_raw_os_error(errno).to_string()
        } else {
            format!("{what:?}")
        };
        self.fail(bev, why);
    }
}

impl<W> Client<W> {
    fn fail(&mut self, bev: &mut BevCtx<'_>, why: String) {
        self.outcome.borrow_mut().error = Some(why);
        bev.free();
    }
}

/// Starts fetching `http://host:port/path` on `base`, writing the response to `out` as it
/// arrives; running the loop does the rest. The outcome is complete once the loop has
/// returned.
pub fn fetch(
    base: &mut EventBase,
    host: &str,
    port: u16,
    path: &str,
    out: impl Write + 'static,
) -> io::Result<Rc<RefCell<Outcome>>> {
    let outcome = Rc::new(RefCell::new(Outcome::default()));
    let bev = base.bufferevent_socket(-1, BevOptions::CLOSE_ON_FREE)?;
    let client = Client {
        out,
        outcome: outcome.clone(),
    };
    base.bev_set_handler(bev, client)?;
    base.bev_set_timeouts(bev, Some(TIMEOUT), Some(TIMEOUT))?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n");
    base.bev_write(bev, request.as_bytes())?;
    base.bev_enable(bev, What::READ | What::WRITE)?;
    if let Err(e) = base.bev_connect_hostname(bev, Family::Any, host, port) {
        let _ = base.bev_free(bev);
        return Err(e);
    }
    Ok(outcome)
}

/// Fetches `http://host:port/path` on a base of its own, writing the response to `out`.
pub fn get(host: &str, port: u16, path: &str, out: impl Write + 'static) -> io::Result<Outcome> {
    let mut base = EventBase::new()?;
    let outcome = fetch(&mut base, host, port, path, out)?;
    base.dispatch()?; // returns once the bufferevent is freed: nothing left to wait for
    let outcome = outcome.take();
    Ok(outcome)
}
