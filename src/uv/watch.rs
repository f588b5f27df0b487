//! [`Idle`], [`Prepare`] and [`Check`]: callbacks at fixed points of every loop iteration (`uv_idle_t`,
//! `uv_prepare_t`, `uv_check_t`).
//!
//! One loop iteration (`uv_run`), in libuv's order: pending I/O callbacks → **idle** → **prepare** → poll for
//! I/O (blocking until the next timer is due, unless idle handles are active or the mode is `NoWait`) → I/O
//! callbacks → **check** → close callbacks → update "now" → due timers. (`RunMode::Default` also runs due
//! timers once before the first iteration.) The three types differ only in where they run; they share one
//! definition (the `watcher!` macro below), so their methods behave identically.

use libuv_sys2 as sys;

use super::handle::{impl_handle, Callback, Owned};
use super::loop_::Loop;
use crate::error::{Error, Result};

/// Defines one watcher type: `new`, `start`, `stop` and the trampoline, following [`super::Timer`]'s pattern.
macro_rules! watcher {
    (
        $(#[$doc:meta])*
        $name:ident, $raw:ty, $init:ident, $start:ident, $stop:ident
    ) => {
        $(#[$doc])*
        pub struct $name {
            h: Owned<$raw, Callback<dyn FnMut(&$name)>>,
        }

        impl_handle!($name);

        impl $name {
            #[doc = concat!("Creates a stopped handle on `lp` (`", stringify!($init), "`).")]
            pub fn new(lp: &Loop) -> Result<$name> {
                // SAFETY: `raw` points to zeroed memory inside the box that Owned::new keeps alive.
                let h = Owned::new(lp, Callback::default(), |l, raw| unsafe { sys::$init(l, raw) })?;
                Ok($name { h })
            }

            #[doc = concat!(
                "Starts the handle: `cb` runs once per loop iteration until [`", stringify!($name),
                "::stop`] (`", stringify!($start), "`). Starting a started handle replaces its callback. ",
                "`EINVAL` if the handle is closing (dropped from its own callback)."
            )]
            pub fn start(&self, cb: impl FnMut(&$name) + 'static) -> Result<()> {
                self.h.check_open()?;
                self.h.state().set(Box::new(cb));
                // SAFETY: the handle is initialised and open; the trampoline matches this box type.
                Error::check(unsafe { sys::$start(self.h.raw(), Some(Self::trampoline)) }).map(drop)
            }

            #[doc = concat!(
                "Stops the handle; the callback stops running (`", stringify!($stop), "`). Stopping a stopped ",
                "handle does nothing. The closure is released when a new one is started or the handle is dropped."
            )]
            pub fn stop(&self) -> Result<()> {
                // SAFETY: the handle is initialised; stopping a stopped or closing handle is a no-op in libuv.
                Error::check(unsafe { sys::$stop(self.h.raw()) }).map(drop)
            }

            unsafe extern "C" fn trampoline(raw: *mut $raw) {
                // SAFETY: libuv passes the handle we started, alive until its close callback; the view lives
                // for this call only.
                let this = unsafe { Owned::view(raw, |h| $name { h }) };
                this.h.invoke(|s| s, |cb| cb(&this));
            }
        }
    };
}

watcher! {
    /// Runs a callback on every loop iteration while active (`uv_idle_t`), just before [`Prepare`] handles.
    ///
    /// Despite the name, it does not wait for the loop to be idle: while an idle handle is active the loop
    /// polls for I/O with a zero timeout instead of blocking, so the callback runs again and again. Use it for
    /// background work in small slices, and stop it when the work is done. Dropping it stops and closes it; a
    /// callback may stop, restart or drop its own handle.
    ///
    /// ```
    /// use uvio::uv::{Idle, Loop, RunMode};
    ///
    /// let lp = Loop::new()?;
    /// let idle = Idle::new(&lp)?;
    /// let mut slices = 0;
    /// idle.start(move |idle| {
    ///     slices += 1; // one slice of background work per iteration
    ///     if slices == 3 {
    ///         idle.stop().unwrap();
    ///     }
    /// })?;
    /// lp.run(RunMode::Default)?;
    /// # Ok::<(), uvio::Error>(())
    /// ```
    Idle, sys::uv_idle_t, uv_idle_init, uv_idle_start, uv_idle_stop
}

watcher! {
    /// Runs a callback once per loop iteration, right before the loop polls (and possibly blocks) for I/O
    /// (`uv_prepare_t`).
    ///
    /// The place to flush work batched during the iteration before the loop goes to sleep. Unlike [`Idle`], an
    /// active prepare handle does not stop the poll from blocking. Dropping it stops and closes it; a callback
    /// may stop, restart or drop its own handle.
    ///
    /// ```
    /// use std::time::Duration;
    /// use uvio::uv::{Loop, Prepare, RunMode, Timer};
    ///
    /// let lp = Loop::new()?;
    /// let prepare = Prepare::new(&lp)?;
    /// prepare.start(|_| println!("about to poll for I/O"))?;
    /// let timer = Timer::new(&lp)?;
    /// timer.start(Duration::from_millis(1), None, |_| {})?;
    /// lp.run(RunMode::Once)?; // the prepare callback runs before the poll that waits for the timer
    /// # Ok::<(), uvio::Error>(())
    /// ```
    Prepare, sys::uv_prepare_t, uv_prepare_init, uv_prepare_start, uv_prepare_stop
}

watcher! {
    /// Runs a callback once per loop iteration, right after the loop polled for I/O and ran the I/O callbacks
    /// (`uv_check_t`).
    ///
    /// Pairs with [`Prepare`]: the time between a prepare and the following check callback is the time the loop
    /// spent in the poll. An active check handle does not stop the poll from blocking. Dropping it stops and
    /// closes it; a callback may stop, restart or drop its own handle.
    ///
    /// ```
    /// use std::time::Duration;
    /// use uvio::uv::{Check, Loop, RunMode, Timer};
    ///
    /// let lp = Loop::new()?;
    /// let check = Check::new(&lp)?;
    /// check.start(|_| println!("polled for I/O"))?;
    /// let timer = Timer::new(&lp)?;
    /// timer.start(Duration::from_millis(1), None, |_| {})?;
    /// lp.run(RunMode::Once)?;
    /// # Ok::<(), uvio::Error>(())
    /// ```
    Check, sys::uv_check_t, uv_check_init, uv_check_start, uv_check_stop
}
