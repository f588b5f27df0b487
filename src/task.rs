//! Tasks: spawning, joining (one by one, or as a set), aborting, yielding, and blocking work on libuv's thread
//! pool.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

mod join_set;

pub use crate::runtime::{spawn, spawn_local, AbortHandle, JoinError, JoinHandle};
pub use join_set::JoinSet;

/// Yields to the executor once, letting other ready tasks and I/O run.
pub async fn yield_now() {
    struct YieldNow(bool);
    impl Future for YieldNow {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                return Poll::Ready(());
            }
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
    YieldNow(false).await
}

/// Runs the blocking closure `f` on libuv's thread pool and awaits its result (`uv_queue_work`). A panic in
/// `f` becomes a [`JoinError`]. The pool is shared with libuv's fs and DNS requests; its size is set by
/// the `UV_THREADPOOL_SIZE` environment variable (default 4) before the first use.
///
/// ```
/// let sum = uvio::block_on(async { uvio::task::spawn_blocking(|| (1..=10).sum::<u32>()).await.unwrap() });
/// assert_eq!(sum, 55);
/// ```
pub fn spawn_blocking<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    crate::runtime::spawn_blocking(f)
}
