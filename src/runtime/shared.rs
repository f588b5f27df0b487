//! The `Send + Sync` part of a runtime: its remote queue and the `uv_async_t` that wakes its loop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::cell::{RawTask, RemoteTask};
use super::context;
use crate::uv::AsyncSender;

#[derive(Default)]
pub(crate) struct Remote {
    /// Tasks woken from other threads.
    pub(crate) woken: Vec<Arc<dyn RawTask>>,
    /// Tasks spawned from other threads.
    pub(crate) injected: Vec<RemoteTask>,
    /// Whether the main future of `block_on` was woken from another thread.
    pub(crate) main_woken: bool,
    /// Set when the runtime shuts down: nothing is accepted any more.
    pub(crate) closed: bool,
}

pub(crate) struct Shared {
    remote: Mutex<Remote>,
    /// Set whenever something is put in `remote`, so the loop thread skips the lock when nothing came.
    remote_pending: AtomicBool,
    sender: AsyncSender,
    /// The runtime's engine, for `Handle::backend` (fixed at creation).
    pub(crate) backend: crate::Backend,
}

impl Shared {
    pub(crate) fn new(sender: AsyncSender, backend: crate::Backend) -> Shared {
        Shared { remote: Mutex::new(Remote::default()), remote_pending: AtomicBool::new(false), sender, backend }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Remote> {
        self.remote.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a woken task: directly on the local ready queue when called on the runtime's own thread,
    /// else through the remote queue and a loop wakeup.
    pub(crate) fn schedule(self: &Arc<Self>, task: Arc<dyn RawTask>) {
        let task = match context::push_local(self, task) {
            Ok(()) => return,
            Err(task) => task,
        };
        let mut remote = self.lock();
        if remote.closed {
            return;
        }
        remote.woken.push(task);
        self.remote_pending.store(true, Ordering::Release);
        drop(remote);
        let _ = self.sender.send();
    }

    /// Hands a task spawned on another thread to the loop; if the runtime is gone, the task is cancelled.
    pub(crate) fn inject(&self, task: RemoteTask) {
        let mut remote = self.lock();
        if remote.closed {
            drop(remote);
            drop(task); // its join handle reports cancellation
            return;
        }
        remote.injected.push(task);
        self.remote_pending.store(true, Ordering::Release);
        drop(remote);
        let _ = self.sender.send();
    }

    /// Wakes `block_on`'s main future from another thread.
    pub(crate) fn wake_main_remote(&self) {
        self.lock().main_woken = true;
        self.remote_pending.store(true, Ordering::Release);
        let _ = self.sender.send();
    }

    /// Whether other threads queued anything since the last [`take_pending`](Self::take_pending) (clears it).
    pub(crate) fn take_pending(&self) -> bool {
        self.remote_pending.load(Ordering::Acquire) && self.remote_pending.swap(false, Ordering::AcqRel)
    }

    /// Refuses further work and cancels what was queued (runtime shutdown).
    pub(crate) fn close(&self) -> Vec<RemoteTask> {
        let mut remote = self.lock();
        remote.closed = true;
        // Wakes are only references: their tasks' futures are dropped by their executor.
        remote.woken.clear();
        std::mem::take(&mut remote.injected)
    }
}
