//! Bufferevent pairs (libevent's `bufferevent_pair_new`): two linked in-process
//! bufferevents with no socket — what one writes, the other reads. Data moves from one
//! half's output to the other's input whenever the writer has WRITE and the reader READ
//! enabled, up to the reader's read high watermark; callbacks are always deferred (as
//! libevent forces `DEFER_CALLBACKS`), so two halves answering each other cannot recurse.
//!
//! Unlike libevent (its #93), freeing one half tells the other: it gets `READING|EOF`.

use super::ctx::Cb;
use super::{Bev, BevEvents, BevOptions, BufferEvent};
use crate::base::EventBase;
use crate::flags::What;
use evrs_buffer::EvBuffer;
use std::io;

impl EventBase {
    /// Two linked bufferevents (libevent's `bufferevent_pair_new`). `DEFER_CALLBACKS` is
    /// implied; `CLOSE_ON_FREE` means nothing (there is no socket).
    pub fn bufferevent_pair(&mut self, opts: BevOptions) -> io::Result<(BufferEvent, BufferEvent)> {
        let opts = opts | BevOptions::DEFER_CALLBACKS;
        let a = self.bufferevent_socket(-1, opts)?;
        let b = match self.bufferevent_socket(-1, opts) {
            Ok(b) => b,
            Err(e) => {
                let _ = self.bev_free(a);
                return Err(e);
            }
        };
        self.bev_live(a)?.rare_mut().pair = Some(Some(b));
        self.bev_live(b)?.rare_mut().pair = Some(Some(a));
        Ok((a, b))
    }

    /// The other half of a pair (libevent's `bufferevent_pair_get_partner`): `None` if
    /// `bev` is not a pair half, or its partner was freed.
    pub fn bev_pair_partner(&mut self, bev: BufferEvent) -> io::Result<Option<BufferEvent>> {
        Ok(self.bev_live(bev)?.pair().flatten())
    }

    /// Moves what can move in both directions between `bev` and its partner, and queues
    /// the callbacks the moves call for.
    pub(super) fn pair_pump(&mut self, bev: BufferEvent) {
        let Some(partner) = self.bev_state(bev).and_then(|b| b.pair().flatten()) else {
            return;
        };
        let out = self.pair_move(bev, partner, false);
        let back = self.pair_move(partner, bev, false);
        self.bev_generic_sync(bev, back > 0, out > 0);
        self.bev_generic_sync(partner, out > 0, back > 0);
    }

    /// Moves `from`'s output to `to`'s input: what `to`'s high watermark allows, or (with
    /// `force`: a flush) everything, if `from` writes and `to` reads. Returns the bytes moved.
    pub(super) fn pair_move(&mut self, from: BufferEvent, to: BufferEvent, force: bool) -> usize {
        let ready = |b: Option<&Bev>, dir: What| {
            b.is_some_and(|b| !b.free_requested && (force || b.enabled.contains(dir)))
        };
        if !ready(self.bev_state(from), What::WRITE) || !ready(self.bev_state(to), What::READ) {
            return 0;
        }
        let Some(f) = self.bev_state_mut(from) else {
            return 0;
        };
        if f.output.is_empty() {
            return 0;
        }
        let mut data = std::mem::replace(&mut f.output, EvBuffer::new());
        let Some(t) = self.bev_state_mut(to) else {
            return 0;
        };
        let high = t.read_wm.1;
        let room = if force || high == 0 {
            data.len()
        } else {
            high.saturating_sub(t.input.len()).min(data.len())
        };
        let moved = data.remove_buffer(&mut t.input, room).unwrap_or(0);
        let to_ready = t.input.len() >= t.read_wm.0;
        let Some(f) = self.bev_state_mut(from) else {
            return moved;
        };
        // Put the rest back in front of anything written meanwhile (nothing can be: no
        // user code ran), keeping order.
        let _ = data.add_buffer(&mut f.output);
        f.output = data;
        let from_drained = f.output.len() <= f.write_wm().0;
        // The reader first, then the writer, as libevent (with deferred callbacks this is
        // the order their runs are queued in, which programs observe).
        if moved > 0 && to_ready {
            self.bev_callback(to, Cb::Read);
        }
        if moved > 0 && from_drained {
            self.bev_callback(from, Cb::Write);
        }
        moved
    }

    /// A pair half is going away: its partner forgets it and is told (`READING|EOF`).
    pub(super) fn pair_unlink(&mut self, bev: BufferEvent) {
        let Some(partner) = self.bev_state(bev).and_then(|b| b.pair().flatten()) else {
            return;
        };
        if let Some(p) = self.bev_state_mut(partner) {
            p.rare_mut().pair = Some(None);
        }
        self.bev_callback(partner, Cb::Event(BevEvents::READING | BevEvents::EOF));
    }

    /// `bev_flush` of a pair half: everything moves, watermarks ignored; with `finished`
    /// the partner is told `EOF` (libevent's `BEV_FINISHED` on a pair).
    pub(super) fn pair_flush(&mut self, bev: BufferEvent, finished: bool) -> bool {
        let Some(partner) = self.bev_state(bev).and_then(|b| b.pair().flatten()) else {
            return false;
        };
        let moved = self.pair_move(bev, partner, true);
        if finished {
            self.bev_callback(partner, Cb::Event(BevEvents::READING | BevEvents::EOF));
        }
        moved > 0
    }
}
