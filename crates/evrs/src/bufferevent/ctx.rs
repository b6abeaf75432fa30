//! What a bufferevent's callbacks are ([`BevHandler`]) and what they get ([`BevCtx`]);
//! the guard for using a buffer from outside a callback ([`BevOutput`]); and running a
//! callback: the handler is taken out of its bufferevent while it runs (so it can reach
//! the base, and through it its own bufferevent) and put back afterwards unless it was
//! replaced; a bufferevent freed meanwhile is torn down once the callback returns.

use super::spares::reclaim_into;
use super::sync::{sync_local, SyncLeft};
use super::{Bev, BevEvents, BufferEvent};
use crate::base::EventBase;
use crate::event::Event;
use crate::flags::What;
use evrs_buffer::EvBuffer;
use std::io;
use std::ops::{Deref, DerefMut};

/// The callbacks of a bufferevent, as one value that can hold the connection's state
/// (libevent's read, write and event callbacks with their shared `void *arg`). Each method
/// has an empty default.
pub trait BevHandler: 'static {
    /// Data arrived: the input buffer holds at least the read low watermark.
    fn read(&mut self, bev: &mut BevCtx<'_>) {
        let _ = bev;
    }
    /// The output buffer drained to the write low watermark (empty, by default).
    fn write(&mut self, bev: &mut BevCtx<'_>) {
        let _ = bev;
    }
    /// EOF, an error, a timeout, or a finished connect (see [`BevEvents`]).
    fn event(&mut self, bev: &mut BevCtx<'_>, what: BevEvents) {
        let _ = (bev, what);
    }
    /// Whether [`write`](Self::write) does anything. A handler that returns `false` (asked
    /// each time output drains) is not called for drained output at all, which saves the
    /// call — an echo server pays it once per message otherwise. `true` by default.
    fn wants_write(&self) -> bool {
        true
    }
}

type ReadCb = Box<dyn FnMut(&mut BevCtx<'_>)>;
type EventCb = Box<dyn FnMut(&mut BevCtx<'_>, BevEvents)>;

/// Three closures as a handler (`bev_setcb`).
pub(super) struct Closures {
    pub(super) read: Option<ReadCb>,
    pub(super) write: Option<ReadCb>,
    pub(super) event: Option<EventCb>,
}

impl BevHandler for Closures {
    fn read(&mut self, bev: &mut BevCtx<'_>) {
        if let Some(f) = &mut self.read {
            f(bev)
        }
    }
    fn write(&mut self, bev: &mut BevCtx<'_>) {
        if let Some(f) = &mut self.write {
            f(bev)
        }
    }
    fn event(&mut self, bev: &mut BevCtx<'_>, what: BevEvents) {
        if let Some(f) = &mut self.event {
            f(bev, what)
        }
    }
    fn wants_write(&self) -> bool {
        self.write.is_some()
    }
}

/// What a bufferevent callback works with: its buffers, its controls and the base.
pub struct BevCtx<'a> {
    base: &'a mut EventBase,
    bev: BufferEvent,
    /// Stands in for the buffers of a bufferevent freed during its callback.
    spare: Option<(EvBuffer, EvBuffer)>,
}

impl<'a> BevCtx<'a> {
    /// A context for code that runs outside the bufferevent's callbacks (a
    /// [`BevRemote::call`](super::BevRemote::call)).
    pub(super) fn new(base: &'a mut EventBase, bev: BufferEvent) -> Self {
        BevCtx {
            base,
            bev,
            spare: None,
        }
    }

    /// The bufferevent this callback belongs to.
    pub fn handle(&self) -> BufferEvent {
        self.bev
    }

    /// The base: add events, make or free other bufferevents, stop the loop…
    pub fn base(&mut self) -> &mut EventBase {
        self.base
    }

    /// The input buffer (what was read from the peer).
    pub fn input(&mut self) -> &mut EvBuffer {
        self.buffers().0
    }

    /// The output buffer (what will be written to the peer).
    pub fn output(&mut self) -> &mut EvBuffer {
        self.buffers().1
    }

    /// Both buffers at once, (input, output): e.g. to move data from one to the other.
    /// After [`free`](Self::free) they are empty stand-ins.
    pub fn buffers(&mut self) -> (&mut EvBuffer, &mut EvBuffer) {
        // (One lookup: this is on every callback's path.)
        if let Some(b) = self.base.bev_state_mut(self.bev) {
            if !b.free_requested {
                return (&mut b.input, &mut b.output);
            }
        }
        let (i, o) = self
            .spare
            .get_or_insert_with(|| (EvBuffer::new(), EvBuffer::new()));
        (i, o)
    }

    /// Appends `data` to the output buffer.
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.output().add(data).map_err(io::Error::other)
    }

    /// Enables reading and/or writing ([`EventBase::bev_enable`]).
    pub fn enable(&mut self, what: What) -> io::Result<()> {
        self.base.bev_enable(self.bev, what)
    }

    /// Disables reading and/or writing ([`EventBase::bev_disable`]).
    pub fn disable(&mut self, what: What) -> io::Result<()> {
        self.base.bev_disable(self.bev, what)
    }

    /// Sets a watermark ([`EventBase::bev_setwatermark`]).
    pub fn set_watermark(&mut self, what: What, low: usize, high: usize) -> io::Result<()> {
        self.base.bev_setwatermark(self.bev, what, low, high)
    }

    /// Frees the bufferevent once this callback returns (its events stop now; the buffers
    /// read as empty from here on).
    pub fn free(&mut self) {
        let _ = self.base.bev_free(self.bev);
    }
}

/// A bufferevent's buffer borrowed outside its callbacks ([`EventBase::bev_output`],
/// [`EventBase::bev_input`]): when the guard goes away the bufferevent catches up — new
/// output is scheduled for writing, input drained below the high watermark resumes reading.
pub struct BevOutput<'a> {
    base: &'a mut EventBase,
    bev: BufferEvent,
    input: bool,
    spare: EvBuffer,
}

impl<'a> BevOutput<'a> {
    pub(super) fn new(base: &'a mut EventBase, bev: BufferEvent, input: bool) -> Self {
        BevOutput {
            base,
            bev,
            input,
            spare: EvBuffer::new(),
        }
    }

    /// Both buffers, (input, output), for one operation between them (moving the input to
    /// the output, say) under this one guard: the bufferevent catches up once, when it is
    /// dropped. `None` once the bufferevent is gone.
    pub fn both(&mut self) -> Option<(&mut EvBuffer, &mut EvBuffer)> {
        self.base
            .bev_state_mut(self.bev)
            .map(|b| (&mut b.input, &mut b.output))
    }
}

impl Deref for BevOutput<'_> {
    type Target = EvBuffer;
    fn deref(&self) -> &EvBuffer {
        match self.base.bev_state(self.bev) {
            Some(b) if self.input => &b.input,
            Some(b) => &b.output,
            None => &self.spare,
        }
    }
}

impl DerefMut for BevOutput<'_> {
    fn deref_mut(&mut self) -> &mut EvBuffer {
        match self.base.bev_state_mut(self.bev) {
            Some(b) if self.input => &mut b.input,
            Some(b) => &mut b.output,
            None => &mut self.spare,
        }
    }
}

impl Drop for BevOutput<'_> {
    fn drop(&mut self) {
        self.base.bev_sync(self.bev);
    }
}

/// Which callback to run.
#[derive(Clone, Copy, Debug)]
pub(super) enum Cb {
    Read,
    Write,
    Event(BevEvents),
}

/// Takes the handler out of a live bufferevent for one callback (counted in `running`).
fn lease_handler(state: &mut Bev) -> Option<Box<dyn BevHandler>> {
    if state.free_requested {
        return None;
    }
    let h = state.handler.take()?;
    state.running += 1;
    Some(h)
}

/// How a callback is to run, as [`prepare_call`] found.
pub(super) enum Call {
    /// Now, on the handler taken out of the bufferevent.
    Inline(Box<dyn BevHandler>),
    /// From the deferred queue (DEFER_CALLBACKS): its event is activated.
    Deferred(Event),
    /// Not at all (no handler, or the bufferevent is being freed).
    Skip,
}

/// Prepares callback `cb` of a looked-up bufferevent: takes its handler out to run it
/// inline, or (DEFER_CALLBACKS) records what the deferred callback will report.
#[inline]
pub(super) fn prepare_call(state: &mut Bev, cb: Cb) -> Call {
    if matches!(cb, Cb::Write) && state.handler.as_deref().is_some_and(|h| !h.wants_write()) {
        return Call::Skip;
    }
    let Some(deferred) = state.deferred() else {
        return lease_handler(state).map_or(Call::Skip, Call::Inline);
    };
    let r = state.rare_mut();
    match cb {
        Cb::Read => r.pending_read = true,
        Cb::Write => r.pending_write = true,
        Cb::Event(what) => r.pending_events |= what,
    }
    Call::Deferred(deferred)
}

impl EventBase {
    /// Runs one callback of `bev` now, then lets the bufferevent catch up (or finishes
    /// freeing it).
    pub(super) fn bev_run_callback(&mut self, bev: BufferEvent, cb: Cb) {
        if let Some(h) = self.bev_state_mut(bev).and_then(lease_handler) {
            self.bev_run_handler(bev, h, cb, false);
        }
    }

    /// Runs `cb` on the handler `h` just taken out of `bev` (whose `running` counts it);
    /// with `reclaim`, the callback ends a dispatch and the spares of `bev`'s emptied
    /// buffers are reclaimed after it (`spares.rs`).
    ///
    /// A callback that panics loses its bufferevent, as a panicking event callback loses its
    /// event: the bufferevent is freed (its socket closed with `CLOSE_ON_FREE`), then the
    /// panic goes on to the caller of the loop, and the base stays usable.
    fn bev_run_handler(
        &mut self,
        bev: BufferEvent,
        mut h: Box<dyn BevHandler>,
        cb: Cb,
        reclaim: bool,
    ) {
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut ctx = BevCtx {
                base: self,
                bev,
                spare: None,
            };
            match cb {
                Cb::Read => h.read(&mut ctx),
                Cb::Write => h.write(&mut ctx),
                Cb::Event(what) => h.event(&mut ctx, what),
            }
        }));
        if let Err(panic) = ran {
            drop(h);
            if let Some(state) = self.bev_state_mut(bev) {
                state.running -= 1;
                state.reading = false;
                let _ = self.bev_free(bev);
            }
            std::panic::resume_unwind(panic);
        }
        let Some((state, spares)) = self.bev_entry(bev) else {
            return drop(h);
        };
        state.running -= 1;
        // Put the handler back unless the callback set a new one.
        let replaced = state.handler.is_some();
        if !replaced {
            state.handler = Some(h);
        }
        if state.running == 0 && state.free_requested {
            self.bev_teardown(bev);
        } else {
            // (The same lookup: a callback that changed nothing costs no more.)
            let left = sync_local(state);
            if left == SyncLeft::Nothing {
                if reclaim {
                    reclaim_into(state, spares);
                }
            } else {
                self.bev_sync_rest(bev, left);
                if reclaim {
                    self.bev_reclaim_spares(bev);
                }
            }
        }
        // (A replaced handler is dropped here, after the bufferevent is consistent again:
        // its destructor is user code.)
    }

    /// Runs callback `cb` of `bev` inline, or (DEFER_CALLBACKS) queues it for the deferred
    /// callback.
    pub(super) fn bev_callback(&mut self, bev: BufferEvent, cb: Cb) {
        if let Some(state) = self.bev_state_mut(bev) {
            let call = prepare_call(state, cb);
            self.bev_call(bev, call, cb, false);
        }
    }

    /// Runs (or queues) the callback [`prepare_call`] prepared; `reclaim`: it ends a
    /// dispatch and runs inline (see [`bev_run_handler`](Self::bev_run_handler)).
    #[inline]
    pub(super) fn bev_call(&mut self, bev: BufferEvent, call: Call, cb: Cb, reclaim: bool) {
        match call {
            Call::Inline(h) => self.bev_run_handler(bev, h, cb, reclaim),
            Call::Deferred(ev) => {
                let _ = self.activate(ev, What::TIMEOUT, 1);
            }
            Call::Skip => {}
        }
    }

    /// The deferred callback of a DEFER_CALLBACKS bufferevent: what was queued, in
    /// libevent's order (CONNECTED, read, write, the other events).
    pub(super) fn bev_run_deferred(&mut self, bev: BufferEvent) {
        let Some(state) = self.bev_state_mut(bev).and_then(|b| b.rare_if_any()) else {
            return;
        };
        let read = std::mem::take(&mut state.pending_read);
        let write = std::mem::take(&mut state.pending_write);
        let mut events = std::mem::take(&mut state.pending_events);
        if events.contains(BevEvents::CONNECTED) {
            events.remove(BevEvents::CONNECTED);
            self.bev_run_callback(bev, Cb::Event(BevEvents::CONNECTED));
        }
        if read {
            self.bev_run_callback(bev, Cb::Read);
        }
        if write {
            self.bev_run_callback(bev, Cb::Write);
        }
        if !events.is_empty() {
            self.bev_run_callback(bev, Cb::Event(events));
        }
    }
}
