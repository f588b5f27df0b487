//! # uvio: libuv's event loop for Rust
//!
//! uvio brings libuv — the portable event loop under Node.js — to Rust with sound, safe types and an
//! async/await runtime on the same loop. libuv is compiled from the source bundled in `libuv-sys2`; no system
//! libuv is used.
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
#![deny(unsafe_op_in_unsafe_fn, missing_docs)]
#![deny(unsafe_code)]

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
pub use runtime::{block_on, spawn, spawn_local, Builder, EnterGuard, Handle, Runtime, ShutdownReport};

/// The version of the compiled libuv, such as `"1.53.0"` (`uv_version_string`).
pub fn libuv_version() -> &'static str {
    uv::version_string()
}
