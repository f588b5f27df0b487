//! The `report` mode: runs echo-matrix, files, the server patterns and sleeps (each contender taking turns, `ROUNDS` interleaved
//! rounds) and writes `docs/benchmarks.md` with one table per mode and bar charts in `docs/benchmarks/*.svg`
//! (drawn with plotters), so the published figures come from one command and the same measuring code as the
//! printed tables.
//!
//! `VS_TOKIO_REPORT_DIR=DIR` writes `DIR/benchmarks.md` and `DIR/benchmarks/` instead of `docs/` (for short
//! smoke runs that must not overwrite the published report).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use plotters::prelude::*;

use crate::rows::{Role, Row};

/// Seconds per echo cell (the other modes are scaled from it, see [`Sizes`]).
pub(crate) const DEFAULT_SECONDS: f64 = 5.0;
pub(crate) const DEFAULT_ROUNDS: usize = 3;

/// How big each mode is for `secs` seconds per echo cell: at the default 5 s, the files mode's default 100 000
/// operations and a sleeps run of 1 000 000 (a few seconds per child).
struct Sizes {
    files_ops: u64,
    sleeps: u64,
    /// Seconds per patterns cell (2 s at the default: that bench's own default).
    patterns_secs: f64,
}

impl Sizes {
    fn for_seconds(secs: f64) -> Sizes {
        let scaled = |per_sec: f64, min: u64| ((secs * per_sec) as u64).max(min);
        // Files run whole batches of 64 (one per task).
        let files_ops = scaled(20_000.0, 640).div_ceil(64) * 64;
        Sizes {
            files_ops,
            sleeps: scaled(200_000.0, 10_000).min(1_000_000),
            patterns_secs: (secs * 40.0).round() / 100.0,
        }
    }
}

pub(crate) fn run(secs: f64, rounds: usize) {
    let rounds = rounds.max(1);
    let dir = std::env::var_os("VS_TOKIO_REPORT_DIR")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("docs"), PathBuf::from);
    let sizes = Sizes::for_seconds(secs);
    // Before echo pins this process to one CPU (the count would then be 1).
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let started = Instant::now();
    let date = shell(&["date", "-u", "+%Y-%m-%d %H:%M UTC"]);
    // Echo last: it pins this process to CPU 0 (and its server children to CPU 1), which the files threads, the
    // sleeps children and the in-process pattern servers would otherwise inherit.
    let mut rows = crate::sleeps(sizes.sleeps, rounds);
    rows.extend(crate::files::run(sizes.files_ops, rounds));
    rows.extend(crate::patterns::run(sizes.patterns_secs, rounds).iter().map(pattern_row));
    rows.extend(crate::echo::run(&crate::ECHO_MATRIX, secs, rounds));
    let took = started.elapsed().as_secs_f64();
    let charts = dir.join("benchmarks");
    std::fs::create_dir_all(&charts).unwrap();
    let mut drawn = Vec::new();
    for chart in &CHARTS {
        let entries = chart.entries(&rows);
        if entries.is_empty() {
            continue;
        }
        let file = format!("{}.svg", chart.name);
        if let Err(e) = draw(&charts.join(&file), chart.title, chart.axis, &entries) {
            println!("  (chart {file} not drawn: {e})");
            continue;
        }
        drawn.push((chart, file));
    }
    let run = RunFacts { secs, rounds, cores, date, took };
    let md = markdown(&rows, &drawn, &sizes, &run);
    let md_path = dir.join("benchmarks.md");
    std::fs::write(&md_path, md).unwrap();
    println!("report: wrote {} and {} charts in {} ({took:.0} s)", md_path.display(), drawn.len(), charts.display());
}

/// A patterns measurement as a report row (no ceiling: nothing in that bench runs without a runtime).
fn pattern_row(m: &crate::patterns::Measured) -> Row {
    use crate::patterns::Workload;
    let (cell, unit) = match m.workload {
        Workload::Keepalive => ("keepalive: 100 connections, 64 B round trips", "round trips/s"),
        Workload::Connect => ("connect: 50 tasks, connect + 1 round trip + close", "connections/s"),
    };
    let rates: Vec<f64> = m.cells.iter().map(|c| c.rate).collect();
    let role = if m.engine == "tokio" { Role::Tokio } else { Role::Uvio };
    let share = m.median(|c| c.share);
    let mut row = Row::from_samples(
        "patterns",
        cell,
        m.server.clone(),
        m.engine.clone(),
        role,
        unit,
        &rates,
        m.median(|c| c.cpu_us),
    );
    row.baseline = role == Role::Tokio;
    if share.is_finite() {
        row.note = format!("smaller worker's share {:.0}%", share * 100.0);
    }
    row
}

/// The first line a command prints, or "?" if it cannot run.
fn shell(argv: &[&str]) -> String {
    Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// The value of the first `key: value` line of a /proc file that starts with `key` ("?" if none).
fn proc_field(file: &str, key: &str) -> String {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|text| {
            text.lines().find(|l| l.starts_with(key)).and_then(|l| l.split_once(':')).map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "?".into())
}

/// The rows of one cell of one mode, in measuring order.
fn cell_rows<'a>(rows: &'a [Row], mode: &str, cell: &str) -> Vec<&'a Row> {
    rows.iter().filter(|r| r.mode == mode && r.cell == cell).collect()
}

/// The cells of a mode, in measuring order.
fn cells(rows: &[Row], mode: &str) -> Vec<String> {
    let mut cells: Vec<String> = Vec::new();
    for r in rows.iter().filter(|r| r.mode == mode) {
        if !cells.contains(&r.cell) {
            cells.push(r.cell.clone());
        }
    }
    cells
}

/// The best ceiling of a cell (the one no runtime comes near), if it ran.
fn ceiling<'a>(same_cell: &[&'a Row]) -> Option<&'a Row> {
    same_cell
        .iter()
        .copied()
        .filter(|r| r.role == Role::Ceiling && !r.median.is_nan())
        .max_by(|a, b| a.speedup_over(b).total_cmp(&1.0))
}

/// `row` as a share of its cell's best ceiling, in % (NaN without one).
fn share_of_ceiling(row: &Row, same_cell: &[&Row]) -> f64 {
    ceiling(same_cell).map_or(f64::NAN, |c| row.speedup_over(c) * 100.0)
}

fn figure(x: f64, unit: &str) -> String {
    match () {
        _ if x.is_nan() => "-".into(),
        _ if unit == "s" => format!("{x:.3}"),
        _ if x >= 100.0 => format!("{x:.0}"),
        _ => format!("{x:.2}"),
    }
}

fn times(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.2}x")
    } else {
        "-".into()
    }
}

fn percent(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.0}%")
    } else {
        "-".into()
    }
}

/// What each mode's section says above its tables.
fn mode_intro(mode: &str) -> &'static str {
    match mode {
        "echo" => {
            "Request/response echo over loopback: every server is a child process pinned to CPU 1, the client (one \
             io_uring for all connections) runs on CPU 0 and checks every echoed byte. Figure: round trips per \
             second; CPU: the server process's user + system µs per round trip. Ceiling: a hand-written epoll server \
             with no runtime (`benches/vs_tokio/raw_epoll.rs`)."
        }
        "files" => {
            "Random 4 KiB reads of a 1 GiB file and `metadata` calls, 64 in flight. Figure: operations per second; \
             CPU: the whole process's user + system µs per operation (every thread, the kernel's work included). \
             Ceilings, with no runtime: one io_uring driven by hand and 64 threads making plain syscalls \
             (`benches/vs_tokio/raw_files.rs`); the \"% of ceiling\" column divides by the better of the two."
        }
        "sleeps" => {
            "N pending sleeps, sleep i due at 1 + i/1000 ms, one task per sleep, each runtime in its own child \
             process. Figure: wall seconds (lower is better); CPU: µs per sleep of the child process. The floor \
             (the last sleep's due time) is the ceiling: no runtime can finish sooner."
        }
        "patterns" => {
            "The four server patterns of `uvio::server` (two threads each) on every engine, against a tokio \
             multi-thread server with two workers; one uvio client thread in the same process (so the two share the \
             cores). Figure: operations per second; CPU: the whole process's µs per operation (server and client \
             together: compare rows, not absolute values). No ceiling is measured here."
        }
        _ => "",
    }
}

/// How the report's run went, for its header.
struct RunFacts {
    secs: f64,
    rounds: usize,
    /// CPUs this process could use before any pinning.
    cores: usize,
    date: String,
    /// Seconds the whole run took.
    took: f64,
}

/// The machine's memory from /proc/meminfo, in GiB ("?" elsewhere).
fn memory() -> String {
    let kib = proc_field("/proc/meminfo", "MemTotal");
    kib.trim_end_matches("kB").trim().parse::<f64>().map_or(kib, |k| format!("{:.1} GiB", k / (1024.0 * 1024.0)))
}

fn markdown(rows: &[Row], charts: &[(&Chart, String)], sizes: &Sizes, run: &RunFacts) -> String {
    let RunFacts { secs, rounds, cores, ref date, took } = *run;
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks: uvio against tokio and against no runtime at all\n");
    let _ =
        writeln!(md, "Written by `cargo bench --bench vs_tokio -- report {secs} {rounds}` on {date} ({took:.0} s).\n");
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(md, "| CPU | {} |", proc_field("/proc/cpuinfo", "model name"));
    let _ = writeln!(md, "| cores | {cores} |");
    let _ = writeln!(md, "| memory | {} |", memory());
    let _ = writeln!(md, "| kernel | {} |", shell(&["uname", "-r"]));
    let _ = writeln!(md, "| rustc | {} |", shell(&["rustc", "-V"]));
    let _ = writeln!(
        md,
        "| sizes | echo: {secs} s per server per cell after 0.5 s of warm-up; files: {} operations per workload; \
         sleeps: {} |",
        sizes.files_ops, sizes.sleeps
    );
    let _ = writeln!(md, "| rounds | {rounds}, every contender once per round, in turn |\n");
    let _ = writeln!(
        md,
        "**Noise.** This is a small shared virtual machine: the same binary can run up to about 3x faster or slower \
         from one run to the next, as other work on the host comes and goes. So every contender runs once per round, \
         in turn, and the tables show the median over the rounds; the spread (min..max across rounds) is shown next \
         to it. The steadier figures are those medians and the CPU time per operation (it moves much less than \
         throughput when the machine is busy); ratios inside one cell, measured minutes apart, are steadier than \
         any absolute figure. Read a gap of less than about 15% as a tie.\n"
    );
    for mode in ["echo", "files", "patterns", "sleeps"] {
        let mode_cells = cells(rows, mode);
        if mode_cells.is_empty() {
            continue;
        }
        let _ = writeln!(md, "## {mode}\n\n{}\n", mode_intro(mode));
        for cell in &mode_cells {
            let same = cell_rows(rows, mode, cell);
            let unit = same[0].unit;
            let tokio = same.iter().find(|r| r.baseline);
            let _ = writeln!(md, "### {mode}: {cell}\n");
            if let Some(c) = ceiling(&same) {
                let _ = writeln!(md, "Ceiling: {}.\n", c.server);
            }
            let _ = writeln!(
                md,
                "| contender | engine | {unit} (median) | spread (min..max) | CPU µs/op | x tokio | % of ceiling | notes |"
            );
            let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---|");
            for r in &same {
                let spread =
                    if r.rounds > 1 { format!("{}..{}", figure(r.min, unit), figure(r.max, unit)) } else { "-".into() };
                let vs_tokio = tokio.map_or(f64::NAN, |t| r.speedup_over(t));
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {spread} | {} | {} | {} | {} |",
                    r.server,
                    r.engine,
                    figure(r.median, unit),
                    figure(r.cpu_us_per_op, "us"),
                    times(vs_tokio),
                    percent(share_of_ceiling(r, &same)),
                    r.note
                );
            }
            md.push('\n');
        }
        let _ = writeln!(
            md,
            "x tokio: how many times better than the tokio row of the same cell (current-thread; multi-thread in \
             patterns), >1: ahead of tokio. \
             % of ceiling: the figure as a share of the no-runtime ceiling's.\n"
        );
        for (chart, file) in charts.iter().filter(|(c, _)| c.mode == mode) {
            let _ = writeln!(md, "![{}](benchmarks/{file})\n", chart.title);
        }
    }
    md
}

// ----- charts -----

/// What a chart shows of each row of its mode.
#[derive(Clone, Copy)]
enum Measure {
    ShareOfCeiling,
    CpuPerOp,
    Median,
}

/// One bar chart: every row of a mode (grouped by cell) with one of its figures.
struct Chart {
    name: &'static str,
    mode: &'static str,
    title: &'static str,
    axis: &'static str,
    measure: Measure,
    /// Whether the ceiling rows get a bar too.
    with_ceilings: bool,
}

static CHARTS: [Chart; 5] = [
    Chart {
        name: "echo_share_of_ceiling",
        mode: "echo",
        title: "echo: round trips/s as % of the raw epoll ceiling",
        axis: "% of raw epoll (median of rounds)",
        measure: Measure::ShareOfCeiling,
        with_ceilings: false,
    },
    Chart {
        name: "echo_cpu_per_round_trip",
        mode: "echo",
        title: "echo: server CPU µs per round trip (lower is better)",
        axis: "µs per round trip",
        measure: Measure::CpuPerOp,
        with_ceilings: true,
    },
    Chart {
        name: "files_share_of_ceiling",
        mode: "files",
        title: "files: ops/s as % of the better no-runtime ceiling",
        axis: "% of the best ceiling (median of rounds)",
        measure: Measure::ShareOfCeiling,
        with_ceilings: true,
    },
    Chart {
        name: "patterns_rate",
        mode: "patterns",
        title: "patterns: operations/s (round trips or connections; higher is better)",
        axis: "operations per second (median of rounds)",
        measure: Measure::Median,
        with_ceilings: true,
    },
    Chart {
        name: "sleeps_wall",
        mode: "sleeps",
        title: "sleeps: wall seconds (lower is better; the floor is the last due time)",
        axis: "seconds",
        measure: Measure::Median,
        with_ceilings: true,
    },
];

/// One bar: its label, value and which contender it is (its colour).
struct Bar {
    label: String,
    value: f64,
    colour: usize,
}

impl Chart {
    fn entries(&self, rows: &[Row]) -> Vec<Bar> {
        let mut contenders: Vec<&str> = Vec::new();
        let mut bars = Vec::new();
        for cell in cells(rows, self.mode) {
            let same = cell_rows(rows, self.mode, &cell);
            for r in same.iter().filter(|r| self.with_ceilings || r.role != Role::Ceiling) {
                let value = match self.measure {
                    Measure::ShareOfCeiling => share_of_ceiling(r, &same),
                    Measure::CpuPerOp => r.cpu_us_per_op,
                    Measure::Median => r.median,
                };
                if !value.is_finite() {
                    continue;
                }
                let colour = contenders.iter().position(|c| *c == r.server).unwrap_or_else(|| {
                    contenders.push(&r.server);
                    contenders.len() - 1
                });
                // The cell's short name (patterns cells are "keepalive: ..." sentences) keeps the labels in the margin.
                let short = cell.split(':').next().unwrap_or(&cell);
                bars.push(Bar { label: format!("{short} | {}", r.server), value, colour });
            }
        }
        bars
    }
}

/// A horizontal bar chart, one bar per entry, top to bottom in order, written to `path` as SVG.
fn draw(path: &Path, title: &str, axis: &str, bars: &[Bar]) -> Result<(), Box<dyn std::error::Error>> {
    const BAR_PX: u32 = 22;
    let height = 110 + BAR_PX * bars.len() as u32;
    let root = SVGBackend::new(path, (1000, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let max = bars.iter().map(|b| b.value).fold(0.0, f64::max) * 1.1;
    let n = bars.len() as u32;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(420)
        .build_cartesian_2d(0.0..max.max(1e-9), (0..n - 1).into_segmented())?;
    // plotters' integer ranges include their end: 0..n-1 is n slots, one per bar (n >= 1: empty charts are
    // not drawn). Bar i is drawn at the top for i = 0: the y axis counts upwards, so flip it.
    let row_of = |i: usize| n - 1 - i as u32;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(bars.len())
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(k) if *k < n => bars[(n - 1 - k) as usize].label.clone(),
            _ => String::new(),
        })
        .x_desc(axis)
        .label_style(("sans-serif", 13))
        .draw()?;
    chart.draw_series(bars.iter().enumerate().map(|(i, bar)| {
        let colour = Palette99::pick(bar.colour).filled();
        let y = row_of(i);
        let mut rect = Rectangle::new([(0.0, SegmentValue::Exact(y)), (bar.value, SegmentValue::Exact(y + 1))], colour);
        rect.set_margin(3, 3, 0, 0);
        rect
    }))?;
    root.present()?;
    Ok(())
}
