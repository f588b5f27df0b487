//! The credentials of a Unix socket's peer, read from the socket itself (the same call on every engine, like
//! the other options of `with_socket`): `SO_PEERCRED` on Linux and Android, `getpeereid(3)` on macOS and the
//! BSDs (no process id there). Another Unix answers `Unsupported`.

use std::io;

use socket2::SockRef;

/// The peer's process id (where the OS says), user id and group id, as the peer had them when it connected
/// (or made the socket pair).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PeerCred {
    pub(crate) pid: Option<i32>,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

/// `SO_PEERCRED`: pid, uid and gid.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[allow(unsafe_code)] // one getsockopt into a plain C struct
pub(crate) fn peer_cred(sock: SockRef<'_>) -> io::Result<PeerCred> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: an open descriptor (borrowed for the call), and a valid out-pointer with its length; the kernel
    // writes at most `len` bytes.
    let ret = unsafe {
        libc::getsockopt(sock.as_raw_fd(), libc::SOL_SOCKET, libc::SO_PEERCRED, (&raw mut cred).cast(), &mut len)
    };
    if ret != 0 {
        return Err(io::Error::last_os_error());
    }
    // A pid of 0: the peer is in another pid namespace, or there is no peer process (not connected).
    Ok(PeerCred { pid: (cred.pid != 0).then_some(cred.pid), uid: cred.uid, gid: cred.gid })
}

/// `getpeereid(3)`: uid and gid.
#[cfg(any(
    target_vendor = "apple",
    target_os = "freebsd",
    target_os = "openbsd",
    target_os = "netbsd",
    target_os = "dragonfly"
))]
#[allow(unsafe_code)] // one libc call with two out-pointers
pub(crate) fn peer_cred(sock: SockRef<'_>) -> io::Result<PeerCred> {
    use std::os::fd::AsRawFd;
    let (mut uid, mut gid) = (0, 0);
    // SAFETY: an open descriptor (borrowed for the call) and two valid out-pointers to plain integers.
    let ret = unsafe { libc::getpeereid(sock.as_raw_fd(), &mut uid, &mut gid) };
    if ret != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(PeerCred { pid: None, uid, gid })
}

/// No peer-credential call known here.
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_vendor = "apple",
    target_os = "freebsd",
    target_os = "openbsd",
    target_os = "netbsd",
    target_os = "dragonfly"
)))]
pub(crate) fn peer_cred(_sock: SockRef<'_>) -> io::Result<PeerCred> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "peer credentials are not available on this OS"))
}
