//! Soak runs: uvio kept busy for a while on every engine, with its memory and descriptors watched. Bounded in
//! count and time, loopback only, outside `cargo test`; `ci/soak.sh` runs it (short in `ci/test.sh`, in full on
//! demand).
//!
//! ```text
//! cargo bench --bench soak -- [--quick] [cycles] [idle] [mixed]      (no scenario: all three)
//! ```
//!
//! - **cycles**: 100 000 (quick: 20 000) connect / echo 64 B / close cycles against a uvio echo server. Passes
//!   when every echo is byte-exact, the process's RSS grew less than 5 MB between the end of the first tenth
//!   and the end, and no descriptor was left open.
//! - **idle**: 10 000 (quick: 2 000) concurrent idle connections, each with a read pending in its own task, on
//!   uvio and on tokio's current-thread runtime: RSS per connection, side by side. The clients live in this
//!   (parent) process, the server in a child of its own, so each side has the descriptor limit to itself.
//!   After the count is reached, every connection echoes one byte (they are alive, not just counted).
//! - **mixed**: 60 s (quick: 8 s) of echo over 64 connections with random sizes up to 64 KiB, timers, file
//!   writes and read-backs, child processes and DNS lookups of `localhost`, all on one runtime, checked
//!   byte-exact. Passes with zero errors and RSS growth under 5 MB from the first quarter to the end.
//!
//! Each scenario runs in a child process per engine (this binary, re-run with `--child`), so one engine's heap
//! does not flatter or burden another's figures. The exit status is non-zero when any run failed.
#![allow(clippy::unwrap_used)]

#[path = "soak/child.rs"]
mod child;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

/// The RSS growth a passing run stays under, in kB.
pub const RSS_GROWTH_LIMIT_KB: i64 = 5 * 1024;

fn main() {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if raw.is_empty() {
        // `cargo bench` passes `--bench`; a bare run is `cargo test --benches` (or --all-targets): too long.
        println!("soak: run with `cargo bench --bench soak -- [--quick] [cycles] [idle] [mixed]`");
        return;
    }
    let args: Vec<String> = raw.into_iter().filter(|a| a != "--bench").collect();
    if args.first().map(String::as_str) == Some("--child") {
        child::main(&args[1..]);
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let mut scenarios: Vec<&str> = args.iter().map(String::as_str).filter(|a| *a != "--quick").collect();
    if scenarios.is_empty() {
        scenarios = vec!["cycles", "idle", "mixed"];
    }
    let engines = engines();
    println!("soak ({}), engines: {}", if quick { "quick" } else { "full" }, engines.join(", "));
    let mut failed = 0;
    for scenario in scenarios {
        failed += match scenario {
            "cycles" => run_each(&engines, scenario, if quick { 20_000 } else { 100_000 }),
            "mixed" => run_each(&engines, scenario, if quick { 8 } else { 60 }),
            "idle" => idle(&engines, if quick { 2_000 } else { 10_000 }),
            other => {
                eprintln!("soak: unknown scenario {other:?} (cycles, idle, mixed)");
                std::process::exit(2);
            }
        };
    }
    if failed > 0 {
        println!("soak: {failed} run(s) FAILED");
        std::process::exit(1);
    }
    println!("soak: every run passed");
}

/// The engines this machine runs: libuv everywhere; epoll and io_uring on Linux (io_uring when a runtime on it
/// can be built here).
fn engines() -> Vec<&'static str> {
    let mut engines = vec!["libuv"];
    if cfg!(target_os = "linux") {
        engines.push("epoll");
        if uvio::Builder::new().backend("io_uring".parse().unwrap()).build().is_ok() {
            engines.push("io_uring");
        }
    }
    engines
}

/// Runs `scenario` with `size` in a child per engine; prints each child's report. Returns how many failed.
fn run_each(engines: &[&str], scenario: &str, size: u64) -> usize {
    println!("\n== {scenario} ({size})");
    let mut failed = 0;
    for engine in engines {
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--child", scenario, engine, &size.to_string()])
            .stderr(Stdio::inherit())
            .output()
            .expect("re-run this binary");
        let report = String::from_utf8_lossy(&out.stdout);
        print!("{report}");
        if !out.status.success() || !report.contains(" PASS") {
            println!("{engine:>9}: FAILED ({})", out.status);
            failed += 1;
        }
    }
    failed
}

/// The idle scenario: a server child per engine (and one on tokio), this process holding the clients.
fn idle(engines: &[&str], conns: usize) -> usize {
    println!("\n== idle ({conns} connections, RSS per connection: server process, after minus before)");
    raise_fd_limit();
    let mut failed = 0;
    for server in engines.iter().copied().chain(["tokio"]) {
        match idle_one(server, conns) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                println!("{server:>9}: FAILED: {e}");
                failed += 1;
            }
        }
    }
    failed
}

fn idle_one(server: &str, conns: usize) -> Result<String, String> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--child", "idle", server, &conns.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("spawn: {e}"))?;
    let mut from_child = BufReader::new(child.stdout.take().unwrap());
    let result = (|| {
        let port: u16 = expect_line(&mut from_child, "PORT ")?.parse().map_err(|e| format!("port: {e}"))?;
        let mut clients = Vec::with_capacity(conns);
        for i in 0..conns {
            let c = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect #{i}: {e}"))?;
            clients.push(c);
        }
        let report = expect_line(&mut from_child, "HELD ")?;
        for (i, c) in clients.iter_mut().enumerate() {
            let byte = [(i % 251) as u8];
            c.write_all(&byte).map_err(|e| format!("write #{i}: {e}"))?;
            let mut back = [0u8];
            c.read_exact(&mut back).map_err(|e| format!("echo #{i}: {e}"))?;
            if back != byte {
                return Err(format!("echo #{i}: got {back:?}, sent {byte:?}"));
            }
        }
        drop(clients);
        expect_line(&mut from_child, "DONE")?;
        Ok(format!("{server:>9}: {report} PASS"))
    })();
    if result.is_err() {
        let _ = child.kill();
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    match result {
        Ok(line) if status.success() => Ok(line),
        Ok(_) => Err(format!("server exited with {status}")),
        Err(e) => Err(e),
    }
}

/// Reads lines until one starts with `prefix`; returns the rest of it.
fn expect_line(from: &mut impl BufRead, prefix: &str) -> Result<String, String> {
    let mut line = String::new();
    loop {
        line.clear();
        if from.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
            return Err(format!("the server ended before saying {prefix:?}"));
        }
        if let Some(rest) = line.trim_end().strip_prefix(prefix) {
            return Ok(rest.to_owned());
        }
    }
}

/// Raises this process's soft descriptor limit to the hard one (children inherit it). Elsewhere: nothing to do.
#[cfg(not(unix))]
pub fn raise_fd_limit() {}

/// Raises this process's soft descriptor limit to the hard one (children inherit it).
#[cfg(unix)]
pub fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit with a valid pointer to a plain C struct.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// This process's resident set, in kB (`VmRSS` in `/proc/self/status`; 0 where there is no procfs).
pub fn rss_kb() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// How many descriptors this process has open (`/proc/self/fd`).
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}
