//! [`Pipe`]: Unix domain sockets and Windows named pipes, plus IPC between processes (`uv_pipe_t`).

use std::ffi::{c_char, c_int, c_uint};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use libuv_sys2 as sys;

use super::addr::cpath;
use super::handle::{impl_handle, Owned};
use super::loop_::{Loop, LoopInner};
use super::stream::{self, impl_stream, StreamKind, StreamState};
use super::tcp::Tcp;
use crate::error::{Error, Result};

/// A pipe (`uv_pipe_t`): a Unix domain socket on Unix, a named pipe on Windows, or an anonymous pipe to a
/// child process. With `ipc`, handles can be sent over it ([`write2`](Pipe::write2)) and received
/// ([`accept_pending`](Pipe::accept_pending)).
///
/// On an IPC pipe, take received handles with [`accept_pending`](Pipe::accept_pending): the generic
/// [`accept`](Pipe::accept) refuses a received TCP socket with `EINVAL` (and, on Windows, refuses on any IPC pipe).
///
/// Close semantics are those of every stream: dropping closes at once and cancels queued writes with
/// `ECANCELED`; [`shutdown`](Pipe::shutdown) first for a graceful end.
///
/// ```
/// # #[cfg(unix)] {
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// use uvio::uv::{Loop, Pipe, RunMode};
///
/// let path = std::env::temp_dir().join(format!("uvio-doc-pipe-{}.sock", std::process::id()));
/// let lp = Loop::new()?;
/// let server = Pipe::new(&lp, false)?;
/// server.bind(&path)?;
/// let conns = Rc::new(RefCell::new(Vec::new()));
/// let conns2 = conns.clone();
/// server.listen(16, move |srv, res| {
///     res.unwrap();
///     let conn = srv.accept().unwrap();
///     // Write, then shut down once the write is done: the peer reads "hi", then EOF.
///     conn.write(&b"hi"[..], |conn, res| {
///         res.unwrap();
///         conn.shutdown(|_, _| {}).unwrap();
///     }).unwrap();
///     conns2.borrow_mut().push(conn); // keep the connection open
/// })?;
/// let got = Rc::new(RefCell::new(Vec::new()));
/// let (got2, eof) = (got.clone(), Rc::new(std::cell::Cell::new(false)));
/// let eof2 = eof.clone();
/// let client = Pipe::new(&lp, false)?;
/// client.connect(&path, move |c, res| {
///     res.unwrap();
///     c.read_start(move |_, data| match data {
///         Ok(bytes) => got2.borrow_mut().extend_from_slice(bytes),
///         Err(e) => eof2.set(e == uvio::Error::EOF),
///     }).unwrap();
/// })?;
/// while !eof.get() {
///     lp.run(RunMode::Once)?;
/// }
/// assert_eq!(&got.borrow()[..], b"hi");
/// drop((server, client, conns));
/// lp.run(RunMode::Default)?; // delivers the close callbacks; libuv removes the socket file
/// assert!(!path.exists());
/// # }
/// # Ok::<(), uvio::Error>(())
/// ```
pub struct Pipe {
    h: Owned<sys::uv_pipe_t, StreamState<Pipe>>,
}

impl_handle!(Pipe);
impl_stream!(Pipe);

impl StreamKind for Pipe {
    type Raw = sys::uv_pipe_t;
    fn owned(&self) -> &Owned<sys::uv_pipe_t, StreamState<Pipe>> {
        &self.h
    }
    fn wrap(h: Owned<sys::uv_pipe_t, StreamState<Pipe>>) -> Pipe {
        Pipe { h }
    }
    fn new_peer(server: &Pipe) -> Result<Pipe> {
        // A socket received over IPC is taken with `accept_pending`, as its own type. libuv's `uv_accept` would
        // open a received TCP socket as a pipe handle on Unix, and on Windows it always imports a TCP socket
        // into the client of an IPC pipe, writing `uv_tcp_t` fields into what is a `uv_pipe_t`.
        if server.is_ipc() && (cfg!(windows) || matches!(server.pending_type(), PendingType::Tcp | PendingType::Udp)) {
            return Err(Error::EINVAL);
        }
        Pipe::new_in(server.h.loop_inner(), server.is_ipc())
    }
}

/// Never truncate a pipe name (`UV_PIPE_NO_TRUNCATE`); C enum constants are `c_int` in Windows bindings.
const NO_TRUNCATE: c_uint = sys::UV_PIPE_NO_TRUNCATE as c_uint;

/// The type of a handle waiting on an IPC pipe ([`Pipe::pending_type`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingType {
    /// A TCP socket: accept it with [`Pipe::accept_pending`] as [`Pending::Tcp`].
    Tcp,
    /// A pipe.
    Pipe,
    /// A UDP socket: uvio cannot take these yet ([`Pipe::accept_pending`] says `ENOTSUP`); it stays pending
    /// and is closed with the pipe.
    Udp,
    /// Nothing pending (or a descriptor of another kind, such as a file sent by a non-libuv peer, which stays
    /// pending and is closed with the pipe).
    None,
}

/// A handle received over an IPC pipe.
#[derive(Debug)]
pub enum Pending {
    /// A TCP socket.
    Tcp(Tcp),
    /// A pipe.
    Pipe(Pipe),
}

/// A handle to send over an IPC pipe with [`Pipe::write2`]. It is moved into the write and closed once the
/// write completes: the peer receives its own duplicate of the descriptor.
#[derive(Debug)]
pub enum SendHandle {
    /// A TCP socket (listening or connected).
    Tcp(Tcp),
    /// A pipe.
    Pipe(Pipe),
}

impl SendHandle {
    fn stream_ptr(&self) -> *mut sys::uv_stream_t {
        match self {
            SendHandle::Tcp(t) => t.as_stream_ptr(),
            SendHandle::Pipe(p) => p.as_stream_ptr(),
        }
    }
}

impl Pipe {
    /// A new pipe handle (`uv_pipe_init`); `ipc` enables passing handles over it.
    pub fn new(lp: &Loop, ipc: bool) -> Result<Pipe> {
        Pipe::new_in(lp.inner(), ipc)
    }

    pub(crate) fn new_in(lp: &Rc<LoopInner>, ipc: bool) -> Result<Pipe> {
        // SAFETY: `raw` points to zeroed memory in the box Owned keeps alive.
        let h = Owned::new_in(lp, StreamState::default(), |l, raw| unsafe { sys::uv_pipe_init(l, raw, ipc as c_int) })?;
        Ok(Pipe { h })
    }

    /// The stream pointer, for process stdio and IPC.
    pub(crate) fn as_stream_ptr(&self) -> *mut sys::uv_stream_t {
        self.h.stream()
    }

    /// Whether this pipe was created for IPC.
    pub fn is_ipc(&self) -> bool {
        // SAFETY: the handle is initialised; this reads a field set at init.
        unsafe { (*self.h.raw()).ipc != 0 }
    }

    /// Takes over an open descriptor — a pipe end or a Unix socket (`uv_pipe_open`); it is switched to
    /// non-blocking mode and closed with the handle. `EINVAL` for regular files, character devices and other
    /// descriptors the OS cannot poll (libuv would abort on them; read files with `uv::fs`).
    #[cfg(unix)]
    pub fn open(lp: &Loop, fd: std::os::fd::OwnedFd, ipc: bool) -> Result<Pipe> {
        use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
        if matches!(super::guess_handle(fd.as_raw_fd()), super::GuessedHandle::File | super::GuessedHandle::Unknown) {
            return Err(Error::EINVAL); // `fd` is dropped (closed) here, like on every other error
        }
        let pipe = Pipe::new(lp, ipc)?;
        let raw = fd.into_raw_fd();
        // SAFETY: an open handle; libuv takes ownership of `raw` on success and closes it with the handle.
        let ret = unsafe { sys::uv_pipe_open(pipe.h.raw(), raw) };
        if ret < 0 {
            // SAFETY: uv_pipe_open failed, so `raw` is still ours alone.
            drop(unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) });
            return Err(Error::from_code(ret));
        }
        Ok(pipe)
    }

    /// Unix: hands the descriptor over to its caller: libuv's descriptor is duplicated, then the handle is
    /// closed. That closes libuv's copy only; the pipe or socket lives on in the duplicate, which keeps libuv's
    /// non-blocking mode (clear it with the std type's `set_nonblocking(false)`). Queued writes are cancelled, as
    /// when the handle is dropped, and a path bound with [`bind`](Pipe::bind) is removed as the handle closes
    /// (libuv's rule): hand over pipes opened with [`open`](Pipe::open). `EBADF` if the handle has no descriptor.
    #[cfg(unix)]
    pub fn into_fd(self) -> std::io::Result<std::os::fd::OwnedFd> {
        self.h.check_open()?;
        let mut raw: sys::uv_os_fd_t = -1;
        // SAFETY: an open handle and a valid out-pointer.
        Error::check(unsafe { sys::uv_fileno(self.h.handle(), &mut raw) })?;
        // SAFETY: `raw` is libuv's open descriptor, borrowed only while `self`, which owns it, is alive.
        let copy = unsafe { std::os::fd::BorrowedFd::borrow_raw(raw) }.try_clone_to_owned()?;
        drop(self);
        Ok(copy)
    }

    /// Binds to a filesystem path (Unix) or pipe name like `\\.\pipe\name` (Windows) (`uv_pipe_bind2`). A NUL
    /// byte in the name is `EINVAL`, and so is a name longer than `sockaddr_un` holds (108 bytes on Linux, 104 on
    /// macOS): it is never truncated. libuv removes the socket file when the handle closes (so `into_fd` does too). On Linux an empty
    /// path autobinds, as `bind_abstract` with an empty name does.
    pub fn bind(&self, name: &Path) -> Result<()> {
        self.bind_bytes(cpath(name)?.as_bytes())
    }

    /// Binds to a name in Linux's abstract socket namespace (`uv_pipe_bind2` with a leading NUL): no file is
    /// created, and the name disappears with the socket. `name` excludes the leading NUL and may contain NULs;
    /// at most 107 bytes (`EINVAL` beyond). An empty `name` lets the kernel pick a unique one (autobind): read
    /// it with [`local_name`](Pipe::local_name).
    #[cfg(target_os = "linux")]
    pub fn bind_abstract(&self, name: &[u8]) -> Result<()> {
        if name.is_empty() {
            return self.bind_bytes(&[]); // a zero-length address is Linux's request to autobind
        }
        self.bind_bytes(&abstract_name(name))
    }

    fn bind_bytes(&self, name: &[u8]) -> Result<()> {
        self.h.check_open()?;
        // libuv reads the first byte (to spot an abstract name) even when the length is 0: never hand it the
        // dangling pointer of an empty slice.
        let ptr: *const c_char = if name.is_empty() { c"".as_ptr() } else { name.as_ptr().cast() };
        // SAFETY: an open handle; `ptr` is readable for `max(name.len(), 1)` bytes during the call, and libuv
        // copies the name.
        let ret = unsafe { sys::uv_pipe_bind2(self.h.raw(), ptr, name.len(), NO_TRUNCATE) };
        Error::check(ret).map(drop)
    }

    /// Connects to a path or pipe name (`uv_pipe_connect2`); `cb` gets the outcome (`ENOENT`,
    /// `ECONNREFUSED`, `ECANCELED` if the handle was dropped first). Name errors are synchronous: `EINVAL` for a
    /// NUL byte or a name that is too long (see [`bind`](Pipe::bind)); `EALREADY` while a connect is pending.
    pub fn connect(&self, name: &Path, cb: impl FnOnce(&Pipe, Result<()>) + 'static) -> Result<()> {
        connect_impl(self, cpath(name)?.into_bytes_with_nul(), cb)
    }

    /// Connects to a name in Linux's abstract socket namespace (see [`bind_abstract`](Pipe::bind_abstract)).
    #[cfg(target_os = "linux")]
    pub fn connect_abstract(&self, name: &[u8], cb: impl FnOnce(&Pipe, Result<()>) + 'static) -> Result<()> {
        let mut name = abstract_name(name);
        name.push(0);
        connect_impl(self, name, cb)
    }

    /// The name this pipe is bound to (`uv_pipe_getsockname`); an abstract name starts with a NUL byte.
    pub fn local_name(&self) -> Result<PathBuf> {
        // SAFETY: the getter writes at most `size` bytes into the buffer it is given.
        read_name(|buf, size| unsafe { sys::uv_pipe_getsockname(self.h.raw(), buf, size) })
    }

    /// The name of the peer's end (`uv_pipe_getpeername`).
    pub fn peer_name(&self) -> Result<PathBuf> {
        // SAFETY: as in `local_name`.
        read_name(|buf, size| unsafe { sys::uv_pipe_getpeername(self.h.raw(), buf, size) })
    }

    /// Makes the bound socket readable and/or writable by everyone (`uv_pipe_chmod`).
    pub fn chmod(&self, readable: bool, writable: bool) -> Result<()> {
        self.h.check_open()?;
        let mut flags = 0;
        if readable {
            flags |= sys::uv_poll_event_UV_READABLE as c_int;
        }
        if writable {
            flags |= sys::uv_poll_event_UV_WRITABLE as c_int;
        }
        // SAFETY: an open handle.
        Error::check(unsafe { sys::uv_pipe_chmod(self.h.raw(), flags) }).map(drop)
    }

    /// Windows: how many pipe instances a server keeps ready (`uv_pipe_pending_instances`); no effect
    /// elsewhere.
    pub fn set_pending_instances(&self, count: i32) {
        // SAFETY: the handle is initialised; this sets a field (Windows) or does nothing.
        unsafe { sys::uv_pipe_pending_instances(self.h.raw(), count) }
    }

    /// How many handles received over this IPC pipe wait to be accepted (`uv_pipe_pending_count`).
    pub fn pending_count(&self) -> usize {
        // SAFETY: the handle is initialised.
        unsafe { sys::uv_pipe_pending_count(self.h.raw()) }.max(0) as usize
    }

    /// The type of the next pending handle (`uv_pipe_pending_type`).
    pub fn pending_type(&self) -> PendingType {
        // SAFETY: the handle is initialised.
        let t = unsafe { sys::uv_pipe_pending_type(self.h.raw()) };
        match t {
            sys::uv_handle_type_UV_TCP => PendingType::Tcp,
            sys::uv_handle_type_UV_NAMED_PIPE => PendingType::Pipe,
            sys::uv_handle_type_UV_UDP => PendingType::Udp,
            _ => PendingType::None,
        }
    }

    /// Accepts the next handle received over this IPC pipe (call from the read callback, while
    /// [`pending_count`](Pipe::pending_count) is non-zero). `EAGAIN` if none is pending.
    pub fn accept_pending(&self) -> Result<Pending> {
        self.h.check_open()?;
        let pending = match self.pending_type() {
            PendingType::Tcp => Pending::Tcp(Tcp::new_in(self.h.loop_inner())?),
            PendingType::Pipe => Pending::Pipe(Pipe::new_in(self.h.loop_inner(), false)?),
            PendingType::Udp => return Err(Error::ENOTSUP),
            PendingType::None => return Err(Error::EAGAIN),
        };
        let client = match &pending {
            Pending::Tcp(t) => t.as_stream_ptr(),
            Pending::Pipe(p) => p.as_stream_ptr(),
        };
        // SAFETY: both are initialised streams on the same loop; on failure `pending` is dropped (closed).
        Error::check(unsafe { sys::uv_accept(self.h.stream(), client) })?;
        Ok(pending)
    }

    /// Writes `data` together with a handle over an IPC pipe (`uv_write2`): the peer receives a duplicate of
    /// the handle's descriptor; ours is closed after the write completes (or at once if the write cannot
    /// start). Same ownership and ordering rules as [`write`](Pipe::write). Synchronous errors: `EINVAL` on a
    /// non-IPC pipe, `EBADF` if the handle has no socket yet (never bound or connected), `ENOTSUP` for a pipe
    /// on Windows (which sends TCP sockets only).
    pub fn write2<B: AsRef<[u8]> + 'static>(
        &self,
        data: B,
        send: SendHandle,
        cb: impl FnOnce(&Pipe, Result<()>) + 'static,
    ) -> Result<()> {
        if !self.is_ipc() {
            return Err(Error::EINVAL);
        }
        stream::write2(self, stream::One(data), send, SendHandle::stream_ptr, cb)
    }
}

/// `name` with the leading NUL that marks Linux's abstract namespace.
#[cfg(target_os = "linux")]
fn abstract_name(name: &[u8]) -> Vec<u8> {
    let mut full = Vec::with_capacity(name.len() + 2);
    full.push(0);
    full.extend_from_slice(name);
    full
}

/// Starts a connect to `name` (NUL-terminated; the terminator is not part of the name). The name is kept in
/// the request until the callback.
fn connect_impl<F: FnOnce(&Pipe, Result<()>) + 'static>(pipe: &Pipe, name: Vec<u8>, cb: F) -> Result<()> {
    // libuv on Unix keeps one connect request per handle and would overwrite (and so lose) a pending one.
    #[cfg(unix)]
    // SAFETY: the handle is initialised; this reads a field libuv maintains.
    if !unsafe { (*pipe.h.raw()).connect_req }.is_null() {
        return Err(Error::EALREADY);
    }
    stream::connect(pipe, name, cb, |req, name| {
        // SAFETY: a fresh request, an initialised handle (stream::connect checked it is open), the name kept in
        // the request box; the callback matches the box type made by stream::connect.
        unsafe {
            sys::uv_pipe_connect2(
                req,
                pipe.h.raw(),
                name.as_ptr().cast(),
                name.len() - 1,
                NO_TRUNCATE,
                Some(stream::on_connect::<Pipe, F, Vec<u8>>),
            )
        }
    })
}

fn read_name(get: impl Fn(*mut c_char, *mut usize) -> c_int) -> Result<PathBuf> {
    let mut buf = vec![0u8; 256];
    loop {
        let mut size = buf.len();
        let ret = get(buf.as_mut_ptr().cast(), &mut size);
        if ret == Error::ENOBUFS.code() {
            buf.resize(size + 1, 0);
            continue;
        }
        Error::check(ret)?;
        buf.truncate(size);
        #[cfg(unix)]
        return Ok(PathBuf::from(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&buf)));
        #[cfg(not(unix))]
        return Ok(PathBuf::from(String::from_utf8_lossy(&buf).into_owned()));
    }
}
