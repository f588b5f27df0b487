//! [`Tty`]: a terminal stream (`uv_tty_t`).

use std::ffi::c_int;

use libuv_sys2 as sys;

use super::handle::{impl_handle, Owned};
use super::loop_::Loop;
use super::stream::{impl_stream, StreamKind, StreamState};
use crate::error::{Error, Result};

/// A terminal (`uv_tty_t`), readable and writable as a stream.
///
/// On Unix libuv reopens the terminal behind the descriptor when it can, so that switching to non-blocking
/// mode does not affect other processes sharing it. Before exiting after [`set_mode`](Tty::set_mode), call
/// [`reset_mode`] so the terminal is left as it was found (closing the handle also restores its terminal).
///
/// ```
/// use uvio::uv::{guess_handle, GuessedHandle, Loop, RunMode, Tty};
///
/// let lp = Loop::new()?;
/// if guess_handle(1) == GuessedHandle::Tty {
///     let out = Tty::new(&lp, 1)?;
///     let (cols, rows) = out.winsize()?;
///     out.write(format!("this terminal is {cols}x{rows}\n"), |_, res| res.unwrap())?;
///     lp.run(RunMode::Default)?;
/// } else {
///     assert_eq!(Tty::new(&lp, 7).unwrap_err(), uvio::Error::EINVAL); // not a standard stream
/// }
/// # Ok::<(), uvio::Error>(())
/// ```
pub struct Tty {
    h: Owned<sys::uv_tty_t, StreamState<Tty>>,
}

impl_handle!(Tty);
impl_stream!(Tty);

impl StreamKind for Tty {
    type Raw = sys::uv_tty_t;
    fn owned(&self) -> &Owned<sys::uv_tty_t, StreamState<Tty>> {
        &self.h
    }
    fn wrap(h: Owned<sys::uv_tty_t, StreamState<Tty>>) -> Tty {
        Tty { h }
    }
    fn new_peer(_: &Tty) -> Result<Tty> {
        Err(Error::ENOTSUP) // a tty does not listen
    }
}

/// Terminal modes for [`Tty::set_mode`] (`uv_tty_mode_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtyMode {
    /// Line-buffered, echoing: the initial mode.
    Normal,
    /// Raw input: no line buffering, no echo, no signal keys. Output is still processed (`\n` is sent as
    /// `\r\n`), so text prints as usual.
    Raw,
    /// Binary-safe in both directions (`cfmakeraw`): no input or output processing at all (Unix only).
    Io,
    /// Raw with virtual-terminal sequences passed through (Windows; same as `Raw` elsewhere).
    RawVt,
}

impl Tty {
    /// Opens the standard stream `fd` (0, 1 or 2) as a terminal (`uv_tty_init`). `EINVAL` for other
    /// descriptors (on Unix, use `Tty::from_fd` to hand over one you own) or when `fd` is not a terminal.
    pub fn new(lp: &Loop, fd: i32) -> Result<Tty> {
        if !(0..=2).contains(&fd) {
            return Err(Error::EINVAL);
        }
        Tty::init(lp, fd)
    }

    /// Takes over a terminal descriptor you own, such as a pty (`uv_tty_init`); it is closed with the handle.
    /// `EINVAL` for a regular file or a character device other than a terminal.
    #[cfg(unix)]
    pub fn from_fd(lp: &Loop, fd: std::os::fd::OwnedFd) -> Result<Tty> {
        use std::os::fd::{FromRawFd, IntoRawFd};
        let raw = fd.into_raw_fd();
        let tty = Tty::init(lp, raw).inspect_err(|_| {
            // SAFETY: uv_tty_init failed, so libuv did not take `raw`: it is still ours alone.
            drop(unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) });
        })?;
        // For a terminal slave, libuv opens the terminal again by path, dup2's the new descriptor over `raw` and
        // keeps the new one: `raw` is then a duplicate that libuv never closes, so it is ours to close.
        let mut used: sys::uv_os_fd_t = -1;
        // SAFETY: an open handle and a valid out-pointer.
        let ret = unsafe { sys::uv_fileno(tty.h.handle(), &mut used) };
        if ret == 0 && used != raw {
            // SAFETY: libuv reads and writes through `used`, not `raw`; nothing else refers to `raw`.
            drop(unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) });
        }
        Ok(tty)
    }

    fn init(lp: &Loop, fd: i32) -> Result<Tty> {
        // SAFETY: `raw` points to zeroed memory in the box Owned keeps alive; the last argument is unused.
        let h = Owned::new(lp, StreamState::default(), |l, raw| unsafe { sys::uv_tty_init(l, raw, fd, 0) })?;
        Ok(Tty { h })
    }

    /// Sets the terminal mode (`uv_tty_set_mode`).
    pub fn set_mode(&self, mode: TtyMode) -> Result<()> {
        self.h.check_open()?;
        let m = match mode {
            TtyMode::Normal => sys::uv_tty_mode_t_UV_TTY_MODE_NORMAL,
            TtyMode::Raw => sys::uv_tty_mode_t_UV_TTY_MODE_RAW,
            TtyMode::Io => sys::uv_tty_mode_t_UV_TTY_MODE_IO,
            TtyMode::RawVt => sys::uv_tty_mode_t_UV_TTY_MODE_RAW_VT,
        };
        // SAFETY: an open handle.
        Error::check(unsafe { sys::uv_tty_set_mode(self.h.raw(), m) }).map(drop)
    }

    /// The window size as `(columns, rows)` (`uv_tty_get_winsize`).
    pub fn winsize(&self) -> Result<(u32, u32)> {
        self.h.check_open()?;
        let (mut w, mut h): (c_int, c_int) = (0, 0);
        // SAFETY: an open handle and two valid out-pointers.
        Error::check(unsafe { sys::uv_tty_get_winsize(self.h.raw(), &mut w, &mut h) })?;
        Ok((w.max(0) as u32, h.max(0) as u32))
    }
}

/// Restores every terminal that a [`Tty::set_mode`] changed to its original mode (`uv_tty_reset_mode`).
/// Safe to call from a signal-handling path and more than once.
pub fn reset_mode() -> Result<()> {
    // SAFETY: no preconditions; libuv guards this with its own lock.
    Error::check(unsafe { sys::uv_tty_reset_mode() }).map(drop)
}

/// What libuv thinks a descriptor is (`uv_guess_handle`): useful to decide between Tty, Pipe and a file.
pub fn guess_handle(fd: i32) -> GuessedHandle {
    // SAFETY: uv_guess_handle only inspects the descriptor (fstat/isatty); any integer is acceptable.
    match unsafe { sys::uv_guess_handle(fd) } {
        sys::uv_handle_type_UV_TTY => GuessedHandle::Tty,
        sys::uv_handle_type_UV_NAMED_PIPE => GuessedHandle::Pipe,
        sys::uv_handle_type_UV_TCP => GuessedHandle::Tcp,
        sys::uv_handle_type_UV_UDP => GuessedHandle::Udp,
        sys::uv_handle_type_UV_FILE => GuessedHandle::File,
        _ => GuessedHandle::Unknown,
    }
}

/// The answer of [`guess_handle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuessedHandle {
    /// A terminal.
    Tty,
    /// A pipe or Unix socket.
    Pipe,
    /// A TCP socket.
    Tcp,
    /// A UDP socket.
    Udp,
    /// A regular file.
    File,
    /// Anything else, or an invalid descriptor.
    Unknown,
}
