//! `struct evbuffer` (buffer.h, buffer_compat.h) over evrs's [`EvBuffer`].
//!
//! # What a C `struct evbuffer *` points to
//!
//! A [`CBuffer`]: the Rust buffer (its [`Store`]) plus what only the C API needs — the C
//! change callbacks and their `evbuffer_cb_entry` records, the pointer cache behind
//! `struct evbuffer_ptr`, the deferred-callback event, the optional lock. C re-enters the
//! library from its callbacks with nothing but the same pointer, so a `CBuffer` is only
//! used through shared references: the buffer sits in a `RefCell` (or behind a
//! [`BufferHost`]) and is borrowed for the length of one evbuffer operation, never while C
//! code runs.
//!
//! The store is either [`Store::Owned`] (`evbuffer_new`) or [`Store::Hosted`]: a buffer
//! that lives elsewhere and is reached through a [`BufferHost`]. That is how bufferevents
//! will hand out `bufferevent_get_input`/`_output` as `struct evbuffer *`: an evrs
//! bufferevent keeps its two `EvBuffer`s inside its state in the base, so the C
//! bufferevent layer makes one hosted `CBuffer` per direction whose host borrows the
//! buffer from the base (`EventBase::bev_input`/`bev_output`, or from the `BevCtx` its
//! callback holds) for the length of the call. Every function here then works on
//! `bev->input` unchanged. Changes the bufferevent makes itself from Rust (reading into
//! the input, writing out the output) reach the C callbacks when the host calls
//! [`run_callbacks`].
//!
//! # C callbacks
//!
//! C callbacks are not Rust closures on the `EvBuffer` (they may call back into the very
//! buffer that is running them, which a closure borrowed by `EvBuffer` cannot allow).
//! Instead one recording closure is registered on the `EvBuffer` while the C buffer has
//! callbacks; it queues each change's [`CallbackInfo`]. When the operation has returned
//! and the borrow has ended, the queue is run: every enabled C callback, newest first,
//! once per change, exactly as libevent runs them inside the call. A callback may add,
//! drain, remove callbacks or free the buffer (the free waits until the buffer's
//! operations and callbacks have returned). With `evbuffer_defer_callbacks` the
//! `EvBuffer`'s own deferred mode accumulates the counts and the queue is run from an
//! event of the base, at its middle priority.
//!
//! # Bad input
//!
//! NULL buffers, invalid positions, out-of-range sizes and re-entering a buffer from a
//! reference's cleanup function while it is being changed return libevent's error value
//! (-1, NULL, 0, or a position of -1) and log a warning; nothing panics or aborts.

pub mod callbacks;
pub mod data;
pub mod fileio;
pub mod find;
mod lock;

pub use callbacks::{CbEntry, CbFunc, ObsoleteCb};
pub use fileio::CSegment;
pub use find::CPtr;

use crate::base::CBase;
use crate::ffi::Fallback;
use crate::log;
use evrs::buffer::{BufferPtr, CallbackId, CallbackInfo, EvBuffer};
use evrs::Event;
use std::cell::{Cell, OnceCell, RefCell};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// A buffer that lives outside its [`CBuffer`] (a bufferevent's input or output).
pub trait BufferHost {
    /// Runs `f` on the buffer and returns true, or returns false without running it if the
    /// buffer cannot be reached now (freed, or in use).
    fn with_buffer(&self, f: &mut dyn FnMut(&mut EvBuffer)) -> bool;

    /// Who lends the buffer, and which of its buffers it is (for
    /// [`with_pair`](Self::with_pair)); `None` for a host with no sibling buffers.
    fn sibling_key(&self) -> Option<(usize, bool)> {
        None
    }

    /// Runs `f` on this buffer and `other`'s at once, if both belong to one owner that can
    /// lend them together (a bufferevent's input and output: borrowed one inside the
    /// other, the outer one would still be frozen while the owner catches up with the inner
    /// one). `Some(reached)`, or `None` if they are not such a pair (borrow them one by one).
    fn with_pair(
        &self,
        other: &dyn BufferHost,
        f: &mut dyn FnMut(&mut EvBuffer, &mut EvBuffer),
    ) -> Option<bool> {
        let _ = (other, f);
        None
    }

    /// The lock that guards the buffer where it lives (a bufferevent's on a threaded base:
    /// the base's), if any.
    fn lock(&self) -> Option<&crate::locking::BaseLock> {
        None
    }
}

/// Where a [`CBuffer`]'s bytes are.
pub enum Store {
    /// The buffer itself (`evbuffer_new`).
    Owned(RefCell<EvBuffer>),
    /// A buffer owned by something else, reached through its host.
    Hosted(Box<dyn BufferHost>),
}

/// The C side's state beside the buffer: only touched between C calls.
#[derive(Default)]
pub(crate) struct Inner {
    /// C callbacks, oldest first (they run newest first).
    #[allow(clippy::vec_box)] // C holds pointers to the entries
    pub(crate) cbs: Vec<crate::mm::MmBox<CbEntry>>,
    pub(crate) next_cb_id: u64,
    /// The recording closure on the `EvBuffer`, while there are C callbacks.
    pub(crate) recorder: Option<CallbackId>,
    /// Positions recently handed to C (see [`CPtr`]).
    pub(crate) ptrs: [Option<BufferPtr>; 4],
    pub(crate) next_ptr: usize,
    /// The extents the last `evbuffer_reserve_space` handed out (base, length).
    pub(crate) reserved: Vec<(usize, usize)>,
    /// The base and event running deferred callbacks.
    pub(crate) deferred: Option<(*mut CBase, Event)>,
}

/// What a C `struct evbuffer *` points to.
///
/// What only some programs use is made on first use (most bufferevent programs touch none
/// of it, and each connection has two of these): the C-side state, the change queue, the
/// deferred-run flag, the lock.
pub struct CBuffer {
    store: Store,
    inner: RefCell<Option<Box<Inner>>>,
    /// Changes waiting for the C callbacks (filled by the recording closure).
    pending: OnceCell<Arc<Mutex<VecDeque<CallbackInfo>>>>,
    /// Set by the deferred-mode scheduler: the deferred event must be activated.
    schedule: OnceCell<Arc<AtomicBool>>,
    /// Calls of this library using the buffer right now (they nest through callbacks).
    frames: Cell<u32>,
    /// `evbuffer_free` came while `frames > 0`: the last frame frees.
    free_requested: Cell<bool>,
    /// Set by `evbuffer_enable_locking`.
    pub(crate) lock: OnceLock<Box<lock::RLock>>,
}

impl CBuffer {
    fn new(store: Store) -> Self {
        CBuffer {
            store,
            inner: RefCell::new(None),
            pending: OnceCell::new(),
            schedule: OnceCell::new(),
            frames: Cell::new(0),
            free_requested: Cell::new(false),
            lock: OnceLock::new(),
        }
    }

    /// The change queue (made now if it was not).
    pub(crate) fn pending(&self) -> &Arc<Mutex<VecDeque<CallbackInfo>>> {
        self.pending.get_or_init(Arc::default)
    }

    /// Takes the next queued change, if any (without making the queue).
    fn pop_pending(&self) -> Option<CallbackInfo> {
        let q = self.pending.get()?;
        let mut q = q.lock().unwrap_or_else(|e| e.into_inner());
        q.pop_front()
    }

    /// How many changes are queued.
    pub(crate) fn pending_len(&self) -> usize {
        self.pending
            .get()
            .map_or(0, |q| q.lock().map_or(0, |q| q.len()))
    }

    /// Drops the queued changes.
    pub(crate) fn clear_pending(&self) {
        if let Some(q) = self.pending.get() {
            q.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
    }

    /// The deferred-run flag (made now if it was not).
    pub(crate) fn schedule_flag(&self) -> &Arc<AtomicBool> {
        self.schedule.get_or_init(Arc::default)
    }

    /// The lock of where a hosted buffer lives (see [`BufferHost::lock`]).
    pub(crate) fn host_lock(&self) -> Option<&crate::locking::BaseLock> {
        match &self.store {
            Store::Hosted(h) => h.lock(),
            Store::Owned(_) => None,
        }
    }

    /// Reads the C-side state, if it was made (`None` also while it is borrowed).
    pub(crate) fn inner_ref<R>(&self, f: impl FnOnce(&Inner) -> R) -> Option<R> {
        let i = self.inner.try_borrow().ok()?;
        i.as_deref().map(f)
    }

    /// A new C buffer owning an empty `EvBuffer`, as a raw pointer for C.
    pub fn boxed() -> *mut CBuffer {
        Box::into_raw(Box::new(CBuffer::new(Store::Owned(RefCell::new(
            EvBuffer::new(),
        )))))
    }

    /// A new C buffer for a buffer that lives elsewhere (see the module docs), as a raw
    /// pointer for C. Free it with `evbuffer_free` (the host's buffer is not touched).
    pub fn hosted(host: Box<dyn BufferHost>) -> *mut CBuffer {
        Box::into_raw(Box::new(CBuffer::new(Store::Hosted(host))))
    }

    /// Runs `f` on the buffer; `None` if it is in use (a re-entrant call) or unreachable.
    fn access<R>(&self, f: impl FnOnce(&mut EvBuffer) -> R) -> Option<R> {
        match &self.store {
            Store::Owned(cell) => {
                let mut b = cell.try_borrow_mut().ok()?;
                Some(f(&mut b))
            }
            Store::Hosted(host) => {
                let mut f = Some(f);
                let mut out = None;
                host.with_buffer(&mut |b| {
                    if let Some(f) = f.take() {
                        out = Some(f(b));
                    }
                });
                out
            }
        }
    }

    /// Runs `f` on this buffer and `other` (a different one); `None` if either is in use
    /// or unreachable. Two buffers of one host are lent together.
    fn access2<R>(
        &self,
        other: &CBuffer,
        f: impl FnOnce(&mut EvBuffer, &mut EvBuffer) -> R,
    ) -> Option<R> {
        let mut f = Some(f);
        if let (Store::Hosted(a), Store::Hosted(b)) = (&self.store, &other.store) {
            let mut out = None;
            let paired = a.with_pair(&**b, &mut |x, y| {
                if let Some(f) = f.take() {
                    out = Some(f(x, y));
                }
            });
            if paired.is_some() {
                return out;
            }
        }
        let f = f.take()?;
        self.access(|x| other.access(|y| f(x, y))).flatten()
    }

    /// Nothing for [`run_queue`] to do: no C callbacks (so no recorder, and nothing queued:
    /// removing the last callback empties the queue) and no deferred run to schedule. The
    /// common case, checked without the queue's mutex.
    /// Whether the buffer has C callbacks or a deferred run to schedule (the opposite of
    /// [`quiet`](Self::quiet)): a bufferevent must then catch the C side up after changes.
    pub(crate) fn has_c_callbacks(&self) -> bool {
        !self.quiet()
    }

    fn quiet(&self) -> bool {
        !self
            .schedule
            .get()
            .is_some_and(|f| f.load(Ordering::Acquire))
            && self
                .inner
                .try_borrow()
                .is_ok_and(|i| i.as_ref().is_none_or(|i| i.recorder.is_none()))
    }

    fn enter(&self) {
        if let Some(l) = self.lock.get() {
            l.lock();
        }
        self.frames.set(self.frames.get() + 1);
    }

    /// Ends a frame; true if the buffer must now be freed.
    fn leave(&self) -> bool {
        let n = self.frames.get() - 1;
        self.frames.set(n);
        if let Some(l) = self.lock.get() {
            l.unlock();
        }
        n == 0 && self.free_requested.get()
    }
}

/// Frees a buffer made by [`CBuffer::boxed`] or [`CBuffer::hosted`] now, or when the
/// calls using it return.
///
/// # Safety
/// `p` is a live buffer of this library, not used by C after this.
pub(crate) unsafe fn free(p: *mut CBuffer) {
    // SAFETY: live per the contract.
    let cb = unsafe { &*p };
    if cb.frames.get() > 0 {
        cb.free_requested.set(true);
        return;
    }
    // SAFETY: no frame uses it, so nothing else refers to it.
    unsafe { destroy(p) }
}

/// # Safety
/// `p` came from `Box::into_raw` and nothing refers to it any more.
unsafe fn destroy(p: *mut CBuffer) {
    // SAFETY: per the contract.
    let b = unsafe { Box::from_raw(p) };
    let deferred = b
        .inner
        .borrow_mut()
        .as_mut()
        .and_then(|i| i.deferred.take());
    if let Some((base, ev)) = deferred {
        if crate::base::is_live(base) {
            // SAFETY: a live base of this library.
            unsafe { CBase::with(base, |eb| eb.free(ev)).ok() };
        }
    }
    drop(b);
}

/// Runs `f` on buffer `p` for the C function `name`, then the C callbacks for the changes
/// it made. NULL, or a buffer already in use by this very call chain: a warning and the
/// return type's error value.
///
/// # Safety
/// `p` is null or a live buffer of this library.
pub(crate) unsafe fn with<R: Fallback>(
    p: *mut CBuffer,
    name: &str,
    f: impl FnOnce(&mut EvBuffer) -> R,
) -> R {
    // SAFETY: null or live per the contract.
    let Some(cb) = (unsafe { p.as_ref() }) else {
        log::warn(&format!("{name}: NULL buffer"));
        return R::fallback();
    };
    cb.enter();
    // (The C-side state is not needed: not made, not borrowed.)
    let r = cb.access(f);
    // SAFETY: `p` is live (this frame keeps it so).
    unsafe { finish(p, cb, name, r) }
}

/// The end of a one-buffer call: the error value if the buffer was in use, the queued C
/// callbacks, the free C asked for meanwhile.
///
/// # Safety
/// `p` is live and `cb` is it, held by the frame this ends.
unsafe fn finish<R: Fallback>(p: *mut CBuffer, cb: &CBuffer, name: &str, r: Option<R>) -> R {
    let r = r.unwrap_or_else(|| {
        log::warn(&format!(
            "{name}: the buffer is in use by the call that ran this one"
        ));
        R::fallback()
    });
    // SAFETY: per the contract.
    unsafe { run_queue(p) };
    if cb.leave() {
        // SAFETY: the last frame; C asked for the free.
        unsafe { destroy(p) };
    }
    r
}

/// [`with`], also lending the C-side state.
///
/// # Safety
/// `p` is null or a live buffer of this library.
pub(crate) unsafe fn with_inner<R: Fallback>(
    p: *mut CBuffer,
    name: &str,
    f: impl FnOnce(&mut EvBuffer, &mut Inner) -> R,
) -> R {
    // SAFETY: null or live per the contract.
    let Some(cb) = (unsafe { p.as_ref() }) else {
        log::warn(&format!("{name}: NULL buffer"));
        return R::fallback();
    };
    cb.enter();
    let r = match cb.inner.try_borrow_mut() {
        Ok(mut inner) => {
            let inner = inner.get_or_insert_with(Box::default);
            cb.access(|b| f(b, inner))
        }
        Err(_) => None,
    };
    // SAFETY: `p` is live (this frame keeps it so).
    unsafe { finish(p, cb, name, r) }
}

/// Which buffer's callbacks run first after a two-buffer operation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum First {
    /// The first buffer argument's.
    A,
    /// The second's.
    B,
}

/// Runs `f` on two distinct buffers, then their callbacks in the order `f` returns.
///
/// # Safety
/// `a` and `b` are null or live buffers of this library, and differ.
pub(crate) unsafe fn with2<R: Fallback>(
    a: *mut CBuffer,
    b: *mut CBuffer,
    name: &str,
    f: impl FnOnce(&mut EvBuffer, &mut EvBuffer) -> (R, First),
) -> R {
    // SAFETY: null or live per the contract.
    let (Some(ca), Some(cb)) = (unsafe { a.as_ref() }, unsafe { b.as_ref() }) else {
        log::warn(&format!("{name}: NULL buffer"));
        return R::fallback();
    };
    ca.enter();
    cb.enter();
    let r = ca.access2(cb, f);
    let (r, first) = r.unwrap_or_else(|| {
        log::warn(&format!(
            "{name}: a buffer is in use by the call that ran this one"
        ));
        (R::fallback(), First::A)
    });
    let order = if first == First::A { [a, b] } else { [b, a] };
    for p in order {
        // SAFETY: both are live while their frames last.
        unsafe { run_queue(p) };
    }
    let free_b = cb.leave();
    let free_a = ca.leave();
    // SAFETY: the last frames of each; C asked for the frees.
    unsafe {
        if free_b {
            destroy(b);
        }
        if free_a {
            destroy(a);
        }
    }
    r
}

/// Runs the C callbacks for the changes queued on `p` (also schedules its deferred
/// callbacks). A host calls this after changing a hosted buffer from Rust.
///
/// # Safety
/// `p` is a live buffer of this library, and no call of this library is changing it.
pub unsafe fn run_callbacks(p: *mut CBuffer) {
    // SAFETY: live per the contract.
    let cb = unsafe { &*p };
    // (Unlocked buffers only: a locked one's state is read under its lock.)
    if cb.lock.get().is_none() && cb.quiet() {
        return;
    }
    cb.enter();
    // SAFETY: live; held by the frame.
    unsafe { run_queue(p) };
    if cb.leave() {
        // SAFETY: the last frame; C asked for the free.
        unsafe { destroy(p) };
    }
}

/// Calls the C callbacks for every queued change.
///
/// # Safety
/// `p` is live and held by a frame.
unsafe fn run_queue(p: *mut CBuffer) {
    // SAFETY: live per the contract.
    let cb = unsafe { &*p };
    if cb.quiet() {
        return;
    }
    if cb
        .schedule
        .get()
        .is_some_and(|f| f.swap(false, Ordering::AcqRel))
    {
        callbacks::activate_deferred(cb);
    }
    loop {
        if cb.free_requested.get() {
            return;
        }
        let Some(info) = cb.pop_pending() else { return };
        // SAFETY: forwarded.
        unsafe { callbacks::run_for(p, &info) };
    }
}
