//! # Guide: how uvio works, and the patterns that follow from it
//!
//! ## One loop, one thread
//! libuv runs everything from one event loop per thread: it waits for the kernel to report ready sockets,
//! expired timers, finished thread-pool work, then calls the callbacks registered for them, one at a time.
//! Nothing in a loop runs in parallel, so nothing inside needs a lock — and nothing may block: a callback or a
//! task that sleeps or spins stalls every other one. uvio keeps that model: a [`uv::Loop`](crate::uv::Loop) and
//! all its handles are `!Send`, and a [`Runtime`](crate::Runtime) is one loop on the thread that created it. To
//! use more cores, run one runtime per thread; hand work between them with [`Handle::spawn`](crate::Handle::spawn)
//! (the one thread-safe door, built on libuv's `uv_async_send`).
//!
//! ## Two layers
//! - [`uv`](crate::uv) is libuv itself, made safe: handles with callbacks. A handle is an owned value; dropping
//!   it closes it. Callbacks may stop, restart or drop their own handle.
//! - The crate root (`Runtime`, [`net`](crate::net), [`fs`](crate::fs), [`time`](crate::time),
//!   [`process`](crate::process), [`signal`](crate::signal), [`task`](crate::task)) is async/await on the same
//!   loop. Tasks are polled inside the loop's check phase, right after I/O, in bounded batches, so a busy set of
//!   tasks never starves I/O callbacks and I/O never starves tasks.
//!
//! Both layers share one loop: [`Runtime::loop_handle`](crate::Runtime::loop_handle) gives the loop for `uv`
//! handles beside async code.
//!
//! ## Ownership of memory lent to the kernel
//! A write, a read into a file, a `sockaddr` for a connect: libuv and the kernel use that memory after the call
//! returns. In uvio such memory is always *owned by the request* until libuv's callback, never borrowed from
//! the caller. That is why `uv` writes take `Vec<u8>` (or anything `AsRef<[u8]> + 'static`) and give buffers
//! back in callbacks, and why dropping an async future at any `.await` is safe: the request keeps what it needs
//! and its result is dropped when it arrives.
//!
//! ## Closing, shutdown and cancellation
//! - Dropping a `uv` stream closes it at once and cancels queued writes (`ECANCELED`). Graceful close is
//!   `shutdown`, then drop in the shutdown callback.
//! - Dropping an async [`TcpStream`](crate::net::TcpStream) never loses bytes a write already accepted: the
//!   socket lingers (owned by the runtime) until they reach the kernel, then closes.
//! - Dropping a [`JoinHandle`](crate::task::JoinHandle) detaches the task; `abort()` cancels it. Dropping a
//!   [`JoinSet`](crate::task::JoinSet) aborts every task still in it.
//! - [`Runtime::close`](crate::Runtime::close) drops every task and checks that the loop closes with nothing
//!   left open — use it in tests. [`Runtime::shutdown_timeout`](crate::Runtime::shutdown_timeout) lets tasks
//!   finish first, up to a deadline, and reports what it had to cut.
//!
//! ## Panics
//! A panic in a `uv` callback is caught at the C boundary (unwinding through C is undefined behaviour), stops
//! the loop, and is resumed from [`Loop::run`](crate::uv::Loop::run). A panic in a task is caught too and
//! becomes that task's [`JoinError`](crate::task::JoinError); the runtime keeps going.
//!
//! ## Living in someone else's loop
//! A C or C++ application that already runs libuv (Node.js add-ons, game engines, …) can lend its loop:
//! `unsafe { Loop::from_raw(ptr) }` then [`Builder::build_on`](crate::Builder::build_on). uvio's tasks, sleeps
//! and sockets then run inside the host's `uv_run`, and the host keeps full control of the loop's lifetime.
//!
//! Host and uvio must share one libuv. Build uvio with `default-features = false, features = ["system-libuv"]`
//! and link the host against the same shared system libuv (1.53.x, `>= 1.53.1`; the build checks it with
//! pkg-config): then there is one copy of libuv's globals, thread pool and signal handling in the process. With
//! the default `vendored-libuv`, uvio carries its own static copy of libuv, and borrowing a loop the host made
//! with *its* libuv is unsound — the two copies do not know each other's loops, and their structs may not even
//! have the same layout.
//!
//! ## Sharing state: which synchronisation to use
//! uvio has no `sync` module of its own, on purpose: what to use depends only on whether the tasks that share
//! the state run on one runtime or on several, and well-kept crates cover both.
//! - **Within one runtime** every task runs on the loop's thread, one at a time, and
//!   [`spawn_local`](crate::spawn_local) takes `!Send` futures: share with `Rc<RefCell<T>>` or `Rc<Cell<T>>`.
//!   No lock is needed, and none can deadlock — but never hold a `RefCell` borrow across an `.await`, or
//!   another task can find it borrowed and panic. For a queue between local tasks, `futures::channel::mpsc`
//!   (or any executor-agnostic channel) works as well here as anywhere.
//! - **Across runtimes** (one per thread, as [`server`](crate::server) runs them), use types that are `Send`
//!   and wake through the [`Waker`](std::task::Waker), which every executor honours:
//!   `futures::channel::{mpsc, oneshot}` (already a uvio dependency), `async-lock` or `async-channel` (small,
//!   runtime-free), or `tokio::sync`: its `Mutex`, `RwLock`, `Semaphore`, `Notify`, `watch` and `broadcast` do not
//!   need a tokio runtime and run under uvio unchanged. `std::sync::Mutex` is fine for short critical sections
//!   that never hold the guard across an `.await`. To run work on another runtime, send it through its
//!   [`Handle::spawn`](crate::Handle::spawn).
//! - **Blocking code** (a synchronous library, a CPU-heavy step) belongs on
//!   [`spawn_blocking`](crate::task::spawn_blocking), never in a task: it would stall the whole loop.
//!
//! ```
//! use std::{cell::RefCell, rc::Rc};
//! use futures::{channel::mpsc, SinkExt, StreamExt};
//!
//! // Two runtimes on two threads, joined by a `Send` channel.
//! let (mut tx, mut rx) = mpsc::channel::<u32>(8);
//! let producer = std::thread::spawn(move || {
//!     uvio::block_on(async move {
//!         for n in 1..=3 {
//!             tx.send(n).await.unwrap();
//!         }
//!     })
//! });
//! let total = uvio::block_on(async move {
//!     // Within this runtime, tasks share through `Rc<RefCell>`.
//!     let seen = Rc::new(RefCell::new(Vec::new()));
//!     let sink = seen.clone();
//!     uvio::spawn_local(async move {
//!         while let Some(n) = rx.next().await {
//!             sink.borrow_mut().push(n);
//!         }
//!     })
//!     .await
//!     .unwrap();
//!     let total: u32 = seen.borrow().iter().sum();
//!     total
//! });
//! producer.join().unwrap();
//! assert_eq!(total, 6);
//! ```
//!
//! ## From SYN to `accept()`
//! A client's `connect` sends a SYN. The server's kernel answers SYN-ACK and keeps a small record of the
//! half-open connection in the listening socket's *SYN queue*; when the client's ACK arrives, the connection
//! is established and moves to the *accept queue*. The client's `connect` has already returned by then: a
//! connection exists, and the client may send, before the server application has accepted anything. `accept()`
//! only takes the oldest entry of the accept queue.
//!
//! The *backlog* passed to `listen` is the accept queue's length, capped by `net.core.somaxconn` (4096 on Linux
//! since 5.4). When the accept queue is full, Linux by default ignores the client's final ACK (the client
//! believes it is connected, and retransmits; the server retransmits its SYN-ACK until there is room), or resets
//! the connection with `net.ipv4.tcp_abort_on_overflow = 1`; a full SYN queue falls back to SYN cookies. A
//! listening socket that closes resets every connection still in its queues: a server that stops must take what
//! is queued first ([`server`](crate::server) does). [`server::Builder::backlog`](crate::server::Builder::backlog)
//! sets the backlog (default 1024).
//!
//! ## Buffers and windows
//! Every connected socket has a receive buffer and a send buffer in the kernel (sized automatically within
//! `net.ipv4.tcp_rmem`/`tcp_wmem`). The receive window a peer advertises is the free space of its receive
//! buffer, so a reader that falls behind slows its sender down instead of losing data: flow control. A `write`
//! returns once the bytes are in the send buffer, not when the peer has them; a full send buffer makes a
//! non-blocking write fail with `EAGAIN` until the peer's window opens. uvio adds at most 256 KiB per stream
//! on top of the kernel's buffers, so memory stays bounded however much a task writes to a slow peer. Small
//! writes wait for the previous one's ACK under Nagle's algorithm: request/response protocols set
//! [`TcpStream::set_nodelay`](crate::net::TcpStream::set_nodelay).
//!
//! ## Blocking, `select`, epoll, io_uring
//! - **Blocking calls, one thread per connection**: the simplest code; each connection costs a thread's stack
//!   and a context switch per wake-up, which limits a server to thousands of connections, not more.
//! - **`select`/`poll`**: one thread waits for many sockets, but hands the whole set to the kernel on every call
//!   and scans it on return: the cost grows with the number of connections, ready or not.
//! - **epoll (readiness)**: sockets are registered once; `epoll_wait` returns only the ready ones, and the
//!   program then makes the `read` or `write` itself. uvio's epoll engine tries the syscall first and waits for
//!   readiness only after `EAGAIN`, so a busy socket costs one syscall per operation.
//! - **io_uring (completion)**: the program queues whole operations (receive into this buffer, send these bytes,
//!   accept) in a ring shared with the kernel, which runs them and queues their results; one `io_uring_enter`
//!   submits and reaps many. The kernel owns the buffers until the completion arrives, which is why uvio parks
//!   a dropped future's buffers until then.
//! - libuv itself uses epoll (kqueue on macOS, IOCP on Windows) behind callbacks; the libuv engine is that.
//!
//! ## Spreading connections over cores: the four patterns
//! One loop runs on one core. [`server`](crate::server) runs one runtime per thread and offers the four ways
//! servers spread connections over them, behind one switch:
//!
//! ```
//! use futures::{AsyncReadExt, AsyncWriteExt};
//! use uvio::server::{Pattern, Server};
//!
//! for pattern in [Pattern::SingleLoop, Pattern::AcceptorWorkers, Pattern::SharedListener, Pattern::ReusePort] {
//!     let running = Server::builder().pattern(pattern).threads(2).bind("127.0.0.1:0")?.serve(
//!         |mut conn, worker| async move {
//!             let mut byte = [0u8; 1];
//!             conn.read_exact(&mut byte).await?;
//!             conn.write_all(&[worker.index() as u8]).await // answers with the worker that served it
//!         },
//!     )?;
//!     let mut client = std::net::TcpStream::connect(running.local_addr())?;
//!     std::io::Write::write_all(&mut client, b"?")?;
//!     let mut served_by = [0u8; 1];
//!     std::io::Read::read_exact(&mut client, &mut served_by)?;
//!     let summary = running.shutdown(std::time::Duration::from_secs(1))?;
//!     assert_eq!((summary.accepted, summary.cut), (1, 0));
//! }
//! # std::io::Result::Ok(())
//! ```
//!
//! - **Single loop** (Node's model): no hand-off, no sharing, no imbalance, one core. Wins whenever one core is
//!   enough, and for state that must not be shared.
//! - **Acceptor and workers** (memcached's; Node's cluster hands sockets over the same way): one loop accepts and
//!   hands each connection to a worker, round robin or to the least loaded. The balance is exact and can follow
//!   load; every connection pays a hand-off (a message to another thread and a wake-up there), which shows when
//!   connections are short.
//! - **Shared listener** (nginx's): every worker accepts from the same socket. No hand-off; the kernel decides
//!   who gets a connection. What happens when one arrives while several loops are idle depends on the engine:
//!   - epoll: the socket is in each waiting loop's epoll set with `EPOLLEXCLUSIVE` (in libuv's own set: nested
//!     in another epoll set the flag wakes everyone anyway), so the kernel wakes one idle loop. That loop takes
//!     the socket out of its set when woken and puts it back when it waits again, behind the other loops, so idle
//!     loops take turns. [`WorkerStats::empty_wakeups`](crate::server::WorkerStats::empty_wakeups) counts
//!     wake-ups that found nothing.
//!   - io_uring: each ring has one single-shot accept waiting; the kernel completes one per connection, and a
//!     ring asks again only when its task does, behind the others. (A multishot accept per ring, as a plain
//!     listener uses, let one ring take every connection: 0% for the other.)
//!   - libuv: every idle loop wakes (libuv's epoll registration cannot be exclusive), one `accept` wins and the
//!     others find `EAGAIN` (a herd that libuv does not report); each loop takes one connection at a time.
//!
//!   Under a burst the loop that is already awake still tends to take more: fairness here is per wake-up, not
//!   per load.
//! - **SO_REUSEPORT shards**: every worker has its own listener on the same port and the kernel spreads
//!   connections by a hash of their addresses: even for many clients, no herd, no hand-off; but blind to load (a
//!   few heavy connections can land on one worker), and each shard has its own accept queue, so a shard that
//!   closes resets what it holds: a stopping server drains first. Linux balances reuseport groups; macOS and the
//!   BSDs do not, and Windows has no such option: there uvio falls back to a shared listener.
//!
//! Measured by `cargo bench --bench vs_tokio -- report` (its patterns section runs the same code as `cargo bench
//! --bench patterns`; two worker threads, one client thread on the same two cores, so the figures show
//! per-connection costs and balance rather than scaling) on a quiet 2-core x86_64 VM, Linux 6.18, December 2026:
//! medians of 3 interleaved rounds of 2 s per cell, CPU for the whole process (server and client). Run to run, a
//! cell moves by up to ±20% here (see `docs/benchmarks.md` for the spreads): read gaps under that as ties.
//!
//! | server (2 threads) | keepalive round trips/s | CPU µs each | connects/s | CPU µs each | smaller worker's share (keepalive / connect) |
//! |---|---:|---:|---:|---:|---:|
//! | uvio io_uring single-loop | 90390 | 20.74 | 13111 | 143 | - |
//! | uvio io_uring acceptor-workers | 83502 | 21.14 | 12731 | 141 | 50% / 50% |
//! | uvio io_uring shared-listener | 92767 | 19.95 | 12959 | 139 | 7% / 41% |
//! | uvio io_uring reuseport | 72548 | 22.13 | 12196 | 147 | 45% / 49% |
//! | uvio epoll single-loop | 64390 | 29.32 | 13660 | 137 | - |
//! | uvio epoll acceptor-workers | 79760 | 22.54 | 11797 | 149 | 50% / 50% |
//! | uvio epoll shared-listener | 83314 | 22.66 | 13156 | 135 | 44% / 38% |
//! | uvio epoll reuseport | 76898 | 23.89 | 13253 | 137 | 41% / 49% |
//! | uvio libuv single-loop | 82310 | 22.25 | 11555 | 156 | - |
//! | uvio libuv acceptor-workers | 74644 | 24.89 | 11300 | 146 | 50% / 50% |
//! | uvio libuv shared-listener | 75519 | 24.03 | 12902 | 143 | 13% / 32% |
//! | uvio libuv reuseport | 75864 | 23.32 | 11377 | 143 | 49% / 49% |
//! | tokio multi-thread (2 workers) | 78875 | 23.01 | 14094 | 127 | - |
//!
//! What they show here: the balance column is the clearest signal. The acceptor splits exactly (50%) and
//! `SO_REUSEPORT` by hash (41–49%), on every engine. A shared listener depends on how the connections arrive:
//! arriving one after the other (the connect workload), every idle loop gets its turn (32–41% for the smaller
//! worker; before the shared listener's accept became exclusive, io_uring's multishot accept gave one ring all of
//! them, 0%); the 100 long-lived connections of the keepalive workload arrive in one burst, and there the loop
//! that is already awake keeps taking them: it accepts the next one straight from the queue (io_uring: its
//! re-armed accept completes at once) before another loop's wake-up has run, so the other worker got 7%
//! (io_uring), 13% (libuv) or 44% (epoll). Fairness per wake-up does not make a burst fair: `SO_REUSEPORT` or the
//! acceptor does. The herd itself: 200 connections one at a time (the shared-listener test of
//! `tests/net_server.rs`) to four epoll workers gave 0 to 2 wake-ups that found nothing with `EPOLLEXCLUSIVE`, and
//! up to 155 without.
//!
//! Speed: on long-lived connections the best uvio patterns are ahead of tokio's multi-thread runtime (io_uring
//! single-loop and shared-listener 1.15–1.18× the round trips at 10–13% less CPU each); on short connections
//! (connect, one round trip, close) tokio is ahead: 14 094 connections/s at 127 µs of CPU each, uvio's best
//! 13 660 (epoll single-loop, 137 µs); uvio's rows spend 135–156 µs, 6–23% more per connection set up and torn
//! down (not yet profiled: accept, registration with the engine, the task, and a close that libuv finishes one
//! loop turn later are the candidates).
//! With two cores shared by the client, one loop is the cheapest per operation (no hand-off, no second thread
//! to wake), the acceptor pays its hand-off on every new connection, and no pattern can show scaling: that needs a
//! machine with more cores than the client uses. Rerun `cargo bench --bench patterns` on the target machine
//! before choosing.
