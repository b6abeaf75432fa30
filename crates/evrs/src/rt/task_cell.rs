//! One task's allocation: its future, then its output, and the waker of whoever awaits its
//! [`JoinHandle`](super::JoinHandle), in a single `Rc`. The runtime's slot sees it as a
//! [`Task`] (poll it, fail it); the join handle as a [`JoinSide`] (take the output).

use crate::sys::pin_cell::PinCell;
use std::any::Any;
use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

pin_project_lite::pin_project! {
    /// Where a task is in its life.
    #[project = StageProj]
    enum Stage<F: Future> {
        Running { #[pin] fut: F },
        /// `Some`: the output (or why there is none) waits for the join handle; `None`:
        /// taken.
        Done { out: Option<Result<F::Output, JoinError>> },
    }
}

pin_project_lite::pin_project! {
    pub(crate) struct TaskCell<F: Future> {
        join_waker: RefCell<Option<Waker>>,
        #[pin]
        stage: PinCell<Stage<F>>,
    }
}

/// A task's cell for its slot: the future and output types erased.
pub(crate) trait Task {
    /// Polls the future once (if it is still running); `Ready` once it has finished.
    fn poll_task(self: Pin<&Self>, cx: &mut Context<'_>) -> Poll<()>;
    /// Ends the task without output: drops its future, records why (a panic's payload, or
    /// `None`: cancelled) and wakes the join handle.
    fn fail(self: Pin<&Self>, panic: Option<Box<dyn Any + Send>>);
}

/// A task's cell for its join handle: the future's type erased, the output's kept.
pub(crate) trait JoinSide<T> {
    /// `None`: not finished; `Some(Err(Taken))`: the output was taken already.
    fn try_take(self: Pin<&Self>) -> Option<Result<T, JoinError>>;
    fn is_finished(&self) -> bool;
    /// Wakes `waker` when the task finishes (replacing an earlier one).
    fn set_join_waker(&self, waker: &Waker);
}

pub(crate) fn new_task<F: Future + 'static>(fut: F) -> Pin<Rc<TaskCell<F>>> {
    Rc::pin(TaskCell {
        join_waker: RefCell::new(None),
        stage: PinCell::new(Stage::Running { fut }),
    })
}

impl<F: Future> TaskCell<F> {
    fn finish(self: Pin<&Self>, r: Result<F::Output, JoinError>) {
        let this = self.project_ref();
        this.stage.try_with_pin(|mut st| {
            if let StageProj::Running { .. } = st.as_mut().project() {
                // Drops the future in place.
                st.set(Stage::Done { out: Some(r) });
            }
        });
        self.wake_join();
    }

    fn wake_join(&self) {
        let w = self.join_waker.borrow_mut().take();
        if let Some(w) = w {
            w.wake();
        }
    }
}

impl<F: Future> Task for TaskCell<F> {
    fn poll_task(self: Pin<&Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project_ref();
        let r = this.stage.try_with_pin(|mut st| {
            let out = match st.as_mut().project() {
                StageProj::Running { fut } => match fut.poll(cx) {
                    Poll::Ready(v) => v,
                    Poll::Pending => return Poll::Pending,
                },
                StageProj::Done { .. } => return Poll::Ready(false),
            };
            st.set(Stage::Done { out: Some(Ok(out)) });
            Poll::Ready(true)
        });
        match r {
            Some(Poll::Ready(finished_now)) => {
                if finished_now {
                    self.wake_join();
                }
                Poll::Ready(())
            }
            // (`None`: polled from inside its own poll — it is running, so not done.)
            Some(Poll::Pending) | None => Poll::Pending,
        }
    }

    fn fail(self: Pin<&Self>, panic: Option<Box<dyn Any + Send>>) {
        self.finish(Err(match panic {
            Some(p) => JoinError::Panicked(p),
            None => JoinError::Cancelled,
        }));
    }
}

impl<F: Future> JoinSide<F::Output> for TaskCell<F> {
    fn try_take(self: Pin<&Self>) -> Option<Result<F::Output, JoinError>> {
        let this = self.project_ref();
        this.stage
            .try_with_pin(|st| match st.project() {
                StageProj::Running { .. } => None,
                StageProj::Done { out } => Some(out.take().unwrap_or(Err(JoinError::Taken))),
            })
            .flatten()
    }

    fn is_finished(&self) -> bool {
        self.stage
            .try_with(|st| matches!(st, Stage::Done { .. }))
            .unwrap_or(false)
    }

    fn set_join_waker(&self, waker: &Waker) {
        let mut w = self.join_waker.borrow_mut();
        match w.as_ref() {
            Some(old) if old.will_wake(waker) => {}
            _ => *w = Some(waker.clone()),
        }
    }
}

/// Why a task gave no output.
#[derive(Debug)]
pub enum JoinError {
    /// [`JoinHandle::abort`](super::JoinHandle::abort) was called, or its runtime was dropped, before it finished.
    Cancelled,
    /// Its future panicked (the payload, as `catch_unwind` gives it).
    Panicked(Box<dyn Any + Send>),
    /// The output was taken already (the handle was polled after it completed).
    Taken,
}

impl std::fmt::Display for JoinError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JoinError::Cancelled => f.write_str("the task was cancelled"),
            JoinError::Panicked(_) => f.write_str("the task panicked"),
            JoinError::Taken => f.write_str("the task's output was taken already"),
        }
    }
}

impl std::error::Error for JoinError {}

impl JoinError {
    /// The panic's message, when it was a string (as `panic!` with a message makes it).
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            JoinError::Panicked(p) => p
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| p.downcast_ref::<String>().map(String::as_str)),
            _ => None,
        }
    }
}

/// For `?` in functions returning `io::Result`: the reason as an `Other` error, with a
/// panic's message.
impl From<JoinError> for io::Error {
    fn from(e: JoinError) -> io::Error {
        match e.panic_message() {
            Some(m) => io::Error::other(format!("the task panicked: {m}")),
            None => io::Error::other(e.to_string()),
        }
    }
}
