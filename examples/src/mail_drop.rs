//! A small mail-drop server in the shape of the lecture's `addToInbox`: an async function
//! that awaits two I/O steps (load the message, look the recipient up), checks a rule, and
//! awaits a third (append to the inbox), with `?` on every error — the compiler writes the
//! state machine that the callback versions of this repository spell out by hand.
//!
//! The store is a directory: `messages/<id>` holds message `<id>`; `mailboxes/<name>/` is a
//! recipient, with `quota` (the inbox's size limit in bytes, as text) and `inbox` (the
//! messages delivered so far, each followed by a blank line). File I/O would block the
//! loop, so it runs on the runtime's blocking pool.
//!
//! The protocol is a line per request: `ADD <message id> <recipient>` is answered `OK` or
//! `ERR <reason>`; anything else `ERR bad request`. A client may send many requests.

use evrs::rt::{self, Runtime, TcpListener, TcpStream};
use evrs::EventBase;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// The port `mail_drop` listens on by default.
pub const DEFAULT_PORT: u16 = 40717;
/// The longest request line.
const MAX_LINE: usize = 1024;

/// Why a delivery failed (each is an `ERR` answer; the connection stays open).
#[derive(Debug)]
pub enum Error {
    /// No such message.
    NoMessage(String),
    /// No such recipient.
    NoRecipient(String),
    /// The message does not fit the recipient's quota.
    Full {
        /// Bytes the inbox would hold.
        would_hold: u64,
        /// The quota.
        quota: u64,
    },
    /// The request was not `ADD <id> <recipient>`, or named a path outside the store.
    BadRequest,
    /// The store failed.
    Io(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoMessage(id) => write!(f, "no message {id}"),
            Error::NoRecipient(r) => write!(f, "no recipient {r}"),
            Error::Full { would_hold, quota } => {
                write!(f, "inbox full ({would_hold} bytes over a quota of {quota})")
            }
            Error::BadRequest => f.write_str("bad request"),
            Error::Io(e) => write!(f, "store: {e}"),
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io(e)
    }
}

impl From<rt::JoinError> for Error {
    fn from(e: rt::JoinError) -> Error {
        Error::Io(e.into())
    }
}

/// A recipient's mailbox.
struct Recipient {
    dir: PathBuf,
    quota: u64,
    used: u64,
}

impl Recipient {
    fn verify_has_space(&self, message: &[u8]) -> Result<(), Error> {
        let would_hold = self.used + message.len() as u64 + 1;
        if would_hold > self.quota {
            return Err(Error::Full {
                would_hold,
                quota: self.quota,
            });
        }
        Ok(())
    }

    async fn add_to_inbox(self, message: Vec<u8>) -> Result<(), Error> {
        rt::spawn_blocking(move || {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.join("inbox"))?;
            f.write_all(&message)?;
            f.write_all(b"\n")
        })?
        .await??;
        Ok(())
    }
}

/// A name that stays inside its directory (no `/`, no `..`, not empty).
fn plain(name: &str) -> Result<&str, Error> {
    let ok = !name.is_empty() && !name.contains('/') && name != "." && name != "..";
    ok.then_some(name).ok_or(Error::BadRequest)
}

async fn load_message(store: &Path, id: &str) -> Result<Vec<u8>, Error> {
    let path = store.join("messages").join(plain(id)?);
    let id = id.to_string();
    match rt::spawn_blocking(move || std::fs::read(path))?.await? {
        Ok(m) => Ok(m),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NoMessage(id)),
        Err(e) => Err(e.into()),
    }
}

async fn get_recipient(store: &Path, name: &str) -> Result<Recipient, Error> {
    let dir = store.join("mailboxes").join(plain(name)?);
    let name = name.to_string();
    let r = rt::spawn_blocking(move || -> io::Result<Recipient> {
        let quota = std::fs::read_to_string(dir.join("quota"))?;
        let quota = quota
            .trim()
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "quota is not a number"))?;
        let used = match std::fs::metadata(dir.join("inbox")) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        Ok(Recipient { dir, quota, used })
    })?
    .await?;
    match r {
        Ok(r) => Ok(r),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NoRecipient(name)),
        Err(e) => Err(e.into()),
    }
}

/// The lecture's function: two awaited lookups, a check, an awaited append.
pub async fn add_to_inbox(store: &Path, email_id: &str, recipient_id: &str) -> Result<(), Error> {
    let message = load_message(store, email_id).await?;
    let recipient = get_recipient(store, recipient_id).await?;
    recipient.verify_has_space(&message)?;
    recipient.add_to_inbox(message).await
}

/// Starts serving `listener` on `base` with the store at `store`; keep the runtime (and
/// run the base) for as long as it should serve.
pub fn listen(
    base: &mut EventBase,
    listener: std::net::TcpListener,
    store: PathBuf,
) -> io::Result<Runtime> {
    let rt = Runtime::new(base)?;
    let listener = TcpListener::from_std(listener)?;
    let store = Rc::new(store);
    rt.spawn(async move {
        loop {
            let Ok((conn, _)) = listener.accept().await else {
                continue;
            };
            let store = store.clone();
            match rt::spawn(async move {
                let _ = serve(&conn, &store).await;
            }) {
                Ok(t) => t.detach(),
                Err(_) => return,
            }
        }
    })
    .detach();
    Ok(rt)
}

/// One client: a request per line until end of file (or a line over `MAX_LINE`).
async fn serve(conn: &TcpStream, store: &Path) -> io::Result<()> {
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        pending.extend_from_slice(&buf[..n]);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let answer = match std::str::from_utf8(&line)
                .map(|l| l.split_whitespace().collect::<Vec<_>>())
            {
                Ok(w) if w.len() == 3 && w[0] == "ADD" => {
                    match add_to_inbox(store, w[1], w[2]).await {
                        Ok(()) => "OK\n".to_string(),
                        Err(e) => format!("ERR {e}\n"),
                    }
                }
                _ => format!("ERR {}\n", Error::BadRequest),
            };
            conn.write_all(answer.as_bytes()).await?;
        }
        if pending.len() > MAX_LINE {
            conn.write_all(b"ERR line too long\n").await?;
            return Ok(());
        }
    }
}
