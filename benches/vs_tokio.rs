//! uvio's runtime against tokio's, same machine, same run, reported as ratios.
//!
//! `cargo bench --bench vs_tokio [-- sleeps N]`
//!
//! - **sleeps**: N pending sleeps, sleep i due at 1 + i/1000 ms (libuv's million_timers shape), one task per
//!   sleep, on uvio's runtime and on tokio's current-thread runtime. Each side runs in its own child process so
//!   that peak RSS (`ru_maxrss`) is its own. Default N = 10 000 000 (needs ~10 GiB free for both together).
//! - **echo**: request/response echo over C loopback connections with S-byte messages for D seconds, the
//!   server in a child process (`examples/echo_server` with `--api async` and `--api callback`, and tokio
//!   echo servers on the current-thread and multi-thread runtimes), one client (uvio callbacks, in this
//!   process) for all of them. Reports round trips per second and ratios.
//!
//! `cargo bench --bench vs_tokio -- echo [C] [S] [D]` (defaults 100 64 5); no argument runs both.
//!
//! - **files**: N random 4 KiB reads of a 1 GiB file (real data, created once in the target dir and reused;
//!   page-cached after the first run) with 64 in flight (64 tasks, one open file each), then N `metadata` calls
//!   with 64 in flight: uvio on the io_uring engine (Linux), uvio on the libuv engine, and `tokio::fs` on a
//!   current-thread runtime (its blocking pool does the syscalls).
//!
//! `cargo bench --bench vs_tokio -- files [N]` (default 100 000).
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant};

fn main() {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if raw.is_empty() {
        // `cargo bench` passes `--bench`; a bare run is `cargo test --benches` (or --all-targets): too long.
        println!("vs_tokio: run with `cargo bench --bench vs_tokio [-- sleeps|echo|files ...]`");
        return;
    }
    let args: Vec<String> = raw.into_iter().filter(|a| a != "--bench").collect();
    match args.first().map(String::as_str) {
        Some("child-sleeps-uvio") => child_sleeps_uvio(args[1].parse().unwrap()),
        Some("child-sleeps-tokio") => child_sleeps_tokio(args[1].parse().unwrap()),
        Some("child-echo-tokio") => child_echo_tokio(args[1] == "multi"),
        Some("files") => files(args.get(1).map_or(100_000, |n| n.parse().unwrap())),
        Some("sleeps") => sleeps(args.get(1).map_or(10_000_000, |n| n.parse().unwrap())),
        Some("echo") => echo(
            args.get(1).map_or(100, |n| n.parse().unwrap()),
            args.get(2).map_or(64, |n| n.parse().unwrap()),
            args.get(3).map_or(5.0, |n| n.parse().unwrap()),
        ),
        _ => {
            sleeps(10_000_000);
            echo(100, 64, 5.0);
        }
    }
}

fn due(i: u64) -> Duration {
    Duration::from_micros(1000 + i) // 1 + i/1000 ms
}

fn child_sleeps_uvio(n: u64) {
    let rt = uvio::Runtime::new().unwrap();
    let t = Instant::now();
    rt.block_on(async {
        let start = uvio::time::Instant::now();
        let tasks: Vec<_> = (0..n).map(|i| uvio::spawn_local(uvio::time::sleep_until(start + due(i)))).collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    println!("{}", t.elapsed().as_secs_f64());
}

fn child_sleeps_tokio(n: u64) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let t = Instant::now();
    rt.block_on(async {
        let start = tokio::time::Instant::now();
        let tasks: Vec<_> = (0..n).map(|i| tokio::spawn(tokio::time::sleep_until(start + due(i)))).collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    println!("{}", t.elapsed().as_secs_f64());
}

/// Runs one side in a child process: (seconds, peak RSS in MiB).
fn run_child(case: &str, n: u64) -> (f64, f64) {
    let exe = std::env::current_exe().unwrap();
    let script = format!("{} {case} {n}", exe.display());
    // `command time -v` is not always installed: read the child's rusage through a tiny shell wrapper instead.
    let out = Command::new(&exe).args([case, &n.to_string()]).output().unwrap();
    assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
    let secs: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    (secs, max_child_rss_mib())
}

/// The largest peak RSS among waited-for children so far (getrusage RUSAGE_CHILDREN keeps the maximum).
fn max_child_rss_mib() -> f64 {
    #[cfg(unix)]
    {
        // SAFETY: getrusage with a valid out-pointer.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
        ru.ru_maxrss as f64 / 1024.0
    }
    #[cfg(not(unix))]
    0.0
}

fn sleeps(n: u64) {
    println!("{n} pending sleeps, sleep i due at 1 + i/1000 ms, one task per sleep");
    // Run the smaller-footprint side first so RUSAGE_CHILDREN's running maximum reads each side's peak.
    let (u_secs, u_rss) = run_child("child-sleeps-uvio", n);
    let (t_secs, t_rss_max) = run_child("child-sleeps-tokio", n);
    let t_rss = if t_rss_max > u_rss { t_rss_max } else { f64::NAN };
    println!("  uvio   {u_secs:>7.2} s   peak RSS {u_rss:>8.0} MiB");
    if t_rss.is_nan() {
        println!("  tokio  {t_secs:>7.2} s   peak RSS <= {t_rss_max:.0} MiB (not above uvio's; see note)");
    } else {
        println!("  tokio  {t_secs:>7.2} s   peak RSS {t_rss:>8.0} MiB");
    }
    println!("  ratio uvio/tokio: time {:.2}x, RSS {:.2}x", u_secs / t_secs, u_rss / t_rss);
}

// ----- echo -----

fn child_echo_tokio(multi: bool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = if multi {
        tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap()
    } else {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    };
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("echo_server listening on {}", listener.local_addr().unwrap());
        use std::io::Write;
        std::io::stdout().flush().unwrap();
        loop {
            let Ok((mut conn, _)) = listener.accept().await else { continue };
            conn.set_nodelay(true).ok();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                while let Ok(n @ 1..) = conn.read(&mut buf).await {
                    if conn.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
}

/// Starts a server child process and returns it with the port it printed.
/// Pins every thread of process `pid` to one CPU with `taskset` (client and server then do not fight for the same
/// core, which on a small machine is most of the run-to-run noise). Returns whether it worked.
fn pin(pid: u32, cpu: usize) -> bool {
    Command::new("taskset")
        .args(["-a", "-p", "-c", &cpu.to_string(), &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn start_server(mut cmd: Command) -> (std::process::Child, u16) {
    use std::io::BufRead;
    let mut child = cmd.stdout(std::process::Stdio::piped()).spawn().unwrap();
    // The server on CPU 1, the client (this process) on CPU 0, when the machine has two CPUs or more.
    if std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2 {
        pin(child.id(), 1);
    }
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    let port = line
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    (child, port)
}

/// The echo client: `conns` connections, each sending `size` bytes and waiting for them before the next send,
/// for `secs` seconds. Returns (round trips per second, the server's CPU microseconds per round trip).
fn run_client(port: u16, conns: usize, size: usize, secs: f64, server_pid: u32) -> (f64, f64) {
    use std::cell::Cell;
    use std::rc::Rc;
    use uvio::uv::{Handle, Loop, RunMode, Tcp, Timer};

    let lp = Loop::new().unwrap();
    let done = Rc::new(Cell::new(false));
    let count = Rc::new(Cell::new(0u64));
    let counting = Rc::new(Cell::new(false));
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut clients = Vec::new();
    for _ in 0..conns {
        let c = Tcp::new(&lp).unwrap();
        let (count, counting, done) = (count.clone(), counting.clone(), done.clone());
        c.connect(addr, move |c, r| {
            r.unwrap();
            c.set_nodelay(true).unwrap();
            let mut got = 0usize;
            c.read_start(move |c, data| {
                let Ok(bytes) = data else { return };
                got += bytes.len();
                if got >= size {
                    got -= size;
                    if counting.get() {
                        count.set(count.get() + 1);
                    }
                    if !done.get() {
                        c.write(vec![7u8; size], |_, _| {}).unwrap();
                    }
                }
            })
            .unwrap();
            c.write(vec![7u8; size], |_, _| {}).unwrap();
        })
        .unwrap();
        clients.push(c);
    }
    // Warm up for 0.5 s, then count for `secs`.
    let warm = Timer::new(&lp).unwrap();
    let c2 = counting.clone();
    warm.start(Duration::from_millis(500), None, move |_| c2.set(true)).unwrap();
    let stop = Timer::new(&lp).unwrap();
    let d2 = done.clone();
    let cpu_at_start = Rc::new(Cell::new(0.0));
    let cpu2 = cpu_at_start.clone();
    warm.unref();
    let lp2 = lp.clone();
    stop.start(Duration::from_secs_f64(0.5 + secs), None, move |_| {
        d2.set(true);
        lp2.stop();
    })
    .unwrap();
    let w2 = cpu_at_start.clone();
    let probe = Timer::new(&lp).unwrap();
    probe.start(Duration::from_millis(500), None, move |_| w2.set(process_cpu_seconds(server_pid))).unwrap();
    lp.run(RunMode::Default).unwrap();
    let server_cpu = process_cpu_seconds(server_pid) - cpu2.get();
    drop((clients, warm, stop, probe));
    let _ = lp.run(RunMode::NoWait);
    let n = count.get() as f64;
    (n / secs, server_cpu * 1e6 / n.max(1.0))
}

/// user + system CPU seconds of a process, from /proc (Linux); 0 elsewhere.
fn process_cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    let fields: Vec<&str> = stat.rsplit_once(')').map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // After the command name: state is field 0, utime 11, stime 12 (clock ticks, 100 per second here).
    (ticks(11) + ticks(12)) / 100.0
}

fn echo(conns: usize, size: usize, secs: f64) {
    let pinned = std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2 && pin(std::process::id(), 0);
    println!(
        "echo: {conns} connections, {size}-byte messages, {secs} s per server (client: uvio callbacks{})",
        if pinned { "; client pinned to CPU 0, server to CPU 1" } else { "; not pinned" }
    );
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = Command::new(cargo).args(["build", "--release", "--example", "echo_server"]).status().unwrap();
    assert!(built.success(), "building examples/echo_server failed");
    let example = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("examples/echo_server");
    let exe = std::env::current_exe().unwrap();
    let servers: Vec<(&str, Command)> = vec![
        ("uvio async (TcpStream)", {
            let mut c = Command::new(&example);
            c.args(["--api", "async", "--port", "0"]);
            c
        }),
        ("uvio async epoll", {
            let mut c = Command::new(&example);
            c.args(["--api", "async", "--port", "0"]).env("UVIO_BACKEND", "epoll");
            c
        }),
        ("uvio async libuv", {
            let mut c = Command::new(&example);
            c.args(["--api", "async", "--port", "0"]).env("UVIO_BACKEND", "libuv");
            c
        }),
        ("uvio callback (uv::Tcp)", {
            let mut c = Command::new(&example);
            c.args(["--api", "callback", "--port", "0"]);
            c
        }),
        ("tokio current-thread", {
            let mut c = Command::new(&exe);
            c.args(["child-echo-tokio", "current"]);
            c
        }),
        ("tokio multi-thread", {
            let mut c = Command::new(&exe);
            c.args(["child-echo-tokio", "multi"]);
            c
        }),
    ];
    let mut results = Vec::new();
    for (name, cmd) in servers {
        let (mut child, port) = start_server(cmd);
        let (rps, cpu) = run_client(port, conns, size, secs, child.id());
        let _ = child.kill();
        let _ = child.wait();
        println!("  {name:<26} {rps:>10.0} round trips/s   server CPU {cpu:>6.2} us per round trip");
        results.push((name, rps, cpu));
    }
    let by_name = |name: &str| results.iter().find(|r| r.0 == name).map(|r| (r.1, r.2)).unwrap();
    let (async_rps, async_cpu) = by_name("uvio async (TcpStream)");
    let (epoll_rps, epoll_cpu) = by_name("uvio async epoll");
    let (libuv_rps, libuv_cpu) = by_name("uvio async libuv");
    let (cb_rps, _) = by_name("uvio callback (uv::Tcp)");
    let (tokio_ct, tokio_cpu) = by_name("tokio current-thread");
    let (tokio_mt, _) = by_name("tokio multi-thread");
    println!("  uvio async / uvio callback:        {:.2}x", async_rps / cb_rps);
    println!(
        "  uvio async / tokio current-thread: {:.2}x (server CPU per request {:.2}x)",
        async_rps / tokio_ct,
        async_cpu / tokio_cpu
    );
    println!("  uvio async / tokio multi-thread:   {:.2}x", async_rps / tokio_mt);
    println!(
        "  uvio async epoll / tokio current-thread: {:.2}x (server CPU per request {:.2}x)",
        epoll_rps / tokio_ct,
        epoll_cpu / tokio_cpu
    );
    println!(
        "  uvio async epoll / uvio async libuv:     {:.2}x (server CPU per request {:.2}x)",
        epoll_rps / libuv_rps,
        epoll_cpu / libuv_cpu
    );
}

// ----- files -----

const FILE_LEN: u64 = 1 << 30;
const BLOCK: usize = 4096;
const IN_FLIGHT: u64 = 64;

/// The 1 GiB file of real (not sparse) data, created on first use.
fn bench_file() -> std::path::PathBuf {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("uvio-bench-1gib.dat");
    if std::fs::metadata(&path).map(|m| m.len()).ok() != Some(FILE_LEN) {
        use std::io::Write;
        let t = Instant::now();
        let tmp = path.with_extension("partial");
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp).unwrap());
        let mut chunk = vec![0u8; 1 << 20];
        for i in 0..FILE_LEN / chunk.len() as u64 {
            for (j, b) in chunk.iter_mut().enumerate() {
                *b = (i as u8).wrapping_mul(31) ^ (j as u8) ^ (j >> 8) as u8;
            }
            f.write_all(&chunk).unwrap();
        }
        f.into_inner().unwrap().sync_all().unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        println!("  (created {} in {:.1} s)", path.display(), t.elapsed().as_secs_f64());
    }
    path
}

/// The block offsets task `t` reads (deterministic, the same for every contender).
fn offsets(t: u64, per_task: u64) -> impl Iterator<Item = u64> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ (t + 1);
    (0..per_task).map(move |_| {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) % (FILE_LEN / BLOCK as u64)) * BLOCK as u64
    })
}

/// (reads/s, stats/s) on a uvio runtime with `backend`, or `None` if that engine is not available.
fn files_uvio(path: &std::path::Path, n: u64, backend: uvio::Backend) -> Option<(f64, f64, uvio::Backend)> {
    use futures::{AsyncReadExt, AsyncSeekExt};
    let rt = uvio::Builder::new().backend(backend).build().ok()?;
    let per_task = n / IN_FLIGHT;
    let t = Instant::now();
    rt.block_on(async {
        let tasks: Vec<_> = (0..IN_FLIGHT)
            .map(|i| {
                let path = path.to_owned();
                uvio::spawn_local(async move {
                    let mut file = uvio::fs::File::open(&path).await.unwrap();
                    let mut buf = vec![0u8; BLOCK];
                    for at in offsets(i, per_task) {
                        file.seek(std::io::SeekFrom::Start(at)).await.unwrap();
                        file.read_exact(&mut buf).await.unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    let reads = (per_task * IN_FLIGHT) as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    rt.block_on(async {
        let tasks: Vec<_> = (0..IN_FLIGHT)
            .map(|_| {
                let path = path.to_owned();
                uvio::spawn_local(async move {
                    for _ in 0..per_task {
                        assert_eq!(uvio::fs::metadata(&path).await.unwrap().len(), FILE_LEN);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    let stats = (per_task * IN_FLIGHT) as f64 / t.elapsed().as_secs_f64();
    let engine = rt.backend();
    rt.close().unwrap();
    Some((reads, stats, engine))
}

/// (reads/s, stats/s) with tokio::fs on a current-thread runtime.
fn files_tokio(path: &std::path::Path, n: u64) -> (f64, f64) {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let per_task = n / IN_FLIGHT;
    let t = Instant::now();
    rt.block_on(async {
        let tasks: Vec<_> = (0..IN_FLIGHT)
            .map(|i| {
                let path = path.to_owned();
                tokio::spawn(async move {
                    let mut file = tokio::fs::File::open(&path).await.unwrap();
                    let mut buf = vec![0u8; BLOCK];
                    for at in offsets(i, per_task) {
                        file.seek(std::io::SeekFrom::Start(at)).await.unwrap();
                        file.read_exact(&mut buf).await.unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    let reads = (per_task * IN_FLIGHT) as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    rt.block_on(async {
        let tasks: Vec<_> = (0..IN_FLIGHT)
            .map(|_| {
                let path = path.to_owned();
                tokio::spawn(async move {
                    for _ in 0..per_task {
                        assert_eq!(tokio::fs::metadata(&path).await.unwrap().len(), FILE_LEN);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    let stats = (per_task * IN_FLIGHT) as f64 / t.elapsed().as_secs_f64();
    (reads, stats)
}

fn files(n: u64) {
    println!("files: {n} random {BLOCK}-byte reads of a 1 GiB file, then {n} stats; {IN_FLIGHT} in flight");
    let path = bench_file();
    // Warm the page cache the same way for everyone (the first contender would otherwise pay for it).
    let _ = files_uvio(&path, n, uvio::Backend::Libuv);
    #[cfg(target_os = "linux")]
    let ring = files_uvio(&path, n, uvio::Backend::IoUring);
    #[cfg(not(target_os = "linux"))]
    let ring: Option<(f64, f64, uvio::Backend)> = None;
    let (uv_r, uv_s, _) = files_uvio(&path, n, uvio::Backend::Libuv).unwrap();
    let (tk_r, tk_s) = files_tokio(&path, n);
    let row = |name: &str, r: f64, s: f64| println!("  {name:<24} {r:>10.0} reads/s {s:>10.0} stats/s");
    if let Some((r, s, engine)) = ring {
        row(&format!("uvio {engine}"), r, s);
    }
    row("uvio libuv", uv_r, uv_s);
    row("tokio::fs current-thread", tk_r, tk_s);
    if let Some((r, s, _)) = ring {
        println!("  io_uring / tokio::fs:  reads {:.2}x, stats {:.2}x", r / tk_r, s / tk_s);
        println!("  io_uring / uvio libuv: reads {:.2}x, stats {:.2}x", r / uv_r, s / uv_s);
    } else {
        println!("  (io_uring is not available here: the uvio libuv row is what Auto falls back to)");
    }
    println!("  uvio libuv / tokio::fs: reads {:.2}x, stats {:.2}x", uv_r / tk_r, uv_s / tk_s);
}
