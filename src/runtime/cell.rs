//! A task in one allocation: its header (what wakers touch), its future, and its join slot, in one `Arc`.
//!
//! This is the runtime's only `unsafe` code. The reason is memory: a task used to be three allocations (a
//! boxed future, an `Arc` header for wakers, an `Arc` join state), ~240 bytes of heap per task; one allocation
//! is ~150. A waker must be `Send + Sync`, but a `spawn_local` future (and its output) may be `!Send`, so putting
//! them in the waker's allocation needs a promise the compiler cannot check — the one `tokio` makes too:
//!
//! **The future is touched (polled, dropped) only through a [`TaskRef`], and a `TaskRef` of a `!Send` future
//! exists only on the thread that spawned it** (`TaskRef` is `!Send`; [`TaskRef::new_local`] makes it on the
//! current thread; [`RemoteTask`], the only form that crosses threads, requires a `Send` future). The executor
//! keeps each task's `TaskRef` in its (thread-bound) slab; dropping the `TaskRef` drops the future in place. So
//! by the time a waker on another thread drops the last reference, the future is already gone.
//!
//! **The output follows its [`JoinHandle`](super::JoinHandle)**: it is written on the task's thread and read by
//! the handle, which is `!Send` when the output is (see `task.rs`); a detached handle makes the task drop its
//! output at once, on its own thread.
//!
//! Wakers and [`AbortHandle`](super::task::AbortHandle)s only touch the header (atomics and the `Arc<Shared>`
//! that queues the task) and the join slot's `finished` flag, which are `Send + Sync`. Either may hold the last
//! reference and drop the allocation on another thread: by then the future is gone (above) and so is the output
//! (its handle took it, or dropped it when it detached).

#![allow(unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks)]

use std::cell::UnsafeCell;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use super::shared::Shared;
use super::task::{Abort, Join, JoinCell, JoinHandle};

/// What a waker touches: where the task lives and whether it is already queued.
pub(crate) struct Header {
    /// The task's key in its executor's slab; `usize::MAX` until a remotely spawned task is adopted.
    pub(crate) key: AtomicUsize,
    /// Set while the task sits in a ready queue, so that repeated wakes queue it once.
    pub(crate) scheduled: AtomicBool,
    /// Set by [`JoinHandle::abort`]: the executor drops the future instead of polling it.
    pub(crate) aborted: AtomicBool,
    shared: Arc<Shared>,
}

impl Header {
    fn new(shared: Arc<Shared>) -> Header {
        Header {
            key: AtomicUsize::new(usize::MAX),
            scheduled: AtomicBool::new(false),
            aborted: AtomicBool::new(false),
            shared,
        }
    }
}

/// A task as queues and wakers see it (type-erased, `Send + Sync`). The two `unsafe` methods touch the
/// future: only [`TaskRef`] and [`RemoteTask`] call them.
pub(crate) trait RawTask: Send + Sync + 'static {
    fn header(&self) -> &Header;

    /// Polls the future; `true` once it is finished (its future dropped, its output delivered).
    ///
    /// # Safety
    /// Only on the thread that owns the future (see the module docs), never reentrantly.
    unsafe fn poll(self: Arc<Self>) -> bool;

    /// Drops the future in place, if it is still there; the join handle reports cancellation (or the panic,
    /// if the future's destructor panicked: it is caught here, never unwound into the executor).
    ///
    /// # Safety
    /// As for [`poll`](RawTask::poll).
    unsafe fn drop_future(&self);
}

/// One task: header, future and join slot in one allocation.
struct Task<F: Future> {
    header: Header,
    /// `Some` until the future completes, panics or is cancelled; then dropped in place.
    future: UnsafeCell<Option<F>>,
    join: JoinCell<F::Output>,
}

// SAFETY: the `Send + Sync` parts are the header (atomics and an `Arc<Shared>`, itself Send + Sync) and the join
// cell's synchronisation. The future is accessed only through `RawTask::{poll, drop_future}`, whose callers
// (TaskRef, RemoteTask) guarantee the owning thread (module docs); the output in the join cell moves only between
// the task's thread and a `JoinHandle` that is `!Send` when the output is. So sharing `&Task<F>` across threads
// exposes nothing thread-bound.
unsafe impl<F: Future> Send for Task<F> {}
// SAFETY: as for `Send` above.
unsafe impl<F: Future> Sync for Task<F> {}

impl<F: Future + 'static> RawTask for Task<F> {
    fn header(&self) -> &Header {
        &self.header
    }

    unsafe fn poll(self: Arc<Self>) -> bool {
        // SAFETY: the caller is on the owning thread and not reentrant (trait contract), so this is the only
        // reference to the future for the duration of the poll; wakers never touch `future`.
        let slot = unsafe { &mut *self.future.get() };
        let Some(fut) = slot.as_mut() else { return true };
        // SAFETY: the future lives inside the `Arc`'s allocation and is never moved out: it is only dropped in
        // place (by assigning `None` to its slot), which is what `Pin` requires.
        let fut = unsafe { Pin::new_unchecked(fut) };
        let waker = Waker::from(self.clone());
        let mut cx = Context::from_waker(&waker);
        let outcome = match catch_unwind(AssertUnwindSafe(|| fut.poll(&mut cx))) {
            Ok(Poll::Pending) => return false,
            Ok(Poll::Ready(out)) => Ok(out),
            Err(panic) => Err(panic),
        };
        // Dropping the future may panic too; that second panic is dropped (the first one is reported).
        let _ = catch_unwind(AssertUnwindSafe(|| *slot = None));
        self.join.complete(outcome);
        true
    }

    unsafe fn drop_future(&self) {
        // SAFETY: owning thread, not reentrant (trait contract): no other reference to the future exists.
        let slot = unsafe { &mut *self.future.get() };
        if slot.is_none() {
            return;
        }
        // Dropped in place (it may have been pinned by a poll). Should its destructor panic, the slot is still
        // left `None`.
        match catch_unwind(AssertUnwindSafe(|| *slot = None)) {
            Ok(()) => self.join.cancel(),
            Err(panic) => self.join.complete(Err(panic)),
        }
    }
}

impl<F: Future + 'static> std::task::Wake for Task<F> {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.header.scheduled.swap(true, Ordering::AcqRel) {
            self.header.shared.schedule(self.clone());
        }
    }
}

impl<F: Future + 'static> Join<F::Output> for Task<F> {
    fn join(&self) -> &JoinCell<F::Output> {
        &self.join
    }

    fn abortable(self: Arc<Self>) -> Arc<dyn Abort> {
        self
    }
}

impl<F: Future + 'static> Abort for Task<F> {
    fn abort(self: Arc<Self>) {
        self.header.aborted.store(true, Ordering::Release);
        std::task::Wake::wake_by_ref(&self);
    }

    fn is_finished(&self) -> bool {
        self.join.is_finished()
    }
}

fn new_task<F: Future + 'static>(fut: F, shared: Arc<Shared>) -> Arc<Task<F>> {
    Arc::new(Task { header: Header::new(shared), future: UnsafeCell::new(Some(fut)), join: JoinCell::new() })
}

/// The owning reference to a task's future, held by the executor's slab on the task's thread (`!Send`).
/// Dropping it drops the future (its join handle then reports cancellation, unless it had finished).
pub(crate) struct TaskRef {
    raw: Arc<dyn RawTask>,
    _thread_bound: PhantomData<*const ()>,
}

impl TaskRef {
    /// A task for a future that stays on this thread.
    pub(crate) fn new_local<F>(fut: F, shared: Arc<Shared>) -> (TaskRef, JoinHandle<F::Output>)
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        let task = new_task(fut, shared);
        let handle = JoinHandle::new(task.clone());
        (TaskRef { raw: task, _thread_bound: PhantomData }, handle)
    }

    pub(crate) fn header(&self) -> &Header {
        self.raw.header()
    }

    /// A clone of the waker-side reference, for the ready queue.
    pub(crate) fn raw(&self) -> Arc<dyn RawTask> {
        self.raw.clone()
    }

    /// Whether `raw` is this task (a ready-queue entry may outlive its task's slot, whose key is then reused).
    pub(crate) fn is(&self, raw: &Arc<dyn RawTask>) -> bool {
        std::ptr::addr_eq(Arc::as_ptr(&self.raw), Arc::as_ptr(raw))
    }

    /// Polls the task once; `true` when it is finished.
    pub(crate) fn poll(&self) -> bool {
        // SAFETY: a TaskRef is !Send and is created on the thread that owns its future (new_local, or
        // RemoteTask::into_local for a Send future), so this is that thread; the executor never polls a task from
        // inside its own poll (it takes the TaskRef out of its slab while polling).
        unsafe { self.raw.clone().poll() }
    }
}

impl Drop for TaskRef {
    fn drop(&mut self) {
        // SAFETY: on the owning thread (see `poll`); a TaskRef is never dropped from inside its own poll.
        unsafe { self.raw.drop_future() }
    }
}

/// A task spawned from another thread, on its way to the runtime's thread: a [`TaskRef`] whose future and
/// output are `Send`, so it may cross threads (and be dropped on any, if the runtime is gone).
pub(crate) struct RemoteTask(TaskRef);

// SAFETY: `RemoteTask::new` is the only constructor and requires a `Send` future with a `Send` output, so the
// future may be polled or dropped on whichever thread ends up holding the task: TaskRef's thread-bound promise
// is not needed for it.
unsafe impl Send for RemoteTask {}

impl RemoteTask {
    pub(crate) fn new<F>(fut: F, shared: Arc<Shared>) -> (RemoteTask, JoinHandle<F::Output>)
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (task, handle) = TaskRef::new_local(fut, shared);
        (RemoteTask(task), handle)
    }

    /// Adopts the task on the runtime's thread.
    pub(crate) fn into_local(self) -> TaskRef {
        self.0
    }
}
