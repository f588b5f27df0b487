//! The epoll engine's UDP socket: one syscall per datagram on the caller's buffer.

use std::cell::Cell;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::task::{Context, Poll};

use super::{retry, Reactor, Registration};
use crate::engine::Direction;
use crate::error::Error;
use crate::uv::Membership;

/// The receive buffer (`SO_RCVBUF`) a UDP socket made by this engine asks for. Without a user-space queue the
/// kernel's buffer is all that absorbs a burst nobody reads yet; the libuv engine adds a 256-datagram queue on
/// top of it, so this engine asks for room for about as many more (Linux's default, 208 KiB, holds 256 small
/// datagrams; asking 256 KiB gets 512 KiB where `net.core.rmem_max` allows, and twice the default where it is
/// the default). Sockets taken over with `from_std` keep what their owner set.
const DGRAM_RCVBUF: usize = 256 * 1024;

/// A non-blocking UDP socket in the runtime's epoll set. Every operation is one syscall on the caller's buffer
/// (`recvfrom(2)`, `sendto(2)`): nothing is queued here, so a dropped future loses nothing (a datagram not yet
/// received stays in the kernel; one sent is the kernel's) and nothing is allocated per datagram.
pub(crate) struct Datagram {
    // Field order matters: the registration leaves the epoll set before `sock` closes the fd.
    reg: Registration,
    sock: std::net::UdpSocket,
    /// Whether the socket has a peer: libuv refuses `send_to` then (`EISCONN`), and so does this engine, while
    /// Linux would send.
    connected: Cell<bool>,
}

impl Datagram {
    /// Adds `sock` (made non-blocking) to `reactor`'s epoll set.
    pub(crate) fn new(reactor: &Rc<Reactor>, sock: std::net::UdpSocket) -> io::Result<Datagram> {
        sock.set_nonblocking(true)?;
        let connected = Cell::new(sock.peer_addr().is_ok());
        Ok(Datagram { reg: Registration::new(reactor, sock.as_raw_fd())?, sock, connected })
    }

    /// A new socket bound to `addr`, with a receive buffer of at least [`DGRAM_RCVBUF`] (see there).
    pub(crate) fn bind(reactor: &Rc<Reactor>, addr: SocketAddr) -> io::Result<Datagram> {
        let sock = std::net::UdpSocket::bind(addr)?;
        let sref = socket2::SockRef::from(&sock);
        // Linux reports twice what was asked (its bookkeeping overhead), capped by `net.core.rmem_max`.
        if sref.recv_buffer_size()? < 2 * DGRAM_RCVBUF {
            // Only a wish: a smaller buffer still works, it just absorbs a shorter burst.
            let _ = sref.set_recv_buffer_size(DGRAM_RCVBUF);
        }
        Datagram::new(reactor, sock)
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
        self.reg.poll_io(cx, Direction::Read, || self.sock.recv_from(buf))
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
        self.reg.poll_io(cx, Direction::Write, || self.send_now(buf, target))
    }

    /// Joins or leaves a multicast group, reading `interface` as libuv does (see [`membership`]).
    pub(crate) fn set_membership(&self, group: IpAddr, interface: Option<&str>, m: Membership) -> io::Result<()> {
        membership(&self.sock, group, interface, m)
    }

    /// Sends one datagram now, or `WouldBlock`.
    pub(crate) fn try_send_to(&self, buf: &[u8], target: Option<SocketAddr>) -> io::Result<usize> {
        self.check_target(target)?;
        retry(|| self.send_now(buf, target))
    }
}

/// `membership` on the epoll engine, reading `interface` as libuv does: an IPv4 address, or for IPv6 an address
/// whose scope (`%eth0` or `%3`) names the interface (none, or an unknown name: the system's choice).
fn membership(s: &std::net::UdpSocket, group: IpAddr, interface: Option<&str>, m: Membership) -> io::Result<()> {
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
