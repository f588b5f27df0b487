//! [`queue_work`]: run a closure on libuv's thread pool, and its continuation on the loop thread (`uv_work_t`).
//!
//! The thread pool is global: shared by every loop in the process and by libuv's own fs and dns requests. Its
//! size is 4 threads unless the `UV_THREADPOOL_SIZE` environment variable says otherwise before first use.
//!
//! Threads and soundness: the work closure and its result cross to a pool thread and back, so both must be
//! `Send`; the `after` closure stays on the loop thread and need not be. While the work is queued or running,
//! the pool thread touches only the request's work slot; the loop thread touches the request again only after
//! libuv reports it done. A [`WorkHandle`] reaches the request through shared state that the completion clears,
//! so it never cancels a request that was already freed.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::ffi::c_int;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::rc::Rc;

use libuv_sys2 as sys;
use slab::Slab;

use super::loop_::{Loop, LoopInner};
use super::req::{complete, submit, ReqBox};
use crate::error::{Error, Result};

/// Where a work request is, as seen from the loop thread.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Queued or running; the pointer is the live request.
    Pending(*mut sys::uv_work_t),
    /// `uv_cancel` succeeded; the after-callback will get `ECANCELED`.
    Cancelled,
    /// The after-callback ran (or is running); the request is freed.
    Finished,
}

/// A handle to work queued with [`queue_work`], to cancel it. Dropping it does not cancel the work.
///
/// It stays valid after the work completes (then [`cancel`](WorkHandle::cancel) fails with `EBUSY`). `!Send`:
/// cancellation happens on the loop thread.
#[derive(Debug)]
pub struct WorkHandle {
    stage: Rc<Cell<Stage>>,
}

impl std::fmt::Debug for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::Pending(_) => "Pending",
            Stage::Cancelled => "Cancelled",
            Stage::Finished => "Finished",
        })
    }
}

impl WorkHandle {
    /// Cancels the work if no pool thread has started it (`uv_cancel`): the work closure is then dropped
    /// unrun (on the loop thread) and `after` gets `Err(ECANCELED)` on a later loop iteration. `EBUSY` when
    /// the work is running or done. Cancelling again after a successful cancel returns `Ok`.
    pub fn cancel(&self) -> Result<()> {
        match self.stage.get() {
            Stage::Pending(req) => {
                // SAFETY: the stage is Pending, so the request is alive (the after-callback, which frees it,
                // sets Finished first); uv_cancel only inspects and requeues it under libuv's locks.
                Error::check(unsafe { sys::uv_cancel(req.cast::<sys::uv_req_t>()) })?;
                self.stage.set(Stage::Cancelled);
                Ok(())
            }
            Stage::Cancelled => Ok(()),
            Stage::Finished => Err(Error::EBUSY),
        }
    }

    /// Whether the after-callback has not run yet.
    pub fn is_pending(&self) -> bool {
        self.stage.get() != Stage::Finished
    }
}

/// The work closure, then its outcome: the one part of the request a pool thread touches.
enum Job<W, T> {
    Queued(W),
    Done(std::thread::Result<T>),
    Taken,
}

struct WorkReq<W, T, A> {
    job: Job<W, T>,
    after: Option<A>,
    stage: Rc<Cell<Stage>>,
    /// The request's entry in its loop's [`InFlight`].
    key: usize,
}

/// The work requests in flight on one loop, so that dropping the loop can finish them (see [`finish_in_flight`]).
#[derive(Default)]
pub(crate) struct InFlight(RefCell<Slab<Rc<Cell<Stage>>>>);

/// Called when the last [`Loop`] of a loop that uvio runs is dropped: a work request in flight would otherwise
/// never get its after-callback (nobody runs the loop any more), leaking the request, everything its `after`
/// owns (a `spawn_blocking` handle would wait forever) and the loop itself. So: cancel what no pool thread has
/// started (its `after` gets `ECANCELED`), and run the loop until the running work is done and every `after`
/// has run. Only a loop that is not running (not dropped from inside one of its own callbacks) can do this.
pub(crate) fn finish_in_flight(lp: &LoopInner) {
    if lp.work.0.borrow().is_empty() {
        return;
    }
    cancel_queued(lp);
    while !lp.work.0.borrow().is_empty() {
        if !lp.run_once_unowned() {
            return; // running, closed or borrowed: leak rather than free what a pool thread may use
        }
    }
}

/// Cancels the work requests no pool thread has started: their `after` gets `ECANCELED` in a later iteration.
/// The running ones are left alone (libuv cannot stop them); their `after` comes when they are done.
pub(crate) fn cancel_queued(lp: &LoopInner) {
    let stages: Vec<Rc<Cell<Stage>>> = lp.work.0.borrow().iter().map(|(_, stage)| stage.clone()).collect();
    for stage in stages {
        let _ = WorkHandle { stage }.cancel(); // EBUSY: running; its after-callback comes when it is done
    }
}

impl InFlight {
    /// How many work requests have not had their after-callback yet.
    pub(crate) fn len(&self) -> usize {
        self.0.borrow().len()
    }
}

/// Runs `work` on libuv's thread pool, then `after` on the loop thread with its result (`uv_queue_work`).
/// The pending work keeps the loop alive.
///
/// `after` gets `Ok(value)`, or `Err(ECANCELED)` if [`WorkHandle::cancel`] stopped the work before it started.
///
/// Dropping the last [`Loop`] clone with work in flight cancels the work no pool thread has started yet and
/// waits for the running work to finish, running every `after` (with `ECANCELED` for the cancelled work) before
/// the drop returns.
/// If `work` panics, the panic is caught on the pool thread, carried to the loop thread, and resumed from
/// [`Loop::run`] (like a panic in any callback); `after` is then dropped without running.
///
/// `work` and `T` must be `Send` because they cross threads; capturing an `Rc` is refused at compile time:
///
/// ```compile_fail
/// use std::rc::Rc;
/// let lp = uvio::uv::Loop::new().unwrap();
/// let rc = Rc::new(1);
/// uvio::uv::queue_work(&lp, move || *rc + 1, |_| ()).unwrap();
/// ```
///
/// ```
/// use uvio::uv::{queue_work, Loop, RunMode};
///
/// let lp = Loop::new()?;
/// queue_work(&lp, || (1..=10u64).product::<u64>(), |res| assert_eq!(res.unwrap(), 3_628_800))?;
/// lp.run(RunMode::Default)?;
/// lp.close().map_err(|e| e.error())?;
/// # Ok::<(), uvio::Error>(())
/// ```
pub fn queue_work<W, T, A>(lp: &Loop, work: W, after: A) -> Result<WorkHandle>
where
    W: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
    A: FnOnce(Result<T>) + 'static,
{
    let stage = Rc::new(Cell::new(Stage::Finished));
    let in_flight = &lp.inner().work.0;
    let key = in_flight.borrow_mut().insert(stage.clone());
    let state = WorkReq { job: Job::Queued(work), after: Some(after), stage: stage.clone(), key };
    let submitted = submit(lp.inner(), state, |l, req: *mut ReqBox<sys::uv_work_t, WorkReq<W, T, A>>| {
        // SAFETY: `req` is the live box submit made. From here the pool thread uses only `state.job` (through a
        // raw pointer) and libuv calls `on_after`, matching this box type, exactly once.
        let ret =
            unsafe { sys::uv_queue_work(l, &raw mut (*req).raw, Some(on_work::<W, T, A>), Some(on_after::<W, T, A>)) };
        if ret == 0 {
            stage.set(Stage::Pending(req.cast::<sys::uv_work_t>()));
        }
        ret
    });
    if let Err(e) = submitted {
        in_flight.borrow_mut().remove(key);
        return Err(e);
    }
    Ok(WorkHandle { stage })
}

/// Runs on a pool thread. Never unwinds: a panic is caught and stored as the job's outcome.
unsafe extern "C" fn on_work<W, T, A>(req: *mut sys::uv_work_t)
where
    W: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let boxed = req.cast::<ReqBox<sys::uv_work_t, WorkReq<W, T, A>>>();
    // SAFETY: the box is alive until `on_after`, which libuv runs only after this function returned (the
    // handoff goes through libuv's mutex, which orders our writes before the loop thread's reads). No other
    // thread touches `job` meanwhile: the loop thread only reads the request header, in `uv_cancel`.
    let job = unsafe { &mut (*boxed).state.job };
    if let Job::Queued(work) = std::mem::replace(job, Job::Taken) {
        *job = Job::Done(catch_unwind(AssertUnwindSafe(work)));
    }
}

/// Runs on the loop thread once the work finished or was cancelled.
unsafe extern "C" fn on_after<W, T, A>(req: *mut sys::uv_work_t, status: c_int)
where
    W: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
    A: FnOnce(Result<T>) + 'static,
{
    // SAFETY: libuv calls this once for the request `queue_work` submitted with this box type; the pool thread
    // is done with it.
    unsafe {
        complete::<sys::uv_work_t, WorkReq<W, T, A>>(req, |r| {
            r.state.stage.set(Stage::Finished);
            let entry = r.loop_.work.0.borrow_mut().try_remove(r.state.key);
            drop(entry);
            let job = std::mem::replace(&mut r.state.job, Job::Taken);
            let Some(after) = r.state.after.take() else { return };
            match job {
                Job::Done(Ok(value)) => after(Ok(value)),
                Job::Done(Err(payload)) => resume_from_run(after, payload),
                // Cancelled (or, in theory, another error): the work never ran; drop it here, then report.
                Job::Queued(work) => {
                    drop(work);
                    after(Err(if status < 0 { Error::from_code(status) } else { Error::ECANCELED }));
                }
                Job::Taken => after(Err(Error::ECANCELED)),
            }
        })
    }
}

/// Re-raises a pool thread's panic on the loop thread, inside `complete`'s guard, which stores it for
/// `Loop::run` to resume. `after` is dropped first, so no user destructor runs while unwinding.
fn resume_from_run<A>(after: A, payload: Box<dyn Any + Send>) -> ! {
    drop(after);
    resume_unwind(payload)
}
