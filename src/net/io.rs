//! The seam between the public stream types and the engines: [`StreamIo`] carries a connection on whichever
//! engine the runtime chose when the connection was made, with the method names the `async_read!` /
//! `async_write!` macros call.

use std::io;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::stream::AsyncStream;
#[cfg(target_os = "linux")]
use crate::engine::epoll;
#[cfg(target_os = "linux")]
use crate::engine::io_uring::net as uring;
use crate::runtime::coop;
use crate::uv::stream::StreamKind;

/// The most one write takes on any engine. The libuv and io_uring engines copy what the kernel does not take
/// at once and stop at their high-water marks (this much); the epoll engine's kernel send buffer alone could
/// take several MiB in one call. One bound for all keeps short counts the same whichever engine runs.
pub(crate) const WRITE_MAX: usize = 256 * 1024;

/// A connection's I/O: a libuv stream, or (Linux) an epoll-engine socket, or a socket on the io_uring ring.
pub(crate) enum StreamIo<T: StreamKind> {
    /// libuv's streams (`uv_read_start`, `uv_write`).
    Libuv(Rc<AsyncStream<T>>),
    /// The epoll engine: syscalls straight into the caller's buffer.
    #[cfg(target_os = "linux")]
    Epoll(Rc<epoll::Sock>),
    /// The io_uring engine: recv/send/shutdown operations on the runtime's ring.
    #[cfg(target_os = "linux")]
    Uring(Rc<uring::Conn>),
}

/// What [`StreamIo::hand_over`] gives back: libuv's handle (the stream type turns it into a std socket), or the
/// socket itself (blocking, as std makes them).
pub(crate) enum HandedOver<T> {
    Libuv(T),
    #[cfg(target_os = "linux")]
    Socket(socket2::Socket),
}

/// Whether sockets made now go to the epoll engine's readiness code: the current runtime's engine is epoll, or
/// io_uring for what its ring does not carry (UDP always, stream sockets when [`uring_sockets`] is `None`).
/// Stream types ask [`uring_sockets`] first.
#[cfg(target_os = "linux")]
pub(crate) fn epoll_sockets() -> bool {
    crate::runtime::current().engine.backend().readiness_sockets()
}

/// The current runtime's io_uring driver, if its engine is io_uring and stream sockets run on the ring (this
/// kernel has the socket opcodes and provided-buffer rings).
#[cfg(target_os = "linux")]
pub(crate) fn uring_sockets() -> Option<Rc<crate::engine::Driver>> {
    crate::runtime::current().engine.ring().cloned().filter(|driver| driver.net())
}

/// Runs `$body` with `$s` bound to the engine's stream, whichever it is.
macro_rules! dispatch {
    ($io:expr, $s:ident => $body:expr) => {
        match $io {
            StreamIo::Libuv($s) => $body,
            #[cfg(target_os = "linux")]
            StreamIo::Epoll($s) => $body,
            #[cfg(target_os = "linux")]
            StreamIo::Uring($s) => $body,
        }
    };
}

impl<T: StreamKind> Clone for StreamIo<T> {
    fn clone(&self) -> Self {
        match self {
            StreamIo::Libuv(s) => StreamIo::Libuv(s.clone()),
            #[cfg(target_os = "linux")]
            StreamIo::Epoll(s) => StreamIo::Epoll(s.clone()),
            #[cfg(target_os = "linux")]
            StreamIo::Uring(s) => StreamIo::Uring(s.clone()),
        }
    }
}

impl<T: StreamKind> StreamIo<T> {
    /// A libuv stream.
    pub(crate) fn libuv(handle: T) -> StreamIo<T> {
        StreamIo::Libuv(AsyncStream::new(handle))
    }

    /// A libuv stream of a runtime that is gone would wait forever: it fails instead, as on the other engines
    /// (which check for themselves).
    fn check_runtime(&self) -> io::Result<()> {
        match self {
            StreamIo::Libuv(s) if s.runtime_gone() => Err(crate::error::runtime_gone()),
            _ => Ok(()),
        }
    }

    pub(crate) fn poll_read(&self, cx: &mut Context<'_>, out: &mut [u8]) -> Poll<io::Result<usize>> {
        self.check_runtime()?;
        std::task::ready!(coop::poll_proceed(cx));
        dispatch!(self, s => s.poll_read(cx, out))
    }

    #[cfg(feature = "tokio-io")]
    pub(crate) fn poll_read_with(
        &self,
        cx: &mut Context<'_>,
        max: usize,
        take: impl FnOnce(&[u8]),
    ) -> Poll<io::Result<usize>> {
        self.check_runtime()?;
        std::task::ready!(coop::poll_proceed(cx));
        dispatch!(self, s => s.poll_read_with(cx, max, take))
    }

    /// Takes at most [`WRITE_MAX`] bytes of `data`, whatever the engine.
    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.check_runtime()?;
        std::task::ready!(coop::poll_proceed(cx));
        let data = &data[..data.len().min(WRITE_MAX)];
        dispatch!(self, s => s.poll_write(cx, data))
    }

    pub(crate) fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check_runtime()?;
        dispatch!(self, s => s.poll_flush(cx))
    }

    pub(crate) fn poll_shutdown(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check_runtime()?;
        dispatch!(self, s => s.poll_shutdown(cx))
    }

    /// For the `Drop` of a user-facing owner: a libuv stream lingers if this was its last owner and writes are
    /// still queued; an epoll socket has no queue (the kernel has every accepted byte) and just closes; a ring
    /// socket's queued sends own the socket until they complete (see `uring::Conn`'s `Drop`).
    pub(crate) fn release_if_last(&self) {
        match self {
            StreamIo::Libuv(s) => AsyncStream::release_if_last(s),
            #[cfg(target_os = "linux")]
            StreamIo::Epoll(_) | StreamIo::Uring(_) => {}
        }
    }

    /// Hands the connection over (`into_std`): flushes the bytes writes accepted, stops reading, and gives back
    /// the socket with the bytes received but not read yet. `InvalidInput` if something else still owns the
    /// connection (cannot happen for a whole stream: its halves are gone once it is reunited).
    pub(crate) async fn hand_over(self) -> io::Result<(HandedOver<T>, Vec<u8>)> {
        std::future::poll_fn(|cx| self.poll_flush(cx)).await?;
        let shared = || io::Error::new(io::ErrorKind::InvalidInput, "the connection has other owners");
        match self {
            StreamIo::Libuv(s) => {
                let unread = s.stop_and_take_unread();
                let s = Rc::try_unwrap(s).map_err(|_| shared())?;
                Ok((HandedOver::Libuv(s.into_handle()), unread))
            }
            #[cfg(target_os = "linux")]
            StreamIo::Epoll(s) => {
                let sock = Rc::try_unwrap(s).map_err(|_| shared())?;
                Ok((HandedOver::Socket(sock.into_socket()?), Vec::new()))
            }
            #[cfg(target_os = "linux")]
            StreamIo::Uring(s) => {
                let (sock, unread) = s.hand_over()?;
                sock.set_nonblocking(false)?;
                Ok((HandedOver::Socket(sock), unread))
            }
        }
    }

    /// Whether both are the same connection (for `reunite`).
    pub(crate) fn same(&self, other: &StreamIo<T>) -> bool {
        match (self, other) {
            (StreamIo::Libuv(a), StreamIo::Libuv(b)) => Rc::ptr_eq(a, b),
            #[cfg(target_os = "linux")]
            (StreamIo::Epoll(a), StreamIo::Epoll(b)) => Rc::ptr_eq(a, b),
            #[cfg(target_os = "linux")]
            (StreamIo::Uring(a), StreamIo::Uring(b)) => Rc::ptr_eq(a, b),
            #[cfg(target_os = "linux")]
            _ => false,
        }
    }
}

/// The owned halves of a stream type (`$stream` with an `io: StreamIo<$raw>` field, and a module-level
/// `fn peer_addr(&StreamIo<$raw>) -> io::Result<$addr>`): `into_split`, the stream's `Drop` (linger when last),
/// `OwnedReadHalf`/`OwnedWriteHalf` with `reunite` and `peer_addr`, and the read/write trait impls of all three.
/// Written once for TCP and Unix streams.
macro_rules! owned_halves {
    ($stream:ident, $raw:ty, $addr:ty) => {
        impl $stream {
            /// Splits into a read half and a write half that can move into different tasks. The connection
            /// closes when both are dropped.
            pub fn into_split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
                let io = self.io.clone();
                drop(self); // not the last owner: no linger
                (OwnedReadHalf { io: io.clone() }, OwnedWriteHalf { io })
            }
        }

        impl Drop for $stream {
            fn drop(&mut self) {
                self.io.release_if_last();
            }
        }

        #[doc = concat!("The read half of [`", stringify!($stream), "::into_split`].")]
        pub struct OwnedReadHalf {
            io: $crate::net::io::StreamIo<$raw>,
        }

        #[doc = concat!("The write half of [`", stringify!($stream), "::into_split`]; `close()` shuts down the write side.")]
        pub struct OwnedWriteHalf {
            io: $crate::net::io::StreamIo<$raw>,
        }

        impl Drop for OwnedReadHalf {
            fn drop(&mut self) {
                self.io.release_if_last();
            }
        }

        impl Drop for OwnedWriteHalf {
            fn drop(&mut self) {
                self.io.release_if_last();
            }
        }

        impl OwnedReadHalf {
            /// Puts the halves back together; `Err` gives them back if they came from different streams.
            pub fn reunite(self, other: OwnedWriteHalf) -> Result<$stream, (OwnedReadHalf, OwnedWriteHalf)> {
                if !self.io.same(&other.io) {
                    return Err((self, other));
                }
                let io = self.io.clone();
                drop((self, other));
                Ok($stream { io })
            }

            /// The peer's address.
            pub fn peer_addr(&self) -> std::io::Result<$addr> {
                peer_addr(&self.io)
            }
        }

        impl OwnedWriteHalf {
            /// The peer's address.
            pub fn peer_addr(&self) -> std::io::Result<$addr> {
                peer_addr(&self.io)
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

        $crate::net::stream::async_read!($stream);
        $crate::net::stream::async_write!($stream);
        $crate::net::stream::async_read!(OwnedReadHalf);
        $crate::net::stream::async_write!(OwnedWriteHalf);
    };
}
pub(crate) use owned_halves;
