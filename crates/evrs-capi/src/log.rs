//! Logging (libevent's `event_set_log_callback`, `event_enable_debug_logging`,
//! `event_set_fatal_callback`): every warning the C API gives goes through here, to the
//! program's callback or to stderr as `[warn] text`.

use crate::ffi::capi;
use std::ffi::CString;
use std::os::raw::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

/// `EVENT_LOG_DEBUG` … `EVENT_LOG_ERR`.
pub const DEBUG: c_int = 0;
/// `EVENT_LOG_MSG`.
pub const MSG: c_int = 1;
/// `EVENT_LOG_WARN`.
pub const WARN: c_int = 2;
/// `EVENT_LOG_ERR`.
pub const ERR: c_int = 3;

/// `event_log_cb`.
pub type LogCb = unsafe extern "C" fn(c_int, *const c_char);
/// `event_fatal_cb`.
pub type FatalCb = unsafe extern "C" fn(c_int);

static LOG_CB: AtomicUsize = AtomicUsize::new(0);
static FATAL_CB: AtomicUsize = AtomicUsize::new(0);
/// `event_debug_logging_mask_`: debug messages are shown only when non-zero.
/// (Read through [`debug_mask`] only: see `ffi::data`.)
#[export_name = "event_debug_logging_mask_"]
static DEBUG_MASK: AtomicU32 = AtomicU32::new(0);

fn debug_mask() -> &'static AtomicU32 {
    let _ = &DEBUG_MASK;
    // SAFETY: `event_debug_logging_mask_` is `DEBUG_MASK`, an `AtomicU32`.
    unsafe { crate::ffi::data(crate::ffi::Data::DebugMask) }
}

/// Sends one message at `severity` to the log callback or stderr. Messages are cut at 1023
/// bytes, as libevent's buffer, and interior NULs are dropped.
pub fn log(severity: c_int, msg: &str) {
    if severity == DEBUG && debug_mask().load(Ordering::Relaxed) == 0 {
        return;
    }
    let mut bytes: Vec<u8> = msg.bytes().filter(|&b| b != 0).take(1023).collect();
    let cb = LOG_CB.load(Ordering::Acquire);
    if cb == 0 {
        let tag = match severity {
            DEBUG => "debug",
            MSG => "msg",
            WARN => "warn",
            ERR => "err",
            _ => "???",
        };
        bytes.push(b'\n');
        eprint!("[{tag}] {}", String::from_utf8_lossy(&bytes));
        return;
    }
    let text = CString::new(bytes).unwrap_or_default();
    // SAFETY: `cb` was stored from a non-null `event_log_cb` by `event_set_log_callback`,
    // and the string lives across the call.
    unsafe {
        let f: LogCb = std::mem::transmute::<usize, LogCb>(cb);
        f(severity, text.as_ptr());
    }
}

/// A warning.
pub fn warn(msg: &str) {
    log(WARN, msg);
}

/// An error that the program can recover from.
pub fn err(msg: &str) {
    log(ERR, msg);
}

/// A debug message (shown only after `event_enable_debug_logging`).
pub fn debug(msg: &str) {
    log(DEBUG, msg);
}

/// `EVENT_ERR_ABORT_`: the code of a failed assertion (debug-mode checks); after the fatal
/// callback the process aborts instead of exiting.
pub const ERR_ABORT: c_int = 0xdead_dead_u32 as c_int;

/// An unrecoverable error: logs it, calls the fatal callback (if it returns, or there is
/// none, the process exits with `code`, as libevent's `event_exit`).
pub fn fatal(code: c_int, msg: &str) -> ! {
    err(msg);
    exit(code)
}

/// The fatal path without a message: the fatal callback, then `exit(code)` (`abort()` for
/// [`ERR_ABORT`]).
pub fn exit(code: c_int) -> ! {
    let cb = FATAL_CB.load(Ordering::Acquire);
    if cb != 0 {
        // SAFETY: stored from a non-null `event_fatal_cb` by `event_set_fatal_callback`.
        unsafe {
            let f: FatalCb = std::mem::transmute::<usize, FatalCb>(cb);
            f(code);
        }
    }
    if code == ERR_ABORT {
        std::process::abort();
    }
    std::process::exit(code)
}

extern "C" {
    /// `csrc/varargs.c`: formats a `va_list` into a `malloc`ed string.
    fn evrs_c_vformat(fmt: *const c_char, ap: *mut c_void, len: *mut usize) -> *mut c_char;
}

/// Formats `fmt` with a C `va_list` (NULL on a bad format or no memory).
///
/// # Safety
/// `fmt` is a C format string and `ap` a `va_list` whose arguments match it.
pub unsafe fn vformat(fmt: *const c_char, ap: *mut c_void) -> Option<Vec<u8>> {
    if fmt.is_null() {
        return None;
    }
    let mut len = 0usize;
    // SAFETY: per the contract; the helper's string is freed here with libc's `free`.
    unsafe {
        let p = evrs_c_vformat(fmt, ap, &mut len);
        if p.is_null() {
            return None;
        }
        let v = std::slice::from_raw_parts(p.cast::<u8>(), len).to_vec();
        libc::free(p.cast());
        Some(v)
    }
}

capi! {
    /// Routes log messages to `cb` (NULL: back to stderr).
    fn event_set_log_callback(cb: Option<LogCb>) {
        LOG_CB.store(cb.map_or(0, |f| f as usize), Ordering::Release);
    }

    /// Installs the callback run on a fatal error before the process exits.
    fn event_set_fatal_callback(cb: Option<FatalCb>) {
        FATAL_CB.store(cb.map_or(0, |f| f as usize), Ordering::Release);
    }

    /// Internal: logs a `printf`-style message at `severity`, with `": errstr"` appended
    /// when `errstr` is not NULL (the target of `event_warn` and the rest of that family).
    fn event_logv_(severity: c_int, errstr: *const c_char, fmt: *const c_char, ap: *mut c_void) {
        if severity == DEBUG && debug_mask().load(Ordering::Relaxed) == 0 {
            return;
        }
        // SAFETY: `fmt`/`ap` match and `errstr` is null or a C string, per the contract.
        unsafe {
            let mut msg = vformat(fmt, ap).unwrap_or_default();
            if !errstr.is_null() {
                msg.extend_from_slice(b": ");
                msg.extend_from_slice(std::ffi::CStr::from_ptr(errstr).to_bytes());
            }
            log(severity, &String::from_utf8_lossy(&msg));
        }
    }

    /// Internal: the fatal path of `event_err` and friends (callback, then exit).
    fn event_exit_(code: c_int) {
        exit(code)
    }

    /// Turns debug messages on (`which` non-zero) or off.
    fn event_enable_debug_logging(which: u32) {
        debug_mask().store(which, Ordering::Relaxed);
    }
}
