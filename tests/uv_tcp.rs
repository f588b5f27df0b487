//! Tcp tests over 127.0.0.1 and ::1: echo, large transfers, many connections, errors, options, close
//! semantics (shutdown, cancel, reset) and handles dropped from their own callbacks.
mod common;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::rc::{Rc, Weak};
use std::time::Duration;

use common::{close_clean, run_until};
use uvio::uv::{Handle, Loop, RunMode, Tcp, TcpBindFlags};
use uvio::Error;

static_assertions::assert_not_impl_any!(Tcp: Send, Sync);

const LOCAL4: &str = "127.0.0.1:0";

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len).map(|i| ((i as u32).wrapping_mul(31).wrapping_add(seed) % 251) as u8).collect()
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A listener on `at` (port 0) and its real address.
fn listener(lp: &Loop, at: &str) -> (Tcp, SocketAddr) {
    let t = Tcp::new(lp).unwrap();
    t.bind(addr(at)).unwrap();
    let a = t.local_addr().unwrap();
    (t, a)
}

/// A listener on ::1, or `None` (with a note) where this machine has no IPv6 loopback.
fn listener_v6(lp: &Loop) -> Option<(Tcp, SocketAddr)> {
    let t = Tcp::new(lp).unwrap();
    match t.bind(addr("[::1]:0")) {
        Ok(()) => {
            let a = t.local_addr().unwrap();
            Some((t, a))
        }
        Err(e) if e == Error::EADDRNOTAVAIL || e == Error::EAFNOSUPPORT => {
            eprintln!("note: no IPv6 loopback here ({}); skipping the ::1 part", e.name());
            None
        }
        Err(e) => panic!("binding [::1]:0 failed: {e:?}"),
    }
}

/// An echo server: writes every chunk back, shuts down after the peer's EOF and then drops the connection.
/// Connections live in a registry the server owns; callbacks hold only weak references (no cycles).
struct Echo {
    _server: Tcp,
    conns: Rc<RefCell<HashMap<usize, Tcp>>>,
    accepted: Rc<Cell<usize>>,
}

fn forget_conn(reg: &Weak<RefCell<HashMap<usize, Tcp>>>, id: usize) {
    if let Some(reg) = reg.upgrade() {
        let conn = reg.borrow_mut().remove(&id);
        drop(conn); // outside the borrow; closing from the connection's own callback is allowed
    }
}

fn echo_server(lp: &Loop, at: &str) -> (Echo, SocketAddr) {
    let (server, a) = listener(lp, at);
    echo_on(server, a)
}

fn echo_on(server: Tcp, a: SocketAddr) -> (Echo, SocketAddr) {
    let conns: Rc<RefCell<HashMap<usize, Tcp>>> = Rc::default();
    let accepted = Rc::new(Cell::new(0));
    let (reg, n) = (Rc::downgrade(&conns), accepted.clone());
    server
        .listen(1024, move |srv, res| {
            res.unwrap();
            let conn = srv.accept().unwrap();
            let id = n.get();
            n.set(id + 1);
            let reg2 = reg.clone();
            conn.read_start(move |c, data| match data {
                Ok(bytes) => c.write(Vec::from(bytes), |_, _| {}).unwrap(),
                Err(_) => {
                    let reg3 = reg2.clone();
                    if c.shutdown(move |_, _| forget_conn(&reg3, id)).is_err() {
                        forget_conn(&reg2, id);
                    }
                }
            })
            .unwrap();
            reg.upgrade().unwrap().borrow_mut().insert(id, conn);
        })
        .unwrap();
    (Echo { _server: server, conns, accepted }, a)
}

/// A client that sends `payload`, shuts down, and collects what comes back until EOF.
struct Client {
    tcp: Tcp,
    got: Rc<RefCell<Vec<u8>>>,
    eof: Rc<Cell<bool>>,
}

fn echo_client(lp: &Loop, to: SocketAddr, payload: Vec<u8>) -> Client {
    let tcp = Tcp::new(lp).unwrap();
    let got: Rc<RefCell<Vec<u8>>> = Rc::default();
    let eof = Rc::new(Cell::new(false));
    let (got2, eof2) = (got.clone(), eof.clone());
    tcp.connect(to, move |c, res| {
        res.unwrap();
        c.read_start(move |_, data| match data {
            Ok(bytes) => got2.borrow_mut().extend_from_slice(bytes),
            Err(e) => {
                assert_eq!(e, Error::EOF);
                eof2.set(true);
            }
        })
        .unwrap();
        c.write(payload, |c, res| {
            res.unwrap();
            c.shutdown(|_, res| res.unwrap()).unwrap();
        })
        .unwrap();
    })
    .unwrap();
    Client { tcp, got, eof }
}

/// A connected pair on 127.0.0.1: (server side, client side), neither reading yet.
fn connected_pair(lp: &Loop) -> (Tcp, Tcp) {
    let (server, a) = listener(lp, LOCAL4);
    let slot: Rc<RefCell<Option<Tcp>>> = Rc::default();
    let s2 = slot.clone();
    server.listen(16, move |srv, _| *s2.borrow_mut() = Some(srv.accept().unwrap())).unwrap();
    let client = Tcp::new(lp).unwrap();
    let connected = Rc::new(Cell::new(false));
    let c2 = connected.clone();
    client.connect(a, move |_, res| c2.set(res.is_ok())).unwrap();
    run_until(lp, || connected.get() && slot.borrow().is_some());
    drop(server);
    let accepted = slot.borrow_mut().take().unwrap();
    (accepted, client)
}

// ----- echo -----

#[test]
fn echo_round_trip_ipv4() {
    let lp = Loop::new().unwrap();
    let (echo, a) = echo_server(&lp, LOCAL4);
    let payload = pattern(200_000, 7);
    let c = echo_client(&lp, a, payload.clone());
    run_until(&lp, || c.eof.get());
    assert_eq!(*c.got.borrow(), payload);
    assert_eq!(echo.accepted.get(), 1);
    drop((c, echo));
    close_clean(lp);
}

#[test]
fn echo_round_trip_ipv6() {
    let lp = Loop::new().unwrap();
    let Some((server, a)) = listener_v6(&lp) else {
        close_clean(lp);
        return;
    };
    assert!(a.is_ipv6());
    let (echo, a) = echo_on(server, a);
    let payload = pattern(100_000, 3);
    let c = echo_client(&lp, a, payload.clone());
    run_until(&lp, || c.eof.get());
    assert_eq!(*c.got.borrow(), payload);
    assert_eq!(c.tcp.local_addr().unwrap().ip(), a.ip());
    drop((c, echo));
    close_clean(lp);
}

#[test]
fn large_transfer_8_mib_in_many_writes() {
    const CHUNK: usize = 64 * 1024;
    const CHUNKS: usize = 128; // 8 MiB
    let lp = Loop::new().unwrap();
    let (server, a) = listener(&lp, LOCAL4);
    let received: Rc<RefCell<Vec<u8>>> = Rc::default();
    let eof = Rc::new(Cell::new(false));
    let conn_slot: Rc<RefCell<Option<Tcp>>> = Rc::default();
    let (r2, e2, s2) = (received.clone(), eof.clone(), conn_slot.clone());
    server
        .listen(16, move |srv, _| {
            let conn = srv.accept().unwrap();
            let (r3, e3) = (r2.clone(), e2.clone());
            conn.read_start(move |_, data| match data {
                Ok(bytes) => r3.borrow_mut().extend_from_slice(bytes),
                Err(e) => {
                    assert_eq!(e, Error::EOF);
                    e3.set(true);
                }
            })
            .unwrap();
            *s2.borrow_mut() = Some(conn);
        })
        .unwrap();
    let client = Tcp::new(&lp).unwrap();
    let max_queued = Rc::new(Cell::new(0usize));
    let written = Rc::new(Cell::new(0usize));
    let (mq, w2) = (max_queued.clone(), written.clone());
    client
        .connect(a, move |c, res| {
            res.unwrap();
            for i in 0..CHUNKS {
                let chunk = pattern(CHUNK, i as u32);
                let w3 = w2.clone();
                c.write(chunk, move |_, res| {
                    res.unwrap();
                    w3.set(w3.get() + 1);
                })
                .unwrap();
                mq.set(mq.get().max(c.write_queue_size()));
            }
            c.shutdown(|_, res| res.unwrap()).unwrap();
        })
        .unwrap();
    run_until(&lp, || eof.get());
    assert_eq!(written.get(), CHUNKS);
    assert!(max_queued.get() > 0, "8 MiB cannot all go to the kernel at once");
    assert_eq!(client.write_queue_size(), 0);
    let expected: Vec<u8> = (0..CHUNKS).flat_map(|i| pattern(CHUNK, i as u32)).collect();
    assert_eq!(received.borrow().len(), expected.len());
    assert!(*received.borrow() == expected, "bytes differ");
    drop((server, client, conn_slot));
    close_clean(lp);
}

/// Raises the soft descriptor limit if it is low, so that hundreds of sockets fit.
fn ensure_fd_limit(want: u64) {
    #[cfg(unix)]
    // SAFETY: getrlimit/setrlimit with a valid struct pointer; raising the soft limit up to the hard one is
    // always allowed.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && (lim.rlim_cur as u64) < want {
            lim.rlim_cur = std::cmp::min(want as libc::rlim_t, lim.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
    #[cfg(not(unix))]
    let _ = want;
}

#[test]
fn many_concurrent_connections() {
    const CLIENTS: usize = 500;
    ensure_fd_limit(4096);
    let lp = Loop::new().unwrap();
    let (echo, a) = echo_server(&lp, LOCAL4);
    let clients: Vec<(Client, Vec<u8>)> = (0..CLIENTS)
        .map(|i| {
            let payload = pattern(1024, i as u32);
            (echo_client(&lp, a, payload.clone()), payload)
        })
        .collect();
    run_until(&lp, || clients.iter().all(|(c, _)| c.eof.get()));
    for (c, payload) in &clients {
        assert_eq!(*c.got.borrow(), *payload);
    }
    assert_eq!(echo.accepted.get(), CLIENTS);
    // Every server-side connection dropped itself after its graceful shutdown.
    run_until(&lp, || echo.conns.borrow().is_empty());
    drop((clients, echo));
    close_clean(lp);
}

// ----- connect errors and addresses -----

#[test]
fn connect_refused() {
    let lp = Loop::new().unwrap();
    // A bound socket that does not listen holds the port, so no test running beside this one can take it (a
    // listener dropped before connecting would free it: Windows hands out ports in sequence).
    let holder = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    holder.bind(&addr(LOCAL4).into()).unwrap();
    let port = holder.local_addr().unwrap().as_socket().unwrap().port();
    let t = Tcp::new(&lp).unwrap();
    let result = Rc::new(Cell::new(None));
    let r2 = result.clone();
    t.connect(SocketAddr::from(([127, 0, 0, 1], port)), move |_, res| r2.set(Some(res))).unwrap();
    lp.run(RunMode::Default).unwrap();
    assert_eq!(result.get(), Some(Err(Error::ECONNREFUSED)));
    drop((t, holder));
    close_clean(lp);
}

#[test]
fn connect_cancelled_when_dropped_first() {
    let lp = Loop::new().unwrap();
    let (server, a) = listener(&lp, LOCAL4);
    server.listen(16, |_, _| {}).unwrap();
    let t = Tcp::new(&lp).unwrap();
    let result = Rc::new(Cell::new(None));
    let r2 = result.clone();
    t.connect(a, move |c, res| {
        assert!(c.is_closing());
        r2.set(Some(res));
    })
    .unwrap();
    drop(t);
    drop(server);
    lp.run(RunMode::Default).unwrap();
    assert_eq!(result.get(), Some(Err(Error::ECANCELED)));
    close_clean(lp);
}

#[test]
fn connect_twice_is_refused() {
    let lp = Loop::new().unwrap();
    let (server, a) = listener(&lp, LOCAL4);
    server.listen(16, |_, _| {}).unwrap();
    let t = Tcp::new(&lp).unwrap();
    let n = Rc::new(Cell::new(0));
    let n2 = n.clone();
    t.connect(a, move |_, res| {
        res.unwrap();
        n2.set(n2.get() + 1);
    })
    .unwrap();
    let second = t.connect(a, |_, _| panic!("the second connect must not run"));
    let err = second.unwrap_err();
    if cfg!(windows) {
        // libuv issues a second ConnectEx, which Windows refuses: WSAEALREADY, WSAEINVAL (Wine) or, once the
        // first one has completed in the kernel but not yet in the loop, WSAEISCONN.
        assert!([Error::EALREADY, Error::EINVAL, Error::EISCONN].contains(&err), "{err:?}");
    } else {
        assert_eq!(err, Error::EALREADY);
    }
    run_until(&lp, || n.get() == 1);
    drop((t, server));
    close_clean(lp);
}

#[test]
fn local_and_peer_addr() {
    let lp = Loop::new().unwrap();
    let (server, a) = listener(&lp, LOCAL4);
    assert_eq!(a.ip(), addr(LOCAL4).ip());
    assert_ne!(a.port(), 0);
    assert_eq!(server.peer_addr().unwrap_err(), Error::ENOTCONN, "a listener has no peer");
    let slot: Rc<RefCell<Option<Tcp>>> = Rc::default();
    let s2 = slot.clone();
    server.listen(16, move |srv, _| *s2.borrow_mut() = Some(srv.accept().unwrap())).unwrap();
    let client = Tcp::new(&lp).unwrap();
    let ok = Rc::new(Cell::new(false));
    let ok2 = ok.clone();
    client.connect(a, move |_, res| ok2.set(res.is_ok())).unwrap();
    run_until(&lp, || ok.get() && slot.borrow().is_some());
    let accepted = slot.borrow_mut().take().unwrap();
    assert_eq!(client.peer_addr().unwrap(), a);
    assert_eq!(accepted.local_addr().unwrap(), a);
    assert_eq!(accepted.peer_addr().unwrap(), client.local_addr().unwrap());
    drop((server, client, accepted));
    close_clean(lp);
}

#[test]
fn peer_addr_before_connect() {
    let lp = Loop::new().unwrap();
    let fresh = Tcp::new(&lp).unwrap();
    // No socket exists before bind or connect.
    assert_eq!(fresh.peer_addr().unwrap_err(), Error::EBADF);
    let bound = Tcp::new(&lp).unwrap();
    bound.bind(addr(LOCAL4)).unwrap();
    assert_eq!(bound.peer_addr().unwrap_err(), Error::ENOTCONN);
    let early = Tcp::new_for(&lp, false).unwrap();
    assert_eq!(early.peer_addr().unwrap_err(), Error::ENOTCONN);
    drop((fresh, bound, early));
    close_clean(lp);
}

// ----- options -----

#[test]
fn socket_options() {
    let lp = Loop::new().unwrap();
    let (server, client) = connected_pair(&lp);
    for t in [&server, &client] {
        t.set_nodelay(true).unwrap();
        t.set_nodelay(false).unwrap();
        t.set_keepalive(Some(Duration::from_secs(30))).unwrap();
        t.set_keepalive(Some(Duration::ZERO)).unwrap(); // clamped to libuv's minimum of one second
        t.set_keepalive(None).unwrap();
        t.set_keepalive_ex(60, 10, 3).unwrap();
        if cfg!(windows) {
            // A setting of listeners: libuv refuses it on a connection.
            assert_eq!(t.set_simultaneous_accepts(true).unwrap_err(), Error::EINVAL);
        } else {
            t.set_simultaneous_accepts(true).unwrap();
        }
    }
    let listener_only = Tcp::new(&lp).unwrap();
    listener_only.set_simultaneous_accepts(false).unwrap();
    drop((server, client, listener_only));
    close_clean(lp);
}

#[cfg(target_os = "linux")]
#[test]
fn bind_with_reuse_port_shares_a_port() {
    let lp = Loop::new().unwrap();
    let flags = TcpBindFlags { reuse_port: true, ..Default::default() };
    let a = Tcp::new(&lp).unwrap();
    a.bind_with(addr(LOCAL4), flags).unwrap();
    let at = a.local_addr().unwrap();
    let b = Tcp::new(&lp).unwrap();
    b.bind_with(at, flags).unwrap();
    assert_eq!(b.local_addr().unwrap(), at);
    a.listen(16, |_, _| {}).unwrap();
    b.listen(16, |_, _| {}).unwrap();
    // Without the flag the same port is taken (the error may surface at bind or at listen).
    let c = Tcp::new(&lp).unwrap();
    let taken = c.bind(at).and_then(|()| c.listen(16, |_, _| {}));
    assert_eq!(taken.unwrap_err(), Error::EADDRINUSE);
    drop((a, b, c));
    close_clean(lp);
}

#[test]
fn ipv6_only_leaves_ipv4_port_free() {
    let lp = Loop::new().unwrap();
    let probe = listener_v6(&lp);
    if probe.is_none() {
        close_clean(lp);
        return;
    }
    drop(probe);
    let t = Tcp::new(&lp).unwrap();
    t.bind_with(addr("[::]:0"), TcpBindFlags { ipv6_only: true, ..Default::default() }).unwrap();
    t.listen(16, |_, _| {}).unwrap();
    let port = t.local_addr().unwrap().port();
    // IPv4 is not covered by the IPv6-only listener: the same port is free on 0.0.0.0.
    let v4 = std::net::TcpListener::bind(("0.0.0.0", port));
    assert!(v4.is_ok(), "{v4:?}");
    // IPv6-only with an IPv4 address is refused synchronously.
    let bad = Tcp::new(&lp).unwrap();
    let err = bad.bind_with(addr(LOCAL4), TcpBindFlags { ipv6_only: true, ..Default::default() });
    assert_eq!(err.unwrap_err(), Error::EINVAL);
    drop((t, bad));
    close_clean(lp);
}

#[test]
fn new_for_creates_the_socket_early() {
    let lp = Loop::new().unwrap();
    let v4 = Tcp::new_for(&lp, false).unwrap();
    assert_unbound(&v4, "0.0.0.0:0");
    v4.set_nodelay(true).unwrap(); // the socket exists before bind
    v4.bind(addr(LOCAL4)).unwrap();
    assert_ne!(v4.local_addr().unwrap().port(), 0);
    match Tcp::new_for(&lp, true) {
        Ok(v6) => {
            assert_unbound(&v6, "[::]:0");
            assert!(v6.bind(addr(LOCAL4)).is_err(), "an IPv6 socket cannot bind an IPv4 address");
        }
        Err(e) => {
            assert_eq!(e, Error::EAFNOSUPPORT);
            eprintln!("note: no IPv6 sockets here; skipped the ipv6 half");
        }
    }
    drop(v4);
    close_clean(lp);
}

/// The local address of a socket not bound yet: the wildcard address with port 0; Windows' getsockname refuses
/// (WSAEINVAL) on an unbound socket.
fn assert_unbound(t: &Tcp, wildcard: &str) {
    if cfg!(windows) {
        assert_eq!(t.local_addr().unwrap_err(), Error::EINVAL);
    } else {
        assert_eq!(t.local_addr().unwrap(), addr(wildcard));
    }
}

// ----- std sockets -----

#[test]
fn open_stream_from_std() {
    let lp = Loop::new().unwrap();
    let std_listener = std::net::TcpListener::bind(LOCAL4).unwrap();
    let std_client = std::net::TcpStream::connect(std_listener.local_addr().unwrap()).unwrap();
    let (mut std_server, _) = std_listener.accept().unwrap();
    let t = Tcp::open_stream(&lp, std_client).unwrap();
    assert_eq!(t.peer_addr().unwrap(), std_listener.local_addr().unwrap());
    let payload = pattern(50_000, 11);
    let done = Rc::new(Cell::new(false));
    let d2 = done.clone();
    t.write(payload.clone(), move |c, res| {
        res.unwrap();
        c.shutdown(move |_, res| {
            res.unwrap();
            d2.set(true);
        })
        .unwrap();
    })
    .unwrap();
    run_until(&lp, || done.get());
    let mut got = Vec::new();
    std_server.read_to_end(&mut got).unwrap();
    assert!(got == payload);
    // And the other direction.
    std_server.write_all(b"from std").unwrap();
    drop(std_server);
    let got: Rc<RefCell<Vec<u8>>> = Rc::default();
    let eof = Rc::new(Cell::new(false));
    let (g2, e2) = (got.clone(), eof.clone());
    t.read_start(move |_, data| match data {
        Ok(b) => g2.borrow_mut().extend_from_slice(b),
        Err(e) => {
            assert_eq!(e, Error::EOF);
            e2.set(true);
        }
    })
    .unwrap();
    run_until(&lp, || eof.get());
    assert_eq!(&got.borrow()[..], b"from std");
    drop(t);
    close_clean(lp);
}

#[test]
fn open_listener_from_std() {
    let lp = Loop::new().unwrap();
    let std_listener = std::net::TcpListener::bind(LOCAL4).unwrap();
    let a = std_listener.local_addr().unwrap();
    let server = Tcp::open_listener(&lp, std_listener).unwrap();
    assert_eq!(server.local_addr().unwrap(), a);
    let (echo, a) = echo_on(server, a);
    // A blocking std client would stall the loop's thread, so the client is a uv client too.
    let payload = pattern(4096, 5);
    let c = echo_client(&lp, a, payload.clone());
    run_until(&lp, || c.eof.get());
    assert_eq!(*c.got.borrow(), payload);
    drop((c, echo));
    close_clean(lp);
}

// ----- writing -----

#[test]
fn try_write_until_eagain() {
    let lp = Loop::new().unwrap();
    let unconnected = Tcp::new(&lp).unwrap();
    // Unix: no descriptor yet; Windows: libuv checks the handle is writable first.
    let expected = if cfg!(windows) { Error::EPIPE } else { Error::EBADF };
    assert_eq!(unconnected.try_write(b"x").unwrap_err(), expected);
    let (server, client) = connected_pair(&lp);
    assert_eq!(client.try_write(b"abc").unwrap(), 3);
    // Nobody reads on the server side: the kernel buffers fill up and try_write says EAGAIN.
    let chunk = vec![7u8; 64 * 1024];
    let mut total = 3usize;
    let err = loop {
        match client.try_write(&chunk) {
            Ok(n) => {
                assert!(n > 0 && n <= chunk.len());
                total += n;
                assert!(total < 1 << 30, "the kernel never pushed back");
            }
            Err(e) => break e,
        }
    };
    assert_eq!(err, Error::EAGAIN);
    // A queued write makes try_write refuse too (it would reorder the bytes). 4 MiB cannot all fit.
    let cancelled = Rc::new(Cell::new(None));
    let c2 = cancelled.clone();
    client.write(vec![8u8; 4 << 20], move |_, res| c2.set(Some(res))).unwrap();
    assert!(client.write_queue_size() > 0);
    assert_eq!(client.try_write(b"y").unwrap_err(), Error::EAGAIN);
    drop(client);
    lp.run(RunMode::Default).unwrap();
    assert_eq!(cancelled.get(), Some(Err(Error::ECANCELED)));
    drop((server, unconnected));
    close_clean(lp);
}

#[test]
fn shutdown_gives_peer_eof_and_blocks_later_writes() {
    let lp = Loop::new().unwrap();
    let (server, client) = connected_pair(&lp);
    let got: Rc<RefCell<Vec<u8>>> = Rc::default();
    let eof = Rc::new(Cell::new(false));
    let (g2, e2) = (got.clone(), eof.clone());
    server
        .read_start(move |_, data| match data {
            Ok(b) => g2.borrow_mut().extend_from_slice(b),
            Err(e) => {
                assert_eq!(e, Error::EOF);
                e2.set(true);
            }
        })
        .unwrap();
    client.write(&b"last words"[..], |_, res| res.unwrap()).unwrap();
    let shut = Rc::new(Cell::new(None));
    let s2 = shut.clone();
    client.shutdown(move |_, res| s2.set(Some(res))).unwrap();
    // After shutdown the write side is gone: writes and a second shutdown fail at once.
    assert!(!client.is_writable());
    assert_eq!(client.write(&b"more"[..], |_, _| panic!("never queued")).unwrap_err(), Error::EPIPE);
    assert_eq!(client.shutdown(|_, _| panic!("never queued")).unwrap_err(), Error::ENOTCONN);
    run_until(&lp, || eof.get());
    assert_eq!(shut.get(), Some(Ok(())));
    assert_eq!(&got.borrow()[..], b"last words");
    assert!(client.is_readable(), "shutdown closes only the write side");
    drop((server, client));
    close_clean(lp);
}

#[test]
fn drop_with_queued_writes_cancels_them() {
    const WRITES: usize = 16;
    let lp = Loop::new().unwrap();
    let (server, client) = connected_pair(&lp);
    // The server never reads, so most of the 16 MiB stay queued in libuv.
    let results: Rc<RefCell<Vec<Result<(), Error>>>> = Rc::default();
    for i in 0..WRITES {
        let r2 = results.clone();
        client
            .write(pattern(1 << 20, i as u32), move |c, res| {
                if res.is_err() {
                    assert!(c.is_closing());
                }
                r2.borrow_mut().push(res);
            })
            .unwrap();
    }
    assert!(client.write_queue_size() > 0);
    drop(client);
    lp.run(RunMode::Default).unwrap();
    let results = results.borrow();
    assert_eq!(results.len(), WRITES, "every write callback runs exactly once");
    let cancelled = results.iter().filter(|r| **r == Err(Error::ECANCELED)).count();
    assert!(cancelled > 0, "{results:?}");
    assert!(results.iter().all(|r| r.is_ok() || *r == Err(Error::ECANCELED)), "{results:?}");
    // Completions come in order: successes first, then the cancelled ones.
    let first_cancel = results.iter().position(|r| r.is_err()).unwrap();
    assert!(results[first_cancel..].iter().all(|r| r.is_err()));
    drop(server);
    close_clean(lp);
}

#[test]
fn write_accepts_static_string_box_vec_and_vectored() {
    let lp = Loop::new().unwrap();
    let (server, client) = connected_pair(&lp);
    let got: Rc<RefCell<Vec<u8>>> = Rc::default();
    let eof = Rc::new(Cell::new(false));
    let (g2, e2) = (got.clone(), eof.clone());
    server
        .read_start(move |_, data| match data {
            Ok(b) => g2.borrow_mut().extend_from_slice(b),
            Err(_) => e2.set(true),
        })
        .unwrap();
    let order = Rc::new(RefCell::new(Vec::new()));
    let push = |tag: &'static str| {
        let o = order.clone();
        move |_: &Tcp, res: uvio::Result<()>| {
            res.unwrap();
            o.borrow_mut().push(tag)
        }
    };
    client.write(&b"static;"[..], push("static")).unwrap();
    client.write(String::from("string;"), push("string")).unwrap();
    client.write(Box::<[u8]>::from(&b"box;"[..]), push("box")).unwrap();
    client.write(Vec::from(b"vec;"), push("vec")).unwrap();
    client.write(*b"array;", push("array")).unwrap();
    client.write_vectored(vec!["a", "b", "c;"], push("vectored")).unwrap();
    // More buffers than fit in the stack array of descriptors.
    let many: Vec<Vec<u8>> = (0..40u8).map(|i| vec![b'A' + (i % 26); 3]).collect();
    let many_bytes: Vec<u8> = many.concat();
    client.write_vectored(many, push("many")).unwrap();
    assert_eq!(client.write_vectored(Vec::<&[u8]>::new(), |_, _| {}).unwrap_err(), Error::EINVAL);
    client.shutdown(|_, res| res.unwrap()).unwrap();
    run_until(&lp, || eof.get());
    let mut expected = b"static;string;box;vec;array;abc;".to_vec();
    expected.extend_from_slice(&many_bytes);
    assert_eq!(*got.borrow(), expected);
    assert_eq!(*order.borrow(), ["static", "string", "box", "vec", "array", "vectored", "many"]);
    drop((server, client));
    close_clean(lp);
}

fn write_next(c: &Tcp, i: u32, n: u32, done: Rc<Cell<u32>>) {
    if i == n {
        c.shutdown(|_, res| res.unwrap()).unwrap();
        return;
    }
    c.write(format!("{i};"), move |c, res| {
        res.unwrap();
        done.set(i + 1);
        write_next(c, i + 1, n, done);
    })
    .unwrap();
}

#[test]
fn writes_chained_from_write_callbacks_stay_in_order() {
    let lp = Loop::new().unwrap();
    let (server, client) = connected_pair(&lp);
    let got: Rc<RefCell<Vec<u8>>> = Rc::default();
    let eof = Rc::new(Cell::new(false));
    let (g2, e2) = (got.clone(), eof.clone());
    server
        .read_start(move |_, data| match data {
            Ok(b) => g2.borrow_mut().extend_from_slice(b),
            Err(_) => e2.set(true),
        })
        .unwrap();
    let done = Rc::new(Cell::new(0));
    write_next(&client, 0, 100, done.clone());
    run_until(&lp, || eof.get());
    assert_eq!(done.get(), 100);
    let expected: String = (0..100).map(|i| format!("{i};")).collect();
    assert_eq!(String::from_utf8(got.borrow().clone()).unwrap(), expected);
    drop((server, client));
    close_clean(lp);
}

// ----- reading -----

#[test]
fn read_stop_then_read_start_resumes() {
    let lp = Loop::new().unwrap();
    let (server, client) = connected_pair(&lp);
    let log: Rc<RefCell<Vec<Vec<u8>>>> = Rc::default();
    let stopped = Rc::new(Cell::new(false));
    let (l2, st2) = (log.clone(), stopped.clone());
    server
        .read_start(move |s, data| {
            assert!(!st2.get(), "no read may arrive while stopped");
            l2.borrow_mut().push(data.unwrap().to_vec());
            s.read_stop().unwrap();
            st2.set(true);
        })
        .unwrap();
    client.write(&b"one"[..], |_, res| res.unwrap()).unwrap();
    run_until(&lp, || stopped.get());
    // Data sent while stopped waits in the kernel.
    let sent = Rc::new(Cell::new(false));
    let s2 = sent.clone();
    client.write(&b"two"[..], move |_, res| s2.set(res.is_ok())).unwrap();
    run_until(&lp, || sent.get());
    assert!(!server.is_active(), "a stopped stream with no requests is inactive");
    assert_eq!(log.borrow().len(), 1);
    stopped.set(false);
    let l3 = log.clone();
    server.read_start(move |_, data| l3.borrow_mut().push(data.unwrap().to_vec())).unwrap();
    run_until(&lp, || log.borrow().len() == 2);
    assert_eq!(*log.borrow(), [b"one".to_vec(), b"two".to_vec()]);
    drop((server, client));
    close_clean(lp);
}

#[test]
fn read_start_twice_replaces_the_callback() {
    let lp = Loop::new().unwrap();
    let (server, client) = connected_pair(&lp);
    let which = Rc::new(Cell::new(""));
    let w1 = which.clone();
    server.read_start(move |_, _| w1.set("first")).unwrap();
    let w2 = which.clone();
    server.read_start(move |_, _| w2.set("second")).unwrap();
    client.write(&b"x"[..], |_, _| {}).unwrap();
    run_until(&lp, || !which.get().is_empty());
    assert_eq!(which.get(), "second");
    drop((server, client));
    close_clean(lp);
}

#[test]
fn drop_in_own_read_callback() {
    let lp = Loop::new().unwrap();
    let (server, client) = connected_pair(&lp);
    let slot = Rc::new(RefCell::new(Some(server)));
    let s2 = slot.clone();
    let checked = Rc::new(Cell::new(false));
    let ch2 = checked.clone();
    slot.borrow()
        .as_ref()
        .unwrap()
        .read_start(move |s, data| {
            assert_eq!(data.unwrap(), b"ping");
            let me = s2.borrow_mut().take();
            drop(me); // closes the stream from inside its own read callback
            assert!(s.is_closing());
            // Everything that needs an open handle says EINVAL now.
            assert_eq!(s.write(&b"x"[..], |_, _| panic!("never queued")).unwrap_err(), Error::EINVAL);
            assert_eq!(s.read_start(|_, _| {}).unwrap_err(), Error::EINVAL);
            assert_eq!(s.shutdown(|_, _| {}).unwrap_err(), Error::EINVAL);
            assert_eq!(s.try_write(b"x").unwrap_err(), Error::EINVAL);
            assert_eq!(s.set_nodelay(true).unwrap_err(), Error::EINVAL);
            assert_eq!(s.accept().unwrap_err(), Error::EINVAL);
            assert_eq!(s.local_addr().unwrap_err(), Error::EBADF);
            s.read_stop().unwrap(); // harmless
            ch2.set(true);
        })
        .unwrap();
    let peer_end = Rc::new(Cell::new(None));
    let p2 = peer_end.clone();
    client
        .read_start(move |_, data| {
            if let Err(e) = data {
                p2.set(Some(e));
            }
        })
        .unwrap();
    client.write(&b"ping"[..], |_, res| res.unwrap()).unwrap();
    run_until(&lp, || peer_end.get().is_some());
    assert!(checked.get());
    let e = peer_end.get().unwrap();
    assert!(e == Error::EOF || e == Error::ECONNRESET, "{e:?}");
    drop(client);
    close_clean(lp);
}

#[test]
fn panic_in_read_callback_resumes_from_run() {
    let lp = Loop::new().unwrap();
    let (server, client) = connected_pair(&lp);
    server.read_start(|_, _| panic!("boom in read")).unwrap();
    client.write(&b"x"[..], |_, _| {}).unwrap();
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_until(&lp, || false))).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"boom in read"));
    // The loop and the stream stay usable: a new callback gets the next bytes.
    let got = Rc::new(RefCell::new(Vec::new()));
    let g2 = got.clone();
    server.read_start(move |_, data| g2.borrow_mut().extend_from_slice(data.unwrap())).unwrap();
    client.write(&b"after"[..], |_, res| res.unwrap()).unwrap();
    run_until(&lp, || got.borrow().ends_with(b"after"));
    drop((server, client));
    close_clean(lp);
}

// ----- listening -----

#[test]
fn accept_without_pending_connection_is_eagain() {
    let lp = Loop::new().unwrap();
    let (server, _) = listener(&lp, LOCAL4);
    server.listen(16, |_, _| {}).unwrap();
    assert_eq!(server.accept().unwrap_err(), Error::EAGAIN);
    // A listener is not a data stream.
    assert_eq!(server.read_start(|_, _| {}).unwrap_err(), Error::ENOTCONN);
    drop(server);
    close_clean(lp);
}

#[test]
fn drop_server_in_own_connection_callback() {
    let lp = Loop::new().unwrap();
    let (server, a) = listener(&lp, LOCAL4);
    let slot = Rc::new(RefCell::new(Some(server)));
    let accepted: Rc<RefCell<Option<Tcp>>> = Rc::default();
    let (s2, acc2) = (slot.clone(), accepted.clone());
    slot.borrow()
        .as_ref()
        .unwrap()
        .listen(16, move |srv, res| {
            res.unwrap();
            *acc2.borrow_mut() = Some(srv.accept().unwrap());
            let me = s2.borrow_mut().take();
            drop(me);
            assert!(srv.is_closing());
            assert_eq!(srv.accept().unwrap_err(), Error::EINVAL);
            assert_eq!(srv.listen(16, |_, _| {}).unwrap_err(), Error::EINVAL);
        })
        .unwrap();
    let first = Tcp::new(&lp).unwrap();
    let ok = Rc::new(Cell::new(false));
    let ok2 = ok.clone();
    first.connect(a, move |_, res| ok2.set(res.is_ok())).unwrap();
    run_until(&lp, || ok.get() && slot.borrow().is_none());
    // The listening socket is gone: a new connection is refused.
    let second = Tcp::new(&lp).unwrap();
    let result = Rc::new(Cell::new(None));
    let r2 = result.clone();
    second.connect(a, move |_, res| r2.set(Some(res))).unwrap();
    run_until(&lp, || result.get().is_some());
    assert_eq!(result.get(), Some(Err(Error::ECONNREFUSED)));
    drop((first, second, accepted));
    close_clean(lp);
}

// ----- closing -----

#[test]
fn close_reset_gives_peer_econnreset() {
    let lp = Loop::new().unwrap();
    let (server, client) = connected_pair(&lp);
    let slot = Rc::new(RefCell::new(Some(server)));
    let s2 = slot.clone();
    slot.borrow()
        .as_ref()
        .unwrap()
        .read_start(move |_, data| {
            assert_eq!(data.unwrap(), b"bye");
            let me = s2.borrow_mut().take().unwrap();
            me.close_reset().unwrap();
        })
        .unwrap();
    let peer = Rc::new(Cell::new(None));
    let p2 = peer.clone();
    client
        .read_start(move |_, data| {
            if let Err(e) = data {
                p2.set(Some(e));
            }
        })
        .unwrap();
    client.write(&b"bye"[..], |_, res| res.unwrap()).unwrap();
    run_until(&lp, || peer.get().is_some());
    assert_eq!(peer.get(), Some(Error::ECONNRESET));
    drop(client);
    close_clean(lp);
}

#[test]
fn close_reset_with_pending_shutdown_is_einval_and_closes_normally() {
    let lp = Loop::new().unwrap();
    let (server, client) = connected_pair(&lp);
    let shut = Rc::new(Cell::new(None));
    let s2 = shut.clone();
    client.shutdown(move |_, res| s2.set(Some(res))).unwrap();
    assert_eq!(client.close_reset().unwrap_err(), Error::EINVAL);
    lp.run(RunMode::Default).unwrap();
    assert_eq!(shut.get(), Some(Err(Error::ECANCELED)));
    drop(server);
    close_clean(lp);
}

#[test]
fn handles_dropped_in_any_order_loop_first() {
    let lp = Loop::new().unwrap();
    let (server, client) = connected_pair(&lp);
    let (listening, _) = listener(&lp, LOCAL4);
    listening.listen(16, |_, _| {}).unwrap();
    server.read_start(|_, _| {}).unwrap();
    // Writes still queued when the last owner goes: their callbacks run during the orphaned close.
    let results: Rc<RefCell<Vec<Result<(), Error>>>> = Rc::default();
    for i in 0..8 {
        let r2 = results.clone();
        client.write(pattern(1 << 20, i), move |_, res| r2.borrow_mut().push(res)).unwrap();
    }
    drop(lp);
    drop(server);
    drop(listening);
    drop(client); // the last handle: closes, cancels its writes, and frees the loop
    let results = results.borrow();
    assert_eq!(results.len(), 8, "every write callback ran");
    // Depending on how far the orphaned loop got, writes succeeded, met the closed peer, or were cancelled.
    let expected = [Error::ECANCELED, Error::ECONNRESET, Error::EPIPE];
    assert!(results.iter().all(|r| r.map_or_else(|e| expected.contains(&e), |()| true)), "{results:?}");
}
