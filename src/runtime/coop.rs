//! Cooperative scheduling: a task that always finds its sockets ready must still let the others run.
//!
//! On the readiness engines a read tries the syscall first, so a task reading from a peer that sends faster
//! than it reads never sees `Pending`: without a limit it would keep the runtime's only thread to itself —
//! other tasks, timers and the loop's own I/O would wait until the peer paused. As in tokio, every poll of a
//! task (and of `block_on`'s future) gets a budget of [`BUDGET`] socket operations; an operation that finds
//! the budget spent wakes its task and returns `Pending` instead of doing anything, so the task goes to the
//! back of the ready queue. Nothing is lost: the operation had not started. Outside a runtime's poll (a
//! future polled by hand) there is no budget.

use std::cell::Cell;
use std::task::{Context, Poll};

/// Socket operations one poll of a task may do before it must yield (tokio's figure).
const BUDGET: u8 = 128;

thread_local! {
    /// What the task being polled on this thread may still do; `None` outside a runtime's poll.
    static LEFT: Cell<Option<u8>> = const { Cell::new(None) };
}

/// Runs one poll of a task with a fresh budget (restoring the outer one: polls may nest, `block_on` inside a
/// host callback for instance).
pub(crate) fn budgeted<R>(poll: impl FnOnce() -> R) -> R {
    struct Restore(Option<u8>);
    impl Drop for Restore {
        fn drop(&mut self) {
            LEFT.with(|left| left.set(self.0));
        }
    }
    let _restore = Restore(LEFT.with(|left| left.replace(Some(BUDGET))));
    poll()
}

/// Spends one unit of the current task's budget: `Pending` (with the task woken, so it runs again after the
/// others) once it is spent.
pub(crate) fn poll_proceed(cx: &mut Context<'_>) -> Poll<()> {
    LEFT.with(|left| match left.get() {
        Some(0) => {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
        Some(n) => {
            left.set(Some(n - 1));
            Poll::Ready(())
        }
        None => Poll::Ready(()),
    })
}
