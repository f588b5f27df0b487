//! Loop tests: run modes, stop, time, backend, metrics, handle counting, close errors and ownership order.
mod common;

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use common::close_clean;
use uvio::uv::{hrtime, Async, Check, Handle, Idle, Loop, Prepare, RunMode, Timer};
use uvio::Error;

const MS: Duration = Duration::from_millis(1);

fn counter() -> Rc<Cell<u32>> {
    Rc::new(Cell::new(0))
}

#[test]
fn new_and_close_an_empty_loop() {
    let lp = Loop::new().unwrap();
    assert!(!lp.as_raw().is_null());
    assert!(format!("{lp:?}").starts_with("Loop"));
    assert_eq!(lp.handle_count(), 0);
    lp.close().unwrap();
}

#[test]
fn run_on_an_empty_loop_returns_false_at_once() {
    let lp = Loop::new().unwrap();
    assert!(!lp.alive());
    assert!(!lp.run(RunMode::NoWait).unwrap());
    assert!(!lp.run(RunMode::Once).unwrap());
    assert!(!lp.run(RunMode::Default).unwrap());
    close_clean(lp);
}

#[test]
fn run_once_waits_for_a_timer() {
    let lp = Loop::new().unwrap();
    let t = Timer::new(&lp).unwrap();
    let n = counter();
    let n2 = n.clone();
    t.start(Duration::from_millis(5), None, move |_| n2.set(n2.get() + 1)).unwrap();
    // Once blocks in the poll until the timer is due, then runs it; nothing is left afterwards.
    let mut runs = 0;
    while n.get() == 0 {
        runs += 1;
        assert!(runs < 100, "Once did not wait for the timer");
        let alive = lp.run(RunMode::Once).unwrap();
        assert_eq!(alive, n.get() == 0);
    }
    assert_eq!(n.get(), 1);
    assert!(!lp.alive());
    drop(t);
    close_clean(lp);
}

#[test]
fn stop_from_callback_returns_early_with_alive_true() {
    let lp = Loop::new().unwrap();
    let t = Timer::new(&lp).unwrap();
    let n = counter();
    let (n2, lp2) = (n.clone(), lp.clone());
    t.start(MS, Some(MS), move |_| {
        n2.set(n2.get() + 1);
        lp2.stop();
    })
    .unwrap();
    assert!(lp.run(RunMode::Default).unwrap(), "the repeating timer is still active");
    assert_eq!(n.get(), 1);
    assert!(lp.alive());
    assert!(lp.run(RunMode::Default).unwrap());
    assert_eq!(n.get(), 2, "each run stops after one firing");
    t.stop().unwrap();
    assert!(!lp.run(RunMode::Default).unwrap());
    drop(t); // frees the closure, and the Loop clone in it
    close_clean(lp);
}

#[test]
fn stop_before_run_makes_the_next_run_return_at_once() {
    let lp = Loop::new().unwrap();
    let t = Timer::new(&lp).unwrap();
    let n = counter();
    let n2 = n.clone();
    t.start(Duration::ZERO, None, move |_| n2.set(n2.get() + 1)).unwrap();
    lp.stop();
    assert!(lp.run(RunMode::Default).unwrap());
    assert_eq!(n.get(), 0, "a stopped loop runs no callback");
    assert!(!lp.run(RunMode::Default).unwrap(), "the stop flag is consumed by one run");
    assert_eq!(n.get(), 1);
    drop(t);
    close_clean(lp);
}

#[test]
fn alive_follows_active_referenced_handles() {
    let lp = Loop::new().unwrap();
    let t = Timer::new(&lp).unwrap();
    assert!(!lp.alive(), "an initialised but stopped handle does not count");
    t.start(Duration::from_secs(60), None, |_| {}).unwrap();
    assert!(lp.alive());
    t.unref();
    assert!(!lp.alive());
    t.ref_();
    assert!(lp.alive());
    t.stop().unwrap();
    assert!(!lp.alive());
    drop(t);
    close_clean(lp);
}

#[test]
fn now_is_cached_until_update_time() {
    let lp = Loop::new().unwrap();
    let before = lp.now();
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(lp.now(), before, "now() is the cached loop time");
    lp.update_time();
    let after = lp.now();
    assert!(after >= before + 10, "{before} -> {after}");
    // A run refreshes it too.
    std::thread::sleep(Duration::from_millis(30));
    let t = Timer::new(&lp).unwrap();
    t.start(Duration::ZERO, None, |_| {}).unwrap();
    lp.run(RunMode::Default).unwrap();
    assert!(lp.now() >= after + 10);
    drop(t);
    close_clean(lp);
}

#[test]
fn hrtime_is_monotonic() {
    let a = hrtime();
    let b = hrtime();
    assert!(b >= a);
    std::thread::sleep(Duration::from_millis(5));
    let c = hrtime();
    assert!(c - b >= 1_000_000, "5 ms of sleep is at least 1 ms of hrtime: {}", c - b);
}

#[test]
fn backend_fd_exists_on_unix_only() {
    let lp = Loop::new().unwrap();
    #[cfg(unix)]
    assert!(lp.backend_fd().unwrap() >= 0);
    #[cfg(windows)]
    assert_eq!(lp.backend_fd(), None);
    close_clean(lp);
}

#[test]
fn backend_timeout_reflects_what_is_pending() {
    let lp = Loop::new().unwrap();
    // Nothing active: `run` would not poll at all, libuv reports zero (not "forever").
    assert_eq!(lp.backend_timeout(), Some(Duration::ZERO));

    // An active handle with no timer: the poll would block indefinitely. (A NoWait run first registers
    // libuv's internal watchers; until then the timeout is reported as zero.)
    let prepare = Prepare::new(&lp).unwrap();
    prepare.start(|_| {}).unwrap();
    assert!(lp.run(RunMode::NoWait).unwrap());
    assert_eq!(lp.backend_timeout(), None);

    // A timer bounds the wait.
    let t = Timer::new(&lp).unwrap();
    t.start(Duration::from_secs(10), None, |_| {}).unwrap();
    let timeout = lp.backend_timeout().unwrap();
    assert!(timeout > Duration::from_secs(5) && timeout <= Duration::from_secs(10), "{timeout:?}");

    // An active idle handle makes the poll non-blocking.
    let idle = Idle::new(&lp).unwrap();
    idle.start(|_| {}).unwrap();
    assert_eq!(lp.backend_timeout(), Some(Duration::ZERO));
    drop((idle, t, prepare));
    close_clean(lp);
}

#[test]
fn metrics_count_iterations_and_idle_time() {
    let lp = Loop::new().unwrap();
    lp.enable_idle_time_metrics().unwrap();
    let start = lp.metrics();
    assert_eq!(start.idle_time, Duration::ZERO);
    let t = Timer::new(&lp).unwrap();
    // On a loaded machine (or under valgrind) the whole timeout can pass before the loop reaches its poll, which
    // then does not sleep: try again a few times before calling it a failure.
    for _ in 0..5 {
        lp.update_time(); // count the timeout from now, not from the loop's creation
        t.start(Duration::from_millis(50), None, |_| {}).unwrap();
        lp.run(RunMode::Default).unwrap();
        if lp.metrics().idle_time > Duration::ZERO {
            break;
        }
    }
    let end = lp.metrics();
    assert!(end.loop_count > start.loop_count, "{start:?} -> {end:?}");
    assert!(end.idle_time > Duration::ZERO, "the loop slept in the poll waiting for the timer: {end:?}");
    drop(t);
    close_clean(lp);
}

#[test]
fn block_sigprof() {
    let lp = Loop::new().unwrap();
    #[cfg(unix)]
    lp.block_sigprof().unwrap();
    #[cfg(windows)]
    assert_eq!(lp.block_sigprof(), Err(Error::ENOSYS));
    close_clean(lp);
}

#[test]
fn handle_count_counts_live_handles_not_closing_ones() {
    let lp = Loop::new().unwrap();
    let a = Timer::new(&lp).unwrap();
    let b = Idle::new(&lp).unwrap();
    let c = Check::new(&lp).unwrap();
    let d = Async::new(&lp, |_| {}).unwrap();
    assert_eq!(lp.handle_count(), 4, "started or not, every open handle counts");
    drop(b);
    assert_eq!(lp.handle_count(), 3, "a closing handle is not counted");
    lp.run(RunMode::NoWait).unwrap();
    assert_eq!(lp.handle_count(), 3);
    drop((a, c, d));
    assert_eq!(lp.handle_count(), 0);
    close_clean(lp);
}

#[test]
fn close_with_live_handle_gives_the_loop_back() {
    let lp = Loop::new().unwrap();
    let t = Timer::new(&lp).unwrap();
    let i = Idle::new(&lp).unwrap();
    let err = lp.close().unwrap_err();
    assert_eq!(err.live_handles(), 2);
    assert_eq!(err.error(), Error::EBUSY);
    assert!(err.to_string().contains("2 handle(s)"), "{err}");
    assert!(format!("{err:?}").contains("EBUSY"), "{err:?}");
    let lp = err.into_loop();
    drop(t);
    let err = lp.close().unwrap_err();
    assert_eq!(err.live_handles(), 1);
    let lp = err.into_loop();
    drop(i);
    close_clean(lp);
}

#[test]
fn close_with_another_clone_alive_is_ebusy() {
    let lp = Loop::new().unwrap();
    let other = lp.clone();
    let err = lp.close().unwrap_err();
    assert_eq!(err.error(), Error::EBUSY);
    assert_eq!(err.live_handles(), 0);
    drop(err); // drops this clone; `other` still owns the loop
    close_clean(other);
}

#[test]
fn nested_run_or_close_from_callback_is_ebusy() {
    let lp = Loop::new().unwrap();
    let t = Timer::new(&lp).unwrap();
    let results = Rc::new(Cell::new(None));
    let (r2, lp2) = (results.clone(), lp.clone());
    t.start(MS, None, move |_| {
        let run = lp2.run(RunMode::NoWait).unwrap_err();
        let close = lp2.clone().close().unwrap_err().error();
        r2.set(Some((run, close)));
    })
    .unwrap();
    lp.run(RunMode::Default).unwrap();
    assert_eq!(results.get(), Some((Error::EBUSY, Error::EBUSY)));
    drop(t); // frees the closure, and the Loop clone in it
    close_clean(lp);
}

#[test]
fn dropping_the_loop_before_its_handles() {
    let lp = Loop::new().unwrap();
    let t = Timer::new(&lp).unwrap();
    let i = Idle::new(&lp).unwrap();
    let a = Async::new(&lp, |_| {}).unwrap();
    let sender = a.sender();
    t.start(Duration::from_secs(60), None, |_| {}).unwrap();
    i.start(|_| {}).unwrap();
    drop(lp); // the handles keep the uv_loop_t alive
    assert!(t.is_active() && i.is_active() && a.is_active());
    sender.send().unwrap();
    drop(i);
    drop(a);
    assert_eq!(sender.send(), Err(Error::EBADF));
    drop(t); // the last handle closes itself and frees the loop (valgrind checks nothing leaks)
}

#[test]
fn many_loops_on_many_threads() {
    let threads: Vec<_> = (0..8u64)
        .map(|k| {
            std::thread::spawn(move || {
                let lp = Loop::new().unwrap();
                let n = counter();
                let timers: Vec<Timer> = (0..50u64)
                    .map(|i| {
                        let t = Timer::new(&lp).unwrap();
                        let n = n.clone();
                        t.start(Duration::from_millis((i + k) % 5), None, move |_| n.set(n.get() + 1)).unwrap();
                        t
                    })
                    .collect();
                lp.run(RunMode::Default).unwrap();
                drop(timers);
                close_clean(lp);
                n.get()
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 50);
    }
}

#[test]
fn libuv_version_is_1_x() {
    let v = uvio::libuv_version();
    assert!(v.starts_with("1."), "{v}");
    assert!(v.split('.').count() >= 3, "{v}");
}

/// A panic payload whose destructor panics too.
struct PanicsOnDrop(&'static str);

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("the payload {} panics on drop", self.0);
        }
    }
}

/// Drops a payload from a caught panic, catching the panic of its destructor.
fn drop_caught(payload: Box<dyn std::any::Any + Send>) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(payload)));
}

#[test]
fn two_callbacks_panicking_in_one_iteration_with_panicking_payloads_do_not_abort() {
    if !common::in_child("two_callbacks_panicking_in_one_iteration_with_panicking_payloads_do_not_abort") {
        return;
    }
    let lp = Loop::new().unwrap();
    let first = Timer::new(&lp).unwrap();
    let second = Timer::new(&lp).unwrap();
    // Both due at the same loop time: both run in the same iteration, before `run` can return.
    first.start(MS, None, |_| std::panic::panic_any(PanicsOnDrop("first"))).unwrap();
    second.start(MS, None, |_| std::panic::panic_any(PanicsOnDrop("second"))).unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lp.run(RunMode::Default))).unwrap_err();
    assert_eq!(caught.downcast_ref::<PanicsOnDrop>().map(|p| p.0), Some("first"), "the first panic is resumed");
    drop_caught(caught);
    assert!(!first.is_active() && !second.is_active(), "both callbacks ran in that iteration");
    // The loop stays usable, and no panic is left over for the next run.
    let n = counter();
    let n2 = n.clone();
    first.start(MS, None, move |_| n2.set(n2.get() + 1)).unwrap();
    lp.run(RunMode::Default).unwrap();
    assert_eq!(n.get(), 1);
    drop((first, second));
    close_clean(lp);
}

#[test]
fn a_task_panicking_with_a_panicking_payload_neither_aborts_nor_escapes() {
    if !common::in_child("a_task_panicking_with_a_panicking_payload_neither_aborts_nor_escapes") {
        return;
    }
    let rt = uvio::Runtime::new().unwrap();
    // Awaited: the payload comes back in the JoinError, to the awaiting code.
    let err = rt.block_on(async { uvio::spawn_local(async { std::panic::panic_any(PanicsOnDrop("awaited")) }).await });
    let payload = err.unwrap_err().into_panic();
    assert_eq!(payload.downcast_ref::<PanicsOnDrop>().map(|p| p.0), Some("awaited"));
    drop_caught(payload);
    // Detached (before or after they finish, two finishing in the same batch): nobody claims the payloads, so
    // the runtime drops them, and the panics of their destructors are contained like the tasks' own.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async {
            for name in ["detached 1", "detached 2"] {
                drop(uvio::spawn_local(async move { std::panic::panic_any(PanicsOnDrop(name)) }));
            }
            let late = uvio::spawn_local(async { std::panic::panic_any(PanicsOnDrop("dropped late")) });
            while !late.is_finished() {
                uvio::task::yield_now().await;
            }
            drop(late);
            uvio::time::sleep(MS).await;
        })
    }));
    if let Err(payload) = outcome {
        let what = payload.downcast_ref::<String>().cloned().unwrap_or_default();
        drop_caught(payload);
        panic!("a detached task's panic escaped from block_on: {what}");
    }
    // The runtime stays usable.
    rt.block_on(uvio::time::sleep(MS));
    rt.close().expect("runtime closes cleanly");
}
