//! Making a socket or opening a file with a full descriptor table (EMFILE), on every engine in turn: `connect`,
//! `bind` and `File::open` report the error (never a panic, never a hang), and work again once descriptors are
//! free. Its own test binary, one test running the engines one after the other: it lowers the process-wide
//! RLIMIT_NOFILE.
#![cfg(unix)]
mod common;

use common::{fill_descriptor_table, highest_open_fd, LimitGuard};
use futures::{AsyncReadExt, AsyncWriteExt};
use uvio::net::{TcpListener, TcpStream, UdpSocket, UnixStream};

#[test]
fn creating_sockets_and_files_out_of_descriptors_is_an_error_then_works_again() {
    for engine in common::rt::engines() {
        out_of_descriptors_on(engine);
    }
}

fn is_emfile(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(libc::EMFILE)
}

fn out_of_descriptors_on(engine: &str) {
    let rt = common::rt::runtime(engine);
    let engine = rt.backend().name();
    let tmp = common::TempDir::new("emfile-create");
    let file = tmp.path().join("f");
    std::fs::write(&file, b"data").unwrap();
    let sock_path = tmp.path().join("s");
    let std_unix = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limit = LimitGuard::lower_to(highest_open_fd() as u64 + 1 + 16);
        let fillers = fill_descriptor_table();

        let err = TcpStream::connect(addr).await.expect_err("connect with no descriptor left");
        assert!(is_emfile(&err), "[{engine}] connect: {err:?}");
        let err = UnixStream::connect(&sock_path).await.expect_err("unix connect with no descriptor left");
        assert!(is_emfile(&err), "[{engine}] unix connect: {err:?}");
        let err = TcpListener::bind("127.0.0.1:0").await.expect_err("bind with no descriptor left");
        assert!(is_emfile(&err), "[{engine}] bind: {err:?}");
        let err = UdpSocket::bind("127.0.0.1:0").await.expect_err("udp bind with no descriptor left");
        assert!(is_emfile(&err), "[{engine}] udp bind: {err:?}");
        let err = uvio::fs::File::open(&file).await.expect_err("open with no descriptor left");
        assert!(is_emfile(&err), "[{engine}] open: {err:?}");
        let err = uvio::fs::read(&file).await.expect_err("fs::read with no descriptor left");
        assert!(is_emfile(&err), "[{engine}] fs::read: {err:?}");

        // Descriptors free again: everything works, and the failed attempts left nothing behind.
        drop(fillers);
        drop(limit);
        let mut client = TcpStream::connect(addr).await.unwrap();
        let (mut conn, _) = listener.accept().await.unwrap();
        client.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        conn.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping", "[{engine}]");
        drop(UnixStream::connect(&sock_path).await.unwrap());
        assert_eq!(uvio::fs::read(&file).await.unwrap(), b"data", "[{engine}]");
    });
    drop(std_unix);
    rt.close().expect("runtime closes cleanly");
}
