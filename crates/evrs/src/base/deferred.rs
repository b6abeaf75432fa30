//! Running an [`EvBuffer`]'s callbacks from the loop instead of inline (libevent's
//! `evbuffer_defer_callbacks`): changes accumulate, and one loop callback at the base's middle
//! priority later runs the buffer's callbacks once with the summed counts. On the loop's
//! thread the buffer schedules that callback through a [`LocalHandle`](crate::LocalHandle)
//! (no lock, no atomic, no syscall); from another thread through the cross-thread `Handle`.

use super::EventBase;
use crate::event::Event;
use crate::flags::What;
use crate::sys::thread_bound::ThreadBound;
use evrs_buffer::EvBuffer;
use std::cell::RefCell;
use std::io;
use std::rc::{Rc, Weak};

impl EventBase {
    /// Defers `buf`'s callbacks to this loop. Returns the event that runs them (free it, or
    /// drop the buffer, to stop); the buffer is held weakly.
    ///
    /// ```
    /// use evrs::{buffer::EvBuffer, EventBase};
    /// use std::{cell::RefCell, rc::Rc, sync::{Arc, atomic::{AtomicUsize, Ordering}}};
    ///
    /// let mut base = EventBase::new()?;
    /// let buf = Rc::new(RefCell::new(EvBuffer::new()));
    /// let added = Arc::new(AtomicUsize::new(0));
    /// let a = added.clone();
    /// buf.borrow_mut().add_cb(move |_buf, info| { a.fetch_add(info.n_added, Ordering::SeqCst); });
    /// base.defer_buffer_callbacks(&buf)?;
    /// buf.borrow_mut().add(b"hello ")?;
    /// buf.borrow_mut().add(b"world")?;
    /// assert_eq!(added.load(Ordering::SeqCst), 0); // nothing ran inline
    /// base.dispatch()?;
    /// assert_eq!(added.load(Ordering::SeqCst), 11); // one run, summed counts
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn defer_buffer_callbacks(&mut self, buf: &Rc<RefCell<EvBuffer>>) -> io::Result<Event> {
        let weak: Weak<RefCell<EvBuffer>> = Rc::downgrade(buf);
        let ev = self.new_timer(move |base, ev, _| match weak.upgrade() {
            Some(buf) => match buf.try_borrow_mut() {
                Ok(mut b) => b.run_deferred_callbacks(),
                // Borrowed elsewhere right now (cannot happen between callbacks unless the
                // caller holds a borrow across `run`): try again next iteration.
                Err(_) => {
                    let _ = base.activate_later(ev, What::TIMEOUT);
                }
            },
            None => {
                let _ = base.free(ev);
            }
        })?;
        // The scheduler must be Send (buffers may move between threads): the same-thread
        // handle rides in a ThreadBound, with the cross-thread handle for other threads.
        let local = ThreadBound::new(self.local_handle());
        let handle = self.handle()?;
        buf.borrow_mut().defer_callbacks(Some(Box::new(move || {
            let _ = match local.get() {
                Some(local) => local.activate(ev, What::TIMEOUT),
                None => handle.activate(ev, What::TIMEOUT, 1),
            };
        })));
        Ok(ev)
    }
}
