//! [`Timer`]: run a callback after a timeout, optionally repeating (`uv_timer_t`).

use std::time::Duration;

use libuv_sys2 as sys;

use super::handle::{impl_handle, Callback, Owned};
use super::loop_::Loop;
use crate::error::{Error, Result};

type TimerCb = dyn FnMut(&Timer);

/// A timer (`uv_timer_t`). Dropping it stops and closes it; a callback may restart, stop or drop its own timer.
///
/// Timers fire in order of due time (ties in start order) at the end of a loop iteration (and once before the
/// first one in `RunMode::Default`); "now" is the loop's cached time ([`Loop::now`]), so a timer started from a
/// callback counts from that iteration's start.
///
/// ```
/// use std::time::Duration;
/// use uvio::uv::{Loop, RunMode, Timer};
///
/// let lp = Loop::new()?;
/// let timer = Timer::new(&lp)?;
/// let mut ticks = 0;
/// timer.start(Duration::from_millis(1), Some(Duration::from_millis(1)), move |t| {
///     ticks += 1;
///     if ticks == 3 {
///         t.stop().unwrap();
///     }
/// })?;
/// lp.run(RunMode::Default)?;
/// # Ok::<(), uvio::Error>(())
/// ```
pub struct Timer {
    h: Owned<sys::uv_timer_t, Callback<TimerCb>>,
}

impl_handle!(Timer);

/// Whole milliseconds, saturating (libuv's resolution); cheaper than `as_millis`'s u128.
#[inline]
fn millis(d: Duration) -> u64 {
    d.as_secs().saturating_mul(1000).saturating_add(u64::from(d.subsec_millis()))
}

impl Timer {
    /// Creates a stopped timer on `lp` (`uv_timer_init`).
    pub fn new(lp: &Loop) -> Result<Timer> {
        // SAFETY: `raw` points to zeroed memory inside the box that Owned::new keeps alive.
        let h = Owned::new(lp, Callback::default(), |l, raw| unsafe { sys::uv_timer_init(l, raw) })?;
        Ok(Timer { h })
    }

    /// Starts the timer: `cb` runs after `timeout`, then every `repeat` if given (`uv_timer_start`). Starting a
    /// started timer replaces its callback and schedule. Milliseconds are libuv's resolution (rounded down, so a
    /// repeat under 1 ms is no repeat). Durations beyond `u64::MAX` milliseconds saturate, and libuv clamps a due
    /// time past the end of its clock to that end: a huge timeout never fires in practice, and nothing panics.
    #[inline]
    pub fn start(&self, timeout: Duration, repeat: Option<Duration>, cb: impl FnMut(&Timer) + 'static) -> Result<()> {
        // A closing timer is refused by uv_timer_start in `restart`; the closure is then dropped with the box.
        self.h.state().set_reusing(cb, |b| b);
        self.restart(timeout, repeat)
    }

    /// Starts the timer again with the callback it already has, without allocating (a timer that never had a
    /// callback fires without effect).
    #[inline]
    pub fn restart(&self, timeout: Duration, repeat: Option<Duration>) -> Result<()> {
        // No check_open: uv_timer_start itself refuses a closing timer with EINVAL.
        let repeat = repeat.map_or(0, millis);
        // SAFETY: the handle is initialised and open; `on_timer` matches this box type.
        Error::check(unsafe { sys::uv_timer_start(self.h.raw(), Some(on_timer), millis(timeout), repeat) }).map(drop)
    }

    /// Stops the timer; its callback is kept for [`Timer::restart`] (`uv_timer_stop`).
    pub fn stop(&self) -> Result<()> {
        // SAFETY: the handle is initialised; stopping a closing or stopped timer is a no-op in libuv.
        Error::check(unsafe { sys::uv_timer_stop(self.h.raw()) }).map(drop)
    }

    /// Restarts a repeating timer from now with its repeat interval, as if started with `timeout` and `repeat`
    /// both equal to it; started or stopped, it then runs (`uv_timer_again`). A timer with no repeat interval is
    /// left as it is (running or not) and `Ok` is returned. `EINVAL` if the timer was never started, or is
    /// closing.
    pub fn again(&self) -> Result<()> {
        self.h.check_open()?;
        // SAFETY: the handle is initialised and open.
        Error::check(unsafe { sys::uv_timer_again(self.h.raw()) }).map(drop)
    }

    /// Sets the repeat interval used from the next firing or [`Timer::again`] (`uv_timer_set_repeat`).
    pub fn set_repeat(&self, repeat: Option<Duration>) {
        // SAFETY: the handle is initialised; this only writes a field.
        unsafe { sys::uv_timer_set_repeat(self.h.raw(), repeat.map_or(0, millis)) }
    }

    /// The repeat interval (`uv_timer_get_repeat`).
    pub fn repeat(&self) -> Option<Duration> {
        // SAFETY: the handle is initialised; this only reads a field.
        let ms = unsafe { sys::uv_timer_get_repeat(self.h.raw()) };
        (ms != 0).then(|| Duration::from_millis(ms))
    }

    /// Time until the timer fires; zero if it is due or stopped (`uv_timer_get_due_in`).
    pub fn due_in(&self) -> Duration {
        if !super::Handle::is_active(self) {
            return Duration::ZERO; // libuv keeps a stopped timer's old due time; it is not due at all
        }
        // SAFETY: the handle is initialised; this only reads fields.
        Duration::from_millis(unsafe { sys::uv_timer_get_due_in(self.h.raw()) })
    }
}

unsafe extern "C" fn on_timer(raw: *mut sys::uv_timer_t) {
    // SAFETY: libuv passes the timer we started, alive until its close callback; the view lives for this call.
    let timer = unsafe { Owned::view(raw, |h| Timer { h }) };
    timer.h.invoke(|s| s, |cb| cb(&timer));
}
