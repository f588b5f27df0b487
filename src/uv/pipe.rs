//! [`Pipe`]: Unix domain sockets and Windows named pipes, plus IPC between processes (`uv_pipe_t`).

use std::ffi::{c_char, c_int};
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
/// Close semantics are those of every stream: dropping closes at once and cancels queued writes with
/// `ECANCELED`; [`shutdown`](Pipe::shutdown) first for a graceful end.
///
/// ```
/// # #[cfg(unix)] {
/// use uvio::uv::{Loop, Pipe, RunMode};
/// let dir = std::env::temp_dir().join(format!("uvio-doc-pipe-{}", std::process::id()));
/// let _ = std::fs::remove_file(&dir);
/// let lp = Loop::new().unwrap();
/// let server = Pipe::new(&lp, false).unwrap();
/// server.bind(&dir).unwrap();
/// server.listen(16, |srv, _| {
///     let conn = srv.accept().unwrap();
///     conn.write(b"hi".to_vec(), |_, _| {}).unwrap(); // conn is dropped here: the write is cancelled
/// }).unwrap();
/// let client = Pipe::new(&lp, false).unwrap();
/// client.connect(&dir, |_, res| assert!(res.is_ok())).unwrap();
/// lp.run(uvio::uv::RunMode::Once).unwrap();
/// drop((server, client));
/// lp.run(RunMode::Default).unwrap();
/// std::fs::remove_file(&dir).unwrap();
/// # }
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
        Pipe::new_in(server.h.loop_inner(), server.is_ipc())
    }
}

/// The type of a handle waiting on an IPC pipe ([`Pipe::pending_type`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingType {
    /// A TCP socket: accept it with [`Pipe::accept_pending`] as [`Pending::Tcp`].
    Tcp,
    /// A pipe.
    Pipe,
    /// A UDP socket (Windows only sends these; uvio does not accept them yet).
    Udp,
    /// Nothing pending.
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

    /// Takes over an open descriptor — a pipe end, a Unix socket, a file (`uv_pipe_open`).
    #[cfg(unix)]
    pub fn open(lp: &Loop, fd: std::os::fd::OwnedFd, ipc: bool) -> Result<Pipe> {
        use std::os::fd::{FromRawFd, IntoRawFd};
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

    /// Binds to a filesystem path (Unix) or pipe name like `\\.\pipe\name` (Windows) (`uv_pipe_bind2`). A NUL
    /// byte in the name is `EINVAL`; a name too long for `sockaddr_un` is `ENAMETOOLONG` (no truncation).
    pub fn bind(&self, name: &Path) -> Result<()> {
        self.h.check_open()?;
        let c = cpath(name)?;
        let len = c.as_bytes().len();
        // SAFETY: an open handle; `c` outlives the call (libuv copies the name).
        Error::check(unsafe { sys::uv_pipe_bind2(self.h.raw(), c.as_ptr(), len, sys::UV_PIPE_NO_TRUNCATE) }).map(drop)
    }

    /// Connects to a path or pipe name (`uv_pipe_connect2`); `cb` gets the outcome (`ENOENT`,
    /// `ECONNREFUSED`, `ECANCELED` if the handle was dropped first).
    pub fn connect(&self, name: &Path, cb: impl FnOnce(&Pipe, Result<()>) + 'static) -> Result<()> {
        fn go<F: FnOnce(&Pipe, Result<()>) + 'static>(pipe: &Pipe, name: &Path, cb: F) -> Result<()> {
            let c = cpath(name)?;
            stream::connect(pipe, c, cb, |req, c| {
                let len = c.as_bytes().len();
                // SAFETY: a fresh request, an open handle, the name kept in the request box; the callback
                // matches the box type made by stream::connect.
                unsafe {
                    sys::uv_pipe_connect2(
                        req,
                        pipe.h.raw(),
                        c.as_ptr(),
                        len,
                        sys::UV_PIPE_NO_TRUNCATE,
                        Some(stream::on_connect::<Pipe, F, std::ffi::CString>),
                    )
                }
            })
        }
        go(self, name, cb)
    }

    /// The name this pipe is bound to (`uv_pipe_getsockname`).
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
    /// the handle's descriptor; ours is closed after the write completes. `EINVAL` on a non-IPC pipe. Same ownership and ordering rules as
    /// [`write`](Pipe::write).
    pub fn write2<B: AsRef<[u8]> + 'static>(
        &self,
        data: B,
        send: SendHandle,
        cb: impl FnOnce(&Pipe, Result<()>) + 'static,
    ) -> Result<()> {
        if !self.is_ipc() {
            return Err(Error::EINVAL);
        }
        stream::write2(self, data, send, SendHandle::stream_ptr, cb)
    }
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
