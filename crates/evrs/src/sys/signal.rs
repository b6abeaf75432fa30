//! Signals, delivered through self-pipes: one process-wide handler writes the signal number
//! as a single byte into the pipe of **every** base that watches that signal; each base
//! watches its pipe's read end like any other fd and turns each byte into a callback.
//!
//! A base may instead watch **exclusively** (libevent's rule, for the C ABI): of the
//! exclusive watchers only one receives signals — the one whose base most recently added a
//! signal event or started its loop ([`claim`]); non-exclusive watchers are unaffected.
//!
//! # The process-wide registry
//!
//! Bases register their pipe's write end per signal with [`watch`] / [`unwatch`] (and
//! [`unwatch_all`] when the base goes, [`move_watcher`] after a fork re-created the pipe).
//! Our handler is installed for a signal while at least one base watches it; the action it
//! replaced is saved when the first watcher arrives and restored when the last one goes, so
//! one base removing its events never strips another base's handler, and dropping the base
//! that installed first does not stop delivery to the others.
//!
//! Two layers:
//! - [`WATCHERS`], a fixed static table the handler scans: per slot an `AtomicI32` write fd
//!   and an `AtomicU64` mask of watched signals (bit `signo - 1`). The handler only loads
//!   atomics and calls `write(2)`: no locks, no allocation, so it is async-signal-safe.
//!   (Rust's atomic types exist only where the target supports them natively, so they are
//!   lock-free.)
//! - [`REGISTRY`], a `Mutex` taken only outside the handler, which serialises slot
//!   allocation and holds per signal the number of watching slots and the saved action.
//!
//! # Races with the handler
//!
//! A handler on another thread may have loaded a slot's fd just before the slot is released;
//! if the base then closed its pipe and the number were reused, the byte could land in an
//! unrelated file. So each slot also counts the handlers between loading its fd and finishing
//! the write (`busy`), and releasing a slot clears it, then waits for `busy` to drain before
//! returning; the base closes its pipe only after that (write end still open until then).
//! The wait is bounded (100 ms) because after `fork()` a count left by a thread that was
//! inside the handler at the moment of the fork never drains in the child; in that (already
//! unlikely) case the remaining risk is one stray byte to a reused fd number. A handler that
//! reads a slot while it is being re-assigned to another base writes only if that base's mask
//! also has the signal, so it is never a false delivery.
//!
//! A pipe that is full drops the byte (`EAGAIN`): that base undercounts deliveries, but a full
//! pipe is readable, so the base is woken all the same.
//!
//! # Fork
//!
//! The child inherits the table. [`EventBase::reinit`](crate::EventBase::reinit) gives each
//! base a new pipe and [`move_watcher`] points its slot at it, without the registry lock (only
//! the slot's own fd changes, and only its base changes that), so a lock held by a parent
//! thread at the moment of the fork cannot hang `reinit`. Limits: a base the child does *not*
//! reinit keeps writing into the pipe it shares with the parent's copy; and adding or removing
//! signal events in the child takes the lock, which a parent thread may have held at the fork
//! (as with any lock after `fork()` in a threaded process).

use super::syscall;
use std::io;
use std::os::unix::io::RawFd;
use std::sync::atomic::{
    AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicUsize,
    Ordering::{Relaxed, SeqCst},
};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Highest signal number plus one (Linux: 1..=64).
pub(crate) const NSIG: usize = 65;

/// How many pipes (bases) may watch signals at once, process-wide.
pub(crate) const MAX_WATCHERS: usize = 256;

/// How long releasing a slot waits for handlers still using its fd.
const QUIESCE_LIMIT: Duration = Duration::from_millis(100);

/// One base's pipe as the handler sees it.
struct Watcher {
    /// The pipe's write end, or -1 for a free slot. Changed only under [`REGISTRY`] (or by
    /// the slot's own base in [`move_watcher`]).
    fd: AtomicI32,
    /// Watched signals: bit `signo - 1`.
    mask: AtomicU64,
    /// Handlers between loading `fd` and finishing their write.
    busy: AtomicU32,
    /// An exclusive watcher: delivered to only while it is [`EXCLUSIVE_OWNER`].
    exclusive: AtomicBool,
}

static WATCHERS: [Watcher; MAX_WATCHERS] = [const {
    Watcher {
        fd: AtomicI32::new(-1),
        mask: AtomicU64::new(0),
        busy: AtomicU32::new(0),
        exclusive: AtomicBool::new(false),
    }
}; MAX_WATCHERS];

/// The pipe of the exclusive watcher that receives signals now, or -1.
static EXCLUSIVE_OWNER: AtomicI32 = AtomicI32::new(-1);

/// Slots `0..IN_USE` have ever been allocated: the handler scans only those.
static IN_USE: AtomicUsize = AtomicUsize::new(0);

struct Registry {
    /// Per signal: how many slots watch it.
    watchers: [u32; NSIG],
    /// Per signal: the action our handler replaced, while it is installed.
    saved: [Option<libc::sigaction>; NSIG],
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    watchers: [0; NSIG],
    saved: [None; NSIG],
});

fn registry() -> MutexGuard<'static, Registry> {
    // Nothing panics while the lock is held, but stay usable if something ever does.
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Checks that `signo` is a signal a program may catch.
pub(crate) fn validate(signo: i32) -> io::Result<()> {
    if signo <= 0 || signo as usize >= NSIG {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("signal number {signo} is out of range 1..{}", NSIG - 1),
        ));
    }
    if signo == libc::SIGKILL || signo == libc::SIGSTOP {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("signal {signo} (SIGKILL/SIGSTOP) cannot be caught"),
        ));
    }
    Ok(())
}

fn bit(signo: i32) -> u64 {
    1u64 << (signo - 1)
}

extern "C" fn handler(signo: libc::c_int) {
    // SAFETY: __errno_location returns this thread's errno slot; we restore it before returning
    // because the interrupted code may be between a failing call and its errno check.
    let errno = unsafe { *libc::__errno_location() };
    if signo > 0 && (signo as usize) < NSIG {
        let bit = bit(signo);
        let byte = signo as u8;
        let used = IN_USE.load(SeqCst).min(MAX_WATCHERS);
        for w in &WATCHERS[..used] {
            if w.mask.load(SeqCst) & bit == 0 {
                continue;
            }
            w.busy.fetch_add(1, SeqCst);
            let fd = w.fd.load(SeqCst);
            // Re-check after announcing ourselves: a slot released (or re-assigned to a base
            // not watching this signal) in between is skipped; so is an exclusive watcher
            // that is not the owner.
            let excluded = w.exclusive.load(SeqCst) && EXCLUSIVE_OWNER.load(SeqCst) != fd;
            if fd >= 0 && w.mask.load(SeqCst) & bit != 0 && !excluded {
                // SAFETY: write(2) is async-signal-safe; the buffer is a live local byte. `fd`
                // stays open while `busy` is raised (see the module docs); a full pipe fails
                // with EAGAIN, which is fine: it is readable, so its base wakes anyway.
                let n = unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
                if n != 1 {
                    // Counted (an atomic add is async-signal-safe) and reported by the next
                    // drain through the log facade: a handler cannot log.
                    DROPPED.fetch_add(1, Relaxed);
                }
            }
            w.busy.fetch_sub(1, SeqCst);
        }
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Installs our handler for `signo`, returning the previous action.
fn install(signo: i32) -> io::Result<libc::sigaction> {
    // SAFETY: a zeroed sigaction is valid; we fill handler, mask and flags before use, and the
    // old action is written into a live zeroed struct.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigfillset(&mut sa.sa_mask);
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(signo, &sa, &mut old) == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(old)
    }
}

/// Restores a saved action.
fn restore(signo: i32, saved: &libc::sigaction) {
    // SAFETY: `saved` was filled in by the kernel by a previous sigaction call.
    unsafe {
        libc::sigaction(signo, saved, std::ptr::null_mut());
    }
}

/// The slot of `write_fd`, if it has one.
fn find(write_fd: RawFd) -> Option<&'static Watcher> {
    let used = IN_USE.load(SeqCst).min(MAX_WATCHERS);
    WATCHERS[..used]
        .iter()
        .find(|w| w.fd.load(SeqCst) == write_fd)
}

/// Takes a free slot for `write_fd` (registry lock held).
fn allocate(_reg: &mut Registry, write_fd: RawFd) -> io::Result<&'static Watcher> {
    let Some(i) = WATCHERS.iter().position(|w| w.fd.load(SeqCst) < 0) else {
        return Err(io::Error::other(format!(
            "too many event bases watching signals (at most {MAX_WATCHERS} per process)"
        )));
    };
    let w = &WATCHERS[i];
    debug_assert_eq!(w.mask.load(SeqCst), 0);
    w.fd.store(write_fd, SeqCst);
    IN_USE.fetch_max(i + 1, SeqCst);
    Ok(w)
}

/// Waits (bounded) until no handler is using the fd `w` held before it was changed.
fn quiesce(w: &Watcher) {
    let deadline = Instant::now() + QUIESCE_LIMIT;
    while w.busy.load(SeqCst) != 0 && Instant::now() < deadline {
        std::thread::yield_now();
    }
}

/// Frees a slot whose mask is already empty (registry lock held).
fn release(_reg: &mut Registry, w: &Watcher) {
    let fd = w.fd.swap(-1, SeqCst);
    let _ = EXCLUSIVE_OWNER.compare_exchange(fd, -1, SeqCst, SeqCst);
    w.exclusive.store(false, SeqCst);
    quiesce(w);
}

/// Makes the exclusive watcher `write_fd` the one that receives signals (no effect for a
/// pipe that does not watch exclusively).
pub(crate) fn claim(write_fd: RawFd) {
    let _reg = registry();
    if find(write_fd).is_some_and(|w| w.exclusive.load(SeqCst)) {
        EXCLUSIVE_OWNER.store(write_fd, SeqCst);
    }
}

/// One slot stopped watching `signo`: the last one out restores the original action.
fn forget(reg: &mut Registry, signo: usize) {
    reg.watchers[signo] = reg.watchers[signo].saturating_sub(1);
    if reg.watchers[signo] == 0 {
        if let Some(saved) = reg.saved[signo].take() {
            restore(signo as i32, &saved);
        }
    }
}

/// Delivers `signo` to the pipe `write_fd` from now on (idempotent). The first watcher of a
/// signal, process-wide, installs the handler and saves the action it replaces. Fails if
/// [`MAX_WATCHERS`] other pipes already watch signals. An `exclusive` watcher becomes the
/// one exclusive watcher that receives signals (see the module docs).
pub(crate) fn watch(write_fd: RawFd, signo: i32, exclusive: bool) -> io::Result<()> {
    validate(signo)?;
    if write_fd < 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid signal pipe fd {write_fd}"),
        ));
    }
    let mut reg = registry();
    let bit = bit(signo);
    let (w, fresh) = match find(write_fd) {
        Some(w) if w.mask.load(SeqCst) & bit != 0 => {
            if exclusive {
                EXCLUSIVE_OWNER.store(write_fd, SeqCst);
            }
            return Ok(());
        }
        Some(w) => (w, false),
        None => (allocate(&mut reg, write_fd)?, true),
    };
    if exclusive {
        w.exclusive.store(true, SeqCst);
        EXCLUSIVE_OWNER.store(write_fd, SeqCst);
    }
    // Mark the slot first: a signal arriving right after the handler is installed is counted.
    let old_mask = w.mask.fetch_or(bit, SeqCst);
    let s = signo as usize;
    if reg.watchers[s] == 0 {
        match install(signo) {
            Ok(old) => reg.saved[s] = Some(old),
            Err(e) => {
                w.mask.store(old_mask, SeqCst);
                if fresh {
                    release(&mut reg, w);
                }
                return Err(e);
            }
        }
    }
    reg.watchers[s] += 1;
    Ok(())
}

/// Stops delivering `signo` to `write_fd`; if it was the last watcher of `signo`, the
/// original action comes back. A pipe left watching nothing gives up its slot.
pub(crate) fn unwatch(write_fd: RawFd, signo: i32) {
    if signo <= 0 || signo as usize >= NSIG {
        return;
    }
    let mut reg = registry();
    let Some(w) = find(write_fd) else {
        return;
    };
    let bit = bit(signo);
    let old = w.mask.fetch_and(!bit, SeqCst);
    if old & bit == 0 {
        return;
    }
    forget(&mut reg, signo as usize);
    if old & !bit == 0 {
        release(&mut reg, w);
    }
}

/// Stops all delivery to `write_fd` (its base is going away), restoring the original action
/// of every signal it was the last watcher of. When this returns, no handler will write to
/// `write_fd` any more (within the limits in the module docs), so it may be closed.
pub(crate) fn unwatch_all(write_fd: RawFd) {
    let mut reg = registry();
    let Some(w) = find(write_fd) else {
        return;
    };
    let mask = w.mask.swap(0, SeqCst);
    for signo in 1..NSIG {
        if mask & bit(signo as i32) != 0 {
            forget(&mut reg, signo);
        }
    }
    release(&mut reg, w);
}

/// Moves `old_fd`'s watched signals to `new_fd` (the base re-created its pipe after a fork).
/// When this returns, no handler writes to `old_fd` any more, so it may be closed. Does not
/// take the registry lock (see the module docs).
pub(crate) fn move_watcher(old_fd: RawFd, new_fd: RawFd) {
    if let Some(w) = find(old_fd) {
        debug_assert!(
            find(new_fd).is_none(),
            "fd {new_fd} already watches signals"
        );
        w.fd.store(new_fd, SeqCst);
        let _ = EXCLUSIVE_OWNER.compare_exchange(old_fd, new_fd, SeqCst, SeqCst);
        quiesce(w);
    }
}

/// A non-blocking, close-on-exec pipe: (read end, write end).
pub(crate) fn pipe() -> io::Result<(RawFd, RawFd)> {
    let mut fds = [-1; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    syscall!(pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC))?;
    Ok((fds[0], fds[1]))
}

/// Reads every pending signal byte, adding one to `counts[signo]` per delivery.
/// Deliveries the handler could not write (a full pipe), process-wide, not yet reported.
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Takes the count of deliveries dropped since the last call.
pub(crate) fn take_dropped() -> u64 {
    DROPPED.swap(0, Relaxed)
}

pub(crate) fn drain(read_fd: RawFd, counts: &mut [u32; NSIG]) {
    let mut buf = [0u8; 1024];
    loop {
        // SAFETY: reads into a live local buffer of the stated length.
        match syscall!(read(read_fd, buf.as_mut_ptr().cast(), buf.len())) {
            Ok(n) if n > 0 => {
                for &b in &buf[..n as usize] {
                    if let Some(c) = counts.get_mut(b as usize) {
                        *c = c.saturating_add(1);
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            _ => break,
        }
    }
}
