//! Address resolution: [`lookup_host`] and the [`ToSocketAddrs`] argument of `connect`/`bind`.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::reply::{reply, Reply};

use crate::uv::{self, AddrInfoHints, SockType};

/// Resolves `host` — `"name:port"`, `"[v6]:port"` or a literal address — to socket addresses, on libuv's
/// thread pool (`uv_getaddrinfo`). Must be awaited inside a uvio runtime.
///
/// ```
/// uvio::block_on(async {
///     let addrs: Vec<_> = uvio::net::lookup_host("localhost:80").await.unwrap().collect();
///     assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 80));
/// });
/// ```
pub async fn lookup_host(host: impl ToSocketAddrs) -> io::Result<impl Iterator<Item = SocketAddr>> {
    Ok(host.to_socket_addrs().await?.into_iter())
}

/// Something that names one or more socket addresses: a `SocketAddr`, `(IpAddr, u16)`, `(&str, u16)`, or a
/// `"host:port"` string (resolved asynchronously when it is not a literal address). Sealed.
pub trait ToSocketAddrs: sealed::Sealed {}

pub(crate) mod sealed {
    use super::*;

    /// The resolution itself, hidden from users.
    pub trait Sealed {
        /// The addresses, in the resolver's order.
        fn to_socket_addrs(&self) -> Resolve;
    }
}

/// The future of a resolution: ready at once for literal addresses.
pub struct Resolve {
    state: ResolveState,
}

enum ResolveState {
    Ready(Option<io::Result<Vec<SocketAddr>>>),
    Pending(Reply<crate::Result<Vec<uv::AddrInfo>>>),
}

impl Resolve {
    fn ready(r: io::Result<Vec<SocketAddr>>) -> Resolve {
        Resolve { state: ResolveState::Ready(Some(r)) }
    }

    fn lookup(host: &str, port: u16) -> Resolve {
        let ex = crate::runtime::current();
        let (replier, reply) = reply();
        let hints = AddrInfoHints { socktype: Some(SockType::Stream), ..Default::default() };
        let port_str = port.to_string();
        match uv::getaddrinfo(&ex.lp, Some(host), Some(&port_str), hints, move |res| replier.send(res)) {
            Ok(()) => Resolve { state: ResolveState::Pending(reply) },
            Err(e) => Resolve::ready(Err(e.into())),
        }
    }
}

impl std::fmt::Debug for Resolve {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolve").finish_non_exhaustive()
    }
}

impl Future for Resolve {
    type Output = io::Result<Vec<SocketAddr>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.state {
            ResolveState::Ready(r) => Poll::Ready(r.take().expect("Resolve polled after completion")),
            ResolveState::Pending(reply) => Pin::new(reply).poll(cx).map(|r| {
                let found = r.unwrap_or(Err(crate::Error::ECANCELED))?;
                Ok(found.into_iter().map(|ai| ai.addr).collect())
            }),
        }
    }
}

fn split_host_port(s: &str) -> io::Result<(&str, u16)> {
    let invalid = || io::Error::new(io::ErrorKind::InvalidInput, format!("invalid socket address: {s:?}"));
    let (host, port) = s.rsplit_once(':').ok_or_else(invalid)?;
    let port = port.parse().map_err(|_| invalid())?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    Ok((host, port))
}

fn resolve_str(host: &str, port: u16) -> Resolve {
    match host.parse::<IpAddr>() {
        Ok(ip) => Resolve::ready(Ok(vec![SocketAddr::new(ip, port)])),
        Err(_) => Resolve::lookup(host, port),
    }
}

impl ToSocketAddrs for SocketAddr {}
impl sealed::Sealed for SocketAddr {
    fn to_socket_addrs(&self) -> Resolve {
        Resolve::ready(Ok(vec![*self]))
    }
}

impl ToSocketAddrs for (IpAddr, u16) {}
impl sealed::Sealed for (IpAddr, u16) {
    fn to_socket_addrs(&self) -> Resolve {
        Resolve::ready(Ok(vec![SocketAddr::new(self.0, self.1)]))
    }
}

impl ToSocketAddrs for (&str, u16) {}
impl sealed::Sealed for (&str, u16) {
    fn to_socket_addrs(&self) -> Resolve {
        resolve_str(self.0, self.1)
    }
}

impl ToSocketAddrs for str {}
impl sealed::Sealed for str {
    fn to_socket_addrs(&self) -> Resolve {
        if let Ok(addr) = self.parse::<SocketAddr>() {
            return Resolve::ready(Ok(vec![addr]));
        }
        match split_host_port(self) {
            Ok((host, port)) => resolve_str(host, port),
            Err(e) => Resolve::ready(Err(e)),
        }
    }
}

impl ToSocketAddrs for String {}
impl sealed::Sealed for String {
    fn to_socket_addrs(&self) -> Resolve {
        self.as_str().to_socket_addrs()
    }
}

impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {}
impl<T: sealed::Sealed + ?Sized> sealed::Sealed for &T {
    fn to_socket_addrs(&self) -> Resolve {
        (**self).to_socket_addrs()
    }
}
