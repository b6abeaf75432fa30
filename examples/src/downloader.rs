//! The "Reactor" downloader from the newLISP libevent-wrapper announcement: a writer callback
//! sends the request, kills its own event and makes a reader event for the same socket; the
//! reader accumulates the reply in its event's storage and kills itself at end of file,
//! then starts the next download. Many downloads proceed at once on one thread.
//!
//! In evrs terms:
//! * *make an event with a reader and a writer* — `new_event(fd, What::WRITE, ..)` first,
//!   then `new_event(fd, What::READ | What::PERSIST, ..)`;
//! * *per-event storage* — the callback is a closure; what it captures (the socket, the
//!   bytes received so far) lives exactly as long as the event;
//! * *kill the event from its callback* — `base.free(me)`; evrs drops the closure (and so
//!   closes the socket it owns) when the callback returns.
//!
//! [`serve_documents`] is the other side: a tiny blocking HTTP/1.0 server on a plain
//! `std::net` thread, so the example needs no network access.

use crate::connect_nonblocking;
use evrs::{Event, EventBase, What};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::io::AsRawFd;
use std::rc::Rc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// A download that makes no progress for this long fails.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The body of document `i` (`size` bytes, deterministic, so a test can check it).
pub fn document(i: usize, size: usize) -> Vec<u8> {
    (0..size).map(|k| b'a' + ((i + k) % 26) as u8).collect()
}

/// Serves `GET /doc/<i>` with [`document`]`(i, sizes[i])` for exactly `sizes.len()`
/// connections on 127.0.0.1 (one thread each), then stops. Returns its address.
pub fn serve_documents(sizes: Vec<usize>) -> io::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let sizes = std::sync::Arc::new(sizes);
    let server = thread::spawn(move || {
        let workers: Vec<_> = (0..sizes.len())
            .filter_map(|_| listener.accept().ok())
            .map(|(stream, _)| {
                let sizes = sizes.clone();
                thread::spawn(move || {
                    let _ = answer(stream, &sizes);
                })
            })
            .collect();
        for w in workers {
            let _ = w.join();
        }
    });
    Ok((addr, server))
}

fn answer(stream: TcpStream, sizes: &[usize]) -> io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    let mut header = String::new();
    while reader.read_line(&mut header)? > 2 {
        header.clear(); // skip the headers, up to the empty line
    }
    let doc = request
        .strip_prefix("GET /doc/")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|i| i.parse::<usize>().ok())
        .filter(|&i| i < sizes.len());
    let mut out = &stream;
    match doc {
        Some(i) => {
            let body = document(i, sizes[i]);
            write!(
                out,
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )?;
            out.write_all(&body)?;
        }
        None => out.write_all(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n")?,
    }
    Ok(()) // dropping the stream closes it: end of file marks the end of the reply
}

/// The outcome of one download: the body, or why it failed.
pub type Download = Result<Vec<u8>, String>;

/// What all downloads share: the work still to start and the results so far.
struct Jobs {
    addr: SocketAddr,
    todo: VecDeque<(usize, String)>,
    results: Vec<Option<Download>>,
}

type Shared = Rc<RefCell<Jobs>>;

/// Downloads every path from `addr` over HTTP/1.0, at most `parallel` at a time, on one
/// evrs loop. Returns one result per path, in order.
pub fn download_all(
    addr: SocketAddr,
    paths: &[String],
    parallel: usize,
) -> io::Result<Vec<Download>> {
    let mut base = EventBase::new()?;
    let jobs: Shared = Rc::new(RefCell::new(Jobs {
        addr,
        todo: paths.iter().cloned().enumerate().collect(),
        results: vec![None; paths.len()],
    }));
    for _ in 0..parallel.max(1) {
        start_next(&mut base, &jobs);
    }
    // Runs until no events are left: every download has finished one way or another.
    base.dispatch()?;
    let results = std::mem::take(&mut jobs.borrow_mut().results);
    Ok(results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err("never finished".into())))
        .collect())
}

/// Takes the next path off the list and starts downloading it (if any is left).
fn start_next(base: &mut EventBase, jobs: &Shared) {
    let next = jobs.borrow_mut().todo.pop_front();
    let Some((i, path)) = next else { return };
    let addr = jobs.borrow().addr;
    if let Err(e) = start(base, jobs.clone(), i, addr, &path) {
        finish(base, jobs, i, Err(format!("{path}: {e}")));
    }
}

fn finish(base: &mut EventBase, jobs: &Shared, i: usize, result: Download) {
    jobs.borrow_mut().results[i] = Some(result);
    start_next(base, jobs);
}

/// Connects without blocking and makes the writer event: the socket becomes writable once
/// the connection is established (or has failed).
fn start(
    base: &mut EventBase,
    jobs: Shared,
    i: usize,
    addr: SocketAddr,
    path: &str,
) -> io::Result<()> {
    let stream = connect_nonblocking(addr)?;
    let fd = stream.as_raw_fd();
    // Per-event storage: the socket and the part of the request not yet sent.
    let mut stream = Some(stream);
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let mut unsent = request.into_bytes();
    let writer = base.new_event(fd, What::WRITE, move |base, me, what| {
        let result = if what.contains(What::TIMEOUT) {
            Err(io::Error::new(ErrorKind::TimedOut, "connect timed out"))
        } else {
            send_some(stream.as_mut().unwrap(), &mut unsent)
        };
        match result {
            // Partly sent: the event was not persistent, so add it again.
            Ok(false) => {
                let _ = base.add(me, Some(IDLE_TIMEOUT));
            }
            // Request sent: kill this event and hand the socket to a reader event.
            Ok(true) => {
                let _ = base.free(me);
                let s = stream.take().unwrap();
                if let Err(e) = make_reader(base, jobs.clone(), i, s) {
                    finish(base, &jobs, i, Err(e.to_string()));
                }
            }
            Err(e) => {
                let _ = base.free(me); // the socket closes with this closure
                finish(base, &jobs, i, Err(e.to_string()));
            }
        }
    })?;
    base.add(writer, Some(IDLE_TIMEOUT))
}

/// Writes as much of `unsent` as the socket takes. `Ok(true)`: all sent.
fn send_some(stream: &mut TcpStream, unsent: &mut Vec<u8>) -> io::Result<bool> {
    if let Some(e) = stream.take_error()? {
        return Err(e); // the non-blocking connect failed
    }
    while !unsent.is_empty() {
        match stream.write(unsent) {
            Ok(n) => drop(unsent.drain(..n)),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// The reader event: persistent, with an idle timeout that restarts after each read.
fn make_reader(
    base: &mut EventBase,
    jobs: Shared,
    i: usize,
    mut stream: TcpStream,
) -> io::Result<Event> {
    let fd = stream.as_raw_fd();
    let mut data = Vec::new(); // per-event storage: the reply so far
    let reader = base.new_event(fd, What::READ | What::PERSIST, move |base, me, what| {
        let done = if what.contains(What::TIMEOUT) {
            Some(Err("timed out".to_string()))
        } else {
            read_some(&mut stream, &mut data).map_or_else(
                |e| Some(Err(e.to_string())),
                |eof| eof.then(|| parse_reply(&data)),
            )
        };
        if let Some(result) = done {
            let _ = base.free(me); // kill the event; the socket closes with this closure
            finish(base, &jobs, i, result);
        }
    })?;
    base.add(reader, Some(IDLE_TIMEOUT))?;
    Ok(reader)
}

/// Reads everything available. `Ok(true)`: end of file.
fn read_some(stream: &mut TcpStream, data: &mut Vec<u8>) -> io::Result<bool> {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(true),
            Ok(n) => data.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Splits an HTTP/1.0 reply into status and body; checks `Content-Length` if present.
fn parse_reply(reply: &[u8]) -> Download {
    let end = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("reply has no header")?;
    let head = String::from_utf8_lossy(&reply[..end]);
    let body = &reply[end + 4..];
    let mut lines = head.lines();
    let status = lines.next().unwrap_or_default();
    if !status.starts_with("HTTP/1.") || status.split(' ').nth(1) != Some("200") {
        return Err(format!("bad status: {status}"));
    }
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name.eq_ignore_ascii_case("content-length") && value.trim().parse() != Ok(body.len()) {
            return Err(format!(
                "truncated: got {} of {} bytes",
                body.len(),
                value.trim()
            ));
        }
    }
    Ok(body.to_vec())
}

/// [`download_all`] redone with async tasks (`evrs::rt`): `parallel` worker tasks take
/// paths off a shared list; each download is straight-line code — connect, send, read to
/// the end — with the same idle timeout on every step, where the callback version hands
/// the socket from a writer event to a reader event.
pub fn download_all_async(
    addr: SocketAddr,
    paths: &[String],
    parallel: usize,
) -> io::Result<Vec<Download>> {
    let mut base = EventBase::new()?;
    let rt = evrs::rt::Runtime::new(&mut base)?;
    let todo: Rc<RefCell<VecDeque<(usize, String)>>> =
        Rc::new(RefCell::new(paths.iter().cloned().enumerate().collect()));
    let results: Rc<RefCell<Vec<Option<Download>>>> =
        Rc::new(RefCell::new(vec![None; paths.len()]));
    let (t, r) = (todo.clone(), results.clone());
    rt.block_on(&mut base, async move {
        let workers: Vec<_> = (0..parallel.max(1))
            .map(|_| {
                let (todo, results) = (t.clone(), r.clone());
                evrs::rt::spawn(async move {
                    loop {
                        let next = todo.borrow_mut().pop_front();
                        let Some((i, path)) = next else { return };
                        let result = fetch(addr, &path)
                            .await
                            .map_err(|e| format!("{path}: {e}"))
                            .and_then(|reply| parse_reply(&reply));
                        results.borrow_mut()[i] = Some(result);
                    }
                })
            })
            .collect::<io::Result<_>>()?;
        for w in workers {
            w.await?;
        }
        Ok::<_, io::Error>(())
    })??;
    rt.shutdown(&mut base);
    let results = std::mem::take(&mut *results.borrow_mut());
    Ok(results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err("never finished".into())))
        .collect())
}

/// One download: the whole reply, each step bounded by [`IDLE_TIMEOUT`].
async fn fetch(addr: SocketAddr, path: &str) -> io::Result<Vec<u8>> {
    use evrs::rt::{timeout, TcpStream};
    let s = TcpStream::connect_timeout(addr, IDLE_TIMEOUT).await?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    timeout(IDLE_TIMEOUT, s.write_all(request.as_bytes())).await??;
    let mut reply = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match timeout(IDLE_TIMEOUT, s.read(&mut buf)).await? {
            Ok(0) => return Ok(reply),
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            Err(e) => return Err(e),
        }
    }
}
