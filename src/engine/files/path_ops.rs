//! The loop side of the path pool ([`super::pool`]): one [`PathOps`] per runtime, made on first use.
//!
//! A call takes a slot in a slab (its key goes with the job), queues the job and returns a future that polls
//! the slot. The runtime's [`Async`] runs when a batch of completions is ready: it takes the whole batch from
//! the [`Port`] and fills the slots, waking their futures. A future dropped before its completion leaves its
//! slot abandoned: the job still runs (it owns its path), and its outcome is dropped when it arrives. Nothing
//! per call is allocated but the job's path and its place in the queue.
//!
//! The `Async` is referenced (keeps the loop alive) only while jobs are in flight, so a host's loop ends when
//! its work does. At shutdown it is closed: pending futures then fail with "runtime gone", and the results of
//! jobs still running are dropped by the worker with the last reference to the port.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use slab::Slab;

use super::pool::{self, Done, Job, Op, Outcome, Port};
use crate::uv::fs::Stat;
use crate::uv::{Async, Handle as _, Loop};

/// Where one call stands.
enum Slot {
    /// Queued or running; the waker of the future that waits for it.
    Waiting(Option<Waker>),
    /// Completed, not yet seen by its future.
    Done(Outcome),
    /// Its future was dropped: the slot is freed when the outcome arrives.
    Abandoned,
}

/// What the futures and the `Async`'s callback share.
struct Slots {
    slots: RefCell<Slab<Slot>>,
    /// The batch being processed: its capacity is reused.
    batch: RefCell<Vec<Done>>,
    port: Arc<Port>,
    /// Jobs queued and not yet completed (abandoned ones included).
    in_flight: Cell<usize>,
    /// The runtime shut down: nothing will complete any more.
    gone: Cell<bool>,
}

/// A runtime's path operations on the path pool.
pub(crate) struct PathOps {
    slots: Rc<Slots>,
    /// Closed at shutdown (`None` from then on).
    wakeup: RefCell<Option<Async>>,
}

impl PathOps {
    /// The path operations of the runtime that runs `lp`: an unreferenced `Async` on it.
    pub(crate) fn new(lp: &Loop) -> crate::Result<PathOps> {
        let cell: Rc<std::cell::OnceCell<Rc<Slots>>> = Rc::default();
        let seen = cell.clone();
        let wakeup = Async::new(lp, move |wakeup| {
            if let Some(slots) = seen.get() {
                slots.complete(wakeup);
            }
        })?;
        wakeup.unref();
        let slots = Rc::new(Slots {
            slots: RefCell::new(Slab::new()),
            batch: RefCell::new(Vec::new()),
            port: Arc::new(Port::new(wakeup.sender())),
            in_flight: Cell::new(0),
            gone: Cell::new(false),
        });
        let _ = cell.set(slots.clone());
        Ok(PathOps { slots, wakeup: RefCell::new(Some(wakeup)) })
    }

    /// The runtime shuts down: closes the `Async` (its close callback is delivered by the loop's next run) and
    /// wakes every waiting future, which then fails.
    pub(crate) fn shut_down(&self) {
        self.slots.gone.set(true);
        drop(self.wakeup.borrow_mut().take());
        let wakers: Vec<Waker> = self
            .slots
            .slots
            .borrow_mut()
            .iter_mut()
            .filter_map(|(_, slot)| match slot {
                Slot::Waiting(w) => w.take(),
                _ => None,
            })
            .collect();
        wakers.into_iter().for_each(Waker::wake);
    }

    /// The metadata of `path`, following a final symbolic link if `follow`. `None` when the pool cannot take
    /// the call (it has no thread and cannot start one, or the runtime is gone): the caller takes another way.
    pub(crate) fn stat(&self, path: &Path, follow: bool) -> Option<io::Result<StatFuture>> {
        let path = match c_path(path) {
            Ok(path) => path,
            Err(e) => return Some(Err(e)),
        };
        let wakeup = self.wakeup.borrow();
        let wakeup = wakeup.as_ref()?;
        let key = self.slots.slots.borrow_mut().insert(Slot::Waiting(None));
        let job = Job { op: Op::Stat { path, follow }, key, port: self.slots.port.clone() };
        if pool::submit(job).is_err() {
            self.slots.slots.borrow_mut().remove(key);
            return None;
        }
        let in_flight = self.slots.in_flight.get();
        if in_flight == 0 {
            wakeup.ref_(); // an operation in flight keeps the loop alive, as a libuv request does
        }
        self.slots.in_flight.set(in_flight + 1);
        Some(Ok(StatFuture { slots: self.slots.clone(), key, finished: false }))
    }
}

impl Slots {
    /// The `Async`'s callback: takes the batch of completions and hands each to its slot.
    fn complete(&self, wakeup: &Async) {
        let mut batch = std::mem::take(&mut *self.batch.borrow_mut());
        self.port.take(&mut batch);
        let count = batch.len();
        for (key, outcome) in batch.drain(..) {
            // Woken outside the borrow: a waker may run arbitrary code.
            let waker = {
                let mut slots = self.slots.borrow_mut();
                match slots.get_mut(key) {
                    Some(slot @ Slot::Waiting(_)) => match std::mem::replace(slot, Slot::Done(outcome)) {
                        Slot::Waiting(waker) => waker,
                        _ => None,
                    },
                    Some(Slot::Abandoned) => {
                        slots.remove(key);
                        None
                    }
                    _ => None,
                }
            };
            if let Some(waker) = waker {
                waker.wake();
            }
        }
        *self.batch.borrow_mut() = batch;
        let left = self.in_flight.get().saturating_sub(count);
        self.in_flight.set(left);
        if left == 0 && count > 0 {
            wakeup.unref();
        }
    }
}

/// The path as the syscall takes it; a NUL byte inside is `InvalidInput` (`EINVAL`), as libuv reports it.
fn c_path(path: &Path) -> io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// The future of one [`PathOps::stat`].
pub(crate) struct StatFuture {
    slots: Rc<Slots>,
    key: usize,
    /// The outcome was taken (the slot is free).
    finished: bool,
}

impl Future for StatFuture {
    type Output = io::Result<Stat>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<Stat>> {
        let this = &mut *self;
        if this.finished {
            return Poll::Ready(Err(io::Error::other("path operation polled after completion")));
        }
        let mut slots = this.slots.slots.borrow_mut();
        match &mut slots[this.key] {
            Slot::Done(_) => {
                let Slot::Done(outcome) = slots.remove(this.key) else { unreachable!("matched above") };
                this.finished = true;
                Poll::Ready(outcome.map_err(io::Error::from_raw_os_error))
            }
            Slot::Waiting(_) if this.slots.gone.get() => {
                slots[this.key] = Slot::Abandoned;
                this.finished = true;
                Poll::Ready(Err(crate::error::runtime_gone()))
            }
            Slot::Waiting(waker) => {
                match waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => *waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
            Slot::Abandoned => unreachable!("only a dropped future abandons its slot"),
        }
    }
}

impl Drop for StatFuture {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let mut slots = self.slots.slots.borrow_mut();
        match slots.get(self.key) {
            Some(Slot::Done(_)) => drop(slots.remove(self.key)),
            Some(Slot::Waiting(_)) => slots[self.key] = Slot::Abandoned,
            _ => {}
        }
    }
}
