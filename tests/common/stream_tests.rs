//! The stream tests that hold for every [`StreamKind`], written once. `stream_kind_tests!(Tcp)` (or `Unix`)
//! defines each of them in the calling test binary as an `rt_test!` of the same name, so every one runs for
//! that kind on every engine: `cargo test incoming_stream_yields_connections` runs the TCP and the Unix one.

use std::path::Path;
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use uvio::spawn_local;
use uvio::time::{sleep, timeout};

use super::streams::StreamKind;
use super::{accepted_ahead_by, client_ids, read_all};

/// Defines every test of this module for the kind `$kind` (`Tcp` or `Unix`, from `common::streams`).
#[macro_export]
macro_rules! stream_kind_tests {
    ($kind:ident) => {
        $crate::stream_kind_tests!(@async $kind,
            large_transfer_is_byte_exact,
            shutdown_makes_the_peer_read_eof_while_reading_continues,
            split_halves_work_in_separate_tasks_and_reunite,
            dropped_accept_and_read_futures_leave_things_usable,
            dropped_connect_futures_are_cancelled_cleanly,
            dropping_a_stream_with_queued_writes_still_delivers_them,
            incoming_stream_yields_connections,
            listener_and_stream_from_std_work,
            a_listener_handed_to_std_can_come_back,
            a_stream_handed_to_std_keeps_unread_bytes_and_flushes_writes,
        );
        $crate::rt_test! {
            fn into_std_hands_over_the_connections_accepted_ahead_and_the_backlog() {
                $crate::common::stream_tests::into_std_hands_over_the_connections_accepted_ahead_and_the_backlog::<
                    $crate::common::streams::$kind,
                >(ENGINE)
            }
        }
    };
    (@async $kind:ident, $($name:ident),* $(,)?) => {
        $(
            $crate::rt_test! {
                async fn $name() {
                    $crate::common::stream_tests::$name::<$crate::common::streams::$kind>().await
                }
            }
        )*
    };
}

pub async fn large_transfer_is_byte_exact<K: StreamKind>() {
    let place = K::place("large");
    let (listener, addr) = place.listen().await;
    K::spawn_echo(listener);
    let data: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let (mut r, mut w) = K::into_split(K::connect(&addr).await.unwrap());
    let expected = data.clone();
    let reader = spawn_local(async move { read_all(&mut r).await == expected });
    w.write_all(&data).await.unwrap();
    w.close().await.unwrap(); // half-close: the echo server sees EOF and closes its side
    assert!(reader.await.unwrap(), "echoed bytes differ");
}

pub async fn shutdown_makes_the_peer_read_eof_while_reading_continues<K: StreamKind>() {
    let place = K::place("half-close");
    let (listener, addr) = place.listen().await;
    let server = spawn_local(async move {
        let mut conn = K::accept(&listener).await.unwrap();
        let mut all = Vec::new();
        conn.read_to_end(&mut all).await.unwrap(); // ends at the client's shutdown
        conn.write_all(b"bye").await.unwrap();
        all
    });
    let mut c = K::connect(&addr).await.unwrap();
    c.write_all(b"request").await.unwrap();
    K::shutdown(&c).await.unwrap();
    assert!(c.write_all(b"more").await.is_err(), "writing after shutdown is an error");
    let mut reply = Vec::new();
    c.read_to_end(&mut reply).await.unwrap();
    assert_eq!(reply, b"bye");
    assert_eq!(server.await.unwrap(), b"request");
}

pub async fn split_halves_work_in_separate_tasks_and_reunite<K: StreamKind>() {
    let place = K::place("split");
    let (listener, addr) = place.listen().await;
    K::spawn_echo(listener);
    let (mut r, mut w) = K::into_split(K::connect(&addr).await.unwrap());
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
    assert_eq!(K::write_half_peer_addr(&w), addr);
    // Halves of different streams do not reunite.
    let (r2, w2) = K::into_split(K::connect(&addr).await.unwrap());
    let (r, w2) = K::reunite(r, w2).map(drop).unwrap_err();
    drop((r2, w2));
    let s = K::reunite(r, w).map_err(drop).unwrap();
    assert_eq!(K::peer_addr(&s), addr);
}

pub async fn dropped_accept_and_read_futures_leave_things_usable<K: StreamKind>() {
    let place = K::place("cancel");
    let (listener, addr) = place.listen().await;
    // An accept that times out (dropped mid-flight), then a real one.
    assert!(timeout(Duration::from_millis(5), K::accept(&listener)).await.is_err());
    let client = spawn_local(async move { K::connect(&addr).await.unwrap() });
    let mut conn = K::accept(&listener).await.unwrap();
    let mut client = client.await.unwrap();
    // A read dropped mid-flight, then data arrives and a new read gets all of it.
    let mut buf = [0u8; 4];
    assert!(timeout(Duration::from_millis(5), conn.read(&mut buf)).await.is_err());
    client.write_all(b"late").await.unwrap();
    conn.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"late");
}

pub async fn dropped_connect_futures_are_cancelled_cleanly<K: StreamKind>() {
    const DROPPED: usize = 50;
    let place = K::place("cancel-connect");
    let (listener, addr) = place.listen().await;
    // The server answers the first connection that says "ok"; the cancelled ones that the kernel completed read
    // EOF or an error.
    let server = spawn_local(async move {
        let mut skipped = 0;
        loop {
            let mut conn = K::accept(&listener).await.unwrap();
            let mut b = [0u8; 2];
            if conn.read_exact(&mut b).await.is_ok() && &b == b"ok" {
                conn.write_all(b"yes").await.unwrap();
                return skipped;
            }
            skipped += 1;
        }
    });
    for _ in 0..DROPPED {
        let mut fut = Box::pin(K::connect(&addr));
        let _ = futures::poll!(fut.as_mut()); // the connect is in flight; dropping it cancels it
    }
    let mut c = K::connect(&addr).await.unwrap();
    c.write_all(b"ok").await.unwrap();
    let mut reply = [0u8; 3];
    c.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"yes");
    assert!(server.await.unwrap() <= DROPPED);
}

pub async fn dropping_a_stream_with_queued_writes_still_delivers_them<K: StreamKind>() {
    let place = K::place("linger");
    let (listener, addr) = place.listen().await;
    let data: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| i as u8).collect();
    let expected = data.clone();
    let server = spawn_local(async move {
        let mut conn = K::accept(&listener).await.unwrap();
        sleep(Duration::from_millis(20)).await; // let the client's writes pile up in user space
        read_all(&mut conn).await == expected
    });
    let mut c = K::connect(&addr).await.unwrap();
    // write_all returns once every byte is accepted (most of it queued by the engine), then we drop at once.
    c.write_all(&data).await.unwrap();
    drop(c);
    assert!(server.await.unwrap(), "bytes accepted by write_all were lost on drop");
}

pub async fn incoming_stream_yields_connections<K: StreamKind>() {
    let place = K::place("incoming");
    let (listener, addr) = place.listen().await;
    let server = spawn_local(async move {
        let mut n = 0;
        let mut incoming = std::pin::pin!(K::incoming(&listener));
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
        let mut c = K::connect(&addr).await.unwrap();
        let mut b = [0u8; 1];
        c.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"!");
    }
    assert_eq!(server.await.unwrap(), 3);
}

/// Both take over sockets std created: a bound listener and a connected stream.
pub async fn listener_and_stream_from_std_work<K: StreamKind>() {
    let place = K::place("from-std");
    let (std_listener, addr) = place.std_listen();
    let listener = K::listener_from_std(std_listener).unwrap();
    assert_eq!(K::local_addr(&listener), addr);
    K::spawn_echo(listener);
    let mut s = K::stream_from_std(K::std_connect(&addr).unwrap()).unwrap();
    assert_eq!(K::peer_addr(&s), addr);
    assert_echoed(&mut s, b"std").await;
}

pub async fn a_listener_handed_to_std_can_come_back<K: StreamKind>() {
    let place = K::place("listener-back");
    let (listener, addr) = place.listen().await;
    let (std_listener, ahead) = K::listener_into_std(listener).unwrap();
    assert!(ahead.is_empty(), "nobody connected");
    assert_eq!(K::std_listener_addr(&std_listener), addr);
    K::spawn_echo(K::listener_from_std(std_listener).unwrap());
    assert_echoed(&mut K::connect(&addr).await.unwrap(), b"back").await;
}

/// Writes `msg` to a stream connected to an echo server and asserts the same bytes come back.
async fn assert_echoed(s: &mut (impl futures::AsyncRead + futures::AsyncWrite + Unpin), msg: &[u8]) {
    s.write_all(msg).await.unwrap();
    let mut back = vec![0u8; msg.len()];
    s.read_exact(&mut back).await.unwrap();
    assert_eq!(back, msg);
}

/// The hand-over of a connected stream to std (`into_std`): the server has read part of what the client sent
/// and queued writes of its own; `into_std` gives back the blocking std stream and the bytes the engine had
/// already taken in. Checked: every byte the client sent arrives once, in order (the unread ones, then the std
/// stream's), and the client gets what was queued before the hand-over and then what std writes.
pub async fn a_stream_handed_to_std_keeps_unread_bytes_and_flushes_writes<K: StreamKind>() {
    use std::io::{Read, Write};
    let place = K::place("stream-into-std");
    let (listener, addr) = place.listen().await;
    let mut client = K::connect(&addr).await.unwrap();
    let mut server = K::accept(&listener).await.unwrap();
    client.write_all(b"hello world").await.unwrap();
    client.flush().await.unwrap();
    let mut first = [0u8; 5];
    server.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"hello");
    sleep(Duration::from_millis(20)).await; // the rest arrives, and the engine may take it in
    server.write_all(&[b'x'; 4_000]).await.unwrap(); // written through uvio just before the hand-over
    let (mut std_server, unread) = K::stream_into_std(server).await.unwrap();
    client.write_all(b" and more").await.unwrap();
    client.close().await.unwrap();
    let mut rest = Vec::new();
    std_server.read_to_end(&mut rest).unwrap(); // blocking mode
    assert_eq!([unread, rest].concat(), b" world and more", "every byte once, in order");
    std_server.write_all(b"!").unwrap();
    drop(std_server);
    let echoed = read_all(&mut client).await;
    assert_eq!(echoed.len(), 4_001);
    assert!(echoed[..4_000].iter().all(|&b| b == b'x'));
    assert_eq!(echoed[4_000], b'!');
}

/// A listener's hand-over to std (`into_std`) with clients waiting: those the engine accepted ahead come back
/// with the std listener, the rest wait in its backlog; every client arrives exactly once, and a socket file
/// stays (it is the std listener's now).
pub fn into_std_hands_over_the_connections_accepted_ahead_and_the_backlog<K: StreamKind>(engine: &str) {
    use std::io::Write;
    const CLIENTS: usize = 5;
    let place = K::place("listener-into-std");
    let rt = super::rt::runtime(engine);
    let expected_ahead = accepted_ahead_by(&rt, CLIENTS);
    let addr = rt.block_on(async {
        let (listener, addr) = place.listen().await;
        // An accept that gives up leaves the engine accepting (io_uring's multishot stays armed).
        assert!(timeout(Duration::from_millis(10), K::accept(&listener)).await.is_err());
        // Each client connects (the kernel completes the handshake) and says who it is.
        let clients: Vec<K::StdStream> = (0..CLIENTS as u8)
            .map(|id| {
                let mut c = K::std_connect(&addr).unwrap();
                c.write_all(&[id]).unwrap();
                c
            })
            .collect();
        sleep(Duration::from_millis(100)).await; // the engine accepts ahead what it will
        let (std_listener, ahead) = K::listener_into_std(listener).unwrap();
        let n = ahead.len();
        assert!(expected_ahead.contains(&n), "{n} accepted ahead, expected {expected_ahead:?}");
        // Every client arrives exactly once: first those accepted ahead, then the kernel's backlog.
        let backlog = (n..CLIENTS).map(|_| K::std_accept(&std_listener).unwrap());
        let ids = client_ids(ahead.into_iter().chain(backlog));
        assert_eq!(ids, (0..CLIENTS as u8).collect::<Vec<_>>());
        assert!(K::socket_file(&addr).is_none_or(Path::exists), "the socket file is the std listener's now");
        // A connection made after the hand-over reaches the std listener too.
        let _late = K::std_connect(&addr).unwrap();
        assert!(K::std_accept(&std_listener).is_ok());
        drop(clients);
        addr
    });
    rt.close().expect("runtime closes cleanly");
    assert!(K::socket_file(&addr).is_none_or(Path::exists), "not removed by uvio after the hand-over");
}
