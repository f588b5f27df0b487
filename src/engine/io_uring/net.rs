//! Sockets on the ring: TCP and Unix streams ([`Stream`], in `net/stream.rs`) and listeners ([`Listener`], in
//! `net/listener.rs`) whose connect, accept, recv, send and shutdown are io_uring operations. UDP stays on the
//! epoll engine's code under io_uring.
//!
//! ## Reads: one single-shot recv from a shared provided-buffer ring
//! A read that finds nothing arms one `IORING_OP_RECV` with `IOSQE_BUFFER_SELECT` (at most one per connection):
//! the kernel picks a buffer from the runtime's provided-buffer ring ([`super::bufring`], 512 × 16 KiB) only
//! when data arrives, so a connection waiting for data pins no memory. The completed buffer's bytes are copied
//! into the caller's slice (the one copy `AsyncRead` forces: its slice is only lent for the call); what does not
//! fit stays in the connection, and the buffer goes back to the ring once consumed. When the previous recv filled
//! its whole buffer (bulk data waiting), the next read first tries a non-blocking `recv(2)` straight into the
//! caller's slice. An empty ring (`ENOBUFS`) is never an error: the reader then takes the bytes with that same
//! non-blocking `recv(2)` (a peek arms a recv into a buffer of the connection's own, allocated zeroed, freed
//! once read); to keep that rare, small receives are copied out of
//! their ring buffer while half the ring is held (see `COPY_OUT` in `net/stream.rs`). The recv arms the socket's
//! poll first (`IORING_RECVSEND_POLL_FIRST`): it is only armed once everything received has been read.
//!
//! Why not the alternatives: a **multishot recv** keeps delivering into ring buffers whether or not anyone
//! reads, so one fast sender can drain the whole ring into a connection nobody reads (unbounded buffering per
//! connection, starving the others); **per-connection buffers** cost their memory for every idle connection
//! (10 000 idle connections × 16 KiB = 160 MiB). A single-shot recv armed by a waiting reader bounds what a
//! connection holds to one buffer, and an idle one holds nothing.
//!
//! ## Writes: one send in flight, carrying everything queued
//! `poll_write` copies into the connection's queue (up to [`stream::HIGH_WATER`] bytes buffered, then `Pending` until
//! sends drain it) and returns `Ready(n)`; one `IORING_OP_SEND` (`MSG_NOSIGNAL`) at a time carries everything
//! queued, and a partial send resubmits the rest. `poll_flush` waits until the queue is empty. A send's error
//! (`EPIPE`, `ECONNRESET`) is reported by the next `poll_write` / `poll_flush` (and every one after).
//!
//! ## Cancellation and close
//! Every operation's slot owns the socket (an `Rc` of it) and what the kernel may touch (send buffer, sockaddr),
//! so the fd is closed — plain `close(2)`, when the last `Rc` goes — only after the last operation completed.
//! - A dropped **read** future leaves its recv armed: the connection owns it, and bytes it receives are kept for
//!   the next read. Dropping the **connection** cancels the recv (`IORING_OP_ASYNC_CANCEL`).
//! - A dropped **write** future loses nothing: what `poll_write` accepted is queued; dropping the connection
//!   with bytes queued lets the send finish before the fd closes.
//! - A dropped **connect** future cancels the connect; the slot keeps the sockaddr and socket until the
//!   completion arrives, then closes the socket.
//! - **Accept** is one multishot `IORING_OP_ACCEPT`, armed on the first accept; accepted descriptors queue in
//!   the listener (at most [`listener::ACCEPT_QUEUE`]: beyond, the multishot is cancelled and re-armed once the queue
//!   drains), so a dropped accept future loses no connection. Dropping the listener cancels the multishot and
//!   closes the descriptors that arrive until its final completion.
//!
//! Sockets on the ring are blocking (`O_NONBLOCK` cleared): the kernel polls them itself, and the fast-path
//! `recv(2)` passes `MSG_DONTWAIT`.

#![allow(unsafe_code)]

mod listener;
mod stream;

use std::io;
use std::rc::{Rc, Weak};
use std::task::{Context, Waker};

use socket2::SockAddr;

use super::Driver;
use crate::reply::Replier;
use listener::accepted;
pub(crate) use listener::{ListenShared, Listener};
pub(crate) use stream::{ConnShared, Stream};

/// A socket operation in flight: what it owns until its completion, and what to do with the result.
pub(crate) enum NetOp {
    /// A recv into a buffer of the provided-buffer ring.
    Recv { conn: Rc<ConnShared> },
    /// A recv into the connection's own buffer (the ring was empty).
    RecvOwned { conn: Rc<ConnShared>, buf: Vec<u8> },
    /// A send of `buf[off..]`.
    Send { conn: Rc<ConnShared>, buf: Vec<u8>, off: usize },
    /// `shutdown(SHUT_WR)`.
    Shutdown { conn: Rc<ConnShared> },
    /// A connect to `addr` (boxed: the kernel reads it where it is).
    Connect { _conn: Rc<ConnShared>, _addr: Box<SockAddr>, done: Replier<io::Result<()>> },
    /// The multishot accept of a listener.
    Accept { listener: Rc<ListenShared> },
}

/// The handler of a multishot operation's intermediate completions.
pub(super) struct Multishot(Rc<ListenShared>);

impl Multishot {
    /// One completion of several (`IORING_CQE_F_MORE`): the operation goes on.
    pub(super) fn more(&self, res: i32, _flags: u32) {
        accepted(&self.0, res, true);
    }
}

impl NetOp {
    /// The handler for this operation's intermediate completions, if it is a multishot one.
    pub(super) fn multishot(&self) -> Option<Multishot> {
        match self {
            NetOp::Accept { listener } => Some(Multishot(listener.clone())),
            _ => None,
        }
    }

    /// The (final) completion: the kernel is done with everything the operation owns.
    pub(super) fn complete(self, res: i32, flags: u32) {
        match self {
            NetOp::Recv { conn } => conn.recv_done(res, flags),
            NetOp::RecvOwned { conn, buf } => conn.recv_owned_done(res, buf),
            NetOp::Send { conn, buf, off } => conn.send_done(res, buf, off),
            NetOp::Shutdown { conn } => conn.shutdown_done(res),
            NetOp::Connect { done, .. } => done.send(status(res).map(drop)),
            NetOp::Accept { listener } => accepted(&listener, res, false),
        }
    }
}

/// A completion's result as an `io::Result`.
pub(super) fn status(res: i32) -> io::Result<usize> {
    if res < 0 {
        Err(io::Error::from_raw_os_error(-res))
    } else {
        Ok(res as usize)
    }
}

/// How many sockets (streams and listeners) their owners still hold on `driver` (for `Runtime::close`).
pub(crate) fn objects_tied_to(driver: &Rc<Driver>) -> usize {
    driver.tied.get()
}

/// Counts its owner in its driver's `tied` while both live.
pub(super) struct Tie(Weak<Driver>);

impl Tie {
    pub(super) fn new(driver: &Rc<Driver>) -> Tie {
        driver.tied.set(driver.tied.get() + 1);
        Tie(Rc::downgrade(driver))
    }
}

impl Drop for Tie {
    fn drop(&mut self) {
        if let Some(driver) = self.0.upgrade() {
            driver.tied.set(driver.tied.get() - 1);
        }
    }
}

/// Cancels an operation when dropped, unless `user_data` was cleared (it completed).
pub(super) struct CancelOnDrop {
    pub(super) driver: Weak<Driver>,
    pub(super) user_data: Option<u64>,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let (Some(user_data), Some(driver)) = (self.user_data, self.driver.upgrade()) {
            driver.cancel(user_data);
        }
    }
}

/// Replaces `slot`'s waker with `cx`'s, waking a different task that waited there (so it cannot hang).
pub(super) fn register(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(w) if w.will_wake(cx.waker()) => {}
        _ => {
            if let Some(old) = slot.replace(cx.waker().clone()) {
                old.wake();
            }
        }
    }
}

/// Wakes the waker taken from a state (called once no borrow is held).
pub(super) fn wake(waker: Option<Waker>) {
    if let Some(w) = waker {
        w.wake();
    }
}
