//! tokio's I/O traits on `uvio::fs::File` (feature `tokio-io`): `tokio::io::copy` between two files, lines
//! through tokio's `BufReader`, seeks (tokio's two-step `start_seek` / `poll_complete`), write_all + flush +
//! sync, and a read on the io_uring engine. Every test runs in its own temporary directory.
#![cfg(feature = "tokio-io")]

mod common;

use std::future::poll_fn;
use std::io::{ErrorKind, SeekFrom};
use std::pin::Pin;

use common::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncSeek, AsyncSeekExt, AsyncWriteExt, BufReader};
use uvio::fs::File;

/// `len` bytes of a pattern that makes misplaced offsets visible.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ (i / 251) as u8).collect()
}

rt_test! {
    async fn copy_between_two_files() {
        let tmp = TempDir::new("ftio-copy");
        let (from, to) = (tmp.path().join("from"), tmp.path().join("to"));
        // More than the file's 64 KiB buffer several times over, and not a multiple of tokio's 8 KiB copies.
        let data = pattern(300_001);
        std::fs::write(&from, &data).unwrap();
        let mut src = File::open(&from).await.unwrap();
        let mut dst = File::create(&to).await.unwrap();
        let n = tokio::io::copy(&mut src, &mut dst).await.unwrap();
        assert_eq!(n, data.len() as u64);
        // `copy` flushed: every write has completed.
        assert_eq!(std::fs::read(&to).unwrap(), data);
    }
}

rt_test! {
    async fn lines_through_a_tokio_buf_reader() {
        let tmp = TempDir::new("ftio-lines");
        let path = tmp.path().join("lines");
        // Lines that cross the 64 KiB reads and tokio's 8 KiB buffer, an empty one, no newline at the end.
        let mut text: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
        text.push_str("\nlast");
        std::fs::write(&path, &text).unwrap();

        let mut lines = BufReader::new(File::open(&path).await.unwrap()).lines();
        let mut got = Vec::new();
        while let Some(line) = lines.next_line().await.unwrap() {
            got.push(line);
        }
        let want: Vec<&str> = text.split('\n').collect();
        assert_eq!(got, want);

        // tokio's BufReader seeks through the file's start_seek / poll_complete, dropping what it buffered.
        let mut reader = lines.into_inner();
        let at = text.find("line 12345\n").unwrap() as u64;
        assert_eq!(reader.seek(SeekFrom::Start(at)).await.unwrap(), at);
        let mut line = String::new();
        reader.read_line(&mut line).await.unwrap();
        assert_eq!(line, "line 12345\n");
    }
}

rt_test! {
    async fn seek_then_read() {
        let tmp = TempDir::new("ftio-seek");
        let path = tmp.path().join("f");
        let data = pattern(200_000);
        std::fs::write(&path, &data).unwrap();
        let mut f = File::open(&path).await.unwrap();

        assert_eq!(f.seek(SeekFrom::Start(100_000)).await.unwrap(), 100_000);
        let mut buf = vec![0u8; 1000];
        f.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, data[100_000..101_000]);
        assert_eq!(f.seek(SeekFrom::Current(-500)).await.unwrap(), 100_500);
        f.read_exact(&mut buf[..10]).await.unwrap();
        assert_eq!(buf[..10], data[100_500..100_510]);
        assert_eq!(f.stream_position().await.unwrap(), 100_510);

        assert_eq!(f.seek(SeekFrom::End(-10)).await.unwrap(), 199_990);
        let mut tail = Vec::new();
        f.read_to_end(&mut tail).await.unwrap();
        assert_eq!(tail, data[199_990..]);

        // Before the start: an error, and the cursor stays.
        let err = f.seek(SeekFrom::Current(-300_000)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(f.stream_position().await.unwrap(), 200_000);
    }
}

rt_test! {
    async fn a_second_start_seek_before_completion_is_an_error() {
        let tmp = TempDir::new("ftio-seek2");
        let path = tmp.path().join("f");
        let data = pattern(10_000);
        std::fs::write(&path, &data).unwrap();
        let mut f = File::open(&path).await.unwrap();

        Pin::new(&mut f).start_seek(SeekFrom::Start(4000)).unwrap();
        let err = Pin::new(&mut f).start_seek(SeekFrom::Start(10)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Other);
        // The first seek still holds; a read completes it first even without poll_complete.
        let mut buf = [0u8; 16];
        f.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, data[4000..4016]);

        Pin::new(&mut f).start_seek(SeekFrom::End(-16)).unwrap();
        assert_eq!(poll_fn(|cx| Pin::new(&mut f).poll_complete(cx)).await.unwrap(), 9984);
        // With no seek started, poll_complete reports the position.
        assert_eq!(poll_fn(|cx| Pin::new(&mut f).poll_complete(cx)).await.unwrap(), 9984);
    }
}

rt_test! {
    async fn write_all_flush_and_sync() {
        let tmp = TempDir::new("ftio-write");
        let path = tmp.path().join("out");
        let data = pattern(150_007);
        let mut f = File::create(&path).await.unwrap();
        f.write_all(&data).await.unwrap();
        f.flush().await.unwrap();
        f.sync_all().await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), data);

        // Overwrite in the middle after a seek, then shut down (which flushes).
        f.seek(SeekFrom::Start(70_000)).await.unwrap();
        f.write_all(b"overwritten").await.unwrap();
        f.shutdown().await.unwrap();
        let mut want = data.clone();
        want[70_000..70_011].copy_from_slice(b"overwritten");
        assert_eq!(std::fs::read(&path).unwrap(), want);
    }
}

/// Drops `path`'s pages from the page cache, so that reads are requests on the engine (io_uring's ring here)
/// rather than the cached attempt on the loop thread.
#[cfg(target_os = "linux")]
fn evict(path: &std::path::Path) {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(path).unwrap();
    file.sync_all().unwrap();
    // SAFETY: an open descriptor; the call only advises the kernel about its pages.
    let ret = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(ret, 0, "posix_fadvise(DONTNEED)");
}

/// A read through tokio's traits with the runtime on the io_uring engine, the file out of the page cache so the
/// reads go through the ring (skipped, saying so, where this machine has no io_uring or `UVIO_BACKEND` forces
/// another engine).
#[cfg(target_os = "linux")]
#[test]
fn read_on_the_io_uring_engine() {
    let rt = match uvio::Builder::new().backend(uvio::Backend::IoUring).build() {
        Ok(rt) if rt.backend() == uvio::Backend::IoUring => rt,
        Ok(rt) => {
            eprintln!("note: skipping, the runtime runs on {:?} (UVIO_BACKEND?)", rt.backend());
            return;
        }
        Err(e) => {
            eprintln!("note: skipping, io_uring is not available here: {e}");
            return;
        }
    };
    let tmp = TempDir::new("ftio-ring");
    let path = tmp.path().join("f");
    let data = pattern(500_000);
    std::fs::write(&path, &data).unwrap();
    evict(&path);
    rt.block_on(async {
        let mut f = File::open(&path).await.unwrap();
        let mut got = Vec::new();
        f.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, data);
        evict(&path);
        f.seek(SeekFrom::Start(123_456)).await.unwrap();
        let mut buf = vec![0u8; 70_000];
        f.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, data[123_456..193_456]);
    });
    rt.close().expect("runtime closes cleanly");
}
