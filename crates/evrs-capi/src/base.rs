//! `struct event_base` and `struct event_config` (event.h): bases, their configuration and
//! their loops.
//!
//! A C base is a [`CBase`]: the [`EventBase`] plus what the C layer needs beside it. C code
//! re-enters the library from its callbacks with nothing but pointers, so a `CBase` is only
//! ever used through a shared reference: the `EventBase` sits in an `UnsafeCell` and is
//! reached through [`CBase::with`], which hands out the loop's own `&mut EventBase` while a
//! callback of this base runs (the trampoline records it) and the cell's otherwise.

use crate::ffi::capi;
use crate::locking::BaseLock;
use crate::log;
use evrs::{BaseFlags, EventBase, EventConfig, Features, LoopFlags, Method, RunOutcome};
use std::cell::{Cell, UnsafeCell};
use std::ffi::CStr;
use std::mem::ManuallyDrop;
use std::os::raw::{c_char, c_int};
use std::ptr;
use std::rc::Rc;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::time::Duration;

/// What a C `struct event_base *` points to.
///
/// Its memory is never released: `event_base_free` drops the [`EventBase`] inside and marks
/// the `CBase` dead, and the husk (a few dozen bytes) stays on a list. So event memory that
/// still names a freed base (programs often free their base before their events) points to
/// something readable that says "freed", instead of to memory reused by someone else.
pub struct CBase {
    base: UnsafeCell<ManuallyDrop<EventBase>>,
    dead: Cell<bool>,
    /// The loop's `&mut EventBase` while one of this base's callbacks runs, else null.
    running: Cell<*mut EventBase>,
    /// `event_base_init_common_timeout`'s durations (libevent allows 256 per base), boxed
    /// because C keeps pointers to them.
    #[allow(clippy::vec_box)]
    common: UnsafeCell<Vec<Box<libc::timeval>>>,
    /// The lock of a threaded base (see [`crate::locking`]); replaced only by
    /// `event_base_free`.
    lock: UnsafeCell<Option<Rc<BaseLock>>>,
}

/// Holds a threaded base's lock for one call (released on the way out, panics included).
struct Held<'a>(&'a BaseLock);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.unlock();
    }
}

impl CBase {
    /// The base's memory comes from the program's allocator hooks, as libevent's does
    /// (and, like every `CBase`, is never released: see the type's docs).
    ///
    /// A base made while lock callbacks are installed (and not `EVENT_BASE_FLAG_NOLOCK`)
    /// is threaded: it gets its [`BaseLock`], which its loop releases while it waits.
    fn boxed(mut base: EventBase) -> *mut CBase {
        // libevent adds I/O events on fd -1 (and never polls them), and gives signals to
        // one base only.
        base.allow_unpolled_negative_fds(true);
        base.exclusive_signals(true);
        let lock = if base.flags().contains(BaseFlags::NOLOCK) {
            None
        } else {
            BaseLock::new(&mut base)
        };
        if let Some(l) = &lock {
            base.set_wait_lock(Some(l.clone() as Rc<dyn evrs::WaitLock>));
        }
        crate::mm::boxed(CBase {
            base: UnsafeCell::new(ManuallyDrop::new(base)),
            dead: Cell::new(false),
            running: Cell::new(ptr::null_mut()),
            common: UnsafeCell::new(Vec::new()),
            lock: UnsafeCell::new(lock),
        })
    }

    /// The lock of a threaded base.
    pub fn lock(&self) -> Option<&BaseLock> {
        // SAFETY: only `event_base_free` replaces it, when nothing else uses the base.
        unsafe { (*self.lock.get()).as_deref() }
    }

    /// Whether `event_base_free` has freed this base.
    ///
    /// # Safety
    /// `p` was made by this library (a live or freed base: the memory is never released).
    pub unsafe fn is_dead(p: *const CBase) -> bool {
        // SAFETY: per the contract, `p` is readable.
        unsafe { (*p).dead.get() }
    }

    /// Runs `f` on the base.
    ///
    /// # Safety
    /// `p` is a live base made by this library, used on the thread that runs it.
    pub unsafe fn with<R>(p: *mut CBase, f: impl FnOnce(&mut EventBase) -> R) -> R {
        // SAFETY: forwarded contract.
        unsafe { Self::with_then_wait(p, ptr::null(), f) }
    }

    /// As [`with`](CBase::with), and then, on a threaded base, waits (lock held) for the
    /// call of the C event `ev`'s callback running on another thread, if one is, to return
    /// (`event_del`'s blocking modes, which delete first, as libevent: a persistent event
    /// still ready would otherwise run again). `ev` null: no wait.
    ///
    /// # Safety
    /// As for `with`.
    pub unsafe fn with_then_wait<R>(
        p: *mut CBase,
        ev: *const std::os::raw::c_void,
        f: impl FnOnce(&mut EventBase) -> R,
    ) -> R {
        // SAFETY: the caller guarantees `p` is live. A shared reference only: callbacks
        // re-enter with the same pointer.
        let cb = unsafe { &*p };
        let lock = cb.lock();
        let _held = lock.map(|l| {
            l.lock();
            Held(l)
        });
        debug_assert!(!cb.dead.get(), "a freed event_base was used");
        let mut b = cb.running.get();
        if b.is_null() {
            b = lock.map_or(ptr::null_mut(), BaseLock::waiting_base);
        }
        if b.is_null() {
            // SAFETY: the ManuallyDrop is live (not dead).
            b = unsafe { &mut **cb.base.get() as *mut EventBase };
        }
        // SAFETY: the cell's base, which no other reference reaches (no loop of this base
        // runs: it would have set `running` or, waiting, `waiting_base`), or the loop's own
        // `&mut`, handed over by the trampoline or the wait, which does not use it until
        // the callback or the wait returns. On a threaded base the lock orders all of it.
        let r = f(unsafe { &mut *b });
        if let (Some(l), false) = (lock, ev.is_null()) {
            l.wait_for_callback(ev);
        }
        r
    }

    /// Calls the program's callback `f` from the loop (`b` is the loop's base): the base is
    /// recorded for the calls `f` makes, and a threaded base's lock is released meanwhile
    /// (libevent runs event callbacks unlocked). `ev` names the C event whose callback this
    /// is (null if none), for `event_del` on other threads to wait for.
    pub fn call_out(&self, b: &mut EventBase, ev: *const std::os::raw::c_void, f: impl FnOnce()) {
        let prev = self.enter(b);
        match self.lock() {
            None => f(),
            Some(l) => {
                l.callback_begins(ev);
                f();
                l.callback_ends();
            }
        }
        self.leave(prev);
    }

    /// Records the loop's base while a callback runs; returns what to restore.
    pub fn enter(&self, base: &mut EventBase) -> *mut EventBase {
        self.running.replace(base)
    }

    /// Restores what [`enter`](CBase::enter) returned.
    pub fn leave(&self, prev: *mut EventBase) {
        self.running.set(prev);
    }
}

/// Whether `p` names a base that has not been freed. `p` must be null or made by this
/// library (a `CBase`'s memory is never released, so a freed one can be asked).
pub(crate) fn is_live(p: *mut CBase) -> bool {
    // SAFETY: per the contract above.
    !p.is_null() && !unsafe { CBase::is_dead(p) }
}

/// Where each piece of event memory was last assigned (its address → its base), so that
/// `event_assign` finds an earlier assignment without reading the memory, which a program
/// may hand over uninitialised. An entry outlives memory the program dropped without
/// `event_free` (harmless: the base it names is only asked to release what that address
/// owns there, which is then right).
static ASSIGNED: std::sync::Mutex<Option<AssignedMap>> = std::sync::Mutex::new(None);

/// Address → base, hashed by one multiply (the keys are live objects' addresses).
type AssignedMap = std::collections::HashMap<
    usize,
    usize,
    std::hash::BuildHasherDefault<evrs::__capi::AddrHasher>,
>;

/// Records that `ev`'s memory is now assigned to `base`; returns the base it was assigned
/// to before, if any (one lock and one hash lookup for both).
pub(crate) fn note_assigned(
    ev: *const std::os::raw::c_void,
    base: *mut CBase,
) -> Option<*mut CBase> {
    let mut m = ASSIGNED.lock().unwrap_or_else(|e| e.into_inner());
    m.get_or_insert_with(Default::default)
        .insert(ev as usize, base as usize)
        .map(|b| b as *mut CBase)
}

pub(crate) fn forget_assigned(ev: *const std::os::raw::c_void) {
    let mut m = ASSIGNED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(m) = m.as_mut() {
        m.remove(&(ev as usize));
    }
}

/// The base `ev`'s memory was last assigned to, if any.
pub(crate) fn assigned_base(ev: *const std::os::raw::c_void) -> Option<*mut CBase> {
    let m = ASSIGNED.lock().unwrap_or_else(|e| e.into_inner());
    m.as_ref()?.get(&(ev as usize)).map(|&b| b as *mut CBase)
}

/// A base is freed: its entries go.
fn forget_base(base: *mut CBase) {
    let mut m = ASSIGNED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(m) = m.as_mut() {
        m.retain(|_, b| *b != base as usize);
    }
}

/// Freed bases' memory (see [`CBase`]), kept reachable.
static HUSKS: std::sync::Mutex<Vec<usize>> = std::sync::Mutex::new(Vec::new());

/// The process-wide current base of the 1.x API (`event_init`, `event_set`,
/// `event_dispatch`…), exported under libevent's internal name.
/// (Read through [`current_base_data`] only: see `ffi::data`.)
#[export_name = "event_global_current_base_"]
static CURRENT_BASE: AtomicPtr<CBase> = AtomicPtr::new(ptr::null_mut());

/// `event_global_current_base_`, the copy the process uses.
pub fn current_base_data() -> &'static AtomicPtr<CBase> {
    let _ = &CURRENT_BASE;
    // SAFETY: `event_global_current_base_` is `CURRENT_BASE`, an `AtomicPtr<CBase>`.
    unsafe { crate::ffi::data(crate::ffi::Data::CurrentBase) }
}

/// The current base (null if none).
pub fn current() -> *mut CBase {
    current_base_data().load(Ordering::Acquire)
}

/// `base`, or the current base when `base` is null.
pub fn or_current(base: *mut CBase) -> *mut CBase {
    if base.is_null() {
        current()
    } else {
        base
    }
}

/// What a C `struct event_config *` points to.
pub struct CConfig {
    cfg: EventConfig,
}

/// The marker of a common-timeout `timeval` (`event_base_init_common_timeout`) in its
/// `tv_usec`, the mask that finds it, and the micros' part.
const COMMON_MAGIC: libc::suseconds_t = 0x5000_0000;
const COMMON_MASK: libc::suseconds_t = 0xf000_0000;
const COMMON_USEC: libc::suseconds_t = 0x000f_ffff;

/// A `timeval` as a duration; negative parts count as zero; a common-timeout `timeval`
/// counts as the duration it stands for.
pub fn duration(tv: &libc::timeval) -> Duration {
    let s = u64::try_from(tv.tv_sec).unwrap_or(0);
    let usec = if tv.tv_usec & COMMON_MASK == COMMON_MAGIC {
        tv.tv_usec & COMMON_USEC
    } else {
        tv.tv_usec
    };
    let us = u64::try_from(usec).unwrap_or(0);
    Duration::from_secs(s) + Duration::from_micros(us)
}

/// A nullable `const struct timeval *` as an optional duration.
///
/// # Safety
/// `tv` is null or points to a readable `timeval`.
pub unsafe fn opt_duration(tv: *const libc::timeval) -> Option<Duration> {
    // SAFETY: per the contract.
    unsafe { tv.as_ref() }.map(duration)
}

/// Runs `f` on a base and returns 0, or -1 for a NULL base (libevent's rule for the
/// calls that only do something to a base).
///
/// # Safety
/// `base` is null or a live base.
unsafe fn on_base(base: *mut CBase, f: impl FnOnce(&mut EventBase)) -> c_int {
    if base.is_null() {
        return -1;
    }
    // SAFETY: per the contract.
    unsafe { CBase::with(base, f) };
    0
}

fn loop_result(r: std::io::Result<RunOutcome>) -> c_int {
    match r {
        Ok(RunOutcome::Exited) => 0,
        Ok(RunOutcome::NoEvents) => 1,
        Err(e) => {
            log::warn(&format!("event_base_loop: {e}"));
            -1
        }
    }
}

fn build(cfg: EventConfig) -> *mut CBase {
    crate::debug::note_setup();
    // libevent programs make events one by one and never reserve (see the option).
    match cfg.grow_tables_by_doubling(true).build() {
        Ok(b) => CBase::boxed(b),
        Err(e) => {
            log::warn(&format!("no event mechanism available: {e}"));
            ptr::null_mut()
        }
    }
}

/// `"epoll"` etc. as NUL-terminated static strings.
fn method_name(m: Method) -> *const c_char {
    match m {
        Method::Epoll => c"epoll".as_ptr(),
        Method::Poll => c"poll".as_ptr(),
        Method::Select => c"select".as_ptr(),
        Method::IoUring => c"io_uring".as_ptr(),
    }
}

/// The array `event_get_supported_methods` returns.
struct Methods([*const c_char; 4]);
// SAFETY: the pointers are to static, immutable C string literals.
unsafe impl Sync for Methods {}
static METHODS: Methods = Methods([
    c"epoll".as_ptr(),
    c"poll".as_ptr(),
    c"select".as_ptr(),
    ptr::null(),
]);

capi! {
    /// A base with the default configuration.
    fn event_base_new() -> *mut CBase {
        build(EventConfig::new())
    }

    /// A base built from `cfg` (NULL: defaults).
    fn event_base_new_with_config(cfg: *const CConfig) -> *mut CBase {
        // SAFETY: null or a config made by `event_config_new`.
        match unsafe { cfg.as_ref() } {
            Some(c) => build(c.cfg.clone()),
            None => build(EventConfig::new()),
        }
    }

    /// Frees a base (NULL: the current base). Events are not freed; their memory stays the
    /// program's. Refused while the base's loop runs a callback.
    fn event_base_free(base: *mut CBase) {
        let base = or_current(base);
        if base.is_null() {
            log::warn("event_base_free: no base to free");
            return;
        }
        // SAFETY: a live base made by this library.
        if !unsafe { &*base }.running.get().is_null() {
            log::warn("event_base_free: refused while the base runs a callback");
            return;
        }
        let _ = current_base_data().compare_exchange(base, ptr::null_mut(), Ordering::AcqRel, Ordering::Acquire);
        // SAFETY: a live base with no loop on the stack: nothing else reaches its
        // EventBase; it is marked dead first, so nothing will again.
        unsafe {
            if (*base).dead.replace(true) {
                log::warn("event_base_free: base freed twice");
                return;
            }
            ManuallyDrop::drop(&mut *(*base).base.get());
            (*(*base).common.get()).clear();
            *(*base).lock.get() = None;
        }
        HUSKS.lock().unwrap_or_else(|e| e.into_inner()).push(base as usize);
        forget_base(base);
    }

    /// As `event_base_free`: evrs runs no finalizers at free that C code could observe.
    fn event_base_free_nofinalize(base: *mut CBase) {
        // SAFETY: forwarded contract.
        unsafe { event_base_free(base) }
    }

    /// Runs the loop until no events remain or it is stopped.
    fn event_base_dispatch(base: *mut CBase) -> c_int {
        // SAFETY: forwarded contract.
        unsafe { event_base_loop(base, 0) }
    }

    /// Runs the loop with `EVLOOP_*` flags: 0 stopped or done, 1 nothing to wait for, -1
    /// error (also when the loop already runs).
    fn event_base_loop(base: *mut CBase, flags: c_int) -> c_int {
        if base.is_null() {
            return -1;
        }
        let flags = LoopFlags::from_bits_truncate(flags as u8);
        // SAFETY: a live base.
        unsafe {
            CBase::with(base, |b| {
                // (Not if a loop already runs: `run` refuses this one.)
                let lock = (*base).lock().filter(|_| !b.is_running());
                if let Some(l) = lock {
                    l.loop_begins();
                }
                let r = b.run(flags);
                if let Some(l) = lock {
                    l.loop_ends();
                }
                loop_result(r)
            })
        }
    }

    /// Stops the loop after `tv` (NULL: after the current pass).
    fn event_base_loopexit(base: *mut CBase, tv: *const libc::timeval) -> c_int {
        if base.is_null() {
            return -1;
        }
        // SAFETY: a live base; `tv` null or readable.
        unsafe {
            let after = opt_duration(tv).filter(|d| !d.is_zero());
            CBase::with(base, |b| if b.loopexit(after).is_ok() { 0 } else { -1 })
        }
    }

    /// Stops the loop after the running callback.
    fn event_base_loopbreak(base: *mut CBase) -> c_int {
        // SAFETY: a live base or NULL.
        unsafe { on_base(base, |b| b.loopbreak()) }
    }

    /// Ends the current pass and polls again at once.
    fn event_base_loopcontinue(base: *mut CBase) -> c_int {
        // SAFETY: a live base or NULL.
        unsafe { on_base(base, |b| b.loopcontinue()) }
    }

    /// Whether the last loop stopped through `loopexit`.
    fn event_base_got_exit(base: *mut CBase) -> c_int {
        // SAFETY: a live base.
        (!base.is_null() && unsafe { CBase::with(base, |b| b.got_exit()) }) as c_int
    }

    /// Whether the last loop stopped through `loopbreak`.
    fn event_base_got_break(base: *mut CBase) -> c_int {
        // SAFETY: a live base.
        (!base.is_null() && unsafe { CBase::with(base, |b| b.got_break()) }) as c_int
    }

    /// The backend's name.
    fn event_base_get_method(base: *const CBase) -> *const c_char {
        if base.is_null() {
            return ptr::null();
        }
        // SAFETY: a live base.
        method_name(unsafe { CBase::with(base.cast_mut(), |b| b.method()) })
    }

    /// The backend's `EV_FEATURE_*` bits.
    fn event_base_get_features(base: *const CBase) -> c_int {
        if base.is_null() {
            return 0;
        }
        // SAFETY: a live base.
        c_int::from(unsafe { CBase::with(base.cast_mut(), |b| b.features()) }.bits())
    }

    /// The backends this library can use, NULL-terminated.
    fn event_get_supported_methods() -> *const *const c_char {
        METHODS.0.as_ptr()
    }

    /// Sets the number of priorities (1..=255).
    fn event_base_priority_init(base: *mut CBase, n: c_int) -> c_int {
        if base.is_null() || n < 1 {
            return -1;
        }
        // SAFETY: a live base.
        unsafe { CBase::with(base, |b| if b.priority_init(n as usize).is_ok() { 0 } else { -1 }) }
    }

    /// The number of priorities.
    fn event_base_get_npriorities(base: *mut CBase) -> c_int {
        let base = or_current(base);
        if base.is_null() {
            return 0;
        }
        // SAFETY: a live base.
        unsafe { CBase::with(base, |b| b.priorities() as c_int) }
    }

    /// The loop's cached wall-clock time (the real time outside the loop).
    fn event_base_gettimeofday_cached(base: *mut CBase, tv: *mut libc::timeval) -> c_int {
        let base = or_current(base);
        if tv.is_null() {
            return -1;
        }
        let now = if base.is_null() {
            std::time::SystemTime::now()
        } else {
            // SAFETY: a live base.
            unsafe { CBase::with(base, |b| b.gettimeofday_cached()) }
        };
        let d = now.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        // SAFETY: `tv` is writable per the contract.
        unsafe {
            (*tv).tv_sec = d.as_secs() as libc::time_t;
            (*tv).tv_usec = d.subsec_micros() as libc::suseconds_t;
        }
        0
    }

    /// Refreshes the cached time.
    fn event_base_update_cache_time(base: *mut CBase) -> c_int {
        // SAFETY: a live base or NULL.
        unsafe { on_base(base, |b| b.update_cache_time()) }
    }

    /// Re-creates the backend after `fork` (in the child).
    fn event_reinit(base: *mut CBase) -> c_int {
        if base.is_null() {
            return -1;
        }
        // SAFETY: a live base.
        unsafe {
            CBase::with(base, |b| match b.reinit() {
                Ok(()) => 0,
                Err(e) => {
                    log::warn(&format!("event_reinit: {e}"));
                    -1
                }
            })
        }
    }

    /// A `timeval` for a duration many events share. evrs's timer wheel needs no special
    /// list for them: the result is an ordinary, normalized duration kept by the base.
    fn event_base_init_common_timeout(base: *mut CBase, duration: *const libc::timeval) -> *const libc::timeval {
        if base.is_null() || duration.is_null() {
            return ptr::null();
        }
        // SAFETY: `duration` readable; the base is live and its list is touched only here.
        unsafe {
            let d = self::duration(&*duration);
            let list = &mut *(*base).common.get();
            let (sec, usec) = (d.as_secs() as libc::time_t, d.subsec_micros() as libc::suseconds_t);
            if let Some(t) = list.iter().find(|t| t.tv_sec == sec && t.tv_usec & COMMON_USEC == usec) {
                return &**t;
            }
            if list.len() >= 256 {
                log::warn("event_base_init_common_timeout: too many common timeouts");
                return ptr::null();
            }
            // libevent's encoding (programs compare it): a marker, the index, the micros.
            let idx = list.len() as libc::suseconds_t;
            list.push(Box::new(libc::timeval { tv_sec: sec, tv_usec: COMMON_MAGIC | (idx << 20) | usec }));
            &**list.last().unwrap_or_else(|| unreachable!())
        }
    }

    /// A new, default configuration.
    fn event_config_new() -> *mut CConfig {
        crate::mm::boxed(CConfig { cfg: EventConfig::new() })
    }

    /// Frees a configuration.
    fn event_config_free(cfg: *mut CConfig) {
        if !cfg.is_null() {
            // SAFETY: made by `event_config_new`, not used after this.
            unsafe { crate::mm::drop_free(cfg) };
        }
    }

    /// Never use the backend called `method`.
    fn event_config_avoid_method(cfg: *mut CConfig, method: *const c_char) -> c_int {
        if cfg.is_null() || method.is_null() {
            return -1;
        }
        // SAFETY: a live config and a C string.
        unsafe {
            let name = CStr::from_ptr(method).to_string_lossy();
            if let Some(m) = Method::from_name(&name) {
                let c = &mut (*cfg).cfg;
                *c = c.clone().avoid_method(m);
            }
        }
        0
    }

    /// Only accept a backend with these `EV_FEATURE_*` bits.
    fn event_config_require_features(cfg: *mut CConfig, features: c_int) -> c_int {
        if cfg.is_null() {
            return -1;
        }
        // SAFETY: a live config.
        unsafe {
            let c = &mut (*cfg).cfg;
            *c = c.clone().require_features(Features::from_bits_truncate(features as u8));
        }
        0
    }

    /// Adds `EVENT_BASE_FLAG_*` bits.
    fn event_config_set_flag(cfg: *mut CConfig, flag: c_int) -> c_int {
        if cfg.is_null() {
            return -1;
        }
        // SAFETY: a live config.
        unsafe {
            let c = &mut (*cfg).cfg;
            *c = c.clone().flags(BaseFlags::from_bits_truncate(flag as u8));
        }
        0
    }

    /// A hint for the number of CPUs (Windows IOCP only; accepted and ignored).
    fn event_config_set_num_cpus_hint(cfg: *mut CConfig, cpus: c_int) -> c_int {
        let _ = cpus;
        if cfg.is_null() { -1 } else { 0 }
    }

    /// Caps how long, or how many callbacks, the loop runs before polling again.
    fn event_config_set_max_dispatch_interval(cfg: *mut CConfig, tv: *const libc::timeval, max_callbacks: c_int, min_priority: c_int) -> c_int {
        if cfg.is_null() {
            return -1;
        }
        // SAFETY: a live config; `tv` null or readable.
        unsafe {
            let iv = opt_duration(tv);
            let max = u32::try_from(max_callbacks).ok();
            let c = &mut (*cfg).cfg;
            *c = c.clone().max_dispatch_interval(iv, max, min_priority.max(0) as usize);
        }
        0
    }
}
