//! Runtime tests of `task::JoinSet` and `task::AbortHandle`: completion order, panics, abort, drop, detach,
//! shutdown, many tasks, and the handle types' thread bounds.
mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use uvio::task::{yield_now, AbortHandle, JoinHandle, JoinSet};
use uvio::time::sleep;

static_assertions::assert_impl_all!(AbortHandle: Send, Sync, Clone, Unpin);
static_assertions::assert_impl_all!(JoinHandle<Rc<u8>>: Unpin);
static_assertions::assert_impl_all!(JoinSet<u8>: Send);
static_assertions::assert_not_impl_any!(JoinSet<Rc<u8>>: Send);

/// Sets its flag when dropped: tells whether a task's future was dropped.
struct DropFlag(Rc<Cell<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

async fn sleep_then(ms: u64) -> u64 {
    sleep(Duration::from_millis(ms)).await;
    ms
}

/// Waits until `cond` holds, checking every few milliseconds for up to 10 s: no assumption on how fast the
/// machine is (valgrind runs these tests ~50x slower).
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..2000 {
        if cond() {
            return;
        }
        sleep(Duration::from_millis(5)).await;
    }
    panic!("{what}: still not the case after 10 s");
}

rt_test! {
    async fn join_next_follows_completion_order() {
        // Deadlines from one instant, given once every task has started and waits at a gate, and far enough
        // ahead that every timer is set before the first is due: the order then does not depend on how fast
        // the tasks get polled (under valgrind, a poll may wait tens of milliseconds for another thread). Timers
        // that come due together fire in deadline order, so a stall after that changes nothing either.
        use futures::FutureExt;
        let (open, gate) = futures::channel::oneshot::channel::<Instant>();
        let gate = gate.shared();
        let parked = Rc::new(Cell::new(0));
        let mut set = JoinSet::new();
        for ms in [30, 10, 20] {
            let (gate, parked) = (gate.clone(), parked.clone());
            set.spawn_local(async move {
                parked.set(parked.get() + 1);
                let start = gate.await.unwrap();
                uvio::time::sleep_until(start + Duration::from_millis(ms)).await;
                ms
            });
        }
        eventually("every task waits at the gate", || parked.get() == 3).await;
        open.send(Instant::now() + Duration::from_millis(500)).unwrap();
        assert_eq!(set.len(), 3);
        let mut order = Vec::new();
        while let Some(res) = set.join_next().await {
            order.push(res.unwrap());
        }
        assert_eq!(order, [10, 20, 30]);
        assert!(set.is_empty());
        assert!(set.join_next().await.is_none(), "an empty set gives None again");
    }
}

rt_test! {
    async fn a_panicking_task_gives_a_panic_join_error() {
        let mut set = JoinSet::new();
        set.spawn_local(async { panic!("boom in a set") });
        set.spawn_local(async { 7 });
        let mut ok = Vec::new();
        let mut panics = 0;
        while let Some(res) = set.join_next().await {
            match res {
                Ok(v) => ok.push(v),
                Err(e) => {
                    assert!(e.is_panic());
                    assert_eq!(e.into_panic().downcast_ref::<&str>(), Some(&"boom in a set"));
                    panics += 1;
                }
            }
        }
        assert_eq!((ok, panics), (vec![7], 1));
    }
}

rt_test! {
    async fn abort_all_cancels_every_task() {
        let mut set = JoinSet::new();
        let flags: Vec<_> = (0..5).map(|_| Rc::new(Cell::new(false))).collect();
        for flag in &flags {
            let guard = DropFlag(flag.clone());
            set.spawn_local(async move {
                let _guard = guard;
                std::future::pending::<()>().await;
            });
        }
        yield_now().await; // every task starts and waits
        set.abort_all();
        assert_eq!(set.len(), 5, "aborted tasks stay until joined");
        let mut cancelled = 0;
        while let Some(res) = set.join_next().await {
            assert!(res.unwrap_err().is_cancelled());
            cancelled += 1;
        }
        assert_eq!(cancelled, 5);
        assert!(flags.iter().all(|f| f.get()), "every future was dropped");
    }
}

rt_test! {
    async fn dropping_the_set_aborts_its_tasks() {
        let dropped = Rc::new(Cell::new(false));
        let finished = Rc::new(Cell::new(false));
        let mut set = JoinSet::new();
        let (guard, done) = (DropFlag(dropped.clone()), finished.clone());
        set.spawn_local(async move {
            let _guard = guard;
            sleep(Duration::from_secs(30)).await;
            done.set(true);
        });
        yield_now().await;
        drop(set);
        // The abort takes effect at the executor's next turn.
        for _ in 0..3 {
            yield_now().await;
        }
        assert!(dropped.get(), "the task's future was dropped");
        assert!(!finished.get());
    }
}

rt_test! {
    async fn detach_all_lets_tasks_run_on() {
        let finished = Rc::new(Cell::new(false));
        let mut set = JoinSet::new();
        let done = finished.clone();
        set.spawn_local(async move {
            sleep(Duration::from_millis(5)).await;
            done.set(true);
        });
        set.detach_all();
        assert!(set.is_empty());
        drop(set);
        eventually("a detached task runs on after the set is dropped", || finished.get()).await;
    }
}

rt_test! {
    async fn shutdown_aborts_and_waits() {
        let dropped = Rc::new(Cell::new(false));
        let mut set = JoinSet::new();
        let guard = DropFlag(dropped.clone());
        set.spawn_local(async move {
            let _guard = guard;
            std::future::pending::<u8>().await
        });
        set.spawn_local(async { 1u8 });
        set.shutdown().await;
        assert!(set.is_empty());
        assert!(dropped.get());
    }
}

rt_test! {
    async fn ten_thousand_tasks_join() {
        let mut set: JoinSet<u64> = (0..10_000u64).map(|i| async move { i }).collect();
        assert_eq!(set.len(), 10_000);
        let mut sum = 0;
        let mut count = 0;
        while let Some(res) = set.join_next().await {
            sum += res.unwrap();
            count += 1;
        }
        assert_eq!((count, sum), (10_000, (0..10_000u64).sum()));
    }
}

rt_test! {
    async fn ten_thousand_sleeping_tasks_join_as_they_wake() {
        // Each completion wakes one entry: the set never rescans the tasks still sleeping.
        let mut set = JoinSet::new();
        for i in 0..10_000u64 {
            set.spawn_local(async move {
                sleep(Duration::from_millis(1 + i % 20)).await;
                i
            });
        }
        let mut joined = 0;
        while let Some(res) = set.join_next().await {
            res.unwrap();
            joined += 1;
        }
        assert_eq!(joined, 10_000);
    }
}

rt_test! {
    async fn try_join_next_takes_only_finished_tasks() {
        let mut set = JoinSet::new();
        assert!(set.try_join_next().is_none(), "empty set");
        let (release, released) = futures::channel::oneshot::channel::<u32>();
        set.spawn_local(async move { released.await.unwrap() });
        set.spawn_local(async { 0 });
        assert!(set.try_join_next().is_none(), "nothing ran yet");
        yield_now().await;
        assert_eq!(set.try_join_next().unwrap().unwrap(), 0);
        assert!(set.try_join_next().is_none(), "the other task still waits");
        assert_eq!(set.len(), 1);
        release.send(20).unwrap();
        let mut joined = None;
        for _ in 0..100 {
            yield_now().await;
            joined = set.try_join_next();
            if joined.is_some() {
                break;
            }
        }
        assert_eq!(joined.expect("the released task finishes").unwrap(), 20);
        assert!(set.is_empty());
    }
}

rt_test! {
    async fn try_join_next_finds_results_among_many_pending_entries() {
        // Many entries polled for the first time make the set pause partway; try_join_next must go on.
        let mut set = JoinSet::new();
        for _ in 0..500 {
            set.spawn_local(std::future::pending::<u32>());
        }
        let ran = Rc::new(Cell::new(false));
        let r = ran.clone();
        set.spawn_local(async move {
            r.set(true);
            9
        });
        eventually("every task has run", || ran.get()).await; // the executor polls 128 per turn
        assert_eq!(set.try_join_next().unwrap().unwrap(), 9);
        set.shutdown().await;
    }
}

rt_test! {
    async fn join_all_gives_every_output() {
        let mut set = JoinSet::new();
        for ms in [20, 5, 10] {
            set.spawn_local(sleep_then(ms));
        }
        assert_eq!(set.join_all().await, [5, 10, 20]);
    }
}

rt_test! {
    async fn spawn_blocking_and_send_spawns_join_too() {
        let mut set = JoinSet::new();
        set.spawn(async { 1u32 });
        set.spawn_blocking(|| 2u32);
        set.spawn_on(async { 3u32 }, &uvio::Handle::current());
        let mut got = Vec::new();
        while let Some(res) = set.join_next().await {
            got.push(res.unwrap());
        }
        got.sort();
        assert_eq!(got, [1, 2, 3]);
    }
}

rt_test! {
    async fn an_abort_handle_aborts_one_sleeping_task() {
        let dropped = Rc::new(Cell::new(false));
        let mut set = JoinSet::new();
        let guard = DropFlag(dropped.clone());
        let sleeper = set.spawn_local(async move {
            let _guard = guard;
            sleep_then(10_000).await
        });
        let (release, released) = futures::channel::oneshot::channel::<u64>();
        set.spawn_local(async move { released.await.unwrap() });
        yield_now().await;
        assert!(!sleeper.is_finished());
        sleeper.clone().abort();
        assert!(set.join_next().await.unwrap().unwrap_err().is_cancelled(), "only the aborted task finished");
        assert!(sleeper.is_finished());
        assert!(dropped.get());
        release.send(10).unwrap();
        assert_eq!(set.join_next().await.unwrap().unwrap(), 10, "the other task was not touched");
    }
}

rt_test! {
    async fn a_join_handle_abort_handle_aborts_and_reports() {
        let handle = uvio::spawn_local(sleep_then(10_000));
        let abort = handle.abort_handle();
        yield_now().await;
        assert!(!abort.is_finished());
        // From another thread: an AbortHandle is Send even when the task is not.
        let remote = abort.clone();
        std::thread::spawn(move || remote.abort()).join().unwrap();
        assert!(handle.await.unwrap_err().is_cancelled());
        assert!(abort.is_finished());
        abort.abort(); // aborting a finished task does nothing
    }
}

rt_test! {
    async fn is_finished_flips_when_the_task_completes() {
        let handle = uvio::spawn_local(sleep_then(10));
        let abort = handle.abort_handle();
        assert!(!abort.is_finished());
        drop(handle); // the abort handle outlives the join handle
        eventually("the task finishes", || abort.is_finished()).await;
    }
}

rt_test! {
    async fn an_abort_handle_does_not_keep_the_output_alive() {
        let dropped = Rc::new(Cell::new(false));
        let flag = dropped.clone();
        let handle = uvio::spawn_local(async move { DropFlag(flag) });
        let abort = handle.abort_handle();
        let output = handle.await.unwrap();
        assert!(!dropped.get());
        drop(output);
        assert!(dropped.get());
        // Detached before completion: the output is dropped as the task finishes, abort handle or not.
        let dropped = Rc::new(Cell::new(false));
        let flag = dropped.clone();
        let handle = uvio::spawn_local(async move {
            yield_now().await;
            DropFlag(flag)
        });
        let abort2 = handle.abort_handle();
        drop(handle);
        for _ in 0..3 {
            yield_now().await;
        }
        assert!(abort2.is_finished());
        assert!(dropped.get(), "the output was dropped when the task finished");
        drop((abort, abort2));
    }
}
