//! Shutting down with a grace period: [`Runtime::shutdown_timeout`] and [`Runtime::shutdown_background`].
//!
//! A plain drop cuts every task at once, then waits for what may still touch memory: requests on libuv's
//! thread pool (it cannot stop them) and, on io_uring, the ring's operations (cancelled first). A grace period
//! lets the work finish instead, and a deadline bounds the wait for the thread pool too:
//!
//! 1. **Grace.** The loop runs as under `block_on`, with a timer at the deadline, until nothing is left to wait
//!    for (no live task, no dropped libuv socket still sending, nothing on the thread pool) or the deadline
//!    passes.
//! 2. **Cut.** The runtime shuts down as on drop: the tasks still alive are dropped (their handles report
//!    cancellation), then the work no pool thread has started is cancelled.
//! 3. **Abandon.** If a pool thread still runs a request (a `spawn_blocking` closure, a file read on a silent
//!    FIFO…), waiting for it could last forever, and freeing the loop under it would be unsound: the loop and
//!    everything tied to it are leaked instead (a few descriptors and allocations), so the pool thread finishes
//!    into memory that stays valid. The handles of abandoned `spawn_blocking` jobs report cancellation.
//!
//! What remains after the deadline is bounded: dropping futures, at most [`POOL_SETTLE`] for requests the thread
//! pool is finishing, and on the io_uring engine the wait for the cancelled ring operations, which the kernel
//! completes at once.

use std::rc::Rc;
use std::time::{Duration, Instant};

use super::executor::Executor;
use super::{context, Runtime};
use crate::uv::{Handle as _, RunMode, Timer};

/// How long past its deadline `shutdown_timeout` waits for requests the thread pool is finishing, before it
/// abandons them.
const POOL_SETTLE: Duration = Duration::from_millis(100);

/// What [`Runtime::shutdown_timeout`] had to cut at its deadline. All zero ([`is_clean`](Self::is_clean)):
/// everything finished in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShutdownReport {
    tasks_cut: usize,
    pool_abandoned: usize,
}

impl ShutdownReport {
    /// Tasks still running at the deadline, dropped there (their `JoinHandle`s report cancellation).
    pub fn tasks_cut(&self) -> usize {
        self.tasks_cut
    }

    /// Requests still running on libuv's thread pool at the deadline (`spawn_blocking` closures, fs and DNS
    /// requests). When this is not zero, the runtime's loop was leaked rather than freed under them.
    pub fn pool_abandoned(&self) -> usize {
        self.pool_abandoned
    }

    /// Whether everything finished before the deadline (nothing was cut or abandoned).
    pub fn is_clean(&self) -> bool {
        *self == ShutdownReport::default()
    }
}

impl Runtime {
    /// Shuts the runtime down, giving its tasks and in-flight operations up to `timeout` to finish, and
    /// returns what had to be cut at the deadline.
    ///
    /// Until the deadline the loop runs as under [`block_on`](Runtime::block_on): tasks (and those they spawn)
    /// run to completion, dropped libuv sockets send what was written to them, and requests on libuv's thread
    /// pool (`spawn_blocking`, fs, DNS) complete. The call returns as soon as nothing is left, or at the
    /// deadline: there the remaining tasks are dropped, as on drop (their `JoinHandle`s report cancellation),
    /// and counted in [`ShutdownReport::tasks_cut`].
    ///
    /// Unlike a plain drop, it does not wait for requests still running on the thread pool at the deadline
    /// (libuv cannot stop them): it leaks the runtime's loop instead of freeing memory they may still use,
    /// counts them in [`ShutdownReport::pool_abandoned`], and the `JoinHandle`s of such `spawn_blocking` jobs
    /// report cancellation. So the call returns within `timeout` plus a short, bounded time: to drop what is
    /// left, to let requests the pool is just finishing complete (at most 100 ms), and on io_uring to reap
    /// the ring operations it cancels.
    ///
    /// `Duration::ZERO` cuts everything at once ([`shutdown_background`](Runtime::shutdown_background)). On a
    /// host's loop ([`Builder::build_on`](crate::Builder::build_on)), or when called from inside a runtime's
    /// `block_on` on this thread, the loop cannot be run here: there is no grace period (and on a host's loop,
    /// requests on the pool complete in the host's next runs, as after a drop: they are not abandoned).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let rt = uvio::Runtime::new()?;
    /// rt.spawn_local(uvio::time::sleep(Duration::from_millis(10)));
    /// let report = rt.shutdown_timeout(Duration::from_secs(5));
    /// assert!(report.is_clean());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn shutdown_timeout(mut self, timeout: Duration) -> ShutdownReport {
        let deadline = Instant::now().checked_add(timeout);
        if can_drive(self.ex()) && !timeout.is_zero() {
            // A panic in a libuv callback leaves `self` to its `Drop`, which shuts down as usual.
            grace(self.ex(), deadline);
        }
        let ex = self.ex.take().expect("runtime closed twice");
        cut(ex, !timeout.is_zero())
    }

    /// Shuts the runtime down without waiting: [`shutdown_timeout`](Runtime::shutdown_timeout) with a zero
    /// timeout. Every task is dropped at once and requests running on libuv's thread pool are not waited for
    /// (not even the 100 ms `shutdown_timeout` gives them past its deadline).
    pub fn shutdown_background(self) -> ShutdownReport {
        self.shutdown_timeout(Duration::ZERO)
    }
}

/// Whether this thread may run the loop: not a host's, and not inside a `block_on` (libuv is not reentrant).
fn can_drive(ex: &Rc<Executor>) -> bool {
    !ex.lp.is_borrowed() && !context::in_block_on()
}

/// Whether something the grace period waits for is still going.
fn busy(ex: &Executor) -> bool {
    ex.live_tasks() > 0 || ex.engine.lingering() > 0 || ex.lp.inner().pool_in_flight() > 0
}

/// Runs the loop until nothing is [`busy`] or the deadline (`None`: too far to represent) passes.
fn grace(ex: &Rc<Executor>, deadline: Option<Instant>) {
    let _current = context::enter(ex);
    ex.blocking.set(true);
    let _blocking = super::ResetOnDrop(ex.clone());
    ex.wakeup.ref_(); // a wake from another thread must end a blocking poll
    run_until(ex, deadline, busy);
}

/// Runs the loop while `pending` holds, until the deadline (`None`: none). Stops early if the loop cannot be
/// run here (it is already running: the runtime was moved into one of its own callbacks).
fn run_until(ex: &Rc<Executor>, deadline: Option<Instant>, pending: fn(&Executor) -> bool) {
    // Ends a blocking poll at the deadline. Without it (it could not be made), the loop still runs, waiting at
    // most for the next event.
    let alarm = Timer::new(&ex.lp).ok();
    while pending(ex) && deadline.is_none_or(|d| Instant::now() < d) {
        if let (Some(alarm), Some(deadline)) = (&alarm, deadline) {
            // Set afresh each turn from a fresh loop time: libuv's cached "now" may lag, which would make the
            // timer fire early and leave the next poll without a bound. Rounded up to libuv's millisecond.
            ex.lp.update_time();
            let left = deadline.saturating_duration_since(Instant::now()) + Duration::from_millis(1);
            let _ = alarm.start(left, None, |_| {});
        }
        let mode = if ex.has_ready() { RunMode::NoWait } else { RunMode::Once };
        if ex.lp.run(mode).is_err() {
            break;
        }
    }
    drop(alarm); // closed by a later loop iteration (the shutdown's)
}

/// Drops what is left (as `Runtime`'s `Drop`), or leaks the loop if a pool thread may still use it. With
/// `settle`, requests that the pool is finishing get [`POOL_SETTLE`] more to complete.
fn cut(ex: Rc<Executor>, settle: bool) -> ShutdownReport {
    let tasks_cut = ex.live_tasks();
    ex.shutdown();
    let lp = ex.lp.inner().clone();
    crate::uv::cancel_queued(&lp);
    if can_drive(&ex) {
        // Delivers the close callbacks of what the tasks owned and the cancelled work's after-callbacks.
        let _ = ex.lp.run(RunMode::NoWait);
        if settle {
            // A file request of a task just cut is most likely microseconds from done: leaking the loop for
            // it would be a waste. Only a request that blocks (a silent FIFO, a long closure) is abandoned.
            run_until(&ex, Some(Instant::now() + POOL_SETTLE), |ex| ex.lp.inner().pool_in_flight() > 0);
            let _ = ex.lp.run(RunMode::NoWait);
        }
    }
    // On a host's loop the host keeps running it: the requests complete there, and hold the loop meanwhile.
    let pool_abandoned = if ex.lp.is_borrowed() { 0 } else { lp.pool_in_flight() };
    if pool_abandoned > 0 {
        let jobs: Vec<_> = ex.blocking_jobs.borrow_mut().drain().collect();
        for job in jobs {
            job.cancel();
        }
        log::warn!(
            target: "uvio",
            "runtime shutdown: {pool_abandoned} request(s) still running on libuv's thread pool at the deadline; \
             leaking the loop they use"
        );
        // Never dropped: the loop, its handles and the requests' memory stay valid for the pool threads.
        std::mem::forget(ex);
        std::mem::forget(lp);
    }
    ShutdownReport { tasks_cut, pool_abandoned }
}
