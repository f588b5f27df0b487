//! Pipe tests (Unix domain sockets): echo, names, errors, std descriptors, IPC handle passing, close
//! semantics.
#![cfg(unix)]
mod common;

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use common::{close_clean, run_until, TempDir};
use uvio::uv::{Handle, Loop, Pending, PendingType, Pipe, RunMode, SendHandle, Tcp};
use uvio::Error;

static_assertions::assert_not_impl_any!(Pipe: Send, Sync);

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len).map(|i| ((i as u32).wrapping_mul(17).wrapping_add(seed) % 253) as u8).collect()
}

/// Collects everything a stream reads until EOF.
struct Sink {
    got: Rc<RefCell<Vec<u8>>>,
    end: Rc<Cell<Option<Error>>>,
}

impl Sink {
    fn new() -> Sink {
        Sink { got: Rc::default(), end: Rc::default() }
    }
    fn eof(&self) -> bool {
        self.end.get().is_some()
    }
}

/// Starts reading on `stream` into `sink`.
macro_rules! read_into {
    ($stream:expr, $sink:expr) => {{
        let (g, e) = ($sink.got.clone(), $sink.end.clone());
        $stream
            .read_start(move |_, data| match data {
                Ok(b) => g.borrow_mut().extend_from_slice(b),
                Err(err) => e.set(Some(err)),
            })
            .unwrap();
    }};
}

/// A bound, listening pipe server at `path` that echoes each connection and shuts it down after EOF.
fn echo_server(lp: &Loop, path: &Path) -> (Pipe, Rc<RefCell<Vec<Pipe>>>) {
    let server = Pipe::new(lp, false).unwrap();
    server.bind(path).unwrap();
    let conns: Rc<RefCell<Vec<Pipe>>> = Rc::default();
    let c2 = conns.clone();
    server
        .listen(64, move |srv, res| {
            res.unwrap();
            let conn = srv.accept().unwrap();
            conn.read_start(|c, data| match data {
                Ok(b) => c.write(Vec::from(b), |_, _| {}).unwrap(),
                Err(_) => {
                    let _ = c.shutdown(|_, _| {});
                }
            })
            .unwrap();
            c2.borrow_mut().push(conn);
        })
        .unwrap();
    (server, conns)
}

/// A client that connects to `path`, sends `payload`, shuts down and reads into a sink.
fn echo_client(lp: &Loop, path: &Path, payload: Vec<u8>) -> (Pipe, Sink) {
    let client = Pipe::new(lp, false).unwrap();
    let sink = Sink::new();
    let (g, e) = (sink.got.clone(), sink.end.clone());
    client
        .connect(path, move |c, res| {
            res.unwrap();
            c.read_start(move |_, data| match data {
                Ok(b) => g.borrow_mut().extend_from_slice(b),
                Err(err) => e.set(Some(err)),
            })
            .unwrap();
            c.write(payload, |c, res| {
                res.unwrap();
                c.shutdown(|_, res| res.unwrap()).unwrap();
            })
            .unwrap();
        })
        .unwrap();
    (client, sink)
}

/// A connected pair over a listening socket at `path`: (accepted side, client side).
fn connected_pair(lp: &Loop, path: &Path) -> (Pipe, Pipe) {
    let server = Pipe::new(lp, false).unwrap();
    server.bind(path).unwrap();
    let slot: Rc<RefCell<Option<Pipe>>> = Rc::default();
    let s2 = slot.clone();
    server.listen(16, move |srv, _| *s2.borrow_mut() = Some(srv.accept().unwrap())).unwrap();
    let client = Pipe::new(lp, false).unwrap();
    let ok = Rc::new(Cell::new(false));
    let ok2 = ok.clone();
    client.connect(path, move |_, res| ok2.set(res.is_ok())).unwrap();
    run_until(lp, || ok.get() && slot.borrow().is_some());
    drop(server);
    let accepted = slot.borrow_mut().take().unwrap();
    (accepted, client)
}

/// Two IPC pipes over a socketpair.
fn ipc_pair(lp: &Loop) -> (Pipe, Pipe) {
    let (a, b) = UnixStream::pair().unwrap();
    let a = Pipe::open(lp, OwnedFd::from(a), true).unwrap();
    let b = Pipe::open(lp, OwnedFd::from(b), true).unwrap();
    assert!(a.is_ipc() && b.is_ipc());
    (a, b)
}

#[test]
fn echo_over_unix_socket() {
    let dir = TempDir::new("pipe-echo");
    let path = dir.path().join("echo.sock");
    let lp = Loop::new().unwrap();
    let (server, conns) = echo_server(&lp, &path);
    let payload = pattern(300_000, 1);
    let (client, sink) = echo_client(&lp, &path, payload.clone());
    run_until(&lp, || sink.eof());
    assert_eq!(sink.end.get(), Some(Error::EOF));
    assert!(*sink.got.borrow() == payload, "echoed bytes differ");
    assert_eq!(conns.borrow().len(), 1);
    drop((server, client, conns));
    close_clean(lp);
    assert!(!path.exists(), "libuv removes the socket file on close");
}

#[test]
fn local_and_peer_names() {
    let dir = TempDir::new("pipe-names");
    let path = dir.path().join("names.sock");
    let lp = Loop::new().unwrap();
    let (accepted, client) = connected_pair(&lp, &path);
    assert_eq!(accepted.local_name().unwrap(), path);
    assert_eq!(client.peer_name().unwrap(), path);
    // The client end has no name of its own.
    assert_eq!(client.local_name().unwrap(), PathBuf::new());
    let fresh = Pipe::new(&lp, false).unwrap();
    assert_eq!(fresh.local_name().unwrap_err(), Error::EBADF);
    assert_eq!(fresh.peer_name().unwrap_err(), Error::EBADF);
    drop((accepted, client, fresh));
    close_clean(lp);
}

#[test]
fn connect_to_missing_path_is_enoent() {
    let dir = TempDir::new("pipe-missing");
    let lp = Loop::new().unwrap();
    let client = Pipe::new(&lp, false).unwrap();
    let result = Rc::new(Cell::new(None));
    let r2 = result.clone();
    client.connect(&dir.path().join("nobody.sock"), move |_, res| r2.set(Some(res))).unwrap();
    lp.run(RunMode::Default).unwrap();
    assert_eq!(result.get(), Some(Err(Error::ENOENT)));
    drop(client);
    close_clean(lp);
}

#[test]
fn nul_in_name_is_einval() {
    let lp = Loop::new().unwrap();
    let p = Pipe::new(&lp, false).unwrap();
    assert_eq!(p.bind(Path::new("/tmp/a\0b")).unwrap_err(), Error::EINVAL);
    assert_eq!(p.connect(Path::new("/tmp/a\0b"), |_, _| panic!("never started")).unwrap_err(), Error::EINVAL);
    drop(p);
    close_clean(lp);
}

#[test]
fn too_long_name_is_refused_not_truncated() {
    let dir = TempDir::new("pipe-long");
    let long = dir.path().join("x".repeat(200));
    let lp = Loop::new().unwrap();
    let p = Pipe::new(&lp, false).unwrap();
    let err = p.bind(&long).unwrap_err();
    assert!(err == Error::EINVAL || err == Error::ENAMETOOLONG, "{err:?}");
    let err = p.connect(&long, |_, _| panic!("never started")).unwrap_err();
    assert!(err == Error::EINVAL || err == Error::ENAMETOOLONG, "{err:?}");
    // Nothing was created under a truncated name.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    drop(p);
    close_clean(lp);
}

#[test]
fn open_std_socketpair_end_and_echo() {
    let lp = Loop::new().unwrap();
    let (ours, mut theirs) = UnixStream::pair().unwrap();
    let pipe = Pipe::open(&lp, OwnedFd::from(ours), false).unwrap();
    assert!(pipe.is_readable() && pipe.is_writable());
    let payload = pattern(60_000, 9); // fits in the socket buffer: the std side reads after the write
    let written = Rc::new(Cell::new(false));
    let w2 = written.clone();
    pipe.write(payload.clone(), move |_, res| w2.set(res.is_ok())).unwrap();
    run_until(&lp, || written.get());
    let mut got = vec![0u8; payload.len()];
    theirs.read_exact(&mut got).unwrap();
    assert!(got == payload);
    // The other direction, then EOF.
    theirs.write_all(b"from std").unwrap();
    drop(theirs);
    let sink = Sink::new();
    read_into!(pipe, sink);
    run_until(&lp, || sink.eof());
    assert_eq!(&sink.got.borrow()[..], b"from std");
    assert_eq!(sink.end.get(), Some(Error::EOF));
    drop(pipe);
    close_clean(lp);
}

#[test]
fn open_refuses_files_that_cannot_be_polled() {
    let dir = TempDir::new("pipe-file");
    let lp = Loop::new().unwrap();
    let file = std::fs::File::create(dir.path().join("plain")).unwrap();
    assert_eq!(Pipe::open(&lp, OwnedFd::from(file), false).unwrap_err(), Error::EINVAL);
    let null = std::fs::File::open("/dev/null").unwrap();
    assert_eq!(Pipe::open(&lp, OwnedFd::from(null), false).unwrap_err(), Error::EINVAL);
    // A real pipe end is fine.
    let (r, w) = std_pipe();
    let reader = Pipe::open(&lp, r, false).unwrap();
    assert!(reader.is_readable() && !reader.is_writable());
    let writer = Pipe::open(&lp, w, false).unwrap();
    assert!(writer.is_writable() && !writer.is_readable());
    drop((reader, writer));
    close_clean(lp);
}

fn std_pipe() -> (OwnedFd, OwnedFd) {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: pipe() fills two new descriptors that we then own.
    unsafe {
        assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
        (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
    }
}

#[test]
fn ipc_sends_a_listening_tcp_socket() {
    let lp = Loop::new().unwrap();
    let (sender, receiver) = ipc_pair(&lp);
    let listener = Tcp::new(&lp).unwrap();
    listener.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    let sent = Rc::new(Cell::new(None));
    let s2 = sent.clone();
    sender.write2(&b"L"[..], SendHandle::Tcp(listener), move |_, res| s2.set(Some(res))).unwrap();

    // The receiver takes the socket from its read callback and serves an echo on it.
    let received: Rc<RefCell<Option<Tcp>>> = Rc::default();
    let conns: Rc<RefCell<Vec<Tcp>>> = Rc::default();
    let (r2, c2) = (received.clone(), conns.clone());
    receiver
        .read_start(move |p, data| {
            assert_eq!(data.unwrap(), b"L");
            assert_eq!(p.pending_count(), 1);
            assert_eq!(p.pending_type(), PendingType::Tcp);
            let Pending::Tcp(tcp) = p.accept_pending().unwrap() else { panic!("expected a Tcp") };
            assert_eq!(p.pending_count(), 0);
            assert_eq!(p.accept_pending().unwrap_err(), Error::EAGAIN);
            let c3 = c2.clone();
            tcp.listen(16, move |srv, _| {
                let conn = srv.accept().unwrap();
                conn.read_start(|c, data| match data {
                    Ok(b) => c.write(Vec::from(b), |_, _| {}).unwrap(),
                    Err(_) => {
                        let _ = c.shutdown(|_, _| {});
                    }
                })
                .unwrap();
                c3.borrow_mut().push(conn);
            })
            .unwrap();
            *r2.borrow_mut() = Some(tcp);
        })
        .unwrap();
    run_until(&lp, || received.borrow().is_some() && sent.get().is_some());
    assert_eq!(sent.get(), Some(Ok(())));
    assert_eq!(received.borrow().as_ref().unwrap().local_addr().unwrap(), addr);

    // A client of the original address is served through the received socket.
    let client = Tcp::new(&lp).unwrap();
    let sink = Sink::new();
    let (g, e) = (sink.got.clone(), sink.end.clone());
    let payload = pattern(20_000, 4);
    let p2 = payload.clone();
    client
        .connect(addr, move |c, res| {
            res.unwrap();
            c.read_start(move |_, data| match data {
                Ok(b) => g.borrow_mut().extend_from_slice(b),
                Err(err) => e.set(Some(err)),
            })
            .unwrap();
            c.write(p2, |c, _| c.shutdown(|_, _| {}).unwrap()).unwrap();
        })
        .unwrap();
    run_until(&lp, || sink.eof());
    assert!(*sink.got.borrow() == payload);
    assert_eq!(conns.borrow().len(), 1);
    drop((sender, receiver, received, conns, client));
    close_clean(lp);
}

#[test]
fn ipc_sends_a_connected_tcp_socket() {
    let lp = Loop::new().unwrap();
    let (sender, receiver) = ipc_pair(&lp);
    // A connected TCP pair; the client end travels over the IPC pipe.
    let listener = Tcp::new(&lp).unwrap();
    listener.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = listener.local_addr().unwrap();
    let far: Rc<RefCell<Option<Tcp>>> = Rc::default();
    let f2 = far.clone();
    listener.listen(16, move |srv, _| *f2.borrow_mut() = Some(srv.accept().unwrap())).unwrap();
    let near = Tcp::new(&lp).unwrap();
    let ok = Rc::new(Cell::new(false));
    let ok2 = ok.clone();
    near.connect(addr, move |_, res| ok2.set(res.is_ok())).unwrap();
    run_until(&lp, || ok.get() && far.borrow().is_some());
    let near_local = near.local_addr().unwrap();
    sender.write2(&b"C"[..], SendHandle::Tcp(near), |_, res| res.unwrap()).unwrap();

    let payload = pattern(10_000, 8);
    let p2 = payload.clone();
    let received: Rc<RefCell<Option<Tcp>>> = Rc::default();
    let r2 = received.clone();
    receiver
        .read_start(move |p, data| {
            assert_eq!(data.unwrap(), b"C");
            let Pending::Tcp(tcp) = p.accept_pending().unwrap() else { panic!("expected a Tcp") };
            tcp.write(p2.clone(), |t, res| {
                res.unwrap();
                t.shutdown(|_, res| res.unwrap()).unwrap();
            })
            .unwrap();
            *r2.borrow_mut() = Some(tcp);
        })
        .unwrap();
    let sink = Sink::new();
    read_into!(far.borrow().as_ref().unwrap(), sink);
    run_until(&lp, || sink.eof());
    assert!(*sink.got.borrow() == payload);
    let got_local = received.borrow().as_ref().unwrap().local_addr().unwrap();
    assert_eq!(got_local, near_local, "the received socket is the same connection");
    drop((sender, receiver, listener, far, received));
    close_clean(lp);
}

#[test]
fn accept_on_ipc_pipe_with_pending_tcp_is_einval() {
    let lp = Loop::new().unwrap();
    let (sender, receiver) = ipc_pair(&lp);
    let listener = Tcp::new(&lp).unwrap();
    listener.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    sender.write2(&b"x"[..], SendHandle::Tcp(listener), |_, _| {}).unwrap();
    let got: Rc<RefCell<Option<Pending>>> = Rc::default();
    let g2 = got.clone();
    receiver
        .read_start(move |p, _| {
            // A TCP socket is not opened as a pipe by the generic accept.
            assert_eq!(p.accept().unwrap_err(), Error::EINVAL);
            *g2.borrow_mut() = Some(p.accept_pending().unwrap());
        })
        .unwrap();
    run_until(&lp, || got.borrow().is_some());
    assert!(matches!(*got.borrow(), Some(Pending::Tcp(_))));
    drop((sender, receiver, got));
    close_clean(lp);
}

#[test]
fn write2_errors() {
    let dir = TempDir::new("pipe-write2");
    let lp = Loop::new().unwrap();
    // Not an IPC pipe: EINVAL, and the handle that was to be sent is simply closed.
    let (accepted, client) = connected_pair(&lp, &dir.path().join("w2.sock"));
    let tcp = Tcp::new(&lp).unwrap();
    tcp.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    assert!(!client.is_ipc());
    assert_eq!(client.write2(&b"x"[..], SendHandle::Tcp(tcp), |_, _| panic!("not queued")).unwrap_err(), Error::EINVAL);
    // An IPC pipe, but the handle has no socket yet: EBADF.
    let (a, b) = ipc_pair(&lp);
    let unbound = Tcp::new(&lp).unwrap();
    assert_eq!(a.write2(&b"x"[..], SendHandle::Tcp(unbound), |_, _| panic!("not queued")).unwrap_err(), Error::EBADF);
    // Nothing pending on a fresh or non-IPC pipe.
    assert_eq!(b.pending_count(), 0);
    assert_eq!(b.pending_type(), PendingType::None);
    assert_eq!(b.accept_pending().unwrap_err(), Error::EAGAIN);
    assert_eq!(client.pending_type(), PendingType::None);
    drop((accepted, client, a, b));
    close_clean(lp);
}

#[test]
fn chmod_on_bound_pipe() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("pipe-chmod");
    let path = dir.path().join("chmod.sock");
    let lp = Loop::new().unwrap();
    let p = Pipe::new(&lp, false).unwrap();
    assert!(p.chmod(true, true).is_err(), "nothing to chmod before bind");
    p.bind(&path).unwrap();
    p.chmod(true, true).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o666, 0o666, "{mode:o}");
    p.chmod(true, false).unwrap();
    drop(p);
    close_clean(lp);
}

#[test]
fn shutdown_gives_peer_eof() {
    let dir = TempDir::new("pipe-shutdown");
    let lp = Loop::new().unwrap();
    let (accepted, client) = connected_pair(&lp, &dir.path().join("s.sock"));
    let sink = Sink::new();
    read_into!(accepted, sink);
    client.write(&b"bye"[..], |_, res| res.unwrap()).unwrap();
    let done = Rc::new(Cell::new(None));
    let d2 = done.clone();
    client.shutdown(move |_, res| d2.set(Some(res))).unwrap();
    assert_eq!(client.write(&b"late"[..], |_, _| panic!("not queued")).unwrap_err(), Error::EPIPE);
    run_until(&lp, || sink.eof());
    assert_eq!(done.get(), Some(Ok(())));
    assert_eq!(&sink.got.borrow()[..], b"bye");
    assert_eq!(sink.end.get(), Some(Error::EOF));
    drop((accepted, client));
    close_clean(lp);
}

#[test]
fn drop_with_queued_writes_cancels_them() {
    let dir = TempDir::new("pipe-cancel");
    let lp = Loop::new().unwrap();
    let (accepted, client) = connected_pair(&lp, &dir.path().join("c.sock"));
    let results: Rc<RefCell<Vec<Result<(), Error>>>> = Rc::default();
    for i in 0..8 {
        let r2 = results.clone();
        client.write(pattern(1 << 20, i), move |_, res| r2.borrow_mut().push(res)).unwrap();
    }
    assert!(client.write_queue_size() > 0);
    drop(client);
    lp.run(RunMode::Default).unwrap();
    let results = results.borrow();
    assert_eq!(results.len(), 8);
    assert!(results.contains(&Err(Error::ECANCELED)), "{results:?}");
    assert!(results.iter().all(|r| r.is_ok() || *r == Err(Error::ECANCELED)), "{results:?}");
    drop(accepted);
    close_clean(lp);
}

#[test]
fn connect_twice_is_ealready() {
    let dir = TempDir::new("pipe-twice");
    let path = dir.path().join("t.sock");
    let lp = Loop::new().unwrap();
    let server = Pipe::new(&lp, false).unwrap();
    server.bind(&path).unwrap();
    server.listen(16, |_, _| {}).unwrap();
    let client = Pipe::new(&lp, false).unwrap();
    let n = Rc::new(Cell::new(0));
    let n2 = n.clone();
    client
        .connect(&path, move |_, res| {
            res.unwrap();
            n2.set(n2.get() + 1);
        })
        .unwrap();
    assert_eq!(client.connect(&path, |_, _| panic!("never started")).unwrap_err(), Error::EALREADY);
    run_until(&lp, || n.get() == 1);
    drop((server, client));
    close_clean(lp);
}

#[test]
fn drop_in_own_read_callback() {
    let dir = TempDir::new("pipe-dropself");
    let lp = Loop::new().unwrap();
    let (accepted, client) = connected_pair(&lp, &dir.path().join("d.sock"));
    let slot = Rc::new(RefCell::new(Some(accepted)));
    let s2 = slot.clone();
    slot.borrow()
        .as_ref()
        .unwrap()
        .read_start(move |p, data| {
            assert_eq!(data.unwrap(), b"hi");
            drop(s2.borrow_mut().take());
            assert!(p.is_closing());
            assert_eq!(p.write(&b"x"[..], |_, _| {}).unwrap_err(), Error::EINVAL);
            assert_eq!(p.chmod(true, true).unwrap_err(), Error::EINVAL);
            assert_eq!(p.accept_pending().unwrap_err(), Error::EINVAL);
        })
        .unwrap();
    let sink = Sink::new();
    read_into!(client, sink);
    client.write(&b"hi"[..], |_, _| {}).unwrap();
    run_until(&lp, || sink.eof());
    assert!(slot.borrow().is_none());
    let end = sink.end.get().unwrap();
    assert!(end == Error::EOF || end == Error::ECONNRESET, "{end:?}");
    drop(client);
    close_clean(lp);
}

#[cfg(target_os = "linux")]
#[test]
fn abstract_namespace_echo() {
    let name = format!("uvio-test-{}-abstract", std::process::id());
    let lp = Loop::new().unwrap();
    let server = Pipe::new(&lp, false).unwrap();
    server.bind_abstract(name.as_bytes()).unwrap();
    let mut expected = vec![0u8];
    expected.extend_from_slice(name.as_bytes());
    use std::os::unix::ffi::OsStrExt;
    assert_eq!(server.local_name().unwrap().as_os_str().as_bytes(), &expected[..]);
    let conns: Rc<RefCell<Vec<Pipe>>> = Rc::default();
    let c2 = conns.clone();
    server
        .listen(16, move |srv, _| {
            let conn = srv.accept().unwrap();
            conn.read_start(|c, data| match data {
                Ok(b) => c.write(Vec::from(b), |_, _| {}).unwrap(),
                Err(_) => {
                    let _ = c.shutdown(|_, _| {});
                }
            })
            .unwrap();
            c2.borrow_mut().push(conn);
        })
        .unwrap();
    let client = Pipe::new(&lp, false).unwrap();
    let sink = Sink::new();
    let (g, e) = (sink.got.clone(), sink.end.clone());
    client
        .connect_abstract(name.as_bytes(), move |c, res| {
            res.unwrap();
            c.read_start(move |_, data| match data {
                Ok(b) => g.borrow_mut().extend_from_slice(b),
                Err(err) => e.set(Some(err)),
            })
            .unwrap();
            c.write(&b"abstract"[..], |c, _| c.shutdown(|_, _| {}).unwrap()).unwrap();
        })
        .unwrap();
    run_until(&lp, || sink.eof());
    assert_eq!(&sink.got.borrow()[..], b"abstract");
    assert_eq!(client.peer_name().unwrap().as_os_str().as_bytes(), &expected[..]);
    // Too long for sun_path (108 bytes with the leading NUL).
    let p = Pipe::new(&lp, false).unwrap();
    assert_eq!(p.bind_abstract(&[b'a'; 200]).unwrap_err(), Error::EINVAL);
    // An empty name autobinds: the kernel picks a unique abstract name.
    let auto = Pipe::new(&lp, false).unwrap();
    auto.bind_abstract(b"").unwrap();
    let picked = auto.local_name().unwrap();
    let picked = picked.as_os_str().as_bytes();
    assert!(picked.len() > 1 && picked[0] == 0, "{picked:?}");
    drop((server, client, conns, p, auto));
    close_clean(lp);
}
