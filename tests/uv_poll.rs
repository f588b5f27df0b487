//! Poll tests: readiness of a socketpair end, stop, disconnect, misuse. Unix only (socketpairs and raw fds).
#![cfg(unix)]
mod common;

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;

use common::close_clean;
// `Poll::borrowed` wherever it fits; `unsafe { Poll::new(..) }` for an fd never opened, and for a watcher its own
// 'static callback drops (a borrow cannot go there).
use uvio::uv::{Handle, Loop, Poll, PollEvents, RunMode};
use uvio::Error;

#[test]
fn readable_after_peer_writes() {
    let (a, mut b) = UnixStream::pair().unwrap();
    let a = Rc::new(a);
    let lp = Loop::new().unwrap();
    let poll = Poll::borrowed(&lp, a.as_fd()).unwrap();
    b.write_all(b"hello").unwrap();
    let got = Rc::new(RefCell::new(Vec::new()));
    let (g2, a2) = (got.clone(), a.clone());
    poll.start(PollEvents::READABLE, move |p, events| {
        assert_eq!(events.unwrap(), PollEvents::READABLE);
        let mut buf = [0u8; 64];
        let n = (&*a2).read(&mut buf).unwrap(); // non-blocking now: Poll::new set O_NONBLOCK
        g2.borrow_mut().extend_from_slice(&buf[..n]);
        p.stop().unwrap();
    })
    .unwrap();
    lp.run(RunMode::Default).unwrap();
    assert_eq!(*got.borrow(), b"hello");
    drop(poll);
    close_clean(lp);
}

#[test]
fn writable_at_once_and_level_triggered() {
    let (a, _b) = UnixStream::pair().unwrap();
    let lp = Loop::new().unwrap();
    let poll = Poll::borrowed(&lp, a.as_fd()).unwrap();
    let n = Rc::new(Cell::new(0));
    let n2 = n.clone();
    poll.start(PollEvents::WRITABLE | PollEvents::READABLE, move |p, events| {
        // Nothing to read, always room to write: only WRITABLE, and again at every iteration until stopped.
        assert_eq!(events.unwrap(), PollEvents::WRITABLE);
        n2.set(n2.get() + 1);
        if n2.get() == 3 {
            p.stop().unwrap();
        }
    })
    .unwrap();
    lp.run(RunMode::Default).unwrap();
    assert_eq!(n.get(), 3);
    drop(poll);
    close_clean(lp);
}

#[test]
fn stopped_poll_is_not_called() {
    let (a, mut b) = UnixStream::pair().unwrap();
    let lp = Loop::new().unwrap();
    let poll = Poll::borrowed(&lp, a.as_fd()).unwrap();
    poll.start(PollEvents::READABLE, |_, _| panic!("stopped poll was called")).unwrap();
    assert!(poll.is_active());
    b.write_all(b"x").unwrap();
    poll.stop().unwrap();
    assert!(!poll.is_active());
    assert!(!lp.run(RunMode::Default).unwrap()); // nothing active: returns at once
                                                 // Empty events also stop.
    poll.start(PollEvents::EMPTY, |_, _| panic!("empty poll was called")).unwrap();
    assert!(!poll.is_active());
    lp.run(RunMode::Default).unwrap();
    drop(poll);
    close_clean(lp);
}

#[test]
fn disconnect_when_peer_closes() {
    let (a, b) = UnixStream::pair().unwrap();
    let lp = Loop::new().unwrap();
    let poll = Poll::borrowed(&lp, a.as_fd()).unwrap();
    let seen = Rc::new(Cell::new(PollEvents::EMPTY));
    let s2 = seen.clone();
    poll.start(PollEvents::READABLE | PollEvents::DISCONNECT, move |p, events| {
        s2.set(events.unwrap());
        p.stop().unwrap();
    })
    .unwrap();
    drop(b);
    lp.run(RunMode::Default).unwrap();
    // The closed peer makes the fd readable (a read returns 0); DISCONNECT is an optional hint, which Linux
    // (EPOLLRDHUP) and macOS give.
    assert!(seen.get().contains(PollEvents::READABLE), "{:?}", seen.get());
    #[cfg(any(target_os = "linux", target_os = "macos"))]
    assert!(seen.get().contains(PollEvents::DISCONNECT), "{:?}", seen.get());
    drop(poll);
    close_clean(lp);
}

#[test]
fn drop_in_own_callback_then_start_is_einval() {
    let (a, mut b) = UnixStream::pair().unwrap();
    let lp = Loop::new().unwrap();
    let slot = Rc::new(RefCell::new(None::<Poll>));
    // SAFETY: `a` is dropped last, after the poll (closed by its own callback) and the loop.
    let poll = unsafe { Poll::new(&lp, std::os::fd::AsRawFd::as_raw_fd(&a)) }.unwrap();
    let (s2, n) = (slot.clone(), Rc::new(Cell::new(0)));
    let n2 = n.clone();
    poll.start(PollEvents::READABLE, move |p, _| {
        n2.set(n2.get() + 1);
        drop(s2.borrow_mut().take()); // unread data would make it fire again if it were not closed
        assert!(p.is_closing());
        assert_eq!(p.start(PollEvents::READABLE, |_, _| {}).unwrap_err(), Error::EINVAL);
    })
    .unwrap();
    *slot.borrow_mut() = Some(poll);
    b.write_all(b"x").unwrap();
    lp.run(RunMode::Default).unwrap();
    assert_eq!(n.get(), 1);
    close_clean(lp);
    drop(a); // the fd closes only after the poll handle is gone
}

#[test]
fn restart_changes_events_and_callback() {
    let (a, mut b) = UnixStream::pair().unwrap();
    let lp = Loop::new().unwrap();
    let poll = Poll::borrowed(&lp, a.as_fd()).unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l2 = log.clone();
    poll.start(PollEvents::WRITABLE, move |p, events| {
        l2.borrow_mut().push(events.unwrap());
        let l3 = l2.clone();
        p.start(PollEvents::READABLE, move |p, events| {
            l3.borrow_mut().push(events.unwrap());
            p.stop().unwrap();
        })
        .unwrap();
    })
    .unwrap();
    b.write_all(b"x").unwrap();
    lp.run(RunMode::Default).unwrap();
    assert_eq!(*log.borrow(), vec![PollEvents::WRITABLE, PollEvents::READABLE]);
    drop(poll);
    close_clean(lp);
}

#[test]
fn restart_keeps_callback_and_changes_interest() {
    let (a, mut b) = UnixStream::pair().unwrap();
    let lp = Loop::new().unwrap();
    let poll = Poll::borrowed(&lp, a.as_fd()).unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l2 = log.clone();
    poll.start(PollEvents::WRITABLE, move |p, events| {
        let events = events.unwrap();
        l2.borrow_mut().push(events);
        if events == PollEvents::WRITABLE {
            p.restart(PollEvents::READABLE).unwrap(); // same callback, new interest
        } else {
            p.stop().unwrap();
        }
    })
    .unwrap();
    lp.run(RunMode::Once).unwrap();
    assert_eq!(*log.borrow(), vec![PollEvents::WRITABLE]);
    b.write_all(b"x").unwrap();
    lp.run(RunMode::Default).unwrap();
    assert_eq!(*log.borrow(), vec![PollEvents::WRITABLE, PollEvents::READABLE]);
    // stop() kept the callback: restart() brings it back.
    poll.restart(PollEvents::READABLE).unwrap();
    lp.run(RunMode::Default).unwrap();
    assert_eq!(log.borrow().len(), 3);
    drop(poll);
    close_clean(lp);
}

#[test]
fn bad_fds_are_errors() {
    let lp = Loop::new().unwrap();
    assert_eq!(unsafe { Poll::new(&lp, -1) }.unwrap_err(), Error::EBADF);
    let (a, _b) = UnixStream::pair().unwrap();
    let first = Poll::borrowed(&lp, a.as_fd()).unwrap();
    first.start(PollEvents::READABLE, |_, _| {}).unwrap();
    // One watcher per fd and loop.
    assert_eq!(Poll::borrowed(&lp, a.as_fd()).unwrap_err(), Error::EEXIST);
    #[cfg(target_os = "linux")]
    {
        // epoll refuses regular files.
        let dir = common::TempDir::new("poll");
        let file = std::fs::File::create(dir.path().join("f")).unwrap();
        assert_eq!(Poll::borrowed(&lp, file.as_fd()).unwrap_err(), Error::EPERM);
    }
    drop(first);
    close_clean(lp);
}

#[test]
fn fd_closed_by_its_owner_after_the_watcher_is_dropped() {
    let lp = Loop::new().unwrap();
    for round in 0..3 {
        let (a, mut b) = UnixStream::pair().unwrap();
        let poll = Poll::borrowed(&lp, a.as_fd()).unwrap();
        let seen = Rc::new(Cell::new(false));
        let s2 = seen.clone();
        poll.start(PollEvents::READABLE, move |p, events| {
            assert!(events.unwrap().contains(PollEvents::READABLE));
            s2.set(true);
            p.stop().unwrap();
        })
        .unwrap();
        b.write_all(b"x").unwrap();
        lp.run(RunMode::Default).unwrap();
        assert!(seen.get(), "round {round}");
        // Still started when dropped on odd rounds: the drop takes the fd out of libuv's epoll set at once.
        if round % 2 == 1 {
            poll.restart(PollEvents::READABLE | PollEvents::WRITABLE).unwrap();
        }
        drop(poll);
        drop(a); // the owner closes the fd; libuv never touches it again
        drop(b);
        // The loop keeps running: a fresh fd (likely the same number) is watched, and a timer fires.
        let (c, mut d) = UnixStream::pair().unwrap();
        let poll = Poll::borrowed(&lp, c.as_fd()).unwrap();
        poll.start(PollEvents::READABLE, |p, _| p.stop().unwrap()).unwrap();
        d.write_all(b"y").unwrap();
        let timer = uvio::uv::Timer::new(&lp).unwrap();
        let fired = Rc::new(Cell::new(false));
        let f2 = fired.clone();
        timer.start(std::time::Duration::from_millis(1), None, move |_| f2.set(true)).unwrap();
        lp.run(RunMode::Default).unwrap();
        assert!(fired.get());
        drop((poll, timer));
    }
    close_clean(lp);
}

#[test]
fn events_combine_and_print() {
    let rw = PollEvents::READABLE | PollEvents::WRITABLE;
    assert!(rw.contains(PollEvents::READABLE) && rw.contains(PollEvents::WRITABLE));
    assert!(!rw.contains(PollEvents::DISCONNECT));
    assert_eq!(rw & PollEvents::WRITABLE, PollEvents::WRITABLE);
    assert!(PollEvents::EMPTY.is_empty() && !rw.is_empty());
    let mut all = rw;
    all |= PollEvents::DISCONNECT | PollEvents::PRIORITIZED;
    assert_eq!(all.bits(), 15);
    assert_eq!(format!("{rw:?}"), "PollEvents(READABLE | WRITABLE)");
    assert_eq!(format!("{:?}", PollEvents::EMPTY), "PollEvents(EMPTY)");
}
