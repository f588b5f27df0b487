//! [`Tcp`]: TCP sockets, listening and connected (`uv_tcp_t`).

use std::ffi::{c_int, c_uint};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use libuv_sys2 as sys;

use super::addr::{read_sockaddr, sockaddr_ptr, to_sockaddr};
use super::handle::{impl_handle, Owned};
use super::loop_::{Loop, LoopInner};
use super::stream::{self, impl_stream, StreamKind, StreamState};
use crate::error::{Error, Result};

/// A TCP socket (`uv_tcp_t`): a listener after [`bind`](Tcp::bind) + [`listen`](Tcp::listen), a connection
/// after [`connect`](Tcp::connect) or [`accept`](Tcp::accept).
///
/// Dropping it closes the socket at once: queued writes complete with `ECANCELED`. For a graceful close call
/// [`shutdown`](Tcp::shutdown) and drop the handle in its callback; [`close_reset`](Tcp::close_reset) sends an
/// RST instead of a FIN.
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// use uvio::uv::{Loop, RunMode, Tcp};
///
/// let lp = Loop::new()?;
/// let server = Tcp::new(&lp)?;
/// server.bind("127.0.0.1:0".parse().unwrap())?;
/// let addr = server.local_addr()?;
/// let got = Rc::new(RefCell::new(Vec::new()));
/// let (got2, accepted) = (got.clone(), Rc::new(RefCell::new(None)));
/// server.listen(128, move |srv, _| {
///     let conn = srv.accept().unwrap();
///     let got = got2.clone();
///     conn.read_start(move |_, data| {
///         if let Ok(bytes) = data { got.borrow_mut().extend_from_slice(bytes) }
///     }).unwrap();
///     *accepted.borrow_mut() = Some(conn); // keep it open
/// })?;
/// let client = Tcp::new(&lp)?;
/// client.connect(addr, |c, res| {
///     res.unwrap();
///     // Graceful end: shut down once the write is done.
///     c.write(b"hello".to_vec(), |c, _| c.shutdown(|_, _| {}).unwrap()).unwrap();
/// })?;
/// while got.borrow().len() < 5 {
///     lp.run(RunMode::Once)?;
/// }
/// assert_eq!(&got.borrow()[..], b"hello");
/// # Ok::<(), uvio::Error>(())
/// ```
pub struct Tcp {
    h: Owned<sys::uv_tcp_t, StreamState<Tcp>>,
}

impl_handle!(Tcp);
impl_stream!(Tcp);

impl StreamKind for Tcp {
    type Raw = sys::uv_tcp_t;
    fn owned(&self) -> &Owned<sys::uv_tcp_t, StreamState<Tcp>> {
        &self.h
    }
    fn wrap(h: Owned<sys::uv_tcp_t, StreamState<Tcp>>) -> Tcp {
        Tcp { h }
    }
    fn new_peer(server: &Tcp) -> Result<Tcp> {
        Tcp::new_in(server.h.loop_inner())
    }
}

/// Options for [`Tcp::bind_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpBindFlags {
    /// IPv6 only: do not accept IPv4-mapped connections on an IPv6 address (`UV_TCP_IPV6ONLY`).
    pub ipv6_only: bool,
    /// Let several sockets bind the same address and port, the kernel spreading connections
    /// (`UV_TCP_REUSEPORT`; Linux and some BSDs, `ENOTSUP` elsewhere).
    pub reuse_port: bool,
}

impl Tcp {
    /// A new TCP handle; the socket is created lazily by bind or connect (`uv_tcp_init`).
    pub fn new(lp: &Loop) -> Result<Tcp> {
        // SAFETY: `raw` points to zeroed memory in the box Owned keeps alive.
        let h = Owned::new(lp, StreamState::default(), |l, raw| unsafe { sys::uv_tcp_init(l, raw) })?;
        Ok(Tcp { h })
    }

    /// A new TCP handle on the loop another handle belongs to (accepting connections, IPC).
    pub(crate) fn new_in(lp: &Rc<LoopInner>) -> Result<Tcp> {
        // SAFETY: `raw` points to zeroed memory in the box Owned keeps alive.
        let h = Owned::new_in(lp, StreamState::default(), |l, raw| unsafe { sys::uv_tcp_init(l, raw) })?;
        Ok(Tcp { h })
    }

    /// The stream pointer, for IPC (`write2`).
    pub(crate) fn as_stream_ptr(&self) -> *mut sys::uv_stream_t {
        self.h.stream()
    }

    /// A new TCP handle whose socket is created now, for the address family of `ipv6` (`uv_tcp_init_ex`), so
    /// that options can be set before bind.
    pub fn new_for(lp: &Loop, ipv6: bool) -> Result<Tcp> {
        #[allow(clippy::unnecessary_cast)] // the AF_* constants' integer type differs between OS bindings
        let family = if ipv6 { sys::AF_INET6 } else { sys::AF_INET } as c_uint;
        // SAFETY: as in `new`.
        let h = Owned::new(lp, StreamState::default(), |l, raw| unsafe { sys::uv_tcp_init_ex(l, raw, family) })?;
        Ok(Tcp { h })
    }

    /// Takes over a connected std socket (`uv_tcp_open`); it is switched to non-blocking mode.
    pub fn open_stream(lp: &Loop, socket: std::net::TcpStream) -> Result<Tcp> {
        Tcp::open_owned(lp, socket.into())
    }

    /// Takes over a listening std socket (`uv_tcp_open`); call [`listen`](Tcp::listen) to start accepting.
    pub fn open_listener(lp: &Loop, socket: std::net::TcpListener) -> Result<Tcp> {
        Tcp::open_owned(lp, socket.into())
    }

    fn open_owned(lp: &Loop, socket: socket2::Socket) -> Result<Tcp> {
        let tcp = Tcp::new(lp)?;
        #[cfg(unix)]
        let raw = std::os::fd::IntoRawFd::into_raw_fd(socket);
        #[cfg(windows)]
        let raw = std::os::windows::io::IntoRawSocket::into_raw_socket(socket) as sys::uv_os_sock_t;
        // SAFETY: the handle is fresh and open; we own `raw` and give it to libuv, which closes it with the
        // handle. On failure libuv did not take it, so close it ourselves.
        let ret = unsafe { sys::uv_tcp_open(tcp.h.raw(), raw) };
        if ret < 0 {
            // SAFETY: `raw` is still ours (uv_tcp_open failed) and nothing else refers to it.
            #[cfg(unix)]
            drop(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) });
            // SAFETY: as above.
            #[cfg(windows)]
            drop(unsafe {
                <std::os::windows::io::OwnedSocket as std::os::windows::io::FromRawSocket>::from_raw_socket(raw as _)
            });
            return Err(Error::from_code(ret));
        }
        Ok(tcp)
    }

    /// Binds to `addr` (`uv_tcp_bind`). Port 0 picks an ephemeral port: read it with
    /// [`local_addr`](Tcp::local_addr). Some errors (`EADDRINUSE`) surface only at listen or connect.
    pub fn bind(&self, addr: SocketAddr) -> Result<()> {
        self.bind_with(addr, TcpBindFlags::default())
    }

    /// [`bind`](Tcp::bind) with flags.
    pub fn bind_with(&self, addr: SocketAddr, flags: TcpBindFlags) -> Result<()> {
        self.h.check_open()?;
        // C enum constants are `c_int` in Windows bindings, `c_uint` elsewhere; libuv takes `unsigned int`.
        let mut f: c_uint = 0;
        if flags.ipv6_only {
            f |= sys::uv_tcp_flags_UV_TCP_IPV6ONLY as c_uint;
        }
        if flags.reuse_port {
            f |= sys::uv_tcp_flags_UV_TCP_REUSEPORT as c_uint;
        }
        let sa = to_sockaddr(&addr);
        // SAFETY: an open handle; `sa` outlives the call (libuv copies the address).
        Error::check(unsafe { sys::uv_tcp_bind(self.h.raw(), sockaddr_ptr(&sa), f) }).map(drop)
    }

    /// Connects to `addr` (`uv_tcp_connect`); `cb` gets the handle and the outcome (`ECONNREFUSED`,
    /// `ETIMEDOUT`, or `ECANCELED` if the handle was dropped first).
    pub fn connect(&self, addr: SocketAddr, cb: impl FnOnce(&Tcp, Result<()>) + 'static) -> Result<()> {
        connect_impl(self, addr, cb)
    }

    /// The local address (`uv_tcp_getsockname`). Before `bind` or `connect`: the wildcard address with port 0
    /// on Unix, `EINVAL` on Windows (its getsockname refuses unbound sockets).
    pub fn local_addr(&self) -> Result<SocketAddr> {
        // SAFETY: the handle is initialised; the getter writes at most `len` bytes.
        read_sockaddr(|sa, len| unsafe { sys::uv_tcp_getsockname(self.h.raw(), sa, len) })
    }

    /// The peer's address (`uv_tcp_getpeername`); `ENOTCONN` before connecting.
    pub fn peer_addr(&self) -> Result<SocketAddr> {
        // SAFETY: as in `local_addr`.
        read_sockaddr(|sa, len| unsafe { sys::uv_tcp_getpeername(self.h.raw(), sa, len) })
    }

    /// Disables (`true`) or enables Nagle's algorithm (`uv_tcp_nodelay`).
    pub fn set_nodelay(&self, enable: bool) -> Result<()> {
        self.h.check_open()?;
        // SAFETY: an open handle.
        Error::check(unsafe { sys::uv_tcp_nodelay(self.h.raw(), enable as c_int) }).map(drop)
    }

    /// Enables TCP keep-alive with the given idle delay, or disables it with `None` (`uv_tcp_keepalive`).
    /// Seconds are the resolution.
    pub fn set_keepalive(&self, delay: Option<Duration>) -> Result<()> {
        self.h.check_open()?;
        let secs = delay.map_or(0, |d| d.as_secs().clamp(1, u32::MAX as u64) as u32);
        // SAFETY: an open handle.
        Error::check(unsafe { sys::uv_tcp_keepalive(self.h.raw(), delay.is_some() as c_int, secs) }).map(drop)
    }

    /// Keep-alive with idle time, probe interval and probe count (`uv_tcp_keepalive_ex`), in seconds.
    pub fn set_keepalive_ex(&self, idle: u32, interval: u32, count: u32) -> Result<()> {
        self.h.check_open()?;
        // SAFETY: an open handle.
        Error::check(unsafe { sys::uv_tcp_keepalive_ex(self.h.raw(), 1, idle, interval, count) }).map(drop)
    }

    /// Windows: whether to queue several accepts at once (`uv_tcp_simultaneous_accepts`); no effect elsewhere.
    /// A setting of listeners: on Windows `EINVAL` on a connection, and `ENOTSUP` to enable it again once
    /// disabled.
    pub fn set_simultaneous_accepts(&self, enable: bool) -> Result<()> {
        self.h.check_open()?;
        // SAFETY: an open handle.
        Error::check(unsafe { sys::uv_tcp_simultaneous_accepts(self.h.raw(), enable as c_int) }).map(drop)
    }

    /// Hands the socket over to its caller: libuv's descriptor is duplicated, then the handle is closed. That
    /// closes libuv's copy only; the socket lives on in the duplicate, which is returned in blocking mode (as
    /// std makes sockets). Queued writes are cancelled, as when the handle is dropped. libuv does not accept
    /// ahead on a listener it no longer watches, but one connection it already accepted for a listen callback
    /// is closed with the handle: [`accept`](Tcp::accept) it first. `EBADF` if the handle has no socket yet.
    pub fn into_socket(self) -> std::io::Result<socket2::Socket> {
        let copy = self.h.dup_socket()?;
        drop(self);
        Ok(copy)
    }

    /// Closes the connection with an RST instead of a FIN (`uv_tcp_close_reset`): the peer sees
    /// `ECONNRESET`. Queued writes are cancelled. `EINVAL` if a shutdown is already pending (the handle is
    /// then closed normally).
    pub fn close_reset(self) -> Result<()> {
        self.h.check_open()?;
        // SAFETY: an open handle; `close` hands the matching close callback that frees the box.
        self.h.close_with(|raw, close_cb| unsafe { sys::uv_tcp_close_reset(raw, close_cb) })
    }
}

fn connect_impl(tcp: &Tcp, addr: SocketAddr, cb: impl FnOnce(&Tcp, Result<()>) + 'static) -> Result<()> {
    fn go<F: FnOnce(&Tcp, Result<()>) + 'static>(tcp: &Tcp, addr: SocketAddr, cb: F) -> Result<()> {
        let sa = to_sockaddr(&addr);
        stream::connect(tcp, sa, cb, |req, sa| {
            // SAFETY: a fresh request, an open handle, the address kept in the request box; the callback
            // matches the box type made by stream::connect.
            unsafe {
                sys::uv_tcp_connect(
                    req,
                    tcp.h.raw(),
                    sockaddr_ptr(sa),
                    Some(stream::on_connect::<Tcp, F, socket2::SockAddr>),
                )
            }
        })
    }
    go(tcp, addr, cb)
}
