//! The epoll backend: O(1) registration, level- or edge-triggered, `EPOLLRDHUP` for
//! early-close detection.
//!
//! # The change list
//! Changes to an fd's interest are coalesced while the loop runs callbacks and applied just
//! before the next `epoll_wait`, so a non-persistent event that is deleted before its callback
//! and re-added inside it costs nothing, and any add/del/mod sequence on one fd costs at most
//! one `epoll_ctl` per iteration. Two cases are applied at once instead:
//! * an fd that is not registered at all is `EPOLL_CTL_ADD`ed immediately, so a closed or
//!   invalid fd is reported by `add` itself (`EBADF`, or `EPERM` for regular files);
//! * outside a running loop every change is immediate (there is no iteration to batch into).
//!
//! # Quirks handled (as libevent does)
//! * An fd closed while registered vanishes from the epoll set by itself, so a later
//!   `EPOLL_CTL_DEL` fails with `ENOENT`/`EBADF` (ignored) and a `MOD` fails with `ENOENT`
//!   (retried as `ADD`); an `ADD` of a number still known to the kernel gets `EEXIST`
//!   (retried as `MOD`).
//! * When a pending delete was cancelled by a re-add in the same iteration, the fd may have
//!   been closed and its number reused in between, so one `MOD` (→ `ADD` on `ENOENT`) is
//!   issued instead of nothing.
//! * epoll keys registrations by (fd, open file): a `dup`ed fd is a separate registration and
//!   gets its own readiness. The limit shared with every epoll user: delete an fd's events
//!   and let the change apply before closing it if a `dup` of it stays open elsewhere
//!   (outside a loop, `del` applies at once).

use super::interest::{CLOSED, ET, READ, WRITE};
use super::syscall;
use std::io;
use std::os::unix::io::RawFd;
use std::time::Duration;

const INITIAL_EVENTS: usize = 32;
const MAX_EVENTS: usize = 4096;

#[derive(Clone, Copy, Default)]
struct FdState {
    /// What the kernel has for this fd (0 = not registered).
    registered: u8,
    /// What we want it to have after the change list is applied.
    want: u8,
    /// On the change list.
    dirty: bool,
    /// `want` went to 0 and back during this iteration (the fd may have been reused).
    went_zero: bool,
}

pub(crate) struct Selector {
    epfd: RawFd,
    events: Vec<libc::epoll_event>,
    fds: Vec<FdState>,
    changes: Vec<RawFd>,
    deferring: bool,
    use_changelist: bool,
    /// `epoll_ctl` calls made so far (observability for tests and benchmarks).
    pub(crate) ctl_calls: u64,
}

impl Selector {
    pub(crate) fn new(use_changelist: bool) -> io::Result<Selector> {
        // SAFETY: epoll_create1 takes no pointers.
        let epfd = syscall!(epoll_create1(libc::EPOLL_CLOEXEC))?;
        Ok(Selector {
            epfd,
            events: Vec::with_capacity(INITIAL_EVENTS),
            fds: Vec::new(),
            changes: Vec::new(),
            deferring: false,
            use_changelist,
            ctl_calls: 0,
        })
    }

    /// Called by the loop: while `true`, changes to registered fds are queued.
    pub(crate) fn set_deferring(&mut self, on: bool) {
        self.deferring = on && self.use_changelist;
        if !self.deferring {
            self.apply_changes();
        }
    }

    /// The interest this fd will have once the change list is applied.
    pub(crate) fn wanted(&self, fd: RawFd) -> u8 {
        self.fds.get(fd as usize).map_or(0, |st| st.want)
    }

    fn state(&mut self, fd: RawFd) -> &mut FdState {
        let i = fd as usize;
        if i >= self.fds.len() {
            self.fds.resize(i + 1, FdState::default());
        }
        &mut self.fds[i]
    }

    /// The fd's combined interest goes from `old` to `new`.
    pub(crate) fn change(&mut self, fd: RawFd, _old: u8, new: u8) -> io::Result<()> {
        let deferring = self.deferring;
        let st = self.state(fd);
        if st.want == new && !st.dirty && st.registered == new {
            return Ok(());
        }
        if st.registered == 0 && !st.dirty {
            // First registration: immediate, so errors reach the caller.
            if new == 0 {
                return Ok(());
            }
            self.ctl_add(fd, new)?;
            let st = self.state(fd);
            st.registered = new;
            st.want = new;
            return Ok(());
        }
        if new != 0 && st.want == 0 {
            st.went_zero = true;
        }
        st.want = new;
        if deferring {
            if !st.dirty {
                st.dirty = true;
                self.changes.push(fd);
            }
            Ok(())
        } else {
            st.dirty = false;
            self.apply_one(fd)
        }
    }

    /// Brings the kernel in line with `want` for one fd.
    fn apply_one(&mut self, fd: RawFd) -> io::Result<()> {
        let st = *self.state(fd);
        let res = if st.want == 0 {
            if st.registered != 0 {
                self.ctl_del(fd);
            }
            Ok(())
        } else if st.registered == 0 {
            self.ctl_add(fd, st.want)
        } else if st.registered != st.want || st.went_zero {
            self.ctl_mod(fd, st.want)
        } else {
            Ok(())
        };
        let st = self.state(fd);
        st.went_zero = false;
        st.dirty = false;
        st.registered = if res.is_ok() { st.want } else { 0 };
        if res.is_err() {
            st.want = 0;
        }
        res
    }

    /// Applies the change list (before `epoll_wait`). Errors here cannot be returned to the
    /// `add` that caused them (it already returned); the fd simply stays unregistered.
    fn apply_changes(&mut self) {
        let mut changes = std::mem::take(&mut self.changes);
        for fd in changes.drain(..) {
            let _ = self.apply_one(fd);
        }
        self.changes = changes;
    }

    fn ctl_add(&mut self, fd: RawFd, mask: u8) -> io::Result<()> {
        match self.ctl(libc::EPOLL_CTL_ADD, fd, mask) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                self.ctl(libc::EPOLL_CTL_MOD, fd, mask)
            }
            r => r,
        }
    }

    fn ctl_mod(&mut self, fd: RawFd, mask: u8) -> io::Result<()> {
        match self.ctl(libc::EPOLL_CTL_MOD, fd, mask) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                self.ctl(libc::EPOLL_CTL_ADD, fd, mask)
            }
            r => r,
        }
    }

    fn ctl_del(&mut self, fd: RawFd) {
        // ENOENT/EBADF/EPERM mean the fd was closed (or never accepted): nothing to undo.
        let _ = self.ctl(libc::EPOLL_CTL_DEL, fd, 0);
    }

    fn ctl(&mut self, op: libc::c_int, fd: RawFd, mask: u8) -> io::Result<()> {
        self.ctl_calls += 1;
        let mut ev = libc::epoll_event {
            events: to_epoll(mask),
            u64: fd as u64,
        };
        // SAFETY: `ev` is a valid epoll_event (ignored by the kernel for DEL).
        syscall!(epoll_ctl(self.epfd, op, fd, &mut ev)).map(|_| ())
    }

    /// Waits for readiness and appends `(fd, ready bits)` to `ready`.
    #[inline]
    pub(crate) fn dispatch(
        &mut self,
        timeout: Option<Duration>,
        ready: &mut Vec<super::Polled>,
    ) -> io::Result<()> {
        self.apply_changes();
        wait(self.epfd, &mut self.events, timeout, ready)
    }

    /// Applies the change list and points `w` at the epoll set, so a shared base can wait
    /// with its lock released (the epoll fd itself is safe to wait on from any thread).
    pub(crate) fn prepare_wait(&mut self, w: &mut Waiter) {
        self.apply_changes();
        w.epfd = self.epfd;
    }
}

/// A detached wait: the epoll fd and an events buffer owned by the waiting thread.
pub(crate) struct Waiter {
    epfd: RawFd,
    events: Vec<libc::epoll_event>,
}

impl Waiter {
    pub(crate) fn new() -> Waiter {
        Waiter {
            epfd: -1,
            events: Vec::with_capacity(INITIAL_EVENTS),
        }
    }

    pub(crate) fn wait(
        &mut self,
        timeout: Option<Duration>,
        ready: &mut Vec<super::Polled>,
    ) -> io::Result<()> {
        wait(self.epfd, &mut self.events, timeout, ready)
    }
}

#[inline]
fn wait(
    epfd: RawFd,
    events: &mut Vec<libc::epoll_event>,
    timeout: Option<Duration>,
    ready: &mut Vec<super::Polled>,
) -> io::Result<()> {
    let cap = events.capacity();
    // SAFETY: the kernel writes at most `cap` initialized epoll_events into the buffer.
    let n = syscall!(epoll_wait(
        epfd,
        events.as_mut_ptr(),
        cap as libc::c_int,
        super::timeout_ms(timeout),
    ));
    let n = match n {
        Ok(n) => n as usize,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
        Err(e) => return Err(e),
    };
    // SAFETY: epoll_wait initialized the first `n` (≤ capacity) elements.
    unsafe { events.set_len(n) };
    // A stale registration (DEL queued or failed) finds no events in the fd table.
    // `extend` over a slice reserves once instead of checking capacity per event.
    ready.extend(
        events
            .iter()
            .map(|ev| super::Polled::ready(ev.u64 as RawFd, from_epoll(ev.events))),
    );
    if n == cap && cap < MAX_EVENTS {
        *events = Vec::with_capacity(cap * 2);
    } else {
        events.clear();
    }
    Ok(())
}

impl Selector {
    /// After `fork`: the epoll set is shared with the parent, so it must not be touched.
    /// Drop our copy of it (pending changes included) and build a fresh one from `want`.
    pub(crate) fn reinit(&mut self) -> io::Result<()> {
        // SAFETY: epoll_create1 takes no pointers.
        let epfd = syscall!(epoll_create1(libc::EPOLL_CLOEXEC))?;
        super::close(self.epfd);
        self.epfd = epfd;
        self.changes.clear();
        for fd in 0..self.fds.len() {
            let st = &mut self.fds[fd];
            st.registered = 0;
            st.dirty = false;
            st.went_zero = false;
            let want = st.want;
            if want != 0 {
                self.ctl_add(fd as RawFd, want)?;
                self.fds[fd].registered = want;
            }
        }
        Ok(())
    }
}

impl Drop for Selector {
    fn drop(&mut self) {
        super::close(self.epfd);
    }
}

fn to_epoll(mask: u8) -> u32 {
    let mut e = 0u32;
    if mask & READ != 0 {
        e |= libc::EPOLLIN as u32;
    }
    if mask & WRITE != 0 {
        e |= libc::EPOLLOUT as u32;
    }
    if mask & CLOSED != 0 {
        e |= libc::EPOLLRDHUP as u32;
    }
    if mask & ET != 0 {
        e |= libc::EPOLLET as u32;
    }
    e
}

/// ERR → READ|WRITE; HUP without RDHUP → READ|WRITE; IN → READ; OUT → WRITE; RDHUP → CLOSED.
fn from_epoll(e: u32) -> u8 {
    let mut bits = 0;
    let err = e & libc::EPOLLERR as u32 != 0;
    let bare_hup = e & libc::EPOLLHUP as u32 != 0 && e & libc::EPOLLRDHUP as u32 == 0;
    if err || bare_hup {
        bits |= READ | WRITE;
    } else {
        if e & libc::EPOLLIN as u32 != 0 {
            bits |= READ;
        }
        if e & libc::EPOLLOUT as u32 != 0 {
            bits |= WRITE;
        }
        if e & libc::EPOLLRDHUP as u32 != 0 {
            bits |= CLOSED;
        }
    }
    bits
}
