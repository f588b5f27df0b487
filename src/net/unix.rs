//! Unix domain sockets: [`UnixListener`] and [`UnixStream`] (Unix only), on the runtime's engine (see
//! [`crate::engine`]; the libuv engine uses its `uv_pipe_t`).
//!
//! The same machinery as TCP: the same engine dispatch for listeners and streams, and the streams follow the
//! same reading, writing, shutdown and no-loss-on-drop rules as [`TcpStream`](super::TcpStream).

use std::future::poll_fn;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use super::io::owned_halves;
use crate::engine::{AnyListener, AnyStream};
use crate::uv;

/// The address of a Unix socket: a filesystem path, a Linux abstract name, or unnamed (the usual case for
/// the client end of a connection).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SocketAddr {
    /// Empty when unnamed; an abstract name starts with a NUL byte.
    name: PathBuf,
}

impl SocketAddr {
    fn new(name: PathBuf) -> SocketAddr {
        use std::os::unix::ffi::OsStrExt;
        // Only Linux has abstract names: elsewhere a leading NUL is the zeroed path of an unnamed socket.
        let unnamed = name.as_os_str().as_bytes().first().is_some_and(|&b| b == 0) && !cfg!(target_os = "linux");
        SocketAddr { name: if unnamed { PathBuf::new() } else { name } }
    }

    /// Whether the socket has no name (it was never bound).
    pub fn is_unnamed(&self) -> bool {
        self.name.as_os_str().is_empty()
    }

    /// The filesystem path the socket is bound to, if it is.
    pub fn as_pathname(&self) -> Option<&Path> {
        use std::os::unix::ffi::OsStrExt;
        let bytes = self.name.as_os_str().as_bytes();
        (!bytes.is_empty() && bytes[0] != 0).then_some(self.name.as_path())
    }

    /// The name in Linux's abstract namespace (without the leading NUL), if the socket is bound to one.
    #[cfg(target_os = "linux")]
    pub fn as_abstract_name(&self) -> Option<&[u8]> {
        use std::os::unix::ffi::OsStrExt;
        self.name.as_os_str().as_bytes().strip_prefix(&[0])
    }
}

/// A Unix address from std's: a pathname, an abstract name (Linux), or unnamed.
#[cfg(target_os = "linux")]
pub(super) fn from_std_addr(addr: &std::os::unix::net::SocketAddr) -> SocketAddr {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::ffi::OsStrExt;
    match (addr.as_pathname(), addr.as_abstract_name()) {
        (Some(path), _) => SocketAddr::new(path.to_path_buf()),
        (None, Some(name)) => SocketAddr::new(PathBuf::from(std::ffi::OsStr::from_bytes(&[&[0u8][..], name].concat()))),
        (None, None) => SocketAddr::new(PathBuf::new()),
    }
}

/// A Unix address from std's: a pathname, or unnamed (only Linux has abstract names).
#[cfg(not(target_os = "linux"))]
pub(super) fn from_std_addr(addr: &std::os::unix::net::SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.as_pathname().map(Path::to_path_buf).unwrap_or_default())
}

/// A Unix address from the socket layer: a pathname, an abstract name (with its leading NUL), or unnamed.
fn from_sockaddr(addr: &socket2::SockAddr) -> SocketAddr {
    use std::os::unix::ffi::OsStrExt;
    let name = match (addr.as_pathname(), addr.as_abstract_namespace()) {
        (Some(path), _) => path.to_path_buf(),
        (None, Some(name)) => PathBuf::from(std::ffi::OsStr::from_bytes(&[&[0u8][..], name].concat())),
        (None, None) => PathBuf::new(),
    };
    SocketAddr::new(name)
}

/// A socket address for `path`, refused with `InvalidInput` when it holds a NUL byte or is too long for
/// `sockaddr_un`.
fn to_sockaddr(path: &Path) -> io::Result<socket2::SockAddr> {
    use std::os::unix::ffi::OsStrExt;
    if path.as_os_str().as_bytes().contains(&0) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"));
    }
    socket2::SockAddr::unix(path).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

impl std::fmt::Debug for SocketAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.as_pathname() {
            Some(path) => write!(f, "{path:?} (pathname)"),
            None if self.is_unnamed() => f.write_str("(unnamed)"),
            None => write!(f, "{:?} (abstract)", self.name),
        }
    }
}

/// A Unix socket listener: binds to a path, then yields connections with [`accept`](UnixListener::accept) or
/// [`incoming`](UnixListener::incoming). The socket file it bound is removed when the listener is dropped;
/// binding where a file already exists is `AddrInUse`.
///
/// ```
/// use futures::{AsyncReadExt, AsyncWriteExt};
/// use uvio::net::{UnixListener, UnixStream};
///
/// let path = std::env::temp_dir().join(format!("uvio-doc-unix-{}.sock", std::process::id()));
/// uvio::block_on(async {
///     let listener = UnixListener::bind(&path)?;
///     let server = uvio::spawn_local(async move {
///         let (mut conn, _) = listener.accept().await?;
///         conn.write_all(b"hi").await?;
///         std::io::Result::Ok(())
///     });
///     let mut client = UnixStream::connect(&path).await?;
///     let mut buf = [0u8; 2];
///     client.read_exact(&mut buf).await?;
///     assert_eq!(&buf, b"hi");
///     server.await??;
///     std::io::Result::Ok(())
/// }).unwrap();
/// assert!(!path.exists());
/// ```
pub struct UnixListener {
    // Field order matters: the socket closes before its file is removed.
    inner: AnyListener<uv::Pipe>,
    bound: BoundPath,
}

/// The socket file a listener made with [`UnixListener::bind`], removed when it drops (`None`: taken over with
/// `from_std`, or handed over with `into_std`: not ours to remove).
struct BoundPath(Option<PathBuf>);

impl Drop for BoundPath {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl UnixListener {
    /// Binds to `path` and listens. A NUL byte in the path, or a path longer than `sockaddr_un` holds (about
    /// 100 bytes), is `InvalidInput`; a file already there is `AddrInUse`. The socket file is removed when the
    /// listener is dropped. Must be called inside a uvio runtime.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        let path = path.as_ref();
        let sock = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None)?;
        sock.bind(&to_sockaddr(path)?)?;
        // From here on the file is ours: removed if listening fails, else when the listener drops.
        let bound = BoundPath(Some(path.to_path_buf()));
        let ex = crate::runtime::current();
        Ok(UnixListener { inner: AnyListener::from_std(&ex.engine, sock, false)?, bound })
    }

    /// Takes over a bound std listener (made non-blocking), whose socket file stays where it is when this
    /// listener is dropped. Must be called inside a uvio runtime.
    pub fn from_std(listener: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        let ex = crate::runtime::current();
        Ok(UnixListener {
            inner: AnyListener::from_std(&ex.engine, OwnedFd::from(listener).into(), false)?,
            bound: BoundPath(None),
        })
    }

    /// Hands the listening socket over to std, together with the connections this listener had already
    /// accepted but not yet given out, oldest first — as [`TcpListener::into_std`](super::TcpListener::into_std),
    /// whose documentation says which engines accept ahead. The socket file is the std listener's from now on:
    /// it is not removed when it drops (std never removes it). The returned sockets are in blocking mode.
    pub fn into_std(self) -> io::Result<(std::os::unix::net::UnixListener, Vec<std::os::unix::net::UnixStream>)> {
        let UnixListener { inner, mut bound } = self;
        bound.0 = None;
        let (listener, accepted) = inner.into_socket()?;
        let listener = std::os::unix::net::UnixListener::from(OwnedFd::from(listener));
        let accepted = accepted.into_iter().map(|s| std::os::unix::net::UnixStream::from(OwnedFd::from(s))).collect();
        Ok((listener, accepted))
    }

    /// Waits for the next connection. Dropping the future loses no connection.
    pub async fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Polls for the next connection (for hand-written futures and streams).
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(UnixStream, SocketAddr)>> {
        std::task::ready!(crate::runtime::coop::poll_proceed(cx));
        let (io, peer) = std::task::ready!(self.inner.poll_accept(cx))?;
        Poll::Ready(Ok((UnixStream { io }, from_sockaddr(&peer))))
    }

    /// The connections as a `Stream` (never ends; errors are items).
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The address the listener is bound to (`getsockname(2)`).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(from_sockaddr(&self.inner.with_socket(|s| s.local_addr())?))
    }
}

impl std::fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnixListener").field("local_addr", &self.local_addr().ok()).finish()
    }
}

/// The stream of [`UnixListener::incoming`].
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a UnixListener,
}

impl futures::Stream for Incoming<'_> {
    type Item = io::Result<UnixStream>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.listener.poll_accept(cx).map(|r| Some(r.map(|(s, _)| s)))
    }
}

/// A Unix socket connection. Implements `futures::io::{AsyncRead, AsyncWrite}` (and tokio's, with the
/// `tokio-io` feature); `close()` flushes and shuts down the write side, so the peer reads end-of-stream.
///
/// Dropping it closes the connection — after any bytes already accepted by a write have reached the kernel.
/// See [`UnixListener`] for an example.
///
/// One write takes at most 256 KiB, on every engine, and returns that short count when offered more
/// (`write_all` loops); at most that much of what writes accepted waits in user space for the kernel, so memory
/// stays bounded however much is written to a peer that reads slowly or not at all. A write that returned is
/// not yet on the wire: the engine hands it to the kernel in this loop turn (libuv, epoll) or with the ring's
/// next submission, at the end of the turn (io_uring); `flush` waits until the kernel has it.
pub struct UnixStream {
    io: AnyStream<uv::Pipe>,
}

impl UnixStream {
    /// Connects to the socket at `path` (`uv_pipe_connect2`): `NotFound` if nothing is there,
    /// `ConnectionRefused` if nothing listens, `InvalidInput` for a NUL byte or a path that is too long.
    /// Dropping the future cancels the connect.
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let addr = to_sockaddr(path.as_ref())?;
        let ex = crate::runtime::current();
        Ok(UnixStream { io: AnyStream::connect(&ex.engine, &addr).await? })
    }

    /// A connected pair of unnamed sockets (`socketpair(2)` through std, then `uv_pipe_open`). Must be called
    /// inside a uvio runtime.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        Ok((UnixStream::from_std(a)?, UnixStream::from_std(b)?))
    }

    /// Takes over a connected std socket (`uv_pipe_open`; made non-blocking). Must be called inside a uvio
    /// runtime.
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        let ex = crate::runtime::current();
        Ok(UnixStream { io: AnyStream::from_std(&ex.engine, OwnedFd::from(stream).into())? })
    }

    /// Hands the connection over to std, losing nothing, as [`TcpStream::into_std`](super::TcpStream::into_std):
    /// queued writes are flushed, and the bytes received but not yet read come back beside the std stream,
    /// which is in blocking mode.
    pub async fn into_std(self) -> io::Result<(std::os::unix::net::UnixStream, Vec<u8>)> {
        let io = self.io.clone();
        drop(self); // not the last owner (`io` is): nothing lingers
        let (sock, unread) = io.into_socket().await?;
        Ok((std::os::unix::net::UnixStream::from(OwnedFd::from(sock)), unread))
    }

    /// Copies the next bytes received into `buf` without taking them, waiting until at least one is there: the
    /// next read returns them again, as [`TcpStream::peek`](super::TcpStream::peek) (bytes the engine already
    /// took from the kernel are the ones shown, so nothing is skipped or shown twice). Returns how many were
    /// copied: possibly fewer than are waiting, and `0` at end-of-stream (or for an empty `buf`).
    ///
    /// ```
    /// use futures::{AsyncReadExt, AsyncWriteExt};
    /// # uvio::block_on(async {
    /// let (mut a, mut b) = uvio::net::UnixStream::pair()?;
    /// a.write_all(b"hello").await?;
    /// let mut first = [0u8; 5];
    /// let n = b.peek(&mut first).await?;
    /// assert_eq!(&first[..n], &b"hello"[..n]);
    /// let mut all = [0u8; 5];
    /// b.read_exact(&mut all).await?; // the peeked bytes are still there
    /// assert_eq!(&all, b"hello");
    /// std::io::Result::Ok(())
    /// # }).unwrap();
    /// ```
    pub async fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.io.poll_peek(cx, buf)).await
    }

    /// This end's address (`getsockname(2)`): usually unnamed for the connecting side.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(from_sockaddr(&self.io.with_socket(|s| s.local_addr())?))
    }

    /// The peer's address (`getpeername(2)`).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        peer_addr(&self.io)
    }

    /// Who is at the other end: the peer's process id (Linux; `None` elsewhere), user id and group id, as they
    /// were when it connected or made the pair (`SO_PEERCRED` on Linux, `getpeereid(3)` on macOS and the BSDs;
    /// `Unsupported` on another Unix). The kernel vouches for them: a server can use them to decide what a
    /// local client may do.
    ///
    /// ```
    /// # uvio::block_on(async {
    /// let (a, _b) = uvio::net::UnixStream::pair()?;
    /// let cred = a.peer_cred()?;
    /// # #[cfg(target_os = "linux")]
    /// assert_eq!(cred.pid(), Some(std::process::id() as i32)); // the pair's other end is this process
    /// # let _ = cred;
    /// std::io::Result::Ok(())
    /// # }).unwrap();
    /// ```
    pub fn peer_cred(&self) -> io::Result<UCred> {
        let cred = self.io.with_socket(crate::engine::peer_cred::peer_cred)?;
        Ok(UCred { pid: cred.pid, uid: cred.uid, gid: cred.gid })
    }

    /// Shuts down the write side once queued bytes are written: the peer reads end-of-stream. Reading goes on.
    pub async fn shutdown(&self) -> io::Result<()> {
        poll_fn(|cx| self.io.poll_shutdown(cx)).await
    }
}

/// The credentials of a [`UnixStream`]'s peer ([`UnixStream::peer_cred`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UCred {
    pid: Option<i32>,
    uid: u32,
    gid: u32,
}

impl UCred {
    /// The peer's process id: Linux only (`None` on macOS and the BSDs, and on Linux for a peer in another
    /// pid namespace).
    pub fn pid(&self) -> Option<i32> {
        self.pid
    }

    /// The peer's effective user id.
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// The peer's effective group id.
    pub fn gid(&self) -> u32 {
        self.gid
    }
}

fn peer_addr(io: &AnyStream<uv::Pipe>) -> io::Result<SocketAddr> {
    Ok(from_sockaddr(&io.with_socket(|s| s.peer_addr())?))
}

impl std::fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnixStream")
            .field("local_addr", &self.local_addr().ok())
            .field("peer_addr", &self.peer_addr().ok())
            .finish()
    }
}

owned_halves!(UnixStream, uv::Pipe, SocketAddr);

crate::net::io::os_socket!(UnixStream, io);

crate::net::io::os_socket!(UnixListener, inner);
