//! `fs::File::from_std`, `into_std` and `try_clone` on every engine and OS (on Windows through a C runtime
//! descriptor over the std file's handle): the cursor crosses over to and from the kernel's file position,
//! accepted writes are in the file first, append mode is kept, and each handle is closed once.

mod common;

use std::io::{Read, Seek, SeekFrom, Write};

use common::TempDir;
use futures::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use uvio::fs::File;

rt_test! {
    fn from_std_starts_at_the_std_files_position() {
        let dir = TempDir::new("from-std");
        let path = dir.path().join("f");
        std::fs::write(&path, b"skip:keep").unwrap();
        run(async {
            let mut std_file = std::fs::File::open(&path).unwrap();
            std_file.seek(SeekFrom::Start(5)).unwrap();
            let mut file = File::from_std(std_file).unwrap();
            let mut rest = String::new();
            file.read_to_string(&mut rest).await.unwrap();
            assert_eq!(rest, "keep");
            assert_eq!(file.seek(SeekFrom::Current(0)).await.unwrap(), 9);
        });
    }
}

rt_test! {
    fn into_std_has_the_writes_and_the_cursor() {
        let dir = TempDir::new("into-std");
        let path = dir.path().join("f");
        let mut std_file = run(async {
            let mut file = File::create(&path).await.unwrap();
            file.write_all(b"hello world").await.unwrap(); // accepted, maybe not written yet
            file.seek(SeekFrom::Start(5)).await.unwrap();
            file.into_std().await.unwrap()
        });
        // The runtime is gone; the std file goes on at the cursor.
        assert_eq!(std_file.stream_position().unwrap(), 5);
        std_file.write_all(b", all!").unwrap();
        drop(std_file);
        assert_eq!(std::fs::read(&path).unwrap(), b"hello, all!");
    }
}

rt_test! {
    fn into_std_rereads_the_bytes_read_ahead() {
        let dir = TempDir::new("into-std-ahead");
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        let mut std_file = run(async {
            let mut file = File::open(&path).await.unwrap();
            let mut three = [0u8; 3];
            file.read_exact(&mut three).await.unwrap(); // the whole file is read ahead
            assert_eq!(&three, b"012");
            file.into_std().await.unwrap()
        });
        let mut rest = String::new();
        std_file.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "3456789");
    }
}

rt_test! {
    fn append_mode_survives_both_ways() {
        let dir = TempDir::new("std-append");
        let path = dir.path().join("f");
        std::fs::write(&path, b"one").unwrap();
        let mut std_file = run(async {
            let std_file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
            let mut file = File::from_std(std_file).unwrap();
            file.write_all(b" two").await.unwrap();
            file.into_std().await.unwrap()
        });
        std_file.write_all(b" three").unwrap();
        drop(std_file);
        assert_eq!(std::fs::read(&path).unwrap(), b"one two three");
    }
}

rt_test! {
    fn try_clone_shares_the_file_not_the_cursor() {
        let dir = TempDir::new("try-clone");
        let path = dir.path().join("f");
        run(async {
            let mut a = File::options().read(true).write(true).create(true).truncate(true).open(&path).await.unwrap();
            a.write_all(b"abcdef").await.unwrap();
            let mut b = a.try_clone().await.unwrap();
            // The clone's cursor starts where `a`'s is, and the write `a` accepted is in the file.
            assert_eq!(b.seek(SeekFrom::Current(0)).await.unwrap(), 6);
            b.seek(SeekFrom::Start(0)).await.unwrap();
            let mut all = String::new();
            b.read_to_string(&mut all).await.unwrap();
            assert_eq!(all, "abcdef");
            // Writes through the clone are seen through the original; the original's cursor did not move.
            b.write_all(b"gh").await.unwrap();
            b.flush().await.unwrap();
            let (n, buf) = a.read_at(Vec::with_capacity(8), 0).await;
            assert_eq!(n.unwrap(), 8);
            assert_eq!(buf, b"abcdefgh");
            assert_eq!(a.seek(SeekFrom::Current(0)).await.unwrap(), 6);
            drop(a);
            // The clone lives on after the original closed.
            assert_eq!(b.metadata().await.unwrap().len(), 8);
        });
    }
}

rt_test! {
    /// Round trips in a row, through clones: every file uvio let go of stays usable by std, and what uvio still
    /// holds closes once (on Windows, a double close of a handle would fail the std file's later use, or close
    /// a handle another file got meanwhile).
    fn round_trips_through_clones_keep_every_file_usable() {
        let dir = TempDir::new("std-round-trips");
        let path = dir.path().join("f");
        std::fs::write(&path, b"").unwrap();
        let mut std_file = std::fs::OpenOptions::new().read(true).write(true).open(&path).unwrap();
        for round in 0..20u8 {
            std_file = run(async move {
                let mut file = File::from_std(std_file).unwrap();
                let clone = file.try_clone().await.unwrap();
                file.write_all(&[b'a' + round]).await.unwrap();
                let std_file = file.into_std().await.unwrap();
                // The clone, dropped, closes its own descriptor only.
                drop(clone);
                std_file
            });
            // Files std opens meanwhile may reuse the numbers uvio closed: they must stay untouched.
            let other = std::fs::File::open(&path).unwrap();
            assert_eq!(std_file.stream_position().unwrap(), u64::from(round) + 1);
            drop(other);
        }
        std_file.write_all(b"!").unwrap();
        drop(std_file);
        assert_eq!(std::fs::read(&path).unwrap(), b"abcdefghijklmnopqrst!");
    }
}
