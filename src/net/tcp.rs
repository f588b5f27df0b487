//! [`TcpListener`] and [`TcpStream`]: async TCP over libuv's `uv_tcp_t`, or on Linux over the epoll engine's
//! non-blocking sockets or the io_uring engine's ring operations when the runtime runs that engine (see
//! [`crate::engine`]).

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
#[cfg(target_os = "linux")]
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use super::addr::ToSocketAddrs;
use super::io::{owned_halves, StreamIo};
use super::listener::Listener;
#[cfg(target_os = "linux")]
use crate::engine::epoll;
#[cfg(target_os = "linux")]
use crate::engine::io_uring::net as uring;
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
    inner: ListenerIo,
}

/// The listening socket, on the engine the runtime had when it was bound.
enum ListenerIo {
    Libuv(Listener<uv::Tcp>),
    #[cfg(target_os = "linux")]
    Epoll(epoll::Sock),
    #[cfg(target_os = "linux")]
    Uring(uring::Listener),
}

/// An internet address from the socket layer (a TCP socket never has another kind).
#[cfg(target_os = "linux")]
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
        #[cfg(target_os = "linux")]
        if let Some(driver) = super::io::uring_sockets() {
            return Ok(TcpListener { inner: ListenerIo::Uring(uring::Listener::listen(&driver, &addr.into(), true)?) });
        }
        #[cfg(target_os = "linux")]
        if super::io::epoll_sockets() {
            return Ok(TcpListener { inner: ListenerIo::Epoll(epoll::Sock::listen(&addr.into(), true)?) });
        }
        let ex = crate::runtime::current();
        let tcp = uv::Tcp::new(&ex.lp)?;
        tcp.bind(addr)?;
        Ok(TcpListener { inner: ListenerIo::Libuv(Listener::listen(tcp)?) })
    }

    /// Takes over a bound std listener (set to listen here). Must be called inside a uvio runtime.
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        #[cfg(target_os = "linux")]
        if let Some(driver) = super::io::uring_sockets() {
            let listener = uring::Listener::from_listening(&driver, listener.into())?;
            return Ok(TcpListener { inner: ListenerIo::Uring(listener) });
        }
        #[cfg(target_os = "linux")]
        if super::io::epoll_sockets() {
            return Ok(TcpListener { inner: ListenerIo::Epoll(epoll::Sock::from_listening(listener.into())?) });
        }
        let ex = crate::runtime::current();
        Ok(TcpListener { inner: ListenerIo::Libuv(Listener::listen(uv::Tcp::open_listener(&ex.lp, listener)?)?) })
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
        let (listener, accepted): (socket2::Socket, Vec<socket2::Socket>) = match self.inner {
            ListenerIo::Libuv(l) => {
                let (handle, accepted) = l.into_parts()?;
                let accepted = accepted.into_iter().map(uv::Tcp::into_socket).collect::<io::Result<_>>()?;
                (handle.into_socket()?, accepted)
            }
            #[cfg(target_os = "linux")]
            ListenerIo::Epoll(l) => (l.into_socket()?, Vec::new()),
            #[cfg(target_os = "linux")]
            ListenerIo::Uring(l) => l.into_parts()?,
        };
        Ok((listener.into(), accepted.into_iter().map(Into::into).collect()))
    }

    /// Waits for the next connection.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Polls for the next connection (for hand-written futures and streams).
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        std::task::ready!(crate::runtime::coop::poll_proceed(cx));
        match &self.inner {
            ListenerIo::Libuv(l) => loop {
                let conn = std::task::ready!(l.poll_accept(cx))?;
                match conn.peer_addr() {
                    Ok(peer) => return Poll::Ready(Ok((TcpStream::from_uv(conn), peer))),
                    // Reset by its peer before it was accepted: the kernel no longer knows the peer's address.
                    // The other engines read the address from accept(2) itself and hand such a connection out
                    // (its first read fails); `uv_accept` gives none, so this one is dropped and the next awaited.
                    Err(Error::ENOTCONN) => continue,
                    Err(e) => return Poll::Ready(Err(e.into())),
                }
            },
            #[cfg(target_os = "linux")]
            ListenerIo::Epoll(l) => {
                let (conn, peer) = std::task::ready!(l.poll_accept(cx))?;
                Poll::Ready(Ok((TcpStream { io: StreamIo::Epoll(Rc::new(conn)) }, inet(peer)?)))
            }
            #[cfg(target_os = "linux")]
            ListenerIo::Uring(l) => {
                let (conn, peer) = std::task::ready!(l.poll_accept(cx))?;
                Poll::Ready(Ok((TcpStream { io: StreamIo::Uring(Rc::new(conn)) }, inet(peer)?)))
            }
        }
    }

    /// The connections as a `Stream` (never ends; errors are items).
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The bound address (with the actual port when bound to port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.inner {
            ListenerIo::Libuv(l) => Ok(l.handle().local_addr()?),
            #[cfg(target_os = "linux")]
            ListenerIo::Epoll(l) => inet(l.socket().local_addr()?),
            #[cfg(target_os = "linux")]
            ListenerIo::Uring(l) => inet(l.socket().local_addr()?),
        }
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
    io: StreamIo<uv::Tcp>,
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
        #[cfg(target_os = "linux")]
        if let Some(driver) = super::io::uring_sockets() {
            let conn = uring::Conn::connect(&driver, &addr.into()).await?;
            return Ok(TcpStream { io: StreamIo::Uring(Rc::new(conn)) });
        }
        #[cfg(target_os = "linux")]
        if super::io::epoll_sockets() {
            let sock = epoll::Sock::connect(&addr.into()).await?;
            return Ok(TcpStream { io: StreamIo::Epoll(Rc::new(sock)) });
        }
        let ex = crate::runtime::current();
        let tcp = uv::Tcp::new(&ex.lp)?;
        let (replier, reply) = crate::reply::reply();
        tcp.connect(addr, move |_, res| replier.send(res))?;
        // Dropping this future drops `tcp`, which cancels the connect (its callback sees ECANCELED).
        reply.await.unwrap_or(Err(Error::ECANCELED))?;
        Ok(TcpStream::from_uv(tcp))
    }

    pub(crate) fn from_uv(tcp: uv::Tcp) -> TcpStream {
        TcpStream { io: StreamIo::libuv(tcp) }
    }

    /// Takes over a connected std socket. Must be called inside a uvio runtime.
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        #[cfg(target_os = "linux")]
        if let Some(driver) = super::io::uring_sockets() {
            return Ok(TcpStream { io: StreamIo::Uring(Rc::new(uring::Conn::new(&driver, stream.into())?)) });
        }
        #[cfg(target_os = "linux")]
        if super::io::epoll_sockets() {
            return Ok(TcpStream { io: StreamIo::Epoll(Rc::new(epoll::Sock::new(stream.into())?)) });
        }
        let ex = crate::runtime::current();
        Ok(TcpStream::from_uv(uv::Tcp::open_stream(&ex.lp, stream)?))
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
        let (handed, unread) = io.hand_over().await?;
        let sock = match handed {
            super::io::HandedOver::Libuv(tcp) => tcp.into_socket()?,
            #[cfg(target_os = "linux")]
            super::io::HandedOver::Socket(sock) => sock,
        };
        Ok((sock.into(), unread))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.io {
            StreamIo::Libuv(s) => Ok(s.handle().local_addr()?),
            #[cfg(target_os = "linux")]
            StreamIo::Epoll(s) => inet(s.socket().local_addr()?),
            #[cfg(target_os = "linux")]
            StreamIo::Uring(s) => inet(s.socket().local_addr()?),
        }
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        peer_addr(&self.io)
    }

    /// Disables (`true`) or enables Nagle's algorithm.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        match &self.io {
            StreamIo::Libuv(s) => Ok(s.handle().set_nodelay(nodelay)?),
            #[cfg(target_os = "linux")]
            StreamIo::Epoll(s) => s.socket().set_nodelay(nodelay),
            #[cfg(target_os = "linux")]
            StreamIo::Uring(s) => s.socket().set_nodelay(nodelay),
        }
    }

    /// Enables keep-alive probes after `idle` without traffic, or disables them with `None`.
    pub fn set_keepalive(&self, idle: Option<Duration>) -> io::Result<()> {
        match &self.io {
            StreamIo::Libuv(s) => Ok(s.handle().set_keepalive(idle)?),
            #[cfg(target_os = "linux")]
            StreamIo::Epoll(s) => set_keepalive(s.socket(), idle),
            #[cfg(target_os = "linux")]
            StreamIo::Uring(s) => set_keepalive(s.socket(), idle),
        }
    }

    /// Shuts down the write side once queued bytes are written: the peer reads end-of-stream. Reading goes on.
    pub async fn shutdown(&self) -> io::Result<()> {
        poll_fn(|cx| self.io.poll_shutdown(cx)).await
    }
}

/// Keep-alive on an engine's own socket, as libuv's `uv_tcp_keepalive`: whole seconds (at least 1), probes
/// every second, 10 of them.
#[cfg(target_os = "linux")]
fn set_keepalive(sock: &socket2::Socket, idle: Option<Duration>) -> io::Result<()> {
    match idle {
        None => sock.set_keepalive(false),
        Some(idle) => {
            let secs = Duration::from_secs(idle.as_secs().max(1));
            let ka =
                socket2::TcpKeepalive::new().with_time(secs).with_interval(Duration::from_secs(1)).with_retries(10);
            sock.set_keepalive(true)?;
            sock.set_tcp_keepalive(&ka)
        }
    }
}

fn peer_addr(io: &StreamIo<uv::Tcp>) -> io::Result<SocketAddr> {
    match io {
        StreamIo::Libuv(s) => Ok(s.handle().peer_addr()?),
        #[cfg(target_os = "linux")]
        StreamIo::Epoll(s) => inet(s.socket().peer_addr()?),
        #[cfg(target_os = "linux")]
        StreamIo::Uring(s) => inet(s.socket().peer_addr()?),
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

owned_halves!(TcpStream, uv::Tcp, SocketAddr);
