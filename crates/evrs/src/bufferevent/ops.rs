//! The bufferevent API on [`EventBase`]: making, configuring and freeing bufferevents
//! (libevent's `bufferevent_socket_new`, `bufferevent_setcb`, `bufferevent_enable`, …).

use super::ctx::{BevOutput, Closures};
use super::{stale, Bev, BevCtx, BevEvents, BevHandler, BevOptions, Bevs, BufferEvent, Flush};
use crate::base::ext::ExtKind;
use crate::base::EventBase;
use crate::flags::What;
use evrs_buffer::EvBuffer;
use std::io;
use std::os::unix::io::RawFd;
use std::time::Duration;

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.to_string())
}

impl EventBase {
    pub(super) fn bevs(&mut self) -> &mut Bevs {
        self.ext::<Bevs>(ExtKind::Bufferevents)
    }

    pub(super) fn bev_state(&self, bev: BufferEvent) -> Option<&Bev> {
        if bev.base != self.id() {
            return None;
        }
        self.ext_ref::<Bevs>(ExtKind::Bufferevents)?
            .table
            .get(bev.idx, bev.gen)
    }

    pub(super) fn bev_state_mut(&mut self, bev: BufferEvent) -> Option<&mut Bev> {
        if bev.base != self.id() {
            return None;
        }
        self.bevs().table.get_mut(bev.idx, bev.gen)
    }

    /// The state of a live bufferevent, or the error for a stale or foreign handle.
    pub(super) fn bev_live(&mut self, bev: BufferEvent) -> io::Result<&mut Bev> {
        if bev.base != self.id() {
            return Err(invalid(
                "bufferevent belongs to another event base (each lives in exactly one)",
            ));
        }
        match self.bevs().table.get_mut(bev.idx, bev.gen) {
            Some(b) if !b.free_requested => Ok(b),
            _ => Err(stale()),
        }
    }

    /// A bufferevent over socket `fd` (libevent's `bufferevent_socket_new`): connected, or
    /// -1 for one [`bev_connect`](Self::bev_connect) will make. The socket must be
    /// non-blocking. Writing is enabled and reading is not, as in libevent: call
    /// [`bev_enable`](Self::bev_enable) with `READ` to start reading.
    pub fn bufferevent_socket(&mut self, fd: RawFd, opts: BevOptions) -> io::Result<BufferEvent> {
        if fd < -1 {
            return Err(invalid("a bufferevent's fd is a socket or -1"));
        }
        if opts.contains(BevOptions::UNLOCK_CALLBACKS)
            && !opts.contains(BevOptions::DEFER_CALLBACKS)
        {
            // libevent refuses it too (its unlocked callbacks are the deferred ones).
            return Err(invalid(
                "UNLOCK_CALLBACKS needs DEFER_CALLBACKS, as in libevent",
            ));
        }
        let id = self.id();
        let (idx, gen) = self.bevs().table.insert(Bev::new(fd, opts));
        let bev = BufferEvent { idx, gen, base: id };
        let made = (|| {
            if opts.contains(BevOptions::DEFER_CALLBACKS) {
                let prio = self.priorities() / 2;
                let ev = self.new_deferred(prio, move |base, _, _| base.bev_run_deferred(bev))?;
                self.bev_live(bev)?.rare_mut().deferred = Some(ev);
            }
            if fd >= 0 {
                self.bev_make_events(bev, fd)?;
            }
            Ok(())
        })();
        if let Err(e) = made {
            self.bev_teardown(bev);
            return Err(e);
        }
        Ok(bev)
    }

    /// Sets the bufferevent's callbacks to one handler (replacing any earlier ones).
    pub fn bev_set_handler<H: BevHandler>(&mut self, bev: BufferEvent, h: H) -> io::Result<()> {
        let old = self.bev_live(bev)?.handler.replace(Box::new(h));
        drop(old);
        Ok(())
    }

    /// Sets the read, write and event callbacks as closures (libevent's
    /// `bufferevent_setcb`); `None` for any of them runs nothing. To share state among
    /// them, implement [`BevHandler`] instead.
    pub fn bev_setcb<R, W, E>(
        &mut self,
        bev: BufferEvent,
        read: Option<R>,
        write: Option<W>,
        event: Option<E>,
    ) -> io::Result<()>
    where
        R: FnMut(&mut BevCtx<'_>) + 'static,
        W: FnMut(&mut BevCtx<'_>) + 'static,
        E: FnMut(&mut BevCtx<'_>, BevEvents) + 'static,
    {
        let h = Closures {
            read: read.map(|f| Box::new(f) as _),
            write: write.map(|f| Box::new(f) as _),
            event: event.map(|f| Box::new(f) as _),
        };
        self.bev_set_handler(bev, h)
    }

    /// Enables reading and/or writing (libevent's `bufferevent_enable`). Reading stays
    /// suspended while the input is at its high watermark.
    pub fn bev_enable(&mut self, bev: BufferEvent, what: What) -> io::Result<()> {
        let b = self.bev_live(bev)?;
        // Enabling writing with nothing to send: one write callback at the next
        // writability, as libevent's socket bufferevents do (its enable adds the write
        // event whenever WRITE is asked for).
        if what.contains(What::WRITE)
            && b.output.is_empty()
            && b.pair().is_none()
            && b.filter.is_none()
        {
            b.write_kick = true;
        }
        // A filter whose underlying stopped at EOF reads again when asked to (as a socket
        // bufferevent enabled again after EOF reads again, and reports what it finds).
        if let Some(f) = b.filter.as_mut().filter(|_| what.contains(What::READ)) {
            f.under_stopped = false;
        }
        b.enabled |= what & (What::READ | What::WRITE);
        self.bev_sync(bev);
        Ok(())
    }

    /// Disables reading and/or writing (libevent's `bufferevent_disable`).
    pub fn bev_disable(&mut self, bev: BufferEvent, what: What) -> io::Result<()> {
        let b = self.bev_live(bev)?;
        if what.contains(What::WRITE) {
            b.write_kick = false;
        }
        b.enabled &= !(what & (What::READ | What::WRITE));
        self.bev_sync(bev);
        Ok(())
    }

    /// What is enabled (libevent's `bufferevent_get_enabled`).
    pub fn bev_get_enabled(&mut self, bev: BufferEvent) -> io::Result<What> {
        Ok(self.bev_live(bev)?.enabled)
    }

    /// Sets the read (`What::READ`) and/or write (`What::WRITE`) watermarks (libevent's
    /// `bufferevent_setwatermark`). Read: the read callback waits for `low` bytes; at
    /// `high` (0: none) reading is suspended until the input drains below it. Write: the
    /// write callback runs when the output drains to `low`. `low > high` with a high mark
    /// is refused.
    pub fn bev_setwatermark(
        &mut self,
        bev: BufferEvent,
        what: What,
        low: usize,
        high: usize,
    ) -> io::Result<()> {
        if high != 0 && low > high {
            return Err(invalid(
                "watermarks inverted: the low mark is above the high mark",
            ));
        }
        let b = self.bev_live(bev)?;
        if what.contains(What::READ) {
            b.read_wm = (low, high);
        }
        if what.contains(What::WRITE) {
            b.rare_mut().write_wm = (low, high);
        }
        self.bev_sync(bev);
        Ok(())
    }

    /// The (low, high) watermark of `What::READ` or `What::WRITE` (libevent's
    /// `bufferevent_getwatermark`).
    pub fn bev_getwatermark(&mut self, bev: BufferEvent, what: What) -> io::Result<(usize, usize)> {
        let b = self.bev_live(bev)?;
        match what {
            w if w == What::READ => Ok(b.read_wm),
            w if w == What::WRITE => Ok(b.write_wm()),
            _ => Err(invalid("ask for one watermark: READ or WRITE")),
        }
    }

    /// Read and write timeouts (libevent's `bufferevent_set_timeouts`; `None`: none). The
    /// read timeout runs while reading is enabled and resets with every read; the write
    /// timeout while output is pending. On expiry the event callback gets
    /// `READING|TIMEOUT` or `WRITING|TIMEOUT` and that direction is disabled. Pairs and
    /// filters have them too (on timers of their own, restarted when data arrives or output
    /// moves on).
    pub fn bev_set_timeouts(
        &mut self,
        bev: BufferEvent,
        read: Option<Duration>,
        write: Option<Duration>,
    ) -> io::Result<()> {
        for d in [read, write].into_iter().flatten() {
            crate::reactor::check_timeout(d)?;
        }
        let b = self.bev_live(bev)?;
        let r = b.rare_mut();
        r.timeout_read = read;
        r.timeout_write = write;
        // Pairs, filters and a socket bufferevent without its socket yet time out on timers.
        if b.pair().is_some() || b.filter.is_some() || b.fd < 0 {
            return self.bev_generic_set_timeouts(bev);
        }
        // Re-arm whatever is pending with the new timeouts.
        b.read_added = false;
        b.write_added = false;
        let (r, w) = (b.read_ev, b.write_ev);
        for ev in [r, w].into_iter().flatten() {
            let _ = self.del(ev);
        }
        self.bev_sync(bev);
        Ok(())
    }

    /// Caps one read and one write (libevent's `bufferevent_set_max_single_read` /
    /// `_write`); 0 is refused.
    pub fn bev_set_max_single(
        &mut self,
        bev: BufferEvent,
        read: usize,
        write: usize,
    ) -> io::Result<()> {
        if read == 0 || write == 0 {
            return Err(invalid("a read or write cap of 0 would never move data"));
        }
        let b = self.bev_live(bev)?;
        let r = b.rare_mut();
        r.max_read = read;
        r.max_write = write;
        Ok(())
    }

    /// The priority of the bufferevent's events (libevent's `bufferevent_priority_set`).
    pub fn bev_priority_set(&mut self, bev: BufferEvent, priority: usize) -> io::Result<()> {
        let b = self.bev_live(bev)?;
        let evs = [b.read_ev, b.write_ev, b.deferred()];
        for ev in evs.into_iter().flatten() {
            self.set_priority(ev, priority)?;
        }
        self.bev_live(bev)?.rare_mut().priority = Some(priority);
        Ok(())
    }

    /// Appends `data` to the output buffer (libevent's `bufferevent_write`).
    pub fn bev_write(&mut self, bev: BufferEvent, data: &[u8]) -> io::Result<()> {
        self.bev_live(bev)?
            .output
            .add(data)
            .map_err(io::Error::other)?;
        self.bev_sync(bev);
        Ok(())
    }

    /// Moves all of `buf` to the end of the output buffer (libevent's
    /// `bufferevent_write_buffer`).
    pub fn bev_write_buffer(&mut self, bev: BufferEvent, buf: &mut EvBuffer) -> io::Result<()> {
        self.bev_live(bev)?
            .output
            .add_buffer(buf)
            .map_err(io::Error::other)?;
        self.bev_sync(bev);
        Ok(())
    }

    /// Removes up to `out.len()` bytes from the input buffer into `out` (libevent's
    /// `bufferevent_read`); returns how many.
    pub fn bev_read(&mut self, bev: BufferEvent, out: &mut [u8]) -> io::Result<usize> {
        let n = self
            .bev_live(bev)?
            .input
            .remove(out)
            .map_err(io::Error::other)?;
        self.bev_sync(bev);
        Ok(n)
    }

    /// The output buffer, from outside the bufferevent's callbacks (libevent's
    /// `bufferevent_get_output`): what is added is written once the guard is dropped.
    pub fn bev_output(&mut self, bev: BufferEvent) -> io::Result<BevOutput<'_>> {
        self.bev_live(bev)?;
        Ok(BevOutput::new(self, bev, false))
    }

    /// The input buffer, from outside the bufferevent's callbacks (libevent's
    /// `bufferevent_get_input`).
    pub fn bev_input(&mut self, bev: BufferEvent) -> io::Result<BevOutput<'_>> {
        self.bev_live(bev)?;
        Ok(BevOutput::new(self, bev, true))
    }

    /// Both buffers, (input, output), of a bufferevent one of whose callbacks is running,
    /// without a guard: as [`BevCtx::buffers`], for code inside that callback which reaches
    /// the bufferevent through the base instead of its context (a C program's callbacks, in
    /// evrs-capi). The bufferevent catches up with what is done to them when the callback
    /// returns. `None` if no callback of it is running or it is being freed: then use
    /// [`bev_input`](Self::bev_input) / [`bev_output`](Self::bev_output), whose guards
    /// catch up when dropped.
    pub fn bev_buffers_in_callback(
        &mut self,
        bev: BufferEvent,
    ) -> Option<(&mut EvBuffer, &mut EvBuffer)> {
        match self.bev_state_mut(bev) {
            Some(b) if b.running > 0 && !b.free_requested => Some((&mut b.input, &mut b.output)),
            _ => None,
        }
    }

    /// The socket (-1 if none yet) (libevent's `bufferevent_getfd`).
    pub fn bev_fd(&mut self, bev: BufferEvent) -> io::Result<RawFd> {
        Ok(self.bev_live(bev)?.fd)
    }

    /// Replaces the socket (libevent's `bufferevent_setfd`): the old one is not closed;
    /// reading and writing continue on the new one as enabled.
    pub fn bev_set_fd(&mut self, bev: BufferEvent, fd: RawFd) -> io::Result<()> {
        if fd < -1 {
            return Err(invalid("a bufferevent's fd is a socket or -1"));
        }
        self.bev_drop_events(bev)?;
        let b = self.bev_live(bev)?;
        b.fd = fd;
        b.owns_fd = false;
        b.connecting = false;
        if fd >= 0 {
            self.bev_make_events(bev, fd)?;
        }
        self.bev_sync(bev);
        Ok(())
    }

    /// The last socket error the bufferevent reported (libevent's
    /// `bufferevent_socket_get_error`), as an errno.
    pub fn bev_socket_error(&mut self, bev: BufferEvent) -> io::Result<Option<i32>> {
        Ok(self.bev_live(bev)?.rare().last_error)
    }

    /// Writes what the socket takes now (libevent's `bufferevent_flush`); with
    /// [`Flush::Finished`] the write side is shut down once the output has drained.
    /// Returns whether anything was written.
    pub fn bev_flush(&mut self, bev: BufferEvent, mode: Flush) -> io::Result<bool> {
        let b = self.bev_live(bev)?;
        if b.pair().is_some() {
            return Ok(self.pair_flush(bev, mode == Flush::Finished));
        }
        if b.filter.is_some() {
            return self.filter_flush(bev, mode);
        }
        if mode == Flush::Finished {
            b.shutdown_pending = true;
        }
        let wrote = self.bev_write_now(bev)?;
        self.bev_sync(bev);
        Ok(wrote > 0)
    }

    /// Frees the bufferevent (libevent's `bufferevent_free`): its events stop, unsent output
    /// is dropped (as libevent does: flush first to send it), and the socket is closed with
    /// `CLOSE_ON_FREE` (or if `bev_connect` made it). From inside one of its own callbacks
    /// the teardown happens when that callback returns.
    pub fn bev_free(&mut self, bev: BufferEvent) -> io::Result<()> {
        let b = self.bev_live(bev)?;
        if b.running > 0 {
            b.free_requested = true;
            self.bev_drop_events(bev)?;
            return Ok(());
        }
        self.bev_teardown(bev);
        Ok(())
    }

    /// Whether the socket bufferevent's read and write events are pending now (what
    /// libevent shows as `EVLIST_INSERTED` on `bev->ev_read` / `bev->ev_write`); `None`
    /// for a freed or foreign handle. A bufferevent without a socket has no such events.
    pub fn bev_events_pending(&self, bev: BufferEvent) -> Option<(bool, bool)> {
        self.bev_state(bev).map(|b| {
            (
                b.read_added && b.read_ev.is_some(),
                b.write_added && b.write_ev.is_some(),
            )
        })
    }

    /// What a mirror of the bufferevent shows, in one lookup (evrs-capi's public
    /// `struct bufferevent` fields): the enabled directions, whether the read and write
    /// events are pending ([`bev_events_pending`](Self::bev_events_pending)), and the socket
    /// (-1 if none). `None` for a stale handle or one being freed.
    pub fn bev_status(&self, bev: BufferEvent) -> Option<(What, (bool, bool), RawFd)> {
        let b = self.bev_state(bev).filter(|b| !b.free_requested)?;
        let pending = (
            b.read_added && b.read_ev.is_some(),
            b.write_added && b.write_ev.is_some(),
        );
        Some((b.enabled, pending, b.fd))
    }

    /// Bufferevents of this base (for tests and leak checks).
    pub fn bev_count(&self) -> usize {
        self.ext_ref::<Bevs>(ExtKind::Bufferevents)
            .map_or(0, |b| b.table.len())
    }
}
