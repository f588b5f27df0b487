//! `UdpSocket` on the epoll engine (Linux) chosen explicitly: round trips byte-exact (v4, v6), 2000 datagrams
//! in order, a receiver waiting before the sender sends (the `EAGAIN` path), several tasks waiting on one
//! socket, dropped receives losing nothing, truncation, connected sockets, misuse. The whole UDP
//! suite (`tests/net_udp.rs`) also runs on this engine (`rt_test!`).
#![cfg(target_os = "linux")]

mod common;

use std::io::ErrorKind;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use uvio::net::UdpSocket;
use uvio::spawn_local;
use uvio::time::{sleep, timeout};

use common::epoll::run;
use common::udp::{check_waiting_receivers_each_get_a_datagram, datagram, recv_from};

#[test]
fn round_trip_v4_byte_exact_with_sender_addresses() {
    run(async {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let big = datagram(1000);
        a.send_to(&big, b.local_addr().unwrap()).await.unwrap();
        let mut buf = [0u8; 2048];
        let (n, from) = recv_from(&b, &mut buf).await;
        assert_eq!((&buf[..n], from), (&big[..], a.local_addr().unwrap()));
        b.send_to(b"back", from).await.unwrap();
        let (n, from) = recv_from(&a, &mut buf).await;
        assert_eq!((&buf[..n], from), (&b"back"[..], b.local_addr().unwrap()));
    });
}

#[test]
fn round_trip_v6_byte_exact() {
    run(async {
        let a = match UdpSocket::bind("[::1]:0").await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("no IPv6 loopback here ({e}); skipping");
                return;
            }
        };
        let b = UdpSocket::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, 0))).await.unwrap();
        let d = datagram(77);
        a.send_to(&d, b.local_addr().unwrap()).await.unwrap();
        let mut buf = [0u8; 2048];
        let (n, from) = recv_from(&b, &mut buf).await;
        assert_eq!((&buf[..n], from), (&d[..], a.local_addr().unwrap()));
        assert!(from.is_ipv6());
    });
}

#[test]
fn two_thousand_datagrams_in_windows_of_50_arrive_in_order_byte_exact() {
    run(async {
        let rx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = rx.local_addr().unwrap();
        let mut buf = vec![0u8; 2048];
        for window in 0..40u32 {
            for i in window * 50..(window + 1) * 50 {
                // Alternate the send paths: async, poll and try (loopback takes 50 at once).
                match i % 3 {
                    0 => assert_eq!(tx.send_to(&datagram(i), to).await.unwrap(), datagram(i).len()),
                    1 => {
                        let d = datagram(i);
                        let n = std::future::poll_fn(|cx| tx.poll_send_to(cx, &d, to)).await.unwrap();
                        assert_eq!(n, d.len());
                    }
                    _ => assert_eq!(tx.try_send_to(&datagram(i), to).unwrap(), datagram(i).len()),
                }
            }
            for i in window * 50..(window + 1) * 50 {
                let (n, from) = recv_from(&rx, &mut buf).await;
                assert_eq!(from, tx.local_addr().unwrap());
                assert!(buf[..n] == datagram(i)[..], "datagram {i} differs or is out of order");
            }
        }
        assert_eq!(rx.try_recv(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
    });
}

#[test]
fn a_receiver_waiting_before_the_sender_sends_gets_woken() {
    run(async {
        let rx = Rc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let to = rx.local_addr().unwrap();
        let waiting = {
            let rx = rx.clone();
            spawn_local(async move {
                let mut buf = [0u8; 16];
                let mut got = Vec::new();
                for _ in 0..3 {
                    let n = timeout(Duration::from_secs(1), rx.recv(&mut buf)).await.expect("woken").unwrap();
                    got.push(buf[..n].to_vec());
                }
                got
            })
        };
        let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        // Each datagram goes out only once the receiver has found the socket empty and waits on the watcher.
        for d in [&b"first"[..], b"second", b"third"] {
            sleep(Duration::from_millis(5)).await;
            tx.send_to(d, to).await.unwrap();
        }
        assert_eq!(waiting.await.unwrap(), [b"first".to_vec(), b"second".to_vec(), b"third".to_vec()]);
    });
}

#[test]
fn several_tasks_waiting_on_one_socket_are_all_served() {
    run(check_waiting_receivers_each_get_a_datagram(3));
}

#[test]
fn a_dropped_recv_future_leaves_the_next_datagram_for_the_next_recv() {
    run(async {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = b.local_addr().unwrap();
        let mut buf = [0u8; 16];
        // A recv dropped by a timeout while waiting on the watcher…
        assert!(timeout(Duration::from_millis(5), b.recv_from(&mut buf)).await.is_err());
        // …and created but never polled.
        a.send_to(b"one", to).await.unwrap();
        drop(b.recv(&mut [0u8; 16]));
        a.send_to(b"two", to).await.unwrap();
        let (n, _) = recv_from(&b, &mut buf).await;
        assert_eq!(&buf[..n], b"one");
        let (n, _) = recv_from(&b, &mut buf).await;
        assert_eq!(&buf[..n], b"two");
        // …and polled once while the socket is empty, then dropped: the next recv gets the next datagram.
        {
            let mut fut = Box::pin(b.recv(&mut buf));
            assert!(futures::poll!(fut.as_mut()).is_pending());
        }
        a.send_to(b"three", to).await.unwrap();
        let (n, _) = recv_from(&b, &mut buf).await;
        assert_eq!(&buf[..n], b"three");
        // A socket dropped while its watcher watches closes cleanly (the runtime checks for leaks).
        let mut fut = Box::pin(b.recv(&mut buf));
        assert!(futures::poll!(fut.as_mut()).is_pending());
        drop(fut);
        drop(b);
    });
}

#[test]
fn a_small_buffer_truncates_and_the_next_datagram_is_whole() {
    run(async {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let to = b.local_addr().unwrap();
        let big = datagram(999);
        a.send_to(&big, to).await.unwrap();
        a.send_to(b"next", to).await.unwrap();
        a.send_to(b"", to).await.unwrap();
        a.send_to(b"gone", to).await.unwrap();
        let mut small = [0u8; 10];
        let (n, _) = recv_from(&b, &mut small).await;
        assert_eq!((n, &small[..]), (10, &big[..10]), "the rest of the datagram is discarded");
        let mut buf = [0u8; 2048];
        let (n, _) = recv_from(&b, &mut buf).await;
        assert_eq!(&buf[..n], b"next");
        assert_eq!(recv_from(&b, &mut buf).await.0, 0, "an empty datagram is a datagram");
        assert_eq!(recv_from(&b, &mut []).await.0, 0, "an empty buffer takes a datagram");
        assert_eq!(b.try_recv(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock);
    });
}

#[test]
fn connected_sockets_send_and_recv_and_refuse_misdirected_sends() {
    run(async {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let stranger = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        assert_eq!(a.peer_addr().unwrap_err().kind(), ErrorKind::NotConnected);
        assert!(a.send(b"nowhere").await.is_err(), "not connected: no destination");
        a.connect(b.local_addr().unwrap()).await.unwrap();
        b.connect(a.local_addr().unwrap()).await.unwrap();
        assert_eq!(a.peer_addr().unwrap(), b.local_addr().unwrap());
        // Connected: `send_to` is refused, as on the libuv engine (EISCONN), even to the peer itself.
        let err = a.send_to(b"x", b.local_addr().unwrap()).await.unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EISCONN));
        assert!(a.try_send_to(b"x", b.local_addr().unwrap()).is_err());
        // The OS filters out datagrams from anyone but the peer.
        stranger.send_to(b"intruder", a.local_addr().unwrap()).await.unwrap();
        assert_eq!(a.send(b"hello").await.unwrap(), 5);
        assert_eq!(b.try_send(b"reply").unwrap(), 5);
        let mut buf = [0u8; 16];
        let n = timeout(Duration::from_secs(1), b.recv(&mut buf)).await.unwrap().unwrap();
        assert_eq!(&buf[..n], b"hello");
        let n = timeout(Duration::from_secs(1), a.recv(&mut buf)).await.unwrap().unwrap();
        assert_eq!(&buf[..n], b"reply", "the stranger's datagram was filtered out");
        let n = std::future::poll_fn(|cx| a.poll_send(cx, b"polled")).await.unwrap();
        assert_eq!(n, 6);
        let n = timeout(Duration::from_secs(1), std::future::poll_fn(|cx| b.poll_recv(cx, &mut buf)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..n], b"polled");
    });
}

#[test]
fn options_and_from_std_on_the_epoll_engine() {
    run(async {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        s.set_broadcast(true).unwrap();
        s.set_ttl(64).unwrap();
        assert_eq!(s.set_ttl(0).unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(s.set_ttl(256).unwrap_err().kind(), ErrorKind::InvalidInput);
        s.set_multicast_ttl_v4(2).unwrap();
        assert_eq!(s.set_multicast_ttl_v4(256).unwrap_err().kind(), ErrorKind::InvalidInput);
        s.set_multicast_loop_v4(false).unwrap();
        let group = Ipv4Addr::new(239, 255, 42, 99);
        s.join_multicast_v4(group, Ipv4Addr::LOCALHOST).unwrap();
        s.leave_multicast_v4(group, Ipv4Addr::LOCALHOST).unwrap();
        assert!(s.leave_multicast_v4(group, Ipv4Addr::LOCALHOST).is_err(), "not a member any more");
        if let Ok(s6) = UdpSocket::bind("[::1]:0").await {
            let group6: Ipv6Addr = "ff02::1:2".parse().unwrap();
            let err = s6.join_multicast_v6(&group6, Some("not an address")).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput);
        }
        // A std socket taken over: non-blocking, watched, same address.
        let std_socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = std_socket.local_addr().unwrap();
        let t = UdpSocket::from_std(std_socket).unwrap();
        assert_eq!(t.local_addr().unwrap(), addr);
        assert_eq!(t.try_recv(&mut [0u8; 4]).unwrap_err().kind(), ErrorKind::WouldBlock, "non-blocking");
        s.send_to(b"std", addr).await.unwrap();
        let mut buf = [0u8; 4];
        let (n, from) = recv_from(&t, &mut buf).await;
        assert_eq!((&buf[..n], from), (&b"std"[..], s.local_addr().unwrap()));
        assert!(format!("{t:?}").contains(&addr.to_string()));
    });
}
