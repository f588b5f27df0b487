//! A TCP echo server, on the async API (`uvio::net`, the default) or the callback API (`uvio::uv`).
//!
//! ```text
//! cargo run --release --example echo_server -- [--api async|callback] [--backend auto|libuv|epoll|io_uring]
//!     [--port 9123] [--max-seconds 10] [--pattern single-loop|acceptor-workers|shared-listener|reuseport]
//!     [--threads 2]
//! ```
//!
//! Async: one task per connection reading into a 16 KiB buffer and writing it back (`write_all`), on the engine
//! `--backend` names (default: `UVIO_BACKEND`, else auto); the engine in use is printed at start.
//!
//! Callback: every received chunk is written back as is. Read data is only lent to the read callback, so it is copied
//! into a buffer from a small pool; the buffer goes back to the pool when its write completes (the write
//! request owns it until then), so a busy server stops allocating. On EOF the server finishes its queued
//! writes, shuts its side down gracefully and drops the connection; on an error it drops it at once.
//!
//! `--pattern` (async API) serves on `--threads` threads with `uvio::server`, one runtime each, connections
//! spread the way the pattern says; the summary then gives each worker's share.
//!
//! Ctrl-C (or the `--max-seconds` limit) stops the server gracefully on both APIs: it stops accepting, gives the
//! open connections up to 2 s to finish, then prints a one-line summary and exits 0.
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::net::SocketAddr;
use std::pin::pin;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use futures::channel::mpsc;
use futures::future::{select, Either};
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use uvio::net::{TcpListener, TcpStream};
use uvio::uv::{signum, Handle as _, Loop, RunMode, Signal, Tcp, Timer};

#[path = "common/args.rs"]
mod args;

const USAGE: &str = "\
A TCP echo server on 127.0.0.1, on uvio's async API or its callback (libuv) API.

Usage: echo_server [OPTIONS]

Options:
  --api async|callback     which uvio API serves the connections [default: async]
  --backend NAME           the async API's engine: auto, libuv, epoll or io_uring (the last two on Linux only)
                           [default: $UVIO_BACKEND, else auto]
  --port N                 the port to listen on; 0 picks a free one [default: 9123]
  --max-seconds S          stop by itself after S seconds (fractions allowed) [default: run until Ctrl-C]
  --pattern NAME           serve on several threads with uvio::server (async API): single-loop,
                           acceptor-workers, shared-listener or reuseport [default: one runtime, no server]
  --threads N              the pattern's worker threads [default: 2]
  -h, --help               print this help

Ctrl-C stops accepting, lets open connections finish for up to 2 s, prints a summary and exits 0; a second
Ctrl-C ends it at once.
";

/// How long open connections may take to finish once the server stops.
const DRAIN: Duration = Duration::from_secs(2);

/// Buffers kept for reuse; beyond this, finished buffers are freed.
const POOL_MAX: usize = 1024;

type Pool = Rc<RefCell<Vec<Vec<u8>>>>;
type Conns = Rc<RefCell<HashMap<u64, Tcp>>>;

#[derive(Clone, Copy, PartialEq)]
enum Api {
    Async,
    Callback,
}

struct Options {
    pattern: Option<uvio::server::Pattern>,
    threads: usize,
    api: Api,
    backend: Option<uvio::Backend>,
    port: u16,
    max_seconds: Option<f64>,
}

fn parse_options(parser: &mut args::Parser) -> Result<Options, args::Error> {
    use args::{Long, Short};
    let mut opts = Options { pattern: None, threads: 2, api: Api::Async, backend: None, port: 9123, max_seconds: None };
    while let Some(arg) = parser.next()? {
        match arg {
            Short('h') | Long("help") => args::help(USAGE),
            Long("api") => {
                opts.api = match args::value::<String>(parser, "--api")?.as_str() {
                    "async" => Api::Async,
                    "callback" => Api::Callback,
                    other => return Err(format!("--api: unknown API {other:?} (async or callback)").into()),
                }
            }
            Long("backend") => opts.backend = Some(args::value(parser, "--backend")?),
            Long("port") => opts.port = args::value(parser, "--port")?,
            Long("pattern") => opts.pattern = Some(args::pattern(parser)?),
            Long("threads") => opts.threads = args::threads(parser)?,
            Long("max-seconds") => {
                let secs: f64 = args::value(parser, "--max-seconds")?;
                // Also keeps Duration::from_secs_f64 from panicking on a negative, huge or NaN value.
                if !(0.0..=1e9).contains(&secs) {
                    return Err(format!("--max-seconds: {secs} is not between 0 and 1e9").into());
                }
                opts.max_seconds = Some(secs);
            }
            _ => return Err(arg.unexpected()),
        }
    }
    if opts.backend.is_none() {
        opts.backend = uvio::Backend::from_env().map_err(|e| format!("UVIO_BACKEND: {e}"))?;
    }
    Ok(opts)
}

/// What the server did, for the summary line. Cells: every connection runs on the one thread.
#[derive(Default)]
struct Stats {
    connections: Cell<u64>,
    /// Connections still open when the drain deadline passed (closed under their clients).
    cut_off: Cell<usize>,
    bytes_in: Cell<u64>,
    bytes_out: Cell<u64>,
}

fn add(counter: &Cell<u64>, n: usize) {
    counter.set(counter.get() + n as u64);
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} connections served, {} bytes in, {} bytes out",
            self.connections.get(),
            self.bytes_in.get(),
            self.bytes_out.get()
        )?;
        match self.cut_off.get() {
            0 => Ok(()),
            n => write!(f, ", {n} still open at the {} s deadline were closed", DRAIN.as_secs()),
        }
    }
}

fn main() -> ExitCode {
    let opts = args::parse_or_exit("echo_server", parse_options);
    let stats = Rc::new(Stats::default());
    if let Some(pattern) = opts.pattern {
        return match serve_pattern(&opts, pattern) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => args::failure(e),
        };
    }
    let stopped = match opts.api {
        Api::Async => serve_async(&opts, &stats),
        Api::Callback => serve_callbacks(&opts, &stats),
    };
    match stopped {
        Ok(why) => {
            println!("echo_server stopped ({why}): {stats}");
            ExitCode::SUCCESS
        }
        Err(e) => args::failure(e),
    }
}

fn listen_error(addr: SocketAddr, err: impl Into<std::io::Error>) -> String {
    format!("cannot listen on {addr}: {}", err.into())
}

/// Resolves when the server should stop: Ctrl-C, or the time limit.
async fn stop_requested(max_seconds: Option<f64>) -> std::io::Result<&'static str> {
    let ctrl_c = pin!(uvio::signal::ctrl_c());
    let Some(secs) = max_seconds else { return ctrl_c.await.map(|()| "interrupted") };
    match select(ctrl_c, pin!(uvio::time::sleep(Duration::from_secs_f64(secs)))).await {
        Either::Left((res, _)) => res.map(|()| "interrupted"),
        Either::Right(_) => Ok("time limit reached"),
    }
}

fn serve_async(opts: &Options, stats: &Rc<Stats>) -> Result<&'static str, String> {
    // An explicit --backend wins over UVIO_BACKEND (which otherwise overrides the builder for the process).
    if std::env::var_os("UVIO_BACKEND").is_some() {
        std::env::remove_var("UVIO_BACKEND");
    }
    let rt = uvio::Builder::new().backend(opts.backend.unwrap_or_default()).build().map_err(|e| e.to_string())?;
    let engine = rt.backend();
    let addr = SocketAddr::from(([127, 0, 0, 1], opts.port));
    rt.block_on(async {
        let listener = TcpListener::bind(addr).await.map_err(|e| listen_error(addr, e))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        // Every connection task holds a clone of `all_done`; the receiver's stream ends when the last is gone.
        let (all_done, mut all_done_rx) = mpsc::channel::<()>(0);
        let open = Rc::new(Cell::new(0usize));
        let (accept_stats, accept_open) = (stats.clone(), open.clone());
        let accept_loop = async move {
            println!("echo_server listening on {local} (async API, {engine} engine)");
            let _ = std::io::stdout().flush();
            loop {
                // A failed accept (out of descriptors, a reset before accept) is not fatal: keep serving.
                let Ok((conn, _)) = listener.accept().await else { continue };
                echo_task(conn, accept_stats.clone(), accept_open.clone(), all_done.clone());
            }
        };
        // `select` polls the stop future first, so the Ctrl-C handler is in place before "listening" is printed
        // (a Ctrl-C before the first poll would still end the process at once).
        let why = match select(pin!(stop_requested(opts.max_seconds)), pin!(accept_loop)).await {
            Either::Left((why, _accept_loop)) => why.map_err(|e| format!("cannot watch for Ctrl-C: {e}"))?,
            Either::Right(_) => unreachable!("the accept loop never ends"),
        }; // the accept loop and its listener are dropped here: no new connections
        if uvio::time::timeout(DRAIN, all_done_rx.next()).await.is_err() {
            stats.cut_off.set(open.get()); // dropping the runtime below closes them
        }
        Ok(why)
    })
}

/// `--pattern`: the same echo on `--threads` runtimes with `uvio::server`, until Ctrl-C or the time limit.
fn serve_pattern(opts: &Options, pattern: uvio::server::Pattern) -> Result<(), String> {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    // As in serve_async: an explicit --backend wins over UVIO_BACKEND (no thread has started yet).
    if std::env::var_os("UVIO_BACKEND").is_some() {
        std::env::remove_var("UVIO_BACKEND");
    }
    let addr = SocketAddr::from(([127, 0, 0, 1], opts.port));
    let server = uvio::server::Server::builder()
        .pattern(pattern)
        .threads(opts.threads)
        .backend(opts.backend.unwrap_or_default())
        .bind(addr)
        .map_err(|e| listen_error(addr, e))?;
    let bytes = Arc::new(AtomicU64::new(0));
    let counted = bytes.clone();
    let running = server
        .serve(move |mut conn: TcpStream, _worker| {
            let bytes = counted.clone();
            async move {
                conn.set_nodelay(true)?;
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    let n = conn.read(&mut buf).await?;
                    if n == 0 {
                        return conn.close().await;
                    }
                    conn.write_all(&buf[..n]).await?;
                    bytes.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
        })
        .map_err(|e| format!("cannot start the server: {e}"))?;
    let engine = opts.backend.unwrap_or_default();
    println!(
        "echo_server listening on {} ({:?} on {} threads, {engine} engine)",
        running.local_addr(),
        running.pattern(),
        running.workers().len()
    );
    let _ = std::io::stdout().flush();
    let why = uvio::block_on(stop_requested(opts.max_seconds)).map_err(|e| format!("cannot watch for Ctrl-C: {e}"))?;
    let shares: Vec<u64> = running.workers().iter().map(|w| w.accepted()).collect();
    let summary = running.shutdown(DRAIN).map_err(|e| e.to_string())?;
    println!(
        "echo_server stopped ({why}): {} connections served ({} per worker), {} bytes echoed, {} still open at the \
         {} s deadline were closed",
        summary.accepted,
        shares.iter().map(u64::to_string).collect::<Vec<_>>().join("/"),
        bytes.load(Ordering::Relaxed),
        summary.cut,
        DRAIN.as_secs()
    );
    Ok(())
}

/// Echoes one connection in a task of its own, counting what it moves.
fn echo_task(mut conn: TcpStream, stats: Rc<Stats>, open: Rc<Cell<usize>>, done: mpsc::Sender<()>) {
    conn.set_nodelay(true).ok();
    add(&stats.connections, 1);
    open.set(open.get() + 1);
    uvio::spawn_local(async move {
        let _done = done; // dropped with the task: the drain after Ctrl-C waits for it
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n @ 1..) = conn.read(&mut buf).await {
            add(&stats.bytes_in, n);
            if conn.write_all(&buf[..n]).await.is_err() {
                break;
            }
            add(&stats.bytes_out, n);
        }
        let _ = conn.close().await; // EOF: flush and shut down our side
        open.set(open.get() - 1);
    });
}

/// A write buffer that returns to the pool when the write request that owns it is done.
struct Pooled {
    buf: Vec<u8>,
    pool: Pool,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let mut pool = self.pool.borrow_mut();
        if pool.len() < POOL_MAX {
            let mut buf = std::mem::take(&mut self.buf);
            buf.clear();
            pool.push(buf);
        }
    }
}

fn copy_into_pooled(pool: &Pool, bytes: &[u8]) -> Pooled {
    let mut buf = pool.borrow_mut().pop().unwrap_or_default();
    buf.extend_from_slice(bytes);
    Pooled { buf, pool: pool.clone() }
}

/// Removes a connection from the registry, which closes it (also from inside its own callbacks).
fn forget(conns: &Conns, id: u64) {
    let conn = conns.borrow_mut().remove(&id);
    drop(conn);
}

fn serve(conn: &Tcp, id: u64, conns: &Conns, pool: &Pool, stats: &Rc<Stats>) -> uvio::Result<()> {
    conn.set_nodelay(true)?;
    let (conns, pool, stats) = (conns.clone(), pool.clone(), stats.clone());
    conn.read_start(move |c, data| match data {
        Ok(bytes) => {
            add(&stats.bytes_in, bytes.len());
            let (stats, len) = (stats.clone(), bytes.len());
            let on_written = move |_: &Tcp, res: uvio::Result<()>| {
                if res.is_ok() {
                    add(&stats.bytes_out, len);
                }
            };
            if c.write(copy_into_pooled(&pool, bytes), on_written).is_err() {
                forget(&conns, id);
            }
        }
        Err(e) if e == uvio::Error::EOF => {
            // Graceful end: the shutdown waits for the queued echoes, then the connection is dropped.
            let conns2 = conns.clone();
            if c.shutdown(move |_, _| forget(&conns2, id)).is_err() {
                forget(&conns, id);
            }
        }
        Err(_) => forget(&conns, id),
    })
}

fn serve_callbacks(opts: &Options, stats: &Rc<Stats>) -> Result<&'static str, String> {
    let lp = Loop::new().map_err(|e| e.to_string())?;
    let why = serve_on_loop(&lp, opts, stats);
    lp.close().map_err(|e| e.error().to_string())?;
    why
}

/// The callback server on `lp`; every handle it made is closed when it returns.
fn serve_on_loop(lp: &Loop, opts: &Options, stats: &Rc<Stats>) -> Result<&'static str, String> {
    let uv_err = |e: uvio::Error| e.to_string();
    let server = Rc::new(RefCell::new(Some(Tcp::new(lp).map_err(uv_err)?)));
    let conns: Conns = Rc::default();
    let pool: Pool = Rc::default();
    let addr = SocketAddr::from(([127, 0, 0, 1], opts.port));
    let local = {
        let guard = server.borrow();
        let listener = guard.as_ref().expect("just created");
        // libuv may report a port in use at bind or only at listen: both name the address.
        listener.bind(addr).map_err(|e| listen_error(addr, e))?;
        let (conns, pool, stats) = (conns.clone(), pool.clone(), stats.clone());
        let mut next_id = 0u64;
        let on_connection = move |srv: &Tcp, res: uvio::Result<()>| {
            if res.is_err() {
                return; // a failed accept: keep listening
            }
            let Ok(conn) = srv.accept() else { return };
            next_id += 1;
            add(&stats.connections, 1);
            if serve(&conn, next_id, &conns, &pool, &stats).is_ok() {
                conns.borrow_mut().insert(next_id, conn);
            }
        };
        listener.listen(1024, on_connection).map_err(|e| listen_error(addr, e))?;
        listener.local_addr().map_err(uv_err)?
    };

    // Stopping: close the listener, then let the connections finish. The drain timer is unref'd, so the loop
    // ends as soon as the last connection is gone; if some are still open when it fires, they are closed.
    // The closure holds the listener and the drain timer weakly: it lives in the callbacks of the Ctrl-C watcher
    // and the deadline timer, freed while `Loop::close` delivers their close callbacks, which is too late to
    // close further handles.
    let why: Rc<Cell<Option<&'static str>>> = Rc::default();
    let drain = Rc::new(Timer::new(lp).map_err(uv_err)?);
    let stop = {
        let (why, conns, stats) = (why.clone(), conns.clone(), stats.clone());
        let (drain, server) = (Rc::downgrade(&drain), Rc::downgrade(&server));
        Rc::new(move |reason: &'static str| {
            let (Some(drain), Some(server)) = (drain.upgrade(), server.upgrade()) else { return };
            if why.get().is_some() {
                return;
            }
            why.set(Some(reason));
            drop(server.borrow_mut().take());
            let (open_conns, stats) = (conns.clone(), stats.clone());
            let started = drain.start(DRAIN, None, move |_| {
                let open: Vec<Tcp> = open_conns.borrow_mut().drain().map(|(_, c)| c).collect();
                stats.cut_off.set(open.len());
            });
            if started.is_err() {
                let open = std::mem::take(&mut *conns.borrow_mut());
                drop(open); // no deadline possible: close them now rather than wait forever
            }
            drain.unref();
        })
    };

    // Ctrl-C; stopping the watcher in its callback gives a second Ctrl-C its default action (end at once).
    let ctrl_c = Signal::new(lp).map_err(uv_err)?;
    let on_ctrl_c = stop.clone();
    ctrl_c
        .start(signum::SIGINT, move |sig, _| {
            let _ = sig.stop();
            on_ctrl_c("interrupted");
        })
        .map_err(|e| format!("cannot watch for Ctrl-C: {e}"))?;
    ctrl_c.unref(); // the listener and the connections keep the loop alive, not the watcher
    let deadline = Timer::new(lp).map_err(uv_err)?;
    if let Some(secs) = opts.max_seconds {
        let stop = stop.clone();
        deadline.start(Duration::from_secs_f64(secs), None, move |_| stop("time limit reached")).map_err(uv_err)?;
        deadline.unref();
    }

    println!("echo_server listening on {local} (callback API, libuv loop)");
    let _ = std::io::stdout().flush();
    let ran = lp.run(RunMode::Default);
    // The connections' callbacks hold the registry: empty it so nothing is left for `Loop::close`.
    let leftover = std::mem::take(&mut *conns.borrow_mut());
    drop((leftover, ctrl_c, deadline, stop, drain, server));
    ran.map_err(uv_err)?;
    Ok(why.get().unwrap_or("stopped"))
}
