//! Async Unix socket tests: echo over a path in a temporary directory, socket files (who removes them), path
//! errors, pairs, peer credentials; and, through `stream_kind_tests!`, every test TCP streams share (large
//! transfers, half-close, split halves, cancelled accepts/reads/connects, drop with queued writes, std hand-overs).
#![cfg(unix)]

mod common;

use std::io::ErrorKind;
use std::path::PathBuf;
use std::time::Duration;

use common::streams::{StreamKind, Unix};
use common::TempDir;
use futures::{AsyncReadExt, AsyncWriteExt};
use uvio::net::{UnixListener, UnixStream};
use uvio::spawn_local;
use uvio::time::sleep;

stream_kind_tests!(Unix);

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
            assert!(format!("{c:?}").contains("s.sock"), "a stream shows its peer's path: {c:?}");
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
    async fn a_pair_is_connected_both_ways() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        a.write_all(b"paired").await.unwrap();
        let mut buf = [0u8; 6];
        b.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"paired");
        b.write_all(b"back").await.unwrap();
        a.read_exact(&mut buf[..4]).await.unwrap();
        assert_eq!(&buf[..4], b"back");
        drop(a);
        assert_eq!(b.read(&mut buf).await.unwrap(), 0, "EOF once the other end is gone");
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
        Unix::spawn_echo(first);
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
