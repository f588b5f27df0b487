//! Loop health (`uvio::health::Monitor`): a blocked loop shows in the lag, an idle one in the idle share, on
//! every engine.

mod common;

use std::time::Duration;

use futures::StreamExt;

rt_test! {
    async fn a_loop_blocked_for_200_ms_shows_in_the_lag() {
        let mut health = uvio::health::Monitor::new(Duration::from_millis(10), Duration::from_millis(300)).unwrap();
        uvio::time::sleep(Duration::from_millis(30)).await; // a few ordinary ticks first
        std::thread::sleep(Duration::from_millis(200)); // the loop cannot run meanwhile
        // The blocked tick lands in the report of the interval it ended in: the first or the second.
        let mut worst = Duration::ZERO;
        for _ in 0..2 {
            let report = health.next().await.expect("the runtime runs");
            assert!(report.samples > 0);
            assert!(report.lag_p50 <= report.lag_p99 && report.lag_p99 <= report.lag_max, "{report:?}");
            worst = worst.max(report.lag_max);
        }
        assert!(worst >= Duration::from_millis(180), "a 200 ms block seen as at most {worst:?}");
    }
}

rt_test! {
    async fn an_idle_loop_reports_mostly_idle_time_and_small_lag() {
        let mut health = uvio::health::Monitor::new(Duration::from_millis(5), Duration::from_millis(200)).unwrap();
        let report = health.next().await.expect("the runtime runs");
        assert!(report.elapsed >= Duration::from_millis(200), "{report:?}");
        // Nothing else runs: the loop sleeps between ticks. (Loose bounds: this machine may be loaded.)
        assert!(report.idle_share > 0.3 && report.idle_share <= 1.0, "{report:?}");
        assert!(report.lag_p50 < Duration::from_millis(100), "{report:?}");
    }
}

rt_test! {
    fn a_monitor_ends_when_its_runtime_is_gone() {
        let rt = common::rt::runtime(ENGINE);
        let mut health = rt.block_on(async {
            uvio::health::Monitor::new(Duration::from_millis(5), Duration::from_millis(50)).unwrap()
        });
        drop(rt);
        assert_eq!(futures::executor::block_on(health.next()), None);
    }
}
