//! What Tcp, Pipe and Tty share: reading, writing, shutdown, listen/accept (`uv_stream_t`).
//!
//! The stream operations are written once here as generic functions over [`StreamKind`], and every stream type
//! gets them as inherent methods through `impl_stream!` (no trait to import).
//!
//! Reads: libuv asks for a buffer before each read (`alloc_cb`); we lend the loop's one shared 64 KiB buffer
//! ([`SharedReadBuf`](super::read_buf::SharedReadBuf)), so reading allocates nothing. The read callback sees the bytes as `&[u8]` for its own
//! duration only, then the buffer goes back to the loop. If the shared buffer is already lent (libuv on Windows
//! may keep a read posted), a fresh buffer is used for that read and freed after it.
//!
//! Writes: the data is moved into the write request and stays there, untouched, until libuv's write callback
//! (also when the stream is dropped first: libuv then completes queued writes with `ECANCELED`).

use std::ffi::{c_char, c_int};

use libuv_sys2 as sys;

use super::handle::{Callback, Owned, RawHandle};
use super::req::{self, ReqBox};
use crate::error::{Error, Result};

/// A stream type (Tcp, Pipe, Tty) as the generic code sees it.
pub(crate) trait StreamKind: Sized + 'static {
    /// The libuv struct.
    type Raw: RawHandle;
    /// The owning pointer inside the wrapper.
    fn owned(&self) -> &Owned<Self::Raw, StreamState<Self>>;
    /// Wraps an owning pointer (and builds views in callbacks).
    fn wrap(h: Owned<Self::Raw, StreamState<Self>>) -> Self;
    /// A new, unconnected handle of the same kind on the same loop, for `accept`.
    fn new_peer(server: &Self) -> Result<Self>;
}

type ReadCb<T> = dyn FnMut(&T, Result<&[u8]>);
type ConnectionCb<T> = dyn FnMut(&T, Result<()>);

/// The Rust state beside every stream handle.
pub(crate) struct StreamState<T> {
    read_cb: Callback<ReadCb<T>>,
    connection_cb: Callback<ConnectionCb<T>>,
}

impl<T> Default for StreamState<T> {
    fn default() -> Self {
        StreamState { read_cb: Callback::default(), connection_cb: Callback::default() }
    }
}

// ----- reading -----

pub(crate) fn read_start<T: StreamKind>(s: &T, cb: impl FnMut(&T, Result<&[u8]>) + 'static) -> Result<()> {
    let h = s.owned();
    h.check_open()?;
    h.state().read_cb.set_reusing(cb, |b| b);
    // SAFETY: the handle is an initialised, open stream; the trampolines match its box type.
    let ret = unsafe { sys::uv_read_start(h.stream(), Some(on_alloc::<T>), Some(on_read::<T>)) };
    match Error::check(ret) {
        // Already reading: libuv keeps calling our trampolines, which now run the new closure.
        Ok(_) | Err(Error::EALREADY) => Ok(()),
        Err(e) => {
            // Not reading (e.g. ENOTCONN): do not keep a closure that can never run.
            h.state().read_cb.clear();
            Err(e)
        }
    }
}

pub(crate) fn read_stop<T: StreamKind>(s: &T) -> Result<()> {
    // SAFETY: the handle is initialised; stopping a stopped stream is a no-op.
    Error::check(unsafe { sys::uv_read_stop(s.owned().stream()) }).map(drop)
}

unsafe extern "C" fn on_alloc<T: StreamKind>(
    handle: *mut sys::uv_handle_t,
    _suggested: usize,
    buf: *mut sys::uv_buf_t,
) {
    // SAFETY: libuv passes one of our stream handles (alive until its close callback) and a valid out-pointer.
    unsafe {
        let s = Owned::<T::Raw, StreamState<T>>::view(handle.cast(), T::wrap);
        *buf = s.owned().loop_inner().read_buf.lend();
    }
}

unsafe extern "C" fn on_read<T: StreamKind>(stream: *mut sys::uv_stream_t, nread: isize, buf: *const sys::uv_buf_t) {
    // SAFETY: libuv passes one of our stream handles, alive until its close callback; the view lives for this
    // call only.
    let s = unsafe { Owned::<T::Raw, StreamState<T>>::view(stream.cast(), T::wrap) };
    // SAFETY: `buf` is the buffer our alloc callback returned (or a null buffer on some errors).
    let base = unsafe { (*buf).base };
    let h = s.owned();
    if nread != 0 {
        let result = if nread > 0 {
            // SAFETY: libuv wrote `nread` bytes at `base`, inside the READ_BUF_SIZE bytes we lent; nothing else
            // touches the buffer until `give_back` below, and the slice does not escape the callback.
            Ok(unsafe { std::slice::from_raw_parts(base.cast::<u8>(), nread as usize) })
        } else {
            Err(Error::from_code(nread as i32))
        };
        h.invoke(|st| &st.read_cb, |cb| cb(&s, result));
    }
    // SAFETY: the buffer came from our alloc callback and the slice made from it is gone.
    unsafe { h.loop_inner().read_buf.give_back(base) };
}

// ----- writing -----

/// A libuv buffer descriptor for `bytes`; `EINVAL` if the length does not fit (`ULONG` on Windows).
#[allow(clippy::useless_conversion)] // `len` is `usize` on Unix but `u32` on Windows
fn uv_buf(bytes: &[u8]) -> Result<sys::uv_buf_t> {
    let len = bytes.len().try_into().map_err(|_| Error::EINVAL)?;
    Ok(sys::uv_buf_t { base: bytes.as_ptr() as *mut c_char, len })
}

/// What a write request owns until libuv's callback: one buffer or several.
pub(crate) trait WriteBufs: 'static {
    /// Calls `f` with buffer descriptors pointing into `self`, which the caller keeps in place and unchanged
    /// until the write completes (libuv copies the descriptors, not the bytes).
    fn with_bufs(&self, f: impl FnOnce(&[sys::uv_buf_t]) -> c_int) -> Result<c_int>;
}

/// One buffer ([`write`]).
pub(crate) struct One<B>(pub(crate) B);

impl<B: AsRef<[u8]> + 'static> WriteBufs for One<B> {
    fn with_bufs(&self, f: impl FnOnce(&[sys::uv_buf_t]) -> c_int) -> Result<c_int> {
        Ok(f(&[uv_buf(self.0.as_ref())?]))
    }
}

/// Several buffers written in order, as one request ([`write_vectored`]).
pub(crate) struct Many<B>(pub(crate) Vec<B>);

impl<B: AsRef<[u8]> + 'static> WriteBufs for Many<B> {
    fn with_bufs(&self, f: impl FnOnce(&[sys::uv_buf_t]) -> c_int) -> Result<c_int> {
        // Descriptors for up to 16 buffers live on the stack; more take one temporary Vec.
        const STACK: usize = 16;
        let empty = sys::uv_buf_t { base: std::ptr::null_mut(), len: 0 };
        if self.0.len() <= STACK {
            let mut bufs = [empty; STACK];
            for (slot, b) in bufs.iter_mut().zip(&self.0) {
                *slot = uv_buf(b.as_ref())?;
            }
            Ok(f(&bufs[..self.0.len()]))
        } else {
            let bufs = self.0.iter().map(|b| uv_buf(b.as_ref())).collect::<Result<Vec<_>>>()?;
            Ok(f(&bufs))
        }
    }
}

struct WriteState<D, F, K> {
    data: D,
    cb: Option<F>,
    /// Whatever else libuv reads until the write completes (the handle `write2` sends).
    _keep: K,
}

pub(crate) fn write<T, D, F>(s: &T, data: D, cb: F) -> Result<()>
where
    T: StreamKind,
    D: WriteBufs,
    F: FnOnce(&T, Result<()>) + 'static,
{
    write_with(s, data, (), cb, |req, stream, bufs, ()| {
        // SAFETY: `req` is a fresh request in its box, `stream` an open stream, `bufs` point into the box.
        unsafe { sys::uv_write(req, stream, bufs.as_ptr(), bufs.len() as _, Some(on_write::<T, D, F, ()>)) }
    })
}

/// Sends `data` and a handle over an IPC pipe (`uv_write2`). `send` is kept in the request until the write
/// completes: libuv reads its descriptor only when the write is actually performed.
pub(crate) fn write2<T, D, F, K>(
    s: &T,
    data: D,
    send: K,
    send_ptr: fn(&K) -> *mut sys::uv_stream_t,
    cb: F,
) -> Result<()>
where
    T: StreamKind,
    D: WriteBufs,
    F: FnOnce(&T, Result<()>) + 'static,
    K: 'static,
{
    write_with(s, data, send, cb, |req, stream, bufs, send| {
        // SAFETY: as in `write`; the sent handle lives in the request box until the write callback.
        unsafe {
            sys::uv_write2(req, stream, bufs.as_ptr(), bufs.len() as _, send_ptr(send), Some(on_write::<T, D, F, K>))
        }
    })
}

fn write_with<T, D, F, K>(
    s: &T,
    data: D,
    keep: K,
    cb: F,
    start: impl FnOnce(*mut sys::uv_write_t, *mut sys::uv_stream_t, &[sys::uv_buf_t], &K) -> c_int,
) -> Result<()>
where
    T: StreamKind,
    D: WriteBufs,
    F: FnOnce(&T, Result<()>) + 'static,
    K: 'static,
{
    let h = s.owned();
    h.check_open()?;
    let state = WriteState { data, cb: Some(cb), _keep: keep };
    req::submit(h.loop_inner(), state, |_, ptr: *mut ReqBox<sys::uv_write_t, WriteState<D, F, K>>| {
        // SAFETY: `ptr` is the live box; the data inside stays put (the box never moves) and is not touched
        // until on_write.
        let (data, keep) = unsafe { (&(*ptr).state.data, &(*ptr).state._keep) };
        // SAFETY: the request is the first field of the box.
        let req = unsafe { &raw mut (*ptr).raw };
        // A buffer too large to describe fails like the start call would, so `submit` frees the box.
        data.with_bufs(|bufs| start(req, h.stream(), bufs, keep)).unwrap_or_else(|e| e.code())
    })
}

unsafe extern "C" fn on_write<T: StreamKind, D, F: FnOnce(&T, Result<()>), K>(
    req: *mut sys::uv_write_t,
    status: c_int,
) {
    // SAFETY: `req` is the request of a box made by write_with with these types; its handle is the stream it
    // was written on, alive until its close callback, which comes after all write callbacks.
    unsafe {
        let handle = (*req).handle;
        req::complete(req, |b: &mut ReqBox<sys::uv_write_t, WriteState<D, F, K>>| {
            let s = Owned::<T::Raw, StreamState<T>>::view(handle.cast(), T::wrap);
            if let Some(cb) = b.state.cb.take() {
                cb(&s, Error::check(status).map(drop));
            }
        });
    }
}

pub(crate) fn try_write<T: StreamKind>(s: &T, data: &[u8]) -> Result<usize> {
    let h = s.owned();
    h.check_open()?;
    let buf = uv_buf(data)?;
    // SAFETY: the stream is open; libuv writes synchronously from `data`, which outlives the call.
    let n = unsafe { sys::uv_try_write(h.stream(), &buf, 1) };
    Error::check(n).map(|n| n as usize)
}

// ----- shutdown, listen, accept -----

pub(crate) fn shutdown<T: StreamKind, F: FnOnce(&T, Result<()>) + 'static>(s: &T, cb: F) -> Result<()> {
    let h = s.owned();
    h.check_open()?;
    req::submit(h.loop_inner(), Some(cb), |_, ptr: *mut ReqBox<sys::uv_shutdown_t, Option<F>>| {
        // SAFETY: a fresh request in its box, an open stream, a callback matching the box type.
        unsafe { sys::uv_shutdown(&raw mut (*ptr).raw, h.stream(), Some(on_shutdown::<T, F>)) }
    })
}

unsafe extern "C" fn on_shutdown<T: StreamKind, F: FnOnce(&T, Result<()>)>(
    req: *mut sys::uv_shutdown_t,
    status: c_int,
) {
    // SAFETY: as in on_write, for a shutdown request made by `shutdown`.
    unsafe {
        let handle = (*req).handle;
        req::complete(req, |b: &mut ReqBox<sys::uv_shutdown_t, Option<F>>| {
            let s = Owned::<T::Raw, StreamState<T>>::view(handle.cast(), T::wrap);
            if let Some(cb) = b.state.take() {
                cb(&s, Error::check(status).map(drop));
            }
        });
    }
}

pub(crate) fn listen<T: StreamKind>(s: &T, backlog: i32, cb: impl FnMut(&T, Result<()>) + 'static) -> Result<()> {
    let h = s.owned();
    h.check_open()?;
    h.state().connection_cb.set_reusing(cb, |b| b);
    // SAFETY: an open stream; the trampoline matches its box type.
    Error::check(unsafe { sys::uv_listen(h.stream(), backlog, Some(on_connection::<T>)) }).map(drop)
}

unsafe extern "C" fn on_connection<T: StreamKind>(server: *mut sys::uv_stream_t, status: c_int) {
    // SAFETY: libuv passes our listening stream, alive until its close callback.
    let s = unsafe { Owned::<T::Raw, StreamState<T>>::view(server.cast(), T::wrap) };
    s.owned().invoke(|st| &st.connection_cb, |cb| cb(&s, Error::check(status).map(drop)));
}

pub(crate) fn accept<T: StreamKind>(server: &T) -> Result<T> {
    server.owned().check_open()?;
    let client = T::new_peer(server)?;
    // SAFETY: both are initialised streams of the same loop; on failure `client` is simply dropped (closed).
    Error::check(unsafe { sys::uv_accept(server.owned().stream(), client.owned().stream()) })?;
    Ok(client)
}

pub(crate) fn write_queue_size<T: StreamKind>(s: &T) -> usize {
    // SAFETY: the handle is initialised; this reads a field.
    unsafe { sys::uv_stream_get_write_queue_size(s.owned().stream()) }
}

pub(crate) fn is_readable<T: StreamKind>(s: &T) -> bool {
    // SAFETY: the handle is initialised.
    unsafe { sys::uv_is_readable(s.owned().stream()) != 0 }
}

pub(crate) fn is_writable<T: StreamKind>(s: &T) -> bool {
    // SAFETY: the handle is initialised.
    unsafe { sys::uv_is_writable(s.owned().stream()) != 0 }
}

pub(crate) fn set_blocking<T: StreamKind>(s: &T, blocking: bool) -> Result<()> {
    s.owned().check_open()?;
    // SAFETY: an open stream.
    Error::check(unsafe { sys::uv_stream_set_blocking(s.owned().stream(), blocking as c_int) }).map(drop)
}

/// The stream methods, as inherent methods of a stream type (`$t: StreamKind`).
macro_rules! impl_stream {
    ($t:ty) => {
        impl $t {
            /// Starts reading (`uv_read_start`): `cb` gets each chunk as it arrives, lent for the call only; at
            /// the end of the stream it gets `Err(Error::EOF)`, and on failure the error (reading stops then).
            /// On a stream that is already reading, this replaces the callback. `ENOTCONN` if the stream is not
            /// readable (e.g. a listener), `EINVAL` if it is closing.
            pub fn read_start(&self, cb: impl FnMut(&$t, $crate::Result<&[u8]>) + 'static) -> $crate::Result<()> {
                $crate::uv::stream::read_start(self, cb)
            }

            /// Stops reading (`uv_read_stop`); [`read_start`](Self::read_start) resumes with a new callback.
            pub fn read_stop(&self) -> $crate::Result<()> {
                $crate::uv::stream::read_stop(self)
            }

            /// Queues `data` for writing (`uv_write`). The data is owned by the request until `cb` runs with the
            /// outcome; writes complete in order. If the stream is dropped first, queued writes complete with
            /// `ECANCELED` — call [`shutdown`](Self::shutdown) first for a graceful close. Synchronous errors:
            /// `EPIPE` after shutdown or when not writable, `EBADF` when not connected, `EINVAL` when closing
            /// or when `data` is larger than libuv accepts in one write (2 GiB).
            ///
            /// To send bytes you only borrow (such as the slice a read callback lends), copy them:
            /// `Vec::from(bytes)`. (Clippy's `unnecessary_to_owned` wrongly flags `bytes.to_vec()` here, as it
            /// misses the `'static` bound: rust-clippy#15252.)
            pub fn write<B>(&self, data: B, cb: impl FnOnce(&$t, $crate::Result<()>) + 'static) -> $crate::Result<()>
            where
                B: AsRef<[u8]> + 'static,
            {
                $crate::uv::stream::write(self, $crate::uv::stream::One(data), cb)
            }

            /// Queues several buffers as one write, sent in order (`uv_write` with `nbufs > 1`); same rules as
            /// [`write`](Self::write). `EINVAL` for an empty `Vec`.
            pub fn write_vectored<B>(
                &self,
                bufs: Vec<B>,
                cb: impl FnOnce(&$t, $crate::Result<()>) + 'static,
            ) -> $crate::Result<()>
            where
                B: AsRef<[u8]> + 'static,
            {
                $crate::uv::stream::write(self, $crate::uv::stream::Many(bufs), cb)
            }

            /// Writes what the kernel takes right now without queuing (`uv_try_write`): the byte count, or
            /// `EAGAIN` if nothing could be written (also while earlier writes are queued). Not connected yet:
            /// `EBADF` on Unix, `EPIPE` on Windows; Windows named pipes always answer `EAGAIN`.
            pub fn try_write(&self, data: &[u8]) -> $crate::Result<usize> {
                $crate::uv::stream::try_write(self, data)
            }

            /// Shuts down the write side once queued writes are done (`uv_shutdown`); `cb` gets the outcome.
            pub fn shutdown(&self, cb: impl FnOnce(&$t, $crate::Result<()>) + 'static) -> $crate::Result<()> {
                $crate::uv::stream::shutdown(self, cb)
            }

            /// Listens for connections (`uv_listen`); `cb` runs for each one (then call
            /// [`accept`](Self::accept), or the connection stays pending and no other is reported) or with
            /// an error. Listening again replaces the callback.
            ///
            /// Out of descriptors (`EMFILE`), libuv on Unix sheds load: it accepts and closes the pending
            /// connections with a reserved descriptor and does not call `cb`.
            pub fn listen(
                &self,
                backlog: i32,
                cb: impl FnMut(&$t, $crate::Result<()>) + 'static,
            ) -> $crate::Result<()> {
                $crate::uv::stream::listen(self, backlog, cb)
            }

            /// Accepts a pending connection as a new handle on the same loop (`uv_accept`); call it from the
            /// [`listen`](Self::listen) callback. `EAGAIN` when no connection is pending.
            pub fn accept(&self) -> $crate::Result<$t> {
                $crate::uv::stream::accept(self)
            }

            /// Bytes queued for writing and not yet handed to the kernel (`uv_stream_get_write_queue_size`).
            pub fn write_queue_size(&self) -> usize {
                $crate::uv::stream::write_queue_size(self)
            }

            /// Whether the stream can be read from (`uv_is_readable`).
            pub fn is_readable(&self) -> bool {
                $crate::uv::stream::is_readable(self)
            }

            /// Whether the stream can be written to (`uv_is_writable`).
            pub fn is_writable(&self) -> bool {
                $crate::uv::stream::is_writable(self)
            }

            /// Makes writes blocking (`uv_stream_set_blocking`); meant for pipes and ttys on the way out.
            pub fn set_blocking(&self, blocking: bool) -> $crate::Result<()> {
                $crate::uv::stream::set_blocking(self, blocking)
            }
        }
    };
}
pub(crate) use impl_stream;

/// Connect requests (Tcp and Pipe): the callback gets the stream back.
pub(crate) fn connect<T, F, K>(
    s: &T,
    keep: K,
    cb: F,
    start: impl FnOnce(*mut sys::uv_connect_t, &K) -> c_int,
) -> Result<()>
where
    T: StreamKind,
    F: FnOnce(&T, Result<()>) + 'static,
    K: 'static,
{
    let h = s.owned();
    h.check_open()?;
    req::submit(h.loop_inner(), (keep, Some(cb)), |_, ptr: *mut ReqBox<sys::uv_connect_t, (K, Option<F>)>| {
        // SAFETY: `ptr` is the live box; `keep` (the address) stays in it until the callback.
        unsafe { start(&raw mut (*ptr).raw, &(*ptr).state.0) }
    })
}

/// The connect callback for requests made by [`connect`].
pub(crate) unsafe extern "C" fn on_connect<T: StreamKind, F: FnOnce(&T, Result<()>), K>(
    req: *mut sys::uv_connect_t,
    status: c_int,
) {
    // SAFETY: as in on_write, for a connect request made by `connect`.
    unsafe {
        let handle = (*req).handle;
        req::complete(req, |b: &mut ReqBox<sys::uv_connect_t, (K, Option<F>)>| {
            let s = Owned::<T::Raw, StreamState<T>>::view(handle.cast(), T::wrap);
            if let Some(cb) = b.state.1.take() {
                cb(&s, Error::check(status).map(drop));
            }
        });
    }
}
