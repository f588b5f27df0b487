//! [`Async`] and [`AsyncSender`]: wake a loop from any thread (`uv_async_t`).
//!
//! The one thread-safe corner of the `uv` layer. The handle itself, [`Async`], is an ordinary `!Send` handle
//! owned on the loop's thread; [`AsyncSender`] is the part that may travel. Every sender shares one
//! `Mutex<Option<pointer>>` with the handle: `send` calls `uv_async_send` under that lock, and dropping the
//! `Async` empties the slot under the same lock *before* `uv_close`, so a send either completes before the
//! close starts or finds the slot empty and returns [`Error::EBADF`]. A sender never touches freed memory.
//!
//! # Only `Send` where libuv allows it
//! Everything else in `uv` is `!Send`: a handle or loop used from two threads would race inside libuv. These
//! do not compile:
//!
//! Moving a [`Timer`](super::Timer) to another thread:
//! ```compile_fail
//! use uvio::uv::{Loop, Timer};
//!
//! let lp = Loop::new().unwrap();
//! let timer = Timer::new(&lp).unwrap();
//! std::thread::spawn(move || timer.stop().unwrap()).join().unwrap(); // Timer is not Send
//! ```
//!
//! Moving an [`Async`] (rather than its sender) to another thread:
//! ```compile_fail
//! use uvio::uv::{Async, Loop};
//!
//! let lp = Loop::new().unwrap();
//! let wakeup = Async::new(&lp, |_| {}).unwrap();
//! std::thread::spawn(move || wakeup.sender().send().unwrap()).join().unwrap(); // Async is not Send
//! ```
//!
//! Running a [`Loop`] on another thread than the one that owns it:
//! ```compile_fail
//! use uvio::uv::{Loop, RunMode};
//!
//! let lp = Loop::new().unwrap();
//! std::thread::spawn(move || lp.run(RunMode::Default).unwrap()).join().unwrap(); // Loop is not Send
//! ```
//!
//! Sharing an [`Async`] by reference with another thread:
//! ```compile_fail
//! use uvio::uv::{Async, Loop};
//!
//! let lp = Loop::new().unwrap();
//! let wakeup = Async::new(&lp, |_| {}).unwrap();
//! std::thread::scope(|s| {
//!     s.spawn(|| wakeup.sender().send().unwrap()); // Async is not Sync
//! });
//! ```
//!
//! The sender is the way: create it on the loop thread, move it anywhere.

use std::sync::{Arc, Mutex, MutexGuard};

use libuv_sys2 as sys;

use super::handle::{impl_handle, Callback, Owned};
use super::loop_::Loop;
use crate::error::{Error, Result};

type AsyncCb = dyn FnMut(&Async);

/// What lives beside the `uv_async_t`: the callback, and the slot shared with every sender.
struct AsyncState {
    cb: Callback<AsyncCb>,
    shared: Arc<Shared>,
}

/// The slot senders go through: `Some` while the handle is open, `None` from the moment its owner is dropped.
struct Shared {
    handle: Mutex<Option<SendPtr>>,
}

/// The raw handle pointer, carried across threads only inside [`Shared`]'s mutex.
struct SendPtr(*mut sys::uv_async_t);

// SAFETY: the pointer is only used for `uv_async_send`, which libuv documents as safe to call from any thread,
// and only while the mutex is held and the slot is `Some`, i.e. before `uv_close` (see `Drop for Async`), so
// the handle it points to is alive and initialised whenever another thread uses it.
unsafe impl Send for SendPtr {}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Option<SendPtr>> {
        // Nothing panics while holding the lock, but a poisoned lock still guards a valid Option: keep going.
        self.handle.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// An async handle (`uv_async_t`): its callback runs on the loop thread after an [`AsyncSender::send`] from
/// any thread. The one way to wake a loop from outside.
///
/// `Async` is the loop-side owner and is `!Send`: create it, run its loop and drop it on the loop's thread. Hand
/// [`Async::sender`]s to other threads instead. An `Async` is active from creation, so it keeps
/// [`Loop::run`] from returning until it is dropped (or [`unref`](super::Handle::unref)'d) — typically from its
/// own callback once the work it waits for is done.
///
/// # Coalescing
/// libuv coalesces sends: several sends that arrive before the callback runs produce a single callback. Treat
/// the callback as "something was sent since the last callback" and look at shared state (a queue, a counter)
/// to learn what. Everything a thread wrote before `send` is visible to the callback that follows it
/// (`uv_async_send` is a full memory fence).
///
/// # Closing
/// Dropping the `Async` closes it: from then on every sender's `send` returns `EBADF`, and a send already
/// accepted but not yet delivered is discarded (its callback does not run). A send racing with the drop is
/// serialized with it by a lock: it either completes first or sees `EBADF`.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use std::{cell::RefCell, rc::Rc};
/// use uvio::uv::{Async, Loop, RunMode};
///
/// let lp = Loop::new()?;
/// let done = Arc::new(AtomicUsize::new(0));
/// let seen = done.clone();
/// // The callback drops its own handle when the worker is done; the loop then has nothing left and returns.
/// let slot: Rc<RefCell<Option<Async>>> = Rc::default();
/// let owner = slot.clone();
/// let wakeup = Async::new(&lp, move |_| {
///     if seen.load(Ordering::SeqCst) == 1 {
///         owner.borrow_mut().take();
///     }
/// })?;
/// let sender = wakeup.sender();
/// *slot.borrow_mut() = Some(wakeup);
/// let worker = std::thread::spawn(move || {
///     done.store(1, Ordering::SeqCst); // the work
///     sender.send().unwrap();
/// });
/// lp.run(RunMode::Default)?;
/// worker.join().unwrap();
/// # Ok::<(), uvio::Error>(())
/// ```
pub struct Async {
    h: Owned<sys::uv_async_t, AsyncState>,
}

impl_handle!(Async);

impl Async {
    /// Creates an async handle on `lp` whose callback `cb` runs on the loop thread after sends (`uv_async_init`).
    ///
    /// The handle is active at once: it keeps the loop alive until dropped or unref'd. The callback may drop
    /// its own `Async` (through whatever owns it).
    pub fn new(lp: &Loop, cb: impl FnMut(&Async) + 'static) -> Result<Async> {
        let shared = Arc::new(Shared { handle: Mutex::new(None) });
        let state = AsyncState { cb: Callback::default(), shared: shared.clone() };
        state.cb.set(Box::new(cb));
        // SAFETY: `raw` points to zeroed memory inside the box that Owned::new keeps alive; `on_async` matches
        // this box type.
        let h = Owned::new(lp, state, |l, raw| unsafe { sys::uv_async_init(l, raw, Some(on_async)) })?;
        // No sender exists before this line, so nothing could have used the empty slot.
        *shared.lock() = Some(SendPtr(h.raw()));
        Ok(Async { h })
    }

    /// A thread-safe handle that wakes this `Async`. Cheap (a reference count); clone it freely. A sender made
    /// from a view of a closing handle (inside the callback that dropped it) fails every send with `EBADF`.
    pub fn sender(&self) -> AsyncSender {
        AsyncSender { shared: self.h.state().shared.clone() }
    }
}

impl Drop for Async {
    /// Invalidates every sender *before* the `Owned` field closes the handle (fields drop after this body), so
    /// no `uv_async_send` can run on a closing or freed handle.
    fn drop(&mut self) {
        *self.h.state().shared.lock() = None;
    }
}

unsafe extern "C" fn on_async(raw: *mut sys::uv_async_t) {
    // SAFETY: libuv passes the handle we initialised, alive until its close callback; the view lives for this
    // call only (and, being a view, never runs `Drop for Async`).
    let this = unsafe { Owned::view(raw, |h| Async { h }) };
    this.h.invoke(|s| &s.cb, |cb| cb(&this));
}

/// The thread-safe side of an [`Async`]: `Send + Sync + Clone`, usable from any thread, before or while the loop
/// runs.
///
/// Sends are coalesced (see [`Async`]). `send` takes a lock shared with the `Async`, so unlike the raw
/// `uv_async_send` it is not async-signal-safe: do not call it from a signal handler.
#[derive(Clone)]
pub struct AsyncSender {
    shared: Arc<Shared>,
}

impl AsyncSender {
    /// Wakes the loop and schedules the [`Async`]'s callback (`uv_async_send`). Returns `EBADF` once the
    /// `Async` has been dropped: the wakeup has nobody to go to.
    pub fn send(&self) -> Result<()> {
        let slot = self.shared.lock();
        let Some(ptr) = slot.as_ref() else {
            return Err(Error::EBADF);
        };
        // SAFETY: the slot is `Some`, so the handle is initialised and not yet closing, and it cannot start
        // closing while we hold the lock (`Drop for Async` takes it first); uv_async_send is thread-safe.
        Error::check(unsafe { sys::uv_async_send(ptr.0) }).map(drop)
    }

    /// Whether the [`Async`] is still open, i.e. whether a `send` now would be delivered. Only a hint: the
    /// `Async` may be dropped right after this returns.
    pub fn is_connected(&self) -> bool {
        self.shared.lock().is_some()
    }
}

impl std::fmt::Debug for AsyncSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncSender").field("connected", &self.is_connected()).finish()
    }
}
