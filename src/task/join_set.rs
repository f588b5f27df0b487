//! [`JoinSet`]: a set of tasks joined in the order they finish.
//!
//! Built on `futures`' `FuturesUnordered` over the tasks' [`JoinHandle`]s: each handle is polled with a waker
//! of its own entry, and a finishing task wakes exactly that entry, which goes on a ready queue. So joining
//! costs O(1) per finished task however many are in the set, and results come in completion order.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use futures::stream::{FuturesUnordered, StreamExt};

use super::{AbortHandle, JoinError, JoinHandle};
use crate::Handle;

/// A set of tasks on the current runtime, joined in the order they finish (tokio's `JoinSet`).
///
/// Every task spawned into the set is owned by it: [`join_next`](JoinSet::join_next) gives each result once,
/// as the task finishes. **Dropping the set aborts every task still in it** (tokio's rule), as does
/// [`abort_all`](JoinSet::abort_all); [`detach_all`](JoinSet::detach_all) lets them run on without the set.
/// The set itself is a plain value, usable from any task of the runtime (`!Send` when `T` is).
///
/// ```
/// use std::time::Duration;
/// use uvio::task::JoinSet;
///
/// let order = uvio::block_on(async {
///     let mut set = JoinSet::new();
///     for ms in [30u64, 10, 20] {
///         set.spawn_local(async move {
///             uvio::time::sleep(Duration::from_millis(ms)).await;
///             ms
///         });
///     }
///     let mut order = Vec::new();
///     while let Some(res) = set.join_next().await {
///         order.push(res.unwrap());
///     }
///     order
/// });
/// assert_eq!(order, [10, 20, 30]);
/// ```
pub struct JoinSet<T> {
    tasks: FuturesUnordered<JoinHandle<T>>,
    /// The waker `try_join_next` polls with (made once, on first use): it records a wake so that the poll is
    /// retried when the set only paused to let other work run.
    retry: Option<Arc<Flag>>,
}

impl<T> JoinSet<T> {
    /// An empty set.
    pub fn new() -> JoinSet<T> {
        JoinSet { tasks: FuturesUnordered::new(), retry: None }
    }

    /// How many tasks are in the set: running, or finished and not yet joined.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether the set holds no task.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    fn insert(&mut self, handle: JoinHandle<T>) -> AbortHandle {
        let abort = handle.abort_handle();
        self.tasks.push(handle);
        abort
    }

    /// Spawns a `Send` future on the current runtime into the set ([`crate::spawn`]). Panics outside a
    /// runtime.
    pub fn spawn<F>(&mut self, fut: F) -> AbortHandle
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.insert(crate::spawn(fut))
    }

    /// Spawns a `!Send` future on the current runtime into the set ([`crate::spawn_local`]). Panics outside a
    /// runtime.
    pub fn spawn_local<F>(&mut self, fut: F) -> AbortHandle
    where
        F: Future<Output = T> + 'static,
        T: 'static,
    {
        self.insert(crate::spawn_local(fut))
    }

    /// Spawns a `Send` future into the set on the runtime of `handle`, from any thread ([`Handle::spawn`]).
    pub fn spawn_on<F>(&mut self, fut: F, handle: &Handle) -> AbortHandle
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.insert(handle.spawn(fut))
    }

    /// Runs the blocking closure `f` on libuv's thread pool into the set ([`super::spawn_blocking`]). Aborting
    /// it (or dropping the set) does not stop a closure that has started: its result is then dropped.
    pub fn spawn_blocking<F>(&mut self, f: F) -> AbortHandle
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.insert(super::spawn_blocking(f))
    }

    /// Waits for the next task to finish and gives its result; `None` once the set is empty. Results come in
    /// completion order, not spawn order: `Err` for a task that panicked or was aborted.
    ///
    /// Cancel-safe: dropping the future before it is ready loses no result.
    pub async fn join_next(&mut self) -> Option<Result<T, JoinError>> {
        std::future::poll_fn(|cx| self.poll_join_next(cx)).await
    }

    /// The result of a task that has already finished, without waiting; `None` if none has (or the set is
    /// empty).
    pub fn try_join_next(&mut self) -> Option<Result<T, JoinError>> {
        let flag = self.retry.get_or_insert_with(|| Arc::new(Flag(AtomicBool::new(false)))).clone();
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        loop {
            flag.0.store(false, Ordering::Relaxed);
            match self.tasks.poll_next_unpin(&mut cx) {
                Poll::Ready(next) => return next,
                // The set woke itself: it paused after polling many entries, and may have more ready ones.
                Poll::Pending if flag.0.load(Ordering::Relaxed) => continue,
                Poll::Pending => return None,
            }
        }
    }

    /// Polls for the next finished task, as [`join_next`](JoinSet::join_next): `Ready(None)` when the set is
    /// empty; `Pending` (with `cx`'s waker registered) while every task is still running.
    pub fn poll_join_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<T, JoinError>>> {
        self.tasks.poll_next_unpin(cx)
    }

    /// Waits for every task and gives their outputs in completion order.
    ///
    /// # Panics
    /// If a task panicked (its panic is resumed here) or was aborted. The tasks still running are then aborted,
    /// as the set is dropped.
    pub async fn join_all(mut self) -> Vec<T> {
        let mut outputs = Vec::with_capacity(self.len());
        while let Some(res) = self.join_next().await {
            match res {
                Ok(out) => outputs.push(out),
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => panic!("a task of the JoinSet failed: {e}"),
            }
        }
        outputs
    }

    /// Aborts every task in the set (as [`AbortHandle::abort`]); they stay in it until joined, each giving a
    /// cancelled [`JoinError`] unless it had already finished.
    pub fn abort_all(&mut self) {
        for handle in self.tasks.iter() {
            handle.abort();
        }
    }

    /// Aborts every task, then waits until all of them are gone, dropping their results. The set is empty
    /// afterwards.
    pub async fn shutdown(&mut self) {
        self.abort_all();
        while self.join_next().await.is_some() {}
    }

    /// Empties the set without aborting: the tasks run on, their outputs dropped when they finish (as with a
    /// dropped [`JoinHandle`]).
    pub fn detach_all(&mut self) {
        drop(std::mem::take(&mut self.tasks));
    }
}

/// Records a wake (see [`JoinSet::try_join_next`]).
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl<T> Drop for JoinSet<T> {
    fn drop(&mut self) {
        self.abort_all();
    }
}

impl<T> Default for JoinSet<T> {
    fn default() -> JoinSet<T> {
        JoinSet::new()
    }
}

impl<T> fmt::Debug for JoinSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinSet").field("len", &self.len()).finish()
    }
}

/// Spawns each future with [`JoinSet::spawn_local`]. Panics outside a runtime.
impl<T: 'static, F: Future<Output = T> + 'static> FromIterator<F> for JoinSet<T> {
    fn from_iter<I: IntoIterator<Item = F>>(iter: I) -> JoinSet<T> {
        let mut set = JoinSet::new();
        set.extend(iter);
        set
    }
}

/// Spawns each future with [`JoinSet::spawn_local`]. Panics outside a runtime.
impl<T: 'static, F: Future<Output = T> + 'static> Extend<F> for JoinSet<T> {
    fn extend<I: IntoIterator<Item = F>>(&mut self, iter: I) {
        for fut in iter {
            self.spawn_local(fut);
        }
    }
}
