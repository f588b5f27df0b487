//! The io_uring engine's path operations and `set_len` (rename, remove_file, remove_dir, create_dir, symlink,
//! hard_link, `File::set_len`): real outcomes in a temporary directory, errors identical to the libuv engine's
//! for the same inputs, futures dropped mid-flight, and the per-operation fallback (the hidden
//! `Builder::simulate_ring_failure("NO_FS_PATH_OPS")`) giving the same results.
//!
//! `UVIO_BACKEND` would override the engine these tests ask for: every test holds `ENV` while it builds
//! runtimes, with the variable cleared (see tests/common/ring.rs).
#![cfg(target_os = "linux")]
mod common;

use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::task::Poll;
use std::time::Duration;

use common::TempDir;
use futures::future::LocalBoxFuture;
use futures::{AsyncReadExt, AsyncWriteExt, FutureExt};
use uvio::fs::{self, File, OpenOptions};
use uvio::{Backend, Builder, Runtime};

use common::ring::env_lock;

/// A runtime on `backend`, its ring simulating the failure `simulate` names; `None` (with a note) where this
/// machine has no io_uring.
fn runtime(backend: Backend, simulate: Option<&str>) -> Option<Runtime> {
    let builder = Builder::new().backend(backend);
    let built = match simulate {
        Some(what) => builder.simulate_ring_failure(what).build(),
        None => builder.build(),
    };
    match built {
        Ok(rt) => {
            assert_eq!(rt.backend(), backend);
            Some(rt)
        }
        Err(e) if backend == Backend::IoUring => {
            eprintln!("note: skipping, io_uring is not available here: {e}");
            None
        }
        Err(e) => panic!("{backend:?} runtime: {e}"),
    }
}

/// Runs `fut` on an io_uring runtime, then closes it, asserting nothing was left open.
fn run<F: std::future::Future<Output = ()>>(fut: F) {
    let _env = env_lock();
    let Some(rt) = runtime(Backend::IoUring, None) else { return };
    rt.block_on(fut);
    rt.close().expect("runtime closes cleanly");
}

/// An error as user code can see it: its kind and OS error number.
type Outcome = Result<(), (ErrorKind, Option<i32>)>;

fn outcome<T>(res: std::io::Result<T>) -> Outcome {
    res.map(drop).map_err(|e| (e.kind(), e.raw_os_error()))
}

fn err(errno: i32) -> Outcome {
    let e = std::io::Error::from_raw_os_error(errno);
    Err((e.kind(), Some(errno)))
}

/// A directory tree as [`snapshot`] describes it.
type Tree = Vec<(PathBuf, String)>;

/// Every entry under `dir` (relative path, type, size or link target), sorted: what an operation changed.
fn snapshot(dir: &Path) -> Tree {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            if meta.is_symlink() {
                out.push((rel, format!("link -> {}", std::fs::read_link(&path).unwrap().display())));
            } else if meta.is_dir() {
                out.push((rel, format!("dir {:o}", meta.mode() & 0o7777)));
                walk(root, &path, out);
            } else {
                out.push((rel, format!("file {} bytes, {} links", meta.len(), meta.nlink())));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The starting tree of every case: `file` ("abc"), `dir/inner`, `empty/`, `link -> file`, `ro` (read-only
/// opening only matters to `set_len`).
fn fixture(base: &Path) {
    std::fs::write(base.join("file"), b"abc").unwrap();
    std::fs::create_dir(base.join("dir")).unwrap();
    std::fs::write(base.join("dir/inner"), b"inner").unwrap();
    std::fs::create_dir(base.join("empty")).unwrap();
    std::os::unix::fs::symlink("file", base.join("link")).unwrap();
}

type Case = (&'static str, fn(PathBuf) -> LocalBoxFuture<'static, Outcome>);

/// Each operation's successes and failures, on the fixture in a directory of their own.
fn cases() -> Vec<Case> {
    vec![
        ("rename file", |b| async move { outcome(fs::rename(b.join("file"), b.join("moved")).await) }.boxed_local()),
        ("rename over file", |b| {
            async move { outcome(fs::rename(b.join("file"), b.join("dir/inner")).await) }.boxed_local()
        }),
        ("rename dir", |b| async move { outcome(fs::rename(b.join("dir"), b.join("dir2")).await) }.boxed_local()),
        ("rename missing", |b| async move { outcome(fs::rename(b.join("nope"), b.join("x")).await) }.boxed_local()),
        ("rename onto non-empty dir", |b| {
            async move { outcome(fs::rename(b.join("empty"), b.join("dir")).await) }.boxed_local()
        }),
        ("rename file onto dir", |b| {
            async move { outcome(fs::rename(b.join("file"), b.join("empty")).await) }.boxed_local()
        }),
        ("rename dir onto file", |b| {
            async move { outcome(fs::rename(b.join("empty"), b.join("file")).await) }.boxed_local()
        }),
        ("rename dir into itself", |b| {
            async move { outcome(fs::rename(b.join("dir"), b.join("dir/sub")).await) }.boxed_local()
        }),
        ("rename into missing dir", |b| {
            async move { outcome(fs::rename(b.join("file"), b.join("nope/x")).await) }.boxed_local()
        }),
        ("rename NUL from", |b| async move { outcome(fs::rename(b.join("fi\0le"), b.join("x")).await) }.boxed_local()),
        ("rename NUL to", |b| async move { outcome(fs::rename(b.join("file"), b.join("x\0")).await) }.boxed_local()),
        ("rename empty path", |b| async move { outcome(fs::rename("", b.join("x")).await) }.boxed_local()),
        ("remove_file", |b| async move { outcome(fs::remove_file(b.join("file")).await) }.boxed_local()),
        ("remove_file link", |b| async move { outcome(fs::remove_file(b.join("link")).await) }.boxed_local()),
        ("remove_file missing", |b| async move { outcome(fs::remove_file(b.join("nope")).await) }.boxed_local()),
        ("remove_file dir", |b| async move { outcome(fs::remove_file(b.join("empty")).await) }.boxed_local()),
        ("remove_file through file", |b| async move { outcome(fs::remove_file(b.join("file/x")).await) }.boxed_local()),
        ("remove_file NUL", |b| async move { outcome(fs::remove_file(b.join("fi\0le")).await) }.boxed_local()),
        ("remove_file empty path", |_| async move { outcome(fs::remove_file("").await) }.boxed_local()),
        ("remove_dir", |b| async move { outcome(fs::remove_dir(b.join("empty")).await) }.boxed_local()),
        ("remove_dir non-empty", |b| async move { outcome(fs::remove_dir(b.join("dir")).await) }.boxed_local()),
        ("remove_dir file", |b| async move { outcome(fs::remove_dir(b.join("file")).await) }.boxed_local()),
        ("remove_dir link to dir", |b| {
            async move {
                std::os::unix::fs::symlink("empty", b.join("dlink")).unwrap();
                outcome(fs::remove_dir(b.join("dlink")).await)
            }
            .boxed_local()
        }),
        ("remove_dir missing", |b| async move { outcome(fs::remove_dir(b.join("nope")).await) }.boxed_local()),
        ("remove_dir dot", |b| async move { outcome(fs::remove_dir(b.join("empty/.")).await) }.boxed_local()),
        ("remove_dir NUL", |b| async move { outcome(fs::remove_dir(b.join("em\0pty")).await) }.boxed_local()),
        ("create_dir", |b| async move { outcome(fs::create_dir(b.join("new")).await) }.boxed_local()),
        ("create_dir existing dir", |b| async move { outcome(fs::create_dir(b.join("dir")).await) }.boxed_local()),
        ("create_dir existing file", |b| async move { outcome(fs::create_dir(b.join("file")).await) }.boxed_local()),
        ("create_dir missing parent", |b| {
            async move { outcome(fs::create_dir(b.join("nope/new")).await) }.boxed_local()
        }),
        ("create_dir under file", |b| async move { outcome(fs::create_dir(b.join("file/new")).await) }.boxed_local()),
        ("create_dir NUL", |b| async move { outcome(fs::create_dir(b.join("n\0ew")).await) }.boxed_local()),
        ("create_dir_all", |b| async move { outcome(fs::create_dir_all(b.join("a/b/c")).await) }.boxed_local()),
        ("create_dir_all under file", |b| {
            async move { outcome(fs::create_dir_all(b.join("file/a/b")).await) }.boxed_local()
        }),
        ("remove_dir_all", |b| async move { outcome(fs::remove_dir_all(b.join("dir")).await) }.boxed_local()),
        ("remove_dir_all missing", |b| async move { outcome(fs::remove_dir_all(b.join("nope")).await) }.boxed_local()),
        ("symlink", |b| async move { outcome(fs::symlink("dir/inner", b.join("sl")).await) }.boxed_local()),
        ("symlink dangling", |b| async move { outcome(fs::symlink("no/where", b.join("sl")).await) }.boxed_local()),
        ("symlink existing", |b| async move { outcome(fs::symlink("file", b.join("link")).await) }.boxed_local()),
        ("symlink missing parent", |b| {
            async move { outcome(fs::symlink("file", b.join("nope/sl")).await) }.boxed_local()
        }),
        ("symlink empty target", |b| async move { outcome(fs::symlink("", b.join("sl")).await) }.boxed_local()),
        ("symlink NUL target", |b| async move { outcome(fs::symlink("fi\0le", b.join("sl")).await) }.boxed_local()),
        ("symlink NUL link", |b| async move { outcome(fs::symlink("file", b.join("s\0l")).await) }.boxed_local()),
        ("hard_link", |b| async move { outcome(fs::hard_link(b.join("file"), b.join("hl")).await) }.boxed_local()),
        ("hard_link of symlink", |b| {
            async move { outcome(fs::hard_link(b.join("link"), b.join("hl")).await) }.boxed_local()
        }),
        ("hard_link missing", |b| {
            async move { outcome(fs::hard_link(b.join("nope"), b.join("hl")).await) }.boxed_local()
        }),
        ("hard_link existing", |b| {
            async move { outcome(fs::hard_link(b.join("file"), b.join("dir/inner")).await) }.boxed_local()
        }),
        ("hard_link dir", |b| async move { outcome(fs::hard_link(b.join("dir"), b.join("hl")).await) }.boxed_local()),
        ("hard_link NUL", |b| {
            async move { outcome(fs::hard_link(b.join("file"), b.join("h\0l")).await) }.boxed_local()
        }),
        ("set_len shrink", |b| {
            async move {
                let file = OpenOptions::new().write(true).open(b.join("file")).await.unwrap();
                outcome(file.set_len(1).await)
            }
            .boxed_local()
        }),
        ("set_len grow", |b| {
            async move {
                let file = OpenOptions::new().write(true).open(b.join("file")).await.unwrap();
                outcome(file.set_len(100_000).await)
            }
            .boxed_local()
        }),
        ("set_len read-only", |b| {
            async move {
                let file = File::open(b.join("file")).await.unwrap();
                outcome(file.set_len(0).await)
            }
            .boxed_local()
        }),
        ("set_len too large", |b| {
            async move {
                let file = OpenOptions::new().write(true).open(b.join("file")).await.unwrap();
                outcome(file.set_len(u64::MAX).await)
            }
            .boxed_local()
        }),
        ("set_len i64::MAX", |b| {
            async move {
                let file = OpenOptions::new().write(true).open(b.join("file")).await.unwrap();
                outcome(file.set_len(i64::MAX as u64).await)
            }
            .boxed_local()
        }),
    ]
}

/// Runs every case on `rt`, each on a fresh fixture: its outcome and the tree it left.
fn run_cases(rt: &Runtime, tag: &str) -> Vec<(&'static str, Outcome, Tree)> {
    cases()
        .into_iter()
        .map(|(name, case)| {
            let tmp = TempDir::new(tag);
            fixture(tmp.path());
            let res = rt.block_on(case(tmp.path().to_path_buf()));
            (name, res, snapshot(tmp.path()))
        })
        .collect()
}

/// Runs every case on io_uring (with `simulate`) and on libuv, asserting identical outcomes and trees; returns
/// the io_uring outcomes by name.
fn compare_with_libuv(simulate: Option<&str>) -> Option<Vec<(&'static str, Outcome)>> {
    let _env = env_lock();
    let ring = runtime(Backend::IoUring, simulate)?;
    let uv = runtime(Backend::Libuv, None).unwrap();
    let on_ring = run_cases(&ring, "ufs-ring");
    let on_uv = run_cases(&uv, "ufs-uv");
    ring.close().expect("io_uring runtime closes cleanly");
    uv.close().expect("libuv runtime closes cleanly");
    for (r, u) in on_ring.iter().zip(&on_uv) {
        assert_eq!(r.0, u.0);
        assert_eq!(r.1, u.1, "{}: io_uring vs libuv outcome", r.0);
        assert_eq!(r.2, u.2, "{}: io_uring vs libuv tree", r.0);
    }
    Some(on_ring.into_iter().map(|(name, res, _)| (name, res)).collect())
}

/// The outcome of case `name`.
fn of(results: &[(&'static str, Outcome)], name: &str) -> Outcome {
    results.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("no case {name}")).1
}

/// What the cases must give (beyond being equal on both engines): the errors libuv reports for them.
fn assert_expected(results: &[(&'static str, Outcome)]) {
    use libc::*;
    let expected = [
        ("rename file", Ok(())),
        ("rename over file", Ok(())),
        ("rename dir", Ok(())),
        ("rename missing", err(ENOENT)),
        ("rename onto non-empty dir", err(ENOTEMPTY)),
        ("rename file onto dir", err(EISDIR)),
        ("rename dir onto file", err(ENOTDIR)),
        ("rename dir into itself", err(EINVAL)),
        ("rename into missing dir", err(ENOENT)),
        ("rename NUL from", err(EINVAL)),
        ("rename NUL to", err(EINVAL)),
        ("rename empty path", err(ENOENT)),
        ("remove_file", Ok(())),
        ("remove_file link", Ok(())),
        ("remove_file missing", err(ENOENT)),
        ("remove_file dir", err(EISDIR)),
        ("remove_file through file", err(ENOTDIR)),
        ("remove_file NUL", err(EINVAL)),
        ("remove_file empty path", err(ENOENT)),
        ("remove_dir", Ok(())),
        ("remove_dir non-empty", err(ENOTEMPTY)),
        ("remove_dir file", err(ENOTDIR)),
        ("remove_dir link to dir", err(ENOTDIR)),
        ("remove_dir missing", err(ENOENT)),
        ("remove_dir dot", err(EINVAL)),
        ("remove_dir NUL", err(EINVAL)),
        ("create_dir", Ok(())),
        ("create_dir existing dir", err(EEXIST)),
        ("create_dir existing file", err(EEXIST)),
        ("create_dir missing parent", err(ENOENT)),
        ("create_dir under file", err(ENOTDIR)),
        ("create_dir NUL", err(EINVAL)),
        ("create_dir_all", Ok(())),
        ("create_dir_all under file", err(ENOTDIR)),
        ("remove_dir_all", Ok(())),
        ("remove_dir_all missing", err(ENOENT)),
        ("symlink", Ok(())),
        ("symlink dangling", Ok(())),
        ("symlink existing", err(EEXIST)),
        ("symlink missing parent", err(ENOENT)),
        ("symlink empty target", err(ENOENT)),
        ("symlink NUL target", err(EINVAL)),
        ("symlink NUL link", err(EINVAL)),
        ("hard_link", Ok(())),
        ("hard_link of symlink", Ok(())),
        ("hard_link missing", err(ENOENT)),
        ("hard_link existing", err(EEXIST)),
        ("hard_link dir", err(EPERM)),
        ("hard_link NUL", err(EINVAL)),
        ("set_len shrink", Ok(())),
        ("set_len grow", Ok(())),
        ("set_len read-only", err(EINVAL)),
        ("set_len too large", err(EINVAL)),
    ];
    for (name, want) in expected {
        assert_eq!(of(results, name), want, "{name}");
    }
    // Past the file system's limit: whatever the kernel says (EFBIG on most), but an error.
    assert!(of(results, "set_len i64::MAX").is_err());
}

#[test]
fn errors_and_effects_match_the_libuv_engine() {
    if let Some(results) = compare_with_libuv(None) {
        assert_expected(&results);
    }
}

#[test]
fn simulated_missing_opcodes_fall_back_with_identical_results() {
    if let Some(results) = compare_with_libuv(Some("NO_FS_PATH_OPS")) {
        assert_expected(&results);
    }
}

#[test]
fn each_operation_does_its_work() {
    let tmp = TempDir::new("ufs-work");
    let base = tmp.path().to_path_buf();
    run(async move {
        let dir = base.join("d");
        fs::create_dir(&dir).await.unwrap();
        let meta = std::fs::metadata(&dir).unwrap();
        assert!(meta.is_dir());
        // 0o777 before the umask, like libuv and std.
        std::fs::create_dir(base.join("by-std")).unwrap();
        assert_eq!(meta.mode() & 0o7777, std::fs::metadata(base.join("by-std")).unwrap().mode() & 0o7777);
        std::fs::remove_dir(base.join("by-std")).unwrap();

        let a = dir.join("a");
        fs::write(&a, b"hello").await.unwrap();
        fs::rename(&a, dir.join("b")).await.unwrap();
        assert!(!a.exists());
        assert_eq!(std::fs::read(dir.join("b")).unwrap(), b"hello");

        fs::hard_link(dir.join("b"), dir.join("c")).await.unwrap();
        assert_eq!(std::fs::metadata(dir.join("b")).unwrap().nlink(), 2);
        assert_eq!(std::fs::metadata(dir.join("b")).unwrap().ino(), std::fs::metadata(dir.join("c")).unwrap().ino());

        fs::symlink("b", dir.join("s")).await.unwrap();
        assert_eq!(std::fs::read_link(dir.join("s")).unwrap(), Path::new("b"));
        assert_eq!(fs::read(dir.join("s")).await.unwrap(), b"hello");

        let mut file = OpenOptions::new().read(true).write(true).open(dir.join("b")).await.unwrap();
        file.set_len(2).await.unwrap();
        assert_eq!(std::fs::read(dir.join("c")).unwrap(), b"he");
        file.set_len(4).await.unwrap();
        assert_eq!(std::fs::read(dir.join("c")).unwrap(), b"he\0\0");
        // The cursor did not move, and a write then set_len keeps the write's bytes ordered before the truncate.
        let mut back = Vec::new();
        file.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"he\0\0");
        file.write_all(b"xyz").await.unwrap();
        file.set_len(6).await.unwrap();
        assert_eq!(std::fs::read(dir.join("b")).unwrap(), b"he\0\0xy");
        assert_eq!(file.metadata().await.unwrap().len(), 6);
        drop(file);

        fs::remove_file(dir.join("s")).await.unwrap();
        assert!(std::fs::symlink_metadata(dir.join("s")).is_err());
        assert!(dir.join("b").exists(), "removing a link leaves its target");
        fs::remove_file(dir.join("b")).await.unwrap();
        assert_eq!(std::fs::metadata(dir.join("c")).unwrap().nlink(), 1);
        fs::remove_file(dir.join("c")).await.unwrap();
        fs::remove_dir(&dir).await.unwrap();
        assert!(!dir.exists());

        // create_dir_all / remove_dir_all build on these.
        let deep = base.join("x/y/z");
        fs::create_dir_all(&deep).await.unwrap();
        fs::write(deep.join("f"), b"1").await.unwrap();
        fs::symlink("../../..", deep.join("up")).await.unwrap();
        fs::remove_dir_all(base.join("x")).await.unwrap();
        assert!(!base.join("x").exists());
        assert!(base.exists(), "remove_dir_all does not follow links");
    });
}

#[test]
fn many_path_operations_in_flight_at_once() {
    // More than the ring's 256 entries: the overflow waits in the backlog, and every slot owns its paths.
    let tmp = TempDir::new("ufs-many");
    let base = tmp.path().to_path_buf();
    run(async move {
        let names: Vec<PathBuf> = (0..600).map(|i| base.join(format!("d{i}"))).collect();
        let made = futures::future::join_all(names.iter().map(fs::create_dir)).await;
        assert!(made.iter().all(Result::is_ok));
        assert_eq!(std::fs::read_dir(&base).unwrap().count(), 600);
        let renamed = futures::future::join_all(names.iter().map(|n| fs::rename(n, n.with_extension("r")))).await;
        assert!(renamed.iter().all(Result::is_ok));
        let again = futures::future::join_all(names.iter().map(fs::create_dir)).await;
        assert!(again.iter().all(Result::is_ok));
        let gone = futures::future::join_all(names.iter().map(fs::remove_dir)).await;
        assert!(gone.iter().all(Result::is_ok));
        let gone = futures::future::join_all(names.iter().map(|n| fs::remove_dir(n.with_extension("r")))).await;
        assert!(gone.iter().all(Result::is_ok));
        assert_eq!(std::fs::read_dir(&base).unwrap().count(), 0);
    });
}

/// Polls `fut` once (which submits its operation), drops it, lets the loop run, then returns.
async fn poll_once_then_drop<F: std::future::Future>(fut: F) {
    let mut fut = Box::pin(fut);
    let first = futures::poll!(fut.as_mut());
    assert!(matches!(first, Poll::Pending), "an fs operation cannot be done before the loop runs");
    drop(fut);
}

#[test]
fn dropped_futures_complete_their_operation_and_leak_nothing() {
    let tmp = TempDir::new("ufs-drop");
    let base = tmp.path().to_path_buf();
    fixture(&base);
    let before = snapshot(&base);
    run(async {
        let b = &base;
        poll_once_then_drop(fs::create_dir(b.join("new"))).await;
        poll_once_then_drop(fs::rename(b.join("file"), b.join("moved"))).await;
        poll_once_then_drop(fs::remove_file(b.join("dir/inner"))).await;
        poll_once_then_drop(fs::remove_dir(b.join("empty"))).await;
        poll_once_then_drop(fs::symlink("moved", b.join("sl"))).await;
        poll_once_then_drop(fs::hard_link(b.join("link"), b.join("hl"))).await;
        // Failing ones too: their results are simply dropped.
        poll_once_then_drop(fs::create_dir(b.join("dir"))).await;
        poll_once_then_drop(fs::remove_dir(b.join("nope"))).await;
        let file = OpenOptions::new().write(true).create(true).open(b.join("t")).await.unwrap();
        poll_once_then_drop(file.set_len(12345)).await;
        drop(file);
        // The operations were handed to the ring; each is now fully done (never half done, never lost).
        uvio::time::sleep(Duration::from_millis(20)).await;
    });
    let after = snapshot(&base);
    assert_ne!(before, after);
    let expect: Vec<(PathBuf, String)> = [
        ("dir", "dir"),
        ("hl", "link -> file"),
        ("link", "link -> file"),
        ("moved", "file 3 bytes, 1 links"),
        ("new", "dir"),
        ("sl", "link -> moved"),
        ("t", "file 12345 bytes, 1 links"),
    ]
    .iter()
    .map(|(p, k)| (PathBuf::from(p), k.to_string()))
    .collect();
    let got: Vec<(PathBuf, String)> =
        after.into_iter().map(|(p, k)| (p, if k.starts_with("dir ") { "dir".into() } else { k })).collect();
    assert_eq!(got, expect);
}

#[test]
fn futures_dropped_before_the_loop_runs_keep_their_paths_alive() {
    // Drop straight after submission, then churn the allocator: the slot still owns the path the kernel reads
    // at the next flush (valgrind would report a read of freed memory otherwise; here the effect is checked).
    let tmp = TempDir::new("ufs-drop-early");
    let base = tmp.path().to_path_buf();
    run(async {
        for i in 0..50 {
            let mut fut = Box::pin(fs::create_dir(base.join(format!("dir-with-a-long-name-{i:04}"))));
            assert!(futures::poll!(fut.as_mut()).is_pending());
            drop(fut);
            let junk: Vec<Vec<u8>> = (0..8).map(|j| vec![0xa5; 40 + j]).collect();
            drop(junk);
        }
        uvio::time::sleep(Duration::from_millis(20)).await;
    });
    let mut names: Vec<String> =
        std::fs::read_dir(&base).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    let want: Vec<String> = (0..50).map(|i| format!("dir-with-a-long-name-{i:04}")).collect();
    assert_eq!(names, want);
}

#[test]
fn runtime_closed_with_operations_in_flight_waits_for_them() {
    let _env = env_lock();
    let Some(rt) = runtime(Backend::IoUring, None) else { return };
    let tmp = TempDir::new("ufs-close");
    let base = tmp.path().to_path_buf();
    let names: Vec<PathBuf> = (0..20).map(|i| base.join(format!("d{i}"))).collect();
    rt.block_on(async {
        for name in &names {
            let mut fut = Box::pin(fs::create_dir(name));
            assert!(futures::poll!(fut.as_mut()).is_pending());
        }
    });
    rt.close().expect("runtime closes cleanly");
    assert!(names.iter().all(|n| n.is_dir()), "every submitted mkdir completed before the ring closed");
}

/// A FIFO named `name` in `dir`.
fn mkfifo(dir: &Path, name: &str) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let path = dir.join(name);
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a NUL-terminated path that lives across the call.
    let ret = unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) };
    assert_eq!(ret, 0, "mkfifo: {}", std::io::Error::last_os_error());
    path
}

#[test]
fn dropping_the_runtime_cancels_opens_and_writes_that_wait_on_a_fifo() {
    let _env = env_lock();
    let tmp = TempDir::new("uring-fifo-shutdown");
    // Nobody ever opens this one for reading: opening it for writing waits forever.
    let lonely = mkfifo(tmp.path(), "lonely");
    // The test holds this one open at both ends and never reads: a write waits once the pipe is full.
    let full = mkfifo(tmp.path(), "full");
    let held = std::fs::OpenOptions::new().read(true).write(true).open(&full).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let Some(rt) = runtime(Backend::IoUring, None) else { return tx.send(()).unwrap() };
        rt.block_on(async {
            // Write-only: waits for a reader, which never comes (a read-only open of a FIFO does not wait on the
            // ring, see `Driver::open`).
            let opening =
                uvio::spawn_local(async move { OpenOptions::new().write(true).open(&lonely).await.map(drop) });
            let writing = uvio::spawn_local(async move {
                let mut file = OpenOptions::new().write(true).open(&full).await?;
                file.write_all(&vec![7u8; 1 << 20]).await?;
                file.flush().await
            });
            uvio::time::sleep(Duration::from_millis(200)).await;
            assert!(!opening.is_finished(), "the open did not wait: {:?}", opening.await);
            assert!(!writing.is_finished(), "the write did not wait: {:?}", writing.await);
        });
        drop(rt);
        tx.send(()).unwrap();
    });
    let finished = rx.recv_timeout(Duration::from_secs(5));
    if finished.is_err() {
        // Release both (a reader for the lonely FIFO, a reader draining the full one) so the thread ends.
        let _writer = std::fs::OpenOptions::new().read(true).write(true).open(tmp.path().join("lonely"));
        std::thread::spawn(move || std::io::copy(&mut &held, &mut std::io::sink()));
        panic!("dropping the runtime waited for the FIFO's open or write");
    }
    thread.join().unwrap();
    drop(held);
}
