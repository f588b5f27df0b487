//! The datagram role's dispatch: [`AnyDatagram`] is a UDP socket on whichever engine the runtime chose when it
//! was made (io_uring's runtimes put UDP on the epoll engine's code: see the module docs of `engine`).

use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::task::{Context, Poll};

use socket2::Socket;

#[cfg(target_os = "linux")]
use super::epoll;
use super::{libuv, Engine, SocketEngine};
use crate::uv::Membership;

/// A UDP socket on some engine.
pub(crate) enum AnyDatagram {
    Libuv(Rc<libuv::Datagram>),
    #[cfg(target_os = "linux")]
    Epoll(epoll::Datagram),
}

impl AnyDatagram {
    /// Runs `f` on the socket: the same call on every engine.
    pub(crate) fn with_socket<R>(&self, f: impl FnOnce(socket2::SockRef<'_>) -> io::Result<R>) -> io::Result<R> {
        match self {
            AnyDatagram::Libuv(d) => d.with_socket(f),
            #[cfg(target_os = "linux")]
            AnyDatagram::Epoll(d) => f(socket2::SockRef::from(d.socket())),
        }
    }

    /// A new socket bound to `addr` on `engine` (without `SO_REUSEADDR`: an address in use is `AddrInUse`).
    pub(crate) fn bind(engine: &Engine, addr: SocketAddr) -> io::Result<AnyDatagram> {
        Ok(match engine.socket_engine(false)? {
            #[cfg(target_os = "linux")]
            SocketEngine::Epoll(reactor) => AnyDatagram::Epoll(epoll::Datagram::bind(&reactor, addr)?),
            #[cfg(target_os = "linux")]
            SocketEngine::Uring(_) => unreachable!("datagrams are never asked for the ring"),
            SocketEngine::Libuv => AnyDatagram::Libuv(libuv::Datagram::bind(&engine.lp, addr, &engine.lingering)?),
        })
    }

    /// Takes over a bound socket (made non-blocking) on `engine`.
    pub(crate) fn from_std(engine: &Engine, sock: std::net::UdpSocket) -> io::Result<AnyDatagram> {
        Ok(match engine.socket_engine(false)? {
            #[cfg(target_os = "linux")]
            SocketEngine::Epoll(reactor) => AnyDatagram::Epoll(epoll::Datagram::new(&reactor, sock)?),
            #[cfg(target_os = "linux")]
            SocketEngine::Uring(_) => unreachable!("datagrams are never asked for the ring"),
            SocketEngine::Libuv => AnyDatagram::Libuv(libuv::Datagram::from_std(&engine.lp, sock, &engine.lingering)?),
        })
    }

    /// A libuv socket of a runtime that is gone would wait forever: it fails instead (the epoll engine checks
    /// for itself).
    fn check_runtime(&self) -> io::Result<()> {
        match self {
            AnyDatagram::Libuv(d) if d.runtime_gone() => Err(crate::error::runtime_gone()),
            _ => Ok(()),
        }
    }

    /// Hands the socket over (blocking): first waits until queued sends reached the kernel, then gives back the
    /// datagrams received but not read yet, oldest first, with their senders (libuv: up to its queue; epoll:
    /// none).
    pub(crate) async fn into_socket(self) -> io::Result<(Socket, libuv::udp::Unread)> {
        match &self {
            AnyDatagram::Libuv(d) => {
                let d = d.clone();
                poll_fn(|cx| d.poll_sends_done(cx)).await;
                drop(self); // nothing queued: it does not linger
                libuv::Datagram::into_socket(d)
            }
            #[cfg(target_os = "linux")]
            AnyDatagram::Epoll(d) => {
                let copy = Socket::from(d.socket().try_clone()?);
                copy.set_nonblocking(false)?;
                Ok((copy, Vec::new())) // dropping `self` closes the original
            }
        }
    }

    /// Connects to `addr` (a connected socket gets the new peer).
    pub(crate) fn connect(&self, addr: SocketAddr) -> io::Result<()> {
        match self {
            AnyDatagram::Libuv(d) => d.connect(addr),
            #[cfg(target_os = "linux")]
            AnyDatagram::Epoll(d) => d.connect(addr),
        }
    }

    /// Sends one datagram (to `target`, or to the peer when `None`) and waits until the kernel has it.
    pub(crate) async fn send_to(&self, buf: &[u8], target: Option<SocketAddr>) -> io::Result<usize> {
        self.check_runtime()?;
        match self {
            AnyDatagram::Libuv(d) => d.send(buf, target).await,
            #[cfg(target_os = "linux")]
            AnyDatagram::Epoll(d) => poll_fn(|cx| d.poll_send_to(cx, buf, target)).await,
        }
    }

    /// Sends one datagram: `Ready(Ok(len))` once the kernel took it or it was queued (the error of a queued
    /// one comes out of the next send).
    pub(crate) fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        target: Option<SocketAddr>,
    ) -> Poll<io::Result<usize>> {
        self.check_runtime()?;
        match self {
            AnyDatagram::Libuv(d) => d.poll_send(cx, buf, target, false).map_ok(|_| buf.len()),
            #[cfg(target_os = "linux")]
            AnyDatagram::Epoll(d) => d.poll_send_to(cx, buf, target),
        }
    }

    /// Sends one datagram now, or `WouldBlock`.
    pub(crate) fn try_send_to(&self, buf: &[u8], target: Option<SocketAddr>) -> io::Result<usize> {
        match self {
            AnyDatagram::Libuv(d) => d.try_send_to(buf, target),
            #[cfg(target_os = "linux")]
            AnyDatagram::Epoll(d) => d.try_send_to(buf, target),
        }
    }

    /// Receives one datagram into `buf` (truncated to its length), with its sender. A dropped receive loses
    /// nothing.
    pub(crate) fn poll_recv_from(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<(usize, SocketAddr)>> {
        self.check_runtime()?;
        match self {
            AnyDatagram::Libuv(d) => d.poll_recv_from(Some(cx), buf),
            #[cfg(target_os = "linux")]
            AnyDatagram::Epoll(d) => d.poll_recv_from(cx, buf),
        }
    }

    /// Receives a datagram that has already arrived, or `WouldBlock`.
    pub(crate) fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        match self {
            AnyDatagram::Libuv(d) => d.try_recv_from(buf),
            #[cfg(target_os = "linux")]
            AnyDatagram::Epoll(d) => d.try_recv_from(buf),
        }
    }

    /// The local address.
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            AnyDatagram::Libuv(d) => Ok(d.udp().local_addr()?),
            #[cfg(target_os = "linux")]
            AnyDatagram::Epoll(d) => d.socket().local_addr(),
        }
    }

    /// The connected peer's address; `NotConnected` when not connected.
    pub(crate) fn peer_addr(&self) -> io::Result<SocketAddr> {
        match self {
            AnyDatagram::Libuv(d) => Ok(d.udp().peer_addr()?),
            #[cfg(target_os = "linux")]
            AnyDatagram::Epoll(d) => d.socket().peer_addr(),
        }
    }

    /// `SO_BROADCAST`.
    pub(crate) fn set_broadcast(&self, on: bool) -> io::Result<()> {
        match self {
            AnyDatagram::Libuv(d) => Ok(d.udp().set_broadcast(on)?),
            #[cfg(target_os = "linux")]
            AnyDatagram::Epoll(d) => d.socket().set_broadcast(on),
        }
    }

    /// The time-to-live of outgoing unicast datagrams (1 through 255, checked by the caller).
    pub(crate) fn set_ttl(&self, ttl: u8) -> io::Result<()> {
        match self {
            AnyDatagram::Libuv(d) => Ok(d.udp().set_ttl(ttl)?),
            #[cfg(target_os = "linux")]
            AnyDatagram::Epoll(d) => d.socket().set_ttl(ttl.into()),
        }
    }

    /// The time-to-live of outgoing IPv4 multicast datagrams.
    pub(crate) fn set_multicast_ttl_v4(&self, ttl: u8) -> io::Result<()> {
        match self {
            AnyDatagram::Libuv(d) => Ok(d.udp().set_multicast_ttl(ttl)?),
            #[cfg(target_os = "linux")]
            AnyDatagram::Epoll(d) => d.socket().set_multicast_ttl_v4(ttl.into()),
        }
    }

    /// Whether multicast datagrams loop back to local sockets (`v6`: the IPv6 option, else the IPv4 one).
    pub(crate) fn set_multicast_loop(&self, on: bool, v6: bool) -> io::Result<()> {
        match self {
            // libuv picks the option by the socket's family.
            AnyDatagram::Libuv(d) => {
                let _ = v6;
                Ok(d.udp().set_multicast_loop(on)?)
            }
            #[cfg(target_os = "linux")]
            AnyDatagram::Epoll(d) if v6 => d.socket().set_multicast_loop_v6(on),
            #[cfg(target_os = "linux")]
            AnyDatagram::Epoll(d) => d.socket().set_multicast_loop_v4(on),
        }
    }

    /// Joins or leaves a multicast group; `interface` as libuv takes it (an IPv4 address, or an IPv6 address
    /// with a scope naming the interface, or `None`: the system's choice).
    pub(crate) fn set_membership(&self, group: IpAddr, interface: Option<&str>, m: Membership) -> io::Result<()> {
        match self {
            AnyDatagram::Libuv(d) => Ok(d.udp().set_membership(group, interface, m)?),
            #[cfg(target_os = "linux")]
            AnyDatagram::Epoll(d) => d.set_membership(group, interface, m),
        }
    }
}

impl Drop for AnyDatagram {
    /// A libuv socket with sends still queued lingers until they reach the kernel; the epoll engine queues
    /// nothing (its socket leaves the epoll set and closes).
    fn drop(&mut self) {
        match self {
            AnyDatagram::Libuv(d) => d.linger_while_sending(),
            #[cfg(target_os = "linux")]
            AnyDatagram::Epoll(_) => {}
        }
    }
}
