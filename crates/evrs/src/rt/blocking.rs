//! [`spawn_blocking`]: work that would block the loop's thread (`getaddrinfo`, file I/O, a
//! long computation) run on a small process-wide pool of threads, awaited from a task.
//!
//! The pool starts threads on demand, at most [`MAX_THREADS`]; a thread idle for
//! [`IDLE`] exits. Jobs wait in one FIFO queue when every thread is busy. The result goes
//! back through a mutex and the awaiting task's waker (a cross-thread wake: one coalesced
//! activation of the runtime's driver).

use super::task::JoinError;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// The most threads the pool runs at once.
pub const MAX_THREADS: usize = 16;
/// How long an idle pool thread waits for a job before it exits.
pub const IDLE: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send>;

struct Pool {
    state: Mutex<PoolState>,
    cv: Condvar,
}

struct PoolState {
    jobs: VecDeque<Job>,
    threads: usize,
    idle: usize,
}

static POOL: Pool = Pool {
    state: Mutex::new(PoolState {
        jobs: VecDeque::new(),
        threads: 0,
        idle: 0,
    }),
    cv: Condvar::new(),
};

/// Queues `job`, starting a thread first when none is idle and the pool has room. Fails
/// (the job not queued) only if no thread exists and none can be started.
fn submit(job: Job) -> std::io::Result<()> {
    let lock = || POOL.state.lock().unwrap_or_else(|e| e.into_inner());
    let mut s = lock();
    if s.idle == 0 && s.threads < MAX_THREADS {
        s.threads += 1;
        drop(s);
        let r = std::thread::Builder::new()
            .name("evrs-blocking".into())
            .spawn(worker);
        s = lock();
        if let Err(e) = r {
            s.threads -= 1;
            if s.threads == 0 {
                return Err(e);
            }
        }
    }
    // A thread started above that got here first waits on the condition variable.
    s.jobs.push_back(job);
    POOL.cv.notify_one();
    Ok(())
}

fn worker() {
    let mut s = POOL.state.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if let Some(job) = s.jobs.pop_front() {
            drop(s);
            job();
            s = POOL.state.lock().unwrap_or_else(|e| e.into_inner());
            continue;
        }
        s.idle += 1;
        let (g, t) = POOL
            .cv
            .wait_timeout(s, IDLE)
            .unwrap_or_else(|e| e.into_inner());
        s = g;
        s.idle -= 1;
        if t.timed_out() && s.jobs.is_empty() {
            s.threads -= 1;
            return;
        }
    }
}

struct Shared<T> {
    out: Option<Result<T, JoinError>>,
    waker: Option<Waker>,
}

/// The future of [`spawn_blocking`]: the closure's result, or [`JoinError::Panicked`].
#[must_use = "futures do nothing unless awaited"]
pub struct Blocking<T> {
    shared: Arc<Mutex<Shared<T>>>,
}

impl<T> std::fmt::Debug for Blocking<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blocking").finish_non_exhaustive()
    }
}

/// Runs `f` on the blocking pool; await the result. Dropping the future does not stop
/// `f` (a thread cannot be interrupted): its result is dropped when it comes.
pub fn spawn_blocking<T, F>(f: F) -> std::io::Result<Blocking<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let shared = Arc::new(Mutex::new(Shared {
        out: None,
        waker: None,
    }));
    let s = shared.clone();
    submit(Box::new(move || {
        let r =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(JoinError::Panicked);
        let mut g = s.lock().unwrap_or_else(|e| e.into_inner());
        g.out = Some(r);
        let w = g.waker.take();
        drop(g);
        if let Some(w) = w {
            w.wake();
        }
    }))?;
    Ok(Blocking { shared })
}

impl<T> Future for Blocking<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut g = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = g.out.take() {
            return Poll::Ready(r);
        }
        match g.waker.as_ref() {
            Some(old) if old.will_wake(cx.waker()) => {}
            _ => g.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}
