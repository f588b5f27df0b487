//! Bad input through the public API, on every engine (`rt_test!`): NUL bytes and invalid UTF-8 in paths,
//! malformed addresses, zero-length and multi-GiB buffers, ports 0 and 65535, use after shutdown. Each gives a
//! clear error or a documented result, never UB, a hang, a panic or an abort.
#![cfg(unix)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::time::Duration;

use common::TempDir;
use futures::{AsyncReadExt, AsyncWriteExt};
use uvio::net::{TcpListener, TcpStream, UdpSocket};

fn assert_invalid_input<T: std::fmt::Debug>(what: &str, res: std::io::Result<T>) {
    match res {
        Err(e) if e.kind() == ErrorKind::InvalidInput => {}
        other => panic!("{what}: expected InvalidInput, got {other:?}"),
    }
}

rt_test! {
    async fn nul_bytes_in_paths_are_invalid_input() {
        use uvio::fs;
        let dir = TempDir::new("bad-nul");
        let ok = dir.path().join("ok");
        fs::write(&ok, b"x").await.unwrap();
        let bad = dir.path().join("a\0b");
        assert_invalid_input("File::open", fs::File::open(&bad).await);
        assert_invalid_input("File::create", fs::File::create(&bad).await);
        assert_invalid_input("OpenOptions::open", fs::OpenOptions::new().read(true).open(&bad).await);
        assert_invalid_input("read", fs::read(&bad).await);
        assert_invalid_input("read_to_string", fs::read_to_string(&bad).await);
        assert_invalid_input("write", fs::write(&bad, b"x").await);
        assert_invalid_input("metadata", fs::metadata(&bad).await);
        assert_invalid_input("symlink_metadata", fs::symlink_metadata(&bad).await);
        assert_invalid_input("remove_file", fs::remove_file(&bad).await);
        assert_invalid_input("create_dir", fs::create_dir(&bad).await);
        assert_invalid_input("create_dir_all", fs::create_dir_all(&bad).await);
        assert_invalid_input("remove_dir", fs::remove_dir(&bad).await);
        assert_invalid_input("read_dir", fs::read_dir(&bad).await);
        assert_invalid_input("canonicalize", fs::canonicalize(&bad).await);
        assert_invalid_input("read_link", fs::read_link(&bad).await);
        assert_invalid_input("try_exists", fs::try_exists(&bad).await);
        assert_invalid_input("rename from", fs::rename(&bad, &ok).await);
        assert_invalid_input("rename to", fs::rename(&ok, &bad).await);
        assert_invalid_input("copy from", fs::copy(&bad, &ok).await);
        assert_invalid_input("copy to", fs::copy(&ok, &bad).await);
        assert_invalid_input("hard_link", fs::hard_link(&ok, &bad).await);
        assert_invalid_input("symlink", fs::symlink(&ok, &bad).await);
        let perm = fs::metadata(&ok).await.unwrap().permissions();
        assert_invalid_input("set_permissions", fs::set_permissions(&bad, perm).await);
        assert_eq!(fs::read(&ok).await.unwrap(), b"x", "nothing else was touched");

        assert_invalid_input("UnixListener::bind", uvio::net::UnixListener::bind(&bad));
        assert_invalid_input("UnixStream::connect", uvio::net::UnixStream::connect(&bad).await);
        use uvio::process::Command;
        assert_invalid_input("Command::new", Command::new("ec\0ho").spawn());
        assert_invalid_input("Command::arg", Command::new("echo").arg("a\0b").spawn());
        assert_invalid_input("Command::env key", Command::new("true").env("A\0", "1").spawn());
        assert_invalid_input("Command::env value", Command::new("true").env("A", "1\0").spawn());
        assert_invalid_input("Command::current_dir", Command::new("true").current_dir(&bad).spawn());
    }
}

rt_test! {
    async fn invalid_utf8_file_names_round_trip() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let dir = TempDir::new("bad-utf8");
        let name = OsStr::from_bytes(b"caf\xe9-\xff\xfe.txt");
        let path = dir.path().join(name);
        uvio::fs::write(&path, b"latin-1 name").await.unwrap();
        assert_eq!(uvio::fs::read(&path).await.unwrap(), b"latin-1 name");
        assert_eq!(uvio::fs::metadata(&path).await.unwrap().len(), 12);
        let mut entries = uvio::fs::read_dir(dir.path()).await.unwrap();
        let entry = entries.next_entry().await.unwrap().expect("one entry");
        assert_eq!(entry.file_name(), name, "the bytes of the name come back as they were");
        assert!(entries.next_entry().await.unwrap().is_none());
        let renamed = dir.path().join(OsStr::from_bytes(b"\x80\x81"));
        uvio::fs::rename(&path, &renamed).await.unwrap();
        assert_eq!(std::fs::read(&renamed).unwrap(), b"latin-1 name");
    }
}

rt_test! {
    async fn malformed_addresses_are_invalid_input() {
        for bad in ["no-port-here", "127.0.0.1:99999", "127.0.0.1:-1", "127.0.0.1:", ":80x", ""] {
            assert_invalid_input(bad, TcpStream::connect(bad).await.map(|_| ()));
            assert_invalid_input(bad, TcpListener::bind(bad).await.map(|_| ()));
            assert_invalid_input(bad, UdpSocket::bind(bad).await.map(|_| ()));
        }
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        assert_invalid_input("send_to", udp.send_to(b"x", "nowhere").await);
        // A host name with a NUL byte never reaches the resolver.
        assert!(TcpStream::connect(("local\0host", 80)).await.is_err());
        assert!(uvio::net::lookup_host(("local\0host", 80)).await.is_err());
    }
}

rt_test! {
    async fn unresolvable_names_are_errors() {
        // A 70-byte label cannot be put in a DNS query (RFC 1035: 63 at most), so the resolver fails it without
        // sending anything: the test stays on this machine.
        let name = format!("{}.invalid", "a".repeat(70));
        let with_port = format!("{name}:80");
        let lookup = uvio::net::lookup_host(with_port.as_str()).await.map(|a| a.collect::<Vec<_>>());
        assert!(lookup.is_err(), "lookup_host({name}) gave {lookup:?}");
        assert!(TcpStream::connect(with_port.as_str()).await.is_err());
        assert!(TcpStream::connect((name.as_str(), 80)).await.is_err());
        assert!(TcpListener::bind(with_port.as_str()).await.is_err());
        assert!(UdpSocket::bind(with_port.as_str()).await.is_err());
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        assert!(udp.send_to(b"x", with_port.as_str()).await.is_err());
        // The error says what failed, in one line a user can act on.
        let err = TcpStream::connect(with_port.as_str()).await.unwrap_err();
        assert!(!err.to_string().is_empty());
    }
}

rt_test! {
    async fn ports_zero_and_65535() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        assert_ne!(listener.local_addr().unwrap().port(), 0, "port 0 means an ephemeral port");
        match TcpListener::bind("127.0.0.1:65535").await {
            Ok(l) => assert_eq!(l.local_addr().unwrap().port(), 65535),
            Err(e) => assert_eq!(e.kind(), ErrorKind::AddrInUse),
        }
        assert!(TcpStream::connect("127.0.0.1:0").await.is_err(), "nothing listens on port 0");
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        assert!(udp.send_to(b"x", "127.0.0.1:0").await.is_err(), "no datagram goes to port 0");
    }
}

rt_test! {
    async fn zero_length_buffers() {
        let (mut ours, mut peer) = common::tcp_pair().await;
        assert_eq!(ours.write(&[]).await.unwrap(), 0);
        peer.write_all(b"data").unwrap();
        assert_eq!(ours.read(&mut []).await.unwrap(), 0, "an empty read returns at once");
        let mut got = [0u8; 4];
        ours.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"data", "the empty read consumed nothing");

        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        assert_eq!(a.send_to(&[], b.local_addr().unwrap()).await.unwrap(), 0);
        let (n, from) = b.recv_from(&mut [0u8; 8]).await.unwrap();
        assert_eq!((n, from), (0, a.local_addr().unwrap()), "an empty datagram arrives as one");

        let dir = TempDir::new("bad-zero");
        let path = dir.path().join("f");
        uvio::fs::write(&path, b"").await.unwrap();
        let file = uvio::fs::OpenOptions::new().read(true).write(true).open(&path).await.unwrap();
        let (res, _) = file.write_at(Vec::new(), 0).await;
        assert_eq!(res.unwrap(), 0);
        let (res, _) = file.read_at(Vec::new(), 0).await;
        assert_eq!(res.unwrap(), 0);
    }
}

/// A buffer of `len` zero bytes that costs no memory until touched (calloc maps zero pages lazily).
fn huge(len: usize) -> Vec<u8> {
    vec![0u8; len]
}

const GIB: usize = 1 << 30;

rt_test! {
    async fn a_read_into_a_4_gib_buffer() {
        // What is there arrives; nothing wraps at 32 bits.
        let (mut ours, mut peer) = common::tcp_pair().await;
        peer.write_all(b"small").unwrap();
        let mut big = huge(4 * GIB);
        let n = ours.read(&mut big).await.unwrap();
        assert_eq!(&big[..n], &b"small"[..n]);
    }
}

rt_test! {
    async fn a_write_of_4_gib_takes_a_bounded_part() {
        // Exactly 4 GiB is 0 in 32 bits: the write must take a non-zero part, and report exactly what it took.
        let (mut ours, mut peer) = common::tcp_pair().await;
        let writer = {
            let big = huge(4 * GIB);
            uvio::spawn_local(async move { uvio::time::timeout(Duration::from_secs(10), ours.write(&big)).await })
        };
        let reader = std::thread::spawn(move || {
            let mut sink = vec![0u8; 1 << 20];
            let mut total = 0;
            while let Ok(n @ 1..) = peer.read(&mut sink) {
                total += n;
            }
            total
        });
        let n = writer.await.unwrap().expect("write returns").unwrap();
        assert!(n > 0 && n < 4 * GIB, "a 4 GiB write takes part of it: {n}");
        // Joined off the loop thread: the loop must keep running to send what the engine queued.
        let total = uvio::task::spawn_blocking(move || reader.join().unwrap()).await.unwrap();
        assert_eq!(total, n, "exactly what write reported reaches the peer");
    }
}

rt_test! {
    async fn a_4_gib_datagram_is_an_error() {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let target = udp.local_addr().unwrap();
        assert!(udp.send_to(&huge(4 * GIB), target).await.is_err(), "too big for UDP, not truncated");
    }
}

rt_test! {
    async fn positional_file_io_with_4_gib() {
        let dir = TempDir::new("bad-huge");
        let path = dir.path().join("f");
        uvio::fs::write(&path, b"tiny file").await.unwrap();
        let file = uvio::fs::File::open(&path).await.unwrap();
        let (res, buf) = file.read_at(Vec::with_capacity(4 * GIB), 0).await;
        assert_eq!(res.unwrap(), 9);
        assert_eq!(buf, b"tiny file");
        drop(buf);
        let null = uvio::fs::OpenOptions::new().write(true).open("/dev/null").await.unwrap();
        let (res, _) = null.write_at(huge(4 * GIB), 0).await;
        let n = res.unwrap();
        assert!(n > 0 && n <= 4 * GIB, "a 4 GiB write to /dev/null reports a non-zero count: {n}");
    }
}

rt_test! {
    async fn use_after_shutdown_and_end_of_stream() {
        let (mut ours, mut peer) = common::tcp_pair().await;
        ours.write_all(b"bye").await.unwrap();
        ours.shutdown().await.unwrap();
        let err = ours.write_all(b"more").await.expect_err("no write after shutdown");
        assert!(matches!(err.kind(), ErrorKind::BrokenPipe | ErrorKind::NotConnected), "{err:?}");
        let _ = ours.shutdown().await; // a second shutdown is an error or a no-op, never a panic
        let mut got = Vec::new();
        peer.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"bye", "nothing written after the shutdown reached the peer");
        drop(peer);
        assert_eq!(ours.read(&mut [0u8; 4]).await.unwrap(), 0);
        assert_eq!(ours.read(&mut [0u8; 4]).await.unwrap(), 0, "end of stream stays end of stream");

        let (ours, _peer) = common::tcp_pair().await;
        let (_r, mut w) = ours.into_split();
        w.close().await.unwrap();
        assert!(w.write_all(b"x").await.is_err(), "the write half refuses writes after close");

        let task = uvio::spawn_local(uvio::time::sleep(Duration::from_secs(60)));
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
    }
}
