//! Faults a peer, the OS or the disk can cause, on every engine (`rt_test!`): each surfaces as an error or a
//! documented result, never a hang, a panic or lost data.
#![cfg(unix)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::time::Duration;

use common::TempDir;
use futures::{AsyncReadExt, AsyncWriteExt};
use uvio::net::{TcpListener, TcpStream};
use uvio::time::timeout;

/// Closes `s` with SO_LINGER 0: the kernel sends RST instead of FIN.
fn reset(s: std::net::TcpStream) {
    socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO)).unwrap();
    drop(s);
}

const LIMIT: Duration = Duration::from_secs(10);

rt_test! {
    async fn peer_reset_mid_read() {
        let (mut ours, peer) = common::tcp_pair().await;
        let reader = uvio::spawn_local(async move {
            let mut buf = [0u8; 64];
            ours.read(&mut buf).await
        });
        uvio::time::sleep(Duration::from_millis(20)).await; // the read is waiting
        reset(peer);
        let res = timeout(LIMIT, reader).await.expect("read ends").unwrap();
        assert_eq!(res.unwrap_err().kind(), ErrorKind::ConnectionReset);
    }
}

rt_test! {
    async fn peer_reset_mid_write() {
        let (mut ours, peer) = common::tcp_pair().await;
        let writer = uvio::spawn_local(async move {
            let chunk = vec![7u8; 256 * 1024];
            loop {
                // The peer never reads: writes stall under backpressure until the reset.
                ours.write_all(&chunk).await?;
            }
            #[allow(unreachable_code)]
            Ok::<(), std::io::Error>(())
        });
        uvio::time::sleep(Duration::from_millis(100)).await; // the writer is blocked on a full socket
        reset(peer);
        let err = timeout(LIMIT, writer).await.expect("write ends").unwrap().unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe),
            "a reset peer gives ECONNRESET or EPIPE, got {err:?}"
        );
    }
}

rt_test! {
    async fn half_close_both_ways() {
        // Our side closes first: the peer reads EOF and can still send to us.
        let (mut ours, mut peer) = common::tcp_pair().await;
        ours.write_all(b"ping").await.unwrap();
        ours.shutdown().await.unwrap();
        let peer_side = std::thread::spawn(move || {
            let mut got = Vec::new();
            peer.read_to_end(&mut got).unwrap();
            peer.write_all(b"pong after your FIN").unwrap();
            drop(peer);
            got
        });
        let mut back = Vec::new();
        ours.read_to_end(&mut back).await.unwrap();
        assert_eq!(peer_side.join().unwrap(), b"ping");
        assert_eq!(back, b"pong after your FIN");

        // The peer closes first: we read EOF and can still send.
        let (mut ours, mut peer) = common::tcp_pair().await;
        peer.write_all(b"hello").unwrap();
        peer.shutdown(std::net::Shutdown::Write).unwrap();
        let mut got = Vec::new();
        ours.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"hello");
        assert_eq!(ours.read(&mut [0u8; 8]).await.unwrap(), 0, "end of stream is sticky");
        ours.write_all(b"still open").await.unwrap();
        ours.close().await.unwrap();
        let mut back = Vec::new();
        peer.read_to_end(&mut back).unwrap();
        assert_eq!(back, b"still open");
    }
}

rt_test! {
    async fn a_connection_reset_before_accept_is_no_accept_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        reset(std::net::TcpStream::connect(addr).unwrap());
        let mut good = std::net::TcpStream::connect(addr).unwrap();
        good.write_all(b"hi").unwrap();
        uvio::time::sleep(Duration::from_millis(20)).await; // both are in the accept queue, the first reset
        for _ in 0..2 {
            let (mut conn, _) = listener.accept().await.expect("a reset connection is no accept error");
            let mut buf = [0u8; 2];
            match conn.read_exact(&mut buf).await {
                Ok(()) => return assert_eq!(&buf, b"hi"),
                Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "the reset one fails at its read"),
            }
        }
        panic!("the good connection was never accepted");
    }
}

rt_test! {
    async fn connect_to_a_closed_port_is_refused() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let err = TcpStream::connect(("127.0.0.1", port)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    }
}

rt_test! {
    async fn a_child_killed_by_a_signal_reports_it() {
        let mut child = uvio::process::Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id().unwrap() as libc::pid_t;
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
        let status = timeout(LIMIT, child.wait()).await.expect("wait ends").unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        assert_eq!(status.code(), None);
        assert!(!status.success());

        let mut child = uvio::process::Command::new("sleep").arg("30").spawn().unwrap();
        child.start_kill().unwrap();
        let status = timeout(LIMIT, child.wait()).await.expect("wait ends").unwrap();
        assert_eq!(status.signal(), Some(libc::SIGKILL));
    }
}

rt_test! {
    async fn a_file_deleted_while_open_stays_usable() {
        let dir = TempDir::new("faults-deleted");
        let path = dir.path().join("doomed");
        uvio::fs::write(&path, b"first").await.unwrap();
        let mut file = uvio::fs::OpenOptions::new().read(true).write(true).open(&path).await.unwrap();
        uvio::fs::remove_file(&path).await.unwrap();
        assert!(!uvio::fs::try_exists(&path).await.unwrap());
        let mut got = String::new();
        file.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "first");
        file.write_all(b", then more").await.unwrap();
        file.flush().await.unwrap();
        let (res, buf) = file.read_at(Vec::with_capacity(64), 0).await;
        let n = res.unwrap();
        assert_eq!(&buf[..n], b"first, then more");
        let meta = file.metadata().await.unwrap();
        assert_eq!(meta.len(), 16);
    }
}

rt_test! {
    async fn writes_to_a_full_device_report_no_space() {
        let mut full = uvio::fs::OpenOptions::new().write(true).open("/dev/full").await.unwrap();
        // The error may come from the write or from the flush that pushes buffered bytes: it must come.
        let res = async {
            full.write_all(&[1u8; 4096]).await?;
            full.flush().await
        }
        .await;
        let err = res.expect_err("/dev/full accepts nothing");
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err:?}");

        let (res, _) = full.write_at(vec![1u8; 16], 0).await;
        assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::ENOSPC));
        assert_eq!(uvio::fs::write("/dev/full", b"x").await.unwrap_err().raw_os_error(), Some(libc::ENOSPC));
    }
}

rt_test! {
    async fn resets_of_some_connections_leave_the_others_byte_exact() {
        // 16 clients: one in four is reset by its peer mid-stream, the others echo 256 KiB each, byte-exact.
        // A reset connection may never reach `accept` (the libuv engine drops one reset before it was
        // accepted) or fail at its first read: either way the others must not notice.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let clean = std::rc::Rc::new(std::cell::Cell::new(0));
        let counter = clean.clone();
        uvio::spawn_local(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else { continue };
                let counter = counter.clone();
                uvio::spawn_local(async move {
                    let mut buf = vec![0u8; 8192];
                    loop {
                        match conn.read(&mut buf).await {
                            Ok(0) if conn.close().await.is_ok() => break counter.set(counter.get() + 1),
                            Ok(0) | Err(_) => break,
                            Ok(n) if conn.write_all(&buf[..n]).await.is_err() => break,
                            Ok(_) => {}
                        }
                    }
                });
            }
        });
        let clients = uvio::task::spawn_blocking(move || {
            let threads: Vec<_> = (0..16u8).map(|id| std::thread::spawn(move || client(addr, id))).collect();
            threads.into_iter().map(|t| t.join().unwrap()).filter(|exact| *exact).count()
        });
        let exact = timeout(Duration::from_secs(30), clients).await.expect("clients end").unwrap();
        assert_eq!(exact, 12, "the 12 clients that were not reset get every byte back");
        timeout(LIMIT, async {
            while clean.get() < 12 {
                uvio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the server sees 12 clean ends");
        assert_eq!(clean.get(), 12);
    }
}

/// One client of the test above: echoes 256 KiB (true when byte-exact), or, one in four, resets mid-stream.
fn client(addr: std::net::SocketAddr, id: u8) -> bool {
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    let data: Vec<u8> = (0..256 * 1024).map(|i| (i as u8) ^ id).collect();
    if id % 4 == 0 {
        let _ = c.write_all(&data[..1000]);
        reset(c);
        return false;
    }
    let mut w = c.try_clone().unwrap();
    let sent = data.clone();
    let writer = std::thread::spawn(move || {
        w.write_all(&sent).unwrap();
        w.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let mut back = Vec::new();
    c.read_to_end(&mut back).unwrap();
    writer.join().unwrap();
    back == data
}

/// A runtime dropped with every kind of operation in flight returns promptly (on a thread, bounded) and frees
/// what it held (valgrind checks the freeing).
#[test]
fn a_runtime_dropped_with_everything_in_flight_returns() {
    for engine in engines() {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let engine2 = engine.to_owned();
        std::thread::spawn(move || {
            drop_with_everything_in_flight(&engine2);
            done_tx.send(()).unwrap();
        });
        done_rx.recv_timeout(Duration::from_secs(20)).unwrap_or_else(|_| panic!("[{engine}] drop(runtime) hangs"));
    }
}

fn engines() -> Vec<&'static str> {
    if cfg!(target_os = "linux") {
        vec!["libuv", "epoll", "io_uring"]
    } else {
        vec!["libuv"]
    }
}

fn drop_with_everything_in_flight(engine: &str) {
    let rt = uvio::Builder::new().backend(engine.parse().unwrap()).build().or_else(|_| uvio::Runtime::new()).unwrap();
    let dir = TempDir::new("faults-inflight");
    let file_path = dir.path().join("data");
    std::fs::write(&file_path, vec![3u8; 1 << 20]).unwrap();
    let silent_peer = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent_peer.local_addr().unwrap();
    let peers = rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // accept pending
        uvio::spawn_local(async move {
            let _ = listener.accept().await;
            let _ = listener.accept().await;
        });
        // read pending and a write stalled on a full socket
        let reading = TcpStream::connect(silent_addr).await.unwrap();
        let writing = TcpStream::connect(silent_addr).await.unwrap();
        let (a, _) = silent_peer.accept().unwrap();
        let (b, _) = silent_peer.accept().unwrap();
        uvio::spawn_local(async move {
            let mut reading = reading;
            let _ = reading.read(&mut [0u8; 64]).await;
        });
        uvio::spawn_local(async move {
            let mut writing = writing;
            let chunk = vec![1u8; 1 << 20];
            loop {
                if writing.write_all(&chunk).await.is_err() {
                    return;
                }
            }
        });
        // a connect in flight (to our listener, which may or may not have accepted it yet)
        uvio::spawn_local(async move {
            let _ = TcpStream::connect(addr).await;
        });
        // a sleep, a UDP receive, a child to wait for, a DNS lookup, a blocking task, file reads and stats
        uvio::spawn_local(uvio::time::sleep(Duration::from_secs(3600)));
        let udp = uvio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        uvio::spawn_local(async move {
            let _ = udp.recv_from(&mut [0u8; 64]).await;
        });
        let mut child = uvio::process::Command::new("sleep").arg("30").kill_on_drop(true).spawn().unwrap();
        uvio::spawn_local(async move {
            let _ = child.wait().await;
        });
        uvio::spawn_local(async {
            let _ = uvio::net::lookup_host("localhost:80").await;
        });
        uvio::spawn_local(uvio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(50))));
        for _ in 0..8 {
            let path = file_path.clone();
            uvio::spawn_local(async move {
                let Ok(file) = uvio::fs::File::open(&path).await else { return };
                loop {
                    let (res, _) = file.read_at(Vec::with_capacity(64 * 1024), 4096).await;
                    if res.is_err() {
                        return;
                    }
                    let _ = uvio::fs::metadata(&path).await;
                }
            });
        }
        // Let every operation start.
        uvio::time::sleep(Duration::from_millis(50)).await;
        (a, b)
    });
    drop(rt);
    drop(peers);
}
