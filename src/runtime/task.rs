//! Tasks as the executor sees them: a header that wakers point to, and the join state a [`JoinHandle`] reads.
//!
//! A task's future is `!Send` in general and lives only on the runtime's thread (in the executor's slab). What
//! may cross threads is small and `Send + Sync`: the [`Header`] (a waker is an `Arc<Header>`) and the join
//! state. Waking from the runtime's thread pushes onto the local ready queue; waking from anywhere else goes
//! through the runtime's remote queue and its `uv_async_t`.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use super::shared::Shared;

/// What a waker points to: where the task lives and whether it is already queued.
pub(crate) struct Header {
    /// The task's key in the executor's slab; `usize::MAX` until a remotely spawned task is inserted.
    pub(crate) key: AtomicUsize,
    /// Set while the task sits in a ready queue, so that repeated wakes queue it once.
    pub(crate) scheduled: AtomicBool,
    /// Set by [`JoinHandle::abort`]: the executor drops the future instead of polling it.
    pub(crate) aborted: AtomicBool,
    pub(crate) shared: Arc<Shared>,
}

impl Header {
    pub(crate) fn new(shared: Arc<Shared>) -> Arc<Header> {
        Arc::new(Header {
            key: AtomicUsize::new(usize::MAX),
            scheduled: AtomicBool::new(false),
            aborted: AtomicBool::new(false),
            shared,
        })
    }
}

impl std::task::Wake for Header {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.scheduled.swap(true, Ordering::AcqRel) {
            self.shared.schedule(self.clone());
        }
    }
}

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

/// The shared slot between a task and its [`JoinHandle`].
pub(crate) struct JoinState<T> {
    inner: Mutex<JoinSlot<T>>,
    finished: AtomicBool,
}

struct JoinSlot<T> {
    result: Option<std::thread::Result<T>>,
    cancelled: bool,
    waker: Option<Waker>,
}

impl<T> JoinState<T> {
    pub(crate) fn new() -> Arc<JoinState<T>> {
        Arc::new(JoinState {
            inner: Mutex::new(JoinSlot { result: None, cancelled: false, waker: None }),
            finished: AtomicBool::new(false),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, JoinSlot<T>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn finish(&self, f: impl FnOnce(&mut JoinSlot<T>)) {
        let waker = {
            let mut slot = self.lock();
            f(&mut slot);
            slot.waker.take()
        };
        self.finished.store(true, Ordering::Release);
        if let Some(w) = waker {
            w.wake();
        }
    }

    pub(crate) fn complete(&self, result: std::thread::Result<T>) {
        self.finish(|s| s.result = Some(result));
    }
}

impl<T> JoinState<T> {
    /// Reports cancellation, unless the task already finished.
    pub(crate) fn cancel(&self) {
        if !self.finished.load(Ordering::Acquire) {
            self.finish(|s| s.cancelled = true);
        }
    }
}

/// Owned by the task's future: if the future is dropped before it completes (abort, runtime shutdown, a
/// remote spawn refused), the join handle learns it was cancelled. One guard instead of a second pointer
/// to the join state in every task slot.
struct CancelOnDrop<T>(Arc<JoinState<T>>);

impl<T> Drop for CancelOnDrop<T> {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Wraps the user's future: runs it, catches its panic, and stores the outcome for the [`JoinHandle`].
pub(crate) fn task_future<F>(fut: F, join: Arc<JoinState<F::Output>>) -> impl Future<Output = ()>
where
    F: Future,
{
    use futures::FutureExt;
    // Built outside the async block so that it is dropped with the future even if never polled.
    let guard = CancelOnDrop(join);
    async move {
        let guard = guard;
        let result = std::panic::AssertUnwindSafe(fut).catch_unwind().await;
        guard.0.complete(result);
    }
}

/// An owned permission to await a task's output. Dropping it *detaches* the task, which keeps running
/// (tokio's convention); [`abort`](JoinHandle::abort) cancels it.
///
/// Awaiting gives `Ok(output)`, or `Err(JoinError)` if the task panicked (the runtime keeps running) or was
/// aborted.
pub struct JoinHandle<T> {
    state: Arc<JoinState<T>>,
    header: Arc<Header>,
}

impl<T> JoinHandle<T> {
    pub(crate) fn new(state: Arc<JoinState<T>>, header: Arc<Header>) -> JoinHandle<T> {
        JoinHandle { state, header }
    }

    /// Cancels the task: its future is dropped at the executor's next turn instead of being polled again, and
    /// awaiting this handle gives a cancelled [`JoinError`] (unless the task had already finished). Callable
    /// from any thread.
    pub fn abort(&self) {
        self.header.aborted.store(true, Ordering::Release);
        std::task::Wake::wake_by_ref(&self.header);
    }

    /// Whether the task has finished (completed, panicked or been cancelled).
    pub fn is_finished(&self) -> bool {
        self.state.finished.load(Ordering::Acquire)
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut slot = self.state.lock();
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
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle").field("finished", &self.is_finished()).finish()
    }
}
