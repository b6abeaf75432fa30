//! The io_uring backend, readiness mode: every fd event is a `POLL_ADD` request on one
//! ring, and one `io_uring_enter` per loop iteration both submits the iteration's changes
//! and waits (the timeout rides in the same call, `IORING_ENTER_EXT_ARG`).
//!
//! # Semantics, as the epoll backend's
//! * **Level-triggered** interest is a one-shot poll, re-armed after each report while the
//!   interest lasts (queued, so a callback that deletes its event costs no request). A
//!   one-shot poll checks the fd when it is armed, so a readiness nobody consumed is reported
//!   again at the next wait — what epoll does for level-triggered fds.
//! * **Edge-triggered** interest (`ET`) is a multishot poll: one report per wake-up of the
//!   fd, none while it merely stays ready. A multishot poll the kernel ends (a report
//!   without `IORING_CQE_F_MORE`) is re-armed.
//! * `CLOSED` asks for `POLLRDHUP`; `POLLERR`/`POLLHUP` → READ|WRITE|CLOSED, as on epoll.
//! * A change of an fd's interest removes its poll (by its token) and arms a new one; each
//!   poll carries a generation in its token, so a report of a removed poll still in the
//!   completion queue is recognised and dropped.
//! * A poll that fails (the fd was closed before it was armed: `EBADF`) reports
//!   READ|WRITE|CLOSED once and is not re-armed until the interest changes: the events' own
//!   I/O then reports the error — never silence, never a spin.
//! * An fd's first registration is checked at once (`fcntl`), so `add` on a closed fd fails
//!   as on epoll. Everything else is applied at the next wait, inside or outside a loop.
//!
//! # The ring
//! Set up with `SINGLE_ISSUER | DEFER_TASKRUN` where the kernel has them (completions are
//! produced only when the loop asks for them: no interrupting task work) and `R_DISABLED`,
//! so the thread that first waits — not the one that built the base — becomes the issuer. A
//! wait from another thread later (a base moved between threads) gets `EEXIST`; the ring is
//! then rebuilt for that thread, interest re-armed. Older kernels get `COOP_TASKRUN`, then
//! no flags. Linux 5.13 is required (`IORING_FEAT_EXT_ARG` for wait timeouts, multishot
//! poll for edge-triggered interest): on an older kernel the backend is unavailable and the
//! base falls back to the next one, with a warning.
//!
//! # Differences from epoll (documented, not hidden)
//! A report carries the readiness the kernel saw when it woke the poll, not a re-check at
//! the wait as epoll makes: a readiness consumed in between (the program read the fd after
//! the wake-up, before the wait) is still reported once. Non-blocking I/O takes it as an
//! `EAGAIN`, as any spurious wake-up; code that treats "readable" as "data is there"
//! without reading must ask the fd.
//!
//! A poll request holds a reference to the file: an fd closed while its events are still
//! added stays open underneath (the peer sees no close) until the events are deleted and
//! the loop has waited once more, or the base is freed. Delete events before closing their
//! fd, as libevent requires anyway; `BufferEvent`s and `evrs::rt` do.
//!
//! A [`Waiter`] (for a shared base, waiting with its lock released) only submits what
//! `prepare_wait` queued and copies raw completions; the selector interprets them when the
//! lock is back ([`Selector::settle`]). Other threads never touch the ring: their changes
//! wait on the change list for the loop thread.

use super::interest::{CLOSED, ET, READ, WRITE};
use super::Polled;
use io_uring::{cqueue, opcode, squeue, types, IoUring};
use std::io;
use std::os::unix::io::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Submission queue entries (a full queue is submitted and refilled, never an error).
const SQ_ENTRIES: u32 = 1024;
/// Completion queue entries (8 per submission slot: multishot polls report often).
const CQ_ENTRIES: u32 = 8192;
/// Tokens of poll requests: this bit, the generation (31 bits) and the fd (32 bits).
const POLL_TAG: u64 = 1 << 63;
/// The token of `POLL_REMOVE` requests (their completions are dropped).
const REMOVE_TOKEN: u64 = u64::MAX;
const GEN_MAX: u32 = 0x7fff_fffe;

const ENTER_GETEVENTS: u32 = 1;
const ENTER_EXT_ARG: u32 = 8;

#[derive(Clone, Copy, Default)]
struct FdState {
    /// The interest the events want (READ/WRITE/CLOSED, ET).
    want: u8,
    /// The interest of the poll in flight (0: none).
    armed: u8,
    /// The generation of the poll in flight.
    gen: u32,
    /// On the change list.
    dirty: bool,
    /// `want` went to 0 and back since the last apply (the fd may be a new file).
    went_zero: bool,
    /// The last poll failed: not re-armed until the interest changes.
    failed: bool,
}

/// The ring, shared with a detached [`Waiter`].
struct Ring {
    ring: IoUring,
    /// An enter was refused because another thread is the ring's issuer.
    wrong_thread: AtomicBool,
    /// The process that built it (a forked child must not submit to its parent's ring).
    pid: u32,
}

pub(crate) struct Selector {
    ring: Arc<Ring>,
    /// The thread that enabled the ring (its issuer; `None` until the first apply).
    issuer: Option<u64>,
    /// The loop runs callbacks: changes wait for its next wait.
    batching: bool,
    /// The last apply left changes queued (the submission queue was full): do not block.
    behind: bool,
    /// A queued change removes an fd's poll (applied at once outside a loop: see `change`).
    removals: bool,
    fds: Vec<FdState>,
    changes: Vec<RawFd>,
    next_gen: u32,
    /// Requests that change interest (`POLL_ADD`, `POLL_REMOVE`) queued so far.
    pub(crate) ctl_calls: u64,
}

fn build_ring() -> io::Result<IoUring> {
    let attempts: [fn(&mut io_uring::Builder) -> &mut io_uring::Builder; 3] = [
        |b| {
            b.setup_single_issuer()
                .setup_defer_taskrun()
                .setup_r_disabled()
        },
        |b| b.setup_coop_taskrun(),
        |b| b,
    ];
    let mut last = io::Error::from_raw_os_error(libc::ENOSYS);
    for setup in attempts {
        let mut b = IoUring::builder();
        setup(&mut b).setup_cqsize(CQ_ENTRIES).setup_clamp();
        match b.build(SQ_ENTRIES) {
            // Multishot poll (edge-triggered interest) came with Linux 5.13, which is also
            // when IORING_FEAT_RSRC_TAGS appeared: the feature bit stands for it.
            Ok(ring)
                if ring.params().is_feature_ext_arg()
                    && ring.params().is_feature_resource_tagging() =>
            {
                return Ok(ring)
            }
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "io_uring older than Linux 5.13 (no wait timeouts or no multishot poll)",
                ))
            }
            // EINVAL: a flag this kernel lacks; try fewer. Anything else (ENOSYS, EPERM
            // from io_uring_disabled or seccomp, ENOMEM/memlock) is final.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

fn poll_mask(interest: u8) -> u32 {
    let mut m = 0;
    if interest & READ != 0 {
        m |= libc::POLLIN as u32;
    }
    if interest & WRITE != 0 {
        m |= libc::POLLOUT as u32;
    }
    if interest & CLOSED != 0 {
        m |= libc::POLLRDHUP as u32;
    }
    m
}

/// A poll result (`revents`) as readiness bits (module docs).
fn from_poll(revents: u32) -> u8 {
    if revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) as u32 != 0 {
        return READ | WRITE | CLOSED;
    }
    let mut bits = 0;
    if revents & libc::POLLIN as u32 != 0 {
        bits |= READ;
    }
    if revents & libc::POLLOUT as u32 != 0 {
        bits |= WRITE;
    }
    if revents & libc::POLLRDHUP as u32 != 0 {
        bits |= CLOSED;
    }
    bits
}

fn token(fd: RawFd, gen: u32) -> u64 {
    POLL_TAG | (u64::from(gen) << 32) | u64::from(fd as u32)
}

/// One `io_uring_enter`: submits what is queued and waits for at least one completion for
/// at most `timeout` (`None`: forever; zero: not at all). Timeouts and interruptions are not
/// errors.
fn enter(ring: &Ring, timeout: Option<Duration>) -> io::Result<()> {
    // SAFETY: reading the queue's length races with nobody: only the issuing thread (this
    // one, holding the selector or its detached waiter) touches the submission queue.
    let to_submit = unsafe { ring.ring.submission_shared() }.len() as u32;
    let sub = ring.ring.submitter();
    let r = match timeout {
        None => {
            // SAFETY: no argument is passed (`None`), so no pointer is read.
            unsafe { sub.enter::<libc::sigset_t>(to_submit, 1, ENTER_GETEVENTS, None) }
        }
        Some(d) => {
            let ts = types::Timespec::new()
                .sec(d.as_secs())
                .nsec(d.subsec_nanos());
            let args = types::SubmitArgs::new().timespec(&ts);
            let min = u32::from(!d.is_zero());
            // SAFETY: `args` is the kernel's `io_uring_getevents_arg` (the type is
            // `repr(transparent)` over it), valid with `ts` for the whole call.
            unsafe { sub.enter(to_submit, min, ENTER_GETEVENTS | ENTER_EXT_ARG, Some(&args)) }
        }
    };
    match r {
        Ok(_) => Ok(()),
        Err(e) => match e.raw_os_error() {
            Some(libc::ETIME) | Some(libc::EINTR) => Ok(()),
            // The completion queue is full of unread completions: read them first. (EAGAIN,
            // the kernel short of memory, is an error: retrying at once would spin.)
            Some(libc::EBUSY) => Ok(()),
            Some(libc::EEXIST) => {
                ring.wrong_thread.store(true, Ordering::Relaxed);
                Ok(())
            }
            _ => Err(e),
        },
    }
}

/// Copies the ring's completions out: `f(token, result, flags)` for each. Entries the
/// kernel kept aside when the queue overflowed are flushed in (a bounded number of rounds).
fn drain(ring: &Ring, mut f: impl FnMut(u64, i32, u32)) {
    for _ in 0..8 {
        // SAFETY: only the issuing thread reads the completion queue (module docs).
        let cq = unsafe { ring.ring.completion_shared() };
        for e in cq {
            let e: cqueue::Entry = e;
            f(e.user_data(), e.result(), e.flags());
        }
        // SAFETY: as above, for the submission queue's flags.
        if !unsafe { ring.ring.submission_shared() }.cq_overflow() {
            return;
        }
        // SAFETY: no argument is passed, so no pointer is read.
        let _ = unsafe {
            ring.ring
                .submitter()
                .enter::<libc::sigset_t>(0, 0, ENTER_GETEVENTS, None)
        };
    }
}

impl Selector {
    pub(crate) fn new() -> io::Result<Selector> {
        Ok(Selector {
            ring: Arc::new(Ring {
                ring: build_ring()?,
                wrong_thread: AtomicBool::new(false),
                pid: std::process::id(),
            }),
            issuer: None,
            batching: false,
            behind: false,
            removals: false,
            fds: Vec::new(),
            changes: Vec::new(),
            next_gen: 0,
            ctl_calls: 0,
        })
    }

    /// The interest this fd will have once the change list is applied.
    pub(crate) fn wanted(&self, fd: RawFd) -> u8 {
        self.fds.get(fd as usize).map_or(0, |st| st.want)
    }

    fn state(&mut self, fd: RawFd) -> &mut FdState {
        super::fd_slot(&mut self.fds, fd)
    }

    fn mark(&mut self, fd: RawFd) {
        let st = self.state(fd);
        if !st.dirty {
            st.dirty = true;
            self.changes.push(fd);
        }
    }

    /// The fd's combined interest goes from `old` to `new` (applied at the next wait).
    pub(crate) fn change(&mut self, fd: RawFd, _old: u8, new: u8) -> io::Result<()> {
        let st = self.state(fd);
        if st.want == new {
            return Ok(());
        }
        if st.want == 0 && st.armed == 0 && !st.dirty {
            // First registration: the verdict on the fd now, as epoll's ADD gives it (a
            // closed fd is EBADF; a regular file or directory EPERM, as on epoll — a poll of
            // one is always ready, and an edge-triggered one would be re-armed forever).
            super::check_pollable(fd)?;
        }
        let st = self.state(fd);
        if new != 0 && st.want == 0 {
            st.went_zero = st.armed != 0;
        }
        st.want = new;
        st.failed = false;
        if new == 0 && st.armed != 0 {
            self.removals = true;
        }
        self.mark(fd);
        if self.removals && !self.batching {
            self.flush_now();
        }
        Ok(())
    }

    /// While `on`, changes wait for the next wait. Off (the loop stopped running callbacks)
    /// a pending removal is submitted at once: a poll holds its file, and a program that
    /// deletes an event and closes its fd outside a loop must see the file closed (a
    /// listening socket freed, its port bound again at once).
    pub(crate) fn set_batching(&mut self, on: bool) {
        self.batching = on;
        if !on && self.removals {
            self.flush_now();
        }
    }

    /// Applies the change list and submits it without waiting. Called with no loop running,
    /// so no wait is using the ring: from a thread that is not its issuer, the ring is
    /// rebuilt for this one first. Never in a forked child before its `reinit` (the ring's
    /// memory is the parent's too).
    fn flush_now(&mut self) {
        if self.ring.pid != std::process::id() {
            return;
        }
        if self
            .issuer
            .is_some_and(|t| t != super::thread_bound::this_thread())
        {
            self.rebuild_quietly();
        }
        self.apply_changes();
        if let Err(e) = enter(&self.ring, Some(Duration::ZERO)) {
            log::warn!("evrs: io_uring submission failed ({e}); retried at the next wait");
        }
    }

    /// Queues one request; false if the queue stays full (the kernel takes none: its
    /// completion queue is full, or it is short of memory). Bounded: never a spin.
    fn push(&mut self, sqe: &squeue::Entry) -> bool {
        for _ in 0..4 {
            // SAFETY: only the issuing thread touches the submission queue (module docs);
            // poll requests point at no memory of ours.
            if unsafe { self.ring.ring.submission_shared().push(sqe) }.is_ok() {
                self.ctl_calls += 1;
                return true;
            }
            // Full: hand the queue to the kernel without waiting, then refill.
            if let Err(e) = enter(&self.ring, Some(Duration::ZERO)) {
                log::warn!("evrs: io_uring submission failed ({e}); changes wait");
                return false;
            }
        }
        false
    }

    fn enable(&mut self) {
        if self.issuer.is_none() {
            self.issuer = Some(super::thread_bound::this_thread());
            // Rings built without R_DISABLED refuse this with EINVAL: nothing to enable.
            let _ = self.ring.ring.submitter().register_enable_rings();
        }
    }

    /// Brings the kernel in line with the change list — as far as the submission queue
    /// takes it: what it could not take stays on the list (`behind`), and the next wait does
    /// not block, so it is applied at the next iteration.
    fn apply_changes(&mut self) {
        if self
            .issuer
            .is_some_and(|t| t != super::thread_bound::this_thread())
        {
            // Another thread is the ring's issuer (a base whose loop moved): a ring for
            // this one first, every interest re-armed, before anything is queued.
            self.rebuild_quietly();
        }
        self.enable();
        self.removals = false;
        self.behind = false;
        let mut changes = std::mem::take(&mut self.changes);
        let mut done = 0;
        for &fd in &changes {
            let st = *self.state(fd);
            let mut armed = st.armed;
            if armed != 0 && (armed != st.want || st.went_zero) {
                let rm = opcode::PollRemove::new(token(fd, st.gen))
                    .build()
                    .user_data(REMOVE_TOKEN);
                if !self.push(&rm) {
                    break;
                }
                armed = 0;
                let st = self.state(fd);
                st.armed = 0;
                st.went_zero = false;
            }
            let mut gen = st.gen;
            if st.want != 0 && armed == 0 && !st.failed {
                let next = if self.next_gen >= GEN_MAX {
                    1
                } else {
                    self.next_gen + 1
                };
                let sqe = opcode::PollAdd::new(types::Fd(fd), poll_mask(st.want))
                    .multi(st.want & ET != 0)
                    .build()
                    .user_data(token(fd, next));
                if !self.push(&sqe) {
                    break;
                }
                self.next_gen = next;
                gen = next;
                armed = st.want;
            }
            let st = self.state(fd);
            st.armed = armed;
            st.gen = gen;
            st.dirty = false;
            st.went_zero = false;
            done += 1;
        }
        if done < changes.len() {
            // The rest stays queued (still `dirty`), ahead of whatever is marked meanwhile.
            self.behind = true;
            changes.drain(..done);
            changes.append(&mut self.changes);
            self.changes = changes;
        } else {
            changes.clear();
            let marked = std::mem::replace(&mut self.changes, changes);
            self.changes.extend(marked);
        }
    }

    /// One completion: a poll's report becomes readiness (re-arming as needed); a removed
    /// poll's, a remove's own, or anything stale is dropped.
    fn complete(&mut self, tok: u64, res: i32, flags: u32) -> Option<Polled> {
        if tok == REMOVE_TOKEN {
            return None;
        }
        if tok & POLL_TAG == 0 {
            // An operation's completion (the reactor's token: bit 63 clear): the reactor's.
            return Some(Polled::Done {
                token: tok,
                res,
                flags,
            });
        }
        let fd = (tok & 0xffff_ffff) as u32 as RawFd;
        let gen = ((tok >> 32) & 0x7fff_ffff) as u32;
        let st = self.fds.get_mut(fd as usize)?;
        if st.armed == 0 || st.gen != gen {
            return None;
        }
        if res >= 0 && cqueue::more(flags) {
            // A multishot poll goes on.
            return Some(Polled::ready(fd, from_poll(res as u32)));
        }
        st.armed = 0;
        let report = if res == -libc::ECANCELED {
            // Ended by the kernel (ours are stale by now): arm again, nothing to tell.
            None
        } else if res < 0 {
            st.failed = true;
            log::warn!(
                "evrs: io_uring cannot watch fd {fd} ({}); its events are told once",
                io::Error::from_raw_os_error(-res)
            );
            return Some(Polled::ready(fd, READ | WRITE | CLOSED));
        } else {
            Some(Polled::ready(fd, from_poll(res as u32)))
        };
        if st.want != 0 {
            // Level-triggered (or an ended multishot): watch again from the next wait.
            self.mark(fd);
        }
        report
    }

    /// Applies the change list, waits at most `timeout` and hands each readiness to `sink`.
    pub(crate) fn dispatch_each(
        &mut self,
        timeout: Option<Duration>,
        sink: &mut impl super::Sink,
    ) -> io::Result<()> {
        self.apply_changes();
        let timeout = if self.behind {
            Some(Duration::ZERO)
        } else {
            timeout
        };
        let res = enter(&self.ring, timeout);
        let ring = self.ring.clone();
        drain(&ring, |tok, r, fl| {
            if let Some(p) = self.complete(tok, r, fl) {
                sink.take(p);
            }
        });
        if self.ring.wrong_thread.load(Ordering::Relaxed) {
            self.rebuild_quietly();
        }
        res
    }

    /// [`dispatch_each`](Self::dispatch_each) into a list.
    pub(crate) fn dispatch(
        &mut self,
        timeout: Option<Duration>,
        ready: &mut Vec<Polled>,
    ) -> io::Result<()> {
        struct Collect<'a>(&'a mut Vec<Polled>);
        impl super::Sink for Collect<'_> {
            fn take(&mut self, p: Polled) {
                self.0.push(p);
            }
        }
        self.dispatch_each(timeout, &mut Collect(ready))
    }

    /// Applies the change list and points `w` at the ring, for a wait without the base's
    /// lock. A ring refused as another thread's is rebuilt first (this thread waits next).
    pub(crate) fn prepare_wait(&mut self, w: &mut Waiter) {
        if self.ring.wrong_thread.load(Ordering::Relaxed) {
            self.rebuild_quietly();
        }
        self.apply_changes();
        w.ring = Some(self.ring.clone());
        w.behind = self.behind;
    }

    /// Turns what a detached wait copied out (raw completions) into readiness, in place.
    pub(crate) fn settle(&mut self, polled: &mut Vec<Polled>) {
        let mut out = 0;
        for i in 0..polled.len() {
            let p = match polled[i] {
                Polled::Done { token, res, flags } => self.complete(token, res, flags),
                ready => Some(ready),
            };
            if let Some(p) = p {
                polled[out] = p;
                out += 1;
            }
        }
        polled.truncate(out);
    }

    /// A new ring (after `fork`, or for another issuing thread), every interest re-armed.
    pub(crate) fn reinit(&mut self) -> io::Result<()> {
        let ring = build_ring()?;
        self.ring = Arc::new(Ring {
            ring,
            wrong_thread: AtomicBool::new(false),
            pid: std::process::id(),
        });
        self.issuer = None;
        self.removals = false;
        self.changes.clear();
        for fd in 0..self.fds.len() {
            let st = &mut self.fds[fd];
            st.armed = 0;
            st.dirty = false;
            st.went_zero = false;
            if st.want != 0 && !st.failed {
                self.mark(fd as RawFd);
            }
        }
        Ok(())
    }

    fn rebuild_quietly(&mut self) {
        log::debug!("evrs: io_uring ring rebuilt for the thread now running the loop");
        if let Err(e) = self.reinit() {
            log::warn!("evrs: io_uring ring could not be rebuilt ({e})");
            self.ring.wrong_thread.store(false, Ordering::Relaxed);
        }
    }
}

/// A detached wait: the ring, shared with the selector. It submits what the selector
/// queued, waits, and copies the completions out as raw entries for [`Selector::settle`].
pub(crate) struct Waiter {
    ring: Option<Arc<Ring>>,
    /// Changes are still queued (see `Selector::apply_changes`): the wait does not block.
    behind: bool,
}

impl Waiter {
    pub(crate) fn new() -> Waiter {
        Waiter {
            ring: None,
            behind: false,
        }
    }

    pub(crate) fn wait(
        &mut self,
        timeout: Option<Duration>,
        out: &mut Vec<Polled>,
    ) -> io::Result<()> {
        let Some(ring) = self.ring.as_ref() else {
            return Err(io::Error::other("io_uring wait was not prepared"));
        };
        let timeout = if self.behind {
            Some(Duration::ZERO)
        } else {
            timeout
        };
        let res = enter(ring, timeout);
        drain(ring, |token, res, flags| {
            out.push(Polled::Done { token, res, flags })
        });
        res
    }
}
