//! Rate limits (libevent's `bufferevent_ratelim.c`): token buckets per bufferevent and
//! per group. A bucket starts at its rate, gains `rate` tokens per tick up to `burst`, and
//! each byte read or written takes one; the bucket's level caps the next read or write,
//! and at zero or below that direction waits for a refill timer. A group's bucket is
//! shared: each member may use its share (the group's level over the members, at least the
//! group's minimum share), and an empty group bucket suspends every member.

use super::BufferEvent;
use crate::base::EventBase;
use crate::layers::table::Table;
use std::io;
use std::time::{Duration, Instant};

/// The largest rate or burst (libevent's `EV_RATE_LIMIT_MAX`).
pub const RATE_LIMIT_MAX: usize = isize::MAX as usize;

/// A token-bucket configuration (libevent's `ev_token_bucket_cfg`): bytes per tick and the
/// most a bucket can hold, for reading and for writing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    read_rate: usize,
    read_burst: usize,
    write_rate: usize,
    write_burst: usize,
    tick: Duration,
}

impl RateLimit {
    /// A configuration (libevent's `ev_token_bucket_cfg_new`): rates at least 1, each rate
    /// at most its burst, all at most [`RATE_LIMIT_MAX`]; `tick` `None` is one second, and is
    /// counted in whole milliseconds (at least 1).
    pub fn new(
        read_rate: usize,
        read_burst: usize,
        write_rate: usize,
        write_burst: usize,
        tick: Option<Duration>,
    ) -> io::Result<RateLimit> {
        let ok = |rate: usize, burst: usize| rate >= 1 && rate <= burst && burst <= RATE_LIMIT_MAX;
        if !ok(read_rate, read_burst) || !ok(write_rate, write_burst) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "rate limit: rates must be at least 1 and at most their bursts",
            ));
        }
        let ms = tick.map_or(1000, |t| t.as_millis()).max(1);
        let tick = Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX));
        Ok(RateLimit {
            read_rate,
            read_burst,
            write_rate,
            write_burst,
            tick,
        })
    }

    /// The tick length.
    pub fn tick(&self) -> Duration {
        self.tick
    }
}

/// A bucket pair and its clock.
#[derive(Clone, Debug)]
pub(super) struct Buckets {
    cfg: RateLimit,
    read: isize,
    write: isize,
    start: Instant,
    /// Ticks since `start` already credited.
    ticks: u64,
}

impl Buckets {
    pub(super) fn new(cfg: RateLimit) -> Buckets {
        Buckets {
            cfg,
            read: cfg.read_rate as isize,
            write: cfg.write_rate as isize,
            start: Instant::now(),
            ticks: 0,
        }
    }

    /// Credits the ticks that have passed.
    pub(super) fn refill(&mut self) {
        let now = self.start.elapsed().as_nanos() / self.cfg.tick.as_nanos().max(1);
        let now = u64::try_from(now).unwrap_or(u64::MAX);
        let n = now.saturating_sub(self.ticks);
        if n == 0 {
            return;
        }
        self.ticks = now;
        let add = |level: isize, rate: usize, burst: usize| {
            let gained = (rate as u128).saturating_mul(u128::from(n));
            let level = (level as i128).saturating_add(gained.min(i128::MAX as u128) as i128);
            level.min(burst as i128) as isize
        };
        self.read = add(self.read, self.cfg.read_rate, self.cfg.read_burst);
        self.write = add(self.write, self.cfg.write_rate, self.cfg.write_burst);
    }

    /// Time until the next tick.
    pub(super) fn until_next_tick(&self) -> Duration {
        let next = self
            .cfg
            .tick
            .saturating_mul((self.ticks + 1).min(u32::MAX as u64) as u32);
        next.saturating_sub(self.start.elapsed())
            .max(Duration::from_millis(1))
    }
}

/// A group of bufferevents sharing buckets (libevent's `bufferevent_rate_limit_group`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RateLimitGroup {
    idx: u32,
    gen: u32,
    base: u32,
}

pub(super) struct Group {
    buckets: Buckets,
    members: Vec<BufferEvent>,
    min_share: usize,
    total_read: u64,
    total_written: u64,
}

#[derive(Default)]
pub(super) struct Groups {
    table: Table<Group>,
}

impl EventBase {
    fn groups(&mut self) -> &mut Groups {
        &mut self.bevs().groups
    }

    fn group_mut(&mut self, g: RateLimitGroup) -> io::Result<&mut Group> {
        if g.base != self.id() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "rate-limit group belongs to another event base",
            ));
        }
        self.groups()
            .table
            .get_mut(g.idx, g.gen)
            .ok_or_else(|| crate::layers::table::stale("rate-limit group"))
    }

    /// Sets (or with `None` removes) the bufferevent's own rate limit (libevent's
    /// `bufferevent_set_rate_limit`).
    pub fn bev_set_rate_limit(
        &mut self,
        bev: BufferEvent,
        cfg: Option<RateLimit>,
    ) -> io::Result<()> {
        let b = self.bev_live(bev)?;
        b.rate = cfg.map(|c| Box::new(Buckets::new(c)));
        self.bev_sync(bev);
        Ok(())
    }

    /// What the bufferevent may read / write now under its own limit and its group's
    /// (libevent's `bufferevent_get_read_limit` / `_write_limit`); `None` if unlimited.
    pub fn bev_get_limits(
        &mut self,
        bev: BufferEvent,
    ) -> io::Result<(Option<isize>, Option<isize>)> {
        let r = self.bev_budget(bev, true);
        let w = self.bev_budget(bev, false);
        self.bev_live(bev)?;
        Ok((r, w))
    }

    /// Takes `n` tokens from the bufferevent's own read or write bucket (libevent's
    /// `bufferevent_decrement_read_limit` / `_write_limit`; negative `n` adds).
    pub fn bev_decrement_limit(
        &mut self,
        bev: BufferEvent,
        read: bool,
        n: isize,
    ) -> io::Result<()> {
        let b = self.bev_live(bev)?;
        let Some(r) = b.rate.as_mut() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the bufferevent has no rate limit",
            ));
        };
        if read {
            r.read = r.read.saturating_sub(n);
        } else {
            r.write = r.write.saturating_sub(n);
        }
        self.bev_sync(bev);
        Ok(())
    }

    /// A rate-limit group with buckets `cfg` (libevent's `bufferevent_rate_limit_group_new`);
    /// its minimum share starts at 64 bytes (clamped to the rates).
    pub fn rate_limit_group(&mut self, cfg: RateLimit) -> io::Result<RateLimitGroup> {
        let id = self.id();
        let min_share = 64.min(cfg.read_rate).min(cfg.write_rate);
        let (idx, gen) = self.groups().table.insert(Group {
            buckets: Buckets::new(cfg),
            members: Vec::new(),
            min_share,
            total_read: 0,
            total_written: 0,
        });
        Ok(RateLimitGroup { idx, gen, base: id })
    }

    /// Sets the group's minimum share (libevent's `bufferevent_rate_limit_group_set_min_share`).
    pub fn rate_limit_group_set_min_share(
        &mut self,
        g: RateLimitGroup,
        share: usize,
    ) -> io::Result<()> {
        let grp = self.group_mut(g)?;
        grp.min_share = share
            .min(grp.buckets.cfg.read_rate)
            .min(grp.buckets.cfg.write_rate);
        Ok(())
    }

    /// Bytes read and written by the group's members (libevent's `_get_totals`).
    pub fn rate_limit_group_totals(&mut self, g: RateLimitGroup) -> io::Result<(u64, u64)> {
        let grp = self.group_mut(g)?;
        Ok((grp.total_read, grp.total_written))
    }

    /// Zeroes the group's totals (libevent's `_reset_totals`).
    pub fn rate_limit_group_reset_totals(&mut self, g: RateLimitGroup) -> io::Result<()> {
        let grp = self.group_mut(g)?;
        grp.total_read = 0;
        grp.total_written = 0;
        Ok(())
    }

    /// Frees a group; its members leave it (libevent asserts there are none).
    pub fn rate_limit_group_free(&mut self, g: RateLimitGroup) -> io::Result<()> {
        self.group_mut(g)?;
        let Some(grp) = self.groups().table.remove(g.idx, g.gen) else {
            return Ok(());
        };
        for m in grp.members {
            if let Some(b) = self.bev_state_mut(m) {
                b.rare_mut().group = None;
            }
            self.bev_sync(m);
        }
        Ok(())
    }

    /// Gives the group a new configuration (libevent's
    /// `bufferevent_rate_limit_group_set_cfg`): the buckets keep their levels, capped at
    /// the new bursts, and the minimum share is capped at the new rates.
    pub fn rate_limit_group_set_cfg(
        &mut self,
        g: RateLimitGroup,
        cfg: RateLimit,
    ) -> io::Result<()> {
        let grp = self.group_mut(g)?;
        grp.buckets.refill();
        grp.buckets.cfg = cfg;
        grp.buckets.read = grp.buckets.read.min(cfg.read_burst as isize);
        grp.buckets.write = grp.buckets.write.min(cfg.write_burst as isize);
        grp.min_share = grp.min_share.min(cfg.read_rate).min(cfg.write_rate);
        let members = grp.members.clone();
        for m in members {
            self.bev_sync(m);
        }
        Ok(())
    }

    /// The group's read and write bucket levels now (libevent's
    /// `bufferevent_rate_limit_group_get_read_limit` / `_write_limit`).
    pub fn rate_limit_group_limits(&mut self, g: RateLimitGroup) -> io::Result<(isize, isize)> {
        let grp = self.group_mut(g)?;
        grp.buckets.refill();
        Ok((grp.buckets.read, grp.buckets.write))
    }

    /// Takes `n` tokens from the group's read or write bucket (libevent's
    /// `bufferevent_rate_limit_group_decrement_read` / `_write`; negative `n` adds). The
    /// members catch up (suspended or resumed).
    pub fn rate_limit_group_decrement(
        &mut self,
        g: RateLimitGroup,
        read: bool,
        n: isize,
    ) -> io::Result<()> {
        let grp = self.group_mut(g)?;
        grp.buckets.refill();
        if read {
            grp.buckets.read = grp.buckets.read.saturating_sub(n);
        } else {
            grp.buckets.write = grp.buckets.write.saturating_sub(n);
        }
        let members = grp.members.clone();
        for m in members {
            self.bev_sync(m);
        }
        Ok(())
    }

    /// Puts the bufferevent in group `g` (leaving any other; libevent's
    /// `bufferevent_add_to_rate_limit_group`).
    pub fn bev_add_to_rate_limit_group(
        &mut self,
        bev: BufferEvent,
        g: RateLimitGroup,
    ) -> io::Result<()> {
        self.group_mut(g)?;
        self.bev_remove_from_rate_limit_group(bev)?;
        self.bev_live(bev)?.rare_mut().group = Some(g);
        self.group_mut(g)?.members.push(bev);
        self.bev_sync(bev);
        Ok(())
    }

    /// Takes the bufferevent out of its group, if any.
    pub fn bev_remove_from_rate_limit_group(&mut self, bev: BufferEvent) -> io::Result<()> {
        let Some(g) = self
            .bev_live(bev)?
            .rare_if_any()
            .and_then(|r| r.group.take())
        else {
            return Ok(());
        };
        if let Ok(grp) = self.group_mut(g) {
            grp.members.retain(|&m| m != bev);
        }
        self.bev_sync(bev);
        Ok(())
    }

    /// What `bev` may move in one direction now: min(own bucket, group share), `None` if
    /// unlimited. Refills the buckets first.
    pub(super) fn bev_budget(&mut self, bev: BufferEvent, read: bool) -> Option<isize> {
        let b = self.bev_state_mut(bev)?;
        let own = b.rate.as_mut().map(|r| {
            r.refill();
            if read {
                r.read
            } else {
                r.write
            }
        });
        let g = b.rare().group;
        let share = g.and_then(|g| self.group_mut(g).ok()).map(|grp| {
            grp.buckets.refill();
            let level = if read {
                grp.buckets.read
            } else {
                grp.buckets.write
            };
            if level <= 0 {
                level
            } else {
                let n = grp.members.len().max(1) as isize;
                (level / n).max(grp.min_share as isize).min(level)
            }
        });
        match (own, share) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// `bev` moved `n` bytes: its buckets (and its group's, and the group's totals) pay.
    pub(super) fn bev_charge(&mut self, bev: BufferEvent, read: bool, n: usize) {
        let Some(b) = self.bev_state_mut(bev) else {
            return;
        };
        let n_i = n.min(isize::MAX as usize) as isize;
        if let Some(r) = b.rate.as_mut() {
            if read {
                r.read = r.read.saturating_sub(n_i);
            } else {
                r.write = r.write.saturating_sub(n_i);
            }
        }
        if let Some(g) = b.rare().group {
            if let Ok(grp) = self.group_mut(g) {
                if read {
                    grp.buckets.read = grp.buckets.read.saturating_sub(n_i);
                    grp.total_read += n as u64;
                } else {
                    grp.buckets.write = grp.buckets.write.saturating_sub(n_i);
                    grp.total_written += n as u64;
                }
            }
        }
    }

    /// A direction of `bev` ran out of tokens: wake it at the next tick.
    pub(super) fn bev_wait_for_tokens(&mut self, bev: BufferEvent) {
        let Some(b) = self.bev_state(bev) else {
            return;
        };
        let mut wait = b.rate.as_deref().map(Buckets::until_next_tick);
        if let Some(g) = b.rare().group {
            if let Ok(grp) = self.group_mut(g) {
                let w = grp.buckets.until_next_tick();
                wait = Some(wait.map_or(w, |x| x.min(w)));
            }
        }
        let Some(wait) = wait else {
            return;
        };
        let timer = match self.bev_state(bev).and_then(|b| b.rare().refill_timer) {
            Some(t) => t,
            None => {
                let Ok(t) = self.new_timer(move |base, _, _| base.bev_sync(bev)) else {
                    return;
                };
                if let Some(b) = self.bev_state_mut(bev) {
                    b.rare_mut().refill_timer = Some(t);
                }
                t
            }
        };
        let _ = self.add(timer, Some(wait));
    }

    /// A member is going away: the group forgets it.
    pub(super) fn group_forget(&mut self, g: RateLimitGroup, bev: BufferEvent) {
        if let Ok(grp) = self.group_mut(g) {
            grp.members.retain(|&m| m != bev);
        }
    }
}
