//! tokio's I/O traits on uvio streams (feature `tokio-io`): tokio-util codecs, tokio's extension traits, and a
//! hyper client talking to the hyper server of `examples/http_server.rs`, all on a uvio runtime.
#![cfg(feature = "tokio-io")]

#[path = "../examples/http_server.rs"]
#[allow(dead_code)] // its `main` is not used here
mod http_server;

mod common;

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::codec::{Framed, LinesCodec};
use uvio::net::{TcpListener, TcpStream};
use uvio::spawn_local;
use uvio::time::timeout;

/// A connected pair of TCP streams on loopback: (client, server side).
async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (client, server)
}

rt_test! {
    async fn framed_lines_codec_round_trip() {
        let (client, server) = tcp_pair().await;
        // The server shouts every line back until the client closes.
        let echo = spawn_local(async move {
            let mut lines = Framed::new(server, LinesCodec::new());
            let mut n = 0;
            while let Some(line) = lines.next().await {
                lines.send(line.unwrap().to_uppercase()).await.unwrap();
                n += 1;
            }
            n
        });
        let mut lines = Framed::new(client, LinesCodec::new());
        for word in ["hello", "uvio", "with", "tokio-util"] {
            lines.send(word).await.unwrap();
        }
        for word in ["HELLO", "UVIO", "WITH", "TOKIO-UTIL"] {
            assert_eq!(lines.next().await.unwrap().unwrap(), word);
        }
        SinkExt::<&str>::close(&mut lines).await.unwrap(); // flush + shutdown: the server's stream ends
        assert_eq!(echo.await.unwrap(), 4);
        assert!(lines.next().await.is_none(), "the server closed after our shutdown");
    }
}

rt_test! {
    async fn tokio_read_exact_write_all_and_shutdown() {
        let (mut client, mut server) = tcp_pair().await;
        let data: Vec<u8> = (0..1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        let expected = data.clone();
        let reader = spawn_local(async move {
            let mut head = [0u8; 10];
            server.read_exact(&mut head).await.unwrap();
            let mut rest = Vec::new();
            server.read_to_end(&mut rest).await.unwrap(); // until the client's shutdown
            assert_eq!(server.read(&mut [0u8; 4]).await.unwrap(), 0, "EOF stays EOF");
            server.write_all(b"done").await.unwrap();
            head.iter().chain(&rest).copied().eq(expected.iter().copied())
        });
        client.write_all(&data).await.unwrap();
        AsyncWriteExt::shutdown(&mut client).await.unwrap();
        assert!(reader.await.unwrap(), "bytes differ");
        let mut reply = String::new();
        client.read_to_string(&mut reply).await.unwrap();
        assert_eq!(reply, "done");
        assert_eq!(client.read(&mut []).await.unwrap(), 0, "an empty buffer reads nothing");
    }
}

rt_test! {
    async fn tokio_traits_on_split_halves() {
        let (client, server) = tcp_pair().await;
        let (mut r, mut w) = client.into_split();
        let (mut sr, mut sw) = server.into_split();
        let writer = spawn_local(async move {
            for i in 0..50u8 {
                w.write_all(&[i; 200]).await.unwrap();
            }
            w.shutdown().await.unwrap();
            w
        });
        let mut got = Vec::new();
        sr.read_to_end(&mut got).await.unwrap();
        assert_eq!(got.len(), 50 * 200);
        assert!(got.chunks(200).enumerate().all(|(i, c)| c.iter().all(|&b| b == i as u8)));
        sw.write_all(b"back").await.unwrap();
        let mut back = [0u8; 4];
        r.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"back");
        let w = writer.await.unwrap();
        assert!(r.reunite(w).is_ok());
    }
}

#[cfg(unix)]
rt_test! {
    async fn tokio_traits_on_unix_streams() {
        let (a, mut b) = uvio::net::UnixStream::pair().unwrap();
        let (mut ar, mut aw) = a.into_split();
        aw.write_all(b"over unix").await.unwrap();
        let mut buf = [0u8; 9];
        b.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"over unix");
        b.write_all(b"!").await.unwrap();
        b.shutdown().await.unwrap();
        let mut rest = Vec::new();
        ar.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"!");
    }
}

/// GETs `/` over `stream` with hyper's client and returns (status, Content-Length, body); `requests` times on
/// the same connection (keep-alive).
async fn get(stream: TcpStream, requests: usize) -> Vec<(u16, String, Bytes)> {
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    let driver = spawn_local(conn);
    let mut out = Vec::new();
    for _ in 0..requests {
        let req = Request::get("/").header("host", "127.0.0.1").body(Empty::<Bytes>::new()).unwrap();
        let resp = sender.send_request(req).await.unwrap();
        let status = resp.status().as_u16();
        let len = resp.headers()["content-length"].to_str().unwrap().to_owned();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        out.push((status, len, body));
    }
    drop(sender); // the client connection ends once its sender is gone
    driver.await.unwrap().unwrap();
    out
}

rt_test! {
    async fn hyper_client_gets_hello_from_the_example_server() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        spawn_local(http_server::serve(listener)); // dropped (cancelled) when the runtime closes
        let hello = (200, http_server::BODY.len().to_string(), Bytes::from_static(http_server::BODY));
        // One request, then keep-alive: three on one connection.
        let got = get(TcpStream::connect(addr).await.unwrap(), 1).await;
        assert_eq!(got, vec![hello.clone()]);
        let got = get(TcpStream::connect(addr).await.unwrap(), 3).await;
        assert_eq!(got, vec![hello.clone(); 3]);
        // Ten connections at once.
        let clients: Vec<_> = (0..10)
            .map(|_| spawn_local(async move { get(TcpStream::connect(addr).await.unwrap(), 2).await }))
            .collect();
        for c in clients {
            let got = timeout(Duration::from_secs(5), c).await.expect("no hang").unwrap();
            assert_eq!(got, vec![hello.clone(); 2]);
        }
    }
}

rt_test! {
    async fn hyper_server_survives_garbage_and_abrupt_clients() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        spawn_local(http_server::serve(listener));
        // Not HTTP: hyper answers 400 (or just closes); either way the connection ends.
        let mut junk = TcpStream::connect(addr).await.unwrap();
        junk.write_all(b"\x00\x01 definitely not http\r\n\r\n").await.unwrap();
        let mut reply = Vec::new();
        timeout(Duration::from_secs(5), junk.read_to_end(&mut reply)).await.expect("server closes").unwrap();
        assert!(reply.is_empty() || reply.starts_with(b"HTTP/1.1 400"), "{:?}", String::from_utf8_lossy(&reply));
        // A client that leaves mid-request.
        let mut quitter = TcpStream::connect(addr).await.unwrap();
        quitter.write_all(b"GET / HTTP/1.1\r\nHo").await.unwrap();
        drop(quitter);
        // The server still serves.
        let got = get(TcpStream::connect(addr).await.unwrap(), 1).await;
        assert_eq!(got[0].0, 200);
        assert_eq!(&got[0].2[..], http_server::BODY);
    }
}
