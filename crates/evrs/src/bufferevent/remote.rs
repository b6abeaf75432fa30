//! [`BevRemote`]: a bufferevent reached from other threads (libevent's `BEV_OPT_THREADSAFE`
//! with `bufferevent_lock`/`unlock`), built on the base's [`Handle`].
//!
//! The rules (ordering, errors, deadlocks, panics) are on [`BevRemote`].

use super::{stale, BevCtx, BufferEvent, Flush};
use crate::base::EventBase;
use crate::flags::What;
use crate::Handle;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What a bufferevent shares with its [`BevRemote`]s.
#[derive(Default)]
pub(crate) struct RemoteShared {
    /// Set (once, on the loop thread) when the bufferevent is torn down.
    freed: AtomicBool,
}

impl RemoteShared {
    /// The bufferevent is gone: every remote call fails from now on.
    pub(super) fn set_freed(&self) {
        self.freed.store(true, Ordering::Release);
    }
}

/// A thread-safe handle to one bufferevent (libevent's `BEV_OPT_THREADSAFE` bufferevent,
/// used from another thread): `Send + Sync + Clone`, made by
/// [`EventBase::bev_remote`]. Every call runs on the loop thread between callbacks.
///
/// A bufferevent lives in its single-owner base, so there is no per-bufferevent lock: every
/// call of a `BevRemote` is a command that the loop thread runs between two callbacks, with
/// the whole base to itself. That gives libevent's guarantees without its lock:
/// * **Grouping** (`bufferevent_lock` … `unlock`): [`BevRemote::call`] runs a closure with
///   the bufferevent's [`BevCtx`] — buffers, enable state, watermarks, the base — and no
///   callback of the base runs while it does, so what it does is atomic with respect to
///   the callbacks and to other threads' calls.
/// * **Callbacks without the lock** (`BEV_OPT_UNLOCK_CALLBACKS`): callbacks run on the loop
///   thread and hold nothing another thread waits for; a callback may use a `BevRemote`
///   (only [`write`](BevRemote::write) works there, see below).
///
/// # Ordering
/// Commands of one base run in the order each thread issued them (the [`Handle`]'s queue):
/// the bytes of one thread's [`write`](BevRemote::write)s reach the output buffer in that
/// thread's order, and a thread's `write` followed by its `enable`, `free`, … takes effect
/// in that order. Writes of different threads interleave at whole-`write` granularity
/// (each `write` is appended in one piece, never split by another thread's).
///
/// # Errors
/// Each call returns an `io::Error`, never panics or hangs, once its target is gone:
/// `InvalidInput` ("stale bufferevent handle") once the bufferevent was freed — by any
/// thread, or by the loop itself — and `NotConnected` once the base is dropped (a call that
/// is waiting when the base is dropped returns then). A freed bufferevent is known on every
/// thread at once (a flag its teardown sets), so even the fire-and-forget `write` fails
/// synchronously after the free has happened.
///
/// [`write`](BevRemote::write) does not wait: a failure on the loop thread (the bufferevent
/// was freed after the write was queued and before it ran) has nobody to return to, so it
/// is logged (`log::warn!`, naming `BevRemote::write`, as the [`Handle`]'s own failures)
/// and counted in [`Handle::failed_commands`] — as are writes still queued when the base is
/// dropped. Writes that waited in the queue together count once (see below). Use
/// [`write_blocking`](BevRemote::write_blocking) to get the error back instead. Every
/// other call waits for the loop thread and returns its result.
///
/// # Cost
/// A `write` copies its bytes into the base's command queue. Consecutive small writes
/// (≤ 4 KiB each) to the same bufferevent — from any of its remotes and threads — that
/// meet in the queue, with no other command of the base between them, are appended to one
/// command (up to about 256 KiB): one allocation, one output append and one write to the
/// socket on the loop thread for the lot, with the order unchanged.
///
/// # The deadlock rule
/// The waiting calls (all but `write`) wait for the loop thread. On the loop thread itself
/// — in a callback — they would wait for themselves: they fail at once with `WouldBlock`
/// instead (use the [`BevCtx`] or the [`EventBase`] there). A wait that would close a cycle
/// of loops waiting for each other fails with `Deadlock` ([`Handle::call`]): two loops
/// whose callbacks write into each other's bufferevents (libevent's #1750 deadlock) get
/// `Deadlock` from `write_blocking` instead of hanging, and never wait with `write`. A
/// cycle through a lock of your own is not seen: do not hold a lock that a callback of the
/// base needs while a waiting call waits. A waiting call made while the loop is not running
/// waits until it runs (or the base is dropped).
///
/// # Panics
/// A closure given to [`call`](BevRemote::call) that panics is caught on the loop thread:
/// the loop keeps running, the bufferevent stays as the closure left it (it is consistent:
/// the closure only had the safe API) and is brought up to date as after any call, and the
/// panic resumes on the calling thread — the thread whose code panicked — as if the
/// closure had run there.
///
/// ```
/// use evrs::bufferevent::{BevCtx, BevEvents, BevOptions};
/// use evrs::{EventBase, ListenerFlags, LoopFlags, What};
/// use std::io::{BufRead, BufReader, Write};
/// use std::os::fd::IntoRawFd;
///
/// // A server whose replies are computed on a worker thread: the loop reads requests (one
/// // number per line) and hands them over; the worker squares them and writes the replies
/// // back through a `BevRemote`, from its own thread.
/// let mut base = EventBase::new()?;
/// let (to_worker, jobs) = std::sync::mpsc::channel::<(evrs::bufferevent::BevRemote, u64)>();
/// let worker = std::thread::spawn(move || {
///     for (conn, n) in jobs {
///         let _ = conn.write(format!("{}\n", n * n).as_bytes());
///     }
/// });
/// let l = base.listen("127.0.0.1:0".parse().unwrap(), ListenerFlags::CLOSE_ON_FREE, -1,
///     move |base, _l, sock, _peer| {
///         let bev = base.bufferevent_socket(sock.into_raw_fd(), BevOptions::CLOSE_ON_FREE)
///             .unwrap();
///         let remote = base.bev_remote(bev).unwrap();
///         let to_worker = to_worker.clone();
///         base.bev_setcb(bev,
///             Some(move |ctx: &mut BevCtx<'_>| {
///                 while let Ok(Some(line)) = ctx.input().readln(evrs::buffer::EolStyle::Lf, None) {
///                     let n = String::from_utf8_lossy(&line).trim().parse().unwrap_or(0);
///                     to_worker.send((remote.clone(), n)).unwrap();
///                 }
///             }),
///             None::<fn(&mut BevCtx<'_>)>,
///             Some(|ctx: &mut BevCtx<'_>, what: BevEvents| {
///                 if what.intersects(BevEvents::EOF | BevEvents::ERROR) {
///                     ctx.free();
///                 }
///             }),
///         ).unwrap();
///         base.bev_enable(bev, What::READ | What::WRITE).unwrap();
///     })?;
/// let addr = base.listener_local_addr(l)?.as_inet().unwrap();
/// let stop = base.handle()?;
/// let client = std::thread::spawn(move || {
///     let mut s = std::net::TcpStream::connect(addr).unwrap();
///     s.write_all(b"3\n12\n").unwrap();
///     let mut replies = BufReader::new(s.try_clone().unwrap()).lines();
///     assert_eq!(replies.next().unwrap().unwrap(), "9");
///     assert_eq!(replies.next().unwrap().unwrap(), "144");
///     stop.loopbreak().unwrap();
/// });
/// base.run(LoopFlags::NO_EXIT_ON_EMPTY)?;
/// client.join().unwrap();
/// base.listener_free(l)?;
/// drop(base); // the bufferevent and its callback (which holds the worker's channel) go
/// worker.join().unwrap();
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct BevRemote {
    handle: Handle,
    bev: BufferEvent,
    shared: Arc<RemoteShared>,
}

impl std::fmt::Debug for BevRemote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BevRemote")
            .field("bev", &self.bev)
            .field("freed", &self.shared.freed.load(Ordering::Relaxed))
            .finish()
    }
}

impl EventBase {
    /// A [`BevRemote`] for `bev`: other threads' way to write to it, enable or disable it,
    /// free it, or run a closure with its buffers (see [`BevRemote`]). Any bufferevent can
    /// have one, with or without [`BevOptions::THREADSAFE`](super::BevOptions::THREADSAFE);
    /// all of a bufferevent's remotes share one state. Fails for a freed or foreign
    /// bufferevent, or if the base's [`Handle`] cannot be made.
    pub fn bev_remote(&mut self, bev: BufferEvent) -> io::Result<BevRemote> {
        self.bev_live(bev)?;
        let handle = self.handle()?;
        let shared = self
            .bev_live(bev)?
            .rare_mut()
            .remote
            .get_or_insert_with(Default::default)
            .clone();
        Ok(BevRemote {
            handle,
            bev,
            shared,
        })
    }

    /// Runs `f` with `bev`'s context outside its callbacks, as one of its callbacks runs
    /// (counted in `running`, so a free inside waits for `f` to return), then lets the
    /// bufferevent catch up. A panic in `f` is caught and returned.
    fn bev_remote_call<R>(
        &mut self,
        bev: BufferEvent,
        f: impl FnOnce(&mut BevCtx<'_>) -> R,
    ) -> io::Result<std::thread::Result<R>> {
        self.bev_live(bev)?.running += 1;
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            f(&mut BevCtx::new(self, bev))
        }));
        if let Some(state) = self.bev_state_mut(bev) {
            state.running -= 1;
            if state.running == 0 && state.free_requested {
                self.bev_teardown(bev);
            } else {
                self.bev_sync(bev);
            }
        }
        Ok(ran)
    }
}

/// The loop-thread half of [`BevRemote::write`]: the bytes of one or more coalesced
/// writes to the bufferevent that `key` names (index, generation).
fn append_output(base: &mut EventBase, key: u64, data: &[u8]) -> io::Result<()> {
    let bev = BufferEvent {
        idx: (key >> 32) as u32,
        gen: key as u32,
        base: base.id(),
    };
    base.bev_write(bev, data)
}

impl BevRemote {
    /// The bufferevent this handle reaches (to use with the [`EventBase`] on its thread).
    pub fn bufferevent(&self) -> BufferEvent {
        self.bev
    }

    /// The base's [`Handle`] (e.g. for [`Handle::failed_commands`]).
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Whether the bufferevent is known to be freed (then every call fails). `false` may be
    /// out of date by the time it is read.
    pub fn is_freed(&self) -> bool {
        self.shared.freed.load(Ordering::Acquire)
    }

    fn check(&self) -> io::Result<()> {
        if self.is_freed() {
            return Err(stale());
        }
        Ok(())
    }

    /// Runs `f` with the base on the loop thread and waits for its result.
    fn wait<R, F>(&self, f: F) -> io::Result<R>
    where
        F: FnOnce(&mut EventBase, BufferEvent) -> io::Result<R> + Send + 'static,
        R: Send + 'static,
    {
        self.check()?;
        let bev = self.bev;
        self.handle.call(move |base| f(base, bev))?
    }

    /// Copies `data` and queues it for the output buffer (libevent's `bufferevent_write`
    /// from another thread); returns once it is queued, without waiting for the loop. Each
    /// thread's writes arrive in its order, each in one piece. Fails at once if the
    /// bufferevent is known to be freed or the base is gone; a failure on the loop thread
    /// is logged and counted in [`Handle::failed_commands`] (see [`BevRemote`]) —
    /// [`write_blocking`](Self::write_blocking) returns it instead. Works on the loop
    /// thread too (the data is appended at the loop's next iteration).
    pub fn write(&self, data: &[u8]) -> io::Result<()> {
        // (Even an empty write is queued: it must fail like any other once the base is gone.)
        self.check()?;
        let key = u64::from(self.bev.idx) << 32 | u64::from(self.bev.gen);
        self.handle
            .append("BevRemote::write", key, append_output, data)
    }

    /// [`write`](Self::write) that waits for the loop thread to append the data, and
    /// returns its result ([`EventBase::bev_write`]'s).
    pub fn write_blocking(&self, data: &[u8]) -> io::Result<()> {
        let data = data.to_vec();
        self.wait(move |base, bev| base.bev_write(bev, &data))
    }

    /// Enables reading and/or writing ([`EventBase::bev_enable`]); in effect when it returns.
    pub fn enable(&self, what: What) -> io::Result<()> {
        self.wait(move |base, bev| base.bev_enable(bev, what))
    }

    /// Disables reading and/or writing ([`EventBase::bev_disable`]); in effect when it
    /// returns (a callback of the bufferevent that was running has returned).
    pub fn disable(&self, what: What) -> io::Result<()> {
        self.wait(move |base, bev| base.bev_disable(bev, what))
    }

    /// What is enabled ([`EventBase::bev_get_enabled`]).
    pub fn get_enabled(&self) -> io::Result<What> {
        self.wait(|base, bev| base.bev_get_enabled(bev))
    }

    /// Sets a watermark ([`EventBase::bev_setwatermark`]).
    pub fn set_watermark(&self, what: What, low: usize, high: usize) -> io::Result<()> {
        self.wait(move |base, bev| base.bev_setwatermark(bev, what, low, high))
    }

    /// Writes what the socket takes now ([`EventBase::bev_flush`]); returns whether
    /// anything was written.
    pub fn flush(&self, mode: Flush) -> io::Result<bool> {
        self.wait(move |base, bev| base.bev_flush(bev, mode))
    }

    /// Bytes waiting in the output buffer.
    pub fn output_len(&self) -> io::Result<usize> {
        self.wait(|base, bev| Ok(base.bev_live(bev)?.output.len()))
    }

    /// Bytes waiting in the input buffer.
    pub fn input_len(&self) -> io::Result<usize> {
        self.wait(|base, bev| Ok(base.bev_live(bev)?.input.len()))
    }

    /// Frees the bufferevent ([`EventBase::bev_free`], libevent's `bufferevent_free`): its
    /// events stop, unsent output is dropped (flush, or wait for
    /// [`output_len`](Self::output_len) to reach 0, first to send it), the socket is closed
    /// with `CLOSE_ON_FREE`. When it returns no callback of the bufferevent is running or
    /// will run, and every call of every clone of this handle fails.
    pub fn free(&self) -> io::Result<()> {
        self.wait(|base, bev| base.bev_free(bev))
    }

    /// Runs `f` on the loop thread with exclusive access to the bufferevent — its
    /// buffers, enable state and watermarks, through the same [`BevCtx`] its callbacks get
    /// — and returns `f`'s result: libevent's `bufferevent_lock` … `bufferevent_unlock`
    /// around several calls. No callback of the base runs while `f` does; afterwards the
    /// bufferevent catches up (new output is written, reading resumes below the high mark)
    /// as after a callback. `f` may free the bufferevent (`ctx.free()`: torn down when `f`
    /// returns). A panic in `f` resumes on this thread; the loop and the bufferevent carry
    /// on (see [`BevRemote`]).
    #[doc(alias = "lock")]
    #[doc(alias = "bufferevent_lock")]
    pub fn call<R, F>(&self, f: F) -> io::Result<R>
    where
        F: FnOnce(&mut BevCtx<'_>) -> R + Send + 'static,
        R: Send + 'static,
    {
        match self.wait(move |base, bev| base.bev_remote_call(bev, f))? {
            Ok(r) => Ok(r),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}
