//! Networking: async TCP on the runtime's libuv loop, and name resolution.
//!
//! The types implement `futures::io::{AsyncRead, AsyncWrite}`, so the `futures` extension traits
//! (`AsyncReadExt::read_exact`, `AsyncWriteExt::write_all`, …) work on them.

mod addr;
pub(crate) mod stream;
mod tcp;

pub use addr::{lookup_host, Resolve, ToSocketAddrs};
pub use tcp::{Incoming, OwnedReadHalf, OwnedWriteHalf, TcpListener, TcpStream};
