//! The async side of a libuv stream (Tcp, Pipe): `AsyncRead`/`AsyncWrite` over callbacks.
//!
//! Reading: libuv pushes chunks to a read callback; they are appended to a per-stream buffer that
//! `poll_read` drains. Reading pauses (`uv_read_stop`) when [`READ_HIGH`] bytes wait unread and resumes when
//! the reader catches up, so a slow reader never makes memory grow without bound.
//!
//! Writing: `poll_write` takes at most what fits under [`WRITE_HIGH`] (so at most 256 KiB per call, and a
//! short count when the caller offers more): it first tries the kernel directly (`uv_try_write`, no copy,
//! only when nothing is queued, so bytes stay in order); what the kernel does not take is copied into a queued
//! libuv write. At `WRITE_HIGH` bytes queued, `poll_write` waits. So a stream's user-space copy never exceeds
//! `WRITE_HIGH`, whatever size the caller writes; `write_all` loops with backpressure. A write error is
//! reported by the next `poll_write`/`poll_flush`. Bytes accepted by `poll_write` are never dropped silently:
//! if the stream is dropped with writes still queued, it *lingers* — the handle stays open (owned by the
//! engine's [`Lingering`] registry) until they reach the kernel, then closes.

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use super::Lingering;
use crate::error::Error;
use crate::uv::stream::{self as uvs, One, StreamKind};

/// Unread bytes at which reading pauses.
pub(crate) const READ_HIGH: usize = 256 * 1024;
/// Bytes in queued writes at which `poll_write` waits; also the most one `poll_write` takes.
pub(crate) const WRITE_HIGH: usize = 256 * 1024;

#[derive(Default)]
struct ReadState {
    buf: Vec<u8>,
    pos: usize,
    reading: bool,
    eof: bool,
    err: Option<Error>,
    waker: Option<Waker>,
}

#[derive(Default)]
struct WriteState {
    queued: usize,
    err: Option<Error>,
    waker: Option<Waker>,
    shutdown: Shutdown,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum Shutdown {
    #[default]
    None,
    Pending,
    Done,
}

/// A libuv stream with async read/write state. Shared (`Rc`) by the owning type and its halves.
pub(crate) struct Stream<T: StreamKind> {
    handle: T,
    rd: RefCell<ReadState>,
    wr: RefCell<WriteState>,
    /// The engine's registry of lingering handles; gone (or shut down) with the runtime.
    lingering_in: Weak<Lingering>,
    /// The key under which the runtime keeps this stream alive while it lingers.
    lingering: Cell<Option<usize>>,
    me: Weak<Stream<T>>,
}

fn set_waker(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(w) if w.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

fn wake(slot: &mut Option<Waker>) {
    if let Some(w) = slot.take() {
        w.wake();
    }
}

impl<T: StreamKind> Stream<T> {
    /// Whether this stream's runtime is gone (nothing runs its loop any more).
    pub(crate) fn runtime_gone(&self) -> bool {
        Lingering::is_gone(&self.lingering_in)
    }

    /// A stream over `handle`, which lingers in `lingering` if dropped with writes queued.
    pub(crate) fn new(handle: T, lingering: &Rc<Lingering>) -> Rc<Stream<T>> {
        Rc::new_cyclic(|me| Stream {
            handle,
            rd: RefCell::default(),
            wr: RefCell::default(),
            lingering_in: Rc::downgrade(lingering),
            lingering: Cell::new(None),
            me: me.clone(),
        })
    }

    pub(crate) fn handle(&self) -> &T {
        &self.handle
    }

    fn start_reading(&self) -> Result<(), Error> {
        let me = self.me.clone();
        uvs::read_start(&self.handle, move |_, data| {
            if let Some(s) = me.upgrade() {
                s.on_read(data);
            }
        })?;
        self.rd.borrow_mut().reading = true;
        Ok(())
    }

    fn on_read(&self, data: crate::Result<&[u8]>) {
        let mut rd = self.rd.borrow_mut();
        match data {
            Ok(bytes) => {
                rd.buf.extend_from_slice(bytes);
                if rd.buf.len() - rd.pos >= READ_HIGH {
                    rd.reading = false;
                    let _ = uvs::read_stop(&self.handle);
                }
            }
            Err(e) => {
                rd.reading = false;
                if e == Error::EOF {
                    rd.eof = true;
                } else {
                    rd.err = Some(e);
                }
            }
        }
        wake(&mut rd.waker);
    }

    pub(crate) fn poll_read(&self, cx: &mut Context<'_>, out: &mut [u8]) -> Poll<io::Result<usize>> {
        self.poll_read_with(cx, out.len(), |bytes| out[..bytes.len()].copy_from_slice(bytes))
    }

    /// `poll_read` for a destination that is not a plain slice (tokio's `ReadBuf`, whose spare room may be
    /// uninitialised): hands at most `max` buffered bytes to `take`, which copies them out, and returns their
    /// count. `take` is called at most once, and only when bytes are ready.
    pub(crate) fn poll_read_with(
        &self,
        cx: &mut Context<'_>,
        max: usize,
        take: impl FnOnce(&[u8]),
    ) -> Poll<io::Result<usize>> {
        self.poll_buffered(cx, max, true, take)
    }

    /// Copies the next bytes into `out` without taking them: the bytes libuv already read ahead (the next read
    /// returns exactly these first), else waits for some to arrive. Never asks the kernel directly, since the
    /// bytes it holds come after the buffered ones.
    pub(crate) fn poll_peek(&self, cx: &mut Context<'_>, out: &mut [u8]) -> Poll<io::Result<usize>> {
        self.poll_buffered(cx, out.len(), false, |bytes| out[..bytes.len()].copy_from_slice(bytes))
    }

    /// Hands at most `max` buffered bytes to `take`, and takes them out of the buffer if `consume`.
    fn poll_buffered(
        &self,
        cx: &mut Context<'_>,
        max: usize,
        consume: bool,
        take: impl FnOnce(&[u8]),
    ) -> Poll<io::Result<usize>> {
        let out_is_empty = max == 0;
        let mut rd = self.rd.borrow_mut();
        if rd.pos < rd.buf.len() {
            let n = max.min(rd.buf.len() - rd.pos);
            take(&rd.buf[rd.pos..rd.pos + n]);
            if !consume {
                return Poll::Ready(Ok(n));
            }
            rd.pos += n;
            if rd.pos == rd.buf.len() {
                rd.buf.clear();
                rd.pos = 0;
            }
            let resume = !rd.reading && !rd.eof && rd.err.is_none() && rd.buf.len() - rd.pos < READ_HIGH / 2;
            drop(rd);
            if resume {
                // Errors resurface through the read callback or the next poll.
                let _ = self.start_reading();
            }
            return Poll::Ready(Ok(n));
        }
        if out_is_empty {
            return Poll::Ready(Ok(0));
        }
        if let Some(e) = rd.err {
            return Poll::Ready(Err(e.into()));
        }
        if rd.eof {
            return Poll::Ready(Ok(0));
        }
        set_waker(&mut rd.waker, cx);
        let start = !rd.reading;
        drop(rd);
        if start {
            if let Err(e) = self.start_reading() {
                return Poll::Ready(Err(e.into()));
            }
        }
        Poll::Pending
    }

    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        // An empty write does nothing, whatever the stream's state (as on the other engines).
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let mut wr = self.wr.borrow_mut();
        if let Some(e) = wr.err {
            return Poll::Ready(Err(e.into()));
        }
        if wr.shutdown != Shutdown::None {
            return Poll::Ready(Err(Error::EPIPE.into()));
        }
        if wr.queued >= WRITE_HIGH {
            set_waker(&mut wr.waker, cx);
            return Poll::Pending;
        }
        // Take only what fits under the high-water mark: the rest stays the caller's, and the short count
        // tells it so (a huge write must not become a huge copy).
        let data = &data[..data.len().min(WRITE_HIGH - wr.queued)];
        let mut written = 0;
        if wr.queued == 0 {
            match uvs::try_write(&self.handle, data) {
                Ok(n) if n == data.len() => return Poll::Ready(Ok(n)),
                Ok(n) => written = n,
                Err(Error::EAGAIN) | Err(Error::ENOSYS) => {}
                Err(e) => return Poll::Ready(Err(e.into())),
            }
        }
        let rest = &data[written..];
        let len = rest.len();
        let me = self.me.clone();
        if let Err(e) = uvs::write(&self.handle, One(rest.to_vec()), move |_, res| {
            if let Some(s) = me.upgrade() {
                s.on_written(len, res);
            }
        }) {
            return Poll::Ready(if written > 0 { Ok(written) } else { Err(e.into()) });
        }
        wr.queued += len;
        Poll::Ready(Ok(data.len()))
    }

    fn on_written(&self, len: usize, res: crate::Result<()>) {
        let mut wr = self.wr.borrow_mut();
        wr.queued -= len;
        if let Err(e) = res {
            wr.err.get_or_insert(e);
        }
        wake(&mut wr.waker);
        let idle = wr.queued == 0 && wr.shutdown != Shutdown::Pending;
        drop(wr);
        if idle {
            self.stop_lingering();
        }
    }

    pub(crate) fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut wr = self.wr.borrow_mut();
        if let Some(e) = wr.err {
            return Poll::Ready(Err(e.into()));
        }
        if wr.queued == 0 {
            return Poll::Ready(Ok(()));
        }
        set_waker(&mut wr.waker, cx);
        Poll::Pending
    }

    /// Flushes, then shuts the write side down (`uv_shutdown`: the peer reads end-of-stream).
    pub(crate) fn poll_shutdown(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.poll_flush(cx)?.is_pending() {
            return Poll::Pending;
        }
        let mut wr = self.wr.borrow_mut();
        match wr.shutdown {
            Shutdown::Done => {
                return Poll::Ready(match wr.err {
                    Some(e) => Err(e.into()),
                    None => Ok(()),
                })
            }
            Shutdown::Pending => {
                set_waker(&mut wr.waker, cx);
                return Poll::Pending;
            }
            Shutdown::None => {}
        }
        let me = self.me.clone();
        let started = uvs::shutdown(&self.handle, move |_, res| {
            if let Some(s) = me.upgrade() {
                let mut wr = s.wr.borrow_mut();
                wr.shutdown = Shutdown::Done;
                if let Err(e) = res {
                    if e != Error::ENOTCONN {
                        wr.err.get_or_insert(e);
                    }
                }
                wake(&mut wr.waker);
                drop(wr);
                s.stop_lingering();
            }
        });
        match started {
            Ok(()) => {
                wr.shutdown = Shutdown::Pending;
                set_waker(&mut wr.waker, cx);
                Poll::Pending
            }
            // Already shut down by the peer's reset, or not connected: nothing left to flush.
            Err(Error::ENOTCONN) => {
                wr.shutdown = Shutdown::Done;
                Poll::Ready(Ok(()))
            }
            Err(e) => Poll::Ready(Err(e.into())),
        }
    }

    /// For a hand-over: stops reading and takes the bytes received but not read yet.
    fn stop_and_take_unread(&self) -> Vec<u8> {
        let _ = uvs::read_stop(&self.handle);
        let mut rd = self.rd.borrow_mut();
        rd.reading = false;
        let pos = std::mem::take(&mut rd.pos);
        let unread = rd.buf.split_off(pos);
        rd.buf.clear();
        unread
    }

    /// Hands the connection over: stops reading, and gives back the socket (blocking, as std makes them) with
    /// the bytes received but not read yet. The caller flushed first; `InvalidInput` if something else still
    /// owns the stream.
    pub(crate) fn into_socket(this: Rc<Stream<T>>) -> io::Result<(socket2::Socket, Vec<u8>)>
    where
        T: super::SocketKind,
    {
        let unread = this.stop_and_take_unread();
        let this = Rc::try_unwrap(this)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "the connection has other owners"))?;
        Ok((this.handle.into_socket()?, unread))
    }

    /// Called when the last user-facing owner goes away: keeps the stream alive while writes or a shutdown
    /// are still in flight, so no accepted byte is lost.
    pub(crate) fn release(&self) {
        let wr = self.wr.borrow();
        let busy = wr.queued > 0 || wr.shutdown == Shutdown::Pending;
        drop(wr);
        if !busy {
            return;
        }
        let _ = uvs::read_stop(&self.handle);
        if let (Some(registry), Some(me)) = (self.lingering_in.upgrade(), self.me.upgrade()) {
            self.lingering.set(Some(registry.hold(me)));
        }
    }

    fn stop_lingering(&self) {
        if let Some(key) = self.lingering.take() {
            if let Some(registry) = self.lingering_in.upgrade() {
                registry.release(key);
            }
        }
    }
}

impl<T: StreamKind> Stream<T> {
    /// For the `Drop` of a user-facing owner (a stream or one of its halves): lingers if it was the last
    /// owner and writes are still queued.
    pub(crate) fn release_if_last(io: &Rc<Stream<T>>) {
        if Rc::strong_count(io) == 1 {
            io.release();
        }
    }
}
