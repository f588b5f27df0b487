//! [`UdpSocket`]: async UDP over libuv's `uv_udp_t`, or on Linux over the epoll engine.
//!
//! On the epoll engine (and io_uring's: UDP stays on this code there, see `crate::engine`) a socket is a non-blocking
//! `std::net::UdpSocket` whose operations are plain syscalls on the caller's buffer (see `engine::epoll::Dgram`):
//! no queue, no copy, no allocation per datagram; a `uv_poll_t` is asked for readiness only after `EAGAIN`. The
//! semantics are the same as below (truncation, errors in order, `send_to` on a connected socket refused).
//!
//! libuv engine. Receiving: libuv hands each datagram to a callback, lending its bytes for the call only, so they are copied
//! into a queue of at most [`RECV_QUEUE`] datagrams that `recv`/`recv_from` drain (the copies reuse the buffers
//! of datagrams already read, so a steady flow does not allocate). Receiving starts with the first `recv` and
//! goes on between calls; when the queue is full it pauses (`uv_udp_recv_stop`), leaving further datagrams to
//! the kernel's socket buffer — which drops new ones when *it* is full, as UDP may — and resumes once the queue
//! is half drained. A `recv` future dropped before it completes loses nothing: datagrams wait in the queue.
//!
//! Sending: `send`/`send_to` first try the kernel directly (`uv_udp_try_send`, no copy); if it would block, an
//! owned copy goes into a queued libuv send (`uv_udp_send`), up to [`SEND_HIGH`] bytes in flight, beyond which
//! sends wait. Dropping the socket with sends still queued keeps it open (owned by the runtime) until they are
//! handed to the kernel.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use super::addr::ToSocketAddrs;
#[cfg(target_os = "linux")]
use crate::engine::epoll::Dgram;
use crate::error::Error;
use crate::reply::{reply, Reply};
use crate::runtime::Executor;
use crate::uv::{self, Membership, RecvFlags, UdpBindFlags};

/// Datagrams received and not yet read, at which receiving pauses.
pub(crate) const RECV_QUEUE: usize = 256;
/// Buffers of read datagrams kept for reuse.
const SPARE_BUFFERS: usize = 16;
/// Bytes in queued sends at which sending waits.
pub(crate) const SEND_HIGH: usize = 256 * 1024;

/// A UDP socket on the runtime's loop (`uv_udp_t`), shaped like tokio's.
///
/// `recv`/`recv_from` truncate a datagram larger than the buffer, like std: the rest of it is discarded and
/// the length copied is returned. Errors the OS reports for earlier datagrams (such as `ConnectionRefused` on a
/// connected socket whose peer has no listener) come out of the next `recv`, in order with the datagrams.
///
/// Dropping the socket closes it once queued sends have reached the kernel; received datagrams not yet read
/// are dropped.
///
/// ```
/// use uvio::net::UdpSocket;
///
/// uvio::block_on(async {
///     let a = UdpSocket::bind("127.0.0.1:0").await?;
///     let b = UdpSocket::bind("127.0.0.1:0").await?;
///     a.send_to(b"ping", b.local_addr()?).await?;
///     let mut buf = [0u8; 16];
///     let (n, from) = b.recv_from(&mut buf).await?;
///     assert_eq!((&buf[..n], from), (&b"ping"[..], a.local_addr()?));
///     std::io::Result::Ok(())
/// }).unwrap();
/// ```
pub struct UdpSocket {
    io: UdpIo,
}

/// The socket on whichever engine the runtime ran when it was made.
enum UdpIo {
    Libuv(Rc<Inner>),
    #[cfg(target_os = "linux")]
    Epoll(Dgram),
}

struct Inner {
    udp: uv::Udp,
    rx: RefCell<RecvState>,
    tx: RefCell<SendState>,
    ex: Weak<Executor>,
    /// The key under which the runtime keeps this socket alive while its sends drain after a drop.
    lingering: Cell<Option<usize>>,
    me: Weak<Inner>,
}

struct Datagram {
    data: Vec<u8>,
    from: SocketAddr,
}

#[derive(Default)]
struct RecvState {
    /// Datagrams, and receive errors, in arrival order.
    queue: VecDeque<Result<Datagram, Error>>,
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

/// The tasks waiting on one side of the socket (several tasks may share a socket through an `Rc`).
#[derive(Default)]
struct Wakers(Vec<Waker>);

impl Wakers {
    fn register(&mut self, cx: &Context<'_>) {
        if !self.0.iter().any(|w| w.will_wake(cx.waker())) {
            self.0.push(cx.waker().clone());
        }
    }

    fn wake_all(&mut self) {
        for w in self.0.drain(..) {
            w.wake();
        }
    }
}

/// What a send did: went out at once, or was queued (with the reply of its completion, if asked for).
enum Sent {
    Now(usize),
    Queued(Option<Reply<crate::Result<()>>>),
}

impl UdpSocket {
    /// Binds a new socket to `addr` (the first address that binds, when it resolves to several); port 0 picks an
    /// ephemeral port (`uv_udp_bind`, without `SO_REUSEADDR`: an address in use is `AddrInUse`).
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        let addrs = addr.to_socket_addrs().await?;
        let mut last = io::Error::new(io::ErrorKind::InvalidInput, "no addresses to bind");
        for a in addrs {
            match UdpSocket::bind_one(a) {
                Ok(s) => return Ok(s),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn bind_one(addr: SocketAddr) -> io::Result<UdpSocket> {
        #[cfg(target_os = "linux")]
        if super::io::epoll_sockets() {
            return Ok(UdpSocket { io: UdpIo::Epoll(Dgram::bind(addr)?) });
        }
        let ex = crate::runtime::current();
        let udp = uv::Udp::new(&ex.lp)?;
        udp.bind(addr, UdpBindFlags::default())?;
        Ok(UdpSocket::from_uv(udp, &ex))
    }

    /// Takes over a bound std socket (`uv_udp_open_ex`; made non-blocking). Must be called inside a uvio
    /// runtime.
    pub fn from_std(socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
        #[cfg(target_os = "linux")]
        if super::io::epoll_sockets() {
            return Ok(UdpSocket { io: UdpIo::Epoll(Dgram::new(socket)?) });
        }
        let ex = crate::runtime::current();
        let udp = uv::Udp::open(&ex.lp, socket)?;
        Ok(UdpSocket::from_uv(udp, &ex))
    }

    /// Hands the socket over to std: first waits until the datagrams sends queued have reached the kernel, then
    /// stops receiving and gives back, beside the std socket (in blocking mode, as std makes them), the
    /// datagrams received but not yet read, oldest first, with their senders. The libuv engine queues up to 256
    /// of them; the epoll engine none. Errors queued for earlier datagrams (such as `ConnectionRefused`) are
    /// dropped.
    pub async fn into_std(self) -> io::Result<(std::net::UdpSocket, Vec<(Vec<u8>, SocketAddr)>)> {
        let inner = match &self.io {
            UdpIo::Libuv(inner) => inner.clone(),
            #[cfg(target_os = "linux")]
            UdpIo::Epoll(d) => {
                let copy = d.socket().try_clone()?;
                copy.set_nonblocking(false)?;
                return Ok((copy, Vec::new())); // dropping `self` closes the original
            }
        };
        poll_fn(|cx| inner.poll_sends_done(cx)).await;
        drop(self); // nothing queued: it does not linger
        let _ = inner.udp.recv_stop();
        let unread = std::mem::take(&mut inner.rx.borrow_mut().queue)
            .into_iter()
            .filter_map(|d| d.ok().map(|d| (d.data, d.from)))
            .collect();
        let inner = Rc::try_unwrap(inner)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "the socket has other owners"))?;
        Ok((inner.udp.into_socket()?.into(), unread))
    }

    fn from_uv(udp: uv::Udp, ex: &Rc<Executor>) -> UdpSocket {
        let inner = Rc::new_cyclic(|me| Inner {
            udp,
            rx: RefCell::default(),
            tx: RefCell::default(),
            ex: Rc::downgrade(ex),
            lingering: Cell::new(None),
            me: me.clone(),
        });
        UdpSocket { io: UdpIo::Libuv(inner) }
    }

    /// Connects the socket to `addr` (the first address that works): `send`/`recv` then talk to it only, and
    /// the OS filters out datagrams from elsewhere (`uv_udp_connect`). Connecting again replaces the peer.
    pub async fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        let addrs = addr.to_socket_addrs().await?;
        let mut last = io::Error::new(io::ErrorKind::InvalidInput, "no addresses to connect to");
        for a in addrs {
            let udp = match &self.io {
                UdpIo::Libuv(inner) => &inner.udp,
                #[cfg(target_os = "linux")]
                UdpIo::Epoll(d) => match d.connect(a) {
                    Ok(()) => return Ok(()),
                    Err(e) => {
                        last = e;
                        continue;
                    }
                },
            };
            if udp.peer_addr().is_ok() {
                udp.connect(None)?; // libuv refuses to connect a connected socket (EISCONN)
            }
            match udp.connect(Some(a)) {
                Ok(()) => return Ok(()),
                Err(e) => last = e.into(),
            }
        }
        Err(last)
    }

    /// The local address (with the actual port when bound to port 0) (`uv_udp_getsockname`).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match &self.io {
            UdpIo::Libuv(inner) => Ok(inner.udp.local_addr()?),
            #[cfg(target_os = "linux")]
            UdpIo::Epoll(d) => d.socket().local_addr(),
        }
    }

    /// The connected peer's address; `NotConnected` when not connected (`uv_udp_getpeername`).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        match &self.io {
            UdpIo::Libuv(inner) => Ok(inner.udp.peer_addr()?),
            #[cfg(target_os = "linux")]
            UdpIo::Epoll(d) => d.socket().peer_addr(),
        }
    }

    /// Sends a datagram to the connected peer; returns its length once the kernel has it. Not connected:
    /// an error (`EDESTADDRREQ`). Dropping the future after the datagram was queued still sends it.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.send_impl(buf, None).await
    }

    /// Sends a datagram to `target` (the first address it resolves to). On a connected socket this is an error
    /// (`EISCONN`); use [`send`](UdpSocket::send).
    pub async fn send_to(&self, buf: &[u8], target: impl ToSocketAddrs) -> io::Result<usize> {
        let addrs = target.to_socket_addrs().await?;
        let Some(&target) = addrs.first() else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "no addresses to send data to"));
        };
        self.send_impl(buf, Some(target)).await
    }

    async fn send_impl(&self, buf: &[u8], target: Option<SocketAddr>) -> io::Result<usize> {
        match &self.io {
            UdpIo::Libuv(inner) if crate::runtime::is_gone(&inner.ex) => Err(crate::error::runtime_gone()),
            UdpIo::Libuv(inner) => inner.send(buf, target).await,
            #[cfg(target_os = "linux")]
            UdpIo::Epoll(d) => poll_fn(|cx| d.poll_send_to(cx, buf, target)).await,
        }
    }

    /// Polls to send a datagram to the connected peer: `Ready(Ok(len))` once the kernel took it or it was queued
    /// (`Pending` while 256 KiB are queued). The error of a queued datagram comes out of the
    /// next send.
    pub fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_send_impl(cx, buf, None)
    }

    /// Polls to send a datagram to `target`; see [`poll_send`](UdpSocket::poll_send).
    pub fn poll_send_to(&self, cx: &mut Context<'_>, buf: &[u8], target: SocketAddr) -> Poll<io::Result<usize>> {
        self.poll_send_impl(cx, buf, Some(target))
    }

    fn poll_send_impl(&self, cx: &mut Context<'_>, buf: &[u8], target: Option<SocketAddr>) -> Poll<io::Result<usize>> {
        std::task::ready!(crate::runtime::coop::poll_proceed(cx));
        match &self.io {
            UdpIo::Libuv(inner) if crate::runtime::is_gone(&inner.ex) => Poll::Ready(Err(crate::error::runtime_gone())),
            UdpIo::Libuv(inner) => inner.poll_send(cx, buf, target, false).map_ok(|_| buf.len()),
            #[cfg(target_os = "linux")]
            UdpIo::Epoll(d) => d.poll_send_to(cx, buf, target),
        }
    }

    /// Sends a datagram to the connected peer if the kernel takes it now (`uv_udp_try_send`); `WouldBlock`
    /// otherwise (also while sends are queued).
    pub fn try_send(&self, buf: &[u8]) -> io::Result<usize> {
        self.try_send_impl(buf, None)
    }

    /// Sends a datagram to `target` if the kernel takes it now; see [`try_send`](UdpSocket::try_send).
    pub fn try_send_to(&self, buf: &[u8], target: SocketAddr) -> io::Result<usize> {
        self.try_send_impl(buf, Some(target))
    }

    fn try_send_impl(&self, buf: &[u8], target: Option<SocketAddr>) -> io::Result<usize> {
        match &self.io {
            UdpIo::Libuv(inner) => Ok(inner.udp.try_send(buf, target)?),
            #[cfg(target_os = "linux")]
            UdpIo::Epoll(d) => d.try_send_to(buf, target),
        }
    }

    /// Receives the next datagram into `buf`: its length, or `buf.len()` if it was larger (the rest is
    /// discarded). Dropping the future loses nothing.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_recv(cx, buf)).await
    }

    /// Receives the next datagram into `buf`, with its sender; truncates like [`recv`](UdpSocket::recv).
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        poll_fn(|cx| self.poll_recv_from(cx, buf)).await
    }

    /// Polls to receive a datagram into `buf`; see [`recv`](UdpSocket::recv).
    pub fn poll_recv(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.poll_recv_from(cx, buf).map_ok(|(n, _)| n)
    }

    /// Polls to receive a datagram into `buf`, with its sender; see [`recv_from`](UdpSocket::recv_from).
    pub fn poll_recv_from(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<(usize, SocketAddr)>> {
        std::task::ready!(crate::runtime::coop::poll_proceed(cx));
        match &self.io {
            UdpIo::Libuv(inner) if crate::runtime::is_gone(&inner.ex) => Poll::Ready(Err(crate::error::runtime_gone())),
            UdpIo::Libuv(inner) => inner.poll_recv_from(Some(cx), buf),
            #[cfg(target_os = "linux")]
            UdpIo::Epoll(d) => d.poll_recv_from(cx, buf),
        }
    }

    /// Receives a datagram that has already arrived, or fails with `WouldBlock` (and starts receiving, so a
    /// later call may succeed).
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.try_recv_from(buf).map(|(n, _)| n)
    }

    /// Receives a datagram that has already arrived, with its sender; see [`try_recv`](UdpSocket::try_recv).
    pub fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        match &self.io {
            UdpIo::Libuv(inner) => inner.try_recv_from(buf),
            #[cfg(target_os = "linux")]
            UdpIo::Epoll(d) => d.try_recv_from(buf),
        }
    }

    /// Allows sending to broadcast addresses (`SO_BROADCAST`, `uv_udp_set_broadcast`).
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        match &self.io {
            UdpIo::Libuv(inner) => Ok(inner.udp.set_broadcast(on)?),
            #[cfg(target_os = "linux")]
            UdpIo::Epoll(d) => d.socket().set_broadcast(on),
        }
    }

    /// The time-to-live of outgoing unicast datagrams, 1 through 255 (`uv_udp_set_ttl`); else `InvalidInput`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        if !(1..=255).contains(&ttl) {
            return Err(Error::EINVAL.into());
        }
        match &self.io {
            UdpIo::Libuv(inner) => Ok(inner.udp.set_ttl(ttl as u8)?),
            #[cfg(target_os = "linux")]
            UdpIo::Epoll(d) => d.socket().set_ttl(ttl),
        }
    }

    /// The time-to-live of outgoing IPv4 multicast datagrams, 0 through 255 (`uv_udp_set_multicast_ttl`).
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        let ttl = u8::try_from(ttl).map_err(|_| Error::EINVAL)?;
        match &self.io {
            UdpIo::Libuv(inner) => Ok(inner.udp.set_multicast_ttl(ttl)?),
            #[cfg(target_os = "linux")]
            UdpIo::Epoll(d) => d.socket().set_multicast_ttl_v4(ttl.into()),
        }
    }

    /// Whether multicast datagrams sent by this IPv4 socket loop back to local sockets
    /// (`uv_udp_set_multicast_loop`).
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        match &self.io {
            UdpIo::Libuv(inner) => Ok(inner.udp.set_multicast_loop(on)?),
            #[cfg(target_os = "linux")]
            UdpIo::Epoll(d) => d.socket().set_multicast_loop_v4(on),
        }
    }

    /// Whether multicast datagrams sent by this IPv6 socket loop back to local sockets
    /// (`uv_udp_set_multicast_loop`).
    pub fn set_multicast_loop_v6(&self, on: bool) -> io::Result<()> {
        match &self.io {
            UdpIo::Libuv(inner) => Ok(inner.udp.set_multicast_loop(on)?),
            #[cfg(target_os = "linux")]
            UdpIo::Epoll(d) => d.socket().set_multicast_loop_v6(on),
        }
    }

    /// Joins the IPv4 multicast group `multiaddr` on the interface with address `interface`
    /// (`Ipv4Addr::UNSPECIFIED`: the system's choice) (`uv_udp_set_membership`).
    pub fn join_multicast_v4(&self, multiaddr: Ipv4Addr, interface: Ipv4Addr) -> io::Result<()> {
        self.membership(IpAddr::V4(multiaddr), Some(&interface.to_string()), Membership::Join)
    }

    /// Leaves an IPv4 multicast group; see [`join_multicast_v4`](UdpSocket::join_multicast_v4).
    pub fn leave_multicast_v4(&self, multiaddr: Ipv4Addr, interface: Ipv4Addr) -> io::Result<()> {
        self.membership(IpAddr::V4(multiaddr), Some(&interface.to_string()), Membership::Leave)
    }

    /// Joins the IPv6 multicast group `multiaddr` (`uv_udp_set_membership`). Unlike tokio, the interface is
    /// named as libuv takes it: an address with a scope such as `"fe80::1%eth0"` (on Windows `"::%3"`, by
    /// index), or `None` for the system's choice.
    pub fn join_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: Option<&str>) -> io::Result<()> {
        self.membership(IpAddr::V6(*multiaddr), interface, Membership::Join)
    }

    /// Leaves an IPv6 multicast group; see [`join_multicast_v6`](UdpSocket::join_multicast_v6).
    pub fn leave_multicast_v6(&self, multiaddr: &Ipv6Addr, interface: Option<&str>) -> io::Result<()> {
        self.membership(IpAddr::V6(*multiaddr), interface, Membership::Leave)
    }

    fn membership(&self, group: IpAddr, interface: Option<&str>, m: Membership) -> io::Result<()> {
        match &self.io {
            UdpIo::Libuv(inner) => Ok(inner.udp.set_membership(group, interface, m)?),
            #[cfg(target_os = "linux")]
            UdpIo::Epoll(d) => epoll_membership(d.socket(), group, interface, m),
        }
    }
}

/// `membership` on the epoll engine, reading `interface` as libuv does: an IPv4 address, or for IPv6 an address
/// whose scope (`%eth0` or `%3`) names the interface (none, or an unknown name: the system's choice).
#[cfg(target_os = "linux")]
fn epoll_membership(s: &std::net::UdpSocket, group: IpAddr, interface: Option<&str>, m: Membership) -> io::Result<()> {
    let join = matches!(m, Membership::Join);
    match group {
        IpAddr::V4(group) => {
            let interface = match interface {
                Some(i) => i.parse::<Ipv4Addr>().map_err(|_| Error::EINVAL)?,
                None => Ipv4Addr::UNSPECIFIED,
            };
            match join {
                true => s.join_multicast_v4(&group, &interface),
                false => s.leave_multicast_v4(&group, &interface),
            }
        }
        IpAddr::V6(group) => {
            let index = match interface {
                Some(i) => {
                    let (addr, scope) = i.split_once('%').unwrap_or((i, ""));
                    addr.parse::<Ipv6Addr>().map_err(|_| Error::EINVAL)?;
                    interface_index(scope)
                }
                None => 0,
            };
            match join {
                true => s.join_multicast_v6(&group, index),
                false => s.leave_multicast_v6(&group, index),
            }
        }
    }
}

/// The index of the interface `scope` names (a number, or a name looked up in sysfs); 0 when unknown, as
/// libuv's `uv_ip6_addr`.
#[cfg(target_os = "linux")]
fn interface_index(scope: &str) -> u32 {
    if let Ok(index) = scope.parse() {
        return index;
    }
    if scope.is_empty() || scope.contains('/') || scope.starts_with('.') {
        return 0;
    }
    std::fs::read_to_string(format!("/sys/class/net/{scope}/ifindex"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

impl Inner {
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
                rx.queue.push_back(Ok(Datagram { data, from }));
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
        rx.wakers.wake_all();
    }

    /// The next queued datagram; else registers `cx` (if any) and makes sure receiving runs.
    fn poll_recv_from(&self, cx: Option<&mut Context<'_>>, buf: &mut [u8]) -> Poll<io::Result<(usize, SocketAddr)>> {
        let mut rx = self.rx.borrow_mut();
        if let Some(item) = rx.queue.pop_front() {
            let out = match item {
                Ok(Datagram { mut data, from }) => {
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
            rx.wakers.register(cx);
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
    async fn send(&self, buf: &[u8], target: Option<SocketAddr>) -> io::Result<usize> {
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
    fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        match self.poll_recv_from(None, buf) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    /// Ready once no send is queued.
    fn poll_sends_done(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut tx = self.tx.borrow_mut();
        if tx.count == 0 {
            return Poll::Ready(());
        }
        tx.wakers.register(cx);
        Poll::Pending
    }

    /// On drop of the `UdpSocket`: with sends still queued, keeps the socket open until they reach the kernel
    /// (see `on_sent`); else lets it close now.
    fn linger_while_sending(self: &Rc<Self>) {
        if self.tx.borrow().count == 0 {
            return;
        }
        let _ = self.udp.recv_stop();
        self.rx.borrow_mut().receiving = false;
        if let Some(ex) = self.ex.upgrade() {
            self.lingering.set(Some(ex.linger(self.clone())));
        }
    }

    /// Sends at once if the kernel takes it, else queues an owned copy (`want_reply`: with a reply of the
    /// outcome; without, a failure is kept for the next send).
    fn poll_send(
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
            tx.wakers.register(cx);
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
        tx.wakers.wake_all();
        let idle = tx.count == 0;
        drop(tx);
        if idle {
            if let (Some(key), Some(ex)) = (self.lingering.take(), self.ex.upgrade()) {
                ex.unlinger(key);
            }
        }
    }
}

impl Drop for UdpSocket {
    fn drop(&mut self) {
        match &self.io {
            UdpIo::Libuv(inner) => inner.linger_while_sending(),
            // The epoll engine queues nothing: its `Dgram` stops its watcher and closes the socket by itself.
            #[cfg(target_os = "linux")]
            UdpIo::Epoll(_) => {}
        }
    }
}

impl std::fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpSocket").field("local_addr", &self.local_addr().ok()).finish()
    }
}
