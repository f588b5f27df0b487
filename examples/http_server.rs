//! A hyper HTTP/1 server on uvio: hyper drives uvio's `TcpStream` through tokio's I/O traits (feature
//! `tokio-io`), each connection in its own `spawn_local` task.
//!
//! ```text
//! cargo run --release --features tokio-io --example http_server -- --port 8080 [--max-seconds 10]
//! wrk -t1 -c50 -d5s http://127.0.0.1:8080/
//! ```
//!
//! Every request gets `Hello from uvio\n` (with its Content-Length). `--port 0` picks a free port; the
//! server prints `http_server listening on http://127.0.0.1:PORT (ENGINE engine)` once it accepts connections.
//! HTTP/1 only: hyper needs an executor only for HTTP/2, and no timer as long as no timeout is configured.
//!
//! Ctrl-C (or the `--max-seconds` limit) stops it gracefully: no new connections, hyper's graceful shutdown on
//! the open ones (idle keep-alive connections close at once, requests in flight are answered), up to 2 s, then a
//! one-line summary and exit status 0.
use std::cell::Cell;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::process::ExitCode;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::channel::{mpsc, oneshot};
use futures::future::{select, Either, FutureExt, Shared};
use futures::StreamExt;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use uvio::net::{TcpListener, TcpStream};

#[path = "common/args.rs"]
mod args;

const USAGE: &str = "\
A hyper HTTP/1 server on uvio, on 127.0.0.1: every request gets \"Hello from uvio\".

Usage: http_server [OPTIONS]

Options:
  --port N                 the port to listen on; 0 picks a free one [default: 8080]
  --backend NAME           the engine: auto, libuv, epoll or io_uring (the last two on Linux only)
                           [default: $UVIO_BACKEND, else auto]
  --max-seconds S          stop by itself after S seconds [default: run until Ctrl-C]
  --pattern NAME           serve on several threads with uvio::server: single-loop, acceptor-workers,
                           shared-listener or reuseport [default: one runtime, no server]
  --threads N              the pattern's worker threads [default: 2]
  -h, --help               print this help

Ctrl-C stops accepting, lets open connections finish for up to 2 s, prints a summary and exits 0; a second
Ctrl-C ends it at once.
";

/// The body of every response.
pub const BODY: &[u8] = b"Hello from uvio\n";

/// How long open connections may take to finish once the server stops.
const DRAIN: Duration = Duration::from_secs(2);

async fn hello(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    // A body of known length: hyper writes the Content-Length header.
    Ok(Response::new(Full::new(Bytes::from_static(BODY))))
}

/// Serves HTTP/1 on one connection, in a task of its own, until the client closes it.
pub fn spawn_connection(stream: TcpStream) {
    uvio::spawn_local(serve_connection(stream, futures::future::pending::<()>()));
}

/// Serves one connection until the client closes it, or until `stop` resolves: then hyper finishes the request
/// in flight, if any, and closes.
async fn serve_connection<S: Future + Unpin>(stream: impl IoStream, stop: S) {
    let conn = hyper::server::conn::http1::Builder::new()
        // hyper's default 30 s header timeout needs a hyper timer; without one it is skipped (with a
        // warning): say so explicitly.
        .header_read_timeout(None)
        .serve_connection(TokioIo::new(stream), hyper::service::service_fn(hello));
    let mut conn = pin!(conn);
    // A client that resets or sends garbage only ends its own connection: its error is dropped.
    if let Either::Right(_) = select(conn.as_mut(), stop).await {
        conn.as_mut().graceful_shutdown();
        let _ = conn.await;
    }
}

/// What hyper needs of a connection.
trait IoStream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + 'static> IoStream for T {}

/// Accepts connections forever, serving each in its own task.
pub async fn serve(listener: TcpListener) -> io::Result<()> {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => spawn_connection(stream),
            // Out of descriptors and the like: keep serving the connections we have.
            Err(e) => eprintln!("http_server: accept failed: {e}"),
        }
    }
}

/// What the server did, for the summary line.
#[derive(Default)]
struct Stats {
    connections: Cell<u64>,
    open: Cell<usize>,
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
        let (c, i, o) = (self.connections.get(), self.bytes_in.get(), self.bytes_out.get());
        write!(f, "{c} connections served, {i} bytes in, {o} bytes out")?;
        match self.cut_off.get() {
            0 => Ok(()),
            n => write!(f, ", {n} still open at the {} s deadline were closed", DRAIN.as_secs()),
        }
    }
}

/// A connection that counts the bytes it moves into [`Stats`], and the open connections.
struct Counted {
    stream: TcpStream,
    stats: Rc<Stats>,
}

impl Counted {
    fn new(stream: TcpStream, stats: Rc<Stats>) -> Counted {
        add(&stats.connections, 1);
        stats.open.set(stats.open.get() + 1);
        Counted { stream, stats }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.stats.open.set(self.stats.open.get() - 1);
    }
}

impl tokio::io::AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        add(&self.stats.bytes_in, buf.filled().len() - before);
        polled
    }
}

impl tokio::io::AsyncWrite for Counted {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = polled {
            add(&self.stats.bytes_out, n);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = polled {
            add(&self.stats.bytes_out, n);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

struct Options {
    pattern: Option<uvio::server::Pattern>,
    threads: usize,
    port: u16,
    backend: Option<uvio::Backend>,
    max_seconds: Option<f64>,
}

fn parse_options(parser: &mut args::Parser) -> Result<Options, args::Error> {
    use args::{Long, Short};
    let mut opts = Options { pattern: None, threads: 2, port: 8080, backend: None, max_seconds: None };
    while let Some(arg) = parser.next()? {
        match arg {
            Short('h') | Long("help") => args::help(USAGE),
            Long("port") => opts.port = args::value(parser, "--port")?,
            Long("backend") => opts.backend = Some(args::value(parser, "--backend")?),
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

fn main() -> ExitCode {
    let opts = args::parse_or_exit("http_server", parse_options);
    if let Some(pattern) = opts.pattern {
        return match run_pattern(&opts, pattern) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => args::failure(e),
        };
    }
    let stats = Rc::new(Stats::default());
    match run(&opts, &stats) {
        Ok(why) => {
            println!("http_server stopped ({why}): {stats}");
            ExitCode::SUCCESS
        }
        Err(e) => args::failure(e),
    }
}

/// Resolves when the server should stop: Ctrl-C, or the time limit.
async fn stop_requested(max_seconds: Option<f64>) -> io::Result<&'static str> {
    let ctrl_c = pin!(uvio::signal::ctrl_c());
    let Some(secs) = max_seconds else { return ctrl_c.await.map(|()| "interrupted") };
    match select(ctrl_c, pin!(uvio::time::sleep(Duration::from_secs_f64(secs)))).await {
        Either::Left((res, _)) => res.map(|()| "interrupted"),
        Either::Right(_) => Ok("time limit reached"),
    }
}

fn run(opts: &Options, stats: &Rc<Stats>) -> Result<&'static str, String> {
    // An explicit --backend wins over UVIO_BACKEND (which otherwise overrides the builder for the process).
    if std::env::var_os("UVIO_BACKEND").is_some() {
        std::env::remove_var("UVIO_BACKEND");
    }
    let rt = uvio::Builder::new().backend(opts.backend.unwrap_or_default()).build().map_err(|e| e.to_string())?;
    let engine = rt.backend();
    let addr = SocketAddr::from(([127, 0, 0, 1], opts.port));
    rt.block_on(async {
        let listener = TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        // `stop` tells every connection to shut down gracefully (it resolves when `stop_tx` is dropped); each
        // connection task holds a clone of `all_done`, whose receiver's stream ends when the last is gone.
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let stop: Shared<oneshot::Receiver<()>> = stop_rx.shared();
        let (all_done, mut all_done_rx) = mpsc::channel::<()>(0);
        let accept_stats = stats.clone();
        let accept_loop = async move {
            println!("http_server listening on http://127.0.0.1:{port} ({engine} engine)");
            let _ = io::stdout().flush();
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        let _ = stream.set_nodelay(true);
                        let (counted, stop, done) =
                            (Counted::new(stream, accept_stats.clone()), stop.clone(), all_done.clone());
                        uvio::spawn_local(async move {
                            serve_connection(counted, stop).await;
                            drop(done);
                        });
                    }
                    // Out of descriptors and the like: keep serving the connections we have.
                    Err(e) => eprintln!("http_server: accept failed: {e}"),
                }
            }
        };
        // `select` polls the stop future first, so the Ctrl-C handler is in place before "listening" is printed
        // (a Ctrl-C before the first poll would still end the process at once).
        let why = match select(pin!(stop_requested(opts.max_seconds)), pin!(accept_loop)).await {
            Either::Left((why, _accept_loop)) => why.map_err(|e| format!("cannot watch for Ctrl-C: {e}"))?,
            Either::Right(_) => unreachable!("the accept loop never ends"),
        }; // the accept loop and its listener are dropped here: no new connections
        drop(stop_tx);
        if uvio::time::timeout(DRAIN, all_done_rx.next()).await.is_err() {
            stats.cut_off.set(stats.open.get()); // dropping the runtime below closes them
        }
        Ok(why)
    })
}

/// `--pattern`: the same server on `--threads` runtimes with `uvio::server`. On Ctrl-C each connection hears of
/// it through `Worker::stopping` and shuts down gracefully (hyper), within the same 2 s.
fn run_pattern(opts: &Options, pattern: uvio::server::Pattern) -> Result<(), String> {
    // As in `run`: an explicit --backend wins over UVIO_BACKEND (no thread has started yet).
    if std::env::var_os("UVIO_BACKEND").is_some() {
        std::env::remove_var("UVIO_BACKEND");
    }
    let addr = SocketAddr::from(([127, 0, 0, 1], opts.port));
    let running = uvio::server::Server::builder()
        .pattern(pattern)
        .threads(opts.threads)
        .backend(opts.backend.unwrap_or_default())
        .bind(addr)
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?
        .serve(|stream: TcpStream, worker| async move {
            let _ = stream.set_nodelay(true);
            serve_connection(stream, Box::pin(worker.stopping())).await;
            Ok(())
        })
        .map_err(|e| format!("cannot start the server: {e}"))?;
    println!(
        "http_server listening on http://{} ({:?} on {} threads)",
        running.local_addr(),
        running.pattern(),
        running.workers().len()
    );
    let _ = io::stdout().flush();
    let why = uvio::block_on(stop_requested(opts.max_seconds)).map_err(|e| format!("cannot watch for Ctrl-C: {e}"))?;
    let shares: Vec<String> = running.workers().iter().map(|w| w.accepted().to_string()).collect();
    let summary = running.shutdown(DRAIN).map_err(|e| e.to_string())?;
    println!(
        "http_server stopped ({why}): {} connections served ({} per worker), {} still open at the {} s deadline \
         were closed",
        summary.accepted,
        shares.join("/"),
        summary.cut,
        DRAIN.as_secs()
    );
    Ok(())
}
