//! The libuv engine's listener: the accept side of every listening libuv stream (TCP, Unix sockets, Windows
//! named pipes).
//!
//! libuv announces each connection with the listen callback; [`Listener`] counts them, and `poll_accept`
//! takes one with `uv_accept` when the caller asks. A connection is never accepted into nowhere: an `accept`
//! future dropped before it was woken leaves the connection pending for the next one.

use std::cell::RefCell;
use std::io;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use super::Lingering;
use crate::error::Error;
use crate::uv::stream::{self as uvs, StreamKind};

/// A listening uv stream and what its listen callback reported.
pub(crate) struct Listener<T: StreamKind> {
    handle: T,
    state: Rc<RefCell<ListenState>>,
    /// Gone with the runtime that runs the handle's loop: then `accept` fails instead of waiting forever.
    lingering_in: Weak<Lingering>,
}

#[derive(Default)]
struct ListenState {
    /// Connections libuv announced and we have not accepted yet.
    pending: usize,
    /// An error libuv reported for a connection (e.g. `EMFILE`), for the next `accept`.
    err: Option<Error>,
    waker: Option<Waker>,
}

impl<T: StreamKind> Listener<T> {
    /// Starts listening on a bound handle (`uv_listen`) of the engine whose registry is `lingering`.
    pub(crate) fn listen(handle: T, backlog: i32, lingering: &Rc<Lingering>) -> io::Result<Listener<T>> {
        let state: Rc<RefCell<ListenState>> = Rc::default();
        let s = Rc::downgrade(&state);
        uvs::listen(&handle, backlog, move |_, status| {
            if let Some(s) = s.upgrade() {
                let mut s = s.borrow_mut();
                match status {
                    Ok(()) => s.pending += 1,
                    Err(e) => s.err = Some(e),
                }
                if let Some(w) = s.waker.take() {
                    w.wake();
                }
            }
        })?;
        Ok(Listener { handle, state, lingering_in: Rc::downgrade(lingering) })
    }

    /// An accepted connection as a stream of this listener's engine.
    pub(crate) fn stream(&self, conn: T) -> io::Result<Rc<super::Stream<T>>> {
        let registry = self.lingering_in.upgrade().ok_or_else(crate::error::runtime_gone)?;
        Ok(super::Stream::new(conn, &registry))
    }

    /// The listening handle.
    pub(crate) fn handle(&self) -> &T {
        &self.handle
    }

    /// Stops listening here: the handle, and the connections libuv already accepted for it (at most one on
    /// Unix, where libuv stops accepting until the announced one is taken; several on Windows).
    fn into_parts(self) -> io::Result<(T, Vec<T>)> {
        let pending = std::mem::take(&mut self.state.borrow_mut().pending);
        let accepted = (0..pending).map(|_| uvs::accept(&self.handle)).collect::<Result<Vec<T>, Error>>()?;
        Ok((self.handle, accepted))
    }

    /// Accepts the next connection (`uv_accept`), or registers the waker until libuv announces one.
    pub(crate) fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        if Lingering::is_gone(&self.lingering_in) {
            return Poll::Ready(Err(crate::error::runtime_gone()));
        }
        let mut s = self.state.borrow_mut();
        if let Some(e) = s.err.take() {
            return Poll::Ready(Err(e.into()));
        }
        if s.pending == 0 {
            match &s.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => s.waker = Some(cx.waker().clone()),
            }
            return Poll::Pending;
        }
        s.pending -= 1;
        drop(s);
        Poll::Ready(uvs::accept(&self.handle).map_err(io::Error::from))
    }
}

impl<T: super::SocketKind> Listener<T> {
    /// Hands the listening socket over (blocking), with the connections libuv already accepted for it.
    pub(crate) fn into_socket(self) -> io::Result<(socket2::Socket, Vec<socket2::Socket>)> {
        let (handle, accepted) = self.into_parts()?;
        let accepted = accepted.into_iter().map(T::into_socket).collect::<io::Result<_>>()?;
        Ok((handle.into_socket()?, accepted))
    }
}
