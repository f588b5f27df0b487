//! Async TCP tests on loopback: echo over IPv4 and IPv6, names, many concurrent tasks, resets, errors, bounded
//! writes; and, through `stream_kind_tests!`, every test Unix streams share (large transfers, half-close, split
//! halves, cancellation of reads/accepts/connects mid-flight, drop with queued writes, std hand-overs).
use std::cell::Cell;
use std::io::ErrorKind;
use std::rc::Rc;
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt, FutureExt};
use uvio::net::{lookup_host, TcpListener, TcpStream};
use uvio::spawn_local;
use uvio::time::{sleep, timeout};

mod common;
use common::{read_all, spawn_echo};

stream_kind_tests!(Tcp);

rt_test! {
    async fn echo_round_trip_v4() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        assert!(addr.port() != 0);
        spawn_echo(listener);
        let mut c = TcpStream::connect(addr).await.unwrap();
        assert_eq!(c.peer_addr().unwrap(), addr);
        c.write_all(b"hello uvio").await.unwrap();
        let mut back = [0u8; 10];
        c.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"hello uvio");
    }
}

rt_test! {
    async fn echo_round_trip_v6() {
        let listener = match TcpListener::bind("[::1]:0").await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("no IPv6 loopback here ({e}); skipping");
                return;
            }
        };
        let addr = listener.local_addr().unwrap();
        spawn_echo(listener);
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"six").await.unwrap();
        let mut back = [0u8; 3];
        c.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"six");
    }
}

rt_test! {
    async fn connect_by_name_resolves_localhost() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        spawn_echo(listener);
        let mut c = TcpStream::connect(format!("localhost:{port}")).await.unwrap();
        c.write_all(b"x").await.unwrap();
        let mut b = [0u8; 1];
        c.read_exact(&mut b).await.unwrap();
        let addrs: Vec<_> = lookup_host(("localhost", 443)).await.unwrap().collect();
        assert!(!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 443));
    }
}

/// `ten_thousand_concurrent_echo_tasks` runs its engines in turn, each runtime closed before the next starts: one
/// alone needs most of the descriptors the limit allows.
static ONE_ENGINE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

rt_test! {
    fn ten_thousand_concurrent_echo_tasks() {
        let _turn = ONE_ENGINE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        run(async {
            // Each connection costs two descriptors here (client and server side). Where the limit cannot be raised
            // (valgrind keeps its own), fewer connections run: libuv sheds connections it cannot accept (EMFILE).
            let limit = raise_fd_limit(25_000);
            let n = 10_000u32.min((limit.saturating_sub(256) / 2) as u32);
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            spawn_echo(listener);
            // Every connection stays open until all have echoed, so all of them are open at once. At most
            // HANDSHAKES are between their start and their echo: more would overflow the listener's accept
            // queue (1024) and test the kernel's SYN-flood defence instead of uvio (on a loaded machine its
            // syncookies reset some connections).
            const HANDSHAKES: u32 = 512;
            let ok = Rc::new(Cell::new(0u32));
            let (all_echoed, every_task_may_close) = futures::channel::oneshot::channel::<()>();
            let may_close = every_task_may_close.shared();
            let mut tasks = Vec::with_capacity(n as usize);
            // A task that failed never counts: the waits below end at this deadline, not never.
            let deadline = std::time::Instant::now() + Duration::from_secs(120);
            let wait = |what: &str| {
                let left = ok.get();
                assert!(std::time::Instant::now() < deadline, "{what}: {left} of {n} echoed (a task failed?)");
                sleep(Duration::from_millis(1))
            };
            for i in 0..n {
                while i - ok.get() >= HANDSHAKES {
                    wait("starting").await;
                }
                let (ok, may_close) = (ok.clone(), may_close.clone());
                tasks.push(spawn_local(async move {
                    let mut c = TcpStream::connect(addr).await.unwrap();
                    let msg = i.to_le_bytes();
                    c.write_all(&msg).await.unwrap();
                    let mut back = [0u8; 4];
                    c.read_exact(&mut back).await.unwrap();
                    assert_eq!(back, msg);
                    ok.set(ok.get() + 1);
                    let _ = may_close.await;
                }));
            }
            while ok.get() < n {
                wait("echoing").await;
            }
            all_echoed.send(()).unwrap();
            for t in tasks {
                t.await.unwrap();
            }
            assert_eq!(ok.get(), n);
        });
    }
}

rt_test! {
    async fn connect_refused_is_an_error() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let err = TcpStream::connect(("127.0.0.1".parse::<std::net::IpAddr>().unwrap(), port)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    }
}

rt_test! {
    async fn bad_addresses_are_errors_not_panics() {
        for bad in ["no-port", "127.0.0.1:notaport", "localhost:99999", ""] {
            assert!(TcpStream::connect(bad).await.is_err(), "{bad}");
        }
        assert!(TcpListener::bind("300.1.1.1:0").await.is_err());
    }
}

rt_test! {
    async fn bind_in_use_is_addr_in_use() {
        let a = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let err = TcpListener::bind(a.local_addr().unwrap()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AddrInUse);
    }
}

rt_test! {
    async fn peer_reset_is_reported_as_an_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let std_client = std::net::TcpStream::connect(addr).unwrap();
        let (mut conn, _) = listener.accept().await.unwrap();
        socket2::SockRef::from(&std_client).set_linger(Some(Duration::ZERO)).unwrap();
        drop(std_client); // RST
        let mut buf = [0u8; 8];
        let mut saw_error_or_eof = false;
        for _ in 0..10 {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    saw_error_or_eof = true;
                    break;
                }
                Ok(_) => {}
            }
        }
        assert!(saw_error_or_eof);
        // Writing to a reset connection eventually fails instead of panicking.
        let mut failed = false;
        for _ in 0..100 {
            if conn.write_all(&[0u8; 1024]).await.is_err() || conn.flush().await.is_err() {
                failed = true;
                break;
            }
            sleep(Duration::from_millis(1)).await;
        }
        assert!(failed);
    }
}

/// Raises the soft descriptor limit towards `n` (up to the hard limit); returns the limit now in force.
fn raise_fd_limit(n: u64) -> u64 {
    #[cfg(unix)]
    // SAFETY: getrlimit/setrlimit with a valid struct pointer; changing our own soft limit is harmless.
    unsafe {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < n {
            lim.rlim_cur = n.min(lim.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur
    }
    #[cfg(not(unix))]
    n
}

rt_test! {
    async fn a_reader_that_always_finds_data_still_lets_other_tasks_run() {
        use std::io::Write;
        // The peer, on its own thread, writes far faster than the reader below takes 64-byte bites: nearly every
        // read finds data at once, so only the cooperative budget makes the reader yield.
        const TOTAL: usize = 4 << 20;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let writer = std::thread::spawn(move || {
            let mut peer = std::net::TcpStream::connect(addr).unwrap();
            let chunk = vec![7u8; 1 << 16];
            for _ in 0..TOTAL / chunk.len() {
                peer.write_all(&chunk).unwrap();
            }
        });
        let (mut conn, _) = listener.accept().await.unwrap();
        let polls = Rc::new(Cell::new(0u32));
        let counter = polls.clone();
        let other = spawn_local(async move {
            loop {
                counter.set(counter.get() + 1);
                uvio::task::yield_now().await;
            }
        });
        let mut buf = [0u8; 64];
        let mut got = 0;
        while got < TOTAL {
            let n = conn.read(&mut buf).await.unwrap();
            assert!(n > 0, "early end of stream after {got} bytes");
            assert!(buf[..n].iter().all(|&b| b == 7));
            got += n;
        }
        let other_ran = polls.get();
        other.abort();
        writer.join().unwrap();
        // 65 536 reads with a budget of 128 per poll: the reader yields at least 512 times.
        assert!(other_ran >= 100, "another task ran only {other_ran} times while {TOTAL} bytes were read");
    }
}

/// The most one `write` call takes on any engine (documented on `TcpStream`).
const WRITE_BOUND: usize = 256 * 1024;

/// This process's resident memory, in bytes (Linux).
fn rss() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The byte at offset `i` of the test streams below: not periodic at any power of two, so a lost, repeated or
/// reordered chunk shows.
fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

/// The first `len` bytes of that stream (built by doubling copies: a byte-by-byte loop is slow under valgrind).
fn patterned(len: usize) -> Vec<u8> {
    let period: Vec<u8> = (0..251).map(pattern).collect();
    let mut data = period.repeat(len / period.len() + 1);
    data.truncate(len);
    data
}

rt_test! {
    async fn one_huge_write_to_a_peer_that_never_reads_takes_a_bounded_prefix() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut c = TcpStream::connect(addr).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let data = patterned(64 << 20);
        let n = timeout(Duration::from_secs(10), c.write(&data)).await.expect("write returns").unwrap();
        assert!(n > 0 && n <= WRITE_BOUND, "one write took {n} bytes of 64 MiB; the bound is {WRITE_BOUND}");
        // The bytes accepted are delivered, exactly, even though the stream is dropped right away.
        drop(c);
        let got = timeout(Duration::from_secs(10), read_all(&mut server)).await.expect("peer reads to EOF");
        assert_eq!(got.len(), n, "the peer got another count than write returned");
        assert!(got == data[..n], "the peer got other bytes than those written");
    }
}

rt_test! {
    fn a_fast_writer_to_a_slow_reader_keeps_memory_bounded_and_every_byte() {
        use std::io::Read;
        if !common::in_child(&format!("a_fast_writer_to_a_slow_reader_keeps_memory_bounded_and_every_byte::{ENGINE}")) {
            return;
        }
        const TOTAL: usize = 64 << 20;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let data = patterned(TOTAL);
        let before = rss();
        // The slow reader, on its own thread: small reads with pauses, checking every byte and the process's
        // memory as it goes.
        let reader = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = vec![0u8; 64 * 1024];
            let (mut got, mut peak) = (0usize, 0usize);
            loop {
                let n = conn.read(&mut buf).unwrap();
                if n == 0 {
                    return (got, peak);
                }
                for (k, &b) in buf[..n].iter().enumerate() {
                    assert_eq!(b, pattern(got + k), "wrong byte at offset {}", got + k);
                }
                got += n;
                peak = peak.max(rss().unwrap_or(0));
                if got % (1 << 20) < n {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        });
        run(async {
            let mut c = TcpStream::connect(addr).await.unwrap();
            timeout(Duration::from_secs(60), c.write_all(&data)).await.expect("write_all finishes").unwrap();
            c.close().await.unwrap();
        });
        let (got, peak) = reader.join().unwrap();
        assert_eq!(got, TOTAL, "the reader got another count than was written");
        if let Some(before) = before {
            let grown = peak.saturating_sub(before);
            assert!(grown < 16 << 20, "memory grew by {} MiB while writing 64 MiB", grown >> 20);
        }
    }
}
