//! An echo server in async style on `evrs::rt` — tokio's echo example, on an evrs base: a
//! task per connection that reads into a 1 KiB buffer and writes it back, until end of
//! file. The benchmark's `evrs-async` server is the same loop.

use evrs::rt::{self, Runtime, TcpListener, TcpStream};
use evrs::EventBase;
use std::cell::Cell;
use std::io;
use std::rc::Rc;

/// The port `async_echo` listens on by default.
pub const DEFAULT_PORT: u16 = 40718;

/// What the server has done so far.
#[derive(Debug, Default)]
pub struct Counters {
    /// Connections accepted.
    pub accepted: Cell<u64>,
    /// Connections closed.
    pub closed: Cell<u64>,
    /// Bytes echoed.
    pub echoed: Cell<u64>,
}

/// Starts serving `listener` on `base`; keep the runtime (and run the base) while it serves.
pub fn listen(
    base: &mut EventBase,
    listener: std::net::TcpListener,
) -> io::Result<(Runtime, Rc<Counters>)> {
    let rt = Runtime::new(base)?;
    let counters = Rc::new(Counters::default());
    let listener = TcpListener::from_std(listener)?;
    let c = counters.clone();
    rt.spawn(async move {
        loop {
            let Ok((conn, _)) = listener.accept().await else {
                continue;
            };
            c.accepted.set(c.accepted.get() + 1);
            let c = c.clone();
            match rt::spawn(async move {
                let _ = echo(&conn, &c).await;
                c.closed.set(c.closed.get() + 1);
            }) {
                Ok(t) => t.detach(),
                Err(_) => return,
            }
        }
    })
    .detach();
    Ok((rt, counters))
}

async fn echo(conn: &TcpStream, c: &Counters) -> io::Result<()> {
    let mut buf = [0u8; 1024];
    loop {
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        conn.write_all(&buf[..n]).await?;
        c.echoed.set(c.echoed.get() + n as u64);
    }
}
