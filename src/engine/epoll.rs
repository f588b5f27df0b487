//! The epoll engine (Linux): sockets are non-blocking `socket2::Socket`s ([`Sock`]: streams and listeners) or
//! `std::net::UdpSocket`s ([`Dgram`]), read and written with plain syscalls
//! straight into and out of the caller's buffer; readiness comes from one `uv_poll_t` per socket on the
//! runtime's libuv loop (libuv's own epoll set), asked for only after a syscall said `EAGAIN`.
//!
//! - **Interest only while someone waits.** libuv's poll is level-triggered, so a watcher left on a readable
//!   socket would fire at every loop iteration. A waiting reader (writer) adds `READABLE` (`WRITABLE`) to the
//!   watcher's interest and stores its waker; the poll callback wakes it (every task waiting for that event, when
//!   several share a socket: each retries its syscall). `WRITABLE` is dropped at once (a
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

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io::{self, Read};
use std::net::SocketAddr;
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
    readers: Wakers,
    writers: Wakers,
}

impl Waiters {
    /// The interest the current waiters need, plus `READABLE` if `keep_read`.
    fn wanted(&self, keep_read: bool) -> PollEvents {
        let mut want = PollEvents::EMPTY;
        if !self.readers.is_empty() || keep_read {
            want |= PollEvents::READABLE;
        }
        if !self.writers.is_empty() {
            want |= PollEvents::WRITABLE;
        }
        want
    }

    fn side(&mut self, event: PollEvents) -> &mut Wakers {
        if event == PollEvents::READABLE {
            &mut self.readers
        } else {
            &mut self.writers
        }
    }
}

/// The tasks waiting for one event. Usually one task (no allocation); several tasks sharing a socket (a UDP
/// socket in an `Rc`) all get woken and retry their syscall.
#[derive(Default)]
struct Wakers {
    first: Option<Waker>,
    more: Vec<Waker>,
}

impl Wakers {
    fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    fn register(&mut self, waker: &Waker) {
        match &self.first {
            None => self.first = Some(waker.clone()),
            Some(w) if w.will_wake(waker) => {}
            Some(_) if self.more.iter().any(|w| w.will_wake(waker)) => {}
            Some(_) => self.more.push(waker.clone()),
        }
    }

    /// Empties the set, handing out what it held (woken by the caller once no borrow is held).
    fn take(&mut self) -> Wakers {
        Wakers { first: self.first.take(), more: std::mem::take(&mut self.more) }
    }

    fn wake(self) {
        if let Some(w) = self.first {
            w.wake();
        }
        for w in self.more {
            w.wake();
        }
    }
}

/// Stores the waker for `event` (`READABLE` or `WRITABLE`) and makes sure `poll` watches it.
fn wait(poll: &uv::Poll, waiters: &RefCell<Waiters>, cx: &Context<'_>, event: PollEvents) -> io::Result<()> {
    let mut w = waiters.borrow_mut();
    w.side(event).register(cx.waker());
    let want = w.interest | event;
    if want != w.interest {
        if let Err(e) = poll.restart(want) {
            w.side(event).take();
            return Err(e.into());
        }
        w.interest = want;
    }
    Ok(())
}

/// Retries `op` while it is interrupted; `WouldBlock` waits for `event` on `poll`.
fn poll_syscall<R>(
    poll: &uv::Poll,
    waiters: &RefCell<Waiters>,
    cx: &Context<'_>,
    event: PollEvents,
    mut op: impl FnMut() -> io::Result<R>,
) -> Poll<io::Result<R>> {
    loop {
        match op() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                wait(poll, waiters, cx, event)?;
                return Poll::Pending;
            }
            res => return Poll::Ready(res),
        }
    }
}

/// Retries `op` while it is interrupted (the `try_*` calls: `WouldBlock` is the caller's).
fn retry<R>(mut op: impl FnMut() -> io::Result<R>) -> io::Result<R> {
    loop {
        match op() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            res => return res,
        }
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
        wait(&self.poll, &self.waiters, cx, event)
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

/// The receive buffer (`SO_RCVBUF`) a UDP socket made by this engine asks for. Without a user-space queue the
/// kernel's buffer is all that absorbs a burst nobody reads yet; the libuv engine adds a 256-datagram queue on
/// top of it, so this engine asks for room for about as many more (Linux's default, 208 KiB, holds 256 small
/// datagrams; asking 256 KiB gets 512 KiB where `net.core.rmem_max` allows, and twice the default where it is
/// the default). Sockets taken over with `from_std` keep what their owner set.
const DGRAM_RCVBUF: usize = 256 * 1024;

/// A non-blocking UDP socket and its readiness watcher. Every operation is one syscall on the caller's buffer
/// (`recvfrom(2)`, `sendto(2)`): nothing is queued here, so a dropped future loses nothing (a datagram not yet
/// received stays in the kernel; one sent is the kernel's) and nothing is allocated per datagram.
pub(crate) struct Dgram {
    // Field order matters: `poll` is dropped (stopped, then closed by libuv) before `sock` closes the fd.
    poll: uv::Poll,
    waiters: Rc<RefCell<Waiters>>,
    sock: std::net::UdpSocket,
    /// Whether the socket has a peer: libuv refuses `send_to` then (`EISCONN`), and so does this engine, while
    /// Linux would send.
    connected: Cell<bool>,
}

impl Dgram {
    /// Watches `sock` on the current runtime's loop, non-blocking; the watcher stays stopped until someone waits.
    pub(crate) fn new(sock: std::net::UdpSocket) -> io::Result<Dgram> {
        sock.set_nonblocking(true)?;
        let ex = crate::runtime::current();
        let poll = uv::Poll::new(&ex.lp, sock.as_raw_fd())?;
        let waiters: Rc<RefCell<Waiters>> = Rc::default();
        let weak = Rc::downgrade(&waiters);
        // Empty interest: stores the callback without starting the watcher.
        poll.start(PollEvents::EMPTY, move |p, res| on_ready(p, &weak, res))?;
        let connected = Cell::new(sock.peer_addr().is_ok());
        Ok(Dgram { poll, waiters, sock, connected })
    }

    /// A new socket bound to `addr`, with a receive buffer of at least [`DGRAM_RCVBUF`] (see there).
    pub(crate) fn bind(addr: SocketAddr) -> io::Result<Dgram> {
        let sock = std::net::UdpSocket::bind(addr)?;
        let sref = socket2::SockRef::from(&sock);
        // Linux reports twice what was asked (its bookkeeping overhead), capped by `net.core.rmem_max`.
        if sref.recv_buffer_size()? < 2 * DGRAM_RCVBUF {
            // Only a wish: a smaller buffer still works, it just absorbs a shorter burst.
            let _ = sref.set_recv_buffer_size(DGRAM_RCVBUF);
        }
        Dgram::new(sock)
    }

    /// The socket itself (addresses, options).
    pub(crate) fn socket(&self) -> &std::net::UdpSocket {
        &self.sock
    }

    /// Connects to `addr` (`connect(2)`; a connected socket gets the new peer).
    pub(crate) fn connect(&self, addr: SocketAddr) -> io::Result<()> {
        let res = self.sock.connect(addr);
        self.connected.set(self.sock.peer_addr().is_ok());
        res
    }

    fn check_target(&self, target: Option<SocketAddr>) -> io::Result<()> {
        match target {
            Some(_) if self.connected.get() => Err(io::Error::from_raw_os_error(libc::EISCONN)),
            _ => Ok(()),
        }
    }

    fn send_now(&self, buf: &[u8], target: Option<SocketAddr>) -> io::Result<usize> {
        match target {
            Some(to) => self.sock.send_to(buf, to),
            None => self.sock.send(buf),
        }
    }

    /// Receives one datagram into `buf` (truncated to its length, the rest discarded), with its sender; waits
    /// for readability when none is queued in the kernel.
    pub(crate) fn poll_recv_from(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<(usize, SocketAddr)>> {
        poll_syscall(&self.poll, &self.waiters, cx, PollEvents::READABLE, || self.sock.recv_from(buf))
    }

    /// Receives one datagram now, or `WouldBlock`.
    pub(crate) fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        retry(|| self.sock.recv_from(buf))
    }

    /// Sends one datagram (to `target`, or to the peer when `None`); waits for writability when the kernel's
    /// buffer is full.
    pub(crate) fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        target: Option<SocketAddr>,
    ) -> Poll<io::Result<usize>> {
        self.check_target(target)?;
        poll_syscall(&self.poll, &self.waiters, cx, PollEvents::WRITABLE, || self.send_now(buf, target))
    }

    /// Sends one datagram now, or `WouldBlock`.
    pub(crate) fn try_send_to(&self, buf: &[u8], target: Option<SocketAddr>) -> io::Result<usize> {
        self.check_target(target)?;
        retry(|| self.send_now(buf, target))
    }
}

impl Drop for Dgram {
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
    let readers = if readable { w.readers.take() } else { Wakers::default() };
    let writers = if writable { w.writers.take() } else { Wakers::default() };
    // Keep READABLE for a reader just woken (it usually comes back), or one not reported on this time; drop it
    // when it fired with nobody waiting.
    let keep_read = w.interest.contains(PollEvents::READABLE) && (!readable || !readers.is_empty());
    let want = w.wanted(keep_read);
    if want != w.interest {
        // Cannot fail on an open watcher; if it did, the waiters still get woken and retry.
        let _ = poll.restart(want);
        w.interest = want;
    }
    drop(w);
    readers.wake();
    writers.wake();
}
