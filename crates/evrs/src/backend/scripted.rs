//! A test-only backend written against the [`Poller`] contract alone: it holds interest in a
//! map and returns scripted batches of [`Polled`] entries — readiness *and* completions — so
//! the loop's handling of both is tested without a kernel backend (`core/tests.rs`).

use super::{DetachedWait, Polled, Poller};
use crate::flags::Method;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::unix::io::RawFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the test feeds in and reads back.
#[derive(Default)]
pub(crate) struct Script {
    pub(crate) batches: VecDeque<Vec<Polled>>,
    pub(crate) interest: HashMap<RawFd, u8>,
    pub(crate) polls: usize,
    pub(crate) timeouts: Vec<Option<Duration>>,
    pub(crate) batching: bool,
}

#[derive(Clone, Default)]
pub(crate) struct Scripted(pub(crate) Arc<Mutex<Script>>);

#[derive(Default)]
pub(crate) struct ScriptedWait(Option<Arc<Mutex<Script>>>);

impl Scripted {
    fn next(script: &Mutex<Script>, timeout: Option<Duration>, out: &mut Vec<Polled>) {
        let mut s = script.lock().unwrap();
        s.polls += 1;
        s.timeouts.push(timeout);
        if let Some(b) = s.batches.pop_front() {
            out.extend(b);
        }
    }
}

impl Poller for Scripted {
    type Detached = ScriptedWait;
    fn method(&self) -> Method {
        Method::Poll
    }
    fn change(&mut self, fd: RawFd, _old: u8, new: u8) -> io::Result<()> {
        let mut s = self.0.lock().unwrap();
        if new == 0 {
            s.interest.remove(&fd);
        } else {
            s.interest.insert(fd, new);
        }
        Ok(())
    }
    fn set_batching(&mut self, on: bool) {
        self.0.lock().unwrap().batching = on;
    }
    fn poll(&mut self, timeout: Option<Duration>, out: &mut Vec<Polled>) -> io::Result<()> {
        Scripted::next(&self.0, timeout, out);
        Ok(())
    }
    fn detach(&mut self, w: &mut ScriptedWait) {
        w.0 = Some(self.0.clone());
    }
    fn reinit(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn ctl_calls(&self) -> u64 {
        0
    }
    fn interest(&self, fd: RawFd) -> u8 {
        // The scripted backend stores what it was told, ET included; verify compares it
        // with what the table wants for a poll-like backend.
        self.0
            .lock()
            .unwrap()
            .interest
            .get(&fd)
            .copied()
            .unwrap_or(0)
            & !crate::sys::interest::ET
    }
}

impl DetachedWait for ScriptedWait {
    fn wait(&mut self, timeout: Option<Duration>, out: &mut Vec<Polled>) -> io::Result<()> {
        if let Some(s) = &self.0 {
            Scripted::next(s, timeout, out);
        }
        Ok(())
    }
}
