//! The live bases of the process, so that an event whose memory still names a freed base
//! is recognised instead of followed (on the assign and free paths; the hot paths trust
//! `ev_base`, as libevent does).

use crate::base::CBase;
use std::collections::BTreeSet;
use std::sync::Mutex;

static LIVE: Mutex<BTreeSet<usize>> = Mutex::new(BTreeSet::new());

fn live() -> std::sync::MutexGuard<'static, BTreeSet<usize>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Records a new base.
pub fn insert(b: *mut CBase) {
    live().insert(b as usize);
}

/// Forgets a freed base.
pub fn remove(b: *mut CBase) {
    live().remove(&(b as usize));
}

/// Whether `b` is a base of this library that has not been freed.
pub fn is_live(b: *mut CBase) -> bool {
    live().contains(&(b as usize))
}
