//! A listener that runs out of file descriptors (EMFILE) must neither panic nor spin, and must recover once
//! descriptors are free again. Its own test binary: it lowers the process-wide RLIMIT_NOFILE.
#![cfg(unix)]
mod common;

use std::cell::{Cell, RefCell};
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::{close_clean, fill_descriptor_table, highest_open_fd, LimitGuard};
use uvio::uv::{Loop, RunMode, Tcp, Timer};

/// Runs the loop without blocking until `step` returns `Some`, sleeping briefly between rounds because the
/// peer is a blocking-style std socket polled by hand.
fn pump<T>(lp: &Loop, mut step: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        lp.run(RunMode::NoWait).unwrap();
        if let Some(v) = step() {
            return v;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "timed out");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Reads from a non-blocking std socket: `Some(n)` bytes, `Some(0)` at EOF, `None` if nothing yet.
fn try_read(s: &mut std::net::TcpStream, buf: &mut Vec<u8>) -> Option<usize> {
    let mut chunk = [0u8; 4096];
    match s.read(&mut chunk) {
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Some(n)
        }
        Err(e) if e.kind() == ErrorKind::WouldBlock => None,
        Err(e) if e.kind() == ErrorKind::ConnectionReset => Some(0),
        Err(e) => panic!("read failed: {e}"),
    }
}

#[test]
fn listener_out_of_descriptors_sheds_load_then_recovers() {
    let lp = Loop::new().unwrap();
    let server = Tcp::new(&lp).unwrap(); // the first stream: libuv reserves its spare descriptor now
    server.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr: SocketAddr = server.local_addr().unwrap();

    // An echo server that records every callback.
    let callbacks: Rc<RefCell<Vec<uvio::Result<()>>>> = Rc::default();
    let conns: Rc<RefCell<Vec<Tcp>>> = Rc::default();
    let (cb2, conns2) = (callbacks.clone(), conns.clone());
    server
        .listen(1024, move |srv, res| {
            cb2.borrow_mut().push(res);
            if res.is_err() {
                return;
            }
            let conn = srv.accept().unwrap();
            conn.read_start(|c, data| match data {
                Ok(bytes) => c.write(Vec::from(bytes), |_, _| {}).unwrap(),
                Err(_) => {
                    let _ = c.shutdown(|_, _| {});
                }
            })
            .unwrap();
            conns2.borrow_mut().push(conn);
        })
        .unwrap();

    let limit = LimitGuard::lower_to(highest_open_fd() as u64 + 1 + 16);

    // A client whose connection waits in the listen backlog, then a full descriptor table.
    let mut victim = std::net::TcpStream::connect(addr).unwrap();
    victim.set_nonblocking(true).unwrap();
    let fillers = fill_descriptor_table();

    // libuv's accept fails with EMFILE; it frees its spare descriptor, accepts and closes the pending
    // connection (shedding load), and does not call the connection callback: the victim sees the end.
    let mut got = Vec::new();
    pump(&lp, || try_read(&mut victim, &mut got).filter(|&n| n == 0));
    assert!(got.is_empty());
    assert!(callbacks.borrow().is_empty(), "libuv 1.x sheds load silently: {:?}", callbacks.borrow());

    // And it does not spin on the still-readable listener: a 50 ms wait takes a handful of iterations.
    let fired = Rc::new(Cell::new(false));
    let f2 = fired.clone();
    let timer = Timer::new(&lp).unwrap();
    timer.start(Duration::from_millis(50), None, move |_| f2.set(true)).unwrap();
    let mut iterations = 0;
    while !fired.get() {
        lp.run(RunMode::Once).unwrap();
        iterations += 1;
    }
    assert!(iterations < 50, "the loop spun {iterations} times while waiting 50 ms");
    drop(timer);

    // Free the descriptors: the next client is accepted and echoed.
    drop(fillers);
    let mut client = std::net::TcpStream::connect(addr).unwrap();
    client.write_all(b"hello after EMFILE").unwrap();
    client.shutdown(std::net::Shutdown::Write).unwrap();
    client.set_nonblocking(true).unwrap();
    let mut echoed = Vec::new();
    pump(&lp, || try_read(&mut client, &mut echoed).filter(|&n| n == 0));
    assert_eq!(echoed, b"hello after EMFILE");
    assert_eq!(*callbacks.borrow(), [Ok(())]);

    drop(limit);
    drop((server, conns, victim, client));
    close_clean(lp);
}
