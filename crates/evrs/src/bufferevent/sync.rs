//! Keeping a bufferevent's events in step with its state (`bev_sync`, run after every
//! change and every callback): reading while enabled and below the high watermark; writing
//! while connecting, or enabled with output pending — output is written inline when the
//! socket is not known to be full.
//!
//! The common case — a socket bufferevent without rate limits whose events are already in
//! step — is [`sync_local`]: it works on the state already looked up, needs nothing from the
//! base and makes no further lookup. Only what it cannot do (register or free an event,
//! activate the write event, the general path of rate limits, pairs and filters) goes to the
//! base, in [`EventBase::bev_sync_rest`].

use super::ctx::Cb;
use super::{Bev, BevEvents, BufferEvent};
use crate::base::EventBase;
use crate::event::Event;
use crate::flags::What;
use evrs_buffer::Error as BufError;
use std::io;

/// A buffer error as the I/O error it reports.
pub(super) fn io_error(e: BufError) -> io::Error {
    match e {
        BufError::Io(e) => e,
        other => io::Error::other(other),
    }
}

/// What [`sync_local`] left for the base to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SyncLeft {
    /// Nothing: the events are in step.
    Nothing,
    /// The general path: rate limits, a pair or a filter.
    General,
    /// An inline write drained the output outside a read dispatch: the write event is
    /// activated to run the write callback; then the events are brought in step.
    Activate,
    /// An event must be added, deleted, made or freed.
    Events,
}

/// The first part of `bev_sync` on a looked-up bufferevent: what it can do without the base
/// (the inline write, and finding the events in step), and what is left.
#[inline]
pub(super) fn sync_local(b: &mut Bev) -> SyncLeft {
    if b.free_requested {
        return SyncLeft::Nothing;
    }
    if b.filter.is_some() || b.rate.is_some() {
        return SyncLeft::General;
    }
    if let Some(r) = b.rare.as_deref() {
        if r.pair.is_some() || r.group.is_some() {
            return SyncLeft::General;
        }
    }
    if b.fd < 0 {
        // No socket (yet): only the timeouts run, on timers (see `timeouts.rs`).
        return if b.read_ev.is_some() || b.write_ev.is_some() {
            SyncLeft::General
        } else {
            SyncLeft::Nothing
        };
    }
    if inline_wanted(b, None) {
        // (An error is met again, and reported, by the write event.)
        if let Ok(n) = write_out(b, None) {
            if drained_by(b, n) && !b.reading {
                return SyncLeft::Activate;
            }
        }
    }
    if in_step(b, None, None) {
        SyncLeft::Nothing
    } else {
        SyncLeft::Events
    }
}

/// Output waiting and the socket not known to be full (no write event pending): write now,
/// instead of watching for writability first — that would cost a wake-up and two
/// epoll_ctl calls per message. (libevent always waits for the write event.)
fn inline_wanted(b: &Bev, wb: Option<isize>) -> bool {
    !b.write_added
        && !b.connecting
        && b.enabled.contains(What::WRITE)
        && !b.output.is_empty()
        && wb.is_none_or(|n| n > 0)
        && b.rare().connect_error.is_none()
        && b.rare().resolving.is_none()
}

/// After an inline write of `n` bytes: drained to the low watermark, so the write callback
/// is due. It runs from the loop (not from inside this call, which may be the program's own
/// `bev_write`): at the end of the read event's dispatch if one is running, else from the
/// write event, activated for it.
fn drained_by(b: &mut Bev, n: usize) -> bool {
    if n > 0 && b.output.len() <= b.write_wm().0 {
        b.write_cb_due = true;
        true
    } else {
        false
    }
}

/// Writes what the socket takes from the output (up to the write cap and `budget`). Returns
/// the bytes written; a socket error is returned (the caller reports it).
pub(super) fn write_out(b: &mut Bev, budget: Option<isize>) -> io::Result<usize> {
    if b.fd < 0 || b.connecting {
        return Ok(0);
    }
    let cap = match budget {
        Some(n) if n <= 0 => return Ok(0),
        Some(n) => b.max_write().min(n as usize),
        None => b.max_write(),
    };
    let n = match b.output.write_atmost(b.fd, Some(cap)) {
        Ok(n) => n,
        Err(BufError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => 0,
        Err(BufError::Io(e)) if e.kind() == io::ErrorKind::Interrupted => 0,
        Err(e) => return Err(io_error(e)),
    };
    if b.shutdown_pending && b.output.is_empty() {
        b.shutdown_pending = false;
        // Errors only mean the connection is gone already.
        let _ = crate::sys::stream::shutdown_write(b.fd);
    }
    Ok(n)
}

/// Whether the read and the write event should be pending now (with the rate-limit budgets
/// `rb`, `wb` if limited).
#[inline]
fn wants(b: &Bev, rb: Option<isize>, wb: Option<isize>) -> (bool, bool) {
    let r = b.rare();
    let high = b.read_wm.1;
    let below_high = high == 0 || b.input.len() < high;
    let want_read = b.enabled.contains(What::READ)
        && below_high
        && !b.connecting
        && rb.is_none_or(|n| n > 0)
        && r.resolving.is_none();
    let want_write = b.connecting
        || (b.enabled.contains(What::WRITE)
            && (b.write_kick || !b.output.is_empty())
            && wb.is_none_or(|n| n > 0)
            && r.resolving.is_none())
        || r.connect_error.is_some();
    (want_read, want_write)
}

/// Whether [`EventBase::bev_sync_events`] would change nothing.
#[inline]
fn in_step(b: &Bev, rb: Option<isize>, wb: Option<isize>) -> bool {
    let (want_read, want_write) = wants(b, rb, wb);
    let read_ok = want_read == b.read_added || b.read_ev.is_none();
    // The write event goes once nothing needs it (not waiting, no callback owed from it);
    // it is made when first needed.
    let write_ok = match b.write_ev {
        Some(_) => want_write == b.write_added && (want_write || b.write_cb_due),
        None => !want_write && (!b.write_added || b.write_cb_due),
    };
    read_ok && write_ok
}

impl EventBase {
    /// Brings the events' interest in line with the state: reading while enabled and
    /// below the high watermark; writing while connecting, or enabled with output pending.
    pub(crate) fn bev_sync(&mut self, bev: BufferEvent) {
        let Some(b) = self.bev_state_mut(bev) else {
            return;
        };
        let left = sync_local(b);
        self.bev_sync_rest(bev, left);
    }

    /// Does what [`sync_local`] left.
    #[inline]
    pub(super) fn bev_sync_rest(&mut self, bev: BufferEvent, left: SyncLeft) {
        if left != SyncLeft::Nothing {
            self.bev_sync_left(bev, left);
        }
    }

    #[inline(never)]
    fn bev_sync_left(&mut self, bev: BufferEvent, left: SyncLeft) {
        match left {
            SyncLeft::Nothing => {}
            SyncLeft::General => self.bev_sync_general(bev),
            SyncLeft::Activate => {
                if let Ok(w) = self.bev_write_event(bev) {
                    let _ = self.activate(w, What::WRITE, 1);
                }
                self.bev_sync_events(bev, None, None, false);
            }
            SyncLeft::Events => self.bev_sync_events(bev, None, None, false),
        }
    }

    /// `bev_sync` with rate limits, for pairs and filters.
    #[cold]
    #[inline(never)]
    fn bev_sync_general(&mut self, bev: BufferEvent) {
        let Some(b) = self.bev_state_mut(bev) else {
            return;
        };
        // Rate limits: a direction out of tokens waits for a refill.
        let limited = b.rate_limited();
        let (rb, wb, b) = if limited {
            let (rb, wb) = (self.bev_budget(bev, true), self.bev_budget(bev, false));
            let Some(b) = self.bev_state_mut(bev) else {
                return;
            };
            (rb, wb, b)
        } else {
            (None, None, b)
        };
        let starved = rb.is_some_and(|n| n <= 0) || wb.is_some_and(|n| n <= 0);
        if b.free_requested {
            return;
        }
        if b.pair().is_some() {
            return self.pair_pump(bev);
        }
        if b.filter.is_some() {
            return self.filter_pump(bev);
        }
        if b.fd < 0 {
            return self.bev_generic_sync(bev, false, false);
        }
        if inline_wanted(b, wb) {
            let res = write_out(b, wb);
            if let Ok(n) = res {
                if n > 0 && limited {
                    self.bev_charge(bev, false, n);
                }
                let Some(b) = self.bev_state_mut(bev) else {
                    return;
                };
                if drained_by(b, n) && !b.reading {
                    if let Ok(w) = self.bev_write_event(bev) {
                        let _ = self.activate(w, What::WRITE, 1);
                    }
                }
            }
        }
        self.bev_sync_events(bev, rb, wb, starved);
    }

    /// The events part of `bev_sync`: adds, deletes, makes or frees the read and write
    /// events as the state asks (with the rate-limit budgets `rb`, `wb`; `starved`: a
    /// direction waits for tokens).
    fn bev_sync_events(
        &mut self,
        bev: BufferEvent,
        rb: Option<isize>,
        wb: Option<isize>,
        starved: bool,
    ) {
        let Some(b) = self.bev_state_mut(bev) else {
            return;
        };
        let (want_read, want_write) = wants(b, rb, wb);
        // The write event goes once nothing needs it (not waiting, no callback owed from it).
        let release = if !want_write && !b.write_cb_due {
            b.write_added = false;
            b.write_ev.take()
        } else {
            None
        };
        let make_write = want_write && b.write_ev.is_none();
        let mut ops: [Option<(Event, bool, Option<std::time::Duration>)>; 2] = [None, None];
        if want_read != b.read_added {
            if let Some(ev) = b.read_ev {
                ops[0] = Some((ev, want_read, b.rare().timeout_read));
                b.read_added = want_read;
            }
        }
        if let Some(ev) = release {
            let _ = self.free(ev);
        }
        if make_write {
            if let Err(e) = self.bev_write_event(bev) {
                return self.bev_sync_failed(bev, BevEvents::WRITING, &e);
            }
        }
        let Some(b) = self.bev_state_mut(bev) else {
            return;
        };
        if want_write != b.write_added {
            if let Some(ev) = b.write_ev {
                ops[1] = Some((ev, want_write, b.rare().timeout_write));
                b.write_added = want_write;
            }
        }
        for (k, op) in ops.into_iter().enumerate() {
            let Some((ev, on, timeout)) = op else {
                continue;
            };
            let res = if on {
                self.add(ev, timeout)
            } else {
                self.del(ev)
            };
            if let Err(e) = res {
                // The fd went bad under us (closed by the program, say): report it as a
                // socket error rather than retrying forever.
                let dir = if k == 0 {
                    BevEvents::READING
                } else {
                    BevEvents::WRITING
                };
                return self.bev_sync_failed(bev, dir, &e);
            }
        }
        if starved {
            self.bev_wait_for_tokens(bev);
        }
    }

    /// `bev_sync` could not make or (un)register an event: the bufferevent stops and its
    /// event callback hears `dir | ERROR`.
    fn bev_sync_failed(&mut self, bev: BufferEvent, dir: BevEvents, e: &io::Error) {
        if let Some(b) = self.bev_state_mut(bev) {
            b.set_error(e);
            b.read_added = false;
            b.write_added = false;
            b.enabled = What::empty();
        }
        self.bev_callback(bev, Cb::Event(dir | BevEvents::ERROR));
    }
}
