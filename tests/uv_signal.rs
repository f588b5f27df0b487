//! Signal tests: delivery, one-shot, stop, several watchers, callback-owns-its-handle, bad signals.
//!
//! Signals are process-wide and the test harness runs tests on parallel threads, so every test that raises a
//! signal holds `LOCK`: a signal raised by one test must not land in another test's watcher.
mod common;

use common::close_clean;
use uvio::uv::{Handle, Loop, Signal};
use uvio::Error;

#[test]
fn unwatchable_signals_are_einval() {
    let lp = Loop::new().unwrap();
    let sig = Signal::new(&lp).unwrap();
    assert_eq!(sig.start(0, |_, _| {}).unwrap_err(), Error::EINVAL);
    assert_eq!(sig.start(-1, |_, _| {}).unwrap_err(), Error::EINVAL);
    assert_eq!(sig.start(100_000, |_, _| {}).unwrap_err(), Error::EINVAL);
    #[cfg(unix)]
    {
        assert_eq!(sig.start(uvio::uv::signum::SIGKILL, |_, _| {}).unwrap_err(), Error::EINVAL);
        assert_eq!(sig.start_oneshot(uvio::uv::signum::SIGSTOP, |_, _| {}).unwrap_err(), Error::EINVAL);
    }
    assert!(!sig.is_active());
    assert_eq!(sig.signum(), None);
    drop(sig);
    close_clean(lp);
}

/// The tests that deliver signals: Unix only (Windows emulates a few console signals that a test cannot raise).
#[cfg(unix)]
mod unix {
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;
    use std::sync::{Mutex, MutexGuard};

    use super::common::close_clean;
    use uvio::uv::{signum, Handle, Loop, RunMode, Signal};
    use uvio::Error;

    static LOCK: Mutex<()> = Mutex::new(());

    fn lock() -> MutexGuard<'static, ()> {
        LOCK.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Raises `sig` on this thread: the process-wide handler runs before `raise` returns.
    fn raise(sig: i32) {
        // SAFETY: raise has no memory-safety preconditions; every raised signal has a handler or is ignored.
        assert_eq!(unsafe { libc::raise(sig) }, 0);
    }

    #[test]
    fn delivers_signal_sent_with_kill() {
        let _g = lock();
        let lp = Loop::new().unwrap();
        let sig = Signal::new(&lp).unwrap();
        let got = Rc::new(Cell::new(0));
        let g2 = got.clone();
        sig.start(signum::SIGUSR1, move |s, n| {
            g2.set(n);
            s.stop().unwrap();
        })
        .unwrap();
        uvio::uv::kill(std::process::id() as i32, signum::SIGUSR1).unwrap();
        lp.run(RunMode::Default).unwrap();
        assert_eq!(got.get(), signum::SIGUSR1);
        drop(sig);
        close_clean(lp);
    }

    #[test]
    fn each_raise_runs_the_callback() {
        let _g = lock();
        let lp = Loop::new().unwrap();
        let sig = Signal::new(&lp).unwrap();
        let n = Rc::new(Cell::new(0));
        let n2 = n.clone();
        sig.start(signum::SIGUSR2, move |_, _| n2.set(n2.get() + 1)).unwrap();
        for _ in 0..3 {
            raise(signum::SIGUSR2);
        }
        while n.get() < 3 {
            lp.run(RunMode::Once).unwrap();
        }
        assert_eq!(n.get(), 3);
        drop(sig);
        close_clean(lp);
    }

    #[test]
    fn oneshot_fires_once_and_stops() {
        let _g = lock();
        let lp = Loop::new().unwrap();
        let sig = Signal::new(&lp).unwrap();
        let n = Rc::new(Cell::new(0));
        let n2 = n.clone();
        // SIGWINCH: its default action is to ignore, so the second raise (after the one-shot reset) is harmless.
        sig.start_oneshot(signum::SIGWINCH, move |_, _| n2.set(n2.get() + 1)).unwrap();
        assert_eq!(sig.signum(), Some(signum::SIGWINCH));
        raise(signum::SIGWINCH);
        raise(signum::SIGWINCH);
        lp.run(RunMode::Default).unwrap(); // returns: the one-shot watcher stopped itself
        assert_eq!(n.get(), 1);
        assert!(!sig.is_active());
        assert_eq!(sig.signum(), None);
        drop(sig);
        close_clean(lp);
    }

    #[test]
    fn two_watchers_of_one_signal_both_fire() {
        let _g = lock();
        let lp = Loop::new().unwrap();
        let log = Rc::new(RefCell::new(Vec::new()));
        let watchers: Vec<Signal> = ["a", "b"]
            .into_iter()
            .map(|name| {
                let s = Signal::new(&lp).unwrap();
                let log = log.clone();
                s.start(signum::SIGUSR1, move |s, n| {
                    log.borrow_mut().push((name, n));
                    s.stop().unwrap();
                })
                .unwrap();
                s
            })
            .collect();
        raise(signum::SIGUSR1);
        lp.run(RunMode::Default).unwrap();
        let mut seen = log.borrow().clone();
        seen.sort();
        assert_eq!(seen, vec![("a", signum::SIGUSR1), ("b", signum::SIGUSR1)]);
        drop(watchers);
        close_clean(lp);
    }

    #[test]
    fn stopped_watcher_is_not_called() {
        let _g = lock();
        let lp = Loop::new().unwrap();
        let stopped = Signal::new(&lp).unwrap();
        let live = Signal::new(&lp).unwrap();
        let hits = Rc::new(RefCell::new(Vec::new()));
        let h1 = hits.clone();
        stopped.start(signum::SIGUSR2, move |_, _| h1.borrow_mut().push("stopped")).unwrap();
        let h2 = hits.clone();
        // The live watcher keeps the process-wide handler installed after the other one stops.
        live.start(signum::SIGUSR2, move |s, _| {
            h2.borrow_mut().push("live");
            s.stop().unwrap();
        })
        .unwrap();
        stopped.stop().unwrap();
        stopped.stop().unwrap(); // stopping twice is fine
        assert!(!stopped.is_active());
        raise(signum::SIGUSR2);
        lp.run(RunMode::Default).unwrap();
        assert_eq!(*hits.borrow(), vec!["live"]);
        drop((stopped, live));
        close_clean(lp);
    }

    #[test]
    fn drop_in_own_callback_then_start_is_einval() {
        let _g = lock();
        let lp = Loop::new().unwrap();
        let slot = Rc::new(RefCell::new(None::<Signal>));
        let sig = Signal::new(&lp).unwrap();
        let s2 = slot.clone();
        let fired = Rc::new(Cell::new(0));
        let f2 = fired.clone();
        sig.start(signum::SIGUSR1, move |s, _| {
            f2.set(f2.get() + 1);
            drop(s2.borrow_mut().take()); // closes the watcher from inside its own callback
            assert!(s.is_closing());
            assert_eq!(s.start(signum::SIGUSR1, |_, _| {}).unwrap_err(), Error::EINVAL);
            assert_eq!(s.start_oneshot(signum::SIGUSR1, |_, _| {}).unwrap_err(), Error::EINVAL);
        })
        .unwrap();
        *slot.borrow_mut() = Some(sig);
        raise(signum::SIGUSR1);
        lp.run(RunMode::Default).unwrap();
        assert_eq!(fired.get(), 1);
        close_clean(lp);
    }

    #[test]
    fn restart_on_another_signal_from_callback() {
        let _g = lock();
        let lp = Loop::new().unwrap();
        let sig = Signal::new(&lp).unwrap();
        let log = Rc::new(RefCell::new(Vec::new()));
        let l2 = log.clone();
        sig.start(signum::SIGUSR1, move |s, n| {
            l2.borrow_mut().push(n);
            let l3 = l2.clone();
            s.start(signum::SIGUSR2, move |s, n| {
                l3.borrow_mut().push(n);
                s.stop().unwrap();
            })
            .unwrap();
            raise(signum::SIGUSR2);
        })
        .unwrap();
        raise(signum::SIGUSR1);
        lp.run(RunMode::Default).unwrap();
        assert_eq!(*log.borrow(), vec![signum::SIGUSR1, signum::SIGUSR2]);
        drop(sig);
        close_clean(lp);
    }

    #[test]
    fn unref_watcher_does_not_keep_loop_alive() {
        let _g = lock();
        let lp = Loop::new().unwrap();
        let sig = Signal::new(&lp).unwrap();
        sig.start(signum::SIGUSR2, |_, _| panic!("no signal was sent")).unwrap();
        sig.unref();
        assert!(!lp.run(RunMode::Default).unwrap());
        assert!(sig.is_active());
        assert_eq!(sig.signum(), Some(signum::SIGUSR2));
        drop(sig);
        close_clean(lp);
    }

    #[test]
    fn panic_in_callback_resumes_from_run() {
        let _g = lock();
        let lp = Loop::new().unwrap();
        let sig = Signal::new(&lp).unwrap();
        sig.start(signum::SIGUSR1, |_, _| panic!("boom in signal")).unwrap();
        raise(signum::SIGUSR1);
        let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lp.run(RunMode::Default))).unwrap_err();
        assert_eq!(err.downcast_ref::<&str>(), Some(&"boom in signal"));
        drop(sig);
        close_clean(lp);
    }
}
