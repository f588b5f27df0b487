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
//! - Dropping a [`JoinHandle`](crate::task::JoinHandle) detaches the task; `abort()` cancels it.
//! - [`Runtime::close`](crate::Runtime::close) drops every task and checks that the loop closes with nothing
//!   left open — use it in tests.
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
