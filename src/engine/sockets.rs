//! The socket roles' dispatch: [`AnyStream`] (a connected byte stream), [`AnyListener`] (a listening socket)
//! and [`AnyDatagram`] (a UDP socket) each carry their socket on whichever engine the runtime chose when it was
//! made, with one variant per engine. Which engine a new socket goes to is decided once, in
//! `Engine::socket_engine`. The hot paths (`poll_read`, `poll_write`) are one plain `match`: no box, no `dyn`.
//! (io_uring's runtimes put UDP on the epoll engine's code: see the module docs of `engine`.)

use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::task::{Context, Poll};

use socket2::{SockAddr, SockRef, Socket};

#[cfg(target_os = "linux")]
use super::{epoll, io_uring::net as uring};
use super::{libuv, Engine, SocketEngine};
use crate::uv::stream::StreamKind;
use crate::uv::Membership;

// ---- Stream ----

/// The most one write takes on any engine. The libuv and io_uring engines copy what the kernel does not take
/// at once and stop at their high-water marks (this much); the epoll engine's kernel send buffer alone could
/// take several MiB in one call. One bound for all keeps short counts the same whichever engine runs.
pub(crate) const WRITE_MAX: usize = 256 * 1024;

/// A connected byte stream on some engine; `T` is the libuv handle kind (`uv::Tcp`, `uv::Pipe`) the libuv
/// engine uses for it. Shared (`Rc`) by a stream type and its halves: clones are the same connection.
pub(crate) enum AnyStream<T: StreamKind> {
    /// libuv's streams (`uv_read_start`, `uv_write`).
    Libuv(Rc<libuv::Stream<T>>),
    /// The epoll engine: syscalls straight into the caller's buffer.
    #[cfg(target_os = "linux")]
    Epoll(Rc<epoll::Stream>),
    /// The io_uring engine: recv/send/shutdown operations on the runtime's ring.
    #[cfg(target_os = "linux")]
    Uring(Rc<uring::Stream>),
}

/// Runs `$body` with `$s` bound to the engine's stream, whichever it is.
macro_rules! dispatch {
    ($io:expr, $s:ident => $body:expr) => {
        match $io {
            AnyStream::Libuv($s) => $body,
            #[cfg(target_os = "linux")]
            AnyStream::Epoll($s) => $body,
            #[cfg(target_os = "linux")]
            AnyStream::Uring($s) => $body,
        }
    };
}

impl<T: StreamKind> Clone for AnyStream<T> {
    fn clone(&self) -> Self {
        match self {
            AnyStream::Libuv(s) => AnyStream::Libuv(s.clone()),
            #[cfg(target_os = "linux")]
            AnyStream::Epoll(s) => AnyStream::Epoll(s.clone()),
            #[cfg(target_os = "linux")]
            AnyStream::Uring(s) => AnyStream::Uring(s.clone()),
        }
    }
}

impl<T: libuv::SocketKind> AnyStream<T> {
    /// Connects a new stream socket to `addr` on `engine`. Dropping the future abandons the connect (the socket
    /// closes; on io_uring, once the cancelled connect completed).
    pub(crate) async fn connect(engine: &Engine, addr: &SockAddr) -> io::Result<AnyStream<T>> {
        Ok(match engine.socket_engine(true)? {
            #[cfg(target_os = "linux")]
            SocketEngine::Uring(driver) => AnyStream::Uring(Rc::new(uring::Stream::connect(&driver, addr).await?)),
            #[cfg(target_os = "linux")]
            SocketEngine::Epoll(reactor) => AnyStream::Epoll(Rc::new(epoll::Stream::connect(&reactor, addr).await?)),
            SocketEngine::Libuv => AnyStream::libuv(engine, libuv::connect::<T>(&engine.lp, addr).await?),
        })
    }

    /// Takes over a connected socket on `engine`.
    pub(crate) fn from_std(engine: &Engine, sock: Socket) -> io::Result<AnyStream<T>> {
        Ok(match engine.socket_engine(true)? {
            #[cfg(target_os = "linux")]
            SocketEngine::Uring(driver) => AnyStream::Uring(Rc::new(uring::Stream::new(&driver, sock)?)),
            #[cfg(target_os = "linux")]
            SocketEngine::Epoll(reactor) => AnyStream::Epoll(Rc::new(epoll::Stream::new(&reactor, sock)?)),
            SocketEngine::Libuv => AnyStream::libuv(engine, T::open(&engine.lp, sock)?),
        })
    }

    /// Hands the connection over: flushes the bytes writes accepted, stops reading, and gives back the socket
    /// (blocking, as std makes them) with the bytes received but not read yet. `InvalidInput` if something else
    /// still owns the connection (cannot happen for a whole stream: its halves are gone once it is reunited).
    pub(crate) async fn into_socket(self) -> io::Result<(Socket, Vec<u8>)> {
        std::future::poll_fn(|cx| self.poll_flush(cx)).await?;
        #[cfg(target_os = "linux")]
        let shared = || io::Error::new(io::ErrorKind::InvalidInput, "the connection has other owners");
        match self {
            AnyStream::Libuv(s) => libuv::Stream::into_socket(s),
            #[cfg(target_os = "linux")]
            AnyStream::Epoll(s) => Ok((Rc::try_unwrap(s).map_err(|_| shared())?.into_socket()?, Vec::new())),
            #[cfg(target_os = "linux")]
            AnyStream::Uring(s) => Rc::try_unwrap(s).map_err(|_| shared())?.into_socket(),
        }
    }
}

impl<T: StreamKind> AnyStream<T> {
    /// A libuv stream over `handle`, lingering in `engine`'s registry if dropped with writes queued.
    pub(crate) fn libuv(engine: &Engine, handle: T) -> AnyStream<T> {
        AnyStream::Libuv(libuv::Stream::new(handle, &engine.lingering))
    }

    /// A libuv stream of a runtime that is gone would wait forever: it fails instead, as on the other engines
    /// (which check for themselves).
    fn check_runtime(&self) -> io::Result<()> {
        match self {
            AnyStream::Libuv(s) if s.runtime_gone() => Err(crate::error::runtime_gone()),
            _ => Ok(()),
        }
    }

    /// Reads into `out`: `Ok(0)` at end-of-stream (or for an empty `out`).
    #[inline]
    pub(crate) fn poll_read(&self, cx: &mut Context<'_>, out: &mut [u8]) -> Poll<io::Result<usize>> {
        self.check_runtime()?;
        dispatch!(self, s => s.poll_read(cx, out))
    }

    /// Copies the next bytes into `out` without taking them: the next read returns them again. Bytes an engine
    /// already took from the kernel (libuv's read-ahead, io_uring's kept recv buffer) come first; epoll, which
    /// never reads ahead, peeks the kernel (`MSG_PEEK`). `Ok(0)` at end-of-stream (or for an empty `out`).
    pub(crate) fn poll_peek(&self, cx: &mut Context<'_>, out: &mut [u8]) -> Poll<io::Result<usize>> {
        self.check_runtime()?;
        dispatch!(self, s => s.poll_peek(cx, out))
    }

    /// `poll_read` for a destination that is not a plain slice (tokio's `ReadBuf`): at most `max` bytes are
    /// handed to `take` (called at most once, only when bytes are ready), which copies them out.
    #[cfg(feature = "tokio-io")]
    #[inline]
    pub(crate) fn poll_read_with(
        &self,
        cx: &mut Context<'_>,
        max: usize,
        take: impl FnOnce(&[u8]),
    ) -> Poll<io::Result<usize>> {
        self.check_runtime()?;
        dispatch!(self, s => s.poll_read_with(cx, max, take))
    }

    /// Takes at most [`WRITE_MAX`] bytes of `data`, whatever the engine.
    #[inline]
    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.check_runtime()?;
        let data = &data[..data.len().min(WRITE_MAX)];
        dispatch!(self, s => s.poll_write(cx, data))
    }

    /// Ready once every byte writes accepted is the kernel's.
    pub(crate) fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check_runtime()?;
        dispatch!(self, s => s.poll_flush(cx))
    }

    /// Flushes, then shuts the write side down: the peer reads end-of-stream.
    pub(crate) fn poll_shutdown(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check_runtime()?;
        dispatch!(self, s => s.poll_shutdown(cx))
    }

    /// For the `Drop` of a user-facing owner: a libuv stream lingers if this was its last owner and writes are
    /// still queued; an epoll socket has no queue (the kernel has every accepted byte) and just closes; a ring
    /// socket's queued sends own the socket until they complete (see `io_uring::net::Stream`'s `Drop`).
    pub(crate) fn release_if_last(&self) {
        match self {
            AnyStream::Libuv(s) => libuv::Stream::release_if_last(s),
            #[cfg(target_os = "linux")]
            AnyStream::Epoll(_) | AnyStream::Uring(_) => {}
        }
    }

    /// Whether both are the same connection (for `reunite`).
    pub(crate) fn same(&self, other: &AnyStream<T>) -> bool {
        match (self, other) {
            (AnyStream::Libuv(a), AnyStream::Libuv(b)) => Rc::ptr_eq(a, b),
            #[cfg(target_os = "linux")]
            (AnyStream::Epoll(a), AnyStream::Epoll(b)) => Rc::ptr_eq(a, b),
            #[cfg(target_os = "linux")]
            (AnyStream::Uring(a), AnyStream::Uring(b)) => Rc::ptr_eq(a, b),
            #[cfg(target_os = "linux")]
            _ => false,
        }
    }

    /// Runs `f` on the connection's socket (addresses, options): the same calls on every engine.
    pub(crate) fn with_socket<R>(&self, f: impl FnOnce(SockRef<'_>) -> io::Result<R>) -> io::Result<R> {
        match self {
            AnyStream::Libuv(s) => s.handle().owned().with_socket(f),
            #[cfg(target_os = "linux")]
            AnyStream::Epoll(s) => f(SockRef::from(s.socket())),
            #[cfg(target_os = "linux")]
            AnyStream::Uring(s) => f(SockRef::from(s.socket())),
        }
    }
}

impl AnyStream<crate::uv::Tcp> {
    /// Connects `sock`, a TCP socket the caller made and configured (`net::TcpSocket`), to `addr` on `engine`.
    pub(crate) async fn connect_socket(engine: &Engine, sock: Socket, addr: &SockAddr) -> io::Result<Self> {
        Ok(match engine.socket_engine(true)? {
            #[cfg(target_os = "linux")]
            SocketEngine::Uring(driver) => {
                AnyStream::Uring(Rc::new(uring::Stream::connect_socket(&driver, sock, addr).await?))
            }
            #[cfg(target_os = "linux")]
            SocketEngine::Epoll(reactor) => {
                AnyStream::Epoll(Rc::new(epoll::Stream::connect_socket(&reactor, sock, addr).await?))
            }
            SocketEngine::Libuv => AnyStream::libuv(engine, libuv::connect_tcp_socket(&engine.lp, sock, addr).await?),
        })
    }
}

/// Windows named pipes: libuv streams only (no socket, no other engine).
#[cfg(windows)]
impl AnyStream<crate::uv::Pipe> {
    /// Connects to the pipe `name` (`uv_pipe_connect2`). Dropping the future cancels the connect.
    pub(crate) async fn connect_named_pipe(engine: &Engine, name: &std::path::Path) -> io::Result<Self> {
        Ok(AnyStream::libuv(engine, libuv::connect_named_pipe(&engine.lp, name).await?))
    }
}

// ---- Listener ----

/// Connections the OS may queue before `accept` (the listen backlog) for a listener uvio makes.
pub(crate) const BACKLOG: i32 = 1024;

/// The backlog to listen again with for a socket handed over: the one it listens with already where the OS says
/// (Linux: a listening TCP socket's `TCP_INFO` holds it), else [`BACKLOG`].
fn backlog_of(sock: &Socket) -> i32 {
    #[cfg(target_os = "linux")]
    if let Some(backlog) = linux_tcp_backlog(sock) {
        return backlog;
    }
    let _ = sock;
    BACKLOG
}

/// A listening TCP socket's backlog (`tcpi_sacked` of `TCP_INFO` while in `TCP_LISTEN`), `None` for anything
/// else (not TCP, not listening yet).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)] // one getsockopt into a plain C struct
fn linux_tcp_backlog(sock: &Socket) -> Option<i32> {
    use std::os::fd::AsRawFd;
    const TCP_LISTEN: u8 = 10;
    // SAFETY: `tcp_info` is plain integers: all-zero is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: an open descriptor, and a valid out-pointer with its length; the kernel writes at most `len` bytes.
    let ret =
        unsafe { libc::getsockopt(sock.as_raw_fd(), libc::SOL_TCP, libc::TCP_INFO, (&raw mut info).cast(), &mut len) };
    (ret == 0 && info.tcpi_state == TCP_LISTEN).then(|| i32::try_from(info.tcpi_sacked).unwrap_or(i32::MAX))
}

/// A listening stream socket on some engine; `T` is the libuv handle kind of its connections.
pub(crate) enum AnyListener<T: StreamKind> {
    Libuv(libuv::Listener<T>),
    #[cfg(target_os = "linux")]
    Epoll(epoll::Listener),
    #[cfg(target_os = "linux")]
    Uring(uring::Listener),
}

impl<T: libuv::SocketKind> AnyListener<T> {
    /// A new socket bound to `addr`, listening on `engine` (`SO_REUSEADDR` first for internet addresses, as
    /// libuv does for TCP).
    pub(crate) fn bind(engine: &Engine, addr: &SockAddr) -> io::Result<AnyListener<T>> {
        #[cfg(target_os = "linux")]
        let reuse_addr = addr.is_ipv4() || addr.is_ipv6();
        Ok(match engine.socket_engine(true)? {
            #[cfg(target_os = "linux")]
            SocketEngine::Uring(driver) => AnyListener::Uring(uring::Listener::bind(&driver, addr, reuse_addr)?),
            #[cfg(target_os = "linux")]
            SocketEngine::Epoll(reactor) => AnyListener::Epoll(epoll::Listener::bind(&reactor, addr, reuse_addr)?),
            SocketEngine::Libuv => {
                AnyListener::Libuv(libuv::Listener::listen(T::bind(&engine.lp, addr)?, BACKLOG, &engine.lingering)?)
            }
        })
    }

    /// Takes over a bound socket (listening or not) and listens on `engine`, with uvio's backlog. `shared`:
    /// other loops accept from the same socket, so none should take connections ahead of its tasks, and one
    /// connection should wake one idle loop (epoll: `EPOLLEXCLUSIVE` in libuv's set; io_uring: single-shot
    /// accepts; libuv: one accept at a time, which is libuv's way on Unix and asked for on Windows).
    pub(crate) fn from_std(engine: &Engine, sock: Socket, shared: bool) -> io::Result<AnyListener<T>> {
        // Every engine listens again (libuv's `uv_listen` always does): with the backlog the socket already has.
        let backlog = backlog_of(&sock);
        Ok(match engine.socket_engine(true)? {
            #[cfg(target_os = "linux")]
            SocketEngine::Uring(driver) => {
                AnyListener::Uring(uring::Listener::from_std(&driver, sock, backlog, shared)?)
            }
            #[cfg(target_os = "linux")]
            SocketEngine::Epoll(reactor) if shared => {
                AnyListener::Epoll(epoll::Listener::from_std_shared(&reactor, &engine.lp, sock, backlog)?)
            }
            #[cfg(target_os = "linux")]
            SocketEngine::Epoll(reactor) => AnyListener::Epoll(epoll::Listener::from_std(&reactor, sock, backlog)?),
            SocketEngine::Libuv => {
                let handle = T::open(&engine.lp, sock)?;
                if shared {
                    handle.single_accept()?;
                }
                AnyListener::Libuv(libuv::Listener::listen(handle, backlog, &engine.lingering)?)
            }
        })
    }

    /// Wake-ups that found no connection to accept (another loop took it). Only the epoll engine can tell:
    /// io_uring completes an accept on one ring per connection, and libuv drops its `EAGAIN` silently.
    pub(crate) fn empty_wakeups(&self) -> u64 {
        match self {
            #[cfg(target_os = "linux")]
            AnyListener::Epoll(l) => l.empty_wakeups(),
            _ => 0,
        }
    }

    /// The next connection and its peer's address; waits when none is pending. A dropped accept loses no
    /// connection. A connection reset before it was accepted is skipped where the engine cannot tell its peer
    /// (libuv: `uv_accept` gives no address, and the kernel no longer knows it).
    pub(crate) fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(AnyStream<T>, SockAddr)>> {
        match self {
            AnyListener::Libuv(l) => loop {
                let conn = std::task::ready!(l.poll_accept(cx))?;
                match conn.owned().with_socket(|s| s.peer_addr()) {
                    Ok(peer) => return Poll::Ready(Ok((AnyStream::Libuv(l.stream(conn)?), peer))),
                    // Reset by its peer before it was accepted: the kernel no longer knows the peer's address.
                    // The other engines read the address from accept(2) itself and hand such a connection out
                    // (its first read fails); `uv_accept` gives none, so this one is dropped and the next awaited.
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => continue,
                    Err(e) => return Poll::Ready(Err(e)),
                }
            },
            #[cfg(target_os = "linux")]
            AnyListener::Epoll(l) => {
                let (conn, peer) = std::task::ready!(l.poll_accept(cx))?;
                Poll::Ready(Ok((AnyStream::Epoll(Rc::new(conn)), peer)))
            }
            #[cfg(target_os = "linux")]
            AnyListener::Uring(l) => {
                let (conn, peer) = std::task::ready!(l.poll_accept(cx))?;
                Poll::Ready(Ok((AnyStream::Uring(Rc::new(conn)), peer)))
            }
        }
    }

    /// Stops listening here and hands the socket back (blocking), with the connections the engine had already
    /// accepted but not given out, oldest first (libuv: at most one, several on Windows; io_uring: up to its
    /// accept queue; epoll: none). New connections wait in the kernel's backlog for the new owner.
    pub(crate) fn into_socket(self) -> io::Result<(Socket, Vec<Socket>)> {
        let (listener, accepted) = match self {
            AnyListener::Libuv(l) => l.into_socket()?,
            #[cfg(target_os = "linux")]
            AnyListener::Epoll(l) => l.into_socket()?,
            #[cfg(target_os = "linux")]
            AnyListener::Uring(l) => l.into_socket()?,
        };
        listener.set_nonblocking(false)?;
        for sock in &accepted {
            sock.set_nonblocking(false)?;
        }
        Ok((listener, accepted))
    }
}

impl<T: StreamKind> AnyListener<T> {
    /// Runs `f` on the listening socket (its address): the same calls on every engine.
    pub(crate) fn with_socket<R>(&self, f: impl FnOnce(SockRef<'_>) -> io::Result<R>) -> io::Result<R> {
        match self {
            AnyListener::Libuv(l) => l.handle().owned().with_socket(f),
            #[cfg(target_os = "linux")]
            AnyListener::Epoll(l) => f(SockRef::from(l.socket())),
            #[cfg(target_os = "linux")]
            AnyListener::Uring(l) => f(SockRef::from(l.socket())),
        }
    }
}

/// Windows named pipes: libuv listeners only (no socket, no other engine).
#[cfg(windows)]
impl AnyListener<crate::uv::Pipe> {
    /// Creates the pipe `name` and listens (`uv_pipe_bind2`, `uv_listen`).
    pub(crate) fn bind_named_pipe(engine: &Engine, name: &std::path::Path) -> io::Result<Self> {
        let pipe = crate::uv::Pipe::new(&engine.lp, false)?;
        pipe.bind(name)?;
        Ok(AnyListener::Libuv(libuv::Listener::listen(pipe, BACKLOG, &engine.lingering)?))
    }

    /// The next client.
    pub(crate) fn poll_accept_named_pipe(&self, cx: &mut Context<'_>) -> Poll<io::Result<AnyStream<crate::uv::Pipe>>> {
        let AnyListener::Libuv(l) = self;
        let pipe = std::task::ready!(l.poll_accept(cx))?;
        Poll::Ready(Ok(AnyStream::Libuv(l.stream(pipe)?)))
    }

    /// The pipe's name (`uv_pipe_getsockname`).
    pub(crate) fn pipe_name(&self) -> io::Result<std::path::PathBuf> {
        let AnyListener::Libuv(l) = self;
        Ok(l.handle().local_name()?)
    }
}

// ---- Datagram ----

/// A UDP socket on some engine.
pub(crate) enum AnyDatagram {
    Libuv(Rc<libuv::Datagram>),
    #[cfg(target_os = "linux")]
    Epoll(epoll::Datagram),
}

impl AnyDatagram {
    /// Runs `f` on the socket: the same call on every engine.
    pub(crate) fn with_socket<R>(&self, f: impl FnOnce(socket2::SockRef<'_>) -> io::Result<R>) -> io::Result<R> {
        match self {
            AnyDatagram::Libuv(d) => d.with_socket(f),
            #[cfg(target_os = "linux")]
            AnyDatagram::Epoll(d) => f(socket2::SockRef::from(d.socket())),
        }
    }

    /// A new socket bound to `addr` on `engine` (without `SO_REUSEADDR`: an address in use is `AddrInUse`).
    pub(crate) fn bind(engine: &Engine, addr: SocketAddr) -> io::Result<AnyDatagram> {
        Ok(match engine.socket_engine(false)? {
            #[cfg(target_os = "linux")]
            SocketEngine::Epoll(reactor) => AnyDatagram::Epoll(epoll::Datagram::bind(&reactor, addr)?),
            #[cfg(target_os = "linux")]
            SocketEngine::Uring(_) => unreachable!("datagrams are never asked for the ring"),
            SocketEngine::Libuv => AnyDatagram::Libuv(libuv::Datagram::bind(&engine.lp, addr, &engine.lingering)?),
        })
    }

    /// Takes over a bound socket (made non-blocking) on `engine`.
    pub(crate) fn from_std(engine: &Engine, sock: std::net::UdpSocket) -> io::Result<AnyDatagram> {
        Ok(match engine.socket_engine(false)? {
            #[cfg(target_os = "linux")]
            SocketEngine::Epoll(reactor) => AnyDatagram::Epoll(epoll::Datagram::new(&reactor, sock)?),
            #[cfg(target_os = "linux")]
            SocketEngine::Uring(_) => unreachable!("datagrams are never asked for the ring"),
            SocketEngine::Libuv => AnyDatagram::Libuv(libuv::Datagram::from_std(&engine.lp, sock, &engine.lingering)?),
        })
    }

    /// A libuv socket of a runtime that is gone would wait forever: it fails instead (the epoll engine checks
    /// for itself).
    fn check_runtime(&self) -> io::Result<()> {
        match self {
            AnyDatagram::Libuv(d) if d.runtime_gone() => Err(crate::error::runtime_gone()),
            _ => Ok(()),
        }
    }

    /// Hands the socket over (blocking): first waits until queued sends reached the kernel, then gives back the
    /// datagrams received but not read yet, oldest first, with their senders (libuv: up to its queue; epoll:
    /// none).
    pub(crate) async fn into_socket(self) -> io::Result<(Socket, libuv::udp::Unread)> {
        match &self {
            AnyDatagram::Libuv(d) => {
                let d = d.clone();
                poll_fn(|cx| d.poll_sends_done(cx)).await;
                drop(self); // nothing queued: it does not linger
                libuv::Datagram::into_socket(d)
            }
            #[cfg(target_os = "linux")]
            AnyDatagram::Epoll(d) => {
                let copy = Socket::from(d.socket().try_clone()?);
                copy.set_nonblocking(false)?;
                Ok((copy, Vec::new())) // dropping `self` closes the original
            }
        }
    }

    /// Connects to `addr` (a connected socket gets the new peer).
    pub(crate) fn connect(&self, addr: SocketAddr) -> io::Result<()> {
        match self {
            AnyDatagram::Libuv(d) => d.connect(addr),
            #[cfg(target_os = "linux")]
            AnyDatagram::Epoll(d) => d.connect(addr),
        }
    }

    /// Sends one datagram (to `target`, or to the peer when `None`) and waits until the kernel has it.
    pub(crate) async fn send_to(&self, buf: &[u8], target: Option<SocketAddr>) -> io::Result<usize> {
        self.check_runtime()?;
        match self {
            AnyDatagram::Libuv(d) => d.send(buf, target).await,
            #[cfg(target_os = "linux")]
            AnyDatagram::Epoll(d) => poll_fn(|cx| d.poll_send_to(cx, buf, target)).await,
        }
    }

    /// Sends one datagram: `Ready(Ok(len))` once the kernel took it or it was queued (the error of a queued
    /// one comes out of the next send).
    pub(crate) fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        target: Option<SocketAddr>,
    ) -> Poll<io::Result<usize>> {
        self.check_runtime()?;
        match self {
            AnyDatagram::Libuv(d) => d.poll_send(cx, buf, target, false).map_ok(|_| buf.len()),
            #[cfg(target_os = "linux")]
            AnyDatagram::Epoll(d) => d.poll_send_to(cx, buf, target),
        }
    }

    /// Sends one datagram now, or `WouldBlock`.
    pub(crate) fn try_send_to(&self, buf: &[u8], target: Option<SocketAddr>) -> io::Result<usize> {
        match self {
            AnyDatagram::Libuv(d) => d.try_send_to(buf, target),
            #[cfg(target_os = "linux")]
            AnyDatagram::Epoll(d) => d.try_send_to(buf, target),
        }
    }

    /// Receives one datagram into `buf` (truncated to its length), with its sender. A dropped receive loses
    /// nothing.
    pub(crate) fn poll_recv_from(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<(usize, SocketAddr)>> {
        self.check_runtime()?;
        match self {
            AnyDatagram::Libuv(d) => d.poll_recv_from(Some(cx), buf),
            #[cfg(target_os = "linux")]
            AnyDatagram::Epoll(d) => d.poll_recv_from(cx, buf),
        }
    }

    /// Receives a datagram that has already arrived, or `WouldBlock`.
    pub(crate) fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        match self {
            AnyDatagram::Libuv(d) => d.try_recv_from(buf),
            #[cfg(target_os = "linux")]
            AnyDatagram::Epoll(d) => d.try_recv_from(buf),
        }
    }

    /// The local address.
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            AnyDatagram::Libuv(d) => Ok(d.udp().local_addr()?),
            #[cfg(target_os = "linux")]
            AnyDatagram::Epoll(d) => d.socket().local_addr(),
        }
    }

    /// The connected peer's address; `NotConnected` when not connected.
    pub(crate) fn peer_addr(&self) -> io::Result<SocketAddr> {
        match self {
            AnyDatagram::Libuv(d) => Ok(d.udp().peer_addr()?),
            #[cfg(target_os = "linux")]
            AnyDatagram::Epoll(d) => d.socket().peer_addr(),
        }
    }

    /// `SO_BROADCAST`.
    pub(crate) fn set_broadcast(&self, on: bool) -> io::Result<()> {
        match self {
            AnyDatagram::Libuv(d) => Ok(d.udp().set_broadcast(on)?),
            #[cfg(target_os = "linux")]
            AnyDatagram::Epoll(d) => d.socket().set_broadcast(on),
        }
    }

    /// The time-to-live of outgoing unicast datagrams (1 through 255, checked by the caller).
    pub(crate) fn set_ttl(&self, ttl: u8) -> io::Result<()> {
        match self {
            AnyDatagram::Libuv(d) => Ok(d.udp().set_ttl(ttl)?),
            #[cfg(target_os = "linux")]
            AnyDatagram::Epoll(d) => d.socket().set_ttl(ttl.into()),
        }
    }

    /// The time-to-live of outgoing IPv4 multicast datagrams.
    pub(crate) fn set_multicast_ttl_v4(&self, ttl: u8) -> io::Result<()> {
        match self {
            AnyDatagram::Libuv(d) => Ok(d.udp().set_multicast_ttl(ttl)?),
            #[cfg(target_os = "linux")]
            AnyDatagram::Epoll(d) => d.socket().set_multicast_ttl_v4(ttl.into()),
        }
    }

    /// Whether multicast datagrams loop back to local sockets (`v6`: the IPv6 option, else the IPv4 one).
    pub(crate) fn set_multicast_loop(&self, on: bool, v6: bool) -> io::Result<()> {
        match self {
            // libuv picks the option by the socket's family.
            AnyDatagram::Libuv(d) => {
                let _ = v6;
                Ok(d.udp().set_multicast_loop(on)?)
            }
            #[cfg(target_os = "linux")]
            AnyDatagram::Epoll(d) if v6 => d.socket().set_multicast_loop_v6(on),
            #[cfg(target_os = "linux")]
            AnyDatagram::Epoll(d) => d.socket().set_multicast_loop_v4(on),
        }
    }

    /// Joins or leaves a multicast group; `interface` as libuv takes it (an IPv4 address, or an IPv6 address
    /// with a scope naming the interface, or `None`: the system's choice).
    pub(crate) fn set_membership(&self, group: IpAddr, interface: Option<&str>, m: Membership) -> io::Result<()> {
        match self {
            AnyDatagram::Libuv(d) => Ok(d.udp().set_membership(group, interface, m)?),
            #[cfg(target_os = "linux")]
            AnyDatagram::Epoll(d) => d.set_membership(group, interface, m),
        }
    }
}

impl Drop for AnyDatagram {
    /// A libuv socket with sends still queued lingers until they reach the kernel; the epoll engine queues
    /// nothing (its socket leaves the epoll set and closes).
    fn drop(&mut self) {
        match self {
            AnyDatagram::Libuv(d) => d.linger_while_sending(),
            #[cfg(target_os = "linux")]
            AnyDatagram::Epoll(_) => {}
        }
    }
}

/// The OS handle of a socket role (`AsFd`/`AsSocket` of the public types), borrowed for as long as the role
/// value: every engine closes its socket only once the value is dropped or handed over (`into_socket`), and both
/// take it by value.
macro_rules! os_handle {
    ($(impl$(<$t:ident: $bound:path>)? for $ty:ty;)*) => {$(
        impl$(<$t: $bound>)? $ty {
            #[cfg(unix)]
            #[allow(unsafe_code)] // one borrow of the socket's own descriptor
            pub(crate) fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                let raw = self
                    .with_socket(|s| Ok(std::os::fd::AsRawFd::as_raw_fd(&*s)))
                    .expect("an open socket has a descriptor");
                // SAFETY: the descriptor is this value's own open socket (not -1), and it stays open while `self`
                // is borrowed (see the macro's docs).
                unsafe { std::os::fd::BorrowedFd::borrow_raw(raw) }
            }

            #[cfg(windows)]
            #[allow(unsafe_code)] // one borrow of the socket's own handle
            pub(crate) fn as_socket(&self) -> std::os::windows::io::BorrowedSocket<'_> {
                let raw = self
                    .with_socket(|s| Ok(std::os::windows::io::AsRawSocket::as_raw_socket(&*s)))
                    .expect("an open socket has a handle");
                // SAFETY: as for `as_fd`: this value's own open socket (not INVALID_SOCKET), open while `self`
                // is borrowed.
                unsafe { std::os::windows::io::BorrowedSocket::borrow_raw(raw) }
            }
        }
    )*};
}

os_handle! {
    impl<T: StreamKind> for AnyStream<T>;
    impl<T: StreamKind> for AnyListener<T>;
    impl for AnyDatagram;
}
