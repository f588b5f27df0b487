//! The readiness role's dispatch (Unix): [`AnyReadiness`] watches a descriptor the user owns (`io::AsyncFd`)
//! on whichever engine the runtime chose when it was made. The libuv engine uses a `uv_poll_t`; the epoll
//! engine, and io_uring's (which keeps readiness on the epoll engine's code, as for UDP), the runtime's epoll
//! set. See the module docs of `engine` for the contract.

use std::io;
use std::os::fd::BorrowedFd;
use std::task::{Context, Poll};

#[cfg(target_os = "linux")]
use super::epoll;
use super::{libuv, Engine, SocketEngine};

/// A direction of readiness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    /// The descriptor can be read (or is at end-of-file, hung up, in error).
    Read,
    /// The descriptor can be written (or is hung up, in error).
    Write,
}

/// Readiness of one descriptor on some engine; see the `Readiness` role in the module docs of `engine`.
pub(crate) enum AnyReadiness {
    /// A `uv_poll_t`, armed while a task waits.
    Libuv(libuv::readiness::Readiness),
    /// The runtime's edge-triggered epoll set.
    #[cfg(target_os = "linux")]
    Epoll(epoll::Readiness),
}

impl AnyReadiness {
    /// Watches a duplicate of `fd` (so the caller's descriptor may be closed at any time without harm), made
    /// non-blocking, on `engine`. Nothing is ready until the engine reports it.
    pub(crate) fn new(engine: &Engine, fd: BorrowedFd<'_>) -> io::Result<AnyReadiness> {
        socket2::SockRef::from(&fd).set_nonblocking(true)?;
        Ok(match engine.socket_engine(false)? {
            #[cfg(target_os = "linux")]
            SocketEngine::Epoll(reactor) => AnyReadiness::Epoll(epoll::Readiness::new(&reactor, fd)?),
            // (Never chosen for a non-stream socket; readiness is the epoll engine's there too.)
            #[cfg(target_os = "linux")]
            SocketEngine::Uring(_) => AnyReadiness::Epoll(epoll::Readiness::new(&engine.reactor()?, fd)?),
            SocketEngine::Libuv => {
                AnyReadiness::Libuv(libuv::readiness::Readiness::new(&engine.lp, fd, &engine.lingering)?)
            }
        })
    }

    /// `Ready(Ok)` while direction `d` is ready (until [`clear`](Self::clear)), else the task waits for it;
    /// an error once the runtime is gone.
    pub(crate) fn poll_ready(&self, cx: &Context<'_>, d: Direction) -> Poll<io::Result<()>> {
        match self {
            AnyReadiness::Libuv(r) => r.poll_ready(cx, d),
            #[cfg(target_os = "linux")]
            AnyReadiness::Epoll(r) => r.poll_ready(cx, d),
        }
    }

    /// Forgets that direction `d` is ready: the next [`poll_ready`](Self::poll_ready) waits for the engine.
    pub(crate) fn clear(&self, d: Direction) {
        match self {
            AnyReadiness::Libuv(r) => r.clear(d),
            #[cfg(target_os = "linux")]
            AnyReadiness::Epoll(r) => r.clear(d),
        }
    }
}
