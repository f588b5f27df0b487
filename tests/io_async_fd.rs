//! `uvio::io::AsyncFd` on every engine: readiness of socket pairs, pipes and an eventfd; cached readiness and
//! clearing it; `into_inner`; drop; many descriptors; misuse is an error.
#![cfg(unix)]

mod common;

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::Duration;

use uvio::io::{AsyncFd, Interest};
use uvio::spawn_local;
use uvio::time::{sleep, timeout};

/// Long enough for an engine to report readiness that exists; used to show that none is reported.
const QUIET: Duration = Duration::from_millis(50);
/// A bound for what must happen (generous: valgrind is slow).
const SOON: Duration = Duration::from_secs(10);

fn pair() -> (UnixStream, UnixStream) {
    UnixStream::pair().unwrap()
}

/// A pipe: (read end, write end). (`AsyncFd::new` makes the read end non-blocking.)
fn pipe() -> (File, File) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: pipe succeeded: both descriptors are open and owned by nobody else.
    unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
}

/// Reads what is there through the guard's `try_io`; `None` when it would block (readiness cleared).
async fn read_once<T: std::os::fd::AsFd>(fd: &AsyncFd<T>, buf: &mut [u8]) -> Option<usize>
where
    for<'a> &'a T: Read,
{
    let mut guard = timeout(SOON, fd.readable()).await.expect("readable in time").unwrap();
    guard.try_io(|inner| inner.get_ref().read(buf)).ok().map(|r| r.unwrap())
}

rt_test! {
    async fn readable_after_the_peer_writes_not_before() {
        let (a, mut b) = pair();
        let a = AsyncFd::new(a).unwrap();
        assert!(timeout(QUIET, a.readable()).await.is_err(), "readable before anything was written");
        b.write_all(b"hello").unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(read_once(&a, &mut buf).await, Some(5));
        assert_eq!(&buf[..5], b"hello");
        // Cached: still ready until a read says WouldBlock.
        assert_eq!(read_once(&a, &mut buf).await, None, "drained: WouldBlock clears the readiness");
        assert!(timeout(QUIET, a.readable()).await.is_err(), "cleared, and nothing new came");
        b.write_all(b"again").unwrap();
        assert_eq!(read_once(&a, &mut buf).await, Some(5));
    }
}

rt_test! {
    async fn readiness_is_cached_until_cleared() {
        let (a, mut b) = pair();
        let a = AsyncFd::with_interest(a, Interest::READABLE).unwrap();
        b.write_all(b"x").unwrap();
        let _ = timeout(SOON, a.readable()).await.unwrap().unwrap(); // the guard is dropped: readiness kept
        let mut guard = timeout(QUIET, a.readable()).await.expect("still ready").unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(guard.get_inner().read(&mut buf).unwrap(), 1);
        guard.clear_ready();
        assert!(timeout(QUIET, a.readable()).await.is_err(), "clear_ready forgot it");
    }
}

rt_test! {
    async fn try_io_would_block_clears_and_other_results_pass_through() {
        let (a, mut b) = pair();
        let a = AsyncFd::new(a).unwrap();
        b.write_all(b"abc").unwrap();
        let mut guard = timeout(SOON, a.readable()).await.unwrap().unwrap();
        let res = guard.try_io(|_| Err::<(), _>(std::io::Error::from(ErrorKind::ConnectionReset)));
        assert_eq!(res.unwrap().unwrap_err().kind(), ErrorKind::ConnectionReset, "not WouldBlock: passed on");
        let mut buf = [0u8; 8];
        assert_eq!(guard.try_io(|inner| inner.get_ref().read(&mut buf)).unwrap().unwrap(), 3);
        let err = guard.try_io(|inner| inner.get_ref().read(&mut buf)).unwrap_err();
        assert_eq!(err.to_string(), "the operation would block");
        assert!(timeout(QUIET, a.readable()).await.is_err());
    }
}

rt_test! {
    async fn writable_at_once_then_again_after_a_full_buffer_drains() {
        let (a, mut b) = pair();
        let a = AsyncFd::new(a).unwrap();
        let chunk = vec![7u8; 64 * 1024];
        let mut written = 0;
        loop {
            let mut guard = timeout(SOON, a.writable()).await.expect("writable").unwrap();
            match guard.try_io(|inner| inner.get_ref().write(&chunk)) {
                Ok(n) => written += n.unwrap(),
                Err(_) => break, // full: readiness cleared
            }
        }
        assert!(written > 0);
        assert!(timeout(QUIET, a.writable()).await.is_err(), "full: not writable");
        b.set_nonblocking(true).unwrap();
        let mut sink = vec![0u8; 64 * 1024];
        let mut drained = 0;
        while drained < written {
            match b.read(&mut sink) {
                Ok(n) => drained += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => sleep(Duration::from_millis(1)).await,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(drained, written);
        let mut guard = timeout(SOON, a.writable()).await.expect("writable again once drained").unwrap();
        assert_eq!(guard.try_io(|inner| inner.get_ref().write(b"more")).unwrap().unwrap(), 4);
    }
}

rt_test! {
    #[cfg(target_os = "linux")]
    async fn eventfd_counter() {
        // SAFETY: plain syscall; the result is checked.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        assert!(raw >= 0);
        // SAFETY: eventfd succeeded: the descriptor is open and owned by nobody else.
        let efd = unsafe { File::from_raw_fd(raw) };
        let mut writer = efd.try_clone().unwrap();
        let efd = AsyncFd::with_interest(efd, Interest::READABLE).unwrap();
        let task = spawn_local(async move {
            sleep(Duration::from_millis(10)).await;
            writer.write_all(&5u64.to_ne_bytes()).unwrap();
            writer.write_all(&2u64.to_ne_bytes()).unwrap();
            writer
        });
        let mut buf = [0u8; 8];
        assert_eq!(read_once(&efd, &mut buf).await, Some(8));
        assert_eq!(u64::from_ne_bytes(buf), 7, "the counter sums the writes");
        assert_eq!(read_once(&efd, &mut buf).await, None, "read resets it: EAGAIN");
        let mut writer = task.await.unwrap();
        writer.write_all(&1u64.to_ne_bytes()).unwrap();
        assert_eq!(read_once(&efd, &mut buf).await, Some(8));
        assert_eq!(u64::from_ne_bytes(buf), 1);
    }
}

rt_test! {
    async fn into_inner_gives_the_descriptor_back_usable() {
        let (a, mut b) = pair();
        let a = AsyncFd::new(a).unwrap();
        b.write_all(b"1").unwrap();
        let _ = timeout(SOON, a.readable()).await.unwrap().unwrap();
        let mut a = a.into_inner();
        let mut buf = [0u8; 4];
        assert_eq!(a.read(&mut buf).unwrap(), 1);
        assert_eq!(a.read(&mut buf).unwrap_err().kind(), ErrorKind::WouldBlock, "left non-blocking");
        // Watched again, from scratch.
        let a = AsyncFd::new(a).unwrap();
        assert!(timeout(QUIET, a.readable()).await.is_err());
        b.write_all(b"2").unwrap();
        assert_eq!(read_once(&a, &mut buf).await, Some(1));
    }
}

rt_test! {
    async fn drop_while_waited_then_close_leaves_the_runtime_healthy() {
        for _ in 0..3 {
            let (a, b) = pair();
            let a = Rc::new(AsyncFd::new(a).unwrap());
            let a2 = a.clone();
            // A task waits (the engine is armed for it), then is cancelled; the AsyncFd and the socket go.
            let waiter = spawn_local(async move { a2.readable().await.map(drop) });
            sleep(Duration::from_millis(5)).await;
            waiter.abort();
            let _ = waiter.await;
            drop(a); // stops watching, then closes the socket
            drop(b);
            // Another descriptor (maybe the same numbers) and a timer still work.
            let (c, mut d) = pair();
            let c = AsyncFd::new(c).unwrap();
            let timer = spawn_local(sleep(Duration::from_millis(2)));
            d.write_all(b"z").unwrap();
            let mut buf = [0u8; 2];
            assert_eq!(read_once(&c, &mut buf).await, Some(1));
            timeout(SOON, timer).await.unwrap().unwrap();
        }
    }
}

rt_test! {
    async fn get_mut_replacing_the_descriptor_does_not_crash() {
        let (a, _b) = pair();
        let mut a = AsyncFd::new(a).unwrap();
        assert!(timeout(QUIET, a.readable()).await.is_err()); // armed once
        let (c, mut d) = pair();
        *a.get_mut() = c; // a logic error: readiness follows the old socket, which the engine keeps open
        d.write_all(b"q").unwrap();
        assert!(timeout(QUIET, a.readable()).await.is_err());
        drop(a);
        sleep(Duration::from_millis(2)).await;
    }
}

rt_test! {
    async fn a_hundred_pipes_all_wake() {
        const N: usize = 100;
        let mut writers = Vec::new();
        let mut tasks = Vec::new();
        for i in 0..N {
            let (r, w) = pipe();
            writers.push(w);
            let r = AsyncFd::with_interest(r, Interest::READABLE).unwrap();
            tasks.push(spawn_local(async move {
                let mut buf = [0u8; 8];
                let n = read_once(&r, &mut buf).await.expect("data");
                assert_eq!(&buf[..n], format!("{i}").as_bytes());
            }));
        }
        sleep(Duration::from_millis(5)).await; // every task waits
        for (i, w) in writers.iter_mut().enumerate().rev() {
            w.write_all(format!("{i}").as_bytes()).unwrap();
        }
        for t in tasks {
            timeout(SOON, t).await.expect("woken").unwrap();
        }
    }
}

rt_test! {
    async fn several_tasks_waiting_on_one_fd_all_wake() {
        let (a, mut b) = pair();
        let a = Rc::new(AsyncFd::new(a).unwrap());
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let a = a.clone();
                spawn_local(async move { a.readable().await.map(drop) })
            })
            .collect();
        sleep(Duration::from_millis(5)).await;
        b.write_all(b"!").unwrap();
        for t in tasks {
            timeout(SOON, t).await.unwrap().unwrap().unwrap();
        }
    }
}

rt_test! {
    async fn misuse_is_an_error() {
        let (a, _b) = pair();
        let a = AsyncFd::with_interest(a, Interest::READABLE).unwrap();
        assert_eq!(a.interest(), Interest::READABLE);
        assert_eq!(a.writable().await.unwrap_err().kind(), ErrorKind::InvalidInput);
        #[cfg(target_os = "linux")]
        {
            let dir = common::TempDir::new("asyncfd");
            let file = File::create(dir.path().join("f")).unwrap();
            let err = AsyncFd::new(file).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EPERM), "epoll refuses regular files: {err}");
        }
    }
}
