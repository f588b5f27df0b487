//! [`TcpSocket`]: a TCP socket before it listens or connects, for the options that must be set first.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use super::{TcpListener, TcpStream};
use crate::engine::AnyStream;

/// A TCP socket not yet listening or connected (tokio's shape): create it, set options, optionally
/// [`bind`](TcpSocket::bind), then [`listen`](TcpSocket::listen) or [`connect`](TcpSocket::connect), on every
/// engine.
///
/// ```
/// # uvio::block_on(async {
/// use uvio::net::TcpSocket;
///
/// let socket = TcpSocket::new_v4()?;
/// socket.set_reuseaddr(true)?;
/// socket.bind("127.0.0.1:0".parse().unwrap())?;
/// let listener = socket.listen(128)?; // this backlog, not a default
///
/// let client = TcpSocket::new_v4()?;
/// client.set_nodelay(true)?; // before the handshake
/// let stream = client.connect(listener.local_addr()?).await?;
/// assert!(stream.nodelay()?);
/// # std::io::Result::Ok(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
pub struct TcpSocket {
    sock: Socket,
}

impl TcpSocket {
    /// A new IPv4 TCP socket (close-on-exec).
    pub fn new_v4() -> io::Result<TcpSocket> {
        TcpSocket::new(Domain::IPV4)
    }

    /// A new IPv6 TCP socket (close-on-exec).
    pub fn new_v6() -> io::Result<TcpSocket> {
        TcpSocket::new(Domain::IPV6)
    }

    fn new(domain: Domain) -> io::Result<TcpSocket> {
        Ok(TcpSocket { sock: Socket::new(domain, Type::STREAM, Some(Protocol::TCP))? })
    }

    /// `SO_REUSEADDR`: bind while old connections of the address sit in `TIME_WAIT` (on Windows it lets another
    /// socket take over a bound address: leave it off there).
    pub fn set_reuseaddr(&self, reuse: bool) -> io::Result<()> {
        self.sock.set_reuse_address(reuse)
    }

    /// Whether `SO_REUSEADDR` is set.
    pub fn reuseaddr(&self) -> io::Result<bool> {
        self.sock.reuse_address()
    }

    /// `SO_REUSEPORT`: several sockets bind the same address and port; on Linux the kernel spreads incoming
    /// connections over their listeners (see [`crate::server`]).
    #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
    pub fn set_reuseport(&self, reuse: bool) -> io::Result<()> {
        self.sock.set_reuse_port(reuse)
    }

    /// Whether `SO_REUSEPORT` is set.
    #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
    pub fn reuseport(&self) -> io::Result<bool> {
        self.sock.reuse_port()
    }

    /// `TCP_NODELAY`: disables (`true`) Nagle's algorithm; the connected stream keeps it.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.sock.set_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.sock.nodelay()
    }

    /// `SO_SNDBUF`: the kernel's send buffer (Linux doubles the value for its own bookkeeping and reports that).
    pub fn set_send_buffer_size(&self, size: u32) -> io::Result<()> {
        self.sock.set_send_buffer_size(size as usize)
    }

    /// The send buffer's size, as the kernel reports it.
    pub fn send_buffer_size(&self) -> io::Result<u32> {
        self.sock.send_buffer_size().map(|n| u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// `SO_RCVBUF`: the kernel's receive buffer (the window offered to the peer grows with it; set it before
    /// `listen`/`connect` for it to count in the handshake's window scaling).
    pub fn set_recv_buffer_size(&self, size: u32) -> io::Result<()> {
        self.sock.set_recv_buffer_size(size as usize)
    }

    /// The receive buffer's size, as the kernel reports it.
    pub fn recv_buffer_size(&self) -> io::Result<u32> {
        self.sock.recv_buffer_size().map(|n| u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// `SO_LINGER`: `Some(d)` makes a close wait up to `d` for unsent data (`Some(0)`: reset at close);
    /// `None` (the default) closes in the background.
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        self.sock.set_linger(linger)
    }

    /// The `SO_LINGER` setting.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        self.sock.linger()
    }

    /// `SO_KEEPALIVE`: the kernel probes an idle connection (with the system's timings; see
    /// [`TcpStream::set_keepalive`] to choose them once connected).
    pub fn set_keepalive(&self, keepalive: bool) -> io::Result<()> {
        self.sock.set_keepalive(keepalive)
    }

    /// Binds to `addr` (port 0 picks one).
    pub fn bind(&self, addr: SocketAddr) -> io::Result<()> {
        self.sock.bind(&addr.into())
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not an internet address"))
    }

    /// Listens with `backlog` (capped by the kernel: `net.core.somaxconn` on Linux) and becomes a listener on the
    /// current runtime's engine. The socket must be bound. Must be called inside a uvio runtime.
    pub fn listen(self, backlog: u32) -> io::Result<TcpListener> {
        self.sock.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
        TcpListener::from_std(self.sock.into())
    }

    /// Connects to `addr` with the options set so far, on the current runtime's engine. Dropping the future
    /// cancels the connect and closes the socket.
    pub async fn connect(self, addr: SocketAddr) -> io::Result<TcpStream> {
        let ex = crate::runtime::current();
        let io = AnyStream::connect_socket(&ex.engine, self.sock, &addr.into()).await?;
        Ok(TcpStream::from_io(io))
    }
}

#[cfg(unix)]
impl std::os::fd::AsFd for TcpSocket {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

#[cfg(unix)]
impl std::os::fd::AsRawFd for TcpSocket {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.sock.as_raw_fd()
    }
}

#[cfg(windows)]
impl std::os::windows::io::AsSocket for TcpSocket {
    fn as_socket(&self) -> std::os::windows::io::BorrowedSocket<'_> {
        self.sock.as_socket()
    }
}

#[cfg(windows)]
impl std::os::windows::io::AsRawSocket for TcpSocket {
    fn as_raw_socket(&self) -> std::os::windows::io::RawSocket {
        self.sock.as_raw_socket()
    }
}
