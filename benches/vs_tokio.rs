//! uvio's runtime against tokio's, same machine, same run, reported as tables with ratios. Nothing here asserts a
//! timing: the figures are for reading.
//!
//! - **sleeps**: `cargo bench --bench vs_tokio -- sleeps [N]` (default 10 000 000, needs ~10 GiB free). N pending
//!   sleeps, sleep i due at 1 + i/1000 ms (libuv's million_timers shape), one task per sleep, on uvio's runtime
//!   and on tokio's current-thread runtime, each in its own child process: wall time, time above the floor (the
//!   last sleep is due at 1 + N/1000 ms, so no runtime can finish sooner), the child's CPU time (user + system)
//!   and its peak RSS, both from `wait4`'s rusage of that child alone.
//! - **echo**: `cargo bench --bench vs_tokio -- echo [C] [S] [D]` (defaults 100 64 5): request/response echo over
//!   C loopback connections with S-byte messages for D seconds (after 0.5 s of warm-up) per server. Every server
//!   is a child process pinned to CPU 1 (`taskset`), the client runs in this process on CPU 0: uvio's async
//!   `TcpStream` on the io_uring, epoll and libuv engines, on Auto when io_uring is unavailable (simulated
//!   `EPERM`), uvio's callback API (all from `examples/echo_server`), and tokio on its current-thread and
//!   multi-thread (2 workers) runtimes (servers inside this binary), and on Linux a server with no runtime at all
//!   (hand-written epoll, `vs_tokio/raw_epoll.rs`): the ceiling this machine allows one server thread. The client is built not to be the
//!   bottleneck: on Linux it drives all connections from one io_uring (see `vs_tokio/uring_client.rs`); elsewhere,
//!   or with `VS_TOKIO_CLIENT=uv`, it is uvio's callback API. Every echoed byte is checked against what was sent.
//!   Reported: round trips/s, server and client CPU per round trip, and ratios. `VS_TOKIO_SERVERS=io_uring,tokio`
//!   (parts of row names) runs only those rows; `VS_TOKIO_REPEAT=R` runs each cell R times with the servers
//!   taking turns and reports medians (run-to-run noise on a shared 2-core machine is about ±15%).
//! - **echo-matrix**: `cargo bench --bench vs_tokio -- echo-matrix [D]` (default 5): the echo table for C in
//!   {100, 1000} x S in {64, 4096}.
//! - **files**: `cargo bench --bench vs_tokio -- files [N]` (default 100 000): N random 4 KiB reads of a 1 GiB
//!   file (real data, created once in the target dir and reused) with 64 in flight (64 tasks, one open file
//!   each), once with the file in the page cache and once with it dropped from there first, then N `metadata`
//!   calls with 64 in flight: uvio on the io_uring engine (Linux; also with SQPOLL), on the libuv engine, on Auto
//!   when io_uring is unavailable (a child process with the simulated `EPERM`), and `tokio::fs` on a
//!   current-thread runtime (its blocking pool does the syscalls), and two ceilings with no runtime: one io_uring
//!   driven by hand (Linux) and 64 threads making plain syscalls (`vs_tokio/raw_files.rs`). See
//!   `vs_tokio/files.rs` for why both cache states. `VS_TOKIO_REPEAT=R` works here too.
//!
//! - **report**: `cargo bench --bench vs_tokio -- report [D] [R]` (defaults 5 and 3): sleeps (1 000 000 at the
//!   default D), files (100 000 operations at the default D), the server patterns of `benches/patterns.rs` (0.4 D
//!   per cell) and echo-matrix (D per cell), every contender taking turns in R rounds, then writes
//!   `docs/benchmarks.md` (machine, medians, spread, CPU per operation, ratios to tokio and to the ceilings) and
//!   its charts `docs/benchmarks/*.svg` (see `vs_tokio/report.rs`). `VS_TOKIO_REPORT_DIR=DIR` writes into DIR
//!   instead; `report 0.2 1` is a quick check that the whole path works.
//!
//! `cargo bench --bench vs_tokio` with no mode runs sleeps and echo with their defaults. A bare run of the binary
//! (what `cargo test --benches` does) only prints the usage line.
#![allow(clippy::unwrap_used)]

#[path = "vs_tokio/echo.rs"]
mod echo;
#[path = "vs_tokio/files.rs"]
mod files;
#[path = "patterns/measure.rs"]
mod patterns;
#[cfg(target_os = "linux")]
#[path = "vs_tokio/raw_epoll.rs"]
mod raw_epoll;
#[path = "vs_tokio/raw_files.rs"]
mod raw_files;
#[path = "vs_tokio/report.rs"]
mod report;
#[path = "vs_tokio/rows.rs"]
mod rows;
#[cfg(target_os = "linux")]
#[path = "vs_tokio/uring_client.rs"]
mod uring_client;

use std::io::Read;

use rows::Role;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if raw.is_empty() {
        // `cargo bench` passes `--bench`; a bare run is `cargo test --benches` (or --all-targets): too long.
        println!("vs_tokio: run with `cargo bench --bench vs_tokio [-- sleeps [N] | echo [C S D] | echo-matrix [D] | files [N] | report [D R]]`");
        return;
    }
    let args: Vec<String> = raw.into_iter().filter(|a| a != "--bench").collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    match arg(0) {
        Some("child-sleeps-uvio") => child_sleeps_uvio(args[1].parse().unwrap()),
        Some("child-sleeps-tokio") => child_sleeps_tokio(args[1].parse().unwrap()),
        Some("child-echo-tokio") => echo::child_echo_tokio(args[1] == "multi"),
        #[cfg(target_os = "linux")]
        Some("child-echo-raw") => raw_epoll::child_echo_raw(),
        Some("child-files-auto") => files::child_auto(args[1].as_ref(), args[2].parse().unwrap()),
        Some("files") => {
            files::run(arg(1).map_or(100_000, |n| n.parse().unwrap()), repeats());
        }
        Some("sleeps") => {
            sleeps(arg(1).map_or(10_000_000, |n| n.parse().unwrap()), 1);
        }
        Some("report") => report::run(
            arg(1).map_or(report::DEFAULT_SECONDS, |n| n.parse().unwrap()),
            arg(2).map_or(report::DEFAULT_ROUNDS, |n| n.parse().unwrap()),
        ),
        Some("echo") => {
            echo::run(
                &[(arg(1).map_or(100, |n| n.parse().unwrap()), arg(2).map_or(64, |n| n.parse().unwrap()))],
                arg(3).map_or(5.0, |n| n.parse().unwrap()),
                repeats(),
            );
        }
        Some("echo-matrix") => {
            echo::run(&ECHO_MATRIX, arg(1).map_or(5.0, |n| n.parse().unwrap()), repeats());
        }
        _ => {
            sleeps(10_000_000, 1);
            echo::run(&[(100, 64)], 5.0, repeats());
        }
    }
}

/// The echo-matrix cells: (connections, message bytes).
pub(crate) const ECHO_MATRIX: [(usize, usize); 4] = [(100, 64), (100, 4096), (1000, 64), (1000, 4096)];

/// How many times each cell runs (`VS_TOKIO_REPEAT`, default 1; echo and files): the tables then show medians,
/// and the contenders take turns (every one once, then again), so a slow minute of the machine does not land on
/// one contender.
pub(crate) fn repeats() -> usize {
    std::env::var("VS_TOKIO_REPEAT").ok().and_then(|v| v.parse().ok()).filter(|&r| r >= 1).unwrap_or(1)
}

/// The median of some figures (NaN for none).
pub(crate) fn median(mut xs: Vec<f64>) -> f64 {
    xs.retain(|x| !x.is_nan());
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

/// `a / b` as a ratio column ("-" when either side is missing).
fn ratio(a: f64, b: f64) -> String {
    let r = a / b;
    if r.is_finite() {
        format!("{r:.2}x")
    } else {
        "-".into()
    }
}

/// user + system CPU seconds of this process (all its threads), from getrusage; NaN where there is none.
fn self_cpu_seconds() -> f64 {
    #[cfg(unix)]
    {
        // SAFETY: all-zero is a valid `rusage` (plain integers), filled in by getrusage below.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: getrusage writes only into the `rusage` it is given, which is valid and exclusively ours.
        if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
            return f64::NAN;
        }
        cpu_seconds(&ru)
    }
    #[cfg(not(unix))]
    f64::NAN
}

#[cfg(unix)]
fn cpu_seconds(ru: &libc::rusage) -> f64 {
    let secs = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 * 1e-6;
    secs(ru.ru_utime) + secs(ru.ru_stime)
}

// ----- sleeps -----

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

/// One side of the sleeps benchmark, measured in its own child process.
struct ChildRun {
    /// Wall seconds from before spawning the first sleep to the last one done (the child's own clock).
    wall: f64,
    /// The child's user + system CPU seconds, whole process (set-up and teardown included).
    cpu: f64,
    /// The child's peak resident set, MiB.
    rss_mib: f64,
}

fn run_child(case: &str, n: u64) -> ChildRun {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(&exe).args([case, &n.to_string()]).stdout(Stdio::piped()).spawn().unwrap();
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let (ok, cpu, rss_mib) = wait_with_rusage(child);
    assert!(ok, "{case} {n} failed");
    ChildRun { wall: out.trim().parse().unwrap(), cpu, rss_mib }
}

/// Waits for `child` and returns (exited with status 0, its CPU seconds, its peak RSS in MiB), from `wait4`: the
/// figures of that child alone (RUSAGE_CHILDREN would mix every child waited for so far).
#[cfg(unix)]
fn wait_with_rusage(child: std::process::Child) -> (bool, f64, f64) {
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: all-zero is a valid `rusage` (plain integers), filled in by wait4 below.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: wait4 on our own child (not yet reaped: `child` is consumed here and never waited on by std),
        // writing into a status and a rusage that are valid and exclusively ours.
        let got = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if got == pid {
            break;
        }
        assert_eq!(std::io::Error::last_os_error().raw_os_error(), Some(libc::EINTR), "wait4 failed");
    }
    // ru_maxrss is in KiB on Linux, in bytes on macOS.
    let rss_kib = if cfg!(target_os = "macos") { ru.ru_maxrss as f64 / 1024.0 } else { ru.ru_maxrss as f64 };
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    (ok, cpu_seconds(&ru), rss_kib / 1024.0)
}

#[cfg(not(unix))]
fn wait_with_rusage(mut child: std::process::Child) -> (bool, f64, f64) {
    (child.wait().unwrap().success(), f64::NAN, f64::NAN)
}

/// Runs the sleeps benchmark `rounds` times (uvio then tokio, each in its own child), prints the medians and
/// returns the report's rows: both runtimes and the floor, as wall seconds (lower is better).
fn sleeps(n: u64, rounds: usize) -> Vec<rows::Row> {
    let floor = due(n.saturating_sub(1)).as_secs_f64();
    println!(
        "sleeps: {n} pending sleeps, sleep i due at 1 + i/1000 ms, one task per sleep, each runtime in its own child"
    );
    println!("  floor: the last sleep is due at {floor:.3} s, no runtime can finish sooner");
    let contenders = [("uvio", "child-sleeps-uvio"), ("tokio current-thread", "child-sleeps-tokio")];
    let mut runs: Vec<Vec<ChildRun>> = vec![Vec::new(), Vec::new()];
    for _ in 0..rounds {
        for (k, (_, case)) in contenders.iter().enumerate() {
            runs[k].push(run_child(case, n));
        }
    }
    let med = |k: usize, figure: fn(&ChildRun) -> f64| median(runs[k].iter().map(figure).collect());
    let (uvio, tokio) = (0, 1);
    println!(
        "  {:<22} {:>9} {:>15} {:>17} {:>14}",
        "runtime", "wall s", "above floor s", "CPU s (usr+sys)", "peak RSS MiB"
    );
    for (k, (name, _)) in contenders.iter().enumerate() {
        let (wall, cpu, rss) = (med(k, |r| r.wall), med(k, |r| r.cpu), med(k, |r| r.rss_mib));
        println!("  {name:<22} {wall:>9.3} {:>15.3} {cpu:>17.3} {rss:>14.0}", wall - floor);
    }
    println!(
        "  {:<22} {:>9} {:>15} {:>17} {:>14}",
        "uvio / tokio",
        ratio(med(uvio, |r| r.wall), med(tokio, |r| r.wall)),
        ratio(med(uvio, |r| r.wall) - floor, med(tokio, |r| r.wall) - floor),
        ratio(med(uvio, |r| r.cpu), med(tokio, |r| r.cpu)),
        ratio(med(uvio, |r| r.rss_mib), med(tokio, |r| r.rss_mib))
    );
    let cell = format!("{n} sleeps");
    let mut rows: Vec<rows::Row> = contenders
        .iter()
        .enumerate()
        .map(|(k, (name, _))| {
            let walls: Vec<f64> = runs[k].iter().map(|r| r.wall).collect();
            let (role, engine) = if k == tokio { (Role::Tokio, "tokio") } else { (Role::Uvio, "auto") };
            let mut row = rows::Row::from_samples(
                "sleeps",
                cell.clone(),
                *name,
                engine,
                role,
                "s",
                &walls,
                med(k, |r| r.cpu) * 1e6 / n as f64,
            )
            .note(format!("peak RSS {:.0} MiB, CPU {:.2} s", med(k, |r| r.rss_mib), med(k, |r| r.cpu)));
            row.higher_is_better = false;
            row.baseline = k == tokio;
            row
        })
        .collect();
    let mut floor_row = rows::Row::from_samples(
        "sleeps",
        cell,
        "floor: the last sleep's due time",
        "none",
        Role::Ceiling,
        "s",
        &[floor],
        f64::NAN,
    );
    floor_row.higher_is_better = false;
    rows.push(floor_row);
    rows
}
