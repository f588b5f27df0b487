//! Property test over async streams on every engine: random sequences of writes and reads of random sizes, each
//! possibly dropped after a random number of polls (a cancellation point). Checked: the bytes read are exactly
//! the bytes the completed writes reported, in order: a dropped read loses nothing, a dropped write adds
//! nothing. `PROPTEST_CASES` sets the number of sequences per engine (default 24).

mod common;

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::future::{select, Either};
use futures::{AsyncReadExt, AsyncWriteExt};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use uvio::net::{TcpListener, TcpStream};

/// Operations dropped mid-flight, over all sequences: the test checks it cancelled some.
static CANCELLED: AtomicU64 = AtomicU64::new(0);

/// One operation: its size, and after how many yields it is dropped if it has not finished (`None`: awaited).
type Op = (usize, Option<u8>);

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec((1usize..40_000, prop::option::of(0u8..4)), 1..40)
}

/// Runs `io` until it finishes or `cancel_after` yields have passed, whichever is first (`None` if dropped).
async fn maybe_cancelled<T>(io: impl Future<Output = T>, cancel_after: Option<u8>) -> Option<T> {
    let Some(k) = cancel_after else { return Some(io.await) };
    let yields = async move {
        for _ in 0..k {
            uvio::task::yield_now().await;
        }
    };
    match select(pin!(io), pin!(yields)).await {
        Either::Left((out, _)) => Some(out),
        Either::Right(((), _)) => {
            CANCELLED.fetch_add(1, Ordering::Relaxed);
            None // the I/O future is dropped here, mid-flight
        }
    }
}

async fn exchange(writes: Vec<Op>, reads: Vec<Op>) -> Result<(), TestCaseError> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (client, accepted) = futures::join!(TcpStream::connect(addr), listener.accept());
    let (mut writer, (mut reader, _)) = (client.unwrap(), accepted.unwrap());
    let total: usize = writes.iter().map(|w| w.0).sum();
    let data: Vec<u8> = (0..total).map(|i| (i % 251) as u8 ^ (i >> 16) as u8).collect();

    let write_side = uvio::spawn_local(async move {
        let mut accepted = 0;
        for (size, cancel_after) in writes {
            let chunk = &data[accepted..accepted + size];
            if let Some(res) = maybe_cancelled(writer.write(chunk), cancel_after).await {
                accepted += res.expect("write");
            }
        }
        writer.close().await.expect("flush and shut down");
        (data, accepted)
    });
    let read_side = uvio::spawn_local(async move {
        let mut got = Vec::new();
        for (cap, cancel_after) in reads {
            let mut buf = vec![0u8; cap];
            if let Some(res) = maybe_cancelled(reader.read(&mut buf), cancel_after).await {
                let n = res.expect("read");
                got.extend_from_slice(&buf[..n]);
            }
        }
        reader.read_to_end(&mut got).await.expect("read to the end");
        got
    });
    let (data, accepted) = write_side.await.unwrap();
    let got = read_side.await.unwrap();
    prop_assert_eq!(got.len(), accepted, "as many bytes arrive as the writes reported");
    prop_assert!(got == data[..accepted], "the bytes arrive exactly, in order");
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24)
}

fn check(engine: &str) {
    let mut runner = TestRunner::new(Config { cases: cases(), ..Config::default() });
    runner.run(&(ops(), ops()), |(writes, reads)| common::rt::run_on(engine, exchange(writes, reads))).unwrap();
    let cancelled = CANCELLED.load(Ordering::Relaxed);
    println!("[{engine}] {} sequences, {cancelled} operations dropped mid-flight so far", cases());
    assert!(cancelled > 0, "the sequences cancelled operations");
}

#[test]
fn libuv() {
    check("libuv");
}

#[cfg(target_os = "linux")]
#[test]
fn epoll() {
    check("epoll");
}

#[cfg(target_os = "linux")]
#[test]
fn io_uring() {
    check("io_uring");
}
