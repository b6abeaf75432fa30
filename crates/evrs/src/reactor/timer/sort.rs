//! Firing order within a tick: each fired list sorted by the microsecond of its deadlines.

use super::{Expired, TICK_NS};

/// Within a tick, expiries are ordered at this resolution (a microsecond, libevent's own
/// clock resolution); deadlines in the same microsecond fire in add order.
const SUB_NS: u64 = 1_000;
const SUBS: usize = (TICK_NS / SUB_NS) as usize;
/// Runs of expiries at least this long are radix sorted, shorter ones by comparison.
const RADIX_MIN: usize = 32;
/// The radix sort's digits: two of 5 bits cover a microsecond of the tick (`SUBS` ≤ 1024).
const DIGIT_BITS: u32 = 5;
const DIGITS: usize = 1 << DIGIT_BITS;
const _: () = assert!(SUBS <= DIGITS * DIGITS);

/// The microsecond of its tick a deadline falls in (`0..SUBS`), ceil-aligned as ticks are:
/// `base` is the start of the tick (`(tick - 1) * TICK_NS`), the deadline in `base + 1 ..=
/// base + TICK_NS` (tick 0 holds only deadline 0, which wraps to the last microsecond).
#[inline]
pub(super) fn sub_of(deadline: u64, base: u64) -> u32 {
    ((deadline.wrapping_sub(base).wrapping_sub(1) / SUB_NS) as u32).min(SUBS as u32 - 1)
}

/// Positions within a short run, below the microsecond in a comparison sort's key.
const POS_BITS: u32 = 22;
const _: () = assert!(RADIX_MIN <= 1 << POS_BITS && (SUBS as u64) << POS_BITS <= 1 << 32);

/// Puts one fired list in firing order (by the microsecond of the deadline, ties in add
/// order): a list is in add order, so it is usually sorted already (timers with one
/// timeout added over time) and costs one scan. `tick`: the one tick every deadline of the
/// list falls in, or `None` (the due list, which may span ticks). Long one-tick lists are
/// radix sorted, the rest compared on a key of (microsecond, position in the list).
pub(super) fn sort_run(run: &mut [Expired], tick: Option<u64>, scratch: &mut Vec<Expired>) {
    if run.len() < 2 || run.is_sorted_by_key(|e| e.deadline) {
        return;
    }
    match tick {
        Some(tick) if run.len() >= RADIX_MIN => {
            radix_sort(run, tick.saturating_sub(1) * TICK_NS, scratch)
        }
        Some(tick) => {
            let base = tick.saturating_sub(1) * TICK_NS;
            for (i, e) in run.iter_mut().enumerate() {
                e.pos = (sub_of(e.deadline, base) << POS_BITS) | i as u32;
            }
            run.sort_unstable_by_key(|e| e.pos);
        }
        _ => {
            for (i, e) in run.iter_mut().enumerate() {
                e.pos = i as u32;
            }
            run.sort_unstable_by_key(|e| (e.deadline.div_ceil(SUB_NS), e.pos));
        }
    }
}

/// Stable LSD radix sort of one tick's run on the microsecond of each deadline, in two
/// digits of 5 bits: one pass that keys and counts both digits, a scatter by the low digit
/// into `scratch`, one by the high digit back; equal keys keep their order. Its fixed cost
/// is two 32-entry tables, not one entry per microsecond of the tick (a list of a few
/// hundred timers would pay more for a 1000-bucket table than for its own elements).
fn radix_sort(run: &mut [Expired], base: u64, scratch: &mut Vec<Expired>) {
    let mut lo = [0u32; DIGITS];
    let mut hi = [0u32; DIGITS];
    let mut sorted = true;
    let mut last = 0;
    for e in run.iter_mut() {
        let k = sub_of(e.deadline, base);
        e.pos = k;
        sorted &= k >= last;
        last = k;
        lo[k as usize % DIGITS] += 1;
        hi[(k >> DIGIT_BITS) as usize % DIGITS] += 1;
    }
    if sorted {
        return;
    }
    for counts in [&mut lo, &mut hi] {
        let mut sum = 0;
        for a in counts.iter_mut() {
            let n = *a;
            *a = sum;
            sum += n;
        }
    }
    // Scratch holds the longest run there has been (grown only at a new high).
    if scratch.len() < run.len() {
        scratch.resize(run.len(), run[0]);
    }
    let tmp = &mut scratch[..run.len()];
    for e in run.iter() {
        let at = &mut lo[e.pos as usize % DIGITS];
        tmp[*at as usize] = *e;
        *at += 1;
    }
    for e in tmp.iter() {
        let at = &mut hi[(e.pos >> DIGIT_BITS) as usize % DIGITS];
        run[*at as usize] = *e;
        *at += 1;
    }
}
