//! [`Signal`]: run a callback when the process receives a signal (`uv_signal_t`), and the [`signum`] numbers.

use std::ffi::c_int;

use libuv_sys2 as sys;

use super::handle::{impl_handle, Callback, Owned};
use super::loop_::Loop;
use crate::error::{Error, Result};

/// Signal numbers for [`Signal`], [`Process::kill`](super::Process::kill) and [`kill`](super::kill).
///
/// The values are the OS's own. On Windows libuv emulates a few signals (see [`Signal`]'s portability notes);
/// the Unix-only ones are not defined there.
pub mod signum {
    #[cfg(unix)]
    use libuv_sys2 as sys;

    /// Defines a signal constant from libuv's bindings on Unix, and from libuv's `uv/win.h` / the CRT on
    /// Windows (fixed values there, so the Windows build does not depend on which macros the bindings kept).
    macro_rules! signals {
        ($($(#[$doc:meta])* $name:ident = $win:expr;)*) => { $(
            $(#[$doc])*
            #[cfg(unix)]
            pub const $name: i32 = sys::$name as i32;
            $(#[$doc])*
            #[cfg(windows)]
            pub const $name: i32 = $win;
        )* };
    }

    signals! {
        /// Hangup: the terminal closed (Windows: the console window closed).
        SIGHUP = 1;
        /// Interrupt: Ctrl+C.
        SIGINT = 2;
        /// Quit: Ctrl+\ on Unix.
        SIGQUIT = 3;
        /// Kill: cannot be caught or ignored; only for [`kill`](crate::uv::kill).
        SIGKILL = 9;
        /// Termination request (Windows: only for [`kill`](crate::uv::kill), never received).
        SIGTERM = 15;
        /// The terminal window changed size.
        SIGWINCH = 28;
    }

    /// Ctrl+Break on Windows.
    #[cfg(windows)]
    pub const SIGBREAK: i32 = 21;

    /// User-defined signal 1.
    #[cfg(unix)]
    pub const SIGUSR1: i32 = sys::SIGUSR1 as i32;
    /// User-defined signal 2.
    #[cfg(unix)]
    pub const SIGUSR2: i32 = sys::SIGUSR2 as i32;
    /// Write to a pipe or socket with no reader.
    #[cfg(unix)]
    pub const SIGPIPE: i32 = sys::SIGPIPE as i32;
    /// A timer set with `alarm` expired.
    #[cfg(unix)]
    pub const SIGALRM: i32 = sys::SIGALRM as i32;
    /// A child process stopped or exited (libuv uses it internally for [`Process`](crate::uv::Process)).
    #[cfg(unix)]
    pub const SIGCHLD: i32 = sys::SIGCHLD as i32;
    /// Continue a stopped process.
    #[cfg(unix)]
    pub const SIGCONT: i32 = sys::SIGCONT as i32;
    /// Stop the process: cannot be caught or ignored.
    #[cfg(unix)]
    pub const SIGSTOP: i32 = sys::SIGSTOP as i32;
    /// Stop request from the terminal: Ctrl+Z.
    #[cfg(unix)]
    pub const SIGTSTP: i32 = sys::SIGTSTP as i32;
}

type SignalCb = dyn FnMut(&Signal, i32);

/// A signal watcher (`uv_signal_t`): its callback runs on the loop's thread, in a normal loop iteration,
/// some time after the signal arrived — so it may do anything, unlike a raw signal handler.
///
/// Any number of handles, on any loops, may watch the same signal: each one is called. libuv installs the
/// process-wide handler when the first watcher of a signal starts, and restores the default action when the
/// last one stops. Dropping the handle stops it and closes it; a callback may stop, restart or drop its own
/// handle.
///
/// # Portability
/// - Unix: `SIGKILL` and `SIGSTOP` cannot be watched (`EINVAL`); watching `SIGBUS`, `SIGFPE`, `SIGILL` or
///   `SIGSEGV` is undefined behaviour in libuv's own words and must be avoided; Linux's `SIGRT0`/`SIGRT1` (32
///   and 33) belong to the threads library.
/// - Windows: `SIGINT` (Ctrl+C), `SIGBREAK` (Ctrl+Break), `SIGHUP` (console closed, ~10 s to clean up) and
///   `SIGWINCH` (console resized) are emulated; other signals can be watched but never arrive, and `raise()`
///   is not seen.
///
/// ```
/// # #[cfg(unix)] {
/// use uvio::uv::{kill, signum, Loop, RunMode, Signal};
///
/// let lp = Loop::new()?;
/// let sig = Signal::new(&lp)?;
/// sig.start_oneshot(signum::SIGWINCH, |_, n| println!("got signal {n}"))?;
/// kill(std::process::id() as i32, signum::SIGWINCH)?;
/// lp.run(RunMode::Default)?; // returns once the one-shot watcher has fired
/// # }
/// # Ok::<(), uvio::Error>(())
/// ```
pub struct Signal {
    h: Owned<sys::uv_signal_t, Callback<SignalCb>>,
}

impl_handle!(Signal);

impl Signal {
    /// Creates a stopped signal watcher on `lp` (`uv_signal_init`).
    pub fn new(lp: &Loop) -> Result<Signal> {
        // SAFETY: `raw` points to zeroed memory inside the box that Owned::new keeps alive.
        let h = Owned::new(lp, Callback::default(), |l, raw| unsafe { sys::uv_signal_init(l, raw) })?;
        Ok(Signal { h })
    }

    /// Watches `signum`, calling `cb` with the signal number each time it arrives (`uv_signal_start`).
    /// Starting a started watcher replaces its callback and signal (for the same signal libuv keeps the
    /// watcher's one-shot mode). `EINVAL` for a signal that cannot be watched (0, `SIGKILL`, `SIGSTOP`, out of
    /// range).
    pub fn start(&self, signum: i32, cb: impl FnMut(&Signal, i32) + 'static) -> Result<()> {
        self.start_with(signum, cb, false)
    }

    /// Like [`Signal::start`], but the watcher stops after the first signal, and the signal's default action
    /// is restored at once when it arrives (`uv_signal_start_oneshot`).
    pub fn start_oneshot(&self, signum: i32, cb: impl FnMut(&Signal, i32) + 'static) -> Result<()> {
        self.start_with(signum, cb, true)
    }

    fn start_with(&self, signum: i32, cb: impl FnMut(&Signal, i32) + 'static, oneshot: bool) -> Result<()> {
        self.h.check_open()?;
        let start = if oneshot { sys::uv_signal_start_oneshot } else { sys::uv_signal_start };
        // SAFETY: the handle is initialised and open; `on_signal` matches this box type. libuv validates signum.
        Error::check(unsafe { start(self.h.raw(), Some(on_signal), signum) })?;
        // Installed only once libuv accepted the signal.
        self.h.state().set_reusing(cb, |b| b);
        Ok(())
    }

    /// Stops watching; the callback is dropped (`uv_signal_stop`). Stopping a stopped watcher is a no-op.
    pub fn stop(&self) -> Result<()> {
        // SAFETY: the handle is initialised; stopping a stopped or closing watcher is a no-op in libuv.
        Error::check(unsafe { sys::uv_signal_stop(self.h.raw()) })?;
        self.h.state().clear();
        Ok(())
    }

    /// The signal being watched, `None` when stopped (`uv_signal_t.signum`). A one-shot watcher reports
    /// `None` once it has fired.
    pub fn signum(&self) -> Option<i32> {
        // SAFETY: the handle is initialised; this reads a plain field that only this thread writes.
        let n = unsafe { (*self.h.raw()).signum };
        (n != 0 && super::Handle::is_active(self)).then_some(n)
    }
}

unsafe extern "C" fn on_signal(raw: *mut sys::uv_signal_t, signum: c_int) {
    // SAFETY: libuv passes the watcher we started, alive until its close callback; the view lives for this call.
    let sig = unsafe { Owned::view(raw, |h| Signal { h }) };
    sig.h.invoke(|s| s, |cb| cb(&sig, signum));
}
