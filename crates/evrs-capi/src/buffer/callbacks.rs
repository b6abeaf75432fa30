//! Change callbacks: `evbuffer_add_cb` and friends, `evbuffer_setcb` (1.x), and
//! `evbuffer_defer_callbacks`.

use super::{with_inner, CBuffer, Inner};
use crate::base::{self, CBase};
use crate::ffi::capi;
use crate::log;
use crate::mm::MmBox;
use evrs::buffer::{CallbackInfo, EvBuffer};
use evrs::What;
use std::os::raw::{c_int, c_void};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// `evbuffer_cb_func`.
pub type CbFunc = unsafe extern "C" fn(*mut CBuffer, *const CallbackInfoC, *mut c_void);
/// `evbuffer_cb` (1.x): the buffer, its length before and after the change.
pub type ObsoleteCb = unsafe extern "C" fn(*mut CBuffer, usize, usize, *mut c_void);

/// `struct evbuffer_cb_info`.
#[repr(C)]
pub struct CallbackInfoC {
    /// Length before the change.
    pub orig_size: usize,
    /// Bytes added.
    pub n_added: usize,
    /// Bytes removed.
    pub n_deleted: usize,
}

/// `EVBUFFER_CB_ENABLED`.
const CB_ENABLED: u32 = 1;
/// The flag bits libevent keeps for itself (callers cannot set or clear them).
const CB_INTERNAL: u32 = 0xffff_0000;

/// The function of a callback entry.
#[derive(Clone, Copy)]
enum Func {
    New(Option<CbFunc>),
    Obsolete(ObsoleteCb),
}

/// What a C `struct evbuffer_cb_entry *` points to.
pub struct CbEntry {
    id: u64,
    func: Func,
    arg: *mut c_void,
    flags: u32,
}

/// Keeps the recording closure registered exactly while there are C callbacks.
fn sync_recorder(b: &mut EvBuffer, inner: &mut Inner, cb: &CBuffer) {
    match (inner.cbs.is_empty(), inner.recorder) {
        (true, Some(id)) => {
            b.remove_cb(id);
            inner.recorder = None;
            // No callbacks are left to tell: nothing waits for the queue (which lets
            // `run_queue` skip a buffer without a recorder).
            cb.clear_pending();
        }
        (false, None) => {
            let q = Arc::clone(cb.pending());
            inner.recorder = Some(b.add_cb(move |_, info| {
                let mut q = q.lock().unwrap_or_else(|e| e.into_inner());
                q.push_back(*info);
            }));
        }
        _ => {}
    }
}

fn add_entry(
    b: &mut EvBuffer,
    inner: &mut Inner,
    cb: &CBuffer,
    func: Func,
    arg: *mut c_void,
) -> *mut CbEntry {
    inner.next_cb_id += 1;
    // In the program's allocator, as libevent's: NULL when it fails.
    let Some(mut e) = MmBox::new(CbEntry {
        id: inner.next_cb_id,
        func,
        arg,
        flags: CB_ENABLED,
    }) else {
        return std::ptr::null_mut();
    };
    let p: *mut CbEntry = &mut *e;
    inner.cbs.push(e);
    sync_recorder(b, inner, cb);
    p
}

/// Runs every enabled C callback of `p` for one change, newest first. A callback may
/// remove others (they are looked up again before each call) or request a free (the rest
/// are skipped).
///
/// # Safety
/// `p` is live and held by a frame.
pub(super) unsafe fn run_for(p: *mut CBuffer, info: &CallbackInfo) {
    // SAFETY: live per the contract.
    let cb = unsafe { &*p };
    let Some(ids) = cb.inner_ref(|i| i.cbs.iter().rev().map(|e| e.id).collect::<Vec<u64>>()) else {
        return;
    };
    let c_info = CallbackInfoC {
        orig_size: info.orig_size,
        n_added: info.n_added,
        n_deleted: info.n_deleted,
    };
    let new_size = (info.orig_size + info.n_added).saturating_sub(info.n_deleted);
    for id in ids {
        if cb.free_requested.get() {
            return;
        }
        let found = cb
            .inner_ref(|i| {
                i.cbs
                    .iter()
                    .find(|e| e.id == id && e.flags & CB_ENABLED != 0)
                    .map(|e| (e.func, e.arg))
            })
            .flatten();
        // SAFETY: the program's callback with its own argument; no borrow is held.
        unsafe {
            match found {
                Some((Func::New(Some(f)), arg)) => f(p, &c_info, arg),
                Some((Func::Obsolete(f), arg)) => f(p, info.orig_size, new_size, arg),
                _ => {}
            }
        }
    }
}

/// Activates the deferred-callback event (the scheduler asked for it).
pub(super) fn activate_deferred(cb: &CBuffer) {
    let Some((base, ev)) = cb.inner_ref(|i| i.deferred).flatten() else {
        return;
    };
    if crate::base::is_live(base) {
        // SAFETY: a live base of this library.
        if let Err(e) = unsafe { CBase::with(base, |b| b.activate(ev, What::TIMEOUT, 1)) } {
            log::warn(&format!("evbuffer: deferred callbacks: {e}"));
        }
    }
}

/// The deferred event's work: the accumulated change, then the C callbacks.
///
/// # Safety
/// `p` is a live buffer (its event is freed with it).
unsafe fn run_deferred(p: *mut CBuffer) {
    // SAFETY: forwarded.
    unsafe {
        with_inner(p, "evbuffer deferred callbacks", |b, _| {
            b.run_deferred_callbacks()
        })
    }
}

capi! {
    /// Registers a change callback (it starts enabled; newest callbacks run first).
    fn evbuffer_add_cb(buffer: *mut CBuffer, cb: Option<CbFunc>, cbarg: *mut c_void) -> *mut CbEntry {
        let me = buffer;
        // SAFETY: null or a live buffer.
        unsafe {
            with_inner(buffer, "evbuffer_add_cb", |b, inner| {
                add_entry(b, inner, &*me, Func::New(cb), cbarg)
            })
        }
    }

    /// Removes a callback by its entry: 0, or -1 if it is not one of this buffer's.
    fn evbuffer_remove_cb_entry(buffer: *mut CBuffer, ent: *mut CbEntry) -> c_int {
        let me = buffer;
        // SAFETY: null or a live buffer.
        unsafe {
            with_inner(buffer, "evbuffer_remove_cb_entry", |b, inner| {
                let Some(i) = inner.cbs.iter().position(|e| std::ptr::eq(&**e, ent)) else {
                    log::warn("evbuffer_remove_cb_entry: not a callback of this buffer");
                    return -1;
                };
                inner.cbs.remove(i);
                sync_recorder(b, inner, &*me);
                0
            })
        }
    }

    /// Removes the newest callback with this function and argument: 0, or -1 if none.
    fn evbuffer_remove_cb(buffer: *mut CBuffer, cb: Option<CbFunc>, cbarg: *mut c_void) -> c_int {
        let me = buffer;
        let want = cb.map(|f| f as usize);
        // SAFETY: null or a live buffer.
        unsafe {
            with_inner(buffer, "evbuffer_remove_cb", |b, inner| {
                let hit = inner.cbs.iter().rposition(|e| {
                    matches!(e.func, Func::New(f) if f.map(|f| f as usize) == want) && e.arg == cbarg
                });
                let Some(i) = hit else { return -1 };
                inner.cbs.remove(i);
                sync_recorder(b, inner, &*me);
                0
            })
        }
    }

    /// Sets callback flags (`EVBUFFER_CB_ENABLED`); 0, or -1 for an unknown entry.
    fn evbuffer_cb_set_flags(buffer: *mut CBuffer, cb: *mut CbEntry, flags: u32) -> c_int {
        // SAFETY: null or a live buffer.
        unsafe { change_flags(buffer, cb, "evbuffer_cb_set_flags", |f| f | (flags & !CB_INTERNAL)) }
    }

    /// Clears callback flags; 0, or -1 for an unknown entry.
    fn evbuffer_cb_clear_flags(buffer: *mut CBuffer, cb: *mut CbEntry, flags: u32) -> c_int {
        // SAFETY: null or a live buffer.
        unsafe { change_flags(buffer, cb, "evbuffer_cb_clear_flags", |f| f & !(flags & !CB_INTERNAL)) }
    }

    /// 1.x: replaces every callback (also those of a bufferevent) by `cb`, called with the
    /// lengths before and after each change; NULL only removes them. 0, or -1 if the new
    /// entry cannot be allocated (the old ones are gone all the same, as in libevent).
    fn evbuffer_setcb(buffer: *mut CBuffer, cb: Option<ObsoleteCb>, cbarg: *mut c_void) -> c_int {
        let me = buffer;
        // SAFETY: null or a live buffer.
        unsafe {
            with_inner(buffer, "evbuffer_setcb", |b, inner| {
                b.clear_cbs();
                inner.recorder = None;
                inner.cbs.clear();
                (*me).clear_pending();
                match cb {
                    Some(f) if add_entry(b, inner, &*me, Func::Obsolete(f), cbarg).is_null() => -1,
                    _ => 0,
                }
            })
        }
    }

    /// Runs the buffer's callbacks from `base`'s loop (NULL: the current base), at its
    /// middle priority, with the changes summed since the last run. 0, or -1.
    fn evbuffer_defer_callbacks(buffer: *mut CBuffer, base: *mut CBase) -> c_int {
        let base = base::or_current(base);
        if base.is_null() || !crate::base::is_live(base) {
            log::warn("evbuffer_defer_callbacks: no such base");
            return -1;
        }
        if buffer.is_null() {
            log::warn("evbuffer_defer_callbacks: NULL buffer");
            return -1;
        }
        let addr = buffer as usize;
        let cbase = base as usize;
        let run = move |eb: &mut evrs::EventBase, _: evrs::Event, _: What| {
            let cbase = cbase as *mut CBase;
            // SAFETY: the base runs this event, so it is live; the buffer frees the event
            // when it goes, so it is live too. The loop's base is handed to C as the event
            // trampoline does.
            unsafe {
                let prev = (*cbase).enter(eb);
                run_deferred(addr as *mut CBuffer);
                (*cbase).leave(prev);
            }
        };
        // SAFETY: a live base.
        let ev = unsafe {
            CBase::with(base, |b| {
                let ev = b.new_timer(run)?;
                let mid = b.priorities() / 2;
                b.set_priority(ev, mid)?;
                Ok::<_, std::io::Error>(ev)
            })
        };
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                log::warn(&format!("evbuffer_defer_callbacks: {e}"));
                return -1;
            }
        };
        // SAFETY: a live buffer.
        let cb = unsafe { &*buffer };
        let flag = Arc::clone(cb.schedule_flag());
        // SAFETY: a live buffer.
        let old = unsafe {
            with_inner(buffer, "evbuffer_defer_callbacks", |b, inner| {
                b.defer_callbacks(Some(Box::new(move || flag.store(true, Ordering::Release))));
                Some(inner.deferred.replace((base, ev)))
            })
        };
        if let Some(Some((ob, oev))) = old {
            if crate::base::is_live(ob) {
                // SAFETY: a live base.
                let _ = unsafe { CBase::with(ob, |b| b.free(oev)) };
            }
        }
        0
    }
}

/// Applies `f` to an entry's flags.
///
/// # Safety
/// `buffer` is null or live.
unsafe fn change_flags(
    buffer: *mut CBuffer,
    ent: *mut CbEntry,
    name: &str,
    f: impl FnOnce(u32) -> u32,
) -> c_int {
    // SAFETY: forwarded.
    unsafe {
        with_inner(buffer, name, |_, inner| {
            match inner.cbs.iter_mut().find(|e| std::ptr::eq(&***e, ent)) {
                Some(e) => {
                    e.flags = f(e.flags);
                    0
                }
                None => {
                    log::warn(&format!("{name}: not a callback of this buffer"));
                    -1
                }
            }
        })
    }
}
