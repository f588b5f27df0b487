//! [`UdpSocket`]: async UDP on the runtime's engine (see [`crate::engine`]: the engine's `Datagram` role).
//!
//! On the epoll engine (and io_uring's: UDP stays on that code there) every operation is one syscall on the
//! caller's buffer: no queue, no copy, no allocation per datagram. The libuv engine queues up to 256 received
//! datagrams and 256 KiB of sends. The semantics are the same on every engine (truncation, errors in order,
//! `send_to` on a connected socket refused, no loss when a future is dropped).

use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::task::{Context, Poll};

use super::addr::ToSocketAddrs;
use crate::engine::AnyDatagram;
use crate::error::Error;
use crate::uv::Membership;

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
    io: AnyDatagram,
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
        let ex = crate::runtime::current();
        Ok(UdpSocket { io: AnyDatagram::bind(&ex.engine, addr)? })
    }

    /// Takes over a bound std socket (made non-blocking). Must be called inside a uvio runtime.
    pub fn from_std(socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
        let ex = crate::runtime::current();
        Ok(UdpSocket { io: AnyDatagram::from_std(&ex.engine, socket)? })
    }

    /// Hands the socket over to std: first waits until the datagrams sends queued have reached the kernel, then
    /// stops receiving and gives back, beside the std socket (in blocking mode, as std makes them), the
    /// datagrams received but not yet read, oldest first, with their senders. The libuv engine queues up to 256
    /// of them; the epoll engine none. Errors queued for earlier datagrams (such as `ConnectionRefused`) are
    /// dropped.
    pub async fn into_std(self) -> io::Result<(std::net::UdpSocket, Vec<(Vec<u8>, SocketAddr)>)> {
        let (sock, unread) = self.io.into_socket().await?;
        Ok((sock.into(), unread))
    }

    /// Connects the socket to `addr` (the first address that works): `send`/`recv` then talk to it only, and
    /// the OS filters out datagrams from elsewhere (`uv_udp_connect`). Connecting again replaces the peer.
    pub async fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        let addrs = addr.to_socket_addrs().await?;
        let mut last = io::Error::new(io::ErrorKind::InvalidInput, "no addresses to connect to");
        for a in addrs {
            match self.io.connect(a) {
                Ok(()) => return Ok(()),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The local address (with the actual port when bound to port 0) (`uv_udp_getsockname`).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    /// The connected peer's address; `NotConnected` when not connected (`uv_udp_getpeername`).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.peer_addr()
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
        self.io.send_to(buf, target).await
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
        self.io.poll_send_to(cx, buf, target)
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
        self.io.try_send_to(buf, target)
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
        self.io.poll_recv_from(cx, buf)
    }

    /// Receives a datagram that has already arrived, or fails with `WouldBlock` (and starts receiving, so a
    /// later call may succeed).
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.try_recv_from(buf).map(|(n, _)| n)
    }

    /// Receives a datagram that has already arrived, with its sender; see [`try_recv`](UdpSocket::try_recv).
    pub fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io.try_recv_from(buf)
    }

    /// Allows sending to broadcast addresses (`SO_BROADCAST`, `uv_udp_set_broadcast`).
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.io.set_broadcast(on)
    }

    /// The time-to-live of outgoing unicast datagrams, 1 through 255 (`uv_udp_set_ttl`); else `InvalidInput`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        if !(1..=255).contains(&ttl) {
            return Err(Error::EINVAL.into());
        }
        self.io.set_ttl(ttl as u8)
    }

    /// The time-to-live of outgoing IPv4 multicast datagrams, 0 through 255 (`uv_udp_set_multicast_ttl`).
    pub fn set_multicast_ttl_v4(&self, ttl: u32) -> io::Result<()> {
        let ttl = u8::try_from(ttl).map_err(|_| Error::EINVAL)?;
        self.io.set_multicast_ttl_v4(ttl)
    }

    /// Whether multicast datagrams sent by this IPv4 socket loop back to local sockets
    /// (`uv_udp_set_multicast_loop`).
    pub fn set_multicast_loop_v4(&self, on: bool) -> io::Result<()> {
        self.io.set_multicast_loop(on, false)
    }

    /// Whether multicast datagrams sent by this IPv6 socket loop back to local sockets
    /// (`uv_udp_set_multicast_loop`).
    pub fn set_multicast_loop_v6(&self, on: bool) -> io::Result<()> {
        self.io.set_multicast_loop(on, true)
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
        self.io.set_membership(group, interface, m)
    }
}

impl std::fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpSocket").field("local_addr", &self.local_addr().ok()).finish()
    }
}

crate::net::io::os_socket!(UdpSocket, io);
