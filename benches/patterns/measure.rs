//! The patterns benchmark's measuring code, shared by `benches/patterns.rs` and the `report` mode of
//! `benches/vs_tokio.rs`: run every server of every pattern and engine, and tokio's, in interleaved rounds.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures::{AsyncReadExt, AsyncWriteExt};
use uvio::server::{Pattern, RunningServer, Server};

const PATTERNS: [(&str, Pattern); 4] = [
    ("single-loop", Pattern::SingleLoop),
    ("acceptor-workers", Pattern::AcceptorWorkers),
    ("shared-listener", Pattern::SharedListener),
    ("reuseport", Pattern::ReusePort),
];
const MSG: usize = 64;

/// Measures both workloads for every server, `secs` seconds per cell, `rounds` rounds with the servers taking
/// turns within a round; prints one markdown table per workload and returns every measurement.
pub(crate) fn run(secs: f64, rounds: usize) -> Vec<Measured> {
    let dur = Duration::from_secs_f64(secs);
    let mut engines: Vec<&'static str> = vec!["libuv"];
    if cfg!(target_os = "linux") {
        engines = vec!["io_uring", "epoll", "libuv"];
    }
    // (row name, engine name, the uvio server to start: none for tokio's)
    type Contender = (String, &'static str, Option<(&'static str, Pattern)>);
    let mut rows: Vec<Contender> = Vec::new();
    for engine in engines {
        for p in PATTERNS {
            rows.push((format!("uvio {engine} {}", p.0), engine, Some((engine, p.1))));
        }
    }
    rows.push(("tokio multi-thread (2 workers)".into(), "tokio", None));
    let mut all = Vec::new();
    for workload in [Workload::Keepalive, Workload::Connect] {
        let mut results: Vec<Vec<Cell>> = vec![Vec::new(); rows.len()];
        for _ in 0..rounds {
            for (i, (_, _, server)) in rows.iter().enumerate() {
                results[i].push(measure(*server, workload, dur));
            }
        }
        println!("\n{} ({} s per cell, median of {rounds} rounds)", workload.title(), secs);
        println!("| server | {}/s | CPU µs/op (process) | smaller worker's share |", workload.unit());
        println!("|---|---:|---:|---:|");
        for ((name, engine, _), cells) in rows.iter().zip(results) {
            let measured = Measured { workload, server: name.clone(), engine: (*engine).to_owned(), cells };
            let share = measured.median(|c| c.share);
            let share = if share.is_nan() { "-".into() } else { format!("{:.0}%", share * 100.0) };
            println!(
                "| {} | {:.0} | {:.1} | {share} |",
                measured.server,
                measured.median(|c| c.rate),
                measured.median(|c| c.cpu_us)
            );
            all.push(measured);
        }
    }
    all
}

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Workload {
    Keepalive,
    Connect,
}

impl Workload {
    pub(crate) fn title(self) -> &'static str {
        match self {
            Workload::Keepalive => "keepalive: 100 connections, 64-byte round trips",
            Workload::Connect => "connect: 50 tasks, connect + one 64-byte round trip + close",
        }
    }

    pub(crate) fn unit(self) -> &'static str {
        match self {
            Workload::Keepalive => "round trips",
            Workload::Connect => "connections",
        }
    }
}

/// One measurement of one server.
#[derive(Clone, Copy)]
pub(crate) struct Cell {
    pub(crate) rate: f64,
    pub(crate) cpu_us: f64,
    /// The smaller worker's share of accepted connections (NaN for tokio, which does not say).
    pub(crate) share: f64,
}

/// One server's measurements of one workload, one per round.
pub(crate) struct Measured {
    // The patterns binary prints only the server's name; the report in benches/vs_tokio.rs reads these too.
    #[allow(dead_code)]
    pub(crate) workload: Workload,
    pub(crate) server: String,
    /// The engine's name, "tokio" for the tokio server.
    #[allow(dead_code)]
    pub(crate) engine: String,
    pub(crate) cells: Vec<Cell>,
}

impl Measured {
    /// The median over the rounds of one figure.
    pub(crate) fn median(&self, figure: fn(&Cell) -> f64) -> f64 {
        median(self.cells.iter().map(figure).collect())
    }
}

fn measure(server: Option<(&str, Pattern)>, workload: Workload, dur: Duration) -> Cell {
    match server {
        Some((engine, pattern)) => {
            let running = uvio_server(engine, pattern);
            let (rate, cpu_us) = drive(running.local_addr(), workload, dur);
            let accepted: Vec<u64> = running.workers().iter().map(|w| w.accepted()).collect();
            let summary = running.shutdown(Duration::from_secs(1)).unwrap();
            assert_eq!(summary.errors, 0, "{summary:?}");
            let total: u64 = accepted.iter().sum();
            let share = match accepted.len() {
                1 => f64::NAN,
                _ => *accepted.iter().min().unwrap() as f64 / total.max(1) as f64,
            };
            Cell { rate, cpu_us, share }
        }
        None => {
            let (addr, stop) = tokio_server();
            let (rate, cpu_us) = drive(addr, workload, dur);
            stop();
            Cell { rate, cpu_us, share: f64::NAN }
        }
    }
}

async fn echo(mut conn: uvio::net::TcpStream, _: uvio::server::Worker) -> std::io::Result<()> {
    conn.set_nodelay(true)?;
    let mut buf = [0u8; 4096];
    loop {
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        conn.write_all(&buf[..n]).await?;
    }
}

fn uvio_server(engine: &str, pattern: Pattern) -> RunningServer {
    Server::builder()
        .pattern(pattern)
        .threads(2)
        .backend(engine.parse().unwrap())
        .bind("127.0.0.1:0")
        .unwrap()
        .serve(echo)
        .unwrap()
}

/// A tokio echo server on a 2-worker multi-thread runtime; the closure stops it.
fn tokio_server() -> (SocketAddr, impl FnOnce()) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        loop {
            let (mut conn, _) = listener.accept().await.unwrap();
            conn.set_nodelay(true).unwrap();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                loop {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if conn.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    (addr, move || rt.shutdown_timeout(Duration::from_secs(1)))
}

/// Runs `workload` against `addr` for `dur`: operations per second, and this process's CPU µs per operation.
fn drive(addr: SocketAddr, workload: Workload, dur: Duration) -> (f64, f64) {
    let rt = uvio::Runtime::new().unwrap();
    let cpu0 = cpu_seconds();
    let start = Instant::now();
    let ops: u64 = rt.block_on(async {
        let tasks = match workload {
            Workload::Keepalive => 100,
            Workload::Connect => 50,
        };
        let end = Rc::new(start + dur);
        let handles: Vec<_> = (0..tasks)
            .map(|t| {
                let end = end.clone();
                uvio::spawn_local(async move {
                    match workload {
                        Workload::Keepalive => keepalive(addr, t as u8, *end).await,
                        Workload::Connect => connects(addr, t as u8, *end).await,
                    }
                })
            })
            .collect();
        let mut ops = 0;
        for h in handles {
            ops += h.await.unwrap();
        }
        ops
    });
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    drop(rt);
    (ops as f64 / secs, cpu * 1e6 / ops.max(1) as f64)
}

async fn round_trip(conn: &mut uvio::net::TcpStream, tag: u8) {
    let msg = [tag; MSG];
    conn.write_all(&msg).await.unwrap();
    let mut back = [0u8; MSG];
    conn.read_exact(&mut back).await.unwrap();
    assert_eq!(back, msg);
}

async fn keepalive(addr: SocketAddr, tag: u8, end: Instant) -> u64 {
    let mut conn = uvio::net::TcpStream::connect(addr).await.unwrap();
    conn.set_nodelay(true).unwrap();
    let mut n = 0;
    while Instant::now() < end {
        round_trip(&mut conn, tag).await;
        n += 1;
    }
    n
}

async fn connects(addr: SocketAddr, tag: u8, end: Instant) -> u64 {
    let mut n = 0;
    while Instant::now() < end {
        let mut conn = uvio::net::TcpStream::connect(addr).await.unwrap();
        conn.set_nodelay(true).unwrap();
        round_trip(&mut conn, tag).await;
        n += 1;
    }
    n
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.retain(|x| !x.is_nan());
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => f64::NAN,
        n => xs[n / 2],
    }
}

/// user + system CPU seconds of this process (all threads); NaN where getrusage is missing.
fn cpu_seconds() -> f64 {
    #[cfg(unix)]
    {
        // SAFETY: all-zero is a valid `rusage` (plain integers), filled in by getrusage below.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: getrusage writes only into the `rusage` it is given, which is valid and exclusively ours.
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
            return f64::NAN;
        }
        let secs = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 * 1e-6;
        secs(ru.ru_utime) + secs(ru.ru_stime)
    }
    #[cfg(not(unix))]
    f64::NAN
}
