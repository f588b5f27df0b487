//! Windows named pipes: [`NamedPipeListener`] and [`NamedPipeStream`], over libuv's `uv_pipe_t` (Windows only).
//!
//! libuv gives named pipes the listen/accept shape of sockets (it keeps a few server instances of the pipe
//! ready, see `uv_pipe_pending_instances`), so these types mirror `UnixListener`/`UnixStream` on Unix
//! rather than tokio's one-instance-at-a-time `NamedPipeServer`.

use std::future::poll_fn;
use std::io;
use std::path::{Path, PathBuf};
use std::task::{Context, Poll};

use super::io::{async_read, async_write};
use crate::engine::{AnyListener, AnyStream};
use crate::uv;

/// A named pipe server: binds to a name like `\\.\pipe\my-app`, then yields connections with
/// [`accept`](NamedPipeListener::accept). Binding a name that another server already holds is `AddrInUse`;
/// dropping the listener closes its pending pipe instances (connections already accepted stay open).
///
/// ```
/// use futures::{AsyncReadExt, AsyncWriteExt};
/// use uvio::net::{NamedPipeListener, NamedPipeStream};
///
/// let name = format!(r"\\.\pipe\uvio-doc-{}", std::process::id());
/// uvio::block_on(async {
///     let listener = NamedPipeListener::bind(&name)?;
///     let server = uvio::spawn_local(async move {
///         let mut conn = listener.accept().await?;
///         conn.write_all(b"hi").await?;
///         std::io::Result::Ok(())
///     });
///     let mut client = NamedPipeStream::connect(&name).await?;
///     let mut buf = [0u8; 2];
///     client.read_exact(&mut buf).await?;
///     assert_eq!(&buf, b"hi");
///     server.await??;
///     std::io::Result::Ok(())
/// }).unwrap();
/// ```
pub struct NamedPipeListener {
    inner: AnyListener<uv::Pipe>,
}

impl NamedPipeListener {
    /// Creates the pipe `name` and listens (`uv_pipe_bind2`, `uv_listen`). Must be called inside a uvio
    /// runtime.
    pub fn bind(name: impl AsRef<Path>) -> io::Result<NamedPipeListener> {
        let ex = crate::runtime::current();
        Ok(NamedPipeListener { inner: AnyListener::bind_named_pipe(&ex.engine, name.as_ref())? })
    }

    /// Waits for the next client. Dropping the future loses no connection.
    pub async fn accept(&self) -> io::Result<NamedPipeStream> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Polls for the next client.
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<NamedPipeStream>> {
        std::task::ready!(crate::runtime::coop::poll_proceed(cx));
        self.inner.poll_accept_named_pipe(cx).map_ok(|io| NamedPipeStream { io })
    }

    /// The pipe's name (`uv_pipe_getsockname`).
    pub fn local_name(&self) -> io::Result<PathBuf> {
        self.inner.pipe_name()
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
    io: AnyStream<uv::Pipe>,
}

impl NamedPipeStream {
    /// Connects to the pipe `name` (`uv_pipe_connect2`). Dropping the future cancels the connect.
    pub async fn connect(name: impl AsRef<Path>) -> io::Result<NamedPipeStream> {
        let ex = crate::runtime::current();
        Ok(NamedPipeStream { io: AnyStream::connect_named_pipe(&ex.engine, name.as_ref()).await? })
    }

    /// Shuts down the write side once queued bytes are written (`uv_shutdown`).
    ///
    /// # Portability
    ///
    /// Named pipes have no half-close, so libuv emulates it. Once this end has read end-of-stream, shutting
    /// down closes the pipe and the peer reads end-of-stream. Before that, the pipe stays open (the peer sees
    /// nothing) until a read of this end waits 50 ms without data: libuv then closes the pipe in both
    /// directions, and both ends read end-of-stream. So "write, shut down, then read the reply" loses a reply
    /// that takes longer than 50 ms; there, keep the stream open and frame the request instead.
    pub async fn shutdown(&self) -> io::Result<()> {
        poll_fn(|cx| self.io.poll_shutdown(cx)).await
    }
}

impl Drop for NamedPipeStream {
    fn drop(&mut self) {
        self.io.release_if_last();
    }
}

impl std::fmt::Debug for NamedPipeStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamedPipeStream").finish_non_exhaustive()
    }
}

async_read!(NamedPipeStream);
async_write!(NamedPipeStream);
