//! Lock-free coalescing of cross-thread activations ([`Handle::activate`](crate::Handle)).
//!
//! Activating an event that is already waiting to be activated only adds bits, so it needs
//! no command and no wake-up: one atomic word per event slot records the pending bits. A
//! producer ORs its bits in with a CAS; only the one that finds the word empty queues a
//! command (and, through the wake queue, wakes the loop). The loop, running that command,
//! takes the word back to empty and activates the event with every bit gathered meanwhile.
//! Repeated activations of a pending event thus cost one atomic load — libevent needs its
//! base lock for the same no-op.
//!
//! Word layout: bits 0–7 the pending `What` bits (0 = nothing pending), bits 8–31 the low 24
//! bits of the event's generation, so a word left by a freed event is not mistaken for its
//! slot's next occupant (that producer falls back to a plain command).

#[cfg(loom)]
use loom::sync::atomic::{AtomicU32, Ordering};
#[cfg(not(loom))]
use std::sync::atomic::{AtomicU32, Ordering};

/// Outcome of marking an activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mark {
    /// Folded into an activation already queued: nothing more to do.
    Coalesced,
    /// First pending activation: the caller must queue a command to deliver it.
    Queued,
    /// Cannot use the table (slot out of range, no bits, or another generation's bits are
    /// pending): send a plain command.
    Fallback,
}

const BITS: u32 = 0xFF;

fn tag(gen: u32) -> u32 {
    (gen & 0x00FF_FFFF) << 8
}

/// Producer side on one word.
pub(crate) fn mark_entry(e: &AtomicU32, gen: u32, what: u8) -> Mark {
    let what = u32::from(what);
    if what == 0 {
        return Mark::Fallback;
    }
    let tag = tag(gen);
    let mut cur = e.load(Ordering::Acquire);
    loop {
        let pending = cur & BITS;
        if pending != 0 {
            if cur & !BITS != tag {
                return Mark::Fallback;
            }
            if pending & what == what {
                return Mark::Coalesced;
            }
        }
        match e.compare_exchange_weak(
            cur,
            tag | pending | what,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) if pending == 0 => return Mark::Queued,
            Ok(_) => return Mark::Coalesced,
            Err(now) => cur = now,
        }
    }
}

/// Consumer side: takes the bits pending for generation `gen` (0 if none or another
/// generation's — those belong to another command).
pub(crate) fn take_entry(e: &AtomicU32, gen: u32) -> u8 {
    let tag = tag(gen);
    let mut cur = e.load(Ordering::Acquire);
    loop {
        if cur & BITS == 0 || cur & !BITS != tag {
            return 0;
        }
        match e.compare_exchange_weak(cur, 0, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return (cur & BITS) as u8,
            Err(now) => cur = now,
        }
    }
}

pub(crate) use table::PendingActivations;

mod table {
    use super::{mark_entry, take_entry, AtomicU32, Mark};
    use crate::event::Event;
    use std::sync::OnceLock;

    const CHUNK: usize = 16 * 1024;
    const CHUNKS: usize = 256;

    /// One word per event slot, in chunks allocated on first use (the first 4 M slots; events
    /// beyond use plain commands).
    pub(crate) struct PendingActivations {
        chunks: Box<[OnceLock<Box<[AtomicU32]>>]>,
    }

    impl PendingActivations {
        pub(crate) fn new() -> Self {
            PendingActivations {
                chunks: (0..CHUNKS).map(|_| OnceLock::new()).collect(),
            }
        }

        fn entry(&self, idx: u32) -> Option<&AtomicU32> {
            let (c, i) = (idx as usize / CHUNK, idx as usize % CHUNK);
            let chunk = self.chunks.get(c)?;
            Some(&chunk.get_or_init(|| (0..CHUNK).map(|_| AtomicU32::new(0)).collect())[i])
        }

        pub(crate) fn mark(&self, ev: Event, what: u16) -> Mark {
            match (self.entry(ev.idx), u8::try_from(what)) {
                (Some(e), Ok(what)) => mark_entry(e, ev.gen, what),
                _ => Mark::Fallback,
            }
        }

        pub(crate) fn take(&self, ev: Event) -> u8 {
            self.entry(ev.idx).map_or(0, |e| take_entry(e, ev.gen))
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(not(loom))]
    #[test]
    fn marks_coalesce_until_taken() {
        use super::*;
        let e = AtomicU32::new(0);
        assert_eq!(mark_entry(&e, 7, 0x02), Mark::Queued);
        assert_eq!(mark_entry(&e, 7, 0x02), Mark::Coalesced);
        assert_eq!(mark_entry(&e, 7, 0x04), Mark::Coalesced);
        assert_eq!(
            mark_entry(&e, 8, 0x02),
            Mark::Fallback,
            "another generation pending"
        );
        assert_eq!(mark_entry(&e, 7, 0), Mark::Fallback, "no bits");
        assert_eq!(take_entry(&e, 8), 0, "not this generation's");
        assert_eq!(take_entry(&e, 7), 0x06);
        assert_eq!(take_entry(&e, 7), 0);
        assert_eq!(mark_entry(&e, 8, 0x01), Mark::Queued);
    }

    /// Two producers and the loop race on one word: every producer whose bits were not
    /// delivered by an earlier command was told to queue one, so no activation is lost.
    #[cfg(loom)]
    #[test]
    fn loom_no_lost_activation() {
        use super::*;
        use loom::sync::atomic::AtomicUsize;
        use loom::sync::Arc;
        loom::model(|| {
            let e = Arc::new(AtomicU32::new(0));
            let queued = Arc::new(AtomicUsize::new(0));
            let ps: Vec<_> = [0x02u8, 0x04]
                .into_iter()
                .map(|bit| {
                    let (e, queued) = (e.clone(), queued.clone());
                    loom::thread::spawn(move || {
                        if mark_entry(&e, 3, bit) == Mark::Queued {
                            queued.fetch_add(1, Ordering::SeqCst);
                        }
                    })
                })
                .collect();
            // The loop runs one command if one was queued by now.
            let mut got = 0u8;
            let mut commands = 0;
            if queued.load(Ordering::SeqCst) > commands {
                commands += 1;
                got |= take_entry(&e, 3);
            }
            for p in ps {
                p.join().unwrap();
            }
            while queued.load(Ordering::SeqCst) > commands {
                commands += 1;
                got |= take_entry(&e, 3);
            }
            assert_eq!(got, 0x06, "both activations delivered");
            assert_eq!(e.load(Ordering::SeqCst), 0, "nothing left pending");
        });
    }
}
