//! `net::TcpSocket` on every engine: options set before `listen` and `connect` hold on the listener and the
//! stream, the backlog asked for is the one listened with, a client may bind its own address, and errors
//! (refused, address in use) are errors.

mod common;

use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use uvio::net::TcpSocket;

rt_test! {
    async fn options_before_listen_and_connect_hold_and_bytes_flow() {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        assert!(socket.reuseaddr().unwrap());
        socket.set_recv_buffer_size(64 * 1024).unwrap();
        assert!(socket.recv_buffer_size().unwrap() >= 64 * 1024);
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = socket.local_addr().unwrap();
        let listener = socket.listen(16).unwrap();
        assert_eq!(listener.local_addr().unwrap(), addr);

        // A client with its own local address and options set before the handshake.
        let client = TcpSocket::new_v4().unwrap();
        client.set_nodelay(true).unwrap();
        client.set_linger(Some(Duration::from_secs(3))).unwrap();
        client.set_send_buffer_size(32 * 1024).unwrap();
        client.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let client_addr = client.local_addr().unwrap();
        let mut stream = client.connect(addr).await.unwrap();
        assert_eq!(stream.local_addr().unwrap(), client_addr, "the bound address is the one connected from");
        assert!(stream.nodelay().unwrap(), "options set before connect stay");
        assert_eq!(stream.linger().unwrap(), Some(Duration::from_secs(3)));
        stream.set_ttl(42).unwrap();
        assert_eq!(stream.ttl().unwrap(), 42);

        let (mut conn, peer) = listener.accept().await.unwrap();
        assert_eq!(peer, client_addr);
        stream.write_all(b"over a TcpSocket").await.unwrap();
        stream.close().await.unwrap();
        let mut got = Vec::new();
        conn.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"over a TcpSocket");
    }
}

rt_test! {
    async fn refused_and_address_in_use_are_errors() {
        // A port nobody listens on: bind one, then close it.
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = probe.local_addr().unwrap();
        drop(probe);
        let err = TcpSocket::new_v4().unwrap().connect(addr).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err:?}");

        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let err = TcpSocket::new_v4().unwrap().bind(held.local_addr().unwrap()).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err:?}");
    }
}

#[cfg(target_os = "linux")]
rt_test! {
    async fn reuseport_lets_two_listeners_share_a_port() {
        use futures::FutureExt;
        let first = TcpSocket::new_v4().unwrap();
        first.set_reuseport(true).unwrap();
        assert!(first.reuseport().unwrap());
        first.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = first.local_addr().unwrap();
        let second = TcpSocket::new_v4().unwrap();
        second.set_reuseport(true).unwrap();
        second.bind(addr).unwrap();
        let (a, b) = (first.listen(8).unwrap(), second.listen(8).unwrap());
        // Connections land on one or the other; each is served.
        for _ in 0..8 {
            let _client = uvio::net::TcpStream::connect(addr).await.unwrap();
            futures::select! {
                r = a.accept().fuse() => { r.unwrap(); }
                r = b.accept().fuse() => { r.unwrap(); }
            }
        }
    }
}

rt_test! {
    async fn ipv6_loopback_when_the_machine_has_it() {
        let Ok(listener) = uvio::net::TcpListener::bind("[::1]:0").await else {
            eprintln!("no IPv6 loopback here");
            return;
        };
        let client = TcpSocket::new_v6().unwrap();
        let stream = client.connect(listener.local_addr().unwrap()).await.unwrap();
        assert!(stream.peer_addr().unwrap().is_ipv6());
    }
}
