//! Fork support: after `fork()`, the child shares the parent's epoll set, signal pipe and
//! eventfd. [`EventBase::reinit`] gives the child its own, re-registering every event, without
//! touching the parent's kernel objects (libevent's `event_reinit`).

use crate::base::EventBase;
use crate::event::{state, Event};
use crate::sys;
use std::io;
use std::os::unix::io::RawFd;

impl EventBase {
    /// Call in the child after `fork()` (not needed if it `exec`s). Creates a fresh backend,
    /// signal pipe and notify fd and re-registers every added event and signal; timers,
    /// priorities and active queues carry over. The parent's loop is unaffected.
    ///
    /// ```no_run
    /// # let mut base = evrs::EventBase::new()?;
    /// // SAFETY: the child only uses its own base.
    /// if unsafe { libc::fork() } == 0 {
    ///     base.reinit()?;
    ///     base.dispatch()?;
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn reinit(&mut self) -> io::Result<()> {
        // Apply changes immediately while internal fds move: a queued DEL applied after the
        // old fd is closed could not remove it (the parent keeps the file open).
        self.backend.set_deferring(false)?;
        let res = self.reinit_inner();
        self.backend.set_deferring(self.running)?;
        res
    }

    fn reinit_inner(&mut self) -> io::Result<()> {
        self.backend.reinit()?;
        if let Some((r, w, ev)) = self.sig_pipe {
            let (nr, nw) = sys::signal::pipe()?;
            self.replace_internal_fd(ev, nr)?;
            sys::signal::release(w);
            sys::close(r);
            sys::close(w);
            self.sig_pipe = Some((nr, nw, ev));
            if self.sigs.iter().any(|s| s.count > 0) {
                sys::signal::claim(nw);
            }
        }
        self.reinit_notify()
    }

    /// Moves an internal event to a new fd, keeping it registered.
    pub(crate) fn replace_internal_fd(&mut self, ev: Event, fd: RawFd) -> io::Result<()> {
        let idx = self.index(ev)?;
        let inserted = self.slots[idx].has(state::INSERTED);
        if inserted {
            self.io_remove(idx);
            self.set_state(idx, state::INSERTED, false);
        }
        self.slots[idx].fd = fd;
        if inserted {
            self.io_insert(idx)?;
            self.set_state(idx, state::INSERTED, true);
        }
        Ok(())
    }
}
