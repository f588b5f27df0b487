//! `TcpStream::peek` and `tcp::OwnedReadHalf::peek` on every engine: the bytes shown are exactly the ones the
//! next read returns, including those an engine already took from the kernel (libuv's read-ahead, io_uring's
//! kept recv buffer).
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use uvio::net::{TcpListener, TcpStream};
use uvio::spawn_local;
use uvio::time::{sleep, timeout};

mod common;

async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (client, accepted) = futures::join!(TcpStream::connect(listener.local_addr().unwrap()), listener.accept());
    (client.unwrap(), accepted.unwrap().0)
}

/// Peeks until `want` bytes show (a peek may show fewer than were sent while the rest is on its way).
async fn peek_at_least(stream: &TcpStream, want: usize) -> Vec<u8> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = stream.peek(&mut buf).await.unwrap();
        assert!(n > 0, "end-of-stream while peeking");
        if n >= want {
            return buf[..n].to_vec();
        }
        sleep(Duration::from_millis(1)).await;
    }
}

rt_test! {
    async fn peek_leaves_the_bytes_for_the_read() {
        let (mut client, mut server) = pair().await;
        client.write_all(b"hello peek").await.unwrap();
        assert_eq!(peek_at_least(&server, 10).await, b"hello peek");
        // Twice: nothing was taken.
        let mut first = [0u8; 5];
        assert_eq!(server.peek(&mut first).await.unwrap(), 5);
        assert_eq!(&first, b"hello");
        let mut read = [0u8; 6];
        server.read_exact(&mut read).await.unwrap();
        assert_eq!(&read, b"hello ");
        // After a partial read the peek shows the rest, from where the read stopped.
        assert_eq!(peek_at_least(&server, 4).await, b"peek");
        let mut rest = [0u8; 4];
        server.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"peek");
    }
}

rt_test! {
    async fn peek_waits_for_data() {
        let (mut client, server) = pair().await;
        let writer = spawn_local(async move {
            sleep(Duration::from_millis(20)).await;
            client.write_all(b"late").await.unwrap();
            client
        });
        let mut buf = [0u8; 16];
        let n = timeout(Duration::from_secs(5), server.peek(&mut buf)).await.expect("peek completes").unwrap();
        assert!(n > 0 && b"late".starts_with(&buf[..n]), "{:?}", &buf[..n]);
        drop(writer.await.unwrap());
    }
}

rt_test! {
    async fn peek_at_end_of_stream_and_on_an_empty_buffer() {
        let (mut client, mut server) = pair().await;
        assert_eq!(server.peek(&mut []).await.unwrap(), 0);
        client.write_all(b"last").await.unwrap();
        client.close().await.unwrap(); // shuts the write side: end-of-stream after "last"
        assert_eq!(peek_at_least(&server, 4).await, b"last");
        let mut all = Vec::new();
        server.read_to_end(&mut all).await.unwrap();
        assert_eq!(all, b"last");
        let mut buf = [0u8; 8];
        assert_eq!(server.peek(&mut buf).await.unwrap(), 0);
        assert_eq!(server.peek(&mut buf).await.unwrap(), 0);
    }
}

rt_test! {
    async fn a_dropped_peek_loses_nothing() {
        let (mut client, mut server) = pair().await;
        let mut buf = [0u8; 8];
        assert!(timeout(Duration::from_millis(10), server.peek(&mut buf)).await.is_err(), "nothing was sent yet");
        client.write_all(b"after").await.unwrap();
        let mut read = [0u8; 5];
        server.read_exact(&mut read).await.unwrap();
        assert_eq!(&read, b"after");
    }
}

rt_test! {
    /// A megabyte in patterned bytes, read in uneven steps with a peek before each: every peek shows a prefix
    /// of what the next read returns, whether the engine read ahead, kept a ring buffer or reads the kernel.
    async fn peeks_match_the_reads_across_a_long_stream() {
        const TOTAL: usize = 1 << 20;
        let data: Vec<u8> = (0..TOTAL).map(|i| (i % 251) as u8).collect();
        let (mut client, mut server) = pair().await;
        let sent = data.clone();
        let writer = spawn_local(async move {
            for chunk in sent.chunks(10_000) {
                client.write_all(chunk).await.unwrap();
            }
            client.close().await.unwrap();
        });
        let mut offset = 0;
        let mut step = 1;
        let mut peeked = vec![0u8; 70_000];
        let mut read = vec![0u8; 70_000];
        while offset < TOTAL {
            step = (step * 7 + 13) % 65_521 + 1;
            let p = server.peek(&mut peeked[..step]).await.unwrap();
            assert!(p > 0, "end-of-stream at {offset} of {TOTAL}");
            assert_eq!(&peeked[..p], &data[offset..offset + p], "peek at {offset}");
            let r = server.read(&mut read[..step]).await.unwrap();
            assert_eq!(&read[..r], &data[offset..offset + r], "read at {offset}");
            // The read returns at least the peeked bytes that fit (they were already received).
            assert!(r >= p, "read {r} < peeked {p} at {offset}");
            offset += r;
        }
        assert_eq!(server.peek(&mut peeked).await.unwrap(), 0);
        writer.await.unwrap();
    }
}

// --- the read half -----------------------------------------------------------------------------------------

rt_test! {
    /// The read half peeks what its stream had already buffered before the split, then reads it again, and
    /// peeks `0` at end-of-stream.
    async fn read_half_peek_keeps_what_the_stream_buffered() {
        let (mut client, mut server) = pair().await;
        client.write_all(b"before split, after").await.unwrap();
        // A one-byte read makes the engine take what the kernel has (libuv reads ahead, io_uring keeps its
        // buffer): the rest is in user space when the stream splits.
        let mut one = [0u8; 1];
        server.read_exact(&mut one).await.unwrap();
        assert_eq!(&one, b"b");
        let (mut read_half, mut write_half) = server.into_split();
        let mut buf = vec![0u8; 64];
        let mut n = read_half.peek(&mut buf).await.unwrap();
        while n < 18 {
            assert!(n > 0, "end-of-stream while peeking");
            sleep(Duration::from_millis(1)).await;
            n = read_half.peek(&mut buf).await.unwrap();
        }
        assert_eq!(&buf[..n], b"efore split, after");
        let mut all = [0u8; 18];
        read_half.read_exact(&mut all).await.unwrap();
        assert_eq!(&all, b"efore split, after");
        write_half.write_all(b"pong").await.unwrap();
        let mut pong = [0u8; 4];
        client.read_exact(&mut pong).await.unwrap();
        assert_eq!(&pong, b"pong");
        client.close().await.unwrap();
        assert_eq!(read_half.peek(&mut buf).await.unwrap(), 0);
        assert_eq!(read_half.read(&mut buf).await.unwrap(), 0);
    }
}
