//! Change callbacks: registration, enable/disable, immediate and deferred
//! dispatch.
//!
//! A callback sees the buffer (read-only) and a [`CallbackInfo`] after every
//! call that added or removed bytes. Newest callbacks run first (libevent
//! prepends them). In deferred mode (see [`EvBuffer::defer_callbacks`]) the
//! counts accumulate until the event loop calls
//! [`EvBuffer::run_deferred_callbacks`]; callbacks registered with
//! [`EvBuffer::add_cb_immediate`] still run at once.

use std::fmt;

use crate::EvBuffer;

/// What changed, passed to every callback.
///
/// In deferred mode the counts are sums over all changes since the previous
/// run, and `orig_size` is the length before the first of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CallbackInfo {
    /// Length of the buffer before the change(s).
    pub orig_size: usize,
    /// Bytes added.
    pub n_added: usize,
    /// Bytes removed.
    pub n_deleted: usize,
}

/// Names a registered callback, for [`EvBuffer::remove_cb`],
/// [`EvBuffer::enable_cb`] and [`EvBuffer::disable_cb`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallbackId(u64);

/// The callback type: the buffer after the change, and what changed.
pub type Callback = Box<dyn FnMut(&EvBuffer, &CallbackInfo) + Send>;

/// The deferred-mode scheduler: called once when the first change after a
/// run becomes pending; it should arrange for the loop to call
/// [`EvBuffer::run_deferred_callbacks`].
pub type Scheduler = Box<dyn FnMut() + Send>;

struct Entry {
    id: u64,
    enabled: bool,
    immediate: bool,
    f: Callback,
}

/// A buffer's callbacks: nothing but a null pointer until the first one is registered
/// (most buffers never have any, and a bufferevent holds two buffers per connection).
#[derive(Default, Debug)]
pub(crate) struct Callbacks(Option<Box<CallbackState>>);

impl Callbacks {
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|c| c.entries.is_empty())
    }

    fn get(&self) -> Option<&CallbackState> {
        self.0.as_deref()
    }

    fn opt_mut(&mut self) -> Option<&mut CallbackState> {
        self.0.as_deref_mut()
    }

    /// The state, made on first use.
    fn get_mut(&mut self) -> &mut CallbackState {
        self.0.get_or_insert_with(Box::default)
    }
}

#[derive(Default)]
pub(crate) struct CallbackState {
    /// Oldest first; dispatch walks it backwards (newest first).
    entries: Vec<Entry>,
    next_id: u64,
    scheduler: Option<Scheduler>,
    pending_added: usize,
    pending_deleted: usize,
    scheduled: bool,
}

impl fmt::Debug for CallbackState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Callbacks")
            .field("count", &self.entries.len())
            .field("deferred", &self.scheduler.is_some())
            .field("pending_added", &self.pending_added)
            .field("pending_deleted", &self.pending_deleted)
            .finish()
    }
}

impl CallbackState {
    fn add(&mut self, f: Callback, immediate: bool) -> CallbackId {
        self.next_id += 1;
        let id = self.next_id;
        self.entries.push(Entry {
            id,
            enabled: true,
            immediate,
            f,
        });
        CallbackId(id)
    }

    fn find(&mut self, id: CallbackId) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| e.id == id.0)
    }

    /// Runs callbacks for one change. `buf` is the buffer the callbacks were
    /// taken out of.
    pub(crate) fn dispatch(&mut self, buf: &EvBuffer, info: CallbackInfo) {
        if self.scheduler.is_none() {
            self.run(buf, &info, |_| true);
            return;
        }
        self.run(buf, &info, |e| e.immediate);
        if self.entries.iter().any(|e| !e.immediate) {
            self.pending_added += info.n_added;
            self.pending_deleted += info.n_deleted;
            if !self.scheduled {
                self.scheduled = true;
                if let Some(s) = self.scheduler.as_mut() {
                    s();
                }
            }
        }
    }

    fn run(&mut self, buf: &EvBuffer, info: &CallbackInfo, pick: impl Fn(&Entry) -> bool) {
        for e in self.entries.iter_mut().rev() {
            if e.enabled && pick(e) {
                (e.f)(buf, info);
            }
        }
    }

    fn take_pending(&mut self, len: usize) -> Option<CallbackInfo> {
        self.scheduled = false;
        let (added, deleted) = (self.pending_added, self.pending_deleted);
        self.pending_added = 0;
        self.pending_deleted = 0;
        if added == 0 && deleted == 0 {
            return None;
        }
        Some(CallbackInfo {
            orig_size: (len + deleted).saturating_sub(added),
            n_added: added,
            n_deleted: deleted,
        })
    }
}

impl EvBuffer {
    /// Registers a callback run after every change that added or removed
    /// bytes. It starts enabled; newer callbacks run before older ones.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use evrs_buffer::EvBuffer;
    ///
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = Arc::clone(&seen);
    /// let mut buf = EvBuffer::new();
    /// buf.add_cb(move |b, info| log.lock().unwrap().push((info.n_added, b.len())));
    /// buf.add(b"hello").unwrap();
    /// assert_eq!(*seen.lock().unwrap(), vec![(5, 5)]);
    /// ```
    pub fn add_cb<F>(&mut self, f: F) -> CallbackId
    where
        F: FnMut(&EvBuffer, &CallbackInfo) + Send + 'static,
    {
        self.cbs.get_mut().add(Box::new(f), false)
    }

    /// Like [`add_cb`](Self::add_cb), but the callback is never deferred: it
    /// runs inside the changing call even in deferred mode (libevent's
    /// `EVBUFFER_CB_NODEFER`).
    pub fn add_cb_immediate<F>(&mut self, f: F) -> CallbackId
    where
        F: FnMut(&EvBuffer, &CallbackInfo) + Send + 'static,
    {
        self.cbs.get_mut().add(Box::new(f), true)
    }

    /// Unregisters a callback; false if `id` is not registered here.
    pub fn remove_cb(&mut self, id: CallbackId) -> bool {
        let Some(c) = self.cbs.opt_mut() else {
            return false;
        };
        let before = c.entries.len();
        c.entries.retain(|e| e.id != id.0);
        before != c.entries.len()
    }

    /// Removes every callback (libevent's `evbuffer_setcb(buf, NULL, NULL)`).
    pub fn clear_cbs(&mut self) {
        if let Some(c) = self.cbs.opt_mut() {
            c.entries.clear();
        }
    }

    /// Replaces every callback with `f`, an old-style callback that gets the
    /// buffer, its length before the change and its length after (libevent's
    /// deprecated `evbuffer_setcb`; `evbuffer_setcb(buf, NULL, NULL)` is
    /// [`clear_cbs`](Self::clear_cbs)). It behaves like a callback from
    /// [`add_cb`](Self::add_cb) in every other way: the returned id can
    /// disable or remove it, and in deferred mode it runs deferred, with
    /// the lengths before the first and after the last pending change.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use evrs_buffer::EvBuffer;
    ///
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = Arc::clone(&seen);
    /// let mut buf = EvBuffer::new();
    /// buf.add_cb(|_, _| unreachable!("replaced by set_cb"));
    /// buf.set_cb(move |_, old, new| log.lock().unwrap().push((old, new)));
    /// buf.add(b"hello").unwrap();
    /// buf.drain(2).unwrap();
    /// assert_eq!(*seen.lock().unwrap(), vec![(0, 5), (5, 3)]);
    /// ```
    pub fn set_cb<F>(&mut self, mut f: F) -> CallbackId
    where
        F: FnMut(&EvBuffer, usize, usize) + Send + 'static,
    {
        self.clear_cbs();
        self.add_cb(move |buf, info| {
            let new_len = (info.orig_size + info.n_added).saturating_sub(info.n_deleted);
            f(buf, info.orig_size, new_len)
        })
    }

    /// `Some(true)` if the callback is enabled, `Some(false)` if disabled,
    /// `None` if `id` is not registered here.
    pub fn is_cb_enabled(&self, id: CallbackId) -> Option<bool> {
        self.cbs
            .get()?
            .entries
            .iter()
            .find(|e| e.id == id.0)
            .map(|e| e.enabled)
    }

    /// Enables a callback; false if `id` is not registered here.
    pub fn enable_cb(&mut self, id: CallbackId) -> bool {
        self.cbs
            .opt_mut()
            .and_then(|c| c.find(id))
            .map(|e| e.enabled = true)
            .is_some()
    }

    /// Disables a callback without removing it; false if `id` is unknown.
    pub fn disable_cb(&mut self, id: CallbackId) -> bool {
        self.cbs
            .opt_mut()
            .and_then(|c| c.find(id))
            .map(|e| e.enabled = false)
            .is_some()
    }

    /// Switches deferred mode on (`Some(scheduler)`) or off (`None`).
    ///
    /// This is the hook for the event loop (libevent's
    /// `evbuffer_defer_callbacks`). In deferred mode a change does not run the
    /// (non-immediate) callbacks; it adds its counts to a pending total and,
    /// if nothing was pending, calls `scheduler` once. The loop later calls
    /// [`run_deferred_callbacks`](Self::run_deferred_callbacks), which runs
    /// every enabled callback once with the summed counts. Switching the mode
    /// off keeps pending counts until the next `run_deferred_callbacks`.
    pub fn defer_callbacks(&mut self, scheduler: Option<Scheduler>) {
        match (self.cbs.opt_mut(), scheduler) {
            (Some(c), s) => c.scheduler = s,
            (None, Some(s)) => self.cbs.get_mut().scheduler = Some(s),
            (None, None) => {}
        }
    }

    /// True if deferred changes are waiting for
    /// [`run_deferred_callbacks`](Self::run_deferred_callbacks).
    pub fn has_pending_callbacks(&self) -> bool {
        self.cbs
            .get()
            .is_some_and(|c| c.pending_added != 0 || c.pending_deleted != 0)
    }

    /// Runs the deferred callbacks with the counts accumulated since the last
    /// run; does nothing if nothing is pending. Immediate callbacks already
    /// ran and are not run again.
    pub fn run_deferred_callbacks(&mut self) {
        let len = self.len;
        let Some(info) = self.cbs.opt_mut().and_then(|c| c.take_pending(len)) else {
            return;
        };
        let mut cbs = std::mem::take(&mut self.cbs);
        cbs.get_mut().run(self, &info, |e| !e.immediate);
        self.cbs = cbs;
    }

    /// Internal: record a change and run callbacks. Every mutating call ends
    /// here (or in `touch`) so positions and reservations are invalidated.
    #[inline]
    pub(crate) fn changed(&mut self, orig_size: usize, n_added: usize, n_deleted: usize) {
        self.gen = self.gen.wrapping_add(1);
        if self.cbs.is_empty() || (n_added == 0 && n_deleted == 0) {
            return;
        }
        let mut cbs = std::mem::take(&mut self.cbs);
        cbs.get_mut().dispatch(
            self,
            CallbackInfo {
                orig_size,
                n_added,
                n_deleted,
            },
        );
        self.cbs = cbs;
    }
}
