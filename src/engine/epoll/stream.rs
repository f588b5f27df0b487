//! The epoll engine's connected stream socket (TCP or Unix): `recv(2)` / `send(2)` straight into and out of the
//! caller's buffer, readiness from the reactor only after `EAGAIN`.

use std::future::poll_fn;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::task::{Context, Poll};

use socket2::{SockAddr, Socket, Type};

use super::{Reactor, Registration};
use crate::engine::Direction;

#[cfg(feature = "tokio-io")]
/// Bytes the tokio read path reads at most per call (through a per-thread scratch buffer, see
/// [`Stream::poll_read_with`]).
const SCRATCH: usize = 64 * 1024;

#[cfg(feature = "tokio-io")]
thread_local! {
    /// Where the tokio read path lands bytes before copying them into the caller's `ReadBuf`, whose room may be
    /// uninitialised (filling it directly would need `unsafe`). One per thread, allocated once.
    static SCRATCH_BUF: std::cell::RefCell<Box<[u8]>> = std::cell::RefCell::new(vec![0; SCRATCH].into_boxed_slice());
}

/// A non-blocking stream socket (TCP or Unix) in the runtime's epoll set.
pub(crate) struct Stream {
    // Field order matters: the registration leaves the epoll set before `sock` closes the fd.
    reg: Registration,
    sock: Socket,
}

impl Stream {
    /// Adds a connected `sock` (made non-blocking) to `reactor`'s epoll set.
    pub(crate) fn new(reactor: &Rc<Reactor>, sock: Socket) -> io::Result<Stream> {
        sock.set_nonblocking(true)?;
        Ok(Stream { reg: Registration::new(reactor, sock.as_raw_fd())?, sock })
    }

    /// The socket itself (addresses, options).
    pub(crate) fn socket(&self) -> &Socket {
        &self.sock
    }

    /// Reads into `out` (`recv(2)`); waits for readability only when the kernel has nothing.
    pub(crate) fn poll_read(&self, cx: &mut Context<'_>, out: &mut [u8]) -> Poll<io::Result<usize>> {
        if out.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let n = std::task::ready!(self.reg.poll_io(cx, Direction::Read, || (&self.sock).read(out)))?;
        if n > 0 && n < out.len() {
            // A short read drained the socket: the next byte to arrive makes an edge, so wait for it without
            // an EAGAIN syscall. (Not on end-of-stream, which makes no further edge.)
            self.reg.state.clear(Direction::Read);
        }
        Poll::Ready(Ok(n))
    }

    /// Copies the next bytes into `out` without taking them (`recv(2)` with `MSG_PEEK`): the next read returns
    /// them again. This engine never reads ahead, so the kernel's queue is the whole story.
    pub(crate) fn poll_peek(&self, cx: &mut Context<'_>, out: &mut [u8]) -> Poll<io::Result<usize>> {
        if out.is_empty() {
            return Poll::Ready(Ok(0));
        }
        // No `readable.set(false)` on a short count, unlike `poll_read`: the bytes stay queued, so no edge
        // would come for them.
        self.reg.poll_io(cx, Direction::Read, || {
            // SAFETY: `out` is a valid, writable slice of `out.len()` bytes for the duration of the call, and
            // the fd is open (owned by `self.sock`, which outlives the call).
            let n = unsafe {
                libc::recv(
                    self.sock.as_raw_fd(),
                    out.as_mut_ptr().cast(),
                    out.len(),
                    libc::MSG_PEEK | libc::MSG_DONTWAIT,
                )
            };
            usize::try_from(n).map_err(|_| io::Error::last_os_error())
        })
    }

    #[cfg(feature = "tokio-io")]
    /// `poll_read` for a destination that is not a plain slice (tokio's `ReadBuf`): reads at most `max` bytes
    /// into the thread's scratch buffer and hands them to `take`, which copies them out.
    pub(crate) fn poll_read_with(
        &self,
        cx: &mut Context<'_>,
        max: usize,
        take: impl FnOnce(&[u8]),
    ) -> Poll<io::Result<usize>> {
        if max == 0 {
            return Poll::Ready(Ok(0));
        }
        SCRATCH_BUF.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let room = max.min(scratch.len());
            let n = std::task::ready!(self.poll_read(cx, &mut scratch[..room]))?;
            take(&scratch[..n]);
            Poll::Ready(Ok(n))
        })
    }

    /// Writes from `data` (`send(2)` with `MSG_NOSIGNAL`: a closed peer is `EPIPE`, not a signal); a partial
    /// write is `Ok(n)`. Waits for writability only when the kernel's buffer is full.
    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        self.reg.poll_io(cx, Direction::Write, || self.sock.send_with_flags(data, libc::MSG_NOSIGNAL))
    }

    /// Nothing to flush: written bytes are already the kernel's.
    pub(crate) fn poll_flush(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Shuts the write side down (`shutdown(2)`, `SHUT_WR`): the peer reads end-of-stream. A socket the peer
    /// already reset (`ENOTCONN`) has nothing left to shut down.
    pub(crate) fn poll_shutdown(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.reg.reactor.gone.get() {
            return Poll::Ready(Err(crate::error::runtime_gone()));
        }
        match self.sock.shutdown(std::net::Shutdown::Write) {
            Err(e) if e.raw_os_error() != Some(libc::ENOTCONN) => Poll::Ready(Err(e)),
            _ => Poll::Ready(Ok(())),
        }
    }

    /// Connects a new stream socket to `addr` (non-blocking `connect(2)`, then writability and `SO_ERROR`).
    /// Dropping the future closes the socket, which abandons the connect.
    pub(crate) async fn connect(reactor: &Rc<Reactor>, addr: &SockAddr) -> io::Result<Stream> {
        Stream::connect_socket(reactor, Socket::new(addr.domain(), Type::STREAM.nonblocking(), None)?, addr).await
    }

    /// Connects `sock` (made by the caller, options set) to `addr`.
    pub(crate) async fn connect_socket(reactor: &Rc<Reactor>, sock: Socket, addr: &SockAddr) -> io::Result<Stream> {
        let sock = Stream::new(reactor, sock)?;
        match sock.sock.connect(addr) {
            Ok(()) => return Ok(sock),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        poll_fn(|cx| sock.poll_connected(cx)).await?;
        Ok(sock)
    }

    fn poll_connected(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.reg.reactor.gone.get() {
            return Poll::Ready(Err(crate::error::runtime_gone()));
        }
        if let Some(e) = self.sock.take_error()? {
            return Poll::Ready(Err(e));
        }
        match self.sock.peer_addr() {
            Ok(_) => Poll::Ready(Ok(())),
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
                self.reg.wait(cx, Direction::Write);
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// Leaves the epoll set and hands the socket back, in blocking mode (as std makes sockets). This engine
    /// never reads ahead, so nothing is left behind.
    pub(crate) fn into_socket(self) -> io::Result<Socket> {
        let Stream { reg, sock } = self;
        drop(reg);
        sock.set_nonblocking(false)?;
        Ok(sock)
    }
}
