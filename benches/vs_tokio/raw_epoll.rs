//! The ceiling row of the echo table: an echo server with no runtime at all (Linux), one thread, one epoll set,
//! hand-written against the syscalls.
//!
//! It does per round trip only what any readiness-based server must do: one `epoll_wait` shared by every
//! connection that became readable together, one `read`, one `write`. No tasks, no wakers, no timers, no buffer
//! management. What it reaches is what this machine's kernel allows a one-thread server; a runtime can only get
//! close to it, so a goal above it cannot be shown here, whatever the runtime.
//!
//! Level-triggered, so a connection with more data than one read takes is simply reported again. A write that does
//! not take everything (never seen with these sizes, but possible) parks the rest and waits for `EPOLLOUT`, so
//! the echo stays byte-exact.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};

/// The listener's key in the epoll set (connections use their fd, which is never this).
const LISTENER: u64 = u64::MAX;

struct Conn {
    stream: TcpStream,
    /// Bytes read but not yet written back (only after a short write).
    unsent: Vec<u8>,
}

/// The `child-echo-raw` mode: serves forever, printing the address on its first line as the other servers do.
pub(crate) fn child_echo_raw() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    println!("echo_server listening on {} (raw epoll, no runtime)", listener.local_addr().unwrap());
    io::stdout().flush().unwrap();
    // SAFETY: plain syscall; the result is checked.
    let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    assert!(epfd >= 0, "epoll_create1: {}", io::Error::last_os_error());
    watch(epfd, libc::EPOLL_CTL_ADD, listener.as_raw_fd(), LISTENER, libc::EPOLLIN);
    let mut conns: HashMap<RawFd, Conn> = HashMap::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    loop {
        // SAFETY: `events` has room for `events.len()` entries, which the kernel fills.
        let n = unsafe { libc::epoll_wait(epfd, events.as_mut_ptr(), events.len() as i32, -1) };
        if n < 0 {
            assert_eq!(io::Error::last_os_error().kind(), io::ErrorKind::Interrupted);
            continue;
        }
        for ev in &events[..n as usize] {
            let (key, flags) = (ev.u64, ev.events);
            if key == LISTENER {
                while let Ok((stream, _)) = listener.accept() {
                    stream.set_nonblocking(true).unwrap();
                    stream.set_nodelay(true).unwrap();
                    let fd = stream.as_raw_fd();
                    watch(epfd, libc::EPOLL_CTL_ADD, fd, fd as u64, libc::EPOLLIN);
                    conns.insert(fd, Conn { stream, unsent: Vec::new() });
                }
                continue;
            }
            let fd = key as RawFd;
            let Some(conn) = conns.get_mut(&fd) else { continue };
            let keep = if flags & libc::EPOLLOUT as u32 != 0 { conn.flush(epfd) } else { conn.echo(epfd, &mut buf) };
            if !keep {
                conns.remove(&fd); // closing the stream also takes it out of the epoll set
            }
        }
    }
}

impl Conn {
    /// Reads once and writes the bytes back; `false` when the connection is over.
    fn echo(&mut self, epfd: RawFd, buf: &mut [u8]) -> bool {
        use std::io::Read;
        match (&self.stream).read(buf) {
            Ok(0) => false,
            Ok(n) => self.send(epfd, &buf[..n]),
            Err(e) => e.kind() == io::ErrorKind::WouldBlock,
        }
    }

    /// Writes `bytes`, parking what the socket does not take and waiting for room.
    fn send(&mut self, epfd: RawFd, bytes: &[u8]) -> bool {
        let written = match (&self.stream).write(bytes) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(_) => return false,
        };
        if written < bytes.len() {
            self.unsent.extend_from_slice(&bytes[written..]);
            let fd = self.stream.as_raw_fd();
            watch(epfd, libc::EPOLL_CTL_MOD, fd, fd as u64, libc::EPOLLOUT);
        }
        true
    }

    /// Writes parked bytes; once they are all out, goes back to waiting for reads.
    fn flush(&mut self, epfd: RawFd) -> bool {
        let rest = std::mem::take(&mut self.unsent);
        let fd = self.stream.as_raw_fd();
        watch(epfd, libc::EPOLL_CTL_MOD, fd, fd as u64, libc::EPOLLIN);
        self.send(epfd, &rest)
    }
}

/// Adds `fd` to the epoll set or changes what it waits for.
fn watch(epfd: RawFd, op: i32, fd: RawFd, key: u64, interest: i32) {
    let mut ev = libc::epoll_event { events: interest as u32, u64: key };
    // SAFETY: both descriptors are open; `ev` lives across the call.
    let ret = unsafe { libc::epoll_ctl(epfd, op, fd, &mut ev) };
    assert_eq!(ret, 0, "epoll_ctl: {}", io::Error::last_os_error());
}
