//! The invariant checker (libev's `ev_verify`, libevent's `event_base_assert_ok_`): every
//! rule the parts keep, checked from their data, reporting the first one broken.

use super::events::{state, Kind};
use super::Reactor;
use crate::flags::{Method, What};
use crate::sys::interest;

impl Reactor {
    /// Checks every invariant; the first broken one is described in the error.
    pub(crate) fn verify(&self) -> Result<(), String> {
        let t = &self.table;
        t.check()?;
        self.queues.check(t)?;
        let supported = match self.backend.method() {
            Method::Epoll | Method::IoUring => 0xff,
            Method::Poll => interest::READ | interest::WRITE | interest::CLOSED,
            Method::Select => interest::READ | interest::WRITE,
        };
        let on_fds = self
            .io
            .check(t, |fd| Some(self.backend.interest(fd)), supported)?;
        let on_signals = self.signals.check(t)?;
        let on_hooks = self.hooks.check(t)?;
        self.wheel.check()?;
        let (mut io, mut sig, mut hooks, mut timers) = (0, 0, 0, 0);
        for (i, s) in t.live() {
            if s.has(state::INSERTED) {
                match s.kind {
                    Kind::Hook(_) => hooks += 1,
                    _ if s.events.contains(What::SIGNAL) => sig += 1,
                    // (An unpolled event on a negative fd is on no fd list.)
                    _ if s.events.intersects(What::READ | What::WRITE | What::CLOSED) => {
                        io += usize::from(s.fd >= 0)
                    }
                    _ => return Err(format!("slot {i} is INSERTED with nothing to insert into")),
                }
            }
            if s.has(state::TIMEOUT) {
                timers += 1;
                let staged = self.wheel.staged(i as u32).is_some();
                if staged && !self.clock.staging {
                    return Err(format!("slot {i}: a timer staged while the loop sleeps"));
                }
                if !staged && self.wheel.get(i as u32) != Some(s.deadline) {
                    return Err(format!(
                        "slot {i}: TIMEOUT without its deadline on the wheel"
                    ));
                }
            } else if self.wheel.get(i as u32).is_some() || self.wheel.staged(i as u32).is_some() {
                return Err(format!("slot {i}: on the wheel without TIMEOUT"));
            }
        }
        if io != on_fds {
            return Err(format!("{io} inserted fd events, {on_fds} on fd lists"));
        }
        if sig != on_signals {
            return Err(format!(
                "{sig} inserted signal events, {on_signals} on signal lists"
            ));
        }
        if hooks != on_hooks {
            return Err(format!("{hooks} started hooks, {on_hooks} on hook lists"));
        }
        if timers != self.wheel.len() {
            return Err(format!(
                "{timers} events with a timeout, {} timers on the wheel",
                self.wheel.len()
            ));
        }
        Ok(())
    }
}
