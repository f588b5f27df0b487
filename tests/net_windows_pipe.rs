//! Async Windows named pipe tests: echo, end-of-stream when the server drops its end, several clients in turn and
//! many at once, and the error cases (missing pipe, name already bound, NUL byte in the name). Each test uses its
//! own pipe name.
#![cfg(windows)]

mod common;

use std::io::ErrorKind;

use futures::{AsyncReadExt, AsyncWriteExt};
use uvio::net::{NamedPipeListener, NamedPipeStream};
use uvio::spawn_local;

/// A pipe name no other test (or concurrent test run) uses.
fn pipe_name(tag: &str) -> String {
    format!(r"\\.\pipe\uvio-test-{tag}-{}", std::process::id())
}

rt_test! {
    async fn echo_over_a_named_pipe() {
        let name = pipe_name("echo");
        let listener = NamedPipeListener::bind(&name).unwrap();
        assert_eq!(listener.local_name().unwrap().to_str(), Some(name.as_str()));
        let server = spawn_local(async move {
            let mut conn = listener.accept().await.unwrap();
            let mut buf = [0u8; 10];
            conn.read_exact(&mut buf).await.unwrap();
            conn.write_all(&buf).await.unwrap();
            listener
        });
        let mut c = NamedPipeStream::connect(&name).await.unwrap();
        c.write_all(b"hello pipe").await.unwrap();
        let mut back = [0u8; 10];
        c.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"hello pipe");
        drop(server.await.unwrap());
    }
}

rt_test! {
    fn server_drop_is_end_of_stream_after_the_data() {
        let name = pipe_name("eof");
        let payload: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let expected = payload.clone();
        let got = run(async move {
            let listener = NamedPipeListener::bind(&name).unwrap();
            let server = spawn_local(async move {
                let mut conn = listener.accept().await.unwrap();
                conn.write_all(&payload).await.unwrap();
                // Dropped with the bytes maybe still queued: they reach the client before end-of-stream.
            });
            let mut c = NamedPipeStream::connect(&name).await.unwrap();
            let mut all = Vec::new();
            c.read_to_end(&mut all).await.unwrap();
            server.await.unwrap();
            all
        });
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "bytes arrive in order and complete");
    }
}

rt_test! {
    fn several_clients_are_accepted_in_turn() {
        let name = pipe_name("many");
        let seen = run(async {
            let listener = NamedPipeListener::bind(&name).unwrap();
            let server = spawn_local(async move {
                let mut seen = Vec::new();
                for _ in 0..3 {
                    let mut conn = listener.accept().await.unwrap();
                    let mut b = [0u8; 1];
                    conn.read_exact(&mut b).await.unwrap();
                    conn.write_all(&b).await.unwrap();
                    seen.push(b[0]);
                }
                seen
            });
            for i in 0..3u8 {
                let mut c = NamedPipeStream::connect(&name).await.unwrap();
                c.write_all(&[b'a' + i]).await.unwrap();
                let mut b = [0u8; 1];
                c.read_exact(&mut b).await.unwrap();
                assert_eq!(b[0], b'a' + i);
            }
            server.await.unwrap()
        });
        assert_eq!(seen, b"abc");
    }
}

rt_test! {
    fn connect_to_a_missing_pipe_is_not_found() {
        let name = pipe_name("missing");
        let err = run(async { NamedPipeStream::connect(&name).await.unwrap_err() });
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    }
}

rt_test! {
    fn binding_a_held_name_is_addr_in_use() {
        let name = pipe_name("twice");
        let err = run(async {
            let first = NamedPipeListener::bind(&name).unwrap();
            let err = NamedPipeListener::bind(&name).unwrap_err();
            drop(first);
            err
        });
        assert_eq!(err.kind(), ErrorKind::AddrInUse, "{err}");
    }
}

rt_test! {
    async fn nul_byte_in_the_name_is_invalid_input() {
        let name = format!("{}\0x", pipe_name("nul"));
        assert_eq!(NamedPipeListener::bind(&name).unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(NamedPipeStream::connect(&name).await.unwrap_err().kind(), ErrorKind::InvalidInput);
    }
}

rt_test! {
    fn many_clients_at_once_each_get_their_own_echo() {
        // Framed (a length, then the bytes) rather than half-closed: named pipes have no half-close (see
        // NamedPipeStream::shutdown), and a reply must not depend on libuv's emulation of it.
        const CLIENTS: usize = 64;
        let name = pipe_name("crowd");
        let served = run(async {
            let listener = NamedPipeListener::bind(&name).unwrap();
            let server = spawn_local(async move {
                let mut conns = Vec::new();
                for _ in 0..CLIENTS {
                    let mut conn = listener.accept().await.unwrap();
                    conns.push(spawn_local(async move {
                        let mut len = [0u8; 4];
                        conn.read_exact(&mut len).await.unwrap();
                        let mut buf = vec![0u8; u32::from_le_bytes(len) as usize];
                        conn.read_exact(&mut buf).await.unwrap();
                        conn.write_all(&buf).await.unwrap();
                        conn.flush().await.unwrap();
                        conn
                    }));
                }
                let mut kept = Vec::new();
                for c in conns {
                    kept.push(c.await.unwrap());
                }
                kept.len()
            });
            let clients: Vec<_> = (0..CLIENTS)
                .map(|i| {
                    let name = name.clone();
                    spawn_local(async move {
                        let mut c = NamedPipeStream::connect(&name).await.unwrap();
                        let msg: Vec<u8> = format!("client {i} ").repeat(1 + i * 50).into_bytes();
                        c.write_all(&(msg.len() as u32).to_le_bytes()).await.unwrap();
                        c.write_all(&msg).await.unwrap();
                        let mut back = vec![0u8; msg.len()];
                        c.read_exact(&mut back).await.unwrap();
                        assert!(back == msg, "client {i} got other bytes than its own");
                    })
                })
                .collect();
            for c in clients {
                c.await.unwrap();
            }
            server.await.unwrap()
        });
        assert_eq!(served, CLIENTS);
    }
}
