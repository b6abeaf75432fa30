//! Who waits for whom: the process-wide wait-for graph behind evrs's blocking cross-thread
//! calls ([`SharedBase::del_block`](crate::SharedBase::del_block),
//! [`Handle::call`](crate::Handle::call) and the calls built on them).
//!
//! Every such call waits for exactly one other thread: the one running the base's loop. A
//! deadlock between them is therefore a cycle of threads, each waiting for the next — e.g. two
//! loops whose callbacks each delete an event whose callback the other loop is running. This
//! is where libevent hangs (its `event_del` waits on a condition variable unconditionally).
//! Before waiting, a thread records the edge "me → target" here; if following the recorded
//! edges from `target` leads back to the caller, the wait would close a cycle, and the call
//! fails with `ErrorKind::Deadlock` (having changed nothing) instead. Edge insertion and the
//! check happen under one lock, so of two threads closing a cycle at once, the second sees
//! the first's edge. Only blocking calls touch this graph; the loop's hot path never does.
//!
//! What the graph cannot see: locks of your own. A thread holding a mutex that a callback
//! needs, while it waits for that callback, deadlocks in every library — use the
//! non-blocking delete or a finalizer there.

use std::io;
use std::sync::Mutex;
use std::thread::ThreadId;

/// (waiting thread, thread it waits for). Small: one entry per blocked thread.
static EDGES: Mutex<Vec<(ThreadId, ThreadId)>> = Mutex::new(Vec::new());

/// A recorded wait; dropping it removes the edge.
pub(crate) struct WaitEdge(ThreadId);

impl Drop for WaitEdge {
    fn drop(&mut self) {
        let mut edges = EDGES.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = edges.iter().position(|&(from, _)| from == self.0) {
            edges.swap_remove(i);
        }
    }
}

/// Records that `me` is about to wait for `target`, unless that would close a cycle.
pub(crate) fn enter(me: ThreadId, target: ThreadId) -> io::Result<WaitEdge> {
    let mut edges = EDGES.lock().unwrap_or_else(|e| e.into_inner());
    let mut at = target;
    // Each thread has at most one outgoing edge, so the walk is a chain of at most
    // `edges.len()` steps.
    for _ in 0..=edges.len() {
        if at == me {
            return Err(io::Error::new(
                io::ErrorKind::Deadlock,
                "waiting here would deadlock: the thread to wait for is itself (directly or \
                 through others) waiting for this thread; nothing was changed — use the \
                 non-blocking variant or a finalizer",
            ));
        }
        match edges.iter().find(|&&(from, _)| from == at) {
            Some(&(_, next)) => at = next,
            None => break,
        }
    }
    edges.push((me, target));
    Ok(WaitEdge(me))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_for_yourself_is_a_cycle() {
        let me = std::thread::current().id();
        assert_eq!(
            enter(me, me).err().map(|e| e.kind()),
            Some(io::ErrorKind::Deadlock)
        );
    }

    #[test]
    fn a_two_thread_cycle_is_refused_and_edges_are_removed() {
        let me = std::thread::current().id();
        let other = std::thread::spawn(|| std::thread::current().id())
            .join()
            .unwrap();
        // `other` waits for me; me waiting for `other` closes the cycle.
        EDGES.lock().unwrap().push((other, me));
        let edge = WaitEdge(other);
        assert_eq!(
            enter(me, other).err().map(|e| e.kind()),
            Some(io::ErrorKind::Deadlock)
        );
        drop(edge);
        let ok = enter(me, other).expect("no cycle once the other wait ended");
        drop(ok);
        assert!(!EDGES.lock().unwrap().iter().any(|&(f, _)| f == me));
    }
}
