//! Filtering bufferevents (libevent's `bufferevent_filter_new`): a bufferevent over another
//! one ("the underlying"), with an input filter from the underlying's input to its own and
//! an output filter from its own output to the underlying's. A missing filter copies. The
//! filter takes over the underlying's callbacks: its reads run the input filter, its
//! drained output runs the output filter again, and its events (EOF, errors, CONNECTED) are
//! forwarded to the filter's event callback.
//!
//! A filter function gets (source, destination, limit, mode) and returns [`FilterResult`]:
//! `Ok` (call again if data and room remain), `NeedMore` (stop until more input arrives) or
//! `Error` — unlike libevent (its #362), an error is reported: the event callback gets
//! `READING|ERROR` or `WRITING|ERROR`.
//!
//! Underneath, a filter is a [`Codec`]: a value that sees both directions at once, so a
//! protocol that must answer while it reads (TLS's handshake) can be a filter too
//! ([`EventBase::bufferevent_codec`]); two filter functions are one simple codec.

use super::ctx::Cb;
use super::{BevCtx, BevEvents, BevHandler, BevOptions, BufferEvent, Flush};
use crate::base::EventBase;
use crate::flags::What;
use evrs_buffer::EvBuffer;
use std::io;

/// What a filter function reports (libevent's `bufferevent_filter_result`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterResult {
    /// Some output was produced (or all input consumed): call again while input remains
    /// (`BEV_OK`).
    Ok,
    /// Nothing more can be produced until more input arrives (`BEV_NEED_MORE`).
    NeedMore,
    /// The data is bad: the filter reports an error and stops (`BEV_ERROR`).
    Error,
}

/// A filter function: moves (transformed) data from `src` to `dst`, at most `limit` bytes
/// of output if given, in flush `mode`.
pub type FilterFn =
    Box<dyn FnMut(&mut EvBuffer, &mut EvBuffer, Option<usize>, Flush) -> FilterResult>;

/// A two-way filter (see the module docs): what a filtering bufferevent runs.
pub trait Codec: 'static {
    /// Bytes arrived from the underlying (`wire`): put what the program reads in `plain`
    /// (at most `limit` bytes of it if given), and anything the protocol must send back at
    /// once in `reply` (it goes to the underlying's output).
    fn decode(
        &mut self,
        wire: &mut EvBuffer,
        plain: &mut EvBuffer,
        reply: &mut EvBuffer,
        limit: Option<usize>,
        mode: Flush,
    ) -> FilterResult;

    /// The program's data (`plain`) goes to the wire, at most `limit` bytes of output.
    fn encode(
        &mut self,
        plain: &mut EvBuffer,
        wire: &mut EvBuffer,
        limit: Option<usize>,
        mode: Flush,
    ) -> FilterResult;

    /// Events the codec has to report since it was last asked (e.g. `CONNECTED` when a
    /// handshake completes, `READING|EOF` on a protocol-level close).
    fn take_events(&mut self) -> BevEvents {
        BevEvents::empty()
    }

    /// The underlying reported `what`: what the filter's event callback is told instead
    /// (e.g. an EOF without a protocol-level close is an error for TLS).
    fn underlying_event(&mut self, what: BevEvents) -> BevEvents {
        what
    }

    /// Whether the codec has output to send even with nothing written by the program (a
    /// handshake in progress).
    fn wants_write(&self) -> bool {
        false
    }

    /// A readable reason for the last `Error`.
    fn error(&self) -> Option<String> {
        None
    }

    /// The codec itself, for its owner to inspect (e.g. a TLS codec's negotiated protocol):
    /// see [`EventBase::bev_codec`].
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }
}

/// Two filter functions (or copies) as a codec.
struct FnCodec {
    input: Option<FilterFn>,
    output: Option<FilterFn>,
}

impl Codec for FnCodec {
    fn decode(
        &mut self,
        wire: &mut EvBuffer,
        plain: &mut EvBuffer,
        _reply: &mut EvBuffer,
        limit: Option<usize>,
        mode: Flush,
    ) -> FilterResult {
        run_filter(&mut self.input, wire, plain, limit, mode)
    }
    fn encode(
        &mut self,
        plain: &mut EvBuffer,
        wire: &mut EvBuffer,
        limit: Option<usize>,
        mode: Flush,
    ) -> FilterResult {
        run_filter(&mut self.output, plain, wire, limit, mode)
    }
}

/// The filter side of a filtering bufferevent.
pub(super) struct Filter {
    pub(super) under: BufferEvent,
    codec: Option<Box<dyn Codec>>,
    /// The codec's last error, readable.
    pub(super) error: Option<String>,
    /// The underlying stopped reading by itself (EOF, a read error or timeout): the pump
    /// leaves it stopped — re-arming it would read the same EOF again on every loop
    /// iteration — until the program enables the filter's reading again.
    pub(super) under_stopped: bool,
}

/// The underlying's handler: everything goes to the filter.
struct Link {
    filter: BufferEvent,
}

impl BevHandler for Link {
    fn read(&mut self, bev: &mut BevCtx<'_>) {
        bev.base().filter_input(self.filter, Flush::Normal);
    }
    fn write(&mut self, bev: &mut BevCtx<'_>) {
        bev.base().filter_output(self.filter, Flush::Normal);
    }
    fn event(&mut self, bev: &mut BevCtx<'_>, what: BevEvents) {
        if what.contains(BevEvents::READING)
            && what.intersects(BevEvents::EOF | BevEvents::ERROR | BevEvents::TIMEOUT)
        {
            if let Some(f) = bev
                .base()
                .bev_state_mut(self.filter)
                .and_then(|b| b.filter.as_mut())
            {
                f.under_stopped = true;
            }
        }
        let what = bev.base().filter_map_event(self.filter, what);
        bev.base().bev_callback(self.filter, Cb::Event(what));
    }
}

/// Runs `f` (or a copy) from `src` into `dst` while it makes progress: `Error` if it
/// reported one, else `Ok`.
fn run_filter(
    f: &mut Option<FilterFn>,
    src: &mut EvBuffer,
    dst: &mut EvBuffer,
    limit: Option<usize>,
    mode: Flush,
) -> FilterResult {
    let start = dst.len();
    let Some(f) = f else {
        let n = limit.map_or(src.len(), |l| l.min(src.len()));
        let _ = src.remove_buffer(dst, n);
        return FilterResult::Ok;
    };
    // Bounded: each round must consume input or produce output, else it stops.
    loop {
        let room = limit.map(|l| l.saturating_sub(dst.len() - start));
        if room == Some(0) {
            break;
        }
        let (before_src, before_dst) = (src.len(), dst.len());
        match f(src, dst, room, mode) {
            FilterResult::Error => return FilterResult::Error,
            FilterResult::NeedMore => break,
            FilterResult::Ok => {}
        }
        let progressed = src.len() != before_src || dst.len() != before_dst;
        if src.is_empty() || !progressed {
            break;
        }
    }
    FilterResult::Ok
}

impl EventBase {
    /// A bufferevent that filters `under` (libevent's `bufferevent_filter_new`). `None`
    /// for a direction copies. `under`'s callbacks are taken over and its reading and
    /// writing enabled; reading from it follows the filter's own `READ`. With
    /// `CLOSE_ON_FREE`, freeing the filter frees `under` too.
    pub fn bufferevent_filter<I, O>(
        &mut self,
        under: BufferEvent,
        input: Option<I>,
        output: Option<O>,
        opts: BevOptions,
    ) -> io::Result<BufferEvent>
    where
        I: FnMut(&mut EvBuffer, &mut EvBuffer, Option<usize>, Flush) -> FilterResult + 'static,
        O: FnMut(&mut EvBuffer, &mut EvBuffer, Option<usize>, Flush) -> FilterResult + 'static,
    {
        let u = self.bev_live(under)?;
        if u.pair().is_some() && u.pair().flatten().is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the underlying bufferevent is a pair half whose partner is gone",
            ));
        }
        let codec = FnCodec {
            input: input.map(|f| Box::new(f) as FilterFn),
            output: output.map(|f| Box::new(f) as FilterFn),
        };
        self.bufferevent_codec(under, codec, opts)
    }

    /// A bufferevent that runs `codec` over `under` (see [`Codec`]): a filter whose two
    /// directions share state, as TLS needs. Otherwise as
    /// [`bufferevent_filter`](Self::bufferevent_filter).
    pub fn bufferevent_codec<C: Codec>(
        &mut self,
        under: BufferEvent,
        codec: C,
        opts: BevOptions,
    ) -> io::Result<BufferEvent> {
        self.bev_live(under)?;
        let fb = self.bufferevent_socket(-1, opts)?;
        self.bev_live(fb)?.filter = Some(Box::new(Filter {
            under,
            codec: Some(Box::new(codec)),
            error: None,
            under_stopped: false,
        }));
        self.bev_set_handler(under, Link { filter: fb })?;
        self.bev_enable(under, What::WRITE)?;
        self.bev_sync(fb);
        // A codec that speaks first (a TLS client's hello) starts now.
        self.filter_output(fb, Flush::Normal);
        Ok(fb)
    }

    /// The codec a filter runs, to inspect it (downcast through [`Codec::as_any`]); `None`
    /// for a bufferevent that is not a filter, or while the codec itself is running.
    pub fn bev_codec(&self, bev: BufferEvent) -> Option<&dyn Codec> {
        self.bev_state(bev)?.filter.as_ref()?.codec.as_deref()
    }

    /// The readable reason of a filter's last codec error (e.g. a TLS alert or a failed
    /// certificate check), if any.
    pub fn bev_filter_error(&mut self, bev: BufferEvent) -> io::Result<Option<String>> {
        Ok(self
            .bev_live(bev)?
            .filter
            .as_ref()
            .and_then(|f| f.error.clone()))
    }

    fn filter_map_event(&mut self, fb: BufferEvent, what: BevEvents) -> BevEvents {
        let Some(f) = self.bev_state_mut(fb).and_then(|b| b.filter.as_mut()) else {
            return what;
        };
        let Some(codec) = f.codec.as_mut() else {
            return what;
        };
        let mapped = codec.underlying_event(what);
        if mapped.contains(BevEvents::ERROR) && !what.contains(BevEvents::ERROR) {
            f.error = codec.error();
        }
        mapped
    }

    /// The bufferevent a filter works on (libevent's `bufferevent_get_underlying`).
    pub fn bev_underlying(&mut self, bev: BufferEvent) -> io::Result<Option<BufferEvent>> {
        Ok(self.bev_live(bev)?.filter.as_ref().map(|f| f.under))
    }

    /// Keeps a filter in step: output is filtered down while it may be written, and the
    /// underlying reads while the filter reads and is below its high watermark.
    pub(super) fn filter_pump(&mut self, fb: BufferEvent) {
        let Some(b) = self.bev_state(fb) else {
            return;
        };
        let Some((under, stopped)) = b.filter.as_ref().map(|f| (f.under, f.under_stopped)) else {
            return;
        };
        let wants_read =
            b.enabled.contains(What::READ) && (b.read_wm.1 == 0 || b.input.len() < b.read_wm.1);
        let has_output = b.enabled.contains(What::WRITE) && !b.output.is_empty();
        if has_output {
            self.filter_output(fb, Flush::Normal);
        }
        let under_reads = self
            .bev_state(under)
            .is_some_and(|u| u.enabled.contains(What::READ));
        if wants_read && !under_reads && !stopped {
            let _ = self.bev_enable(under, What::READ);
            // Input that waited while the filter was not reading.
            self.filter_input(fb, Flush::Normal);
        } else if !wants_read && under_reads {
            let _ = self.bev_disable(under, What::READ);
        }
        self.bev_generic_sync(fb, false, false);
    }

    /// Runs the codec's decode from the underlying's input into the filter's.
    pub(super) fn filter_input(&mut self, fb: BufferEvent, mode: Flush) -> usize {
        let Some((under, mut codec)) = self.filter_take_codec(fb) else {
            return 0;
        };
        let Some(b) = self.bev_state_mut(fb) else {
            return 0;
        };
        let limit = (b.read_wm.1 != 0).then(|| b.read_wm.1.saturating_sub(b.input.len()));
        let mut dst = std::mem::replace(&mut b.input, EvBuffer::new());
        let before = dst.len();
        let mut replied = false;
        let res = match self.bev_state_mut(under) {
            Some(u) if !(u.input.is_empty() && mode == Flush::Normal) => {
                let out_before = u.output.len();
                let r = codec.decode(&mut u.input, &mut dst, &mut u.output, limit, mode);
                replied = u.output.len() != out_before;
                r
            }
            _ => FilterResult::Ok,
        };
        let made = dst.len() - before;
        let events = codec.take_events();
        self.filter_put_codec(fb, codec, res);
        let Some(b) = self.bev_state_mut(fb) else {
            return made;
        };
        b.input = dst;
        let ready = made > 0 && b.input.len() >= b.read_wm.0;
        if replied {
            self.bev_sync(under);
        }
        if !events.is_empty() {
            self.bev_callback(fb, Cb::Event(events));
        }
        if res == FilterResult::Error {
            // The direction stops (the callback may enable it again): a filter that keeps
            // failing would otherwise run again from the callback's own sync, and again.
            if let Some(b) = self.bev_state_mut(fb) {
                b.enabled.remove(What::READ);
            }
            self.bev_callback(fb, Cb::Event(BevEvents::READING | BevEvents::ERROR));
        } else if ready {
            self.bev_callback(fb, Cb::Read);
        }
        // Output the program wrote while a handshake was still going may go now.
        if events.contains(BevEvents::CONNECTED) {
            self.filter_output(fb, Flush::Normal);
        }
        self.filter_pump_read_side(fb);
        self.bev_generic_sync(fb, made > 0, false);
        made
    }

    /// The filter's underlying and its codec, taken out of the filter while it runs (the
    /// codec needs the filter's and the underlying's buffers at once).
    fn filter_take_codec(&mut self, fb: BufferEvent) -> Option<(BufferEvent, Box<dyn Codec>)> {
        let f = self.bev_state_mut(fb)?.filter.as_mut()?;
        Some((f.under, f.codec.take()?))
    }

    /// Puts the codec back after a run that returned `res`, keeping its reason on an error.
    fn filter_put_codec(&mut self, fb: BufferEvent, codec: Box<dyn Codec>, res: FilterResult) {
        let err = (res == FilterResult::Error)
            .then(|| codec.error())
            .flatten();
        if let Some(f) = self.bev_state_mut(fb).and_then(|b| b.filter.as_mut()) {
            f.codec = Some(codec);
            if err.is_some() {
                f.error = err;
            }
        }
    }

    /// Stops the underlying reading while the filter's input is at its high watermark.
    fn filter_pump_read_side(&mut self, fb: BufferEvent) {
        let Some(b) = self.bev_state(fb) else {
            return;
        };
        let Some(under) = b.filter.as_ref().map(|f| f.under) else {
            return;
        };
        let full = b.read_wm.1 != 0 && b.input.len() >= b.read_wm.1;
        if full || !b.enabled.contains(What::READ) {
            let _ = self.bev_disable(under, What::READ);
        }
    }

    /// Runs the codec's encode from the filter's output into the underlying's.
    pub(super) fn filter_output(&mut self, fb: BufferEvent, mode: Flush) -> usize {
        let Some((under, mut codec)) = self.filter_take_codec(fb) else {
            return 0;
        };
        let Some(b) = self.bev_state_mut(fb) else {
            return 0;
        };
        // A filter not writing keeps the program's output (libevent's filter does not
        // "urge data on a filter that doesn't like to write"); the codec's own protocol
        // output (a handshake) still goes.
        let writing = mode != Flush::Normal || b.enabled.contains(What::WRITE);
        let mut src = if writing {
            std::mem::replace(&mut b.output, EvBuffer::new())
        } else {
            EvBuffer::new()
        };
        let idle = src.is_empty() && mode == Flush::Normal && !codec.wants_write();
        let (made, res) = match self.bev_state_mut(under) {
            Some(u) if !idle => {
                let limit =
                    (u.write_wm().1 != 0).then(|| u.write_wm().1.saturating_sub(u.output.len()));
                let before = u.output.len();
                let r = codec.encode(&mut src, &mut u.output, limit, mode);
                (u.output.len().saturating_sub(before), r)
            }
            _ => (0, FilterResult::Ok),
        };
        let events = codec.take_events();
        self.filter_put_codec(fb, codec, res);
        let Some(b) = self.bev_state_mut(fb) else {
            return made;
        };
        if writing {
            let _ = src.add_buffer(&mut b.output);
            b.output = src;
        }
        let drained = b.output.len() <= b.write_wm().0;
        let had_output = made > 0;
        self.bev_sync(under);
        if !events.is_empty() {
            self.bev_callback(fb, Cb::Event(events));
        }
        if res == FilterResult::Error {
            // As for input: writing stops, or a failing filter recurses through the
            // callback's sync.
            if let Some(b) = self.bev_state_mut(fb) {
                b.enabled.remove(What::WRITE);
            }
            self.bev_callback(fb, Cb::Event(BevEvents::WRITING | BevEvents::ERROR));
        } else if had_output && drained {
            self.bev_callback(fb, Cb::Write);
        }
        self.bev_generic_sync(fb, false, made > 0);
        made
    }

    /// `bev_flush` of a filter: both filters run in `mode`, then the underlying flushes.
    pub(super) fn filter_flush(&mut self, fb: BufferEvent, mode: Flush) -> io::Result<bool> {
        let moved = self.filter_output(fb, mode) + self.filter_input(fb, mode);
        let Some(under) = self
            .bev_state(fb)
            .and_then(|b| b.filter.as_ref())
            .map(|f| f.under)
        else {
            return Ok(moved > 0);
        };
        let flushed = self.bev_flush(under, mode).unwrap_or(false);
        Ok(moved > 0 || flushed)
    }

    /// A filter is going away: its underlying is freed (`CLOSE_ON_FREE`) or left without
    /// callbacks.
    pub(super) fn filter_release(&mut self, f: Filter, close: bool) {
        if close {
            let _ = self.bev_free(f.under);
        } else if let Some(u) = self.bev_state_mut(f.under) {
            let old = u.handler.take();
            drop(old);
        }
    }
}
