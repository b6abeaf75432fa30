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

/// The filter side of a filtering bufferevent.
pub(super) struct Filter {
    pub(super) under: BufferEvent,
    input: Option<FilterFn>,
    output: Option<FilterFn>,
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
        bev.base().bev_callback(self.filter, Cb::Event(what));
    }
}

/// Runs `f` (or a copy) from `src` into `dst` while it makes progress. Returns (bytes
/// produced, whether it reported an error).
fn run_filter(
    f: &mut Option<FilterFn>,
    src: &mut EvBuffer,
    dst: &mut EvBuffer,
    limit: Option<usize>,
    mode: Flush,
) -> (usize, bool) {
    let start = dst.len();
    // Nothing to filter and no flush asked for: a filter is not called for nothing (a
    // compressor would emit an empty block every time the underlying drained).
    if src.is_empty() && mode == Flush::Normal {
        return (0, false);
    }
    let Some(f) = f else {
        let n = limit.map_or(src.len(), |l| l.min(src.len()));
        let _ = src.remove_buffer(dst, n);
        return (dst.len() - start, false);
    };
    // Bounded: each round must consume input or produce output, else it stops.
    loop {
        let room = limit.map(|l| l.saturating_sub(dst.len() - start));
        if room == Some(0) {
            break;
        }
        let (before_src, before_dst) = (src.len(), dst.len());
        match f(src, dst, room, mode) {
            FilterResult::Error => return (dst.len() - start, true),
            FilterResult::NeedMore => break,
            FilterResult::Ok => {}
        }
        let progressed = src.len() != before_src || dst.len() != before_dst;
        if src.is_empty() || !progressed {
            break;
        }
    }
    (dst.len() - start, false)
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
        if u.pair.is_some() && u.pair.flatten().is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the underlying bufferevent is a pair half whose partner is gone",
            ));
        }
        let fb = self.bufferevent_socket(-1, opts)?;
        self.bev_live(fb)?.filter = Some(Filter {
            under,
            input: input.map(|f| Box::new(f) as FilterFn),
            output: output.map(|f| Box::new(f) as FilterFn),
        });
        self.bev_set_handler(under, Link { filter: fb })?;
        self.bev_enable(under, What::WRITE)?;
        self.bev_sync(fb);
        Ok(fb)
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
        let Some(under) = b.filter.as_ref().map(|f| f.under) else {
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
        if wants_read && !under_reads {
            let _ = self.bev_enable(under, What::READ);
            // Input that waited while the filter was not reading.
            self.filter_input(fb, Flush::Normal);
        } else if !wants_read && under_reads {
            let _ = self.bev_disable(under, What::READ);
        }
    }

    /// Runs the input filter from the underlying's input into the filter's.
    pub(super) fn filter_input(&mut self, fb: BufferEvent, mode: Flush) -> usize {
        let Some(b) = self.bev_state_mut(fb) else {
            return 0;
        };
        let Some(f) = b.filter.as_mut() else {
            return 0;
        };
        let under = f.under;
        let mut func = f.input.take();
        let limit = (b.read_wm.1 != 0).then(|| b.read_wm.1.saturating_sub(b.input.len()));
        let mut dst = std::mem::replace(&mut b.input, EvBuffer::new());
        let (made, failed) = match self.bev_state_mut(under) {
            Some(u) => run_filter(&mut func, &mut u.input, &mut dst, limit, mode),
            None => (0, false),
        };
        let Some(b) = self.bev_state_mut(fb) else {
            return made;
        };
        b.input = dst;
        if let Some(f) = b.filter.as_mut() {
            f.input = func;
        }
        let ready = made > 0 && b.input.len() >= b.read_wm.0;
        if failed {
            self.bev_callback(fb, Cb::Event(BevEvents::READING | BevEvents::ERROR));
        } else if ready {
            self.bev_callback(fb, Cb::Read);
        }
        self.filter_pump_read_side(fb);
        made
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

    /// Runs the output filter from the filter's output into the underlying's.
    pub(super) fn filter_output(&mut self, fb: BufferEvent, mode: Flush) -> usize {
        let Some(b) = self.bev_state_mut(fb) else {
            return 0;
        };
        let Some(f) = b.filter.as_mut() else {
            return 0;
        };
        let under = f.under;
        let mut func = f.output.take();
        let mut src = std::mem::replace(&mut b.output, EvBuffer::new());
        let (made, failed) = match self.bev_state_mut(under) {
            Some(u) => {
                let limit =
                    (u.write_wm.1 != 0).then(|| u.write_wm.1.saturating_sub(u.output.len()));
                run_filter(&mut func, &mut src, &mut u.output, limit, mode)
            }
            None => (0, false),
        };
        let Some(b) = self.bev_state_mut(fb) else {
            return made;
        };
        let _ = src.add_buffer(&mut b.output);
        b.output = src;
        if let Some(f) = b.filter.as_mut() {
            f.output = func;
        }
        let drained = b.output.len() <= b.write_wm.0;
        self.bev_sync(under);
        if failed {
            self.bev_callback(fb, Cb::Event(BevEvents::WRITING | BevEvents::ERROR));
        } else if made > 0 && drained {
            self.bev_callback(fb, Cb::Write);
        }
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
