//! The seam between the public stream types and the engines: [`StreamIo`] carries a connection on whichever
//! engine the runtime chose when the connection was made, with the method names the `async_read!` /
//! `async_write!` macros call.

use std::io;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::stream::AsyncStream;
#[cfg(target_os = "linux")]
use crate::engine::epoll;
use crate::uv::stream::StreamKind;

/// A connection's I/O: a libuv stream, or (Linux) an epoll-engine socket.
pub(crate) enum StreamIo<T: StreamKind> {
    /// libuv's streams (`uv_read_start`, `uv_write`).
    Libuv(Rc<AsyncStream<T>>),
    /// The epoll engine: syscalls straight into the caller's buffer.
    #[cfg(target_os = "linux")]
    Epoll(Rc<epoll::Sock>),
}

/// Whether sockets made now go to the epoll engine's readiness code (the current runtime's engine is epoll, or
/// io_uring, whose networking uses the same code for now).
#[cfg(target_os = "linux")]
pub(crate) fn epoll_sockets() -> bool {
    crate::runtime::current().backend.readiness_sockets()
}

/// Runs `$body` with `$s` bound to the engine's stream, whichever it is.
macro_rules! dispatch {
    ($io:expr, $s:ident => $body:expr) => {
        match $io {
            StreamIo::Libuv($s) => $body,
            #[cfg(target_os = "linux")]
            StreamIo::Epoll($s) => $body,
        }
    };
}

impl<T: StreamKind> Clone for StreamIo<T> {
    fn clone(&self) -> Self {
        match self {
            StreamIo::Libuv(s) => StreamIo::Libuv(s.clone()),
            #[cfg(target_os = "linux")]
            StreamIo::Epoll(s) => StreamIo::Epoll(s.clone()),
        }
    }
}

impl<T: StreamKind> StreamIo<T> {
    /// A libuv stream.
    pub(crate) fn libuv(handle: T) -> StreamIo<T> {
        StreamIo::Libuv(AsyncStream::new(handle))
    }

    pub(crate) fn poll_read(&self, cx: &mut Context<'_>, out: &mut [u8]) -> Poll<io::Result<usize>> {
        dispatch!(self, s => s.poll_read(cx, out))
    }

    #[cfg(feature = "tokio-io")]
    pub(crate) fn poll_read_with(
        &self,
        cx: &mut Context<'_>,
        max: usize,
        take: impl FnOnce(&[u8]),
    ) -> Poll<io::Result<usize>> {
        dispatch!(self, s => s.poll_read_with(cx, max, take))
    }

    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        dispatch!(self, s => s.poll_write(cx, data))
    }

    pub(crate) fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        dispatch!(self, s => s.poll_flush(cx))
    }

    pub(crate) fn poll_shutdown(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        dispatch!(self, s => s.poll_shutdown(cx))
    }

    /// For the `Drop` of a user-facing owner: a libuv stream lingers if this was its last owner and writes are
    /// still queued; an epoll socket has no queue (the kernel has every accepted byte) and just closes.
    pub(crate) fn release_if_last(&self) {
        match self {
            StreamIo::Libuv(s) => AsyncStream::release_if_last(s),
            #[cfg(target_os = "linux")]
            StreamIo::Epoll(_) => {}
        }
    }

    /// Whether both are the same connection (for `reunite`).
    pub(crate) fn same(&self, other: &StreamIo<T>) -> bool {
        match (self, other) {
            (StreamIo::Libuv(a), StreamIo::Libuv(b)) => Rc::ptr_eq(a, b),
            #[cfg(target_os = "linux")]
            (StreamIo::Epoll(a), StreamIo::Epoll(b)) => Rc::ptr_eq(a, b),
            #[cfg(target_os = "linux")]
            _ => false,
        }
    }
}
