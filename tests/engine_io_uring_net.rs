//! TCP and Unix stream sockets on the io_uring engine's ring (Linux): byte-exact echo, many connections, the
//! provided-buffer ring running dry, cancellation of reads, writes, accepts and connects mid-flight, errors, and
//! the fallback to the epoll engine's code (the hidden `Builder::simulate_ring_failure("NO_NET")`).
//!
//! Every runtime asks for `Backend::IoUring` explicitly. `UVIO_BACKEND` is process-wide, so every test holds
//! `ENV` while it runs, with that variable (which would override the explicit engine) cleared.
#![cfg(target_os = "linux")]
mod common;

use std::cell::Cell;
use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use uvio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use uvio::time::{sleep, timeout};
use uvio::{spawn_local, Backend, Builder};

use common::ring::{env_lock, pattern, ring_runtime, run};
use common::{read_all, spawn_echo};

/// Whether the descriptor is in non-blocking mode: the epoll engine's sockets are, the ring's are not.
fn nonblocking(fd: i32) -> bool {
    // SAFETY: F_GETFL on a descriptor number only reads its flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    assert!(flags >= 0, "fcntl: {}", std::io::Error::last_os_error());
    flags & libc::O_NONBLOCK != 0
}

/// Raises the soft descriptor limit towards `n` (up to the hard limit); returns the limit now in force.
fn raise_fd_limit(n: u64) -> u64 {
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
}

#[test]
fn echo_small_and_ten_mib_byte_exact() {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        spawn_echo(listener);
        let mut c = TcpStream::connect(addr).await.unwrap();
        assert_eq!(c.peer_addr().unwrap(), addr);
        c.write_all(b"hello ring").await.unwrap();
        let mut back = [0u8; 10];
        c.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"hello ring");

        // 10 MiB both ways at once: the writer runs in its own task, the reader here.
        let data = Rc::new(pattern(10 << 20));
        let (mut r, mut w) = c.into_split();
        let sent = data.clone();
        let writer = spawn_local(async move {
            for chunk in sent.chunks(100_000) {
                w.write_all(chunk).await.unwrap();
            }
            w.close().await.unwrap();
            w
        });
        let got = read_all(&mut r).await;
        assert_eq!(got.len(), data.len());
        assert!(got == *data, "echoed bytes differ");
        let w = writer.await.unwrap();
        r.reunite(w).unwrap();
    });
}

#[test]
fn ipv6_echo_and_socket_options() {
    run(async {
        let Ok(listener) = TcpListener::bind("[::1]:0").await else {
            eprintln!("note: no IPv6 loopback here");
            return;
        };
        let addr = listener.local_addr().unwrap();
        spawn_echo(listener);
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.set_nodelay(true).unwrap();
        c.set_keepalive(Some(Duration::from_secs(30))).unwrap();
        c.set_keepalive(None).unwrap();
        assert!(c.local_addr().unwrap().is_ipv6());
        c.write_all(b"six").await.unwrap();
        let mut back = [0u8; 3];
        c.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"six");
    });
}

#[test]
fn thousand_concurrent_connections() {
    let limit = raise_fd_limit(4096);
    let n = 1000u32.min((limit.saturating_sub(200) / 2) as u32);
    run(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        spawn_echo(listener);
        let ok = Rc::new(Cell::new(0u32));
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let ok = ok.clone();
                spawn_local(async move {
                    let mut c = TcpStream::connect(addr).await.unwrap();
                    let msg: Vec<u8> = (0..1000u32).map(|k| (i * 7 + k) as u8).collect();
                    c.write_all(&msg).await.unwrap();
                    let mut back = vec![0u8; msg.len()];
                    c.read_exact(&mut back).await.unwrap();
                    assert_eq!(back, msg);
                    ok.set(ok.get() + 1);
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(ok.get(), n);
    });
}

#[test]
fn empty_buffer_ring_falls_back_without_errors() {
    // Each server connection reads 1 byte of 3: the rest stays in the ring buffer its recv picked. With more
    // connections than the ring has buffers (512), later recvs find the ring empty (ENOBUFS) and must fall
    // back to their own buffer, then every remaining byte must still arrive in order.
    let limit = raise_fd_limit(4096);
    let n = 600usize.min((limit.saturating_sub(200) / 2) as usize);
    run(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut clients = Vec::new();
        let mut servers = Vec::new();
        for i in 0..n {
            let mut c = TcpStream::connect(addr).await.unwrap();
            let (s, _) = listener.accept().await.unwrap();
            c.write_all(&[i as u8, (i >> 8) as u8, 0xAB]).await.unwrap();
            clients.push(c);
            servers.push(s);
        }
        for (i, s) in servers.iter_mut().enumerate() {
            let mut first = [0u8; 1];
            s.read_exact(&mut first).await.unwrap();
            assert_eq!(first[0], i as u8);
        }
        for (i, s) in servers.iter_mut().enumerate() {
            let mut rest = [0u8; 2];
            s.read_exact(&mut rest).await.unwrap();
            assert_eq!(rest, [(i >> 8) as u8, 0xAB]);
        }
        // The ring has its buffers back: a second round works the same.
        for (i, c) in clients.iter_mut().enumerate() {
            c.write_all(&[i as u8; 2]).await.unwrap();
        }
        for (i, s) in servers.iter_mut().enumerate() {
            let mut two = [0u8; 2];
            s.read_exact(&mut two).await.unwrap();
            assert_eq!(two, [i as u8; 2]);
        }
    });
}

#[test]
fn dropped_read_keeps_its_bytes_for_the_next_read() {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut c = TcpStream::connect(addr).await.unwrap();
        let (mut s, _) = listener.accept().await.unwrap();
        for round in 0..20u8 {
            // A read dropped mid-flight (its recv stays armed)...
            let mut buf = [0u8; 8];
            assert!(timeout(Duration::from_millis(2), s.read(&mut buf)).await.is_err());
            let mut fut = Box::pin(s.read(&mut buf));
            assert!(futures::poll!(fut.as_mut()).is_pending());
            drop(fut);
            // ...then data arrives: the next read gets all of it, in order.
            c.write_all(&[round, round + 1, round + 2]).await.unwrap();
            sleep(Duration::from_millis(1)).await;
            let mut got = [0u8; 3];
            s.read_exact(&mut got).await.unwrap();
            assert_eq!(got, [round, round + 1, round + 2]);
        }
        // Small reads of a big message take it piece by piece from the kept buffer.
        let data = pattern(40_000);
        c.write_all(&data).await.unwrap();
        let mut got = Vec::new();
        let mut piece = [0u8; 7];
        while got.len() < data.len() {
            let n = s.read(&mut piece).await.unwrap();
            assert!(n > 0);
            got.extend_from_slice(&piece[..n]);
        }
        assert_eq!(got, data);
        // Zero-length reads and writes complete at once.
        assert_eq!(s.read(&mut []).await.unwrap(), 0);
        assert_eq!(s.write(&[]).await.unwrap(), 0);
    });
}

#[test]
fn dropping_a_stream_with_4_mib_queued_delivers_every_byte() {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let data = pattern(4 << 20);
        let expected = data.clone();
        let server = spawn_local(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            sleep(Duration::from_millis(20)).await; // let the client's writes pile up in its queue
            read_all(&mut conn).await == expected
        });
        let mut c = TcpStream::connect(addr).await.unwrap();
        // Without waiting for the sends: every poll_write that returned Ready(n) queued n bytes.
        let mut written = 0;
        let mut stalls = 0;
        while written < data.len() {
            let mut fut = Box::pin(c.write(&data[written..]));
            match futures::poll!(fut.as_mut()) {
                std::task::Poll::Ready(n) => written += n.unwrap(),
                std::task::Poll::Pending => {
                    // The queue is full: a write dropped while pending accepted nothing; wait and retry.
                    drop(fut);
                    stalls += 1;
                    sleep(Duration::from_millis(1)).await;
                }
            }
        }
        assert_eq!(written, data.len());
        drop(c); // with bytes still queued
        assert!(stalls > 0 || written == data.len());
        assert!(server.await.unwrap(), "bytes accepted by poll_write were lost on drop");
    });
}

#[test]
fn dropped_accept_loses_no_connection_and_many_queue() {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // An accept that times out (dropped mid-flight, its multishot accept armed), then a connection: the
        // next accept gets it.
        assert!(timeout(Duration::from_millis(5), listener.accept()).await.is_err());
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"first").await.unwrap();
        sleep(Duration::from_millis(5)).await; // accepted by the kernel and queued in the listener
        let (mut s, peer) = listener.accept().await.unwrap();
        assert_eq!(peer, c.local_addr().unwrap());
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"first");

        // More connections than the listener queues (256) while nobody accepts: none is lost.
        let n = 300;
        let mut clients = Vec::new();
        for i in 0..n {
            let mut c = TcpStream::connect(addr).await.unwrap();
            c.write_all(&(i as u32).to_le_bytes()).await.unwrap();
            clients.push(c);
        }
        sleep(Duration::from_millis(10)).await;
        let mut seen = vec![false; n];
        for _ in 0..n {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut id = [0u8; 4];
            s.read_exact(&mut id).await.unwrap();
            let id = u32::from_le_bytes(id) as usize;
            assert!(!seen[id], "connection {id} accepted twice");
            seen[id] = true;
        }
        assert!(seen.iter().all(|&s| s));
    });
}

#[test]
fn listener_dropped_with_queued_connections() {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Arm the multishot accept, then let connections queue in the listener.
        assert!(timeout(Duration::from_millis(2), listener.accept()).await.is_err());
        let mut clients = Vec::new();
        for _ in 0..10 {
            clients.push(TcpStream::connect(addr).await.unwrap());
        }
        sleep(Duration::from_millis(5)).await;
        drop(listener);
        // The queued connections were closed: each client reads end-of-stream (or a reset).
        for c in &mut clients {
            let mut buf = [0u8; 1];
            match c.read(&mut buf).await {
                Ok(n) => assert_eq!(n, 0),
                Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset),
            }
        }
        // The port is free again for a new listener.
        let again = TcpListener::bind(addr).await.unwrap();
        assert_eq!(again.local_addr().unwrap(), addr);
    });
}

#[test]
fn connect_dropped_mid_flight_is_cancelled_cleanly() {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        for _ in 0..50 {
            let mut fut = Box::pin(TcpStream::connect(addr));
            let _ = futures::poll!(fut.as_mut()); // the connect is queued for the ring
            drop(fut);
        }
        for _ in 0..50 {
            // Dropped after the ring had it (one loop iteration later).
            let _ = timeout(Duration::from_micros(1), TcpStream::connect(addr)).await;
        }
        sleep(Duration::from_millis(5)).await;
        // The listener still works.
        let c = spawn_local(async move { TcpStream::connect(addr).await.unwrap() });
        let (_s, _) = listener.accept().await.unwrap();
        c.await.unwrap();
    });
}

#[test]
fn connect_refused_is_econnrefused() {
    run(async {
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let e = TcpStream::connect(addr).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
        assert_eq!(e.raw_os_error(), Some(libc::ECONNREFUSED));
        // Unix sockets: nothing there.
        let e = UnixStream::connect("/nonexistent/uvio-ring.sock").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
    });
}

#[test]
fn peer_reset_is_an_error_not_a_panic() {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let std_client = std::net::TcpStream::connect(addr).unwrap();
        let (mut conn, _) = listener.accept().await.unwrap();
        socket2::SockRef::from(&std_client).set_linger(Some(Duration::ZERO)).unwrap();
        drop(std_client); // RST
        let mut buf = [0u8; 8];
        let e = conn.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConnectionReset);
        // Writing to a reset connection fails (reported by a later write or the flush) instead of panicking.
        let mut failed = None;
        for _ in 0..100 {
            if let Err(e) = conn.write_all(&[0u8; 1024]).await {
                failed = Some(e);
                break;
            }
            if let Err(e) = conn.flush().await {
                failed = Some(e);
                break;
            }
        }
        let e = failed.expect("writes to a reset connection fail");
        assert!(matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset), "{e:?}");
        // The error stays: the next flush reports it too.
        assert!(conn.flush().await.is_err());
    });
}

#[test]
fn shutdown_makes_the_peer_read_eof_while_reading_goes_on() {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut c = TcpStream::connect(addr).await.unwrap();
        let (mut s, _) = listener.accept().await.unwrap();
        c.write_all(b"last words").await.unwrap();
        c.shutdown().await.unwrap();
        c.shutdown().await.unwrap(); // twice is fine
        assert_eq!(read_all(&mut s).await, b"last words");
        // Writing after shutdown is an error; reading still works.
        assert_eq!(c.write(b"x").await.unwrap_err().kind(), ErrorKind::BrokenPipe);
        s.write_all(b"reply").await.unwrap();
        s.close().await.unwrap();
        assert_eq!(read_all(&mut c).await, b"reply");
    });
}

#[test]
fn unix_socket_echo() {
    let dir = std::env::temp_dir().join(format!("uvio-uring-net-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("echo.sock");
    let p = path.clone();
    run(async move {
        let listener = UnixListener::bind(&p).unwrap();
        assert_eq!(listener.local_addr().unwrap().as_pathname(), Some(p.as_path()));
        let server = spawn_local(async move {
            let (mut conn, peer) = listener.accept().await.unwrap();
            assert!(peer.is_unnamed());
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                let n = conn.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                conn.write_all(&buf[..n]).await.unwrap();
            }
            conn.close().await.unwrap();
        });
        let c = UnixStream::connect(&p).await.unwrap();
        let data = Rc::new(pattern(1 << 20));
        let (mut r, mut w) = c.into_split();
        let sent = data.clone();
        let writer = spawn_local(async move {
            w.write_all(&sent).await.unwrap();
            w.close().await.unwrap();
        });
        assert!(read_all(&mut r).await == *data);
        writer.await.unwrap();
        server.await.unwrap();
        // A pair made from std sockets runs on the ring too.
        let (mut a, mut b) = UnixStream::pair().unwrap();
        a.write_all(b"pair").await.unwrap();
        let mut buf = [0u8; 4];
        b.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"pair");
    });
    assert!(!path.exists(), "the listener removes its socket file");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn split_halves_across_tasks() {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        spawn_echo(listener);
        let (mut r, mut w) = TcpStream::connect(addr).await.unwrap().into_split();
        let writer = spawn_local(async move {
            for i in 0..200u32 {
                w.write_all(&i.to_le_bytes()).await.unwrap();
                if i % 10 == 0 {
                    sleep(Duration::from_millis(1)).await;
                }
            }
            w
        });
        let reader = spawn_local(async move {
            for i in 0..200u32 {
                let mut b = [0u8; 4];
                r.read_exact(&mut b).await.unwrap();
                assert_eq!(u32::from_le_bytes(b), i);
            }
            r
        });
        let w = writer.await.unwrap();
        let r = reader.await.unwrap();
        assert_eq!(w.peer_addr().unwrap(), addr);
        let _stream = r.reunite(w).unwrap();
    });
}

#[test]
fn runtime_closes_with_socket_operations_in_flight() {
    // A recv on an idle connection, a multishot accept, a send to a peer that reads nothing and a connect
    // that never completes: all still in flight when the runtime closes.
    let _env = env_lock();
    let Some(rt) = ring_runtime() else { return };
    rt.block_on(async {
        let listener = Rc::new(TcpListener::bind("127.0.0.1:0").await.unwrap());
        let addr = listener.local_addr().unwrap();
        let mut c = TcpStream::connect(addr).await.unwrap();
        let (s, _) = listener.accept().await.unwrap();
        let l = listener.clone();
        spawn_local(async move {
            let _ = l.accept().await; // waits forever
        });
        spawn_local(async move {
            let mut s = s;
            let _ = s.read(&mut [0u8; 16]).await; // waits forever
        });
        let big = pattern(8 << 20);
        // Fill the socket buffers and the queue; the peer never reads.
        let _ = timeout(Duration::from_millis(50), c.write_all(&big)).await;
        spawn_local(async move {
            let _ = c.write_all(&big).await;
        });
        sleep(Duration::from_millis(5)).await;
    });
    rt.close().expect("runtime closes cleanly with socket operations in flight");
}

#[test]
fn no_net_simulation_falls_back_to_the_epoll_code() {
    let _env = env_lock();
    // First, the ring: a socket taken over from std is made blocking (the ring polls it itself).
    let Some(rt) = ring_runtime() else { return };
    rt.block_on(async {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let fd = std_listener.as_raw_fd();
        let listener = TcpListener::from_std(std_listener).unwrap();
        assert!(!nonblocking(fd), "a listener under io_uring runs on the ring");
        let addr = listener.local_addr().unwrap();
        let std_client = std::net::TcpStream::connect(addr).unwrap();
        std_client.set_nonblocking(true).unwrap();
        let fd = std_client.as_raw_fd();
        let mut c = TcpStream::from_std(std_client).unwrap();
        assert!(!nonblocking(fd), "a stream under io_uring runs on the ring");
        let (mut s, _) = listener.accept().await.unwrap();
        c.write_all(b"ring").await.unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ring");
    });
    rt.close().unwrap();

    // Then NO_NET: the ring is there for files, sockets run on the epoll engine's (non-blocking) code.
    let rt = Builder::new().backend(Backend::IoUring).simulate_ring_failure("NO_NET").build();
    let rt = rt.expect("NO_NET only disables ring networking");
    assert_eq!(rt.backend(), Backend::IoUring);
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let std_client = std::net::TcpStream::connect(addr).unwrap();
        let fd = std_client.as_raw_fd();
        let mut c = TcpStream::from_std(std_client).unwrap();
        assert!(nonblocking(fd), "without ring networking, streams use the epoll code");
        let (mut s, _) = listener.accept().await.unwrap();
        let data = pattern(1 << 20);
        let sent = data.clone();
        let writer = spawn_local(async move {
            c.write_all(&sent).await.unwrap();
            c.close().await.unwrap();
        });
        assert_eq!(read_all(&mut s).await, data);
        writer.await.unwrap();
        // Connect and Unix sockets too.
        spawn_echo(listener);
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"fallback").await.unwrap();
        let mut buf = [0u8; 8];
        c.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"fallback");
        let (mut a, mut b) = UnixStream::pair().unwrap();
        a.write_all(b"unix").await.unwrap();
        let mut buf = [0u8; 4];
        b.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"unix");
    });
    rt.close().expect("runtime closes cleanly");
}

#[test]
fn tiny_ring_and_sqpoll_carry_many_connections() {
    use uvio::linux::BuilderExt;
    let _env = env_lock();
    // A 4-entry ring (entries backlog when it is full), then the same with SQPOLL where the kernel allows it.
    for sqpoll in [None, Some(Duration::from_millis(1))] {
        let built = Builder::new().backend(Backend::IoUring).io_uring_entries(4).io_uring_sqpoll(sqpoll).build();
        let rt = match built {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("note: skipping ring {sqpoll:?}: {e}");
                continue;
            }
        };
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            spawn_echo(listener);
            let tasks: Vec<_> = (0..64u32)
                .map(|i| {
                    spawn_local(async move {
                        let mut c = TcpStream::connect(addr).await.unwrap();
                        let msg = pattern(5000 + i as usize);
                        c.write_all(&msg).await.unwrap();
                        let mut back = vec![0u8; msg.len()];
                        c.read_exact(&mut back).await.unwrap();
                        assert_eq!(back, msg);
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        });
        rt.close().expect("runtime closes cleanly");
    }
}
