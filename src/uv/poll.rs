//! [`Poll`]: readiness of a file descriptor or socket that something else reads and writes (`uv_poll_t`).

use std::ffi::c_int;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{BitAnd, BitOr, BitOrAssign, Deref};

use libuv_sys2 as sys;

use super::handle::{impl_handle, Callback, Owned};
use super::loop_::Loop;
use crate::error::{Error, Result};

/// A set of poll events (`uv_poll_event`): combine with `|`, test with [`PollEvents::contains`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PollEvents(c_int);

impl PollEvents {
    /// No event.
    pub const EMPTY: PollEvents = PollEvents(0);
    /// The fd can be read without blocking (`UV_READABLE`).
    pub const READABLE: PollEvents = PollEvents(sys::uv_poll_event_UV_READABLE as c_int);
    /// The fd can be written without blocking (`UV_WRITABLE`).
    pub const WRITABLE: PollEvents = PollEvents(sys::uv_poll_event_UV_WRITABLE as c_int);
    /// The peer closed its end (`UV_DISCONNECT`). Optional: an OS may never report it (AIX does not), so
    /// treat it as a hint and still expect the read that returns 0.
    pub const DISCONNECT: PollEvents = PollEvents(sys::uv_poll_event_UV_DISCONNECT as c_int);
    /// Urgent data: TCP out-of-band data or sysfs interrupts (`UV_PRIORITIZED`).
    pub const PRIORITIZED: PollEvents = PollEvents(sys::uv_poll_event_UV_PRIORITIZED as c_int);

    const ALL: [(PollEvents, &'static str); 4] = [
        (PollEvents::READABLE, "READABLE"),
        (PollEvents::WRITABLE, "WRITABLE"),
        (PollEvents::DISCONNECT, "DISCONNECT"),
        (PollEvents::PRIORITIZED, "PRIORITIZED"),
    ];

    /// Whether every event of `other` is in `self`.
    pub const fn contains(self, other: PollEvents) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether no event is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The libuv bit mask.
    pub const fn bits(self) -> i32 {
        self.0
    }

    /// Keeps only the bits libuv defines (libuv asserts on unknown ones).
    fn from_uv(bits: c_int) -> PollEvents {
        let known = PollEvents::ALL.iter().fold(0, |acc, (e, _)| acc | e.0);
        PollEvents(bits & known)
    }
}

impl BitOr for PollEvents {
    type Output = PollEvents;
    fn bitor(self, rhs: PollEvents) -> PollEvents {
        PollEvents(self.0 | rhs.0)
    }
}

impl BitOrAssign for PollEvents {
    fn bitor_assign(&mut self, rhs: PollEvents) {
        self.0 |= rhs.0;
    }
}

impl BitAnd for PollEvents {
    type Output = PollEvents;
    fn bitand(self, rhs: PollEvents) -> PollEvents {
        PollEvents(self.0 & rhs.0)
    }
}

impl fmt::Debug for PollEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names = PollEvents::ALL.iter().filter(|(e, _)| self.contains(*e)).map(|(_, name)| *name);
        match names.next() {
            None => f.write_str("PollEvents(EMPTY)"),
            Some(first) => {
                write!(f, "PollEvents({first}")?;
                names.try_for_each(|name| write!(f, " | {name}"))?;
                f.write_str(")")
            }
        }
    }
}

type PollCb = dyn FnMut(&Poll, Result<PollEvents>);

/// A readiness watcher on a file descriptor (Unix) or socket (Windows) that the program reads and writes
/// itself (`uv_poll_t`), for integrating libraries that bring their own sockets. For ordinary I/O, prefer
/// `Tcp`, `Udp` and `Pipe`: they are faster and scale better, above all on Windows.
///
/// Readiness is level-triggered: while the fd stays readable (or writable), the callback keeps being called.
/// It may also report readiness spuriously, so the fd's reads and writes must be non-blocking and handle
/// `EAGAIN` — [`Poll::new`] switches the fd to non-blocking mode for that reason.
///
/// # The fd is borrowed, not owned
/// `Poll` does not close the fd, and the fd must stay open for as long as the `Poll` exists: closing it first
/// would let libuv watch (and switch to non-blocking mode) an unrelated file that reused the number, or, on
/// Linux, abort the process when it next updates its epoll set. [`Poll::borrowed`] makes the borrow checker
/// keep that promise: it takes a `BorrowedFd` (Windows: `BorrowedSocket`) and returns a [`BorrowedPoll`] that
/// cannot outlive it. [`Poll::new`] takes a raw fd and is `unsafe` for that reason (I/O safety: a raw fd
/// carries no ownership). Either way, drop the `Poll` first; the fd may be closed right after (libuv removes
/// it from its epoll set at once). Only one `Poll` may watch an fd on a loop (`EEXIST` otherwise).
///
/// # Portability
/// On Windows only sockets can be polled. On Unix any fd that `poll(2)` accepts (not regular files on Linux:
/// `EPERM`).
///
/// ```
/// # #[cfg(unix)] {
/// use std::io::Write;
/// use std::os::fd::AsFd;
/// use std::os::unix::net::UnixStream;
/// use uvio::uv::{Loop, Poll, PollEvents, RunMode};
///
/// let (a, mut b) = UnixStream::pair().unwrap();
/// let lp = Loop::new()?;
/// let poll = Poll::borrowed(&lp, a.as_fd())?; // `a` cannot be dropped while `poll` lives
/// b.write_all(b"ping").unwrap();
/// poll.start(PollEvents::READABLE, |p, events| {
///     assert!(events.unwrap().contains(PollEvents::READABLE));
///     p.stop().unwrap(); // a real program would read from `a` here
/// })?;
/// lp.run(RunMode::Default)?;
/// drop(poll); // then `a` may close its fd
/// # }
/// # Ok::<(), uvio::Error>(())
/// ```
pub struct Poll {
    h: Owned<sys::uv_poll_t, Callback<PollCb>>,
}

impl_handle!(Poll);

impl Poll {
    /// Creates a stopped watcher for `fd` and makes the fd non-blocking (`uv_poll_init` on Unix,
    /// `uv_poll_init_socket` on Windows, where `fd` is a `SOCKET`). See the type's docs for how long `fd`
    /// must stay open. `EEXIST` if the loop already watches this fd, `EBADF` for a closed one.
    ///
    /// # Safety
    /// If `fd` is open, it must stay open until this `Poll` is dropped, and whoever owns it must not close it
    /// meanwhile (a closed or invalid `fd` is merely reported as `EBADF` here).
    pub unsafe fn new(lp: &Loop, fd: sys::uv_os_sock_t) -> Result<Poll> {
        let h = Owned::new(lp, Callback::default(), |l, raw| {
            // SAFETY: `raw` points to zeroed memory inside the box that Owned::new keeps alive; libuv checks
            // the fd itself (an fd is a number: a wrong one is an error, not memory unsafety).
            #[cfg(unix)]
            let ret = unsafe { sys::uv_poll_init(l, raw, fd) };
            // SAFETY: as above; on Windows libuv polls sockets only, through the SOCKET-taking init.
            #[cfg(windows)]
            let ret = unsafe { sys::uv_poll_init_socket(l, raw, fd) };
            ret
        })?;
        Ok(Poll { h })
    }

    /// A stopped watcher for the fd (Windows: the socket) that `fd` borrows, made non-blocking: as
    /// [`Poll::new`], without `unsafe`, since the borrow keeps the fd open for as long as the watcher lives.
    ///
    /// The fd cannot be closed while it is watched:
    /// ```compile_fail
    /// # use std::os::fd::AsFd;
    /// # let lp = uvio::uv::Loop::new().unwrap();
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let poll = uvio::uv::Poll::borrowed(&lp, a.as_fd()).unwrap();
    /// drop(a); // error: `a` is borrowed by `poll`
    /// poll.stop().unwrap();
    /// ```
    pub fn borrowed<'fd>(lp: &Loop, fd: BorrowedOsFd<'fd>) -> Result<BorrowedPoll<'fd>> {
        #[cfg(unix)]
        let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
        #[cfg(windows)]
        let raw = std::os::windows::io::AsRawSocket::as_raw_socket(&fd) as sys::uv_os_sock_t;
        // SAFETY: `fd` borrows the descriptor for 'fd, and the returned watcher cannot outlive 'fd: the
        // descriptor stays open while it is watched.
        let poll = unsafe { Poll::new(lp, raw)? };
        Ok(BorrowedPoll { poll, _fd: PhantomData })
    }

    /// Starts watching for `events`; `cb` gets the events that are ready, or the error that polling hit
    /// (`uv_poll_start`). After `EBADF` no more events come: drop the `Poll`. Starting a started watcher
    /// replaces its callback and events; empty `events` stops it.
    pub fn start(&self, events: PollEvents, cb: impl FnMut(&Poll, Result<PollEvents>) + 'static) -> Result<()> {
        self.restart(events)?;
        self.h.state().set_reusing(cb, |b| b);
        Ok(())
    }

    /// Starts watching for `events` with the callback the watcher already has, without allocating: the way to
    /// change the interest set, also from inside the callback (a watcher that never had a callback polls
    /// without effect).
    pub fn restart(&self, events: PollEvents) -> Result<()> {
        self.h.check_open()?;
        // SAFETY: the handle is initialised and open; PollEvents holds only libuv's bits; `on_poll` matches
        // this box type.
        Error::check(unsafe { sys::uv_poll_start(self.h.raw(), events.0, Some(on_poll)) }).map(drop)
    }

    /// Stops watching, effective at once: a pending event is not delivered (`uv_poll_stop`). The callback is
    /// kept for [`Poll::restart`]. The fd may be closed right after.
    pub fn stop(&self) -> Result<()> {
        // SAFETY: the handle is initialised; stopping a stopped or closing watcher is a no-op in libuv.
        Error::check(unsafe { sys::uv_poll_stop(self.h.raw()) }).map(drop)
    }
}

/// The borrowed descriptor [`Poll::borrowed`] takes: `BorrowedFd` on Unix, `BorrowedSocket` on Windows.
#[cfg(unix)]
pub type BorrowedOsFd<'fd> = std::os::fd::BorrowedFd<'fd>;
/// The borrowed descriptor [`Poll::borrowed`] takes: `BorrowedFd` on Unix, `BorrowedSocket` on Windows.
#[cfg(windows)]
pub type BorrowedOsFd<'fd> = std::os::windows::io::BorrowedSocket<'fd>;

/// A [`Poll`] on a descriptor borrowed for `'fd` (made by [`Poll::borrowed`]): it derefs to the `Poll`, and
/// the borrow checker keeps the descriptor open until it is dropped.
#[derive(Debug)]
pub struct BorrowedPoll<'fd> {
    poll: Poll,
    _fd: PhantomData<BorrowedOsFd<'fd>>,
}

impl Deref for BorrowedPoll<'_> {
    type Target = Poll;
    fn deref(&self) -> &Poll {
        &self.poll
    }
}

unsafe extern "C" fn on_poll(raw: *mut sys::uv_poll_t, status: c_int, events: c_int) {
    // SAFETY: libuv passes the watcher we started, alive until its close callback; the view lives for this call.
    let poll = unsafe { Owned::view(raw, |h| Poll { h }) };
    let res = Error::check(status).map(|_| PollEvents::from_uv(events));
    poll.h.invoke(|s| s, |cb| cb(&poll, res));
}
