//! Time tests: sleep, sleep_until, timeout firing and not firing, interval with missed-tick policies.
mod common;

use std::time::{Duration, Instant};

use uvio::spawn_local;
use uvio::time::{interval, interval_at, sleep, sleep_until, timeout, MissedTickBehavior};

rt_test! {
    fn sleep_waits_at_least_its_duration() {
        let rt = common::rt::runtime(ENGINE);
        for ms in [0u64, 1, 5, 20] {
            let start = Instant::now();
            rt.block_on(sleep(Duration::from_millis(ms)));
            assert!(start.elapsed() >= Duration::from_millis(ms), "{ms} ms slept {:?}", start.elapsed());
        }
        rt.close().expect("runtime closes cleanly");
    }
}

rt_test! {
    fn sleep_until_past_deadline_is_ready_at_once() {
        let rt = common::rt::runtime(ENGINE);
        let past = Instant::now() - Duration::from_secs(1);
        rt.block_on(sleep_until(past));
        rt.close().expect("runtime closes cleanly");
    }
}

rt_test! {
    fn sleeps_end_in_deadline_order() {
        let rt = common::rt::runtime(ENGINE);
        let order = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        rt.block_on(async {
            // One start for every deadline, 100 ms apart: a slow first poll (valgrind) must not reorder them.
            let start = Instant::now();
            let hs: Vec<_> = [300u64, 100, 200, 0]
                .into_iter()
                .map(|ms| {
                    let order = order.clone();
                    spawn_local(async move {
                        sleep_until(start + Duration::from_millis(ms)).await;
                        order.borrow_mut().push(ms);
                    })
                })
                .collect();
            for h in hs {
                h.await.unwrap();
            }
        });
        assert_eq!(*order.borrow(), vec![0, 100, 200, 300]);
        rt.close().expect("runtime closes cleanly");
    }
}

rt_test! {
    fn hundred_thousand_sleeps() {
        let rt = common::rt::runtime(ENGINE);
        let n = rt.block_on(async {
            let hs: Vec<_> = (0..100_000u64).map(|i| spawn_local(sleep(Duration::from_micros(1 + i * 10)))).collect();
            let mut n = 0;
            for h in hs {
                h.await.unwrap();
                n += 1;
            }
            n
        });
        assert_eq!(n, 100_000);
        rt.close().expect("runtime closes cleanly");
    }
}

rt_test! {
    fn dropped_sleep_never_wakes_anything() {
        let rt = common::rt::runtime(ENGINE);
        rt.block_on(async {
            for _ in 0..2000 {
                let s = sleep(Duration::from_millis(1));
                drop(s);
                let mut s = Box::pin(sleep(Duration::from_secs(3600)));
                assert!(futures::poll!(s.as_mut()).is_pending()); // registered, then dropped
            }
            sleep(Duration::from_millis(5)).await;
        });
        rt.close().expect("runtime closes cleanly");
    }
}

rt_test! {
    fn timeout_fires() {
        let rt = common::rt::runtime(ENGINE);
        let start = Instant::now();
        let r = rt.block_on(timeout(Duration::from_millis(10), sleep(Duration::from_secs(3600))));
        assert!(r.is_err());
        assert!(start.elapsed() >= Duration::from_millis(10));
        let io: std::io::Error = r.unwrap_err().into();
        assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
        rt.close().expect("runtime closes cleanly");
    }
}

rt_test! {
    fn timeout_does_not_fire_when_the_future_wins() {
        let rt = common::rt::runtime(ENGINE);
        let r = rt.block_on(timeout(Duration::from_secs(3600), async {
            sleep(Duration::from_millis(2)).await;
            "done"
        }));
        assert_eq!(r, Ok("done"));
        rt.close().expect("runtime closes cleanly");
    }
}

rt_test! {
    fn interval_ticks_on_schedule() {
        let rt = common::rt::runtime(ENGINE);
        rt.block_on(async {
            let start = Instant::now();
            let mut iv = interval(Duration::from_millis(5));
            let first = iv.tick().await;
            assert!(first <= Instant::now());
            for k in 1..=4u32 {
                let t = iv.tick().await;
                assert_eq!(t, first + Duration::from_millis(5) * k);
            }
            assert!(start.elapsed() >= Duration::from_millis(20));
        });
        rt.close().expect("runtime closes cleanly");
    }
}

rt_test! {
    fn interval_missed_tick_policies() {
        let rt = common::rt::runtime(ENGINE);
        rt.block_on(async {
            for policy in [MissedTickBehavior::Burst, MissedTickBehavior::Delay, MissedTickBehavior::Skip] {
                let mut iv = interval(Duration::from_millis(5));
                iv.set_missed_tick_behavior(policy);
                let first = iv.tick().await;
                std::thread::sleep(Duration::from_millis(18)); // miss three periods
                // Taken before the late tick, so it is at or before the moment the interval computes what
                // follows (measuring after it would race with a slow machine, e.g. valgrind).
                let caught_up = Instant::now();
                let late = iv.tick().await; // the tick at first+5ms is due: fires at once
                assert_eq!(late, first + Duration::from_millis(5));
                let next = iv.tick().await;
                let period = Duration::from_millis(5);
                match policy {
                    // Every missed tick is delivered, one period apart, without waiting.
                    MissedTickBehavior::Burst => assert_eq!(next, first + period * 2),
                    // The schedule restarts one period after the late tick.
                    MissedTickBehavior::Delay => assert!(next >= caught_up + period),
                    // The missed ticks are skipped: the next one is on the original grid, in the future.
                    MissedTickBehavior::Skip => {
                        assert!(next >= caught_up);
                        assert_eq!((next - first).as_nanos() % period.as_nanos(), 0);
                    }
                }
            }
        });
        rt.close().expect("runtime closes cleanly");
    }
}

rt_test! {
    fn cancelled_far_sleeps_are_compacted_and_live_ones_still_fire_in_order() {
        // 20 000 far deadlines registered then dropped (their slots are reclaimed by compaction, not by the
        // deadline), interleaved with live short sleeps and resets that must all still end, in order.
        let rt = common::rt::runtime(ENGINE);
        let order = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        rt.block_on(async {
            // One base for every live deadline, taken when the tasks first run (after the loop below, which is slow
            // under valgrind): a slow poll must not reorder them.
            let base = std::rc::Rc::new(std::cell::Cell::new(Instant::now()));
            let mut live = Vec::new();
            for i in 0..20_000u64 {
                let mut far = Box::pin(sleep(Duration::from_secs(3600 + i)));
                assert!(futures::poll!(far.as_mut()).is_pending());
                drop(far);
                if i % 2000 == 0 {
                    let order = order.clone();
                    let ms = 30 * (20 - i / 2000); // later-spawned ones are due sooner, 30 ms apart
                    let base = base.clone();
                    live.push(spawn_local(async move {
                        let mut s = Box::pin(sleep(Duration::from_secs(3600)));
                        assert!(futures::poll!(s.as_mut()).is_pending());
                        s.as_mut().reset(base.get() + Duration::from_millis(ms));
                        s.await;
                        order.borrow_mut().push(ms);
                    }));
                }
            }
            base.set(Instant::now());
            for h in live {
                h.await.unwrap();
            }
        });
        let got = order.borrow().clone();
        let mut sorted = got.clone();
        sorted.sort_unstable();
        assert_eq!(got.len(), 10);
        assert_eq!(got, sorted, "sleeps ended out of deadline order");
        rt.close().expect("runtime closes cleanly");
    }
}

/// How long a test waits to see that a far deadline does not fire.
const SHORT: Duration = Duration::from_millis(20);

rt_test! {
    fn duration_max_deadlines_never_fire_never_panic_and_leave_the_runtime_usable() {
        let rt = common::rt::runtime(ENGINE);
        rt.block_on(async {
            assert!(timeout(SHORT, sleep(Duration::MAX)).await.is_err(), "sleep(MAX) ended");
            assert_eq!(timeout(Duration::MAX, async { 7 }).await, Ok(7));
            assert!(timeout(Duration::MAX, sleep(Duration::from_millis(2))).await.is_ok());
            assert!(timeout(SHORT, timeout(Duration::MAX, std::future::pending::<()>())).await.is_err());
            // A far instant (past what `Duration::MAX` from now would be, if it could be represented, is not
            // reachable; a thousand years is).
            let far = Instant::now().checked_add(Duration::from_secs(1000 * 365 * 86_400)).unwrap();
            assert!(timeout(SHORT, sleep_until(far)).await.is_err(), "sleep_until(far) ended");
            // Reset to a far deadline, while registered.
            let mut s = Box::pin(sleep(Duration::from_secs(3600)));
            assert!(futures::poll!(s.as_mut()).is_pending());
            s.as_mut().reset(far);
            assert!(timeout(SHORT, s).await.is_err(), "a sleep reset to a far deadline ended");
            for policy in [MissedTickBehavior::Burst, MissedTickBehavior::Delay, MissedTickBehavior::Skip] {
                let mut iv = interval(Duration::MAX);
                iv.set_missed_tick_behavior(policy);
                iv.tick().await; // the first tick is at once
                assert!(timeout(SHORT, iv.tick()).await.is_err(), "{policy:?}: a second tick of interval(MAX)");
                iv.reset();
                assert!(timeout(SHORT, iv.tick()).await.is_err(), "{policy:?}: a tick after reset");
            }
            let start = Instant::now();
            sleep(Duration::from_millis(2)).await;
            assert!(start.elapsed() >= Duration::from_millis(2));
        });
        rt.close().expect("runtime closes cleanly");
    }
}

rt_test! {
    fn zero_durations_fire_at_once() {
        let rt = common::rt::runtime(ENGINE);
        rt.block_on(async {
            let start = Instant::now();
            sleep(Duration::ZERO).await;
            assert!(timeout(Duration::ZERO, std::future::pending::<()>()).await.is_err());
            assert_eq!(timeout(Duration::ZERO, async { 1 }).await, Ok(1));
            let mut s = Box::pin(sleep(Duration::from_secs(3600)));
            assert!(futures::poll!(s.as_mut()).is_pending());
            s.as_mut().reset(Instant::now());
            s.await;
            assert!(start.elapsed() < Duration::from_secs(1), "zero-length waits took {:?}", start.elapsed());
        });
        rt.close().expect("runtime closes cleanly");
    }
}

/// Checks the ticks after a late one, with `Skip`: each is on the grid from `start`, and after `before`, a
/// moment before the previous `tick()` (which computed it) was called: not in the past when computed, so no
/// burst of ticks fires.
async fn skip_ticks_stay_ahead(iv: &mut uvio::time::Interval, start: Instant, period: Duration, mut before: Instant) {
    for _ in 0..5 {
        let now = Instant::now();
        let t = iv.tick().await;
        assert!(t > before, "period {period:?}: a tick {:?} in the past", before - t);
        assert_eq!((t - start).as_nanos() % period.as_nanos(), 0, "period {period:?}: tick off the grid");
        before = now;
    }
}

rt_test! {
    fn skip_with_a_tiny_period_after_a_stall_schedules_the_next_tick_ahead_on_the_grid() {
        let rt = common::rt::runtime(ENGINE);
        rt.block_on(async {
            for period in [Duration::from_nanos(1), Duration::from_nanos(7), Duration::from_micros(1)] {
                // A stall inside the task: the tick that was due fires late, once, then the grid resumes ahead.
                let mut iv = interval(period);
                iv.set_missed_tick_behavior(MissedTickBehavior::Skip);
                let first = iv.tick().await;
                std::thread::sleep(Duration::from_millis(100));
                let stalled = Instant::now();
                let late = iv.tick().await; // scheduled before the stall
                assert!(late > first && late < stalled, "period {period:?}: the late tick is not the missed one");
                let off_grid = (late - first).as_nanos() % period.as_nanos();
                assert_eq!(off_grid, 0, "period {period:?}: late tick off the grid");
                skip_ticks_stay_ahead(&mut iv, first, period, stalled).await;

                // Billions of periods behind (a schedule that started 10 s ago): more than fit in a u32.
                let Some(start) = Instant::now().checked_sub(Duration::from_secs(10)) else { continue };
                let mut iv = interval_at(start, period);
                iv.set_missed_tick_behavior(MissedTickBehavior::Skip);
                let before = Instant::now();
                assert_eq!(iv.tick().await, start);
                skip_ticks_stay_ahead(&mut iv, start, period, before).await;
            }
        });
        rt.close().expect("runtime closes cleanly");
    }
}
