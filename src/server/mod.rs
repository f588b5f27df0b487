//! Serve a TCP address on several threads, one runtime (one loop) each, with the connections spread over them
//! in one of four ways ([`Pattern`]), graceful shutdown, and counters per worker while it runs.
//!
//! ```
//! use futures::{AsyncReadExt, AsyncWriteExt};
//! use std::time::Duration;
//! use uvio::server::{Pattern, Server};
//!
//! // An echo server on two threads, the kernel spreading connections over two SO_REUSEPORT listeners.
//! let server = Server::builder().pattern(Pattern::ReusePort).threads(2).bind("127.0.0.1:0")?;
//! let addr = server.local_addr();
//! let running = server.serve(|mut conn, _worker| async move {
//!     let mut buf = vec![0u8; 4096];
//!     loop {
//!         let n = conn.read(&mut buf).await?;
//!         if n == 0 {
//!             return Ok(());
//!         }
//!         conn.write_all(&buf[..n]).await?;
//!     }
//! })?;
//!
//! let mut client = std::net::TcpStream::connect(addr)?;
//! std::io::Write::write_all(&mut client, b"hello")?;
//! let mut back = [0u8; 5];
//! std::io::Read::read_exact(&mut client, &mut back)?;
//! assert_eq!(&back, b"hello");
//! drop(client);
//!
//! let summary = running.shutdown(Duration::from_secs(1))?;
//! assert_eq!(summary.accepted, 1);
//! # std::io::Result::Ok(())
//! ```
//!
//! # The four patterns
//!
//! | pattern | who accepts | who serves | what it costs |
//! |---|---|---|---|
//! | [`SingleLoop`](Pattern::SingleLoop) | one loop | the same loop | one core, whatever `threads` says (Node's model) |
//! | [`AcceptorWorkers`](Pattern::AcceptorWorkers) | one acceptor loop on a thread of its own | `threads` worker loops, each connection handed to one ([`Balance`]) | one hand-off per connection (memcached's model; Node's cluster hands sockets over the same way) |
//! | [`SharedListener`](Pattern::SharedListener) | every worker, from one listening socket | the worker that accepted | the kernel picks the worker; one idle worker wakes per connection where the engine allows (see below) (nginx's model) |
//! | [`ReusePort`](Pattern::ReusePort) | every worker, from its own `SO_REUSEPORT` listener on the same port | the worker that accepted | the kernel spreads by a hash of the addresses, not by load; connections queued on a shard die with its listener |
//!
//! **Shared listener, several idle loops, one connection**: no engine takes connections ahead of its
//! worker's tasks, and:
//! - epoll: while a worker waits to accept, the socket sits in its loop's (libuv's) epoll set with
//!   `EPOLLEXCLUSIVE`, so the kernel wakes one idle worker per connection; the winner takes it out of the set
//!   and puts it back when it waits again, at the back of the kernel's queue, so idle workers take turns.
//!   [`WorkerStats::empty_wakeups`] counts the wake-ups that still found nothing (a busy worker's loop may see
//!   the connection too).
//! - io_uring: each ring has one single-shot accept waiting (never a multishot one, which would take every
//!   connection it could); the kernel completes one of them per connection, and a re-armed accept waits behind
//!   the other rings'.
//! - libuv: every idle worker wakes (a herd: libuv's own epoll registration cannot be exclusive); one accepts,
//!   the others find nothing and sleep again, which libuv does not report. libuv accepts one connection at a
//!   time (on Windows too: `uv_tcp_simultaneous_accepts(0)`).
//!
//! **ReusePort** needs an OS that balances `SO_REUSEPORT` listeners (Linux). Elsewhere (macOS and the BSDs let
//! several sockets bind but do not spread connections over them; on Windows the option does not exist) the
//! server falls back to [`SharedListener`](Pattern::SharedListener) and logs it once (`log`, target `uvio`).
//!
//! # Shutdown
//! [`RunningServer::shutdown`] stops accepting everywhere, first taking the connections already waiting in
//! the listen queues (a connection left queued in a listener that closes is reset by the kernel, and with
//! `ReusePort` each shard has its own queue): each worker takes what its engine had accepted, then accepts
//! without blocking until the kernel's queue is empty (`EAGAIN`), then closes its listener. Then it lets open
//! connections finish within a deadline. Handlers
//! still running at the deadline are cancelled (their futures dropped) and counted as cut in the [`Summary`].

mod listen;
mod worker;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::health::Report;
use crate::net::TcpStream;
use crate::Backend;

/// How a [`Server`] spreads connections over its threads; see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Pattern {
    /// One loop listens, accepts and serves.
    SingleLoop,
    /// One acceptor loop hands each connection to one of the worker loops.
    AcceptorWorkers,
    /// Every worker loop accepts from one shared listening socket.
    SharedListener,
    /// Every worker loop accepts from its own `SO_REUSEPORT` listener; the kernel spreads connections.
    #[default]
    ReusePort,
}

/// How the acceptor of [`Pattern::AcceptorWorkers`] picks a worker for each connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Balance {
    /// Each worker in turn.
    #[default]
    RoundRobin,
    /// The worker with the fewest open connections (the first of them on a tie).
    LeastLoaded,
}

/// The settings of a [`Server`], before it binds.
#[derive(Debug, Clone)]
pub struct Builder {
    pattern: Pattern,
    threads: usize,
    backend: Backend,
    backlog: i32,
    balance: Balance,
    health_interval: Duration,
}

impl Default for Builder {
    fn default() -> Builder {
        Builder {
            pattern: Pattern::default(),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            backend: Default::default(),
            backlog: 1024,
            balance: Balance::default(),
            health_interval: Duration::from_secs(1),
        }
    }
}

impl Builder {
    /// How connections are spread (default [`Pattern::ReusePort`]).
    pub fn pattern(mut self, pattern: Pattern) -> Builder {
        self.pattern = pattern;
        self
    }

    /// How many worker threads serve connections (default: the machine's available parallelism; at least 1).
    /// [`Pattern::SingleLoop`] uses one whatever this says; [`Pattern::AcceptorWorkers`] adds the acceptor's.
    pub fn threads(mut self, threads: usize) -> Builder {
        self.threads = threads.max(1);
        self
    }

    /// The engine of every worker's runtime, chosen as for [`crate::Builder::backend`] (default `Auto`;
    /// `UVIO_BACKEND` overrides it).
    pub fn backend(mut self, backend: Backend) -> Builder {
        self.backend = backend;
        self
    }

    /// The listen backlog of each listening socket (default 1024; the kernel caps it at `somaxconn`).
    pub fn backlog(mut self, backlog: i32) -> Builder {
        self.backlog = backlog.max(1);
        self
    }

    /// How the acceptor picks a worker under [`Pattern::AcceptorWorkers`] (default round robin).
    pub fn balance(mut self, balance: Balance) -> Builder {
        self.balance = balance;
        self
    }

    /// How often each worker's loop health ([`WorkerStats::health`]) is measured (default 1 s).
    pub fn health_interval(mut self, interval: Duration) -> Builder {
        self.health_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// Binds the listening socket(s) to `addr` (the first address that binds), without serving yet.
    pub fn bind(self, addr: impl std::net::ToSocketAddrs) -> io::Result<Server> {
        let pattern = effective_pattern(self.pattern);
        let mut last = io::Error::new(io::ErrorKind::InvalidInput, "no addresses to bind");
        for addr in addr.to_socket_addrs()? {
            match listen::bind(addr, pattern, self.shards(pattern), self.backlog) {
                Ok(listeners) => return Ok(Server { builder: Builder { pattern, ..self }, listeners }),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// How many worker loops serve under `pattern`.
    fn workers(&self, pattern: Pattern) -> usize {
        match pattern {
            Pattern::SingleLoop => 1,
            _ => self.threads,
        }
    }

    /// How many listening sockets `pattern` binds.
    fn shards(&self, pattern: Pattern) -> usize {
        match pattern {
            Pattern::ReusePort => self.threads,
            _ => 1,
        }
    }
}

/// `ReusePort` where the OS balances it, else `SharedListener` (logged once).
fn effective_pattern(pattern: Pattern) -> Pattern {
    if pattern == Pattern::ReusePort && !cfg!(any(target_os = "linux", target_os = "android")) {
        static LOGGED: std::sync::Once = std::sync::Once::new();
        LOGGED.call_once(|| {
            log::info!(target: "uvio", "server: SO_REUSEPORT does not balance connections here: shared listener instead")
        });
        return Pattern::SharedListener;
    }
    pattern
}

/// Bound listening socket(s), ready to [`serve`](Server::serve).
#[derive(Debug)]
pub struct Server {
    builder: Builder,
    listeners: Vec<std::net::TcpListener>,
}

impl Server {
    /// The default settings: [`Pattern::ReusePort`] on every available core, engine `Auto`, backlog 1024.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The bound address (with the actual port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listeners[0].local_addr().expect("a bound listener has an address")
    }

    /// The pattern in force: what was asked, or [`Pattern::SharedListener`] where `ReusePort` does not balance.
    pub fn pattern(&self) -> Pattern {
        self.builder.pattern
    }

    /// Starts the threads and serves every connection with `handler(connection, worker)`, on the worker that
    /// accepted it (or was handed it). A handler's error is counted ([`WorkerStats::errors`]) and logged at
    /// `debug`; it ends that connection only. Fails if a thread or a runtime cannot be started.
    pub fn serve<H, F>(self, handler: H) -> io::Result<RunningServer>
    where
        H: Fn(TcpStream, Worker) -> F + Send + Sync + 'static,
        F: std::future::Future<Output = io::Result<()>> + 'static,
    {
        let local_addr = self.local_addr();
        worker::start(self.builder, self.listeners, local_addr, Arc::new(handler))
    }
}

/// What a handler knows about the worker that runs it.
#[derive(Clone)]
pub struct Worker {
    index: usize,
    handle: crate::Handle,
    stopping: futures::future::Shared<futures::channel::oneshot::Receiver<()>>,
}

impl Worker {
    /// Which worker this is, from 0.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The worker's runtime, to spawn `Send` futures onto it from elsewhere.
    pub fn handle(&self) -> &crate::Handle {
        &self.handle
    }

    /// Resolves once the server has begun to shut down (it no longer accepts): a handler that keeps idle
    /// connections (HTTP keep-alive, say) can finish its current request and close, rather than be cut at the
    /// deadline.
    pub fn stopping(&self) -> impl std::future::Future<Output = ()> + 'static {
        let stopping = self.stopping.clone();
        async move {
            let _ = stopping.await; // sent or dropped: either way the server is stopping
        }
    }
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("index", &self.index).finish_non_exhaustive()
    }
}

/// Counters of one worker, readable from any thread while the server runs.
#[derive(Debug, Default)]
pub struct WorkerStats {
    accepted: AtomicU64,
    open: AtomicU64,
    finished: AtomicU64,
    errors: AtomicU64,
    empty_wakeups: AtomicU64,
    health: Mutex<Option<Report>>,
}

impl WorkerStats {
    /// Connections this worker took (accepted, or was handed by the acceptor).
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }

    /// Connections whose handler is running now.
    pub fn open(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    /// Connections whose handler returned (with `Ok` or `Err`).
    pub fn finished(&self) -> u64 {
        self.finished.load(Ordering::Relaxed)
    }

    /// Handlers that returned `Err`, and accepts that failed.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Wake-ups of this worker's listener that found no connection to accept, because another worker took it:
    /// the thundering herd, as this worker saw it (updated after each accept, and when the server stops).
    /// Counted on the epoll engine only; 0 elsewhere, where it cannot be seen (io_uring completes each accept
    /// on one ring, so it has no such wake-ups; libuv drops its `EAGAIN` without telling).
    pub fn empty_wakeups(&self) -> u64 {
        self.empty_wakeups.load(Ordering::Relaxed)
    }

    /// The worker loop's latest health report (lag and idle share over the last health interval), once one
    /// interval has passed.
    pub fn health(&self) -> Option<Report> {
        *self.health.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What a graceful [`shutdown`](RunningServer::shutdown) reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Summary {
    /// Connections accepted over the server's life.
    pub accepted: u64,
    /// Connections whose handler returned.
    pub finished: u64,
    /// Connections whose handler was still running at the deadline, and was cancelled.
    pub cut: u64,
    /// Handlers that returned `Err`, and accepts that failed.
    pub errors: u64,
}

/// A server that runs; [`shutdown`](RunningServer::shutdown) stops it. Dropping it stops it too, with a
/// deadline of zero (open connections are cut).
pub struct RunningServer {
    local_addr: SocketAddr,
    pattern: Pattern,
    stats: Vec<Arc<WorkerStats>>,
    threads: worker::Threads,
}

impl RunningServer {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The pattern in force.
    pub fn pattern(&self) -> Pattern {
        self.pattern
    }

    /// Each worker's counters, by worker index.
    pub fn workers(&self) -> &[Arc<WorkerStats>] {
        &self.stats
    }

    /// Stops accepting (taking what the listen queues already hold), waits up to `deadline` for open
    /// connections to finish, cancels the rest, and joins the threads. Blocks the calling thread.
    pub fn shutdown(mut self, deadline: Duration) -> io::Result<Summary> {
        self.threads.stop(deadline)?;
        let sum = |f: fn(&WorkerStats) -> u64| self.stats.iter().map(|s| f(s)).sum::<u64>();
        Ok(Summary {
            accepted: sum(WorkerStats::accepted),
            finished: sum(WorkerStats::finished),
            cut: sum(|s| s.accepted() - s.finished()),
            errors: sum(WorkerStats::errors),
        })
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        let _ = self.threads.stop(Duration::ZERO);
    }
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer").field("local_addr", &self.local_addr).field("pattern", &self.pattern).finish()
    }
}
