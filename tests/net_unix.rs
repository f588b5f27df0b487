//! Async Unix socket tests: echo over a path in a temporary directory, large transfers, half-close, split
//! halves, cancelled accepts/reads/connects, drop with queued writes, path errors.
#![cfg(unix)]

mod common;

use std::io::ErrorKind;
use std::path::PathBuf;
use std::time::Duration;

use common::{accepted_ahead_by, client_ids, spawn_unix_echo, TempDir};
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use uvio::net::{UnixListener, UnixStream};
use uvio::spawn_local;
use uvio::time::{sleep, timeout};

/// A socket path inside `dir`.
fn sock(dir: &TempDir) -> PathBuf {
    dir.path().join("s.sock")
}

rt_test! {
    fn echo_over_a_socket_path() {
        let dir = TempDir::new("unix-echo");
        let path = sock(&dir);
        run(async {
            let listener = UnixListener::bind(&path).unwrap();
            assert_eq!(listener.local_addr().unwrap().as_pathname(), Some(path.as_path()));
            let server = spawn_local(async move {
                let (mut conn, peer) = listener.accept().await.unwrap();
                assert!(peer.is_unnamed(), "the connecting end is unnamed: {peer:?}");
                let mut buf = [0u8; 10];
                conn.read_exact(&mut buf).await.unwrap();
                conn.write_all(&buf).await.unwrap();
                listener // keep it (and its socket file) until the test is done
            });
            let mut c = UnixStream::connect(&path).await.unwrap();
            assert_eq!(c.peer_addr().unwrap().as_pathname(), Some(path.as_path()));
            assert!(c.local_addr().unwrap().is_unnamed());
            c.write_all(b"hello unix").await.unwrap();
            let mut back = [0u8; 10];
            c.read_exact(&mut back).await.unwrap();
            assert_eq!(&back, b"hello unix");
            assert!(path.exists());
            drop(server.await.unwrap());
        });
        assert!(!path.exists(), "the listener removes the socket file it bound when it closes");
    }
}

rt_test! {
    async fn large_transfer_is_byte_exact() {
        let dir = TempDir::new("unix-large");
        let listener = UnixListener::bind(sock(&dir)).unwrap();
        let c = UnixStream::connect(sock(&dir));
        spawn_unix_echo(listener);
        let c = c.await.unwrap();
        let data: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        let (mut r, mut w) = c.into_split();
        let expected = data.clone();
        let reader = spawn_local(async move {
            // read_exact into a zeroed buffer, not read_to_end: futures' read_to_end zero-fills its spare room
            // byte by byte, which dominates this test in debug builds and under valgrind.
            let mut got = vec![0u8; expected.len()];
            r.read_exact(&mut got).await.unwrap();
            let eof = r.read(&mut [0u8; 1]).await.unwrap() == 0;
            got == expected && eof
        });
        w.write_all(&data).await.unwrap();
        w.close().await.unwrap(); // half-close: the echo server sees EOF and closes its side
        assert!(reader.await.unwrap(), "echoed bytes differ");
    }
}

rt_test! {
    async fn shutdown_makes_the_peer_read_eof_while_reading_continues() {
        let dir = TempDir::new("unix-half");
        let listener = UnixListener::bind(sock(&dir)).unwrap();
        let server = spawn_local(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut all = Vec::new();
            conn.read_to_end(&mut all).await.unwrap(); // ends at the client's shutdown
            conn.write_all(b"bye").await.unwrap();
            all
        });
        let mut c = UnixStream::connect(sock(&dir)).await.unwrap();
        c.write_all(b"request").await.unwrap();
        c.shutdown().await.unwrap();
        assert!(c.write_all(b"more").await.is_err(), "writing after shutdown is an error");
        let mut reply = Vec::new();
        c.read_to_end(&mut reply).await.unwrap();
        assert_eq!(reply, b"bye");
        assert_eq!(server.await.unwrap(), b"request");
    }
}

rt_test! {
    async fn split_halves_work_in_separate_tasks_and_reunite() {
        let dir = TempDir::new("unix-split");
        let listener = UnixListener::bind(sock(&dir)).unwrap();
        spawn_unix_echo(listener);
        let c = UnixStream::connect(sock(&dir)).await.unwrap();
        let (mut r, mut w) = c.into_split();
        let writer = spawn_local(async move {
            for i in 0..100u8 {
                w.write_all(&[i; 100]).await.unwrap();
            }
            w
        });
        let mut got = vec![0u8; 100 * 100];
        r.read_exact(&mut got).await.unwrap();
        assert!(got.chunks(100).enumerate().all(|(i, c)| c.iter().all(|&b| b == i as u8)));
        let w = writer.await.unwrap();
        assert_eq!(w.peer_addr().unwrap().as_pathname(), Some(sock(&dir).as_path()));
        // Halves of different streams do not reunite.
        let (r2, w2) = UnixStream::connect(sock(&dir)).await.unwrap().into_split();
        let (r, w2) = r.reunite(w2).unwrap_err();
        drop((r2, w2));
        let s = r.reunite(w).unwrap();
        assert_eq!(s.peer_addr().unwrap().as_pathname(), Some(sock(&dir).as_path()));
    }
}

rt_test! {
    async fn dropped_accept_and_read_futures_leave_things_usable() {
        let dir = TempDir::new("unix-cancel");
        let path = sock(&dir);
        let listener = UnixListener::bind(&path).unwrap();
        // An accept that times out (dropped mid-flight), then a real one.
        assert!(timeout(Duration::from_millis(5), listener.accept()).await.is_err());
        let client = spawn_local(async move { UnixStream::connect(path).await.unwrap() });
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut client = client.await.unwrap();
        // A read dropped mid-flight, then data arrives and a new read gets all of it.
        let mut buf = [0u8; 4];
        assert!(timeout(Duration::from_millis(5), conn.read(&mut buf)).await.is_err());
        client.write_all(b"late").await.unwrap();
        conn.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"late");
    }
}

rt_test! {
    async fn dropped_connect_futures_are_cancelled_cleanly() {
        let dir = TempDir::new("unix-cancel-connect");
        let path = sock(&dir);
        let listener = UnixListener::bind(&path).unwrap();
        // The server answers the first connection that says "ok"; the cancelled ones read EOF or an error.
        let server = spawn_local(async move {
            let mut skipped = 0;
            loop {
                let (mut conn, _) = listener.accept().await.unwrap();
                let mut b = [0u8; 2];
                if conn.read_exact(&mut b).await.is_ok() && &b == b"ok" {
                    conn.write_all(b"yes").await.unwrap();
                    return skipped;
                }
                skipped += 1;
            }
        });
        for _ in 0..20 {
            let mut fut = Box::pin(UnixStream::connect(&path));
            let _ = futures::poll!(fut.as_mut()); // the connect request is in flight; dropping cancels it
        }
        let mut c = UnixStream::connect(&path).await.unwrap();
        c.write_all(b"ok").await.unwrap();
        let mut reply = [0u8; 3];
        c.read_exact(&mut reply).await.unwrap();
        assert_eq!(&reply, b"yes");
        assert!(server.await.unwrap() <= 20);
    }
}

rt_test! {
    async fn connecting_to_a_missing_path_is_not_found() {
        let dir = TempDir::new("unix-missing");
        let err = UnixStream::connect(dir.path().join("nobody-here.sock")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }
}

rt_test! {
    async fn connecting_to_a_socket_nobody_listens_on_is_refused() {
        let dir = TempDir::new("unix-refused");
        let path = sock(&dir);
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap()); // std leaves the socket file behind
        let err = UnixStream::connect(&path).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
        // And binding where that file is: the address is in use.
        assert_eq!(UnixListener::bind(&path).unwrap_err().kind(), ErrorKind::AddrInUse);
    }
}

rt_test! {
    async fn bad_paths_are_invalid_input() {
        let dir = TempDir::new("unix-badpath");
        let nul = dir.path().join("a\0b.sock");
        assert_eq!(UnixStream::connect(&nul).await.unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(UnixListener::bind(&nul).unwrap_err().kind(), ErrorKind::InvalidInput);
        let long = dir.path().join("x".repeat(200));
        assert_eq!(UnixStream::connect(&long).await.unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(UnixListener::bind(&long).unwrap_err().kind(), ErrorKind::InvalidInput);
    }
}

rt_test! {
    async fn dropping_a_stream_with_queued_writes_still_delivers_them() {
        let dir = TempDir::new("unix-linger");
        let listener = UnixListener::bind(sock(&dir)).unwrap();
        let data: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| i as u8).collect();
        let expected = data.clone();
        let server = spawn_local(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            sleep(Duration::from_millis(20)).await; // let the client's writes pile up in user space
            let mut got = vec![0u8; expected.len()];
            conn.read_exact(&mut got).await.unwrap();
            got == expected && conn.read(&mut [0u8; 1]).await.unwrap() == 0
        });
        let mut c = UnixStream::connect(sock(&dir)).await.unwrap();
        // write_all returns once every byte is accepted (most of it queued in libuv), then we drop at once.
        c.write_all(&data).await.unwrap();
        drop(c);
        assert!(server.await.unwrap(), "bytes accepted by write_all were lost on drop");
    }
}

rt_test! {
    async fn incoming_stream_yields_connections() {
        let dir = TempDir::new("unix-incoming");
        let listener = UnixListener::bind(sock(&dir)).unwrap();
        let server = spawn_local(async move {
            let mut n = 0;
            let mut incoming = listener.incoming();
            while let Some(conn) = incoming.next().await {
                let mut conn = conn.unwrap();
                conn.write_all(b"!").await.unwrap();
                n += 1;
                if n == 3 {
                    break;
                }
            }
            n
        });
        for _ in 0..3 {
            let mut c = UnixStream::connect(sock(&dir)).await.unwrap();
            let mut b = [0u8; 1];
            c.read_exact(&mut b).await.unwrap();
            assert_eq!(&b, b"!");
        }
        assert_eq!(server.await.unwrap(), 3);
    }
}

rt_test! {
    async fn pair_and_std_conversions() {
        let dir = TempDir::new("unix-std");
        let (mut a, mut b) = UnixStream::pair().unwrap();
        a.write_all(b"paired").await.unwrap();
        let mut buf = [0u8; 6];
        b.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"paired");
        drop(a);
        assert_eq!(b.read(&mut buf).await.unwrap(), 0, "EOF once the other end is gone");

        let std_listener = std::os::unix::net::UnixListener::bind(sock(&dir)).unwrap();
        let listener = UnixListener::from_std(std_listener).unwrap();
        assert_eq!(listener.local_addr().unwrap().as_pathname(), Some(sock(&dir).as_path()));
        spawn_unix_echo(listener);
        let std_stream = std::os::unix::net::UnixStream::connect(sock(&dir)).unwrap();
        let mut s = UnixStream::from_std(std_stream).unwrap();
        s.write_all(b"std").await.unwrap();
        let mut b = [0u8; 3];
        s.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"std");
        assert!(format!("{s:?}").contains("s.sock"));
    }
}

rt_test! {
    async fn binding_where_a_file_exists_is_addr_in_use_and_leaves_the_file() {
        let dir = TempDir::new("unix-inuse");
        let path = sock(&dir);
        std::fs::write(&path, b"not a socket").unwrap();
        assert_eq!(UnixListener::bind(&path).unwrap_err().kind(), ErrorKind::AddrInUse);
        assert_eq!(std::fs::read(&path).unwrap(), b"not a socket", "someone else's file is left alone");
        std::fs::remove_file(&path).unwrap();
        // A live listener's socket file: the second bind fails, the first listener keeps working.
        let first = UnixListener::bind(&path).unwrap();
        assert_eq!(UnixListener::bind(&path).unwrap_err().kind(), ErrorKind::AddrInUse);
        assert!(path.exists());
        spawn_unix_echo(first);
        let mut c = UnixStream::connect(&path).await.unwrap();
        c.write_all(b"still").await.unwrap();
        let mut b = [0u8; 5];
        c.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"still");
    }
}

rt_test! {
    fn a_listener_from_std_leaves_its_socket_file() {
        let dir = TempDir::new("unix-fromstd-file");
        let path = sock(&dir);
        run(async {
            let listener = UnixListener::from_std(std::os::unix::net::UnixListener::bind(&path).unwrap()).unwrap();
            drop(listener);
        });
        assert!(path.exists(), "a file uvio did not bind is not uvio's to remove");
    }
}

rt_test! {
    fn into_std_hands_over_the_connections_accepted_ahead_and_keeps_the_socket_file() {
        use std::io::Write;
        const CLIENTS: usize = 4;
        let dir = TempDir::new("unix-intostd");
        let path = sock(&dir);
        let rt = common::rt::runtime(ENGINE);
        let expected_ahead = accepted_ahead_by(&rt, CLIENTS);
        rt.block_on(async {
            let listener = UnixListener::bind(&path).unwrap();
            // An accept that gives up leaves the engine accepting (io_uring's multishot stays armed).
            assert!(timeout(Duration::from_millis(10), listener.accept()).await.is_err());
            let clients: Vec<std::os::unix::net::UnixStream> = (0..CLIENTS as u8)
                .map(|id| {
                    let mut c = std::os::unix::net::UnixStream::connect(&path).unwrap();
                    c.write_all(&[id]).unwrap();
                    c
                })
                .collect();
            sleep(Duration::from_millis(100)).await; // the engine accepts ahead what it will
            let (std_listener, ahead) = listener.into_std().unwrap();
            let n = ahead.len();
            assert!(expected_ahead.contains(&n), "{n} accepted ahead, expected {expected_ahead:?}");
            let backlog = (ahead.len()..CLIENTS).map(|_| std_listener.accept().unwrap().0);
            let ids = client_ids(ahead.into_iter().chain(backlog));
            assert_eq!(ids, (0..CLIENTS as u8).collect::<Vec<_>>());
            assert!(path.exists(), "the socket file is the std listener's now");
            let _late = std::os::unix::net::UnixStream::connect(&path).unwrap();
            assert!(std_listener.accept().is_ok());
            drop(clients);
        });
        rt.close().expect("runtime closes cleanly");
        assert!(path.exists(), "not removed by uvio after the hand-over");
    }
}

rt_test! {
    async fn a_stream_handed_to_std_keeps_unread_bytes_and_flushes_writes() {
        let dir = TempDir::new("unix-stream-intostd");
        let path = sock(&dir);
        let listener = UnixListener::bind(&path).unwrap();
        let client = UnixStream::connect(&path).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        common::check_stream_into_std(client, server, UnixStream::into_std).await;
    }
}

/// What `peer_cred` must say about a peer that is this very process.
fn assert_is_this_process(cred: uvio::net::UCred) {
    // SAFETY: geteuid and getegid cannot fail and touch no memory.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    assert_eq!((cred.uid(), cred.gid()), (uid, gid));
    if cfg!(any(target_os = "linux", target_os = "android")) {
        assert_eq!(cred.pid(), Some(std::process::id() as i32));
    } else {
        assert_eq!(cred.pid(), None);
    }
}

rt_test! {
    async fn peer_cred_of_a_pair() {
        let (a, b) = UnixStream::pair().unwrap();
        assert_is_this_process(a.peer_cred().unwrap());
        assert_is_this_process(b.peer_cred().unwrap());
    }
}

rt_test! {
    fn peer_cred_on_both_ends_of_a_connection() {
        let dir = TempDir::new("unix-cred");
        let path = sock(&dir);
        run(async {
            let listener = UnixListener::bind(&path).unwrap();
            let (client, accepted) = futures::join!(UnixStream::connect(&path), listener.accept());
            let (client, (server, _)) = (client.unwrap(), accepted.unwrap());
            assert_is_this_process(client.peer_cred().unwrap());
            assert_is_this_process(server.peer_cred().unwrap());
            // Still answered after the peer left: the credentials were recorded at connect time.
            drop(client);
            sleep(Duration::from_millis(5)).await;
            assert_is_this_process(server.peer_cred().unwrap());
        });
    }
}
