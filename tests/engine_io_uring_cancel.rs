//! Cancellation stress on the io_uring engine: reads, writes, accepts (and some connects) dropped at random
//! points over loopback, with byte-exact checks of what did arrive.
//!
//! Every connection carries a known stream: a 4-byte id, then bytes derived from the id and the offset. Each
//! operation is, at random (a seeded xorshift, so failures reproduce): polled once and dropped, wrapped in a
//! `timeout` of 0–1 ms, or awaited to completion. What a dropped write returned `Ready(n)` for counts as
//! written; every byte the reader gets is checked against the expected stream at its offset, and each reader's
//! total must equal what its writer reported written. Some writers drop their stream with bytes still queued
//! instead of closing it. Rounds of connections run until at least `UVIO_STRESS_OPS` (default 100 000)
//! operations were dropped mid-flight.
#![cfg(target_os = "linux")]

use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures::{AsyncReadExt, AsyncWriteExt};
use uvio::net::{TcpListener, TcpStream};
use uvio::task::yield_now;
use uvio::time::timeout;
use uvio::{spawn_local, Backend, Builder};

/// Connections per round (each has a writer task and a reader task).
const CONNS: u32 = 16;
/// Bytes each connection carries after its id: more than the writer's queue (256 KiB) and the small socket
/// buffers hold, so that writes wait (and get dropped) too.
const STREAM_LEN: usize = 512 * 1024;
/// The period of the byte pattern (a prime, so that streams of different ids do not line up).
const PERIOD: usize = 65_521;
/// Socket buffer sizes asked for (the kernel doubles them): small, so the kernel absorbs little.
const SOCK_BUF: usize = 8 * 1024;

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The byte pattern streams are cut from: `PERIOD` pseudo-random bytes, repeated to cover a whole stream from
/// any starting point.
fn pattern() -> Rc<Vec<u8>> {
    let mut rng = Rng::new(42);
    let period: Vec<u8> = (0..PERIOD).map(|_| rng.next() as u8).collect();
    Rc::new(period.iter().copied().cycle().take(PERIOD + STREAM_LEN).collect())
}

/// Connection `id`'s expected bytes from `offset` on (`len` of them).
fn expected(pattern: &[u8], id: u32, offset: usize, len: usize) -> &[u8] {
    let start = (id as usize * 4099 + offset) % PERIOD;
    &pattern[start..start + len]
}

/// Operations dropped mid-flight, per kind.
#[derive(Default)]
struct Counts {
    reads: Cell<u64>,
    writes: Cell<u64>,
    accepts: Cell<u64>,
    connects: Cell<u64>,
}

impl Counts {
    fn total(&self) -> u64 {
        self.reads.get() + self.writes.get() + self.accepts.get() + self.connects.get()
    }
}

/// How an operation is driven this time.
enum Drive {
    /// Polled once, then dropped if still pending.
    PollOnce,
    /// Dropped if not done within this many microseconds.
    Timeout(u64),
    /// Awaited to completion.
    Await,
}

fn pick(rng: &mut Rng) -> Drive {
    match rng.below(10) {
        0..=3 => Drive::PollOnce,
        4..=7 => Drive::Timeout(rng.below(1001)),
        _ => Drive::Await,
    }
}

/// Runs `fut` as `drive` says: `Some(output)` if it completed, `None` if it was dropped mid-flight (counted in
/// `dropped`; the task then yields so the loop turns).
async fn drive<F: Future>(drive: Drive, fut: F, dropped: &Cell<u64>) -> Option<F::Output> {
    let out = match drive {
        Drive::PollOnce => {
            let mut fut = pin!(fut);
            match futures::poll!(fut.as_mut()) {
                Poll::Ready(out) => Some(out),
                Poll::Pending => None,
            }
        }
        Drive::Timeout(us) => timeout(Duration::from_micros(us), fut).await.ok(),
        Drive::Await => Some(fut.await),
    };
    if out.is_none() {
        dropped.set(dropped.get() + 1);
        yield_now().await;
    }
    out
}

/// Writes connection `id`'s stream with randomly dropped writes; returns the bytes written after the id.
async fn writer(mut conn: TcpStream, id: u32, mut rng: Rng, counts: Rc<Counts>, pattern: Rc<Vec<u8>>) -> usize {
    conn.write_all(&id.to_le_bytes()).await.unwrap();
    let mut written = 0;
    while written < STREAM_LEN {
        let len = (1 + rng.below(32 * 1024) as usize).min(STREAM_LEN - written);
        let chunk = expected(&pattern, id, written, len);
        if let Some(res) = drive(pick(&mut rng), conn.write(chunk), &counts.writes).await {
            written += res.unwrap();
        }
    }
    if rng.below(2) == 0 {
        conn.close().await.unwrap(); // flush, then end-of-stream
    } else {
        drop(conn); // queued bytes must still arrive, then end-of-stream
    }
    written
}

/// Reads one connection with randomly dropped reads, checking every byte; returns its id and the byte count,
/// or `None` for a connection that ended before its id (one whose connect future was dropped after the kernel
/// had connected it). `ids` counts the connections whose id arrived.
async fn reader(
    mut conn: TcpStream,
    mut rng: Rng,
    counts: Rc<Counts>,
    ids: Rc<Cell<u32>>,
    pattern: Rc<Vec<u8>>,
) -> Option<(u32, usize)> {
    let mut id = [0u8; 4];
    conn.read_exact(&mut id).await.ok()?;
    let id = u32::from_le_bytes(id);
    ids.set(ids.get() + 1);
    let mut got = 0;
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let len = 1 + rng.below(buf.len() as u64) as usize;
        let Some(res) = drive(pick(&mut rng), conn.read(&mut buf[..len]), &counts.reads).await else { continue };
        let n = res.unwrap();
        if n == 0 {
            return Some((id, got));
        }
        assert!(got + n <= STREAM_LEN, "connection {id}: more bytes than were written");
        let want = expected(&pattern, id, got, n);
        if buf[..n] != *want {
            let k = buf[..n].iter().zip(want).position(|(a, b)| a != b).unwrap_or(0);
            panic!("connection {id}: wrong byte at offset {}", got + k);
        }
        got += n;
        if rng.below(64) == 0 {
            // A slow reader now and then: the writer's queue fills and its writes wait.
            timeout(Duration::from_millis(1 + rng.below(3)), futures::future::pending::<()>()).await.ok();
        }
    }
}

/// One round: `CONNS` connections, their accepts, connects, writes and reads all randomly dropped.
async fn round(seed: u64, counts: Rc<Counts>, pattern: Rc<Vec<u8>>) {
    // Accepted sockets inherit the listener's small receive buffer.
    let std_listener = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    std_listener.set_recv_buffer_size(SOCK_BUF).unwrap();
    std_listener.bind(&"127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap().into()).unwrap();
    std_listener.listen(128).unwrap();
    let listener = Rc::new(TcpListener::from_std(std_listener.into()).unwrap());
    let addr = listener.local_addr().unwrap();
    let written: Rc<Vec<Cell<Option<usize>>>> = Rc::new((0..CONNS).map(|_| Cell::new(None)).collect());

    let acceptor = {
        let (listener, counts, pattern) = (listener.clone(), counts.clone(), pattern.clone());
        spawn_local(async move {
            let mut rng = Rng::new(seed ^ 0xacce);
            let ids = Rc::new(Cell::new(0));
            let mut readers = Vec::new();
            // Until every real connection has shown its id (abandoned connects may come too); an awaited
            // accept is bounded so that the loop sees the count.
            while ids.get() < CONNS {
                let drive_it = match pick(&mut rng) {
                    Drive::Await => Drive::Timeout(50_000),
                    other => other,
                };
                if let Some(res) = drive(drive_it, listener.accept(), &counts.accepts).await {
                    let (conn, _) = res.unwrap();
                    let rng = Rng::new(rng.next());
                    readers.push(spawn_local(reader(conn, rng, counts.clone(), ids.clone(), pattern.clone())));
                }
            }
            let mut results = Vec::new();
            for r in readers {
                results.extend(r.await.unwrap());
            }
            results
        })
    };

    let mut writers = Vec::new();
    for id in 0..CONNS {
        let (counts, written, pattern) = (counts.clone(), written.clone(), pattern.clone());
        writers.push(spawn_local(async move {
            let mut rng = Rng::new(seed.wrapping_add(u64::from(id) * 7919));
            // A ring connect, dropped mid-flight or completed and closed at once (its socket is closed by the
            // runtime once the kernel is done with it; the acceptor may see it as a connection without an id).
            let drive_it = if rng.below(2) == 0 { Drive::PollOnce } else { Drive::Timeout(rng.below(200)) };
            drop(drive(drive_it, TcpStream::connect(addr), &counts.connects).await);
            // The connection that carries the stream: a small send buffer, so the writer's queue fills.
            let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            sock.set_send_buffer_size(SOCK_BUF).unwrap();
            sock.connect(&addr.into()).unwrap();
            let conn = TcpStream::from_std(sock.into()).unwrap();
            let n = writer(conn, id, rng, counts, pattern).await;
            written[id as usize].set(Some(n));
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let results = acceptor.await.unwrap();
    assert_eq!(results.len(), CONNS as usize);
    let mut seen = vec![false; CONNS as usize];
    for (id, got) in results {
        // Every real connection is read exactly once and in full.
        assert!(!seen[id as usize], "connection {id} read twice");
        seen[id as usize] = true;
        let sent = written[id as usize].get().expect("writer finished");
        assert_eq!(got, sent, "connection {id}: the reader got {got} bytes, the writer wrote {sent}");
        assert_eq!(sent, STREAM_LEN);
    }
    drop(listener);
}

#[test]
fn hundred_thousand_dropped_operations_lose_no_byte() {
    std::env::remove_var("UVIO_BACKEND");
    let target: u64 = std::env::var("UVIO_STRESS_OPS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let rt = match Builder::new().backend(Backend::IoUring).build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("note: skipping, io_uring is not available here: {e}");
            return;
        }
    };
    let counts = Rc::new(Counts::default());
    let start = Instant::now();
    let c = counts.clone();
    let pattern = pattern();
    let rounds = rt.block_on(async move {
        let mut rounds = 0u64;
        while c.total() < target {
            round(0x5eed_0000 + rounds, c.clone(), pattern.clone()).await;
            rounds += 1;
        }
        rounds
    });
    rt.close().expect("runtime closes cleanly");
    eprintln!(
        "{rounds} rounds in {:?}: dropped {} reads, {} writes, {} accepts, {} connects",
        start.elapsed(),
        counts.reads.get(),
        counts.writes.get(),
        counts.accepts.get(),
        counts.connects.get()
    );
    assert!(counts.total() >= target);
    assert!(counts.reads.get() > 0 && counts.writes.get() > 0 && counts.accepts.get() > 0);
}
