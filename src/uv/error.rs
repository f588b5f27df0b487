//! [`Error`]: a newtype over libuv's negative error code.
//!
//! libuv reports every failure as a negative `int` (`UV_ECONNREFUSED`, `UV_ENOENT`, …) whose value differs per
//! OS; the constants come from the compiled libuv, so comparisons are portable. `Error` keeps that code, names
//! it with libuv's own `uv_err_name`, prints libuv's `uv_strerror` message, and converts into
//! [`std::io::Error`] with the matching [`std::io::ErrorKind`].

use std::fmt;
use std::io;

use libuv_sys2 as sys;

/// A libuv error: the negative code libuv returned (`UV_E*`).
///
/// ```
/// let err = uvio::Error::ECONNREFUSED;
/// assert_eq!(err.name(), "ECONNREFUSED");
/// assert_eq!(std::io::Error::from(err).kind(), std::io::ErrorKind::ConnectionRefused);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Error(i32);

/// `Result<T, uvio::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

macro_rules! codes {
    ($($name:ident => $sys:ident,)*) => {
        impl Error {
            $(
                #[doc = concat!("libuv's `UV_", stringify!($name), "`.")]
                pub const $name: Error = Error(sys::$sys as i32);
            )*
        }
    };
}

codes! {
    E2BIG => uv_errno_t_UV_E2BIG, EACCES => uv_errno_t_UV_EACCES, EADDRINUSE => uv_errno_t_UV_EADDRINUSE,
    EADDRNOTAVAIL => uv_errno_t_UV_EADDRNOTAVAIL, EAFNOSUPPORT => uv_errno_t_UV_EAFNOSUPPORT,
    EAGAIN => uv_errno_t_UV_EAGAIN, EAI_AGAIN => uv_errno_t_UV_EAI_AGAIN, EAI_FAIL => uv_errno_t_UV_EAI_FAIL,
    EAI_FAMILY => uv_errno_t_UV_EAI_FAMILY, EAI_NONAME => uv_errno_t_UV_EAI_NONAME,
    EAI_CANCELED => uv_errno_t_UV_EAI_CANCELED, EAI_NODATA => uv_errno_t_UV_EAI_NODATA,
    EALREADY => uv_errno_t_UV_EALREADY, EBADF => uv_errno_t_UV_EBADF, EBUSY => uv_errno_t_UV_EBUSY,
    ECANCELED => uv_errno_t_UV_ECANCELED, ECONNABORTED => uv_errno_t_UV_ECONNABORTED,
    ECONNREFUSED => uv_errno_t_UV_ECONNREFUSED, ECONNRESET => uv_errno_t_UV_ECONNRESET,
    EEXIST => uv_errno_t_UV_EEXIST, EHOSTUNREACH => uv_errno_t_UV_EHOSTUNREACH, EINTR => uv_errno_t_UV_EINTR,
    EINVAL => uv_errno_t_UV_EINVAL, EIO => uv_errno_t_UV_EIO, EISCONN => uv_errno_t_UV_EISCONN,
    EISDIR => uv_errno_t_UV_EISDIR, ELOOP => uv_errno_t_UV_ELOOP, EMFILE => uv_errno_t_UV_EMFILE,
    EMSGSIZE => uv_errno_t_UV_EMSGSIZE, ENAMETOOLONG => uv_errno_t_UV_ENAMETOOLONG,
    ENETUNREACH => uv_errno_t_UV_ENETUNREACH, ENFILE => uv_errno_t_UV_ENFILE, ENOBUFS => uv_errno_t_UV_ENOBUFS,
    ENOENT => uv_errno_t_UV_ENOENT, ENOMEM => uv_errno_t_UV_ENOMEM, ENOSPC => uv_errno_t_UV_ENOSPC,
    ENOSYS => uv_errno_t_UV_ENOSYS, ENOTCONN => uv_errno_t_UV_ENOTCONN, ENOTDIR => uv_errno_t_UV_ENOTDIR,
    ENOTEMPTY => uv_errno_t_UV_ENOTEMPTY, ENOTSOCK => uv_errno_t_UV_ENOTSOCK, ENOTSUP => uv_errno_t_UV_ENOTSUP,
    EPERM => uv_errno_t_UV_EPERM, EPIPE => uv_errno_t_UV_EPIPE, EPROTO => uv_errno_t_UV_EPROTO,
    ERANGE => uv_errno_t_UV_ERANGE, EROFS => uv_errno_t_UV_EROFS, ESPIPE => uv_errno_t_UV_ESPIPE,
    ESRCH => uv_errno_t_UV_ESRCH, ETIMEDOUT => uv_errno_t_UV_ETIMEDOUT, EXDEV => uv_errno_t_UV_EXDEV,
    ENOTTY => uv_errno_t_UV_ENOTTY, EOF => uv_errno_t_UV_EOF, UNKNOWN => uv_errno_t_UV_UNKNOWN,
}

impl Error {
    /// Wraps a negative libuv code. Non-negative values are not errors: they become [`Error::UNKNOWN`].
    #[inline]
    pub fn from_code(code: i32) -> Error {
        if code < 0 {
            Error(code)
        } else {
            Error::UNKNOWN
        }
    }

    /// The libuv code (negative).
    pub fn code(self) -> i32 {
        self.0
    }

    /// libuv's name for the code, such as `"ECONNREFUSED"` (`uv_err_name`).
    pub fn name(self) -> &'static str {
        super::err_name(self.0)
    }

    /// libuv's message for the code, such as `"connection refused"` (`uv_strerror`).
    pub fn message(self) -> &'static str {
        super::strerror(self.0)
    }

    /// Turns a libuv return value into a `Result`: negative is an error, anything else is the value.
    #[inline]
    pub(crate) fn check(ret: i32) -> Result<i32> {
        if ret < 0 {
            Err(Error(ret))
        } else {
            Ok(ret)
        }
    }

    /// Like [`Error::check`] for `ssize_t` results (reads, writes, fs requests).
    pub(crate) fn check_size(ret: isize) -> Result<usize> {
        if ret < 0 {
            Err(Error(ret as i32))
        } else {
            Ok(ret as usize)
        }
    }

    /// The [`std::io::ErrorKind`] this error maps to.
    pub fn kind(self) -> io::ErrorKind {
        use io::ErrorKind as K;
        match self {
            Error::ENOENT => K::NotFound,
            Error::EACCES | Error::EPERM => K::PermissionDenied,
            Error::ECONNREFUSED => K::ConnectionRefused,
            Error::ECONNRESET => K::ConnectionReset,
            Error::ECONNABORTED => K::ConnectionAborted,
            Error::ENOTCONN => K::NotConnected,
            Error::EADDRINUSE => K::AddrInUse,
            Error::EADDRNOTAVAIL => K::AddrNotAvailable,
            Error::EPIPE => K::BrokenPipe,
            Error::EEXIST => K::AlreadyExists,
            Error::EAGAIN => K::WouldBlock,
            Error::EINVAL => K::InvalidInput,
            Error::ETIMEDOUT => K::TimedOut,
            Error::EINTR => K::Interrupted,
            Error::ENOSYS | Error::ENOTSUP => K::Unsupported,
            Error::ENOMEM | Error::ENOBUFS => K::OutOfMemory,
            Error::EOF => K::UnexpectedEof,
            _ => K::Other,
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error({}: {})", self.name(), self.message())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Error {}

impl From<Error> for io::Error {
    fn from(err: Error) -> io::Error {
        // The OS errno, where there is one, keeps `raw_os_error()` useful (libuv codes are -errno on Unix).
        #[cfg(unix)]
        if err.0 > -3000 {
            return io::Error::from_raw_os_error(-err.0);
        }
        io::Error::new(err.kind(), err)
    }
}

/// The error of every I/O operation on an object whose runtime was dropped or closed (sockets, listeners,
/// files, on every engine): `io::ErrorKind::Other`, "the uvio runtime this object belongs to is gone". Nothing
/// runs that object's I/O any more, so the operation fails at once instead of waiting forever.
pub(crate) fn runtime_gone() -> std::io::Error {
    std::io::Error::other("the uvio runtime this object belongs to is gone")
}
