//! The stream role's dispatch: [`AnyStream`] carries a connection on whichever engine the runtime chose when the
//! connection was made. Its hot paths (`poll_read`, `poll_write`) are one plain `match`: no box, no `dyn`.

use std::io;
use std::rc::Rc;
use std::task::{Context, Poll};

use socket2::{SockAddr, SockRef, Socket};

#[cfg(target_os = "linux")]
use super::{epoll, io_uring::net as uring};
use super::{libuv, Engine, SocketEngine};
use crate::uv::stream::StreamKind;

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
