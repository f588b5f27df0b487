//! A stream socket on the ring: reads from the provided-buffer ring, queued sends, shutdown (see `net.rs`).

use std::cell::RefCell;
use std::io;
use std::os::fd::AsRawFd;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use io_uring::{opcode, squeue, types};
use socket2::{SockAddr, Socket, Type};

use super::super::bufring::{self, BufId};
use super::super::{Driver, Pending};
use super::{register, wake, CancelOnDrop, NetOp, Tie};
use crate::error::runtime_gone;
use crate::reply::reply;

/// Bytes a connection buffers for writing before `poll_write` waits for the sends to drain them.
pub(crate) const HIGH_WATER: usize = 256 * 1024;

/// `IORING_RECVSEND_POLL_FIRST` (Linux 5.19, as every socket opcode uvio uses on the ring): a recv's `ioprio`
/// flag to arm the socket's poll before trying to receive (the io-uring crate does not export the constant).
const RECVSEND_POLL_FIRST: u16 = 1;

/// While user space holds half of the ring's buffers or more, received bytes up to this many are copied out of
/// their ring buffer, which goes back to the kernel at once, instead of holding the buffer until the
/// connection's reader takes them. A loop iteration dispatches every completion before the woken readers run,
/// so with many busy connections the ring would otherwise run dry (`ENOBUFS`: a wasted ring recv, then a
/// `recv(2)` of the reader's own): 1 000 echo connections held more than the 512 buffers. Copying a few KiB
/// costs less than that;
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
    /// The last ring recv found the ring empty (`ENOBUFS`): its bytes still wait in the socket.
    ring_empty: bool,
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
    /// The last `Stream` is gone: completions only release what they hold.
    closed: bool,
}

/// A connection's socket and state, shared by its [`Stream`] and its operations in flight: the fd closes when
/// the last of them lets go.
pub(crate) struct ConnShared {
    driver: Weak<Driver>,
    sock: Socket,
    st: RefCell<ConnState>,
}

/// A stream socket on the ring. Cloning is the caller's business (it lives in an `Rc`); dropping the last
/// owner cancels the recv in flight and lets queued sends finish before the socket closes.
pub(crate) struct Stream {
    pub(super) shared: Rc<ConnShared>,
    pub(super) _tie: Tie,
}

impl Stream {
    /// Takes over a connected stream socket (made blocking: see the module docs).
    pub(crate) fn new(driver: &Rc<Driver>, sock: Socket) -> io::Result<Stream> {
        sock.set_nonblocking(false)?;
        Ok(Stream { shared: ConnShared::new(driver, sock), _tie: Tie::new(driver) })
    }

    /// The socket itself (addresses, options).
    pub(crate) fn socket(&self) -> &Socket {
        &self.shared.sock
    }

    /// Connects a new stream socket to `addr` (`IORING_OP_CONNECT`). Dropping the future cancels the connect;
    /// the socket closes once its completion arrived.
    pub(crate) async fn connect(driver: &Rc<Driver>, addr: &SockAddr) -> io::Result<Stream> {
        Stream::connect_socket(driver, Socket::new(addr.domain(), Type::STREAM, None)?, addr).await
    }

    /// Connects `sock` (made by the caller, options set) to `addr`, as [`connect`](Stream::connect).
    pub(crate) async fn connect_socket(driver: &Rc<Driver>, sock: Socket, addr: &SockAddr) -> io::Result<Stream> {
        sock.set_nonblocking(false)?;
        let shared = ConnShared::new(driver, sock);
        let addr = Box::new(addr.clone());
        let entry = opcode::Connect::new(types::Fd(shared.sock.as_raw_fd()), addr.as_ptr(), addr.len()).build();
        let (replier, reply) = reply();
        let user_data =
            driver.start(entry, Pending::Net(NetOp::Connect { _conn: shared.clone(), _addr: addr, done: replier }));
        let mut guard = CancelOnDrop { driver: Rc::downgrade(driver), user_data: Some(user_data) };
        let res = reply.await;
        guard.user_data = None; // completed: nothing to cancel
        res.unwrap_or_else(|| Err(io::Error::from_raw_os_error(libc::ECANCELED)))?;
        Ok(Stream { shared, _tie: Tie::new(driver) })
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
        self.shared.poll_kept(cx, max, true, |bytes| out[..bytes.len()].copy_from_slice(bytes))
    }

    /// Copies the next bytes into `out` without taking them: the bytes a ring recv already took from the
    /// kernel (the next read returns exactly these first), else arms the recv and waits. Never `MSG_PEEK`s the
    /// kernel itself, whose bytes come after the kept ones.
    pub(crate) fn poll_peek(&self, cx: &mut Context<'_>, out: &mut [u8]) -> Poll<io::Result<usize>> {
        if out.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let max = out.len();
        self.shared.poll_kept(cx, max, false, |bytes| out[..bytes.len()].copy_from_slice(bytes))
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
        self.shared.poll_kept(cx, max, true, take)
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

    /// For a hand-over (after a flush): cancels the recv in flight and waits for it, then returns a duplicate
    /// of the socket (blocking, as ring sockets are) with the bytes received but not read yet. The `Stream`'s
    /// drop then has nothing left to cancel.
    pub(crate) fn into_socket(self) -> io::Result<(Socket, Vec<u8>)> {
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

impl Drop for Stream {
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
    pub(super) fn new(driver: &Rc<Driver>, sock: Socket) -> Rc<ConnShared> {
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
                ring_empty: false,
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
        st.ring_empty = false; // taken the direct way
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

    /// Hands kept bytes (at most `max`) to `take`, and takes them if `consume` (else a peek: they stay kept),
    /// or the pending end-of-stream or error; else makes sure a recv is armed and waits for it.
    fn poll_kept(
        self: &Rc<Self>,
        cx: &mut Context<'_>,
        max: usize,
        consume: bool,
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
                if !consume {
                    return Poll::Ready(Ok(n));
                }
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
                if !consume {
                    return Poll::Ready(Ok(n));
                }
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
            if !consume {
                // A peek reports the error and leaves it for the read, as for bytes.
                let copy = match e.raw_os_error() {
                    Some(code) => io::Error::from_raw_os_error(code),
                    None => io::Error::new(e.kind(), e.to_string()),
                };
                st.read_err = Some(e);
                return Poll::Ready(Err(copy));
            }
            return Poll::Ready(Err(e));
        }
        if st.eof {
            return Poll::Ready(Ok(0));
        }
        if st.recv.is_none() && std::mem::take(&mut st.ring_empty) {
            // A peek (or a read into a `ReadBuf`) after the ring ran dry: the bytes wait in the socket, and
            // another ring recv could find the ring empty again.
            let driver = self.driver.upgrade().ok_or_else(runtime_gone)?;
            self.start_owned_recv(&driver, &mut st);
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
            if let Some(bufs) = driver.bufs() {
                bufs.arm();
            }
            st.recv = Some(driver.start(entry, Pending::Net(NetOp::Recv { conn: self.clone() })));
        }
        register(&mut st.reader, cx);
        Poll::Pending
    }

    /// A ring recv completed.
    pub(super) fn recv_done(self: Rc<Self>, res: i32, flags: u32) {
        // Without the driver (shutting down) the buffer memory goes with it: nothing to give back.
        let Some(driver) = self.driver.upgrade() else { return };
        let Some(bufs) = driver.bufs() else { return };
        bufs.disarm();
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
                // The ring is empty (many connections hold unread buffers, or were handed theirs in the same
                // batch of completions) and the bytes still wait in the socket. The reader takes them with a
                // non-blocking `recv(2)` straight into its own slice (`try_recv_now`, as after a bulk read): one
                // copy, no buffer of ours, no second operation on the ring. A read that cannot go that way
                // (a peek) arms a recv into a buffer of the connection's own instead (`start_owned_recv`).
                st.bulk = true;
                st.ring_empty = true;
            }
            e if -e == libc::ECANCELED => {}
            e => st.read_err = Some(io::Error::from_raw_os_error(-e)),
        }
        let reader = st.reader.take();
        drop(st);
        wake(reader);
    }

    /// Arms a recv into a buffer of the connection's own (the ring was empty), freed once read.
    fn start_owned_recv(self: &Rc<Self>, driver: &Driver, st: &mut ConnState) {
        // Zeroed: memory the kernel writes is initialised before it is lent (valgrind cannot see the kernel's
        // writes). Allocated only when the ring is empty, and freed once read.
        let mut buf = vec![0; bufring::SIZE];
        let entry = opcode::Recv::new(types::Fd(self.sock.as_raw_fd()), buf.as_mut_ptr(), buf.len() as u32).build();
        // The Vec's heap block does not move when the Vec moves into the slot.
        st.recv = Some(driver.start(entry, Pending::Net(NetOp::RecvOwned { conn: self.clone(), buf })));
    }

    /// A recv into the connection's own buffer completed.
    pub(super) fn recv_owned_done(&self, res: i32, buf: Vec<u8>) {
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
    pub(super) fn send_done(self: Rc<Self>, res: i32, mut buf: Vec<u8>, off: usize) {
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
    pub(super) fn shutdown_done(&self, res: i32) {
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
