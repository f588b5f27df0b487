//! The echo benchmark: servers in child processes, one client in this process, one table with ratios.

use std::cell::Cell;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::rows::Role;
use crate::{median, ratio, self_cpu_seconds};

/// How long every client runs before it starts counting (connections set up, caches and TCP windows warm).
pub(crate) const WARM_UP: Duration = Duration::from_millis(500);

/// The servers measured, in this order, for every (connections, size) cell (plus [`Server::Raw`] on Linux).
const SERVERS: [Server; 7] = [
    Server::Async("io_uring"),
    Server::Async("epoll"),
    Server::Async("libuv"),
    Server::AsyncFallback,
    Server::Callback,
    Server::Tokio { multi: false },
    Server::Tokio { multi: true },
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Server {
    /// `examples/echo_server --api async --backend <engine>`.
    Async(&'static str),
    /// `examples/echo_server --api async` with `UVIO_BACKEND=auto` and io_uring made unavailable (simulated
    /// `EPERM`): what a user gets where io_uring is disabled.
    AsyncFallback,
    /// `examples/echo_server --api callback` (`uvio::uv::Tcp`, the libuv loop directly).
    Callback,
    /// [`child_echo_tokio`] on tokio's current-thread or multi-thread (2 workers) runtime.
    Tokio { multi: bool },
    /// The `child-echo-raw` mode: no runtime, hand-written epoll (Linux): the ceiling (see `raw_epoll.rs`).
    Raw,
}

/// Every server this OS can run, in table order.
fn servers() -> Vec<Server> {
    let mut all = SERVERS.to_vec();
    if cfg!(target_os = "linux") {
        all.push(Server::Raw);
    }
    all
}

impl Server {
    fn name(self) -> String {
        match self {
            Server::Async(engine) => format!("uvio async {engine}"),
            Server::AsyncFallback => "uvio async, io_uring unavailable".into(),
            Server::Callback => "uvio callback (uv::Tcp)".into(),
            Server::Tokio { multi: false } => "tokio current-thread".into(),
            Server::Tokio { multi: true } => "tokio multi-thread (2)".into(),
            Server::Raw => "raw epoll, no runtime (ceiling)".into(),
        }
    }

    fn command(self, example: &Path) -> Command {
        let mut cmd = match self {
            Server::Tokio { multi } => {
                let mut c = Command::new(std::env::current_exe().unwrap());
                c.args(["child-echo-tokio", if multi { "multi" } else { "current" }]);
                c
            }
            Server::Raw => {
                let mut c = Command::new(std::env::current_exe().unwrap());
                c.arg("child-echo-raw");
                c
            }
            _ => {
                let mut c = Command::new(example);
                c.args(["--port", "0"]);
                c
            }
        };
        // Whatever this process was started with, each server runs exactly the engine its row names.
        cmd.env_remove("UVIO_BACKEND").env_remove("UVIO_IO_URING_SIMULATE");
        match self {
            Server::Async(engine) => cmd.args(["--api", "async", "--backend", engine]),
            Server::AsyncFallback => {
                cmd.args(["--api", "async"]).env("UVIO_BACKEND", "auto").env("UVIO_IO_URING_SIMULATE", "EPERM")
            }
            Server::Callback => cmd.args(["--api", "callback"]),
            Server::Tokio { .. } | Server::Raw => &mut cmd,
        };
        cmd
    }

    /// The engine a server runs, from its first line ("listening on ... (async API, epoll engine)").
    fn engine(self, first_line: &str) -> String {
        match self {
            Server::Callback => "libuv".into(),
            Server::Tokio { .. } => "tokio".into(),
            Server::Raw => "none".into(),
            _ => first_line
                .rsplit_once(", ")
                .and_then(|(_, rest)| rest.split_once(" engine"))
                .map_or_else(|| "?".into(), |(engine, _)| engine.to_owned()),
        }
    }
}

/// A tokio echo server (the `child-echo-tokio` mode of this binary): one task per connection, 16 KiB buffer.
pub(crate) fn child_echo_tokio(multi: bool) {
    use std::io::Write;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = if multi {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
    } else {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    };
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let flavor = if multi { "multi-thread" } else { "current-thread" };
        println!("echo_server listening on {} (tokio {flavor})", listener.local_addr().unwrap());
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

// ----- what a client measures -----

/// CPU clocks at one instant of a client run.
#[derive(Clone, Copy)]
pub(crate) struct Sample {
    pub(crate) at: Instant,
    /// The server process's user + system CPU seconds.
    server: f64,
    /// This process's (the client's) user + system CPU seconds.
    client: f64,
}

impl Sample {
    pub(crate) fn take(server_pid: u32) -> Sample {
        Sample { at: Instant::now(), server: process_cpu_seconds(server_pid), client: self_cpu_seconds() }
    }
}

/// What one client run saw between the end of the warm-up and the deadline.
pub(crate) struct ClientRun {
    /// Complete round trips (message sent, all of its bytes echoed) finished inside the window.
    pub(crate) round_trips: u64,
    pub(crate) start: Sample,
    pub(crate) end: Sample,
    /// Echoes whose bytes differ from what was sent (over the whole run, warm-up included). Must be 0.
    pub(crate) mismatches: u64,
    /// Connections that failed (connect or I/O error, or EOF from the server).
    pub(crate) failed: u64,
}

/// The message connection `conn` sends: bytes 0..8 carry the round number ([`stamp`]), bytes 8..16 the
/// connection's index, the rest a pattern, so an echo from another connection or an older round does not compare
/// equal.
pub(crate) fn message(conn: usize, size: usize) -> Vec<u8> {
    let mut msg: Vec<u8> = (0..size).map(|i| (i.wrapping_mul(7) ^ (i >> 8) ^ conn) as u8).collect();
    let id = (conn as u64).to_le_bytes();
    let end = size.min(16);
    if end > 8 {
        msg[8..end].copy_from_slice(&id[..end - 8]);
    }
    msg
}

/// Writes the round number into the first bytes of a message.
pub(crate) fn stamp(msg: &mut [u8], round: u64) {
    let n = msg.len().min(8);
    msg[..n].copy_from_slice(&round.to_le_bytes()[..n]);
}

/// user + system CPU seconds of a process (all its threads), from /proc (Linux); NaN elsewhere.
fn process_cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return f64::NAN };
    let fields: Vec<&str> = stat.rsplit_once(')').map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(f64::NAN);
    // After the command name: state is field 0, utime 11, stime 12, in clock ticks.
    (ticks(11) + ticks(12)) / clock_ticks_per_second()
}

fn clock_ticks_per_second() -> f64 {
    #[cfg(unix)]
    {
        // SAFETY: sysconf only reads a configuration value.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if hz > 0 {
            return hz as f64;
        }
    }
    100.0
}

// ----- the clients -----

#[derive(Clone, Copy, PartialEq, Eq)]
enum Client {
    /// All connections on one io_uring, no runtime in between (Linux).
    #[cfg(target_os = "linux")]
    IoUring,
    /// uvio's callback API (`uv::Tcp`) on a libuv loop.
    Uv,
}

impl Client {
    /// io_uring where it works, unless `VS_TOKIO_CLIENT=uv` asks for the portable client.
    fn choose() -> Client {
        if std::env::var("VS_TOKIO_CLIENT").is_ok_and(|v| v == "uv") {
            return Client::Uv;
        }
        #[cfg(target_os = "linux")]
        match crate::uring_client::available() {
            Ok(()) => return Client::IoUring,
            Err(e) => println!("  (io_uring client unavailable: {e}; using the uvio callback client)"),
        }
        Client::Uv
    }

    fn describe(self) -> &'static str {
        match self {
            #[cfg(target_os = "linux")]
            Client::IoUring => "io_uring, one ring for all connections",
            Client::Uv => "uvio callbacks (uv::Tcp)",
        }
    }

    /// One client run, or `None` if the client could not run (the reason is printed).
    fn run(self, port: u16, conns: usize, size: usize, secs: f64, server_pid: u32) -> Option<ClientRun> {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        match self {
            #[cfg(target_os = "linux")]
            Client::IoUring => crate::uring_client::run(addr, conns, size, secs, server_pid)
                .map_err(|e| eprintln!("  (io_uring client failed: {e})"))
                .ok(),
            Client::Uv => Some(uv_client(addr, conns, size, secs, server_pid)),
        }
    }
}

/// The portable client: uvio callbacks on a libuv loop, `conns` connections each sending `size` bytes and waiting
/// for all of them to come back before the next send.
fn uv_client(addr: std::net::SocketAddr, conns: usize, size: usize, secs: f64, server_pid: u32) -> ClientRun {
    use uvio::uv::{Loop, RunMode, Tcp, Timer};

    let lp = Loop::new().unwrap();
    let stopping = Rc::new(Cell::new(false));
    let counting = Rc::new(Cell::new(false));
    let round_trips = Rc::new(Cell::new(0u64));
    let mismatches = Rc::new(Cell::new(0u64));
    let failed = Rc::new(Cell::new(0u64));
    let mut clients = Vec::new();
    for conn in 0..conns {
        let c = Tcp::new(&lp).unwrap();
        let (stopping, counting, round_trips) = (stopping.clone(), counting.clone(), round_trips.clone());
        let (mismatches, failed) = (mismatches.clone(), failed.clone());
        c.connect(addr, move |c, r| {
            if r.is_err() || c.set_nodelay(true).is_err() {
                failed.set(failed.get() + 1);
                return;
            }
            let mut msg = message(conn, size);
            let (mut round, mut got, mut bad) = (0u64, 0usize, false);
            let first = c.write(msg.clone(), |_, _| {});
            let failed2 = failed.clone();
            let reading = c.read_start(move |c, data| {
                let Ok(bytes) = data else {
                    failed2.set(failed2.get() + 1);
                    let _ = c.read_stop();
                    return;
                };
                // The server never has more than this message's missing bytes to send.
                bad |= msg.get(got..got + bytes.len()) != Some(bytes);
                got += bytes.len();
                if got < size {
                    return;
                }
                mismatches.set(mismatches.get() + u64::from(bad));
                if counting.get() {
                    round_trips.set(round_trips.get() + 1);
                }
                (got, bad, round) = (0, false, round + 1);
                if !stopping.get() {
                    stamp(&mut msg, round);
                    if c.write(msg.clone(), |_, _| {}).is_err() {
                        failed2.set(failed2.get() + 1);
                    }
                }
            });
            if first.is_err() || reading.is_err() {
                failed.set(failed.get() + 1);
            }
        })
        .unwrap();
        clients.push(c);
    }
    // Count from the end of the warm-up to the deadline, with a CPU sample at each end.
    let start = Rc::new(Cell::new(None));
    let end = Rc::new(Cell::new(None));
    let warm = Timer::new(&lp).unwrap();
    let (counting2, start2) = (counting.clone(), start.clone());
    warm.start(WARM_UP, None, move |_| {
        start2.set(Some(Sample::take(server_pid)));
        counting2.set(true);
    })
    .unwrap();
    let stop = Timer::new(&lp).unwrap();
    let (lp2, end2) = (lp.clone(), end.clone());
    stop.start(WARM_UP + Duration::from_secs_f64(secs), None, move |_| {
        end2.set(Some(Sample::take(server_pid)));
        counting.set(false);
        stopping.set(true);
        lp2.stop();
    })
    .unwrap();
    lp.run(RunMode::Default).unwrap();
    drop((clients, warm, stop));
    let _ = lp.run(RunMode::NoWait);
    ClientRun {
        round_trips: round_trips.get(),
        start: start.get().unwrap(),
        end: end.get().unwrap(),
        mismatches: mismatches.get(),
        failed: failed.get(),
    }
}

// ----- running servers -----

/// Pins every thread of process `pid` to one CPU with `taskset` (client and server then do not fight for the same
/// core, which on a small machine is most of the run-to-run noise). Returns whether it worked.
fn pin(pid: u32, cpu: usize) -> bool {
    Command::new("taskset")
        .args(["-a", "-p", "-c", &cpu.to_string(), &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Starts a server and returns it with its port and its first line, or `None` if it exited without listening
/// (an engine that is not available here: its error is on stderr).
fn start_server(mut cmd: Command, pinned: bool) -> Option<(Child, u16, String)> {
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    if pinned {
        pin(child.id(), 1);
    }
    let mut line = String::new();
    let read = std::io::BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line);
    if read.map_or(true, |n| n == 0) {
        let _ = child.kill();
        let _ = child.wait();
        return None;
    }
    if pinned {
        // Again now that the runtime has started its threads (taskset -a only sees the threads that exist).
        pin(child.id(), 1);
    }
    let port = line
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    Some((child, port, line.trim().to_owned()))
}

/// Builds `examples/echo_server` (release) next to this benchmark's binary and returns its path.
fn build_echo_server() -> PathBuf {
    // This binary is <target dir>/[<triple>/]release/deps/vs_tokio-<hash>.
    let exe = std::env::current_exe().unwrap();
    let target_dir = exe.parent().and_then(Path::parent).and_then(Path::parent).unwrap().to_owned();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = Command::new(cargo)
        .args(["build", "--release", "--example", "echo_server", "--target-dir"])
        .arg(&target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(built.success(), "building examples/echo_server failed");
    target_dir.join("release/examples").join(format!("echo_server{}", std::env::consts::EXE_SUFFIX))
}

/// Makes room for `want` open descriptors (client sockets here, server sockets in the children, which inherit the
/// limit): raises the soft RLIMIT_NOFILE up to the hard one.
#[cfg(unix)]
fn raise_fd_limit(want: libc::rlim_t) {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes only into the `rlimit` it is given, which is valid and exclusively ours.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 || lim.rlim_cur >= want {
        return;
    }
    lim.rlim_cur = lim.rlim_max.min(want);
    // SAFETY: setrlimit only reads the `rlimit` it is given.
    let raised = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } == 0;
    if !raised || lim.rlim_cur < want {
        println!("  (warning: open-file limit {} < {want}: connections may fail)", lim.rlim_cur);
    }
}

/// One row of the table.
struct Row {
    conns: usize,
    size: usize,
    server: Server,
    engine: String,
    /// One per repetition that ran; empty: the server did not start (engine not available here) or the
    /// client failed.
    runs: Vec<ClientRun>,
}

impl Row {
    /// The median over the repetitions of `figure` of one run.
    fn median_of(&self, figure: impl Fn(&ClientRun) -> f64) -> f64 {
        median(self.runs.iter().map(figure).collect())
    }

    fn round_trips_per_sec(&self) -> f64 {
        self.median_of(|r| r.round_trips as f64 / (r.end.at - r.start.at).as_secs_f64())
    }

    fn server_us(&self) -> f64 {
        self.median_of(|r| (r.end.server - r.start.server) * 1e6 / r.round_trips as f64)
    }

    fn client_us(&self) -> f64 {
        self.median_of(|r| (r.end.client - r.start.client) * 1e6 / r.round_trips as f64)
    }

    /// How busy (server, client) were over the window, in % of one CPU: a side near 100 % is the bottleneck.
    fn busy_percent(&self) -> (f64, f64) {
        let busy = |cpu: fn(&Sample) -> f64| {
            self.median_of(|r| (cpu(&r.end) - cpu(&r.start)) * 100.0 / (r.end.at - r.start.at).as_secs_f64())
        };
        (busy(|s| s.server), busy(|s| s.client))
    }

    /// This row for the report: round trips/s with its spread, server CPU per round trip.
    fn report_row(&self) -> crate::rows::Row {
        let rates: Vec<f64> =
            self.runs.iter().map(|r| r.round_trips as f64 / (r.end.at - r.start.at).as_secs_f64()).collect();
        let role = match self.server {
            Server::Tokio { .. } => Role::Tokio,
            Server::Raw => Role::Ceiling,
            _ => Role::Uvio,
        };
        let (server_busy, client_busy) = self.busy_percent();
        let (mismatches, failed) = self.bad();
        let mut note = format!("server busy {server_busy:.0}%, client busy {client_busy:.0}%");
        if (mismatches, failed) != (0, 0) {
            note += &format!(", BAD: {mismatches} wrong echoes, {failed} failed connections");
        }
        let row = crate::rows::Row::from_samples(
            "echo",
            format!("{} conns x {} B", self.conns, self.size),
            self.server.name(),
            self.engine.clone(),
            role,
            "round trips/s",
            &rates,
            self.server_us(),
        )
        .note(note);
        if self.server == (Server::Tokio { multi: false }) {
            row.baseline()
        } else {
            row
        }
    }

    /// Wrong echoes and failed connections over every repetition.
    fn bad(&self) -> (u64, u64) {
        self.runs.iter().fold((0, 0), |(m, f), r| (m + r.mismatches, f + r.failed))
    }
}

/// Whether `server` is among those `VS_TOKIO_SERVERS` names (comma-separated parts of row names, e.g.
/// `io_uring,current-thread`); unset: every server. For A/B runs of a few rows.
fn selected(server: Server) -> bool {
    match std::env::var("VS_TOKIO_SERVERS") {
        Ok(list) if !list.is_empty() => list.split(',').any(|part| server.name().contains(part.trim())),
        _ => true,
    }
}

/// Runs every server against the client for each (connections, message size) cell, `secs` seconds each,
/// `repeats` times with the servers taking turns, prints one table and returns its rows for the report.
pub(crate) fn run(cells: &[(usize, usize)], secs: f64, repeats: usize) -> Vec<crate::rows::Row> {
    #[cfg(unix)]
    raise_fd_limit(cells.iter().map(|c| c.0).max().unwrap_or(0) as libc::rlim_t + 256);
    // Before pinning: cargo would otherwise inherit CPU 0 only.
    let example = build_echo_server();
    let pinned = std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2 && pin(std::process::id(), 0);
    let client = Client::choose();
    println!(
        "echo: request/response over loopback, {secs} s per server after {:.1} s of warm-up; client: {}; {}",
        WARM_UP.as_secs_f64(),
        client.describe(),
        if pinned { "client pinned to CPU 0, server to CPU 1" } else { "not pinned" }
    );
    if repeats > 1 {
        println!("each cell {repeats} times, servers taking turns; figures are medians");
    }
    let mut rows: Vec<Row> = Vec::new();
    for &(conns, size) in cells {
        let first = rows.len();
        for server in servers().into_iter().filter(|s| selected(*s)) {
            rows.push(Row { conns, size, server, engine: "n/a".into(), runs: Vec::new() });
        }
        for _ in 0..repeats {
            for row in &mut rows[first..] {
                let server = row.server;
                if let Some((mut child, port, line)) = start_server(server.command(&example), pinned) {
                    let run = client.run(port, conns, size, secs, child.id());
                    let _ = child.kill();
                    let _ = child.wait();
                    row.engine = server.engine(&line);
                    eprintln!(
                        "  ({conns} x {size} B, {}: {:.0} round trips/s)",
                        server.name(),
                        run.as_ref().map_or(f64::NAN, |r| r.round_trips as f64 / (r.end.at - r.start.at).as_secs_f64())
                    );
                    row.runs.extend(run);
                }
            }
        }
    }
    print_table(&rows);
    rows.iter().map(Row::report_row).collect()
}

fn print_table(rows: &[Row]) {
    println!(
        "{:>6} {:>6}  {:<33} {:<9} {:>9} {:>7} {:>7} {:>5} {:>5} | {:>7} {:>7} {:>7} | {:>7} {:>7} | {:>5}",
        "conns",
        "bytes",
        "server",
        "engine",
        "rt/s",
        "srv us",
        "cli us",
        "srv",
        "cli",
        "xtokio",
        "xlibuv",
        "xcallbk",
        "xtokio",
        "xlibuv",
        "bad"
    );
    println!(
        "{:>6} {:>6}  {:<33} {:<9} {:>9} {:>7} {:>7} {:>5} {:>5} | {:>23} | {:>15} |",
        "", "", "", "", "", "per rt", "per rt", "busy", "busy", "round trips/s ratio", "srv CPU/rt ratio"
    );
    for row in rows {
        // A server left out of the run (`VS_TOKIO_SERVERS`) is a row without a run: its ratios print as "-".
        let same_cell = |server: Server, figure: fn(&Row) -> f64| {
            rows.iter()
                .find(|r| r.conns == row.conns && r.size == row.size && r.server == server)
                .map_or(f64::NAN, figure)
        };
        let (tokio, libuv, callback) = (Server::Tokio { multi: false }, Server::Async("libuv"), Server::Callback);
        let rps = row.round_trips_per_sec();
        let (server_busy, client_busy) = row.busy_percent();
        let bad = if row.runs.is_empty() { "-".into() } else { format!("{}/{}", row.bad().0, row.bad().1) };
        println!(
            "{:>6} {:>6}  {:<33} {:<9} {:>9.0} {:>7.2} {:>7.2} {:>4.0}% {:>4.0}% | {:>7} {:>7} {:>7} | {:>7} {:>7} | {:>5}",
            row.conns,
            row.size,
            row.server.name(),
            row.engine,
            rps,
            row.server_us(),
            row.client_us(),
            server_busy,
            client_busy,
            ratio(rps, same_cell(tokio, Row::round_trips_per_sec)),
            ratio(rps, same_cell(libuv, Row::round_trips_per_sec)),
            ratio(rps, same_cell(callback, Row::round_trips_per_sec)),
            ratio(row.server_us(), same_cell(tokio, Row::server_us)),
            ratio(row.server_us(), same_cell(libuv, Row::server_us)),
            bad
        );
    }
    if rows.iter().any(|r| r.bad() != (0, 0)) {
        println!("WARNING: some echoes came back wrong or some connections failed (see the bad column)");
    }
    println!(
        "rt/s: round trips per second (higher is better); srv/cli us per rt: CPU microseconds (user+sys) per round \
         trip of the server process / of the client (lower is better); srv/cli busy: CPU use over the window in % of one \
         CPU (a side near 100% is the bottleneck); x<name>: ratio to that server in the same \
         cell (tokio = tokio current-thread, libuv = uvio async on the libuv engine, callbk = uvio callback API); \
         bad: echoes with wrong bytes / failed connections (must be 0/0)."
    );
}
