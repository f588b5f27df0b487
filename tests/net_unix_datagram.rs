//! Async Unix datagram sockets on every engine: pairs, bound paths and senders, truncation, a gone peer,
//! unbound senders, address errors.
#![cfg(unix)]

mod common;

use std::io::ErrorKind;
use std::time::Duration;

use common::TempDir;
use uvio::net::UnixDatagram;
use uvio::spawn_local;
use uvio::time::timeout;

const QUIET: Duration = Duration::from_millis(50);
const SOON: Duration = Duration::from_secs(10);

rt_test! {
    async fn pair_round_trip() {
        let (a, b) = UnixDatagram::pair().unwrap();
        let mut buf = [0u8; 32];
        let waiter = spawn_local(async move {
            let mut buf = [0u8; 32];
            let n = b.recv(&mut buf).await.unwrap(); // waits: nothing sent yet
            b.send(&buf[..n]).await.unwrap();
            b
        });
        uvio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(a.send(b"ping").await.unwrap(), 4);
        assert_eq!(timeout(SOON, a.recv(&mut buf)).await.unwrap().unwrap(), 4);
        assert_eq!(&buf[..4], b"ping");
        let b = waiter.await.unwrap();
        assert!(a.peer_addr().unwrap().is_unnamed());
        assert!(b.local_addr().unwrap().is_unnamed());
        // Datagrams keep their boundaries.
        a.send(b"one").await.unwrap();
        a.send(b"two!").await.unwrap();
        assert_eq!(b.recv(&mut buf).await.unwrap(), 3);
        assert_eq!(b.recv(&mut buf).await.unwrap(), 4);
        assert_eq!(b.try_recv(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
    }
}

rt_test! {
    fn bind_send_to_recv_from_with_the_senders_path() {
        let dir = TempDir::new("udgram-bind");
        let (pa, pb) = (dir.path().join("a.sock"), dir.path().join("b.sock"));
        run(async {
            let a = UnixDatagram::bind(&pa).unwrap();
            let b = UnixDatagram::bind(&pb).unwrap();
            assert_eq!(a.local_addr().unwrap().as_pathname(), Some(pa.as_path()));
            assert_eq!(a.send_to(b"hello", &pb).await.unwrap(), 5);
            let mut buf = [0u8; 16];
            let (n, from) = timeout(SOON, b.recv_from(&mut buf)).await.unwrap().unwrap();
            assert_eq!(&buf[..n], b"hello");
            assert_eq!(from.as_pathname(), Some(pa.as_path()));
            // Connected: send/recv, and the peer's address.
            b.connect(&pa).unwrap();
            assert_eq!(b.peer_addr().unwrap().as_pathname(), Some(pa.as_path()));
            b.send(b"back").await.unwrap();
            let (n, from) = a.recv_from(&mut buf).await.unwrap();
            assert_eq!((&buf[..n], from.as_pathname()), (&b"back"[..], Some(pb.as_path())));
            assert_eq!(UnixDatagram::bind(&pa).unwrap_err().kind(), ErrorKind::AddrInUse);
        });
    }
}

rt_test! {
    async fn a_datagram_longer_than_the_buffer_is_truncated() {
        let (a, b) = UnixDatagram::pair().unwrap();
        a.send(&[9u8; 100]).await.unwrap();
        a.send(b"next").await.unwrap();
        let mut small = [0u8; 10];
        assert_eq!(b.recv(&mut small).await.unwrap(), 10, "truncated to the buffer");
        assert_eq!(small, [9u8; 10]);
        let mut buf = [0u8; 16];
        assert_eq!(b.recv(&mut buf).await.unwrap(), 4, "the rest was discarded, not kept for the next receive");
        assert_eq!(&buf[..4], b"next");
    }
}

rt_test! {
    async fn peer_gone() {
        let (a, b) = UnixDatagram::pair().unwrap();
        a.send(b"last words").await.unwrap();
        drop(a);
        let mut buf = [0u8; 16];
        // What was sent before the peer left is still received; then nothing comes (no end-of-stream for
        // datagrams): a receive waits.
        assert_eq!(b.recv(&mut buf).await.unwrap(), 10);
        assert!(timeout(QUIET, b.recv(&mut buf)).await.is_err(), "no datagram, no error: it waits");
        // Sending to the gone peer fails.
        let err = b.send(b"anyone?").await.unwrap_err();
        assert!(
            matches!(err.kind(), ErrorKind::ConnectionRefused | ErrorKind::BrokenPipe | ErrorKind::NotConnected),
            "{err:?}"
        );
    }
}

rt_test! {
    fn unbound_send_to() {
        let dir = TempDir::new("udgram-unbound");
        let path = dir.path().join("server.sock");
        run(async {
            let server = UnixDatagram::bind(&path).unwrap();
            let client = UnixDatagram::unbound().unwrap();
            assert!(client.local_addr().unwrap().is_unnamed());
            assert_eq!(client.send_to(b"hi", &path).await.unwrap(), 2);
            let mut buf = [0u8; 8];
            let (n, from) = server.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"hi");
            assert!(from.is_unnamed(), "an unbound sender has no address: {from:?}");
            // Nobody at that path.
            let err = client.send_to(b"x", dir.path().join("nobody.sock")).await.unwrap_err();
            assert!(matches!(err.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused), "{err:?}");
            assert_eq!(client.peer_addr().unwrap_err().kind(), ErrorKind::NotConnected);
        });
    }
}

rt_test! {
    fn long_and_bad_paths_are_errors() {
        let dir = TempDir::new("udgram-paths");
        let long = dir.path().join("x".repeat(120));
        run(async {
            assert_eq!(UnixDatagram::bind(&long).unwrap_err().kind(), ErrorKind::InvalidInput);
            let s = UnixDatagram::unbound().unwrap();
            assert_eq!(s.send_to(b"x", &long).await.unwrap_err().kind(), ErrorKind::InvalidInput);
            assert_eq!(s.connect(&long).unwrap_err().kind(), ErrorKind::InvalidInput);
            assert_eq!(UnixDatagram::bind("a\0b").unwrap_err().kind(), ErrorKind::InvalidInput);
        });
    }
}

rt_test! {
    async fn std_round_trip_and_many_waiters() {
        let (a, b) = std::os::unix::net::UnixDatagram::pair().unwrap();
        let a = UnixDatagram::from_std(a).unwrap();
        let b = std::rc::Rc::new(UnixDatagram::from_std(b).unwrap());
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let b = b.clone();
                spawn_local(async move {
                    let mut buf = [0u8; 8];
                    b.recv(&mut buf).await.unwrap()
                })
            })
            .collect();
        uvio::time::sleep(Duration::from_millis(5)).await;
        for _ in 0..3 {
            a.send(b"abc").await.unwrap();
        }
        for t in tasks {
            assert_eq!(timeout(SOON, t).await.unwrap().unwrap(), 3);
        }
        let a = a.into_std().unwrap();
        a.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
        let mut buf = [0u8; 4];
        assert!(a.recv(&mut buf).is_err(), "blocking again: the read timed out");
    }
}
