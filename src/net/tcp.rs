//! [`TcpListener`] and [`TcpStream`]: async TCP on the runtime's engine (see [`crate::engine`]).

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use super::addr::ToSocketAddrs;
use super::io::owned_halves;
use crate::engine::{AnyListener, AnyStream};
use crate::uv;

/// A TCP listener: binds, then yields connections with [`accept`](TcpListener::accept) or
/// [`incoming`](TcpListener::incoming).
///
/// ```
/// use futures::{AsyncReadExt, AsyncWriteExt};
/// use uvio::net::{TcpListener, TcpStream};
///
/// uvio::block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0").await?;
///     let addr = listener.local_addr()?;
///     let server = uvio::spawn_local(async move {
///         let (mut conn, _) = listener.accept().await?;
///         let mut buf = [0u8; 5];
///         conn.read_exact(&mut buf).await?;
///         conn.write_all(&buf).await?;
///         std::io::Result::Ok(())
///     });
///     let mut client = TcpStream::connect(addr).await?;
///     client.write_all(b"hello").await?;
///     let mut back = [0u8; 5];
///     client.read_exact(&mut back).await?;
///     assert_eq!(&back, b"hello");
///     server.await??;
///     std::io::Result::Ok(())
/// }).unwrap();
/// ```
pub struct TcpListener {
    inner: AnyListener<uv::Tcp>,
}

/// An internet address from the socket layer (a TCP socket never has another kind).
fn inet(addr: socket2::SockAddr) -> io::Result<SocketAddr> {
    addr.as_socket().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not an internet address"))
}

impl TcpListener {
    /// Binds to `addr` (the first address that binds, when it resolves to several) and listens.
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let addrs = addr.to_socket_addrs().await?;
        let mut last = io::Error::new(io::ErrorKind::InvalidInput, "no addresses to bind");
        for a in addrs {
            match TcpListener::bind_one(a) {
                Ok(l) => return Ok(l),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn bind_one(addr: SocketAddr) -> io::Result<TcpListener> {
        let ex = crate::runtime::current();
        Ok(TcpListener { inner: AnyListener::bind(&ex.engine, &addr.into())? })
    }

    /// Takes over a bound std listener (set to listen here). Must be called inside a uvio runtime.
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        let ex = crate::runtime::current();
        Ok(TcpListener { inner: AnyListener::from_std(&ex.engine, listener.into(), false)? })
    }

    /// As [`from_std`](Self::from_std), for a socket that other loops accept from too (the server's shared
    /// listener): the engine takes no connection ahead of its tasks, and wakes one idle loop per connection
    /// where the kernel allows it.
    pub(crate) fn from_std_shared(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        let ex = crate::runtime::current();
        Ok(TcpListener { inner: AnyListener::from_std(&ex.engine, listener.into(), true)? })
    }

    /// Wake-ups that found no connection to accept, because another loop took it (0 where the engine cannot
    /// tell).
    pub(crate) fn empty_wakeups(&self) -> u64 {
        self.inner.empty_wakeups()
    }

    /// Hands the listening socket over to std (to pass it to another runtime, thread or process), together
    /// with the connections this listener had already accepted but not yet given out, oldest first.
    ///
    /// Engines may accept ahead of [`accept`](Self::accept): the libuv engine holds at most one connection
    /// (several on Windows), the io_uring engine's multishot accept up to 256; the epoll engine never does.
    /// Those connections are out of the kernel's backlog, so the std listener will never see them: they come
    /// back here rather than being closed under their clients. New connections wait in the kernel's backlog
    /// for the std listener. The returned sockets are in blocking mode, as std makes them.
    ///
    /// ```
    /// # uvio::block_on(async {
    /// let listener = uvio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// let addr = listener.local_addr()?;
    /// let (std_listener, accepted_ahead) = listener.into_std()?;
    /// assert!(accepted_ahead.is_empty()); // nobody connected yet
    /// let _client = std::net::TcpStream::connect(addr)?;
    /// let (_conn, _peer) = std_listener.accept()?; // blocking, as std's own listeners
    /// std::io::Result::Ok(())
    /// # }).unwrap();
    /// ```
    pub fn into_std(self) -> io::Result<(std::net::TcpListener, Vec<std::net::TcpStream>)> {
        let (listener, accepted) = self.inner.into_socket()?;
        Ok((listener.into(), accepted.into_iter().map(Into::into).collect()))
    }

    /// Waits for the next connection.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Polls for the next connection (for hand-written futures and streams).
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        std::task::ready!(crate::runtime::coop::poll_proceed(cx));
        let (io, peer) = std::task::ready!(self.inner.poll_accept(cx))?;
        Poll::Ready(Ok((TcpStream { io }, inet(peer)?)))
    }

    /// The connections as a `Stream` (never ends; errors are items).
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The bound address (with the actual port when bound to port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        inet(self.inner.with_socket(|s| s.local_addr())?)
    }
}

impl std::fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpListener").field("local_addr", &self.local_addr().ok()).finish()
    }
}

/// The stream of [`TcpListener::incoming`].
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl futures::Stream for Incoming<'_> {
    type Item = io::Result<TcpStream>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.listener.poll_accept(cx).map(|r| Some(r.map(|(s, _)| s)))
    }
}

/// A TCP connection. Implements `futures::io::{AsyncRead, AsyncWrite}` (and tokio's, with the `tokio-io`
/// feature); `close()` (`poll_close`, tokio's `poll_shutdown`) flushes and shuts down the write side, so the peer
/// reads end-of-stream.
///
/// Dropping it closes the connection — after any bytes already accepted by a write have reached the kernel
/// (the runtime keeps the socket open until then). See [`TcpListener`] for an example.
///
/// One write takes at most 256 KiB, on every engine, and returns that short count when offered more
/// (`write_all` loops); at most that much of what writes accepted waits in user space for the kernel, so memory
/// stays bounded however much is written to a peer that reads slowly or not at all. A write that returned is
/// not yet on the wire: the engine hands it to the kernel in this loop turn (libuv, epoll) or with the ring's
/// next submission, at the end of the turn (io_uring); `flush` waits until the kernel has it.
pub struct TcpStream {
    io: AnyStream<uv::Tcp>,
}

impl TcpStream {
    /// Connects to `addr`, trying each resolved address in turn until one accepts.
    pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let addrs = addr.to_socket_addrs().await?;
        let mut last = io::Error::new(io::ErrorKind::InvalidInput, "no addresses to connect to");
        for a in addrs {
            match TcpStream::connect_one(a).await {
                Ok(s) => return Ok(s),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    async fn connect_one(addr: SocketAddr) -> io::Result<TcpStream> {
        let ex = crate::runtime::current();
        Ok(TcpStream { io: AnyStream::connect(&ex.engine, &addr.into()).await? })
    }

    /// Takes over a connected std socket. Must be called inside a uvio runtime.
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        let ex = crate::runtime::current();
        Ok(TcpStream { io: AnyStream::from_std(&ex.engine, stream.into())? })
    }

    /// A stream around a connection an engine made (`TcpSocket::connect`).
    pub(crate) fn from_io(io: AnyStream<uv::Tcp>) -> TcpStream {
        TcpStream { io }
    }

    /// Hands the connection over to std, losing nothing: the bytes writes accepted are flushed first, reading
    /// stops, and the bytes already received but not yet read come back beside the std stream (read them
    /// before reading from it). The std stream is in blocking mode, as std makes them. `async` because of the
    /// flush; dropping the future drops the connection, as dropping the stream would.
    ///
    /// ```
    /// use futures::AsyncWriteExt;
    /// # uvio::block_on(async {
    /// let listener = uvio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// let mut client = uvio::net::TcpStream::connect(listener.local_addr()?).await?;
    /// let (server, _) = listener.accept().await?;
    /// client.write_all(b"hi").await?;
    /// let (mut std_client, unread) = client.into_std().await?;
    /// assert!(unread.is_empty()); // the client had received nothing
    /// std::io::Write::write_all(&mut std_client, b"!")?;
    /// # drop(server);
    /// std::io::Result::Ok(())
    /// # }).unwrap();
    /// ```
    pub async fn into_std(self) -> io::Result<(std::net::TcpStream, Vec<u8>)> {
        let io = self.io.clone();
        drop(self); // not the last owner (`io` is): nothing lingers
        let (sock, unread) = io.into_socket().await?;
        Ok((sock.into(), unread))
    }

    /// Copies the next bytes received into `buf` without taking them, waiting until at least one is there: the
    /// next read returns them again (like `MSG_PEEK`, on every engine — bytes the engine already took from the
    /// kernel are the ones shown, so nothing is skipped or shown twice). Returns how many were copied: possibly
    /// fewer than are waiting, and `0` at end-of-stream (or for an empty `buf`).
    ///
    /// ```
    /// use futures::{AsyncReadExt, AsyncWriteExt};
    /// # uvio::block_on(async {
    /// let listener = uvio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// let mut client = uvio::net::TcpStream::connect(listener.local_addr()?).await?;
    /// let (mut server, _) = listener.accept().await?;
    /// client.write_all(b"GET /").await?;
    /// let mut first = [0u8; 3];
    /// let n = server.peek(&mut first).await?;
    /// assert_eq!(&first[..n], &b"GET"[..n]);
    /// let mut all = [0u8; 5];
    /// server.read_exact(&mut all).await?; // the peeked bytes are still there
    /// assert_eq!(&all, b"GET /");
    /// std::io::Result::Ok(())
    /// # }).unwrap();
    /// ```
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.io.poll_peek(cx, buf)).await
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        inet(self.io.with_socket(|s| s.local_addr())?)
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        peer_addr(&self.io)
    }

    /// Disables (`true`) or enables Nagle's algorithm.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.io.with_socket(|s| s.set_nodelay(nodelay))
    }

    /// Whether Nagle's algorithm is off (`TCP_NODELAY`).
    pub fn nodelay(&self) -> io::Result<bool> {
        self.io.with_socket(|s| s.nodelay())
    }

    /// `SO_LINGER`: `Some(d)` makes the close wait up to `d` for unsent data (`Some(0)`: reset at close);
    /// `None` (the default) closes in the background.
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        self.io.with_socket(|s| s.set_linger(linger))
    }

    /// The `SO_LINGER` setting.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        self.io.with_socket(|s| s.linger())
    }

    /// `IP_TTL`: the time-to-live of outgoing packets.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.io.with_socket(|s| s.set_ttl(ttl))
    }

    /// The `IP_TTL` setting.
    pub fn ttl(&self) -> io::Result<u32> {
        self.io.with_socket(|s| s.ttl())
    }

    /// Enables keep-alive probes after `idle` without traffic, or disables them with `None`.
    pub fn set_keepalive(&self, idle: Option<Duration>) -> io::Result<()> {
        self.io.with_socket(|s| set_keepalive(s, idle))
    }

    /// Shuts down the write side once queued bytes are written: the peer reads end-of-stream. Reading goes on.
    pub async fn shutdown(&self) -> io::Result<()> {
        poll_fn(|cx| self.io.poll_shutdown(cx)).await
    }
}

/// Keep-alive on the connection's socket, as libuv's `uv_tcp_keepalive`: whole seconds (at least 1), probes
/// every second, 10 of them (Windows: the count is the system's).
fn set_keepalive(sock: socket2::SockRef<'_>, idle: Option<Duration>) -> io::Result<()> {
    match idle {
        None => sock.set_keepalive(false),
        Some(idle) => {
            let secs = Duration::from_secs(idle.as_secs().max(1));
            let ka = socket2::TcpKeepalive::new().with_time(secs).with_interval(Duration::from_secs(1));
            #[cfg(not(windows))]
            let ka = ka.with_retries(10);
            sock.set_keepalive(true)?;
            sock.set_tcp_keepalive(&ka)
        }
    }
}

fn peer_addr(io: &AnyStream<uv::Tcp>) -> io::Result<SocketAddr> {
    inet(io.with_socket(|s| s.peer_addr())?)
}

impl std::fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpStream")
            .field("local_addr", &self.local_addr().ok())
            .field("peer_addr", &self.peer_addr().ok())
            .finish()
    }
}

owned_halves!(TcpStream, uv::Tcp, SocketAddr);

crate::net::io::os_socket!(TcpStream, io);

crate::net::io::os_socket!(TcpListener, inner);
