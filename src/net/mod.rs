//! Networking: async TCP, UDP and Unix sockets (streams and datagrams) (Windows named pipes) on the runtime's libuv loop, and name
//! resolution.
//!
//! The stream types implement `futures::io::{AsyncRead, AsyncWrite}`, so the `futures` extension traits
//! (`AsyncReadExt::read_exact`, `AsyncWriteExt::write_all`, …) work on them. With the `tokio-io` feature they
//! implement `tokio::io::{AsyncRead, AsyncWrite}` too, for tokio-based libraries (codecs, hyper).

mod addr;
pub(crate) mod io;
mod tcp;
mod tcp_socket;
mod udp;
#[cfg(unix)]
pub mod unix;
#[cfg(unix)]
mod unix_datagram;
#[cfg(windows)]
mod windows_pipe;

pub use addr::{lookup_host, Resolve, ToSocketAddrs};
pub use tcp::{Incoming, OwnedReadHalf, OwnedWriteHalf, TcpListener, TcpStream};
pub use tcp_socket::TcpSocket;
pub use udp::UdpSocket;
#[cfg(unix)]
pub use unix::{UCred, UnixListener, UnixStream};
#[cfg(unix)]
pub use unix_datagram::UnixDatagram;
#[cfg(windows)]
pub use windows_pipe::{NamedPipeListener, NamedPipeStream};
