//! Threads (thread.h, and `evthread_use_pthreads` of libevent_pthreads).
//!
//! What is here: the lock, condition and thread-id callbacks are recorded (in libevent's
//! internal `evthread_lock_fns_` / `evthread_cond_fns_` / `evthread_id_fn_`, which
//! programs and libevent's tests read), with libevent's rules for replacing them;
//! `evthread_use_pthreads` installs pthread-based ones (recursive mutexes, condition
//! variables, `pthread_self`); `evthread_make_base_notifiable` gives a base its cross-thread
//! wake-up. Bases made while lock callbacks are installed are threaded: see
//! [`crate::locking`].

use crate::base::CBase;
use crate::ffi::{capi, data, Data};
use crate::log;
use std::os::raw::{c_int, c_uint, c_ulong, c_void};
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicUsize, Ordering};

/// `struct evthread_lock_callbacks`.
#[repr(C)]
pub struct LockCallbacks {
    api: c_int,
    types: c_uint,
    alloc: Option<unsafe extern "C" fn(c_uint) -> *mut c_void>,
    free: Option<unsafe extern "C" fn(*mut c_void, c_uint)>,
    lock: Option<unsafe extern "C" fn(c_uint, *mut c_void) -> c_int>,
    unlock: Option<unsafe extern "C" fn(c_uint, *mut c_void) -> c_int>,
}

/// `struct evthread_condition_callbacks`.
#[repr(C)]
pub struct CondCallbacks {
    api: c_int,
    alloc: Option<unsafe extern "C" fn(c_uint) -> *mut c_void>,
    free: Option<unsafe extern "C" fn(*mut c_void)>,
    signal: Option<unsafe extern "C" fn(*mut c_void, c_int) -> c_int>,
    wait: Option<unsafe extern "C" fn(*mut c_void, *mut c_void, *const libc::timeval) -> c_int>,
}

/// The installed callbacks, laid out as the C structs (atomics have their fields' layout),
/// exported under libevent's internal names.
#[repr(C)]
pub struct Installed<const N: usize> {
    head: [AtomicU32; 2],
    fns: [AtomicUsize; N],
}

// The definitions; read through `lock_fns_data()` etc. only (see `ffi::data`).
/// `evthread_lock_fns_`.
#[export_name = "evthread_lock_fns_"]
static LOCK_FNS: Installed<4> = Installed {
    head: [AtomicU32::new(0), AtomicU32::new(0)],
    fns: [const { AtomicUsize::new(0) }; 4],
};
/// `evthread_cond_fns_` (its first word is the version; the second is padding in C).
#[export_name = "evthread_cond_fns_"]
static COND_FNS: Installed<4> = Installed {
    head: [AtomicU32::new(0), AtomicU32::new(0)],
    fns: [const { AtomicUsize::new(0) }; 4],
};
/// `evthread_id_fn_`.
#[export_name = "evthread_id_fn_"]
static ID_FN: AtomicUsize = AtomicUsize::new(0);
/// `evthread_lock_debugging_enabled_`.
#[export_name = "evthread_lock_debugging_enabled_"]
static LOCK_DEBUGGING: AtomicI32 = AtomicI32::new(0);

fn lock_fns_data() -> &'static Installed<4> {
    let _ = &LOCK_FNS;
    // SAFETY: `evthread_lock_fns_` is `LOCK_FNS`, an `Installed<4>`.
    unsafe { data(Data::LockFns) }
}

fn cond_fns_data() -> &'static Installed<4> {
    let _ = &COND_FNS;
    // SAFETY: `evthread_cond_fns_` is `COND_FNS`, an `Installed<4>`.
    unsafe { data(Data::CondFns) }
}

fn id_fn_data() -> &'static AtomicUsize {
    let _ = &ID_FN;
    // SAFETY: `evthread_id_fn_` is `ID_FN`, an `AtomicUsize`.
    unsafe { data(Data::IdFn) }
}

fn lock_debugging_data() -> &'static AtomicI32 {
    let _ = &LOCK_DEBUGGING;
    // SAFETY: `evthread_lock_debugging_enabled_` is `LOCK_DEBUGGING`, an `AtomicI32`.
    unsafe { data(Data::LockDebugging) }
}

const _: () = assert!(std::mem::size_of::<Installed<4>>() == std::mem::size_of::<LockCallbacks>());
const _: () = assert!(std::mem::size_of::<Installed<4>>() == std::mem::size_of::<CondCallbacks>());

/// Whether lock callbacks are installed (`evthread_use_pthreads` or custom ones).
pub fn locking_enabled() -> bool {
    lock_fns_data().fns[0].load(Ordering::Acquire) != 0
}

/// The installed lock callbacks, as functions.
#[derive(Clone, Copy)]
pub struct LockFns {
    pub alloc: unsafe extern "C" fn(c_uint) -> *mut c_void,
    pub free: unsafe extern "C" fn(*mut c_void, c_uint),
    pub lock: unsafe extern "C" fn(c_uint, *mut c_void) -> c_int,
    pub unlock: unsafe extern "C" fn(c_uint, *mut c_void) -> c_int,
}

/// The installed condition callbacks, as functions.
#[derive(Clone, Copy)]
pub struct CondFns {
    pub alloc: unsafe extern "C" fn(c_uint) -> *mut c_void,
    pub free: unsafe extern "C" fn(*mut c_void),
    pub signal: unsafe extern "C" fn(*mut c_void, c_int) -> c_int,
    pub wait: unsafe extern "C" fn(*mut c_void, *mut c_void, *const libc::timeval) -> c_int,
}

/// The lock callbacks, if a complete set is installed.
pub fn lock_fns() -> Option<LockFns> {
    let w = current(lock_fns_data());
    if w[1..].contains(&0) {
        return None;
    }
    // SAFETY: non-null words stored from a `struct evthread_lock_callbacks`' function
    // pointers, of these types.
    unsafe {
        Some(LockFns {
            alloc: std::mem::transmute::<usize, unsafe extern "C" fn(c_uint) -> *mut c_void>(w[1]),
            free: std::mem::transmute::<usize, unsafe extern "C" fn(*mut c_void, c_uint)>(w[2]),
            lock: std::mem::transmute::<usize, unsafe extern "C" fn(c_uint, *mut c_void) -> c_int>(
                w[3],
            ),
            unlock: std::mem::transmute::<usize, unsafe extern "C" fn(c_uint, *mut c_void) -> c_int>(
                w[4],
            ),
        })
    }
}

/// The condition callbacks, if a complete set is installed.
pub fn cond_fns() -> Option<CondFns> {
    let w = current(cond_fns_data());
    if w[1..].contains(&0) {
        return None;
    }
    type Wait = unsafe extern "C" fn(*mut c_void, *mut c_void, *const libc::timeval) -> c_int;
    // SAFETY: non-null words stored from a `struct evthread_condition_callbacks`' function
    // pointers, of these types.
    unsafe {
        Some(CondFns {
            alloc: std::mem::transmute::<usize, unsafe extern "C" fn(c_uint) -> *mut c_void>(w[1]),
            free: std::mem::transmute::<usize, unsafe extern "C" fn(*mut c_void)>(w[2]),
            signal: std::mem::transmute::<usize, unsafe extern "C" fn(*mut c_void, c_int) -> c_int>(
                w[3],
            ),
            wait: std::mem::transmute::<usize, Wait>(w[4]),
        })
    }
}

fn words<T>(v: &T) -> [usize; 5] {
    // SAFETY: both structs are 40 bytes of plain data (see the size assertions).
    unsafe { std::mem::transmute_copy::<T, [usize; 5]>(v) }
}

fn current(i: &Installed<4>) -> [usize; 5] {
    let head = (i.head[0].load(Ordering::Acquire) as usize)
        | ((i.head[1].load(Ordering::Acquire) as usize) << 32);
    let f = |k: usize| i.fns[k].load(Ordering::Acquire);
    [head, f(0), f(1), f(2), f(3)]
}

fn store(i: &Installed<4>, w: [usize; 5]) {
    i.head[0].store(w[0] as u32, Ordering::Release);
    i.head[1].store((w[0] >> 32) as u32, Ordering::Release);
    for k in 0..4 {
        i.fns[k].store(w[k + 1], Ordering::Release);
    }
}

/// libevent's rule: callbacks may be set once; setting the same ones again is fine; other
/// ones are refused; NULL clears them.
fn install(i: &Installed<4>, new: Option<[usize; 5]>, what: &str) -> c_int {
    let now = current(i);
    match new {
        None => {
            store(i, [0; 5]);
            0
        }
        Some(w) if now[1] == 0 || now == w => {
            store(i, w);
            0
        }
        Some(_) => {
            log::warn(&format!("evthread_set_{what}_callbacks: can't change {what} callbacks once they have been initialized."));
            -1
        }
    }
}

// ----- pthread-based callbacks ------------------------------------------------------------

const LOCKTYPE_RECURSIVE: c_uint = 1;

unsafe extern "C" fn p_lock_alloc(locktype: c_uint) -> *mut c_void {
    let m = crate::mm::malloc(std::mem::size_of::<libc::pthread_mutex_t>())
        .cast::<libc::pthread_mutex_t>();
    if m.is_null() {
        return m.cast();
    }
    // SAFETY: `m` is fresh memory for one mutex; the attribute lives across the init.
    unsafe {
        let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
        libc::pthread_mutexattr_init(&mut attr);
        if locktype & LOCKTYPE_RECURSIVE != 0 {
            libc::pthread_mutexattr_settype(&mut attr, libc::PTHREAD_MUTEX_RECURSIVE);
        }
        let r = libc::pthread_mutex_init(m, &attr);
        libc::pthread_mutexattr_destroy(&mut attr);
        if r != 0 {
            crate::mm::free(m.cast());
            return std::ptr::null_mut();
        }
    }
    m.cast()
}

unsafe extern "C" fn p_lock_free(lock: *mut c_void, _locktype: c_uint) {
    // SAFETY: a mutex from `p_lock_alloc`, not used after this.
    unsafe {
        libc::pthread_mutex_destroy(lock.cast());
        crate::mm::free(lock);
    }
}

unsafe extern "C" fn p_lock(mode: c_uint, lock: *mut c_void) -> c_int {
    // SAFETY: a mutex from `p_lock_alloc`.
    unsafe {
        if mode & 0x01 != 0 {
            libc::pthread_mutex_trylock(lock.cast())
        } else {
            libc::pthread_mutex_lock(lock.cast())
        }
    }
}

unsafe extern "C" fn p_unlock(_mode: c_uint, lock: *mut c_void) -> c_int {
    // SAFETY: a mutex from `p_lock_alloc`, held by this thread.
    unsafe { libc::pthread_mutex_unlock(lock.cast()) }
}

unsafe extern "C" fn p_cond_alloc(_flags: c_uint) -> *mut c_void {
    let c = crate::mm::malloc(std::mem::size_of::<libc::pthread_cond_t>())
        .cast::<libc::pthread_cond_t>();
    // SAFETY: fresh memory for one condition variable.
    if !c.is_null() && unsafe { libc::pthread_cond_init(c, std::ptr::null()) } != 0 {
        // SAFETY: from `mm::malloc`, never shared.
        unsafe { crate::mm::free(c.cast()) };
        return std::ptr::null_mut();
    }
    c.cast()
}

unsafe extern "C" fn p_cond_free(cond: *mut c_void) {
    // SAFETY: from `p_cond_alloc`, not used after this.
    unsafe {
        libc::pthread_cond_destroy(cond.cast());
        crate::mm::free(cond);
    }
}

unsafe extern "C" fn p_cond_signal(cond: *mut c_void, broadcast: c_int) -> c_int {
    // SAFETY: from `p_cond_alloc`.
    unsafe {
        if broadcast != 0 {
            libc::pthread_cond_broadcast(cond.cast())
        } else {
            libc::pthread_cond_signal(cond.cast())
        }
    }
}

unsafe extern "C" fn p_cond_wait(
    cond: *mut c_void,
    lock: *mut c_void,
    tv: *const libc::timeval,
) -> c_int {
    // SAFETY: `cond` from `p_cond_alloc`, `lock` a mutex from `p_lock_alloc` held by the
    // caller; `tv` null or readable.
    unsafe {
        if tv.is_null() {
            return if libc::pthread_cond_wait(cond.cast(), lock.cast()) == 0 {
                0
            } else {
                -1
            };
        }
        let mut now: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_REALTIME, &mut now);
        let mut ns = now.tv_nsec + (*tv).tv_usec * 1000;
        let mut s = now.tv_sec + (*tv).tv_sec + ns / 1_000_000_000;
        ns %= 1_000_000_000;
        if s < now.tv_sec {
            s = libc::time_t::MAX;
        }
        let at = libc::timespec {
            tv_sec: s,
            tv_nsec: ns,
        };
        match libc::pthread_cond_timedwait(cond.cast(), lock.cast(), &at) {
            0 => 0,
            libc::ETIMEDOUT => 1,
            _ => -1,
        }
    }
}

unsafe extern "C" fn p_id() -> c_ulong {
    // SAFETY: no preconditions.
    unsafe { libc::pthread_self() as c_ulong }
}

capi! {
    /// Installs lock callbacks (NULL clears them); they cannot be changed once set.
    fn evthread_set_lock_callbacks(cbs: *const LockCallbacks) -> c_int {
        // SAFETY: null or a readable struct.
        install(lock_fns_data(), unsafe { cbs.as_ref() }.map(words), "lock")
    }

    /// Installs condition-variable callbacks (NULL clears them).
    fn evthread_set_condition_callbacks(cbs: *const CondCallbacks) -> c_int {
        // SAFETY: null or a readable struct.
        install(cond_fns_data(), unsafe { cbs.as_ref() }.map(words), "condition")
    }

    /// Installs the function that names the calling thread.
    fn evthread_set_id_callback(id_fn: Option<unsafe extern "C" fn() -> c_ulong>) {
        id_fn_data().store(id_fn.map_or(0, |f| f as usize), Ordering::Release);
    }

    /// pthread-based locks, conditions and thread ids.
    fn evthread_use_pthreads() -> c_int {
        let locks = LockCallbacks {
            api: 1,
            types: LOCKTYPE_RECURSIVE,
            alloc: Some(p_lock_alloc),
            free: Some(p_lock_free),
            lock: Some(p_lock),
            unlock: Some(p_unlock),
        };
        let conds = CondCallbacks {
            api: 1,
            alloc: Some(p_cond_alloc),
            free: Some(p_cond_free),
            signal: Some(p_cond_signal),
            wait: Some(p_cond_wait),
        };
        if install(lock_fns_data(), Some(words(&locks)), "lock") != 0 || install(cond_fns_data(), Some(words(&conds)), "condition") != 0 {
            return -1;
        }
        id_fn_data().store(p_id as unsafe extern "C" fn() -> c_ulong as usize, Ordering::Release);
        0
    }

    /// The installed lock callbacks, as the struct libevent's internal header declares
    /// (libevent's own tests read and copy it).
    fn evthread_get_lock_callbacks() -> *mut LockCallbacks {
        (lock_fns_data() as *const Installed<4>).cast_mut().cast()
    }

    /// The installed condition callbacks (see `evthread_get_lock_callbacks`).
    fn evthread_get_condition_callbacks() -> *mut CondCallbacks {
        (cond_fns_data() as *const Installed<4>).cast_mut().cast()
    }

    /// Turns on lock-misuse checks. Recorded (`evthread_lock_debugging_enabled_`); evrs
    /// checks always: a base's lock knows its holder, so an unlock by a thread that does
    /// not hold it, or a wait that would deadlock, is refused with a warning (libevent's
    /// debug locks abort there) — with or without this call.
    fn evthread_enable_lock_debugging() {
        lock_debugging_data().store(1, Ordering::Release);
    }

    /// The old, misspelt name of `evthread_enable_lock_debugging`.
    fn evthread_enable_lock_debuging() {
        lock_debugging_data().store(1, Ordering::Release);
    }

    /// Gives a base its cross-thread wake-up (0 also if it has one).
    fn evthread_make_base_notifiable(base: *mut CBase) -> c_int {
        if base.is_null() {
            return -1;
        }
        // SAFETY: a live base.
        unsafe { CBase::with(base, |b| if b.handle().is_ok() { 0 } else { -1 }) }
    }
}
