//! Shared test helpers: every test ends with `close_clean(lp)`, libuv's "no handle leaked" discipline.
//!
//! Test files (one binary each) are named `<layer>_<subject>.rs`, the layer being the part of uvio they test:
//! - `uv_*`: the safe libuv layer (`uvio::uv`: loop, handles, requests, errors), driven by hand on a `Loop`;
//! - `rt_*`: the runtime (block_on, tasks, lifecycle, timers, a runtime on a host's loop);
//! - `net_*`, `fs_*`, `process_*`, `signal_*`: the public async types of `uvio::net`, `uvio::fs`,
//!   `uvio::process`, `uvio::signal`, on every engine (`rt_test!`); `io_*`: `uvio::io` (Unix), likewise;
//! - `api_*`: the whole public API at once (bad input, faults), on every engine;
//! - `engine_<name>_*`: one engine asked for explicitly (`engine_select` is how an engine is chosen);
//! - `win_*`: Windows only. A platform-only suite of another layer says so after the subject (`process_unix`).
//!
//! Property tests keep their layer first too (`uv_prop_handles`, `net_prop_streams`).
#![allow(dead_code)]

use uvio::uv::{Loop, RunMode};

#[cfg(target_os = "linux")]
pub mod epoll;
#[cfg(target_os = "linux")]
pub mod ring;
pub mod rt;
pub mod stream_tests;
pub mod streams;
pub mod udp;

/// Echoes everything `conn` reads back to it until EOF or an error, then closes it.
pub async fn echo<S: futures::AsyncRead + futures::AsyncWrite + Unpin>(mut conn: S) {
    use futures::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if conn.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = conn.close().await;
}

/// Echoes every connection a TCP `listener` accepts, each on a task of its own, until EOF (any kind of stream:
/// [`StreamKind::spawn_echo`](streams::StreamKind::spawn_echo)).
pub fn spawn_echo(listener: uvio::net::TcpListener) {
    <streams::Tcp as streams::StreamKind>::spawn_echo(listener)
}

/// Reads to end-of-stream in 64 KiB chunks (`read_to_end` zero-fills its buffer a byte at a time, which is
/// slow in debug builds and very slow under valgrind).
pub async fn read_all(r: &mut (impl futures::AsyncRead + Unpin)) -> Vec<u8> {
    use futures::AsyncReadExt;
    let mut all = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = r.read(&mut chunk).await.unwrap();
        if n == 0 {
            return all;
        }
        all.extend_from_slice(&chunk[..n]);
    }
}

/// A connected TCP pair on loopback: (uvio stream accepted here, blocking std stream of the peer).
pub async fn tcp_pair() -> (uvio::net::TcpStream, std::net::TcpStream) {
    let listener = uvio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || std::net::TcpStream::connect(addr).unwrap());
    let (ours, _) = listener.accept().await.unwrap();
    (ours, peer.join().unwrap())
}

/// Runs the loop until nothing is left, then closes it, asserting no handle or request leaked.
pub fn close_clean(lp: Loop) {
    lp.run(RunMode::Default).expect("final run");
    if let Err(e) = lp.close() {
        panic!("loop did not close cleanly: {e}");
    }
}

/// A fresh temporary directory, removed when the guard drops.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "uvio-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How many of `clients` pending connections a runtime's engine accepts ahead of `accept` on a listener (what
/// `into_std` hands back): libuv one on Unix (several AcceptEx at once on Windows), io_uring's multishot accept
/// all of them (when the ring carries sockets), epoll none.
pub fn accepted_ahead_by(rt: &uvio::Runtime, clients: usize) -> std::ops::RangeInclusive<usize> {
    match rt.backend().name() {
        "libuv" if cfg!(windows) => 0..=clients,
        "libuv" => 1..=1,
        "io_uring" if ring_carries_sockets(rt) => clients..=clients,
        _ => 0..=0,
    }
}

#[cfg(target_os = "linux")]
fn ring_carries_sockets(rt: &uvio::Runtime) -> bool {
    uvio::linux::RuntimeExt::io_uring_recv_buffers(rt).is_some()
}

#[cfg(not(target_os = "linux"))]
fn ring_carries_sockets(_: &uvio::Runtime) -> bool {
    false
}

/// Reads the one-byte id each connection's client sent (blocking std sockets), sorted.
pub fn client_ids<S: std::io::Read>(conns: impl Iterator<Item = S>) -> Vec<u8> {
    let mut ids: Vec<u8> = conns
        .map(|mut conn| {
            let mut id = [0u8];
            conn.read_exact(&mut id).expect("blocking mode: no WouldBlock");
            id[0]
        })
        .collect();
    ids.sort();
    ids
}

/// Restores the process's descriptor limit (RLIMIT_NOFILE) when dropped, also if a test fails midway. For test
/// binaries of their own: the limit is process-wide.
#[cfg(unix)]
pub struct LimitGuard(libc::rlimit);

#[cfg(unix)]
impl LimitGuard {
    /// Lowers the soft limit to `soft` descriptors.
    pub fn lower_to(soft: u64) -> LimitGuard {
        // SAFETY: getrlimit/setrlimit with valid pointers to a plain C struct.
        unsafe {
            let mut orig: libc::rlimit = std::mem::zeroed();
            assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut orig), 0);
            let lowered = libc::rlimit { rlim_cur: soft as libc::rlim_t, rlim_max: orig.rlim_max };
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lowered), 0);
            LimitGuard(orig)
        }
    }
}

#[cfg(unix)]
impl Drop for LimitGuard {
    fn drop(&mut self) {
        // SAFETY: as above; raising the soft limit back up to its old value (below the hard one) is allowed.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &self.0) };
    }
}

/// The highest descriptor open in this process right now.
#[cfg(unix)]
pub fn highest_open_fd() -> i32 {
    // SAFETY: F_GETFD only queries the descriptor table; invalid numbers fail with EBADF.
    (0..4096).rev().find(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1).unwrap_or(2)
}

/// Opens `/dev/null` until the descriptor table is full (the open fails with EMFILE, asserted); returns the
/// files that filled it (dropping them frees the table again).
#[cfg(unix)]
pub fn fill_descriptor_table() -> Vec<std::fs::File> {
    let mut fillers = Vec::new();
    let full = loop {
        match std::fs::File::open("/dev/null") {
            Ok(f) => fillers.push(f),
            Err(e) => break e,
        }
    };
    assert_eq!(full.raw_os_error(), Some(libc::EMFILE));
    assert!(!fillers.is_empty(), "the limit left room for at least one file");
    fillers
}

/// Runs the loop until `done()` holds. A repeating timer wakes the loop so the condition is re-checked; a
/// generous deadline turns a hang into a failure.
pub fn run_until(lp: &Loop, mut done: impl FnMut() -> bool) {
    let tick = uvio::uv::Timer::new(lp).unwrap();
    let every = std::time::Duration::from_millis(20);
    tick.start(every, Some(every), |_| {}).unwrap();
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < std::time::Duration::from_secs(60), "run_until timed out");
        lp.run(RunMode::Once).unwrap();
    }
}

/// libuv's pool size: `UV_THREADPOOL_SIZE` (clamped to 1..=1024) or 4.
pub fn pool_size() -> usize {
    std::env::var("UV_THREADPOOL_SIZE").ok().and_then(|v| v.parse().ok()).map_or(4, |n: usize| n.clamp(1, 1024))
}

/// Runs the test named `name` (its full name, `module::engine` for an `rt_test!`) alone in a child process:
/// this test binary, filtered to that one test. For a test whose failure mode is an abort (which must not take
/// the whole binary down) or that measures the process (its memory, which other tests beside it would blur).
/// Returns `true` in the child, where the caller runs the test body; in the parent, asserts that the child ran
/// exactly that test and it passed, and returns `false`.
pub fn in_child(name: &str) -> bool {
    const CHILD: &str = "UVIO_TEST_IN_CHILD";
    if std::env::var_os(CHILD).is_some() {
        return true;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--test-threads=1", "--nocapture"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{name} failed in its child process ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    false
}
