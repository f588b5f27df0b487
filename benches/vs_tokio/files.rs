//! The files benchmark: random 4 KiB reads of a 1 GiB file and `metadata` calls, 64 in flight, on uvio's engines
//! and on `tokio::fs`, one table with ratios per workload.
//!
//! Two read workloads, because "64 in flight" means different things to the two kinds of engine:
//! - **warm**: the whole file is in the page cache, so every read is a memory copy in the kernel. A thread pool
//!   (libuv's four threads, tokio's blocking pool) spreads those copies over every core; a plain io_uring does
//!   them inline in the loop thread's `io_uring_enter`, on one core, which is why it is also run with SQPOLL
//!   (a kernel thread submits, and so copies, on another core).
//! - **cold**: the file's pages are dropped from the page cache (`posix_fadvise(POSIX_FADV_DONTNEED)`, no root
//!   needed) before each contender, so reads wait for the disk. This is where the depth matters: io_uring keeps
//!   64 reads at the device, libuv's pool at most four.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use super::{median, ratio, self_cpu_seconds};
use crate::rows::Role;

pub(crate) const FILE_LEN: u64 = 1 << 30;
pub(crate) const BLOCK: usize = 4096;
pub(crate) const IN_FLIGHT: u64 = 64;

/// What one contender does, timed on its own.
#[derive(Clone, Copy)]
pub(crate) enum Workload {
    WarmReads,
    /// Warm, through `read_at` with owned buffers on one shared file (tokio: `FileExt::read_at` in
    /// `spawn_blocking`, which is what tokio offers for positional reads).
    WarmReadAt,
    ColdReads,
    Stats,
}

const WORKLOADS: [Workload; 4] = [Workload::WarmReads, Workload::WarmReadAt, Workload::ColdReads, Workload::Stats];

impl Workload {
    fn title(self) -> &'static str {
        match self {
            Workload::WarmReads => "random 4 KiB reads (seek + read_exact, a File per task), file in the page cache",
            Workload::WarmReadAt => "random 4 KiB read_at on one shared file, owned buffers, file in the page cache",
            Workload::ColdReads => "random 4 KiB reads, file dropped from the page cache first",
            Workload::Stats => "metadata() of one path",
        }
    }

    /// The report's name for the cell.
    fn cell(self) -> &'static str {
        match self {
            Workload::WarmReads => "cached reads",
            Workload::WarmReadAt => "cached read_at",
            Workload::ColdReads => "cold reads",
            Workload::Stats => "metadata",
        }
    }
}

/// What one timed run of a workload gave.
#[derive(Clone, Copy)]
pub(crate) struct Rate {
    pub(crate) ops_per_sec: f64,
    /// CPU microseconds (user + system, every thread of the process that ran it) per operation.
    pub(crate) cpu_us_per_op: f64,
}

impl Rate {
    /// A contender that did not run here.
    const NONE: Rate = Rate { ops_per_sec: f64::NAN, cpu_us_per_op: f64::NAN };
}

/// The 1 GiB file of real (not sparse) data, created on first use.
fn bench_file() -> std::path::PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("uvio-bench-1gib.dat");
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

/// Puts the whole file in the page cache (one sequential read) or drops it from there; `false` where this OS
/// cannot drop it (the cold workload is then not run).
fn set_cached(path: &Path, cached: bool) -> bool {
    if cached {
        std::io::copy(&mut std::fs::File::open(path).unwrap(), &mut std::io::sink()).unwrap();
        return true;
    }
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    {
        use std::os::fd::AsRawFd;
        let file = std::fs::File::open(path).unwrap();
        // SAFETY: an open descriptor; the call only advises the kernel about its pages.
        let ret = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(ret, 0, "posix_fadvise(DONTNEED)");
        true
    }
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    false
}

/// The block offsets task `t` reads (deterministic, the same for every contender).
pub(crate) fn offsets(t: u64, per_task: u64) -> impl Iterator<Item = u64> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ (t + 1);
    (0..per_task).map(move |_| {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) % (FILE_LEN / BLOCK as u64)) * BLOCK as u64
    })
}

/// Prepares the page cache for `work` and times it: operations per second and CPU per operation.
fn timed(path: &Path, work: Workload, n: u64, run: impl FnOnce()) -> Rate {
    if !set_cached(path, !matches!(work, Workload::ColdReads)) {
        return Rate::NONE;
    }
    let ops = (n / IN_FLIGHT * IN_FLIGHT) as f64;
    let (t, cpu) = (Instant::now(), self_cpu_seconds());
    run();
    Rate { ops_per_sec: ops / t.elapsed().as_secs_f64(), cpu_us_per_op: (self_cpu_seconds() - cpu) * 1e6 / ops }
}

/// Operations per second of `work` on a uvio runtime from `builder`, or `None` if it cannot be built (the
/// engine is not available here), with the engine that ran.
fn uvio_run(builder: uvio::Builder, path: &Path, n: u64, work: Workload) -> Option<(Rate, uvio::Backend)> {
    use futures::{AsyncReadExt, AsyncSeekExt};
    let rt = builder.build().ok()?;
    let per_task = n / IN_FLIGHT;
    let rate = timed(path, work, n, || {
        rt.block_on(async {
            let shared = match work {
                Workload::WarmReadAt => Some(std::rc::Rc::new(uvio::fs::File::open(path).await.unwrap())),
                _ => None,
            };
            let tasks: Vec<_> = (0..IN_FLIGHT)
                .map(|i| {
                    let path = path.to_owned();
                    let shared = shared.clone();
                    uvio::spawn_local(async move {
                        if let Workload::Stats = work {
                            for _ in 0..per_task {
                                assert_eq!(uvio::fs::metadata(&path).await.unwrap().len(), FILE_LEN);
                            }
                            return;
                        }
                        if let Workload::WarmReadAt = work {
                            let file = shared.expect("opened for read_at");
                            let mut buf = Vec::with_capacity(BLOCK);
                            for at in offsets(i, per_task) {
                                buf.clear();
                                let (res, back) = file.read_at(buf, at).await;
                                assert_eq!(res.unwrap(), BLOCK);
                                buf = back;
                            }
                            return;
                        }
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
        })
    });
    let engine = rt.backend();
    rt.close().unwrap();
    Some((rate, engine))
}

/// A positional read with std (what a tokio user runs in `spawn_blocking`: tokio::fs has no `read_at`).
pub(crate) fn pread(file: &std::fs::File, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
    #[cfg(unix)]
    return std::os::unix::fs::FileExt::read_at(file, buf, at);
    #[cfg(windows)]
    return std::os::windows::fs::FileExt::seek_read(file, buf, at);
}

/// Operations per second of `work` with `tokio::fs` on a current-thread runtime (its blocking pool does the
/// syscalls).
fn tokio_run(path: &Path, n: u64, work: Workload) -> Rate {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let per_task = n / IN_FLIGHT;
    timed(path, work, n, || {
        rt.block_on(async {
            let shared = match work {
                Workload::WarmReadAt => Some(std::sync::Arc::new(std::fs::File::open(path).unwrap())),
                _ => None,
            };
            let tasks: Vec<_> = (0..IN_FLIGHT)
                .map(|i| {
                    let path = path.to_owned();
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        if let Workload::Stats = work {
                            for _ in 0..per_task {
                                assert_eq!(tokio::fs::metadata(&path).await.unwrap().len(), FILE_LEN);
                            }
                            return;
                        }
                        if let Workload::WarmReadAt = work {
                            let file: std::sync::Arc<std::fs::File> = shared.expect("opened for read_at");
                            let mut buf = vec![0u8; BLOCK];
                            for at in offsets(i, per_task) {
                                let f = file.clone();
                                let (n, back) = tokio::task::spawn_blocking(move || {
                                    let n = pread(&f, &mut buf, at);
                                    (n, buf)
                                })
                                .await
                                .unwrap();
                                assert_eq!(n.unwrap(), BLOCK);
                                buf = back;
                            }
                            return;
                        }
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
        })
    })
}

/// The `child-files-auto` mode: every workload on `Backend::Auto`, in a process started with io_uring made
/// unavailable (`UVIO_IO_URING_SIMULATE` is read when a runtime is built). Prints the engine, then a rate and the
/// CPU per operation for each workload.
pub(crate) fn child_auto(path: &Path, n: u64) {
    let mut line = String::new();
    for work in WORKLOADS {
        let (rate, engine) = uvio_run(uvio::Builder::new(), path, n, work).unwrap();
        if line.is_empty() {
            line = engine.to_string();
        }
        line += &format!(" {} {}", rate.ops_per_sec, rate.cpu_us_per_op);
    }
    println!("{line}");
}

/// [`child_auto`] with the simulated `EPERM`: the engine and a rate per workload, or `None` if the child failed.
fn fallback(path: &Path, n: u64) -> Option<(String, Vec<Rate>)> {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["child-files-auto".as_ref(), path.as_os_str(), n.to_string().as_ref()])
        .env("UVIO_IO_URING_SIMULATE", "EPERM")
        .env_remove("UVIO_BACKEND")
        .stderr(Stdio::inherit())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut words = text.split_whitespace();
    let engine = words.next()?.to_owned();
    let figures: Vec<f64> = words.map(|w| w.parse().ok()).collect::<Option<_>>()?;
    let rates: Vec<Rate> = figures.chunks_exact(2).map(|f| Rate { ops_per_sec: f[0], cpu_us_per_op: f[1] }).collect();
    (out.status.success() && rates.len() == WORKLOADS.len()).then_some((engine, rates))
}

/// One row of a table: who ran, on which engine, and per workload its rate in every round.
struct Row {
    name: &'static str,
    engine: String,
    samples: Vec<Vec<Rate>>,
}

impl Row {
    /// The median rate of workload `i` over the rounds.
    fn rate(&self, i: usize) -> f64 {
        median(self.samples[i].iter().map(|r| r.ops_per_sec).collect())
    }

    fn cpu_us(&self, i: usize) -> f64 {
        median(self.samples[i].iter().map(|r| r.cpu_us_per_op).collect())
    }

    fn role(&self) -> Role {
        match self.engine.as_str() {
            "tokio" => Role::Tokio,
            "none" => Role::Ceiling,
            _ => Role::Uvio,
        }
    }

    /// The report's rows of this contender, one per workload.
    fn report_rows(&self) -> impl Iterator<Item = crate::rows::Row> + '_ {
        WORKLOADS.iter().enumerate().map(|(i, work)| {
            let rates: Vec<f64> = self.samples[i].iter().map(|r| r.ops_per_sec).collect();
            let row = crate::rows::Row::from_samples(
                "files",
                work.cell(),
                self.name,
                self.engine.clone(),
                self.role(),
                "ops/s",
                &rates,
                self.cpu_us(i),
            );
            if self.role() == Role::Tokio {
                row.baseline()
            } else {
                row
            }
        })
    }
}

/// Who runs a workload in this process.
#[derive(Clone, Copy)]
enum Contender {
    /// A uvio runtime from this builder.
    Uvio(fn() -> uvio::Builder),
    Tokio,
    /// No runtime: one io_uring driven by hand (see `raw_files.rs`).
    #[cfg(target_os = "linux")]
    RawRing,
    /// No runtime: 64 threads making plain syscalls (see `raw_files.rs`).
    RawThreads,
}

fn contenders() -> Vec<(&'static str, Contender)> {
    let mut v = ring_contenders();
    v.push(("uvio libuv", Contender::Uvio(|| uvio::Builder::new().backend(uvio::Backend::Libuv))));
    v.push(("tokio::fs current-thread", Contender::Tokio));
    v.push(("raw syscalls, 64 threads (ceiling)", Contender::RawThreads));
    v
}

/// The io_uring engine, plain and with SQPOLL, and the raw ring.
#[cfg(target_os = "linux")]
fn ring_contenders() -> Vec<(&'static str, Contender)> {
    use uvio::linux::BuilderExt;
    vec![
        ("uvio io_uring", Contender::Uvio(|| uvio::Builder::new().backend(uvio::Backend::IoUring))),
        (
            "uvio io_uring + SQPOLL",
            Contender::Uvio(|| {
                uvio::Builder::new()
                    .backend(uvio::Backend::IoUring)
                    .io_uring_sqpoll(Some(std::time::Duration::from_millis(100)))
            }),
        ),
        ("raw io_uring, 1 thread (ceiling)", Contender::RawRing),
    ]
}

#[cfg(not(target_os = "linux"))]
fn ring_contenders() -> Vec<(&'static str, Contender)> {
    Vec::new()
}

/// Operations per second of `work` by `who` (NaN: not available here), and the engine that ran.
fn rate_of(who: Contender, path: &Path, n: u64, work: Workload) -> (Rate, String) {
    match who {
        Contender::Uvio(builder) => {
            uvio_run(builder(), path, n, work).map_or((Rate::NONE, "n/a".into()), |(rate, e)| (rate, e.to_string()))
        }
        Contender::Tokio => (tokio_run(path, n, work), "tokio".into()),
        #[cfg(target_os = "linux")]
        Contender::RawRing => (timed(path, work, n, || super::raw_files::ring(path, n, work)), "none".into()),
        Contender::RawThreads => (timed(path, work, n, || super::raw_files::threads(path, n, work)), "none".into()),
    }
}

/// Runs every workload `n` operations long for every contender, `repeats` times with the contenders taking
/// turns, prints one table per workload and returns the rows for the report.
pub(crate) fn run(n: u64, repeats: usize) -> Vec<crate::rows::Row> {
    println!("files: {n} operations per workload, {IN_FLIGHT} in flight (64 tasks; readers have one open file each)");
    if repeats > 1 {
        println!("each workload {repeats} times, contenders taking turns; figures are medians");
    }
    let path = bench_file();
    let mut rows: Vec<Row> = Vec::new();
    let mut fallback_samples: Vec<Vec<Rate>> = vec![Vec::new(); WORKLOADS.len()];
    let mut fallback_engine = None;
    for _ in 0..repeats {
        for (k, (name, who)) in contenders().into_iter().enumerate() {
            if rows.len() <= k {
                rows.push(Row { name, engine: String::new(), samples: vec![Vec::new(); WORKLOADS.len()] });
            }
            for (i, work) in WORKLOADS.into_iter().enumerate() {
                let (rate, engine) = rate_of(who, &path, n, work);
                rows[k].engine = engine;
                rows[k].samples[i].push(rate);
            }
        }
        match fallback(&path, n) {
            Some((engine, rates)) => {
                fallback_engine = Some(engine);
                for (i, rate) in rates.into_iter().enumerate() {
                    fallback_samples[i].push(rate);
                }
            }
            None => println!("  (the fallback child failed: see its stderr above)"),
        }
    }
    rows.retain(|row| {
        let ran = (0..WORKLOADS.len()).any(|i| !row.rate(i).is_nan());
        if !ran {
            println!("  ({}: the engine is not available here)", row.name);
        }
        ran
    });
    if let Some(engine) = fallback_engine {
        let at = rows.iter().position(|r| r.name == "uvio libuv").map_or(rows.len(), |i| i + 1);
        rows.insert(at, Row { name: "uvio auto, io_uring unavailable", engine, samples: fallback_samples });
    }
    let base = |name: &str| rows.iter().find(|r| r.name == name);
    let (tokio, libuv) = (base("tokio::fs current-thread").unwrap(), base("uvio libuv").unwrap());
    for (i, work) in WORKLOADS.iter().enumerate() {
        println!("  {}", work.title());
        println!(
            "    {:<34} {:<9} {:>10} {:>10} {:>9} {:>9}",
            "contender", "engine", "ops/s", "CPU us/op", "x tokio", "x libuv"
        );
        for row in &rows {
            let r = row.rate(i);
            println!(
                "    {:<34} {:<9} {r:>10.0} {:>10.2} {:>9} {:>9}",
                row.name,
                row.engine,
                row.cpu_us(i),
                ratio(r, tokio.rate(i)),
                ratio(r, libuv.rate(i))
            );
        }
    }
    rows.iter().flat_map(Row::report_rows).collect()
}
