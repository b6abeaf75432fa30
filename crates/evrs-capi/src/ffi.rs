//! The boundary: how every exported function is declared, and how a Rust panic is stopped
//! before it reaches C.
//!
//! Each C function is written once with `capi!`: the macro exports it as
//! `evrs_<name>` from the implementation library (the SONAME libraries forward `<name>` to
//! it, see `build-libs.sh`), and runs its body under [`guard`], which turns a panic into
//! the function's error value ([`Fallback`]) plus a log message.

use std::os::raw::{c_int, c_long, c_short, c_uint, c_ulong};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The value a C function returns when its body panicked: libevent's error value for that
/// return type.
pub trait Fallback {
    /// The error value.
    fn fallback() -> Self;
}

macro_rules! fallback {
    ($($t:ty => $v:expr),* $(,)?) => { $(impl Fallback for $t { fn fallback() -> Self { $v } })* };
}
fallback!(() => (), c_int => -1, c_short => -1, c_long => -1, isize => -1,
    c_uint => 0, c_ulong => 0, i8 => 0, u8 => 0, u16 => 0, usize => 0);

impl<T> Fallback for *mut T {
    fn fallback() -> Self {
        std::ptr::null_mut()
    }
}

impl<T> Fallback for *const T {
    fn fallback() -> Self {
        std::ptr::null()
    }
}

impl<T> Fallback for Option<T> {
    fn fallback() -> Self {
        None
    }
}

/// Runs `f`; a panic is caught, logged as an error naming `name`, and replaced by the
/// return type's [`Fallback`].
#[inline(always)]
pub fn guard<R: Fallback>(name: &'static str, f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => {
            crate::log::err(&format!("{name}: internal error (caught a panic)"));
            R::fallback()
        }
    }
}

/// Declares exported C functions: `fn name(args) -> ret { body }` becomes
/// `pub unsafe extern "C" fn name` exported as `evrs_name`, its body run under [`guard`].
/// Bodies are closures, so every unsafe operation in them needs its own `unsafe` block.
macro_rules! capi {
    ($(
        $(#[$meta:meta])*
        fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block
    )*) => {$(
        $(#[$meta])*
        ///
        /// # Safety
        /// A C entry point: pointers must be valid as libevent documents for this function.
        #[export_name = concat!("evrs_", stringify!($name))]
        pub unsafe extern "C" fn $name($($arg: $ty),*) $(-> $ret)? {
            $crate::ffi::guard(stringify!($name), move || $body)
        }
    )*};
}
pub(crate) use capi;

/// libevent's exported data symbols, as `csrc/globals.c` numbers them.
#[derive(Clone, Copy)]
pub(crate) enum Data {
    LockFns = 0,
    CondFns = 1,
    IdFn = 2,
    LockDebugging = 3,
    CurrentBase = 4,
    DebugMask = 5,
}

extern "C" {
    fn evrs_c_data(which: c_int) -> *mut std::os::raw::c_void;
}

/// The exported data symbol `which`, defined in this library as a `T`, reached through
/// its GOT entry: the copy the process uses (a program that reads it directly has its
/// own, made by a copy relocation, which every library must then use; see
/// `csrc/globals.c`). Each module keeps its definition private and reads it only so.
///
/// # Safety
/// `T` is the type of the definition of `which`.
pub(crate) unsafe fn data<T: Sync>(which: Data) -> &'static T {
    // SAFETY: the address of a static of type `T` (per the contract) or of the program's
    // copy of it, which the loader made with the same size and initial bytes; statics
    // live for ever.
    unsafe { &*evrs_c_data(which as c_int).cast::<T>() }
}
