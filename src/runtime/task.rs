//! Joining tasks: [`JoinHandle`], [`AbortHandle`], [`JoinError`], and the join slot a task shares with its handle.
//!
//! The task itself (header, future, join slot in one allocation) is in `cell.rs`. A `spawn_blocking` job has
//! only a join slot ([`BlockingJoin`]).

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// Why a task did not produce its output.
pub struct JoinError {
    repr: Repr,
}

enum Repr {
    Cancelled,
    Panic(Mutex<Box<dyn Any + Send>>),
}

impl JoinError {
    pub(crate) fn cancelled() -> JoinError {
        JoinError { repr: Repr::Cancelled }
    }

    pub(crate) fn panic(payload: Box<dyn Any + Send>) -> JoinError {
        JoinError { repr: Repr::Panic(Mutex::new(payload)) }
    }

    /// Whether the task was aborted (or dropped with its runtime) before it finished.
    pub fn is_cancelled(&self) -> bool {
        matches!(self.repr, Repr::Cancelled)
    }

    /// Whether the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.repr, Repr::Panic(_))
    }

    /// The panic payload, to resume it with [`std::panic::resume_unwind`]. Panics if the task was cancelled.
    pub fn into_panic(self) -> Box<dyn Any + Send> {
        match self.repr {
            Repr::Panic(p) => p.into_inner().unwrap_or_else(|e| e.into_inner()),
            Repr::Cancelled => panic!("JoinError::into_panic on a cancelled task"),
        }
    }
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.repr {
            Repr::Cancelled => f.write_str("JoinError::Cancelled"),
            Repr::Panic(_) => f.write_str("JoinError::Panic(..)"),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.repr {
            Repr::Cancelled => f.write_str("task was cancelled"),
            Repr::Panic(_) => f.write_str("task panicked"),
        }
    }
}

impl std::error::Error for JoinError {}

impl From<JoinError> for std::io::Error {
    fn from(e: JoinError) -> std::io::Error {
        std::io::Error::other(e)
    }
}

/// The slot between a task and its [`JoinHandle`]: the outcome, and the handle's waker.
pub(crate) struct JoinCell<T> {
    slot: Mutex<JoinSlot<T>>,
    finished: AtomicBool,
}

struct JoinSlot<T> {
    result: Option<std::thread::Result<T>>,
    cancelled: bool,
    /// The handle was dropped: an output that arrives now is dropped at once (on the task's thread).
    detached: bool,
    waker: Option<Waker>,
}

impl<T> JoinCell<T> {
    pub(crate) fn new() -> JoinCell<T> {
        JoinCell {
            slot: Mutex::new(JoinSlot { result: None, cancelled: false, detached: false, waker: None }),
            finished: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, JoinSlot<T>> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Delivers the task's outcome (kept for the handle, or dropped here if the handle is gone).
    pub(crate) fn complete(&self, result: std::thread::Result<T>) {
        let (waker, unclaimed) = {
            let mut slot = self.lock();
            let unclaimed = if slot.detached { Some(result) } else { slot.result.replace(result) };
            (slot.waker.take(), unclaimed)
        };
        self.finished.store(true, Ordering::Release);
        drop_unclaimed(unclaimed);
        if let Some(w) = waker {
            w.wake();
        }
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }

    /// Reports cancellation, unless the task already finished.
    pub(crate) fn cancel(&self) {
        if self.finished.load(Ordering::Acquire) {
            return;
        }
        let waker = {
            let mut slot = self.lock();
            slot.cancelled = true;
            slot.waker.take()
        };
        self.finished.store(true, Ordering::Release);
        if let Some(w) = waker {
            w.wake();
        }
    }

    fn poll(&self, cx: &mut Context<'_>) -> Poll<Result<T, JoinError>> {
        let mut slot = self.lock();
        if let Some(result) = slot.result.take() {
            return Poll::Ready(result.map_err(JoinError::panic));
        }
        if slot.cancelled {
            return Poll::Ready(Err(JoinError::cancelled()));
        }
        match &slot.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => slot.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// The handle is gone: drop an output already delivered (here, on the handle's thread) and any later one.
    fn detach(&self) {
        let (result, waker) = {
            let mut slot = self.lock();
            slot.detached = true;
            (slot.result.take(), slot.waker.take())
        };
        drop(waker);
        drop_unclaimed(result);
    }
}

/// Drops an outcome nobody will claim. Its destructor (a panic payload's, or the output's) may panic: that
/// panic is caught and discarded, so a detached task's panic never escapes into the runtime or the code that
/// dropped the handle.
fn drop_unclaimed<T>(outcome: Option<std::thread::Result<T>>) {
    if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(outcome))) {
        crate::uv::drop_payload(panic);
    }
}

/// What a [`JoinHandle`] holds: a task (`cell.rs`) or a blocking job.
pub(crate) trait Join<T>: Send + Sync {
    fn join(&self) -> &JoinCell<T>;
    /// The same task seen without its output type, for an [`AbortHandle`].
    fn abortable(self: Arc<Self>) -> Arc<dyn Abort>;
}

/// What an [`AbortHandle`] holds: a task's header and join state, whatever its output type.
pub(crate) trait Abort: Send + Sync {
    fn abort(self: Arc<Self>);
    fn is_finished(&self) -> bool;
}

/// The join side of a `spawn_blocking` job (it cannot be aborted once queued: libuv's pool runs it).
pub(crate) struct BlockingJoin<T> {
    pub(crate) cell: JoinCell<T>,
}

impl<T: Send + 'static> Join<T> for BlockingJoin<T> {
    fn join(&self) -> &JoinCell<T> {
        &self.cell
    }

    fn abortable(self: Arc<Self>) -> Arc<dyn Abort> {
        self
    }
}

impl<T: Send> Abort for BlockingJoin<T> {
    fn abort(self: Arc<Self>) {}

    fn is_finished(&self) -> bool {
        self.cell.is_finished()
    }
}

/// A blocking job's join side as the runtime sees it at shutdown, whatever its output type.
pub(crate) trait BlockingJob {
    /// Reports cancellation to the job's handle (unless the job already finished).
    fn cancel(&self);
}

impl<T: Send> BlockingJob for BlockingJoin<T> {
    fn cancel(&self) {
        self.cell.cancel();
    }
}

/// An owned permission to await a task's output. Dropping it *detaches* the task, which keeps running
/// (tokio's convention); [`abort`](JoinHandle::abort) cancels it.
///
/// Awaiting gives `Ok(output)`, or `Err(JoinError)` if the task panicked (the runtime keeps running) or was
/// aborted.
pub struct JoinHandle<T> {
    task: Arc<dyn Join<T>>,
    /// `Send` and `Sync` exactly when `T` is `Send` (as with a `Mutex<T>`): a `!Send` output never leaves the
    /// task's thread through its handle.
    _output: PhantomData<Mutex<T>>,
}

impl<T> JoinHandle<T> {
    pub(crate) fn new(task: Arc<dyn Join<T>>) -> JoinHandle<T> {
        JoinHandle { task, _output: PhantomData }
    }

    /// Cancels the task: its future is dropped at the executor's next turn instead of being polled again, and
    /// awaiting this handle gives a cancelled [`JoinError`] (unless the task had already finished). Callable
    /// from any thread. A `spawn_blocking` job that was queued still runs.
    pub fn abort(&self) {
        self.task.clone().abortable().abort();
    }

    /// Whether the task has finished (completed, panicked or been cancelled).
    pub fn is_finished(&self) -> bool {
        self.task.join().is_finished()
    }

    /// A handle that can abort the task without owning its output: `Clone`, `Send` and `Sync` whatever the
    /// output type, and usable after this handle is gone.
    pub fn abort_handle(&self) -> AbortHandle {
        AbortHandle { task: self.task.clone().abortable() }
    }
}

/// Aborts a task without owning its output, from [`JoinHandle::abort_handle`] or
/// [`JoinSet::spawn`](crate::task::JoinSet::spawn). Aborting through it is the same as
/// [`JoinHandle::abort`]: the task's future is dropped at the executor's next turn instead of being polled
/// again, and its `JoinHandle` (or `JoinSet`) then gives a cancelled [`JoinError`], unless the task had already
/// finished. Dropping an `AbortHandle` does nothing to the task.
///
/// It keeps the task's allocation (not its output: that follows the `JoinHandle`) until it drops.
#[derive(Clone)]
pub struct AbortHandle {
    task: Arc<dyn Abort>,
}

impl AbortHandle {
    /// Cancels the task, as [`JoinHandle::abort`]. Callable from any thread, any number of times.
    pub fn abort(&self) {
        self.task.clone().abort();
    }

    /// Whether the task has finished (completed, panicked or been cancelled).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

impl fmt::Debug for AbortHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AbortHandle").field("finished", &self.is_finished()).finish()
    }
}

// The handle holds only an `Arc`: moving it never moves the output (the marker above is not a real `T`).
impl<T> Unpin for JoinHandle<T> {}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.task.join().poll(cx)
    }
}

impl<T> Drop for JoinHandle<T> {
    fn drop(&mut self) {
        self.task.join().detach();
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle").field("finished", &self.is_finished()).finish()
    }
}
