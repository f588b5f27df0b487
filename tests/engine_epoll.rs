//! The epoll engine (Linux) chosen explicitly: byte-exact echo and bulk transfer, the EAGAIN paths (a reader
//! waiting for a slow writer, a writer waiting for a reader), cancellation without loss, peer resets, an
//! accept storm. The whole async suite also runs on this engine (`rt_test!`).
#![cfg(target_os = "linux")]

mod common;

use std::io::ErrorKind;
use std::task::Poll;
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use uvio::net::{TcpListener, TcpStream, UnixStream};
use uvio::spawn_local;
use uvio::time::sleep;

use common::epoll::run;
use common::spawn_echo;

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// A connected pair over loopback: (client, server side).
async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
    let (server, peer) = listener.accept().await.unwrap();
    assert_eq!(peer, client.local_addr().unwrap());
    (client, server)
}

#[test]
fn runtime_reports_the_epoll_engine() {
    assert_eq!(run(async { 7 }).unwrap_or(7), 7);
}

#[test]
fn echo_is_byte_exact() {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        spawn_echo(listener);
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.set_nodelay(true).unwrap();
        c.set_keepalive(Some(Duration::from_secs(30))).unwrap();
        c.set_keepalive(None).unwrap();
        assert_eq!(c.peer_addr().unwrap(), addr);
        for size in [1usize, 64, 4096, 100_000] {
            let data = pattern(size);
            c.write_all(&data).await.unwrap();
            let mut back = vec![0u8; size];
            c.read_exact(&mut back).await.unwrap();
            assert_eq!(back, data, "{size} bytes");
        }
        c.close().await.unwrap();
        assert_eq!(c.read(&mut [0u8; 8]).await.unwrap(), 0, "the echo closes after our EOF");
    });
}

#[test]
fn eight_mib_transfer_through_an_echo() {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        spawn_echo(listener);
        let (mut rd, mut wr) = TcpStream::connect(addr).await.unwrap().into_split();
        let data = pattern(8 * 1024 * 1024);
        let expected = data.clone();
        let writer = spawn_local(async move {
            wr.write_all(&data).await.unwrap();
            wr.close().await.unwrap();
        });
        let mut got = Vec::new();
        rd.read_to_end(&mut got).await.unwrap();
        writer.await.unwrap();
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "8 MiB came back byte-exact");
    });
}

#[test]
fn a_dropped_read_loses_no_bytes() {
    run(async {
        let (mut client, mut server) = pair().await;
        let mut buf = [0u8; 64];
        {
            // Nothing there yet: the read registers interest, then is dropped.
            let read = server.read(&mut buf);
            futures::pin_mut!(read);
            assert!(futures::poll!(read.as_mut()).is_pending());
        }
        client.write_all(b"abc").await.unwrap();
        sleep(Duration::from_millis(20)).await; // the readiness for the dropped read fires and finds no one
        client.write_all(b"def").await.unwrap();
        sleep(Duration::from_millis(20)).await;
        let n = server.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"abcdef", "the next read gets every byte");
        // And a timed-out read leaves the stream usable.
        assert!(uvio::time::timeout(Duration::from_millis(5), server.read(&mut buf)).await.is_err());
        client.write_all(b"g").await.unwrap();
        assert_eq!(server.read(&mut buf).await.unwrap(), 1);
        assert_eq!(buf[0], b'g');
    });
}

#[test]
fn dropped_connects_leave_nothing_behind() {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        for _ in 0..20 {
            let connect = TcpStream::connect(addr);
            futures::pin_mut!(connect);
            let _ = futures::poll!(connect.as_mut()); // dropped after one poll, mid-connect or just connected
        }
        // Abandoned connections the kernel completed read as closed; a real one still echoes.
        spawn_echo(listener);
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"still here").await.unwrap();
        let mut back = [0u8; 10];
        c.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"still here");
    });
}

#[test]
fn a_reader_waits_through_a_slow_writer() {
    run(async {
        let (mut client, mut server) = pair().await;
        let writer = spawn_local(async move {
            for i in 0..40u8 {
                client.write_all(&[i, i]).await.unwrap();
                sleep(Duration::from_millis(1)).await;
            }
            client.close().await.unwrap();
        });
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        let mut reads = 0;
        loop {
            let n = server.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            reads += 1;
            got.extend_from_slice(&buf[..n]);
        }
        writer.await.unwrap();
        let expected: Vec<u8> = (0..40u8).flat_map(|i| [i, i]).collect();
        assert_eq!(got, expected);
        assert!(reads > 1, "the reader saw the bytes arrive in pieces (EAGAIN in between)");
    });
}

#[test]
fn a_writer_waits_for_a_peer_that_does_not_read_then_resumes() {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let std_client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let mut client = TcpStream::from_std(std_client).unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        // More than the kernel buffers while the peer does not read (send buffer ≤ 4 MiB by default on Linux,
        // receive buffer not grown by autotuning without reads).
        let data = pattern(16 * 1024 * 1024);
        // Fill the kernel's buffers: the write eventually returns Pending (EAGAIN) with nothing lost.
        let mut off = 0;
        loop {
            let write = client.write(&data[off..]);
            futures::pin_mut!(write);
            match futures::poll!(write.as_mut()) {
                Poll::Ready(Ok(n)) => off += n,
                Poll::Ready(Err(e)) => panic!("write failed: {e}"),
                Poll::Pending => break,
            }
            assert!(off < data.len(), "the peer never read, yet all 16 MiB were accepted");
        }
        assert!(off > 0);
        let expected = data.clone();
        let reader = spawn_local(async move {
            let mut got = Vec::new();
            server.read_to_end(&mut got).await.unwrap();
            got == expected
        });
        // The peer reads now: writing resumes and finishes; nothing accepted before is lost.
        client.write_all(&data[off..]).await.unwrap();
        client.flush().await.unwrap();
        drop(client); // every accepted byte is in the kernel: dropping loses none
        assert!(reader.await.unwrap(), "the peer read every byte, in order");
    });
}

#[test]
fn a_peer_reset_is_an_error_for_waiting_and_later_operations() {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let std_client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (conn, _) = listener.accept().await.unwrap();
        let (mut rd, mut wr) = conn.into_split();
        // A read already waiting when the reset arrives is woken with the error.
        let waiting = spawn_local(async move {
            let mut buf = [0u8; 8];
            let first = rd.read(&mut buf).await;
            (first.map_err(|e| e.kind()), rd)
        });
        sleep(Duration::from_millis(10)).await;
        socket2::SockRef::from(&std_client).set_linger(Some(Duration::ZERO)).unwrap();
        drop(std_client); // RST
        let (first, rd) = waiting.await.unwrap();
        assert_eq!(first, Err(ErrorKind::ConnectionReset));
        let err = wr.write_all(&[0u8; 1024]).await.unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset), "{err:?}");
        wr.close().await.unwrap(); // shutting down a reset connection is not an error
        drop((rd, wr));
    });
}

#[test]
fn write_after_shutdown_is_broken_pipe_and_reads_go_on() {
    run(async {
        let (mut client, mut server) = pair().await;
        client.shutdown().await.unwrap();
        client.shutdown().await.unwrap(); // twice is fine
        assert_eq!(client.write(b"x").await.unwrap_err().kind(), ErrorKind::BrokenPipe);
        assert_eq!(server.read(&mut [0u8; 4]).await.unwrap(), 0);
        assert_eq!(server.read(&mut [0u8; 4]).await.unwrap(), 0, "end-of-stream stays");
        server.write_all(b"back").await.unwrap();
        let mut buf = [0u8; 4];
        client.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"back");
        assert_eq!(client.write(b"").await.unwrap(), 0);
    });
}

#[test]
fn accept_storm_of_500_clients() {
    const CLIENTS: u32 = 500;
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = spawn_local(async move {
            for _ in 0..CLIENTS {
                let (mut conn, _) = listener.accept().await.unwrap();
                spawn_local(async move {
                    let mut id = [0u8; 4];
                    conn.read_exact(&mut id).await.unwrap();
                    conn.write_all(&id).await.unwrap();
                });
            }
        });
        let clients: Vec<_> = (0..CLIENTS)
            .map(|i| {
                spawn_local(async move {
                    let mut c = TcpStream::connect(addr).await.unwrap();
                    c.write_all(&i.to_le_bytes()).await.unwrap();
                    let mut back = [0u8; 4];
                    c.read_exact(&mut back).await.unwrap();
                    u32::from_le_bytes(back) == i
                })
            })
            .collect();
        let mut ok = 0;
        for c in clients {
            ok += c.await.unwrap() as u32;
        }
        server.await.unwrap();
        assert_eq!(ok, CLIENTS);
    });
}

#[test]
fn bind_in_use_and_refused_connect_are_errors() {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        assert_eq!(TcpListener::bind(addr).await.unwrap_err().kind(), ErrorKind::AddrInUse);
        drop(listener);
        let err = TcpStream::connect(addr).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    });
}

#[test]
fn unix_streams_run_on_the_engine_too() {
    run(async {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let data = pattern(1024 * 1024);
        let expected = data.clone();
        let writer = spawn_local(async move {
            a.write_all(&data).await.unwrap();
            a.close().await.unwrap();
            a
        });
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        assert!(got == expected);
        drop(writer.await.unwrap());
        assert!(b.peer_addr().unwrap().is_unnamed());
    });
}

#[test]
fn data_and_end_of_stream_in_one_edge_are_both_read() {
    // The peer's last bytes and its FIN arrive together (one edge). The read that returns the bytes is short,
    // which normally means "drained: wait for the next edge" — but the end-of-stream makes no further edge, so
    // the next read must still return 0 instead of waiting forever.
    run(async {
        let (mut client, mut server) = pair().await;
        let reader = spawn_local(async move {
            let mut buf = [0u8; 64];
            let n = server.read(&mut buf).await.unwrap();
            let eof = uvio::time::timeout(Duration::from_secs(5), server.read(&mut buf)).await;
            (buf[..n].to_vec(), eof.map(|r| r.unwrap()))
        });
        uvio::task::yield_now().await; // the reader waits first
        client.write_all(b"last words").await.unwrap();
        client.close().await.unwrap(); // shutdown(SHUT_WR): FIN right behind the data
        let (got, eof) = reader.await.unwrap();
        assert_eq!(got, b"last words");
        assert_eq!(eof, Ok(0), "end-of-stream seen, not waited for");
    });
}
