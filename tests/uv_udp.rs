//! Udp tests: loopback round trips (IPv4 and IPv6), connected sockets, try_send, receive control, socket
//! options, ownership of in-flight sends, and the callback-owns-its-handle cases.
mod common;

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use common::close_clean;
use static_assertions::assert_not_impl_any;
use uvio::uv::{Handle, IpFamily, Loop, Membership, RunMode, Timer, Udp, UdpBindFlags, UdpInitOptions};
use uvio::Error;

assert_not_impl_any!(Udp: Send, Sync, Clone);

type Log = Rc<RefCell<Vec<(Vec<u8>, SocketAddr)>>>;

fn v4() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn bound(lp: &Loop, addr: SocketAddr) -> Udp {
    let u = Udp::new(lp).unwrap();
    u.bind(addr, UdpBindFlags::default()).unwrap();
    u
}

/// Starts receiving into a log; stops after `want` datagrams.
fn collect(u: &Udp, want: usize) -> Log {
    let log: Log = Rc::new(RefCell::new(Vec::new()));
    let l2 = log.clone();
    u.recv_start(move |u, res| {
        if let Some((data, from, flags)) = res.unwrap() {
            assert!(!flags.partial);
            l2.borrow_mut().push((data.to_vec(), from));
            if l2.borrow().len() == want {
                u.recv_stop().unwrap();
            }
        }
    })
    .unwrap();
    log
}

fn round_trip(lp: Loop, addr: SocketAddr) {
    let server = bound(&lp, addr);
    let client = bound(&lp, addr);
    let log = collect(&server, 2);
    let payload: Vec<u8> = (0..=255u8).cycle().take(1500).collect();
    let sent = Rc::new(Cell::new(0));
    let (s1, s2) = (sent.clone(), sent.clone());
    let to = server.local_addr().unwrap();
    client
        .send(payload.clone(), Some(to), move |res, buf| {
            res.unwrap();
            assert_eq!(buf.len(), 1500, "the buffer comes back to the callback");
            s1.set(s1.get() + 1);
        })
        .unwrap();
    client
        .send(b"second", Some(to), move |res, _| {
            res.unwrap();
            s2.set(s2.get() + 1);
        })
        .unwrap();
    lp.run(RunMode::Default).unwrap();
    assert_eq!(sent.get(), 2);
    let log = log.borrow();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].0, payload);
    assert_eq!(log[1].0, b"second");
    assert_eq!(log[0].1, client.local_addr().unwrap());
    assert_eq!(client.send_queue_count(), 0);
    assert_eq!(client.send_queue_size(), 0);
    drop((server, client));
    close_clean(lp);
}

#[test]
fn round_trip_ipv4() {
    round_trip(Loop::new().unwrap(), v4());
}

#[test]
fn round_trip_ipv6() {
    let lp = Loop::new().unwrap();
    let probe = Udp::new(&lp).unwrap();
    if probe.bind("[::1]:0".parse().unwrap(), UdpBindFlags { ipv6_only: true, ..Default::default() }).is_err() {
        eprintln!("no IPv6 loopback here: skipped");
        drop(probe);
        close_clean(lp);
        return;
    }
    drop(probe);
    round_trip(lp, "[::1]:0".parse().unwrap());
}

#[test]
fn empty_datagram_is_an_empty_slice() {
    let lp = Loop::new().unwrap();
    let server = bound(&lp, v4());
    let client = bound(&lp, v4());
    let log = collect(&server, 1);
    client.send(Vec::new(), Some(server.local_addr().unwrap()), |res, _| res.unwrap()).unwrap();
    lp.run(RunMode::Default).unwrap();
    assert_eq!(log.borrow().len(), 1);
    assert!(log.borrow()[0].0.is_empty());
    drop((server, client));
    close_clean(lp);
}

#[test]
fn connected_send_peer_addr_and_disconnect() {
    let lp = Loop::new().unwrap();
    let server = bound(&lp, v4());
    let to = server.local_addr().unwrap();
    let client = bound(&lp, v4());
    assert_eq!(client.peer_addr().unwrap_err(), Error::ENOTCONN);
    client.connect(Some(to)).unwrap();
    assert_eq!(client.peer_addr().unwrap(), to);
    assert_eq!(client.connect(Some(to)).unwrap_err(), Error::EISCONN);
    // A connected socket takes no destination.
    assert_eq!(client.send(b"x", Some(to), |_, _| unreachable!()).unwrap_err(), Error::EISCONN);
    let log = collect(&server, 1);
    client.send(b"connected", None, |res, _| res.unwrap()).unwrap();
    lp.run(RunMode::Default).unwrap();
    assert_eq!(log.borrow()[0].0, b"connected");
    assert_eq!(log.borrow()[0].1, client.local_addr().unwrap());
    client.connect(None).unwrap();
    assert_eq!(client.peer_addr().unwrap_err(), Error::ENOTCONN);
    assert_eq!(client.connect(None).unwrap_err(), Error::ENOTCONN);
    drop((server, client));
    close_clean(lp);
}

#[test]
fn try_send_delivers_and_checks_destination() {
    let lp = Loop::new().unwrap();
    let server = bound(&lp, v4());
    let client = bound(&lp, v4());
    let to = server.local_addr().unwrap();
    let err = client.try_send(b"nowhere", None).unwrap_err();
    assert_eq!(err.name(), "EDESTADDRREQ");
    assert_eq!(client.try_send(b"hello", Some(to)).unwrap(), 5);
    let log = collect(&server, 1);
    lp.run(RunMode::Default).unwrap();
    assert_eq!(log.borrow()[0].0, b"hello");
    drop((server, client));
    close_clean(lp);
}

#[test]
fn try_send_many_sends_a_batch_in_order() {
    let lp = Loop::new().unwrap();
    let server = bound(&lp, v4());
    let client = bound(&lp, v4());
    let to = Some(server.local_addr().unwrap());
    assert_eq!(client.try_send_many(&[]).unwrap_err(), Error::EINVAL);
    let bodies: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; i as usize + 1]).collect();
    let batch: Vec<(&[u8], Option<SocketAddr>)> = bodies.iter().map(|b| (&b[..], to)).collect();
    let mut sent = 0;
    while sent < batch.len() {
        let n = client.try_send_many(&batch[sent..]).unwrap();
        assert!(n > 0 && n <= 32, "{n}");
        sent += n;
    }
    let log = collect(&server, 40);
    lp.run(RunMode::Default).unwrap();
    let got: Vec<Vec<u8>> = log.borrow().iter().map(|(d, _)| d.clone()).collect();
    assert_eq!(got, bodies);
    drop((server, client));
    close_clean(lp);
}

#[test]
fn recv_stop_in_callback_stops_delivery() {
    let lp = Loop::new().unwrap();
    let server = bound(&lp, v4());
    let client = bound(&lp, v4());
    let to = server.local_addr().unwrap();
    for i in 0..3u8 {
        assert_eq!(client.try_send(&[i], Some(to)).unwrap(), 1);
    }
    let log = collect(&server, 1);
    assert!(server.is_active());
    assert_eq!(server.recv_start(|_, _| {}).unwrap_err(), Error::EALREADY);
    lp.run(RunMode::Default).unwrap();
    assert_eq!(log.borrow().len(), 1, "nothing delivered after recv_stop");
    assert!(!server.is_active());
    // Receiving again picks up the datagrams that waited in the kernel.
    let log2 = collect(&server, 2);
    lp.run(RunMode::Default).unwrap();
    let got: Vec<u8> = log2.borrow().iter().map(|(d, _)| d[0]).collect();
    assert_eq!(got, vec![1, 2]);
    server.recv_stop().unwrap();
    server.recv_stop().unwrap();
    drop((server, client));
    close_clean(lp);
}

#[test]
fn send_to_dead_port_on_connected_socket() {
    let lp = Loop::new().unwrap();
    // A port nobody listens on: bind, note it, close.
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let client = Rc::new(RefCell::new(Some(bound(&lp, v4()))));
    let c = client.borrow();
    let udp = c.as_ref().unwrap();
    udp.connect(Some(dead)).unwrap();
    let sent = Rc::new(Cell::new(None));
    let s2 = sent.clone();
    udp.send(b"anyone?", None, move |res, _| s2.set(Some(res))).unwrap();
    let errors = Rc::new(RefCell::new(Vec::new()));
    let (e2, c2) = (errors.clone(), client.clone());
    udp.recv_start(move |_, res| {
        if let Err(e) = res {
            e2.borrow_mut().push(e);
            drop(c2.borrow_mut().take()); // first error: close from inside the callback
        }
    })
    .unwrap();
    drop(c);
    // Whether the ICMP error arrives is up to the OS: close after a while if it does not.
    let timer = Timer::new(&lp).unwrap();
    let c3 = client.clone();
    timer.start(Duration::from_millis(50), None, move |_| drop(c3.borrow_mut().take())).unwrap();
    lp.run(RunMode::Default).unwrap();
    assert_eq!(sent.get(), Some(Ok(())));
    for e in errors.borrow().iter() {
        assert_eq!(*e, Error::ECONNREFUSED);
    }
    assert!(client.borrow().is_none());
    drop(timer);
    close_clean(lp);
}

#[test]
fn socket_options_after_bind() {
    let lp = Loop::new().unwrap();
    let u = bound(&lp, v4());
    u.set_broadcast(true).unwrap();
    u.set_broadcast(false).unwrap();
    u.set_ttl(64).unwrap();
    assert_eq!(u.set_ttl(0).unwrap_err(), Error::EINVAL);
    u.set_multicast_ttl(4).unwrap();
    u.set_multicast_ttl(0).unwrap(); // 0 is valid for multicast: host-local
    u.set_multicast_loop(true).unwrap();
    u.set_multicast_loop(false).unwrap();
    u.set_multicast_interface(None).unwrap();
    assert_eq!(u.set_multicast_interface(Some("not an address")).unwrap_err(), Error::EINVAL);
    assert_eq!(u.set_multicast_interface(Some("127.0.0.1\0")).unwrap_err(), Error::EINVAL);
    let group = "239.255.0.1".parse().unwrap();
    assert_eq!(u.set_membership(group, Some("bad\0iface"), Membership::Join).unwrap_err(), Error::EINVAL);
    assert_eq!(u.set_membership(group, Some("no such address"), Membership::Join).unwrap_err(), Error::EINVAL);
    drop(u);
    close_clean(lp);
}

#[test]
fn socket_options_need_a_socket() {
    let lp = Loop::new().unwrap();
    let unbound = Udp::new(&lp).unwrap();
    assert!(unbound.set_broadcast(true).is_err());
    assert!(unbound.set_ttl(5).is_err());
    assert!(unbound.local_addr().is_err(), "an unbound handle has no local address");
    // With a family, the socket exists from the start.
    let v4only = Udp::new_ex(&lp, UdpInitOptions { family: Some(IpFamily::V4), ..Default::default() }).unwrap();
    v4only.set_broadcast(true).unwrap();
    v4only.set_ttl(5).unwrap();
    drop((unbound, v4only));
    close_clean(lp);
}

#[test]
fn recvmmsg_handle_receives_every_datagram() {
    let lp = Loop::new().unwrap();
    let server = Udp::new_ex(&lp, UdpInitOptions { family: Some(IpFamily::V4), recvmmsg: true }).unwrap();
    if cfg!(target_os = "linux") {
        assert!(server.using_recvmmsg());
    }
    server.bind(v4(), UdpBindFlags::default()).unwrap();
    let plain = Udp::new(&lp).unwrap();
    assert!(!plain.using_recvmmsg());
    let client = bound(&lp, v4());
    let to = Some(server.local_addr().unwrap());
    for i in 0..30u8 {
        assert_eq!(client.try_send(&[i, i, i], to).unwrap(), 3);
    }
    let log = collect(&server, 30);
    lp.run(RunMode::Default).unwrap();
    let got: Vec<Vec<u8>> = log.borrow().iter().map(|(d, _)| d.clone()).collect();
    assert_eq!(got, (0..30u8).map(|i| vec![i, i, i]).collect::<Vec<_>>());
    drop((server, plain, client));
    close_clean(lp);
}

#[test]
fn drop_with_send_in_flight_completes_the_send() {
    let lp = Loop::new().unwrap();
    let server = bound(&lp, v4());
    let client = bound(&lp, v4());
    let results = Rc::new(RefCell::new(Vec::new()));
    for _ in 0..3 {
        let r = results.clone();
        client
            .send(vec![7u8; 100], Some(server.local_addr().unwrap()), move |res, buf| {
                assert_eq!(buf, vec![7u8; 100]);
                r.borrow_mut().push(res);
            })
            .unwrap();
    }
    drop(client); // before the loop ran: the send callbacks run while the handle closes
    lp.run(RunMode::Default).unwrap();
    let results = results.borrow();
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(|r| matches!(r, Ok(()) | Err(Error::ECANCELED))), "{results:?}");
    drop(server);
    close_clean(lp);
}

#[test]
fn drop_in_own_recv_callback() {
    let lp = Loop::new().unwrap();
    let slot: Rc<RefCell<Option<Udp>>> = Rc::new(RefCell::new(Some(bound(&lp, v4()))));
    let to = slot.borrow().as_ref().unwrap().local_addr().unwrap();
    let client = bound(&lp, v4());
    for _ in 0..3 {
        client.try_send(b"x", Some(to)).unwrap();
    }
    let seen = Rc::new(Cell::new(0));
    let (s2, sl2) = (seen.clone(), slot.clone());
    slot.borrow()
        .as_ref()
        .unwrap()
        .recv_start(move |u, res| {
            let Ok(Some((data, _, _))) = res else { return };
            assert_eq!(data, b"x", "the lent bytes stay valid after the handle is dropped");
            s2.set(s2.get() + 1);
            drop(sl2.borrow_mut().take()); // closes the handle from inside its own callback
            assert!(u.is_closing());
            assert_eq!(data, b"x", "the lent bytes stay valid after the handle is dropped");
            assert_eq!(u.recv_start(|_, _| {}).unwrap_err(), Error::EINVAL);
            assert_eq!(u.send(b"y", Some(to), |_, _| {}).unwrap_err(), Error::EINVAL);
            assert_eq!(u.try_send(b"y", Some(to)).unwrap_err(), Error::EINVAL);
            assert_eq!(u.bind(to, UdpBindFlags::default()).unwrap_err(), Error::EINVAL);
            assert_eq!(u.set_ttl(3).unwrap_err(), Error::EINVAL);
        })
        .unwrap();
    lp.run(RunMode::Default).unwrap();
    assert_eq!(seen.get(), 1);
    drop(client);
    close_clean(lp);
}

#[test]
fn bind_twice_fails() {
    let lp = Loop::new().unwrap();
    let a = bound(&lp, v4());
    let taken = a.local_addr().unwrap();
    let b = Udp::new(&lp).unwrap();
    assert_eq!(b.bind(taken, UdpBindFlags::default()).unwrap_err(), Error::EADDRINUSE);
    #[cfg(unix)]
    assert_eq!(a.bind(v4(), UdpBindFlags::default()).unwrap_err(), Error::EINVAL);
    drop((a, b));
    close_clean(lp);
}

#[test]
fn open_takes_a_std_socket() {
    let lp = Loop::new().unwrap();
    let std_sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = std_sock.local_addr().unwrap();
    let u = Udp::open(&lp, std_sock).unwrap();
    assert_eq!(u.local_addr().unwrap(), addr);
    let log = collect(&u, 1);
    let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.send_to(b"from std", addr).unwrap();
    lp.run(RunMode::Default).unwrap();
    assert_eq!(log.borrow()[0], (b"from std".to_vec(), peer.local_addr().unwrap()));
    // And back: the handle sends through the adopted socket.
    u.try_send(b"reply", Some(peer.local_addr().unwrap())).unwrap();
    let mut buf = [0u8; 16];
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let (n, from) = peer.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"reply"[..], addr));
    drop(u);
    close_clean(lp);
}

#[test]
fn thousand_datagrams_arrive_in_order() {
    const TOTAL: u32 = 1000;
    const WINDOW: u32 = 50; // stays far below the kernel's receive buffer, so nothing is dropped
    let lp = Loop::new().unwrap();
    let server = bound(&lp, v4());
    let client = Rc::new(bound(&lp, v4()));
    let to = server.local_addr().unwrap();
    let acked = Rc::new(Cell::new(0u32));
    let send_window = {
        let (client, acked) = (client.clone(), acked.clone());
        move |from: u32| {
            for i in from..(from + WINDOW).min(TOTAL) {
                let a = acked.clone();
                client
                    .send(i.to_be_bytes(), Some(to), move |res, _| {
                        res.unwrap();
                        a.set(a.get() + 1);
                    })
                    .unwrap();
            }
        }
    };
    send_window(0);
    let next = Rc::new(Cell::new(0u32));
    let n2 = next.clone();
    server
        .recv_start(move |u, res| {
            let Some((data, _, _)) = res.unwrap() else { return };
            let seq = u32::from_be_bytes(data.try_into().unwrap());
            assert_eq!(seq, n2.get(), "datagrams arrive in order");
            n2.set(seq + 1);
            if n2.get() == TOTAL {
                u.recv_stop().unwrap();
            } else if n2.get() % WINDOW == 0 {
                send_window(n2.get());
            }
        })
        .unwrap();
    lp.run(RunMode::Default).unwrap();
    assert_eq!(next.get(), TOTAL);
    assert_eq!(acked.get(), TOTAL);
    drop(server);
    drop(client);
    close_clean(lp);
}

#[test]
fn panic_in_recv_callback_resumes_from_run() {
    let lp = Loop::new().unwrap();
    let server = bound(&lp, v4());
    let client = bound(&lp, v4());
    client.try_send(b"boom", Some(server.local_addr().unwrap())).unwrap();
    server
        .recv_start(|_, res| {
            if let Ok(Some(_)) = res {
                panic!("boom in recv");
            }
        })
        .unwrap();
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lp.run(RunMode::Default))).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"boom in recv"));
    drop((server, client));
    close_clean(lp);
}

#[test]
fn recvmmsg_drop_mid_batch() {
    let lp = Loop::new().unwrap();
    let server = Udp::new_ex(&lp, UdpInitOptions { family: Some(IpFamily::V4), recvmmsg: true }).unwrap();
    server.bind(v4(), UdpBindFlags::default()).unwrap();
    let to = Some(server.local_addr().unwrap());
    let client = bound(&lp, v4());
    for i in 0..10u8 {
        client.try_send(&[i], to).unwrap();
    }
    let slot = Rc::new(RefCell::new(Some(server)));
    let (seen, sl2) = (Rc::new(Cell::new(0)), slot.clone());
    let s3 = seen.clone();
    slot.borrow()
        .as_ref()
        .unwrap()
        .recv_start(move |_, res| {
            if let Ok(Some((data, _, _))) = res {
                assert_eq!(data, [0u8]);
                s3.set(s3.get() + 1);
                drop(sl2.borrow_mut().take()); // the rest of the batch must not reach a dropped callback
            }
        })
        .unwrap();
    lp.run(RunMode::Default).unwrap();
    assert_eq!(seen.get(), 1);
    drop(client);
    close_clean(lp);
}

#[test]
fn restart_receive_with_new_callback_from_callback() {
    let lp = Loop::new().unwrap();
    let server = bound(&lp, v4());
    let client = bound(&lp, v4());
    let to = Some(server.local_addr().unwrap());
    for i in 0..3u8 {
        client.try_send(&[i], to).unwrap();
    }
    let log = Rc::new(RefCell::new(Vec::new()));
    let l1 = log.clone();
    server
        .recv_start(move |u, res| {
            let Ok(Some((data, _, _))) = res else { return };
            l1.borrow_mut().push(("first", data[0]));
            u.recv_stop().unwrap();
            let l2 = l1.clone();
            u.recv_start(move |u, res| {
                let Ok(Some((data, _, _))) = res else { return };
                l2.borrow_mut().push(("second", data[0]));
                if data[0] == 2 {
                    u.recv_stop().unwrap();
                }
            })
            .unwrap();
        })
        .unwrap();
    lp.run(RunMode::Default).unwrap();
    assert_eq!(*log.borrow(), vec![("first", 0), ("second", 1), ("second", 2)]);
    drop((server, client));
    close_clean(lp);
}

#[test]
fn reuse_addr_lets_two_sockets_share_a_port() {
    let lp = Loop::new().unwrap();
    let reuse = UdpBindFlags { reuse_addr: true, ..Default::default() };
    let a = Udp::new(&lp).unwrap();
    a.bind(v4(), reuse).unwrap();
    let shared = a.local_addr().unwrap();
    let b = Udp::new(&lp).unwrap();
    b.bind(shared, reuse).unwrap();
    assert_eq!(b.local_addr().unwrap(), shared);
    drop((a, b));
    close_clean(lp);
}
