//! Thread-local bookkeeping: which runtimes live on this thread (so wakes from their own thread skip the lock),
//! and which one is *current* (the target of `spawn_local`, `time::sleep`, …).

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::sync::Arc;

use super::cell::RawTask;
use super::executor::Executor;
use super::shared::Shared;

thread_local! {
    /// Every executor created on this thread and not yet dropped.
    static LOCAL: RefCell<Vec<Weak<Executor>>> = const { RefCell::new(Vec::new()) };
    /// The executors entered (block_on, task polling, `Runtime::enter`), innermost last, each with the id of the
    /// guard that entered it.
    static CURRENT: RefCell<Vec<(Rc<Executor>, u64)>> = const { RefCell::new(Vec::new()) };
    /// The id of the next [`EnterGuard`].
    static NEXT_GUARD: Cell<u64> = const { Cell::new(0) };
}

pub(crate) fn register(ex: &Rc<Executor>) {
    LOCAL.with(|l| l.borrow_mut().push(Rc::downgrade(ex)));
}

pub(crate) fn unregister(shared: &Arc<Shared>) {
    let _ =
        LOCAL.try_with(|l| l.borrow_mut().retain(|w| w.upgrade().is_some_and(|ex| !Arc::ptr_eq(&ex.shared, shared))));
}

/// The live executor on this thread that owns `shared`, if this is its thread.
pub(crate) fn local_executor(shared: &Arc<Shared>) -> Option<Rc<Executor>> {
    LOCAL
        .try_with(|l| l.borrow().iter().filter_map(Weak::upgrade).find(|ex| Arc::ptr_eq(&ex.shared, shared)))
        .ok()
        .flatten()
}

/// Pushes a woken task onto its executor's local queue if that executor lives on this thread.
pub(crate) fn push_local(shared: &Arc<Shared>, task: Arc<dyn RawTask>) -> Result<(), Arc<dyn RawTask>> {
    // Fast path: the innermost entered runtime (wakes from its own tasks and I/O callbacks); else the registry.
    let entered =
        CURRENT.try_with(|c| c.borrow().last().map(|(ex, _)| ex).filter(|ex| Arc::ptr_eq(&ex.shared, shared)).cloned());
    match entered.ok().flatten().or_else(|| local_executor(shared)) {
        Some(ex) => {
            ex.push_ready(task);
            Ok(())
        }
        None => Err(task),
    }
}

/// Makes `ex` current until the guard drops.
pub(crate) fn enter(ex: &Rc<Executor>) -> EnterGuard {
    let id = NEXT_GUARD.with(|n| n.replace(n.get() + 1));
    CURRENT.with(|c| c.borrow_mut().push((ex.clone(), id)));
    EnterGuard { id, _not_send: std::marker::PhantomData }
}

/// Leaves the runtime entered by [`enter`]. Guards must be dropped innermost first.
pub(crate) struct EnterGuard {
    id: u64,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        // Leave this guard's entry wherever it is, so that the runtimes entered stay exactly the live guards'.
        let innermost = CURRENT
            .try_with(|c| {
                let mut c = c.borrow_mut();
                let at = c.iter().rposition(|&(_, id)| id == self.id);
                let innermost = at.is_none_or(|at| at + 1 == c.len());
                let left = at.map(|at| c.remove(at));
                (innermost, left)
            })
            .map(|(innermost, left)| {
                drop(left); // outside the borrow: it may be the executor's last reference
                innermost
            })
            .unwrap_or(true);
        // Out of order, a later `spawn_local` would silently go to another runtime than the caller thinks: a
        // programming error, reported as tokio does (unless this thread is already unwinding).
        if !innermost && !std::thread::panicking() {
            panic!(
                "uvio::EnterGuard dropped out of order: guards from Runtime::enter must be dropped in the \
                 reverse order of their creation (innermost first)"
            );
        }
    }
}

/// The current executor, if any.
pub(crate) fn try_current() -> Option<Rc<Executor>> {
    CURRENT.try_with(|c| c.borrow().last().map(|(ex, _)| ex.clone())).ok().flatten()
}

/// The current executor; panics outside a runtime, like tokio.
pub(crate) fn current() -> Rc<Executor> {
    try_current()
        .expect("this function must be called from within a uvio runtime (block_on, a task, or Runtime::enter)")
}

/// Whether any runtime's `block_on` is running on this thread.
pub(crate) fn in_block_on() -> bool {
    CURRENT.try_with(|c| c.borrow().iter().any(|(ex, _)| ex.blocking.get())).unwrap_or(false)
}
