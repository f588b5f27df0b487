//! Error tests: names, messages, and the conversion into std::io::Error. No loop is involved.

use std::io::ErrorKind;

use uvio::Error;

#[test]
fn names_are_libuvs() {
    for (err, name) in [
        (Error::ECONNREFUSED, "ECONNREFUSED"),
        (Error::ENOENT, "ENOENT"),
        (Error::EADDRINUSE, "EADDRINUSE"),
        (Error::EOF, "EOF"),
        (Error::EBADF, "EBADF"),
        (Error::ECANCELED, "ECANCELED"),
        (Error::EAI_NONAME, "EAI_NONAME"),
        (Error::UNKNOWN, "UNKNOWN"),
    ] {
        assert_eq!(err.name(), name);
        assert!(err.code() < 0, "{name} is a negative code");
    }
}

#[test]
fn display_is_libuvs_message() {
    assert_eq!(Error::ENOENT.to_string(), "no such file or directory");
    assert_eq!(Error::ECONNREFUSED.to_string(), "connection refused");
    assert_eq!(Error::EOF.to_string(), "end of file");
    assert_eq!(Error::EINVAL.to_string(), Error::EINVAL.message());
}

#[test]
fn debug_contains_the_name_and_message() {
    let dbg = format!("{:?}", Error::EADDRINUSE);
    assert!(dbg.contains("EADDRINUSE"), "{dbg}");
    assert!(dbg.contains("address already in use"), "{dbg}");
}

#[test]
fn io_error_kinds() {
    for (err, kind) in [
        (Error::ECONNREFUSED, ErrorKind::ConnectionRefused),
        (Error::ENOENT, ErrorKind::NotFound),
        (Error::EADDRINUSE, ErrorKind::AddrInUse),
        (Error::EOF, ErrorKind::UnexpectedEof),
        (Error::EPIPE, ErrorKind::BrokenPipe),
        (Error::ETIMEDOUT, ErrorKind::TimedOut),
        (Error::EACCES, ErrorKind::PermissionDenied),
    ] {
        assert_eq!(err.kind(), kind, "{err:?}");
        assert_eq!(std::io::Error::from(err).kind(), kind, "{err:?}");
    }
}

#[cfg(unix)]
#[test]
fn raw_os_error_is_the_errno_on_unix() {
    assert_eq!(std::io::Error::from(Error::ENOENT).raw_os_error(), Some(libc::ENOENT));
    assert_eq!(std::io::Error::from(Error::ECONNREFUSED).raw_os_error(), Some(libc::ECONNREFUSED));
    assert_eq!(Error::ENOENT.code(), -libc::ENOENT);
    // libuv's own codes (no errno behind them) have no raw OS error.
    assert_eq!(std::io::Error::from(Error::EOF).raw_os_error(), None);
}

#[test]
fn io_error_keeps_the_uvio_error_when_there_is_no_errno() {
    let io = std::io::Error::from(Error::EOF);
    let inner = io.get_ref().and_then(|e| e.downcast_ref::<Error>());
    assert_eq!(inner, Some(&Error::EOF));
}

#[test]
fn from_code() {
    assert_eq!(Error::from_code(Error::ENOENT.code()), Error::ENOENT);
    assert_eq!(Error::from_code(1), Error::UNKNOWN, "a positive value is not an error code");
    assert_eq!(Error::from_code(0), Error::UNKNOWN);
    assert_eq!(Error::from_code(i32::MAX), Error::UNKNOWN);
}

#[test]
fn unknown_negative_code_is_kept() {
    // (Not named here: libuv allocates a fresh string for every unknown code it names.)
    let err = Error::from_code(-999_999);
    assert_eq!(err.code(), -999_999);
    assert_eq!(err.kind(), ErrorKind::Other);
    assert_ne!(err, Error::UNKNOWN);
}

#[test]
fn error_is_a_send_sync_copy_std_error() {
    static_assertions::assert_impl_all!(Error: std::error::Error, Send, Sync, Copy, Eq, std::hash::Hash);
    fn boxed(e: Error) -> Box<dyn std::error::Error + Send + Sync> {
        Box::new(e)
    }
    let e = Error::EPERM;
    let copy = e; // Copy: `e` is still usable
    assert_eq!(boxed(e).to_string(), copy.to_string());
    assert_eq!(e, copy);
    assert_ne!(e, Error::EACCES);
}

#[test]
fn question_mark_converts_into_io_error() {
    fn io_fn() -> std::io::Result<()> {
        Err(Error::ENOENT)?;
        Ok(())
    }
    assert_eq!(io_fn().unwrap_err().kind(), ErrorKind::NotFound);
}
