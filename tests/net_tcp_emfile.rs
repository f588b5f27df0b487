//! An async `TcpListener` that runs out of file descriptors (EMFILE), on every engine in turn. `accept` reports
//! the error (never a panic), other tasks keep running, and the listener serves again once descriptors are free.
//! Its own test binary, one test running the engines one after the other: it lowers the process-wide
//! RLIMIT_NOFILE.
#![cfg(unix)]
mod common;

use std::cell::RefCell;
use std::io::{ErrorKind, Read, Write};
use std::rc::Rc;
use std::time::Duration;

use common::{fill_descriptor_table, highest_open_fd, LimitGuard};
use futures::{AsyncReadExt, AsyncWriteExt};
use uvio::net::TcpListener;
use uvio::spawn_local;
use uvio::time::sleep;

/// Sends `msg` on a blocking std client, shuts its write side and reads until EOF: what came back (nothing
/// if the server closed or reset the connection first).
fn round_trip(client: &mut std::net::TcpStream, msg: &[u8]) -> Vec<u8> {
    let mut back = Vec::new();
    if client.write_all(msg).and_then(|()| client.shutdown(std::net::Shutdown::Write)).is_err() {
        return back; // reset before we could send
    }
    match client.read_to_end(&mut back) {
        Ok(_) => back,
        Err(e) if e.kind() == ErrorKind::ConnectionReset => back,
        Err(e) => panic!("read failed: {e}"),
    }
}

#[test]
fn accept_out_of_descriptors_is_an_error_then_the_listener_recovers() {
    for engine in common::rt::engines() {
        accept_out_of_descriptors_on(engine);
    }
}

fn accept_out_of_descriptors_on(engine: &str) {
    let rt = common::rt::runtime(engine);
    let engine = rt.backend().name();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limit = LimitGuard::lower_to(highest_open_fd() as u64 + 1 + 16);
        // A client whose connection waits in the listen backlog, then a full descriptor table.
        let mut victim = std::net::TcpStream::connect(addr).unwrap();
        let fillers = fill_descriptor_table();
        // Now an echo server starts accepting (io_uring's multishot accept takes the descriptor limit in force
        // when it is submitted, so it must start after the limit is lowered). It records what `accept` returned
        // and backs off after an error, as a real server should (retrying at once would only meet EMFILE again).
        let errors: Rc<RefCell<Vec<Option<i32>>>> = Rc::default();
        let errs = errors.clone();
        spawn_local(async move {
            loop {
                match listener.accept().await {
                    Ok((mut conn, _)) => {
                        spawn_local(async move {
                            let mut buf = vec![0u8; 4096];
                            while let Ok(n @ 1..) = conn.read(&mut buf).await {
                                if conn.write_all(&buf[..n]).await.is_err() {
                                    break;
                                }
                            }
                            let _ = conn.close().await;
                        });
                    }
                    Err(e) => {
                        errs.borrow_mut().push(e.raw_os_error());
                        sleep(Duration::from_millis(5)).await;
                    }
                }
            }
        });
        // Other tasks still run: these sleeps wake while the listener meets EMFILE.
        sleep(Duration::from_millis(100)).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while engine != "libuv" && errors.borrow().is_empty() && std::time::Instant::now() < deadline {
            sleep(Duration::from_millis(10)).await;
        }
        {
            let errors = errors.borrow();
            assert!(
                errors.iter().all(|e| *e == Some(libc::EMFILE) || *e == Some(libc::ENFILE)),
                "accept errors are the descriptor shortage: {errors:?}"
            );
            if engine == "libuv" {
                // libuv sheds the connection itself (accept, close) and reports nothing.
                assert!(errors.is_empty(), "libuv sheds load silently: {errors:?}");
            } else {
                assert!(!errors.is_empty(), "{engine}: accept reported EMFILE");
            }
        }

        // Free the descriptors: connections are served again.
        drop(fillers);
        let victim_back = std::thread::spawn(move || round_trip(&mut victim, b"victim"));
        let mut client = std::net::TcpStream::connect(addr).unwrap();
        let client_back = std::thread::spawn(move || round_trip(&mut client, b"after EMFILE"));
        // The std clients block in their threads while this runtime serves them.
        while !(victim_back.is_finished() && client_back.is_finished()) {
            sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(client_back.join().unwrap(), b"after EMFILE");
        let victim_back = victim_back.join().unwrap();
        if engine == "libuv" {
            assert!(victim_back.is_empty(), "libuv closed the connection it could not keep");
        } else {
            assert_eq!(victim_back, b"victim", "{engine}: the connection waited in the backlog");
        }
        drop(limit);
    });
    // The accept loop never ends on its own: dropping the runtime drops it.
    drop(rt);
}
