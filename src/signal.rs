//! Signals: [`ctrl_c`] on every OS, any signal on Unix with `unix::signal`, Ctrl+Break and the console closing
//! on Windows with `windows::ctrl_break` and `windows::ctrl_close`. Built on libuv's `uv_signal_t`, one watcher
//! per listener on the runtime's loop; shaped like `tokio::signal`.
//!
//! Signals are process-wide: every listener of a signal, on any runtime, sees each delivery. Several
//! deliveries that arrive before a listener looks are *coalesced* into one (as in tokio, and as the OS itself
//! does for a signal already pending): a listener learns "at least one since the last time", never loses all.
//!
//! Unlike tokio, the OS's default action comes back once the last listener of a signal is dropped (libuv
//! restores it): after that, a `SIGINT` ends the process again.

use std::cell::Cell;
use std::future::poll_fn;
use std::io;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use crate::uv::{self, Handle as _};

/// Waits for Ctrl+C (`SIGINT`; on Windows libuv's emulation through the console control handler).
///
/// The handler is installed when the future is first polled, not when `ctrl_c()` is called: a Ctrl+C before
/// that takes the default action (ends the process). While the future lives, Ctrl+C no longer ends the
/// process; once it is dropped and no other listener remains, it does again.
///
/// ```no_run
/// uvio::block_on(async {
///     uvio::signal::ctrl_c().await.expect("listen for Ctrl+C");
///     println!("interrupted: shutting down");
/// });
/// ```
pub async fn ctrl_c() -> io::Result<()> {
    Listener::new(uv::signum::SIGINT)?.recv().await;
    Ok(())
}

/// A started libuv signal watcher and the deliveries it has counted.
struct Listener {
    handle: uv::Signal,
    state: Rc<State>,
}

#[derive(Default)]
struct State {
    /// Deliveries not yet received (coalesced by `poll_recv`).
    pending: Cell<usize>,
    waker: Cell<Option<Waker>>,
}

impl Listener {
    fn new(signum: i32) -> io::Result<Listener> {
        let ex = crate::runtime::current();
        let handle = uv::Signal::new(&ex.lp)?;
        let state = Rc::new(State::default());
        let s = state.clone();
        handle.start(signum, move |h, _| {
            s.pending.set(s.pending.get().saturating_add(1));
            if let Some(w) = s.waker.take() {
                w.wake();
            }
            h.unref();
        })?;
        // Only a listener being waited on keeps the loop alive (see `poll_recv`): an idle one held somewhere
        // must not keep `Runtime::close` (or a host's loop) running forever.
        handle.unref();
        Ok(Listener { handle, state })
    }

    /// Waits for a delivery. A future dropped while waiting lets the loop go again (unref).
    async fn recv(&self) {
        struct Unref<'a>(&'a uv::Signal);
        impl Drop for Unref<'_> {
            fn drop(&mut self) {
                self.0.unref();
            }
        }
        let _unref = Unref(&self.handle);
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.state.pending.replace(0) > 0 {
            self.handle.unref();
            return Poll::Ready(());
        }
        self.state.waker.set(Some(cx.waker().clone()));
        self.handle.ref_();
        Poll::Pending
    }
}

/// Unix signals: [`signal`](unix::signal) listens for any catchable signal.
#[cfg(unix)]
pub mod unix {
    use std::fmt;
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use super::Listener;
    use crate::uv::signum;

    /// A signal to listen for, like `tokio::signal::unix::SignalKind`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct SignalKind(i32);

    impl SignalKind {
        /// Any signal by its number. Whether it can be listened for is checked by [`signal`].
        pub const fn from_raw(signum: i32) -> SignalKind {
            SignalKind(signum)
        }

        /// The signal number.
        pub const fn as_raw_value(&self) -> i32 {
            self.0
        }

        /// `SIGINT`: Ctrl+C.
        pub const fn interrupt() -> SignalKind {
            SignalKind(signum::SIGINT)
        }

        /// `SIGTERM`: a request to terminate.
        pub const fn terminate() -> SignalKind {
            SignalKind(signum::SIGTERM)
        }

        /// `SIGHUP`: the terminal went away, or (by convention) a request to reload configuration.
        pub const fn hangup() -> SignalKind {
            SignalKind(signum::SIGHUP)
        }

        /// `SIGQUIT`: Ctrl+\.
        pub const fn quit() -> SignalKind {
            SignalKind(signum::SIGQUIT)
        }

        /// `SIGUSR1`.
        pub const fn user_defined1() -> SignalKind {
            SignalKind(signum::SIGUSR1)
        }

        /// `SIGUSR2`.
        pub const fn user_defined2() -> SignalKind {
            SignalKind(signum::SIGUSR2)
        }

        /// `SIGCHLD`: a child process stopped or exited. Listening does not disturb
        /// [`process`](crate::process), whose children libuv still reaps.
        pub const fn child() -> SignalKind {
            SignalKind(signum::SIGCHLD)
        }

        /// `SIGALRM`: a timer set with `alarm` expired.
        pub const fn alarm() -> SignalKind {
            SignalKind(signum::SIGALRM)
        }

        /// `SIGPIPE`: a write to a pipe or socket with no reader.
        pub const fn pipe() -> SignalKind {
            SignalKind(signum::SIGPIPE)
        }

        /// `SIGWINCH`: the terminal window changed size.
        pub const fn window_change() -> SignalKind {
            SignalKind(signum::SIGWINCH)
        }
    }

    impl From<i32> for SignalKind {
        fn from(signum: i32) -> SignalKind {
            SignalKind(signum)
        }
    }

    /// Signals whose handling libuv calls undefined behaviour (synchronous faults a handler cannot return
    /// from), refused like tokio refuses them. The numbers are the same on every Unix except `SIGBUS`.
    fn forbidden(signum: i32) -> bool {
        const SIGILL: i32 = 4;
        const SIGFPE: i32 = 8;
        const SIGSEGV: i32 = 11;
        const LINUX_LIKE: bool = cfg!(all(
            any(target_os = "linux", target_os = "android"),
            not(any(target_arch = "mips", target_arch = "mips64", target_arch = "sparc", target_arch = "sparc64"))
        ));
        const SIGBUS: i32 = if LINUX_LIKE { 7 } else { 10 };
        [SIGILL, SIGFPE, SIGSEGV, SIGBUS].contains(&signum)
    }

    /// Starts listening for `kind` (`uv_signal_start`): deliveries from now on are counted until received.
    /// `InvalidInput` for a signal that cannot be caught (`SIGKILL`, `SIGSTOP`, 0, out of range) or must not be
    /// (`SIGSEGV`, `SIGBUS`, `SIGFPE`, `SIGILL`).
    ///
    /// ```
    /// use uvio::signal::unix::{signal, SignalKind};
    ///
    /// uvio::block_on(async {
    ///     let mut usr1 = signal(SignalKind::user_defined1())?;
    ///     uvio::uv::kill(std::process::id() as i32, SignalKind::user_defined1().as_raw_value())?;
    ///     assert_eq!(usr1.recv().await, Some(()));
    ///     std::io::Result::Ok(())
    /// })
    /// .unwrap();
    /// ```
    ///
    /// # Panics
    /// Outside a uvio runtime.
    pub fn signal(kind: SignalKind) -> io::Result<Signal> {
        if forbidden(kind.0) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("refusing to handle signal {}", kind.0)));
        }
        Ok(Signal { listener: Listener::new(kind.0)?, kind })
    }

    /// A listener for one signal, from [`signal`]: [`recv`](Signal::recv) or use it as a
    /// `futures::Stream<Item = ()>` that never ends. Several deliveries before a `recv` count as one.
    /// Dropping it stops listening (`uv_signal_stop`); other listeners are not affected.
    pub struct Signal {
        listener: Listener,
        kind: SignalKind,
    }

    impl Signal {
        /// Waits for the next delivery (or returns at once if some arrived since the last `recv`). Always
        /// `Some(())`: the `Option` mirrors tokio's API. Dropping the future loses nothing.
        pub async fn recv(&mut self) -> Option<()> {
            self.listener.recv().await;
            Some(())
        }

        /// Polls for a delivery (for hand-written futures).
        pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<()>> {
            self.listener.poll_recv(cx).map(Some)
        }
    }

    impl futures::Stream for Signal {
        type Item = ();

        fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<()>> {
            self.get_mut().poll_recv(cx)
        }
    }

    impl fmt::Debug for Signal {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("Signal").field("kind", &self.kind).finish_non_exhaustive()
        }
    }
}

/// Windows console control events, shaped like `tokio::signal::windows`: [`ctrl_break`](windows::ctrl_break)
/// (Ctrl+Break, libuv's `SIGBREAK`) and [`ctrl_close`](windows::ctrl_close) (the console is closing, libuv's
/// `SIGHUP`; the process has about 10 seconds to clean up). Ctrl+C is [`ctrl_c`](super::ctrl_c).
#[cfg(windows)]
pub mod windows {
    use std::fmt;
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use super::Listener;
    use crate::uv::signum;

    /// Starts listening for Ctrl+Break: events from now on are counted until received.
    ///
    /// # Panics
    /// Outside a uvio runtime.
    pub fn ctrl_break() -> io::Result<CtrlEvent> {
        Ok(CtrlEvent { listener: Listener::new(signum::SIGBREAK)?, name: "ctrl_break" })
    }

    /// Starts listening for the console closing (its window closed, or the console process ended).
    ///
    /// # Panics
    /// Outside a uvio runtime.
    pub fn ctrl_close() -> io::Result<CtrlEvent> {
        Ok(CtrlEvent { listener: Listener::new(signum::SIGHUP)?, name: "ctrl_close" })
    }

    /// A listener for one console event, from [`ctrl_break`] or [`ctrl_close`]: [`recv`](CtrlEvent::recv), or
    /// use it as a `futures::Stream<Item = ()>` that never ends. Several events before a `recv` count as one.
    /// Dropping it stops listening; other listeners are not affected.
    pub struct CtrlEvent {
        listener: Listener,
        name: &'static str,
    }

    impl CtrlEvent {
        /// Waits for the next event (or returns at once if some arrived since the last `recv`). Always
        /// `Some(())`: the `Option` mirrors tokio's API. Dropping the future loses nothing.
        pub async fn recv(&mut self) -> Option<()> {
            self.listener.recv().await;
            Some(())
        }

        /// Polls for an event (for hand-written futures).
        pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<()>> {
            self.listener.poll_recv(cx).map(Some)
        }
    }

    impl futures::Stream for CtrlEvent {
        type Item = ();

        fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<()>> {
            self.get_mut().poll_recv(cx)
        }
    }

    impl fmt::Debug for CtrlEvent {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("CtrlEvent").field("event", &self.name).finish_non_exhaustive()
        }
    }
}
