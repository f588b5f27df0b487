//! [`Udp`]: UDP sockets (`uv_udp_t`), and the small flag types their calls take.
//!
//! Memory rules, as everywhere in `uv`:
//! - A send owns its buffer (and the destination `sockaddr`) in its request until libuv's send callback, which
//!   hands the buffer back, so it can be reused without allocating.
//! - Received bytes live in one receive buffer per handle (64 KiB, or a batch of 64 KiB slots with recvmmsg),
//!   allocated on the first `recv_start` and freed with the handle. The receive callback borrows a slice of it
//!   for the duration of the call only; nothing is allocated per datagram.

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_uint, CString};
use std::net::{IpAddr, SocketAddr};
use std::ptr;

use libuv_sys2 as sys;
use socket2::SockAddr;

use super::addr::{from_sockaddr, read_sockaddr, sockaddr_ptr, to_sockaddr};
use super::dns::IpFamily;
use super::handle::{guard, impl_handle, Callback, Owned};
use super::loop_::Loop;
use super::req::{complete, submit, ReqBox};
use crate::error::{Error, Result};

/// How [`Udp::bind`] binds (`uv_udp_flags`). `Default` sets none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UdpBindFlags {
    /// Disables dual-stack mode: an IPv6 socket then accepts IPv6 traffic only (`UV_UDP_IPV6ONLY`).
    pub ipv6_only: bool,
    /// Sets `SO_REUSEADDR` (`SO_REUSEPORT` on the BSDs and macOS): several sockets may bind the same address, and
    /// the last one to bind receives the traffic (`UV_UDP_REUSEADDR`).
    pub reuse_addr: bool,
    /// Sets load-balancing `SO_REUSEPORT`: datagrams are spread over the sockets bound to the address. Linux 3.9+,
    /// FreeBSD 12+, DragonFlyBSD and a few others; `ENOTSUP` elsewhere, including macOS and Windows
    /// (`UV_UDP_REUSEPORT`).
    pub reuse_port: bool,
    /// Sets `IP_RECVERR`/`IPV6_RECVERR` on Linux, so ICMP errors reach the receive callback; a no-op elsewhere
    /// (`UV_UDP_LINUX_RECVERR`).
    pub linux_recverr: bool,
}

impl UdpBindFlags {
    fn bits(self) -> c_uint {
        let flag = |on: bool, bit| if on { bit as c_uint } else { 0 };
        flag(self.ipv6_only, sys::uv_udp_flags_UV_UDP_IPV6ONLY)
            | flag(self.reuse_addr, sys::uv_udp_flags_UV_UDP_REUSEADDR)
            | flag(self.reuse_port, sys::uv_udp_flags_UV_UDP_REUSEPORT)
            | flag(self.linux_recverr, sys::uv_udp_flags_UV_UDP_LINUX_RECVERR)
    }
}

/// Options for [`Udp::new_ex`] (`uv_udp_init_ex`). `Default` is what [`Udp::new`] does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UdpInitOptions {
    /// Create the socket now, for this family, so socket options can be set before binding (the domain
    /// argument; `None`: created lazily, `AF_UNSPEC`).
    pub family: Option<IpFamily>,
    /// Receive with `recvmmsg(2)` where the platform has it (Linux, FreeBSD, macOS), several datagrams per system
    /// call; see [`Udp::using_recvmmsg`]. The handle's receive buffer then holds a batch of 16 datagrams of up
    /// to 64 KiB: 1 MiB instead of 64 KiB (`UV_UDP_RECVMMSG`).
    pub recvmmsg: bool,
}

/// What libuv says about a received datagram (the flags of `uv_udp_recv_cb`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecvFlags {
    /// The datagram was larger than the receive buffer (64 KiB) and was truncated; the OS discarded the rest
    /// (`UV_UDP_PARTIAL`).
    pub partial: bool,
}

/// Join or leave a multicast group ([`Udp::set_membership`], `uv_membership`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    /// Join the group (`UV_JOIN_GROUP`).
    Join,
    /// Leave the group (`UV_LEAVE_GROUP`).
    Leave,
}

impl Membership {
    fn raw(self) -> sys::uv_membership {
        match self {
            Membership::Join => sys::uv_membership_UV_JOIN_GROUP,
            Membership::Leave => sys::uv_membership_UV_LEAVE_GROUP,
        }
    }
}

/// The largest UDP datagram, and the size of one receive slot: libuv's `UV__UDP_DGRAM_MAXSIZE`.
const DGRAM_MAX: usize = 64 * 1024;
/// Receive slots per `recvmmsg` call when [`UdpInitOptions::recvmmsg`] is in use (libuv takes up to 20).
const MMSG_SLOTS: usize = 16;

type RecvCb = dyn FnMut(&Udp, Result<Option<(&[u8], SocketAddr, RecvFlags)>>);

/// The Rust state beside a `uv_udp_t`.
#[derive(Default)]
struct UdpState {
    on_recv: Callback<RecvCb>,
    /// Set by `recv_start`, cleared by `recv_stop`: tells the receive trampoline to drop a stopped callback.
    reading: Cell<bool>,
    recv_buf: RecvBuffer,
}

/// The handle's one receive buffer: allocated on the first `recv_start`, lent to libuv by the alloc callback,
/// lent to the receive callback for its duration, and freed with the handle (after libuv's close callback).
///
/// A raw pointer rather than a `Box`, because libuv and the kernel write through the pointer we hand out while
/// the handle's state is shared; no Rust reference to the bytes exists except the slice lent to the callback.
struct RecvBuffer {
    ptr: Cell<*mut u8>,
    len: Cell<usize>,
}

impl Default for RecvBuffer {
    fn default() -> Self {
        RecvBuffer { ptr: Cell::new(ptr::null_mut()), len: Cell::new(0) }
    }
}

impl RecvBuffer {
    /// Allocates the buffer once; later calls keep the existing one (its size is fixed at `init` time).
    fn ensure(&self, len: usize) {
        if self.ptr.get().is_null() {
            let boxed: Box<[u8]> = vec![0u8; len].into_boxed_slice();
            self.len.set(boxed.len());
            self.ptr.set(Box::into_raw(boxed).cast::<u8>());
        }
    }
}

impl Drop for RecvBuffer {
    fn drop(&mut self) {
        let ptr = self.ptr.get();
        if !ptr.is_null() {
            // SAFETY: `ptr` came from Box::into_raw of a boxed slice of `len` bytes in `ensure`. The state is
            // dropped in the close callback, after which libuv never touches the buffer.
            drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(ptr, self.len.get())) });
        }
    }
}

/// A UDP socket (`uv_udp_t`).
///
/// The socket is created lazily by [`bind`](Udp::bind), [`connect`](Udp::connect), the first send or
/// [`recv_start`](Udp::recv_start) (which bind to `0.0.0.0:0` if nothing else did), unless
/// [`new_ex`](Udp::new_ex) names a family. Dropping the handle closes it: sends still queued complete with
/// `ECANCELED` (their callbacks run and get their buffers back), and the receive callback is dropped. A receive
/// callback may stop or drop its own handle.
///
/// ```
/// use uvio::uv::{Loop, RunMode, Udp, UdpBindFlags};
///
/// let lp = Loop::new()?;
/// let server = Udp::new(&lp)?;
/// server.bind("127.0.0.1:0".parse().unwrap(), UdpBindFlags::default())?;
/// let server_addr = server.local_addr()?;
/// server.recv_start(|udp, res| {
///     if let Ok(Some((data, from, _flags))) = res {
///         println!("{} bytes from {from}", data.len());
///         assert_eq!(data, b"ping");
///         udp.recv_stop().unwrap();
///     }
/// })?;
///
/// let client = Udp::new(&lp)?;
/// client.send(b"ping", Some(server_addr), |res, _buf| res.unwrap())?;
/// lp.run(RunMode::Default)?;
/// drop((server, client));
/// lp.close().map_err(|e| e.error())?;
/// # Ok::<(), uvio::Error>(())
/// ```
pub struct Udp {
    h: Owned<sys::uv_udp_t, UdpState>,
}

impl_handle!(Udp);

impl Udp {
    /// Runs `f` on the handle's socket (`uv_fileno`), borrowed for the call.
    pub(crate) fn with_socket<T>(
        &self,
        f: impl FnOnce(socket2::SockRef<'_>) -> std::io::Result<T>,
    ) -> std::io::Result<T> {
        self.h.with_socket(f)
    }
}

/// A C string for an address given as text; a NUL byte inside is `EINVAL`.
fn cstring(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::EINVAL)
}

/// The pointer of an optional C string, NULL for `None`.
fn opt_ptr(s: &Option<CString>) -> *const c_char {
    s.as_ref().map_or(ptr::null(), |s| s.as_ptr())
}

/// A `uv_buf_t` over bytes libuv will only read; `EINVAL` beyond libuv's `unsigned int` length.
fn read_buf(bytes: &[u8]) -> Result<sys::uv_buf_t> {
    let len = c_uint::try_from(bytes.len()).map_err(|_| Error::EINVAL)?;
    // SAFETY: uv_buf_init only packs the pointer and length; libuv's send functions never write through it.
    Ok(unsafe { sys::uv_buf_init(bytes.as_ptr().cast_mut().cast::<c_char>(), len) })
}

impl Udp {
    /// Creates a UDP handle; its socket is created when first needed (`uv_udp_init`).
    pub fn new(lp: &Loop) -> Result<Udp> {
        // SAFETY: `raw` points to zeroed memory inside the box that Owned::new keeps alive.
        let h = Owned::new(lp, UdpState::default(), |l, raw| unsafe { sys::uv_udp_init(l, raw) })?;
        Ok(Udp { h })
    }

    /// Creates a UDP handle with options (`uv_udp_init_ex`): a socket created now for a family, and/or batched
    /// receives; see [`UdpInitOptions`].
    pub fn new_ex(lp: &Loop, options: UdpInitOptions) -> Result<Udp> {
        let domain = options.family.map_or(sys::AF_UNSPEC as c_uint, |f| f.raw() as c_uint);
        let mmsg = if options.recvmmsg { sys::uv_udp_flags_UV_UDP_RECVMMSG as c_uint } else { 0 };
        let flags = domain | mmsg;
        // SAFETY: as in `new`; on failure uv_udp_init_ex has not registered the handle.
        let h = Owned::new(lp, UdpState::default(), |l, raw| unsafe { sys::uv_udp_init_ex(l, raw, flags) })?;
        Ok(Udp { h })
    }

    /// Wraps an existing socket, taking ownership of it: the handle closes it when dropped (`uv_udp_open_ex`,
    /// with no flags: unlike `uv_udp_open`, `SO_REUSEADDR` is not forced on). libuv makes it non-blocking. If
    /// opening fails, the socket is closed and the error returned.
    pub fn open(lp: &Loop, socket: std::net::UdpSocket) -> Result<Udp> {
        let udp = Udp::new(lp)?;
        let sock = into_raw_sock(socket);
        // SAFETY: the handle is initialised; `sock` is a valid datagram socket we own and hand over.
        let ret = unsafe { sys::uv_udp_open_ex(udp.h.raw(), sock, 0) };
        if ret < 0 {
            // SAFETY: with no flags, uv_udp_open_ex fails before storing the socket, so it is still ours alone.
            drop(unsafe { from_raw_sock(sock) });
            return Err(Error::from_code(ret));
        }
        Ok(udp)
    }

    /// Binds the socket to `addr`; port 0 picks an ephemeral port, see [`Udp::local_addr`] (`uv_udp_bind`).
    /// Binding a bound socket fails (`EINVAL` on Unix; Windows ignores it).
    pub fn bind(&self, addr: SocketAddr, flags: UdpBindFlags) -> Result<()> {
        self.h.check_open()?;
        let sa = to_sockaddr(&addr);
        // SAFETY: the handle is initialised and open; `sa` outlives the call, which copies the address.
        Error::check(unsafe { sys::uv_udp_bind(self.h.raw(), sockaddr_ptr(&sa), flags.bits()) }).map(drop)
    }

    /// Associates the socket with a peer: sends then go there (pass `None` as their address) and only its
    /// datagrams are received (`uv_udp_connect`). `None` disconnects. Connecting a connected socket is
    /// `EISCONN`; disconnecting an unconnected one is `ENOTCONN`.
    pub fn connect(&self, addr: Option<SocketAddr>) -> Result<()> {
        self.h.check_open()?;
        let sa = addr.as_ref().map(to_sockaddr);
        let ptr = sa.as_ref().map_or(ptr::null(), sockaddr_ptr);
        // SAFETY: the handle is initialised and open; `ptr` is NULL or points to `sa`, alive for the call.
        Error::check(unsafe { sys::uv_udp_connect(self.h.raw(), ptr) }).map(drop)
    }

    /// Hands the socket over to its caller: libuv's descriptor is duplicated (in blocking mode), then the
    /// handle is closed, which closes libuv's copy only. Queued sends are cancelled, as when the handle is
    /// dropped. `EBADF` if the handle has no socket yet.
    pub fn into_socket(self) -> std::io::Result<socket2::Socket> {
        let copy = self.h.dup_socket()?;
        drop(self);
        Ok(copy)
    }

    /// The local address (`uv_udp_getsockname`). An error (`EBADF` or similar) before the socket exists.
    pub fn local_addr(&self) -> Result<SocketAddr> {
        // SAFETY: the handle is initialised; read_sockaddr passes storage and its length.
        read_sockaddr(|p, l| unsafe { sys::uv_udp_getsockname(self.h.raw(), p, l) })
    }

    /// The connected peer's address; `ENOTCONN` when not connected (`uv_udp_getpeername`).
    pub fn peer_addr(&self) -> Result<SocketAddr> {
        // SAFETY: as in `local_addr`.
        read_sockaddr(|p, l| unsafe { sys::uv_udp_getpeername(self.h.raw(), p, l) })
    }

    /// Sends one datagram (`uv_udp_send`). `addr` must be `None` on a connected socket (else `EISCONN`) and
    /// `Some` on an unconnected one (else `EDESTADDRREQ`); an unbound socket is bound to the wildcard address.
    ///
    /// The request owns `buf` until `cb` runs, and `cb` gets it back (to reuse it without allocating) with
    /// `Ok(())` once the datagram is handed to the kernel, or the error. If the handle is dropped first, `cb`
    /// runs with `ECANCELED` (or `Ok` when the datagram had already left) while the handle closes.
    pub fn send<B, F>(&self, buf: B, addr: Option<SocketAddr>, cb: F) -> Result<()>
    where
        B: AsRef<[u8]> + 'static,
        F: FnOnce(Result<()>, B) + 'static,
    {
        self.h.check_open()?;
        let state = SendReq { addr: addr.as_ref().map(to_sockaddr), parts: Some((buf, cb)) };
        submit(self.h.loop_inner(), state, |_, req: *mut ReqBox<sys::uv_udp_send_t, SendReq<B, F>>| {
            // SAFETY: `req` is the live box submit just made; its state stays in place, unmoved and unmodified,
            // until `on_send` takes the box back, so the buffer and address pointers below remain valid.
            let state = unsafe { &(*req).state };
            let bytes = state.parts.as_ref().map_or(&[][..], |(buf, _)| buf.as_ref());
            let uv_buf = match read_buf(bytes) {
                Ok(b) => b,
                Err(e) => return e.code(),
            };
            let addr = state.addr.as_ref().map_or(ptr::null(), sockaddr_ptr);
            // SAFETY: the handle is open; libuv copies the uv_buf_t array, reads the bytes and the address (kept
            // in the box) until it calls `on_send`, which matches this box type.
            unsafe { sys::uv_udp_send(&raw mut (*req).raw, self.h.raw(), &uv_buf, 1, addr, Some(on_send::<B, F>)) }
        })
    }

    /// Sends one datagram now if the kernel takes it without blocking (`uv_udp_try_send`): the bytes sent, or
    /// `EAGAIN` (also while [`send`](Udp::send) requests are queued). Address rules as in `send`.
    pub fn try_send(&self, buf: &[u8], addr: Option<SocketAddr>) -> Result<usize> {
        self.h.check_open()?;
        let uv_buf = read_buf(buf)?;
        let sa = addr.as_ref().map(to_sockaddr);
        let ptr = sa.as_ref().map_or(ptr::null(), sockaddr_ptr);
        // SAFETY: the handle is open; the buffer and address outlive this synchronous call.
        Error::check(unsafe { sys::uv_udp_try_send(self.h.raw(), &uv_buf, 1, ptr) }).map(|n| n as usize)
    }

    /// Sends several datagrams now, with one `sendmmsg(2)` where available (`uv_udp_try_send2`): returns how
    /// many went out (from the front of `datagrams`, at most 32 per call; loop for more), or the error if the
    /// first could not be sent (`EAGAIN` when the kernel would block). Address rules as in [`Udp::send`]; the
    /// socket must already be bound or connected. An empty slice is `EINVAL`.
    pub fn try_send_many(&self, datagrams: &[(&[u8], Option<SocketAddr>)]) -> Result<usize> {
        const BATCH: usize = 32;
        self.h.check_open()?;
        let batch = &datagrams[..datagrams.len().min(BATCH)];
        let mut bufs = [sys::uv_buf_t { base: ptr::null_mut(), len: 0 }; BATCH];
        let mut addrs: [Option<SockAddr>; BATCH] = [const { None }; BATCH];
        for (i, (bytes, addr)) in batch.iter().enumerate() {
            bufs[i] = read_buf(bytes)?;
            addrs[i] = addr.as_ref().map(to_sockaddr);
        }
        let mut buf_ptrs = [ptr::null_mut::<sys::uv_buf_t>(); BATCH];
        let mut addr_ptrs = [ptr::null_mut::<sys::sockaddr>(); BATCH];
        for i in 0..batch.len() {
            buf_ptrs[i] = &raw mut bufs[i];
            addr_ptrs[i] = addrs[i].as_ref().map_or(ptr::null_mut(), |a| sockaddr_ptr(a).cast_mut());
        }
        let mut counts = [1 as c_uint; BATCH];
        // SAFETY: the handle is open; every array has `batch.len()` valid entries that outlive this synchronous
        // call, and libuv only reads the buffers and addresses behind them.
        let ret = unsafe {
            sys::uv_udp_try_send2(
                self.h.raw(),
                batch.len() as c_uint,
                buf_ptrs.as_mut_ptr(),
                counts.as_mut_ptr(),
                addr_ptrs.as_mut_ptr(),
                0,
            )
        };
        Error::check(ret).map(|n| n as usize)
    }

    /// Starts receiving (`uv_udp_recv_start`); binds to `0.0.0.0:0` if the socket is not bound. `EALREADY` if
    /// already receiving.
    ///
    /// `cb` gets, for each datagram, `Ok(Some((bytes, sender, flags)))`: the bytes are lent for the call only
    /// (they live in the handle's one receive buffer); an empty datagram gives an empty slice. `Ok(None)` means
    /// libuv read until the socket was empty (once per wake-up; also for errors libuv ignores, such as a
    /// Windows ICMP port-unreachable), and `Err` is a receive error (`ECONNREFUSED` from an earlier send on a
    /// connected socket, for example; Windows stops receiving after one). The callback may stop, restart or
    /// drop its handle.
    pub fn recv_start(
        &self,
        cb: impl FnMut(&Udp, Result<Option<(&[u8], SocketAddr, RecvFlags)>>) + 'static,
    ) -> Result<()> {
        self.h.check_open()?;
        let state = self.h.state();
        state.recv_buf.ensure(if self.using_recvmmsg() { MMSG_SLOTS * DGRAM_MAX } else { DGRAM_MAX });
        // SAFETY: the handle is open; both trampolines match this handle's box type.
        Error::check(unsafe { sys::uv_udp_recv_start(self.h.raw(), Some(on_alloc), Some(on_recv)) })?;
        state.on_recv.set(Box::new(cb));
        state.reading.set(true);
        Ok(())
    }

    /// Stops receiving and drops the receive callback (after it returns, when called from inside it)
    /// (`uv_udp_recv_stop`). Stopping a stopped handle is fine.
    pub fn recv_stop(&self) -> Result<()> {
        // SAFETY: the handle is initialised; stopping is allowed on a closing or stopped handle.
        Error::check(unsafe { sys::uv_udp_recv_stop(self.h.raw()) })?;
        let state = self.h.state();
        state.reading.set(false);
        state.on_recv.clear();
        Ok(())
    }

    /// Whether receives use `recvmmsg(2)`: created with [`UdpInitOptions::recvmmsg`] on a platform that has it
    /// (`uv_udp_using_recvmmsg`).
    pub fn using_recvmmsg(&self) -> bool {
        // SAFETY: the handle is initialised; this reads flags.
        unsafe { sys::uv_udp_using_recvmmsg(self.h.raw()) != 0 }
    }

    /// Joins or leaves the multicast group `multicast` on the interface with address `interface` (the system
    /// picks one for `None`); for IPv6 the interface may carry a scope, like `"fe80::1%eth0"`
    /// (`uv_udp_set_membership`). Binds the socket (with `SO_REUSEADDR`) if it is not bound.
    pub fn set_membership(&self, multicast: IpAddr, interface: Option<&str>, membership: Membership) -> Result<()> {
        self.h.check_open()?;
        let group = cstring(&multicast.to_string())?;
        let iface = interface.map(cstring).transpose()?;
        // SAFETY: the handle is open; the strings are NUL-terminated and outlive the call.
        let ret =
            unsafe { sys::uv_udp_set_membership(self.h.raw(), group.as_ptr(), opt_ptr(&iface), membership.raw()) };
        Error::check(ret).map(drop)
    }

    /// Joins or leaves a source-specific multicast group: only `source`'s datagrams to `multicast`
    /// (`uv_udp_set_source_membership`). Interface as in [`Udp::set_membership`].
    pub fn set_source_membership(
        &self,
        multicast: IpAddr,
        interface: Option<&str>,
        source: IpAddr,
        membership: Membership,
    ) -> Result<()> {
        self.h.check_open()?;
        let group = cstring(&multicast.to_string())?;
        let source = cstring(&source.to_string())?;
        let iface = interface.map(cstring).transpose()?;
        // SAFETY: as in `set_membership`.
        let ret = unsafe {
            sys::uv_udp_set_source_membership(
                self.h.raw(),
                group.as_ptr(),
                opt_ptr(&iface),
                source.as_ptr(),
                membership.raw(),
            )
        };
        Error::check(ret).map(drop)
    }

    /// Whether multicast datagrams sent by this socket loop back to local sockets (`uv_udp_set_multicast_loop`).
    /// This and the other socket options need the socket to exist: bound, connected, or from
    /// [`new_ex`](Udp::new_ex) with a family (else an error such as `EBADF`).
    pub fn set_multicast_loop(&self, on: bool) -> Result<()> {
        self.h.check_open()?;
        // SAFETY: the handle is open; this sets a socket option.
        Error::check(unsafe { sys::uv_udp_set_multicast_loop(self.h.raw(), c_int::from(on)) }).map(drop)
    }

    /// The time-to-live of multicast datagrams; 0 keeps them on this host (`uv_udp_set_multicast_ttl`).
    pub fn set_multicast_ttl(&self, ttl: u8) -> Result<()> {
        self.h.check_open()?;
        // SAFETY: the handle is open; libuv validates the value.
        Error::check(unsafe { sys::uv_udp_set_multicast_ttl(self.h.raw(), c_int::from(ttl)) }).map(drop)
    }

    /// The interface (by address) multicast datagrams are sent from; `None` lets the system choose
    /// (`uv_udp_set_multicast_interface`).
    pub fn set_multicast_interface(&self, interface: Option<&str>) -> Result<()> {
        self.h.check_open()?;
        let iface = interface.map(cstring).transpose()?;
        // SAFETY: the handle is open; the string is NULL or NUL-terminated and outlives the call.
        Error::check(unsafe { sys::uv_udp_set_multicast_interface(self.h.raw(), opt_ptr(&iface)) }).map(drop)
    }

    /// Allows sending to broadcast addresses (`SO_BROADCAST`, `uv_udp_set_broadcast`).
    pub fn set_broadcast(&self, on: bool) -> Result<()> {
        self.h.check_open()?;
        // SAFETY: the handle is open; this sets a socket option.
        Error::check(unsafe { sys::uv_udp_set_broadcast(self.h.raw(), c_int::from(on)) }).map(drop)
    }

    /// The time-to-live of unicast datagrams, 1 through 255 (0 is `EINVAL`) (`uv_udp_set_ttl`).
    pub fn set_ttl(&self, ttl: u8) -> Result<()> {
        self.h.check_open()?;
        // SAFETY: the handle is open; libuv validates the value.
        Error::check(unsafe { sys::uv_udp_set_ttl(self.h.raw(), c_int::from(ttl)) }).map(drop)
    }

    /// Bytes waiting in the send queue (`uv_udp_get_send_queue_size`).
    pub fn send_queue_size(&self) -> usize {
        // SAFETY: the handle is initialised; this reads a field.
        unsafe { sys::uv_udp_get_send_queue_size(self.h.raw()) }
    }

    /// Send requests waiting in the send queue (`uv_udp_get_send_queue_count`).
    pub fn send_queue_count(&self) -> usize {
        // SAFETY: the handle is initialised; this reads a field.
        unsafe { sys::uv_udp_get_send_queue_count(self.h.raw()) }
    }
}

#[cfg(unix)]
fn into_raw_sock(socket: std::net::UdpSocket) -> sys::uv_os_sock_t {
    std::os::unix::io::IntoRawFd::into_raw_fd(socket)
}

/// # Safety
/// `sock` must be an open socket owned by nobody else.
#[cfg(unix)]
unsafe fn from_raw_sock(sock: sys::uv_os_sock_t) -> std::net::UdpSocket {
    // SAFETY: per the contract, we own `sock`.
    unsafe { std::os::unix::io::FromRawFd::from_raw_fd(sock) }
}

#[cfg(windows)]
fn into_raw_sock(socket: std::net::UdpSocket) -> sys::uv_os_sock_t {
    std::os::windows::io::IntoRawSocket::into_raw_socket(socket) as sys::uv_os_sock_t
}

/// # Safety
/// `sock` must be an open socket owned by nobody else.
#[cfg(windows)]
unsafe fn from_raw_sock(sock: sys::uv_os_sock_t) -> std::net::UdpSocket {
    // SAFETY: per the contract, we own `sock`.
    unsafe { std::os::windows::io::FromRawSocket::from_raw_socket(sock as std::os::windows::io::RawSocket) }
}

/// A send request's state: the destination (read by libuv until the callback) and the buffer and callback.
struct SendReq<B, F> {
    addr: Option<SockAddr>,
    parts: Option<(B, F)>,
}

unsafe extern "C" fn on_send<B, F>(req: *mut sys::uv_udp_send_t, status: c_int)
where
    B: AsRef<[u8]> + 'static,
    F: FnOnce(Result<()>, B) + 'static,
{
    // SAFETY: libuv calls this once for the request `send` submitted with this box type.
    unsafe {
        complete::<sys::uv_udp_send_t, SendReq<B, F>>(req, |r| {
            if let Some((buf, cb)) = r.state.parts.take() {
                cb(Error::check(status).map(drop), buf);
            }
        })
    }
}

unsafe extern "C" fn on_alloc(handle: *mut sys::uv_handle_t, _suggested: usize, buf: *mut sys::uv_buf_t) {
    // SAFETY: libuv passes the reading handle, alive until its close callback; the view lives for this call.
    let udp = unsafe { Owned::view(handle.cast::<sys::uv_udp_t>(), |h| Udp { h }) };
    let recv_buf = &udp.h.state().recv_buf;
    // The length came from a usize of at most MMSG_SLOTS * 64 KiB, so it fits an unsigned int.
    let len = recv_buf.len.get() as c_uint;
    // SAFETY: `buf` is libuv's out-parameter. The buffer lives until the close callback, and no Rust reference
    // to its bytes exists now: the previous callback's slice ended with that callback. A null pointer (never
    // allocated) gives a null buffer, which libuv reports as ENOBUFS.
    unsafe { *buf = sys::uv_buf_init(recv_buf.ptr.get().cast::<c_char>(), len) };
}

unsafe extern "C" fn on_recv(
    raw: *mut sys::uv_udp_t,
    nread: isize,
    buf: *const sys::uv_buf_t,
    addr: *const sys::sockaddr,
    flags: c_uint,
) {
    // (The cast: C enums are `int` with MSVC, `unsigned int` elsewhere.)
    let mmsg_free = sys::uv_udp_flags_UV_UDP_MMSG_FREE as c_uint;
    if flags & mmsg_free != 0 {
        return; // the end of a recvmmsg batch: libuv hands the buffer back, and it stays ours
    }
    // SAFETY: libuv passes the reading handle, alive until its close callback; the view lives for this call.
    let udp = unsafe { Owned::view(raw, |h| Udp { h }) };
    let result = if nread < 0 {
        Err(Error::from_code(nread as i32))
    } else if nread == 0 && addr.is_null() {
        Ok(None)
    } else {
        let data: &[u8] = if nread == 0 {
            &[]
        } else {
            // SAFETY: libuv filled `nread` bytes at `buf.base`, inside the handle's receive buffer (or a recvmmsg
            // slot of it), which lives until the close callback and is not written again before this callback
            // returns. The slice is lent to the user's callback only (higher-ranked lifetime).
            unsafe { std::slice::from_raw_parts((*buf).base.cast::<u8>(), nread as usize) }
        };
        // SAFETY: `addr` is null or the sender's sockaddr, valid for this call.
        let from = unsafe { from_sockaddr(addr) }.or_else(|| udp.peer_addr().ok());
        let Some(from) = from else {
            return; // not an IP sender: impossible on the IP sockets this type creates or opens
        };
        let partial = flags & (sys::uv_udp_flags_UV_UDP_PARTIAL as c_uint) != 0;
        Ok(Some((data, from, RecvFlags { partial })))
    };
    udp.h.invoke(|s| &s.on_recv, |cb| cb(&udp, result));
    // `recv_stop` from inside the callback could not drop the running closure, which `invoke` has put back:
    // drop it now, under the panic guard since user code (its captures' destructors) runs.
    let state = udp.h.state();
    if !state.reading.get() && !udp.h.is_closing() {
        guard(udp.h.loop_inner(), || state.on_recv.clear());
    }
}
