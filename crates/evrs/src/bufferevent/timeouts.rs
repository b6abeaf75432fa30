//! Read and write timeouts of bufferevents without a socket — pairs, filters, and socket
//! bufferevents whose socket is not set yet (libevent's "generic" timeouts; libevent times
//! out a socket bufferevent on fd -1 too). A socket bufferevent puts its timeouts on its
//! read and write events; these have no fd, so their `read_ev` / `write_ev` slots hold two
//! timers instead, made when a timeout is first set (and freed when a socket arrives):
//!
//! - the read timer runs while reading is enabled, and restarts whenever data arrives in the
//!   input;
//! - the write timer runs while writing is enabled (on a pair half: and output waits), and
//!   restarts whenever some of the output moves on.
//!
//! On expiry that direction is disabled and the event callback gets `READING|TIMEOUT` or
//! `WRITING|TIMEOUT`, as on a socket.

use super::ctx::Cb;
use super::{BevEvents, BufferEvent};
use crate::base::EventBase;
use crate::flags::What;
use std::io;

impl EventBase {
    /// New timeouts on a pair half or a filter: the timers are made if needed and started
    /// afresh.
    pub(super) fn bev_generic_set_timeouts(&mut self, bev: BufferEvent) -> io::Result<()> {
        let b = self.bev_live(bev)?;
        let (need_r, need_w) = (
            b.rare().timeout_read.is_some() && b.read_ev.is_none(),
            b.rare().timeout_write.is_some() && b.write_ev.is_none(),
        );
        if need_r {
            let t = self.new_timer(move |base, _, _| base.bev_generic_expired(bev, true))?;
            self.bev_live(bev)?.read_ev = Some(t);
        }
        if need_w {
            let t = self.new_timer(move |base, _, _| base.bev_generic_expired(bev, false))?;
            self.bev_live(bev)?.write_ev = Some(t);
        }
        let b = self.bev_live(bev)?;
        b.read_added = false;
        b.write_added = false;
        let evs = [b.read_ev, b.write_ev];
        for ev in evs.into_iter().flatten() {
            let _ = self.del(ev);
        }
        self.bev_generic_sync(bev, false, false);
        Ok(())
    }

    /// Keeps a pair half's or a filter's timers in step with what is enabled and pending;
    /// `read_moved` / `write_moved`: data arrived / output moved on, which restarts that
    /// direction's timer.
    pub(super) fn bev_generic_sync(
        &mut self,
        bev: BufferEvent,
        read_moved: bool,
        write_moved: bool,
    ) {
        let Some(b) = self.bev_state_mut(bev) else {
            return;
        };
        if b.free_requested
            || (b.rare().timeout_read.is_none()
                && b.rare().timeout_write.is_none()
                && !b.read_added
                && !b.write_added)
        {
            return;
        }
        let want_r = b.rare().timeout_read.is_some() && b.enabled.contains(What::READ);
        // A pair half's write timer runs only while output waits; a filter's, and that of a
        // socket bufferevent without its socket, while writing is enabled (libevent's rules:
        // enabling writing on those arms the write timeout whatever the output holds).
        let want_w = b.rare().timeout_write.is_some()
            && b.enabled.contains(What::WRITE)
            && (b.pair().is_none() || !b.output.is_empty());
        let plan = [
            (
                b.read_ev,
                want_r,
                b.read_added,
                read_moved,
                b.rare().timeout_read,
            ),
            (
                b.write_ev,
                want_w,
                b.write_added,
                write_moved,
                b.rare().timeout_write,
            ),
        ];
        b.read_added = want_r && b.read_ev.is_some();
        b.write_added = want_w && b.write_ev.is_some();
        for (ev, want, added, moved, timeout) in plan {
            let Some(ev) = ev else {
                continue;
            };
            // (Adding a pending timer again restarts it.)
            if want && (!added || moved) {
                let _ = self.add(ev, timeout);
            } else if !want && added {
                let _ = self.del(ev);
            }
        }
    }

    /// A generic timer expired: that direction stops, and the program is told.
    fn bev_generic_expired(&mut self, bev: BufferEvent, read: bool) {
        let Some(b) = self.bev_state_mut(bev) else {
            return;
        };
        if b.free_requested {
            return;
        }
        let (dir, what) = if read {
            b.read_added = false;
            (What::READ, BevEvents::READING)
        } else {
            b.write_added = false;
            (What::WRITE, BevEvents::WRITING)
        };
        b.enabled.remove(dir);
        self.bev_sync(bev);
        self.bev_callback(bev, Cb::Event(what | BevEvents::TIMEOUT));
    }
}
