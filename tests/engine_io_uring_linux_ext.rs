//! The Linux extension traits (`uvio::linux`): ring size and SQPOLL set on the builder, reported by the runtime,
//! and files byte-exact through such rings; SQPOLL refused → `Auto` falls back, explicit `IoUring` errors.
//!
//! `UVIO_BACKEND` is respected: when it forces another engine, the ring knobs are ignored and the tests check
//! that the runtime reports no ring (the last test runs the others in a child process once per engine so forced).
//! A refused SQPOLL ring is simulated per runtime with the hidden `Builder::simulate_ring_failure("SQPOLL_EPERM")`.
#![cfg(target_os = "linux")]
mod common;

use std::io::ErrorKind;
use std::time::Duration;

use common::TempDir;
use uvio::linux::{BuilderExt, RuntimeExt};
use uvio::{Backend, Builder, Runtime};

/// The engine `UVIO_BACKEND` forces on every runtime of this process, if any.
fn forced() -> Option<Backend> {
    Backend::from_env().expect("valid UVIO_BACKEND").filter(|b| *b != Backend::Auto)
}

/// Whether a plain ring can be created here.
fn io_uring_available() -> bool {
    match Builder::new().backend(Backend::IoUring).build() {
        Ok(rt) => rt.backend() == Backend::IoUring && rt.close().is_ok(),
        Err(_) => false,
    }
}

/// Writes 1 MiB through `rt`'s engine and reads it back, byte-exact; then closes `rt` cleanly.
fn files_roundtrip(rt: Runtime) {
    let dir = TempDir::new("linux-ext");
    let path = dir.path().join("data");
    let data: Vec<u8> = (0..1 << 20).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let back = rt.block_on(async {
        uvio::fs::write(&path, &data).await.expect("write");
        assert_eq!(uvio::fs::metadata(&path).await.expect("metadata").len(), data.len() as u64);
        uvio::fs::read(&path).await.expect("read")
    });
    assert!(back == data, "1 MiB read back differs");
    rt.close().expect("runtime closes cleanly");
}

#[test]
fn entries_64_reported_and_files_work() {
    let rt = Builder::new().io_uring_entries(64).build().expect("build");
    if rt.backend() == Backend::IoUring {
        assert_eq!(rt.io_uring_entries(), Some(64));
        assert!(!rt.io_uring_sqpoll());
    } else {
        eprintln!("note: engine is {} (UVIO_BACKEND={:?}): no ring to check", rt.backend(), forced());
        assert_eq!(rt.io_uring_entries(), None);
        assert!(!rt.io_uring_sqpoll());
    }
    files_roundtrip(rt);
}

#[test]
fn entries_not_a_power_of_two_is_handled_cleanly() {
    match Builder::new().io_uring_entries(3).build() {
        Ok(rt) => {
            if rt.backend() == Backend::IoUring {
                let got = rt.io_uring_entries().expect("a ring");
                assert!(got >= 3 && got.is_power_of_two(), "kernel gave {got} entries");
            } else {
                assert_eq!(rt.io_uring_entries(), None);
            }
            files_roundtrip(rt);
        }
        Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}"),
    }
}

#[test]
fn entries_zero_is_invalid_input_on_io_uring() {
    if forced().is_some_and(|b| b != Backend::IoUring) || !io_uring_available() {
        eprintln!("note: skipping, the engine is not io_uring here");
        return;
    }
    let err = Builder::new().backend(Backend::IoUring).io_uring_entries(0).build().expect_err("0 entries");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("io_uring_entries(0)"), "{err}");
    let err = Builder::new().io_uring_entries(1 << 20).build().expect_err("too many entries");
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}

#[test]
fn sqpoll_explicit_ring_works_or_is_refused_cleanly() {
    if forced().is_some_and(|b| b != Backend::IoUring) || !io_uring_available() {
        eprintln!("note: skipping, the engine is not io_uring here");
        return;
    }
    let built = Builder::new().backend(Backend::IoUring).io_uring_sqpoll(Some(Duration::from_millis(10))).build();
    let rt = match built {
        Ok(rt) => rt,
        Err(e) if matches!(e.kind(), ErrorKind::PermissionDenied | ErrorKind::Unsupported) => {
            eprintln!("note: SQPOLL refused here: {e}");
            return;
        }
        Err(e) => panic!("unexpected SQPOLL error: {e}"),
    };
    assert_eq!(rt.backend(), Backend::IoUring);
    assert!(rt.io_uring_sqpoll());
    assert_eq!(rt.io_uring_entries(), Some(256));
    files_roundtrip(rt);
}

#[test]
fn sqpoll_with_small_ring_survives_a_full_queue() {
    if forced().is_some_and(|b| b != Backend::IoUring) || !io_uring_available() {
        eprintln!("note: skipping, the engine is not io_uring here");
        return;
    }
    let built = Builder::new()
        .backend(Backend::IoUring)
        .io_uring_entries(4)
        .io_uring_sqpoll(Some(Duration::from_millis(1)))
        .build();
    let Ok(rt) = built else {
        eprintln!("note: SQPOLL refused here");
        return;
    };
    assert_eq!(rt.io_uring_entries(), Some(4));
    let dir = TempDir::new("linux-ext-sq");
    let paths: Vec<_> = (0..32).map(|i| dir.path().join(format!("f{i}"))).collect();
    rt.block_on(async {
        // More operations at once than the submission queue holds.
        let writes = paths.iter().enumerate().map(|(i, p)| uvio::fs::write(p, vec![i as u8; 4096 + i]));
        for r in futures::future::join_all(writes).await {
            r.expect("write");
        }
        let reads = paths.iter().map(uvio::fs::read);
        for (i, r) in futures::future::join_all(reads).await.into_iter().enumerate() {
            assert_eq!(r.expect("read"), vec![i as u8; 4096 + i]);
        }
    });
    rt.close().expect("runtime closes cleanly");
}

#[test]
fn sqpoll_refused_auto_falls_back_explicit_errors() {
    let sqpoll =
        || Builder::new().io_uring_sqpoll(Some(Duration::from_millis(10))).simulate_ring_failure("SQPOLL_EPERM");
    let auto = sqpoll().build();
    let explicit = sqpoll().backend(Backend::IoUring).build();

    match forced() {
        // UVIO_BACKEND=io_uring makes Auto explicit: the refusal is an error then.
        Some(Backend::IoUring) => {
            let err = auto.expect_err("SQPOLL refused under UVIO_BACKEND=io_uring");
            assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
        }
        Some(other) => {
            eprintln!("note: UVIO_BACKEND={other}: no ring, SQPOLL ignored");
            let rt = auto.expect("Auto under a forced engine");
            assert_eq!(rt.io_uring_entries(), None);
            assert!(!rt.io_uring_sqpoll());
            rt.close().expect("runtime closes cleanly");
            explicit.expect("forced engine overrides IoUring").close().expect("closes");
            return;
        }
        None => {
            let rt = auto.expect("Auto falls back to a plain ring");
            if rt.backend() == Backend::IoUring {
                assert!(!rt.io_uring_sqpoll());
                assert_eq!(rt.io_uring_entries(), Some(256));
            }
            files_roundtrip(rt);
        }
    }
    if io_uring_available() {
        let err = explicit.expect_err("explicit IoUring with SQPOLL refused");
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
        assert!(err.to_string().contains("io_uring_sqpoll"), "{err}");
    }
}

#[test]
fn auto_with_sqpoll_request_builds() {
    if forced() == Some(Backend::IoUring) {
        eprintln!("note: UVIO_BACKEND=io_uring makes this request explicit; covered above");
        return;
    }
    let rt =
        Builder::new().io_uring_sqpoll(Some(Duration::from_millis(10))).build().expect("Auto never fails on SQPOLL");
    if rt.backend() != Backend::IoUring {
        assert!(!rt.io_uring_sqpoll());
    }
    files_roundtrip(rt);
}

#[test]
fn recv_buffers_knob_is_reported_and_a_tiny_ring_stays_byte_exact() {
    if forced().is_some_and(|b| b != Backend::IoUring) || !io_uring_available() {
        eprintln!("note: skipping, the engine is not io_uring here");
        return;
    }
    use futures::{AsyncReadExt, AsyncWriteExt};
    // 8 buffers for 64 connections each echoing 64 KiB: the ring runs dry again and again, and reads fall back
    // to buffers of their own; every byte must still come back in order.
    let rt = Builder::new().backend(Backend::IoUring).io_uring_recv_buffers(8).build().expect("build");
    assert_eq!(rt.io_uring_recv_buffers(), Some(8));
    let ok = rt.block_on(async {
        let listener = uvio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        uvio::spawn_local(async move {
            loop {
                let (conn, _) = listener.accept().await.unwrap();
                uvio::spawn_local(async move {
                    let (mut rd, mut wr) = conn.into_split();
                    futures::io::copy(&mut rd, &mut wr).await.unwrap();
                    wr.close().await.unwrap();
                });
            }
        });
        let clients: Vec<_> = (0..64u32)
            .map(|c| {
                uvio::spawn_local(async move {
                    let data: Vec<u8> = (0..64 * 1024u32).map(|i| (i.wrapping_mul(31).wrapping_add(c)) as u8).collect();
                    let (mut rd, mut wr) = uvio::net::TcpStream::connect(addr).await.unwrap().into_split();
                    let sent = data.clone();
                    let writer = uvio::spawn_local(async move {
                        wr.write_all(&sent).await.unwrap();
                        wr.close().await.unwrap();
                    });
                    let mut back = Vec::new();
                    rd.read_to_end(&mut back).await.unwrap();
                    writer.await.unwrap();
                    back == data
                })
            })
            .collect();
        let mut all = true;
        for c in clients {
            all &= c.await.unwrap();
        }
        all
    });
    assert!(ok, "an echo came back different");
    drop(rt); // the accept loop still runs: dropping cancels it

    for bad in [0u16, 3, 1000] {
        let err = Builder::new().backend(Backend::IoUring).io_uring_recv_buffers(bad).build().expect_err("bad count");
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}: {err}");
    }
    // Other engines ignore the knob and report no ring (unless UVIO_BACKEND forces io_uring on every runtime).
    if forced().is_none() {
        let rt = Builder::new().backend(Backend::Epoll).io_uring_recv_buffers(3).build().expect("epoll ignores it");
        assert_eq!(rt.io_uring_recv_buffers(), None);
        rt.close().expect("runtime closes cleanly");
    }
}

#[test]
fn an_empty_recv_ring_leaves_reads_and_peeks_byte_exact() {
    if forced().is_some_and(|b| b != Backend::IoUring) || !io_uring_available() {
        eprintln!("note: skipping, the engine is not io_uring here");
        return;
    }
    use futures::{AsyncReadExt, AsyncWriteExt};
    // One buffer, held by a connection that has read only part of a big receive: the other connections' ring
    // recvs find the ring empty (`ENOBUFS`); a read then takes the bytes straight from the socket, a peek
    // through a buffer of the connection's own, and both see exactly what was sent.
    let rt = Builder::new().backend(Backend::IoUring).io_uring_recv_buffers(1).build().expect("build");
    rt.block_on(async {
        let listener = uvio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut peers = Vec::new();
        let mut conns = Vec::new();
        for _ in 0..3 {
            peers.push(uvio::net::TcpStream::connect(addr).await.unwrap());
            conns.push(listener.accept().await.unwrap().0);
        }
        let big: Vec<u8> = (0..8192u32).map(|i| i.wrapping_mul(7) as u8).collect();
        peers[0].write_all(&big).await.unwrap();
        let mut first = [0u8; 1];
        conns[0].read_exact(&mut first).await.unwrap(); // holds the only buffer: more than a small copy-out
        peers[1].write_all(b"peeked").await.unwrap();
        peers[2].write_all(b"read").await.unwrap();
        let mut buf = [0u8; 16];
        let n = conns[1].peek(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], &b"peeked"[..n]);
        let mut got = [0u8; 6];
        conns[1].read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"peeked");
        let mut got = [0u8; 4];
        conns[2].read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"read");
        let mut rest = vec![0u8; big.len() - 1];
        conns[0].read_exact(&mut rest).await.unwrap();
        assert_eq!(first[0], big[0]);
        assert!(rest == big[1..], "the held receive came back different");
    });
}

rt_test! {
    /// The tests above again, in a child process with `UVIO_BACKEND` forcing the engine on every runtime (the
    /// variable is process-wide): the knobs are then ignored, or the forced ring honours them.
    fn the_tests_pass_with_the_engine_forced() {
        if forced().is_some() {
            return; // this process is such a child
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--skip", "the_tests_pass_with_the_engine_forced", "--test-threads=1"])
            .env("UVIO_BACKEND", ENGINE)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "UVIO_BACKEND={ENGINE}:\n{stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert!(!stdout.contains("test result: ok. 0 passed"), "UVIO_BACKEND={ENGINE}: the tests ran:\n{stdout}");
    }
}
