//! Sockets on the ring: TCP and Unix streams ([`Conn`]) and listeners ([`Listener`]) whose connect, accept,
//! recv, send and shutdown are io_uring operations. UDP stays on the epoll engine's code under io_uring.
//!
//! ## Reads: one single-shot recv from a shared provided-buffer ring
//! A read that finds nothing arms one `IORING_OP_RECV` with `IOSQE_BUFFER_SELECT` (at most one per connection):
//! the kernel picks a buffer from the runtime's provided-buffer ring ([`super::bufring`], 512 × 16 KiB) only
//! when data arrives, so a connection waiting for data pins no memory. The completed buffer's bytes are copied
//! into the caller's slice (the one copy `AsyncRead` forces: its slice is only lent for the call); what does not
//! fit stays in the connection, and the buffer goes back to the ring once consumed. When the previous recv filled
//! its whole buffer (bulk data waiting), the next read first tries a non-blocking `recv(2)` straight into the
//! caller's slice. An empty ring (`ENOBUFS`) falls back to a recv into a buffer of the operation's own
//! (allocated zeroed, freed once read), never to an error; to keep that rare, small receives are copied out of
//! their ring buffer while half the ring is held (see [`COPY_OUT`]). The recv arms the socket's poll first
//! (`IORING_RECVSEND_POLL_FIRST`): it is only armed once everything received has been read.
//!
//! Why not the alternatives: a **multishot recv** keeps delivering into ring buffers whether or not anyone
//! reads, so one fast sender can drain the whole ring into a connection nobody reads (unbounded buffering per
//! connection, starving the others); **per-connection buffers** cost their memory for every idle connection
//! (10 000 idle connections × 16 KiB = 160 MiB). A single-shot recv armed by a waiting reader bounds what a
//! connection holds to one buffer, and an idle one holds nothing.
//!
//! ## Writes: one send in flight, carrying everything queued
//! `poll_write` copies into the connection's queue (up to [`HIGH_WATER`] bytes buffered, then `Pending` until
//! sends drain it) and returns `Ready(n)`; one `IORING_OP_SEND` (`MSG_NOSIGNAL`) at a time carries everything
//! queued, and a partial send resubmits the rest. `poll_flush` waits until the queue is empty. A send's error
//! (`EPIPE`, `ECONNRESET`) is reported by the next `poll_write` / `poll_flush` (and every one after).
//!
//! ## Cancellation and close
//! Every operation's slot owns the socket (an `Rc` of it) and what the kernel may touch (send buffer, sockaddr),
//! so the fd is closed — plain `close(2)`, when the last `Rc` goes — only after the last operation completed.
//! - A dropped **read** future leaves its recv armed: the connection owns it, and bytes it receives are kept for
//!   the next read. Dropping the **connection** cancels the recv (`IORING_OP_ASYNC_CANCEL`).
//! - A dropped **write** future loses nothing: what `poll_write` accepted is queued; dropping the connection
//!   with bytes queued lets the send finish before the fd closes.
//! - A dropped **connect** future cancels the connect; the slot keeps the sockaddr and socket until the
//!   completion arrives, then closes the socket.
//! - **Accept** is one multishot `IORING_OP_ACCEPT`, armed on the first accept; accepted descriptors queue in
//!   the listener (at most [`ACCEPT_QUEUE`]: beyond, the multishot is cancelled and re-armed once the queue
//!   drains), so a dropped accept future loses no connection. Dropping the listener cancels the multishot and
//!   closes the descriptors that arrive until its final completion.
//!
//! Sockets on the ring are blocking (`O_NONBLOCK` cleared): the kernel polls them itself, and the fast-path
//! `recv(2)` passes `MSG_DONTWAIT`.

#![allow(unsafe_code)]

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use io_uring::{opcode, squeue, types};
use socket2::{SockAddr, Socket, Type};

use super::bufring::{self, BufId};
use super::{Driver, Pending};
use crate::error::runtime_gone;
use crate::reply::{reply, Replier};

/// Bytes a connection buffers for writing before `poll_write` waits for the sends to drain them.
pub(crate) const HIGH_WATER: usize = 256 * 1024;

/// Accepted connections a listener queues before it stops accepting (until the queue drains).
pub(crate) const ACCEPT_QUEUE: usize = 256;

/// `IORING_RECVSEND_POLL_FIRST` (Linux 5.19, as every socket opcode uvio uses on the ring): a recv's `ioprio`
/// flag to arm the socket's poll before trying to receive (the io-uring crate does not export the constant).
const RECVSEND_POLL_FIRST: u16 = 1;

/// While user space holds half of the ring's buffers or more, received bytes up to this many are copied out of
/// their ring buffer, which goes back to the kernel at once, instead of holding the buffer until the
/// connection's reader takes them. A loop iteration dispatches every completion before the woken readers run,
/// so with many busy connections the ring would otherwise run dry (`ENOBUFS`, then a slower recv into an owned
/// buffer): 1 000 echo connections held more than the 512 buffers. Copying a few KiB costs less than that;
/// bigger receives, and every receive while buffers are plentiful, keep their buffer (no copy until the read).
const COPY_OUT: usize = 4096;

/// Spare copy buffers a runtime keeps (the most connections expected to hold a small receive at once).
const SPARE_COPIES: usize = 1024;

impl Driver {
    /// Keeps a consumed copy buffer for the next small receive, up to [`SPARE_COPIES`] of them.
    fn give_back_copy(&self, mut buf: Vec<u8>) {
        let mut spares = self.copies.borrow_mut();
        if buf.capacity() == COPY_OUT && spares.len() < SPARE_COPIES {
            buf.clear();
            spares.push(buf);
        }
    }
}

/// Connections the OS may queue before `accept` (the listen backlog, as for the other engines).
const BACKLOG: i32 = 1024;

/// A socket operation in flight: what it owns until its completion, and what to do with the result.
pub(crate) enum NetOp {
    /// A recv into a buffer of the provided-buffer ring.
    Recv { conn: Rc<ConnShared> },
    /// A recv into the connection's own buffer (the ring was empty).
    RecvOwned { conn: Rc<ConnShared>, buf: Vec<u8> },
    /// A send of `buf[off..]`.
    Send { conn: Rc<ConnShared>, buf: Vec<u8>, off: usize },
    /// `shutdown(SHUT_WR)`.
    Shutdown { conn: Rc<ConnShared> },
    /// A connect to `addr` (boxed: the kernel reads it where it is).
    Connect { _conn: Rc<ConnShared>, _addr: Box<SockAddr>, done: Replier<io::Result<()>> },
    /// The multishot accept of a listener.
    Accept { listener: Rc<ListenShared> },
}

/// The handler of a multishot operation's intermediate completions.
pub(super) struct Multishot(Rc<ListenShared>);

impl Multishot {
    /// One completion of several (`IORING_CQE_F_MORE`): the operation goes on.
    pub(super) fn more(&self, res: i32, _flags: u32) {
        accepted(&self.0, res, true);
    }
}

impl NetOp {
    /// The handler for this operation's intermediate completions, if it is a multishot one.
    pub(super) fn multishot(&self) -> Option<Multishot> {
        match self {
            NetOp::Accept { listener } => Some(Multishot(listener.clone())),
            _ => None,
        }
    }

    /// The (final) completion: the kernel is done with everything the operation owns.
    pub(super) fn complete(self, res: i32, flags: u32) {
        match self {
            NetOp::Recv { conn } => conn.recv_done(res, flags),
            NetOp::RecvOwned { conn, buf } => conn.recv_owned_done(res, buf),
            NetOp::Send { conn, buf, off } => conn.send_done(res, buf, off),
            NetOp::Shutdown { conn } => conn.shutdown_done(res),
            NetOp::Connect { done, .. } => done.send(status(res).map(drop)),
            NetOp::Accept { listener } => accepted(&listener, res, false),
        }
    }
}

/// A completion's result as an `io::Result`.
fn status(res: i32) -> io::Result<usize> {
    if res < 0 {
        Err(io::Error::from_raw_os_error(-res))
    } else {
        Ok(res as usize)
    }
}

/// The error of an operation on a socket whose runtime (and ring) is gone.
/// How many sockets (streams and listeners) their owners still hold on `driver` (for `Runtime::close`).
pub(crate) fn objects_tied_to(driver: &Rc<Driver>) -> usize {
    driver.tied.get()
}

/// Counts its owner in its driver's `tied` while both live.
struct Tie(Weak<Driver>);

impl Tie {
    fn new(driver: &Rc<Driver>) -> Tie {
        driver.tied.set(driver.tied.get() + 1);
        Tie(Rc::downgrade(driver))
    }
}

impl Drop for Tie {
    fn drop(&mut self) {
        if let Some(driver) = self.0.upgrade() {
            driver.tied.set(driver.tied.get() - 1);
        }
    }
}

/// Bytes received and not read yet.
enum Leftover {
    None,
    /// In a buffer of the ring, from `pos`.
    Ring {
        id: BufId,
        pos: usize,
    },
    /// In the connection's own buffer, `pos..len`.
    Owned {
        buf: Vec<u8>,
        pos: usize,
        len: usize,
    },
}

/// What `poll_shutdown` has done.
enum Shut {
    Idle,
    InFlight,
    /// Done; the error, if any, not reported yet.
    Done(Option<io::Error>),
}

struct ConnState {
    // Reading.
    /// The `user_data` of the recv in flight (to cancel it by).
    recv: Option<u64>,
    reader: Option<Waker>,
    leftover: Leftover,
    eof: bool,
    read_err: Option<io::Error>,
    /// The last read filled its whole buffer: more data is likely waiting, try `recv(2)` first.
    bulk: bool,
    // Writing.
    /// Bytes accepted by `poll_write` and not handed to a send yet.
    queue: Vec<u8>,
    /// Bytes of the send in flight not sent yet (0: no send in flight).
    sending: usize,
    /// The buffer of the last finished send, reused as the next queue.
    spare_out: Vec<u8>,
    /// A send failed: the error (raw OS error) every later write and flush reports.
    write_err: Option<i32>,
    writer: Option<Waker>,
    shut: Shut,
    /// The last `Conn` is gone: completions only release what they hold.
    closed: bool,
}

/// A connection's socket and state, shared by its [`Conn`] and its operations in flight: the fd closes when
/// the last of them lets go.
pub(crate) struct ConnShared {
    driver: Weak<Driver>,
    sock: Socket,
    st: RefCell<ConnState>,
}

/// Replaces `slot`'s waker with `cx`'s, waking a different task that waited there (so it cannot hang).
fn register(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(w) if w.will_wake(cx.waker()) => {}
        _ => {
            if let Some(old) = slot.replace(cx.waker().clone()) {
                old.wake();
            }
        }
    }
}

/// Wakes the waker taken from a state (called once no borrow is held).
fn wake(waker: Option<Waker>) {
    if let Some(w) = waker {
        w.wake();
    }
}

/// A stream socket on the ring. Cloning is the caller's business (it lives in an `Rc`); dropping the last
/// owner cancels the recv in flight and lets queued sends finish before the socket closes.
pub(crate) struct Conn {
    shared: Rc<ConnShared>,
    _tie: Tie,
}

impl Conn {
    /// Takes over a connected stream socket (made blocking: see the module docs).
    pub(crate) fn new(driver: &Rc<Driver>, sock: Socket) -> io::Result<Conn> {
        sock.set_nonblocking(false)?;
        Ok(Conn { shared: ConnShared::new(driver, sock), _tie: Tie::new(driver) })
    }

    /// The socket itself (addresses, options).
    pub(crate) fn socket(&self) -> &Socket {
        &self.shared.sock
    }

    /// Connects a new stream socket to `addr` (`IORING_OP_CONNECT`). Dropping the future cancels the connect;
    /// the socket closes once its completion arrived.
    pub(crate) async fn connect(driver: &Rc<Driver>, addr: &SockAddr) -> io::Result<Conn> {
        let shared = ConnShared::new(driver, Socket::new(addr.domain(), Type::STREAM, None)?);
        let addr = Box::new(addr.clone());
        let entry = opcode::Connect::new(types::Fd(shared.sock.as_raw_fd()), addr.as_ptr(), addr.len()).build();
        let (replier, reply) = reply();
        let user_data =
            driver.start(entry, Pending::Net(NetOp::Connect { _conn: shared.clone(), _addr: addr, done: replier }));
        let mut guard = CancelOnDrop { driver: Rc::downgrade(driver), user_data: Some(user_data) };
        let res = reply.await;
        guard.user_data = None; // completed: nothing to cancel
        res.unwrap_or_else(|| Err(io::Error::from_raw_os_error(libc::ECANCELED)))?;
        Ok(Conn { shared, _tie: Tie::new(driver) })
    }

    /// Reads into `out`: bytes kept from an earlier recv, else (bulk data waiting) a non-blocking `recv(2)`
    /// straight into `out`, else waits for the connection's recv.
    pub(crate) fn poll_read(&self, cx: &mut Context<'_>, out: &mut [u8]) -> Poll<io::Result<usize>> {
        if out.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if let Some(res) = self.shared.try_recv_now(out) {
            return Poll::Ready(res);
        }
        let max = out.len();
        self.shared.poll_read_with(cx, max, |bytes| out[..bytes.len()].copy_from_slice(bytes))
    }

    /// `poll_read` for a destination that is not a plain slice (tokio's `ReadBuf`): at most `max` bytes are
    /// handed to `take`, which copies them out.
    #[cfg(feature = "tokio-io")]
    pub(crate) fn poll_read_with(
        &self,
        cx: &mut Context<'_>,
        max: usize,
        take: impl FnOnce(&[u8]),
    ) -> Poll<io::Result<usize>> {
        if max == 0 {
            return Poll::Ready(Ok(0));
        }
        self.shared.poll_read_with(cx, max, take)
    }

    /// Queues `data` (as much as fits under [`HIGH_WATER`]) for sending; `Pending` while the queue is full.
    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let shared = &self.shared;
        let mut st = shared.st.borrow_mut();
        if let Some(errno) = st.write_err {
            return Poll::Ready(Err(io::Error::from_raw_os_error(errno)));
        }
        if !matches!(st.shut, Shut::Idle) {
            return Poll::Ready(Err(io::Error::from_raw_os_error(libc::EPIPE)));
        }
        let buffered = st.queue.len() + st.sending;
        if buffered >= HIGH_WATER {
            register(&mut st.writer, cx);
            return Poll::Pending;
        }
        let n = data.len().min(HIGH_WATER - buffered);
        st.queue.extend_from_slice(&data[..n]);
        if st.sending == 0 {
            shared.send_queued(&mut st)?;
        }
        Poll::Ready(Ok(n))
    }

    /// Waits until every queued byte is the kernel's.
    pub(crate) fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.shared.driver.strong_count() == 0 {
            return Poll::Ready(Err(runtime_gone())); // nothing in flight will ever complete
        }
        let mut st = self.shared.st.borrow_mut();
        if let Some(errno) = st.write_err {
            return Poll::Ready(Err(io::Error::from_raw_os_error(errno)));
        }
        if st.sending == 0 && st.queue.is_empty() {
            return Poll::Ready(Ok(()));
        }
        register(&mut st.writer, cx);
        Poll::Pending
    }

    /// Flushes, then shuts the write side down (`IORING_OP_SHUTDOWN`, `SHUT_WR`): the peer reads end-of-stream.
    /// A socket the peer already reset (`ENOTCONN`) has nothing left to shut down.
    pub(crate) fn poll_shutdown(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_flush(cx))?;
        let shared = &self.shared;
        let mut st = shared.st.borrow_mut();
        match &mut st.shut {
            Shut::Done(err) => Poll::Ready(err.take().map_or(Ok(()), Err)),
            Shut::InFlight => {
                register(&mut st.writer, cx);
                Poll::Pending
            }
            Shut::Idle => {
                let driver = shared.driver.upgrade().ok_or_else(runtime_gone)?;
                let entry = opcode::Shutdown::new(types::Fd(shared.sock.as_raw_fd()), libc::SHUT_WR).build();
                driver.start(entry, Pending::Net(NetOp::Shutdown { conn: shared.clone() }));
                st.shut = Shut::InFlight;
                register(&mut st.writer, cx);
                Poll::Pending
            }
        }
    }

    /// For a hand-over (`into_std`, after a flush): cancels the recv in flight and waits for it, then returns a
    /// duplicate of the socket with the bytes received but not read yet. The `Conn`'s drop then has nothing
    /// left to cancel.
    pub(crate) fn hand_over(&self) -> io::Result<(Socket, Vec<u8>)> {
        let shared = &self.shared;
        let driver = shared.driver.upgrade().ok_or_else(runtime_gone)?;
        let recv = {
            let mut st = shared.st.borrow_mut();
            st.reader = None; // nobody reads any more: an empty ring must not start another recv
            st.recv
        };
        if let Some(user_data) = recv {
            driver.cancel(user_data);
            driver.run_until(|| shared.st.borrow().recv.is_none())?;
        }
        let leftover = std::mem::replace(&mut shared.st.borrow_mut().leftover, Leftover::None);
        let unread = match leftover {
            Leftover::None => Vec::new(),
            Leftover::Owned { buf, pos, len } => buf[pos..len].to_vec(),
            Leftover::Ring { id, pos } => {
                let bufs = driver.bufs().ok_or_else(runtime_gone)?;
                let unread = bufs.bytes(&id)[pos..].to_vec();
                bufs.recycle(id);
                unread
            }
        };
        Ok((shared.sock.try_clone()?, unread))
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let shared = &self.shared;
        let mut st = shared.st.borrow_mut();
        st.closed = true;
        let leftover = std::mem::replace(&mut st.leftover, Leftover::None);
        let recv = st.recv;
        drop(st);
        if let Some(driver) = shared.driver.upgrade() {
            if let Some(user_data) = recv {
                driver.cancel(user_data);
            }
            if let (Leftover::Ring { id, .. }, Some(bufs)) = (leftover, driver.bufs()) {
                bufs.recycle(id);
            }
        }
        // Queued sends (and a shutdown) hold the socket until they complete; the fd closes after the last.
    }
}

impl ConnShared {
    fn new(driver: &Rc<Driver>, sock: Socket) -> Rc<ConnShared> {
        Rc::new(ConnShared {
            driver: Rc::downgrade(driver),
            sock,
            st: RefCell::new(ConnState {
                recv: None,
                reader: None,
                leftover: Leftover::None,
                eof: false,
                read_err: None,
                bulk: false,
                queue: Vec::new(),
                sending: 0,
                spare_out: Vec::new(),
                write_err: None,
                writer: None,
                shut: Shut::Idle,
                closed: false,
            }),
        })
    }

    /// The fast path: when the last read filled its buffer and nothing is kept or in flight, a non-blocking
    /// `recv(2)` straight into `out`. `None`: not taken, or the kernel had nothing (then wait for a recv).
    fn try_recv_now(&self, out: &mut [u8]) -> Option<io::Result<usize>> {
        let mut st = self.st.borrow_mut();
        if !st.bulk || st.recv.is_some() || !matches!(st.leftover, Leftover::None) || st.eof || st.read_err.is_some() {
            return None;
        }
        loop {
            // SAFETY: `out` is a valid, writable slice of `out.len()` bytes for the duration of the call, and
            // the socket's fd is open (owned by `self.sock`).
            let n =
                unsafe { libc::recv(self.sock.as_raw_fd(), out.as_mut_ptr().cast(), out.len(), libc::MSG_DONTWAIT) };
            if n >= 0 {
                let n = n as usize;
                st.bulk = n == out.len();
                st.eof = n == 0;
                return Some(Ok(n));
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => {}
                io::ErrorKind::WouldBlock => {
                    st.bulk = false;
                    return None;
                }
                _ => return Some(Err(e)),
            }
        }
    }

    /// Hands kept bytes (at most `max`) to `take`, or the pending end-of-stream or error; else makes sure a
    /// recv is armed and waits for it.
    fn poll_read_with(
        self: &Rc<Self>,
        cx: &mut Context<'_>,
        max: usize,
        take: impl FnOnce(&[u8]),
    ) -> Poll<io::Result<usize>> {
        let mut st = self.st.borrow_mut();
        match &mut st.leftover {
            Leftover::None => {}
            Leftover::Ring { id, pos } => {
                let driver = self.driver.upgrade().ok_or_else(runtime_gone)?;
                let bufs = driver.bufs().ok_or_else(runtime_gone)?;
                let bytes = &bufs.bytes(id)[*pos..];
                let n = bytes.len().min(max);
                take(&bytes[..n]);
                *pos += n;
                if *pos == id.len() {
                    if let Leftover::Ring { id, .. } = std::mem::replace(&mut st.leftover, Leftover::None) {
                        bufs.recycle(id);
                    }
                }
                return Poll::Ready(Ok(n));
            }
            Leftover::Owned { buf, pos, len } => {
                let n = (*len - *pos).min(max);
                take(&buf[*pos..*pos + n]);
                *pos += n;
                if *pos == *len {
                    // Consumed: the buffer goes (an idle connection holds no memory), a copy back to the spares.
                    if let Leftover::Owned { buf, .. } = std::mem::replace(&mut st.leftover, Leftover::None) {
                        if let Some(driver) = self.driver.upgrade() {
                            driver.give_back_copy(buf);
                        }
                    }
                }
                return Poll::Ready(Ok(n));
            }
        }
        if let Some(e) = st.read_err.take() {
            return Poll::Ready(Err(e));
        }
        if st.eof {
            return Poll::Ready(Ok(0));
        }
        if st.recv.is_none() {
            let driver = self.driver.upgrade().ok_or_else(runtime_gone)?;
            // Everything received so far has been read (and `try_recv_now` found nothing after a bulk read), so
            // the kernel's first, inline recv attempt would fail: arm the socket's poll directly
            // (`IORING_RECVSEND_POLL_FIRST`; data already there is still found at once).
            let entry = opcode::Recv::new(types::Fd(self.sock.as_raw_fd()), std::ptr::null_mut(), bufring::SIZE as u32)
                .buf_group(bufring::BGID)
                .ioprio(RECVSEND_POLL_FIRST)
                .build()
                .flags(squeue::Flags::BUFFER_SELECT);
            st.recv = Some(driver.start(entry, Pending::Net(NetOp::Recv { conn: self.clone() })));
        }
        register(&mut st.reader, cx);
        Poll::Pending
    }

    /// A ring recv completed.
    fn recv_done(self: Rc<Self>, res: i32, flags: u32) {
        // Without the driver (shutting down) the buffer memory goes with it: nothing to give back.
        let Some(driver) = self.driver.upgrade() else { return };
        let Some(bufs) = driver.bufs() else { return };
        let id = if res >= 0 { bufs.take(flags, res as usize) } else { None };
        let mut st = self.st.borrow_mut();
        st.recv = None;
        if st.closed {
            // The connection is gone (its cancel came too late): nobody reads these bytes.
            if let Some(id) = id {
                bufs.recycle(id);
            }
            return;
        }
        match res {
            0 => {
                if let Some(id) = id {
                    bufs.recycle(id);
                }
                st.eof = true;
            }
            n if n > 0 => match id {
                Some(id) if id.len() <= COPY_OUT && bufs.running_low() => {
                    // Small, and buffers are getting scarce: copy it out and give the buffer back at once.
                    let mut copy = driver.copies.borrow_mut().pop().unwrap_or_else(|| Vec::with_capacity(COPY_OUT));
                    copy.extend_from_slice(bufs.bytes(&id));
                    bufs.recycle(id);
                    st.leftover = Leftover::Owned { len: copy.len(), buf: copy, pos: 0 };
                }
                Some(id) => {
                    st.bulk = id.len() == bufring::SIZE;
                    st.leftover = Leftover::Ring { id, pos: 0 };
                }
                None => st.read_err = Some(io::Error::other("io_uring: a recv completed without its buffer")),
            },
            e if -e == libc::ENOBUFS => {
                // The ring is empty (many connections hold unread buffers): read into this connection's own
                // buffer instead, if a reader still waits (else the next read arms a ring recv again).
                if st.reader.is_some() {
                    // Zeroed: memory the kernel writes is initialised before it is lent (valgrind cannot see the
                    // kernel's writes). Allocated only when the ring is empty, and freed once read.
                    let mut buf = vec![0; bufring::SIZE];
                    let entry =
                        opcode::Recv::new(types::Fd(self.sock.as_raw_fd()), buf.as_mut_ptr(), buf.len() as u32).build();
                    // The Vec's heap block does not move when the Vec moves into the slot.
                    st.recv = Some(driver.start(entry, Pending::Net(NetOp::RecvOwned { conn: self.clone(), buf })));
                    return;
                }
            }
            e if -e == libc::ECANCELED => {}
            e => st.read_err = Some(io::Error::from_raw_os_error(-e)),
        }
        let reader = st.reader.take();
        drop(st);
        wake(reader);
    }

    /// A recv into the connection's own buffer completed.
    fn recv_owned_done(&self, res: i32, buf: Vec<u8>) {
        let mut st = self.st.borrow_mut();
        st.recv = None;
        match res {
            _ if st.closed => {}
            n if n > 0 => {
                let len = (n as usize).min(buf.len());
                st.bulk = len == buf.len();
                st.leftover = Leftover::Owned { buf, pos: 0, len };
            }
            0 => st.eof = true,
            e if -e == libc::ECANCELED => {}
            e => st.read_err = Some(io::Error::from_raw_os_error(-e)),
        }
        let reader = st.reader.take();
        drop(st);
        wake(reader);
    }

    /// Hands the queue to a new send (none may be in flight). `st` is this connection's state, borrowed.
    fn send_queued(self: &Rc<Self>, st: &mut ConnState) -> io::Result<()> {
        let driver = self.driver.upgrade().ok_or_else(runtime_gone)?;
        let next = std::mem::take(&mut st.spare_out);
        let buf = std::mem::replace(&mut st.queue, next);
        st.sending = buf.len();
        self.start_send(&driver, buf, 0);
        Ok(())
    }

    /// Sends `buf[off..]` (at most 1 GiB of it per operation).
    fn start_send(self: &Rc<Self>, driver: &Driver, buf: Vec<u8>, off: usize) {
        let len = (buf.len() - off).min(1 << 30) as u32;
        let entry = opcode::Send::new(types::Fd(self.sock.as_raw_fd()), buf[off..].as_ptr(), len)
            .flags(libc::MSG_NOSIGNAL)
            .build();
        // The Vec's heap block does not move when the Vec moves into the slot.
        driver.start(entry, Pending::Net(NetOp::Send { conn: self.clone(), buf, off }));
    }

    /// A send completed: resubmits what it left, or sends what was queued meanwhile, or wakes the flushers.
    fn send_done(self: Rc<Self>, res: i32, mut buf: Vec<u8>, off: usize) {
        let driver = self.driver.upgrade();
        let mut st = self.st.borrow_mut();
        match (res, &driver) {
            (n, Some(driver)) if n > 0 => {
                let n = n as usize;
                st.sending -= n;
                let off = off + n;
                if off < buf.len() {
                    drop(st);
                    self.start_send(driver, buf, off);
                    return;
                }
                buf.clear();
                if st.queue.is_empty() {
                    st.spare_out = buf;
                } else {
                    st.spare_out = buf;
                    // Cannot fail: the driver is here.
                    let _ = self.send_queued(&mut st);
                }
            }
            _ => {
                // An error (or a send of nothing, or no runtime left): what is queued cannot be sent anymore.
                let errno = match res {
                    e if e < 0 => -e,
                    _ if driver.is_none() => libc::ECANCELED,
                    _ => libc::EPIPE,
                };
                st.write_err.get_or_insert(errno);
                st.sending = 0;
                st.queue.clear();
            }
        }
        let writer = st.writer.take();
        drop(st);
        wake(writer);
    }

    /// The shutdown completed.
    fn shutdown_done(&self, res: i32) {
        let mut st = self.st.borrow_mut();
        let err = match res {
            e if e < 0 && -e != libc::ENOTCONN => Some(io::Error::from_raw_os_error(-e)),
            _ => None,
        };
        st.shut = Shut::Done(err);
        let writer = st.writer.take();
        drop(st);
        wake(writer);
    }
}

impl Drop for ConnShared {
    fn drop(&mut self) {
        // Every operation is complete (each held an `Rc` of this): give a kept ring buffer back, then the
        // socket closes (`close(2)`).
        let leftover = std::mem::replace(&mut self.st.get_mut().leftover, Leftover::None);
        if let (Leftover::Ring { id, .. }, Some(driver)) = (leftover, self.driver.upgrade()) {
            if let Some(bufs) = driver.bufs() {
                bufs.recycle(id);
            }
        }
    }
}

/// Cancels an operation when dropped, unless `user_data` was cleared (it completed).
struct CancelOnDrop {
    driver: Weak<Driver>,
    user_data: Option<u64>,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let (Some(user_data), Some(driver)) = (self.user_data, self.driver.upgrade()) {
            driver.cancel(user_data);
        }
    }
}

struct ListenState {
    /// The `user_data` of the multishot accept in flight.
    accept: Option<u64>,
    /// A cancel of it is on its way (the queue is full, or the listener gone).
    cancelling: bool,
    queue: VecDeque<OwnedFd>,
    err: Option<io::Error>,
    waker: Option<Waker>,
    /// The listener is gone: descriptors still arriving are closed.
    closed: bool,
}

/// A listener's socket and state, shared with its multishot accept.
pub(crate) struct ListenShared {
    driver: Weak<Driver>,
    sock: Socket,
    st: RefCell<ListenState>,
}

/// A listening stream socket on the ring.
pub(crate) struct Listener {
    shared: Rc<ListenShared>,
    _tie: Tie,
}

impl Listener {
    /// A listening stream socket bound to `addr` (`SO_REUSEADDR` first when `reuse_addr`, as libuv does for TCP).
    pub(crate) fn listen(driver: &Rc<Driver>, addr: &SockAddr, reuse_addr: bool) -> io::Result<Listener> {
        let sock = Socket::new(addr.domain(), Type::STREAM, None)?;
        if reuse_addr {
            sock.set_reuse_address(true)?;
        }
        sock.bind(addr)?;
        Listener::from_listening(driver, sock)
    }

    /// Takes over a bound socket (listens again here, with uvio's backlog).
    pub(crate) fn from_listening(driver: &Rc<Driver>, sock: Socket) -> io::Result<Listener> {
        sock.set_nonblocking(false)?;
        sock.listen(BACKLOG)?;
        let st = ListenState {
            accept: None,
            cancelling: false,
            queue: VecDeque::new(),
            err: None,
            waker: None,
            closed: false,
        };
        let shared = Rc::new(ListenShared { driver: Rc::downgrade(driver), sock, st: RefCell::new(st) });
        Ok(Listener { shared, _tie: Tie::new(driver) })
    }

    /// The socket itself (addresses).
    pub(crate) fn socket(&self) -> &Socket {
        &self.shared.sock
    }

    /// The next accepted connection and its peer's address; arms the multishot accept when none is queued.
    pub(crate) fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(Conn, SockAddr)>> {
        let shared = &self.shared;
        let driver = shared.driver.upgrade().ok_or_else(runtime_gone)?;
        loop {
            let mut st = shared.st.borrow_mut();
            if let Some(fd) = st.queue.pop_front() {
                drop(st);
                let sock = Socket::from(fd);
                match sock.peer_addr() {
                    // Accepted without SOCK_NONBLOCK: already blocking, as ring sockets are.
                    Ok(peer) => {
                        return Poll::Ready(Ok((
                            Conn { shared: ConnShared::new(&driver, sock), _tie: Tie::new(&driver) },
                            peer,
                        )))
                    }
                    // Reset while queued (as the other engines): take the next one.
                    Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => continue,
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            if let Some(e) = st.err.take() {
                return Poll::Ready(Err(e));
            }
            if st.accept.is_none() {
                let entry =
                    opcode::AcceptMulti::new(types::Fd(shared.sock.as_raw_fd())).flags(libc::SOCK_CLOEXEC).build();
                st.accept = Some(driver.start(entry, Pending::Net(NetOp::Accept { listener: shared.clone() })));
                st.cancelling = false;
            }
            register(&mut st.waker, cx);
            return Poll::Pending;
        }
    }

    /// Stops accepting on the ring and hands back the listening socket (a duplicate of its fd) with the
    /// connections the multishot accept already took, in the order they came. The multishot is cancelled and
    /// waited for here, so no connection the kernel completes meanwhile is accepted into a closing listener.
    pub(crate) fn into_parts(self) -> io::Result<(Socket, Vec<Socket>)> {
        let shared = &self.shared;
        if let Some(driver) = shared.driver.upgrade() {
            let cancel = {
                let mut st = shared.st.borrow_mut();
                let cancel = if st.cancelling { None } else { st.accept };
                st.cancelling = true;
                cancel
            };
            if let Some(user_data) = cancel {
                driver.cancel(user_data);
            }
            driver.run_until(|| shared.st.borrow().accept.is_none())?;
        }
        let sock = shared.sock.try_clone()?;
        let queued = std::mem::take(&mut shared.st.borrow_mut().queue);
        Ok((sock, queued.into_iter().map(Socket::from).collect()))
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let mut st = self.shared.st.borrow_mut();
        st.closed = true;
        let queued = std::mem::take(&mut st.queue);
        let cancel = if st.cancelling { None } else { st.accept };
        st.cancelling = true;
        drop(st);
        drop(queued); // closes the connections nobody accepted
        if let (Some(user_data), Some(driver)) = (cancel, self.shared.driver.upgrade()) {
            driver.cancel(user_data);
        }
    }
}

/// A completion of a listener's multishot accept; `more`: the accept goes on.
fn accepted(listener: &Rc<ListenShared>, res: i32, more: bool) {
    let mut st = listener.st.borrow_mut();
    if !more {
        st.accept = None;
        st.cancelling = false;
    }
    if res >= 0 {
        // SAFETY: a successful accept returns a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(res) };
        if st.closed {
            return; // drops (closes) it
        }
        st.queue.push_back(fd);
        if more && st.queue.len() >= ACCEPT_QUEUE && !st.cancelling {
            // Enough waiting: stop accepting (the kernel's backlog holds the rest) until the queue drains.
            if let (Some(user_data), Some(driver)) = (st.accept, listener.driver.upgrade()) {
                st.cancelling = true;
                driver.cancel(user_data);
            }
        }
    } else if !st.closed {
        match -res {
            // Cancelled by us; a connection reset while queued, an interrupted accept: nothing to report.
            libc::ECANCELED | libc::ECONNABORTED | libc::EINTR | libc::EAGAIN => {}
            errno => st.err = Some(io::Error::from_raw_os_error(errno)),
        }
    }
    let waker = st.waker.take();
    drop(st);
    wake(waker);
}
