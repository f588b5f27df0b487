//! # uvio: libuv's event loop for Rust
//!
//! uvio brings libuv — the portable event loop under Node.js — to Rust with sound, safe types and an
//! async/await runtime on the same loop.
//!
//! - [`Runtime`], [`block_on`], [`spawn_local`], [`task`], [`time`], [`net`], [`fs`], [`process`],
//!   [`signal`]: async/await on a libuv loop, shaped like tokio; on Unix, `io::AsyncFd` for descriptors the
//!   program reads and writes itself.
//! - [`uv`]: safe libuv with libuv's semantics (loops, handles, requests, callbacks).
//! - [`Error`]: libuv's error codes, convertible into [`std::io::Error`].
//! - [`guide`]: how the event loop works and the patterns that follow from it.
//!
//! ```
//! use std::time::Duration;
//!
//! let answer = uvio::block_on(async {
//!     let task = uvio::spawn_local(async {
//!         uvio::time::sleep(Duration::from_millis(5)).await;
//!         6 * 7
//!     });
//!     task.await.unwrap()
//! });
//! assert_eq!(answer, 42);
//! ```
//!
//! The callback layer:
//!
//! ```
//! use std::time::Duration;
//! use uvio::uv::{Loop, RunMode, Timer};
//!
//! let lp = Loop::new()?;
//! let timer = Timer::new(&lp)?;
//! timer.start(Duration::from_millis(5), None, |_| println!("hello from libuv"))?;
//! lp.run(RunMode::Default)?;
//! # Ok::<(), uvio::Error>(())
//! ```
//!
//! ## Which libuv
//! Exactly one of two Cargo features picks it:
//! - `vendored-libuv` (default): libuv is compiled from the source bundled in `libuv-sys2` and linked
//!   statically; no system libuv is used.
//! - `system-libuv` (with `default-features = false`): the system's shared libuv, found by pkg-config, so that
//!   a C or C++ host that links libuv itself and uvio share one libuv — one copy of its globals and thread pool —
//!   and [`uv::Loop::from_raw`] of the host's loop is sound (see the [`guide`]). The system libuv must be
//!   `>= 1.53.1, < 1.54.0`: uvio's bindings are libuv 1.53's (libuv keeps the ABI within a major version and
//!   only adds API in minor ones, so minor 53 at least), and `libuv-sys2` links a system libuv only in that range.
//!   uvio's build script fails the build, naming the version pkg-config found, rather than let `libuv-sys2`
//!   silently compile its bundled copy. At run time, [`uv::Loop::new`] returns `ENOTSUP` if the libuv loaded
//!   (the shared library can be swapped after the build) is older than the bindings or of another major version.
//!
//! Both features on, or neither, is a build error.
#![deny(unsafe_op_in_unsafe_fn, missing_docs)]
#![deny(unsafe_code)]

#[cfg(all(feature = "vendored-libuv", feature = "system-libuv"))]
compile_error!(
    "uvio: the features `vendored-libuv` (default) and `system-libuv` exclude each other: \
     for the system libuv, depend on uvio with `default-features = false, features = [\"system-libuv\"]`"
);
#[cfg(not(any(feature = "vendored-libuv", feature = "system-libuv")))]
compile_error!(
    "uvio: one of the features `vendored-libuv` (the default) and `system-libuv` must be on: \
     with `default-features = false`, add `features = [\"vendored-libuv\"]` or `[\"system-libuv\"]`"
);

pub mod engine;
use uv::error;
pub mod fs;
pub mod guide;
pub mod health;
#[cfg(unix)]
pub mod io;
#[cfg(target_os = "linux")]
pub mod linux;
pub mod net;
pub mod process;
mod reply;
mod runtime;
pub mod server;
pub mod signal;
pub mod task;
pub mod time;
pub mod uv;

pub use engine::Backend;
pub use error::{Error, Result};
pub use runtime::{block_on, spawn, spawn_local, Builder, EnterGuard, Handle, Runtime};

/// The version of the compiled libuv, such as `"1.53.0"` (`uv_version_string`).
pub fn libuv_version() -> &'static str {
    uv::version_string()
}
