//! Windows named pipes: [`NamedPipeListener`] and [`NamedPipeStream`], over libuv's `uv_pipe_t` (Windows only).
//!
//! libuv gives named pipes the listen/accept shape of sockets (it keeps a few server instances of the pipe
//! ready, see `uv_pipe_pending_instances`), so these types mirror `UnixListener`/`UnixStream` on Unix
//! rather than tokio's one-instance-at-a-time `NamedPipeServer`.

use std::future::poll_fn;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::task::{Context, Poll};

use super::listener::Listener;
use super::stream::{async_read, async_write, bind_pipe, connect_pipe, AsyncStream};
use crate::uv;

/// A named pipe server: binds to a name like `\\.\pipe\my-app`, then yields connections.
pub struct NamedPipeListener {
    inner: Listener<uv::Pipe>,
}

impl NamedPipeListener {
    /// Creates the pipe `name` and listens (`uv_pipe_bind2`, `uv_listen`). Must be called inside a uvio
    /// runtime.
    pub fn bind(name: impl AsRef<Path>) -> io::Result<NamedPipeListener> {
        Ok(NamedPipeListener { inner: bind_pipe(name.as_ref())? })
    }

    /// Waits for the next client. Dropping the future loses no connection.
    pub async fn accept(&self) -> io::Result<NamedPipeStream> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Polls for the next client.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<NamedPipeStream>> {
        self.inner.poll_accept(cx).map_ok(NamedPipeStream::from_uv)
    }

    /// The pipe's name (`uv_pipe_getsockname`).
    pub fn local_name(&self) -> io::Result<PathBuf> {
        Ok(self.inner.handle().local_name()?)
    }
}

impl std::fmt::Debug for NamedPipeListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamedPipeListener").field("name", &self.local_name().ok()).finish()
    }
}

/// One connection over a named pipe (either end). Implements `futures::io::{AsyncRead, AsyncWrite}` (and
/// tokio's, with the `tokio-io` feature); same write, shutdown and drop rules as
/// [`TcpStream`](super::TcpStream).
pub struct NamedPipeStream {
    io: Rc<AsyncStream<uv::Pipe>>,
}

impl NamedPipeStream {
    /// Connects to the pipe `name` (`uv_pipe_connect2`). Dropping the future cancels the connect.
    pub async fn connect(name: impl AsRef<Path>) -> io::Result<NamedPipeStream> {
        Ok(NamedPipeStream::from_uv(connect_pipe(name.as_ref()).await?))
    }

    fn from_uv(pipe: uv::Pipe) -> NamedPipeStream {
        NamedPipeStream { io: AsyncStream::new(pipe) }
    }

    /// Shuts down the write side once queued bytes are written: the peer reads end-of-stream.
    pub async fn shutdown(&self) -> io::Result<()> {
        poll_fn(|cx| self.io.poll_shutdown(cx)).await
    }
}

impl Drop for NamedPipeStream {
    fn drop(&mut self) {
        AsyncStream::release_if_last(&self.io);
    }
}

impl std::fmt::Debug for NamedPipeStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamedPipeStream").finish_non_exhaustive()
    }
}

async_read!(NamedPipeStream);
async_write!(NamedPipeStream);
