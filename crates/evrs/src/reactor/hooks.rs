//! Loop phase hooks (libev's `ev_prepare`/`ev_check`/`ev_idle`, libuv's
//! `uv_prepare`/`uv_check`/`uv_idle`): per phase, the started hooks in priority order (then
//! start order). A phase runs over a snapshot taken into a reused buffer, so hooks may start
//! and stop hooks (themselves included) while it runs; one stopped meanwhile does not run.

use super::events::{EventTable, HookKind};

/// A started hook: its slot, its generation (a freed slot reused meanwhile is not it), and
/// its start sequence (ties in priority run in start order).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Started {
    pub(crate) idx: u32,
    pub(crate) gen: u32,
    seq: u64,
}

#[derive(Default)]
pub(crate) struct Hooks {
    lists: [Vec<Started>; 3],
    /// Snapshot buffer of the phase being run (reused: no allocation per iteration).
    scratch: Vec<Started>,
    seq: u64,
}

impl Hooks {
    pub(crate) fn insert(&mut self, t: &EventTable, kind: HookKind, idx: usize) {
        self.seq += 1;
        let h = Started {
            idx: idx as u32,
            gen: t.get(idx).gen(),
            seq: self.seq,
        };
        let list = &mut self.lists[kind as usize];
        let pri = t.get(idx).pri;
        let at = list.partition_point(|s| t.get(s.idx as usize).pri <= pri);
        list.insert(at, h);
    }

    pub(crate) fn remove(&mut self, kind: HookKind, idx: usize) {
        let list = &mut self.lists[kind as usize];
        if let Some(at) = list.iter().position(|s| s.idx as usize == idx) {
            list.remove(at);
        }
    }

    /// Priorities changed: restore the order, ties in start order.
    pub(crate) fn reorder(&mut self, t: &EventTable) {
        for l in &mut self.lists {
            l.sort_unstable_by_key(|s| (t.get(s.idx as usize).pri, s.seq));
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
    pub(crate) fn snapshot(&mut self, kind: HookKind) -> Vec<Started> {
        let mut s = std::mem::take(&mut self.scratch);
        s.clear();
        s.extend_from_slice(&self.lists[kind as usize]);
        s
    }

    pub(crate) fn put_snapshot(&mut self, s: Vec<Started>) {
        self.scratch = s;
    }

    /// Each list holds started hooks of its kind in priority order (for `verify`).
    pub(crate) fn check(&self, t: &EventTable) -> Result<usize, String> {
        for (k, l) in self.lists.iter().enumerate() {
            for w in l.windows(2) {
                let (a, b) = (t.get(w[0].idx as usize).pri, t.get(w[1].idx as usize).pri);
                if (a, w[0].seq) > (b, w[1].seq) {
                    return Err(format!("hook list {k} is out of priority/start order"));
                }
            }
            for h in l {
                let i = h.idx;
                let s = t.get(i as usize);
                if s.gen() != h.gen {
                    return Err(format!("hook list {k} names a freed slot {i}"));
                }
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
