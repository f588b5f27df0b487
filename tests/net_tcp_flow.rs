//! TCP flow on every engine: the paths where a socket is not ready (a reader waiting for a slow writer, a writer
//! waiting for a peer that does not read, data and end-of-stream in one readiness edge), reads dropped while
//! waiting, resets seen by waiting and later operations, write after shutdown, an accept storm, accepts dropped
//! while connections queue, a listener dropped with connections queued, a stream dropped with writes queued.
mod common;

use std::io::ErrorKind;
use std::task::Poll;
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use uvio::net::{TcpListener, TcpSocket, TcpStream};
use uvio::spawn_local;
use uvio::time::{sleep, timeout};

use common::{read_all, spawn_echo};

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

rt_test! {
    async fn echo_of_every_size_then_end_of_stream() {
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
    }
}

rt_test! {
    async fn a_dropped_read_loses_no_bytes() {
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
        // Every byte arrives, in order (in one read or several: an engine that received "abc" for the dropped
        // read keeps it for the next one).
        let mut six = [0u8; 6];
        server.read_exact(&mut six).await.unwrap();
        assert_eq!(&six, b"abcdef", "the next reads get every byte");
        // And a timed-out read leaves the stream usable.
        assert!(uvio::time::timeout(Duration::from_millis(5), server.read(&mut buf)).await.is_err());
        client.write_all(b"g").await.unwrap();
        assert_eq!(server.read(&mut buf).await.unwrap(), 1);
        assert_eq!(buf[0], b'g');
    }
}

rt_test! {
    async fn a_reader_waits_through_a_slow_writer() {
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
    }
}

rt_test! {
    async fn a_writer_waits_for_a_peer_that_does_not_read_then_resumes() {
        // Small kernel buffers on both ends (set before the connection exists, so the window follows them): a few
        // MiB are then far more than the kernel holds while the peer does not read. With the default buffers
        // (several MiB, autotuned) the same test needs so much data that the stalled receiver's queue is pruned
        // and the sender recovers by retransmission timeouts, which takes minutes on a loaded machine.
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(64 * 1024).unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(16).unwrap();
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_send_buffer_size(64 * 1024).unwrap();
        let mut client = socket.connect(listener.local_addr().unwrap()).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let data = pattern(4 * 1024 * 1024);
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
            assert!(off < data.len(), "the peer never read, yet all 4 MiB were accepted");
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
    }
}

rt_test! {
    async fn a_peer_reset_is_an_error_for_waiting_and_later_operations() {
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
        // A write after the reset fails: at once where the engine writes in the call (libuv, epoll), at the next
        // flush where it only queues the bytes for the kernel (io_uring): never silently.
        let err = match wr.write_all(&[0u8; 1024]).await {
            Err(e) => e,
            Ok(()) => wr.flush().await.unwrap_err(),
        };
        assert!(matches!(err.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset), "{err:?}");
        // Closing a reset connection ends without hanging: Ok, or the error already reported.
        if let Err(e) = wr.close().await {
            assert_eq!(e.kind(), err.kind(), "{e:?}");
        }
        drop((rd, wr));
    }
}

rt_test! {
    async fn write_after_shutdown_is_broken_pipe_and_reads_go_on() {
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
    }
}

rt_test! {
    async fn accept_storm_of_500_clients() {
        const CLIENTS: u32 = 500;
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
    }
}

rt_test! {
    async fn data_and_end_of_stream_in_one_edge_are_both_read() {
        // The peer's last bytes and its FIN arrive together (one edge). The read that returns the bytes is short,
        // which normally means "drained: wait for the next edge" — but the end-of-stream makes no further edge, so
        // the next read must still return 0 instead of waiting forever.
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
    }
}

rt_test! {
    async fn dropped_read_keeps_its_bytes_for_the_next_read() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut c = TcpStream::connect(addr).await.unwrap();
        let (mut s, _) = listener.accept().await.unwrap();
        for round in 0..20u8 {
            // A read dropped mid-flight (its recv stays armed)...
            let mut buf = [0u8; 8];
            assert!(timeout(Duration::from_millis(2), s.read(&mut buf)).await.is_err());
            let mut fut = Box::pin(s.read(&mut buf));
            assert!(futures::poll!(fut.as_mut()).is_pending());
            drop(fut);
            // ...then data arrives: the next read gets all of it, in order.
            c.write_all(&[round, round + 1, round + 2]).await.unwrap();
            sleep(Duration::from_millis(1)).await;
            let mut got = [0u8; 3];
            s.read_exact(&mut got).await.unwrap();
            assert_eq!(got, [round, round + 1, round + 2]);
        }
        // Small reads of a big message take it piece by piece from the kept buffer.
        let data = pattern(40_000);
        c.write_all(&data).await.unwrap();
        let mut got = Vec::new();
        let mut piece = [0u8; 7];
        while got.len() < data.len() {
            let n = s.read(&mut piece).await.unwrap();
            assert!(n > 0);
            got.extend_from_slice(&piece[..n]);
        }
        assert_eq!(got, data);
        // Zero-length reads and writes complete at once.
        assert_eq!(s.read(&mut []).await.unwrap(), 0);
        assert_eq!(s.write(&[]).await.unwrap(), 0);
    }
}

rt_test! {
    async fn dropping_a_stream_with_4_mib_queued_delivers_every_byte() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let data = pattern(4 << 20);
        let expected = data.clone();
        let server = spawn_local(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            sleep(Duration::from_millis(20)).await; // let the client's writes pile up in its queue
            read_all(&mut conn).await == expected
        });
        let mut c = TcpStream::connect(addr).await.unwrap();
        // Without waiting for the sends: every poll_write that returned Ready(n) queued n bytes.
        let mut written = 0;
        let mut stalls = 0;
        while written < data.len() {
            let mut fut = Box::pin(c.write(&data[written..]));
            match futures::poll!(fut.as_mut()) {
                std::task::Poll::Ready(n) => written += n.unwrap(),
                std::task::Poll::Pending => {
                    // The queue is full: a write dropped while pending accepted nothing; wait and retry.
                    drop(fut);
                    stalls += 1;
                    sleep(Duration::from_millis(1)).await;
                }
            }
        }
        assert_eq!(written, data.len());
        drop(c); // with bytes still queued
        assert!(stalls > 0 || written == data.len());
        assert!(server.await.unwrap(), "bytes accepted by poll_write were lost on drop");
    }
}

rt_test! {
    async fn dropped_accept_loses_no_connection_and_many_queue() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // An accept that times out (dropped mid-flight, its multishot accept armed), then a connection: the
        // next accept gets it.
        assert!(timeout(Duration::from_millis(5), listener.accept()).await.is_err());
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"first").await.unwrap();
        sleep(Duration::from_millis(5)).await; // accepted by the kernel and queued in the listener
        let (mut s, peer) = listener.accept().await.unwrap();
        assert_eq!(peer, c.local_addr().unwrap());
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"first");

        // More connections than the listener queues (256) while nobody accepts: none is lost.
        let n = 300;
        let mut clients = Vec::new();
        for i in 0..n {
            let mut c = TcpStream::connect(addr).await.unwrap();
            c.write_all(&(i as u32).to_le_bytes()).await.unwrap();
            clients.push(c);
        }
        sleep(Duration::from_millis(10)).await;
        let mut seen = vec![false; n];
        for _ in 0..n {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut id = [0u8; 4];
            s.read_exact(&mut id).await.unwrap();
            let id = u32::from_le_bytes(id) as usize;
            assert!(!seen[id], "connection {id} accepted twice");
            seen[id] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }
}

rt_test! {
    async fn listener_dropped_with_queued_connections() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Arm the multishot accept, then let connections queue in the listener.
        assert!(timeout(Duration::from_millis(2), listener.accept()).await.is_err());
        let mut clients = Vec::new();
        for _ in 0..10 {
            clients.push(TcpStream::connect(addr).await.unwrap());
        }
        sleep(Duration::from_millis(5)).await;
        drop(listener);
        // The queued connections were closed: each client reads end-of-stream (or a reset).
        for c in &mut clients {
            let mut buf = [0u8; 1];
            match c.read(&mut buf).await {
                Ok(n) => assert_eq!(n, 0),
                Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset),
            }
        }
        // The port is free again for a new listener.
        let again = TcpListener::bind(addr).await.unwrap();
        assert_eq!(again.local_addr().unwrap(), addr);
    }
}
