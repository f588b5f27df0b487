//! Loop health: how late the loop runs and how much of its time it sleeps, as a stream of reports.
//!
//! A loop that runs late delays every timer, every read and every accept behind the callback or task that held
//! it. [`Monitor`] measures that the way Node's `monitorEventLoopDelay` does: a libuv timer fires every
//! `resolution`, and each time it measures how much later than asked it ran (the *lag*). Every `interval` it
//! yields a [`Report`] with the lag's median, 99th percentile and maximum over that interval, and the share of
//! the interval the loop spent idle, waiting in the kernel for events (libuv's `uv_metrics_idle_time`).
//!
//! ```
//! use futures::StreamExt;
//! use std::time::Duration;
//!
//! uvio::block_on(async {
//!     let mut health = uvio::health::Monitor::new(Duration::from_millis(5), Duration::from_millis(100))?;
//!     let report = health.next().await.expect("the runtime is running");
//!     assert!(report.lag_p50 <= report.lag_p99 && report.lag_p99 <= report.lag_max);
//!     println!("lag p99 {:?}, idle {:.0}%", report.lag_p99, report.idle_share * 100.0);
//!     std::io::Result::Ok(())
//! }).unwrap();
//! ```
//!
//! The monitor's timer does not keep the loop alive, and it costs one timer callback per `resolution`. Creating
//! one turns on libuv's idle-time accounting for its loop (`UV_METRICS_IDLE_TIME`: two clock reads per loop
//! iteration), which stays on.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::uv;

/// Reports kept for a reader that does not keep up; older ones are dropped.
const KEPT: usize = 16;
/// Lag samples kept per interval (an interval of more samples keeps the first ones; the maximum sees them all).
const SAMPLES: usize = 1 << 16;

/// One interval of a loop's health; see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Report {
    /// How long the interval really lasted (at least the interval asked for; longer when the loop ran late).
    pub elapsed: Duration,
    /// How many times the monitor's timer fired in it.
    pub samples: usize,
    /// Median lag: how much later than asked the timer fired.
    pub lag_p50: Duration,
    /// 99th percentile of the lag.
    pub lag_p99: Duration,
    /// The worst lag.
    pub lag_max: Duration,
    /// The share of the interval the loop spent waiting for events, from 0 (always busy) to 1 (always idle).
    pub idle_share: f64,
}

/// A stream of [`Report`]s on the current runtime's loop, one per interval; it ends only when its runtime shuts
/// down.
pub struct Monitor {
    state: Rc<RefCell<State>>,
    // Dropping the monitor closes its timer; the callback holds only a weak reference to the state.
    _timer: uv::Timer,
}

struct State {
    lp: uv::Loop,
    resolution: Duration,
    interval: Duration,
    last_tick: Instant,
    window_start: Instant,
    idle_at_start: Duration,
    lags: Vec<Duration>,
    worst: Duration,
    ticks: usize,
    reports: VecDeque<Report>,
    waker: Option<Waker>,
}

impl Monitor {
    /// Starts measuring the current runtime's loop: a sample every `resolution` (at least 1 ms, libuv's timer
    /// resolution), a report every `interval` (at least one resolution). Must be called inside a runtime.
    pub fn new(resolution: Duration, interval: Duration) -> io::Result<Monitor> {
        let resolution = resolution.max(Duration::from_millis(1));
        let interval = interval.max(resolution);
        let lp = crate::runtime::current().lp.clone();
        lp.enable_idle_time_metrics()?;
        let now = Instant::now();
        let state = Rc::new(RefCell::new(State {
            idle_at_start: lp.metrics().idle_time,
            lp: lp.clone(),
            resolution,
            interval,
            last_tick: now,
            window_start: now,
            lags: Vec::new(),
            worst: Duration::ZERO,
            ticks: 0,
            reports: VecDeque::new(),
            waker: None,
        }));
        let timer = uv::Timer::new(&lp)?;
        let weak = Rc::downgrade(&state);
        timer.start(resolution, Some(resolution), move |_| {
            if let Some(state) = weak.upgrade() {
                state.borrow_mut().tick(Instant::now());
            }
        })?;
        uv::Handle::unref(&timer);
        Ok(Monitor { state, _timer: timer })
    }
}

impl State {
    fn tick(&mut self, now: Instant) {
        let lag = now.saturating_duration_since(self.last_tick + self.resolution);
        self.last_tick = now;
        self.ticks += 1;
        self.worst = self.worst.max(lag);
        if self.lags.len() < SAMPLES {
            self.lags.push(lag);
        }
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed >= self.interval {
            self.report(now, elapsed);
        }
    }

    fn report(&mut self, now: Instant, elapsed: Duration) {
        let idle = self.lp.metrics().idle_time;
        let idle_share = (idle.saturating_sub(self.idle_at_start).as_secs_f64() / elapsed.as_secs_f64()).min(1.0);
        self.lags.sort_unstable();
        let report = Report {
            elapsed,
            samples: self.ticks,
            lag_p50: percentile(&self.lags, 50),
            lag_p99: percentile(&self.lags, 99),
            lag_max: self.worst,
            idle_share,
        };
        if self.reports.len() == KEPT {
            self.reports.pop_front();
        }
        self.reports.push_back(report);
        self.lags.clear();
        self.worst = Duration::ZERO;
        self.ticks = 0;
        self.window_start = now;
        self.idle_at_start = idle;
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

/// The `pct`th percentile of sorted samples (nearest rank), zero for none.
fn percentile(sorted: &[Duration], pct: usize) -> Duration {
    match sorted.len() {
        0 => Duration::ZERO,
        n => sorted[(n * pct).div_ceil(100).clamp(1, n) - 1],
    }
}

impl futures::Stream for Monitor {
    type Item = Report;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Report>> {
        let mut state = self.state.borrow_mut();
        match state.reports.pop_front() {
            Some(report) => Poll::Ready(Some(report)),
            // Nothing runs the loop any more: no report will come.
            None if state.lp.inner().runtime_gone.get() => Poll::Ready(None),
            None => {
                state.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.borrow();
        f.debug_struct("Monitor").field("resolution", &state.resolution).field("interval", &state.interval).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let ms = |v: u64| Duration::from_millis(v);
        let samples: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(percentile(&samples, 50), ms(50));
        assert_eq!(percentile(&samples, 99), ms(99));
        assert_eq!(percentile(&[ms(7)], 99), ms(7));
        assert_eq!(percentile(&[], 50), Duration::ZERO);
    }
}
