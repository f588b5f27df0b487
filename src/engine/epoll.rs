//! The epoll engine (Linux): sockets are non-blocking `socket2::Socket`s, read and written with plain syscalls
//! straight into and out of the caller's buffer; readiness comes from one `uv_poll_t` per socket on the
//! runtime's libuv loop (libuv's own epoll set), asked for only after a syscall said `EAGAIN`.
//!
//! - **Interest only while someone waits.** libuv's poll is level-triggered, so a watcher left on a readable
//!   socket would fire at every loop iteration. A waiting reader (writer) adds `READABLE` (`WRITABLE`) to the
//!   watcher's interest and stores its waker; the poll callback wakes it. `WRITABLE` is dropped at once (a
//!   socket is nearly always writable). `READABLE` stays while the woken reader is expected back — a reader
//!   that was woken usually waits again right after — and is dropped the first time it fires with no reader
//!   waiting: at most one idle callback, and no `epoll_ctl` pair per message in request/response traffic.
//!   Interest changes are `uv_poll_start` with the new set (`uv_poll_stop` when empty): no allocation.
//! - **No `EAGAIN` round trip when the answer is known.** A read that returned less than asked drained the
//!   socket; while `READABLE` is watched and has not fired since, the next read waits without a syscall (the
//!   level-triggered watcher reports any byte that arrives meanwhile).
//! - **No user-space buffers.** A read that is dropped consumed nothing: the bytes stay in the kernel for the
//!   next read. A write is `send(2)` (`MSG_NOSIGNAL`): `Ok(n)` means the kernel has the `n` bytes, so nothing
//!   is queued here, nothing can be lost on drop, and flushing is immediate.
//! - **Close order.** libuv must stop watching an fd before it is closed: [`Sock`] stops and drops its watcher
//!   before the socket closes its fd.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use socket2::{SockAddr, Socket, Type};

use crate::uv::{self, PollEvents};

/// Connections the OS may queue before `accept` (the listen backlog, as for the libuv engine).
const BACKLOG: i32 = 1024;

#[cfg(feature = "tokio-io")]
/// Bytes the tokio read path reads at most per call (through a per-thread scratch buffer, see
/// [`Sock::poll_read_with`]).
const SCRATCH: usize = 64 * 1024;

#[cfg(feature = "tokio-io")]
thread_local! {
    /// Where the tokio read path lands bytes before copying them into the caller's `ReadBuf`, whose room may be
    /// uninitialised (filling it directly would need `unsafe`). One per thread, allocated once.
    static SCRATCH_BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH].into_boxed_slice());
}

/// Who waits for what on one socket; shared with the watcher's callback.
#[derive(Default)]
struct Waiters {
    /// The events the watcher watches now (empty: stopped).
    interest: PollEvents,
    /// `READABLE` fired since the last read that drained the socket (only meaningful while it is watched).
    readable: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
}

impl Waiters {
    /// The interest the current waiters need, plus `READABLE` if `keep_read`.
    fn wanted(&self, keep_read: bool) -> PollEvents {
        let mut want = PollEvents::EMPTY;
        if self.reader.is_some() || keep_read {
            want |= PollEvents::READABLE;
        }
        if self.writer.is_some() {
            want |= PollEvents::WRITABLE;
        }
        want
    }
}

/// A non-blocking socket and its readiness watcher: a TCP or Unix stream, or a listener.
pub(crate) struct Sock {
    // Field order matters: `poll` is dropped (stopped, then closed by libuv) before `sock` closes the fd.
    poll: uv::Poll,
    waiters: Rc<RefCell<Waiters>>,
    sock: Socket,
}

impl Sock {
    /// Watches `sock` on the current runtime's loop (`uv_poll_init`, which also makes it non-blocking). The
    /// watcher stays stopped until someone waits.
    pub(crate) fn new(sock: Socket) -> io::Result<Sock> {
        let ex = crate::runtime::current();
        let poll = uv::Poll::new(&ex.lp, sock.as_raw_fd())?;
        let waiters: Rc<RefCell<Waiters>> = Rc::default();
        let weak = Rc::downgrade(&waiters);
        // Empty interest: stores the callback without starting the watcher.
        poll.start(PollEvents::EMPTY, move |p, res| on_ready(p, &weak, res))?;
        Ok(Sock { poll, waiters, sock })
    }

    /// The socket itself (addresses, options).
    pub(crate) fn socket(&self) -> &Socket {
        &self.sock
    }

    /// Stores the waker for `event` (`READABLE` or `WRITABLE`) and makes sure the watcher watches it.
    fn wait(&self, cx: &Context<'_>, event: PollEvents) -> io::Result<()> {
        let mut w = self.waiters.borrow_mut();
        let slot = if event == PollEvents::READABLE { &mut w.reader } else { &mut w.writer };
        match slot {
            Some(old) if old.will_wake(cx.waker()) => {}
            _ => *slot = Some(cx.waker().clone()),
        }
        let want = w.interest | event;
        if want != w.interest {
            if let Err(e) = self.poll.restart(want) {
                *(if event == PollEvents::READABLE { &mut w.reader } else { &mut w.writer }) = None;
                return Err(e.into());
            }
            w.interest = want;
        }
        Ok(())
    }

    /// Reads into `out` (`recv(2)`); waits for readability only when the kernel has nothing.
    pub(crate) fn poll_read(&self, cx: &mut Context<'_>, out: &mut [u8]) -> Poll<io::Result<usize>> {
        if !out.is_empty() {
            let w = self.waiters.borrow();
            if w.interest.contains(PollEvents::READABLE) && !w.readable {
                // Drained by the last read, and the watcher has seen nothing since: it will tell us.
                drop(w);
                self.wait(cx, PollEvents::READABLE)?;
                return Poll::Pending;
            }
        }
        loop {
            match (&self.sock).read(out) {
                Ok(n) => {
                    if n < out.len() {
                        self.waiters.borrow_mut().readable = false;
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.waiters.borrow_mut().readable = false;
                    self.wait(cx, PollEvents::READABLE)?;
                    return Poll::Pending;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    #[cfg(feature = "tokio-io")]
    /// `poll_read` for a destination that is not a plain slice (tokio's `ReadBuf`): reads at most `max` bytes
    /// into the thread's scratch buffer and hands them to `take`, which copies them out.
    pub(crate) fn poll_read_with(
        &self,
        cx: &mut Context<'_>,
        max: usize,
        take: impl FnOnce(&[u8]),
    ) -> Poll<io::Result<usize>> {
        if max == 0 {
            return Poll::Ready(Ok(0));
        }
        SCRATCH_BUF.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let room = max.min(scratch.len());
            let n = std::task::ready!(self.poll_read(cx, &mut scratch[..room]))?;
            take(&scratch[..n]);
            Poll::Ready(Ok(n))
        })
    }

    /// Writes from `data` (`send(2)` with `MSG_NOSIGNAL`: a closed peer is `EPIPE`, not a signal); a partial
    /// write is `Ok(n)`. Waits for writability only when the kernel's buffer is full.
    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            match self.sock.send_with_flags(data, libc::MSG_NOSIGNAL) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.wait(cx, PollEvents::WRITABLE)?;
                    return Poll::Pending;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// Nothing to flush: written bytes are already the kernel's.
    pub(crate) fn poll_flush(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Shuts the write side down (`shutdown(2)`, `SHUT_WR`): the peer reads end-of-stream. A socket the peer
    /// already reset (`ENOTCONN`) has nothing left to shut down.
    pub(crate) fn poll_shutdown(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.sock.shutdown(std::net::Shutdown::Write) {
            Err(e) if e.raw_os_error() != Some(libc::ENOTCONN) => Poll::Ready(Err(e)),
            _ => Poll::Ready(Ok(())),
        }
    }

    /// Accepts the next connection (`accept4(2)`, close-on-exec), watched on this loop; waits for
    /// readability when none is queued. A connection is never accepted into nowhere: a dropped accept leaves it
    /// queued in the kernel.
    pub(crate) fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(Sock, SockAddr)>> {
        loop {
            match self.sock.accept() {
                Ok((conn, peer)) => return Poll::Ready(Sock::new(conn).map(|s| (s, peer))),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.wait(cx, PollEvents::READABLE)?;
                    return Poll::Pending;
                }
                // Interrupted, or a connection reset while queued (as libuv): try the next one.
                Err(e) if e.kind() == io::ErrorKind::Interrupted || e.raw_os_error() == Some(libc::ECONNABORTED) => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// Connects a new stream socket to `addr` (non-blocking `connect(2)`, then writability and `SO_ERROR`).
    /// Dropping the future closes the socket, which abandons the connect.
    pub(crate) async fn connect(addr: &SockAddr) -> io::Result<Sock> {
        let sock = Sock::new(Socket::new(addr.domain(), Type::STREAM.nonblocking(), None)?)?;
        match sock.sock.connect(addr) {
            Ok(()) => return Ok(sock),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        poll_fn(|cx| sock.poll_connected(cx)).await?;
        Ok(sock)
    }

    fn poll_connected(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.sock.take_error()? {
            return Poll::Ready(Err(e));
        }
        match self.sock.peer_addr() {
            Ok(_) => Poll::Ready(Ok(())),
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
                self.wait(cx, PollEvents::WRITABLE)?;
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// A listening stream socket bound to `addr` (`SO_REUSEADDR` first when `reuse_addr`, as libuv does for
    /// TCP).
    pub(crate) fn listen(addr: &SockAddr, reuse_addr: bool) -> io::Result<Sock> {
        let sock = Socket::new(addr.domain(), Type::STREAM.nonblocking(), None)?;
        if reuse_addr {
            sock.set_reuse_address(true)?;
        }
        sock.bind(addr)?;
        sock.listen(BACKLOG)?;
        Sock::new(sock)
    }

    /// Takes over a socket that is already listening (listens again here, with uvio's backlog).
    pub(crate) fn from_listening(sock: Socket) -> io::Result<Sock> {
        sock.listen(BACKLOG)?;
        Sock::new(sock)
    }
}

impl Drop for Sock {
    fn drop(&mut self) {
        // Stop watching before the fd closes (the fields then drop: the watcher first, the socket last).
        let _ = self.poll.stop();
    }
}

/// The watcher's callback: wakes the waiters whose event came and drops the interest nobody waits for anymore.
fn on_ready(poll: &uv::Poll, waiters: &Weak<RefCell<Waiters>>, res: crate::Result<PollEvents>) {
    let Some(waiters) = waiters.upgrade() else { return };
    let mut w = waiters.borrow_mut();
    let (readable, writable) = match res {
        Ok(ev) => (
            ev.contains(PollEvents::READABLE) || ev.contains(PollEvents::DISCONNECT),
            ev.contains(PollEvents::WRITABLE),
        ),
        // A socket error (libuv reports it as EBADF and stops the watcher): everyone retries its syscall,
        // which reports the real error.
        Err(_) => {
            w.interest = PollEvents::EMPTY;
            (true, true)
        }
    };
    if readable {
        w.readable = true;
    }
    let reader = if readable { w.reader.take() } else { None };
    let writer = if writable { w.writer.take() } else { None };
    // Keep READABLE for a reader just woken (it usually comes back), or one not reported on this time; drop it
    // when it fired with nobody waiting.
    let keep_read = w.interest.contains(PollEvents::READABLE) && (!readable || reader.is_some());
    let want = w.wanted(keep_read);
    if want != w.interest {
        // Cannot fail on an open watcher; if it did, the waiters still get woken and retry.
        let _ = poll.restart(want);
        w.interest = want;
    }
    drop(w);
    if let Some(r) = reader {
        r.wake();
    }
    if let Some(wr) = writer {
        wr.wake();
    }
}
