//! fs request tests: every operation in callback form, most also in blocking form, the error cases, owned
//! buffers, directory streams, and the ownership cases (drops during requests, panics, chaining).
mod common;

use std::cell::{Cell, RefCell};
use std::io::{IoSlice, IoSliceMut};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{close_clean, TempDir};
use uvio::uv::fs::{self, sync, AccessMode, CopyFlags, DirentType, FileTime, OpenFlags, SymlinkFlags};
use uvio::uv::{Loop, RunMode};
use uvio::Error;

const RW_CREATE: OpenFlags = OpenFlags::RDWR.union(OpenFlags::CREAT);

/// Submits a request whose callback stores its result, runs the loop, and returns that result.
fn wait<T: 'static>(lp: &Loop, start: impl FnOnce(Box<dyn FnOnce(T)>) -> uvio::Result<()>) -> T {
    let out = Rc::new(RefCell::new(None));
    let out2 = out.clone();
    start(Box::new(move |v| *out2.borrow_mut() = Some(v))).expect("submit");
    lp.run(RunMode::Default).unwrap();
    let v = out.borrow_mut().take();
    v.expect("the callback ran")
}

/// A file with `contents`, created with std (the thing under test is uvio, not the fixture).
fn fixture(dir: &Path, name: &str, contents: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p
}

fn names(entries: &[fs::Dirent]) -> Vec<String> {
    let mut v: Vec<String> = entries.iter().map(|e| e.name.to_str().unwrap().to_owned()).collect();
    v.sort();
    v
}

// ---- open / close / read / write ----

#[test]
fn open_write_read_close_async() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    let p = td.path().join("a.txt");
    let file = wait(&lp, |done| fs::open(&lp, &p, RW_CREATE, 0o644, done)).unwrap();
    let (n, buf) = wait(&lp, |done| fs::write(&lp, &file, b"hello world".to_vec(), Some(0), move |r, b| done((r, b))));
    assert_eq!(n, Ok(11));
    assert_eq!(buf, b"hello world", "the write gives its buffer back unchanged");
    let (n, buf) = wait(&lp, |done| fs::read(&lp, &file, Vec::with_capacity(64), Some(6), move |r, b| done((r, b))));
    assert_eq!(n, Ok(5));
    assert_eq!(buf, b"world");
    wait(&lp, |done| fs::close(&lp, file, done)).unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), b"hello world");
    close_clean(lp);
}

#[test]
fn open_missing_is_enoent() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    let res = wait(&lp, |done| fs::open(&lp, td.path().join("nope"), OpenFlags::RDONLY, 0, done));
    assert_eq!(res.unwrap_err(), Error::ENOENT);
    assert_eq!(sync::open(&lp, td.path().join("nope"), OpenFlags::RDONLY, 0).unwrap_err(), Error::ENOENT);
    close_clean(lp);
}

#[test]
fn open_excl_on_existing_is_eexist() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    let p = fixture(td.path(), "x", b"");
    let err = sync::open(&lp, &p, OpenFlags::WRONLY | OpenFlags::CREAT | OpenFlags::EXCL, 0o600).unwrap_err();
    assert_eq!(err, Error::EEXIST);
    let res = wait(&lp, |done| fs::open(&lp, &p, OpenFlags::WRONLY | OpenFlags::CREAT | OpenFlags::EXCL, 0o600, done));
    assert_eq!(res.unwrap_err(), Error::EEXIST);
    close_clean(lp);
}

#[test]
fn nul_byte_in_path_is_einval_at_submit() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    let bad = td.path().join("a\0b");
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    assert_eq!(fs::open(&lp, &bad, OpenFlags::RDONLY, 0, move |_| r.set(true)).unwrap_err(), Error::EINVAL);
    let r = ran.clone();
    assert_eq!(fs::rename(&lp, td.path(), &bad, move |_| r.set(true)).unwrap_err(), Error::EINVAL);
    let r = ran.clone();
    assert_eq!(fs::stat(&lp, &bad, move |_| r.set(true)).unwrap_err(), Error::EINVAL);
    assert_eq!(sync::mkdir(&lp, &bad, 0o755).unwrap_err(), Error::EINVAL);
    assert_eq!(sync::symlink(&lp, &bad, td.path().join("l"), SymlinkFlags::empty()).unwrap_err(), Error::EINVAL);
    lp.run(RunMode::Default).unwrap();
    assert!(!ran.get(), "a callback whose submit failed never runs");
    close_clean(lp);
}

#[test]
fn read_appends_into_spare_capacity() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    let p = fixture(td.path(), "f", b"0123456789");
    let file = sync::open(&lp, &p, OpenFlags::RDONLY, 0).unwrap();
    let mut buf = Vec::with_capacity(6);
    buf.extend_from_slice(b">>");
    let (n, buf) = wait(&lp, |done| fs::read(&lp, &file, buf, Some(3), move |r, b| done((r, b))));
    assert_eq!(n, Ok(4), "only the 4 spare bytes are filled");
    assert_eq!(buf, b">>3456");
    // No spare capacity: nothing to read into, so 0 (not an error).
    let (n, buf) = wait(&lp, |done| fs::read(&lp, &file, buf, Some(0), move |r, b| done((r, b))));
    assert_eq!(n, Ok(0));
    assert_eq!(buf, b">>3456");
    drop(file);
    close_clean(lp);
}

#[test]
fn read_at_end_of_file_is_zero() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    let p = fixture(td.path(), "f", b"abc");
    let file = sync::open(&lp, &p, OpenFlags::RDONLY, 0).unwrap();
    let (n, buf) = wait(&lp, |done| fs::read(&lp, &file, Vec::with_capacity(8), Some(3), move |r, b| done((r, b))));
    assert_eq!(n, Ok(0));
    assert!(buf.is_empty());
    let mut small = [0u8; 8];
    assert_eq!(sync::read(&lp, &file, &mut small, Some(100)), Ok(0));
    drop(file);
    close_clean(lp);
}

#[test]
fn no_offset_uses_and_advances_the_current_position() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    let p = td.path().join("f");
    let file = sync::open(&lp, &p, RW_CREATE, 0o644).unwrap();
    let (n, _) = wait(&lp, |done| fs::write(&lp, &file, b"abc".to_vec(), None, move |r, b| done((r, b))));
    assert_eq!(n, Ok(3));
    let (n, _) = wait(&lp, |done| fs::write(&lp, &file, b"def".to_vec(), None, move |r, b| done((r, b))));
    assert_eq!(n, Ok(3));
    assert_eq!(std::fs::read(&p).unwrap(), b"abcdef");
    // A positional write does not move the position: the next sequential write lands after "abcdef".
    assert_eq!(sync::write(&lp, &file, b"XY", Some(0)), Ok(2));
    assert_eq!(sync::write(&lp, &file, b"!", None), Ok(1));
    assert_eq!(std::fs::read(&p).unwrap(), b"XYcdef!");
    // Sequential reads from a fresh descriptor walk through the file.
    let reader = sync::open(&lp, &p, OpenFlags::RDONLY, 0).unwrap();
    let mut chunk = [0u8; 3];
    assert_eq!(sync::read(&lp, &reader, &mut chunk, None), Ok(3));
    assert_eq!(&chunk, b"XYc");
    let (n, buf) = wait(&lp, |done| fs::read(&lp, &reader, Vec::with_capacity(3), None, move |r, b| done((r, b))));
    assert_eq!((n, buf), (Ok(3), b"def".to_vec()));
    drop((file, reader));
    close_clean(lp);
}

#[test]
fn offset_beyond_i64_is_einval_and_buffer_dropped() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    let file = sync::open(&lp, td.path().join("f"), RW_CREATE, 0o644).unwrap();
    let err = fs::read(&lp, &file, Vec::with_capacity(4), Some(u64::MAX), |_, _| panic!("must not run")).unwrap_err();
    assert_eq!(err, Error::EINVAL);
    assert_eq!(sync::write(&lp, &file, b"x", Some(u64::MAX)).unwrap_err(), Error::EINVAL);
    assert_eq!(sync::ftruncate(&lp, &file, u64::MAX).unwrap_err(), Error::EINVAL);
    assert_eq!(file.pending_requests(), 0, "a refused request holds nothing");
    drop(file);
    close_clean(lp);
}

#[test]
fn vectored_write_and_read_async() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    let p = td.path().join("v");
    let file = sync::open(&lp, &p, RW_CREATE, 0o644).unwrap();
    let parts = vec![b"one-".to_vec(), Vec::new(), b"two-".to_vec(), b"three".to_vec()];
    let (n, back) = wait(&lp, |done| fs::write_vectored(&lp, &file, parts, Some(0), move |r, b| done((r, b))));
    assert_eq!(n, Ok(13));
    assert_eq!(back.len(), 4, "the buffers come back");
    assert_eq!(std::fs::read(&p).unwrap(), b"one-two-three");
    let mut first = Vec::with_capacity(8);
    first.push(b'[');
    let bufs = vec![first, Vec::with_capacity(2), Vec::with_capacity(100)];
    let (n, bufs) = wait(&lp, |done| fs::read_vectored(&lp, &file, bufs, Some(0), move |r, b| done((r, b))));
    assert_eq!(n, Ok(13));
    assert_eq!(bufs[0], b"[one-two", "the first buffer's 7 spare bytes fill first");
    assert_eq!(bufs[1], b"-t");
    assert_eq!(bufs[2], b"hree");
    drop(file);
    close_clean(lp);
}

#[test]
fn vectored_sync_with_io_slices() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    let p = td.path().join("v");
    let file = sync::open(&lp, &p, RW_CREATE, 0o644).unwrap();
    let n = sync::write_vectored(&lp, &file, &[IoSlice::new(b"ab"), IoSlice::new(b"cde")], Some(0)).unwrap();
    assert_eq!(n, 5);
    let (mut a, mut b) = ([0u8; 1], [0u8; 10]);
    let n = sync::read_vectored(&lp, &file, &mut [IoSliceMut::new(&mut a), IoSliceMut::new(&mut b)], Some(0)).unwrap();
    assert_eq!(n, 5);
    assert_eq!(&a, b"a");
    assert_eq!(&b[..4], b"bcde");
    drop(file);
    close_clean(lp);
}

#[test]
fn vectored_with_no_buffers_is_einval() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    let file = sync::open(&lp, td.path().join("v"), RW_CREATE, 0o644).unwrap();
    assert_eq!(fs::write_vectored(&lp, &file, Vec::new(), None, |_, _| ()).unwrap_err(), Error::EINVAL);
    assert_eq!(fs::read_vectored(&lp, &file, Vec::new(), None, |_, _| ()).unwrap_err(), Error::EINVAL);
    assert_eq!(sync::write_vectored(&lp, &file, &[], None).unwrap_err(), Error::EINVAL);
    drop(file);
    close_clean(lp);
}

#[test]
fn write_to_read_only_file_is_ebadf() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    let p = fixture(td.path(), "ro", b"data");
    let file = sync::open(&lp, &p, OpenFlags::RDONLY, 0).unwrap();
    let (n, buf) = wait(&lp, |done| fs::write(&lp, &file, b"zz".to_vec(), Some(0), move |r, b| done((r, b))));
    assert_eq!(n, Err(Error::EBADF));
    assert_eq!(buf, b"zz", "the buffer comes back on error too");
    assert_eq!(sync::write(&lp, &file, b"zz", None), Err(Error::EBADF));
    drop(file);
    assert_eq!(std::fs::read(&p).unwrap(), b"data");
    close_clean(lp);
}

#[test]
fn many_concurrent_positional_reads() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    let data: Vec<u8> = (0..=255u8).cycle().take(64 * 100).collect();
    let p = fixture(td.path(), "big", &data);
    let file = sync::open(&lp, &p, OpenFlags::RDONLY, 0).unwrap();
    let got = Rc::new(RefCell::new(vec![Vec::new(); 64]));
    for i in 0..64 {
        let got = got.clone();
        fs::read(&lp, &file, Vec::with_capacity(100), Some(i as u64 * 100), move |r, b| {
            assert_eq!(r, Ok(100));
            got.borrow_mut()[i] = b;
        })
        .unwrap();
    }
    assert_eq!(file.pending_requests(), 64);
    lp.run(RunMode::Default).unwrap();
    assert_eq!(got.borrow().concat(), data);
    assert_eq!(file.pending_requests(), 0);
    drop(file);
    close_clean(lp);
}

// ---- File ownership ----

#[test]
fn dropping_a_file_with_a_write_in_flight_waits_for_it() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    let p = td.path().join("w");
    let file = sync::open(&lp, &p, RW_CREATE, 0o644).unwrap();
    let res = Rc::new(Cell::new(None));
    let r = res.clone();
    fs::write(&lp, &file, b"still written".to_vec(), Some(0), move |n, _| r.set(Some(n))).unwrap();
    drop(file); // the request keeps the descriptor open until it completes
    lp.run(RunMode::Default).unwrap();
    assert_eq!(res.get(), Some(Ok(13)));
    assert_eq!(std::fs::read(&p).unwrap(), b"still written");
    close_clean(lp);
}

#[test]
fn close_with_requests_in_flight_is_ebusy() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    let p = fixture(td.path(), "f", b"abc");
    let file = sync::open(&lp, &p, OpenFlags::RDONLY, 0).unwrap();
    let read = Rc::new(RefCell::new(None));
    let r = read.clone();
    fs::read(&lp, &file, Vec::with_capacity(3), Some(0), move |n, b| *r.borrow_mut() = Some((n, b))).unwrap();
    assert_eq!(fs::close(&lp, file, |_| panic!("must not run")).unwrap_err(), Error::EBUSY);
    lp.run(RunMode::Default).unwrap();
    assert_eq!(read.borrow_mut().take(), Some((Ok(3), b"abc".to_vec())), "the read still completes");
    close_clean(lp);
}

#[test]
fn into_raw_and_from_raw_round_trip() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    let p = fixture(td.path(), "f", b"raw");
    let file = sync::open(&lp, &p, OpenFlags::RDONLY, 0).unwrap();
    let fd = file.fd();
    assert!(fd >= 0);
    fs::fstat(&lp, &file, |st| assert_eq!(st.unwrap().size, 3)).unwrap();
    let file = file.into_raw().expect_err("refused while a request uses the descriptor");
    lp.run(RunMode::Default).unwrap();
    let raw = file.into_raw().expect("free now");
    assert_eq!(raw, fd);
    // SAFETY: `raw` came from into_raw: open and owned by nobody else.
    let file = unsafe { fs::File::from_raw(&lp, raw) };
    let mut buf = [0u8; 3];
    assert_eq!(sync::read(&lp, &file, &mut buf, Some(0)), Ok(3));
    assert_eq!(&buf, b"raw");
    sync::close(&lp, file).unwrap();
    close_clean(lp);
}

#[test]
fn file_dropped_after_its_loop_closed() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    let p = fixture(td.path(), "f", b"x");
    let file = sync::open(&lp, &p, OpenFlags::RDONLY, 0).unwrap();
    let dir = sync::opendir(&lp, td.path()).unwrap();
    close_clean(lp); // files are not loop handles: the loop closes while they are open
    drop(file); // the synchronous close still works: the loop's memory lives until its last user drops
    drop(dir);
}

// ---- paths ----

#[test]
fn unlink_async_and_missing() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    let p = fixture(td.path(), "gone", b"");
    wait(&lp, |done| fs::unlink(&lp, &p, done)).unwrap();
    assert!(!p.exists());
    assert_eq!(wait(&lp, |done| fs::unlink(&lp, &p, done)), Err(Error::ENOENT));
    assert_eq!(sync::unlink(&lp, &p), Err(Error::ENOENT));
    close_clean(lp);
}

#[test]
fn mkdir_and_rmdir() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    let d = td.path().join("sub");
    wait(&lp, |done| fs::mkdir(&lp, &d, 0o755, done)).unwrap();
    assert!(d.is_dir());
    assert_eq!(wait(&lp, |done| fs::mkdir(&lp, &d, 0o755, done)), Err(Error::EEXIST));
    assert_eq!(sync::mkdir(&lp, &d, 0o755), Err(Error::EEXIST));
    wait(&lp, |done| fs::rmdir(&lp, &d, done)).unwrap();
    assert!(!d.exists());
    assert_eq!(sync::rmdir(&lp, &d), Err(Error::ENOENT));
    sync::mkdir(&lp, &d, 0o700).unwrap();
    sync::rmdir(&lp, &d).unwrap();
    close_clean(lp);
}

#[test]
fn rmdir_of_non_empty_directory_is_enotempty() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    fixture(td.path(), "child", b"");
    assert_eq!(wait(&lp, |done| fs::rmdir(&lp, td.path(), done)), Err(Error::ENOTEMPTY));
    assert_eq!(sync::rmdir(&lp, td.path()), Err(Error::ENOTEMPTY));
    close_clean(lp);
}

#[test]
fn mkdtemp_fills_the_template() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    let made = wait(&lp, |done| fs::mkdtemp(&lp, td.path().join("tmp-XXXXXX"), done)).unwrap();
    let name = made.file_name().unwrap().to_str().unwrap().to_owned();
    assert!(name.starts_with("tmp-") && name.len() == 10 && !name.ends_with("XXXXXX"), "{name}");
    assert!(made.is_dir());
    let other = sync::mkdtemp(&lp, td.path().join("tmp-XXXXXX")).unwrap();
    assert_ne!(made, other);
    assert_eq!(sync::mkdtemp(&lp, td.path().join("no-template")).unwrap_err(), Error::EINVAL);
    close_clean(lp);
}

#[test]
fn mkstemp_creates_and_opens_a_file() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    let (file, path) = wait(&lp, |done| fs::mkstemp(&lp, td.path().join("f-XXXXXX"), done)).unwrap();
    assert!(path.file_name().unwrap().to_str().unwrap().starts_with("f-"));
    assert!(path.is_file());
    assert_eq!(sync::write(&lp, &file, b"temp", None), Ok(4));
    assert_eq!(std::fs::read(&path).unwrap(), b"temp");
    let (file2, path2) = sync::mkstemp(&lp, td.path().join("f-XXXXXX")).unwrap();
    assert_ne!(path, path2);
    assert_eq!(sync::mkstemp(&lp, td.path().join("bad")).unwrap_err(), Error::EINVAL);
    drop((file, file2));
    close_clean(lp);
}

#[test]
fn rename_moves_and_reports_enoent() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    let a = fixture(td.path(), "a", b"payload");
    let b = td.path().join("b");
    wait(&lp, |done| fs::rename(&lp, &a, &b, done)).unwrap();
    assert!(!a.exists());
    assert_eq!(std::fs::read(&b).unwrap(), b"payload");
    assert_eq!(wait(&lp, |done| fs::rename(&lp, &a, &b, done)), Err(Error::ENOENT));
    sync::rename(&lp, &b, &a).unwrap();
    assert!(a.exists());
    close_clean(lp);
}

// ---- directories ----

fn populate(dir: &Path, files: usize, dirs: usize) {
    for i in 0..files {
        fixture(dir, &format!("file{i:03}"), b"");
    }
    for i in 0..dirs {
        std::fs::create_dir(dir.join(format!("dir{i}"))).unwrap();
    }
}

#[test]
fn scandir_lists_many_entries_with_types() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    populate(td.path(), 150, 3);
    let entries = wait(&lp, |done| fs::scandir(&lp, td.path(), done)).unwrap();
    assert_eq!(entries.len(), 153);
    let mut expected: Vec<String> = (0..150).map(|i| format!("file{i:03}")).collect();
    expected.extend((0..3).map(|i| format!("dir{i}")));
    expected.sort();
    assert_eq!(names(&entries), expected);
    for e in &entries {
        let is_dir = e.name.to_str().unwrap().starts_with("dir");
        // Some file systems do not report types: Unknown is allowed, a wrong type is not.
        let want = if is_dir { DirentType::Dir } else { DirentType::File };
        assert!(e.kind == want || e.kind == DirentType::Unknown, "{e:?}");
    }
    assert_eq!(names(&sync::scandir(&lp, td.path()).unwrap()), expected);
    close_clean(lp);
}

#[test]
fn scandir_errors() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    assert_eq!(wait(&lp, |done| fs::scandir(&lp, td.path().join("missing"), done)), Err(Error::ENOENT));
    let f = fixture(td.path(), "f", b"");
    let err = sync::scandir(&lp, &f).unwrap_err();
    #[cfg(unix)]
    assert_eq!(err, Error::ENOTDIR);
    #[cfg(not(unix))]
    let _ = err;
    std::fs::create_dir(td.path().join("empty")).unwrap();
    assert!(sync::scandir(&lp, td.path().join("empty")).unwrap().is_empty());
    close_clean(lp);
}

#[test]
fn opendir_readdir_in_batches_async() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    populate(td.path(), 50, 0);
    let dir = wait(&lp, |done| fs::opendir(&lp, td.path(), done)).unwrap();
    // Read in batches of 7 by chaining readdir from its own callback, until an empty batch.
    let all = Rc::new(RefCell::new(Vec::new()));
    let batches = Rc::new(Cell::new(0));
    fn next(lp: Loop, dir: Rc<fs::Dir>, all: Rc<RefCell<Vec<fs::Dirent>>>, batches: Rc<Cell<usize>>) {
        let (lp2, dir2) = (lp.clone(), dir.clone());
        fs::readdir(&lp, &dir, 7, move |res| {
            let batch = res.unwrap();
            assert!(batch.len() <= 7);
            if batch.is_empty() {
                let dir = Rc::try_unwrap(dir2).unwrap();
                fs::closedir(&lp2, dir, |res| res.unwrap()).unwrap();
                return;
            }
            batches.set(batches.get() + 1);
            all.borrow_mut().extend(batch);
            next(lp2, dir2, all, batches);
        })
        .unwrap();
        drop(dir);
    }
    next(lp.clone(), Rc::new(dir), all.clone(), batches.clone());
    lp.run(RunMode::Default).unwrap();
    assert_eq!(batches.get(), 8, "50 entries in batches of 7");
    let expected: Vec<String> = (0..50).map(|i| format!("file{i:03}")).collect();
    assert_eq!(names(&all.borrow()), expected);
    close_clean(lp);
}

#[test]
fn readdir_sync_batches_and_closedir() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    populate(td.path(), 10, 2);
    let dir = sync::opendir(&lp, td.path()).unwrap();
    let mut seen = Vec::new();
    loop {
        let batch = sync::readdir(&lp, &dir, 5).unwrap();
        if batch.is_empty() {
            break;
        }
        seen.extend(batch);
    }
    assert_eq!(seen.len(), 12);
    assert!(seen.iter().any(|e| e.name == "dir1" && matches!(e.kind, DirentType::Dir | DirentType::Unknown)));
    sync::closedir(&lp, dir).unwrap();
    assert_eq!(sync::opendir(&lp, td.path().join("missing")).unwrap_err(), Error::ENOENT);
    close_clean(lp);
}

#[test]
fn readdir_misuse_is_refused() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    populate(td.path(), 3, 0);
    let dir = sync::opendir(&lp, td.path()).unwrap();
    assert_eq!(fs::readdir(&lp, &dir, 0, |_| ()).unwrap_err(), Error::EINVAL);
    let got = Rc::new(Cell::new(0));
    let g = got.clone();
    fs::readdir(&lp, &dir, 10, move |res| g.set(res.unwrap().len())).unwrap();
    assert!(dir.is_busy());
    assert_eq!(fs::readdir(&lp, &dir, 10, |_| ()).unwrap_err(), Error::EBUSY, "one readdir at a time");
    assert_eq!(sync::readdir(&lp, &dir, 10).unwrap_err(), Error::EBUSY);
    assert_eq!(fs::closedir(&lp, dir, |_| panic!("must not run")).unwrap_err(), Error::EBUSY);
    lp.run(RunMode::Default).unwrap();
    assert_eq!(got.get(), 3, "the readdir in flight completes after its Dir was dropped");
    close_clean(lp);
}

#[test]
fn dropping_a_dir_without_closedir_closes_it() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    populate(td.path(), 4, 0);
    let dir = wait(&lp, |done| fs::opendir(&lp, td.path(), done)).unwrap();
    assert_eq!(sync::readdir(&lp, &dir, 2).unwrap().len(), 2);
    drop(dir); // closed synchronously, mid-stream
               // Many times over: a leaked stream would exhaust descriptors (and valgrind would see the uv_dir_t).
    for _ in 0..300 {
        let dir = sync::opendir(&lp, td.path()).unwrap();
        drop(dir);
    }
    let dir = sync::opendir(&lp, td.path()).unwrap();
    wait(&lp, |done| fs::closedir(&lp, dir, done)).unwrap();
    close_clean(lp);
}

// ---- metadata ----

#[test]
fn stat_fstat_lstat() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    let p = fixture(td.path(), "s", b"12345");
    let st = wait(&lp, |done| fs::stat(&lp, &p, done)).unwrap();
    assert_eq!(st.size, 5);
    assert!(st.is_file() && !st.is_dir() && !st.is_symlink());
    assert!(st.nlink >= 1);
    let file = sync::open(&lp, &p, OpenFlags::RDONLY, 0).unwrap();
    let fst = wait(&lp, |done| fs::fstat(&lp, &file, done)).unwrap();
    assert_eq!((fst.size, fst.ino, fst.dev), (st.size, st.ino, st.dev));
    assert_eq!(sync::fstat(&lp, &file).unwrap().size, 5);
    let lst = wait(&lp, |done| fs::lstat(&lp, &p, done)).unwrap();
    assert_eq!(lst.ino, st.ino);
    let dst = sync::stat(&lp, td.path()).unwrap();
    assert!(dst.is_dir());
    let modified = std::fs::metadata(&p).unwrap().modified().unwrap();
    assert_eq!(st.mtime.to_system_time(), modified);
    drop(file);
    close_clean(lp);
}

#[test]
fn stat_missing_is_enoent() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    let p = td.path().join("missing");
    assert_eq!(wait(&lp, |done| fs::stat(&lp, &p, done)), Err(Error::ENOENT));
    assert_eq!(wait(&lp, |done| fs::lstat(&lp, &p, done)), Err(Error::ENOENT));
    assert_eq!(sync::stat(&lp, &p), Err(Error::ENOENT));
    assert_eq!(sync::stat(&lp, td.path().join("missing/below")), Err(Error::ENOENT));
    close_clean(lp);
}

#[test]
fn statfs_reports_sizes() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    let st = wait(&lp, |done| fs::statfs(&lp, td.path(), done)).unwrap();
    assert!(st.bsize > 0, "{st:?}");
    assert!(st.blocks > 0, "{st:?}");
    assert!(st.bavail <= st.blocks && st.bfree <= st.blocks);
    assert_eq!(sync::statfs(&lp, td.path()).unwrap().bsize, st.bsize);
    assert_eq!(sync::statfs(&lp, td.path().join("missing")).unwrap_err(), Error::ENOENT);
    close_clean(lp);
}

#[test]
fn fsync_and_fdatasync() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    let p = td.path().join("durable");
    let file = sync::open(&lp, &p, RW_CREATE, 0o644).unwrap();
    sync::write(&lp, &file, b"keep me", None).unwrap();
    wait(&lp, |done| fs::fsync(&lp, &file, done)).unwrap();
    wait(&lp, |done| fs::fdatasync(&lp, &file, done)).unwrap();
    sync::fsync(&lp, &file).unwrap();
    sync::fdatasync(&lp, &file).unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), b"keep me");
    drop(file);
    close_clean(lp);
}

#[test]
fn ftruncate_shrinks_and_extends() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    let p = fixture(td.path(), "t", b"0123456789");
    let file = sync::open(&lp, &p, OpenFlags::RDWR, 0).unwrap();
    wait(&lp, |done| fs::ftruncate(&lp, &file, 4, done)).unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), b"0123");
    sync::ftruncate(&lp, &file, 6).unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), b"0123\0\0");
    let ro = sync::open(&lp, &p, OpenFlags::RDONLY, 0).unwrap();
    assert!(sync::ftruncate(&lp, &ro, 0).is_err(), "a read-only descriptor cannot truncate");
    drop((file, ro));
    close_clean(lp);
}

// ---- copies ----

#[test]
fn copyfile_copies_and_excl_refuses_with_eexist() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    let src = fixture(td.path(), "src", b"copy me");
    let dst = td.path().join("dst");
    wait(&lp, |done| fs::copyfile(&lp, &src, &dst, CopyFlags::empty(), done)).unwrap();
    assert_eq!(std::fs::read(&dst).unwrap(), b"copy me");
    std::fs::write(&src, b"changed").unwrap();
    assert_eq!(wait(&lp, |done| fs::copyfile(&lp, &src, &dst, CopyFlags::EXCL, done)), Err(Error::EEXIST));
    assert_eq!(std::fs::read(&dst).unwrap(), b"copy me", "EXCL left the destination alone");
    // Without EXCL the destination is overwritten; FICLONE falls back to a plain copy where reflinks are absent.
    sync::copyfile(&lp, &src, &dst, CopyFlags::FICLONE).unwrap();
    assert_eq!(std::fs::read(&dst).unwrap(), b"changed");
    assert_eq!(sync::copyfile(&lp, td.path().join("missing"), &dst, CopyFlags::empty()), Err(Error::ENOENT));
    assert!(CopyFlags::EXCL.union(CopyFlags::FICLONE).contains(CopyFlags::EXCL));
    close_clean(lp);
}

#[test]
fn sendfile_between_files() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let src = fixture(td.path(), "in", &data);
    let input = sync::open(&lp, &src, OpenFlags::RDONLY, 0).unwrap();
    let out = sync::open(&lp, td.path().join("out"), RW_CREATE | OpenFlags::TRUNC, 0o644).unwrap();
    // Copy everything after the first 100 bytes, looping on short counts.
    let mut offset = 100u64;
    while offset < data.len() as u64 {
        let want = data.len() - offset as usize;
        let n = wait(&lp, |done| fs::sendfile(&lp, &out, &input, offset, want, done)).unwrap();
        assert!(n > 0);
        offset += n as u64;
    }
    assert_eq!(std::fs::read(td.path().join("out")).unwrap(), &data[100..]);
    // On Unix the input's own position was not used or moved (Windows' emulation seeks it).
    #[cfg(unix)]
    {
        let mut first = [0u8; 4];
        assert_eq!(sync::read(&lp, &input, &mut first, None), Ok(4));
        assert_eq!(&first, &data[..4]);
    }
    assert_eq!(sync::sendfile(&lp, &out, &input, 0, 10), Ok(10));
    drop((input, out));
    close_clean(lp);
}

// ---- permissions, times, links ----

#[test]
fn access_checks_existence() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    let p = fixture(td.path(), "a", b"");
    wait(&lp, |done| fs::access(&lp, &p, AccessMode::EXISTS, done)).unwrap();
    wait(&lp, |done| fs::access(&lp, &p, AccessMode::READ | AccessMode::WRITE, done)).unwrap();
    assert_eq!(wait(&lp, |done| fs::access(&lp, td.path().join("x"), AccessMode::EXISTS, done)), Err(Error::ENOENT));
    assert_eq!(sync::access(&lp, td.path().join("x"), AccessMode::READ), Err(Error::ENOENT));
    sync::access(&lp, td.path(), AccessMode::EXISTS).unwrap();
    close_clean(lp);
}

#[cfg(unix)]
#[test]
fn chmod_and_fchmod_round_trip() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    let p = fixture(td.path(), "m", b"");
    wait(&lp, |done| fs::chmod(&lp, &p, 0o640, done)).unwrap();
    assert_eq!(sync::stat(&lp, &p).unwrap().permissions(), 0o640);
    let file = sync::open(&lp, &p, OpenFlags::RDONLY, 0).unwrap();
    wait(&lp, |done| fs::fchmod(&lp, &file, 0o604, done)).unwrap();
    assert_eq!(sync::fstat(&lp, &file).unwrap().permissions(), 0o604);
    sync::chmod(&lp, &p, 0o755).unwrap();
    sync::fchmod(&lp, &file, 0o700).unwrap();
    assert_eq!(sync::stat(&lp, &p).unwrap().permissions(), 0o700);
    assert_eq!(sync::chmod(&lp, td.path().join("missing"), 0o600), Err(Error::ENOENT));
    drop(file);
    close_clean(lp);
}

fn at(secs: f64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs_f64(secs)
}

#[test]
fn utime_and_futime_round_trip() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    let p = fixture(td.path(), "t", b"");
    let (atime, mtime) = (at(1_000_000_000.5), at(1_600_000_000.25));
    wait(&lp, |done| fs::utime(&lp, &p, FileTime::At(atime), mtime.into(), done)).unwrap();
    let st = sync::stat(&lp, &p).unwrap();
    assert_eq!(st.atime.sec, 1_000_000_000);
    assert_eq!(st.mtime.sec, 1_600_000_000);
    let close_to = |ts: fs::Timespec, want: u32| assert!(ts.nsec.abs_diff(want) < 1_000, "{ts:?}");
    close_to(st.atime, 500_000_000);
    close_to(st.mtime, 250_000_000);
    let file = sync::open(&lp, &p, OpenFlags::RDWR, 0).unwrap();
    wait(&lp, |done| fs::futime(&lp, &file, FileTime::At(at(5_000.0)), FileTime::At(at(6_000.0)), done)).unwrap();
    let st = sync::fstat(&lp, &file).unwrap();
    assert_eq!((st.atime.sec, st.mtime.sec), (5_000, 6_000));
    sync::futime(&lp, &file, FileTime::At(at(7_000.0)), FileTime::Omit).unwrap();
    let st = sync::fstat(&lp, &file).unwrap();
    assert_eq!((st.atime.sec, st.mtime.sec), (7_000, 6_000), "Omit leaves mtime alone");
    assert_eq!(sync::utime(&lp, td.path().join("missing"), FileTime::Now, FileTime::Now), Err(Error::ENOENT));
    drop(file);
    close_clean(lp);
}

#[test]
fn utime_now_sets_the_current_time() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    let p = fixture(td.path(), "n", b"");
    sync::utime(&lp, &p, FileTime::At(at(1_000.0)), FileTime::At(at(2_000.0))).unwrap();
    let before = SystemTime::now() - Duration::from_secs(5);
    sync::utime(&lp, &p, FileTime::Omit, FileTime::Now).unwrap();
    let st = sync::stat(&lp, &p).unwrap();
    assert_eq!(st.atime.sec, 1_000, "Omit kept atime");
    assert!(st.mtime.to_system_time() > before, "Now set mtime to about now");
    close_clean(lp);
}

#[test]
fn hard_link_shares_the_inode() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    let p = fixture(td.path(), "orig", b"shared");
    let l = td.path().join("hard");
    wait(&lp, |done| fs::link(&lp, &p, &l, done)).unwrap();
    let (a, b) = (sync::stat(&lp, &p).unwrap(), sync::stat(&lp, &l).unwrap());
    assert_eq!(a.nlink, 2);
    #[cfg(unix)]
    assert_eq!(a.ino, b.ino);
    assert_eq!(b.size, 6);
    assert_eq!(wait(&lp, |done| fs::link(&lp, &p, &l, done)), Err(Error::EEXIST));
    sync::link(&lp, &p, td.path().join("hard2")).unwrap();
    assert_eq!(sync::stat(&lp, &p).unwrap().nlink, 3);
    close_clean(lp);
}

#[cfg(unix)]
#[test]
fn symlink_readlink_realpath() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    let target = fixture(td.path(), "target", b"t");
    let link = td.path().join("link");
    wait(&lp, |done| fs::symlink(&lp, "target", &link, SymlinkFlags::empty(), done)).unwrap();
    assert_eq!(wait(&lp, |done| fs::readlink(&lp, &link, done)).unwrap(), Path::new("target"));
    let real = wait(&lp, |done| fs::realpath(&lp, &link, done)).unwrap();
    assert_eq!(real, std::fs::canonicalize(&target).unwrap());
    assert!(sync::lstat(&lp, &link).unwrap().is_symlink());
    assert!(sync::stat(&lp, &link).unwrap().is_file());
    assert_eq!(sync::readlink(&lp, &target), Err(Error::EINVAL), "not a link");
    assert_eq!(sync::realpath(&lp, td.path().join("missing")), Err(Error::ENOENT));
    assert_eq!(sync::symlink(&lp, "target", &link, SymlinkFlags::DIR), Err(Error::EEXIST));
    // A dangling link: readlink works, realpath does not.
    sync::symlink(&lp, td.path().join("nowhere"), td.path().join("dangling"), SymlinkFlags::empty()).unwrap();
    assert_eq!(sync::readlink(&lp, td.path().join("dangling")).unwrap(), td.path().join("nowhere"));
    assert_eq!(sync::realpath(&lp, td.path().join("dangling")), Err(Error::ENOENT));
    close_clean(lp);
}

#[cfg(unix)]
#[test]
fn lutime_sets_the_link_itself() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    let target = fixture(td.path(), "target", b"");
    let link = td.path().join("link");
    sync::symlink(&lp, &target, &link, SymlinkFlags::empty()).unwrap();
    sync::utime(&lp, &target, FileTime::At(at(3_000.0)), FileTime::At(at(3_000.0))).unwrap();
    wait(&lp, |done| fs::lutime(&lp, &link, FileTime::At(at(9_000.0)), FileTime::At(at(9_000.0)), done)).unwrap();
    assert_eq!(sync::lstat(&lp, &link).unwrap().mtime.sec, 9_000);
    assert_eq!(sync::stat(&lp, &link).unwrap().mtime.sec, 3_000, "the target is untouched");
    sync::lutime(&lp, &link, FileTime::Omit, FileTime::At(at(10_000.0))).unwrap();
    assert_eq!(sync::lstat(&lp, &link).unwrap().mtime.sec, 10_000);
    close_clean(lp);
}

#[cfg(unix)]
#[test]
fn chown_to_own_ids() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    let p = fixture(td.path(), "o", b"");
    // SAFETY: getuid/getgid have no preconditions.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    wait(&lp, |done| fs::chown(&lp, &p, Some(uid), Some(gid), done)).unwrap();
    wait(&lp, |done| fs::chown(&lp, &p, None, None, done)).unwrap();
    let file = sync::open(&lp, &p, OpenFlags::RDONLY, 0).unwrap();
    wait(&lp, |done| fs::fchown(&lp, &file, None, Some(gid), done)).unwrap();
    sync::fchown(&lp, &file, Some(uid), None).unwrap();
    let link = td.path().join("l");
    sync::symlink(&lp, &p, &link, SymlinkFlags::empty()).unwrap();
    wait(&lp, |done| fs::lchown(&lp, &link, Some(uid), Some(gid), done)).unwrap();
    sync::lchown(&lp, &link, None, None).unwrap();
    sync::chown(&lp, &p, Some(uid), Some(gid)).unwrap();
    let st = sync::stat(&lp, &p).unwrap();
    assert_eq!((st.uid, st.gid), (u64::from(uid), u64::from(gid)));
    assert_eq!(sync::chown(&lp, td.path().join("missing"), None, None), Err(Error::ENOENT));
    drop(file);
    close_clean(lp);
}

// ---- callbacks ----

#[test]
fn panic_in_callback_resumes_from_run() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    let p = fixture(td.path(), "p", b"");
    fs::stat(&lp, &p, |_| panic!("boom from an fs callback")).unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lp.run(RunMode::Default)));
    let payload = caught.expect_err("the panic resumes from run");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom from an fs callback"));
    // The loop is usable afterwards.
    assert!(sync::stat(&lp, &p).unwrap().is_file());
    close_clean(lp);
}

#[test]
fn callbacks_chain_requests() {
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    let p = td.path().join("chain");
    let log = Rc::new(RefCell::new(Vec::new()));
    let (lp1, log1, p1) = (lp.clone(), log.clone(), p.clone());
    fs::open(&lp, &p, RW_CREATE, 0o644, move |file| {
        // Callbacks that outlive this one share the file through an Rc.
        let file = Rc::new(file.unwrap());
        log1.borrow_mut().push("open");
        let (lp2, log2, file2) = (lp1.clone(), log1.clone(), file.clone());
        fs::write(&lp1, &file, b"chained".to_vec(), Some(0), move |n, _| {
            assert_eq!(n, Ok(7));
            log2.borrow_mut().push("write");
            let (lp3, log3, file3) = (lp2.clone(), log2.clone(), file2.clone());
            fs::fstat(&lp2, &file2, move |st| {
                assert_eq!(st.unwrap().size, 7);
                log3.borrow_mut().push("fstat");
                let log4 = log3.clone();
                // The finished fstat released the file before calling back: this Rc is its only owner.
                let file = Rc::try_unwrap(file3).expect("last Rc");
                assert_eq!(file.pending_requests(), 0);
                fs::close(&lp3, file, move |res| {
                    res.unwrap();
                    log4.borrow_mut().push("close");
                    let _ = p1;
                })
                .unwrap();
            })
            .unwrap();
        })
        .unwrap();
    })
    .unwrap();
    lp.run(RunMode::Default).unwrap();
    assert_eq!(*log.borrow(), ["open", "write", "fstat", "close"]);
    assert_eq!(std::fs::read(&p).unwrap(), b"chained");
    close_clean(lp);
}

#[test]
fn flags_compose() {
    let f = OpenFlags::WRONLY | OpenFlags::CREAT;
    assert!(f.contains(OpenFlags::CREAT));
    assert!(!f.contains(OpenFlags::EXCL) || OpenFlags::EXCL.bits() == 0);
    assert_eq!(OpenFlags::from_bits(f.bits()), f);
    let mut g = OpenFlags::empty();
    g |= OpenFlags::APPEND;
    assert_eq!(g, OpenFlags::APPEND);
    let lp = Loop::new().unwrap();
    close_clean(lp);
}

#[test]
fn file_and_dir_stay_on_their_thread() {
    // Both hold an Rc to their loop (and their requests share it): neither may cross threads.
    static_assertions::assert_not_impl_any!(fs::File: Send, Sync);
    static_assertions::assert_not_impl_any!(fs::Dir: Send, Sync);
    let lp = Loop::new().unwrap();
    let td = TempDir::new("fs");
    let dir = sync::opendir(&lp, td.path()).unwrap();
    assert!(!dir.is_busy());
    assert!(format!("{dir:?}").starts_with("Dir"));
    let file = sync::open(&lp, td.path().join("d"), RW_CREATE, 0o600).unwrap();
    assert_eq!(format!("{file:?}"), format!("File {{ fd: {} }}", file.fd()));
    drop((dir, file));
    close_clean(lp);
}

/// Dropping the last `Loop` with requests on the thread pool waits for them: their callbacks run during the drop
/// (with their results), so nothing they hold, the loop included, is leaked.
#[test]
fn dropping_the_loop_with_requests_in_flight_finishes_them() {
    let lp = Loop::new().unwrap();
    let done = Rc::new(Cell::new(0));
    for _ in 0..8 {
        let done = done.clone();
        fs::stat(&lp, "/", move |res| {
            assert!(res.unwrap().is_dir());
            done.set(done.get() + 1);
        })
        .unwrap();
    }
    let looked_up = Rc::new(Cell::new(false));
    let flag = looked_up.clone();
    let hints = uvio::uv::AddrInfoHints::default();
    uvio::uv::getaddrinfo(&lp, Some("localhost"), None, hints, move |_| flag.set(true)).unwrap();
    drop(lp);
    assert_eq!(done.get(), 8, "every stat callback ran during the drop");
    assert!(looked_up.get(), "the lookup's callback ran during the drop");
}
