//! The ROT13 server once more, in async style on `evrs::rt`: the lecture's point that with
//! async/await the compiler writes the state machine. Each client is a task whose code reads
//! like the book's blocking server — read, answer each complete line, repeat — yet all
//! clients share one thread and one event base (which callback code may use too).
//!
//! Bad input is bounded as in the other versions: a line over [`MAX_LINE`] bytes closes
//! that client (counted in `overlong`); the others keep being served. Answers are written
//! before more input is read, so a client that does not read its answers is paused by its
//! own socket buffers.

use crate::rot13::{rot13_char, Counters};
use evrs::rt::{self, Runtime, TcpListener, TcpStream};
use evrs::EventBase;
use std::io;
use std::rc::Rc;

/// The port of the async version (the book's is 40713, `rot13_server`'s).
pub const DEFAULT_PORT: u16 = 40716;
/// The longest line a client may send.
pub const MAX_LINE: usize = 16 * 1024;

/// The running server: keep it (and run the base) for as long as it should serve.
#[derive(Debug)]
pub struct AsyncServer {
    /// The runtime the tasks run on.
    pub rt: Runtime,
    /// What it has done so far.
    pub counters: Rc<Counters>,
}

/// Starts serving `listener` on `base`: an accept task that spawns a task per client.
pub fn listen(base: &mut EventBase, listener: std::net::TcpListener) -> io::Result<AsyncServer> {
    let rt = Runtime::new(base)?;
    let counters = Rc::new(Counters::default());
    let listener = TcpListener::from_std(listener)?;
    let c = counters.clone();
    rt.spawn(async move {
        loop {
            let (conn, _) = match listener.accept().await {
                Ok(x) => x,
                // Out of fds, say: this client is refused, the next one may fit.
                Err(_) => continue,
            };
            c.accepted.set(c.accepted.get() + 1);
            let c = c.clone();
            match rt::spawn(async move {
                if let Err(e) = serve(&conn).await {
                    if e.kind() == io::ErrorKind::InvalidData {
                        c.overlong.set(c.overlong.get() + 1);
                    }
                }
                c.closed.set(c.closed.get() + 1);
            }) {
                Ok(task) => task.detach(),
                Err(_) => return,
            }
        }
    })
    .detach();
    Ok(AsyncServer { rt, counters })
}

/// One client: answers each line with its ROT13 until end of file (the rest of a last line
/// without its newline is answered too). A line over [`MAX_LINE`] is `InvalidData`.
async fn serve(conn: &TcpStream) -> io::Result<()> {
    let mut line: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            if !line.is_empty() {
                conn.write_all(&rotated(&line)).await?;
            }
            return Ok(());
        }
        let mut answer = Vec::new();
        for &b in &buf[..n] {
            line.push(b);
            if b == b'\n' {
                answer.extend(line.iter().map(|&c| rot13_char(c)));
                line.clear();
            } else if line.len() > MAX_LINE {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
            }
        }
        if !answer.is_empty() {
            conn.write_all(&answer).await?;
        }
    }
}

fn rotated(s: &[u8]) -> Vec<u8> {
    s.iter().map(|&c| rot13_char(c)).collect()
}
