//! Layer 1: safe libuv, with libuv's own semantics and names (callbacks, no async).
//!
//! This is the only module that calls `libuv_sys2`. One Rust type per libuv handle and request; see
//! [`handle`](self) machinery notes in the source for the close protocol. The rules every type here keeps:
//!
//! - Handles are owned values, never `Copy` or `Clone`. Dropping a handle closes it (`uv_close`); its memory
//!   is freed in the close callback, never before. A handle keeps its loop's memory alive.
//! - A callback gets a borrowed view of its own handle and may stop, restart or drop the handle (drop it through
//!   whatever owns it, e.g. an `Rc<RefCell<Option<Timer>>>`); the running closure lives until it returns.
//! - Panics in callbacks are caught at the C boundary, stop the loop, and resume from [`Loop::run`]. When
//!   several callbacks panic in one run, the first panic is resumed; the others' payloads are dropped by
//!   `run`, on the caller's stack (a payload whose destructor panics cannot abort the process).
//! - Nothing here is `Send` except [`AsyncSender`], the thread-safe side of [`Async`].
//! - Memory lent to libuv (write buffers, request state) lives until libuv's callback, even when the handle
//!   that asked is dropped first. Read buffers are lent to the read callback for its duration only.
//!
//! # Closing streams
//! Dropping a stream closes it at once: libuv cancels writes still queued, and their callbacks run with
//! `ECANCELED`. To close gracefully, call `shutdown` (which waits for queued writes), and drop the handle in
//! its callback.
#![allow(unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub(crate) mod addr;
pub(crate) mod error;
pub(crate) mod handle;
mod loop_;
mod read_buf;
pub(crate) mod req;

mod async_;
mod dns;
pub mod fs;
mod fs_event;
mod fs_poll;
mod pipe;
mod poll;
mod process;
mod signal;
pub(crate) mod stream;
mod tcp;
mod timer;
mod tty;
mod udp;
mod watch;
mod work;

pub use async_::*;
pub use dns::*;
pub use fs_event::*;
pub use fs_poll::*;
pub use handle::Handle;
pub(crate) use loop_::drop_payload;
pub use loop_::{hrtime, Loop, LoopCloseError, Metrics, RunMode};
pub use pipe::*;
pub use poll::*;
pub use process::*;
pub use signal::*;
pub use tcp::*;
pub use timer::Timer;
pub use tty::*;
pub use udp::*;
pub use watch::*;
pub use work::*;

/// libuv's version string (`uv_version_string`); see [`crate::libuv_version`].
pub(crate) fn version_string() -> &'static str {
    // SAFETY: uv_version_string returns a pointer to a static NUL-terminated string.
    let s = unsafe { std::ffi::CStr::from_ptr(libuv_sys2::uv_version_string()) };
    s.to_str().unwrap_or("unknown")
}

/// Whether the libuv loaded at run time (`uv_version`) can back the bindings uvio was compiled with: the same
/// major version (libuv's ABI promise) and at least the bindings' minor version (minor releases add functions
/// uvio may call). Always true for the vendored libuv; with `system-libuv`, the shared library found at run
/// time can differ from the one pkg-config found at build time. A mismatch is logged once per check.
pub(crate) fn linked_version_fits() -> bool {
    // SAFETY: uv_version has no preconditions; it returns a constant.
    let loaded = unsafe { libuv_sys2::uv_version() };
    let (major, minor) = (loaded >> 16, (loaded >> 8) & 0xff);
    let fits = major == libuv_sys2::UV_VERSION_MAJOR && minor >= libuv_sys2::UV_VERSION_MINOR;
    if !fits {
        log::error!(
            "uvio: the loaded libuv is {}, but uvio's bindings need libuv {}.x with x >= {}",
            version_string(),
            libuv_sys2::UV_VERSION_MAJOR,
            libuv_sys2::UV_VERSION_MINOR
        );
    }
    fits
}

/// libuv's name for an error code (`uv_err_name`).
pub(crate) fn err_name(code: i32) -> &'static str {
    if !is_known_code(code) {
        return "UNKNOWN";
    }
    // SAFETY: uv_err_name returns a static NUL-terminated string for every known code (checked above; for an
    // unknown one it would allocate a string per call, which we never ask for).
    let s = unsafe { std::ffi::CStr::from_ptr(libuv_sys2::uv_err_name(code)) };
    s.to_str().unwrap_or("UNKNOWN")
}

/// libuv's message for an error code (`uv_strerror`).
pub(crate) fn strerror(code: i32) -> &'static str {
    if !is_known_code(code) {
        return "unknown error";
    }
    // SAFETY: as in `err_name`.
    let s = unsafe { std::ffi::CStr::from_ptr(libuv_sys2::uv_strerror(code)) };
    s.to_str().unwrap_or("unknown error")
}

/// Whether libuv knows `code`: for unknown codes `uv_err_name`/`uv_strerror` allocate (and leak) a new string
/// per call, while their `_r` variants write "Unknown system error N" into our buffer.
fn is_known_code(code: i32) -> bool {
    let mut buf = [0 as std::ffi::c_char; 64];
    // SAFETY: `buf` is valid for `buf.len()` bytes; uv_err_name_r always NUL-terminates within that length.
    unsafe { libuv_sys2::uv_err_name_r(code, buf.as_mut_ptr(), buf.len()) };
    // SAFETY: NUL-terminated by uv_err_name_r, and `buf` outlives the borrow.
    let name = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
    !name.to_bytes().starts_with(b"Unknown system error")
}
