//! Idle, Prepare and Check tests: where each runs in the loop iteration, and the callback-owns-its-handle cases.
mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::close_clean;
use uvio::uv::{Check, Handle, Idle, Loop, Prepare, RunMode, Timer};

const MS: Duration = Duration::from_millis(1);

type Log = Rc<RefCell<Vec<&'static str>>>;

fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

fn counter() -> Rc<Cell<u32>> {
    Rc::new(Cell::new(0))
}

/// A timer firing every millisecond, so that the loop's poll keeps returning and check callbacks keep running
/// (a one-shot timer may fire before the first poll, which would then block forever). Stop it to end the run.
fn ticker(lp: &Loop) -> Rc<Timer> {
    let t = Timer::new(lp).unwrap();
    t.start(MS, Some(MS), |_| {}).unwrap();
    Rc::new(t)
}

#[test]
fn idle_runs_repeatedly_and_stop_from_callback_ends_loop() {
    let lp = Loop::new().unwrap();
    let idle = Idle::new(&lp).unwrap();
    assert!(!idle.is_active());
    let n = counter();
    let n2 = n.clone();
    idle.start(move |idle| {
        n2.set(n2.get() + 1);
        if n2.get() == 100 {
            idle.stop().unwrap();
        }
    })
    .unwrap();
    assert!(idle.is_active());
    // The idle handle is the only thing keeping the loop alive: stopping it ends `run`.
    assert!(!lp.run(RunMode::Default).unwrap());
    assert_eq!(n.get(), 100);
    assert!(!idle.is_active());
    drop(idle);
    close_clean(lp);
}

#[test]
fn prepare_and_check_surround_the_poll_once_per_iteration() {
    let lp = Loop::new().unwrap();
    let log = log();
    let prepare = Rc::new(Prepare::new(&lp).unwrap());
    let check = Rc::new(Check::new(&lp).unwrap());
    let l = log.clone();
    prepare.start(move |_| l.borrow_mut().push("prepare")).unwrap();
    let l = log.clone();
    check.start(move |_| l.borrow_mut().push("check")).unwrap();

    let timer = Timer::new(&lp).unwrap();
    let (l, p, c) = (log.clone(), prepare.clone(), check.clone());
    let fired = counter();
    let f2 = fired.clone();
    timer
        .start(MS, Some(MS), move |t| {
            l.borrow_mut().push("timer");
            f2.set(f2.get() + 1);
            if f2.get() == 3 {
                t.stop().unwrap();
                p.stop().unwrap();
                c.stop().unwrap();
            }
        })
        .unwrap();
    assert!(!lp.run(RunMode::Default).unwrap());
    assert_eq!(fired.get(), 3);

    let log = log.borrow();
    // Without the timer entries, the log is prepare, check, prepare, check…: one of each per iteration.
    // (Under a slow run the first firing may come before the first iteration: 3 firings, at least 2 iterations.)
    let watchers: Vec<_> = log.iter().copied().filter(|&e| e != "timer").collect();
    assert!(watchers.len() >= 4, "{log:?}");
    for pair in watchers.chunks(2) {
        assert_eq!(pair, ["prepare", "check"], "{log:?}");
    }
    // Timers run after check (the very first may run before the first iteration, in RunMode::Default).
    for (i, e) in log.iter().enumerate().skip(1) {
        if *e == "timer" {
            assert_eq!(log[i - 1], "check", "{log:?}");
        }
    }
    drop((timer, prepare, check));
    close_clean(lp);
}

#[test]
fn idle_keeps_the_loop_from_blocking() {
    let lp = Loop::new().unwrap();
    let far = Timer::new(&lp).unwrap();
    far.start(Duration::from_secs(60), None, |_| panic!("the 60 s timer must not fire")).unwrap();
    // A fresh loop reports a zero timeout until its first iteration registers libuv's internal watchers.
    assert!(lp.run(RunMode::NoWait).unwrap());
    let timeout = lp.backend_timeout().unwrap();
    assert!(timeout > Duration::from_secs(50), "{timeout:?}");

    let idle = Idle::new(&lp).unwrap();
    let n = counter();
    let n2 = n.clone();
    idle.start(move |_| n2.set(n2.get() + 1)).unwrap();
    assert_eq!(lp.backend_timeout(), Some(Duration::ZERO));
    let start = Instant::now();
    for _ in 0..5 {
        assert!(lp.run(RunMode::Once).unwrap(), "the timer is still pending");
    }
    assert!(start.elapsed() < Duration::from_secs(30), "Once blocked despite the idle handle");
    assert_eq!(n.get(), 5);

    idle.stop().unwrap();
    assert!(lp.backend_timeout().unwrap() > Duration::from_secs(50));
    drop((idle, far));
    close_clean(lp);
}

#[test]
fn restart_with_new_callback_from_callback() {
    let lp = Loop::new().unwrap();
    let idle = Idle::new(&lp).unwrap();
    let log = log();
    let l = log.clone();
    idle.start(move |idle| {
        l.borrow_mut().push("first");
        let l = l.clone();
        idle.start(move |idle| {
            l.borrow_mut().push("second");
            idle.stop().unwrap();
        })
        .unwrap();
    })
    .unwrap();
    lp.run(RunMode::Default).unwrap();
    assert_eq!(*log.borrow(), ["first", "second"]);
    drop(idle);
    close_clean(lp);
}

#[test]
fn start_while_started_replaces_the_callback() {
    let lp = Loop::new().unwrap();
    let check = Check::new(&lp).unwrap();
    let log = log();
    let l = log.clone();
    check.start(move |_| l.borrow_mut().push("old")).unwrap();
    let (l, ticker) = (log.clone(), ticker(&lp));
    let t2 = ticker.clone();
    check
        .start(move |c| {
            l.borrow_mut().push("new");
            c.stop().unwrap();
            t2.stop().unwrap();
        })
        .unwrap();
    lp.run(RunMode::Default).unwrap();
    assert_eq!(*log.borrow(), ["new"]);
    drop((ticker, check));
    close_clean(lp);
}

#[test]
fn drop_in_own_callback() {
    let lp = Loop::new().unwrap();
    let slot: Rc<RefCell<Option<Prepare>>> = Rc::new(RefCell::new(None));
    let prepare = Prepare::new(&lp).unwrap();
    let s2 = slot.clone();
    let n = counter();
    let n2 = n.clone();
    prepare
        .start(move |p| {
            n2.set(n2.get() + 1);
            drop(s2.borrow_mut().take()); // closes the handle from inside its own callback
            assert!(p.is_closing());
            assert_eq!(p.start(|_| {}).unwrap_err(), uvio::Error::EINVAL, "starting a closing handle is refused");
            assert!(p.stop().is_ok(), "stopping a closing handle is a harmless no-op");
        })
        .unwrap();
    *slot.borrow_mut() = Some(prepare);
    assert!(!lp.run(RunMode::Default).unwrap());
    assert_eq!(n.get(), 1);
    close_clean(lp);
}

#[test]
fn start_after_stop() {
    let lp = Loop::new().unwrap();
    let idle = Idle::new(&lp).unwrap();
    let n = counter();
    let n2 = n.clone();
    idle.start(move |i| {
        n2.set(n2.get() + 1);
        i.stop().unwrap();
    })
    .unwrap();
    lp.run(RunMode::Default).unwrap();
    assert_eq!(n.get(), 1);
    assert!(!lp.run(RunMode::Default).unwrap(), "a stopped idle does not keep the loop alive");
    assert_eq!(n.get(), 1);

    let n3 = n.clone();
    idle.start(move |i| {
        n3.set(n3.get() + 10);
        i.stop().unwrap();
    })
    .unwrap();
    lp.run(RunMode::Default).unwrap();
    assert_eq!(n.get(), 11);
    assert!(idle.stop().is_ok(), "stopping a stopped handle is a no-op");
    drop(idle);
    close_clean(lp);
}

#[test]
fn unref_watcher_does_not_keep_the_loop_alive() {
    let lp = Loop::new().unwrap();
    let prepare = Prepare::new(&lp).unwrap();
    let n = counter();
    let n2 = n.clone();
    prepare.start(move |_| n2.set(n2.get() + 1)).unwrap();
    prepare.unref();
    assert!(!prepare.has_ref());
    assert!(!lp.alive());
    assert!(!lp.run(RunMode::Default).unwrap());
    assert_eq!(n.get(), 0, "no iteration ran: nothing referenced was active");

    // While something else keeps the loop alive, the unref'd prepare still runs each iteration.
    let t = Timer::new(&lp).unwrap();
    t.start(MS, None, |_| {}).unwrap();
    assert!(!lp.run(RunMode::Default).unwrap());
    assert!(n.get() >= 1);
    prepare.ref_();
    assert!(prepare.has_ref());
    drop((t, prepare));
    close_clean(lp);
}

#[test]
fn panic_in_callback_resumes_from_run() {
    let lp = Loop::new().unwrap();
    let check = Check::new(&lp).unwrap();
    check.start(|_| panic!("boom in check")).unwrap();
    let ticker = ticker(&lp);
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lp.run(RunMode::Default))).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"boom in check"));
    // The handle and loop stay usable after the panic.
    let n = counter();
    let (n2, t2) = (n.clone(), ticker.clone());
    check
        .start(move |c| {
            n2.set(n2.get() + 1);
            c.stop().unwrap();
            t2.stop().unwrap();
        })
        .unwrap();
    lp.run(RunMode::Default).unwrap();
    assert_eq!(n.get(), 1);
    drop((ticker, check));
    close_clean(lp);
}

#[test]
fn three_types_interleave_idle_prepare_check() {
    let lp = Loop::new().unwrap();
    let log = log();
    let prepare = Rc::new(Prepare::new(&lp).unwrap());
    let check = Rc::new(Check::new(&lp).unwrap());
    let idle = Idle::new(&lp).unwrap();
    // Started in reverse order: the iteration order does not depend on start order.
    let l = log.clone();
    check.start(move |_| l.borrow_mut().push("check")).unwrap();
    let l = log.clone();
    prepare.start(move |_| l.borrow_mut().push("prepare")).unwrap();
    let (l, p, c) = (log.clone(), prepare.clone(), check.clone());
    let n = counter();
    idle.start(move |i| {
        l.borrow_mut().push("idle");
        n.set(n.get() + 1);
        if n.get() == 3 {
            i.stop().unwrap();
            p.stop().unwrap();
            c.stop().unwrap();
        }
    })
    .unwrap();
    assert!(!lp.run(RunMode::Default).unwrap());
    assert_eq!(
        *log.borrow(),
        ["idle", "prepare", "check", "idle", "prepare", "check", "idle"],
        "idle, then prepare, then check, once per iteration"
    );
    drop((idle, prepare, check));
    close_clean(lp);
}

#[test]
fn one_watcher_drops_another_before_it_runs() {
    let lp = Loop::new().unwrap();
    let victim = Rc::new(RefCell::new(Some(Check::new(&lp).unwrap())));
    let ran = Rc::new(Cell::new(false));
    let r2 = ran.clone();
    victim.borrow().as_ref().unwrap().start(move |_| r2.set(true)).unwrap();
    let killer = Prepare::new(&lp).unwrap();
    let v2 = victim.clone();
    killer
        .start(move |p| {
            drop(v2.borrow_mut().take()); // prepare runs before check in the same iteration
            p.stop().unwrap();
        })
        .unwrap();
    assert!(!lp.run(RunMode::Default).unwrap());
    assert!(!ran.get(), "a dropped check handle never runs");
    assert!(victim.borrow().is_none());
    drop(killer);
    close_clean(lp);
}

#[test]
fn closure_state_is_released_on_drop() {
    let lp = Loop::new().unwrap();
    let token = Rc::new(());
    let idle = Idle::new(&lp).unwrap();
    let t2 = token.clone();
    idle.start(move |_| {
        let _keep = &t2;
    })
    .unwrap();
    idle.stop().unwrap();
    assert_eq!(Rc::strong_count(&token), 2, "a stopped handle keeps its closure");
    assert!(format!("{idle:?}").starts_with("Idle"));
    drop(idle);
    lp.run(RunMode::NoWait).unwrap(); // delivers the close callback, which frees the closure
    assert_eq!(Rc::strong_count(&token), 1);
    close_clean(lp);
}

#[test]
fn handles_outlive_their_loop_value() {
    let lp = Loop::new().unwrap();
    let idle = Idle::new(&lp).unwrap();
    let prepare = Prepare::new(&lp).unwrap();
    let check = Check::new(&lp).unwrap();
    idle.start(|_| {}).unwrap();
    check.start(|_| {}).unwrap();
    drop(lp); // the handles keep the loop memory alive
    assert!(idle.is_active() && check.is_active() && !prepare.is_active());
    drop(prepare);
    drop(idle);
    drop(check); // the last handle delivers its own close and frees the loop
}
