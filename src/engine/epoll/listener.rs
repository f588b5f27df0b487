//! The epoll engine's listening stream socket (TCP or Unix): `accept4(2)` on readiness.

use std::cell::Cell;
use std::io;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::task::{Context, Poll};

use socket2::{SockAddr, Socket, Type};

use super::{Reactor, Registration, Stream};
use crate::engine::Direction;

/// A non-blocking listening socket in the runtime's epoll set.
pub(crate) struct Listener {
    // Field order matters: the registration leaves the epoll set before `sock` closes the fd.
    reg: Registration,
    sock: Socket,
    /// The last accept found nothing and its task waited (for a wake-up).
    waited: Cell<bool>,
    /// Wake-ups whose accept found nothing (`EAGAIN`: another loop took the connection).
    empty_wakeups: Cell<u64>,
}

impl Listener {
    /// A listening stream socket bound to `addr` (`SO_REUSEADDR` first when `reuse_addr`, as libuv does for
    /// TCP).
    pub(crate) fn bind(reactor: &Rc<Reactor>, addr: &SockAddr, reuse_addr: bool) -> io::Result<Listener> {
        let sock = Socket::new(addr.domain(), Type::STREAM.nonblocking(), None)?;
        if reuse_addr {
            sock.set_reuse_address(true)?;
        }
        sock.bind(addr)?;
        Listener::from_std(reactor, sock, crate::engine::sockets::BACKLOG)
    }

    /// Takes over a bound socket, listening or not (listens here, with `backlog`; made non-blocking).
    pub(crate) fn from_std(reactor: &Rc<Reactor>, sock: Socket, backlog: i32) -> io::Result<Listener> {
        sock.listen(backlog)?;
        sock.set_nonblocking(true)?;
        let reg = Registration::new(reactor, sock.as_raw_fd())?;
        Ok(Listener { reg, sock, waited: Cell::new(false), empty_wakeups: Cell::new(0) })
    }

    /// As [`Listener::from_std`], for a socket other loops accept from too: woken through libuv's epoll set
    /// with `EPOLLEXCLUSIVE`, one idle loop per connection rather than all of them (see `exclusive.rs`).
    pub(crate) fn from_std_shared(
        reactor: &Rc<Reactor>,
        lp: &crate::uv::Loop,
        sock: Socket,
        backlog: i32,
    ) -> io::Result<Listener> {
        sock.listen(backlog)?;
        sock.set_nonblocking(true)?;
        let reg = Registration::new_exclusive(reactor, lp, sock.as_raw_fd())?;
        Ok(Listener { reg, sock, waited: Cell::new(false), empty_wakeups: Cell::new(0) })
    }

    /// Wake-ups of this listener that found no connection to accept.
    pub(crate) fn empty_wakeups(&self) -> u64 {
        self.empty_wakeups.get()
    }

    /// The socket itself (addresses).
    pub(crate) fn socket(&self) -> &Socket {
        &self.sock
    }

    /// Accepts the next connection (`accept4(2)`, close-on-exec), watched on this loop; waits for
    /// readability when none is queued. A connection is never accepted into nowhere: a dropped accept leaves it
    /// queued in the kernel.
    pub(crate) fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(Stream, SockAddr)>> {
        loop {
            // A wake-up since the task last waited: the syscall below is its accept.
            let woken = self.waited.get() && self.reg.state.may_be_ready(Direction::Read);
            let Poll::Ready(res) = self.reg.poll_io(cx, Direction::Read, || self.sock.accept()) else {
                if woken {
                    self.empty_wakeups.set(self.empty_wakeups.get() + 1);
                }
                self.waited.set(true);
                return match self.reg.arm() {
                    Ok(()) => Poll::Pending,
                    Err(e) => Poll::Ready(Err(e)),
                };
            };
            self.waited.set(false);
            match res {
                Ok((conn, peer)) => return Poll::Ready(Stream::new(&self.reg.reactor, conn).map(|s| (s, peer))),
                // A connection reset while queued (as libuv): try the next one.
                Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// Leaves the epoll set and hands the socket back, in blocking mode (as std makes sockets). This engine
    /// never accepts ahead, so no connection is left behind.
    pub(crate) fn into_socket(self) -> io::Result<(Socket, Vec<Socket>)> {
        let Listener { reg, sock, .. } = self;
        drop(reg);
        sock.set_nonblocking(false)?;
        Ok((sock, Vec::new()))
    }
}
