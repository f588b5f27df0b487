//! Readiness of descriptors uvio does not read or write itself (Unix): [`AsyncFd`], shaped like tokio's.
//!
//! [`AsyncFd`] owns any `T: AsFd` (a socket, a pipe, an eventfd, a device) and tells when it can be read or
//! written; the program does the non-blocking syscalls itself. It works on every engine, with the same
//! semantics: the libuv engine asks a `uv_poll_t`, the epoll and io_uring engines the runtime's epoll set.

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::ops::BitOr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::task::{Context, Poll};

use crate::engine::{AnyReadiness, Direction};

/// The readiness an [`AsyncFd`] watches for: [`READABLE`](Interest::READABLE), [`WRITABLE`](Interest::WRITABLE)
/// or both (`|`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Interest {
    read: bool,
    write: bool,
}

impl Interest {
    /// The descriptor can be read (or is at end-of-file, hung up, in error).
    pub const READABLE: Interest = Interest { read: true, write: false };
    /// The descriptor can be written (or is hung up, in error).
    pub const WRITABLE: Interest = Interest { read: false, write: true };

    /// Whether this includes [`READABLE`](Interest::READABLE).
    pub const fn is_readable(self) -> bool {
        self.read
    }

    /// Whether this includes [`WRITABLE`](Interest::WRITABLE).
    pub const fn is_writable(self) -> bool {
        self.write
    }

    /// Both this and `other`.
    pub const fn add(self, other: Interest) -> Interest {
        Interest { read: self.read || other.read, write: self.write || other.write }
    }

    fn has(self, d: Direction) -> bool {
        match d {
            Direction::Read => self.read,
            Direction::Write => self.write,
        }
    }
}

impl BitOr for Interest {
    type Output = Interest;
    fn bitor(self, rhs: Interest) -> Interest {
        self.add(rhs)
    }
}

impl fmt::Debug for Interest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.read, self.write) {
            (true, true) => f.write_str("READABLE | WRITABLE"),
            (true, false) => f.write_str("READABLE"),
            _ => f.write_str("WRITABLE"),
        }
    }
}

/// A descriptor `T` owned and watched for readiness on the current runtime (Unix), as tokio's `AsyncFd`.
///
/// - **Readiness is cached until cleared.** Once the engine reports a direction ready, [`readable`]
///   (or [`writable`]) returns at once, again and again, until the program clears it: with
///   [`AsyncFdReadyGuard::clear_ready`], or by [`try_io`](AsyncFdReadyGuard::try_io) seeing `WouldBlock`. So
///   the loop is: wait, try the syscall, and clear only on `WouldBlock`. Readiness that arrives between the
///   syscall and the clear is not lost: the next wait reports it.
/// - **Hang-up and errors stay ready.** A descriptor whose peer hung up, or which is in error, stays ready in
///   the directions concerned whatever is cleared: the syscall reports end-of-file or the error.
/// - **Non-blocking.** [`new`](AsyncFd::new) makes the descriptor non-blocking (`O_NONBLOCK` is a property of
///   the open file, so other descriptors of it, in this process or another, become non-blocking too).
/// - **Ownership.** The `AsyncFd` owns `T`, so the descriptor stays open while it is watched. Dropping the
///   `AsyncFd` stops watching, then drops `T`; [`into_inner`](AsyncFd::into_inner) stops watching and hands
///   `T` back. The engine watches a duplicate of the descriptor that it owns: replacing or closing `T`'s
///   descriptor through [`get_mut`](AsyncFd::get_mut) cannot crash the loop or disturb other descriptors (but
///   readiness then keeps following the old open file until the `AsyncFd` is dropped: a logic error).
/// - Several tasks may wait on one `AsyncFd` (through `&self`); all of them are woken.
///
/// [`readable`]: AsyncFd::readable
/// [`writable`]: AsyncFd::writable
///
/// ```
/// # #[cfg(unix)] uvio::block_on(async {
/// use std::io::{Read, Write};
/// use std::os::unix::net::UnixStream;
/// use uvio::io::AsyncFd;
///
/// let (a, mut b) = UnixStream::pair()?;
/// let a = AsyncFd::new(a)?;
/// b.write_all(b"ping")?;
/// let mut buf = [0u8; 16];
/// let n = loop {
///     let mut guard = a.readable().await?;
///     match guard.try_io(|inner| inner.get_ref().read(&mut buf)) {
///         Ok(result) => break result?,
///         Err(_would_block) => continue, // readiness was cleared: wait again
///     }
/// };
/// assert_eq!(&buf[..n], b"ping");
/// # Ok::<(), std::io::Error>(())
/// # }).unwrap();
/// ```
///
/// # Panics
/// [`new`](AsyncFd::new) and [`with_interest`](AsyncFd::with_interest) panic outside a runtime.
pub struct AsyncFd<T: AsFd> {
    // Field order matters: watching stops before `inner` (and its descriptor) is dropped.
    watch: AnyReadiness,
    interest: Interest,
    inner: T,
}

impl<T: AsFd> AsyncFd<T> {
    /// Watches `inner` for reading and writing on the current runtime, making its descriptor non-blocking.
    /// Errors: the descriptor cannot be watched (a regular file on Linux: `EPERM`; or out of descriptors).
    pub fn new(inner: T) -> io::Result<AsyncFd<T>> {
        AsyncFd::with_interest(inner, Interest::READABLE | Interest::WRITABLE)
    }

    /// Watches `inner` for `interest` only: waiting for another direction is an `InvalidInput` error.
    pub fn with_interest(inner: T, interest: Interest) -> io::Result<AsyncFd<T>> {
        let ex = crate::runtime::current();
        let watch = AnyReadiness::new(&ex.engine, inner.as_fd())?;
        Ok(AsyncFd { watch, interest, inner })
    }

    /// The owned descriptor.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The owned descriptor, mutably (see the type's docs about replacing it).
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// Stops watching and hands the descriptor back (still non-blocking).
    pub fn into_inner(self) -> T {
        let AsyncFd { watch, inner, .. } = self;
        drop(watch);
        inner
    }

    /// What this `AsyncFd` watches for.
    pub fn interest(&self) -> Interest {
        self.interest
    }

    /// Waits until the descriptor is readable (as cached: see the type's docs).
    pub async fn readable(&self) -> io::Result<AsyncFdReadyGuard<'_, T>> {
        poll_fn(|cx| self.poll_read_ready(cx)).await
    }

    /// Waits until the descriptor is writable (as cached: see the type's docs).
    pub async fn writable(&self) -> io::Result<AsyncFdReadyGuard<'_, T>> {
        poll_fn(|cx| self.poll_write_ready(cx)).await
    }

    /// As [`readable`](Self::readable), with a guard that lends `&mut AsyncFd`.
    pub async fn readable_mut(&mut self) -> io::Result<AsyncFdReadyMutGuard<'_, T>> {
        poll_fn(|cx| self.poll_ready(cx, Direction::Read)).await?;
        Ok(AsyncFdReadyMutGuard { fd: self, dir: Direction::Read })
    }

    /// As [`writable`](Self::writable), with a guard that lends `&mut AsyncFd`.
    pub async fn writable_mut(&mut self) -> io::Result<AsyncFdReadyMutGuard<'_, T>> {
        poll_fn(|cx| self.poll_ready(cx, Direction::Write)).await?;
        Ok(AsyncFdReadyMutGuard { fd: self, dir: Direction::Write })
    }

    /// Polls for read readiness, for hand-written futures: `Pending` registers `cx`'s waker (every task that
    /// polled is woken when it comes).
    pub fn poll_read_ready<'a>(&'a self, cx: &mut Context<'_>) -> Poll<io::Result<AsyncFdReadyGuard<'a, T>>> {
        self.poll_ready(cx, Direction::Read).map_ok(|()| AsyncFdReadyGuard { fd: self, dir: Direction::Read })
    }

    /// Polls for write readiness, for hand-written futures (see [`poll_read_ready`](Self::poll_read_ready)).
    pub fn poll_write_ready<'a>(&'a self, cx: &mut Context<'_>) -> Poll<io::Result<AsyncFdReadyGuard<'a, T>>> {
        self.poll_ready(cx, Direction::Write).map_ok(|()| AsyncFdReadyGuard { fd: self, dir: Direction::Write })
    }

    /// As [`poll_read_ready`](Self::poll_read_ready), with a guard that lends `&mut AsyncFd`.
    pub fn poll_read_ready_mut<'a>(
        &'a mut self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<AsyncFdReadyMutGuard<'a, T>>> {
        match self.poll_ready(cx, Direction::Read) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(AsyncFdReadyMutGuard { fd: self, dir: Direction::Read })),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// As [`poll_write_ready`](Self::poll_write_ready), with a guard that lends `&mut AsyncFd`.
    pub fn poll_write_ready_mut<'a>(
        &'a mut self,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<AsyncFdReadyMutGuard<'a, T>>> {
        match self.poll_ready(cx, Direction::Write) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(AsyncFdReadyMutGuard { fd: self, dir: Direction::Write })),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_ready(&self, cx: &Context<'_>, d: Direction) -> Poll<io::Result<()>> {
        if !self.interest.has(d) {
            let msg = format!("this AsyncFd does not watch for {d:?} readiness (its interest is {:?})", self.interest);
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidInput, msg)));
        }
        self.watch.poll_ready(cx, d)
    }
}

impl<T: AsFd> AsFd for AsyncFd<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl<T: AsFd> AsRawFd for AsyncFd<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_fd().as_raw_fd()
    }
}

impl<T: AsFd + fmt::Debug> fmt::Debug for AsyncFd<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncFd").field("inner", &self.inner).field("interest", &self.interest).finish()
    }
}

/// The error [`try_io`](AsyncFdReadyGuard::try_io) returns when the operation would block (readiness was
/// cleared: wait again).
#[derive(Debug)]
pub struct TryIoError(());

impl fmt::Display for TryIoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the operation would block")
    }
}

impl std::error::Error for TryIoError {}

/// Proof that an [`AsyncFd`] was ready in one direction, from [`readable`](AsyncFd::readable) or
/// [`writable`](AsyncFd::writable). Dropping it keeps the readiness (the next wait returns at once).
pub struct AsyncFdReadyGuard<'a, T: AsFd> {
    fd: &'a AsyncFd<T>,
    dir: Direction,
}

impl<'a, T: AsFd> AsyncFdReadyGuard<'a, T> {
    /// Forgets the readiness: the next wait waits for the engine to report it again. Call it only after a
    /// syscall said `WouldBlock`, or readiness the kernel already reported is missed until the next change.
    pub fn clear_ready(&mut self) {
        self.fd.watch.clear(self.dir);
    }

    /// Keeps the readiness (what dropping the guard does too).
    pub fn retain_ready(&mut self) {}

    /// Runs `f`; if it fails with `WouldBlock`, clears the readiness and returns `Err(TryIoError)`, else its
    /// result.
    pub fn try_io<R>(&mut self, f: impl FnOnce(&'a AsyncFd<T>) -> io::Result<R>) -> Result<io::Result<R>, TryIoError> {
        match f(self.fd) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.clear_ready();
                Err(TryIoError(()))
            }
            res => Ok(res),
        }
    }

    /// The [`AsyncFd`].
    pub fn get_ref(&self) -> &'a AsyncFd<T> {
        self.fd
    }

    /// The descriptor the [`AsyncFd`] owns.
    pub fn get_inner(&self) -> &'a T {
        self.fd.get_ref()
    }
}

impl<T: AsFd> fmt::Debug for AsyncFdReadyGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncFdReadyGuard").field("ready", &self.dir).finish()
    }
}

/// As [`AsyncFdReadyGuard`], lending `&mut AsyncFd` (from [`readable_mut`](AsyncFd::readable_mut) or
/// [`writable_mut`](AsyncFd::writable_mut)).
pub struct AsyncFdReadyMutGuard<'a, T: AsFd> {
    fd: &'a mut AsyncFd<T>,
    dir: Direction,
}

impl<T: AsFd> AsyncFdReadyMutGuard<'_, T> {
    /// Forgets the readiness (see [`AsyncFdReadyGuard::clear_ready`]).
    pub fn clear_ready(&mut self) {
        self.fd.watch.clear(self.dir);
    }

    /// Keeps the readiness (what dropping the guard does too).
    pub fn retain_ready(&mut self) {}

    /// As [`AsyncFdReadyGuard::try_io`], with `&mut AsyncFd`.
    pub fn try_io<R>(&mut self, f: impl FnOnce(&mut AsyncFd<T>) -> io::Result<R>) -> Result<io::Result<R>, TryIoError> {
        match f(self.fd) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.clear_ready();
                Err(TryIoError(()))
            }
            res => Ok(res),
        }
    }

    /// The [`AsyncFd`].
    pub fn get_ref(&self) -> &AsyncFd<T> {
        self.fd
    }

    /// The [`AsyncFd`], mutably.
    pub fn get_mut(&mut self) -> &mut AsyncFd<T> {
        self.fd
    }

    /// The descriptor the [`AsyncFd`] owns.
    pub fn get_inner(&self) -> &T {
        self.fd.get_ref()
    }

    /// The descriptor the [`AsyncFd`] owns, mutably.
    pub fn get_inner_mut(&mut self) -> &mut T {
        self.fd.get_mut()
    }
}

impl<T: AsFd> fmt::Debug for AsyncFdReadyMutGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncFdReadyMutGuard").field("ready", &self.dir).finish()
    }
}
