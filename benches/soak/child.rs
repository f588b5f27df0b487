//! The soak scenarios themselves, each run in a child process of its own (`soak --child SCENARIO ENGINE SIZE`).
//! Each prints one report line ending in ` PASS` or ` FAIL`.

use std::cell::Cell;
use std::io::{Read, Write};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{AsyncReadExt, AsyncWriteExt};

use super::{open_fds, raise_fd_limit, rss_kb, RSS_GROWTH_LIMIT_KB};

pub fn main(args: &[String]) {
    let (scenario, engine, size) = (&args[0], &args[1], args[2].parse::<u64>().unwrap());
    match scenario.as_str() {
        "cycles" => cycles(engine, size),
        "idle" if engine == "tokio" => idle_tokio(size as usize),
        "idle" => idle_uvio(engine, size as usize),
        "mixed" => mixed(engine, size),
        other => panic!("unknown scenario {other}"),
    }
}

fn runtime(engine: &str) -> uvio::Runtime {
    uvio::Builder::new().backend(engine.parse().unwrap()).build().expect("runtime on this engine")
}

/// A uvio echo server on its own thread and runtime; stops (and joins) when the guard drops.
struct EchoServer {
    port: u16,
    stop: Option<futures::channel::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EchoServer {
    fn start(engine: &str) -> EchoServer {
        let engine = engine.to_owned();
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = futures::channel::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = runtime(&engine);
            rt.block_on(async move {
                let listener = uvio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                port_tx.send(listener.local_addr().unwrap().port()).unwrap();
                let accept_loop = async {
                    loop {
                        let Ok((conn, _)) = listener.accept().await else { continue };
                        uvio::spawn_local(echo(conn));
                    }
                };
                futures::pin_mut!(accept_loop);
                futures::future::select(accept_loop, stopped).await;
            });
        });
        EchoServer { port: port_rx.recv().unwrap(), stop: Some(stop), thread: Some(thread) }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.thread.take().unwrap().join().unwrap();
    }
}

/// Echoes until end of stream, then closes gracefully.
async fn echo(mut conn: uvio::net::TcpStream) {
    conn.set_nodelay(true).ok();
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n @ 1..) = conn.read(&mut buf).await {
        if conn.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
    let _ = conn.close().await;
}

/// Waits (up to 2 s) for this process's descriptor count to come back to `target`; returns the last count.
fn settle_fds(target: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let now = open_fds();
        if now <= target || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn cycles(engine: &str, n: u64) {
    let server = EchoServer::start(engine);
    let start = Instant::now();
    let (mut errors, mut baseline) = (0u64, (0, 0));
    for i in 0..n {
        if i == n / 10 {
            baseline = (rss_kb(), settle_fds(0));
        }
        if let Err(e) = cycle(server.port, i) {
            if errors == 0 {
                eprintln!("cycles [{engine}] #{i}: {e}");
            }
            errors += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let (rss, fds) = (rss_kb(), settle_fds(baseline.1));
    drop(server);
    let growth = rss - baseline.0;
    let pass = errors == 0 && growth < RSS_GROWTH_LIMIT_KB && fds <= baseline.1;
    println!(
        "{engine:>9}: {n} cycles in {secs:.1} s ({:.0}/s), errors {errors}, RSS {} -> {rss} kB ({growth:+} kB), \
         fds {} -> {fds} {}",
        n as f64 / secs,
        baseline.0,
        baseline.1,
        verdict(pass)
    );
}

/// One connect / echo 64 B / half-close / EOF / close cycle with blocking std sockets.
fn cycle(port: u16, i: u64) -> std::io::Result<()> {
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port))?;
    c.set_nodelay(true)?;
    let msg: Vec<u8> = (0..64).map(|k| (i as u8).wrapping_add(k)).collect();
    c.write_all(&msg)?;
    let mut back = [0u8; 64];
    c.read_exact(&mut back)?;
    if back[..] != msg[..] {
        return Err(std::io::Error::other("echo differs from what was sent"));
    }
    c.shutdown(std::net::Shutdown::Write)?;
    match c.read(&mut back)? {
        0 => Ok(()),
        n => Err(std::io::Error::other(format!("{n} bytes after the echo, expected end of stream"))),
    }
}

fn verdict(pass: bool) -> &'static str {
    if pass {
        "PASS"
    } else {
        "FAIL"
    }
}

/// The idle server on uvio: accepts `n` connections, each with a read pending in its own task; reports RSS per
/// connection once all are held; echoes until every client has gone.
fn idle_uvio(engine: &str, n: usize) {
    raise_fd_limit();
    let rt = runtime(engine);
    rt.block_on(async {
        let listener = uvio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let before = announce(listener.local_addr().unwrap().port());
        let live = Rc::new(Cell::new(0usize));
        let mut tasks = Vec::with_capacity(n);
        for _ in 0..n {
            let (conn, _) = listener.accept().await.expect("accept");
            live.set(live.get() + 1);
            let live = live.clone();
            tasks.push(uvio::spawn_local(async move {
                idle_echo_uvio(conn).await;
                live.set(live.get() - 1);
            }));
        }
        uvio::time::sleep(Duration::from_millis(200)).await; // every task has polled its read
        report_held(before, n);
        for t in tasks {
            t.await.unwrap();
        }
        println!("DONE");
    });
}

async fn idle_echo_uvio(mut conn: uvio::net::TcpStream) {
    let mut buf = [0u8; 64];
    while let Ok(n @ 1..) = conn.read(&mut buf).await {
        if conn.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

fn idle_tokio(n: usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    raise_fd_limit();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let before = announce(listener.local_addr().unwrap().port());
        let mut tasks = Vec::with_capacity(n);
        for _ in 0..n {
            let (mut conn, _) = listener.accept().await.expect("accept");
            tasks.push(tokio::spawn(async move {
                let mut buf = [0u8; 64];
                while let Ok(n @ 1..) = conn.read(&mut buf).await {
                    if conn.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        report_held(before, n);
        for t in tasks {
            t.await.unwrap();
        }
        println!("DONE");
    });
}

/// Prints the port for the parent; returns the RSS before any connection.
fn announce(port: u16) -> i64 {
    println!("PORT {port}");
    std::io::stdout().flush().unwrap();
    rss_kb()
}

fn report_held(before: i64, n: usize) {
    let after = rss_kb();
    println!(
        "HELD {n} connections, RSS {before} -> {after} kB, {:.0} bytes per connection",
        (after - before) as f64 * 1024.0 / n as f64
    );
    std::io::stdout().flush().unwrap();
}

/// A small xorshift generator: the mixed load's sizes and contents, with no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

#[derive(Default)]
struct Counts {
    echoes: Cell<u64>,
    echo_bytes: Cell<u64>,
    sleeps: Cell<u64>,
    ticks: Cell<u64>,
    files: Cell<u64>,
    children: Cell<u64>,
    lookups: Cell<u64>,
    errors: Cell<u64>,
}

impl Counts {
    fn bump(c: &Cell<u64>) {
        c.set(c.get() + 1);
    }
    fn error(&self, what: &str, e: impl std::fmt::Display) {
        if self.errors.get() < 5 {
            eprintln!("mixed: {what}: {e}");
        }
        Counts::bump(&self.errors);
    }
}

fn mixed(engine: &str, secs: u64) {
    let server = EchoServer::start(engine);
    let samples = Arc::new(Mutex::new(Vec::<i64>::new()));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (samples, done) = (samples.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                samples.lock().unwrap().push(rss_kb());
                std::thread::sleep(Duration::from_millis(250));
            }
        })
    };
    let dir = std::env::temp_dir().join(format!("uvio-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let counts = Rc::new(Counts::default());
    let rt = runtime(engine);
    rt.block_on(async {
        let mut tasks = Vec::new();
        for id in 0..64u64 {
            tasks.push(uvio::spawn_local(echo_client(server.port, id, deadline, counts.clone())));
        }
        tasks.push(uvio::spawn_local(timers(deadline, counts.clone())));
        tasks.push(uvio::spawn_local(files(dir.clone(), deadline, counts.clone())));
        tasks.push(uvio::spawn_local(children(deadline, counts.clone())));
        tasks.push(uvio::spawn_local(lookups(deadline, counts.clone())));
        for t in tasks {
            t.await.unwrap();
        }
    });
    drop(rt);
    drop(server);
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let samples = samples.lock().unwrap();
    let (first_quarter, last) = (samples[samples.len() / 4], *samples.last().unwrap());
    let c = &counts;
    // Interval ticks every 10 ms: at least half of them must have come (a loaded 2-core machine is late, not
    // silent).
    let ticks_ok = c.ticks.get() >= secs * 50;
    let growth = last - first_quarter;
    let pass = c.errors.get() == 0 && growth < RSS_GROWTH_LIMIT_KB && ticks_ok && c.children.get() > 0;
    println!(
        "{engine:>9}: {secs} s, echoes {} ({} MiB), sleeps {}, ticks {}, files {}, children {}, lookups {}, \
         errors {}, RSS {first_quarter} -> {last} kB ({growth:+} kB) {}",
        c.echoes.get(),
        c.echo_bytes.get() >> 20,
        c.sleeps.get(),
        c.ticks.get(),
        c.files.get(),
        c.children.get(),
        c.lookups.get(),
        c.errors.get(),
        verdict(pass)
    );
}

async fn echo_client(port: u16, id: u64, deadline: Instant, counts: Rc<Counts>) {
    let mut conn = match uvio::net::TcpStream::connect(("127.0.0.1", port)).await {
        Ok(c) => c,
        Err(e) => return counts.error("connect", e),
    };
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (id + 1));
    let mut back = Vec::new();
    while Instant::now() < deadline {
        let len = 1 + (rng.next() % (64 * 1024)) as usize;
        let msg = rng.bytes(len);
        back.resize(len, 0);
        let res = async {
            conn.write_all(&msg).await?;
            conn.read_exact(&mut back).await
        }
        .await;
        match res {
            Ok(()) if back == msg => {
                Counts::bump(&counts.echoes);
                counts.echo_bytes.set(counts.echo_bytes.get() + len as u64);
            }
            Ok(()) => return counts.error("echo", "bytes differ from what was sent"),
            Err(e) => return counts.error("echo", e),
        }
    }
    if let Err(e) = conn.close().await {
        counts.error("close", e);
    }
}

async fn timers(deadline: Instant, counts: Rc<Counts>) {
    let ticker = async {
        let mut interval = uvio::time::interval(Duration::from_millis(10));
        while Instant::now() < deadline {
            interval.tick().await;
            Counts::bump(&counts.ticks);
        }
    };
    let sleeper = async {
        while Instant::now() < deadline {
            let start = Instant::now();
            uvio::time::sleep(Duration::from_millis(1)).await;
            if start.elapsed() < Duration::from_millis(1) {
                return counts.error("sleep", "woke early");
            }
            Counts::bump(&counts.sleeps);
        }
    };
    futures::join!(ticker, sleeper);
}

async fn files(dir: std::path::PathBuf, deadline: Instant, counts: Rc<Counts>) {
    let mut rng = Rng(42);
    let mut i = 0u64;
    while Instant::now() < deadline {
        let path = dir.join(format!("f{}", i % 8));
        let len = 1 + (rng.next() % (256 * 1024)) as usize;
        let data = rng.bytes(len);
        let res = async {
            uvio::fs::write(&path, &data).await?;
            let back = uvio::fs::read(&path).await?;
            uvio::fs::remove_file(&path).await?;
            Ok::<_, std::io::Error>(back)
        }
        .await;
        match res {
            Ok(back) if back == data => Counts::bump(&counts.files),
            Ok(_) => return counts.error("file", "read back differs from what was written"),
            Err(e) => return counts.error("file", e),
        }
        i += 1;
    }
}

async fn children(deadline: Instant, counts: Rc<Counts>) {
    while Instant::now() < deadline {
        match uvio::process::Command::new("sh").args(["-c", "echo soak"]).output().await {
            Ok(out) if out.status.success() && out.stdout == b"soak\n" => Counts::bump(&counts.children),
            Ok(out) => return counts.error("child", format!("{:?} {:?}", out.status, out.stdout)),
            Err(e) => return counts.error("child", e),
        }
        uvio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn lookups(deadline: Instant, counts: Rc<Counts>) {
    while Instant::now() < deadline {
        match uvio::net::lookup_host("localhost:80").await {
            Ok(addrs) => {
                if !addrs.into_iter().any(|a| a.ip().is_loopback()) {
                    return counts.error("lookup", "localhost did not resolve to a loopback address");
                }
                Counts::bump(&counts.lookups)
            }
            Err(e) => return counts.error("lookup", e),
        }
        uvio::time::sleep(Duration::from_millis(10)).await;
    }
}
