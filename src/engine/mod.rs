//! # Engines: how the async types do their I/O
//!
//! The public async types (`net::TcpStream`, `net::TcpListener`, `fs::File`, …) are the same on every OS and
//! every engine; an engine is how their operations reach the kernel. Every engine plugs into the same libuv
//! loop, so timers, signals, processes, DNS and fs events run on libuv whatever engine carries sockets and files.
//!
//! | engine | where | sockets | files |
//! |---|---|---|---|
//! | [`Backend::Libuv`] | every OS | libuv streams (`uv_read_start`, `uv_write`) | libuv fs requests on its thread pool |
//! | [`Backend::Epoll`] (Linux) | Linux | non-blocking syscalls straight into the caller's buffer; readiness from a `uv_poll_t` on the loop, only after `EAGAIN` | as libuv |
//! | [`Backend::IoUring`] (Linux) | Linux ≥ 5.6 | as epoll | one ring per runtime, its fd watched by the loop; submissions batched once per loop iteration |
//!
//! ## The contract every engine keeps
//! - **Same semantics.** Byte streams are byte-exact and in order; errors map to the same `io::ErrorKind`s; a
//!   write that returned `Ok(n)` never loses those bytes, even if the stream is dropped right after.
//! - **Cancellation is safe.** Dropping a future at any `.await` never frees memory the kernel may still write
//!   into: an engine parks buffers and descriptors until the kernel is done with them (io_uring: until the
//!   completion of a cancelled operation arrives).
//! - **No loss on cancel.** Bytes received by the kernel for a dropped read are kept for the next read.
//! - **One thread.** Engine state lives on the runtime's thread, beside the loop (`!Send`).
//!
//! ## Choosing
//! [`Backend::Auto`] (the default) picks the fastest engine that works here and logs (`log`, target `uvio`) what
//! it picked and why. io_uring failing with `ENOSYS` (old kernel), `EPERM` (seccomp,
//! `kernel.io_uring_disabled`) or `ENOMEM` (locked-memory limit) counts as "not available": `Auto` falls back
//! (epoll, then libuv). An explicit [`Backend::IoUring`] that is not available is an error from
//! [`Builder::build`](crate::Builder::build). The environment variable `UVIO_BACKEND=auto|libuv|epoll|io_uring`
//! overrides the builder's choice for a whole process, so a test suite can run once per engine.

use std::fmt;
use std::io;
use std::str::FromStr;

/// Which engine a runtime uses for sockets and files; see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Backend {
    /// The fastest engine available here, with fallback.
    #[default]
    Auto,
    /// libuv's own streams and fs requests: every OS.
    Libuv,
    /// Readiness-based non-blocking syscalls (Linux).
    #[cfg(target_os = "linux")]
    Epoll,
    /// Completion-based io_uring (Linux).
    #[cfg(target_os = "linux")]
    IoUring,
}

impl Backend {
    /// The name used by `UVIO_BACKEND`: `auto`, `libuv`, `epoll`, `io_uring`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Auto => "auto",
            Backend::Libuv => "libuv",
            #[cfg(target_os = "linux")]
            Backend::Epoll => "epoll",
            #[cfg(target_os = "linux")]
            Backend::IoUring => "io_uring",
        }
    }

    /// The backend named by the `UVIO_BACKEND` environment variable, if it is set. An unknown name is an error.
    pub fn from_env() -> io::Result<Option<Backend>> {
        match std::env::var("UVIO_BACKEND") {
            Ok(v) if !v.is_empty() => v.parse().map(Some),
            _ => Ok(None),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Backend {
    type Err = io::Error;

    fn from_str(s: &str) -> io::Result<Backend> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Backend::Auto),
            "libuv" | "uv" => Ok(Backend::Libuv),
            #[cfg(target_os = "linux")]
            "epoll" => Ok(Backend::Epoll),
            #[cfg(target_os = "linux")]
            "io_uring" | "io-uring" | "iouring" | "uring" => Ok(Backend::IoUring),
            other => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unknown or unsupported uvio backend {other:?} (auto, libuv{})", linux_names()),
            )),
        }
    }
}

fn linux_names() -> &'static str {
    if cfg!(target_os = "linux") {
        ", epoll, io_uring"
    } else {
        ""
    }
}

/// The engine a runtime runs, resolved from the requested [`Backend`] (never `Auto`).
pub(crate) fn resolve(requested: Backend) -> io::Result<Backend> {
    let chosen = match requested {
        Backend::Auto => auto(),
        other => other,
    };
    log::debug!(target: "uvio", "engine: {chosen} (requested {requested})");
    Ok(chosen)
}

/// What `Auto` picks here, and why (logged).
fn auto() -> Backend {
    // Until the Linux engines land, libuv carries everything.
    log::debug!(target: "uvio", "auto: libuv (the Linux engines are not built yet)");
    Backend::Libuv
}
