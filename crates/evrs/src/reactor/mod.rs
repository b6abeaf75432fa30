//! The reactor's core: the parts of a base that hold no user callbacks, each owning its data
//! behind private fields, and the one loop that both threading models run.
//!
//! | part | file | owns | keeps |
//! |---|---|---|---|
//! | event table | `events.rs` | slots, free list, generations, state bits | active/added/finalizing counts = the bits; stale handles refused; a slot is retired before its generation wraps |
//! | active queues | `queue.rs` | per-priority FIFOs + active-later | queue membership ⇔ ACTIVE bit, priority of the queue = the slot's |
//! | fd table | `io_table.rs` | per-fd event lists and interest counts | counts = the listed events' interest; the backend holds the combined mask |
//! | signal table | `signals.rs` | per-signal lists, the self-pipe | listed ⇔ inserted signal event; handler installed while listed |
//! | timer wheel | `timer.rs` | the hierarchical wheel | TIMEOUT bit ⇔ a live wheel key naming the slot with its deadline |
//! | hooks | `hooks.rs` | prepare/check/idle lists | listed ⇔ inserted hook, ordered by priority |
//! | the loop | `run_loop.rs` | phases of one iteration | one implementation for `EventBase` and `SharedBase` |
//!
//! [`Reactor`] ties them together (`ops.rs`: add, del, activate, timers; `phases.rs`: the
//! steps of an iteration; `absorb.rs`: a poll result into the queues) and [`verify`](Reactor::verify) checks every invariant above.

mod absorb;
pub(crate) mod events;
pub(crate) mod hooks;
pub(crate) mod io_table;
mod ops;
mod phases;
pub(crate) mod queue;
pub(crate) mod run_loop;
pub(crate) mod signals;
#[cfg(test)]
mod tests;
pub(crate) mod timer;
mod verify;

use crate::backend::{Backend, Polled};
use crate::flags::{BaseFlags, Method};
use crate::sys;
use events::EventTable;
use hooks::Hooks;
use io_table::IoTable;
use queue::ActiveQueues;
use signals::SignalTable;
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use timer::{Expired, Wheel};

pub(crate) use events::{invalid, state, HookKind, Kind, NIL};

/// Most priority queues a base can have (libevent's `EVENT_MAX_PRIORITIES`).
pub const MAX_PRIORITIES: usize = 256 - 1;

static NEXT_BASE_ID: AtomicU32 = AtomicU32::new(1);

/// Loop bookkeeping: is it running, was it asked to stop, what runs now.
struct LoopState {
    running: bool,
    got_exit: bool,
    /// [`BREAK`] and [`CONT`] (`loopcontinue` or a more urgent activation): either ends
    /// the pass, so the loop tests both with one load.
    interrupt: u8,
    /// The slot whose callback runs (NIL: none), and its generation then.
    running_slot: u32,
    running_gen: u32,
    running_priority: Option<usize>,
}

/// `loopbreak` was called (in [`LoopState::interrupt`]).
const BREAK: u8 = 0x01;
/// The pass must end after the running callback (in [`LoopState::interrupt`]).
const CONT: u8 = 0x02;

impl LoopState {
    #[inline]
    fn got_break(&self) -> bool {
        self.interrupt & BREAK != 0
    }
}

impl Default for LoopState {
    fn default() -> Self {
        LoopState {
            running: false,
            got_exit: false,
            interrupt: 0,
            running_slot: NIL,
            running_gen: 0,
            running_priority: None,
        }
    }
}

/// The iteration's cached time and the wall-clock offset.
struct Clock {
    cache: Option<u64>,
    wall_offset: Option<(u64, i128)>,
    precise: bool,
    no_cache: bool,
    /// The loop is awake (running hooks and callbacks) and settles staged timers before it
    /// next sleeps: timeouts added meanwhile are staged (see [`Reactor::arm_timer`]).
    staging: bool,
}

/// The dispatch caps (libevent's `max_dispatch_interval`).
struct Limits {
    max_interval: Option<Duration>,
    max_callbacks: Option<u32>,
    from_priority: usize,
}

/// How a base is set up (from `EventConfig`, after the environment).
pub(crate) struct Setup {
    pub(crate) method: Method,
    pub(crate) changelist: bool,
    pub(crate) flags: BaseFlags,
    pub(crate) priorities: usize,
    pub(crate) max_interval: Option<Duration>,
    pub(crate) max_callbacks: Option<u32>,
    pub(crate) limit_from_priority: usize,
    pub(crate) growth: Growth,
}

/// Everything of a base except its callbacks (which the threading model owns: boxed
/// closures for `EventBase`, `Send` ones for `SharedBase`). Holds only plain data and fds, so
/// it is `Send` by construction.
pub(crate) struct Reactor {
    table: EventTable,
    io: IoTable,
    signals: SignalTable,
    queues: ActiveQueues,
    wheel: Wheel,
    expired: Vec<Expired>,
    polled: Vec<Polled>,
    backend: Backend,
    hooks: Hooks,
    lp: LoopState,
    clock: Clock,
    limits: Limits,
    flags: BaseFlags,
    /// `add` accepts I/O events on negative fds and never polls them (libevent's rule).
    unpolled_negative_fds: bool,
    /// Holds taken with `EventBase::hold_open`: the loop does not run out while any is.
    holds: usize,
}

impl Reactor {
    pub(crate) fn new(setup: &Setup) -> io::Result<Reactor> {
        Self::with_backend(setup, Backend::new(setup.method, setup.changelist)?)
    }

    pub(crate) fn with_backend(setup: &Setup, backend: Backend) -> io::Result<Reactor> {
        let precise = setup.flags.contains(BaseFlags::PRECISE_TIMER);
        Ok(Reactor {
            table: EventTable::new(NEXT_BASE_ID.fetch_add(1, Ordering::Relaxed), setup.growth),
            io: IoTable::default(),
            signals: SignalTable::new(),
            queues: ActiveQueues::new(setup.priorities),
            wheel: Wheel::new(sys::clock::now_ns(true)),
            expired: Vec::new(),
            polled: Vec::new(),
            backend,
            hooks: Hooks::default(),
            lp: LoopState::default(),
            clock: Clock {
                cache: None,
                wall_offset: None,
                precise,
                no_cache: setup.flags.contains(BaseFlags::NO_CACHE_TIME),
                staging: false,
            },
            limits: Limits {
                max_interval: setup.max_interval,
                max_callbacks: setup.max_callbacks,
                from_priority: setup.limit_from_priority,
            },
            flags: setup.flags,
            unpolled_negative_fds: false,
            holds: 0,
        })
    }

    pub(crate) fn id(&self) -> u32 {
        self.table.base_id()
    }

    pub(crate) fn table(&self) -> &EventTable {
        &self.table
    }

    pub(crate) fn method(&self) -> Method {
        self.backend.method()
    }

    pub(crate) fn flags(&self) -> BaseFlags {
        self.flags
    }

    pub(crate) fn priorities(&self) -> usize {
        self.queues.priorities()
    }

    pub(crate) fn ctl_calls(&self) -> u64 {
        self.backend.ctl_calls()
    }

    pub(crate) fn backend_mut(&mut self) -> &mut Backend {
        &mut self.backend
    }

    // ----- loop state ------------------------------------------------------------------

    pub(crate) fn is_running(&self) -> bool {
        self.lp.running
    }

    pub(crate) fn got_exit(&self) -> bool {
        self.lp.got_exit
    }

    pub(crate) fn got_break(&self) -> bool {
        self.lp.got_break()
    }

    pub(crate) fn loopbreak(&mut self) {
        if self.lp.running {
            self.lp.interrupt |= BREAK;
        }
    }

    pub(crate) fn loopcontinue(&mut self) {
        if self.lp.running {
            self.lp.interrupt |= CONT;
        }
    }

    pub(crate) fn running_event(&self) -> Option<crate::Event> {
        self.running_slot().map(|(idx, gen)| crate::Event {
            idx: idx as u32,
            gen,
            base: self.id(),
        })
    }

    /// The slot (and its generation when the callback started) whose callback runs.
    pub(crate) fn running_slot(&self) -> Option<(usize, u32)> {
        (self.lp.running_slot != NIL)
            .then_some((self.lp.running_slot as usize, self.lp.running_gen))
    }

    #[inline]
    pub(crate) fn set_running_slot(&mut self, idx: Option<usize>) {
        match idx {
            Some(i) => self.set_running(i, self.table.get(i).gen()),
            None => self.lp.running_slot = NIL,
        }
    }

    /// Records event (`idx`, `gen`) as the one whose callback runs (the panic rule).
    #[inline]
    pub(crate) fn set_running(&mut self, idx: usize, gen: u32) {
        self.lp.running_slot = idx as u32;
        self.lp.running_gen = gen;
    }

    /// How the base's per-event arrays grow.
    pub(crate) fn growth(&self) -> Growth {
        self.table.growth()
    }

    /// A loop starts on this base.
    pub(crate) fn begin_run(&mut self) {
        self.lp.running = true;
        self.lp.got_exit = false;
        self.lp.interrupt &= !BREAK;
        self.clock.cache = None;
        self.clock.staging = true;
        self.backend.set_batching(true);
        self.signals.claim();
    }

    /// See [`EventBase::exclusive_signals`](crate::EventBase::exclusive_signals).
    pub(crate) fn set_exclusive_signals(&mut self, on: bool) {
        self.signals.set_exclusive(on);
    }

    /// The loop ended (normally, by error or by a panic).
    pub(crate) fn end_run(&mut self) {
        self.settle_timers();
        self.backend.set_batching(false);
        self.lp.running = false;
        self.lp.running_priority = None;
        self.lp.running_slot = NIL;
        self.clock.cache = None;
    }

    // ----- time ------------------------------------------------------------------------

    /// "Now" for computing a deadline: always fresh, never behind `CLOCK_MONOTONIC` (a vDSO
    /// reading, ~32 ns here, or the TSC estimate of `sys/tsc.rs`, ~12). The coarse clock lags by more than its reported resolution, and the
    /// iteration's cached time is stale after a slow callback (or a cross-thread command, or
    /// a `SharedBase` callback running unlocked): a deadline counted from either could fire
    /// before its timeout had really passed since the `add`. Never early wins over
    /// libevent's rule of counting from the cached time.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        sys::clock::deadline_now_ns()
    }

    /// The iteration's cached time: the coarse clock by default, `CLOCK_MONOTONIC` with
    /// `PRECISE_TIMER` (what `gettimeofday_cached` shows).
    pub(crate) fn update_cache(&mut self) {
        if !self.clock.no_cache {
            self.clock.cache = Some(sys::clock::now_ns(self.clock.precise));
        }
    }

    /// "Now" for timer expiry: the cache when it is precise, else a precise reading.
    #[inline]
    pub(crate) fn expiry_now(&self) -> u64 {
        match self.clock.cache {
            Some(t) if self.clock.precise => t,
            _ => sys::clock::precise_now_ns(),
        }
    }

    pub(crate) fn cached(&self) -> Option<u64> {
        self.clock.cache
    }

    /// The wall-clock offset as of `mono` (re-read at most every 5 s).
    pub(crate) fn wall_offset(&mut self, mono: u64) -> i128 {
        const WALL_SYNC_NS: u64 = 5_000_000_000;
        let stale = self
            .clock
            .wall_offset
            .is_none_or(|(at, _)| mono.saturating_sub(at) > WALL_SYNC_NS);
        if stale {
            let wall = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as i128);
            // A precise reading: a coarse one lags, which would put the cached wall time
            // ahead of the real time.
            let now = sys::clock::precise_now_ns();
            self.clock.wall_offset = Some((mono, wall - now as i128));
        }
        self.clock.wall_offset.map_or(0, |(_, o)| o)
    }

    /// Deadline `d` from now; `None` if it overflows the clock.
    #[inline]
    pub(crate) fn deadline_after(&self, d: Duration) -> io::Result<u64> {
        check_timeout(d)?;
        Ok(self.deadline_in(d))
    }

    /// Deadline `d` (checked: at most [`MAX_TIMEOUT`]) from now.
    #[inline]
    fn deadline_in(&self, d: Duration) -> u64 {
        let now = self.now();
        if d.is_zero() {
            // "Next iteration": a deadline at the start of the current wheel tick is due at
            // the very next timer check, whatever the clock reads then.
            return now - now % 1_000_000;
        }
        now + d.as_nanos() as u64
    }

    /// Arms event `idx`'s timer to fire `d` (checked: at most [`MAX_TIMEOUT`]) from now.
    ///
    /// While the loop is awake the timer is *staged*: it waits, timeout in hand, until the
    /// loop settles every staged timer on one clock reading right before it next sleeps (or
    /// ends). Each deadline then counts from a moment no earlier than its `add`, so a timer
    /// never fires early, and hooks and callbacks that add or re-arm timeouts pay no clock
    /// reading each. A timer added from a callback counts from the end of that pass rather
    /// than from the `add`: it may fire later by what the rest of the pass took (libevent
    /// counts from the time cached before the pass, so its timers fire early by as much).
    /// Outside the loop (and on other threads while it sleeps) the deadline is counted from
    /// a fresh reading at once.
    #[inline]
    pub(crate) fn arm_timer(&mut self, idx: usize, d: Duration) {
        if self.clock.staging {
            self.wheel.stage(idx as u32, d.as_nanos() as u64);
            self.table.set_timer(idx, 0);
        } else {
            let at = self.deadline_in(d);
            self.set_timer(idx, at);
        }
    }

    /// Files every staged timer on one fresh clock reading; the loop is about to sleep (or
    /// end), so until it wakes timeouts are counted at once (see [`Reactor::arm_timer`]).
    #[inline]
    pub(crate) fn settle_timers(&mut self) {
        self.clock.staging = false;
        if self.wheel.has_staged() {
            self.settle_staged();
        }
    }

    #[cold]
    fn settle_staged(&mut self) {
        let now = self.now();
        let table = &mut self.table;
        self.wheel
            .settle(now, |key, at| table.set_deadline(key as usize, at));
    }

    /// The loop woke from its wait: timeouts added from now on are staged.
    #[inline]
    pub(crate) fn woke(&mut self) {
        self.clock.staging = true;
    }

    /// When the timer of event `idx` fires, as ns on the base's clock (a staged one: its
    /// timeout from `now`, which it is no earlier than).
    pub(crate) fn timer_deadline(&self, idx: usize, now: u64) -> Option<u64> {
        if !self.table.get(idx).has(state::TIMEOUT) {
            return None;
        }
        match self.wheel.staged(idx as u32) {
            Some(timeout) => Some(now.saturating_add(timeout)),
            None => Some(self.table.get(idx).deadline),
        }
    }
}

/// The longest timeout a base accepts: far beyond any real use (about 146 years), far from
/// overflowing the clock. Checked the same way on every thread.
pub(crate) const MAX_TIMEOUT: Duration = Duration::from_nanos(u64::MAX / 4);

/// How a base's per-event arrays grow (see [`EventConfig::grow_tables_by_doubling`]).
///
/// [`EventConfig::grow_tables_by_doubling`]: crate::EventConfig::grow_tables_by_doubling
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Growth {
    /// By a quarter: at most a fifth of the array unused.
    #[default]
    Quarter,
    /// By doubling: a quarter of the copying.
    Double,
}

/// Makes room for one more element in a per-object array, growing it by a quarter rather
/// than the doubling `push` would do: the arrays of events and bufferevents hold a slot per
/// connection, and doubling leaves up to half of them unused. The price: where the
/// allocator cannot grow the array in place (glibc moves a large block with `mremap` only
/// while it is below its adaptive mmap threshold, and never one aligned beyond 16 bytes, as
/// the event slots are) the moves add up to about four times the final size, each onto
/// memory not touched before; a program that knows its scale reserves it once
/// ([`EventBase::reserve_events`](crate::EventBase::reserve_events)), one that does not
/// may choose [`Growth::Double`].
pub(crate) fn reserve_quarter<T>(v: &mut Vec<T>) {
    reserve_one(v, Growth::Quarter);
}

/// [`reserve_quarter`], or doubling with [`Growth::Double`].
#[inline]
pub(crate) fn reserve_one<T>(v: &mut Vec<T>, growth: Growth) {
    if v.len() == v.capacity() {
        let more = match growth {
            Growth::Quarter => v.capacity() / 4,
            Growth::Double => v.capacity(),
        };
        v.reserve_exact(more.max(16));
    }
}

/// Refuses a timeout the clock cannot represent.
#[inline]
pub(crate) fn check_timeout(d: Duration) -> io::Result<()> {
    if d > MAX_TIMEOUT {
        return Err(timeout_overflows(d));
    }
    Ok(())
}

#[cold]
fn timeout_overflows(d: Duration) -> io::Error {
    invalid(format!(
        "timeout {d:?} overflows the clock (the limit is {MAX_TIMEOUT:?})"
    ))
}
