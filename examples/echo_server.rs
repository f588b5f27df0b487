//! A TCP echo server, on the async API (`uvio::net`, the default) or the callback API (`uvio::uv`).
//!
//! ```text
//! cargo run --release --example echo_server -- [--api async|callback] [--backend auto|libuv|epoll|io_uring]
//!     [--port 9123] [--max-seconds 10]
//! ```
//!
//! Async: one task per connection reading into a 16 KiB buffer and writing it back (`write_all`), on the engine
//! `--backend` names (default: `UVIO_BACKEND`, else auto); the engine in use is printed at start.
//!
//! Callback: every received chunk is written back as is. Read data is only lent to the read callback, so it is copied
//! into a buffer from a small pool; the buffer goes back to the pool when its write completes (the write
//! request owns it until then), so a busy server stops allocating. On EOF the server finishes its queued
//! writes, shuts its side down gracefully and drops the connection; on an error it drops it at once.
use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write;
use std::rc::Rc;
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use uvio::net::TcpListener;
use uvio::uv::{Loop, RunMode, Tcp, Timer};

/// Buffers kept for reuse; beyond this, finished buffers are freed.
const POOL_MAX: usize = 1024;

type Pool = Rc<RefCell<Vec<Vec<u8>>>>;
type Conns = Rc<RefCell<HashMap<u64, Tcp>>>;

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

fn serve(conn: &Tcp, id: u64, conns: &Conns, pool: &Pool) -> uvio::Result<()> {
    conn.set_nodelay(true)?;
    let (conns, pool) = (conns.clone(), pool.clone());
    conn.read_start(move |c, data| match data {
        Ok(bytes) => {
            if c.write(copy_into_pooled(&pool, bytes), |_, _| {}).is_err() {
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

fn arg_value(args: &[String], name: &str) -> Option<String> {
    let prefix = format!("{name}=");
    args.iter().enumerate().find_map(|(i, a)| {
        if a == name {
            args.get(i + 1).cloned()
        } else {
            a.strip_prefix(&prefix).map(str::to_owned)
        }
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let port: u16 = arg_value(&args, "--port").map_or(Ok(9123), |p| p.parse())?;
    let max_seconds: Option<f64> = arg_value(&args, "--max-seconds").map(|s| s.parse()).transpose()?;
    let backend: uvio::Backend = match arg_value(&args, "--backend") {
        Some(name) => name.parse()?,
        None => uvio::Backend::from_env()?.unwrap_or_default(),
    };
    match arg_value(&args, "--api").as_deref().unwrap_or("async") {
        "async" => serve_async(port, max_seconds, backend),
        "callback" => serve_callbacks(port, max_seconds),
        other => Err(format!("unknown --api {other:?}: use async or callback").into()),
    }
}

fn serve_async(port: u16, max_seconds: Option<f64>, backend: uvio::Backend) -> Result<(), Box<dyn std::error::Error>> {
    // An explicit --backend wins over UVIO_BACKEND (which otherwise overrides the builder for the process).
    if std::env::var_os("UVIO_BACKEND").is_some() {
        std::env::remove_var("UVIO_BACKEND");
    }
    let rt = uvio::Builder::new().backend(backend).build()?;
    let engine = rt.backend();
    rt.block_on(async {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        println!("echo_server listening on {} (async API, {engine} engine)", listener.local_addr()?);
        std::io::stdout().flush()?;
        let accept_loop = async {
            loop {
                // A failed accept (out of descriptors, a reset before accept) is not fatal: keep serving.
                let Ok((mut conn, _)) = listener.accept().await else { continue };
                conn.set_nodelay(true).ok();
                uvio::spawn_local(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    while let Ok(n @ 1..) = conn.read(&mut buf).await {
                        if conn.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                    let _ = conn.close().await; // EOF: flush and shut down our side
                });
            }
        };
        match max_seconds {
            Some(secs) => {
                let _ = uvio::time::timeout(Duration::from_secs_f64(secs.max(0.0)), accept_loop).await;
            }
            None => accept_loop.await,
        }
        Ok::<(), std::io::Error>(())
    })?;
    Ok(())
}

fn serve_callbacks(port: u16, max_seconds: Option<f64>) -> Result<(), Box<dyn std::error::Error>> {
    let lp = Loop::new()?;
    let server = Rc::new(RefCell::new(Some(Tcp::new(&lp)?)));
    let conns: Conns = Rc::default();
    let pool: Pool = Rc::default();
    {
        let guard = server.borrow();
        let listener = guard.as_ref().expect("just created");
        listener.bind(([127, 0, 0, 1], port).into())?;
        let (conns, pool) = (conns.clone(), pool.clone());
        let mut next_id = 0u64;
        listener.listen(1024, move |srv, res| {
            if res.is_err() {
                return; // a failed accept: keep listening
            }
            let Ok(conn) = srv.accept() else { return };
            next_id += 1;
            if serve(&conn, next_id, &conns, &pool).is_ok() {
                conns.borrow_mut().insert(next_id, conn);
            }
        })?;
        println!("echo_server listening on {} (callback API)", listener.local_addr()?);
        std::io::stdout().flush()?;
    }

    // Optional time limit: close the listener and every connection; the loop then ends by itself.
    let deadline = Timer::new(&lp)?;
    if let Some(secs) = max_seconds {
        let (server, conns) = (server.clone(), conns.clone());
        deadline.start(Duration::from_secs_f64(secs.max(0.0)), None, move |_| {
            drop(server.borrow_mut().take());
            let all: Vec<Tcp> = conns.borrow_mut().drain().map(|(_, c)| c).collect();
            drop(all);
        })?;
    }
    lp.run(RunMode::Default)?;
    drop(deadline);
    drop(server);
    lp.close().map_err(|e| e.error())?;
    Ok(())
}
