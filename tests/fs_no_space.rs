//! A file system that fills up mid-write, on every engine (`rt_test!`): a 64 KiB tmpfs. What the writes reported
//! as written is in the file, the rest is an error (`ENOSPC`), never lost silently; and once space is freed,
//! writes work again.
//!
//! Mounting a tmpfs takes root: as root (CI) the test mounts one on a temp dir; otherwise it reruns itself in a
//! user and mount namespace of its own (`unshare -Urm`), where it is root.
#![cfg(target_os = "linux")]

mod common;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use common::TempDir;
use futures::AsyncWriteExt;

/// The tmpfs's size: 16 pages.
const SIZE: usize = 64 * 1024;

/// A tmpfs of [`SIZE`] bytes mounted on a fresh temp dir, detached on drop.
struct TinyTmpfs(TempDir);

impl TinyTmpfs {
    fn mount() -> TinyTmpfs {
        let dir = TempDir::new("tmpfs");
        let target = CString::new(dir.path().as_os_str().as_bytes()).unwrap();
        let options = CString::new(format!("size={SIZE}")).unwrap();
        // SAFETY: every pointer is a NUL-terminated string that outlives the call.
        let rc =
            unsafe { libc::mount(c"tmpfs".as_ptr(), target.as_ptr(), c"tmpfs".as_ptr(), 0, options.as_ptr().cast()) };
        assert_eq!(rc, 0, "mount tmpfs on {}: {}", dir.path().display(), std::io::Error::last_os_error());
        TinyTmpfs(dir)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for TinyTmpfs {
    fn drop(&mut self) {
        let target = CString::new(self.path().as_os_str().as_bytes()).unwrap();
        // SAFETY: a NUL-terminated path that outlives the call.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    }
}

/// Whether this process may mount (root). If not, runs `test` alone in a child of this binary inside a user and
/// mount namespace where it is root, asserts it passed, and returns false.
fn may_mount_or_rerun(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    let out = std::process::Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", test, "--test-threads=1"])
        .output()
        .expect("unshare (util-linux) runs: mounting a tmpfs needs root or a user namespace");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{test} in a user namespace: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    false
}

fn no_space(err: &std::io::Error) -> bool {
    err.raw_os_error() == Some(libc::ENOSPC)
}

rt_test! {
    fn a_full_file_system_reports_no_space_and_keeps_what_it_took() {
        if !may_mount_or_rerun(&format!("a_full_file_system_reports_no_space_and_keeps_what_it_took::{ENGINE}")) {
            return;
        }
        let tmpfs = TinyTmpfs::mount();
        let dir = tmpfs.path().to_owned();
        run(async move {
            // write_all of four times the space: an error, and the file holds a prefix of what was written.
            let path = dir.join("big");
            let mut file = uvio::fs::File::create(&path).await.unwrap();
            let res = async {
                file.write_all(&vec![7u8; 4 * SIZE]).await?;
                file.flush().await
            }
            .await;
            let err = res.expect_err("a 64 KiB file system cannot take 256 KiB");
            assert!(no_space(&err), "{err:?}");
            let kept = std::fs::read(&path).unwrap();
            assert!(!kept.is_empty() && kept.len() <= SIZE, "kept {} bytes", kept.len());
            assert!(kept.iter().all(|&b| b == 7));
            drop(file);
            uvio::fs::remove_file(&path).await.unwrap();

            // Plain writes. They are write-behind, as tokio's: a write returns once its bytes are taken, and the
            // error of the write in flight surfaces at the next call, once. So the file holds everything the
            // writes reported but at most the last one taken, and the error is not reported twice.
            let path = dir.join("counted");
            let mut file = uvio::fs::File::create(&path).await.unwrap();
            const CHUNK: usize = 5000;
            let mut reported = 0;
            let err = loop {
                match file.write(&[3u8; CHUNK]).await {
                    Ok(n) => reported += n,
                    Err(e) => break e,
                }
                assert!(reported <= 2 * SIZE, "writes keep succeeding past the file system's size");
            };
            assert!(no_space(&err), "{err:?}");
            let len = std::fs::metadata(&path).unwrap().len() as usize;
            assert!(len <= reported && reported - len <= CHUNK, "the file holds {len} of {reported} reported");
            file.flush().await.unwrap();
            let (res, _) = file.write_at(vec![1u8; 8192], 4 * SIZE as u64).await;
            assert!(no_space(&res.unwrap_err()));
            drop(file);

            // Whole-file helpers and a second file: the same error.
            let err = uvio::fs::write(dir.join("other"), vec![5u8; 2 * SIZE]).await.unwrap_err();
            assert!(no_space(&err), "{err:?}");

            // Space freed: writes work again, byte for byte.
            uvio::fs::remove_file(&path).await.unwrap();
            uvio::fs::remove_file(dir.join("other")).await.unwrap();
            let data: Vec<u8> = (0..SIZE / 2).map(|i| (i % 251) as u8).collect();
            uvio::fs::write(dir.join("again"), &data).await.unwrap();
            assert_eq!(uvio::fs::read(dir.join("again")).await.unwrap(), data);
        });
        drop(tmpfs);
    }
}
