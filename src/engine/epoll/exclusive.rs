//! Listening sockets that several loops accept from (the server's shared listener), woken one loop at a time.
//!
//! A socket in the reactor's own epoll set is nested: the loop thread sleeps in libuv's `epoll_wait`, not in
//! ours, and the kernel's `EPOLLEXCLUSIVE` stops waking further epoll sets only once it has woken one with a
//! thread asleep in it. Nested, every set looks awake-less, so every loop would still wake (measured: as many
//! empty wake-ups with the flag as without). So a shared listener goes into *libuv's* epoll set, with
//! `EPOLLIN | EPOLLEXCLUSIVE`, under the descriptor number of an alias that libuv watches (an unbound Unix
//! datagram socket nobody writes to): libuv hands the event to the alias's `uv_poll_t`, whose callback wakes
//! the listeners armed here. libuv itself never sees the listener's number, so it never `EPOLL_CTL_MOD`s it
//! (which `EPOLLEXCLUSIVE` forbids).
//!
//! A listener is armed (`EPOLL_CTL_ADD`) only while a task waits to accept, and disarmed (`EPOLL_CTL_DEL`) when
//! it fires: level-triggered, so a loop that stops accepting cannot spin on a full queue, and each re-arm puts
//! the loop at the back of the socket's wait queue, so idle loops take turns rather than the first one taking
//! every connection.

#![allow(unsafe_code)] // epoll_ctl on libuv's epoll fd; uv::Poll::new on the alias
#![warn(clippy::undocumented_unsafe_blocks)]

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::rc::{Rc, Weak};

use super::Reactor;
use crate::engine::wakers::Report;
use crate::uv::{self, PollEvents};

/// The reactor's door into libuv's epoll set for shared listeners.
pub(super) struct Exclusive {
    // Field order matters: the watcher is closed before the alias it watches.
    _watcher: uv::Poll,
    alias: UnixDatagram,
    /// libuv's epoll fd (open as long as the loop, which outlives the reactor).
    backend: RawFd,
    /// The listeners in libuv's set now: (the reactor's key of their state, their fd).
    armed: RefCell<Vec<(usize, RawFd)>>,
}

impl Exclusive {
    pub(super) fn new(lp: &uv::Loop, reactor: Weak<Reactor>) -> io::Result<Exclusive> {
        let backend = lp.backend_fd().ok_or_else(|| io::Error::from(io::ErrorKind::Unsupported))?;
        let alias = UnixDatagram::unbound()?;
        // SAFETY: the alias stays open while the watcher exists: both end up in this value, whose field order
        // closes the watcher first.
        let watcher = unsafe { uv::Poll::new(lp, alias.as_raw_fd())? };
        watcher.start(PollEvents::READABLE, move |_, _| {
            if let Some(r) = reactor.upgrade() {
                r.exclusive_fired();
            }
        })?;
        // The tasks waiting to accept keep the loop alive, through the reactor's main watcher.
        uv::Handle::unref(&watcher);
        Ok(Exclusive { _watcher: watcher, alias, backend, armed: RefCell::default() })
    }

    /// Puts listener `fd` (its state under `key`) into libuv's set, if it is not there already. A connection
    /// already queued fires at once (the kernel checks readiness when the fd is added).
    pub(super) fn arm(&self, key: usize, fd: RawFd) -> io::Result<()> {
        if self.armed.borrow().iter().any(|&(k, _)| k == key) {
            return Ok(());
        }
        // libuv reads `data.fd`, the first four bytes of the union, whatever the byte order.
        let mut data = [0u8; 8];
        data[..4].copy_from_slice(&self.alias.as_raw_fd().to_ne_bytes());
        let mut ev =
            libc::epoll_event { events: (libc::EPOLLIN | libc::EPOLLEXCLUSIVE) as u32, u64: u64::from_ne_bytes(data) };
        // SAFETY: `backend` is the loop's open epoll fd, `fd` the caller's open listening socket, and `ev` a
        // valid event the kernel only reads.
        if unsafe { libc::epoll_ctl(self.backend, libc::EPOLL_CTL_ADD, fd, &mut ev) } != 0 {
            return Err(io::Error::last_os_error());
        }
        self.armed.borrow_mut().push((key, fd));
        Ok(())
    }

    /// Takes listener `fd` out of libuv's set, if it is there (before it closes).
    pub(super) fn disarm(&self, key: usize) {
        let pos = self.armed.borrow().iter().position(|&(k, _)| k == key);
        if let Some(pos) = pos {
            let (_, fd) = self.armed.borrow_mut().swap_remove(pos);
            self.del(fd);
        }
    }

    /// Disarms every listener and returns their keys: the alias fired, so one of them (or more) is readable.
    pub(super) fn take_fired(&self) -> Vec<usize> {
        let armed = std::mem::take(&mut *self.armed.borrow_mut());
        armed
            .into_iter()
            .map(|(key, fd)| {
                self.del(fd);
                key
            })
            .collect()
    }

    fn del(&self, fd: RawFd) {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: as in `arm`; the fd is still open (disarmed before its listener closes). Nothing to do if it
        // fails: the fd was not in the set.
        unsafe { libc::epoll_ctl(self.backend, libc::EPOLL_CTL_DEL, fd, &mut ev) };
    }
}

impl Drop for Exclusive {
    fn drop(&mut self) {
        // Every listener disarmed itself before its reactor could go; this is the belt to those braces.
        for (_, fd) in std::mem::take(&mut *self.armed.borrow_mut()) {
            self.del(fd);
        }
    }
}

impl Reactor {
    /// The door for shared listeners, opened on first use.
    pub(super) fn exclusive(self: &Rc<Reactor>, lp: &uv::Loop) -> io::Result<Rc<Exclusive>> {
        let mut slot = self.exclusive.borrow_mut();
        if let Some(ex) = &*slot {
            return Ok(ex.clone());
        }
        let ex = Rc::new(Exclusive::new(lp, Rc::downgrade(self))?);
        *slot = Some(ex.clone());
        Ok(ex)
    }

    /// The alias's watcher fired: wake every armed listener (usually one) to try its accept.
    fn exclusive_fired(&self) {
        let ex = self.exclusive.borrow().clone();
        let Some(ex) = ex else { return };
        for key in ex.take_fired() {
            let state = self.sources.borrow().get(key).cloned();
            if let Some(state) = state {
                self.report(&state, Report { ready: true, closed: false }, Report::default());
            }
        }
    }
}
