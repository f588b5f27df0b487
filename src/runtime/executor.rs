//! The executor: tasks in a slab, a ready queue, and three libuv handles that tie it to the loop.
//!
//! - a `Check` handle drains ready tasks right after each I/O poll, in batches of [`BATCH`] so a busy task set
//!   never starves I/O callbacks (what is left waits for the next iteration);
//! - an `Idle` handle is started while tasks are ready, so the loop polls without blocking;
//! - an `Async` handle carries wakeups and spawns from other threads.
//!
//! Tasks are polled inside libuv callbacks, so they run the same way under `block_on` and on a loop that a
//! host application runs itself.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::rc::{Rc, Weak};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use slab::Slab;

use super::cell::{RawTask, TaskRef};
use super::context;
use super::shared::Shared;
use super::task::{BlockingJob, JoinHandle};
use super::timers::Timers;
use crate::uv::{Async, Check, Handle as _, Idle, Loop};

/// How many tasks one check callback polls before letting the loop run I/O again.
pub(crate) const BATCH: usize = 128;

/// How many times shutdown drops the tasks that destructors spawned while it was dropping tasks, before it
/// gives up on a destructor that respawns itself forever (see [`Executor::shutdown`]).
const SHUTDOWN_ROUNDS: usize = 16;

/// A task in the slab (24 bytes): its owning reference, `None` while it is being polled (taken out so that the
/// task may spawn or wake others freely). Removing it drops the task's future.
type Slot = Option<TaskRef>;

pub(crate) struct Executor {
    pub(crate) lp: Loop,
    /// The engine for sockets and files.
    pub(crate) engine: crate::engine::Engine,
    pub(crate) shared: Arc<Shared>,
    slots: RefCell<Slab<Slot>>,
    ready: RefCell<VecDeque<Arc<dyn RawTask>>>,
    idle: Idle,
    idle_armed: Cell<bool>,
    check: Check,
    pub(crate) wakeup: Async,
    pub(crate) timers: Timers,
    /// Set while `block_on` runs this executor (nested block_on is refused).
    pub(crate) blocking: Cell<bool>,
    /// Set by the main future's waker on this thread.
    pub(crate) main_woken: Cell<bool>,
    /// Objects kept alive past their owner's drop until their I/O completes (a stream whose queued writes must
    /// still reach the kernel); released by their own completion, or at shutdown.
    lingering: RefCell<Slab<Rc<dyn std::any::Any>>>,
    /// Set when shutdown starts: tasks spawned from then on are refused (never polled) and wait in `refused`
    /// to be dropped.
    closing: Cell<bool>,
    refused: RefCell<Vec<TaskRef>>,
    /// Set when shutdown gives up on destructors that keep spawning: a spawn then forgets its future.
    forgetting: Cell<bool>,
    /// The `spawn_blocking` jobs whose result has not come back, for a shutdown that abandons them.
    pub(crate) blocking_jobs: RefCell<Slab<Arc<dyn BlockingJob>>>,
}

impl Executor {
    pub(crate) fn new(lp: Loop, engine: crate::engine::Engine) -> crate::Result<Rc<Executor>> {
        // The async callback must exist at init, before the executor it serves: it finds it through this cell.
        let target: Rc<RefCell<Weak<Executor>>> = Rc::default();
        let t = target.clone();
        let wakeup = Async::new(&lp, move |_| {
            let ex = t.borrow().upgrade();
            if let Some(ex) = ex {
                ex.adopt_remote();
            }
        })?;
        wakeup.unref(); // only block_on keeps the loop alive for remote wakeups
        let shared = Arc::new(Shared::new(wakeup.sender(), engine.backend()));
        let ex = Rc::new(Executor {
            idle: Idle::new(&lp)?,
            check: Check::new(&lp)?,
            timers: Timers::new(&lp)?,
            lp,
            engine,
            shared,
            slots: RefCell::new(Slab::new()),
            ready: RefCell::new(VecDeque::new()),
            idle_armed: Cell::new(false),
            wakeup,
            blocking: Cell::new(false),
            main_woken: Cell::new(false),
            lingering: RefCell::new(Slab::new()),
            closing: Cell::new(false),
            refused: RefCell::new(Vec::new()),
            forgetting: Cell::new(false),
            blocking_jobs: RefCell::new(Slab::new()),
        });
        *target.borrow_mut() = Rc::downgrade(&ex);
        let weak = Rc::downgrade(&ex);
        ex.check.start(move |_| {
            if let Some(ex) = weak.upgrade() {
                ex.drain();
            }
        })?;
        ex.check.unref();
        ex.timers.bind(Rc::downgrade(&ex));
        context::register(&ex);
        Ok(ex)
    }

    /// Spawns a `!Send` future on this executor.
    pub(crate) fn spawn_local<F>(&self, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        if self.forgetting.get() {
            // Never polled, so never pinned: forgetting it (leaking what it owns) is sound, and the only way to
            // stop a destructor that spawns its successor forever.
            std::mem::forget(fut);
            // A stand-in task with nothing to drop, dropped at once: its handle reports cancellation.
            let (stand_in, handle) = TaskRef::new_local(std::future::pending::<F::Output>(), self.shared.clone());
            drop(stand_in);
            return handle;
        }
        let (task, handle) = TaskRef::new_local(fut, self.shared.clone());
        if self.closing.get() {
            // Not dropped here: its destructor might spawn again, recursively. Shutdown drops it.
            self.refused.borrow_mut().push(task);
        } else {
            self.insert(task);
        }
        handle
    }

    fn insert(&self, task: TaskRef) {
        let raw = task.raw();
        let key = self.slots.borrow_mut().insert(Some(task));
        raw.header().key.store(key, Ordering::Release);
        raw.header().scheduled.store(true, Ordering::Release);
        self.push_ready(raw);
    }

    /// Queues a task to be polled and makes sure the loop will not block before that.
    pub(crate) fn push_ready(&self, task: Arc<dyn RawTask>) {
        self.ready.borrow_mut().push_back(task);
        self.arm();
    }

    /// Keeps the loop from blocking in its next poll (an active idle handle), so ready work runs promptly.
    pub(crate) fn arm(&self) {
        if !self.idle_armed.replace(true) {
            let _ = self.idle.start(|_| {});
        }
    }

    fn disarm(&self) {
        if self.idle_armed.replace(false) {
            let _ = self.idle.stop();
        }
    }

    /// Tasks spawned and not finished (refused ones aside).
    pub(crate) fn live_tasks(&self) -> usize {
        self.slots.borrow().len()
    }

    pub(crate) fn has_ready(&self) -> bool {
        !self.ready.borrow().is_empty()
    }

    /// Moves what other threads queued (wakes, spawns) onto this thread.
    pub(crate) fn adopt_remote(&self) {
        if !self.shared.take_pending() {
            return;
        }
        let (woken, injected, main) = {
            let mut remote = self.shared.lock();
            let main = std::mem::take(&mut remote.main_woken);
            (std::mem::take(&mut remote.woken), std::mem::take(&mut remote.injected), main)
        };
        if main {
            self.main_woken.set(true);
        }
        for task in woken {
            self.push_ready(task);
        }
        for task in injected {
            self.insert(task.into_local());
        }
    }

    /// Polls up to [`BATCH`] ready tasks (the check callback).
    pub(crate) fn drain(self: &Rc<Self>) {
        let _current = context::enter(self);
        self.adopt_remote();
        for _ in 0..BATCH {
            let next = self.ready.borrow_mut().pop_front();
            let Some(task) = next else { break };
            self.poll_task(task);
        }
        if self.ready.borrow().is_empty() && !self.main_woken.get() {
            self.disarm();
        }
    }

    fn poll_task(&self, woken: Arc<dyn RawTask>) {
        let key = woken.header().key.load(Ordering::Acquire);
        let taken = {
            let mut slots = self.slots.borrow_mut();
            match slots.get_mut(key) {
                // A wake of a finished task whose key was reused must not touch the new occupant.
                Some(slot) if slot.as_ref().is_some_and(|t| t.is(&woken)) => slot.take(),
                _ => None,
            }
        };
        drop(woken);
        let Some(task) = taken else { return };
        task.header().scheduled.store(false, Ordering::Release);
        if task.header().aborted.load(Ordering::Acquire) {
            self.slots.borrow_mut().remove(key);
            drop(task); // drops the future; the join handle reports cancellation
            return;
        }
        let finished = super::coop::budgeted(|| task.poll());
        // The task may have shut the runtime down (dropping a runtime on a host's loop from inside its own task):
        // its slot is gone then, and the task is dropped now that its poll has returned.
        if finished || self.closing.get() {
            let slot = self.slots.borrow_mut().try_remove(key);
            drop((slot, task));
        } else {
            self.slots.borrow_mut()[key] = Some(task);
        }
    }

    /// Drops the executor's own handles and gives back its loop (for `Runtime::close`).
    pub(crate) fn into_loop(self) -> Loop {
        let Executor { lp, .. } = self;
        lp
    }

    /// Keeps `obj` alive until [`unlinger`](Self::unlinger) is called with the returned key, or shutdown.
    pub(crate) fn linger(&self, obj: Rc<dyn std::any::Any>) -> usize {
        self.lingering.borrow_mut().insert(obj)
    }

    /// Releases what [`linger`](Self::linger) kept (dropped outside the registry's borrow).
    pub(crate) fn unlinger(&self, key: usize) {
        let obj = self.lingering.borrow_mut().try_remove(key);
        drop(obj);
    }

    /// Drops every task (their join handles report cancellation) and refuses new ones. Runs at runtime drop.
    ///
    /// A task spawned from here on (by a destructor of a task being dropped) is refused: never polled, its
    /// future dropped by this function and its handle cancelled. Those destructors may spawn again, so this
    /// drops refused tasks in at most [`SHUTDOWN_ROUNDS`] rounds; after that, a spawn forgets its future (leaks
    /// it, never dropped) so that a destructor that respawns itself forever cannot keep shutdown from ending.
    pub(crate) fn shutdown(self: &Rc<Self>) {
        let _current = context::enter(self);
        self.closing.set(true);
        self.lp.inner().runtime_gone.set(true);
        self.engine.shut_down();
        // Dropping a task's future tells its join handle that it was cancelled.
        drop(self.shared.close());
        let slots: Vec<Slot> = self.slots.borrow_mut().drain().collect();
        drop(slots);
        for _ in 0..SHUTDOWN_ROUNDS {
            let refused = std::mem::take(&mut *self.refused.borrow_mut());
            if refused.is_empty() {
                break;
            }
            drop(refused);
        }
        let endless = std::mem::take(&mut *self.refused.borrow_mut());
        if !endless.is_empty() {
            log::warn!(target: "uvio", "runtime shutdown: destructors keep spawning tasks; leaking what they spawn");
            self.forgetting.set(true);
            drop(endless);
        }
        self.ready.borrow_mut().clear();
        self.disarm();
        self.timers.clear();
        let lingering: Vec<_> = self.lingering.borrow_mut().drain().collect();
        drop(lingering);
        self.engine.drop_lingering();
        context::unregister(&self.shared);
    }
}
