//! The epoll engine's readiness role (`AsyncFd`): any descriptor the user owns, in the runtime's epoll set.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::rc::Rc;
use std::task::{Context, Poll};

use super::{Reactor, Registration};
use crate::engine::wakers::ReadyState;
use crate::engine::Direction;

/// A descriptor's readiness from the runtime's epoll set: set by an edge, kept until the user clears it.
///
/// It watches a duplicate of the descriptor (`F_DUPFD_CLOEXEC`), owned here and closed only after it left the
/// set: whatever the owner does with its own descriptor (close it, replace it), the set never holds a number
/// that was closed or reused, and `EPOLL_CTL_DEL` never hits another socket of the set.
pub(crate) struct Readiness {
    // Field order matters: the registration leaves the epoll set before `_fd` closes.
    reg: Registration,
    _fd: OwnedFd,
}

impl Readiness {
    /// Watches (a duplicate of) `fd` on `reactor`; nothing is ready until the set reports it (at once for what
    /// is ready now: an edge-triggered registration reports the current state).
    pub(crate) fn new(reactor: &Rc<Reactor>, fd: BorrowedFd<'_>) -> io::Result<Readiness> {
        let fd = fd.try_clone_to_owned()?;
        Ok(Readiness {
            reg: Registration::with_state(reactor, fd.as_raw_fd(), Rc::new(ReadyState::new(false)))?,
            _fd: fd,
        })
    }

    /// Ready when the direction's last edge was not cleared, or it is closed (hang-up, error: sticky, since no
    /// further edge comes); else the task waits for the next edge.
    pub(crate) fn poll_ready(&self, cx: &Context<'_>, d: Direction) -> Poll<io::Result<()>> {
        if self.reg.reactor.gone.get() {
            return Poll::Ready(Err(crate::error::runtime_gone()));
        }
        if self.reg.state.may_be_ready(d) {
            return Poll::Ready(Ok(()));
        }
        self.reg.wait_for_edge(cx, d);
        Poll::Pending
    }

    /// Forgets the direction's readiness (the user saw `WouldBlock`). An edge that arrives later sets it again:
    /// everything runs on the loop's thread, so none can slip between the user's syscall and this.
    pub(crate) fn clear(&self, d: Direction) {
        self.reg.state.clear(d);
    }
}
