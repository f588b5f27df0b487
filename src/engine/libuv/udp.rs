//! The libuv engine's UDP socket ([`Datagram`], over `uv_udp_t`).
//!
//! Receiving: libuv hands each datagram to a callback, lending its bytes for the call only, so they are copied
//! into a queue of at most [`RECV_QUEUE`] datagrams that `poll_recv_from` drains (the copies reuse the buffers
//! of datagrams already read, so a steady flow does not allocate). Receiving starts with the first receive and
//! goes on between calls; when the queue is full it pauses (`uv_udp_recv_stop`), leaving further datagrams to
//! the kernel's socket buffer — which drops new ones when *it* is full, as UDP may — and resumes once the queue
//! is half drained. A receive future dropped before it completes loses nothing: datagrams wait in the queue.
//!
//! Sending: sends first try the kernel directly (`uv_udp_try_send`, no copy); if it would block, an owned copy
//! goes into a queued libuv send (`uv_udp_send`), up to [`SEND_HIGH`] bytes in flight, beyond which sends wait.
//! Dropping the socket with sends still queued keeps it open (held by the engine's [`Lingering`] registry)
//! until they are handed to the kernel.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll};

use super::Lingering;
use crate::engine::wakers::Wakers;
use crate::error::Error;
use crate::reply::{reply, Reply};
use crate::uv::{self, RecvFlags, UdpBindFlags};

/// Datagrams received and not yet read, at which receiving pauses.
pub(crate) const RECV_QUEUE: usize = 256;
/// Buffers of read datagrams kept for reuse.
const SPARE_BUFFERS: usize = 16;
/// Bytes in queued sends at which sending waits.
pub(crate) const SEND_HIGH: usize = 256 * 1024;

/// Datagrams received and not read yet, with their senders, oldest first (what a hand-over gives back).
pub(crate) type Unread = Vec<(Vec<u8>, SocketAddr)>;

/// A UDP socket on the libuv engine. Shared (`Rc`) so that it can linger while its sends drain.
pub(crate) struct Datagram {
    udp: uv::Udp,
    rx: RefCell<RecvState>,
    tx: RefCell<SendState>,
    lingering_in: Weak<Lingering>,
    /// The key under which the runtime keeps this socket alive while its sends drain after a drop.
    lingering: Cell<Option<usize>>,
    me: Weak<Datagram>,
}

struct Received {
    data: Vec<u8>,
    from: SocketAddr,
}

#[derive(Default)]
struct RecvState {
    /// Datagrams, and receive errors, in arrival order.
    queue: VecDeque<Result<Received, Error>>,
    spare: Vec<Vec<u8>>,
    receiving: bool,
    wakers: Wakers,
}

#[derive(Default)]
struct SendState {
    /// Queued sends, and their bytes.
    count: usize,
    bytes: usize,
    /// The error of a send queued by `poll_send`, for the next send.
    err: Option<Error>,
    wakers: Wakers,
}

/// What a send did: went out at once, or was queued (with the reply of its completion, if asked for).
pub(crate) enum Sent {
    Now(usize),
    Queued(Option<Reply<crate::Result<()>>>),
}

impl Datagram {
    /// Runs `f` on the socket (for the OS handle accessors).
    pub(crate) fn with_socket<R>(&self, f: impl FnOnce(socket2::SockRef<'_>) -> io::Result<R>) -> io::Result<R> {
        self.udp.with_socket(f)
    }
}

impl Datagram {
    /// Takes over `udp`, of the engine whose registry is `lingering`.
    pub(crate) fn new(udp: uv::Udp, lingering: &Rc<Lingering>) -> Rc<Datagram> {
        Rc::new_cyclic(|me| Datagram {
            udp,
            rx: RefCell::default(),
            tx: RefCell::default(),
            lingering_in: Rc::downgrade(lingering),
            lingering: Cell::new(None),
            me: me.clone(),
        })
    }

    /// A new socket bound to `addr` (`uv_udp_bind`, without `SO_REUSEADDR`).
    pub(crate) fn bind(lp: &uv::Loop, addr: SocketAddr, lingering: &Rc<Lingering>) -> io::Result<Rc<Datagram>> {
        let udp = uv::Udp::new(lp)?;
        udp.bind(addr, UdpBindFlags::default())?;
        Ok(Datagram::new(udp, lingering))
    }

    /// Takes over a bound std socket (`uv_udp_open_ex`; made non-blocking).
    pub(crate) fn from_std(
        lp: &uv::Loop,
        sock: std::net::UdpSocket,
        lingering: &Rc<Lingering>,
    ) -> io::Result<Rc<Datagram>> {
        Ok(Datagram::new(uv::Udp::open(lp, sock)?, lingering))
    }

    /// The libuv handle (options, addresses).
    pub(crate) fn udp(&self) -> &uv::Udp {
        &self.udp
    }

    /// Whether its runtime is gone (nothing runs its loop any more).
    pub(crate) fn runtime_gone(&self) -> bool {
        Lingering::is_gone(&self.lingering_in)
    }

    /// Connects to `addr` (`uv_udp_connect`), replacing the peer of a connected socket.
    pub(crate) fn connect(&self, addr: SocketAddr) -> io::Result<()> {
        if self.udp.peer_addr().is_ok() {
            self.udp.connect(None)?; // libuv refuses to connect a connected socket (EISCONN)
        }
        Ok(self.udp.connect(Some(addr))?)
    }

    /// Sends now if the kernel takes it, else `WouldBlock` (also while sends are queued).
    pub(crate) fn try_send_to(&self, buf: &[u8], target: Option<SocketAddr>) -> io::Result<usize> {
        Ok(self.udp.try_send(buf, target)?)
    }

    /// Hands the socket over (the caller waited for queued sends): stops receiving and gives back the socket
    /// (blocking) with the datagrams received but not read yet, oldest first (queued errors are dropped).
    /// `InvalidInput` if something else still owns it.
    pub(crate) fn into_socket(this: Rc<Datagram>) -> io::Result<(socket2::Socket, Unread)> {
        let _ = this.udp.recv_stop();
        let unread = std::mem::take(&mut this.rx.borrow_mut().queue)
            .into_iter()
            .filter_map(|d| d.ok().map(|d| (d.data, d.from)))
            .collect();
        let this = Rc::try_unwrap(this)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "the socket has other owners"))?;
        let sock = this.udp.into_socket()?;
        sock.set_nonblocking(false)?;
        Ok((sock, unread))
    }
}

impl Datagram {
    fn start_receiving(&self) -> crate::Result<()> {
        let me = self.me.clone();
        self.udp.recv_start(move |udp, res| {
            if let Some(s) = me.upgrade() {
                s.on_recv(udp, res);
            }
        })?;
        self.rx.borrow_mut().receiving = true;
        Ok(())
    }

    fn on_recv(&self, udp: &uv::Udp, res: crate::Result<Option<(&[u8], SocketAddr, RecvFlags)>>) {
        let mut rx = self.rx.borrow_mut();
        let failed = match res {
            Ok(None) => return, // the socket is drained for now
            // Receiving stops when the queue fills, so this guard only holds the bound against a platform that
            // delivers a few more after the stop: like a full socket buffer, it drops the new datagram.
            Ok(Some(_)) if rx.queue.len() >= RECV_QUEUE => return,
            Ok(Some((bytes, from, _))) => {
                let mut data = rx.spare.pop().unwrap_or_default();
                data.extend_from_slice(bytes);
                rx.queue.push_back(Ok(Received { data, from }));
                false
            }
            Err(e) => {
                rx.queue.push_back(Err(e));
                true
            }
        };
        // After an error libuv on Windows stops receiving by itself: stop everywhere, so that the next `recv`
        // restarts the same way on every OS.
        if failed || rx.queue.len() >= RECV_QUEUE {
            rx.receiving = false;
            let _ = udp.recv_stop();
        }
        rx.wakers.take().wake();
    }

    /// The next queued datagram; else registers `cx` (if any) and makes sure receiving runs.
    pub(crate) fn poll_recv_from(
        &self,
        cx: Option<&mut Context<'_>>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        let mut rx = self.rx.borrow_mut();
        if let Some(item) = rx.queue.pop_front() {
            let out = match item {
                Ok(Received { mut data, from }) => {
                    let n = data.len().min(buf.len());
                    buf[..n].copy_from_slice(&data[..n]);
                    if rx.spare.len() < SPARE_BUFFERS {
                        data.clear();
                        rx.spare.push(data);
                    }
                    Ok((n, from))
                }
                Err(e) => Err(e.into()),
            };
            let resume = !rx.receiving && rx.queue.len() <= RECV_QUEUE / 2;
            drop(rx);
            if resume {
                // A failure to restart resurfaces at the next poll, when the queue is empty.
                let _ = self.start_receiving();
            }
            return Poll::Ready(out);
        }
        if let Some(cx) = cx {
            rx.wakers.register(cx.waker());
        }
        let start = !rx.receiving;
        drop(rx);
        if start {
            if let Err(e) = self.start_receiving() {
                return Poll::Ready(Err(e.into()));
            }
        }
        Poll::Pending
    }

    /// Sends one datagram; when it had to be queued, waits for libuv's outcome.
    pub(crate) async fn send(&self, buf: &[u8], target: Option<SocketAddr>) -> io::Result<usize> {
        match poll_fn(|cx| self.poll_send(cx, buf, target, true)).await? {
            Sent::Now(n) => Ok(n),
            Sent::Queued(reply) => {
                if let Some(reply) = reply {
                    reply.await.unwrap_or(Err(Error::ECANCELED))?;
                }
                Ok(buf.len())
            }
        }
    }

    /// A datagram already queued, else `WouldBlock` (receiving starts, so a later call may succeed).
    pub(crate) fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        match self.poll_recv_from(None, buf) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    /// Ready once no send is queued.
    pub(crate) fn poll_sends_done(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut tx = self.tx.borrow_mut();
        if tx.count == 0 {
            return Poll::Ready(());
        }
        tx.wakers.register(cx.waker());
        Poll::Pending
    }

    /// On drop of the `UdpSocket`: with sends still queued, keeps the socket open until they reach the kernel
    /// (see `on_sent`); else lets it close now.
    pub(crate) fn linger_while_sending(self: &Rc<Self>) {
        if self.tx.borrow().count == 0 {
            return;
        }
        let _ = self.udp.recv_stop();
        self.rx.borrow_mut().receiving = false;
        if let Some(registry) = self.lingering_in.upgrade() {
            self.lingering.set(Some(registry.hold(self.clone())));
        }
    }

    /// Sends at once if the kernel takes it, else queues an owned copy (`want_reply`: with a reply of the
    /// outcome; without, a failure is kept for the next send).
    pub(crate) fn poll_send(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        target: Option<SocketAddr>,
        want_reply: bool,
    ) -> Poll<io::Result<Sent>> {
        let mut tx = self.tx.borrow_mut();
        if let Some(e) = tx.err.take() {
            return Poll::Ready(Err(e.into()));
        }
        if tx.bytes >= SEND_HIGH {
            tx.wakers.register(cx.waker());
            return Poll::Pending;
        }
        if tx.count == 0 {
            match self.udp.try_send(buf, target) {
                Ok(n) => return Poll::Ready(Ok(Sent::Now(n))),
                Err(Error::EAGAIN) | Err(Error::ENOSYS) => {}
                Err(e) => return Poll::Ready(Err(e.into())),
            }
        }
        let (replier, reply) = match want_reply {
            true => {
                let (replier, reply) = reply();
                (Some(replier), Some(reply))
            }
            false => (None, None),
        };
        let len = buf.len();
        let me = self.me.clone();
        let queued = self.udp.send(Vec::from(buf), target, move |res, _| {
            if let Some(s) = me.upgrade() {
                s.on_sent(len, res, replier.is_none());
            }
            if let Some(r) = replier {
                r.send(res);
            }
        });
        if let Err(e) = queued {
            return Poll::Ready(Err(e.into()));
        }
        tx.count += 1;
        tx.bytes += len;
        Poll::Ready(Ok(Sent::Queued(reply)))
    }

    fn on_sent(&self, len: usize, res: crate::Result<()>, keep_err: bool) {
        let mut tx = self.tx.borrow_mut();
        tx.count -= 1;
        tx.bytes -= len;
        if let (Err(e), true) = (res, keep_err) {
            tx.err.get_or_insert(e);
        }
        tx.wakers.take().wake();
        let idle = tx.count == 0;
        drop(tx);
        if idle {
            if let (Some(key), Some(registry)) = (self.lingering.take(), self.lingering_in.upgrade()) {
                registry.release(key);
            }
        }
    }
}
