//! The accept path: a bounded batch of `accept4` calls per readiness, and the back-off that
//! keeps a listener from spinning when accepting fails for lack of resources.
//!
//! libevent's listener accepts until `accept` fails; on `EMFILE`/`ENFILE`/`ENOBUFS` it
//! reports the error and stays enabled, so a level-triggered backend reports the listening
//! socket readable again at once and the loop spins at 100% CPU (hundreds of thousands of
//! failing `accept`s per second) until an fd is freed. Here such an error *pauses* the
//! listener: its read event is deleted, the error callback runs once, and a timer re-adds
//! the read event after a back-off that starts at [`INITIAL_BACKOFF`] and doubles up to
//! [`MAX_BACKOFF`] while accepting keeps failing; an accepted connection resets it.

use super::{Listener, ListenerFlags, PeerAddr};
use crate::base::EventBase;
use std::io;
use std::os::fd::OwnedFd;
use std::time::Duration;

/// Connections accepted per readiness at most, so one busy listener cannot starve the
/// loop's other events (libevent accepts until `EAGAIN`).
pub(crate) const ACCEPTS_PER_WAKEUP: usize = 16;

/// The first pause after a resource error.
pub(crate) const INITIAL_BACKOFF: Duration = Duration::from_millis(10);

/// The longest pause: the back-off doubles up to this while accepting keeps failing.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// What to do after an `accept` error.
#[derive(Debug, PartialEq, Eq)]
enum Next {
    /// The queue is empty: the batch is over.
    Done,
    /// This connection is lost (aborted by the peer, a network error, a signal): try the
    /// next one.
    Skip,
    /// Retrying now would fail again (out of fds or memory, or a broken socket): pause.
    Pause,
}

fn classify(e: &io::Error) -> Next {
    match e.raw_os_error() {
        Some(libc::EAGAIN) => Next::Done,
        // The errors accept(2) says to treat like EAGAIN (pending network errors of the new
        // connection), plus a firewall's EPERM and a signal's EINTR.
        Some(
            libc::ECONNABORTED
            | libc::EINTR
            | libc::EPROTO
            | libc::EPERM
            | libc::ENETDOWN
            | libc::ENOPROTOOPT
            | libc::EHOSTDOWN
            | libc::ENONET
            | libc::EHOSTUNREACH
            | libc::EOPNOTSUPP
            | libc::ENETUNREACH
            | libc::ETIMEDOUT,
        ) => Next::Skip,
        // EMFILE, ENFILE, ENOBUFS, ENOMEM, and anything unexpected (EBADF, EINVAL: not a
        // listening socket…), which would fail again at every wakeup just the same.
        _ => Next::Pause,
    }
}

/// The listening socket is readable: accept up to [`ACCEPTS_PER_WAKEUP`] connections,
/// handing each to the accept callback. Stops early when the queue is empty, when the
/// listener is freed, disabled or paused (by a callback, or by an error), or when it has
/// no callback (the connection is closed then).
pub(super) fn on_readable(base: &mut EventBase, l: Listener) {
    for _ in 0..ACCEPTS_PER_WAKEUP {
        let Some(e) = base.listeners().table.get_mut(l.idx, l.gen) else {
            return;
        };
        if !e.enabled || e.paused {
            return;
        }
        let Some(sock) = e.sock.as_ref() else {
            return;
        };
        let mut flags = libc::SOCK_CLOEXEC;
        if !e.flags.contains(ListenerFlags::LEAVE_SOCKETS_BLOCKING) {
            flags |= libc::SOCK_NONBLOCK;
        }
        match sock.accept4(flags) {
            Ok((conn, addr)) => {
                e.backoff = INITIAL_BACKOFF;
                // Taken out while it runs: it may free the listener, or replace itself.
                let Some(mut cb) = e.cb.take() else {
                    return;
                };
                cb(base, l, OwnedFd::from(conn), PeerAddr::from_sockaddr(&addr));
                let left = match base.listeners().table.get_mut(l.idx, l.gen) {
                    Some(e) if e.cb.is_none() => {
                        e.cb = Some(cb);
                        None
                    }
                    // Freed, or given a new callback meanwhile: this one is done.
                    _ => Some(cb),
                };
                drop(left);
            }
            Err(err) => match classify(&err) {
                Next::Done => return,
                Next::Skip => continue,
                Next::Pause => return pause(base, l, err),
            },
        }
    }
}

/// Stops accepting for the current back-off, doubles it, and reports `err` (through the
/// error callback, else the log).
fn pause(base: &mut EventBase, l: Listener, err: io::Error) {
    let Some(e) = base.listeners().table.get_mut(l.idx, l.gen) else {
        return;
    };
    e.paused = true;
    let delay = e.backoff;
    e.backoff = e.backoff.saturating_mul(2).min(MAX_BACKOFF);
    let (read_ev, timer) = (e.read_ev, e.timer);
    let errcb = e.errcb.take();
    // Both events are the listener's own and live while it does: these cannot fail.
    let _ = base.del(read_ev);
    let _ = base.add(timer, Some(delay));
    let Some(mut cb) = errcb else {
        log::warn!("listener: accept() failed: {err}; not accepting for {delay:?}");
        return;
    };
    cb(base, l, err);
    let left = match base.listeners().table.get_mut(l.idx, l.gen) {
        Some(e) if e.errcb.is_none() => {
            e.errcb = Some(cb);
            None
        }
        _ => Some(cb),
    };
    drop(left);
}

/// The back-off timer fired: accept again (if the listener is still enabled).
pub(super) fn resume(base: &mut EventBase, l: Listener) {
    let Some(e) = base.listeners().table.get_mut(l.idx, l.gen) else {
        return;
    };
    e.paused = false;
    if e.enabled {
        let ev = e.read_ev;
        let _ = base.add(ev, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified() {
        let os = io::Error::from_raw_os_error;
        assert_eq!(classify(&os(libc::EAGAIN)), Next::Done);
        for e in [libc::ECONNABORTED, libc::EINTR, libc::EPROTO, libc::EPERM] {
            assert_eq!(classify(&os(e)), Next::Skip, "{e}");
        }
        for e in [
            libc::EMFILE,
            libc::ENFILE,
            libc::ENOBUFS,
            libc::ENOMEM,
            libc::EBADF,
        ] {
            assert_eq!(classify(&os(e)), Next::Pause, "{e}");
        }
        assert_eq!(classify(&io::Error::other("no errno")), Next::Pause);
    }
}
