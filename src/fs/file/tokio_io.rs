//! tokio's `AsyncRead`, `AsyncWrite` and `AsyncSeek` for [`File`] (feature `tokio-io`), on the same state machine
//! as the `futures` traits: one request in flight, the cursor kept by the `File`, errors of accepted writes
//! reported by the next write, flush or sync.
//!
//! tokio's seek is split in two: `start_seek` records where to go (nothing can wait there), `poll_complete`
//! goes there through the same `poll_seek` as the `futures` trait. A second `start_seek` before the first
//! completed is an error, as tokio's contract says. A seek started and not yet completed is completed before
//! the next read or write, so the bytes always come from where the caller asked.

use std::io::{self, SeekFrom};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::ReadBuf;

use super::{File, Inner, CHUNK};

impl Inner {
    /// Carries out the seek `start_seek` recorded; with none, the current position (tokio's `seek` polls
    /// `poll_complete` first to finish an earlier seek, and `stream_position` relies on it).
    fn poll_tokio_seek(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        let Some(to) = self.tokio_seek else {
            return self.poll_seek(cx, SeekFrom::Current(0));
        };
        let res = ready!(self.poll_seek(cx, to));
        self.tokio_seek = None;
        Poll::Ready(res)
    }

    /// Completes a seek that `start_seek` recorded, before a read or write; its error, if any, is theirs.
    fn poll_pending_tokio_seek(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.tokio_seek.is_none() {
            return Poll::Ready(Ok(()));
        }
        self.poll_tokio_seek(cx).map_ok(drop)
    }
}

impl tokio::io::AsyncRead for File {
    /// Reads into the unfilled part of `buf`, at most 64 KiB of it (which is zeroed once by `ReadBuf`, as the
    /// read copies into a plain slice).
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let inner = self.get_mut().inner.get_mut();
        ready!(inner.poll_pending_tokio_seek(cx))?;
        let want = buf.remaining().min(CHUNK);
        let n = ready!(inner.poll_read(cx, buf.initialize_unfilled_to(want)))?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for File {
    /// Accepts at most 64 KiB and starts writing them; the outcome is reported by the next write, flush or
    /// sync (see [`File`]).
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let inner = self.get_mut().inner.get_mut();
        ready!(inner.poll_pending_tokio_seek(cx))?;
        inner.poll_write(cx, buf)
    }

    /// Waits for the write in flight and reports its error, if any.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().inner.get_mut().poll_flush(cx)
    }

    /// Like `poll_flush`; the descriptor itself is closed when the `File` is dropped.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().inner.get_mut().poll_flush(cx)
    }
}

impl tokio::io::AsyncSeek for File {
    /// Records the seek for [`poll_complete`](tokio::io::AsyncSeek::poll_complete). An error if another seek
    /// was started and has not completed (tokio's rule), and `ESPIPE` on a file that is not seekable.
    fn start_seek(self: Pin<&mut Self>, position: SeekFrom) -> io::Result<()> {
        let inner = self.get_mut().inner.get_mut();
        if inner.tokio_seek.is_some() {
            return Err(io::Error::other("a seek is already in progress: call poll_complete before start_seek"));
        }
        if !inner.seekable {
            return Err(io::Error::from(crate::Error::ESPIPE)); // as lseek on a pipe
        }
        inner.tokio_seek = Some(position);
        Ok(())
    }

    /// Moves the cursor as `start_seek` asked, as the `futures` `poll_seek` does (`SeekFrom::End` asks the size
    /// with `uv_fs_fstat` after the write in flight; before the start is `InvalidInput`), and returns the new
    /// position; with no seek started, the current position.
    fn poll_complete(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        self.get_mut().inner.get_mut().poll_tokio_seek(cx)
    }
}
