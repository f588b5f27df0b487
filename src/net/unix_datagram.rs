//! [`UnixDatagram`]: async Unix datagram sockets (Unix), the same on every engine: a non-blocking std socket
//! watched for readiness ([`AsyncFd`]); each operation is one syscall on the caller's buffer.

use std::io;
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::UnixDatagram as StdUnixDatagram;
use std::path::Path;

use super::unix::{from_std_addr, SocketAddr};
use crate::io::{AsyncFd, Interest};

/// A Unix datagram socket: bound to a path or unbound, connected to a peer or not, like tokio's.
///
/// - **Datagrams are whole or truncated.** A receive takes one datagram; one longer than the buffer is
///   truncated to it (the rest is discarded, and the length returned is the buffer's).
/// - **Nothing is queued in uvio.** Every operation is one `sendto(2)`/`recvfrom(2)` on the caller's buffer,
///   after waiting for readiness when the kernel says `WouldBlock`: a dropped future loses nothing (a datagram
///   not yet received stays in the kernel; one sent is the kernel's).
/// - **Errors are the kernel's.** Sending to a path nobody is bound to is `NotFound` (Linux) or
///   `ConnectionRefused`; sending on a connected socket whose peer is gone is `ConnectionRefused` (Linux), while
///   a receive there waits (datagrams have no end-of-stream: what the peer sent before it left is still
///   received, then nothing comes); a path longer
///   than `sockaddr_un` holds (about 108 bytes) or holding a NUL byte is `InvalidInput`. A socket file made by
///   [`bind`](UnixDatagram::bind) is not removed on drop (as std and tokio).
///
/// ```
/// use uvio::net::UnixDatagram;
///
/// uvio::block_on(async {
///     let (a, b) = UnixDatagram::pair()?;
///     a.send(b"ping").await?;
///     let mut buf = [0u8; 16];
///     let n = b.recv(&mut buf).await?;
///     assert_eq!(&buf[..n], b"ping");
///     std::io::Result::Ok(())
/// }).unwrap();
/// ```
///
/// # Panics
/// The constructors panic outside a runtime.
pub struct UnixDatagram {
    io: AsyncFd<StdUnixDatagram>,
}

impl UnixDatagram {
    /// A socket bound to `path` (a new socket file; `AddrInUse` if a file is there).
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(StdUnixDatagram::bind(path)?)
    }

    /// A socket bound to no address: it can send (with [`send_to`](Self::send_to), or once connected), and
    /// receive what a connected peer sends.
    pub fn unbound() -> io::Result<UnixDatagram> {
        UnixDatagram::from_std(StdUnixDatagram::unbound()?)
    }

    /// Two unnamed sockets connected to each other.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = StdUnixDatagram::pair()?;
        Ok((UnixDatagram::from_std(a)?, UnixDatagram::from_std(b)?))
    }

    /// Takes over a std socket (made non-blocking).
    pub fn from_std(socket: StdUnixDatagram) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram { io: AsyncFd::with_interest(socket, Interest::READABLE | Interest::WRITABLE)? })
    }

    /// Hands the socket back to std, in blocking mode.
    pub fn into_std(self) -> io::Result<StdUnixDatagram> {
        let socket = self.io.into_inner();
        socket.set_nonblocking(false)?;
        Ok(socket)
    }

    /// Connects the socket to the one bound at `path`: [`send`](Self::send) goes there, and only its
    /// datagrams are received.
    pub fn connect(&self, path: impl AsRef<Path>) -> io::Result<()> {
        self.io.get_ref().connect(path)
    }

    /// Sends `buf` as one datagram to the connected peer; waits while the kernel's buffer (or the peer's
    /// queue) is full.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.op(Interest::WRITABLE, |s| s.send(buf)).await
    }

    /// Receives one datagram from the connected peer (truncated to `buf`).
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.op(Interest::READABLE, |s| s.recv(buf)).await
    }

    /// Sends `buf` as one datagram to the socket bound at `path`.
    pub async fn send_to(&self, buf: &[u8], path: impl AsRef<Path>) -> io::Result<usize> {
        let path = path.as_ref();
        self.op(Interest::WRITABLE, |s| s.send_to(buf, path)).await
    }

    /// Receives one datagram (truncated to `buf`) and the address of its sender (unnamed when the sender is
    /// unbound).
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let (n, from) = self.op(Interest::READABLE, |s| s.recv_from(buf)).await?;
        Ok((n, from_std_addr(&from)))
    }

    /// Sends one datagram to the connected peer now, or `WouldBlock`.
    pub fn try_send(&self, buf: &[u8]) -> io::Result<usize> {
        retry(|| self.io.get_ref().send(buf))
    }

    /// Receives one datagram now, or `WouldBlock`.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        retry(|| self.io.get_ref().recv(buf))
    }

    /// Sends one datagram to `path` now, or `WouldBlock`.
    pub fn try_send_to(&self, buf: &[u8], path: impl AsRef<Path>) -> io::Result<usize> {
        retry(|| self.io.get_ref().send_to(buf, path.as_ref()))
    }

    /// Receives one datagram and its sender now, or `WouldBlock`.
    pub fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let (n, from) = retry(|| self.io.get_ref().recv_from(buf))?;
        Ok((n, from_std_addr(&from)))
    }

    /// The address the socket is bound to (unnamed if none).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(from_std_addr(&self.io.get_ref().local_addr()?))
    }

    /// The address of the connected peer (`NotConnected` if none).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(from_std_addr(&self.io.get_ref().peer_addr()?))
    }

    /// Shuts down reading, writing or both (`shutdown(2)`): pending and later operations in that direction end
    /// (receives return 0, sends fail with `BrokenPipe`).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.get_ref().shutdown(how)
    }

    /// Takes the socket's pending error (`SO_ERROR`), if any.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.io.get_ref().take_error()
    }

    /// Tries `f` at once (the kernel may have room or data already), then waits for `interest` and retries
    /// until it does not say `WouldBlock`.
    async fn op<R>(&self, interest: Interest, mut f: impl FnMut(&StdUnixDatagram) -> io::Result<R>) -> io::Result<R> {
        match f(self.io.get_ref()) {
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
            res => return res,
        }
        loop {
            let mut guard = match interest.is_readable() {
                true => self.io.readable().await?,
                false => self.io.writable().await?,
            };
            match guard.try_io(|io| f(io.get_ref())) {
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(res) => return res,
                Err(_would_block) => {} // readiness cleared: wait for the next report
            }
        }
    }
}

/// Retries `op` while it is interrupted.
fn retry<R>(mut op: impl FnMut() -> io::Result<R>) -> io::Result<R> {
    loop {
        match op() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            res => return res,
        }
    }
}

impl AsFd for UnixDatagram {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.as_fd()
    }
}

impl AsRawFd for UnixDatagram {
    fn as_raw_fd(&self) -> RawFd {
        self.io.as_raw_fd()
    }
}

impl std::fmt::Debug for UnixDatagram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnixDatagram").field("fd", &self.as_raw_fd()).finish()
    }
}
