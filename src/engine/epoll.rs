//! The epoll engine (Linux): sockets are non-blocking `socket2::Socket`s ([`Sock`]: streams and listeners) or
//! `std::net::UdpSocket`s ([`Dgram`]), read and written with plain syscalls straight into and out of the
//! caller's buffer; readiness comes from one edge-triggered epoll set per runtime (a [`Reactor`], through mio),
//! whose fd the runtime's libuv loop watches with one `uv_poll_t`.
//!
//! - **Edge-triggered, registered once.** Each socket joins the set for reading and writing when it is made
//!   and leaves it when dropped: no `epoll_ctl` per operation, whatever the traffic. (An earlier version used
//!   one level-triggered `uv_poll_t` per socket; libuv's `uv_poll_start` removes and re-adds the fd on every
//!   interest change, and with many connections woken at once some fired again before their task ran, so the
//!   interest churned: two `epoll_ctl` per request at 1000 connections.)
//! - **Readiness flags.** A socket remembers whether it may be readable/writable: set by an edge, cleared by an
//!   `EAGAIN` (or a short read, which drained the socket). While a flag is clear the operation waits without a
//!   syscall; the next edge wakes it. Everything runs on the loop's thread, so no edge can slip between a
//!   syscall and the flag.
//! - **No user-space buffers.** A read that is dropped consumed nothing: the bytes stay in the kernel for the
//!   next read. A write is `send(2)` (`MSG_NOSIGNAL`): `Ok(n)` means the kernel has the `n` bytes, so nothing
//!   is queued here, nothing can be lost on drop, and flushing is immediate.
//! - **Close order.** A socket leaves the epoll set (`EPOLL_CTL_DEL`) before its fd closes; the reactor's
//!   `uv_poll_t` is closed before the epoll fd.

#![allow(unsafe_code)] // one call: uv::Poll::new on the reactor's own epoll fd
#![warn(clippy::undocumented_unsafe_blocks)]

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Token};
use slab::Slab;
use socket2::{SockAddr, Socket, Type};

use crate::uv::{self, PollEvents};

/// Connections the OS may queue before `accept` (the listen backlog, as for the libuv engine).
const BACKLOG: i32 = 1024;

/// Events taken from the epoll set per `epoll_wait` (more wait for the next call in the same callback).
const EVENTS: usize = 1024;

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

/// One runtime's epoll set: the sockets of this engine, and the `uv_poll_t` that tells the loop when the set
/// has events.
pub(crate) struct Reactor {
    // Field order matters: the watcher is closed before `poll` closes the epoll fd.
    watcher: uv::Poll,
    poll: RefCell<mio::Poll>,
    events: RefCell<Events>,
    sources: RefCell<Slab<Rc<IoState>>>,
    /// How many (socket, direction) pairs have a task waiting: the watcher keeps the loop alive only then, as a
    /// libuv stream does only while it reads or writes.
    waiting: Cell<usize>,
    /// Set when its runtime shuts down: nothing will dispatch events any more, so operations fail at once.
    gone: Cell<bool>,
}

impl Reactor {
    /// A new epoll set watched on `lp`.
    pub(crate) fn new(lp: &uv::Loop) -> io::Result<Rc<Reactor>> {
        let poll = mio::Poll::new()?;
        // SAFETY: the epoll fd stays open while the watcher exists: both end up in the reactor, whose field
        // order drops (closes) the watcher before the epoll instance.
        let watcher = unsafe { uv::Poll::new(lp, poll.as_raw_fd())? };
        let reactor = Rc::new(Reactor {
            watcher,
            poll: RefCell::new(poll),
            events: RefCell::new(Events::with_capacity(EVENTS)),
            sources: RefCell::new(Slab::new()),
            waiting: Cell::new(0),
            gone: Cell::new(false),
        });
        let weak: Weak<Reactor> = Rc::downgrade(&reactor);
        reactor.watcher.start(PollEvents::READABLE, move |_, _| {
            if let Some(r) = weak.upgrade() {
                r.dispatch();
            }
        })?;
        // Only sockets with waiting tasks keep the loop alive (see `waiting`).
        uv::Handle::unref(&reactor.watcher);
        Ok(reactor)
    }

    /// Its runtime shut down: every operation of its sockets fails from now on (see `Registration::poll_io`).
    pub(crate) fn shut_down(&self) {
        self.gone.set(true);
    }

    /// The current runtime's reactor (made on first use).
    fn current() -> io::Result<Rc<Reactor>> {
        crate::runtime::current().engine.reactor()
    }

    /// Adds `fd` to the set (edge-triggered, readable and writable); the returned key removes it.
    fn register(&self, fd: RawFd, state: Rc<IoState>) -> io::Result<usize> {
        let key = self.sources.borrow_mut().insert(state);
        let res = self.poll.borrow().registry().register(
            &mut SourceFd(&fd),
            Token(key),
            Interest::READABLE | Interest::WRITABLE,
        );
        if let Err(e) = res {
            self.sources.borrow_mut().remove(key);
            return Err(e);
        }
        Ok(key)
    }

    /// Removes `fd` from the set (before it is closed); its waiters are dropped.
    fn deregister(&self, fd: RawFd, key: usize) {
        let _ = self.poll.borrow().registry().deregister(&mut SourceFd(&fd));
        let state = self.sources.borrow_mut().try_remove(key);
        if let Some(state) = state {
            let readers = state.readers.borrow_mut().take();
            let writers = state.writers.borrow_mut().take();
            self.waiters_gone(&readers);
            self.waiters_gone(&writers);
        }
    }

    /// A direction got its first waiter.
    fn waiter_added(&self) {
        if self.waiting.replace(self.waiting.get() + 1) == 0 {
            uv::Handle::ref_(&self.watcher);
        }
    }

    /// A direction's waiters were taken (woken or dropped).
    fn waiters_gone(&self, taken: &Wakers) {
        if taken.first.is_some() && self.waiting.replace(self.waiting.get() - 1) == 1 {
            uv::Handle::unref(&self.watcher);
        }
    }

    /// The watcher's callback: takes every pending event and wakes who waits for it.
    fn dispatch(&self) {
        loop {
            let mut events = self.events.borrow_mut();
            loop {
                match self.poll.borrow_mut().poll(&mut events, Some(Duration::ZERO)) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    // Nothing sensible to do with a failing epoll_wait here; the next callback retries.
                    _ => break,
                }
            }
            let mut n = 0;
            for ev in events.iter() {
                n += 1;
                let state = self.sources.borrow().get(ev.token().0).cloned();
                // A stale event (its socket left the set in this batch, its key maybe reused) at worst makes a
                // socket try a syscall that says EAGAIN.
                if let Some(state) = state {
                    let err = ev.is_error();
                    if ev.is_read_closed() || err {
                        state.read_closed.set(true);
                    }
                    if ev.is_write_closed() || err {
                        state.write_closed.set(true);
                    }
                    state.ready(
                        self,
                        ev.is_readable() || ev.is_read_closed() || err,
                        ev.is_writable() || ev.is_write_closed() || err,
                    );
                }
            }
            if n < EVENTS {
                return;
            }
        }
    }
}

/// One socket's readiness as the epoll set last reported it, and who waits for it.
struct IoState {
    /// No `EAGAIN` seen since the last readable edge (true at first: the first read tries the syscall).
    readable: Cell<bool>,
    writable: Cell<bool>,
    /// The peer's end-of-stream or a socket error was reported: sticky, because no further edge will come, and
    /// a read that returns data before the end-of-stream must not make the next read wait for one (tokio keeps
    /// its closed bits the same way).
    read_closed: Cell<bool>,
    write_closed: Cell<bool>,
    readers: RefCell<Wakers>,
    writers: RefCell<Wakers>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    Read,
    Write,
}

impl IoState {
    fn new() -> Rc<IoState> {
        Rc::new(IoState {
            readable: Cell::new(true),
            writable: Cell::new(true),
            read_closed: Cell::new(false),
            write_closed: Cell::new(false),
            readers: RefCell::default(),
            writers: RefCell::default(),
        })
    }

    fn flag(&self, dir: Dir) -> &Cell<bool> {
        match dir {
            Dir::Read => &self.readable,
            Dir::Write => &self.writable,
        }
    }

    /// Whether an operation in `dir` should try its syscall (it may be ready, or the direction is closed).
    fn may_be_ready(&self, dir: Dir) -> bool {
        match dir {
            Dir::Read => self.readable.get() || self.read_closed.get(),
            Dir::Write => self.writable.get() || self.write_closed.get(),
        }
    }

    fn waiting(&self, dir: Dir) -> &RefCell<Wakers> {
        match dir {
            Dir::Read => &self.readers,
            Dir::Write => &self.writers,
        }
    }

    /// An edge: marks the directions ready and wakes their waiters.
    fn ready(&self, reactor: &Reactor, readable: bool, writable: bool) {
        let mut woken = [None, None];
        for (dir, yes) in [(Dir::Read, readable), (Dir::Write, writable)] {
            if yes {
                self.flag(dir).set(true);
                let taken = self.waiting(dir).borrow_mut().take();
                reactor.waiters_gone(&taken);
                woken[dir as usize] = Some(taken);
            }
        }
        for w in woken.into_iter().flatten() {
            w.wake();
        }
    }

    /// Stores the task's waker for `dir`'s next edge.
    fn register(&self, reactor: &Reactor, cx: &Context<'_>, dir: Dir) {
        if self.waiting(dir).borrow_mut().register(cx.waker()) {
            reactor.waiter_added();
        }
    }
}

impl Registration {
    /// Marks `dir` not ready and waits for its next edge.
    fn wait(&self, cx: &Context<'_>, dir: Dir) {
        self.state.flag(dir).set(false);
        self.state.register(&self.reactor, cx, dir);
    }

    /// Runs `op` (retrying while interrupted) unless `dir` is known not ready; `WouldBlock` waits for its edge.
    fn poll_io<R>(&self, cx: &Context<'_>, dir: Dir, mut op: impl FnMut() -> io::Result<R>) -> Poll<io::Result<R>> {
        if self.reactor.gone.get() {
            return Poll::Ready(Err(crate::error::runtime_gone()));
        }
        if !self.state.may_be_ready(dir) {
            self.state.register(&self.reactor, cx, dir);
            return Poll::Pending;
        }
        loop {
            match op() {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.wait(cx, dir);
                    return Poll::Pending;
                }
                res => return Poll::Ready(res),
            }
        }
    }
}

/// The tasks waiting for one direction. Usually one task (no allocation); several tasks sharing a socket (a UDP
/// socket in an `Rc`) all get woken and retry their syscall.
#[derive(Default)]
struct Wakers {
    first: Option<Waker>,
    more: Vec<Waker>,
}

impl Wakers {
    /// Adds `waker` (once); `true` if the set was empty.
    fn register(&mut self, waker: &Waker) -> bool {
        match &self.first {
            None => {
                self.first = Some(waker.clone());
                return true;
            }
            Some(w) if w.will_wake(waker) => {}
            Some(_) if self.more.iter().any(|w| w.will_wake(waker)) => {}
            Some(_) => self.more.push(waker.clone()),
        }
        false
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

/// A socket's membership in its runtime's epoll set; leaving it (on drop) comes before the fd closes, which the
/// owner guarantees by declaring this field before the socket.
struct Registration {
    reactor: Rc<Reactor>,
    state: Rc<IoState>,
    key: usize,
    fd: RawFd,
}

impl Registration {
    fn new(fd: RawFd) -> io::Result<Registration> {
        let reactor = Reactor::current()?;
        let state = IoState::new();
        let key = reactor.register(fd, state.clone())?;
        Ok(Registration { reactor, state, key, fd })
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.reactor.deregister(self.fd, self.key);
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

/// A non-blocking socket in the runtime's epoll set: a TCP or Unix stream, or a listener.
pub(crate) struct Sock {
    // Field order matters: the registration leaves the epoll set before `sock` closes the fd.
    reg: Registration,
    sock: Socket,
}

impl Sock {
    /// Adds `sock` (made non-blocking) to the current runtime's epoll set.
    pub(crate) fn new(sock: Socket) -> io::Result<Sock> {
        sock.set_nonblocking(true)?;
        Ok(Sock { reg: Registration::new(sock.as_raw_fd())?, sock })
    }

    /// The socket itself (addresses, options).
    pub(crate) fn socket(&self) -> &Socket {
        &self.sock
    }

    /// Reads into `out` (`recv(2)`); waits for readability only when the kernel has nothing.
    pub(crate) fn poll_read(&self, cx: &mut Context<'_>, out: &mut [u8]) -> Poll<io::Result<usize>> {
        if out.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let n = std::task::ready!(self.reg.poll_io(cx, Dir::Read, || (&self.sock).read(out)))?;
        if n > 0 && n < out.len() {
            // A short read drained the socket: the next byte to arrive makes an edge, so wait for it without
            // an EAGAIN syscall. (Not on end-of-stream, which makes no further edge.)
            self.reg.state.readable.set(false);
        }
        Poll::Ready(Ok(n))
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
        self.reg.poll_io(cx, Dir::Write, || self.sock.send_with_flags(data, libc::MSG_NOSIGNAL))
    }

    /// Nothing to flush: written bytes are already the kernel's.
    pub(crate) fn poll_flush(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Shuts the write side down (`shutdown(2)`, `SHUT_WR`): the peer reads end-of-stream. A socket the peer
    /// already reset (`ENOTCONN`) has nothing left to shut down.
    pub(crate) fn poll_shutdown(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.reg.reactor.gone.get() {
            return Poll::Ready(Err(crate::error::runtime_gone()));
        }
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
            match std::task::ready!(self.reg.poll_io(cx, Dir::Read, || self.sock.accept())) {
                Ok((conn, peer)) => return Poll::Ready(Sock::new(conn).map(|s| (s, peer))),
                // A connection reset while queued (as libuv): try the next one.
                Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => {}
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
        if self.reg.reactor.gone.get() {
            return Poll::Ready(Err(crate::error::runtime_gone()));
        }
        if let Some(e) = self.sock.take_error()? {
            return Poll::Ready(Err(e));
        }
        match self.sock.peer_addr() {
            Ok(_) => Poll::Ready(Ok(())),
            Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
                self.reg.wait(cx, Dir::Write);
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

    /// Leaves the epoll set and hands the socket back, in blocking mode (as std makes sockets). This engine
    /// never reads or accepts ahead, so nothing is left behind.
    pub(crate) fn into_socket(self) -> io::Result<Socket> {
        let Sock { reg, sock } = self;
        drop(reg);
        sock.set_nonblocking(false)?;
        Ok(sock)
    }

    /// Takes over a socket that is already listening (listens again here, with uvio's backlog).
    pub(crate) fn from_listening(sock: Socket) -> io::Result<Sock> {
        sock.listen(BACKLOG)?;
        Sock::new(sock)
    }
}

/// The receive buffer (`SO_RCVBUF`) a UDP socket made by this engine asks for. Without a user-space queue the
/// kernel's buffer is all that absorbs a burst nobody reads yet; the libuv engine adds a 256-datagram queue on
/// top of it, so this engine asks for room for about as many more (Linux's default, 208 KiB, holds 256 small
/// datagrams; asking 256 KiB gets 512 KiB where `net.core.rmem_max` allows, and twice the default where it is
/// the default). Sockets taken over with `from_std` keep what their owner set.
const DGRAM_RCVBUF: usize = 256 * 1024;

/// A non-blocking UDP socket in the runtime's epoll set. Every operation is one syscall on the caller's buffer
/// (`recvfrom(2)`, `sendto(2)`): nothing is queued here, so a dropped future loses nothing (a datagram not yet
/// received stays in the kernel; one sent is the kernel's) and nothing is allocated per datagram.
pub(crate) struct Dgram {
    // Field order matters: the registration leaves the epoll set before `sock` closes the fd.
    reg: Registration,
    sock: std::net::UdpSocket,
    /// Whether the socket has a peer: libuv refuses `send_to` then (`EISCONN`), and so does this engine, while
    /// Linux would send.
    connected: Cell<bool>,
}

impl Dgram {
    /// Adds `sock` (made non-blocking) to the current runtime's epoll set.
    pub(crate) fn new(sock: std::net::UdpSocket) -> io::Result<Dgram> {
        sock.set_nonblocking(true)?;
        let connected = Cell::new(sock.peer_addr().is_ok());
        Ok(Dgram { reg: Registration::new(sock.as_raw_fd())?, sock, connected })
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
        self.reg.poll_io(cx, Dir::Read, || self.sock.recv_from(buf))
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
        self.reg.poll_io(cx, Dir::Write, || self.send_now(buf, target))
    }

    /// Sends one datagram now, or `WouldBlock`.
    pub(crate) fn try_send_to(&self, buf: &[u8], target: Option<SocketAddr>) -> io::Result<usize> {
        self.check_target(target)?;
        retry(|| self.send_now(buf, target))
    }
}
