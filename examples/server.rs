//! The smallest multi-core server: an echo server on every core with one of `uvio::server`'s four patterns,
//! counters per worker every second, and a graceful stop on Ctrl-C.
//!
//! ```text
//! cargo run --release --example server -- [single-loop|acceptor-workers|shared-listener|reuseport] [PORT]
//! ```
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt, FutureExt};
use uvio::server::{Pattern, Server};

fn main() -> std::io::Result<()> {
    let pattern = match std::env::args().nth(1).as_deref() {
        Some("single-loop") => Pattern::SingleLoop,
        Some("acceptor-workers") => Pattern::AcceptorWorkers,
        Some("shared-listener") => Pattern::SharedListener,
        Some("reuseport") | None => Pattern::ReusePort,
        Some(other) => return Err(std::io::Error::other(format!("unknown pattern {other:?}"))),
    };
    let port: u16 = std::env::args().nth(2).map_or(Ok(9124), |p| p.parse().map_err(std::io::Error::other))?;
    let running =
        Server::builder().pattern(pattern).bind(("127.0.0.1", port))?.serve(|mut conn, _worker| async move {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match conn.read(&mut buf).await? {
                    0 => return conn.close().await,
                    n => conn.write_all(&buf[..n]).await?,
                }
            }
        })?;
    uvio::block_on(async {
        let mut ctrl_c = std::pin::pin!(uvio::signal::ctrl_c().fuse());
        let _ = futures::poll!(&mut ctrl_c); // the handler is in place before we say we are up
        let (addr, workers) = (running.local_addr(), running.workers().len());
        println!("echo on {addr} ({:?}, {workers} workers); Ctrl-C stops", running.pattern());
        loop {
            futures::select! {
                _ = ctrl_c => break,
                _ = uvio::time::sleep(Duration::from_secs(1)).fuse() => {
                    for (i, w) in running.workers().iter().enumerate() {
                        let lag = w.health().map(|h| h.lag_p99).unwrap_or_default();
                        println!("  worker {i}: {} accepted, {} open, lag p99 {lag:?}", w.accepted(), w.open());
                    }
                }
            }
        }
    });
    let summary = running.shutdown(Duration::from_secs(2))?;
    println!("stopped: {} connections, {} cut at the deadline", summary.accepted, summary.cut);
    Ok(())
}
