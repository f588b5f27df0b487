//! FsPoll tests: a modification seen as differing stats, a missing file that appears, path(), misuse.
mod common;

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::rc::Rc;
use std::time::Duration;

use common::{close_clean, TempDir};
use uvio::uv::{FsPoll, Handle, Loop, RunMode, Timer};
use uvio::Error;

const INTERVAL: Duration = Duration::from_millis(10);

#[test]
fn modification_is_reported_with_both_stats() {
    let dir = TempDir::new("fs-poll-modify");
    let path = dir.path().join("f.txt");
    std::fs::write(&path, b"abc").unwrap();
    let lp = Loop::new().unwrap();
    let poll = FsPoll::new(&lp).unwrap();
    // Append from a timer until the poll notices: the first stat (the baseline) may come before or after
    // any single write, so one write alone could be missed.
    let writer = Rc::new(Timer::new(&lp).unwrap());
    let p2 = path.clone();
    writer
        .start(INTERVAL, Some(INTERVAL), move |_| {
            std::fs::OpenOptions::new().append(true).open(&p2).unwrap().write_all(b"more").unwrap();
        })
        .unwrap();
    let seen = Rc::new(RefCell::new(None));
    let (s2, w2) = (seen.clone(), writer.clone());
    poll.start(&path, INTERVAL, move |p, res| {
        *s2.borrow_mut() = Some(res.unwrap());
        p.stop().unwrap();
        w2.stop().unwrap();
    })
    .unwrap();
    lp.run(RunMode::Default).unwrap();
    let (prev, curr) = seen.borrow().expect("a change was reported");
    assert!(prev.is_file() && curr.is_file());
    assert!(prev.size >= 3 && curr.size > prev.size, "{} -> {}", prev.size, curr.size);
    assert_eq!((curr.size - 3) % 4, 0, "whole appends only");
    assert_eq!(prev.ino, curr.ino);
    drop((poll, writer));
    close_clean(lp);
}

#[test]
fn missing_file_reports_enoent_once_then_creation() {
    let dir = TempDir::new("fs-poll-missing");
    let path = dir.path().join("later.txt");
    let lp = Loop::new().unwrap();
    let poll = FsPoll::new(&lp).unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let (l2, p2) = (log.clone(), path.clone());
    poll.start(&path, INTERVAL, move |p, res| match res {
        Err(e) => {
            l2.borrow_mut().push(Err(e));
            std::fs::write(&p2, b"created").unwrap(); // the next poll sees it
        }
        Ok((prev, curr)) => {
            l2.borrow_mut().push(Ok((prev.size, curr.size, curr.is_file())));
            p.stop().unwrap();
        }
    })
    .unwrap();
    lp.run(RunMode::Default).unwrap();
    // The error comes once, not at every interval; on appearance "previous" is all zeros.
    assert_eq!(*log.borrow(), vec![Err(Error::ENOENT), Ok((0, 7, true))]);
    drop(poll);
    close_clean(lp);
}

#[test]
fn path_and_stop() {
    let dir = TempDir::new("fs-poll-path");
    let lp = Loop::new().unwrap();
    let poll = FsPoll::new(&lp).unwrap();
    assert_eq!(poll.path().unwrap_err(), Error::EINVAL);
    // Longer than path()'s first 256-byte buffer (never created: only the path is checked).
    let long = dir.path().join("x".repeat(100)).join("y".repeat(200));
    poll.start(&long, Duration::from_secs(60), |_, _| {}).unwrap();
    assert!(poll.is_active());
    assert_eq!(poll.path().unwrap(), long);
    poll.stop().unwrap();
    poll.stop().unwrap();
    assert!(!poll.is_active());
    assert_eq!(poll.path().unwrap_err(), Error::EINVAL);
    lp.run(RunMode::Default).unwrap(); // the stat already in flight completes silently
    drop(poll);
    close_clean(lp);
}

#[test]
fn nul_in_path_is_einval() {
    let lp = Loop::new().unwrap();
    let poll = FsPoll::new(&lp).unwrap();
    assert_eq!(poll.start("bad\0path", INTERVAL, |_, _| {}).unwrap_err(), Error::EINVAL);
    assert!(!poll.is_active());
    drop(poll);
    close_clean(lp);
}

#[test]
fn drop_in_own_callback_then_start_is_einval() {
    let dir = TempDir::new("fs-poll-drop");
    let path = dir.path().join("missing");
    let lp = Loop::new().unwrap();
    let slot = Rc::new(RefCell::new(None::<FsPoll>));
    let poll = FsPoll::new(&lp).unwrap();
    let (s2, n) = (slot.clone(), Rc::new(Cell::new(0)));
    let (n2, p2) = (n.clone(), path.clone());
    poll.start(&path, INTERVAL, move |p, res| {
        assert_eq!(res.unwrap_err(), Error::ENOENT);
        n2.set(n2.get() + 1);
        drop(s2.borrow_mut().take());
        assert!(p.is_closing());
        assert_eq!(p.start(&p2, INTERVAL, |_, _| {}).unwrap_err(), Error::EINVAL);
    })
    .unwrap();
    *slot.borrow_mut() = Some(poll);
    lp.run(RunMode::Default).unwrap();
    assert_eq!(n.get(), 1);
    close_clean(lp);
}
