//! # evrs-capi: libevent 2.1's C ABI over evrs
//!
//! C programs written for libevent 2.1 compile unchanged against this crate's headers
//! (`include/`), and binaries already linked to libevent run on it through
//! `LD_LIBRARY_PATH`. The crate builds one implementation library, `libevrs_capi.so`, whose
//! functions are exported as `evrs_<name>`; `build-libs.sh` wraps it in libevent's three
//! SONAMEs (`libevent_core-2.1.so.7`, `libevent-2.1.so.7`, `libevent_pthreads-2.1.so.7`),
//! each of which defines libevent's names as one-jump forwarders to it. So whichever of them
//! a program links or loads, in any combination, there is one copy of the library's state:
//! one current base, one set of memory and log hooks, one signal registry.
//!
//! Module per header family: [`base`] (bases, configs, loops), [`buffer`] (`struct evbuffer`),
//! [`bufferevent`] (`struct bufferevent`), [`event`] (`struct event`), [`callback`]
//! (`struct event_callback`, libevent's exported internal deferred callbacks),
//! [`compat`] (the 1.x current-base API, versions, `event_base_once`), [`log`], [`mm`].
//! The boundary itself is [`ffi`]: every function is declared through one macro that stops
//! panics at the border.

#![allow(unsafe_code)] // the C ABI: raw pointers from C in every function
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![allow(clippy::missing_safety_doc)] // each function's safety contract is libevent's own

pub mod base;
pub mod buffer;
pub mod bufferevent;
pub mod callback;
pub mod compat;
pub mod counts;
pub mod debug;
pub mod event;
pub mod ffi;
pub mod inspect;
pub mod listener;
pub mod locking;
pub mod log;
pub mod mm;
pub mod thread;
pub mod util;
