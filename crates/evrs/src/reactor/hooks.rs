//! Loop phase hooks (libev's `ev_prepare`/`ev_check`/`ev_idle`, libuv's
//! `uv_prepare`/`uv_check`/`uv_idle`): per phase, the started hooks in priority order (then
//! start order). A phase runs over a snapshot taken into a reused buffer, so hooks may start
//! and stop hooks (themselves included) while it runs; one stopped meanwhile does not run.

use super::events::{EventTable, HookKind};

#[derive(Default)]
pub(crate) struct Hooks {
    lists: [Vec<u32>; 3],
    /// Snapshot buffer of the phase being run (reused: no allocation per iteration).
    scratch: Vec<u32>,
}

impl Hooks {
    pub(crate) fn insert(&mut self, t: &EventTable, kind: HookKind, idx: usize) {
        let list = &mut self.lists[kind as usize];
        let pri = t.get(idx).pri;
        let at = list.partition_point(|&i| t.get(i as usize).pri <= pri);
        list.insert(at, idx as u32);
    }

    pub(crate) fn remove(&mut self, kind: HookKind, idx: usize) {
        let list = &mut self.lists[kind as usize];
        if let Some(at) = list.iter().position(|&i| i as usize == idx) {
            list.remove(at);
        }
    }

    /// Priorities changed: restore the order (stable, so start order breaks ties).
    pub(crate) fn reorder(&mut self, t: &EventTable) {
        for l in &mut self.lists {
            l.sort_by_key(|&i| t.get(i as usize).pri);
        }
    }

    pub(crate) fn any(&self, kind: HookKind) -> bool {
        !self.lists[kind as usize].is_empty()
    }

    /// Started hooks of every kind.
    pub(crate) fn count(&self) -> usize {
        self.lists.iter().map(Vec::len).sum()
    }

    /// Takes the snapshot of `kind`'s hooks (give it back with [`put_snapshot`]).
    pub(crate) fn snapshot(&mut self, kind: HookKind) -> Vec<u32> {
        let mut s = std::mem::take(&mut self.scratch);
        s.clear();
        s.extend_from_slice(&self.lists[kind as usize]);
        s
    }

    pub(crate) fn put_snapshot(&mut self, s: Vec<u32>) {
        self.scratch = s;
    }

    /// Each list holds started hooks of its kind in priority order (for `verify`).
    pub(crate) fn check(&self, t: &EventTable) -> Result<usize, String> {
        for (k, l) in self.lists.iter().enumerate() {
            for w in l.windows(2) {
                if t.get(w[0] as usize).pri > t.get(w[1] as usize).pri {
                    return Err(format!("hook list {k} is out of priority order"));
                }
            }
            for &i in l {
                let s = t.get(i as usize);
                let ok = s.is_live()
                    && s.has(super::events::state::INSERTED)
                    && matches!(s.kind, super::events::Kind::Hook(h) if h as usize == k);
                if !ok {
                    return Err(format!(
                        "slot {i} is on hook list {k} but not a started hook"
                    ));
                }
            }
        }
        Ok(self.count())
    }
}
