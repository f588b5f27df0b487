//! The libuv engine: libuv's own streams (`uv_read_start`, `uv_write`), listeners, UDP and fs requests. It runs
//! on every OS, and carries whatever another engine does not.
//!
//! Its sockets are [`Stream`], [`Listener`] and [`Datagram`]; the per-kind libuv calls (TCP vs Unix sockets:
//! create, bind, connect, open a std socket, hand one back) are behind [`SocketKind`], so the engine dispatch
//! (`engine::AnyStream<T>`, `engine::AnyListener<T>`) is generic over the kind.

pub(crate) mod fs;
pub(crate) mod listener;
#[cfg(unix)]
pub(crate) mod readiness;
pub(crate) mod stream;
pub(crate) mod udp;

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::io;
use std::rc::{Rc, Weak};

use slab::Slab;
use socket2::{SockAddr, Socket};

pub(crate) use listener::Listener;
pub(crate) use stream::Stream;
pub(crate) use udp::Datagram;

use crate::uv::{self, stream::StreamKind};

/// One runtime's registry of libuv handles that outlive their owner: a stream or UDP socket dropped with writes
/// still queued stays open, held here, until they reach the kernel (then it releases itself). It also tells
/// the engine's objects whether their runtime is gone: they hold a `Weak` of it, which fails once the runtime
/// is dropped, and [`shut_down`](Lingering::shut_down) marks it when shutdown starts.
#[derive(Default)]
pub(crate) struct Lingering {
    held: RefCell<Slab<Rc<dyn Any>>>,
    gone: Cell<bool>,
}

impl Lingering {
    /// Keeps `obj` alive until [`release`](Self::release) is called with the returned key, or shutdown.
    pub(crate) fn hold(&self, obj: Rc<dyn Any>) -> usize {
        self.held.borrow_mut().insert(obj)
    }

    /// Releases what [`hold`](Self::hold) kept (dropped outside the registry's borrow).
    pub(crate) fn release(&self, key: usize) {
        let obj = self.held.borrow_mut().try_remove(key);
        drop(obj);
    }

    /// How many objects are kept (streams still sending what was written before they were dropped).
    pub(crate) fn len(&self) -> usize {
        self.held.borrow().len()
    }

    /// Whether the runtime of the registry `weak` points to is gone or shutting down: nothing will run its loop
    /// any more, so operations fail instead of waiting forever.
    pub(crate) fn is_gone(weak: &Weak<Lingering>) -> bool {
        weak.upgrade().is_none_or(|l| l.gone.get())
    }

    /// Shutdown started: objects of this runtime fail from now on.
    pub(crate) fn shut_down(&self) {
        self.gone.set(true);
    }

    /// The end of shutdown: whatever still lingers is closed (its queued writes are cancelled).
    pub(crate) fn drop_all(&self) {
        let held: Vec<_> = self.held.borrow_mut().drain().collect();
        drop(held);
    }
}

/// What the libuv engine needs per kind of stream handle (TCP, and Unix sockets on Unix), so that the stream
/// and listener code is written once.
pub(crate) trait SocketKind: StreamKind {
    /// Takes over a socket, connected or bound (`uv_tcp_open`, `uv_pipe_open`).
    fn open(lp: &uv::Loop, sock: Socket) -> io::Result<Self>;
    /// A new handle bound to `addr`, to listen on (TCP: `uv_tcp_bind`, which sets `SO_REUSEADDR` on Unix).
    fn bind(lp: &uv::Loop, addr: &SockAddr) -> io::Result<Self>;
    /// A new handle, connecting to `addr`; `done` gets the outcome. Dropping the handle cancels the connect.
    fn connect(lp: &uv::Loop, addr: &SockAddr, done: impl FnOnce(crate::Result<()>) + 'static) -> io::Result<Self>;
    /// Hands the socket back (blocking, as std makes them) and closes the handle.
    fn into_socket(self) -> io::Result<Socket>;
    /// A listener shared with other loops: accept one connection at a time, not several ahead (TCP on Windows:
    /// `uv_tcp_simultaneous_accepts(0)`; libuv on Unix already takes one and waits until it is accepted).
    fn single_accept(&self) -> io::Result<()> {
        Ok(())
    }
}

fn inet(addr: &SockAddr) -> io::Result<std::net::SocketAddr> {
    addr.as_socket().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not an internet address"))
}

impl SocketKind for uv::Tcp {
    fn open(lp: &uv::Loop, sock: Socket) -> io::Result<Self> {
        Ok(uv::Tcp::open_stream(lp, sock.into())?)
    }

    fn bind(lp: &uv::Loop, addr: &SockAddr) -> io::Result<Self> {
        let tcp = uv::Tcp::new(lp)?;
        tcp.bind(inet(addr)?)?;
        Ok(tcp)
    }

    fn connect(lp: &uv::Loop, addr: &SockAddr, done: impl FnOnce(crate::Result<()>) + 'static) -> io::Result<Self> {
        let tcp = uv::Tcp::new(lp)?;
        tcp.connect(inet(addr)?, move |_, res| done(res))?;
        Ok(tcp)
    }

    fn into_socket(self) -> io::Result<Socket> {
        uv::Tcp::into_socket(self)
    }

    fn single_accept(&self) -> io::Result<()> {
        Ok(self.set_simultaneous_accepts(false)?)
    }
}

#[cfg(unix)]
impl SocketKind for uv::Pipe {
    fn open(lp: &uv::Loop, sock: Socket) -> io::Result<Self> {
        Ok(uv::Pipe::open(lp, sock.into(), false)?)
    }

    fn bind(lp: &uv::Loop, addr: &SockAddr) -> io::Result<Self> {
        let sock = Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None)?;
        sock.bind(addr)?;
        <Self as SocketKind>::open(lp, sock)
    }

    fn connect(lp: &uv::Loop, addr: &SockAddr, done: impl FnOnce(crate::Result<()>) + 'static) -> io::Result<Self> {
        let pipe = uv::Pipe::new(lp, false)?;
        if let Some(path) = addr.as_pathname() {
            pipe.connect(path, move |_, res| done(res))?;
            return Ok(pipe);
        }
        #[cfg(target_os = "linux")]
        if let Some(name) = addr.as_abstract_namespace() {
            pipe.connect_abstract(name, move |_, res| done(res))?;
            return Ok(pipe);
        }
        Err(io::Error::new(io::ErrorKind::InvalidInput, "not a Unix socket address"))
    }

    fn into_socket(self) -> io::Result<Socket> {
        let sock = Socket::from(self.into_fd()?);
        sock.set_nonblocking(false)?; // libuv's descriptors are non-blocking
        Ok(sock)
    }
}

/// Connects a new `T` handle to `addr` on `lp`. Dropping the future drops the handle, which cancels the connect
/// (its callback sees `ECANCELED`).
pub(crate) async fn connect<T: SocketKind>(lp: &uv::Loop, addr: &SockAddr) -> io::Result<T> {
    let (replier, reply) = crate::reply::reply();
    let handle = T::connect(lp, addr, move |res| replier.send(res))?;
    reply.await.unwrap_or(Err(crate::error::Error::ECANCELED))?;
    Ok(handle)
}

/// Connects the TCP socket `sock` (made by the caller, options set) to `addr`, through a libuv handle opened on
/// it (`uv_tcp_open`, then `uv_tcp_connect`). Dropping the future drops the handle, which cancels the connect.
pub(crate) async fn connect_tcp_socket(lp: &uv::Loop, sock: Socket, addr: &SockAddr) -> io::Result<uv::Tcp> {
    let tcp = uv::Tcp::open_stream(lp, sock.into())?;
    let (replier, reply) = crate::reply::reply();
    tcp.connect(inet(addr)?, move |_, res| replier.send(res))?;
    reply.await.unwrap_or(Err(crate::error::Error::ECANCELED))?;
    Ok(tcp)
}

/// Windows named pipes: connects a new handle to `name` (`uv_pipe_connect2`). Dropping the future drops the
/// handle, which cancels the connect.
#[cfg(windows)]
pub(crate) async fn connect_named_pipe(lp: &uv::Loop, name: &std::path::Path) -> io::Result<uv::Pipe> {
    let pipe = uv::Pipe::new(lp, false)?;
    let (replier, reply) = crate::reply::reply();
    pipe.connect(name, move |_, res| replier.send(res))?;
    reply.await.unwrap_or(Err(crate::error::Error::ECANCELED))?;
    Ok(pipe)
}
