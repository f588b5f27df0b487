//! # Engines: how the async types do their I/O
//!
//! The public async types (`net::TcpStream`, `net::TcpListener`, `fs::File`, …) are the same on every OS and
//! every engine; an engine is how their operations reach the kernel. Every engine plugs into the same libuv
//! loop, so timers, signals, processes, DNS and fs events run on libuv whatever engine carries sockets and files.
//!
//! | engine | where | sockets | files |
//! |---|---|---|---|
//! | [`Backend::Libuv`] | every OS | libuv streams (`uv_read_start`, `uv_write`) | libuv fs requests on its thread pool (on Linux, reads of cached data first try `preadv2(RWF_NOWAIT)` on the loop thread, on every engine) |
//! | `Backend::Epoll` (Linux) | Linux | non-blocking syscalls straight into the caller's buffer; readiness from a `uv_poll_t` on the loop, only after `EAGAIN` | as libuv |
//! | `Backend::IoUring` (Linux) | Linux ≥ 5.6 | TCP and Unix streams on the ring (Linux ≥ 5.19: recv from a provided-buffer ring, send, multishot accept, connect, shutdown); UDP, and streams on older kernels, as epoll | one ring per runtime, its fd watched by the loop; submissions batched once per loop iteration |
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
//! ## Roles
//! Every engine implements the same roles, under the same names, in its own folder (`engine/libuv/`,
//! `engine/epoll/`, `engine/io_uring/`): `Stream`, `Listener`, `Datagram` (`libuv::Stream<T>` is generic over the
//! libuv handle kind: `uv::Tcp`, `uv::Pipe`). The public types in `net/` never name an engine: they hold one
//! dispatch value per role (`AnyStream<T>`, `AnyListener<T>`, `AnyDatagram`: an enum with one variant per
//! engine, matched on each call — no box, no `dyn`), made through the runtime's `Engine`, which picks the engine
//! of each new socket once (`Engine::socket_engine`: the ring if it carries stream sockets → epoll's readiness code
//! → libuv). Nothing under `engine/` looks the runtime up: what an engine needs (the loop, the ring, the epoll
//! reactor, the libuv registry of lingering handles) comes from the `Engine` passed in.
//!
//! Options and addresses are not a role method: each dispatch has `with_socket(|s: socket2::SockRef| …)`, the
//! socket itself on every engine (libuv's through `uv_fileno`), so `set_nodelay`, `set_keepalive`, `local_addr`
//! and `peer_addr` are one code path. Hand-back to std is `into_socket` everywhere: the socket in blocking mode, plus
//! what the engine had already taken from the kernel (unread bytes, accepted connections, received datagrams).
//!
//! ### Stream
//! A connected byte stream (TCP, Unix socket; Windows named pipe on libuv).
//! - `connect(engine, &SockAddr)` (async; dropping the future abandons the connect and closes the socket),
//!   `from_std(engine, socket2::Socket)`.
//! - `poll_read(cx, &mut [u8]) -> usize` (0: end-of-stream or empty buffer; bytes a dropped read received are kept
//!   for the next), `poll_read_with(cx, max, take)` (tokio's `ReadBuf`), `poll_write(cx, &[u8]) -> usize` (at most
//!   `WRITE_MAX`, 256 KiB; `Ok(n)` means the `n` bytes will reach the kernel even if the stream is dropped),
//!   `poll_flush` (every accepted byte is the kernel's), `poll_shutdown` (flush, then `SHUT_WR`; `ENOTCONN` is
//!   success).
//! - Drop of the last owner (`release_if_last`): queued bytes are still sent, then the socket closes.
//! - `into_socket()` (async: flushes first) `-> (Socket, unread bytes)`; `same` (for `reunite`); `with_socket`.
//!
//! ### Listener
//! A listening stream socket.
//! - `bind(engine, &SockAddr)` (`SO_REUSEADDR` for internet addresses, as libuv), `from_std(engine, Socket, shared)`
//!   (listens again with the socket's backlog; `shared`: other loops accept from it too, so one idle loop is
//!   woken per connection where the kernel allows it and none accepts ahead of its tasks).
//! - `poll_accept(cx) -> (AnyStream<T>, SockAddr)`: a dropped accept loses no connection. libuv accepts ahead (one
//!   connection; several on Windows unless shared), io_uring's multishot accept up to 256 (a shared listener:
//!   single-shot accepts), epoll never. `empty_wakeups()`: wake-ups that found nothing (epoll only; 0 elsewhere).
//! - `into_socket() -> (Socket, accepted-ahead sockets, oldest first)`; `with_socket`.
//!
//! ### Datagram
//! A UDP socket.
//! - `bind(engine, SocketAddr)` (no `SO_REUSEADDR`), `from_std(engine, UdpSocket)`, `connect(SocketAddr)`.
//! - `poll_recv_from`/`try_recv_from` (truncating, errors in order with the datagrams; a dropped receive loses
//!   nothing), `send_to`/`poll_send_to`/`try_send_to` (`None`: to the connected peer; a target on a connected
//!   socket is `EISCONN`).
//! - Options (`set_broadcast`, `set_ttl`, multicast) and addresses as methods, since libuv sets them by family.
//! - Drop: queued sends are still sent. `into_socket()` (async: waits for queued sends)
//!   `-> (Socket, unread datagrams with their senders)`.
//!
//! ### Readiness (Unix)
//! Readiness of a descriptor the program reads and writes itself (`io::AsyncFd`); dispatch `AnyReadiness` in
//! `engine/readiness.rs`, one `Readiness` per engine (`libuv/readiness.rs`, `epoll/readiness.rs`).
//! - `new(engine, BorrowedFd)`: makes the descriptor non-blocking and watches a *duplicate* of it
//!   (`F_DUPFD_CLOEXEC`) that the engine owns and closes only after it stopped watching, so whatever the owner
//!   does with its own descriptor, the engine never watches a closed or reused number. Nothing is ready at first.
//! - `poll_ready(cx, Direction::{Read, Write})`: `Ready` while the direction is ready, else the task waits for
//!   the engine's next report. Readiness is cached until `clear(dir)` (the user saw `WouldBlock`); hang-up and
//!   errors stay ready. After shutdown, an error. Several tasks may wait; all are woken.
//! - Drop: stops watching (synchronously: the descriptor may be closed right after).
//! - libuv: a `uv_poll_t`, armed only for the directions some task waits for (it is level-triggered, so an
//!   armed idle watcher would fire every iteration), re-armed after each event for what is still awaited.
//!   epoll: an edge-triggered registration in the runtime's epoll set (the sockets' readiness flags, starting
//!   clear). io_uring: the epoll engine's code (as UDP; see below for why). libuv's and epoll's keep the same
//!   state, `wakers::ReadyState` (a ready flag, a sticky closed flag and the waiting tasks per direction); they
//!   differ only in what feeds it.
//!
//! ### Adding an engine
//! 1. A folder `engine/<name>/` with `mod.rs` (the engine's per-runtime state) and one file per role
//!    (`stream.rs`, `listener.rs`, `datagram.rs`: types named `Stream`, `Listener`, `Datagram` with the methods
//!    above).
//! 2. A `Backend` variant (parsed in `FromStr`, resolved in `resolve`/`auto`), its state in `Engine`, and its rung
//!    in `Engine::socket_engine` — all in `engine/mod.rs`.
//! 3. One variant and one match arm per method in each role's dispatch (`AnyStream`, `AnyListener`,
//!    `AnyDatagram`), all in `engine/sockets.rs`.
//! 4. On Unix, its arm in `AnyReadiness::new` (`engine/readiness.rs`, a match on `SocketEngine`): its own
//!    `Readiness`, or another engine's (io_uring uses epoll's).
//! 5. For files, if the engine carries any: its arm in each operation of `engine/files.rs`; an operation it
//!    does not carry falls back to libuv there.
//! 6. The lists of engines to test on, which the compiler does not check: `engines_to_test` in
//!    `macro_support.rs` (what `#[uvio::test]` runs on) and `ENGINES`/`rt_test!` in `tests/common/rt.rs`.
//!
//! That is three files of `src/` outside the folder for sockets (`mod.rs`, `sockets.rs`, `readiness.rs`), four
//! with files, plus `macro_support.rs` and the tests' list; `net/` and `fs/` do not change.
//!
//! ## Choosing
//! [`Backend::Auto`] (the default) picks the fastest engine that works here and logs (`log`, target `uvio`) what
//! it picked and why. io_uring failing with `ENOSYS` (old kernel), `EPERM` (seccomp,
//! `kernel.io_uring_disabled`) or `ENOMEM` (locked-memory limit) counts as "not available": `Auto` falls back
//! (epoll, then libuv). An explicit `Backend::IoUring` that is not available is an error from
//! [`Builder::build`](crate::Builder::build). The environment variable `UVIO_BACKEND=auto|libuv|epoll|io_uring`
//! overrides the builder's choice for a whole process, so a test suite can run once per engine.
//!
//! ## The io_uring engine today
//! - **Files** go through the ring: `File` reads and writes at offsets, `open` (`openat` with `O_CLOEXEC`),
//!   close, `metadata`/`symlink_metadata`/`File::metadata` (`statx`), `sync_all`/`sync_data` (`fsync`). Every
//!   other fs operation stays on libuv's thread pool, and so does any of these whose opcode this kernel lacks
//!   (probed at startup, per operation). Submissions are flushed once per loop iteration (a `uv_prepare_t`),
//!   completions are reaped when the loop sees the ring's fd readable (a `uv_poll_t`). The ring is set up with
//!   `IORING_SETUP_COOP_TASKRUN` where the kernel has it (5.19): completions that need the thread (socket
//!   operations) run at its next kernel entry instead of interrupting it.
//! - **TCP and Unix stream sockets** go through the ring: connect (`IORING_OP_CONNECT`), accept (one multishot
//!   `IORING_OP_ACCEPT` per listener), reads (single-shot `IORING_OP_RECV` picking a buffer from one
//!   provided-buffer ring per runtime, armed only while a reader waits), writes (queued, one `IORING_OP_SEND` in
//!   flight per connection), shutdown (`IORING_OP_SHUTDOWN`); the socket is closed once its last operation has
//!   completed. The design and its reasons are in `src/engine/io_uring/net.rs` (streams in `net/stream.rs`,
//!   listeners in `net/listener.rs`). This needs Linux 5.19 (the socket opcodes, multishot accept and
//!   provided-buffer rings, probed at startup); without them stream sockets run on the epoll engine's readiness
//!   code (logged at `info`).
//! - **UDP stays on the epoll engine's code** under `Backend::IoUring`: datagrams are one syscall each
//!   straight into the caller's buffer already, and a ring recv would add a copy from a provided buffer.
//! - **Readiness (`io::AsyncFd`) stays on the epoll engine's code** too: an edge-triggered registration is
//!   made once and costs nothing per wait, where `IORING_OP_POLL_ADD` (one-shot) would cost a submission per
//!   wait and an `IORING_OP_POLL_REMOVE` whose completion must be awaited before a dropped `AsyncFd` has
//!   truly stopped watching (drop and `into_inner` are synchronous).
//! - A dropped socket future never loses bytes and never frees what the kernel may touch: a dropped read leaves
//!   the connection's recv armed (its bytes go to the next read), a dropped connect is cancelled
//!   (`IORING_OP_ASYNC_CANCEL`) and its socket closed when the completion arrives, a dropped accept leaves
//!   accepted connections queued in the listener, and a dropped stream's queued bytes are still sent.
//! - Dropping a future with a ring operation in flight never frees what the kernel may touch: the operation's
//!   slot owns its buffer, path, statx struct and file until the completion arrives; a runtime that shuts down
//!   waits for the operations still in flight. File operations are not cancelled (they complete quickly).
//!
//!
//! ### Files
//! The files role is dispatched in one place, `engine/files.rs`: `fs` looks the runtime up, and hands its
//! engine and loop down as a `Files` value (a `fs::File` keeps one, holding the ring weakly so that it never
//! keeps the engine alive); nothing under `engine/` looks the runtime up.
//! - **Operations.** open (`openat` with `O_CLOEXEC`), close, reads and writes at an offset (or at the
//!   kernel's position, for FIFOs, pipes, terminals and appends), stat/lstat/fstat (`statx`), fsync and
//!   fdatasync, ftruncate, rename, unlink, rmdir, mkdir, link and symlink are asked of the engine first.
//!   Everything else (copyfile, realpath, readlink, chmod, directories, the whole-file helpers' reads and
//!   writes) runs on libuv's thread pool on every engine.
//! - **"Not handled" falls back.** An engine that does not carry an operation — any engine but io_uring, or a
//!   kernel without that operation's opcode (probed per operation at startup) — leaves it to a libuv fs request
//!   on the thread pool (`engine/libuv/fs.rs`), as libuv's own `uv__iou_fs_*` fall back to its thread pool. The
//!   results and errors are the same on both paths (`EINVAL` for an offset past `i64::MAX`, `InvalidInput` for
//!   a NUL in a path, …). A ring `open` that fails with `ENXIO` (a write-only FIFO without a reader, which the
//!   kernel's non-waiting first attempt refuses) is retried as an open that waits, as `open(2)` does.
//! - **Page cache first.** On Linux, on every engine, a read of a `File` first tries `preadv2(RWF_NOWAIT)` on
//!   the loop thread (`engine/files/cached.rs`) and becomes a request only when the data is not cached.
//! - **Cancellation.** Dropping a file future never frees what the kernel or a pool thread may still touch: the
//!   request (a libuv request, or a ring slot) owns its buffer, paths, statx struct and a clone of the file
//!   until it completes, and its result is dropped then. File operations are not cancelled (they complete
//!   quickly), except that a runtime shutting down cancels ring reads, opens and writes to pipes (which may
//!   wait forever) and waits for the rest; shutdown also waits for the thread pool's requests. Once the runtime
//!   is gone, file operations fail at once instead of starting.
//! - **Speed.** Each operation is a plain (generic) call into the engine; nothing is boxed per operation beyond
//!   the callback the request itself keeps.
//!
//! ### Simulating failures (tests only)
//! The hidden `Builder::simulate_ring_failure(what)` (Linux) makes the io_uring setup of that one runtime act
//! as if the kernel failed: `ENOSYS`, `EPERM` or `ENOMEM` (the ring setup fails with that error), `NO_STATX`
//! (no statx opcode), `NO_FS_PATH_OPS` (no path-operation or ftruncate opcodes), `SQPOLL_EPERM` (SQPOLL rings
//! refused) or `NO_NET` (no ring networking); another name makes `build` fail with `InvalidInput`. So the
//! fallback paths are tested on machines that have io_uring, without touching the process environment. For
//! child processes (the benches compare engines that way), the environment variable `UVIO_IO_URING_SIMULATE`
//! takes the same names; it is read once per runtime built, and only when the builder set nothing (an unknown
//! value there is ignored). Neither is a stable interface.

#[cfg(target_os = "linux")]
pub(crate) mod epoll;
pub(crate) mod files;
#[cfg(target_os = "linux")]
pub(crate) mod io_uring;
pub(crate) mod libuv;
#[cfg(unix)]
pub(crate) mod peer_cred;
#[cfg(unix)]
mod readiness;
mod sockets;
mod wakers;

#[cfg(unix)]
pub(crate) use readiness::{AnyReadiness, Direction};
pub(crate) use sockets::{AnyDatagram, AnyListener, AnyStream};

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

/// The engine a runtime runs, resolved from the requested [`Backend`] (never `Auto`). An explicit
/// `Backend::IoUring` that is not available here is an error saying why.
fn resolve(requested: Backend, #[cfg(target_os = "linux")] options: &RingOptions) -> io::Result<Backend> {
    let chosen = match requested {
        #[cfg(target_os = "linux")]
        Backend::Auto => auto(options),
        #[cfg(not(target_os = "linux"))]
        Backend::Auto => auto(),
        #[cfg(target_os = "linux")]
        Backend::IoUring => {
            io_uring::check_available(options)?;
            Backend::IoUring
        }
        other => other,
    };
    log::debug!(target: "uvio", "engine: {chosen} (requested {requested})");
    Ok(chosen)
}

/// What `Auto` picks here, and why (logged).
#[cfg(target_os = "linux")]
fn auto(options: &RingOptions) -> Backend {
    match io_uring::check_available(options) {
        Ok(()) => Backend::IoUring,
        Err(e) => {
            log::info!(target: "uvio", "auto: epoll engine, since {e}");
            Backend::Epoll
        }
    }
}

/// What `Auto` picks here, and why (logged).
#[cfg(not(target_os = "linux"))]
fn auto() -> Backend {
    log::debug!(target: "uvio", "auto: libuv (the only engine on this OS)");
    Backend::Libuv
}

/// The io_uring engine of one runtime ([`io_uring::Driver`]); uninhabited where there is no io_uring.
#[cfg(target_os = "linux")]
pub(crate) use io_uring::Driver;

/// The io_uring engine of one runtime; uninhabited where there is no io_uring.
#[cfg(not(target_os = "linux"))]
pub(crate) enum Driver {}

/// The Linux ring knobs of [`crate::linux::BuilderExt`].
#[cfg(target_os = "linux")]
pub(crate) use io_uring::RingOptions;

/// One runtime's engine: what the runtime hands its sockets and files. The executor holds it; the public types
/// find it through the current runtime and pass it down, so nothing under `engine/` looks the runtime up.
pub(crate) struct Engine {
    /// Resolved: never `Auto`.
    backend: Backend,
    /// The io_uring driver when `backend` is `IoUring` (its ring is watched on the loop).
    // Read only by Linux code: elsewhere `Driver` is uninhabited and this field is always `None`.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    ring: Option<std::rc::Rc<Driver>>,
    /// The epoll engine's epoll set, made when its first socket is, and the loop that watches it.
    #[cfg(target_os = "linux")]
    epoll: std::cell::OnceCell<std::rc::Rc<epoll::Reactor>>,
    /// The libuv engine's handles that outlive their owners (and whether the runtime is gone): every engine
    /// makes libuv sockets when it does not carry a kind itself.
    lingering: std::rc::Rc<libuv::Lingering>,
    /// The path operations on the path pool (`files::pool`), made on first use; `None` inside if they could
    /// not be (the files then use libuv's pool).
    #[cfg(any(target_os = "linux", target_os = "macos"))]
    paths: std::cell::OnceCell<Option<std::rc::Rc<files::path_ops::PathOps>>>,
    lp: crate::uv::Loop,
}

/// Which engine a new socket goes to (see [`Engine::socket_engine`]).
enum SocketEngine {
    #[cfg(target_os = "linux")]
    Uring(std::rc::Rc<Driver>),
    #[cfg(target_os = "linux")]
    Epoll(std::rc::Rc<epoll::Reactor>),
    Libuv,
}

impl Engine {
    /// The engine `requested` resolves to here, on `lp`. `strict` (io_uring was asked for explicitly) makes a
    /// refused SQPOLL request an error instead of a fallback.
    pub(crate) fn new(
        lp: &crate::uv::Loop,
        requested: Backend,
        #[cfg(target_os = "linux")] options: RingOptions,
    ) -> io::Result<Engine> {
        #[cfg(target_os = "linux")]
        let options = options.with_env()?; // the failure to simulate, if any, is read once, here
        #[cfg(target_os = "linux")]
        let backend = resolve(requested, &options)?;
        #[cfg(not(target_os = "linux"))]
        let backend = resolve(requested)?;
        let ring = match backend {
            #[cfg(target_os = "linux")]
            Backend::IoUring => Some(Driver::new(lp, options, requested == Backend::IoUring)?),
            _ => None,
        };
        Ok(Engine {
            backend,
            ring,
            #[cfg(target_os = "linux")]
            epoll: std::cell::OnceCell::new(),
            lingering: std::rc::Rc::default(),
            #[cfg(any(target_os = "linux", target_os = "macos"))]
            paths: std::cell::OnceCell::new(),
            lp: lp.clone(),
        })
    }

    /// The engine this runtime runs (never `Auto`).
    pub(crate) fn backend(&self) -> Backend {
        self.backend
    }

    /// The io_uring driver, when the engine is io_uring.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))] // always `None` there
    pub(crate) fn ring(&self) -> Option<&std::rc::Rc<Driver>> {
        self.ring.as_ref()
    }

    /// The epoll engine's reactor for this runtime (made on first use).
    #[cfg(target_os = "linux")]
    pub(crate) fn reactor(&self) -> io::Result<std::rc::Rc<epoll::Reactor>> {
        if let Some(r) = self.epoll.get() {
            return Ok(r.clone());
        }
        let r = epoll::Reactor::new(&self.lp)?;
        Ok(self.epoll.get_or_init(|| r).clone())
    }

    /// The runtime's path operations on the path pool (made on first use), or `None` where they cannot be.
    #[cfg(any(target_os = "linux", target_os = "macos"))]
    pub(crate) fn path_ops(&self) -> Option<&std::rc::Rc<files::path_ops::PathOps>> {
        self.paths
            .get_or_init(|| match self.lp.inner().runtime_gone.get() {
                true => None,
                false => files::path_ops::PathOps::new(&self.lp).ok().map(std::rc::Rc::new),
            })
            .as_ref()
    }

    /// The runtime shuts down: operations of this engine's sockets and files fail from now on.
    pub(crate) fn shut_down(&self) {
        self.lingering.shut_down();
        #[cfg(any(target_os = "linux", target_os = "macos"))]
        if let Some(Some(paths)) = self.paths.get() {
            paths.shut_down();
        }
        #[cfg(target_os = "linux")]
        if let Some(reactor) = self.epoll.get() {
            reactor.shut_down();
        }
    }

    /// How many dropped libuv sockets still send what was written to them before they were dropped.
    pub(crate) fn lingering(&self) -> usize {
        self.lingering.len()
    }

    /// The end of the runtime's shutdown (its tasks are dropped): closes the libuv sockets that still linger.
    pub(crate) fn drop_lingering(&self) {
        self.lingering.drop_all();
    }

    /// The creation ladder, written once for every role: the ring if it carries stream sockets (`stream`) and
    /// this kernel has them, else the epoll engine's readiness code under `Epoll` and `IoUring`, else libuv.
    fn socket_engine(&self, stream: bool) -> io::Result<SocketEngine> {
        #[cfg(target_os = "linux")]
        {
            if let Some(driver) = self.ring.as_ref().filter(|driver| stream && driver.net()) {
                return Ok(SocketEngine::Uring(driver.clone()));
            }
            if self.backend.readiness_sockets() {
                return Ok(SocketEngine::Epoll(self.reactor()?));
            }
        }
        let _ = stream;
        Ok(SocketEngine::Libuv)
    }
}

impl Backend {
    /// Whether sockets use the epoll engine's readiness code: under `Epoll`, and under `IoUring` for UDP and
    /// for stream sockets when the ring does not carry them (the ring is asked first: `Engine::socket_engine`).
    #[cfg(target_os = "linux")]
    pub(crate) fn readiness_sockets(self) -> bool {
        matches!(self, Backend::Epoll | Backend::IoUring)
    }
}
