//! Thread-local bookkeeping: which runtimes live on this thread (so wakes from their own thread skip the lock),
//! and which one is *current* (the target of `spawn_local`, `time::sleep`, …).

use std::cell::RefCell;
use std::rc::{Rc, Weak};
use std::sync::Arc;

use super::cell::RawTask;
use super::executor::Executor;
use super::shared::Shared;

thread_local! {
    /// Every executor created on this thread and not yet dropped.
    static LOCAL: RefCell<Vec<Weak<Executor>>> = const { RefCell::new(Vec::new()) };
    /// The executors entered (block_on, task polling, `Runtime::enter`), innermost last.
    static CURRENT: RefCell<Vec<Rc<Executor>>> = const { RefCell::new(Vec::new()) };
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
    let entered = CURRENT.try_with(|c| c.borrow().last().filter(|ex| Arc::ptr_eq(&ex.shared, shared)).cloned());
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
    CURRENT.with(|c| c.borrow_mut().push(ex.clone()));
    EnterGuard { _not_send: std::marker::PhantomData }
}

/// Leaves the runtime entered by [`enter`].
pub(crate) struct EnterGuard {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let _ = CURRENT.try_with(|c| c.borrow_mut().pop());
    }
}

/// The current executor, if any.
pub(crate) fn try_current() -> Option<Rc<Executor>> {
    CURRENT.try_with(|c| c.borrow().last().cloned()).ok().flatten()
}

/// The current executor; panics outside a runtime, like tokio.
pub(crate) fn current() -> Rc<Executor> {
    try_current()
        .expect("this function must be called from within a uvio runtime (block_on, a task, or Runtime::enter)")
}

/// Whether any runtime's `block_on` is running on this thread.
pub(crate) fn in_block_on() -> bool {
    CURRENT.try_with(|c| c.borrow().iter().any(|ex| ex.blocking.get())).unwrap_or(false)
}
