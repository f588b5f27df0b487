//! [`File`]: an open file with a cursor, implementing `futures::io::{AsyncRead, AsyncWrite, AsyncSeek}` (and,
//! with the `tokio-io` feature, tokio's, in `tokio_io`).
//!
//! libuv has no `lseek`: the `File` keeps its own cursor and every read and write names its offset
//! (`pread`/`pwrite`), except writes in append mode, which the kernel places at the end, and the reads and
//! writes of a file that is not seekable (a FIFO, a pipe, a terminal), which use the kernel's current position
//! (offset -1, `read`/`write`). The cursor stays within `0..=i64::MAX`, the offsets the kernel takes.
//!
//! One request at a time is in flight per file, and it owns the file's one reusable buffer (64 KiB): a read
//! fills it, a write sends a copy of the caller's bytes from it. Whoever polls the file next first waits for that
//! request and accounts for it — the data of a read whose future was dropped is kept for the next read; the
//! error of a write is kept for the next write, flush or sync — before starting another.

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::io::{self, SeekFrom};
use std::ops::Range;
use std::path::Path;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll, Wake, Waker};

use futures::io::{AsyncRead, AsyncSeek, AsyncWrite};

use super::{Metadata, OpenOptions, Permissions};
use crate::engine::files::cached::{self, Attempts};
use crate::engine::files::Files;
use crate::engine::files::{send, wait};
use crate::reply::{reply, Replier, Reply};
use crate::runtime::coop;

#[cfg(feature = "tokio-io")]
mod tokio_io;
use crate::uv::{self, Loop};

mod interop;

/// The most one read or write request moves, and the size of the file's buffer.
const CHUNK: usize = 64 * 1024;

/// An open file on the runtime's loop, like `tokio::fs::File`.
///
/// # Reads, writes and their errors
/// A read moves at most 64 KiB from the file. A write copies at most 64 KiB of the caller's bytes into the
/// file's buffer, starts writing them and returns `Ok(n)` **at once**, like `tokio::fs::File`: the outcome of
/// that write is reported by the next write, [`flush`](futures::AsyncWriteExt::flush),
/// [`close`](futures::AsyncWriteExt::close), [`sync_all`](File::sync_all) or [`sync_data`](File::sync_data).
/// Flush before dropping a `File` whose write errors matter; an accepted write is still carried out (in full) if
/// the `File` is dropped first, and the descriptor is closed when it completes. On the io_uring engine, an
/// accepted write waits in the submission queue until the loop's next turn (the task yields, or a flush waits).
///
/// # tokio's traits
/// With the `tokio-io` feature, `File` also implements `tokio::io::{AsyncRead, AsyncWrite, AsyncSeek}`, with the
/// same behaviour. A `start_seek` takes effect at the next `poll_complete`, read or write; a second `start_seek`
/// before that is an error, as tokio's contract says.
///
/// # FIFOs, pipes and terminals
/// A file that is not seekable (its `lseek` fails with `ESPIPE`: checked once, at open) is read and written at
/// the kernel's current position, as `read(2)` and `write(2)` do; seeking it and [`read_at`](File::read_at) /
/// [`write_at`](File::write_at) fail with `ESPIPE`, as with std.
///
/// # Offsets
/// The cursor and every offset stay within `0..=i64::MAX`, the offsets the kernel takes: seeking past it, or
/// naming such an offset, is an `InvalidInput` (`EINVAL`) error on every engine, as with std.
///
/// # Cancellation
/// Dropping a read, write or seek future mid-flight is safe and loses nothing: the request in flight completes,
/// and the next operation on the file waits for it and takes its result into account (the bytes a read fetched
/// are returned by the next read; a seek takes effect).
///
/// Dropping a `File` closes its descriptor (synchronously, on the loop thread), or when its request in flight
/// completes. The `File` is `!Send`, like everything tied to a uvio runtime, and keeps the runtime's loop
/// alive: drop it before [`Runtime::close`](crate::Runtime::close), which otherwise reports it as a leak.
///
/// ```
/// use futures::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
/// use std::io::SeekFrom;
/// use uvio::fs::File;
///
/// uvio::block_on(async {
///     let path = std::env::temp_dir().join(format!("uvio-doc-file-async-{}", std::process::id()));
///     let mut file = File::options().read(true).write(true).create(true).truncate(true).open(&path).await?;
///     file.write_all(b"hello, world").await?;
///     file.flush().await?;
///     file.seek(SeekFrom::Start(7)).await?;
///     let mut word = String::new();
///     file.read_to_string(&mut word).await?;
///     assert_eq!(word, "world");
///     assert_eq!(file.metadata().await?.len(), 12);
///     drop(file);
///     uvio::fs::remove_file(&path).await
/// })
/// .unwrap();
/// ```
pub struct File {
    inner: RefCell<Inner>,
}

struct Inner {
    /// Shared with the write requests in flight, which finish short writes themselves (see
    /// `Files::write_all_at`).
    file: Rc<uv::fs::File>,
    /// The runtime's engine for files: its loop and, on io_uring, a weak handle to its ring (a `File` must not
    /// keep the engine alive).
    files: Files,
    append: bool,
    /// Whether the file takes offsets (not a FIFO, pipe or terminal; see `uv::fs::File::is_seekable`), asked
    /// once at open. Reads and writes of a file that does not use the kernel's position, and it has no cursor.
    seekable: bool,
    /// The cursor. `None` only in append mode after a write: at the end of the file, whose size a
    /// `uv_fs_fstat` finds when a read or seek needs it.
    pos: Option<u64>,
    /// The reusable buffer; empty (lent) while a read or write is in flight.
    buf: Vec<u8>,
    /// The bytes of `buf` read ahead of the caller: the file's contents at `pos`.
    ahead: Range<usize>,
    /// The request in flight.
    busy: Option<Reply<Done>>,
    /// The end of file (`Ok`) or error that the last read met, for the next `poll_read`.
    read_end: Option<io::Result<()>>,
    /// The error of a write already reported as accepted, for the next write, flush or sync.
    write_err: Option<io::Error>,
    /// The outcome of the last `uv_fs_fstat` seek: its offset from the end, and the new position.
    seek_done: Option<(i64, io::Result<u64>)>,
    /// Whether reads try the page cache on the loop thread first (see `cached`).
    cached: Attempts,
    /// The seek tokio's `start_seek` asked for, which its `poll_complete` carries out.
    #[cfg(feature = "tokio-io")]
    tokio_seek: Option<SeekFrom>,
    waiters: Arc<Waiters>,
    /// Wakes every waiter; the waker the request's `Reply` holds.
    fan_out: Waker,
}

/// The result of the request in flight, with the buffer it borrowed.
enum Done {
    Read(io::Result<usize>, Vec<u8>),
    Write(io::Result<()>, Vec<u8>),
    /// An fstat for a seek, with the offset from the end it seeks to.
    Stat(io::Result<uv::fs::Stat>, i64),
}

impl File {
    pub(super) fn new(file: uv::fs::File, files: Files, append: bool) -> File {
        let waiters = Arc::new(Waiters::default());
        let seekable = file.is_seekable();
        File {
            inner: RefCell::new(Inner {
                file: Rc::new(file),
                files,
                append,
                seekable,
                pos: Some(0),
                buf: Vec::new(),
                ahead: 0..0,
                busy: None,
                read_end: None,
                write_err: None,
                seek_done: None,
                // The page cache holds no data of a pipe or FIFO: their reads are requests.
                cached: Attempts::new(seekable),
                #[cfg(feature = "tokio-io")]
                tokio_seek: None,
                fan_out: Waker::from(waiters.clone()),
                waiters,
            }),
        }
    }

    /// Opens a file for reading (`uv_fs_open`).
    pub async fn open(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new().read(true).open(path).await
    }

    /// Opens a file for writing, creating it or truncating it (`uv_fs_open`).
    pub async fn create(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new().write(true).create(true).truncate(true).open(path).await
    }

    /// Creates a new file for reading and writing; `AlreadyExists` if the path exists (`uv_fs_open` with
    /// `O_CREAT | O_EXCL`).
    pub async fn create_new(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new().read(true).write(true).create_new(true).open(path).await
    }

    /// Options to open a file with: `File::options().append(true).open(path)`.
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    /// Waits for the request in flight, then reports a pending write error.
    async fn settle(&self) -> io::Result<()> {
        poll_fn(|cx| self.inner.borrow_mut().poll_idle(cx)).await;
        self.inner.borrow_mut().write_err.take().map_or(Ok(()), Err)
    }

    /// Starts a request on this file once it is idle.
    async fn call<T: 'static>(
        &self,
        submit: impl FnOnce(&Loop, &uv::fs::File, Replier<crate::Result<T>>) -> crate::Result<()>,
    ) -> io::Result<T> {
        let rx = {
            let inner = self.inner.borrow();
            inner.files.start_pool(|lp, tx| submit(lp, &inner.file, tx))?
        };
        wait(rx).await
    }

    /// Flushes the data and metadata to the device, after the writes already accepted (`uv_fs_fsync`). Reports
    /// the error of an earlier write first.
    pub async fn sync_all(&self) -> io::Result<()> {
        self.settle().await?;
        self.sync(false).await
    }

    /// Flushes the data (and only the metadata needed to read it) to the device, after the writes already
    /// accepted (`uv_fs_fdatasync`). Reports the error of an earlier write first.
    pub async fn sync_data(&self) -> io::Result<()> {
        self.settle().await?;
        self.sync(true).await
    }

    /// Truncates or extends the file to `size` bytes, after the writes already accepted (`uv_fs_ftruncate`;
    /// `IORING_OP_FTRUNCATE` on the io_uring engine). The cursor does not move. Reports the error of an earlier
    /// write first.
    pub async fn set_len(&self, size: u64) -> io::Result<()> {
        self.settle().await?;
        {
            let mut inner = self.inner.borrow_mut();
            inner.ahead = 0..0; // the bytes read ahead may be gone
            inner.read_end = None;
        }
        let (files, file) = self.inner.borrow().handles();
        files.ftruncate(&file, size).await
    }

    /// The file's metadata, after the writes already accepted (`uv_fs_fstat`).
    pub async fn metadata(&self) -> io::Result<Metadata> {
        poll_fn(|cx| self.inner.borrow_mut().poll_idle(cx)).await;
        let (files, file) = self.inner.borrow().handles();
        files.fstat(&file).await.map(Metadata::from_stat)
    }

    /// fsync (`data_only`: fdatasync).
    async fn sync(&self, data_only: bool) -> io::Result<()> {
        let (files, file) = self.inner.borrow().handles();
        files.fsync(&file, data_only).await
    }

    /// Reads at `pos` into the spare capacity of `buf` (at most `buf.capacity() - buf.len()` bytes, and at most
    /// 1 GiB) and gives the buffer back, its length grown by the bytes read; 0 bytes means the end of the file
    /// (or a buffer without spare capacity). As with `pread`, fewer bytes than asked may come back: at the end of
    /// the file, or on Linux when only the first ones were in the page cache (a spare capacity of at most 64 KiB
    /// is first read from there, on the loop thread, without waiting; see [`crate::fs`]).
    /// The cursor does not move, the kernel reads straight into `buf` (the file's own buffer is not used), and
    /// any number of `read_at`s may be in flight on one `File` at once, from as many tasks. A read accepted
    /// earlier through `AsyncWrite` is finished first. (`uv_fs_read` at an offset; `IORING_OP_READ` on the
    /// io_uring engine, which reads at most 8 MiB at a time: the spare capacity it lends the ring is zeroed
    /// first, since valgrind cannot see the kernel write there, and a huge capacity must not cost a huge fill.)
    ///
    /// `InvalidInput` (`EINVAL`) for a `pos` past `i64::MAX`, and `ESPIPE` on a file that is not seekable (a
    /// FIFO, a pipe, a terminal), as `pread`.
    ///
    /// Dropping the future is safe: `buf` stays with the request until it completes, then it is freed.
    /// Operations in flight at the same time are not ordered with each other (as `pread` and `pwrite` from
    /// several threads): await a `write_at` before reading what it wrote.
    ///
    /// ```
    /// # uvio::block_on(async {
    /// let path = std::env::temp_dir().join(format!("uvio-doc-read-at-{}", std::process::id()));
    /// uvio::fs::write(&path, b"0123456789").await?;
    /// let file = uvio::fs::File::open(&path).await?;
    /// let (res, buf) = file.read_at(Vec::with_capacity(4), 3).await;
    /// assert_eq!(res?, 4);
    /// assert_eq!(buf, b"3456");
    /// drop(file);
    /// uvio::fs::remove_file(&path).await
    /// # }).unwrap();
    /// ```
    pub async fn read_at(&self, mut buf: Vec<u8>, pos: u64) -> (io::Result<usize>, Vec<u8>) {
        if let Err(e) = self.inner.borrow().check_offset(pos) {
            return (Err(e), buf);
        }
        poll_fn(|cx| self.inner.borrow_mut().poll_idle(cx)).await;
        if let Some(n) = poll_fn(|cx| self.inner.borrow().poll_cached_at(cx, &mut buf, pos)).await {
            return (Ok(n), buf);
        }
        let (tx, rx) = reply();
        let done = move |res: io::Result<usize>, buf: Vec<u8>| tx.send((res, buf));
        let started = {
            let inner = self.inner.borrow();
            inner.files.read_at(&inner.file, buf, pos, done)
        };
        positional_result(started, rx).await
    }

    /// Writes `buf` (at most 1 GiB of it) at `pos` and gives it back with the count written, which may be short.
    /// The cursor does not move, and any number of `write_at`s may be in flight on one `File` at once. A write
    /// accepted earlier through `AsyncWrite` is finished first; bytes read ahead for `AsyncRead` are dropped (they
    /// may be stale now). In append mode the OS writes at the end, whatever `pos` says. (`uv_fs_write` at an
    /// offset; `IORING_OP_WRITE` on the io_uring engine.) `InvalidInput` (`EINVAL`) for a `pos` past
    /// `i64::MAX`, and `ESPIPE` on a file that is not seekable, as `pwrite`.
    ///
    /// Dropping the future is safe: `buf` stays with the request until it completes, and the write is carried
    /// out.
    pub async fn write_at(&self, buf: Vec<u8>, pos: u64) -> (io::Result<usize>, Vec<u8>) {
        if let Err(e) = self.inner.borrow().check_offset(pos) {
            return (Err(e), buf);
        }
        poll_fn(|cx| self.inner.borrow_mut().poll_idle(cx)).await;
        let (tx, rx) = reply();
        let done = move |res: io::Result<usize>, buf: Vec<u8>| tx.send((res, buf));
        let started = {
            let mut inner = self.inner.borrow_mut();
            inner.ahead = 0..0;
            inner.read_end = None;
            inner.files.write_at(&inner.file, buf, Some(pos), done)
        };
        positional_result(started, rx).await
    }

    /// Changes the file's permissions (`uv_fs_fchmod`).
    pub async fn set_permissions(&self, perm: Permissions) -> io::Result<()> {
        self.call(|lp, f, tx| uv::fs::fchmod(lp, f, perm.bits(), send(tx))).await
    }
}

impl Inner {
    /// The engine and the file, for an operation that waits without borrowing the `File`.
    fn handles(&self) -> (Files, Rc<uv::fs::File>) {
        (self.files.clone(), self.file.clone())
    }

    /// Waits until no request is in flight, taking in the result of the one that was.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(rx) = &mut self.busy else { return Poll::Ready(()) };
        let done = match Pin::new(rx).poll(&mut Context::from_waker(&self.fan_out)) {
            Poll::Ready(done) => done,
            Poll::Pending => {
                self.waiters.add(cx.waker());
                return Poll::Pending;
            }
        };
        self.busy = None;
        match done {
            Some(Done::Read(res, buf)) => {
                self.buf = buf;
                match res {
                    Ok(0) => self.read_end = Some(Ok(())),
                    // The read filled the buffer's last `n` bytes (see `start_read`).
                    Ok(n) => self.ahead = self.buf.len() - n..self.buf.len(),
                    Err(e) => self.read_end = Some(Err(e)),
                }
            }
            Some(Done::Write(res, buf)) => {
                self.buf = buf;
                if let Err(e) = res {
                    self.write_err = Some(e);
                }
            }
            Some(Done::Stat(res, from_end)) => {
                let res = res.and_then(|st| offset(st.size, from_end));
                if let Ok(pos) = res {
                    self.pos = Some(pos);
                }
                self.seek_done = Some((from_end, res));
            }
            // The callback panicked (the panic resumes from `block_on`); its buffer went with it.
            None => self.write_err = Some(io::Error::other("a file request ended without a result")),
        }
        Poll::Ready(())
    }

    /// A `read_at` from the page cache (see `cached`): `Some(n)` if it was there, `None` if the read must be a
    /// request. Only for reads a request would not split: at most what one cached attempt copies.
    fn poll_cached_at(&self, cx: &mut Context<'_>, buf: &mut Vec<u8>, pos: u64) -> Poll<Option<usize>> {
        let spare = buf.capacity() - buf.len();
        if !self.cached.enabled() || spare == 0 || spare > cached::MOST {
            return Poll::Ready(None);
        }
        ready!(coop::poll_proceed(cx));
        Poll::Ready(self.cached.read_spare(&self.file, buf, pos))
    }

    /// Whether `pos` may be given to `read_at` / `write_at`: not on a file without offsets (`ESPIPE`, as
    /// `pread`), and not past `i64::MAX` (`EINVAL`, as libuv and std: the kernel's offsets are signed, and the
    /// ring would take -1 for "the current position").
    /// Also fails once the runtime is gone: nothing would complete the request.
    fn check_offset(&self, pos: u64) -> io::Result<()> {
        if self.files.runtime_gone() {
            return Err(crate::error::runtime_gone());
        }
        if !self.seekable {
            return Err(io::Error::from(crate::Error::ESPIPE));
        }
        max_offset(pos).map(drop)
    }

    /// Moves the cursor, keeping the bytes read ahead that are still ahead of it.
    fn set_pos(&mut self, pos: u64) {
        self.seek_done = None;
        if let Some(skip) = self.pos.and_then(|cur| pos.checked_sub(cur)) {
            if skip <= self.ahead.len() as u64 {
                self.ahead.start += skip as usize;
                self.pos = Some(pos);
                return;
            }
        }
        self.pos = Some(pos);
        self.ahead = 0..0;
        self.read_end = None;
    }

    /// Takes the buffer for a request, allocating it on first use.
    fn take_buf(&mut self) -> Vec<u8> {
        let buf = std::mem::take(&mut self.buf);
        if buf.capacity() < CHUNK {
            return Vec::with_capacity(CHUNK);
        }
        buf
    }

    /// Starts reading at most `len` bytes (and at most [`CHUNK`]) at `pos` (at the kernel's position for `None`:
    /// a file that is not seekable).
    fn start_read(&mut self, pos: Option<u64>, len: usize) -> io::Result<()> {
        let want = len.min(CHUNK);
        let buf = self.take_buf();
        // Both engines leave the bytes read at the end of the buffer (see `poll_idle`); those in front are stale
        // and ignored.
        let keep = buf.capacity() - want;
        let (tx, rx) = reply();
        let done = move |res: io::Result<usize>, buf| tx.send(Done::Read(res, buf));
        self.files.read_tail(&self.file, buf, keep, pos, done)?;
        self.busy = Some(rx);
        self.ahead = 0..0;
        self.read_end = None;
        self.seek_done = None;
        Ok(())
    }

    /// Copies at most [`CHUNK`] bytes of `src` and starts writing them at the cursor (at the end in append mode,
    /// at the kernel's position on a file that is not seekable). `EINVAL` if the cursor would pass `i64::MAX`, as
    /// the kernel says for such a write.
    fn start_write(&mut self, src: &[u8]) -> io::Result<usize> {
        if self.files.runtime_gone() {
            return Err(crate::error::runtime_gone());
        }
        let n = src.len().min(CHUNK);
        let (offset, pos_after) = match (self.append || !self.seekable, self.pos) {
            (true, _) | (false, None) => (None, None),
            (false, Some(pos)) => (Some(pos), Some(max_offset(pos.saturating_add(n as u64))?)),
        };
        let mut buf = self.take_buf();
        buf.clear();
        buf.extend_from_slice(&src[..n]);
        let (tx, rx) = reply();
        self.files.write_all_at(&self.file, buf, offset, move |res, buf| tx.send(Done::Write(res, buf)))?;
        self.busy = Some(rx);
        self.ahead = 0..0;
        self.read_end = None;
        self.seek_done = None;
        self.pos = match self.seekable {
            true => pos_after,
            false => self.pos, // no cursor
        };
        Ok(n)
    }

    /// Starts an fstat to seek to `from_end` bytes from the end of the file.
    fn start_stat(&mut self, from_end: i64) -> io::Result<()> {
        let (tx, rx) = reply();
        let done = move |res: io::Result<uv::fs::Stat>| tx.send(Done::Stat(res, from_end));
        self.files.start_fstat(&self.file, done)?;
        self.busy = Some(rx);
        self.ahead = 0..0;
        self.read_end = None;
        Ok(())
    }

    /// In append mode after a write: finds the end of the file (or reports why that failed).
    fn resolve_end(&mut self) -> io::Result<()> {
        match self.seek_done.take() {
            Some((_, Err(e))) => Err(e),
            _ => self.start_stat(0),
        }
    }

    fn poll_read(&mut self, cx: &mut Context<'_>, dst: &mut [u8]) -> Poll<io::Result<usize>> {
        if dst.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if self.files.runtime_gone() {
            return Poll::Ready(Err(crate::error::runtime_gone())); // also for bytes the page cache has
        }
        loop {
            if !self.ahead.is_empty() {
                let n = dst.len().min(self.ahead.len());
                dst[..n].copy_from_slice(&self.buf[self.ahead.start..self.ahead.start + n]);
                self.ahead.start += n;
                self.advance(n);
                return Poll::Ready(Ok(n));
            }
            ready!(self.poll_idle(cx));
            if !self.ahead.is_empty() {
                continue;
            }
            if let Some(end) = self.read_end.take() {
                return Poll::Ready(end.map(|()| 0));
            }
            if let (Some(pos), true) = (self.pos, self.cached.enabled()) {
                ready!(coop::poll_proceed(cx));
                if let Some(n) = self.cached.read_into(&self.file, dst, pos) {
                    self.advance(n);
                    return Poll::Ready(Ok(n));
                }
            }
            let started = match (self.seekable, self.pos) {
                (false, _) => self.start_read(None, dst.len()),
                (true, Some(pos)) => self.start_read(Some(pos), dst.len()),
                (true, None) => self.resolve_end(),
            };
            if let Err(e) = started {
                return Poll::Ready(Err(e));
            }
        }
    }

    /// Moves the cursor past `n` bytes just read from it. The kernel read them at `pos`, so `pos + n` is within
    /// the file's size and cannot overflow; it saturates rather than wraps all the same.
    fn advance(&mut self, n: usize) {
        if self.seekable {
            self.pos = self.pos.map(|pos| pos.saturating_add(n as u64));
        }
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, src: &[u8]) -> Poll<io::Result<usize>> {
        if src.is_empty() {
            return Poll::Ready(Ok(0));
        }
        ready!(self.poll_idle(cx));
        if let Some(e) = self.write_err.take() {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(self.start_write(src))
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_idle(cx));
        Poll::Ready(self.write_err.take().map_or(Ok(()), Err))
    }

    fn poll_seek(&mut self, cx: &mut Context<'_>, to: SeekFrom) -> Poll<io::Result<u64>> {
        if !self.seekable {
            return Poll::Ready(Err(io::Error::from(crate::Error::ESPIPE))); // as lseek on a pipe
        }
        loop {
            ready!(self.poll_idle(cx));
            let started = match to {
                SeekFrom::Start(pos) => {
                    let res = max_offset(pos);
                    if let Ok(pos) = res {
                        self.set_pos(pos);
                    }
                    return Poll::Ready(res);
                }
                SeekFrom::Current(delta) => match self.pos {
                    Some(pos) => {
                        let res = offset(pos, delta);
                        if let Ok(pos) = res {
                            self.set_pos(pos);
                        }
                        return Poll::Ready(res);
                    }
                    None => self.resolve_end(),
                },
                // A seek whose future was dropped still takes effect (as with tokio), so its result may be here.
                SeekFrom::End(delta) => match self.seek_done.take() {
                    Some((from_end, res)) if from_end == delta => return Poll::Ready(res),
                    _ => self.start_stat(delta),
                },
            };
            if let Err(e) = started {
                return Poll::Ready(Err(e));
            }
        }
    }
}

/// `base + delta`, or `InvalidInput` for a position before the start or past `i64::MAX`.
fn offset(base: u64, delta: i64) -> io::Result<u64> {
    match base.checked_add_signed(delta) {
        Some(pos) => max_offset(pos),
        None => Err(io::Error::new(io::ErrorKind::InvalidInput, "invalid seek to a negative or overflowing position")),
    }
}

/// `pos` if the kernel can take it as an offset, else `EINVAL` (`InvalidInput`), as `lseek` and `pread` say
/// for a position past `i64::MAX`.
fn max_offset(pos: u64) -> io::Result<u64> {
    match i64::try_from(pos) {
        Ok(_) => Ok(pos),
        Err(_) => Err(io::Error::from(crate::Error::EINVAL)),
    }
}

/// The outcome of a `read_at` / `write_at` request: its result and buffer (an empty one if the request could not
/// start, or its callback panicked).
async fn positional_result(
    started: io::Result<()>,
    rx: Reply<(io::Result<usize>, Vec<u8>)>,
) -> (io::Result<usize>, Vec<u8>) {
    if let Err(e) = started {
        return (Err(e), Vec::new());
    }
    rx.await.unwrap_or_else(|| (Err(io::Error::other("a file request ended without a result")), Vec::new()))
}

/// The wakers of every task waiting for a file's request in flight. Several may wait at once (a read in one
/// task, `sync_all` in another) but a `Reply` keeps one waker, so it gets the one that wakes them all.
#[derive(Default)]
struct Waiters(Mutex<Vec<Waker>>);

impl Waiters {
    fn add(&self, waker: &Waker) {
        let mut list = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if !list.iter().any(|w| w.will_wake(waker)) {
            list.push(waker.clone());
        }
    }
}

impl Wake for Waiters {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Waking only queues tasks: nothing re-enters this lock.
        let mut list = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        for waker in list.drain(..) {
            waker.wake();
        }
    }
}

impl AsyncRead for File {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.get_mut().inner.get_mut().poll_read(cx, buf)
    }
}

impl AsyncWrite for File {
    /// Accepts at most 64 KiB and starts writing them; the outcome is reported by the next write, flush or
    /// sync (see [`File`]).
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.get_mut().inner.get_mut().poll_write(cx, buf)
    }

    /// Waits for the write in flight and reports its error, if any.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().inner.get_mut().poll_flush(cx)
    }

    /// Like `poll_flush`; the descriptor itself is closed when the `File` is dropped.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().inner.get_mut().poll_flush(cx)
    }
}

impl AsyncSeek for File {
    /// Moves the cursor; `SeekFrom::End` (and `SeekFrom::Current` in append mode after a write) asks the size
    /// with `uv_fs_fstat`, after the write in flight. Seeking before the start is `InvalidInput`.
    fn poll_seek(self: Pin<&mut Self>, cx: &mut Context<'_>, pos: SeekFrom) -> Poll<io::Result<u64>> {
        self.get_mut().inner.get_mut().poll_seek(cx, pos)
    }
}

impl std::fmt::Debug for File {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.inner.try_borrow() {
            Ok(inner) => f
                .debug_struct("File")
                .field("fd", &inner.file.fd())
                .field("pos", &inner.pos)
                .field("append", &inner.append)
                .finish(),
            Err(_) => f.debug_struct("File").finish_non_exhaustive(),
        }
    }
}
