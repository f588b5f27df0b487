//! Timer tests: start/stop/again/repeat/due_in, and the callback-owns-its-handle cases.
mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use common::close_clean;
use uvio::uv::{Handle, Loop, RunMode, Timer};

const MS: Duration = Duration::from_millis(1);

#[test]
fn fires_once() {
    let lp = Loop::new().unwrap();
    let t = Timer::new(&lp).unwrap();
    let n = Rc::new(Cell::new(0));
    let n2 = n.clone();
    t.start(MS, None, move |_| n2.set(n2.get() + 1)).unwrap();
    assert!(t.is_active());
    lp.run(RunMode::Default).unwrap();
    assert_eq!(n.get(), 1);
    assert!(!t.is_active());
    drop(t);
    close_clean(lp);
}

#[test]
fn repeats_until_stopped_from_callback() {
    let lp = Loop::new().unwrap();
    let t = Timer::new(&lp).unwrap();
    let n = Rc::new(Cell::new(0));
    let n2 = n.clone();
    t.start(MS, Some(MS), move |t| {
        n2.set(n2.get() + 1);
        if n2.get() == 5 {
            t.stop().unwrap();
        }
    })
    .unwrap();
    assert_eq!(t.repeat(), Some(MS));
    lp.run(RunMode::Default).unwrap();
    assert_eq!(n.get(), 5);
    drop(t);
    close_clean(lp);
}

#[test]
fn order_follows_due_time() {
    let lp = Loop::new().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let timers: Vec<Timer> = [30u64, 10, 20, 0]
        .iter()
        .map(|&ms| {
            let t = Timer::new(&lp).unwrap();
            let log = log.clone();
            t.start(Duration::from_millis(ms), None, move |_| log.borrow_mut().push(ms)).unwrap();
            t
        })
        .collect();
    lp.run(RunMode::Default).unwrap();
    assert_eq!(*log.borrow(), vec![0, 10, 20, 30]);
    drop(timers);
    close_clean(lp);
}

#[test]
fn drop_in_own_callback() {
    let lp = Loop::new().unwrap();
    let slot: Rc<RefCell<Option<Timer>>> = Rc::new(RefCell::new(None));
    let t = Timer::new(&lp).unwrap();
    let s2 = slot.clone();
    let fired = Rc::new(Cell::new(0));
    let f2 = fired.clone();
    t.start(MS, Some(MS), move |t| {
        f2.set(f2.get() + 1);
        let owned = s2.borrow_mut().take();
        drop(owned); // closes the timer from inside its own callback
        assert!(t.is_closing());
        assert!(t.again().is_err(), "operations on a closing handle are refused");
    })
    .unwrap();
    *slot.borrow_mut() = Some(t);
    lp.run(RunMode::Default).unwrap();
    assert_eq!(fired.get(), 1);
    close_clean(lp);
}

#[test]
fn restart_with_new_callback_from_callback() {
    let lp = Loop::new().unwrap();
    let t = Timer::new(&lp).unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l2 = log.clone();
    t.start(MS, None, move |t| {
        l2.borrow_mut().push("first");
        let l3 = l2.clone();
        t.start(MS, None, move |_| l3.borrow_mut().push("second")).unwrap();
    })
    .unwrap();
    lp.run(RunMode::Default).unwrap();
    assert_eq!(*log.borrow(), vec!["first", "second"]);
    drop(t);
    close_clean(lp);
}

#[test]
fn restart_keeps_callback() {
    let lp = Loop::new().unwrap();
    let t = Timer::new(&lp).unwrap();
    let n = Rc::new(Cell::new(0));
    let n2 = n.clone();
    t.start(MS, None, move |t| {
        n2.set(n2.get() + 1);
        if n2.get() < 3 {
            t.restart(MS, None).unwrap();
        }
    })
    .unwrap();
    lp.run(RunMode::Default).unwrap();
    assert_eq!(n.get(), 3);
    drop(t);
    close_clean(lp);
}

#[test]
fn again_is_einval_only_before_a_first_start_and_does_nothing_without_repeat() {
    let lp = Loop::new().unwrap();
    let t = Timer::new(&lp).unwrap();
    assert_eq!(t.again().unwrap_err(), uvio::Error::EINVAL, "never started");
    // No repeat, running: `Ok`, and the schedule is untouched.
    t.start(Duration::from_secs(100), None, |_| {}).unwrap();
    t.again().unwrap();
    assert!(t.is_active());
    assert!(t.due_in() > Duration::from_secs(99), "again moved a timer with no repeat: {:?}", t.due_in());
    // No repeat, stopped: `Ok`, and it stays stopped.
    t.stop().unwrap();
    t.again().unwrap();
    assert!(!t.is_active(), "again started a timer with no repeat");
    // With a repeat: restarts from now with it, even from stopped.
    t.set_repeat(Some(Duration::from_millis(2)));
    t.again().unwrap();
    assert!(t.is_active());
    assert!(t.due_in() <= Duration::from_millis(2));
    let fired = Rc::new(Cell::new(0));
    let f2 = fired.clone();
    t.start(Duration::from_secs(100), Some(Duration::from_millis(2)), move |t| {
        f2.set(f2.get() + 1);
        t.stop().unwrap();
    })
    .unwrap();
    t.again().unwrap();
    assert!(t.due_in() <= Duration::from_millis(2));
    lp.run(RunMode::Default).unwrap();
    assert_eq!(fired.get(), 1);
    drop(t);
    close_clean(lp);
}

#[test]
fn huge_timeouts_and_repeats_are_clamped_and_never_fire() {
    let lp = Loop::new().unwrap();
    let huge = Timer::new(&lp).unwrap();
    let fired = Rc::new(Cell::new(false));
    let f2 = fired.clone();
    huge.start(Duration::MAX, Some(Duration::MAX), move |_| f2.set(true)).unwrap();
    assert!(huge.due_in() > Duration::from_secs(100 * 365 * 86_400), "due in {:?}", huge.due_in());
    assert!(huge.repeat().is_some());
    huge.again().unwrap(); // restarts with the huge repeat
    assert!(huge.due_in() > Duration::from_secs(100 * 365 * 86_400));
    huge.set_repeat(Some(Duration::from_secs(u64::MAX)));
    huge.again().unwrap();
    // A short timer on the same loop still fires, and the huge one does not.
    let short = Timer::new(&lp).unwrap();
    let s2 = fired.clone();
    let done = Rc::new(Cell::new(false));
    let d2 = done.clone();
    short.start(MS, None, move |_| d2.set(!s2.get())).unwrap();
    while !done.get() {
        lp.run(RunMode::Once).unwrap();
    }
    assert!(!fired.get());
    // A zero timeout fires in the next iteration.
    let zero = Timer::new(&lp).unwrap();
    let z2 = done.clone();
    done.set(false);
    zero.start(Duration::ZERO, None, move |_| z2.set(true)).unwrap();
    lp.run(RunMode::NoWait).unwrap();
    assert!(done.get(), "a zero timeout did not fire in the next iteration");
    drop((huge, short, zero));
    close_clean(lp);
}

#[test]
fn due_in_and_set_repeat() {
    let lp = Loop::new().unwrap();
    let t = Timer::new(&lp).unwrap();
    assert_eq!(t.due_in(), Duration::ZERO);
    t.start(Duration::from_secs(10), None, |_| {}).unwrap();
    let due = t.due_in();
    assert!(due > Duration::from_secs(9) && due <= Duration::from_secs(10), "{due:?}");
    t.set_repeat(Some(Duration::from_millis(7)));
    assert_eq!(t.repeat(), Some(Duration::from_millis(7)));
    t.stop().unwrap();
    assert!(!t.is_active());
    assert_eq!(t.due_in(), Duration::ZERO);
    drop(t);
    close_clean(lp);
}

#[test]
fn unref_timer_does_not_keep_loop_alive() {
    let lp = Loop::new().unwrap();
    let t = Timer::new(&lp).unwrap();
    let fired = Rc::new(Cell::new(false));
    let f2 = fired.clone();
    t.start(Duration::from_secs(60), None, move |_| f2.set(true)).unwrap();
    t.unref();
    assert!(!t.has_ref());
    assert!(!lp.run(RunMode::Default).unwrap());
    assert!(!fired.get());
    t.ref_();
    assert!(t.has_ref());
    drop(t);
    close_clean(lp);
}

#[test]
fn panic_in_callback_resumes_from_run() {
    let lp = Loop::new().unwrap();
    let t = Timer::new(&lp).unwrap();
    t.start(MS, None, |_| panic!("boom in timer")).unwrap();
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lp.run(RunMode::Default))).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"boom in timer"));
    // The loop stays usable after the panic.
    let n = Rc::new(Cell::new(0));
    let n2 = n.clone();
    t.start(MS, None, move |_| n2.set(1)).unwrap();
    lp.run(RunMode::Default).unwrap();
    assert_eq!(n.get(), 1);
    drop(t);
    close_clean(lp);
}

#[test]
fn handles_dropped_in_any_order_and_loop_first() {
    let lp = Loop::new().unwrap();
    let a = Timer::new(&lp).unwrap();
    let b = Timer::new(&lp).unwrap();
    let c = Timer::new(&lp).unwrap();
    a.start(Duration::from_secs(60), None, |_| {}).unwrap();
    c.start(Duration::from_secs(60), None, |_| {}).unwrap();
    drop(lp); // the loop memory stays alive: the handles hold it
    drop(b);
    drop(c);
    assert!(a.is_active());
    drop(a); // the last handle delivers its own close and frees the loop
}

#[test]
fn one_timer_drops_another_from_callback() {
    let lp = Loop::new().unwrap();
    let victim = Rc::new(RefCell::new(Some(Timer::new(&lp).unwrap())));
    let fired = Rc::new(Cell::new(false));
    let f2 = fired.clone();
    victim.borrow().as_ref().unwrap().start(MS * 5, None, move |_| f2.set(true)).unwrap();
    let killer = Timer::new(&lp).unwrap();
    let v2 = victim.clone();
    killer.start(MS, None, move |_| drop(v2.borrow_mut().take())).unwrap();
    lp.run(RunMode::Default).unwrap();
    assert!(!fired.get());
    drop(killer);
    close_clean(lp);
}

#[test]
fn close_with_live_handle_is_an_error_not_an_abort() {
    let lp = Loop::new().unwrap();
    let t = Timer::new(&lp).unwrap();
    let err = lp.close().unwrap_err();
    assert_eq!(err.live_handles(), 1);
    assert_eq!(err.error(), uvio::Error::EBUSY);
    let lp = err.into_loop();
    drop(t);
    close_clean(lp);
}

#[test]
fn many_timers() {
    let lp = Loop::new().unwrap();
    let n = Rc::new(Cell::new(0u32));
    let timers: Vec<Timer> = (0..10_000u64)
        .map(|i| {
            let t = Timer::new(&lp).unwrap();
            let n = n.clone();
            t.start(Duration::from_millis(i % 10), None, move |_| n.set(n.get() + 1)).unwrap();
            t
        })
        .collect();
    lp.run(RunMode::Default).unwrap();
    assert_eq!(n.get(), 10_000);
    drop(timers);
    close_clean(lp);
}
