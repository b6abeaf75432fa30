//! Waking a loop from another thread: a [`Notifier`] writes to the base's eventfd, which the
//! loop watches as an internal event. Wake-ups are coalesced: however many threads call
//! [`Notifier::wake`] before the loop gets to run, the eventfd is written once.

use crate::base::EventBase;
use crate::event::Internal;
use crate::flags::What;
use crate::sys;
use std::io;
use std::os::unix::io::RawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;

pub(crate) struct NotifyShared {
    /// Replaced (atomically) when a forked child re-creates its eventfd.
    fd: AtomicI32,
    pending: AtomicBool,
    attached: AtomicBool,
}

impl NotifyShared {
    pub(crate) fn detach(&self) {
        self.attached.store(false, Ordering::SeqCst);
    }
}

impl NotifyShared {
    fn fd(&self) -> RawFd {
        self.fd.load(Ordering::SeqCst)
    }
}

impl Drop for NotifyShared {
    fn drop(&mut self) {
        sys::close(self.fd());
    }
}

/// A `Send + Sync` handle that wakes an [`EventBase`]'s loop from any thread.
///
/// ```
/// use evrs::{EventBase, LoopFlags};
/// let mut base = EventBase::new()?;
/// let n = base.notifier()?;
/// std::thread::spawn(move || n.wake().unwrap()).join().unwrap();
/// // The wake-up makes the loop iterate; the notify event itself is internal, so it runs
/// // no user callback and NONBLOCK returns once it has been drained.
/// base.run(LoopFlags::NONBLOCK | LoopFlags::NO_EXIT_ON_EMPTY)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Notifier {
    shared: Arc<NotifyShared>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("fd", &self.shared.fd)
            .finish()
    }
}

impl Notifier {
    /// Wakes the loop (one eventfd write per loop iteration at most, however many callers).
    /// Fails once the base is gone.
    pub fn wake(&self) -> io::Result<()> {
        if !self.shared.attached.load(Ordering::SeqCst) {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the event base behind this notifier was dropped",
            ));
        }
        if !self.shared.pending.swap(true, Ordering::SeqCst) {
            sys::notify::wake(self.shared.fd())?;
        }
        Ok(())
    }
}

impl EventBase {
    /// A handle other threads can use to wake this loop (creates the eventfd on first use).
    pub fn notifier(&mut self) -> io::Result<Notifier> {
        if let Some((shared, _)) = &self.notify {
            return Ok(Notifier {
                shared: shared.clone(),
            });
        }
        let fd = sys::notify::new()?;
        let shared = Arc::new(NotifyShared {
            fd: AtomicI32::new(fd),
            pending: AtomicBool::new(false),
            attached: AtomicBool::new(true),
        });
        let ev = self.new_internal(fd, What::READ | What::PERSIST, Internal::Notify)?;
        if let Err(e) = self.add(ev, None) {
            let _ = self.free(ev);
            return Err(e);
        }
        self.notify = Some((shared.clone(), ev));
        Ok(Notifier { shared })
    }

    /// The eventfd is readable: reset it, then re-arm coalescing. Clearing `pending` after
    /// the drain means a wake racing with us either sees `pending` set (and its work is seen
    /// by this iteration) or writes again (and wakes the next one).
    pub(crate) fn notify_ready(&mut self) {
        if let Some((shared, _)) = &self.notify {
            sys::notify::drain(shared.fd());
            shared.pending.store(false, Ordering::SeqCst);
        }
    }

    /// Fork: a fresh eventfd (the inherited one would wake the parent too).
    pub(crate) fn reinit_notify(&mut self) -> io::Result<()> {
        let Some((shared, ev)) = self.notify.clone() else {
            return Ok(());
        };
        let fd = sys::notify::new()?;
        self.replace_internal_fd(ev, fd)?;
        let old = shared.fd.swap(fd, Ordering::SeqCst);
        sys::close(old);
        shared.pending.store(false, Ordering::SeqCst);
        Ok(())
    }
}
