//! uvio's runtime against tokio's, same machine, same run, reported as ratios.
//!
//! `cargo bench --bench vs_tokio [-- sleeps N]`
//!
//! - **sleeps**: N pending sleeps, sleep i due at 1 + i/1000 ms (libuv's million_timers shape), one task per
//!   sleep, on uvio's runtime and on tokio's current-thread runtime. Each side runs in its own child process so
//!   that peak RSS (`ru_maxrss`) is its own. Default N = 10 000 000 (needs ~10 GiB free for both together).
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    match args.first().map(String::as_str) {
        Some("child-sleeps-uvio") => child_sleeps_uvio(args[1].parse().unwrap()),
        Some("child-sleeps-tokio") => child_sleeps_tokio(args[1].parse().unwrap()),
        Some("sleeps") => sleeps(args.get(1).map_or(10_000_000, |n| n.parse().unwrap())),
        _ => sleeps(10_000_000),
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
