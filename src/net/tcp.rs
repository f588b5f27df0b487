//! [`TcpListener`] and [`TcpStream`]: async TCP over libuv's `uv_tcp_t`.

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use super::addr::ToSocketAddrs;
use super::listener::Listener;
use super::stream::{async_read, async_write, AsyncStream};
use crate::error::Error;
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
    inner: Listener<uv::Tcp>,
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
        let tcp = uv::Tcp::new(&ex.lp)?;
        tcp.bind(addr)?;
        Ok(TcpListener { inner: Listener::listen(tcp)? })
    }

    /// Takes over a bound std listener (set to listen here). Must be called inside a uvio runtime.
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        let ex = crate::runtime::current();
        Ok(TcpListener { inner: Listener::listen(uv::Tcp::open_listener(&ex.lp, listener)?)? })
    }

    /// Waits for the next connection.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Polls for the next connection (for hand-written futures and streams).
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        let conn = std::task::ready!(self.inner.poll_accept(cx))?;
        let peer = conn.peer_addr()?;
        Poll::Ready(Ok((TcpStream::from_uv(conn), peer)))
    }

    /// The connections as a `Stream` (never ends; errors are items).
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The bound address (with the actual port when bound to port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.inner.handle().local_addr()?)
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
pub struct TcpStream {
    io: Rc<AsyncStream<uv::Tcp>>,
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
        let tcp = uv::Tcp::new(&ex.lp)?;
        let (replier, reply) = crate::runtime::reply::reply();
        tcp.connect(addr, move |_, res| replier.send(res))?;
        // Dropping this future drops `tcp`, which cancels the connect (its callback sees ECANCELED).
        reply.await.unwrap_or(Err(Error::ECANCELED))?;
        Ok(TcpStream::from_uv(tcp))
    }

    pub(crate) fn from_uv(tcp: uv::Tcp) -> TcpStream {
        TcpStream { io: AsyncStream::new(tcp) }
    }

    /// Takes over a connected std socket. Must be called inside a uvio runtime.
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        let ex = crate::runtime::current();
        Ok(TcpStream::from_uv(uv::Tcp::open_stream(&ex.lp, stream)?))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.io.handle().local_addr()?)
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.io.handle().peer_addr()?)
    }

    /// Disables (`true`) or enables Nagle's algorithm.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        Ok(self.io.handle().set_nodelay(nodelay)?)
    }

    /// Enables keep-alive probes after `idle` without traffic, or disables them with `None`.
    pub fn set_keepalive(&self, idle: Option<Duration>) -> io::Result<()> {
        Ok(self.io.handle().set_keepalive(idle)?)
    }

    /// Shuts down the write side once queued bytes are written: the peer reads end-of-stream. Reading goes on.
    pub async fn shutdown(&self) -> io::Result<()> {
        poll_fn(|cx| self.io.poll_shutdown(cx)).await
    }

    /// Splits into a read half and a write half that can move into different tasks. The connection closes
    /// when both are dropped.
    pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        let io = self.io.clone();
        drop(self); // not the last owner: no linger
        (OwnedReadHalf { io: io.clone() }, OwnedWriteHalf { io })
    }
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        AsyncStream::release_if_last(&self.io);
    }
}

impl std::fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpStream")
            .field("local_addr", &self.local_addr().ok())
            .field("peer_addr", &self.peer_addr().ok())
            .finish()
    }
}

async_read!(TcpStream);
async_write!(TcpStream);
async_read!(OwnedReadHalf);
async_write!(OwnedWriteHalf);

/// The read half of [`TcpStream::into_split`].
pub struct OwnedReadHalf {
    io: Rc<AsyncStream<uv::Tcp>>,
}

/// The write half of [`TcpStream::into_split`]; `close()` shuts down the write side.
pub struct OwnedWriteHalf {
    io: Rc<AsyncStream<uv::Tcp>>,
}

impl Drop for OwnedReadHalf {
    fn drop(&mut self) {
        AsyncStream::release_if_last(&self.io);
    }
}

impl Drop for OwnedWriteHalf {
    fn drop(&mut self) {
        AsyncStream::release_if_last(&self.io);
    }
}

impl OwnedReadHalf {
    /// Puts the halves back together; `Err` gives them back if they came from different streams.
    pub fn reunite(self, other: OwnedWriteHalf) -> Result<TcpStream, (OwnedReadHalf, OwnedWriteHalf)> {
        if !Rc::ptr_eq(&self.io, &other.io) {
            return Err((self, other));
        }
        let io = self.io.clone();
        drop((self, other));
        Ok(TcpStream { io })
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.io.handle().peer_addr()?)
    }
}

impl OwnedWriteHalf {
    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.io.handle().peer_addr()?)
    }
}

impl std::fmt::Debug for OwnedReadHalf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnedReadHalf").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for OwnedWriteHalf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnedWriteHalf").finish_non_exhaustive()
    }
}
