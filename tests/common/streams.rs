//! One fixture for the stream tests that hold for TCP and Unix sockets alike: [`StreamKind`], implemented by
//! [`Tcp`] (loopback) and [`Unix`] (a socket file in a temporary directory). The tests written once over it
//! are in `stream_tests.rs`; `stream_kind_tests!(Tcp)` instantiates all of them in a test binary.
//!
//! The trait is a thin table of the calls the two APIs share under different types: each method is one call
//! of the public API, so the tests still exercise exactly what a user calls.
#![allow(async_fn_in_trait)] // test helpers on a single-threaded runtime: no `Send` bound wanted

use std::io;
use std::path::Path;

use futures::{AsyncRead, AsyncWrite};

/// A kind of connected stream socket: its listener, stream, halves and std counterparts, and where a listener
/// is reached.
pub trait StreamKind: Sized + 'static {
    type Listener: 'static;
    type Stream: AsyncRead + AsyncWrite + Unpin + 'static;
    type ReadHalf: AsyncRead + Unpin + 'static;
    type WriteHalf: AsyncWrite + Unpin + 'static;
    /// Where a listener is reached: a socket address, or a socket file's path.
    type Addr: Clone + PartialEq + std::fmt::Debug + 'static;
    type StdListener;
    type StdStream: io::Read + io::Write;

    /// What a test binds in (a temporary directory for Unix sockets, removed when dropped); `tag` names it.
    fn place(tag: &str) -> Self;
    /// A fresh listener in this place, and its address.
    async fn listen(&self) -> (Self::Listener, Self::Addr);
    /// A fresh std listener in this place (bound by std, not uvio), and its address.
    fn std_listen(&self) -> (Self::StdListener, Self::Addr);

    async fn connect(addr: &Self::Addr) -> io::Result<Self::Stream>;
    async fn accept(listener: &Self::Listener) -> io::Result<Self::Stream>;
    fn incoming(listener: &Self::Listener) -> impl futures::Stream<Item = io::Result<Self::Stream>> + '_;
    fn local_addr(listener: &Self::Listener) -> Self::Addr;
    /// The address of the listener `stream` is connected to.
    fn peer_addr(stream: &Self::Stream) -> Self::Addr;
    fn write_half_peer_addr(half: &Self::WriteHalf) -> Self::Addr;
    async fn shutdown(stream: &Self::Stream) -> io::Result<()>;
    fn into_split(stream: Self::Stream) -> (Self::ReadHalf, Self::WriteHalf);
    fn reunite(read: Self::ReadHalf, write: Self::WriteHalf)
        -> Result<Self::Stream, (Self::ReadHalf, Self::WriteHalf)>;

    async fn stream_into_std(stream: Self::Stream) -> io::Result<(Self::StdStream, Vec<u8>)>;
    fn stream_from_std(stream: Self::StdStream) -> io::Result<Self::Stream>;
    fn listener_into_std(listener: Self::Listener) -> io::Result<(Self::StdListener, Vec<Self::StdStream>)>;
    fn listener_from_std(listener: Self::StdListener) -> io::Result<Self::Listener>;
    fn std_listener_addr(listener: &Self::StdListener) -> Self::Addr;
    /// A blocking std connection to `addr`.
    fn std_connect(addr: &Self::Addr) -> io::Result<Self::StdStream>;
    fn std_accept(listener: &Self::StdListener) -> io::Result<Self::StdStream>;
    /// The socket file behind `addr`, if the kind has one (what must survive a hand-over to std).
    fn socket_file(addr: &Self::Addr) -> Option<&Path>;

    /// Echoes every connection `listener` accepts, each on a task of its own, until EOF.
    fn spawn_echo(listener: Self::Listener) {
        uvio::spawn_local(async move {
            while let Ok(conn) = Self::accept(&listener).await {
                uvio::spawn_local(super::echo(conn));
            }
        });
    }
}

/// The calls TCP and Unix sockets spell the same (same method names, different types): written once, for both
/// impls of [`StreamKind`].
macro_rules! same_named_calls {
    () => {
        async fn accept(listener: &Self::Listener) -> io::Result<Self::Stream> {
            Ok(listener.accept().await?.0)
        }
        fn incoming(listener: &Self::Listener) -> impl futures::Stream<Item = io::Result<Self::Stream>> + '_ {
            listener.incoming()
        }
        async fn shutdown(stream: &Self::Stream) -> io::Result<()> {
            stream.shutdown().await
        }
        fn into_split(stream: Self::Stream) -> (Self::ReadHalf, Self::WriteHalf) {
            stream.into_split()
        }
        fn reunite(
            read: Self::ReadHalf,
            write: Self::WriteHalf,
        ) -> Result<Self::Stream, (Self::ReadHalf, Self::WriteHalf)> {
            read.reunite(write)
        }
        async fn stream_into_std(stream: Self::Stream) -> io::Result<(Self::StdStream, Vec<u8>)> {
            stream.into_std().await
        }
        fn stream_from_std(stream: Self::StdStream) -> io::Result<Self::Stream> {
            <Self::Stream>::from_std(stream)
        }
        fn listener_into_std(listener: Self::Listener) -> io::Result<(Self::StdListener, Vec<Self::StdStream>)> {
            listener.into_std()
        }
        fn listener_from_std(listener: Self::StdListener) -> io::Result<Self::Listener> {
            <Self::Listener>::from_std(listener)
        }
        fn std_accept(listener: &Self::StdListener) -> io::Result<Self::StdStream> {
            Ok(listener.accept()?.0)
        }
    };
}

/// TCP on the IPv4 loopback.
pub struct Tcp;

impl StreamKind for Tcp {
    type Listener = uvio::net::TcpListener;
    type Stream = uvio::net::TcpStream;
    type ReadHalf = uvio::net::OwnedReadHalf;
    type WriteHalf = uvio::net::OwnedWriteHalf;
    type Addr = std::net::SocketAddr;
    type StdListener = std::net::TcpListener;
    type StdStream = std::net::TcpStream;

    fn place(_tag: &str) -> Tcp {
        Tcp
    }
    async fn listen(&self) -> (Self::Listener, Self::Addr) {
        let listener = uvio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        (listener, addr)
    }
    fn std_listen(&self) -> (Self::StdListener, Self::Addr) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        (listener, addr)
    }
    async fn connect(addr: &Self::Addr) -> io::Result<Self::Stream> {
        uvio::net::TcpStream::connect(*addr).await
    }
    fn local_addr(listener: &Self::Listener) -> Self::Addr {
        listener.local_addr().unwrap()
    }
    fn peer_addr(stream: &Self::Stream) -> Self::Addr {
        stream.peer_addr().unwrap()
    }
    fn write_half_peer_addr(half: &Self::WriteHalf) -> Self::Addr {
        half.peer_addr().unwrap()
    }
    fn std_listener_addr(listener: &Self::StdListener) -> Self::Addr {
        listener.local_addr().unwrap()
    }
    fn std_connect(addr: &Self::Addr) -> io::Result<Self::StdStream> {
        std::net::TcpStream::connect(addr)
    }
    fn socket_file(_addr: &Self::Addr) -> Option<&Path> {
        None
    }
    same_named_calls!();
}

/// Unix stream sockets bound to files in a temporary directory of their own.
#[cfg(unix)]
pub struct Unix {
    dir: super::TempDir,
    listeners: std::cell::Cell<u32>,
}

#[cfg(unix)]
impl Unix {
    /// A socket file name not used yet in this place.
    fn next_path(&self) -> std::path::PathBuf {
        let n = self.listeners.replace(self.listeners.get() + 1);
        self.dir.path().join(format!("s{n}.sock"))
    }
}

/// The path of a Unix socket address (every listener here is bound to a file).
#[cfg(unix)]
fn path_of(addr: uvio::net::unix::SocketAddr) -> std::path::PathBuf {
    addr.as_pathname().expect("bound to a socket file").to_path_buf()
}

#[cfg(unix)]
impl StreamKind for Unix {
    type Listener = uvio::net::UnixListener;
    type Stream = uvio::net::UnixStream;
    type ReadHalf = uvio::net::unix::OwnedReadHalf;
    type WriteHalf = uvio::net::unix::OwnedWriteHalf;
    type Addr = std::path::PathBuf;
    type StdListener = std::os::unix::net::UnixListener;
    type StdStream = std::os::unix::net::UnixStream;

    fn place(tag: &str) -> Unix {
        Unix { dir: super::TempDir::new(&format!("unix-{tag}")), listeners: std::cell::Cell::new(0) }
    }
    async fn listen(&self) -> (Self::Listener, Self::Addr) {
        let path = self.next_path();
        (uvio::net::UnixListener::bind(&path).unwrap(), path)
    }
    fn std_listen(&self) -> (Self::StdListener, Self::Addr) {
        let path = self.next_path();
        (std::os::unix::net::UnixListener::bind(&path).unwrap(), path)
    }
    async fn connect(addr: &Self::Addr) -> io::Result<Self::Stream> {
        uvio::net::UnixStream::connect(addr).await
    }
    fn local_addr(listener: &Self::Listener) -> Self::Addr {
        path_of(listener.local_addr().unwrap())
    }
    fn peer_addr(stream: &Self::Stream) -> Self::Addr {
        path_of(stream.peer_addr().unwrap())
    }
    fn write_half_peer_addr(half: &Self::WriteHalf) -> Self::Addr {
        path_of(half.peer_addr().unwrap())
    }
    fn std_listener_addr(listener: &Self::StdListener) -> Self::Addr {
        listener.local_addr().unwrap().as_pathname().expect("bound to a socket file").to_path_buf()
    }
    fn std_connect(addr: &Self::Addr) -> io::Result<Self::StdStream> {
        std::os::unix::net::UnixStream::connect(addr)
    }
    fn socket_file(addr: &Self::Addr) -> Option<&Path> {
        Some(addr)
    }
    same_named_calls!();
}
