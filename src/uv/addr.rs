//! Socket address and path conversions shared by tcp, udp, dns and fs: `SocketAddr` ⇄ `sockaddr` through
//! `socket2` (which knows each OS's layouts), and `&Path` → NUL-terminated C string.

use std::ffi::{c_int, CString};
use std::net::SocketAddr;
use std::path::Path;

use libuv_sys2 as sys;
use socket2::SockAddr;

use crate::error::{Error, Result};

/// A `sockaddr` for libuv calls; keep it alive for as long as libuv may read the pointer.
pub(crate) fn to_sockaddr(addr: &SocketAddr) -> SockAddr {
    SockAddr::from(*addr)
}

/// The `sockaddr` pointer of a [`SockAddr`], typed as libuv expects.
pub(crate) fn sockaddr_ptr(addr: &SockAddr) -> *const sys::sockaddr {
    addr.as_ptr().cast()
}

/// Reads an address with a libuv getter of the `(ptr, len) -> int` shape (getsockname, getpeername…).
pub(crate) fn read_sockaddr(get: impl FnOnce(*mut sys::sockaddr, *mut c_int) -> c_int) -> Result<SocketAddr> {
    let mut code = 0;
    // SAFETY: try_init hands us zeroed sockaddr_storage and its length; `get` (a libuv getter) writes at most
    // `len` bytes of a valid address there and updates `len`.
    let res = unsafe {
        SockAddr::try_init(|storage, len| {
            let mut ilen = *len as c_int;
            code = get(storage.cast(), &mut ilen);
            *len = ilen as _;
            Ok(())
        })
    };
    Error::check(code)?;
    let ((), addr) = res.map_err(|_| Error::EINVAL)?;
    addr.as_socket().ok_or(Error::EAFNOSUPPORT)
}

/// Copies a `sockaddr` that libuv handed us (recv, getaddrinfo) into a `SocketAddr`. `None` for non-IP families.
///
/// # Safety
/// `ptr` must be null or point to a valid `sockaddr_in` or `sockaddr_in6` (as its family says).
pub(crate) unsafe fn from_sockaddr(ptr: *const sys::sockaddr) -> Option<SocketAddr> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: non-null and valid per the contract; the family field is common to every sockaddr.
    let family = unsafe { (*ptr).sa_family } as c_int;
    let len = if family == sys::AF_INET as c_int {
        std::mem::size_of::<sys::sockaddr_in>()
    } else if family == sys::AF_INET6 as c_int {
        std::mem::size_of::<sys::sockaddr_in6>()
    } else {
        return None;
    };
    // SAFETY: we copy exactly `len` bytes, the size of the family's struct that `ptr` points to, into storage
    // at least that large.
    let res = unsafe {
        SockAddr::try_init(|storage, slen| {
            std::ptr::copy_nonoverlapping(ptr.cast::<u8>(), storage.cast::<u8>(), len);
            *slen = len as _;
            Ok(())
        })
    };
    res.ok().and_then(|((), a)| a.as_socket())
}

/// A path as a C string; a NUL byte inside is `EINVAL`, never a panic. Non-UTF-8 paths are passed through
/// as bytes on Unix; on Windows libuv takes UTF-8, so a non-UTF-8 path is `EINVAL` there.
pub(crate) fn cpath(path: &Path) -> Result<CString> {
    #[cfg(unix)]
    let bytes = {
        use std::os::unix::ffi::OsStrExt;
        path.as_os_str().as_bytes().to_vec()
    };
    #[cfg(not(unix))]
    let bytes = path.to_str().ok_or(Error::EINVAL)?.as_bytes().to_vec();
    CString::new(bytes).map_err(|_| Error::EINVAL)
}

/// A C string (libuv gave us) as a path.
pub(crate) fn path_from_c(s: &std::ffi::CStr) -> std::path::PathBuf {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        std::path::PathBuf::from(std::ffi::OsStr::from_bytes(s.to_bytes()))
    }
    #[cfg(not(unix))]
    std::path::PathBuf::from(s.to_string_lossy().into_owned())
}
