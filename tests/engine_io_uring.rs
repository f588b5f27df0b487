//! The io_uring engine (Linux): files through the ring, byte-exact and equal to std's view; cancellation
//! without use-after-free; detection and fallback with the hidden `Builder::simulate_ring_failure` switch.
//!
//! `UVIO_BACKEND` (which would override the explicit engine these tests ask for) is process-wide: every test
//! here holds `ENV` while it runs, with the variable cleared.
#![cfg(target_os = "linux")]
mod common;

use std::io::{ErrorKind, SeekFrom};
use std::task::Poll;

use common::TempDir;
use futures::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use uvio::fs::{self, File};
use uvio::{spawn_local, Backend, Builder};

use common::ring::{env_lock, pattern, ring_runtime, run};

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn ten_mib_written_and_read_byte_exact() {
    let tmp = TempDir::new("uring-10m");
    let path = tmp.path().join("big");
    let data = pattern(10 << 20);
    run(async {
        let mut file = File::create(&path).await.unwrap();
        file.write_all(&data).await.unwrap();
        file.flush().await.unwrap();
        assert_eq!(file.metadata().await.unwrap().len(), data.len() as u64);
        drop(file);
        // A plain loop: futures' read_to_end zeroes its buffer byte by byte, slow in debug builds.
        let mut file = File::open(&path).await.unwrap();
        let mut back = Vec::with_capacity(data.len());
        let mut chunk = vec![0u8; 100_000];
        loop {
            let n = file.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            back.extend_from_slice(&chunk[..n]);
        }
        assert!(back == data, "bytes read back differ");
        assert!(fs::read(&path).await.unwrap() == data, "fs::read differs");
    });
    assert!(std::fs::read(&path).unwrap() == data, "std sees different bytes");
}

#[test]
fn sixty_four_concurrent_random_reads_match_std() {
    let tmp = TempDir::new("uring-rand");
    let path = tmp.path().join("data");
    let data = pattern(4 << 20);
    std::fs::write(&path, &data).unwrap();
    run(async {
        let tasks: Vec<_> = (0..64u64)
            .map(|t| {
                let path = path.clone();
                spawn_local(async move {
                    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (t + 1));
                    let mut file = File::open(&path).await.unwrap();
                    let mut buf = vec![0u8; 4096];
                    let mut checked = Vec::new();
                    for _ in 0..8 {
                        let at = rng.next() % ((4 << 20) - 4096);
                        file.seek(SeekFrom::Start(at)).await.unwrap();
                        file.read_exact(&mut buf).await.unwrap();
                        checked.push((at, buf.clone()));
                    }
                    checked
                })
            })
            .collect();
        let expected = std::fs::read(&path).unwrap();
        let mut reads = 0;
        for task in tasks {
            for (at, got) in task.await.unwrap() {
                let at = at as usize;
                assert!(got == expected[at..at + 4096], "read at {at} differs from std");
                reads += 1;
            }
        }
        assert_eq!(reads, 64 * 8);
    });
}

#[test]
fn statx_metadata_equals_std() {
    let tmp = TempDir::new("uring-statx");
    let file_path = tmp.path().join("f");
    std::fs::write(&file_path, b"twelve bytes").unwrap();
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&file_path, &link).unwrap();
    run(async {
        for path in [tmp.path(), file_path.as_path(), link.as_path()] {
            let ours = fs::metadata(path).await.unwrap();
            let std = std::fs::metadata(path).unwrap();
            assert_eq!(ours.len(), std.len());
            assert_eq!(ours.is_dir(), std.is_dir());
            assert_eq!(ours.is_file(), std.is_file());
            let secs = |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
            assert_eq!(secs(ours.modified().unwrap()), secs(std.modified().unwrap()));
            use std::os::unix::fs::MetadataExt;
            assert_eq!(ours.stat().ino, std.ino());
            assert_eq!(ours.stat().dev, std.dev());
            assert_eq!(ours.stat().nlink, std.nlink());
        }
        assert!(fs::symlink_metadata(&link).await.unwrap().is_symlink());
        assert!(!fs::metadata(&link).await.unwrap().is_symlink());
        let file = File::open(&file_path).await.unwrap();
        assert_eq!(file.metadata().await.unwrap(), fs::metadata(&file_path).await.unwrap());
        drop(file);
        let missing = tmp.path().join("missing");
        assert_eq!(fs::metadata(&missing).await.unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!(File::open(&missing).await.unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!(fs::metadata("nul\0inside").await.unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(File::open("nul\0inside").await.unwrap_err().kind(), ErrorKind::InvalidInput);
    });
}

#[test]
fn dropped_read_future_then_correct_reads() {
    let tmp = TempDir::new("uring-drop");
    let path = tmp.path().join("data");
    let data = pattern(1 << 20);
    std::fs::write(&path, &data).unwrap();
    run(async {
        let mut file = File::open(&path).await.unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let mut pos = 0usize;
        for round in 0..32 {
            {
                // Start a read, poll it once, and drop it: its ring operation owns the buffer until completion.
                let fut = file.read(&mut buf);
                futures::pin_mut!(fut);
                if let Poll::Ready(n) = futures::poll!(fut.as_mut()) {
                    let n = n.unwrap();
                    assert!(buf[..n] == data[pos..pos + n], "round {round}: early read differs");
                    pos += n;
                }
            }
            // The bytes of a dropped read are returned by the next one: nothing is lost or misplaced.
            let n = file.read(&mut buf).await.unwrap();
            assert!(n > 0);
            assert!(buf[..n] == data[pos..pos + n], "round {round}: read after drop differs");
            pos += n;
            if pos >= data.len() {
                file.seek(SeekFrom::Start(0)).await.unwrap();
                pos = 0;
            }
        }
        // A file dropped with a read in flight: the ring keeps its buffer and fd until the completion.
        let mut other = File::open(&path).await.unwrap();
        {
            let fut = other.read(&mut buf);
            futures::pin_mut!(fut);
            let _ = futures::poll!(fut.as_mut());
        }
        drop(other);
        // An open whose future is dropped: the descriptor is closed when the completion arrives.
        {
            let fut = File::open(&path);
            futures::pin_mut!(fut);
            let _ = futures::poll!(fut.as_mut());
        }
        let mut again = Vec::new();
        File::open(&path).await.unwrap().read_to_end(&mut again).await.unwrap();
        assert!(again == data);
    });
}

#[test]
fn runtime_dropped_with_operations_in_flight() {
    let tmp = TempDir::new("uring-shutdown");
    let path = tmp.path().join("data");
    std::fs::write(&path, pattern(256 * 1024)).unwrap();
    let _env = env_lock();
    let Some(rt) = ring_runtime() else { return };
    for _ in 0..16 {
        let path = path.clone();
        rt.spawn_local(async move {
            let mut file = File::open(&path).await.unwrap();
            let mut sink = Vec::new();
            file.read_to_end(&mut sink).await.unwrap();
        });
    }
    // Run a little: some opens and reads are in flight when the runtime goes; it waits for them.
    rt.block_on(uvio::time::sleep(std::time::Duration::from_millis(1)));
    rt.close().expect("runtime closes cleanly with ring operations in flight");
}

#[test]
fn append_mode_and_fs_write_through_the_ring() {
    let tmp = TempDir::new("uring-append");
    let path = tmp.path().join("log");
    run(async {
        fs::write(&path, b"one\n").await.unwrap();
        let mut file = File::options().append(true).open(&path).await.unwrap();
        file.write_all(b"two\n").await.unwrap();
        file.write_all(b"three\n").await.unwrap();
        file.sync_data().await.unwrap();
        file.sync_all().await.unwrap();
        drop(file);
        assert_eq!(fs::read_to_string(&path).await.unwrap(), "one\ntwo\nthree\n");
        let err = File::options().write(true).create_new(true).open(&path).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    });
}

#[test]
fn missing_statx_opcode_falls_back_per_operation() {
    let tmp = TempDir::new("uring-nostatx");
    let path = tmp.path().join("f");
    std::fs::write(&path, b"abc").unwrap();
    let _env = env_lock();
    let built = Builder::new().backend(Backend::IoUring).simulate_ring_failure("NO_STATX").build();
    let Ok(rt) = built else {
        eprintln!("note: skipping, io_uring is not available here");
        return;
    };
    assert_eq!(rt.backend(), Backend::IoUring);
    rt.block_on(async {
        // statx runs on libuv's thread pool; reads still go through the ring.
        assert_eq!(fs::metadata(&path).await.unwrap().len(), 3);
        let mut file = File::open(&path).await.unwrap();
        assert_eq!(file.metadata().await.unwrap().len(), 3);
        assert_eq!(file.seek(SeekFrom::End(-1)).await.unwrap(), 2);
        let mut s = String::new();
        file.read_to_string(&mut s).await.unwrap();
        assert_eq!(s, "c");
    });
    rt.close().unwrap();
}

#[test]
fn simulated_unavailable_ring_falls_back_or_errors() {
    let _env = env_lock();
    for (cause, kind) in
        [("ENOSYS", ErrorKind::Unsupported), ("EPERM", ErrorKind::PermissionDenied), ("ENOMEM", ErrorKind::OutOfMemory)]
    {
        let auto = Builder::new().simulate_ring_failure(cause).build();
        let explicit = Builder::new().backend(Backend::IoUring).simulate_ring_failure(cause).build();
        let epoll = Builder::new().backend(Backend::Epoll).simulate_ring_failure(cause).build();

        let auto = auto.unwrap();
        assert_eq!(auto.backend(), Backend::Epoll, "{cause}: Auto falls back to epoll");
        // The fallback engine does real file work.
        let tmp = TempDir::new("uring-fallback");
        let path = tmp.path().join("f");
        auto.block_on(async {
            fs::write(&path, b"fallback").await.unwrap();
            assert_eq!(fs::read(&path).await.unwrap(), b"fallback");
            assert_eq!(fs::metadata(&path).await.unwrap().len(), 8);
        });
        auto.close().unwrap();

        let err = explicit.expect_err("an explicit IoUring that is not available is an error");
        assert_eq!(err.kind(), kind, "{cause}");
        let msg = err.to_string();
        assert!(msg.contains("io_uring is not available") && msg.contains(cause), "{cause}: {msg}");

        let epoll = epoll.unwrap();
        assert_eq!(epoll.backend(), Backend::Epoll, "an explicit Epoll is unaffected");
        epoll.close().unwrap();
    }
}

#[test]
fn auto_picks_io_uring_when_available() {
    let _env = env_lock();
    let rt = Builder::new().build().unwrap();
    let available = Builder::new().backend(Backend::IoUring).build();
    match available {
        Ok(other) => {
            assert_eq!(rt.backend(), Backend::IoUring);
            other.close().unwrap();
        }
        Err(_) => assert_eq!(rt.backend(), Backend::Epoll),
    }
    rt.close().unwrap();
}

#[test]
fn more_operations_in_flight_than_the_rings_queues_hold() {
    // 256 submission entries and 4096 completion entries: 6000 stats at once may fill both (submissions are then
    // flushed early; completions may overflow into the kernel's list, which the driver drains). All must arrive.
    let tmp = TempDir::new("uring-many");
    let path = tmp.path().join("f");
    std::fs::write(&path, b"0123456789").unwrap();
    run(async {
        let tasks: Vec<_> = (0..6000)
            .map(|_| {
                let path = path.clone();
                spawn_local(async move { fs::metadata(&path).await.unwrap().len() })
            })
            .collect();
        let mut total = 0;
        for task in tasks {
            total += task.await.unwrap();
        }
        assert_eq!(total, 6000 * 10);
    });
}

#[test]
fn unknown_simulated_failure_is_an_error() {
    let err = Builder::new().simulate_ring_failure("NO_SUCH_FAILURE").build().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
}

/// Child processes (the benches' engine comparisons) still get a simulated failure from the environment, read
/// when a runtime is built: this test runs itself again in a child with `UVIO_IO_URING_SIMULATE=EPERM`.
#[test]
fn simulated_failure_from_the_environment_in_a_child_process() {
    const NAME: &str = "simulated_failure_from_the_environment_in_a_child_process";
    if std::env::var_os("UVIO_IO_URING_SIMULATE").is_some() {
        // The child: io_uring "is forbidden", so Auto picks epoll.
        let rt = Builder::new().build().unwrap();
        assert_eq!(rt.backend(), Backend::Epoll);
        rt.close().unwrap();
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", NAME, "--test-threads=1"])
        .env("UVIO_IO_URING_SIMULATE", "EPERM")
        .env_remove("UVIO_BACKEND")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child:\n{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("test result: ok. 1 passed"), "the child ran the test:\n{stdout}");
}
