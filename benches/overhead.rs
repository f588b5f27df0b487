//! The cost of the safe layer: instructions per timer start+fire and per 64-byte TCP write+read through
//! `uvio::uv`, against the same work done with raw `libuv_sys2` calls.
//!
//! `cargo bench --bench overhead` re-runs this binary under `valgrind --tool=callgrind` (instruction counts are
//! repeatable; wall time on a shared 2-core machine is not) at two iteration counts and reports the
//! difference per operation, so set-up costs cancel out. Without valgrind it prints wall-clock times only.
//!
//! Direct use: `overhead <case> <iterations>` with case one of the CASES below.
#![allow(unsafe_code)]
#![allow(clippy::undocumented_unsafe_blocks)] // a benchmark of raw FFI, not library code

use std::cell::Cell;
use std::ffi::{c_char, c_int};
use std::process::Command;
use std::rc::Rc;
use std::time::{Duration, Instant};

use libuv_sys2 as sys;
use uvio::uv::{Loop, RunMode, Tcp, Timer};

const CASES: [&str; 6] =
    ["timer-raw", "timer-uvio-start", "timer-uvio-start-rc", "timer-uvio-restart", "tcp-raw", "tcp-uvio"];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let (Some(case), Some(n)) = (args.get(1).filter(|a| CASES.contains(&a.as_str())), args.get(2)) {
        run_case(case, n.parse().expect("iterations"));
        return;
    }
    if args.len() == 1 {
        // `cargo bench` passes `--bench`; a bare run is `cargo test --benches` (or --all-targets).
        println!("overhead: run with `cargo bench --bench overhead`");
        return;
    }
    report();
}

fn run_case(case: &str, n: u64) {
    match case {
        "timer-raw" => timer_raw(n),
        "timer-uvio-start" => timer_uvio(n, Start::Static),
        "timer-uvio-start-rc" => timer_uvio(n, Start::CapturingRc),
        "timer-uvio-restart" => timer_uvio(n, Start::Restart),
        "tcp-raw" => tcp_raw(n),
        "tcp-uvio" => tcp_uvio(n),
        _ => unreachable!(),
    }
}

fn report() {
    let exe = std::env::current_exe().unwrap();
    let have_valgrind = Command::new("valgrind").arg("--version").output().is_ok_and(|o| o.status.success());
    println!("uvio::uv overhead vs raw libuv_sys2 (same process, same loop work)");
    for case in CASES {
        let t = Instant::now();
        run_case(case, 20_000);
        println!("  wall  {case:<20} {:>8.0} ns/op", t.elapsed().as_nanos() as f64 / 20_000.0);
    }
    if !have_valgrind {
        println!("valgrind not found: instruction counts skipped");
        return;
    }
    let (lo, hi) = (2_000u64, 12_000u64);
    let per_op = |case: &str| -> f64 {
        let ir = |n: u64| -> u64 {
            let out = std::env::temp_dir().join(format!("uvio-callgrind-{}-{case}-{n}", std::process::id()));
            let status = Command::new("valgrind")
                .arg("--tool=callgrind")
                .arg(format!("--callgrind-out-file={}", out.display()))
                .arg(&exe)
                .args([case, &n.to_string()])
                .output()
                .expect("valgrind");
            assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
            let text = std::fs::read_to_string(&out).unwrap();
            let _ = std::fs::remove_file(&out);
            text.lines().find_map(|l| l.strip_prefix("totals: ")).unwrap().trim().parse().unwrap()
        };
        (ir(hi) - ir(lo)) as f64 / (hi - lo) as f64
    };
    let timer_raw = per_op("timer-raw");
    let timer_start = per_op("timer-uvio-start");
    let timer_start_rc = per_op("timer-uvio-start-rc");
    let timer_restart = per_op("timer-uvio-restart");
    let tcp_raw = per_op("tcp-raw");
    let tcp_uvio = per_op("tcp-uvio");
    println!("instructions per operation (callgrind, ({hi} - {lo} iterations) difference):");
    let ratio = |x: f64, raw: f64| format!("{x:>6.0} ({:.3}x)", x / raw);
    println!("  timer start+fire    raw {timer_raw:>6.0}");
    println!("    uvio start(cb), cb counts in a static like the raw one  {}", ratio(timer_start, timer_raw));
    println!("    uvio start(cb), cb captures an Rc (clone + drop per op)  {}", ratio(timer_start_rc, timer_raw));
    println!("    uvio restart (same callback, no closure built)           {}", ratio(timer_restart, timer_raw));
    println!("  tcp 64B write+read  raw {tcp_raw:>6.0}");
    println!("    uvio write(cb) + read callback                           {}", ratio(tcp_uvio, tcp_raw));
}

// ----- timers -----

enum Start {
    Static,
    CapturingRc,
    Restart,
}

thread_local! {
    static UVIO_FIRED: Cell<u64> = const { Cell::new(0) };
}

fn timer_uvio(n: u64, how: Start) {
    let lp = Loop::new().unwrap();
    let timer = Timer::new(&lp).unwrap();
    let fired = Rc::new(Cell::new(0u64));
    timer.start(Duration::ZERO, None, |_| UVIO_FIRED.with(|f| f.set(f.get() + 1))).unwrap();
    lp.run(RunMode::Once).unwrap();
    for _ in 1..n {
        match how {
            Start::Static => timer.start(Duration::ZERO, None, |_| UVIO_FIRED.with(|f| f.set(f.get() + 1))).unwrap(),
            Start::CapturingRc => {
                let f = fired.clone();
                timer.start(Duration::ZERO, None, move |_| f.set(f.get() + 1)).unwrap()
            }
            Start::Restart => timer.restart(Duration::ZERO, None).unwrap(),
        }
        lp.run(RunMode::Once).unwrap();
    }
    assert!(UVIO_FIRED.with(Cell::get) + fired.get() >= n);
    drop(timer);
    lp.close().unwrap_or_else(|e| panic!("{e}"));
}

static mut RAW_FIRED: u64 = 0;

unsafe extern "C" fn raw_timer_cb(_: *mut sys::uv_timer_t) {
    unsafe { RAW_FIRED += 1 };
}

fn timer_raw(n: u64) {
    unsafe {
        let lp = Box::into_raw(Box::new(std::mem::zeroed::<sys::uv_loop_t>()));
        sys::uv_loop_init(lp);
        let t = Box::into_raw(Box::new(std::mem::zeroed::<sys::uv_timer_t>()));
        sys::uv_timer_init(lp, t);
        for _ in 0..n {
            sys::uv_timer_start(t, Some(raw_timer_cb), 0, 0);
            sys::uv_run(lp, sys::uv_run_mode_UV_RUN_ONCE);
        }
        sys::uv_close(t.cast(), None);
        sys::uv_run(lp, sys::uv_run_mode_UV_RUN_DEFAULT);
        drop(Box::from_raw(t));
        assert_eq!(sys::uv_loop_close(lp), 0);
        drop(Box::from_raw(lp));
    }
}

// ----- tcp: a connected pair on one loop; the client writes 64 bytes, the loop runs until the server read them.

fn tcp_uvio(n: u64) {
    let lp = Loop::new().unwrap();
    let server = Tcp::new(&lp).unwrap();
    server.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = server.local_addr().unwrap();
    let conn: Rc<Cell<Option<Tcp>>> = Rc::new(Cell::new(None));
    let c2 = conn.clone();
    server.listen(16, move |s, _| c2.set(Some(s.accept().unwrap()))).unwrap();
    let client = Tcp::new(&lp).unwrap();
    client.connect(addr, |_, r| r.unwrap()).unwrap();
    while client.peer_addr().is_err() || conn.take().map(|c| conn.set(Some(c))).is_none() {
        lp.run(RunMode::Once).unwrap();
    }
    let peer = conn.take().unwrap();
    let received = Rc::new(Cell::new(0u64));
    let r2 = received.clone();
    peer.read_start(move |_, data| r2.set(r2.get() + data.map_or(0, |d| d.len() as u64))).unwrap();
    for i in 0..n {
        client.write([7u8; 64], |_, r| r.unwrap()).unwrap();
        while received.get() < (i + 1) * 64 {
            lp.run(RunMode::Once).unwrap();
        }
    }
    drop((peer, client, server));
    lp.run(RunMode::Default).unwrap();
    lp.close().unwrap_or_else(|e| panic!("{e}"));
}

static mut RAW_RECEIVED: u64 = 0;
static mut RAW_BUF: [u8; 65536] = [0; 65536];
static mut RAW_ACCEPTED: *mut sys::uv_tcp_t = std::ptr::null_mut();

unsafe extern "C" fn raw_alloc(_: *mut sys::uv_handle_t, _: usize, buf: *mut sys::uv_buf_t) {
    unsafe { *buf = sys::uv_buf_t { base: (&raw mut RAW_BUF).cast::<c_char>(), len: 65536 } };
}

unsafe extern "C" fn raw_read(_: *mut sys::uv_stream_t, nread: isize, _: *const sys::uv_buf_t) {
    if nread > 0 {
        unsafe { RAW_RECEIVED += nread as u64 };
    }
}

unsafe extern "C" fn raw_write_cb(req: *mut sys::uv_write_t, status: c_int) {
    assert_eq!(status, 0);
    // The typical raw program: one malloc'd request (holding its data) per write, freed here.
    unsafe { drop(Box::from_raw(req.cast::<RawWrite>())) };
}

#[repr(C)]
struct RawWrite {
    req: sys::uv_write_t,
    data: [u8; 64],
}

unsafe extern "C" fn raw_connection(server: *mut sys::uv_stream_t, status: c_int) {
    assert_eq!(status, 0);
    unsafe {
        let client = Box::into_raw(Box::new(std::mem::zeroed::<sys::uv_tcp_t>()));
        sys::uv_tcp_init((*server).loop_, client);
        assert_eq!(sys::uv_accept(server, client.cast()), 0);
        RAW_ACCEPTED = client;
    }
}

unsafe extern "C" fn raw_connect(_: *mut sys::uv_connect_t, status: c_int) {
    assert_eq!(status, 0);
}

fn tcp_raw(n: u64) {
    unsafe {
        let lp = Box::into_raw(Box::new(std::mem::zeroed::<sys::uv_loop_t>()));
        sys::uv_loop_init(lp);
        let server = Box::into_raw(Box::new(std::mem::zeroed::<sys::uv_tcp_t>()));
        sys::uv_tcp_init(lp, server);
        let any: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
        let sa = socket2::SockAddr::from(any);
        assert_eq!(sys::uv_tcp_bind(server, sa.as_ptr().cast(), 0), 0);
        let mut name: sys::sockaddr_storage = std::mem::zeroed();
        let mut len = std::mem::size_of_val(&name) as c_int;
        sys::uv_tcp_getsockname(server, (&raw mut name).cast(), &mut len);
        assert_eq!(sys::uv_listen(server.cast(), 16, Some(raw_connection)), 0);
        let client = Box::into_raw(Box::new(std::mem::zeroed::<sys::uv_tcp_t>()));
        sys::uv_tcp_init(lp, client);
        let connect = Box::into_raw(Box::new(std::mem::zeroed::<sys::uv_connect_t>()));
        assert_eq!(sys::uv_tcp_connect(connect, client, (&raw const name).cast(), Some(raw_connect)), 0);
        while RAW_ACCEPTED.is_null() || !(*connect).handle.is_null() && sys::uv_is_writable(client.cast()) == 0 {
            sys::uv_run(lp, sys::uv_run_mode_UV_RUN_ONCE);
        }
        sys::uv_run(lp, sys::uv_run_mode_UV_RUN_NOWAIT);
        let peer = RAW_ACCEPTED;
        sys::uv_read_start(peer.cast(), Some(raw_alloc), Some(raw_read));
        for i in 0..n {
            let w = Box::into_raw(Box::new(RawWrite { req: std::mem::zeroed(), data: [7; 64] }));
            let buf = sys::uv_buf_t { base: (*w).data.as_mut_ptr().cast(), len: 64 };
            assert_eq!(sys::uv_write(w.cast(), client.cast(), &buf, 1, Some(raw_write_cb)), 0);
            while RAW_RECEIVED < (i + 1) * 64 {
                sys::uv_run(lp, sys::uv_run_mode_UV_RUN_ONCE);
            }
        }
        for h in [server, client, peer] {
            sys::uv_close(h.cast(), None);
        }
        sys::uv_run(lp, sys::uv_run_mode_UV_RUN_DEFAULT);
        for h in [server, client, peer] {
            drop(Box::from_raw(h));
        }
        drop(Box::from_raw(connect));
        assert_eq!(sys::uv_loop_close(lp), 0);
        drop(Box::from_raw(lp));
    }
}
