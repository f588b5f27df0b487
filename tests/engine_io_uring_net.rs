//! What only the io_uring engine's sockets have (Linux): the provided-buffer ring running dry, operations still
//! on the ring when the runtime closes, a tiny ring and SQPOLL under many connections, and the fallback to the
//! epoll engine's code (the hidden `Builder::simulate_ring_failure("NO_NET")`). What every engine must do
//! (echo, cancellation, resets, queued connections) runs on the ring too, in `net_*` (`rt_test!`).
//!
//! Every runtime asks for `Backend::IoUring` explicitly. `UVIO_BACKEND` is process-wide, so every test holds
//! `ENV` while it runs, with that variable (which would override the explicit engine) cleared.
#![cfg(target_os = "linux")]
mod common;

use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use uvio::net::{TcpListener, TcpStream, UnixStream};
use uvio::time::{sleep, timeout};
use uvio::{spawn_local, Backend, Builder};

use common::ring::{env_lock, pattern, ring_runtime, run};
use common::{read_all, spawn_echo};

/// Whether the descriptor is in non-blocking mode: the epoll engine's sockets are, the ring's are not.
fn nonblocking(fd: i32) -> bool {
    // SAFETY: F_GETFL on a descriptor number only reads its flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    assert!(flags >= 0, "fcntl: {}", std::io::Error::last_os_error());
    flags & libc::O_NONBLOCK != 0
}

/// Raises the soft descriptor limit towards `n` (up to the hard limit); returns the limit now in force.
fn raise_fd_limit(n: u64) -> u64 {
    // SAFETY: getrlimit/setrlimit with a valid struct pointer; changing our own soft limit is harmless.
    unsafe {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < n {
            lim.rlim_cur = n.min(lim.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur
    }
}

#[test]
fn empty_buffer_ring_falls_back_without_errors() {
    // Each server connection reads 1 byte of 3: the rest stays in the ring buffer its recv picked. With more
    // connections than the ring has buffers (512), later recvs find the ring empty (ENOBUFS) and must fall
    // back to their own buffer, then every remaining byte must still arrive in order.
    let limit = raise_fd_limit(4096);
    let n = 600usize.min((limit.saturating_sub(200) / 2) as usize);
    run(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut clients = Vec::new();
        let mut servers = Vec::new();
        for i in 0..n {
            let mut c = TcpStream::connect(addr).await.unwrap();
            let (s, _) = listener.accept().await.unwrap();
            c.write_all(&[i as u8, (i >> 8) as u8, 0xAB]).await.unwrap();
            clients.push(c);
            servers.push(s);
        }
        for (i, s) in servers.iter_mut().enumerate() {
            let mut first = [0u8; 1];
            s.read_exact(&mut first).await.unwrap();
            assert_eq!(first[0], i as u8);
        }
        for (i, s) in servers.iter_mut().enumerate() {
            let mut rest = [0u8; 2];
            s.read_exact(&mut rest).await.unwrap();
            assert_eq!(rest, [(i >> 8) as u8, 0xAB]);
        }
        // The ring has its buffers back: a second round works the same.
        for (i, c) in clients.iter_mut().enumerate() {
            c.write_all(&[i as u8; 2]).await.unwrap();
        }
        for (i, s) in servers.iter_mut().enumerate() {
            let mut two = [0u8; 2];
            s.read_exact(&mut two).await.unwrap();
            assert_eq!(two, [i as u8; 2]);
        }
    });
}

#[test]
fn runtime_closes_with_socket_operations_in_flight() {
    // A recv on an idle connection, a multishot accept, a send to a peer that reads nothing and a connect
    // that never completes: all still in flight when the runtime closes.
    let _env = env_lock();
    let Some(rt) = ring_runtime() else { return };
    rt.block_on(async {
        let listener = Rc::new(TcpListener::bind("127.0.0.1:0").await.unwrap());
        let addr = listener.local_addr().unwrap();
        let mut c = TcpStream::connect(addr).await.unwrap();
        let (s, _) = listener.accept().await.unwrap();
        let l = listener.clone();
        spawn_local(async move {
            let _ = l.accept().await; // waits forever
        });
        spawn_local(async move {
            let mut s = s;
            let _ = s.read(&mut [0u8; 16]).await; // waits forever
        });
        let big = pattern(8 << 20);
        // Fill the socket buffers and the queue; the peer never reads.
        let _ = timeout(Duration::from_millis(50), c.write_all(&big)).await;
        spawn_local(async move {
            let _ = c.write_all(&big).await;
        });
        sleep(Duration::from_millis(5)).await;
    });
    rt.close().expect("runtime closes cleanly with socket operations in flight");
}

#[test]
fn no_net_simulation_falls_back_to_the_epoll_code() {
    let _env = env_lock();
    // First, the ring: a socket taken over from std is made blocking (the ring polls it itself).
    let Some(rt) = ring_runtime() else { return };
    rt.block_on(async {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let fd = std_listener.as_raw_fd();
        let listener = TcpListener::from_std(std_listener).unwrap();
        assert!(!nonblocking(fd), "a listener under io_uring runs on the ring");
        let addr = listener.local_addr().unwrap();
        let std_client = std::net::TcpStream::connect(addr).unwrap();
        std_client.set_nonblocking(true).unwrap();
        let fd = std_client.as_raw_fd();
        let mut c = TcpStream::from_std(std_client).unwrap();
        assert!(!nonblocking(fd), "a stream under io_uring runs on the ring");
        let (mut s, _) = listener.accept().await.unwrap();
        c.write_all(b"ring").await.unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ring");
    });
    rt.close().unwrap();

    // Then NO_NET: the ring is there for files, sockets run on the epoll engine's (non-blocking) code.
    let rt = Builder::new().backend(Backend::IoUring).simulate_ring_failure("NO_NET").build();
    let rt = rt.expect("NO_NET only disables ring networking");
    assert_eq!(rt.backend(), Backend::IoUring);
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let std_client = std::net::TcpStream::connect(addr).unwrap();
        let fd = std_client.as_raw_fd();
        let mut c = TcpStream::from_std(std_client).unwrap();
        assert!(nonblocking(fd), "without ring networking, streams use the epoll code");
        let (mut s, _) = listener.accept().await.unwrap();
        let data = pattern(1 << 20);
        let sent = data.clone();
        let writer = spawn_local(async move {
            c.write_all(&sent).await.unwrap();
            c.close().await.unwrap();
        });
        assert_eq!(read_all(&mut s).await, data);
        writer.await.unwrap();
        // Connect and Unix sockets too.
        spawn_echo(listener);
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"fallback").await.unwrap();
        let mut buf = [0u8; 8];
        c.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"fallback");
        let (mut a, mut b) = UnixStream::pair().unwrap();
        a.write_all(b"unix").await.unwrap();
        let mut buf = [0u8; 4];
        b.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"unix");
    });
    rt.close().expect("runtime closes cleanly");
}

#[test]
fn tiny_ring_and_sqpoll_carry_many_connections() {
    use uvio::linux::BuilderExt;
    let _env = env_lock();
    // A 4-entry ring (entries backlog when it is full), then the same with SQPOLL where the kernel allows it.
    for sqpoll in [None, Some(Duration::from_millis(1))] {
        let built = Builder::new().backend(Backend::IoUring).io_uring_entries(4).io_uring_sqpoll(sqpoll).build();
        let rt = match built {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("note: skipping ring {sqpoll:?}: {e}");
                continue;
            }
        };
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            spawn_echo(listener);
            let tasks: Vec<_> = (0..64u32)
                .map(|i| {
                    spawn_local(async move {
                        let mut c = TcpStream::connect(addr).await.unwrap();
                        let msg = pattern(5000 + i as usize);
                        c.write_all(&msg).await.unwrap();
                        let mut back = vec![0u8; msg.len()];
                        c.read_exact(&mut back).await.unwrap();
                        assert_eq!(back, msg);
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        });
        rt.close().expect("runtime closes cleanly");
    }
}
