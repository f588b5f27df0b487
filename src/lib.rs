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
#[cfg(feature = "macros")]
#[doc(hidden)]
#[path = "macro_support.rs"]
pub mod __macro_support;
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

/// Runs an `async fn` on a new uvio [`Runtime`]: `#[uvio::main] async fn main()` builds a runtime (the
/// default engine selection, [`Backend::Auto`]), [`block_on`](Runtime::block_on)s the body and returns its
/// output, so `main` may return a `Result` as usual. Feature `macros` (on by default).
///
/// ```
/// #[uvio::main]
/// async fn main() -> std::io::Result<()> {
///     uvio::time::sleep(std::time::Duration::from_millis(1)).await;
///     Ok(())
/// }
/// ```
///
/// `backend = "libuv" | "epoll" | "io_uring" | "auto"` (the names [`Backend`] parses) asks for one engine;
/// the `UVIO_BACKEND` environment variable still overrides it, as for every runtime. The function need not be
/// called `main`: any `async fn` without arguments becomes a plain `fn` that blocks on its body.
///
/// ```
/// #[uvio::main(backend = "libuv")]
/// async fn answer() -> u32 {
///     uvio::spawn_local(async { 42 }).await.unwrap()
/// }
///
/// assert_eq!(answer(), 42);
/// ```
///
/// `crate = "path"` names the path the expansion reaches uvio by, for a crate that renamed its dependency
/// (`my_uvio = { package = "uvio", … }` in `Cargo.toml`) or re-exports it; without it the expansion names
/// `::uvio`. The same argument exists on [`test`](macro@test).
///
/// ```
/// extern crate uvio as my_uvio;
///
/// #[my_uvio::main(crate = "my_uvio")]
/// async fn main() {
///     my_uvio::time::sleep(std::time::Duration::from_millis(1)).await;
/// }
/// ```
///
/// # Panics
/// When the runtime cannot be built (an explicit engine this machine lacks, such as io_uring where the kernel
/// refuses it), and where [`Runtime::block_on`] panics (inside another runtime).
///
/// # Compile errors
/// An unknown engine name, an engine the target OS lacks (`epoll` and `io_uring` off Linux), a `crate` value
/// that is not a path, arguments on the function, or a function that is not `async`:
///
/// ```compile_fail
/// #[uvio::main(backend = "kqueue")]
/// async fn main() {}
/// ```
///
/// ```compile_fail
/// #[uvio::main(crate = "not a path")]
/// async fn main() {}
/// ```
///
/// ```compile_fail
/// #[uvio::main]
/// fn main() {}
/// ```
///
/// ```compile_fail
/// #[uvio::main]
/// async fn main(port: u16) {}
/// ```
#[cfg(feature = "macros")]
pub use uvio_macros::main;

/// Makes an `async fn` a `#[test]` that runs its body on a new uvio [`Runtime`]. Feature `macros` (on by
/// default). The body may return `()` or a `Result<_, E: Debug>`, whose `Err` fails the test; other
/// attributes (`#[should_panic]`, `#[ignore]`) stay on the test.
///
/// ```
/// # use std::time::Duration;
/// #[uvio::test]
/// async fn sleeps() {
///     uvio::time::sleep(Duration::from_millis(1)).await;
/// }
/// ```
///
/// - `#[uvio::test]`: one run, with the default engine selection ([`Backend::Auto`], or `UVIO_BACKEND`).
/// - `#[uvio::test(backend = "epoll")]` (or `"libuv"`, `"io_uring"`): one run on that engine. Where the engine
///   is not available the test is skipped, not failed, with a note on stderr: `epoll` and `io_uring` tests are
///   `#[ignore]`d off Linux; on Linux, an engine whose runtime fails to build while a default runtime builds
///   (io_uring refused by the kernel, by seccomp or by `kernel.io_uring_disabled`) is skipped at run time, and
///   so is a test whose engine differs from the one `UVIO_BACKEND` forces.
/// - `#[uvio::test(all_engines)]`: the body runs once per engine this machine has, in order (libuv, then epoll
///   and io_uring on Linux), each on a new runtime (only the engine `UVIO_BACKEND` forces, if set). A failure
///   names the engine it happened on: `… failed on the epoll engine: <the panic message>`.
/// - `crate = "path"` (with any of the above): the path the expansion reaches uvio by, for a crate that renamed
///   its dependency, as on [`main`](macro@main).
///
/// ```
/// #[uvio::test(all_engines)]
/// async fn connects() -> std::io::Result<()> {
///     let listener = uvio::net::TcpListener::bind("127.0.0.1:0").await?;
///     let addr = listener.local_addr()?;
///     let (client, accepted) = futures::join!(uvio::net::TcpStream::connect(addr), listener.accept());
///     assert_eq!(client?.local_addr()?, accepted?.1);
///     Ok(())
/// }
/// ```
///
/// # Compile errors
/// An unknown engine name, `backend` together with `all_engines`, a `crate` value that is not a path, arguments
/// on the function, or a function that is not `async`:
///
/// ```compile_fail
/// #[uvio::test(backend = "kqueue")]
/// async fn on_kqueue() {}
/// ```
///
/// ```compile_fail
/// #[uvio::test]
/// fn not_async() {}
/// ```
///
/// ```compile_fail
/// #[uvio::test(backend = "epoll", all_engines)]
/// async fn both() {}
/// ```
///
/// ```compile_fail
/// #[uvio::test(crate = "uvio::<u8>")]
/// async fn generic_path() {}
/// ```
#[cfg(feature = "macros")]
pub use uvio_macros::test;

/// The version of the compiled libuv, such as `"1.53.0"` (`uv_version_string`).
pub fn libuv_version() -> &'static str {
    uv::version_string()
}
