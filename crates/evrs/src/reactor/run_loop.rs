//! The loop (libevent's `event_base_loop`), written once for both threading models as named
//! phases, libuv-style:
//!
//! 1. **stop?** — `loopexit`/`loopbreak` end the run; `loopcontinue` is cleared.
//! 2. **prepare** hooks run.
//! 3. **decide the wait** — timeouts added since the last wait are settled on one clock
//!    reading (see `Reactor::arm_timer`); the wait is zero if callbacks are active, an idle
//!    hook is started or `NONBLOCK`; else until the next timer. With nothing left (and no
//!    `NO_EXIT_ON_EMPTY`) the run ends.
//! 4. **take commands** — cross-thread commands and same-thread (`LocalHandle`) requests;
//!    if any arrived the wait becomes zero.
//! 5. **poll** the backend; readiness and completions are absorbed into the active queues,
//!    and the iteration's time is cached.
//! 6. **expire timers** into the active queues.
//! 7. **check** hooks run.
//! 8. **callbacks** of the most urgent non-empty priority run (deferred callbacks are active
//!    events of their chosen priority); if none was active, the **idle** hooks run.
//!
//! The threading model is a [`LoopCtx`]: how it waits (with or without a lock held) and how
//! it calls a callback (which handler table, lock released or not). Everything else is here.

use super::{HookKind, Kind, Reactor};
use crate::event::Internal;
use crate::flags::{LoopFlags, What};
use std::io;
use std::time::Duration;

/// How [`EventBase::run`](crate::EventBase::run) ended (libevent's 0 and 1 results; errors
/// are `Err`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunOutcome {
    /// Stopped by `loopexit`/`loopbreak`, or `ONCE`/`NONBLOCK` finished (libevent's 0).
    Exited,
    /// No events were pending or active (libevent's 1).
    NoEvents,
}

/// What a threading model supplies to the loop.
pub(crate) trait LoopCtx {
    fn reactor(&mut self) -> &mut Reactor;

    /// Is work queued that the reactor does not know of yet (commands from other threads)?
    fn has_queued(&mut self) -> bool;

    /// Phase 4, right before the wait: take queued commands. Returns `true` if any arrived
    /// (then the loop must not block).
    fn take_commands(&mut self) -> bool;

    /// Phase 5: wait at most `timeout` and absorb what happened into the reactor.
    fn wait(&mut self, timeout: Option<Duration>) -> io::Result<()>;

    /// Runs the callback of `idx` (a user event, hook or finalizer) with `what`.
    fn call(&mut self, idx: usize, events: What, what: What);

    /// Runs the callback of a plain event (see `Popped::plain`) whose slot has
    /// generation `gen`: the loop's hot path.
    #[inline(always)]
    fn call_plain(&mut self, idx: usize, gen: u32, what: What) {
        let _ = gen;
        self.call(idx, What::empty(), what);
    }

    /// Runs the callback of a one-shot user event, already deleted (see
    /// [`Reactor::take_oneshot`]) whose slot has generation `gen`.
    #[inline(always)]
    fn call_oneshot(&mut self, idx: usize, gen: u32, what: What) {
        self.call_plain(idx, gen, what);
    }

    /// The notify fd fired: drain it and run what other threads queued.
    fn notified(&mut self);
}

/// Runs the loop until a stop condition of `flags` (see the module docs).
pub(crate) fn run<C: LoopCtx>(ctx: &mut C, flags: LoopFlags) -> io::Result<RunOutcome> {
    loop {
        if ctx.reactor().stop_requested() {
            return Ok(RunOutcome::Exited);
        }
        if ctx.reactor().hooks_started(HookKind::Prepare) {
            run_hooks(ctx, HookKind::Prepare);
            if ctx.reactor().stop_requested() {
                return Ok(RunOutcome::Exited);
            }
        }
        let r = ctx.reactor();
        // Timeouts added since the last wait get their deadlines (one clock reading).
        r.settle_timers();
        let busy = r.table.n_active() > 0
            || flags.contains(LoopFlags::NONBLOCK)
            || r.hooks_started(HookKind::Idle);
        let mut timeout = if busy {
            Some(Duration::ZERO)
        } else {
            r.next_timeout()
        };
        if !flags.contains(LoopFlags::NO_EXIT_ON_EMPTY)
            && !ctx.reactor().has_events()
            && !ctx.has_queued()
        {
            return Ok(RunOutcome::NoEvents);
        }
        if ctx.take_commands() {
            timeout = Some(Duration::ZERO);
        }
        ctx.reactor().before_poll();
        ctx.wait(timeout)?;
        let r = ctx.reactor();
        r.woke();
        r.process_timers();
        if r.hooks_started(HookKind::Check) {
            run_hooks(ctx, HookKind::Check);
            if ctx.reactor().stop_requested() {
                return Ok(RunOutcome::Exited);
            }
        }
        if ctx.reactor().table.n_active() > 0 {
            let n = process_active(ctx);
            if flags.contains(LoopFlags::ONCE) && ctx.reactor().table.n_active() == 0 && n != 0 {
                return Ok(RunOutcome::Exited);
            }
        } else if ctx.reactor().hooks_started(HookKind::Idle) {
            run_hooks(ctx, HookKind::Idle);
            if flags.intersects(LoopFlags::ONCE | LoopFlags::NONBLOCK) {
                return Ok(RunOutcome::Exited);
            }
        } else if flags.contains(LoopFlags::NONBLOCK) {
            return Ok(RunOutcome::Exited);
        }
    }
}

/// Runs the started hooks of `kind`, in priority order, over a snapshot (hooks may start or
/// stop hooks; one stopped before its turn does not run).
fn run_hooks<C: LoopCtx>(ctx: &mut C, kind: HookKind) {
    let what = match kind {
        HookKind::Prepare => What::PREPARE,
        HookKind::Check => What::CHECK,
        HookKind::Idle => What::IDLE,
    };
    let snapshot = ctx.reactor().hook_snapshot(kind);
    for &h in &snapshot {
        if !ctx.reactor().hook_started(h, kind) {
            continue;
        }
        ctx.call(h.idx as usize, What::PERSIST, what);
        if ctx.reactor().got_break() {
            break;
        }
    }
    ctx.reactor().put_hook_snapshot(snapshot);
}

/// Runs the first non-empty priority queue (continuing past queues that ran only internal
/// callbacks). Returns the number of user callbacks run, or -1 on loopbreak.
fn process_active<C: LoopCtx>(ctx: &mut C) -> i64 {
    let mut result = 0;
    let mut p = 0;
    while p < ctx.reactor().priorities() {
        if !ctx.reactor().priority_is_empty(p) {
            let c = process_queue(ctx, p);
            if c != 0 {
                result = c;
                break;
            }
        }
        p += 1;
    }
    ctx.reactor().end_pass();
    result
}

fn process_queue<C: LoopCtx>(ctx: &mut C, p: usize) -> i64 {
    match ctx.reactor().pass_start(p) {
        (false, _) => run_queue::<C, false>(ctx, p, None),
        (true, end) => run_queue::<C, true>(ctx, p, end),
    }
}

/// The pass over queue `p`; `LIMITED`: under the dispatch caps (a loop of its own, so the
/// common uncapped pass tests nothing for them).
#[inline(always)]
fn run_queue<C: LoopCtx, const LIMITED: bool>(ctx: &mut C, p: usize, end: Option<u64>) -> i64 {
    let mut count: i64 = 0;
    while let Some(e) = ctx.reactor().pop_for_dispatch(p) {
        // The common case first: a persistent user event with no timeout to re-arm.
        if e.plain {
            count += 1;
            ctx.call_plain(e.idx, e.gen, e.res);
        } else if ctx.reactor().take_oneshot(e.idx) {
            // The next most common: a one-shot user event (a fired timer), deleted already.
            count += 1;
            ctx.call_oneshot(e.idx, e.gen, e.res);
        } else {
            count += run_special(ctx, e.idx);
        }
        let r = ctx.reactor();
        if r.pass_interrupted() {
            return if r.got_break() { -1 } else { count };
        }
        if LIMITED && r.pass_limit_reached(count, end) {
            return count;
        }
    }
    count
}

/// Every other event just taken off its queue: one-shot (deleted first), re-armed timeout,
/// signal (one call per delivery), finalizer or internal. Returns 1 for a user callback.
#[inline(never)]
fn run_special<C: LoopCtx>(ctx: &mut C, idx: usize) -> i64 {
    let (events, res, kind, internal) = ctx.reactor().prepare_callback(idx);
    match kind {
        Kind::Internal(k) => run_internal(ctx, idx, k),
        // A finalizer runs once, whatever the event was (a signal event's delivery
        // count was cleared when it was deleted for finalization).
        _ if res.contains(What::FINALIZE) => ctx.call(idx, events, res),
        _ if events.contains(What::SIGNAL) => {
            // One call per delivery; del, re-add, free or loopbreak stop the rest.
            let gen = ctx.reactor().table.get(idx).gen();
            while ctx.reactor().take_signal_call(idx, gen) {
                ctx.call(idx, events, res);
            }
        }
        _ => ctx.call(idx, events, res),
    }
    i64::from(!internal)
}

fn run_internal<C: LoopCtx>(ctx: &mut C, idx: usize, kind: Internal) {
    match kind {
        Internal::Signals => ctx.reactor().signals_ready(),
        Internal::Notify => ctx.notified(),
        Internal::LoopExit => ctx.reactor().loopexit_fired(idx),
    }
}
