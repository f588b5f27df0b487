//! Async file system tests: whole-file helpers, File (read/write/seek, append, errors, cancellation), OpenOptions,
//! metadata, directories (read_dir, create_dir_all, remove_dir_all), links, and many tasks at once. Every test
//! runs in its own temporary directory and closes its runtime cleanly.
mod common;

use std::io::{ErrorKind, SeekFrom};
use std::rc::Rc;

use common::TempDir;
use futures::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt, StreamExt, TryStreamExt};
use uvio::fs::{self, File, OpenOptions};
use uvio::spawn_local;

/// `len` bytes of a pattern that makes misplaced offsets visible.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ (i / 251) as u8).collect()
}

fn kind<T: std::fmt::Debug>(res: std::io::Result<T>) -> ErrorKind {
    res.expect_err("expected an error").kind()
}

/// Drops `path`'s pages from the page cache (after writing back any dirty ones), so the next reads wait for the
/// disk: on Linux the cached attempt says `EAGAIN` and the read becomes a request (elsewhere every read is one).
/// Tests of a read *in flight* need this.
#[cfg(target_os = "linux")]
fn evict(path: &std::path::Path) {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(path).unwrap();
    file.sync_all().unwrap();
    // Three times, a little apart: a readahead the kernel still had in flight for an earlier read can bring
    // pages back after the first call.
    for _ in 0..3 {
        // SAFETY: an open descriptor; the call only advises the kernel about its pages.
        let ret = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(ret, 0, "posix_fadvise(DONTNEED)");
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

#[cfg(not(target_os = "linux"))]
fn evict(_path: &std::path::Path) {}

/// Starts a read of `f` into `buf` with the file out of the page cache and drops it while it is in flight. The
/// kernel may still serve the read's first, non-waiting attempt: `RWF_NOWAIT` starts a readahead, which a fast
/// disk can finish before the attempt looks again. Such a read is undone by seeking back, and tried again.
async fn drop_a_read_in_flight(f: &mut File, path: &std::path::Path, buf: &mut [u8]) {
    let pos = f.stream_position().await.unwrap();
    for _ in 0..100 {
        evict(path);
        let mut fut = f.read(buf);
        if futures::poll!(&mut fut).is_pending() {
            return;
        }
        drop(fut);
        f.seek(SeekFrom::Start(pos)).await.unwrap();
    }
    panic!("no read of an evicted file stayed in flight in 100 tries");
}

// ---- Whole-file helpers ----

rt_test! {
    fn write_then_read_round_trip() {
        let tmp = TempDir::new("afs-rt");
        let path = tmp.path().join("f");
        run(async {
            fs::write(&path, b"hello uvio").await.unwrap();
            assert_eq!(fs::read(&path).await.unwrap(), b"hello uvio");
            fs::write(&path, b"short").await.unwrap(); // truncates
            assert_eq!(fs::read(&path).await.unwrap(), b"short");
            fs::write(&path, b"").await.unwrap();
            assert!(fs::read(&path).await.unwrap().is_empty());
        });
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    }
}

rt_test! {
    fn ten_mib_file_byte_exact() {
        let tmp = TempDir::new("afs-big");
        let path = tmp.path().join("big");
        let data = pattern(10 * 1024 * 1024 + 17);
        run(async {
            fs::write(&path, &data).await.unwrap();
            let back = fs::read(&path).await.unwrap();
            assert!(back == data, "fs::read differs");
        });
        assert!(std::fs::read(&path).unwrap() == data, "std sees different bytes");
    }
}

rt_test! {
    fn ten_mib_through_file_byte_exact() {
        let tmp = TempDir::new("afs-bigfile");
        let path = tmp.path().join("big");
        let data = pattern(10 * 1024 * 1024 + 3);
        run(async {
            let mut f = File::create(&path).await.unwrap();
            f.write_all(&data).await.unwrap();
            f.flush().await.unwrap();
            drop(f);
            let mut f = File::open(&path).await.unwrap();
            // A plain loop: futures' read_to_end zeroes its buffer byte by byte, slow in debug builds.
            let mut back = Vec::with_capacity(data.len());
            let mut chunk = vec![0u8; 100_000];
            loop {
                let n = f.read(&mut chunk).await.unwrap();
                if n == 0 {
                    break;
                }
                assert!(n <= 64 * 1024, "at most 64 KiB per read");
                back.extend_from_slice(&chunk[..n]);
            }
            assert!(back == data, "File read differs");
        });
        assert!(std::fs::read(&path).unwrap() == data);
    }
}

rt_test! {
    async fn read_to_string_valid_and_invalid_utf8() {
        let tmp = TempDir::new("afs-utf8");
        let (good, bad) = (tmp.path().join("good"), tmp.path().join("bad"));
        std::fs::write(&good, "héllo ✓").unwrap();
        std::fs::write(&bad, [b'a', 0xff, 0xfe, b'b']).unwrap();
        assert_eq!(fs::read_to_string(&good).await.unwrap(), "héllo ✓");
        assert_eq!(kind(fs::read_to_string(&bad).await), ErrorKind::InvalidData);
    }
}

rt_test! {
    async fn missing_files_are_not_found() {
        let tmp = TempDir::new("afs-missing");
        let missing = tmp.path().join("nope");
        assert_eq!(kind(fs::read(&missing).await), ErrorKind::NotFound);
        assert_eq!(kind(File::open(&missing).await), ErrorKind::NotFound);
        assert_eq!(kind(fs::metadata(&missing).await), ErrorKind::NotFound);
        assert_eq!(kind(fs::remove_file(&missing).await), ErrorKind::NotFound);
        assert_eq!(kind(fs::copy(&missing, tmp.path().join("to")).await), ErrorKind::NotFound);
        assert_eq!(kind(File::create(missing.join("child")).await), ErrorKind::NotFound);
        assert_eq!(kind(fs::read_dir(&missing).await), ErrorKind::NotFound);
    }
}

rt_test! {
    fn nul_in_path_is_invalid_input() {
        let tmp = TempDir::new("afs-nul");
        let bad = tmp.path().join("a\0b");
        let good = tmp.path().join("good");
        std::fs::write(&good, b"x").unwrap();
        run(async {
            assert_eq!(kind(fs::read(&bad).await), ErrorKind::InvalidInput);
            assert_eq!(kind(fs::write(&bad, b"x").await), ErrorKind::InvalidInput);
            assert_eq!(kind(File::open(&bad).await), ErrorKind::InvalidInput);
            assert_eq!(kind(File::create(&bad).await), ErrorKind::InvalidInput);
            assert_eq!(kind(fs::metadata(&bad).await), ErrorKind::InvalidInput);
            assert_eq!(kind(fs::symlink_metadata(&bad).await), ErrorKind::InvalidInput);
            assert_eq!(kind(fs::create_dir(&bad).await), ErrorKind::InvalidInput);
            assert_eq!(kind(fs::create_dir_all(bad.join("x")).await), ErrorKind::InvalidInput);
            assert_eq!(kind(fs::remove_dir_all(&bad).await), ErrorKind::InvalidInput);
            assert_eq!(kind(fs::read_dir(&bad).await), ErrorKind::InvalidInput);
            assert_eq!(kind(fs::rename(&good, &bad).await), ErrorKind::InvalidInput);
            assert_eq!(kind(fs::copy(&good, &bad).await), ErrorKind::InvalidInput);
            assert_eq!(kind(fs::hard_link(&good, &bad).await), ErrorKind::InvalidInput);
            assert_eq!(kind(fs::canonicalize(&bad).await), ErrorKind::InvalidInput);
            assert_eq!(kind(fs::read_link(&bad).await), ErrorKind::InvalidInput);
            assert_eq!(kind(fs::try_exists(&bad).await), ErrorKind::InvalidInput);
            assert_eq!(kind(fs::remove_file(&bad).await), ErrorKind::InvalidInput);
        });
        assert_eq!(std::fs::read(&good).unwrap(), b"x");
    }
}

// ---- OpenOptions ----

rt_test! {
    fn create_new_on_existing_is_already_exists() {
        let tmp = TempDir::new("afs-excl");
        let path = tmp.path().join("f");
        run(async {
            let mut f = File::create_new(&path).await.unwrap();
            f.write_all(b"first").await.unwrap();
            f.flush().await.unwrap();
            assert_eq!(kind(File::create_new(&path).await), ErrorKind::AlreadyExists);
            let opts = OpenOptions::new().write(true).create_new(true).clone();
            assert_eq!(kind(opts.open(&path).await), ErrorKind::AlreadyExists);
            assert_eq!(kind(fs::create_dir(&path).await), ErrorKind::AlreadyExists);
        });
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
    }
}

rt_test! {
    fn append_appends() {
        let tmp = TempDir::new("afs-append");
        let path = tmp.path().join("log");
        std::fs::write(&path, b"abc").unwrap();
        run(async {
            let mut f = OpenOptions::new().read(true).append(true).open(&path).await.unwrap();
            f.write_all(b"def").await.unwrap();
            // The cursor is at the end after an append.
            assert_eq!(f.stream_position().await.unwrap(), 6);
            // A seek moves reads only: the next write still goes to the end.
            f.seek(SeekFrom::Start(0)).await.unwrap();
            f.write_all(b"gh").await.unwrap();
            f.seek(SeekFrom::Start(0)).await.unwrap();
            let mut all = String::new();
            f.read_to_string(&mut all).await.unwrap();
            assert_eq!(all, "abcdefgh");
            // Reading right after an append finds the end of the file.
            f.write_all(b"ij").await.unwrap();
            let mut rest = Vec::new();
            assert_eq!(f.read_to_end(&mut rest).await.unwrap(), 0);
            drop(f);
            let mut other = OpenOptions::new().append(true).open(&path).await.unwrap();
            other.write_all(b"kl").await.unwrap();
            other.close().await.unwrap();
        });
        assert_eq!(std::fs::read(&path).unwrap(), b"abcdefghijkl");
    }
}

rt_test! {
    async fn truncate_and_plain_write_options() {
        let tmp = TempDir::new("afs-trunc");
        let path = tmp.path().join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        // Without truncate, a write overwrites in place.
        let mut f = OpenOptions::new().write(true).open(&path).await.unwrap();
        f.write_all(b"ab").await.unwrap();
        f.flush().await.unwrap();
        drop(f);
        assert_eq!(fs::read(&path).await.unwrap(), b"ab23456789");
        let mut f = OpenOptions::new().write(true).truncate(true).open(&path).await.unwrap();
        assert_eq!(f.metadata().await.unwrap().len(), 0);
        f.write_all(b"xyz").await.unwrap();
        f.flush().await.unwrap();
        drop(f);
        assert_eq!(fs::read(&path).await.unwrap(), b"xyz");
        // create without truncate keeps an existing file's contents.
        let f = OpenOptions::new().write(true).create(true).open(&path).await.unwrap();
        assert_eq!(f.metadata().await.unwrap().len(), 3);
    }
}

rt_test! {
    async fn invalid_open_option_combinations() {
        let tmp = TempDir::new("afs-optbad");
        let path = tmp.path().join("f");
        assert_eq!(kind(OpenOptions::new().open(&path).await), ErrorKind::InvalidInput);
        assert_eq!(kind(OpenOptions::new().read(true).create(true).open(&path).await), ErrorKind::InvalidInput);
        assert_eq!(kind(OpenOptions::new().read(true).truncate(true).open(&path).await), ErrorKind::InvalidInput);
        assert_eq!(
            kind(OpenOptions::new().append(true).truncate(true).create(true).open(&path).await),
            ErrorKind::InvalidInput
        );
        assert!(!fs::try_exists(&path).await.unwrap(), "nothing was created");
    }
}

#[cfg(unix)]
rt_test! {
    fn open_options_mode_sets_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = TempDir::new("afs-mode");
        let path = tmp.path().join("secret");
        run(async {
            let f = OpenOptions::new().write(true).create(true).mode(0o600).open(&path).await.unwrap();
            assert_eq!(f.metadata().await.unwrap().permissions().mode() & 0o777, 0o600);
        });
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}

// ---- File: seek, interleaving, errors ----

rt_test! {
    async fn seek_start_end_current_then_read() {
        let tmp = TempDir::new("afs-seek");
        let path = tmp.path().join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        let mut f = File::open(&path).await.unwrap();
        let mut two = [0u8; 2];
        assert_eq!(f.seek(SeekFrom::Start(3)).await.unwrap(), 3);
        f.read_exact(&mut two).await.unwrap();
        assert_eq!(&two, b"34");
        assert_eq!(f.seek(SeekFrom::Current(2)).await.unwrap(), 7);
        f.read_exact(&mut two).await.unwrap();
        assert_eq!(&two, b"78");
        assert_eq!(f.seek(SeekFrom::End(-4)).await.unwrap(), 6);
        f.read_exact(&mut two).await.unwrap();
        assert_eq!(&two, b"67");
        assert_eq!(f.seek(SeekFrom::Current(-3)).await.unwrap(), 5);
        f.read_exact(&mut two[..1]).await.unwrap();
        assert_eq!(two[0], b'5');
        assert_eq!(f.seek(SeekFrom::End(0)).await.unwrap(), 10);
        assert_eq!(f.read(&mut two).await.unwrap(), 0);
        // Past the end reads nothing; before the start is an error that leaves the cursor alone.
        assert_eq!(f.seek(SeekFrom::End(5)).await.unwrap(), 15);
        assert_eq!(f.read(&mut two).await.unwrap(), 0);
        assert_eq!(kind(f.seek(SeekFrom::Current(-16)).await), ErrorKind::InvalidInput);
        assert_eq!(kind(f.seek(SeekFrom::End(-11)).await), ErrorKind::InvalidInput);
        assert_eq!(f.stream_position().await.unwrap(), 15);
    }
}

rt_test! {
    fn interleaved_writes_and_reads_via_seek() {
        let tmp = TempDir::new("afs-inter");
        let path = tmp.path().join("f");
        run(async {
            let mut f = File::options().read(true).write(true).create(true).open(&path).await.unwrap();
            f.write_all(b"hello world").await.unwrap();
            // No flush: the seek and read wait for the write in flight.
            f.seek(SeekFrom::Start(6)).await.unwrap();
            let mut word = [0u8; 5];
            f.read_exact(&mut word).await.unwrap();
            assert_eq!(&word, b"world");
            f.seek(SeekFrom::Start(0)).await.unwrap();
            f.write_all(b"HELLO").await.unwrap();
            let mut rest = String::new();
            f.read_to_string(&mut rest).await.unwrap(); // right after the write: from position 5
            assert_eq!(rest, " world");
            f.seek(SeekFrom::Start(0)).await.unwrap();
            let mut all = String::new();
            f.read_to_string(&mut all).await.unwrap();
            assert_eq!(all, "HELLO world");
            // Writing past the end leaves a hole of zeros.
            f.seek(SeekFrom::Start(13)).await.unwrap();
            f.write_all(b"!").await.unwrap();
            f.flush().await.unwrap();
        });
        assert_eq!(std::fs::read(&path).unwrap(), b"HELLO world\0\0!");
    }
}

rt_test! {
    async fn flush_reports_write_errors() {
        let tmp = TempDir::new("afs-werr");
        let path = tmp.path().join("ro");
        std::fs::write(&path, b"keep").unwrap();
        // Opened read-only: the write is accepted, then fails (EBADF); flush reports it, once.
        let mut f = File::open(&path).await.unwrap();
        assert_eq!(f.write(b"nope").await.unwrap(), 4);
        let err = f.flush().await.unwrap_err();
        #[cfg(unix)]
        assert_eq!(err.raw_os_error(), Some(libc::EBADF));
        drop(err);
        f.flush().await.unwrap();
        // The next write reports it as well…
        assert_eq!(f.write(b"again").await.unwrap(), 5);
        assert!(f.write(b"more").await.is_err());
        // …and so do sync_all and close.
        assert_eq!(f.write(b"x").await.unwrap(), 1);
        assert!(f.sync_all().await.is_err());
        assert_eq!(f.write(b"y").await.unwrap(), 1);
        assert!(f.close().await.is_err());
        // Reads still work.
        f.seek(SeekFrom::Start(0)).await.unwrap();
        let mut s = String::new();
        f.read_to_string(&mut s).await.unwrap();
        assert_eq!(s, "keep");
    }
}

rt_test! {
    async fn sync_set_len_and_metadata_sizes() {
        let tmp = TempDir::new("afs-len");
        let path = tmp.path().join("f");
        let mut f = File::options().read(true).write(true).create(true).open(&path).await.unwrap();
        f.write_all(&[7u8; 100]).await.unwrap();
        // metadata waits for the write in flight.
        assert_eq!(f.metadata().await.unwrap().len(), 100);
        f.sync_all().await.unwrap();
        f.set_len(10).await.unwrap();
        assert_eq!(f.metadata().await.unwrap().len(), 10);
        f.set_len(50).await.unwrap();
        f.sync_data().await.unwrap();
        assert_eq!(fs::metadata(&path).await.unwrap().len(), 50);
        // The cursor did not move (it is at 100): reads there find the end.
        assert_eq!(f.stream_position().await.unwrap(), 100);
        assert_eq!(f.read(&mut [0u8; 4]).await.unwrap(), 0);
        f.seek(SeekFrom::Start(0)).await.unwrap();
        let mut back = Vec::new();
        f.read_to_end(&mut back).await.unwrap();
        let mut expected = vec![7u8; 10];
        expected.resize(50, 0);
        assert_eq!(back, expected);
    }
}

rt_test! {
    async fn set_len_discards_bytes_read_ahead() {
        let tmp = TempDir::new("afs-lenahead");
        let path = tmp.path().join("f");
        std::fs::write(&path, b"abcdefgh").unwrap();
        let mut f = File::options().read(true).write(true).open(&path).await.unwrap();
        let mut buf = [0u8; 8];
        // Start a read, drop it: its bytes are kept for the next read…
        drop_a_read_in_flight(&mut f, &path, &mut buf).await;
        // …unless the file shrinks meanwhile.
        f.set_len(2).await.unwrap();
        let mut back = Vec::new();
        f.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"ab");
    }
}

rt_test! {
    async fn read_at_end_is_zero_and_not_sticky() {
        let tmp = TempDir::new("afs-eof");
        let path = tmp.path().join("f");
        std::fs::write(&path, b"ab").unwrap();
        let mut f = File::open(&path).await.unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(f.read(&mut buf).await.unwrap(), 2);
        assert_eq!(f.read(&mut buf).await.unwrap(), 0);
        assert_eq!(f.read(&mut []).await.unwrap(), 0);
        let mut appender = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        std::io::Write::write_all(&mut appender, b"cd").unwrap();
        assert_eq!(f.read(&mut buf).await.unwrap(), 2);
        assert_eq!(&buf[..2], b"cd");
    }
}

// ---- Cancellation ----

rt_test! {
    async fn dropped_read_future_then_read_again_gives_correct_data() {
        let tmp = TempDir::new("afs-dropread");
        let path = tmp.path().join("f");
        let data = pattern(300_000);
        std::fs::write(&path, &data).unwrap();
        let mut f = File::open(&path).await.unwrap();
        let mut buf = vec![0u8; 1000];
        drop_a_read_in_flight(&mut f, &path, &mut buf).await;
        // The read that was in flight is waited for and its bytes are the next ones returned.
        let mut got = vec![0u8; 1500];
        f.read_exact(&mut got).await.unwrap();
        assert_eq!(got, &data[..1500]);
        assert_eq!(f.stream_position().await.unwrap(), 1500);
        // Drop one again, then seek away: the seek waits for it and discards its bytes.
        drop_a_read_in_flight(&mut f, &path, &mut buf).await;
        f.seek(SeekFrom::Start(200_000)).await.unwrap();
        f.read_exact(&mut got).await.unwrap();
        assert_eq!(got, &data[200_000..201_500]);
        // A dropped read, then reading to the end: nothing is skipped or repeated.
        drop_a_read_in_flight(&mut f, &path, &mut buf).await;
        let mut rest = Vec::new();
        f.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, &data[201_500..]);
    }
}

rt_test! {
    async fn dropped_seek_end_still_takes_effect() {
        let tmp = TempDir::new("afs-dropseek");
        let path = tmp.path().join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        let mut f = File::open(&path).await.unwrap();
        {
            let mut fut = f.seek(SeekFrom::End(-3));
            assert!(futures::poll!(&mut fut).is_pending(), "the fstat is in flight");
        }
        assert_eq!(f.stream_position().await.unwrap(), 7);
        let mut rest = String::new();
        f.read_to_string(&mut rest).await.unwrap();
        assert_eq!(rest, "789");
    }
}

rt_test! {
    fn dropped_file_with_write_in_flight_still_writes() {
        let tmp = TempDir::new("afs-dropwrite");
        let path = tmp.path().join("f");
        let data = pattern(1024 * 1024 + 5);
        run(async {
            let mut f = File::create(&path).await.unwrap();
            // write_all returns once the last chunk is accepted; that chunk is still in flight.
            f.write_all(&data).await.unwrap();
            drop(f);
            // A file dropped right after one accepted write.
            let mut g = File::create(path.with_extension("2")).await.unwrap();
            assert_eq!(g.write(b"tail").await.unwrap(), 4);
        });
        // Closing the runtime ran the writes to completion.
        assert!(std::fs::read(&path).unwrap() == data);
        assert_eq!(std::fs::read(path.with_extension("2")).unwrap(), b"tail");
    }
}

rt_test! {
    async fn dropped_free_function_futures_leave_nothing_behind() {
        let tmp = TempDir::new("afs-dropfree");
        let path = tmp.path().join("f");
        std::fs::write(&path, pattern(100_000)).unwrap();
        let mut read = Box::pin(fs::read(&path));
        assert!(futures::poll!(read.as_mut()).is_pending());
        drop(read);
        let mut dir = Box::pin(fs::read_dir(tmp.path()));
        assert!(futures::poll!(dir.as_mut()).is_pending());
        drop(dir);
        let mut open = Box::pin(File::open(&path));
        assert!(futures::poll!(open.as_mut()).is_pending());
        drop(open);
        let mut write = Box::pin(fs::write(tmp.path().join("w"), b"data"));
        assert!(futures::poll!(write.as_mut()).is_pending());
        drop(write);
        // A timeout that expires first drops a whole-file read mid-way.
        let _ = uvio::time::timeout(std::time::Duration::from_millis(1), fs::read(&path)).await;
        assert_eq!(fs::read(&path).await.unwrap().len(), 100_000);
    }
}

// ---- Metadata and permissions ----

rt_test! {
    async fn metadata_of_files_and_dirs() {
        let tmp = TempDir::new("afs-meta");
        let path = tmp.path().join("f");
        std::fs::write(&path, b"12345").unwrap();
        let m = fs::metadata(&path).await.unwrap();
        assert!(m.is_file() && !m.is_dir() && !m.is_symlink());
        assert!(m.file_type().is_file());
        assert_eq!(m.len(), 5);
        assert!(!m.is_empty());
        assert!(!m.permissions().readonly());
        let std_m = std::fs::metadata(&path).unwrap();
        assert_eq!(m.modified().unwrap(), std_m.modified().unwrap());
        assert_eq!(m.accessed().unwrap(), std_m.accessed().unwrap());
        if let (Ok(ours), Ok(theirs)) = (m.created(), std_m.created()) {
            assert_eq!(ours, theirs);
        }
        let age = std::time::SystemTime::now().duration_since(m.modified().unwrap()).unwrap_or_default();
        assert!(age < std::time::Duration::from_secs(3600));
        let d = fs::metadata(tmp.path()).await.unwrap();
        assert!(d.is_dir() && d.file_type().is_dir() && !d.is_file());
        let f = File::open(&path).await.unwrap();
        assert_eq!(f.metadata().await.unwrap(), m);
    }
}

rt_test! {
    async fn set_permissions_readonly() {
        let tmp = TempDir::new("afs-perm");
        let path = tmp.path().join("f");
        std::fs::write(&path, b"x").unwrap();
        let mut perm = fs::metadata(&path).await.unwrap().permissions();
        perm.set_readonly(true);
        fs::set_permissions(&path, perm).await.unwrap();
        assert!(fs::metadata(&path).await.unwrap().permissions().readonly());
        assert!(std::fs::metadata(&path).unwrap().permissions().readonly());
        // Opening it for writing fails exactly when std's open fails (root ignores permission bits).
        match std::fs::OpenOptions::new().write(true).open(&path) {
            Err(e) => assert_eq!(kind(File::options().write(true).open(&path).await), e.kind()),
            Ok(_) => drop(File::options().write(true).open(&path).await.unwrap()),
        }
        let f = File::open(&path).await.unwrap();
        perm.set_readonly(false);
        f.set_permissions(perm).await.unwrap();
        assert!(!fs::metadata(&path).await.unwrap().permissions().readonly());
    }
}

#[cfg(unix)]
rt_test! {
    async fn permissions_mode_round_trip() {
        use uvio::fs::Permissions;
        let tmp = TempDir::new("afs-pmode");
        let path = tmp.path().join("f");
        std::fs::write(&path, b"x").unwrap();
        fs::set_permissions(&path, Permissions::from_mode(0o640)).await.unwrap();
        let perm = fs::metadata(&path).await.unwrap().permissions();
        assert_eq!(perm.mode(), 0o640);
        assert!(!perm.readonly());
        fs::set_permissions(&path, Permissions::from_mode(0o444)).await.unwrap();
        assert!(fs::metadata(&path).await.unwrap().permissions().readonly());
    }
}

// ---- Directories ----

rt_test! {
    fn read_dir_ten_thousand_entries() {
        let tmp = TempDir::new("afs-10k");
        let base = tmp.path().join("base");
        let list = tmp.path().join("list");
        std::fs::write(&base, b"x").unwrap();
        std::fs::create_dir(&list).unwrap();
        let mut expected: Vec<String> = (0..10_000).map(|i| format!("entry-{i:05}")).collect();
        for name in &expected {
            // Hard links: far cheaper than 10 000 new inodes on some file systems.
            std::fs::hard_link(&base, list.join(name)).unwrap();
        }
        let mut names: Vec<String> = run(async {
            let entries: Vec<_> = fs::read_dir(&list).await.unwrap().try_collect().await.unwrap();
            for e in entries.iter().take(5) {
                assert_eq!(e.path(), list.join(e.file_name()));
                assert!(e.file_type().await.unwrap().is_file());
            }
            entries.into_iter().map(|e| e.file_name().into_string().unwrap()).collect()
        });
        assert_eq!(names.len(), 10_000);
        names.sort();
        expected.sort();
        assert_eq!(names, expected);
    }
}

rt_test! {
    async fn read_dir_dropped_mid_stream() {
        let tmp = TempDir::new("afs-dropdir");
        for i in 0..200 {
            std::fs::File::create(tmp.path().join(format!("f{i}"))).unwrap();
        }
        // Dropped in the middle of the second batch.
        let mut rd = fs::read_dir(tmp.path()).await.unwrap();
        for _ in 0..70 {
            rd.next_entry().await.unwrap().unwrap();
        }
        drop(rd);
        // Dropped with a batch in flight.
        let mut rd = fs::read_dir(tmp.path()).await.unwrap();
        assert!(futures::poll!(rd.next()).is_pending());
        drop(rd);
        // Dropped before reading anything, and after the end.
        drop(fs::read_dir(tmp.path()).await.unwrap());
        let mut rd = fs::read_dir(tmp.path()).await.unwrap();
        let mut n = 0;
        while rd.next_entry().await.unwrap().is_some() {
            n += 1;
        }
        assert_eq!(n, 200);
        assert!(rd.next_entry().await.unwrap().is_none(), "the end is sticky");
        assert!(rd.next().await.is_none());
    }
}

rt_test! {
    async fn read_dir_entry_types_and_paths() {
        let tmp = TempDir::new("afs-types");
        std::fs::write(tmp.path().join("file"), b"abc").unwrap();
        std::fs::create_dir(tmp.path().join("dir")).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("file", tmp.path().join("link")).unwrap();
        let mut rd = fs::read_dir(tmp.path()).await.unwrap();
        let mut seen = Vec::new();
        while let Some(e) = rd.next_entry().await.unwrap() {
            let name = e.file_name().into_string().unwrap();
            assert_eq!(e.path(), tmp.path().join(&name));
            let t = e.file_type().await.unwrap();
            let m = e.metadata().await.unwrap();
            assert_eq!(m.file_type(), t, "metadata does not follow links either");
            match name.as_str() {
                "file" => assert!(t.is_file() && m.len() == 3),
                "dir" => assert!(t.is_dir()),
                "link" => assert!(t.is_symlink()),
                other => panic!("unexpected entry {other}"),
            }
            seen.push(name);
        }
        seen.sort();
        let expected: &[&str] = if cfg!(unix) { &["dir", "file", "link"] } else { &["dir", "file"] };
        assert_eq!(seen, expected);
        // Listing a file is an error.
        assert!(fs::read_dir(tmp.path().join("file")).await.is_err());
    }
}

rt_test! {
    async fn create_dir_all_nested_and_existing() {
        let tmp = TempDir::new("afs-mkdirp");
        let deep = tmp.path().join("a").join("b").join("c").join("d");
        assert_eq!(kind(fs::create_dir(&deep).await), ErrorKind::NotFound);
        fs::create_dir_all(&deep).await.unwrap();
        assert!(fs::metadata(&deep).await.unwrap().is_dir());
        fs::create_dir_all(&deep).await.unwrap(); // already exists: fine
        fs::create_dir_all("").await.unwrap(); // as std
        fs::create_dir_all(tmp.path().join("a")).await.unwrap();
        assert_eq!(kind(fs::create_dir(&deep).await), ErrorKind::AlreadyExists);
        // A file in the way is an error, whether it is the target or a parent.
        let file = tmp.path().join("a").join("file");
        fs::write(&file, b"x").await.unwrap();
        assert!(fs::create_dir_all(&file).await.is_err());
        assert!(fs::create_dir_all(file.join("sub")).await.is_err());
        // A relative path with `.` and `..` components.
        let odd = tmp.path().join("x").join(".").join("y").join("..").join("z");
        fs::create_dir_all(&odd).await.unwrap();
        assert!(fs::metadata(tmp.path().join("x").join("z")).await.unwrap().is_dir());
        // remove_dir refuses a non-empty directory, then works bottom-up.
        assert!(fs::remove_dir(tmp.path().join("a").join("b")).await.is_err());
        fs::remove_dir(&deep).await.unwrap();
        assert!(!fs::try_exists(&deep).await.unwrap());
    }
}

#[cfg(unix)]
rt_test! {
    fn create_dir_all_with_mode() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = TempDir::new("afs-dirmode");
        let dir = tmp.path().join("p").join("q");
        run(async {
            fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).await.unwrap();
        });
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(std::fs::metadata(dir.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
    }
}

rt_test! {
    async fn remove_dir_all_removes_a_tree() {
        let tmp = TempDir::new("afs-rmtree");
        let root = tmp.path().join("root");
        for d in ["a/b/c", "a/e", "f"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        for (i, f) in ["a/1", "a/b/2", "a/b/c/3", "a/e/4", "5"].iter().enumerate() {
            std::fs::write(root.join(f), vec![i as u8; i * 1000]).unwrap();
        }
        fs::remove_dir_all(&root).await.unwrap();
        assert!(!fs::try_exists(&root).await.unwrap());
        assert_eq!(kind(fs::remove_dir_all(&root).await), ErrorKind::NotFound);
        // A file is not a directory.
        let file = tmp.path().join("file");
        fs::write(&file, b"x").await.unwrap();
        assert!(fs::remove_dir_all(&file).await.is_err());
        assert!(fs::try_exists(&file).await.unwrap());
    }
}

#[cfg(unix)]
rt_test! {
    fn remove_dir_all_never_follows_symlinks() {
        let tmp = TempDir::new("afs-rmlinks");
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep.txt"), b"precious").unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub").join("f"), b"x").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("dir_link")).unwrap();
        std::os::unix::fs::symlink(outside.join("keep.txt"), root.join("sub").join("file_link")).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("nowhere"), root.join("dangling")).unwrap();
        // A link to the tree itself, as the root given to remove_dir_all: only the link goes.
        std::os::unix::fs::symlink(&outside, tmp.path().join("root_link")).unwrap();
        run(async {
            fs::remove_dir_all(&root).await.unwrap();
            assert!(!fs::try_exists(&root).await.unwrap());
            fs::remove_dir_all(tmp.path().join("root_link")).await.unwrap();
            assert!(!fs::try_exists(tmp.path().join("root_link")).await.unwrap());
        });
        assert_eq!(std::fs::read(outside.join("keep.txt")).unwrap(), b"precious");
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1);
    }
}

// ---- Links, copy, rename, exists ----

rt_test! {
    async fn canonicalize_resolves_dots() {
        let tmp = TempDir::new("afs-canon");
        std::fs::create_dir(tmp.path().join("sub")).unwrap();
        std::fs::write(tmp.path().join("file"), b"x").unwrap();
        let odd = tmp.path().join("sub").join("..").join(".").join("file");
        let canon = fs::canonicalize(&odd).await.unwrap();
        assert!(canon.is_absolute());
        assert_eq!(canon.file_name().unwrap(), "file");
        assert!(!canon.iter().any(|c| c == "." || c == ".."));
        // std's form on Windows is a verbatim `\\?\` path, libuv's is not.
        #[cfg(unix)]
        assert_eq!(canon, std::fs::canonicalize(tmp.path().join("file")).unwrap());
        assert_eq!(kind(fs::canonicalize(tmp.path().join("missing")).await), ErrorKind::NotFound);
        #[cfg(unix)]
        {
            fs::symlink(tmp.path().join("sub"), tmp.path().join("link")).await.unwrap();
            let via_link = fs::canonicalize(tmp.path().join("link")).await.unwrap();
            assert_eq!(via_link, std::fs::canonicalize(tmp.path().join("sub")).unwrap());
        }
    }
}

#[cfg(unix)]
rt_test! {
    async fn symlink_read_link_and_symlink_metadata() {
        let tmp = TempDir::new("afs-symlink");
        let target = tmp.path().join("target");
        let link = tmp.path().join("link");
        std::fs::write(&target, b"0123456789").unwrap();
        fs::symlink(&target, &link).await.unwrap();
        assert_eq!(fs::read_link(&link).await.unwrap(), target);
        let lm = fs::symlink_metadata(&link).await.unwrap();
        assert!(lm.is_symlink() && !lm.is_file());
        let m = fs::metadata(&link).await.unwrap();
        assert!(m.is_file() && m.len() == 10);
        assert_eq!(fs::read(&link).await.unwrap(), b"0123456789");
        assert_eq!(kind(fs::symlink(&target, &link).await), ErrorKind::AlreadyExists);
        assert!(fs::read_link(&target).await.is_err(), "not a link");
        // A relative, dangling link.
        let dangling = tmp.path().join("dangling");
        fs::symlink("does-not-exist", &dangling).await.unwrap();
        assert_eq!(fs::read_link(&dangling).await.unwrap(), std::path::Path::new("does-not-exist"));
        assert!(!fs::try_exists(&dangling).await.unwrap());
        assert!(fs::symlink_metadata(&dangling).await.unwrap().is_symlink());
        // remove_file removes the link, not the target.
        fs::remove_file(&link).await.unwrap();
        assert!(fs::try_exists(&target).await.unwrap());
    }
}

rt_test! {
    async fn hard_link_shares_contents() {
        let tmp = TempDir::new("afs-hardlink");
        let (orig, link) = (tmp.path().join("orig"), tmp.path().join("link"));
        std::fs::write(&orig, b"shared").unwrap();
        fs::hard_link(&orig, &link).await.unwrap();
        assert_eq!(fs::read(&link).await.unwrap(), b"shared");
        #[cfg(unix)]
        assert_eq!(fs::metadata(&link).await.unwrap().stat().nlink, 2);
        let mut f = OpenOptions::new().write(true).open(&link).await.unwrap();
        f.write_all(b"SH").await.unwrap();
        f.flush().await.unwrap();
        assert_eq!(fs::read(&orig).await.unwrap(), b"SHared");
        assert_eq!(kind(fs::hard_link(&orig, &link).await), ErrorKind::AlreadyExists);
        fs::remove_file(&orig).await.unwrap();
        assert_eq!(fs::read(&link).await.unwrap(), b"SHared");
    }
}

rt_test! {
    async fn copy_copies_contents_and_returns_len() {
        let tmp = TempDir::new("afs-copy");
        let (from, to) = (tmp.path().join("from"), tmp.path().join("to"));
        let data = pattern(200_001);
        std::fs::write(&from, &data).unwrap();
        std::fs::write(&to, b"old contents, longer than nothing").unwrap();
        assert_eq!(fs::copy(&from, &to).await.unwrap(), data.len() as u64);
        assert!(fs::read(&to).await.unwrap() == data);
        assert!(fs::read(&from).await.unwrap() == data);
    }
}

rt_test! {
    async fn rename_moves_and_replaces() {
        let tmp = TempDir::new("afs-rename");
        let (a, b, c) = (tmp.path().join("a"), tmp.path().join("b"), tmp.path().join("c"));
        std::fs::write(&a, b"A").unwrap();
        std::fs::write(&c, b"C").unwrap();
        fs::rename(&a, &b).await.unwrap();
        assert!(!fs::try_exists(&a).await.unwrap());
        assert_eq!(fs::read(&b).await.unwrap(), b"A");
        fs::rename(&b, &c).await.unwrap();
        assert_eq!(fs::read(&c).await.unwrap(), b"A");
        assert_eq!(kind(fs::rename(&a, &b).await), ErrorKind::NotFound);
        let dir = tmp.path().join("d");
        fs::create_dir(&dir).await.unwrap();
        fs::rename(&dir, tmp.path().join("e")).await.unwrap();
        assert!(fs::metadata(tmp.path().join("e")).await.unwrap().is_dir());
    }
}

rt_test! {
    async fn try_exists_reports_presence() {
        let tmp = TempDir::new("afs-exists");
        let file = tmp.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        assert!(fs::try_exists(&file).await.unwrap());
        assert!(fs::try_exists(tmp.path()).await.unwrap());
        assert!(!fs::try_exists(tmp.path().join("missing")).await.unwrap());
        // Through a file as if it were a directory: the question stays open.
        #[cfg(unix)]
        assert!(fs::try_exists(file.join("x")).await.is_err());
    }
}

// ---- Concurrency ----

rt_test! {
    async fn many_tasks_at_once() {
        let tmp = TempDir::new("afs-tasks");
        let dir = tmp.path().to_path_buf();
        let tasks: Vec<_> = (0..100u8)
            .map(|i| {
                let dir = dir.clone();
                spawn_local(async move {
                    let path = dir.join(format!("t{i}"));
                    let data = vec![i; 1000 + i as usize * 37];
                    fs::write(&path, &data).await?;
                    let mut f = OpenOptions::new().read(true).append(true).open(&path).await?;
                    f.write_all(&[i; 10]).await?;
                    f.seek(SeekFrom::Start(0)).await?;
                    let mut back = Vec::new();
                    f.read_to_end(&mut back).await?;
                    assert_eq!(back.len(), data.len() + 10);
                    assert!(back.iter().all(|&b| b == i));
                    assert_eq!(fs::metadata(&path).await?.len(), back.len() as u64);
                    fs::copy(&path, path.with_extension("copy")).await?;
                    std::io::Result::Ok(back.len())
                })
            })
            .collect();
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap().unwrap();
        }
        assert_eq!(total, (0..100).map(|i| 1010 + i * 37).sum::<usize>());
        let entries: Vec<_> = fs::read_dir(&dir).await.unwrap().try_collect().await.unwrap();
        assert_eq!(entries.len(), 200);
    }
}

rt_test! {
    async fn one_file_waited_on_by_several_tasks() {
        let tmp = TempDir::new("afs-waiters");
        let path = tmp.path().join("f");
        let mut f = File::create(&path).await.unwrap();
        f.write_all(&pattern(1 << 20)).await.unwrap(); // the last chunk is in flight
        let f = Rc::new(f);
        let (a, b) = (f.clone(), f.clone());
        let t1 = spawn_local(async move { a.sync_all().await.map(|_| 0) });
        let t2 = spawn_local(async move { b.metadata().await.map(|m| m.len()) });
        // And one more on this task, joined with a third waiter.
        let (m, s) = futures::join!(f.metadata(), f.sync_data());
        s.unwrap();
        assert_eq!(m.unwrap().len(), 1 << 20);
        assert_eq!(t1.await.unwrap().unwrap(), 0);
        assert_eq!(t2.await.unwrap().unwrap(), 1 << 20);
    }
}

rt_test! {
    async fn read_at_runs_many_reads_on_one_file_at_once() {
        let dir = TempDir::new("afs-read-at");
        let path = dir.path().join("data");
        let data = pattern(1 << 20);
        std::fs::write(&path, &data).unwrap();
        let file = Rc::new(File::open(&path).await.unwrap());
        // 64 tasks, 16 reads each, all on the one file, at offsets spread over it.
        let tasks: Vec<_> = (0..64u64)
            .map(|t| {
                let (file, data) = (file.clone(), data.clone());
                spawn_local(async move {
                    let mut buf = Vec::with_capacity(4096);
                    for i in 0..16u64 {
                        let at = (t * 16 + i) * 1021 % (data.len() as u64 - 4096);
                        buf.clear();
                        let (res, back) = file.read_at(buf, at).await;
                        assert_eq!(res.unwrap(), 4096);
                        assert_eq!(back, data[at as usize..at as usize + 4096], "bytes at {at}");
                        buf = back;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        // The spare capacity is filled after what the buffer holds; at and past the end: 0 bytes.
        let mut buf = Vec::with_capacity(8);
        buf.extend_from_slice(b"ab");
        let (res, buf) = file.read_at(buf, 10).await;
        assert_eq!(res.unwrap(), buf.capacity() - 2);
        assert_eq!(&buf[..2], b"ab");
        assert_eq!(buf[2..], data[10..10 + buf.len() - 2]);
        let (res, buf) = file.read_at(Vec::with_capacity(16), data.len() as u64 - 4).await;
        assert_eq!((res.unwrap(), &buf[..]), (4, &data[data.len() - 4..]));
        let (res, buf) = file.read_at(buf, data.len() as u64 + 100).await;
        assert_eq!(res.unwrap(), 0);
        assert_eq!(buf.len(), 4, "nothing added at the end of the file");
        // The cursor did not move.
        let mut first = [0u8; 8];
        let mut reader = Rc::try_unwrap(file).ok().unwrap();
        reader.read_exact(&mut first).await.unwrap();
        assert_eq!(first, data[..8]);
    }
}

rt_test! {
    async fn write_at_writes_at_offsets_and_sees_earlier_writes() {
        let dir = TempDir::new("afs-write-at");
        let path = dir.path().join("data");
        let mut file = OpenOptions::new().read(true).write(true).create(true).open(&path).await.unwrap();
        // Eight writes in flight at once, each at its own offset.
        let writes: Vec<_> = (0..8u8).map(|i| file.write_at(vec![b'a' + i; 1000], u64::from(i) * 1000)).collect();
        for (res, buf) in futures::future::join_all(writes).await {
            assert_eq!(res.unwrap(), 1000);
            assert_eq!(buf.len(), 1000, "the buffer comes back");
        }
        // A write through the cursor, not flushed: read_at waits for it.
        file.write_all(b"HEAD").await.unwrap();
        let (res, buf) = file.read_at(Vec::with_capacity(8), 0).await;
        assert_eq!(res.unwrap(), 8);
        assert_eq!(buf, b"HEADaaaa");
        let (res, buf) = file.read_at(Vec::with_capacity(2), 7999).await;
        assert_eq!((res.unwrap(), &buf[..]), (1, &b"h"[..]));
        drop(file);
        let all = std::fs::read(&path).unwrap();
        assert_eq!(all.len(), 8000);
        assert_eq!(&all[..4], b"HEAD");
        assert!(all[4..1000].iter().all(|&b| b == b'a'));
        assert!(all[7000..].iter().all(|&b| b == b'h'));
    }
}

rt_test! {
    async fn dropped_read_at_and_write_at_futures_leave_the_file_usable() {
        let dir = TempDir::new("afs-at-drop");
        let path = dir.path().join("data");
        std::fs::write(&path, pattern(64 * 1024)).unwrap();
        let file = OpenOptions::new().read(true).write(true).open(&path).await.unwrap();
        for i in 0..50u64 {
            // Polled once (the request starts: the page is not cached), then dropped: the buffer stays with the
            // request.
            evict(&path);
            let mut read = std::pin::pin!(file.read_at(Vec::with_capacity(4096), i * 512));
            let _ = futures::poll!(read.as_mut());
            let mut write = std::pin::pin!(file.write_at(vec![9u8; 16], 60_000 + i));
            let _ = futures::poll!(write.as_mut());
        }
        // Operations in flight are not ordered with each other (as pread/pwrite from several threads): wait
        // until the dropped writes have landed.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let (res, buf) = file.read_at(Vec::with_capacity(16), 60_000).await;
            assert_eq!(res.unwrap(), 16);
            if buf.iter().all(|&b| b == 9) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the dropped writes were never carried out: {buf:?}");
            uvio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let (res, buf) = file.read_at(Vec::with_capacity(4), 0).await;
        assert_eq!((res.unwrap(), buf), (4, pattern(4)));
    }
}

// ---- Reads served from the page cache (Linux: `preadv2(RWF_NOWAIT)` before any request) ----

rt_test! {
    async fn reading_a_cached_file_in_small_bites_lets_other_tasks_run() {
        // Every read below finds its bytes in the page cache (the file was just written), so on Linux no read ever
        // waits: only the cooperative budget makes the reader yield.
        let dir = TempDir::new("fs-cached-coop");
        let path = dir.path().join("f");
        let data = pattern(1 << 20);
        std::fs::write(&path, &data).unwrap();
        let polls = Rc::new(std::cell::Cell::new(0u32));
        let counter = polls.clone();
        let other = spawn_local(async move {
            loop {
                counter.set(counter.get() + 1);
                uvio::task::yield_now().await;
            }
        });
        let mut file = File::open(&path).await.unwrap();
        let mut got = Vec::with_capacity(data.len());
        let mut bite = [0u8; 64];
        loop {
            let n = file.read(&mut bite).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&bite[..n]);
        }
        assert!(got == data, "the bytes read differ from the file's");
        let (mut at, mut buf) = (0u64, Vec::with_capacity(64));
        while at < data.len() as u64 {
            buf.clear();
            let (res, back) = file.read_at(buf, at).await;
            let n = res.unwrap();
            assert!(n > 0 && back[..] == data[at as usize..at as usize + n], "read_at at {at}");
            at += n as u64;
            buf = back;
        }
        let other_ran = polls.get();
        other.abort();
        // 2 x 16 384 reads with a budget of 128 per poll: the reader yields at least 256 times.
        assert!(other_ran >= 100, "another task ran only {other_ran} times during 32 768 cached reads");
    }
}

#[cfg(target_os = "linux")]
rt_test! {
    async fn reads_of_evicted_and_cached_pages_return_the_same_bytes() {
        // Cold reads take the request path (whatever the page cache kept is read in place), warm ones the cached
        // path, and a read over a half-cached range may stop where the cache does: every way, the bytes are the
        // file's.
        let dir = TempDir::new("fs-cached-evicted");
        let path = dir.path().join("f");
        let data = pattern(3 << 20);
        std::fs::write(&path, &data).unwrap();
        for round in 0..3 {
            evict(&path);
            if round == 2 {
                // Warm only the first half of every 128 KiB stretch, so some reads start cached and run cold.
                let f = std::fs::File::open(&path).unwrap();
                let mut half = vec![0u8; 64 << 10];
                for at in (0..data.len() as u64).step_by(128 << 10) {
                    std::os::unix::fs::FileExt::read_exact_at(&f, &mut half, at).unwrap();
                }
            }
            let mut file = File::open(&path).await.unwrap();
            file.seek(SeekFrom::Start(1000)).await.unwrap();
            let mut got = Vec::new();
            file.read_to_end(&mut got).await.unwrap();
            assert!(got[..] == data[1000..], "round {round}: the cursor read other bytes");
            evict(&path);
            let mut at = 0usize;
            while at < data.len() {
                let (res, buf) = file.read_at(Vec::with_capacity(100_000), at as u64).await;
                let n = res.unwrap();
                assert!(n > 0 && buf[..] == data[at..at + n], "round {round}: read_at at {at}");
                at += n;
            }
        }
    }
}

// ---- Offsets past i64::MAX ----

rt_test! {
    fn offsets_past_i64_max_are_invalid_input_and_touch_nothing() {
        let tmp = TempDir::new("afs-offset-max");
        let path = tmp.path().join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        run(async {
            let mut file = OpenOptions::new().read(true).write(true).open(&path).await.unwrap();
            for pos in [u64::MAX, i64::MAX as u64 + 1] {
                // The kernel's offsets are signed: -1 would mean "the current position" to the ring.
                let (res, buf) = file.write_at(b"XY".to_vec(), pos).await;
                assert_eq!(kind(res), ErrorKind::InvalidInput, "write_at({pos})");
                assert_eq!(buf, b"XY", "write_at gives the buffer back");
                let (res, buf) = file.read_at(Vec::with_capacity(4), pos).await;
                assert_eq!(kind(res), ErrorKind::InvalidInput, "read_at({pos})");
                assert!(buf.is_empty(), "read_at({pos}) read {buf:?}");
            }
            // Seeking there is refused (as lseek says), and the cursor stays where it was.
            file.seek(SeekFrom::Start(2)).await.unwrap();
            assert_eq!(kind(file.seek(SeekFrom::Start(u64::MAX)).await), ErrorKind::InvalidInput);
            assert_eq!(kind(file.seek(SeekFrom::Start(i64::MAX as u64 + 1)).await), ErrorKind::InvalidInput);
            assert_eq!(kind(file.seek(SeekFrom::Current(i64::MAX)).await), ErrorKind::InvalidInput);
            assert_eq!(kind(file.seek(SeekFrom::End(i64::MAX)).await), ErrorKind::InvalidInput);
            let mut two = [0u8; 2];
            file.read_exact(&mut two).await.unwrap();
            assert_eq!(&two, b"23");
            // The largest offset the kernel takes is a valid cursor; a read there ends past it, which the kernel
            // refuses (as it does for std); a read just below finds the end of the file.
            assert_eq!(file.seek(SeekFrom::Start(i64::MAX as u64)).await.unwrap(), i64::MAX as u64);
            assert_eq!(kind(file.seek(SeekFrom::Current(1)).await), ErrorKind::InvalidInput);
            assert_eq!(kind(file.read(&mut two).await), ErrorKind::InvalidInput);
            let (res, _) = file.read_at(Vec::with_capacity(2), i64::MAX as u64 - 2).await;
            assert_eq!(res.unwrap(), 0);
            // A write there would end past i64::MAX: refused as the kernel refuses it, without wrapping the cursor.
            let res = async {
                file.write_all(b"XY").await?;
                file.flush().await
            }
            .await;
            assert_eq!(kind(res), ErrorKind::InvalidInput);
        });
        assert_eq!(std::fs::read(&path).unwrap(), b"0123456789", "the file is unchanged");
    }
}

// ---- FIFOs and other files without offsets ----

/// A FIFO named `name` in `dir`.
#[cfg(unix)]
fn mkfifo(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let path = dir.join(name);
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a NUL-terminated path that lives across the call.
    let ret = unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) };
    assert_eq!(ret, 0, "mkfifo: {}", std::io::Error::last_os_error());
    path
}

/// Runs `f` on a thread of its own and waits at most `secs` seconds for it: a hang fails the test instead of
/// hanging the suite. `on_timeout` runs before the failure (to release what `f` waits for).
#[cfg(unix)]
fn bounded<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static, on_timeout: impl FnOnce()) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || tx.send(f()).unwrap());
    match rx.recv_timeout(std::time::Duration::from_secs(secs)) {
        Ok(value) => {
            thread.join().unwrap();
            value
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            std::panic::resume_unwind(thread.join().expect_err("the thread ended without a value"))
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            on_timeout();
            panic!("did not finish within {secs} s");
        }
    }
}

#[cfg(unix)]
rt_test! {
    fn fifo_is_read_through_file_and_fs_read() {
        let tmp = TempDir::new("afs-fifo-read");
        // More than a pipe holds (64 KiB), so that reads meet a writer still writing.
        let data = pattern(200 * 1024 + 3);
        let text = "a line through a FIFO\n".repeat(5000);
        // One FIFO per read, each with a writer that opens it (waiting for the reader), writes everything, closes.
        let fifos: Vec<_> = (0..4).map(|i| mkfifo(tmp.path(), &format!("fifo{i}"))).collect();
        let contents = [data.clone(), data.clone(), text.clone().into_bytes(), text.clone().into_bytes()];
        let writers: Vec<_> = fifos
            .iter()
            .cloned()
            .zip(contents)
            .map(|(fifo, bytes)| {
                std::thread::spawn(move || {
                    let mut writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
                    std::io::Write::write_all(&mut writer, &bytes).unwrap();
                })
            })
            .collect();
        // Let the writers reach their open, where each waits for its reader: io_uring opens a FIFO for reading
        // without waiting for a writer, and a read before any writer came would find the end of the file.
        std::thread::sleep(std::time::Duration::from_millis(100));
        let paths = fifos.clone();
        bounded(
            20,
            move || {
                run(async {
                    let mut file = File::open(&paths[0]).await.unwrap();
                    let mut back = Vec::new();
                    file.read_to_end(&mut back).await.unwrap();
                    assert!(back == data, "File::read_to_end: {} bytes, expected {}", back.len(), data.len());
                    // A FIFO has no offsets: positional I/O and seeks fail as they do with std.
                    assert_eq!(file.seek(SeekFrom::Start(0)).await.unwrap_err().raw_os_error(), Some(libc::ESPIPE));
                    let (res, _) = file.read_at(Vec::with_capacity(4), 0).await;
                    assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::ESPIPE));
                    drop(file);
                    let back = fs::read(&paths[1]).await.unwrap();
                    assert!(back == data, "fs::read: {} bytes, expected {}", back.len(), data.len());
                    let mut back = String::new();
                    File::open(&paths[2]).await.unwrap().read_to_string(&mut back).await.unwrap();
                    assert!(back == text, "File::read_to_string");
                    assert!(fs::read_to_string(&paths[3]).await.unwrap() == text, "fs::read_to_string");
                })
            },
            // Opening each FIFO (both ends at once: never waits) releases whoever waits for the other end.
            || fifos.iter().for_each(|fifo| drop(std::fs::OpenOptions::new().read(true).write(true).open(fifo))),
        );
        for writer in writers {
            writer.join().unwrap();
        }
    }
}

#[cfg(unix)]
rt_test! {
    fn fifo_is_written_through_file_and_fs_write() {
        let tmp = TempDir::new("afs-fifo-write");
        let fifo = mkfifo(tmp.path(), "fifo");
        let data = pattern(200 * 1024 + 5);
        // The reader opens the FIFO (waiting for the writer) and reads to its end, twice; it says when it closed the
        // first end, so that the second writer cannot join the first round.
        let (first_done, first_read) = std::sync::mpsc::channel();
        let reading = {
            let fifo = fifo.clone();
            std::thread::spawn(move || {
                (0..2)
                    .map(|_| {
                        let mut back = Vec::new();
                        std::io::Read::read_to_end(&mut std::fs::File::open(&fifo).unwrap(), &mut back).unwrap();
                        let _ = first_done.send(());
                        back
                    })
                    .collect::<Vec<_>>()
            })
        };
        let (path, sent) = (fifo.clone(), data.clone());
        bounded(
            20,
            move || {
                run(async {
                    let mut file = OpenOptions::new().write(true).open(&path).await.unwrap();
                    file.write_all(&sent).await.unwrap();
                    file.flush().await.unwrap();
                    drop(file);
                    uvio::task::spawn_blocking(move || first_read.recv().unwrap()).await.unwrap();
                    fs::write(&path, &sent).await.unwrap();
                })
            },
            // A reader (both ends at once: never waits) releases an open waiting for one.
            || drop(std::fs::OpenOptions::new().read(true).write(true).open(&fifo)),
        );
        let got = reading.join().unwrap();
        assert!(got[0] == data, "File wrote {} bytes of {}", got[0].len(), data.len());
        assert!(got[1] == data, "fs::write wrote {} bytes of {}", got[1].len(), data.len());
    }
}

#[cfg(target_os = "linux")]
rt_test! {
    async fn character_device_is_read_with_a_bounded_read() {
        let mut zeros = Vec::new();
        File::open("/dev/zero").await.unwrap().take(100_000).read_to_end(&mut zeros).await.unwrap();
        assert_eq!(zeros.len(), 100_000);
        assert!(zeros.iter().all(|&b| b == 0));
    }
}

// ---- Shutdown with a read that waits forever ----

#[cfg(unix)]
rt_test! {
    fn dropping_the_runtime_does_not_wait_for_a_fifo_read() {
        use std::sync::{Arc, Mutex};
        use std::time::{Duration, Instant};
        let tmp = TempDir::new("afs-fifo-drop");
        let fifo = mkfifo(tmp.path(), "fifo");
        // The test holds a writer end (O_RDWR never waits for a reader) that never writes: a read waits forever.
        let silent = std::fs::OpenOptions::new().read(true).write(true).open(&fifo).unwrap();
        let silent = Arc::new(Mutex::new(Some(silent)));
        let release = silent.clone();
        let path = fifo.clone();
        // A hang fails the test (the drop itself is timed below; this bound allows for valgrind's slowness).
        bounded(
            30,
            move || {
                let rt = common::rt::runtime(ENGINE);
                rt.block_on(async {
                    let reading = spawn_local(async move {
                        let mut file = File::open(&path).await.unwrap();
                        let mut buf = [0u8; 16];
                        file.read(&mut buf).await
                    });
                    // Let the task open the FIFO and start its read.
                    uvio::time::sleep(Duration::from_millis(200)).await;
                    assert!(!reading.is_finished(), "the read finished though nothing was written");
                });
                if rt.backend().name() == "io_uring" {
                    let dropping = Instant::now();
                    drop(rt); // cancels the read, waits for its completion, frees everything
                    assert!(dropping.elapsed() < Duration::from_secs(3), "the drop took {:?}", dropping.elapsed());
                    return;
                }
                // libuv's thread pool cannot cancel a read blocked in read(2): dropping the runtime waits for the
                // read (see `Runtime`), and returns once the writer goes, with everything freed.
                let writer = std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(300));
                    drop(silent.lock().unwrap().take()); // the read ends (end of file)
                });
                let dropping = Instant::now();
                drop(rt);
                assert!(dropping.elapsed() >= Duration::from_millis(200), "the drop waited for the read");
                writer.join().unwrap();
            },
            // Closing the writer ends the read, so the thread finishes even on failure.
            move || drop(release.lock().unwrap().take()),
        );
    }
}
