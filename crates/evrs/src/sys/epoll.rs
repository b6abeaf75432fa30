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
//!
//! # Errors, hang-ups and closed fds (no spinning)
//! epoll reports `EPOLLERR` and `EPOLLHUP` whatever the interest, level-triggered, so a
//! condition that no event consumes would wake every `epoll_wait` at once, forever. Hence:
//! * `EPOLLERR` or `EPOLLHUP` → READ|WRITE|CLOSED: an fd that failed or hung up wakes every
//!   event on it, each with the bits of its own interest (a CLOSED-only event hears of a
//!   reset peer, a READ event reads the error or EOF, a WRITE event gets `EPIPE`). libevent
//!   maps them to READ|WRITE only, and spins on a CLOSED-only event.
//! * `EPOLLIN` → READ, `EPOLLOUT` → WRITE, `EPOLLRDHUP` → CLOSED; they are only reported when
//!   asked for, and `EPOLLPRI` is never asked for, so every other bit has a consumer.
//! * An fd closed while registered leaves the epoll set with its last reference: its events
//!   stay pending and never fire (the loop sleeps; `del` them before or after the close).
//! * An fd closed, then deleted, while a `dup` (or a forked child) keeps the file open: the
//!   registration outlives the close and the `EPOLL_CTL_DEL` by the closed number fails, so
//!   the kernel keeps reporting an fd no event watches. Such a report (an fd we hold
//!   unregistered after a failed `DEL` before the wait) makes the selector rebuild its epoll
//!   set from the wanted interest, which drops the stale registration. Not detectable: the
//!   number reused by a new registration before the stale one reports (see above).

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
    /// Wait epoch at which an `EPOLL_CTL_DEL` of this fd failed (0 = none since the last
    /// successful `ADD`/`MOD`): the registration may have survived, see the module docs.
    del_failed: u64,
    /// A batched `ADD`/`MOD` of `want` failed: the kernel does not watch this fd although
    /// its events are added. Reported once (see `failed`); the next change retries.
    failed: bool,
}

pub(crate) struct Selector {
    epfd: RawFd,
    events: Vec<libc::epoll_event>,
    fds: Vec<FdState>,
    changes: Vec<RawFd>,
    /// fds whose batched registration failed, to report with the next wait.
    failed: Vec<RawFd>,
    deferring: bool,
    use_changelist: bool,
    /// Counts waits; a stale report is one for an fd whose `DEL` failed before its wait.
    epoch: u64,
    /// fds with a nonzero `del_failed` (the stale-report check is skipped while 0).
    n_del_failed: usize,
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
            failed: Vec::new(),
            deferring: false,
            use_changelist,
            epoch: 1,
            n_del_failed: 0,
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
        super::fd_slot(&mut self.fds, fd)
    }

    /// The fd's combined interest goes from `old` to `new`.
    pub(crate) fn change(&mut self, fd: RawFd, _old: u8, new: u8) -> io::Result<()> {
        let deferring = self.deferring;
        let st = self.state(fd);
        if st.want == new && !st.dirty && st.registered == new {
            return Ok(());
        }
        if st.registered == 0 && !st.dirty {
            // First registration (or a retry after a failed batched one): immediate, so
            // errors reach the caller.
            st.failed = false;
            if new == 0 {
                st.want = 0;
                return Ok(());
            }
            if let Err(e) = self.ctl_add(fd, new) {
                self.state(fd).want = 0;
                return Err(e);
            }
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
        st.failed = res.is_err() && st.want != 0;
        res
    }

    /// Applies the change list (before `epoll_wait`). An error here cannot be returned to
    /// the `add` that caused it (that returned already): it is logged, and the fd's events
    /// get READ|WRITE|CLOSED once (their own I/O then reports the real error), as for an fd
    /// poll finds closed — never silence, never a spin. The events stay added (the table
    /// and `wanted` agree); the kernel does not watch the fd until its interest changes.
    fn apply_changes(&mut self) {
        let mut changes = std::mem::take(&mut self.changes);
        for fd in changes.drain(..) {
            if let Err(e) = self.apply_one(fd) {
                if self.state(fd).failed {
                    log::warn!("evrs: epoll cannot watch fd {fd} ({e}); its events are told once");
                    self.failed.push(fd);
                }
            }
        }
        self.changes = changes;
    }

    /// Reports the fds whose batched registration failed (once each) into `ready`.
    fn report_failed(failed: &mut Vec<RawFd>, ready: &mut Vec<super::Polled>) {
        for fd in failed.drain(..) {
            ready.push(super::Polled::ready(fd, READ | WRITE | CLOSED));
        }
    }

    fn ctl_add(&mut self, fd: RawFd, mask: u8) -> io::Result<()> {
        let r = match self.ctl(libc::EPOLL_CTL_ADD, fd, mask) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                self.ctl(libc::EPOLL_CTL_MOD, fd, mask)
            }
            r => r,
        };
        if r.is_ok() {
            self.clear_del_failed(fd);
        }
        r
    }

    fn ctl_mod(&mut self, fd: RawFd, mask: u8) -> io::Result<()> {
        let r = match self.ctl(libc::EPOLL_CTL_MOD, fd, mask) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                self.ctl(libc::EPOLL_CTL_ADD, fd, mask)
            }
            r => r,
        };
        if r.is_ok() {
            self.clear_del_failed(fd);
        }
        r
    }

    fn ctl_del(&mut self, fd: RawFd) {
        // ENOENT/EBADF/EPERM mean the fd was closed (or never accepted): nothing to undo,
        // unless a dup keeps the file and its registration alive. Remember the failure, so a
        // report for this fd can be recognised as stale.
        if self.ctl(libc::EPOLL_CTL_DEL, fd, 0).is_err() {
            let epoch = self.epoch;
            let st = self.state(fd);
            if st.del_failed == 0 {
                self.n_del_failed += 1;
            }
            self.state(fd).del_failed = epoch;
        }
    }

    fn clear_del_failed(&mut self, fd: RawFd) {
        if self.n_del_failed > 0 {
            let st = self.state(fd);
            if st.del_failed != 0 {
                st.del_failed = 0;
                self.n_del_failed -= 1;
            }
        }
    }

    /// After a wait of epoch `epoch` that reported `events`: is any of them a stale
    /// registration (the fd is unregistered, and its `DEL` failed before that wait)? Then
    /// rebuild the epoll set, which is the only way to drop a registration whose fd number is
    /// closed.
    fn drop_stale(&mut self, epoch: u64, events: &[libc::epoll_event]) {
        let stale = events.iter().any(|ev| {
            self.fds
                .get(ev.u64 as usize)
                .is_some_and(|st| st.registered == 0 && st.del_failed != 0 && st.del_failed < epoch)
        });
        if stale {
            // On failure the old set stays; the next stale report retries.
            let _ = self.rebuild(false);
        }
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

    /// Before a wait: the change list goes to the kernel, a new epoch starts, and a
    /// registration that failed makes the wait not block (its report is due now).
    #[inline]
    fn begin_wait(&mut self, timeout: Option<Duration>) -> Option<Duration> {
        self.apply_changes();
        self.epoch += 1;
        if self.failed.is_empty() {
            timeout
        } else {
            Some(Duration::ZERO)
        }
    }

    /// Waits for readiness and appends `(fd, ready bits)` to `ready`.
    #[inline]
    pub(crate) fn dispatch(
        &mut self,
        timeout: Option<Duration>,
        ready: &mut Vec<super::Polled>,
    ) -> io::Result<()> {
        let timeout = self.begin_wait(timeout);
        let res = wait(self.epfd, &mut self.events, timeout, ready);
        Self::report_failed(&mut self.failed, ready);
        if self.n_del_failed > 0 && !self.events.is_empty() {
            let events = std::mem::take(&mut self.events);
            self.drop_stale(self.epoch, &events);
            self.events = events;
        }
        res
    }

    /// [`dispatch`](Self::dispatch), handing each report to `sink` as it is read from the
    /// kernel's buffer (failed registrations after them, as `dispatch` appends them).
    #[inline]
    pub(crate) fn dispatch_each(
        &mut self,
        timeout: Option<Duration>,
        sink: &mut impl super::Sink,
    ) -> io::Result<()> {
        let timeout = self.begin_wait(timeout);
        let res = wait_kernel(self.epfd, &mut self.events, timeout);
        for ev in &self.events {
            sink.take(super::Polled::ready(ev.u64 as RawFd, from_epoll(ev.events)));
        }
        for fd in self.failed.drain(..) {
            sink.take(super::Polled::ready(fd, READ | WRITE | CLOSED));
        }
        if self.n_del_failed > 0 && !self.events.is_empty() {
            let events = std::mem::take(&mut self.events);
            self.drop_stale(self.epoch, &events);
            self.events = events;
        }
        res
    }

    /// Applies the change list and points `w` at the epoll set, so a shared base can wait
    /// with its lock released (the epoll fd itself is safe to wait on from any thread).
    /// First checks what `w`'s previous wait reported for stale registrations (before the
    /// change list: a `DEL` that fails now is no evidence against that wait's reports).
    pub(crate) fn prepare_wait(&mut self, w: &mut Waiter) {
        if self.n_del_failed > 0 && !w.events.is_empty() {
            self.drop_stale(w.epoch, &w.events);
        }
        self.apply_changes();
        self.epoch += 1;
        w.epfd = self.epfd;
        w.epoch = self.epoch;
        w.failed.clear();
        w.failed.append(&mut self.failed);
    }
}

/// A detached wait: the epoll fd and an events buffer owned by the waiting thread. The
/// buffer keeps the last wait's reports until the next `prepare_wait` has looked at them.
pub(crate) struct Waiter {
    epfd: RawFd,
    epoch: u64,
    events: Vec<libc::epoll_event>,
    /// Failed registrations to report with this wait's results.
    failed: Vec<RawFd>,
}

impl Waiter {
    pub(crate) fn new() -> Waiter {
        Waiter {
            epfd: -1,
            epoch: 0,
            events: Vec::with_capacity(INITIAL_EVENTS),
            failed: Vec::new(),
        }
    }

    pub(crate) fn wait(
        &mut self,
        timeout: Option<Duration>,
        ready: &mut Vec<super::Polled>,
    ) -> io::Result<()> {
        let timeout = if self.failed.is_empty() {
            timeout
        } else {
            Some(Duration::ZERO)
        };
        let res = wait(self.epfd, &mut self.events, timeout, ready);
        Selector::report_failed(&mut self.failed, ready);
        res
    }
}

/// One `epoll_wait` into `events`, whose results are appended to `ready` (see
/// [`wait_kernel`]).
#[inline]
fn wait(
    epfd: RawFd,
    events: &mut Vec<libc::epoll_event>,
    timeout: Option<Duration>,
    ready: &mut Vec<super::Polled>,
) -> io::Result<()> {
    let res = wait_kernel(epfd, events, timeout);
    // Room for every result a wait can return: the buffer grows only with the events
    // buffer (a new high of ready fds), never mid-dispatch. `extend` over a slice reserves
    // once instead of checking capacity per event.
    ready.reserve(events.capacity());
    // A stale registration (DEL queued or failed) finds no events in the fd table.
    ready.extend(
        events
            .iter()
            .map(|ev| super::Polled::ready(ev.u64 as RawFd, from_epoll(ev.events))),
    );
    res
}

/// One `epoll_wait` into `events` (its previous contents are dropped first; a full buffer
/// doubles, up to `MAX_EVENTS`). The reports stay in `events` after the call (none after an
/// error or an interrupted wait).
#[inline]
fn wait_kernel(
    epfd: RawFd,
    events: &mut Vec<libc::epoll_event>,
    timeout: Option<Duration>,
) -> io::Result<()> {
    let cap = events.capacity();
    if events.len() == cap && cap < MAX_EVENTS {
        *events = Vec::with_capacity(cap * 2);
    } else {
        events.clear();
    }
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
    Ok(())
}

impl Selector {
    /// After `fork`: the epoll set is shared with the parent, so it must not be touched.
    /// Drop our copy of it (pending changes included) and build a fresh one from `want`.
    pub(crate) fn reinit(&mut self) -> io::Result<()> {
        self.rebuild(true)
    }

    /// A fresh epoll set holding exactly `want` (pending changes included). `strict`: the
    /// first failing `ADD` is returned (fork); otherwise an fd that cannot be added (closed
    /// while its events stay) is left unregistered, as `apply_one` leaves it.
    fn rebuild(&mut self, strict: bool) -> io::Result<()> {
        // SAFETY: epoll_create1 takes no pointers.
        let epfd = syscall!(epoll_create1(libc::EPOLL_CLOEXEC))?;
        // The new set takes the old one's fd number (dup3 closes the old set atomically),
        // so the base never appears under a new number: the program may have closed a
        // number this call would otherwise take for good, and `dup2` onto it later (libevent
        // regress main/dup_fd does exactly that, after the stale-dup rebuild below).
        // SAFETY: dup3 on two fds we own; no pointers.
        let r = syscall!(dup3(epfd, self.epfd, libc::O_CLOEXEC));
        super::close(epfd);
        r?;
        self.changes.clear();
        self.n_del_failed = 0;
        for fd in 0..self.fds.len() {
            let st = &mut self.fds[fd];
            st.registered = 0;
            st.dirty = false;
            st.went_zero = false;
            st.del_failed = 0;
            let want = st.want;
            // An fd whose registration failed before stays unwatched (it was reported).
            if want != 0 && !st.failed {
                match self.ctl_add(fd as RawFd, want) {
                    Ok(()) => self.fds[fd].registered = want,
                    Err(e) if strict => return Err(e),
                    Err(_) => {
                        self.fds[fd].failed = true;
                        self.failed.push(fd as RawFd);
                    }
                }
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

/// ERR or HUP → READ|WRITE|CLOSED; IN → READ; OUT → WRITE; RDHUP → CLOSED (module docs).
#[inline(always)]
fn from_epoll(e: u32) -> u8 {
    // One lookup for the low five bits (IN, PRI, OUT, ERR, HUP), one shift for RDHUP: the
    // dispatch path converts every ready fd.
    const _: () = assert!(libc::EPOLLRDHUP >> 6 == CLOSED as i32);
    LOW_BITS[(e & 0x1f) as usize] | ((e >> 6) as u8 & CLOSED)
}

const LOW_BITS: [u8; 32] = {
    let mut t = [0u8; 32];
    let mut e = 0;
    while e < 32 {
        let mut bits = 0;
        if e & (libc::EPOLLERR | libc::EPOLLHUP) as usize != 0 {
            bits |= READ | WRITE | CLOSED;
        }
        if e & libc::EPOLLIN as usize != 0 {
            bits |= READ;
        }
        if e & libc::EPOLLOUT as usize != 0 {
            bits |= WRITE;
        }
        t[e] = bits;
        e += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_and_hangup_wake_every_kind_of_watcher() {
        let all = READ | WRITE | CLOSED;
        for e in [
            libc::EPOLLERR,
            libc::EPOLLHUP,
            libc::EPOLLHUP | libc::EPOLLRDHUP,
            libc::EPOLLERR | libc::EPOLLHUP | libc::EPOLLRDHUP | libc::EPOLLIN,
        ] {
            assert_eq!(from_epoll(e as u32), all, "{e:#x}");
        }
        assert_eq!(from_epoll(libc::EPOLLIN as u32), READ);
        assert_eq!(from_epoll(libc::EPOLLOUT as u32), WRITE);
        assert_eq!(
            from_epoll((libc::EPOLLIN | libc::EPOLLRDHUP) as u32),
            READ | CLOSED
        );
    }
}
