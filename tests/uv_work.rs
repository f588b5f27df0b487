//! queue_work tests: results, many jobs, cancellation (before run, while running, after completion), panics
//! on the pool, and chaining. The thread pool is process-wide, so tests that fill it take a lock.
mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

use common::{close_clean, pool_size};
use static_assertions::assert_not_impl_any;
use uvio::uv::{queue_work, Loop, RunMode, WorkHandle};
use uvio::Error;

assert_not_impl_any!(WorkHandle: Send, Sync, Clone);

const WAIT: Duration = Duration::from_secs(10);

/// Serialises the tests that occupy every pool thread (two of them at once could each wait for the other).
static POOL: Mutex<()> = Mutex::new(());

/// Occupies every pool thread with a job that waits for the returned sender (dropping it releases them), and
/// returns only once all of them are running.
fn fill_pool(lp: &Loop, done: &Rc<Cell<usize>>) -> (Vec<WorkHandle>, mpsc::Sender<()>) {
    let (started_tx, started_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = std::sync::Arc::new(Mutex::new(release_rx));
    let handles = (0..pool_size())
        .map(|_| {
            let (started, release, d) = (started_tx.clone(), release_rx.clone(), done.clone());
            queue_work(
                lp,
                move || {
                    started.send(()).unwrap();
                    // Returns when the sender is dropped (Err) — that is the release signal.
                    let _ = release.lock().unwrap().recv_timeout(WAIT);
                },
                move |res| {
                    res.unwrap();
                    d.set(d.get() + 1);
                },
            )
            .unwrap()
        })
        .collect();
    for _ in 0..pool_size() {
        started_rx.recv_timeout(WAIT).expect("every pool thread picked up a blocker");
    }
    (handles, release_tx)
}

#[test]
fn result_is_delivered_on_the_loop_thread() {
    let lp = Loop::new().unwrap();
    let got = Rc::new(Cell::new(None));
    let g2 = got.clone();
    let loop_thread = std::thread::current().id();
    let h = queue_work(
        &lp,
        move || (std::thread::current().id(), 6 * 7),
        move |res| {
            assert_eq!(std::thread::current().id(), loop_thread, "after runs on the loop thread");
            let (pool_thread, value) = res.unwrap();
            assert_ne!(pool_thread, loop_thread, "work runs on a pool thread");
            g2.set(Some(value));
        },
    )
    .unwrap();
    assert!(h.is_pending());
    assert!(lp.alive(), "pending work keeps the loop alive");
    lp.run(RunMode::Default).unwrap();
    assert_eq!(got.get(), Some(42));
    assert!(!h.is_pending());
    close_clean(lp);
}

#[test]
fn hundred_jobs_all_complete() {
    let lp = Loop::new().unwrap();
    let results = Rc::new(RefCell::new(Vec::new()));
    for i in 0..100u64 {
        let r = results.clone();
        queue_work(&lp, move || i * i, move |res| r.borrow_mut().push(res.unwrap())).unwrap();
    }
    lp.run(RunMode::Default).unwrap();
    let mut got = results.borrow().clone();
    got.sort_unstable();
    assert_eq!(got, (0..100u64).map(|i| i * i).collect::<Vec<_>>());
    close_clean(lp);
}

#[test]
fn cancel_before_run_gives_ecanceled() {
    let _pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    let lp = Loop::new().unwrap();
    let done = Rc::new(Cell::new(0));
    let (blockers, release) = fill_pool(&lp, &done);
    // Every thread is busy: this job waits in the queue and can be cancelled.
    let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ran2 = ran.clone();
    let outcome = Rc::new(Cell::new(None));
    let o2 = outcome.clone();
    let queued =
        queue_work(&lp, move || ran2.store(true, std::sync::atomic::Ordering::SeqCst), move |res| o2.set(Some(res)))
            .unwrap();
    queued.cancel().unwrap();
    queued.cancel().unwrap(); // again: still cancelled, still fine
    assert!(queued.is_pending(), "the after-callback has not run yet");
    // A running job cannot be cancelled.
    assert_eq!(blockers[0].cancel().unwrap_err(), Error::EBUSY);
    drop(release);
    lp.run(RunMode::Default).unwrap();
    assert_eq!(outcome.get(), Some(Err(Error::ECANCELED)));
    assert!(!ran.load(std::sync::atomic::Ordering::SeqCst), "cancelled work never runs");
    assert_eq!(done.get(), pool_size());
    assert_eq!(queued.cancel().unwrap_err(), Error::EBUSY, "finished: nothing left to cancel");
    close_clean(lp);
}

#[test]
fn cancel_after_completion_is_ebusy() {
    let lp = Loop::new().unwrap();
    let h = queue_work(&lp, || 1, |res| assert_eq!(res.unwrap(), 1)).unwrap();
    lp.run(RunMode::Default).unwrap();
    assert!(!h.is_pending());
    assert_eq!(h.cancel().unwrap_err(), Error::EBUSY);
    assert_eq!(h.cancel().unwrap_err(), Error::EBUSY);
    close_clean(lp);
}

#[test]
fn cancel_from_inside_its_own_after_callback_is_ebusy() {
    let lp = Loop::new().unwrap();
    let slot: Rc<RefCell<Option<WorkHandle>>> = Rc::new(RefCell::new(None));
    let s2 = slot.clone();
    let seen = Rc::new(Cell::new(None));
    let seen2 = seen.clone();
    let h = queue_work(&lp, || (), move |_| seen2.set(Some(s2.borrow().as_ref().unwrap().cancel()))).unwrap();
    *slot.borrow_mut() = Some(h);
    lp.run(RunMode::Default).unwrap();
    assert_eq!(seen.get(), Some(Err(Error::EBUSY)));
    close_clean(lp);
}

#[test]
fn dropping_the_handle_does_not_cancel() {
    let lp = Loop::new().unwrap();
    let got = Rc::new(Cell::new(0));
    let g2 = got.clone();
    drop(queue_work(&lp, || 5, move |res| g2.set(res.unwrap())).unwrap());
    lp.run(RunMode::Default).unwrap();
    assert_eq!(got.get(), 5);
    close_clean(lp);
}

#[test]
fn panic_in_work_resumes_from_run() {
    let lp = Loop::new().unwrap();
    let after_ran = Rc::new(Cell::new(false));
    let a2 = after_ran.clone();
    queue_work(&lp, || -> u32 { panic!("boom on the pool") }, move |_| a2.set(true)).unwrap();
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lp.run(RunMode::Default))).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"boom on the pool"));
    assert!(!after_ran.get(), "after is dropped, not called, when the work panicked");
    // The pool thread survived and the loop is usable.
    let got = Rc::new(Cell::new(0));
    let g2 = got.clone();
    queue_work(&lp, || 3, move |res| g2.set(res.unwrap())).unwrap();
    lp.run(RunMode::Default).unwrap();
    assert_eq!(got.get(), 3);
    close_clean(lp);
}

#[test]
fn panic_in_after_resumes_from_run() {
    let lp = Loop::new().unwrap();
    queue_work(&lp, || (), |_| panic!("boom after")).unwrap();
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lp.run(RunMode::Default))).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"boom after"));
    close_clean(lp);
}

#[test]
fn after_callback_queues_more_work() {
    fn step(lp: &Loop, n: u32, log: Rc<RefCell<Vec<u32>>>) {
        let lp2 = lp.clone();
        queue_work(
            lp,
            move || n * 10,
            move |res| {
                log.borrow_mut().push(res.unwrap());
                if n < 5 {
                    step(&lp2, n + 1, log);
                }
            },
        )
        .unwrap();
    }
    let lp = Loop::new().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    step(&lp, 1, log.clone());
    lp.run(RunMode::Default).unwrap();
    assert_eq!(*log.borrow(), vec![10, 20, 30, 40, 50]);
    close_clean(lp);
}

#[test]
fn send_values_move_across_and_back() {
    // A Vec built on the pool thread comes back by value; an Arc is shared with the pool thread.
    let lp = Loop::new().unwrap();
    let shared = std::sync::Arc::new(vec![1u8, 2, 3]);
    let s2 = shared.clone();
    let got = Rc::new(RefCell::new(Vec::new()));
    let g2 = got.clone();
    queue_work(&lp, move || s2.iter().map(|b| b * 2).collect::<Vec<u8>>(), move |res| *g2.borrow_mut() = res.unwrap())
        .unwrap();
    lp.run(RunMode::Default).unwrap();
    assert_eq!(*got.borrow(), vec![2, 4, 6]);
    assert_eq!(std::sync::Arc::strong_count(&shared), 1, "the work closure was dropped");
    close_clean(lp);
}

#[test]
fn dropping_the_loop_with_work_in_flight_finishes_it() {
    let _pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    let lp = Loop::new().unwrap();
    let done = Rc::new(Cell::new(0));
    let (_blockers, release) = fill_pool(&lp, &done);
    let queued = Rc::new(RefCell::new(None));
    let q = queued.clone();
    queue_work(&lp, || 1, move |res| *q.borrow_mut() = Some(res)).unwrap();
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        drop(release);
    });
    drop(lp); // cancels the queued job, waits for the running ones and runs every after-callback
    releaser.join().unwrap();
    assert_eq!(done.get(), pool_size());
    assert_eq!(queued.borrow_mut().take(), Some(Err(Error::ECANCELED)));
}
