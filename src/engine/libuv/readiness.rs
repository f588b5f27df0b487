//! The libuv engine's readiness role (`AsyncFd`, Unix): a `uv_poll_t` on the descriptor, armed only while a
//! task waits.

#![allow(unsafe_code)] // one call: uv::Poll::new on the duplicate this type owns
#![warn(clippy::undocumented_unsafe_blocks)]

use std::cell::Cell;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::rc::{Rc, Weak};
use std::task::{Context, Poll};

use super::Lingering;
use crate::engine::wakers::{ReadyState, Report};
use crate::engine::Direction;
use crate::uv::{self, PollEvents};

/// A descriptor's readiness from a `uv_poll_t`, kept until the user clears it.
///
/// - **Armed only while a task waits.** libuv's poll is level-triggered: armed while nobody waits it would fire
///   at every loop iteration (and keep the loop alive). A task that finds its direction not ready arms the
///   watcher for the directions with waiters; an event marks them ready, wakes their tasks, and re-arms for
///   what is still awaited (nothing: stopped).
/// - **A duplicate is watched.** The `uv_poll_t` watches a duplicate of the descriptor (`F_DUPFD_CLOEXEC`),
///   owned here and closed only after the watcher: whatever the owner does with its own descriptor (close it,
///   replace it), libuv never sees a number that was closed or reused (which aborts it on Linux).
pub(crate) struct Readiness {
    // Field order matters: the watcher is closed (it leaves libuv's epoll set at once) before `_fd` closes.
    poll: uv::Poll,
    state: Rc<State>,
    lingering: Weak<Lingering>,
    _fd: OwnedFd,
}

/// The readiness flags and waiters, and what the watcher is armed for.
struct State {
    ready: ReadyState,
    /// The events the watcher is started for (empty: stopped).
    armed: Cell<PollEvents>,
}

impl State {
    /// The events to watch: the directions some task waits for.
    fn wanted(&self) -> PollEvents {
        let mut events = PollEvents::EMPTY;
        if self.ready.has_waiters(Direction::Read) {
            events |= PollEvents::READABLE | PollEvents::DISCONNECT;
        }
        if self.ready.has_waiters(Direction::Write) {
            events |= PollEvents::WRITABLE;
        }
        events
    }

    /// Starts, changes or stops `poll` to watch what [`wanted`](Self::wanted) says, when that changed.
    fn arm(&self, poll: &uv::Poll) -> io::Result<()> {
        let wanted = self.wanted();
        if wanted == self.armed.get() {
            return Ok(());
        }
        match wanted.is_empty() {
            true => poll.stop()?,
            false => poll.restart(wanted)?,
        }
        self.armed.set(wanted);
        Ok(())
    }

    /// The watcher's callback: marks what is ready, wakes who waits for it, re-arms for the rest.
    fn on_event(&self, poll: &uv::Poll, res: crate::Result<PollEvents>) {
        let (read, write) = match res {
            Ok(ev) => (
                Report { ready: ev.contains(PollEvents::READABLE), closed: ev.contains(PollEvents::DISCONNECT) },
                Report { ready: ev.contains(PollEvents::WRITABLE), closed: false },
            ),
            // The descriptor is in error: the next syscalls say which. No more events come from the watcher.
            Err(_) => (Report { ready: true, closed: true }, Report { ready: true, closed: true }),
        };
        let woken = self.ready.report(read, write);
        // Stopping cannot fail, nor can restarting an open watcher with known events: nothing to handle.
        let _ = self.arm(poll);
        for w in woken {
            w.wake();
        }
    }
}

impl Readiness {
    /// Watches (a duplicate of) `fd` on `lp`, made non-blocking; nothing is ready until libuv reports it.
    pub(crate) fn new(lp: &uv::Loop, fd: BorrowedFd<'_>, lingering: &Rc<Lingering>) -> io::Result<Readiness> {
        let fd = fd.try_clone_to_owned()?;
        // SAFETY: `fd` is owned by the Readiness this watcher goes into, whose field order drops (closes) the
        // watcher before the descriptor.
        let poll = unsafe { uv::Poll::new(lp, fd.as_raw_fd())? };
        let state = Rc::new(State { ready: ReadyState::new(false), armed: Cell::new(PollEvents::EMPTY) });
        let weak = Rc::downgrade(&state);
        // Started with no events: this only gives the watcher its callback (it stays stopped).
        poll.start(PollEvents::EMPTY, move |p, res| {
            if let Some(state) = weak.upgrade() {
                state.on_event(p, res);
            }
        })?;
        Ok(Readiness { poll, state, lingering: Rc::downgrade(lingering), _fd: fd })
    }

    /// Ready when the direction's last event was not cleared, or it is closed; else the task waits (and the
    /// watcher is armed for it).
    pub(crate) fn poll_ready(&self, cx: &Context<'_>, d: Direction) -> Poll<io::Result<()>> {
        if Lingering::is_gone(&self.lingering) {
            return Poll::Ready(Err(crate::error::runtime_gone()));
        }
        if self.state.ready.may_be_ready(d) {
            return Poll::Ready(Ok(()));
        }
        self.state.ready.add_waiter(d, cx.waker());
        if let Err(e) = self.state.arm(&self.poll) {
            self.state.ready.take_waiters(d);
            return Poll::Ready(Err(e));
        }
        Poll::Pending
    }

    /// Forgets the direction's readiness (the user saw `WouldBlock`); the next wait arms the level-triggered
    /// watcher, which reports the descriptor's state then, so no readiness can be lost in between.
    pub(crate) fn clear(&self, d: Direction) {
        self.state.ready.clear(d);
    }
}
