//! Name resolution on libuv's thread pool: [`getaddrinfo`] and [`getnameinfo`], plus blocking variants.
//!
//! The lookups run `getaddrinfo(3)`/`getnameinfo(3)` on a pool thread and call back on the loop thread. Their
//! errors are libuv's `EAI_*` codes (`EAI_NONAME` for an unknown name, …). libuv copies the inputs, so nothing
//! is borrowed past the call; the result list is copied into Rust values and always freed
//! (`uv_freeaddrinfo`) before the callback runs. A lookup keeps the loop alive until its callback ran; once
//! started it cannot be cancelled through this API.

use std::ffi::{c_char, c_int, CStr, CString};
use std::net::SocketAddr;
use std::ptr;

use libuv_sys2 as sys;

use super::addr::{from_sockaddr, sockaddr_ptr, to_sockaddr};
use super::loop_::Loop;
use super::req::{complete, submit, PoolReq, ReqBox};
use crate::error::{Error, Result};

/// An IP address family (`AF_INET` or `AF_INET6`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpFamily {
    /// IPv4 (`AF_INET`).
    V4,
    /// IPv6 (`AF_INET6`).
    V6,
}

impl IpFamily {
    /// The OS's `AF_*` value.
    pub(crate) fn raw(self) -> c_int {
        match self {
            IpFamily::V4 => sys::AF_INET as c_int,
            IpFamily::V6 => sys::AF_INET6 as c_int,
        }
    }

    fn of(addr: &SocketAddr) -> IpFamily {
        if addr.is_ipv4() {
            IpFamily::V4
        } else {
            IpFamily::V6
        }
    }
}

/// A socket type (`SOCK_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SockType {
    /// `SOCK_STREAM` (TCP).
    Stream,
    /// `SOCK_DGRAM` (UDP).
    Datagram,
    /// `SOCK_RAW`.
    Raw,
    /// Another value, as the OS numbers it.
    Other(i32),
}

impl SockType {
    fn raw(self) -> c_int {
        match self {
            SockType::Stream => sys::SOCK_STREAM as c_int,
            SockType::Datagram => sys::SOCK_DGRAM as c_int,
            SockType::Raw => sys::SOCK_RAW as c_int,
            SockType::Other(v) => v,
        }
    }

    fn from_raw(v: c_int) -> SockType {
        match v {
            _ if v == sys::SOCK_STREAM as c_int => SockType::Stream,
            _ if v == sys::SOCK_DGRAM as c_int => SockType::Datagram,
            _ if v == sys::SOCK_RAW as c_int => SockType::Raw,
            _ => SockType::Other(v),
        }
    }
}

/// An IP protocol number (`IPPROTO_*`; the numbers are IANA's, the same on every OS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// TCP, protocol 6.
    Tcp,
    /// UDP, protocol 17.
    Udp,
    /// Another protocol number (0: unspecified).
    Other(i32),
}

const IPPROTO_TCP: c_int = 6;
const IPPROTO_UDP: c_int = 17;

impl Protocol {
    fn raw(self) -> c_int {
        match self {
            Protocol::Tcp => IPPROTO_TCP,
            Protocol::Udp => IPPROTO_UDP,
            Protocol::Other(v) => v,
        }
    }

    fn from_raw(v: c_int) -> Protocol {
        match v {
            IPPROTO_TCP => Protocol::Tcp,
            IPPROTO_UDP => Protocol::Udp,
            _ => Protocol::Other(v),
        }
    }
}

/// Constraints and flags for [`getaddrinfo`] (the `hints` argument). `Default` constrains nothing and sets no
/// flag; note that C's `getaddrinfo` with *no* hints implies `AI_V4MAPPED | AI_ADDRCONFIG` on some systems,
/// uvio never does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AddrInfoHints {
    /// Only this family (`ai_family`); `None` is `AF_UNSPEC`, both.
    pub family: Option<IpFamily>,
    /// Only this socket type (`ai_socktype`); `None` is any.
    pub socktype: Option<SockType>,
    /// Only this protocol (`ai_protocol`); `None` is any.
    pub protocol: Option<Protocol>,
    /// Addresses for binding: with no node, the wildcard address (`AI_PASSIVE`).
    pub passive: bool,
    /// Report the canonical name in the first result's [`AddrInfo::canonname`] (`AI_CANONNAME`).
    pub canonname: bool,
    /// The node must be a numeric address; a name fails locally with `EAI_NONAME`, without any query
    /// (`AI_NUMERICHOST`).
    pub numeric_host: bool,
    /// The service must be a port number (`AI_NUMERICSERV`).
    pub numeric_serv: bool,
    /// Return IPv4 or IPv6 addresses only if the system has such an address configured (`AI_ADDRCONFIG`).
    pub addrconfig: bool,
    /// With family IPv6: return IPv4-mapped IPv6 addresses when there are no IPv6 ones (`AI_V4MAPPED`).
    pub v4mapped: bool,
    /// With `v4mapped`: return both IPv6 and IPv4-mapped addresses (`AI_ALL`).
    pub all: bool,
}

/// A flag's bit when `on`. (Generic because the constants' integer types differ per OS.)
fn bit<T: TryInto<c_int>>(on: bool, value: T) -> c_int {
    if on {
        value.try_into().unwrap_or(0)
    } else {
        0
    }
}

impl AddrInfoHints {
    fn to_raw(self) -> sys::addrinfo {
        // SAFETY: addrinfo is plain C data (integers and pointers); all-zero is valid and means "no constraint".
        let mut raw: sys::addrinfo = unsafe { std::mem::zeroed() };
        raw.ai_flags = bit(self.passive, sys::AI_PASSIVE)
            | bit(self.canonname, sys::AI_CANONNAME)
            | bit(self.numeric_host, sys::AI_NUMERICHOST)
            | bit(self.numeric_serv, sys::AI_NUMERICSERV)
            | bit(self.addrconfig, sys::AI_ADDRCONFIG)
            | bit(self.v4mapped, sys::AI_V4MAPPED)
            | bit(self.all, sys::AI_ALL);
        raw.ai_family = self.family.map_or(sys::AF_UNSPEC as c_int, IpFamily::raw);
        raw.ai_socktype = self.socktype.map_or(0, SockType::raw);
        raw.ai_protocol = self.protocol.map_or(0, Protocol::raw);
        raw
    }
}

/// `getnameinfo(3)` flags for [`getnameinfo`]. `Default` sets none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NameInfoFlags {
    /// The numeric host address instead of its name (`NI_NUMERICHOST`).
    pub numeric_host: bool,
    /// The numeric port instead of the service name (`NI_NUMERICSERV`).
    pub numeric_serv: bool,
    /// Only the host part of local names (`NI_NOFQDN`).
    pub no_fqdn: bool,
    /// Fail (`EAI_NONAME`) rather than return a numeric host when the name is unknown (`NI_NAMEREQD`).
    pub name_required: bool,
    /// The service is a datagram (UDP) one, for the few ports where that differs (`NI_DGRAM`).
    pub dgram: bool,
}

impl NameInfoFlags {
    fn bits(self) -> c_int {
        bit(self.numeric_host, sys::NI_NUMERICHOST)
            | bit(self.numeric_serv, sys::NI_NUMERICSERV)
            | bit(self.no_fqdn, sys::NI_NOFQDN)
            | bit(self.name_required, sys::NI_NAMEREQD)
            | bit(self.dgram, sys::NI_DGRAM)
    }
}

/// One [`getaddrinfo`] result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrInfo {
    /// The address family (of `addr`).
    pub family: IpFamily,
    /// The socket type this address is for.
    pub socktype: SockType,
    /// The protocol this address is for.
    pub protocol: Protocol,
    /// The address, with the service's port (0 without a service).
    pub addr: SocketAddr,
    /// The canonical host name: only on the first result, and only with [`AddrInfoHints::canonname`].
    pub canonname: Option<String>,
}

/// A result list from libuv, freed with `uv_freeaddrinfo` when dropped (also while unwinding).
struct AddrInfoList(*mut sys::addrinfo);

impl AddrInfoList {
    /// Copies the IP entries into Rust values (other families, which hints never ask for, are skipped).
    fn to_vec(&self) -> Vec<AddrInfo> {
        let mut out = Vec::new();
        let mut node = self.0;
        while !node.is_null() {
            // SAFETY: `node` is an entry of the list libuv returned, valid until the list is freed in `drop`.
            let ai = unsafe { &*node };
            // SAFETY: `ai_addr` is null or a sockaddr of `ai_family`, as getaddrinfo(3) fills it.
            if let Some(addr) = unsafe { from_sockaddr(ai.ai_addr) } {
                let canonname = (!ai.ai_canonname.is_null()).then(|| {
                    // SAFETY: a non-null `ai_canonname` is a NUL-terminated string owned by the list.
                    unsafe { CStr::from_ptr(ai.ai_canonname) }.to_string_lossy().into_owned()
                });
                out.push(AddrInfo {
                    family: IpFamily::of(&addr),
                    socktype: SockType::from_raw(ai.ai_socktype),
                    protocol: Protocol::from_raw(ai.ai_protocol),
                    addr,
                    canonname,
                });
            }
            node = ai.ai_next;
        }
        out
    }
}

impl Drop for AddrInfoList {
    fn drop(&mut self) {
        // SAFETY: the list came from libuv's getaddrinfo and is freed exactly once, here; NULL is a no-op.
        unsafe { sys::uv_freeaddrinfo(self.0) }
    }
}

/// Node and service as C strings; a NUL byte inside is `EINVAL`, and both absent is `EINVAL` too.
fn lookup_strings(node: Option<&str>, service: Option<&str>) -> Result<(Option<CString>, Option<CString>)> {
    if node.is_none() && service.is_none() {
        return Err(Error::EINVAL);
    }
    let c = |s: &str| CString::new(s).map_err(|_| Error::EINVAL);
    Ok((node.map(c).transpose()?, service.map(c).transpose()?))
}

fn opt_ptr(s: &Option<CString>) -> *const c_char {
    s.as_ref().map_or(ptr::null(), |s| s.as_ptr())
}

/// Resolves `node` (a host name or numeric address) and/or `service` (a service name or port number) into
/// socket addresses, on the thread pool (`uv_getaddrinfo`). `cb` runs on the loop thread with the results,
/// or a libuv `EAI_*` error (`EAI_NONAME`: no such name).
///
/// Errors returned here, before anything starts: `EINVAL` for a NUL byte inside `node` or `service`, or for
/// neither given.
///
/// ```
/// use uvio::uv::{getaddrinfo, AddrInfoHints, Loop, RunMode};
///
/// let lp = Loop::new()?;
/// let hints = AddrInfoHints { numeric_host: true, ..Default::default() };
/// getaddrinfo(&lp, Some("127.0.0.1"), Some("80"), hints, |res| {
///     let addrs = res.unwrap();
///     assert!(addrs.iter().all(|a| a.addr == "127.0.0.1:80".parse().unwrap()));
/// })?;
/// lp.run(RunMode::Default)?;
/// lp.close().map_err(|e| e.error())?;
/// # Ok::<(), uvio::Error>(())
/// ```
pub fn getaddrinfo<F>(lp: &Loop, node: Option<&str>, service: Option<&str>, hints: AddrInfoHints, cb: F) -> Result<()>
where
    F: FnOnce(Result<Vec<AddrInfo>>) + 'static,
{
    let (node, service) = lookup_strings(node, service)?;
    let hints = hints.to_raw();
    let state = Some((cb, PoolReq::new(lp.inner())));
    submit(lp.inner(), state, |l, req: *mut ReqBox<sys::uv_getaddrinfo_t, Option<(F, PoolReq)>>| {
        // SAFETY: `req` is the live box submit made; libuv copies node, service and hints before returning, and
        // calls `on_addrinfo` (matching this box type) once.
        unsafe {
            sys::uv_getaddrinfo(
                l,
                &raw mut (*req).raw,
                Some(on_addrinfo::<F>),
                opt_ptr(&node),
                opt_ptr(&service),
                &hints,
            )
        }
    })
}

unsafe extern "C" fn on_addrinfo<F>(req: *mut sys::uv_getaddrinfo_t, status: c_int, res: *mut sys::addrinfo)
where
    F: FnOnce(Result<Vec<AddrInfo>>) + 'static,
{
    // Owns the list from here on: freed at the end of this function whatever happens.
    let list = AddrInfoList(res);
    // SAFETY: libuv calls this once for the request `getaddrinfo` submitted with this box type.
    unsafe {
        complete::<sys::uv_getaddrinfo_t, Option<(F, PoolReq)>>(req, |r| {
            let result = Error::check(status).map(|_| list.to_vec());
            drop(list);
            if let Some((cb, _pool)) = r.state.take() {
                cb(result);
            }
        })
    }
}

/// [`getaddrinfo`], blocking the calling thread until the lookup is done (`uv_getaddrinfo` with no callback).
/// No loop is involved. Same errors.
pub fn getaddrinfo_sync(node: Option<&str>, service: Option<&str>, hints: AddrInfoHints) -> Result<Vec<AddrInfo>> {
    let (node, service) = lookup_strings(node, service)?;
    let hints = hints.to_raw();
    // SAFETY: uv_getaddrinfo_t is plain C data; all-zero is a valid value before uv_getaddrinfo initialises it.
    let mut req: sys::uv_getaddrinfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: with no callback libuv runs the lookup synchronously and is done with `req` on return; a NULL loop
    // is allowed in that mode (nothing is registered). The inputs outlive the call.
    let ret =
        unsafe { sys::uv_getaddrinfo(ptr::null_mut(), &mut req, None, opt_ptr(&node), opt_ptr(&service), &hints) };
    // Whatever the outcome, libuv may have left a list for us to free.
    let list = AddrInfoList(std::mem::replace(&mut req.addrinfo, ptr::null_mut()));
    Error::check(ret)?;
    Ok(list.to_vec())
}

/// Finds the host and service names of `addr`, on the thread pool (`uv_getnameinfo`). `cb` runs on the loop
/// thread with `(host, service)` or a libuv `EAI_*` error. [`NameInfoFlags::numeric_host`] and `numeric_serv`
/// give numeric strings without any lookup.
pub fn getnameinfo<F>(lp: &Loop, addr: SocketAddr, flags: NameInfoFlags, cb: F) -> Result<()>
where
    F: FnOnce(Result<(String, String)>) + 'static,
{
    let sa = to_sockaddr(&addr);
    let state = Some((cb, PoolReq::new(lp.inner())));
    submit(lp.inner(), state, |l, req: *mut ReqBox<sys::uv_getnameinfo_t, Option<(F, PoolReq)>>| {
        // SAFETY: `req` is the live box submit made; libuv copies the address into the request before
        // returning, and calls `on_nameinfo` (matching this box type) once.
        unsafe { sys::uv_getnameinfo(l, &raw mut (*req).raw, Some(on_nameinfo::<F>), sockaddr_ptr(&sa), flags.bits()) }
    })
}

/// A NUL-terminated C char array (the request's `host` or `service`) as a `String`.
fn c_array_string(chars: &[c_char]) -> String {
    let bytes: Vec<u8> = chars.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The `(host, service)` result of a finished getnameinfo request, read from the request itself.
fn name_result(status: c_int, req: &sys::uv_getnameinfo_t) -> Result<(String, String)> {
    Error::check(status)?;
    Ok((c_array_string(&req.host), c_array_string(&req.service)))
}

unsafe extern "C" fn on_nameinfo<F>(
    req: *mut sys::uv_getnameinfo_t,
    status: c_int,
    _host: *const c_char,
    _service: *const c_char,
) where
    F: FnOnce(Result<(String, String)>) + 'static,
{
    // SAFETY: libuv calls this once for the request `getnameinfo` submitted with this box type. On success
    // `_host`/`_service` point into the request itself; we read them through the box instead.
    unsafe {
        complete::<sys::uv_getnameinfo_t, Option<(F, PoolReq)>>(req, |r| {
            let result = name_result(status, &r.raw);
            if let Some((cb, _pool)) = r.state.take() {
                cb(result);
            }
        })
    }
}

/// [`getnameinfo`], blocking the calling thread until done (`uv_getnameinfo` with no callback). libuv counts
/// the request on `lp` while it runs, so a loop is needed, but it does not have to be running.
pub fn getnameinfo_sync(lp: &Loop, addr: SocketAddr, flags: NameInfoFlags) -> Result<(String, String)> {
    let sa = to_sockaddr(&addr);
    // SAFETY: uv_getnameinfo_t is plain C data; all-zero is valid before uv_getnameinfo initialises it.
    let mut req: sys::uv_getnameinfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: with no callback libuv runs synchronously and is done with `req` on return; the loop is
    // initialised and only has its request count touched (incremented and decremented within the call).
    let ret = unsafe { sys::uv_getnameinfo(lp.as_raw(), &mut req, None, sockaddr_ptr(&sa), flags.bits()) };
    name_result(ret, &req)
}
