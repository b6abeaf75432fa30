//! Logging (libevent's `event_set_log_callback`, `event_enable_debug_logging`,
//! `event_set_fatal_callback`): every warning the C API gives goes through here, to the
//! program's callback or to stderr as `[warn] text`.

use crate::ffi::capi;
use std::ffi::CString;
use std::os::raw::{c_char, c_int};
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
#[export_name = "event_debug_logging_mask_"]
pub static DEBUG_MASK: AtomicU32 = AtomicU32::new(0);

/// Sends one message at `severity` to the log callback or stderr. Messages are cut at 1023
/// bytes, as libevent's buffer, and interior NULs are dropped.
pub fn log(severity: c_int, msg: &str) {
    if severity == DEBUG && DEBUG_MASK.load(Ordering::Relaxed) == 0 {
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

/// An unrecoverable error: logs it, calls the fatal callback (if it returns, or there is
/// none, the process exits with `code`, as libevent's `event_exit`).
pub fn fatal(code: c_int, msg: &str) -> ! {
    err(msg);
    let cb = FATAL_CB.load(Ordering::Acquire);
    if cb != 0 {
        // SAFETY: stored from a non-null `event_fatal_cb` by `event_set_fatal_callback`.
        unsafe {
            let f: FatalCb = std::mem::transmute::<usize, FatalCb>(cb);
            f(code);
        }
    }
    std::process::exit(code)
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

    /// Turns debug messages on (`which` non-zero) or off.
    fn event_enable_debug_logging(which: u32) {
        DEBUG_MASK.store(which, Ordering::Relaxed);
    }
}
