//! A listening stream socket on the ring: one multishot accept, accepted descriptors queued (see `net.rs`); or,
//! for a socket several rings accept from, one single-shot accept at a time.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use io_uring::{opcode, types};
use socket2::{SockAddr, Socket, Type};

use super::super::{Driver, Pending};
use super::{register, wake, ConnShared, NetOp, Stream, Tie};
use crate::error::runtime_gone;

/// Accepted connections a listener queues before it stops accepting (until the queue drains).
pub(crate) const ACCEPT_QUEUE: usize = 256;

struct ListenState {
    /// The `user_data` of the multishot accept in flight.
    accept: Option<u64>,
    /// A cancel of it is on its way (the queue is full, or the listener gone).
    cancelling: bool,
    queue: VecDeque<OwnedFd>,
    err: Option<io::Error>,
    waker: Option<Waker>,
    /// The listener is gone: descriptors still arriving are closed.
    closed: bool,
    /// Shared with other rings: one single-shot accept per wait instead of the multishot one, so that a ring
    /// takes a connection only when its task asks for one. The kernel wakes one waiting accept per connection
    /// (io_uring waits exclusively for accepts), and a re-armed accept queues behind the other rings' ones, so
    /// idle rings take turns instead of one ring's multishot taking everything it can queue.
    single: bool,
}

/// A listener's socket and state, shared with its multishot accept.
pub(crate) struct ListenShared {
    driver: Weak<Driver>,
    sock: Socket,
    st: RefCell<ListenState>,
}

/// A listening stream socket on the ring.
pub(crate) struct Listener {
    shared: Rc<ListenShared>,
    _tie: Tie,
}

impl Listener {
    /// A listening stream socket bound to `addr` (`SO_REUSEADDR` first when `reuse_addr`, as libuv does for TCP).
    pub(crate) fn bind(driver: &Rc<Driver>, addr: &SockAddr, reuse_addr: bool) -> io::Result<Listener> {
        let sock = Socket::new(addr.domain(), Type::STREAM, None)?;
        if reuse_addr {
            sock.set_reuse_address(true)?;
        }
        sock.bind(addr)?;
        Listener::from_std(driver, sock, crate::engine::sockets::BACKLOG, false)
    }

    /// Takes over a bound socket (listens again here, with `backlog`); `shared`: other rings accept from it too
    /// (single-shot accepts, see `ListenState::single`).
    pub(crate) fn from_std(driver: &Rc<Driver>, sock: Socket, backlog: i32, shared: bool) -> io::Result<Listener> {
        sock.set_nonblocking(false)?;
        sock.listen(backlog)?;
        let st = ListenState {
            accept: None,
            cancelling: false,
            queue: VecDeque::new(),
            err: None,
            waker: None,
            closed: false,
            single: shared,
        };
        let shared = Rc::new(ListenShared { driver: Rc::downgrade(driver), sock, st: RefCell::new(st) });
        Ok(Listener { shared, _tie: Tie::new(driver) })
    }

    /// The socket itself (addresses).
    pub(crate) fn socket(&self) -> &Socket {
        &self.shared.sock
    }

    /// The next accepted connection and its peer's address; arms the multishot accept when none is queued.
    pub(crate) fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(Stream, SockAddr)>> {
        let shared = &self.shared;
        let driver = shared.driver.upgrade().ok_or_else(runtime_gone)?;
        loop {
            let mut st = shared.st.borrow_mut();
            if let Some(fd) = st.queue.pop_front() {
                drop(st);
                let sock = Socket::from(fd);
                match sock.peer_addr() {
                    // Accepted without SOCK_NONBLOCK: already blocking, as ring sockets are.
                    Ok(peer) => {
                        return Poll::Ready(Ok((
                            Stream { shared: ConnShared::new(&driver, sock), _tie: Tie::new(&driver) },
                            peer,
                        )))
                    }
                    // Reset while queued (as the other engines): take the next one.
                    Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => continue,
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            if let Some(e) = st.err.take() {
                return Poll::Ready(Err(e));
            }
            if st.accept.is_none() {
                let fd = types::Fd(shared.sock.as_raw_fd());
                let entry = if st.single {
                    opcode::Accept::new(fd, std::ptr::null_mut(), std::ptr::null_mut())
                        .flags(libc::SOCK_CLOEXEC)
                        .build()
                } else {
                    opcode::AcceptMulti::new(fd).flags(libc::SOCK_CLOEXEC).build()
                };
                st.accept = Some(driver.start(entry, Pending::Net(NetOp::Accept { listener: shared.clone() })));
                st.cancelling = false;
            }
            register(&mut st.waker, cx);
            return Poll::Pending;
        }
    }

    /// Stops accepting on the ring and hands back the listening socket (a duplicate of its fd) with the
    /// connections the multishot accept already took, in the order they came. The multishot is cancelled and
    /// waited for here, so no connection the kernel completes meanwhile is accepted into a closing listener.
    pub(crate) fn into_socket(self) -> io::Result<(Socket, Vec<Socket>)> {
        let shared = &self.shared;
        if let Some(driver) = shared.driver.upgrade() {
            let cancel = {
                let mut st = shared.st.borrow_mut();
                let cancel = if st.cancelling { None } else { st.accept };
                st.cancelling = true;
                cancel
            };
            if let Some(user_data) = cancel {
                driver.cancel(user_data);
            }
            driver.run_until(|| shared.st.borrow().accept.is_none())?;
        }
        let sock = shared.sock.try_clone()?;
        let queued = std::mem::take(&mut shared.st.borrow_mut().queue);
        Ok((sock, queued.into_iter().map(Socket::from).collect()))
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let mut st = self.shared.st.borrow_mut();
        st.closed = true;
        let queued = std::mem::take(&mut st.queue);
        let cancel = if st.cancelling { None } else { st.accept };
        st.cancelling = true;
        drop(st);
        drop(queued); // closes the connections nobody accepted
        if let (Some(user_data), Some(driver)) = (cancel, self.shared.driver.upgrade()) {
            driver.cancel(user_data);
        }
    }
}

/// A completion of a listener's multishot accept; `more`: the accept goes on.
pub(super) fn accepted(listener: &Rc<ListenShared>, res: i32, more: bool) {
    let mut st = listener.st.borrow_mut();
    if !more {
        st.accept = None;
        st.cancelling = false;
    }
    if res >= 0 {
        // SAFETY: a successful accept returns a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(res) };
        if st.closed {
            return; // drops (closes) it
        }
        st.queue.push_back(fd);
        if more && st.queue.len() >= ACCEPT_QUEUE && !st.cancelling {
            // Enough waiting: stop accepting (the kernel's backlog holds the rest) until the queue drains.
            if let (Some(user_data), Some(driver)) = (st.accept, listener.driver.upgrade()) {
                st.cancelling = true;
                driver.cancel(user_data);
            }
        }
    } else if !st.closed {
        match -res {
            // Cancelled by us; a connection reset while queued, an interrupted accept: nothing to report.
            libc::ECANCELED | libc::ECONNABORTED | libc::EINTR | libc::EAGAIN => {}
            errno => st.err = Some(io::Error::from_raw_os_error(errno)),
        }
    }
    let waker = st.waker.take();
    drop(st);
    wake(waker);
}
