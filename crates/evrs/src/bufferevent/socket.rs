//! The socket side of a bufferevent: its read and write events (raw callbacks, no closure
//! per event), reading into the input buffer and writing from the output buffer with the
//! watermark rules, connecting, and keeping the events' interest in step with the state
//! (`bev_sync`, run after every change and every callback).

use super::ctx::{prepare_call, Call, Cb};
use super::spares::reclaim_into;
use super::sync::{io_error, sync_local, SyncLeft};
use super::{BevEvents, BevOptions, BufferEvent};
use crate::base::EventBase;
use crate::event::{Event, RawArg};
use crate::flags::What;
use evrs_buffer::Error as BufError;
use std::io;
use std::net::SocketAddr;
use std::os::fd::IntoRawFd;
use std::os::unix::io::RawFd;

fn arg_of(bev: BufferEvent) -> RawArg {
    RawArg::from_usize(((bev.gen as usize) << 32) | bev.idx as usize)
}

fn bev_of(base: &EventBase, arg: RawArg) -> BufferEvent {
    let a = arg.as_usize();
    BufferEvent {
        idx: (a & 0xffff_ffff) as u32,
        gen: (a >> 32) as u32,
        base: base.id(),
    }
}

impl EventBase {
    /// Makes the read event for socket `fd`. The write event is made when first needed
    /// ([`bev_write_event`](Self::bev_write_event)) and freed when it is no longer: most
    /// connections write inline and never wait for writability, so an idle one holds one
    /// event slot, not two.
    pub(super) fn bev_make_events(&mut self, bev: BufferEvent, fd: RawFd) -> io::Result<()> {
        let r = self.new_event_raw(fd, What::READ | What::PERSIST, on_readable, arg_of(bev))?;
        let prio = self.bev_live(bev)?.rare().priority;
        if let Some(p) = prio {
            let _ = self.set_priority(r, p);
        }
        let b = self.bev_live(bev)?;
        b.read_ev = Some(r);
        b.read_added = false;
        b.write_added = false;
        Ok(())
    }

    /// The write event of a socket bufferevent, made now if it has none (no allocation once
    /// the event table has room: a freed slot is reused).
    pub(super) fn bev_write_event(&mut self, bev: BufferEvent) -> io::Result<Event> {
        let b = self.bev_live(bev)?;
        if let Some(w) = b.write_ev {
            return Ok(w);
        }
        let (fd, prio) = (b.fd, b.rare().priority);
        let w = self.new_event_raw(fd, What::WRITE | What::PERSIST, on_writable, arg_of(bev))?;
        if let Some(p) = prio {
            let _ = self.set_priority(w, p);
        }
        let b = self.bev_live(bev)?;
        b.write_ev = Some(w);
        b.write_added = false;
        Ok(w)
    }

    /// Frees the read and write events (the fd is left alone).
    pub(super) fn bev_drop_events(&mut self, bev: BufferEvent) -> io::Result<()> {
        let Some(b) = self.bev_state_mut(bev) else {
            return Err(super::stale());
        };
        let evs = [b.read_ev.take(), b.write_ev.take()];
        b.read_added = false;
        b.write_added = false;
        for ev in evs.into_iter().flatten() {
            let _ = self.free(ev);
        }
        Ok(())
    }

    /// Frees the bufferevent now: events, deferred event, socket (if owned), buffers,
    /// then its callbacks (user code, dropped last).
    pub(super) fn bev_teardown(&mut self, bev: BufferEvent) {
        self.pair_unlink(bev);
        let _ = self.bev_drop_events(bev);
        let Some(mut b) = self.bevs().table.remove(bev.idx, bev.gen) else {
            return;
        };
        let rare = b.rare.take();
        if let Some(r) = rare.as_deref().and_then(|r| r.remote.as_ref()) {
            r.set_freed();
        }
        let (resolving, refill, group) = rare.as_deref().map_or((None, None, None), |r| {
            (r.resolving, r.refill_timer, r.group)
        });
        for ev in [rare.as_deref().and_then(|r| r.deferred), resolving, refill]
            .into_iter()
            .flatten()
        {
            let _ = self.free(ev);
        }
        if let Some(g) = group {
            self.group_forget(g, bev);
        }
        if let Some(f) = b.filter.take() {
            self.filter_release(*f, b.opts.contains(BevOptions::CLOSE_ON_FREE));
        }
        if b.fd >= 0 && (b.owns_fd || b.opts.contains(BevOptions::CLOSE_ON_FREE)) {
            crate::sys::stream::close(b.fd);
        }
        drop(b);
    }

    /// Writes what the socket takes (up to the write cap). Returns the bytes written; a
    /// socket error is returned (the caller reports it).
    pub(super) fn bev_write_now(&mut self, bev: BufferEvent) -> io::Result<usize> {
        let limited = self.bev_live(bev)?.rate_limited();
        let budget = if limited {
            self.bev_budget(bev, false)
        } else {
            None
        };
        self.bev_write_budget(bev, limited, budget)
    }

    /// [`bev_write_now`](Self::bev_write_now) with the rate limit already known.
    fn bev_write_budget(
        &mut self,
        bev: BufferEvent,
        limited: bool,
        budget: Option<isize>,
    ) -> io::Result<usize> {
        let n = super::sync::write_out(self.bev_live(bev)?, budget)?;
        if n > 0 && limited {
            self.bev_charge(bev, false, n);
        }
        Ok(n)
    }

    /// Connects the bufferevent to `addr` (libevent's `bufferevent_socket_connect`). With no
    /// socket yet, a non-blocking one is made (and closed on free). The event callback
    /// gets `CONNECTED` once the connection is up, or `ERROR` if it fails (refused,
    /// unreachable; a connect timeout is the write timeout: `WRITING|TIMEOUT`).
    pub fn bev_connect(&mut self, bev: BufferEvent, addr: SocketAddr) -> io::Result<()> {
        let fd = self.bev_live(bev)?.fd;
        let fd = if fd < 0 {
            let domain = socket2::Domain::for_address(addr);
            let ty = socket2::Type::STREAM.nonblocking().cloexec();
            let s = socket2::Socket::new(domain, ty, None)?;
            let fd = s.into_raw_fd();
            // (The timers of timeouts set before there was a socket go: the socket's
            // events carry the timeouts from now on.)
            self.bev_drop_events(bev)?;
            let b = self.bev_live(bev)?;
            b.fd = fd;
            b.owns_fd = true;
            self.bev_make_events(bev, fd)?;
            fd
        } else {
            fd
        };
        let res = crate::sys::stream::connect(fd, &socket2::SockAddr::from(addr));
        let b = self.bev_live(bev)?;
        b.connecting = true;
        match res {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            // Refused at once (AF_UNIX, say): reported from the loop like a late failure.
            Err(e) => b.rare_mut().connect_error = Some(e),
        }
        self.bev_sync(bev);
        Ok(())
    }
}

/// The read event fired: read, then the read callback (or EOF / error / timeout) — with
/// spare memory lent to an input that has none, and emptied buffers' memory reclaimed after.
fn on_readable(base: &mut EventBase, ev: Event, what: What, arg: RawArg) {
    let bev = bev_of(base, arg);
    if !read_dispatch(base, ev, what, bev) {
        base.bev_reclaim_spares(bev);
    }
}

/// Returns true if the spares were reclaimed already (or the bufferevent is gone).
fn read_dispatch(base: &mut EventBase, _ev: Event, what: What, bev: BufferEvent) -> bool {
    let Some(b) = base.bev_state_lending(bev) else {
        return true;
    };
    let limited = b.rate_limited();
    let (budget, b) = if limited {
        let budget = base.bev_budget(bev, true);
        let Some(b) = base.bev_state_mut(bev) else {
            return true;
        };
        (budget, b)
    } else {
        (None, b)
    };
    if b.free_requested {
        return false;
    }
    if what.contains(What::TIMEOUT) {
        b.enabled.remove(What::READ);
        base.bev_sync(bev);
        base.bev_callback(bev, Cb::Event(BevEvents::READING | BevEvents::TIMEOUT));
        return false;
    }
    let (low, high) = b.read_wm;
    let mut room = if high == 0 {
        b.max_read()
    } else {
        high.saturating_sub(b.input.len()).min(b.max_read())
    };
    if let Some(n) = budget {
        room = room.min(n.max(0) as usize);
    }
    if room == 0 {
        // At the high watermark: suspended until the input drains.
        base.bev_sync(bev);
        return false;
    }
    match b.input.read_from(b.fd, Some(room)) {
        Ok(0) => {
            b.enabled.remove(What::READ);
            base.bev_sync(bev);
            base.bev_callback(bev, Cb::Event(BevEvents::READING | BevEvents::EOF));
            false
        }
        Ok(n) => {
            let ready = b.input.len() >= low;
            // While the read callback runs, an inline write that drains the output leaves
            // its write callback for the end of this dispatch (no second event for it).
            b.reading = true;
            if limited {
                base.bev_charge(bev, true, n);
                base.bev_sync(bev);
                if ready {
                    base.bev_callback(bev, Cb::Read);
                }
            } else {
                // (One lookup for the sync and the callback when the events are in step.)
                let left = sync_local(b);
                if left == SyncLeft::Nothing {
                    if ready {
                        let call = prepare_call(b, Cb::Read);
                        base.bev_call(bev, call, Cb::Read, false);
                    }
                } else {
                    base.bev_sync_rest(bev, left);
                    if ready {
                        base.bev_callback(bev, Cb::Read);
                    }
                }
            }
            // (One lookup for the end of the dispatch, the write callback due and the
            // spares: with an inline write callback they are reclaimed after it.)
            let Some((b, spares)) = base.bev_entry(bev) else {
                return true;
            };
            b.reading = false;
            if std::mem::take(&mut b.write_cb_due) && !b.free_requested {
                let call = prepare_call(b, Cb::Write);
                if !matches!(call, Call::Inline(_)) {
                    reclaim_into(b, spares);
                }
                base.bev_call(bev, call, Cb::Write, true);
            } else {
                reclaim_into(b, spares);
            }
            true
        }
        Err(BufError::Io(e))
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ) =>
        {
            false
        }
        Err(e) => {
            let e = io_error(e);
            b.set_error(&e);
            b.enabled.remove(What::READ);
            base.bev_sync(bev);
            base.bev_callback(bev, Cb::Event(BevEvents::READING | BevEvents::ERROR));
            false
        }
    }
}

/// The write event fired: finish a connect, write, then the write callback at the low
/// watermark (or error / timeout); emptied buffers' memory is reclaimed after.
fn on_writable(base: &mut EventBase, ev: Event, what: What, arg: RawArg) {
    let bev = bev_of(base, arg);
    write_dispatch(base, ev, what, bev);
    base.bev_reclaim_spares(bev);
}

fn write_dispatch(base: &mut EventBase, _ev: Event, what: What, bev: BufferEvent) {
    let Some(b) = base.bev_state_mut(bev) else {
        return;
    };
    if b.free_requested {
        return;
    }
    if what.contains(What::TIMEOUT) {
        b.enabled.remove(What::WRITE);
        // A connect that timed out is over too.
        b.connecting = false;
        base.bev_sync(bev);
        return base.bev_callback(bev, Cb::Event(BevEvents::WRITING | BevEvents::TIMEOUT));
    }
    if b.connecting {
        let err = match b.rare_if_any().and_then(|r| r.connect_error.take()) {
            Some(e) => Some(e),
            None => crate::sys::stream::take_error(b.fd).unwrap_or_else(Some),
        };
        b.connecting = false;
        if let Some(e) = err {
            b.set_error(&e);
            b.enabled = What::empty();
            base.bev_sync(bev);
            return base.bev_callback(bev, Cb::Event(BevEvents::WRITING | BevEvents::ERROR));
        }
        base.bev_sync(bev);
        base.bev_callback(bev, Cb::Event(BevEvents::CONNECTED));
        // Data written before the connect finished goes out on the next writability.
        return;
    }
    let kick = std::mem::take(&mut b.write_kick) | std::mem::take(&mut b.write_cb_due);
    match base.bev_write_now(bev) {
        Ok(n) => {
            let Some(b) = base.bev_state_mut(bev) else {
                return;
            };
            let drained = b.output.len() <= b.write_wm().0;
            base.bev_sync(bev);
            if (n > 0 || kick) && drained {
                base.bev_callback(bev, Cb::Write);
            }
        }
        Err(e) => {
            if let Some(b) = base.bev_state_mut(bev) {
                b.set_error(&e);
                b.enabled.remove(What::WRITE);
            }
            base.bev_sync(bev);
            // Any write error, EPIPE included, is WRITING|ERROR (as libevent;
            // `bev_socket_error` tells which).
            base.bev_callback(bev, Cb::Event(BevEvents::WRITING | BevEvents::ERROR));
        }
    }
}
