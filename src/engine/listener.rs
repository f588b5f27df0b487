//! The listener role's dispatch: [`AnyListener`] accepts connections on whichever engine the runtime chose
//! when it was bound, and hands them out as [`AnyStream`]s of the same engine.

use std::io;
#[cfg(target_os = "linux")]
use std::rc::Rc;
use std::task::{Context, Poll};

use socket2::{SockAddr, SockRef, Socket};

#[cfg(target_os = "linux")]
use super::{epoll, io_uring::net as uring};
use super::{libuv, AnyStream, Engine, SocketEngine};
use crate::uv::stream::StreamKind;

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

    /// Takes over a bound socket (listening or not) and listens on `engine`, with uvio's backlog.
    pub(crate) fn from_std(engine: &Engine, sock: Socket) -> io::Result<AnyListener<T>> {
        // Every engine listens again (libuv's `uv_listen` always does): with the backlog the socket already has.
        let backlog = backlog_of(&sock);
        Ok(match engine.socket_engine(true)? {
            #[cfg(target_os = "linux")]
            SocketEngine::Uring(driver) => AnyListener::Uring(uring::Listener::from_std(&driver, sock, backlog)?),
            #[cfg(target_os = "linux")]
            SocketEngine::Epoll(reactor) => AnyListener::Epoll(epoll::Listener::from_std(&reactor, sock, backlog)?),
            SocketEngine::Libuv => {
                AnyListener::Libuv(libuv::Listener::listen(T::open(&engine.lp, sock)?, backlog, &engine.lingering)?)
            }
        })
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
