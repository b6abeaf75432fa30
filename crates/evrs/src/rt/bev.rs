//! [`BevStream`]: a bufferevent used as an async stream, so callback code can hand a
//! connection it made (an accepted socket, a pair, a filter, a TLS bufferevent) to a task.
//!
//! The stream takes over the bufferevent's callbacks. Its read callback moves what arrived
//! into the stream's own buffer (chunks move, bytes are not copied) and wakes the reader;
//! past [`BEV_READ_LIMIT`] unread bytes it stops reading until the task catches up. The
//! task reads from a front buffer that takes the arrived chunks whole, which is also what
//! [`AsyncBufRead`] hands out: `fill_buf` is a slice of a chunk, no copy. What a
//! task writes is appended to a buffer that the runtime's driver hands to the bufferevent
//! (as an [`Op`], before the loop waits); past [`BEV_WRITE_LIMIT`] bytes not yet written to
//! the kernel, writes wait for the bufferevent's write callback.

use super::io::Op;
use super::task::{current, Inner};
use crate::buffer::EvBuffer;
use crate::bufferevent::{BevCtx, BevEvents, BevHandler, BufferEvent, Flush};
use crate::{EventBase, What};
use futures_io::{AsyncBufRead, AsyncRead, AsyncWrite};
use std::cell::{Cell, RefCell};
use std::io;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

/// Unread bytes a [`BevStream`] buffers before it stops reading from its bufferevent.
pub const BEV_READ_LIMIT: usize = 256 * 1024;
/// Written bytes a [`BevStream`] lets wait for the kernel before its writes wait.
pub const BEV_WRITE_LIMIT: usize = 256 * 1024;

/// What the stream shares with its bufferevent's callbacks and the driver.
pub(crate) struct BevShared {
    bev: BufferEvent,
    input: RefCell<EvBuffer>,
    /// Bytes in the stream's front buffer (taken from `input`, not yet read): they count
    /// toward [`BEV_READ_LIMIT`] too.
    front_len: Cell<usize>,
    /// Written by the task, not yet handed to the bufferevent.
    output: RefCell<EvBuffer>,
    /// Bytes in the bufferevent's output when last seen (not yet taken by the kernel).
    in_flight: Cell<usize>,
    reader: RefCell<Option<Waker>>,
    writer: RefCell<Option<Waker>>,
    eof: Cell<bool>,
    error: RefCell<Option<io::Error>>,
    /// Reading is off because `input` reached the limit.
    paused: Cell<bool>,
    /// A sync is queued with the driver.
    queued: Cell<bool>,
    /// `poll_close` asked for the write side to end.
    closing: Cell<bool>,
    /// The stream is gone: the next sync frees the bufferevent.
    dropped: Cell<bool>,
}

impl BevShared {
    fn wake_reader(&self) {
        if let Some(w) = self.reader.borrow_mut().take() {
            w.wake();
        }
    }

    fn wake_writer(&self) {
        if let Some(w) = self.writer.borrow_mut().take() {
            w.wake();
        }
    }

    /// The stream's error, if it failed: reported by every later operation, not only the
    /// first (a write after a reported error must fail too, never vanish).
    fn error(&self) -> Option<io::Error> {
        let e = self.error.borrow();
        let e = e.as_ref()?;
        Some(match e.raw_os_error() {
            Some(code) => io::Error::from_raw_os_error(code),
            None => io::Error::new(e.kind(), e.to_string()),
        })
    }

    /// Bytes arrived and not yet read by the task.
    fn unread(&self) -> usize {
        self.input.borrow().len() + self.front_len.get()
    }

    fn fail(&self, e: io::Error) {
        self.error.borrow_mut().get_or_insert(e);
        self.wake_reader();
        self.wake_writer();
    }

    /// The driver's part: hand over what was written, resume reading, shut down, free.
    pub(crate) fn sync(&self, base: &mut EventBase) {
        self.queued.set(false);
        if self.dropped.get() {
            let _ = base.bev_free(self.bev);
            return;
        }
        let r = (|| {
            let mut out = self.output.borrow_mut();
            if !out.is_empty() {
                base.bev_write_buffer(self.bev, &mut out)?;
            }
            drop(out);
            self.in_flight.set(base.bev_output(self.bev)?.len());
            if self.paused.get() && self.unread() < BEV_READ_LIMIT {
                self.paused.set(false);
                base.bev_enable(self.bev, What::READ)?;
            }
            if self.closing.get() {
                base.bev_flush(self.bev, Flush::Finished)?;
            }
            Ok(())
        })();
        if let Err(e) = r {
            self.fail(e);
        } else if self.in_flight.get() < BEV_WRITE_LIMIT {
            self.wake_writer();
        }
    }
}

/// The bufferevent's callbacks.
struct Handler(Weak<BevShared>);

impl BevHandler for Handler {
    fn read(&mut self, bev: &mut BevCtx<'_>) {
        let Some(s) = self.0.upgrade() else { return };
        let mut input = s.input.borrow_mut();
        let moved = input.add_buffer(bev.input());
        let full = input.len() + s.front_len.get() >= BEV_READ_LIMIT;
        drop(input);
        if let Err(e) = moved {
            s.fail(e.into());
        }
        if full && !s.paused.replace(true) {
            if let Err(e) = bev.disable(What::READ) {
                s.fail(e);
            }
        }
        s.wake_reader();
    }

    fn write(&mut self, bev: &mut BevCtx<'_>) {
        let Some(s) = self.0.upgrade() else { return };
        s.in_flight.set(bev.output().len());
        s.wake_writer();
    }

    fn event(&mut self, bev: &mut BevCtx<'_>, what: BevEvents) {
        let Some(s) = self.0.upgrade() else { return };
        if what.contains(BevEvents::ERROR) {
            let me = bev.handle();
            let base_err = bev.base().bev_socket_error(me).ok().flatten();
            s.fail(match base_err {
                Some(code) if code != 0 => io::Error::from_raw_os_error(code),
                _ => io::Error::other("bufferevent error"),
            });
        } else if what.contains(BevEvents::TIMEOUT) {
            s.fail(io::Error::new(
                io::ErrorKind::TimedOut,
                "bufferevent timeout",
            ));
        } else if what.contains(BevEvents::EOF) {
            s.eof.set(true);
            s.wake_reader();
        }
        if what.contains(BevEvents::CONNECTED) {
            s.wake_writer();
        }
    }
}

/// A [`BufferEvent`] as an async byte stream (`futures-io`'s `AsyncRead`/`AsyncBufRead`/
/// `AsyncWrite`, and tokio's with the `tokio-io` feature), for a task of the base's current
/// [`Runtime`]. It is buffered already: `read_line`, `read_until` and `lines` work on it
/// directly, their `fill_buf` handing out the arrived chunks without a copy.
///
/// Made from callback code ([`BevCtx::base`] gives the `&mut EventBase`) or before the
/// loop runs, it replaces the bufferevent's callbacks and enables reading and writing.
/// Everything the bufferevent does still applies — a filter's codec, TLS, rate limits,
/// timeouts (a timeout ends the stream with `TimedOut`). `poll_close` sends what is
/// buffered and then shuts down the write side ([`Flush::Finished`]). Dropping the
/// stream frees the bufferevent (on the driver's next run; unread input is discarded).
///
/// [`Runtime`]: super::Runtime
pub struct BevStream {
    shared: Rc<BevShared>,
    /// Arrived bytes the task is reading (taken from the shared input by whole chunks).
    front: EvBuffer,
    rt: Weak<Inner>,
}

impl std::fmt::Debug for BevStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BevStream")
            .field("bev", &self.shared.bev)
            .finish_non_exhaustive()
    }
}

impl BevStream {
    /// Wraps `bev` for the current runtime's tasks (an error if there is none, or `bev`
    /// was freed).
    pub fn new(base: &mut EventBase, bev: BufferEvent) -> io::Result<BevStream> {
        let rt = current()?;
        let shared = Rc::new(BevShared {
            bev,
            input: RefCell::new(EvBuffer::new()),
            front_len: Cell::new(0),
            output: RefCell::new(EvBuffer::new()),
            in_flight: Cell::new(0),
            reader: RefCell::new(None),
            writer: RefCell::new(None),
            eof: Cell::new(false),
            error: RefCell::new(None),
            paused: Cell::new(false),
            queued: Cell::new(false),
            closing: Cell::new(false),
            dropped: Cell::new(false),
        });
        base.bev_set_handler(bev, Handler(Rc::downgrade(&shared)))?;
        // The write callback fires once half the in-flight limit has gone to the kernel.
        base.bev_setwatermark(bev, What::WRITE, BEV_WRITE_LIMIT / 2, 0)?;
        base.bev_enable(bev, What::READ | What::WRITE)?;
        // Take what arrived before the stream existed.
        let early = base.bev_input(bev)?.len();
        if early > 0 {
            let mut input = base.bev_input(bev)?;
            shared.input.borrow_mut().add_buffer(&mut input)?;
        }
        Ok(BevStream {
            shared,
            front: EvBuffer::new(),
            rt: Rc::downgrade(&rt),
        })
    }

    /// The bufferevent underneath.
    pub fn bufferevent(&self) -> BufferEvent {
        self.shared.bev
    }

    fn queue_sync(&self) -> io::Result<()> {
        if !self.shared.queued.replace(true) {
            match self.rt.upgrade() {
                Some(rt) => rt.queue_op(Op::Bev(self.shared.clone())),
                None => {
                    self.shared.queued.set(false);
                    return Err(super::io::gone());
                }
            }
        }
        Ok(())
    }

    fn wait(slot: &RefCell<Option<Waker>>, cx: &Context<'_>) {
        let mut w = slot.borrow_mut();
        match w.as_ref() {
            Some(old) if old.will_wake(cx.waker()) => {}
            _ => *w = Some(cx.waker().clone()),
        }
    }

    /// Makes the front buffer non-empty (`true`), or reports the end (`false`) or the error;
    /// pending until one of them.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        if !self.front.is_empty() {
            return Poll::Ready(Ok(true));
        }
        let s = &self.shared;
        let mut input = s.input.borrow_mut();
        if !input.is_empty() {
            // Chunks move whole (an empty front takes the chain): no bytes are copied.
            self.front.add_buffer(&mut input)?;
            drop(input);
            s.front_len.set(self.front.len());
            return Poll::Ready(Ok(true));
        }
        drop(input);
        if let Some(e) = s.error() {
            return Poll::Ready(Err(e));
        }
        if s.eof.get() {
            return Poll::Ready(Ok(false));
        }
        Self::wait(&s.reader, cx);
        Poll::Pending
    }

    /// `n` bytes of the front buffer were read: reading resumes once under the limit.
    fn consumed(&mut self) -> io::Result<()> {
        let s = &self.shared;
        s.front_len.set(self.front.len());
        if s.paused.get() && s.unread() < BEV_READ_LIMIT {
            self.queue_sync()?;
        }
        Ok(())
    }

    fn poll_read_ref(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if !std::task::ready!(self.poll_fill(cx))? {
            return Poll::Ready(Ok(0));
        }
        let n = self.front.remove(buf)?;
        self.consumed()?;
        Poll::Ready(Ok(n))
    }

    fn poll_write_ref(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let s = &self.shared;
        if let Some(e) = s.error() {
            return Poll::Ready(Err(e));
        }
        if s.closing.get() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "BevStream: write after close",
            )));
        }
        let queued = s.output.borrow().len() + s.in_flight.get();
        if queued >= BEV_WRITE_LIMIT {
            Self::wait(&s.writer, cx);
            return Poll::Pending;
        }
        let n = buf.len().min(BEV_WRITE_LIMIT - queued);
        s.output.borrow_mut().add(&buf[..n])?;
        self.queue_sync()?;
        Poll::Ready(Ok(n))
    }

    /// Ready once everything written has gone to the kernel (or into the filter below).
    fn poll_flush_ref(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let s = &self.shared;
        if let Some(e) = s.error() {
            return Poll::Ready(Err(e));
        }
        if s.output.borrow().is_empty() && s.in_flight.get() == 0 {
            return Poll::Ready(Ok(()));
        }
        Self::wait(&s.writer, cx);
        if !s.output.borrow().is_empty() {
            self.queue_sync()?;
        }
        Poll::Pending
    }

    fn poll_close_ref(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.shared.closing.replace(true) {
            self.queue_sync()?;
        }
        self.poll_flush_ref(cx)
    }
}

impl Drop for BevStream {
    fn drop(&mut self) {
        self.shared.dropped.set(true);
        self.shared.reader.borrow_mut().take();
        self.shared.writer.borrow_mut().take();
        // Queued already: that sync sees `dropped`. No runtime: the base frees it at its end.
        let _ = self.queue_sync();
    }
}

impl AsyncRead for BevStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_read_ref(cx, buf)
    }
}

impl AsyncBufRead for BevStream {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        if !std::task::ready!(this.poll_fill(cx))? {
            return Poll::Ready(Ok(&[]));
        }
        let first = this.front.chunks().find(|c| !c.is_empty());
        Poll::Ready(Ok(first.unwrap_or(&[])))
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        let this = self.get_mut();
        let amt = amt.min(this.front.len());
        // Draining at most what the front holds cannot fail (nothing is frozen there).
        let _ = this.front.drain(amt);
        if let Err(e) = this.consumed() {
            this.shared.fail(e);
        }
    }
}

impl AsyncWrite for BevStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_ref(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush_ref(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_close_ref(cx)
    }
}

#[cfg(feature = "tokio-io")]
impl tokio::io::AsyncRead for BevStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = std::task::ready!(self.get_mut().poll_read_ref(cx, buf.initialize_unfilled()))?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

#[cfg(feature = "tokio-io")]
impl tokio::io::AsyncBufRead for BevStream {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        AsyncBufRead::poll_fill_buf(self, cx)
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        AsyncBufRead::consume(self, amt)
    }
}

#[cfg(feature = "tokio-io")]
impl tokio::io::AsyncWrite for BevStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_ref(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush_ref(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_close_ref(cx)
    }
}
