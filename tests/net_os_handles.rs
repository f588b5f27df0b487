//! The async socket types lend their OS descriptor (`AsFd`/`AsRawFd`), on every engine: options set through it
//! with `socket2` take effect on the very socket uvio uses, and the descriptor stays the same while it lives.
#![cfg(unix)]

mod common;

use std::os::fd::{AsFd, AsRawFd};

use futures::{AsyncReadExt, AsyncWriteExt};
use socket2::SockRef;
use uvio::net::{TcpListener, TcpStream, UdpSocket, UnixListener, UnixStream};

rt_test! {
    async fn options_set_through_the_descriptor_reach_the_socket() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        assert_eq!(SockRef::from(&listener.as_fd()).local_addr().unwrap().as_socket(), Some(addr));
        let mut client = TcpStream::connect(addr).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let fd = client.as_raw_fd();
        assert_eq!(client.as_fd().as_raw_fd(), fd);
        SockRef::from(&client.as_fd()).set_nodelay(true).unwrap();
        assert!(SockRef::from(&client).nodelay().unwrap());
        SockRef::from(&client).set_keepalive(true).unwrap();
        assert!(SockRef::from(&client.as_fd()).keepalive().unwrap());
        // The socket still works, through the same descriptor.
        client.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        server.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        assert_eq!(client.as_raw_fd(), fd);
        assert_eq!(SockRef::from(&server).peer_addr().unwrap().as_socket(), Some(client.local_addr().unwrap()));

        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        assert_eq!(SockRef::from(&udp).local_addr().unwrap().as_socket(), Some(udp.local_addr().unwrap()));
        SockRef::from(&udp).set_broadcast(true).unwrap();
        assert!(SockRef::from(&udp.as_fd()).broadcast().unwrap());

        let tmp = common::TempDir::new("os-handles");
        let path = tmp.path().join("s");
        let unix = UnixListener::bind(&path).unwrap();
        let client = UnixStream::connect(&path).await.unwrap();
        let (server, _) = unix.accept().await.unwrap();
        for fd in [unix.as_fd(), client.as_fd(), server.as_fd()] {
            assert_eq!(SockRef::from(&fd).r#type().unwrap(), socket2::Type::STREAM);
        }
        assert_eq!(SockRef::from(&server).local_addr().unwrap().as_pathname(), Some(path.as_path()));
    }
}

/// The backlog a listening TCP socket has (`TCP_INFO`'s `tcpi_sacked` while listening).
#[cfg(target_os = "linux")]
fn backlog(fd: &impl AsFd) -> u32 {
    // SAFETY: plain integers, all-zero is valid; getsockopt writes at most `len` bytes into it.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: an open descriptor and a valid out-pointer with its length.
    let ret = unsafe {
        libc::getsockopt(fd.as_fd().as_raw_fd(), libc::SOL_TCP, libc::TCP_INFO, (&raw mut info).cast(), &mut len)
    };
    assert_eq!(ret, 0, "TCP_INFO");
    info.tcpi_sacked
}

#[cfg(target_os = "linux")]
rt_test! {
    async fn from_std_keeps_the_backlog_the_listener_was_given() {
        let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        sock.bind(&"127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap().into()).unwrap();
        sock.listen(8).unwrap();
        let listener = TcpListener::from_std(sock.into()).unwrap();
        assert_eq!(backlog(&listener), 8, "the backlog asked for, not uvio's default");
        let fresh = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn").unwrap().trim().parse().unwrap();
        assert_eq!(backlog(&fresh), 1024.min(somaxconn), "uvio's default, capped by the kernel");
    }
}
