//! A hyper HTTP/1 server on uvio: hyper drives uvio's `TcpStream` through tokio's I/O traits (feature
//! `tokio-io`), each connection in its own `spawn_local` task.
//!
//! ```text
//! cargo run --release --features tokio-io --example http_server -- --port 8080 [--max-seconds 10]
//! wrk -t1 -c50 -d5s http://127.0.0.1:8080/
//! ```
//!
//! Every request gets `Hello from uvio\n` (with its Content-Length). `--port 0` picks a free port; the
//! server prints `http_server listening on http://127.0.0.1:PORT` once it accepts connections. HTTP/1 only:
//! hyper needs an executor only for HTTP/2, and no timer as long as no timeout is configured.
use std::convert::Infallible;
use std::io::Write;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use uvio::net::{TcpListener, TcpStream};

/// The body of every response.
pub const BODY: &[u8] = b"Hello from uvio\n";

async fn hello(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    // A body of known length: hyper writes the Content-Length header.
    Ok(Response::new(Full::new(Bytes::from_static(BODY))))
}

/// Serves HTTP/1 on one connection, in a task of its own, until the client closes it.
pub fn spawn_connection(stream: TcpStream) {
    uvio::spawn_local(async move {
        let _ = stream.set_nodelay(true);
        let conn = hyper::server::conn::http1::Builder::new()
            // hyper's default 30 s header timeout needs a hyper timer; without one it is skipped (with a
            // warning): say so explicitly.
            .header_read_timeout(None)
            .serve_connection(TokioIo::new(stream), hyper::service::service_fn(hello))
            .await;
        // A client that resets or sends garbage only ends its own connection.
        let _ = conn;
    });
}

/// Accepts connections forever, serving each in its own task.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => spawn_connection(stream),
            // Out of descriptors and the like: keep serving the connections we have.
            Err(e) => eprintln!("http_server: accept failed: {e}"),
        }
    }
}

struct Args {
    port: u16,
    max_seconds: Option<u64>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { port: 8080, max_seconds: None };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => args.port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--max-seconds" => args.max_seconds = Some(value()?.parse().map_err(|e| format!("--max-seconds: {e}"))?),
            _ => return Err(format!("unknown argument {flag}; usage: http_server [--port N] [--max-seconds S]")),
        }
    }
    Ok(args)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let rt = uvio::Runtime::new().expect("runtime");
    let result = rt.block_on(async {
        let listener = TcpListener::bind(("127.0.0.1", args.port)).await?;
        let port = listener.local_addr()?.port();
        println!("http_server listening on http://127.0.0.1:{port}");
        std::io::stdout().flush()?;
        match args.max_seconds {
            Some(s) => match uvio::time::timeout(Duration::from_secs(s), serve(listener)).await {
                Ok(r) => r,
                Err(_) => Ok(()), // time is up
            },
            None => serve(listener).await,
        }
    });
    if let Err(e) = result {
        eprintln!("http_server: {e}");
        std::process::exit(1);
    }
    // Dropping the runtime cancels the connection tasks and closes their sockets.
}
