//! What the engines' readiness code shares: [`Wakers`], the tasks waiting for one direction of one descriptor,
//! and (Unix) `ReadyState`, a descriptor's readiness per direction with its waiters.

#[cfg(unix)]
use std::cell::{Cell, RefCell};
use std::task::Waker;

#[cfg(unix)]
use super::Direction;

/// The tasks waiting for one direction (or one side of a libuv UDP socket). Usually one task (no allocation);
/// several tasks sharing a socket (a UDP socket in an `Rc`, an `AsyncFd` shared by reference) all get woken and
/// retry their syscall.
#[derive(Default)]
pub(crate) struct Wakers {
    first: Option<Waker>,
    more: Vec<Waker>,
}

impl Wakers {
    /// Adds `waker` (once); `true` if the set was empty.
    pub(crate) fn register(&mut self, waker: &Waker) -> bool {
        match &self.first {
            None => {
                self.first = Some(waker.clone());
                return true;
            }
            Some(w) if w.will_wake(waker) => {}
            Some(_) if self.more.iter().any(|w| w.will_wake(waker)) => {}
            Some(_) => self.more.push(waker.clone()),
        }
        false
    }

    /// Whether no task waits (asked by the readiness code, Unix only).
    #[cfg(unix)]
    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    /// Empties the set, handing out what it held (woken by the caller once no borrow is held).
    pub(crate) fn take(&mut self) -> Wakers {
        Wakers { first: self.first.take(), more: std::mem::take(&mut self.more) }
    }

    /// Wakes every task the set held.
    pub(crate) fn wake(self) {
        if let Some(w) = self.first {
            w.wake();
        }
        for w in self.more {
            w.wake();
        }
    }
}

/// What an engine reported for one direction of a descriptor: it became ready, or closed (hang-up, error: the
/// next syscall says which), which makes it ready for good.
#[cfg(unix)]
#[derive(Clone, Copy, Default)]
pub(crate) struct Report {
    pub(crate) ready: bool,
    pub(crate) closed: bool,
}

/// One descriptor's readiness as its engine last reported it, and the tasks waiting for each direction: the
/// state the libuv engine's `uv_poll_t` readiness and the epoll engine's sockets share (indexed by
/// [`Direction`]).
///
/// A direction is ready from an event until the user clears it (after `WouldBlock`), or for good once it is
/// closed: no further event comes for a closed direction, and a read that returns data before the end of the
/// stream must not make the next read wait for one (tokio keeps its closed bits the same way).
#[cfg(unix)]
pub(crate) struct ReadyState {
    ready: [Cell<bool>; 2],
    closed: [Cell<bool>; 2],
    waiting: [RefCell<Wakers>; 2],
}

#[cfg(unix)]
impl ReadyState {
    /// Both directions ready (`true`: the first operations try their syscalls), or waiting for a first event.
    pub(crate) fn new(ready: bool) -> ReadyState {
        ReadyState {
            ready: [Cell::new(ready), Cell::new(ready)],
            closed: Default::default(),
            waiting: Default::default(),
        }
    }

    /// Whether an operation in direction `d` should try its syscall: reported ready and not cleared since, or
    /// closed.
    pub(crate) fn may_be_ready(&self, d: Direction) -> bool {
        self.ready[d as usize].get() || self.closed[d as usize].get()
    }

    /// Forgets that `d` was ready (the user saw `WouldBlock`): the next operation waits for an event.
    pub(crate) fn clear(&self, d: Direction) {
        self.ready[d as usize].set(false);
    }

    /// Adds the task of `waker` to those waiting for `d` (once); `true` if it is the first.
    pub(crate) fn add_waiter(&self, d: Direction, waker: &Waker) -> bool {
        self.waiting[d as usize].borrow_mut().register(waker)
    }

    /// Whether some task waits for `d`.
    pub(crate) fn has_waiters(&self, d: Direction) -> bool {
        !self.waiting[d as usize].borrow().is_empty()
    }

    /// Takes the tasks waiting for `d` (to wake them, or to drop them when the descriptor goes).
    pub(crate) fn take_waiters(&self, d: Direction) -> Wakers {
        self.waiting[d as usize].borrow_mut().take()
    }

    /// An event: marks what `read` and `write` report, and takes the waiters of each direction it made ready
    /// (indexed by [`Direction`]; empty for the others), for the caller to wake once its own bookkeeping is
    /// done and no borrow is held.
    pub(crate) fn report(&self, read: Report, write: Report) -> [Wakers; 2] {
        [(Direction::Read, read), (Direction::Write, write)].map(|(d, r)| {
            let i = d as usize;
            self.closed[i].set(self.closed[i].get() || r.closed);
            if !(r.ready || r.closed) {
                return Wakers::default();
            }
            self.ready[i].set(true);
            self.take_waiters(d)
        })
    }
}
