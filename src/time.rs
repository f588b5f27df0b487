//! Time: [`sleep`], [`sleep_until`], [`timeout`] and [`interval`], on the runtime's libuv loop.
//!
//! Deadlines are kept in one heap per runtime under a single libuv timer (see `runtime/timers.rs`), so a
//! pending sleep costs a few dozen bytes and no libuv handle. Resolution is libuv's: whole milliseconds,
//! rounded up, so a sleep never ends early. [`Instant`] is std's.
//!
//! A deadline too far to represent (`sleep(Duration::MAX)`, an interval of `Duration::MAX`) is clamped to
//! about 30 years from its start, as tokio does: it never fires in practice, and nothing panics.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
pub use std::time::{Duration, Instant};

use crate::runtime::{current, Executor, TimerKey};

/// Waits until `duration` has elapsed. Must be polled inside a uvio runtime.
///
/// ```
/// uvio::block_on(async {
///     let start = uvio::time::Instant::now();
///     uvio::time::sleep(std::time::Duration::from_millis(10)).await;
///     assert!(start.elapsed() >= std::time::Duration::from_millis(10));
/// });
/// ```
pub fn sleep(duration: Duration) -> Sleep {
    sleep_until(after(Instant::now(), duration))
}

/// About 30 years: how far a deadline that `Instant` cannot represent is put (tokio's choice too).
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// `start + duration`, clamped to `start + FAR_FUTURE` when the sum overflows `Instant` (and to `start` itself in
/// the absurd case that even that overflows): deadline arithmetic never panics.
fn after(start: Instant, duration: Duration) -> Instant {
    start.checked_add(duration).or_else(|| start.checked_add(FAR_FUTURE)).unwrap_or(start)
}

/// `period * n` for a tick count `n`, saturating at `Duration::MAX` (clamped further by [`after`]).
fn periods(period: Duration, n: u128) -> Duration {
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    let Some(nanos) = period.as_nanos().checked_mul(n) else { return Duration::MAX };
    match u64::try_from(nanos / NANOS_PER_SEC) {
        // The remainder is below 10^9, so it fits a u32.
        Ok(secs) => Duration::new(secs, (nanos % NANOS_PER_SEC) as u32),
        Err(_) => Duration::MAX,
    }
}

/// Waits until `deadline`. Must be polled inside a uvio runtime.
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep { deadline, registered: None }
}

/// The future of [`sleep`] and [`sleep_until`]. Dropping it cancels the timer.
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    deadline: Instant,
    registered: Option<(Rc<Executor>, TimerKey)>,
}

impl Sleep {
    /// When this sleep ends.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the deadline has passed.
    pub fn is_elapsed(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Moves the deadline (the sleep can be awaited again after it ended).
    pub fn reset(&mut self, deadline: Instant) {
        self.unregister();
        self.deadline = deadline;
    }

    fn unregister(&mut self) {
        if let Some((ex, key)) = self.registered.take() {
            ex.timers.cancel(key);
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match &self.registered {
            Some((ex, key)) => {
                if ex.timers.poll(*key, cx.waker()) {
                    self.unregister();
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            }
            None => {
                if Instant::now() >= self.deadline {
                    return Poll::Ready(());
                }
                let ex = current();
                let key = ex.timers.register(self.deadline, cx.waker());
                self.registered = Some((ex, key));
                Poll::Pending
            }
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.unregister();
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep").field("deadline", &self.deadline).finish()
    }
}

/// The error of [`timeout`]: the deadline passed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed(());

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for std::io::Error {
    fn from(e: Elapsed) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::TimedOut, e)
    }
}

/// Runs `fut` with a time limit: its output, or [`Elapsed`] if `duration` passes first (`fut` is then
/// dropped, which cancels it).
///
/// ```
/// use std::time::Duration;
/// uvio::block_on(async {
///     let slow = uvio::time::timeout(Duration::from_millis(5), uvio::time::sleep(Duration::from_secs(60)));
///     assert!(slow.await.is_err());
///     let fast = uvio::time::timeout(Duration::from_secs(60), async { 7 });
///     assert_eq!(fast.await, Ok(7));
/// });
/// ```
pub fn timeout<F: Future>(duration: Duration, fut: F) -> Timeout<F> {
    Timeout { fut: Box::pin(fut), sleep: sleep(duration) }
}

/// The future of [`timeout`].
#[must_use = "futures do nothing unless awaited"]
pub struct Timeout<F> {
    fut: Pin<Box<F>>,
    sleep: Sleep,
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(out) = self.fut.as_mut().poll(cx) {
            return Poll::Ready(Ok(out));
        }
        match Pin::new(&mut self.sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed(()))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<F> fmt::Debug for Timeout<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout").field("deadline", &self.sleep.deadline).finish()
    }
}

/// What an [`Interval`] does when ticks were missed (the task was busy past one or more periods).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissedTickBehavior {
    /// Fire the missed ticks at once, one per `tick()`, to catch up (the default, like tokio).
    #[default]
    Burst,
    /// Schedule the next tick one period after the late one.
    Delay,
    /// Skip the missed ticks: the next tick is the next multiple of the period from the start.
    Skip,
}

/// Ticks every `period`, the first tick at once. Panics if `period` is zero.
pub fn interval(period: Duration) -> Interval {
    interval_at(Instant::now(), period)
}

/// Ticks every `period`, the first tick at `start`. Panics if `period` is zero.
pub fn interval_at(start: Instant, period: Duration) -> Interval {
    assert!(!period.is_zero(), "interval period must be non-zero");
    Interval { next: start, period, sleep: sleep_until(start), missed: MissedTickBehavior::default() }
}

/// A periodic timer: see [`interval`].
///
/// ```
/// use std::time::Duration;
/// uvio::block_on(async {
///     let mut every = uvio::time::interval(Duration::from_millis(2));
///     for _ in 0..3 {
///         every.tick().await;
///     }
/// });
/// ```
#[derive(Debug)]
pub struct Interval {
    next: Instant,
    period: Duration,
    sleep: Sleep,
    missed: MissedTickBehavior,
}

impl Interval {
    /// Waits for the next tick and returns when it was scheduled.
    pub async fn tick(&mut self) -> Instant {
        std::future::poll_fn(|cx| self.poll_tick(cx)).await
    }

    /// Polls for the next tick (for hand-written futures).
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Instant> {
        if Pin::new(&mut self.sleep).poll(cx).is_pending() {
            return Poll::Pending;
        }
        let tick = self.next;
        self.next = self.next_after(tick, Instant::now());
        self.sleep.reset(self.next);
        Poll::Ready(tick)
    }

    /// The tick after `tick`, which fired at `now` (late if the task was busy).
    fn next_after(&self, tick: Instant, now: Instant) -> Instant {
        let on_time = after(tick, self.period);
        match self.missed {
            MissedTickBehavior::Burst => on_time,
            MissedTickBehavior::Delay if now > on_time => after(now, self.period),
            MissedTickBehavior::Delay => on_time,
            MissedTickBehavior::Skip => {
                // The first multiple of the period after `now`. Computed in u128 nanoseconds: with a tiny period,
                // a stall is billions of periods behind.
                let behind = now.saturating_duration_since(tick).as_nanos() / self.period.as_nanos();
                after(tick, periods(self.period, behind + 1))
            }
        }
    }

    /// Sets what to do about missed ticks.
    pub fn set_missed_tick_behavior(&mut self, behavior: MissedTickBehavior) {
        self.missed = behavior;
    }

    /// The period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Restarts the schedule: the next tick is one period from now.
    pub fn reset(&mut self) {
        self.next = after(Instant::now(), self.period);
        self.sleep.reset(self.next);
    }
}
