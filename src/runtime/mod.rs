//! The async runtime: futures driven by one libuv loop on one thread.
//!
//! One [`Runtime`] = one libuv loop; many runtimes = many threads (libuv's model). Tasks are polled inside the
//! loop's callbacks (see `executor.rs`), so I/O callbacks and tasks interleave fairly, and the same machinery
//! serves [`Runtime::block_on`] and loops that a host application runs itself.

mod cell;
mod context;
pub(crate) mod coop;
mod executor;
mod radix_heap;
mod shared;
mod shutdown;
pub(crate) mod task;
mod timers;

use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

pub(crate) use context::current;
pub(crate) use executor::Executor;
use shared::Shared;
pub use shutdown::ShutdownReport;
pub use task::{AbortHandle, JoinError, JoinHandle};
pub(crate) use timers::TimerKey;

use crate::engine::Backend;
use crate::uv::{Handle as _, Loop, RunMode};

/// A uvio runtime: one libuv loop and the tasks that run on it, on the thread that created it (`!Send`).
///
/// # Shutdown waits for requests on libuv's thread pool
/// Dropping or [closing](Runtime::close) a runtime waits for the file and DNS requests already running on
/// libuv's thread pool (as tokio's runtime waits for its blocking tasks): a call blocked there cannot be
/// cancelled, and its completion holds memory that must not be freed before. Most finish in microseconds, but a
/// read waits as long as the file makes it: forever on a FIFO, pipe or terminal whose writer stays silent. On the
/// io_uring engine such reads (and opens, and writes to pipes) are on the ring and are cancelled at shutdown. On
/// the libuv and epoll engines, and for the whole-file helpers `fs::read` and `fs::write` on every engine, they
/// run on the pool: there, shutdown waits until the writer writes or goes away.
/// [`shutdown_timeout`](Runtime::shutdown_timeout) bounds that wait: past its deadline it leaks the loop
/// rather than wait for such a request.
///
/// ```
/// let rt = uvio::Runtime::new()?;
/// let answer = rt.block_on(async {
///     let task = uvio::spawn_local(async { 6 * 7 });
///     task.await.unwrap()
/// });
/// assert_eq!(answer, 42);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Runtime {
    /// `None` only after [`Runtime::close`] took it.
    ex: Option<Rc<Executor>>,
}

/// Configures a [`Runtime`].
#[derive(Debug, Clone, Default)]
pub struct Builder {
    backend: Backend,
    idle_time_metrics: bool,
    block_sigprof: bool,
    /// Ring size and SQPOLL, set through [`crate::linux::BuilderExt`].
    #[cfg(target_os = "linux")]
    pub(crate) ring: crate::engine::RingOptions,
}

impl Builder {
    /// A builder with the defaults.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Which engine carries sockets and files ([`Backend::Auto`] by default). The `UVIO_BACKEND` environment
    /// variable overrides it; see [`crate::engine`].
    pub fn backend(mut self, backend: Backend) -> Builder {
        self.backend = backend;
        self
    }

    /// Accounts the loop's idle time, readable from [`Runtime::loop_handle`]'s metrics.
    pub fn idle_time_metrics(mut self, enable: bool) -> Builder {
        self.idle_time_metrics = enable;
        self
    }

    /// Blocks `SIGPROF` while the loop polls (Unix), so profilers do not wake it needlessly.
    pub fn block_sigprof(mut self, enable: bool) -> Builder {
        self.block_sigprof = enable;
        self
    }

    /// Makes the io_uring ring setup act as if the kernel failed as `what` names (`ENOSYS`, `EPERM`, `ENOMEM`,
    /// `NO_STATX`, `NO_FS_PATH_OPS`, `SQPOLL_EPERM`, `NO_NET`; another name makes [`build`](Builder::build)
    /// fail with `InvalidInput`), so that the fallback paths can be tested on a machine that has io_uring. For
    /// uvio's own tests: not a stable interface. See [`crate::engine`].
    #[cfg(target_os = "linux")]
    #[doc(hidden)]
    pub fn simulate_ring_failure(mut self, what: &str) -> Builder {
        self.ring.simulate = Some(crate::engine::io_uring::Simulate::named(what));
        self
    }

    /// Creates the runtime, with a new loop, on the current thread.
    pub fn build(self) -> std::io::Result<Runtime> {
        self.build_on(Loop::new()?)
    }

    /// Creates the runtime on an existing loop — typically one a host application runs itself, borrowed with
    /// the unsafe [`Loop::from_raw`]. Tasks then run inside the host's `uv_run`: spawn them with
    /// [`Runtime::spawn_local`] (or inside [`Runtime::enter`]); [`Runtime::block_on`] is not available there
    /// (the host owns the loop). A ready task keeps the host's loop from blocking; pending sleeps and I/O keep it
    /// alive, exactly like libuv handles do.
    ///
    /// Shutting down: drop the `Runtime` (or [`close`](Runtime::close) it) on the loop's thread, then let the
    /// host run its loop once more to deliver the close callbacks before it calls `uv_loop_close`. A task of the
    /// runtime may drop it itself: the other tasks are dropped at once, and that task is dropped as soon as its
    /// current poll returns (it is not polled again).
    pub fn build_on(self, lp: Loop) -> std::io::Result<Runtime> {
        let requested = Backend::from_env()?.unwrap_or(self.backend);
        if self.idle_time_metrics {
            lp.enable_idle_time_metrics()?;
        }
        if self.block_sigprof {
            lp.block_sigprof()?;
        }
        #[cfg(target_os = "linux")]
        let engine = crate::engine::Engine::new(&lp, requested, self.ring)?;
        #[cfg(not(target_os = "linux"))]
        let engine = crate::engine::Engine::new(&lp, requested)?;
        Ok(Runtime { ex: Some(Executor::new(lp, engine)?) })
    }
}

impl Runtime {
    /// A runtime with the default configuration on the current thread.
    pub fn new() -> std::io::Result<Runtime> {
        Builder::new().build()
    }

    /// Runs `fut` to completion on this thread, driving the loop and every spawned task meanwhile.
    ///
    /// # Panics
    /// If called from inside a runtime's `block_on` or task on this thread (the loop is not reentrant), on a
    /// runtime built on a host's loop ([`Builder::build_on`]), and if a libuv callback panicked (the panic is
    /// resumed here).
    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        assert!(!context::in_block_on(), "cannot block_on from inside a uvio runtime: use .await instead");
        let ex = self.ex();
        assert!(!ex.lp.is_borrowed(), "block_on on a host's loop: spawn_local instead and let the host run it");
        let _current = context::enter(ex);
        ex.blocking.set(true);
        let _blocking = ResetOnDrop(ex.clone());
        ex.wakeup.ref_(); // a wakeup from another thread must end a blocking poll
        let main = Arc::new(MainWaker { shared: ex.shared.clone(), woken: AtomicBool::new(false) });
        let waker = Waker::from(main.clone());
        let mut cx = Context::from_waker(&waker);
        let mut fut = std::pin::pin!(fut);
        ex.main_woken.set(true);
        loop {
            if ex.main_woken.replace(false) | main.woken.swap(false, Ordering::AcqRel) {
                if let Poll::Ready(out) = coop::budgeted(|| fut.as_mut().poll(&mut cx)) {
                    return out;
                }
            }
            let busy = ex.main_woken.get() || main.woken.load(Ordering::Acquire) || ex.has_ready();
            ex.lp.run(if busy { RunMode::NoWait } else { RunMode::Once }).expect("uvio runtime loop");
        }
    }

    /// Spawns a `!Send` future on this runtime; it runs while the runtime is driven (`block_on`).
    pub fn spawn_local<F>(&self, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        self.ex().spawn_local(fut)
    }

    fn ex(&self) -> &Rc<Executor> {
        self.ex.as_ref().expect("runtime used after close")
    }

    /// Shuts the runtime down and closes its loop, reporting anything left open: every task is dropped
    /// (cancelled; a task spawned meanwhile, by a destructor, is cancelled too, never polled), the loop runs
    /// until the close callbacks are delivered, and `uv_loop_close` must succeed.
    /// `Err` (with the count of live handles) means something outside the runtime still holds a uvio object
    /// tied to it (a listener, a stream, a file, a `uv` handle made on [`loop_handle`](Runtime::loop_handle)…)
    /// — a leak to fix; `close` then returns at once, on every engine, without waiting for that object. Dropping
    /// a `Runtime` does the same without the report.
    pub fn close(mut self) -> std::io::Result<()> {
        let ex = self.ex.take().expect("runtime closed twice");
        ex.shutdown();
        let ex =
            Rc::try_unwrap(ex).map_err(|_| still_tied("the runtime is still referenced (a sleep or I/O object)"))?;
        // Ring sockets and files hold no libuv handle: count them before the driver goes.
        #[cfg(target_os = "linux")]
        let ring_objects = ex.engine.ring().map_or(0, crate::engine::io_uring::net::objects_tied_to);
        #[cfg(not(target_os = "linux"))]
        let ring_objects = 0;
        let lp = ex.into_loop();
        if lp.is_borrowed() {
            // The host delivers the close callbacks in its next run and closes its loop.
            return match ring_objects {
                0 => Ok(()),
                n => Err(still_tied(&format!("{n} I/O object(s)"))),
            };
        }
        lp.run(RunMode::NoWait)?; // delivers the close callbacks of the executor's own handles
                                  // A handle still open (a listener, a stream, a uv handle made on `loop_handle`) would keep the run below
                                  // from ever returning.
        let live = lp.handle_count() + ring_objects;
        if live > 0 {
            return Err(still_tied(&format!("{live} live handle(s) or I/O object(s)")));
        }
        lp.run(RunMode::Default)?;
        lp.close().map_err(|e| std::io::Error::other(e.to_string()))
    }

    /// The io_uring driver, when this runtime's engine is io_uring (for [`crate::linux::RuntimeExt`]).
    #[cfg(target_os = "linux")]
    pub(crate) fn uring(&self) -> Option<&crate::engine::Driver> {
        self.ex().engine.ring().map(|d| &**d)
    }

    /// The engine this runtime runs (never [`Backend::Auto`]: what Auto resolved to).
    pub fn backend(&self) -> Backend {
        self.ex().engine.backend()
    }

    /// A `Send + Sync` handle to spawn onto this runtime from any thread.
    pub fn handle(&self) -> Handle {
        Handle { shared: self.ex().shared.clone() }
    }

    /// The libuv loop under this runtime, to create `uv` handles beside the async ones.
    pub fn loop_handle(&self) -> &Loop {
        &self.ex().lp
    }

    /// Makes this runtime current on this thread until the guard drops, so that `spawn_local`, `time::sleep`
    /// and the I/O types can be used outside `block_on` (e.g. on a loop a host runs).
    ///
    /// Guards nest: drop them in the reverse order of their creation. Dropping a guard that is not the
    /// innermost one panics (as tokio does): it is a programming error that would otherwise send later spawns
    /// to another runtime than intended.
    pub fn enter(&self) -> EnterGuard {
        EnterGuard { _inner: context::enter(self.ex()) }
    }
}

/// The error of [`Runtime::close`] when something outside the runtime still holds an object tied to it.
fn still_tied(what: &str) -> std::io::Error {
    std::io::Error::other(format!("cannot close the runtime: {what} still tied to it outlive it (a leak to fix)"))
}

/// Returned by [`Runtime::enter`]; the runtime stays current until it drops.
///
/// # Panics
/// On drop, if a guard created after it on this thread is still alive (guards must be dropped innermost
/// first), unless the thread is already panicking.
pub struct EnterGuard {
    _inner: context::EnterGuard,
}

impl std::fmt::Debug for EnterGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnterGuard")
    }
}

struct ResetOnDrop(Rc<Executor>);

impl Drop for ResetOnDrop {
    fn drop(&mut self) {
        self.0.blocking.set(false);
        self.0.wakeup.unref();
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(ex) = self.ex.take() {
            ex.shutdown();
            // Let the loop deliver the close callbacks of everything the tasks owned.
            let _ = ex.lp.run(RunMode::NoWait);
        }
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").finish_non_exhaustive()
    }
}

/// Wakes `block_on`'s own future.
struct MainWaker {
    shared: Arc<Shared>,
    woken: AtomicBool,
}

impl Wake for MainWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        match context::local_executor(&self.shared) {
            Some(ex) => ex.arm(),
            None => self.shared.wake_main_remote(),
        }
    }
}

/// A `Send + Sync` handle to a [`Runtime`]: spawns `Send` futures onto it from any thread.
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

impl Handle {
    /// The handle of the current runtime. Panics outside a runtime.
    pub fn current() -> Handle {
        Handle { shared: context::current().shared.clone() }
    }

    /// Spawns a `Send` future onto the runtime from any thread (woken through the loop's async handle). If
    /// the runtime is gone, the task is dropped and its handle reports cancellation.
    pub fn spawn<F>(&self, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (task, handle) = cell::RemoteTask::new(fut, self.shared.clone());
        self.shared.inject(task);
        handle
    }

    /// The engine of the runtime this handle belongs to (what [`Backend::Auto`] resolved to), as
    /// [`Runtime::backend`]; `Handle::current().backend()` tells a task which engine it runs on.
    pub fn backend(&self) -> Backend {
        self.shared.backend
    }
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").finish_non_exhaustive()
    }
}

/// Spawns a `!Send` future on the current runtime. Panics outside a runtime.
pub fn spawn_local<F>(fut: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
    F::Output: 'static,
{
    context::current().spawn_local(fut)
}

/// Spawns a `Send` future on the current runtime (directly, when called on the runtime's thread).
/// Panics outside a runtime.
pub fn spawn<F>(fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    context::current().spawn_local(fut)
}

/// Runs `fut` to completion on a new runtime on this thread: `Runtime::new()?.block_on(fut)`.
///
/// # Panics
/// If the runtime cannot be created (the loop failed to initialise), or as [`Runtime::block_on`].
pub fn block_on<F: Future>(fut: F) -> F::Output {
    Runtime::new().expect("uvio runtime").block_on(fut)
}

/// See [`crate::task::spawn_blocking`].
pub(crate) fn spawn_blocking<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let ex = context::current();
    let job = Arc::new(task::BlockingJoin { cell: task::JoinCell::new() });
    let done = job.clone();
    // Registered so that a shutdown that abandons the job can still tell its handle (see `shutdown.rs`).
    let key = ex.blocking_jobs.borrow_mut().insert(job.clone());
    let registry = Rc::downgrade(&ex);
    let work = move || std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    let queued = crate::uv::queue_work(&ex.lp, work, move |result| {
        if let Some(ex) = registry.upgrade() {
            drop(ex.blocking_jobs.borrow_mut().try_remove(key));
        }
        match result {
            Ok(outcome) => done.cell.complete(outcome),
            Err(_) => done.cell.cancel(),
        }
    });
    if queued.is_err() {
        drop(ex.blocking_jobs.borrow_mut().try_remove(key));
        job.cell.cancel();
    }
    JoinHandle::new(job)
}
