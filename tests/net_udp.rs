//! Async UDP tests on loopback: round trips (v4, v6, connected), sender addresses, truncation, a thousand
//! datagrams byte-exact, the bounded receive queue, cancelled receives, errors and socket options.
mod common;

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::udp::{datagram, recv_from};
use uvio::net::UdpSocket;
use uvio::time::{sleep, timeout};

rt_test! {
    async fn round_trip_v4_with_sender_addresses() {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        assert!(a_addr.port() != 0 && b_addr.port() != 0);
        assert_eq!(a.send_to(b"ping", b_addr).await.unwrap(), 4);
        let mut buf = [0u8; 64];
        let (n, from) = recv_from(&b, &mut buf).await;
        assert_eq!((&buf[..n], from), (&b"ping"[..], a_addr));
        b.send_to(b"pong!", from).await.unwrap();
        let (n, from) = recv_from(&a, &mut buf).await;
        assert_eq!((&buf[..n], from), (&b"pong!"[..], b_addr));
    }
}

rt_test! {
    async fn round_trip_v6() {
        let a = match UdpSocket::bind("[::1]:0").await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("no IPv6 loopback here ({e}); skipping");
                return;
            }
        };
        let b = UdpSocket::bind("[::1]:0").await.unwrap();
        a.send_to(b"six", b.local_addr().unwrap()).await.unwrap();
        let mut buf = [0u8; 8];
        let (n, from) = recv_from(&b, &mut buf).await;
        assert_eq!(&buf[..n], b"six");
        assert_eq!(from, a.local_addr().unwrap());
        assert!(from.is_ipv6());
    }
}

rt_test! {
    async fn connected_sockets_send_and_recv() {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let third = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        assert_eq!(a.peer_addr().unwrap_err().kind(), ErrorKind::NotConnected);
        a.connect(b.local_addr().unwrap()).await.unwrap();
        b.connect(a.local_addr().unwrap()).await.unwrap();
        assert_eq!(a.peer_addr().unwrap(), b.local_addr().unwrap());
        // The OS filters a connected socket's input: a stranger's datagram never shows up.
        third.send_to(b"stranger", a.local_addr().unwrap()).await.unwrap();
        b.send(b"from b").await.unwrap();
        let mut buf = [0u8; 16];
        let n = timeout(Duration::from_secs(1), a.recv(&mut buf)).await.unwrap().unwrap();
        assert_eq!(&buf[..n], b"from b");
        a.send(b"from a").await.unwrap();
        let n = timeout(Duration::from_secs(1), b.recv(&mut buf)).await.unwrap().unwrap();
        assert_eq!(&buf[..n], b"from a");
        // Reconnecting to another peer replaces the first.
        a.connect(third.local_addr().unwrap()).await.unwrap();
        assert_eq!(a.peer_addr().unwrap(), third.local_addr().unwrap());
        a.send(b"to third").await.unwrap();
        let (n, from) = recv_from(&third, &mut buf).await;
        assert_eq!((&buf[..n], from), (&b"to third"[..], a.local_addr().unwrap()));
    }
}

rt_test! {
    async fn recv_from_tells_senders_apart() {
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = rx.local_addr().unwrap();
        let senders: Vec<UdpSocket> = {
            let mut v = Vec::new();
            for _ in 0..3 {
                v.push(UdpSocket::bind("127.0.0.1:0").await.unwrap());
            }
            v
        };
        for (i, s) in senders.iter().enumerate() {
            s.send_to(&[i as u8; 3], to).await.unwrap();
        }
        let mut buf = [0u8; 8];
        for _ in 0..3 {
            let (n, from) = recv_from(&rx, &mut buf).await;
            assert_eq!(n, 3);
            let i = buf[0] as usize;
            assert_eq!(from, senders[i].local_addr().unwrap(), "datagram {i} from the wrong address");
        }
    }
}

rt_test! {
    async fn a_small_buffer_truncates_like_std() {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = b.local_addr().unwrap();
        let big: Vec<u8> = (0..100u8).collect();
        a.send_to(&big, to).await.unwrap();
        a.send_to(b"next", to).await.unwrap();
        a.send_to(b"", to).await.unwrap();
        let mut small = [0u8; 10];
        let (n, _) = recv_from(&b, &mut small).await;
        assert_eq!((n, &small[..]), (10, &big[..10]), "the rest of the datagram is discarded");
        let mut buf = [0u8; 100];
        let (n, _) = recv_from(&b, &mut buf).await;
        assert_eq!(&buf[..n], b"next", "the next datagram is whole");
        let (n, _) = recv_from(&b, &mut buf).await;
        assert_eq!(n, 0, "an empty datagram is a datagram");
        // An empty buffer takes a datagram and copies nothing of it.
        a.send_to(b"gone", to).await.unwrap();
        assert_eq!(recv_from(&b, &mut []).await.0, 0);
    }
}

rt_test! {
    async fn a_thousand_datagrams_in_windows_of_50_arrive_byte_exact() {
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        tx.connect(rx.local_addr().unwrap()).await.unwrap();
        let mut buf = vec![0u8; 2048];
        for window in 0..20u32 {
            for i in window * 50..(window + 1) * 50 {
                tx.send(&datagram(i)).await.unwrap();
            }
            for i in window * 50..(window + 1) * 50 {
                let (n, from) = recv_from(&rx, &mut buf).await;
                assert_eq!(from, tx.local_addr().unwrap());
                assert!(buf[..n] == datagram(i)[..], "datagram {i} differs");
            }
        }
    }
}

rt_test! {
    async fn a_full_queue_pauses_receiving_without_losing_datagrams() {
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = rx.local_addr().unwrap();
        // Start receiving, then send more than the queue holds (256) while nobody reads: the socket keeps
        // receiving until the queue is full, then leaves the rest in the kernel's buffer.
        assert_eq!(rx.try_recv(&mut [0u8; 8]).unwrap_err().kind(), ErrorKind::WouldBlock);
        for window in 0..3u32 {
            for i in window * 100..(window + 1) * 100 {
                tx.send_to(&i.to_le_bytes(), to).await.unwrap();
            }
            sleep(Duration::from_millis(10)).await;
        }
        let mut buf = [0u8; 8];
        for i in 0..300u32 {
            let (n, _) = recv_from(&rx, &mut buf).await;
            assert_eq!(&buf[..n], &i.to_le_bytes(), "datagram {i} out of order or lost");
        }
        assert_eq!(rx.try_recv(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
    }
}

rt_test! {
    async fn a_dropped_recv_future_loses_nothing() {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = b.local_addr().unwrap();
        let mut buf = [0u8; 16];
        // Dropped by a timeout while waiting…
        assert!(timeout(Duration::from_millis(5), b.recv_from(&mut buf)).await.is_err());
        // …and dropped after one poll, just before datagrams arrive.
        {
            let mut fut = Box::pin(b.recv(&mut buf));
            assert!(futures::poll!(fut.as_mut()).is_pending());
        }
        a.send_to(b"one", to).await.unwrap();
        a.send_to(b"two", to).await.unwrap();
        sleep(Duration::from_millis(5)).await;
        let (n, _) = recv_from(&b, &mut buf).await;
        assert_eq!(&buf[..n], b"one");
        let (n, _) = recv_from(&b, &mut buf).await;
        assert_eq!(&buf[..n], b"two");
    }
}

rt_test! {
    async fn two_tasks_receiving_on_one_socket_both_get_a_datagram() {
        common::udp::check_waiting_receivers_each_get_a_datagram(2).await;
    }
}

rt_test! {
    async fn sending_to_a_closed_port_on_a_connected_socket_errors_or_stays_silent() {
        let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        s.connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await.unwrap();
        // The ICMP "port unreachable" comes back as ECONNREFUSED on a later send or receive (Linux and macOS);
        // some systems drop it. Either outcome is fine; a hang or a panic is not.
        let mut saw = None;
        for _ in 0..5 {
            if let Err(e) = s.send(b"anyone?").await {
                saw = Some(e);
                break;
            }
            match timeout(Duration::from_millis(20), s.recv(&mut [0u8; 8])).await {
                Ok(Err(e)) => {
                    saw = Some(e);
                    break;
                }
                Ok(Ok(n)) => panic!("received {n} bytes from a closed port"),
                Err(_) => {}
            }
        }
        if let Some(e) = saw {
            assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
        }
        // The socket still works after the error, connected elsewhere.
        let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        s.connect(peer.local_addr().unwrap()).await.unwrap();
        s.send(b"ok").await.unwrap();
        let mut buf = [0u8; 4];
        let (n, from) = recv_from(&peer, &mut buf).await;
        assert_eq!((&buf[..n], from), (&b"ok"[..], s.local_addr().unwrap()));
    }
}

rt_test! {
    async fn bind_in_use_is_addr_in_use() {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let err = UdpSocket::bind(a.local_addr().unwrap()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AddrInUse);
        assert!(UdpSocket::bind("300.1.1.1:0").await.is_err());
        assert!(UdpSocket::bind("no-port").await.is_err());
    }
}

rt_test! {
    async fn misdirected_sends_are_errors() {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        // Not connected: `send` has nowhere to go.
        assert!(a.send(b"x").await.is_err());
        a.connect(b.local_addr().unwrap()).await.unwrap();
        // Connected: `send_to` is refused by libuv (EISCONN).
        assert!(a.send_to(b"x", b.local_addr().unwrap()).await.is_err());
        assert_eq!(a.send_to(b"x", "bad address").await.unwrap_err().kind(), ErrorKind::InvalidInput);
        // Still fine for proper sends.
        assert_eq!(a.try_send(b"try").unwrap(), 3);
        let mut buf = [0u8; 4];
        let (n, _) = recv_from(&b, &mut buf).await;
        assert_eq!(&buf[..n], b"try");
    }
}

rt_test! {
    async fn poll_send_and_try_send_to_deliver() {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = b.local_addr().unwrap();
        let n = std::future::poll_fn(|cx| a.poll_send_to(cx, b"polled", to)).await.unwrap();
        assert_eq!(n, 6);
        assert_eq!(a.try_send_to(b"tried", to).unwrap(), 5);
        let mut buf = [0u8; 8];
        let n = std::future::poll_fn(|cx| b.poll_recv(cx, &mut buf)).await.unwrap();
        assert_eq!(&buf[..n], b"polled");
        let (n, from) = recv_from(&b, &mut buf).await;
        assert_eq!((&buf[..n], from), (&b"tried"[..], a.local_addr().unwrap()));
    }
}

rt_test! {
    async fn socket_options_pass_through() {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        s.set_broadcast(true).unwrap();
        s.set_ttl(64).unwrap();
        assert_eq!(s.set_ttl(0).unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(s.set_ttl(256).unwrap_err().kind(), ErrorKind::InvalidInput);
        s.set_multicast_ttl_v4(2).unwrap();
        s.set_multicast_loop_v4(false).unwrap();
        let group = Ipv4Addr::new(239, 255, 42, 99);
        s.join_multicast_v4(group, Ipv4Addr::LOCALHOST).unwrap();
        s.leave_multicast_v4(group, Ipv4Addr::LOCALHOST).unwrap();
        // Leaving a group not joined is an error, not a panic.
        assert!(s.leave_multicast_v4(group, Ipv4Addr::LOCALHOST).is_err());
    }
}

rt_test! {
    async fn from_std_takes_over_a_bound_socket() {
        let std_socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = std_socket.local_addr().unwrap();
        let s = UdpSocket::from_std(std_socket).unwrap();
        assert_eq!(s.local_addr().unwrap(), addr);
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.send_to(b"std", addr).unwrap();
        let mut buf = [0u8; 4];
        let (n, from) = recv_from(&s, &mut buf).await;
        assert_eq!((&buf[..n], from), (&b"std"[..], peer.local_addr().unwrap()));
        assert!(format!("{s:?}").contains(&addr.to_string()));
    }
}

rt_test! {
    async fn a_socket_handed_to_std_keeps_the_datagrams_not_yet_read() {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let a_addr = a.local_addr().unwrap();
        for d in [&b"one"[..], b"two", b"three"] {
            b.send_to(d, a_addr).await.unwrap();
        }
        let mut buf = [0u8; 16];
        let (n, _) = a.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"one");
        sleep(Duration::from_millis(20)).await; // the engine may queue the others
        a.send_to(b"from a", b.local_addr().unwrap()).await.unwrap();
        let (std_a, unread) = a.into_std().await.unwrap();
        std_a.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut got: Vec<Vec<u8>> = unread
            .into_iter()
            .map(|(d, from)| {
                assert_eq!(from, b.local_addr().unwrap());
                d
            })
            .collect();
        while got.len() < 2 {
            let (n, _) = std_a.recv_from(&mut buf).unwrap(); // blocking mode
            got.push(buf[..n].to_vec());
        }
        assert_eq!(got, [b"two".to_vec(), b"three".to_vec()], "each datagram once, in order");
        let (n, from) = b.recv_from(&mut buf).await.unwrap();
        assert_eq!((&buf[..n], from), (&b"from a"[..], a_addr));
    }
}
