//! FsEvent tests: changes in a watched directory and file, stop, path(), bad paths, callback-owns-its-handle.
mod common;

use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use common::{close_clean, TempDir};
use uvio::uv::{FsEvent, FsEventFlags, FsEventKind, Handle, Loop, RunMode, Timer};
use uvio::Error;

type Events = Rc<RefCell<Vec<(Option<PathBuf>, FsEventKind)>>>;

#[test]
fn file_created_in_watched_dir_is_reported_by_name() {
    let dir = TempDir::new("fs-event-create");
    let lp = Loop::new().unwrap();
    let watcher = FsEvent::new(&lp).unwrap();
    let events: Events = Rc::default();
    let e2 = events.clone();
    watcher
        .start(dir.path(), FsEventFlags::default(), move |w, res| {
            let (name, kind) = res.unwrap();
            e2.borrow_mut().push((name.map(|n| n.to_path_buf()), kind));
            if name.is_some_and(|n| n.as_os_str() == "new.txt") {
                w.stop().unwrap();
            }
        })
        .unwrap();
    assert!(watcher.is_active());
    std::fs::write(dir.path().join("new.txt"), b"hello").unwrap();
    lp.run(RunMode::Default).unwrap();
    let events = events.borrow();
    let ours = events.iter().find(|(n, _)| n.as_deref() == Some("new.txt".as_ref())).expect("event for new.txt");
    assert!(ours.1.rename || ours.1.change, "{events:?}");
    assert!(!watcher.is_active());
    drop(watcher);
    close_clean(lp);
}

#[test]
fn change_to_watched_file_is_reported() {
    let dir = TempDir::new("fs-event-file");
    let file = dir.path().join("watched.txt");
    std::fs::write(&file, b"v1").unwrap();
    let lp = Loop::new().unwrap();
    let watcher = FsEvent::new(&lp).unwrap();
    let kinds = Rc::new(RefCell::new(Vec::new()));
    let k2 = kinds.clone();
    watcher
        .start(&file, FsEventFlags::default(), move |w, res| {
            k2.borrow_mut().push(res.unwrap().1);
            w.stop().unwrap();
        })
        .unwrap();
    std::fs::write(&file, b"version two").unwrap();
    lp.run(RunMode::Default).unwrap();
    assert_eq!(kinds.borrow().len(), 1);
    assert!(kinds.borrow()[0].change, "{:?}", kinds.borrow());
    drop(watcher);
    close_clean(lp);
}

#[test]
fn stopped_watcher_is_not_called() {
    let dir = TempDir::new("fs-event-stop");
    let lp = Loop::new().unwrap();
    let watcher = FsEvent::new(&lp).unwrap();
    watcher.start(dir.path(), FsEventFlags::default(), |_, _| panic!("stopped watcher was called")).unwrap();
    watcher.stop().unwrap();
    watcher.stop().unwrap(); // twice is fine
    std::fs::write(dir.path().join("after-stop.txt"), b"x").unwrap();
    // Give a stray event a chance to show up: a short timer keeps the loop polling for a moment.
    let t = Timer::new(&lp).unwrap();
    t.start(Duration::from_millis(20), None, |_| {}).unwrap();
    lp.run(RunMode::Default).unwrap();
    drop((watcher, t));
    close_clean(lp);
}

#[test]
fn path_reports_watched_path_and_einval_when_stopped() {
    let dir = TempDir::new("fs-event-path");
    let lp = Loop::new().unwrap();
    let watcher = FsEvent::new(&lp).unwrap();
    assert_eq!(watcher.path().unwrap_err(), Error::EINVAL);
    // A path longer than path()'s first 256-byte buffer exercises the ENOBUFS retry (not on Windows, where
    // paths over 260 characters need opting in).
    let deep =
        if cfg!(windows) { dir.path().join("sub") } else { dir.path().join("d".repeat(200)).join("e".repeat(200)) };
    std::fs::create_dir_all(&deep).unwrap();
    watcher.start(&deep, FsEventFlags { recursive: false }, |_, _| {}).unwrap();
    assert_eq!(watcher.path().unwrap(), deep);
    // libuv refuses to start a started watcher.
    assert_eq!(watcher.start(dir.path(), FsEventFlags::default(), |_, _| {}).unwrap_err(), Error::EINVAL);
    assert_eq!(watcher.path().unwrap(), deep);
    watcher.stop().unwrap();
    assert_eq!(watcher.path().unwrap_err(), Error::EINVAL);
    drop(watcher);
    close_clean(lp);
}

#[test]
fn bad_paths_are_errors() {
    let dir = TempDir::new("fs-event-bad");
    let lp = Loop::new().unwrap();
    let watcher = FsEvent::new(&lp).unwrap();
    assert_eq!(watcher.start("a\0b", FsEventFlags::default(), |_, _| {}).unwrap_err(), Error::EINVAL);
    let missing = dir.path().join("missing");
    assert_eq!(watcher.start(&missing, FsEventFlags::default(), |_, _| {}).unwrap_err(), Error::ENOENT);
    assert!(!watcher.is_active());
    drop(watcher);
    close_clean(lp);
}

#[test]
fn drop_in_own_callback_then_start_is_einval() {
    let dir = TempDir::new("fs-event-drop");
    let lp = Loop::new().unwrap();
    let slot = Rc::new(RefCell::new(None::<FsEvent>));
    let watcher = FsEvent::new(&lp).unwrap();
    let (s2, n) = (slot.clone(), Rc::new(Cell::new(0)));
    let (n2, path) = (n.clone(), dir.path().to_path_buf());
    watcher
        .start(dir.path(), FsEventFlags::default(), move |w, _| {
            n2.set(n2.get() + 1);
            drop(s2.borrow_mut().take());
            assert!(w.is_closing());
            assert_eq!(w.start(&path, FsEventFlags::default(), |_, _| {}).unwrap_err(), Error::EINVAL);
        })
        .unwrap();
    *slot.borrow_mut() = Some(watcher);
    // Several changes: the closed watcher must not be called for the later ones.
    for i in 0..3 {
        std::fs::write(dir.path().join(format!("f{i}")), b"x").unwrap();
    }
    lp.run(RunMode::Default).unwrap();
    assert_eq!(n.get(), 1);
    close_clean(lp);
}
