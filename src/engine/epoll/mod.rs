//! The epoll engine (Linux): sockets are non-blocking `socket2::Socket`s ([`Stream`], [`Listener`]) or
//! `std::net::UdpSocket`s ([`Datagram`]), read and written with plain syscalls straight into and out of the
//! caller's buffer; readiness comes from one edge-triggered epoll set per runtime (a [`Reactor`], through mio),
//! whose fd the runtime's libuv loop watches with one `uv_poll_t`.
//!
//! - **Edge-triggered, registered once.** Each socket joins the set for reading and writing when it is made
//!   and leaves it when dropped: no `epoll_ctl` per operation, whatever the traffic. (An earlier version used
//!   one level-triggered `uv_poll_t` per socket; libuv's `uv_poll_start` removes and re-adds the fd on every
//!   interest change, and with many connections woken at once some fired again before their task ran, so the
//!   interest churned: two `epoll_ctl` per request at 1000 connections.)
//! - **Readiness flags.** A socket remembers whether it may be readable/writable: set by an edge, cleared by an
//!   `EAGAIN` (or a short read, which drained the socket). While a flag is clear the operation waits without a
//!   syscall; the next edge wakes it. Everything runs on the loop's thread, so no edge can slip between a
//!   syscall and the flag.
//! - **No user-space buffers.** A read that is dropped consumed nothing: the bytes stay in the kernel for the
//!   next read. A write is `send(2)` (`MSG_NOSIGNAL`): `Ok(n)` means the kernel has the `n` bytes, so nothing
//!   is queued here, nothing can be lost on drop, and flushing is immediate.
//! - **Close order.** A socket leaves the epoll set (`EPOLL_CTL_DEL`) before its fd closes; the reactor's
//!   `uv_poll_t` is closed before the epoll fd.

#![allow(unsafe_code)] // two calls: uv::Poll::new on the reactor's own epoll fd, and the MSG_PEEK recv of stream.rs
#![warn(clippy::undocumented_unsafe_blocks)]

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::{Rc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use super::wakers::{ReadyState, Report, Wakers};
use super::Direction;
use crate::uv::{self, PollEvents};
use mio::unix::SourceFd;
use mio::{Events, Interest, Token};
use slab::Slab;

mod datagram;
mod exclusive;
mod listener;
mod readiness;
mod stream;

pub(crate) use datagram::Datagram;
pub(crate) use listener::Listener;
pub(crate) use readiness::Readiness;
pub(crate) use stream::Stream;

/// Events taken from the epoll set per `epoll_wait` (more wait for the next call in the same callback).
const EVENTS: usize = 1024;

/// One runtime's epoll set: the sockets of this engine, and the `uv_poll_t` that tells the loop when the set
/// has events.
pub(crate) struct Reactor {
    // Field order matters: the watcher is closed before `poll` closes the epoll fd.
    watcher: uv::Poll,
    poll: RefCell<mio::Poll>,
    events: RefCell<Events>,
    sources: RefCell<Slab<Rc<ReadyState>>>,
    /// How many (socket, direction) pairs have a task waiting: the watcher keeps the loop alive only then, as a
    /// libuv stream does only while it reads or writes.
    waiting: Cell<usize>,
    /// Set when its runtime shuts down: nothing will dispatch events any more, so operations fail at once.
    gone: Cell<bool>,
    /// Shared listeners' way into libuv's own epoll set (see `exclusive.rs`), made on first use.
    exclusive: RefCell<Option<Rc<exclusive::Exclusive>>>,
}

impl Reactor {
    /// A new epoll set watched on `lp`.
    pub(crate) fn new(lp: &uv::Loop) -> io::Result<Rc<Reactor>> {
        let poll = mio::Poll::new()?;
        // SAFETY: the epoll fd stays open while the watcher exists: both end up in the reactor, whose field
        // order drops (closes) the watcher before the epoll instance.
        let watcher = unsafe { uv::Poll::new(lp, poll.as_raw_fd())? };
        let reactor = Rc::new(Reactor {
            watcher,
            poll: RefCell::new(poll),
            events: RefCell::new(Events::with_capacity(EVENTS)),
            sources: RefCell::new(Slab::new()),
            waiting: Cell::new(0),
            gone: Cell::new(false),
            exclusive: RefCell::default(),
        });
        let weak: Weak<Reactor> = Rc::downgrade(&reactor);
        reactor.watcher.start(PollEvents::READABLE, move |_, _| {
            if let Some(r) = weak.upgrade() {
                r.dispatch();
            }
        })?;
        // Only sockets with waiting tasks keep the loop alive (see `waiting`).
        uv::Handle::unref(&reactor.watcher);
        Ok(reactor)
    }

    /// Its runtime shut down: every operation of its sockets fails from now on (see `Registration::poll_io`).
    pub(crate) fn shut_down(&self) {
        self.gone.set(true);
    }

    /// Adds `fd` to the set (edge-triggered, readable and writable); the returned key removes it.
    fn register(&self, fd: RawFd, state: Rc<ReadyState>) -> io::Result<usize> {
        let key = self.sources.borrow_mut().insert(state);
        let res = self.poll.borrow().registry().register(
            &mut SourceFd(&fd),
            Token(key),
            Interest::READABLE | Interest::WRITABLE,
        );
        if let Err(e) = res {
            self.sources.borrow_mut().remove(key);
            return Err(e);
        }
        Ok(key)
    }

    /// Removes `fd` from the set, or from libuv's if it was a shared listener there (before it is closed); its
    /// waiters are dropped.
    fn deregister(&self, fd: RawFd, key: usize, exclusive: Option<&exclusive::Exclusive>) {
        match exclusive {
            Some(ex) => ex.disarm(key),
            None => {
                let _ = self.poll.borrow().registry().deregister(&mut SourceFd(&fd));
            }
        }
        let state = self.sources.borrow_mut().try_remove(key);
        if let Some(state) = state {
            for d in [Direction::Read, Direction::Write] {
                self.waiters_gone(&state.take_waiters(d));
            }
        }
    }

    /// A direction got its first waiter.
    fn waiter_added(&self) {
        if self.waiting.replace(self.waiting.get() + 1) == 0 {
            uv::Handle::ref_(&self.watcher);
        }
    }

    /// A direction's waiters were taken (woken or dropped).
    fn waiters_gone(&self, taken: &Wakers) {
        if !taken.is_empty() && self.waiting.replace(self.waiting.get() - 1) == 1 {
            uv::Handle::unref(&self.watcher);
        }
    }

    /// An event for the socket of `state`: marks what it reports and wakes who waits for it.
    fn report(&self, state: &ReadyState, read: Report, write: Report) {
        let woken = state.report(read, write);
        for taken in &woken {
            self.waiters_gone(taken);
        }
        for w in woken {
            w.wake();
        }
    }

    /// The watcher's callback: takes every pending event and wakes who waits for it.
    fn dispatch(&self) {
        loop {
            let mut events = self.events.borrow_mut();
            loop {
                match self.poll.borrow_mut().poll(&mut events, Some(Duration::ZERO)) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    // Nothing sensible to do with a failing epoll_wait here; the next callback retries.
                    _ => break,
                }
            }
            let mut n = 0;
            for ev in events.iter() {
                n += 1;
                let state = self.sources.borrow().get(ev.token().0).cloned();
                // A stale event (its socket left the set in this batch, its key maybe reused) at worst makes a
                // socket try a syscall that says EAGAIN.
                if let Some(state) = state {
                    let err = ev.is_error();
                    self.report(
                        &state,
                        Report { ready: ev.is_readable(), closed: ev.is_read_closed() || err },
                        Report { ready: ev.is_writable(), closed: ev.is_write_closed() || err },
                    );
                }
            }
            if n < EVENTS {
                return;
            }
        }
    }
}

impl Registration {
    /// Stores the task's waker for `dir`'s next edge.
    fn wait_for_edge(&self, cx: &Context<'_>, dir: Direction) {
        if self.state.add_waiter(dir, cx.waker()) {
            self.reactor.waiter_added();
        }
    }

    /// Marks `dir` not ready and waits for its next edge.
    fn wait(&self, cx: &Context<'_>, dir: Direction) {
        self.state.clear(dir);
        self.wait_for_edge(cx, dir);
    }

    /// Runs `op` (retrying while interrupted) unless `dir` is known not ready; `WouldBlock` waits for its edge.
    fn poll_io<R>(
        &self,
        cx: &Context<'_>,
        dir: Direction,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        if self.reactor.gone.get() {
            return Poll::Ready(Err(crate::error::runtime_gone()));
        }
        if !self.state.may_be_ready(dir) {
            self.wait_for_edge(cx, dir);
            return Poll::Pending;
        }
        loop {
            match op() {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.wait(cx, dir);
                    return Poll::Pending;
                }
                res => return Poll::Ready(res),
            }
        }
    }
}

/// A socket's membership in its runtime's epoll set; leaving it (on drop) comes before the fd closes, which the
/// owner guarantees by declaring this field before the socket.
struct Registration {
    reactor: Rc<Reactor>,
    /// Readiness as the set last reported it (both directions start ready: the first operations try their
    /// syscalls), and who waits for it.
    state: Rc<ReadyState>,
    key: usize,
    fd: RawFd,
    /// A shared listener: watched through libuv's epoll set while armed, never in the reactor's.
    exclusive: Option<Rc<exclusive::Exclusive>>,
}

impl Registration {
    fn new(reactor: &Rc<Reactor>, fd: RawFd) -> io::Result<Registration> {
        Registration::with_state(reactor, fd, Rc::new(ReadyState::new(true)))
    }

    fn with_state(reactor: &Rc<Reactor>, fd: RawFd, state: Rc<ReadyState>) -> io::Result<Registration> {
        let key = reactor.register(fd, state.clone())?;
        Ok(Registration { reactor: reactor.clone(), state, key, fd, exclusive: None })
    }

    /// A listening socket shared with other loops: not in the reactor's set; [`Registration::arm`] puts it in
    /// libuv's, woken exclusively, while a task waits to accept.
    fn new_exclusive(reactor: &Rc<Reactor>, lp: &uv::Loop, fd: RawFd) -> io::Result<Registration> {
        let exclusive = reactor.exclusive(lp)?;
        let state = Rc::new(ReadyState::new(true));
        let key = reactor.sources.borrow_mut().insert(state.clone());
        Ok(Registration { reactor: reactor.clone(), state, key, fd, exclusive: Some(exclusive) })
    }

    /// A shared listener's task waits: arm its exclusive wake-up (nothing to do for other sockets).
    fn arm(&self) -> io::Result<()> {
        match &self.exclusive {
            Some(ex) => ex.arm(self.key, self.fd),
            None => Ok(()),
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.reactor.deregister(self.fd, self.key, self.exclusive.as_deref());
    }
}

/// Retries `op` while it is interrupted (the `try_*` calls: `WouldBlock` is the caller's).
fn retry<R>(mut op: impl FnMut() -> io::Result<R>) -> io::Result<R> {
    loop {
        match op() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            res => return res,
        }
    }
}
