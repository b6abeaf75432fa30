//! Tests of the timer wheel (`timer.rs`).

use super::sort::sub_of;
use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

const MS: u64 = 1_000_000;

#[test]
fn fires_in_deadline_then_insert_order_and_never_early() {
    let mut w = Wheel::new(0);
    ins(&mut w, 5 * MS, 'a');
    ins(&mut w, 3 * MS, 'b');
    ins(&mut w, 5 * MS, 'c');
    ins(&mut w, 3 * MS + 1, 'd');
    let mut out = Vec::new();
    w.poll(3 * MS, &mut out);
    assert_eq!(tokens(&out), "b");
    out.clear();
    w.poll(4 * MS - 1, &mut out);
    assert!(out.is_empty(), "3ms+1ns must not fire before 4ms tick");
    w.poll(4 * MS, &mut out);
    assert_eq!(tokens(&out), "d");
    out.clear();
    w.poll(10 * MS, &mut out);
    assert_eq!(tokens(&out), "ac");
    assert_eq!(w.len(), 0);
}

#[test]
fn far_timers_cascade_and_overflow() {
    let mut w = Wheel::new(7 * MS);
    let year = 365 * 24 * 3600 * 1000 * MS;
    let k = 1;
    w.set(k, 5 * year);
    w.set(2, 70_000 * MS);
    assert_eq!(w.next_deadline().map(|d| d <= 70_000 * MS), Some(true));
    let mut out = Vec::new();
    w.poll(69_999 * MS, &mut out);
    assert!(out.is_empty());
    w.poll(70_000 * MS, &mut out);
    assert_eq!(out.len(), 1);
    assert!(w.remove(k));
    assert!(!w.remove(k));
    assert!(w.next_deadline().is_none());
}

/// Files a timer keyed by a letter (its code point), returning the key.
fn ins(w: &mut Wheel, deadline: u64, c: char) -> TimerKey {
    w.set(c as u32, deadline);
    c as u32
}

/// The letters of the keys `poll` handed out.
fn tokens(out: &[Expired]) -> String {
    out.iter().map(|e| char::from_u32(e.key).unwrap()).collect()
}

/// Where the wheel's next work is, in ticks, for one timer at tick `t` filed when the
/// wheel was at `e`: the start of the slot holding it at the lowest level whose block
/// also holds `e`, or the next 2^38-tick boundary for the overflow list. Written
/// independently of `file` and `next_expiration`: level 0 is 8 bits of the tick, each
/// level above 6 more.
fn expected_next(e: u64, t: u64) -> u64 {
    if t <= e {
        return e;
    }
    let bits = |level: u32| if level == 0 { 0 } else { 8 + 6 * (level - 1) };
    let mut level = 0u32;
    while level < 6 && (e >> bits(level + 1)) != (t >> bits(level + 1)) {
        level += 1;
    }
    if level == 6 {
        ((e >> 38) + 1) << 38
    } else {
        t & !((1u64 << bits(level)) - 1)
    }
}

/// `next_deadline` is exact (not merely early enough) at every level, in the overflow
/// list, and after each cascade step; the timer fires at its own tick and not before.
#[test]
fn next_deadline_is_the_start_of_the_slot_holding_the_timer() {
    let starts = [
        0u64,
        7,
        63,
        255,
        256 * 64 + 5,
        (1 << 36) + 5,
        (1 << 38) + 9,
        (1 << 40) + 123,
    ];
    let offsets = [
        1u64,
        2,
        63,
        64,
        65,
        255,
        256,
        257,
        4095,
        4096,
        (1 << 14) + 1,
        (1 << 20) + 3,
        (1 << 30) + 7,
        1 << 35,
        1 << 36,
        (1 << 36) + 64,
        5 << 36,
        (1 << 38) + 3,
        3 << 38,
    ];
    let mut out = Vec::new();
    for e in starts {
        for off in offsets {
            let t = e + off;
            let mut w = Wheel::new(e * MS);
            ins(&mut w, t * MS, 'x');
            let mut now = e;
            let mut steps = 0;
            loop {
                steps += 1;
                assert!(steps < 64, "e {e} t {t}: no end to cascading");
                let d = w.next_deadline().expect("a timer is filed");
                assert_eq!(d, expected_next(now, t) * MS, "e {e} t {t} now {now}");
                assert!(d <= t * MS, "e {e} t {t}: next deadline after the timer");
                out.clear();
                w.poll(d - 1, &mut out);
                assert!(out.is_empty(), "e {e} t {t}: fired before {d}");
                assert_eq!(
                    w.next_deadline(),
                    Some(d),
                    "e {e} t {t}: a poll short of it"
                );
                w.poll(d, &mut out);
                now = d / MS;
                if !out.is_empty() {
                    assert_eq!(now, t, "e {e}: fired at tick {now}, not {t}");
                    break;
                }
            }
            assert_eq!(w.len(), 0);
            assert_eq!(w.next_deadline(), None);
        }
    }
}

/// Removing a timer clears its slot's occupancy bit once the slot is empty (and not
/// before): a stale bit would make the next deadline early.
#[test]
fn removal_clears_the_slot_once_it_is_empty() {
    let mut w = Wheel::new(0);
    let a = ins(&mut w, 300 * MS, 'a'); // level 1, slot 1: work at tick 256
    let b = ins(&mut w, 301 * MS, 'b'); // same slot
    let c = ins(&mut w, 5 * MS, 'c'); // level 0
    assert_eq!(w.next_deadline(), Some(5 * MS));
    assert!(w.remove(c));
    assert_eq!(w.next_deadline(), Some(256 * MS));
    assert!(w.remove(a));
    assert_eq!(w.next_deadline(), Some(256 * MS));
    assert!(w.remove(b));
    assert_eq!(w.next_deadline(), None);
    assert_eq!(w.len(), 0);
    // A poll after all that finds nothing, and the wheel is reusable.
    let mut out = Vec::new();
    w.poll(400 * MS, &mut out);
    assert!(out.is_empty());
    ins(&mut w, 401 * MS, 'd');
    assert_eq!(w.next_deadline(), Some(401 * MS));
}

/// Unlinking the head, the middle or the tail of a slot's list keeps the others in
/// order.
#[test]
fn removal_from_any_position_keeps_the_list_in_order() {
    for victim in 0..4 {
        let mut w = Wheel::new(0);
        let keys: Vec<_> = "abcd".chars().map(|c| ins(&mut w, 9 * MS, c)).collect();
        w.remove(keys[victim]);
        let mut out = Vec::new();
        w.poll(9 * MS, &mut out);
        let expect: String = "abcd"
            .chars()
            .enumerate()
            .filter(|&(i, _)| i != victim)
            .map(|(_, c)| c)
            .collect();
        assert_eq!(tokens(&out), expect);
        assert_eq!(w.len(), 0);
    }
}

/// A timer whose tick has already passed when it is added is due at once, and all such
/// timers fire earliest first, whatever order they were added in.
#[test]
fn timers_added_in_the_past_fire_earliest_first() {
    let mut w = Wheel::new(10 * MS);
    ins(&mut w, 5 * MS, 'a');
    ins(&mut w, 10 * MS, 'b');
    ins(&mut w, 3 * MS, 'c');
    ins(&mut w, 11 * MS, 'd');
    assert_eq!(w.next_deadline(), Some(10 * MS));
    let mut out = Vec::new();
    w.poll(10 * MS, &mut out);
    assert_eq!(tokens(&out), "cab");
    out.clear();
    w.poll(11 * MS, &mut out);
    assert_eq!(tokens(&out), "d");
}

/// `get` (used by `verify`) reports a filed timer's deadline, nothing else.
#[test]
fn get_reports_live_timers_only() {
    let mut w = Wheel::new(0);
    let k = ins(&mut w, 42 * MS + 7, 'x');
    let j = ins(&mut w, 3, 'y');
    assert_eq!(w.get(k), Some(42 * MS + 7));
    assert_eq!(w.get(j), Some(3));
    assert!(w.remove(k));
    assert_eq!(w.get(k), None);
    assert_eq!(w.get(j + k + 100), None);
    assert!(!w.remove(k));
    assert!(!w.remove(j + k + 100));
    assert_eq!(w.len(), 1);
}

/// `set` on a filed key moves the timer (one timer, at its new deadline, at the end of
/// its new list); keys far apart grow the node array, the keys between stay unfiled.
#[test]
fn set_moves_a_filed_timer_and_keys_grow_the_array() {
    let mut w = Wheel::new(0);
    ins(&mut w, 5 * MS, 'a');
    ins(&mut w, 5 * MS, 'b');
    ins(&mut w, 9 * MS, 'a');
    assert_eq!(w.len(), 2);
    assert_eq!(w.get('a' as u32), Some(9 * MS));
    w.set(100_000, 5 * MS);
    assert_eq!(w.get(99_999), None);
    assert_eq!(w.len(), 3);
    assert_eq!(w.check(), Ok(()));
    let mut out = Vec::new();
    w.poll(10 * MS, &mut out);
    let keys: Vec<u32> = out.iter().map(|e| e.key).collect();
    assert_eq!(keys, ['b' as u32, 100_000, 'a' as u32]);
    assert_eq!(w.len(), 0);
}

/// A list longer than a block, thinned by removals until it is compacted (and the blocks
/// it no longer needs go back to the pool), keeps its timers in add order; a list emptied
/// by removals gives every block back. Re-adding the same timers over and over (a timeout
/// pushed back on every read) does not grow the pool.
#[test]
fn long_lists_compact_in_order_and_blocks_are_reused() {
    let mut w = Wheel::new(0);
    let n = 10 * BLOCK as u32;
    for k in 0..n {
        w.set(k, 7 * MS);
    }
    assert_eq!(w.check(), Ok(()));
    let blocks = w.next_block.len();
    // Remove all but every fifth: enough tombstones to compact, more than once.
    for k in (0..n).filter(|k| k % 5 != 0) {
        assert!(w.remove(k));
        assert_eq!(w.check(), Ok(()));
    }
    let list = w.lists[7];
    assert!(
        list.dead <= list.live + COMPACT_SLACK,
        "never compacted: {}",
        list.dead
    );
    let mut out = Vec::new();
    w.poll(7 * MS, &mut out);
    let keys: Vec<u32> = out.iter().map(|e| e.key).collect();
    assert_eq!(keys, (0..n).filter(|k| k % 5 == 0).collect::<Vec<_>>());
    assert_eq!(w.check(), Ok(()));
    // Every block is free again; pushing timers back and forth reuses them.
    for round in 0..50u64 {
        for k in 0..n {
            w.set(k, (20 + round % 7) * MS + u64::from(k));
        }
        assert_eq!(w.check(), Ok(()));
    }
    assert!(
        w.next_block.len() <= 2 * blocks + 8,
        "{} blocks",
        w.next_block.len()
    );
    for k in 0..n {
        assert!(w.remove(k));
    }
    assert_eq!(w.check(), Ok(()));
    assert!(w.lists.iter().all(|l| l.head == NIL));
}

/// Timers removed in the order they were added leave no tombstones: each removal of a
/// list's first timer moves its start, and emptied head blocks go straight back to the
/// pool, so a rolling window of timers reuses a few blocks for ever.
#[test]
fn removals_in_add_order_leave_nothing_behind() {
    let mut w = Wheel::new(0);
    let window = 3 * BLOCK as u32;
    for k in 0..10_000u32 {
        w.set(k, 50 * MS);
        if k >= window {
            assert!(w.remove(k - window));
            let list = w.lists[50];
            assert_eq!((list.live, list.dead), (window, 0));
        }
    }
    assert_eq!(w.check(), Ok(()));
    assert!(w.next_block.len() <= 5, "{} blocks", w.next_block.len());
}

/// A cascade moves a multi-block list down in order while the lists it fills take blocks
/// from the pool (the walked list's own blocks return only after the walk).
#[test]
fn cascades_of_long_lists_keep_order() {
    let mut w = Wheel::new(0);
    let n = 5 * BLOCK as u32 + 3;
    for k in 0..n {
        // Level 1 (ticks 256..511), a few distinct ticks.
        w.set(k, (300 + u64::from(k % 3)) * MS);
    }
    w.remove(4);
    assert_eq!(w.check(), Ok(()));
    let mut out = Vec::new();
    w.poll(256 * MS, &mut out);
    assert!(out.is_empty());
    assert_eq!(w.check(), Ok(()));
    w.poll(302 * MS, &mut out);
    let mut expect: Vec<u32> = (0..n).filter(|&k| k != 4).collect();
    expect.sort_by_key(|k| k % 3);
    assert_eq!(out.iter().map(|e| e.key).collect::<Vec<_>>(), expect);
    assert_eq!(w.len(), 0);
    assert_eq!(w.check(), Ok(()));
}

/// The order timers fire in: by tick, then by the microsecond within the tick.
fn fire_key(deadline: u64) -> (u64, u32) {
    let tick = tick_of(deadline);
    (tick, sub_of(deadline, tick.saturating_sub(1) * MS))
}

/// Everything `poll` hands out of one wheel, as (deadline, token).
fn drain(w: &mut Wheel, now: u64) -> Vec<(u64, usize)> {
    let mut out = Vec::new();
    w.poll(now, &mut out);
    out.iter().map(|e| (e.deadline, e.key as usize)).collect()
}

/// `poll` hands timers out earliest first to the microsecond, timers in one microsecond in
/// add order: within a tick, across ticks, and in the due list (deadlines already past when
/// added, from several ticks). Deadlines a few nanoseconds apart keep their add order.
#[test]
fn poll_hands_timers_out_in_firing_order() {
    for ds in [
        &[
            3 * MS,
            3 * MS - 5,
            3 * MS - 5,
            2 * MS + 1,
            4 * MS,
            4 * MS - 1,
        ][..],
        &[9 * MS, 2 * MS, 9 * MS, 0, 5, 2 * MS, 1][..],
        &[7, 7, 7][..],
        &[][..],
    ] {
        let mut w = Wheel::new(0);
        for (i, &d) in ds.iter().enumerate() {
            w.set(i as u32, d);
        }
        let mut expect: Vec<(u64, usize)> = ds.iter().copied().zip(0..).collect();
        expect.sort_by_key(|&(d, i)| (fire_key(d), i));
        assert_eq!(drain(&mut w, 10 * MS), expect);
        // The same deadlines once they are all past: every one goes on the due list.
        let mut w = Wheel::new(0);
        w.poll(10 * MS, &mut Vec::new());
        for (i, &d) in ds.iter().enumerate() {
            w.set(i as u32, d);
        }
        assert_eq!(drain(&mut w, 10 * MS), expect);
    }
}

/// A run long enough for the radix sort, with repeated deadlines and its neighbours in
/// other ticks, comes out in (tick, microsecond, add order) order.
#[test]
fn long_runs_sort_stably() {
    let mut ds = vec![MS / 2, 3 * MS + 1];
    let mut x = 12345u64;
    for _ in 0..1000 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        // Within tick 2: (1 ms, 2 ms], few distinct microseconds so ties are common, some
        // a few nanoseconds apart within their microsecond (they keep their add order).
        let jitter = if (x >> 60) % 2 == 0 { (x >> 40) % 7 } else { 0 };
        ds.push(MS + 1 + (x >> 33) % 50 * 20_000 + (x >> 60) % 2 * (MS - 1 - 49 * 20_000) + jitter);
    }
    ds.push(2 * MS);
    ds.push(5 * MS);
    let mut w = Wheel::new(0);
    for (i, &d) in ds.iter().enumerate() {
        w.set(i as u32, d);
    }
    let mut expect: Vec<(u64, usize)> = ds.iter().copied().zip(0..).collect();
    expect.sort_by_key(|&(d, i)| (fire_key(d), i));
    assert_eq!(drain(&mut w, 10 * MS), expect);
}

/// `check` notices a stale occupancy bit, a node on the wrong list and a node marked filed
/// that is on no list.
#[test]
fn check_catches_a_broken_wheel() {
    let mut w = Wheel::new(0);
    let a = ins(&mut w, 100 * MS, 'a');
    let b = ins(&mut w, 5 * MS, 'b');
    w.remove(b);
    assert_eq!(w.check(), Ok(()));
    w.occupied[0] |= 1 << 9;
    assert!(w.check().is_err());
    w.occupied[0] &= !(1 << 9);
    w.nodes[a as usize].deadline = 3 * MS;
    assert!(w.check().is_err());
    w.nodes[a as usize].deadline = 100 * MS;
    assert_eq!(w.check(), Ok(()));
    w.nodes[b as usize].loc = 5;
    assert!(w.check().is_err());
    w.nodes[b as usize].loc = FREE;
    w.lists[w.nodes[a as usize].loc as usize].dead += 1;
    assert!(w.check().is_err());
}

/// The invariant that makes `next_expiration`'s wrap-around unreachable (see
/// docs/MUTANTS.md): every occupied slot of a level is strictly after the wheel's own
/// digit at that level (a slot the wheel reaches is cascaded or fired at once), so
/// `slot < now_slot` never holds.
fn occupied_slots_are_ahead_of_the_wheel(w: &Wheel) -> bool {
    let bit = |loc: usize| w.occupied[loc / 64] >> (loc % 64) & 1 == 1;
    (0..LEVELS).all(|l| {
        let slots = if l == 0 { L0_SLOTS } else { SLOTS };
        let digit = (w.elapsed >> shift(l)) as usize & (slots - 1);
        (0..=digit).all(|slot| !bit(first_loc(l) + slot))
    })
}

proptest! {
    #[test]
    fn matches_a_sorted_model(ops in proptest::collection::vec((0u8..6, 0u64..5_000_000_000u64), 1..300)) {
        let mut w = Wheel::new(0);
        // Keyed (tick, seq): the order timers come out in.
        let mut model: BTreeMap<(u64, u64), (u64, u32)> = BTreeMap::new();
        // Every timer's key and model key (`None`: staged, in `staged` in stage order with
        // its timeout).
        let mut keys: Vec<(TimerKey, Option<(u64, u64)>)> = Vec::new();
        let mut staged: Vec<(TimerKey, u64)> = Vec::new();
        let mut now = 0u64;
        let mut seq = 0u64;
        let mut out = Vec::new();
        // Takes timer `k` (model key `mk`) out of the model.
        let forget = |model: &mut BTreeMap<(u64, u64), (u64, u32)>,
                      staged: &mut Vec<(TimerKey, u64)>,
                      k: TimerKey,
                      mk: Option<(u64, u64)>| match mk {
            Some(mk) => model.remove(&mk).is_some(),
            None => {
                let before = staged.len();
                staged.retain(|&(s, _)| s != k);
                staged.len() < before
            }
        };
        for (i, (op, v)) in ops.into_iter().enumerate() {
            match op {
                0 | 1 => {
                    let deadline = now + v / (1 + op as u64 * 1000);
                    seq += 1;
                    let k = i as u32;
                    w.set(k, deadline);
                    model.insert((deadline.div_ceil(MS), seq), (deadline, i as u32));
                    keys.push((k, Some((deadline.div_ceil(MS), seq))));
                }
                2 => if !keys.is_empty() {
                    let (k, mk) = keys.swap_remove(v as usize % keys.len());
                    prop_assert_eq!(w.remove(k), forget(&mut model, &mut staged, k, mk));
                },
                // A re-add: the timer moves to a new deadline, behind everything added before.
                3 => if !keys.is_empty() {
                    let at = v as usize % keys.len();
                    let (k, mk) = keys[at];
                    prop_assert!(forget(&mut model, &mut staged, k, mk), "a filed timer");
                    let deadline = now + v % 300_000_000;
                    seq += 1;
                    w.set(k, deadline);
                    let nk = (deadline.div_ceil(MS), seq);
                    model.insert(nk, (deadline, k));
                    keys[at] = (k, Some(nk));
                },
                // Staged: a new timer, or a filed or staged one moved (half the time).
                4 => {
                    let timeout = if v % 7 == 0 { 0 } else { v % 300_000_000 };
                    let k = if v % 2 == 0 && !keys.is_empty() {
                        let at = v as usize % keys.len();
                        let (k, mk) = keys[at];
                        prop_assert!(forget(&mut model, &mut staged, k, mk), "a timer");
                        keys[at] = (k, None);
                        k
                    } else {
                        keys.push((i as u32, None));
                        i as u32
                    };
                    w.stage(k, timeout);
                    prop_assert_eq!(w.staged(k), Some(timeout));
                    prop_assert_eq!(w.get(k), None);
                    staged.push((k, timeout));
                }
                _ => {
                    now += v / 1000;
                    // What the base does before it waits: settle, in stage order.
                    let mut settled = Vec::new();
                    w.settle(now, |k, at| settled.push((k, at)));
                    let want: Vec<TimerKey> = staged.iter().map(|&(k, _)| k).collect();
                    let got: Vec<TimerKey> = settled.iter().map(|&(k, _)| k).collect();
                    prop_assert_eq!(got, want);
                    for ((k, timeout), &(_, at)) in staged.drain(..).zip(&settled) {
                        let deadline = if timeout == 0 { now - now % MS } else { now + timeout };
                        prop_assert_eq!(at, deadline);
                        seq += 1;
                        let nk = (deadline.div_ceil(MS), seq);
                        model.insert(nk, (deadline, k));
                        let e = keys.iter_mut().find(|e| e.0 == k).expect("a staged key");
                        e.1 = Some(nk);
                    }
                    prop_assert!(!w.has_staged());
                    out.clear();
                    w.poll(now, &mut out);
                    let due: Vec<(u64, u64)> = model.keys()
                        .filter(|(tick, _)| *tick <= now / MS).copied().collect();
                    for e in &out {
                        prop_assert!(e.deadline <= now, "fired early");
                    }
                    // The firing order: (tick, microsecond, add order).
                    let mut by_deadline: Vec<((u64, u32), u64, u32)> =
                        due.iter().map(|k| (fire_key(model[k].0), k.1, model[k].1)).collect();
                    by_deadline.sort_unstable();
                    let got: Vec<u32> = out.iter().map(|e| e.key).collect();
                    let expect: Vec<u32> = by_deadline.iter().map(|e| e.2).collect();
                    prop_assert_eq!(got, expect);
                    for mk in &due {
                        model.remove(mk);
                        keys.retain(|(_, k)| k.as_ref() != Some(mk));
                    }
                    if let Some(next) = w.next_deadline() {
                        if let Some(((tick, _), _)) = model.iter().next() {
                            prop_assert!(next <= tick * MS);
                        }
                    }
                }
            }
            prop_assert_eq!(w.len(), model.len() + staged.len());
            prop_assert!(occupied_slots_are_ahead_of_the_wheel(&w), "a slot at or behind the wheel");
            prop_assert_eq!(w.check(), Ok(()));
        }
    }
}
