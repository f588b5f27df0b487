//! Async tests: cross-thread wakeups, coalescing, and the sender outliving or racing with its handle.
mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use common::close_clean;
use uvio::uv::{Async, AsyncSender, Handle, Loop, RunMode};
use uvio::Error;

/// Where an Async lives so that its own callback can drop it.
type Slot = Rc<RefCell<Option<Async>>>;

/// An Async whose callback counts calls and runs `after(count, slot)`; it lives in the returned slot.
fn async_in_slot(lp: &Loop, mut after: impl FnMut(u32, &Slot) + 'static) -> (Slot, Rc<Cell<u32>>) {
    let slot: Slot = Rc::default();
    let calls = Rc::new(Cell::new(0));
    let (s2, c2) = (slot.clone(), calls.clone());
    let a = Async::new(lp, move |_| {
        c2.set(c2.get() + 1);
        after(c2.get(), &s2);
    })
    .unwrap();
    *slot.borrow_mut() = Some(a);
    (slot, calls)
}

fn sender_of(slot: &Slot) -> AsyncSender {
    slot.borrow().as_ref().unwrap().sender()
}

fn close(slot: &Slot) {
    drop(slot.borrow_mut().take());
}

#[test]
fn send_from_another_thread_wakes_the_loop() {
    let lp = Loop::new().unwrap();
    let inbox = Arc::new(Mutex::new(Vec::new()));
    let received = Rc::new(RefCell::new(Vec::new()));
    let (i2, r2) = (inbox.clone(), received.clone());
    let (slot, calls) = async_in_slot(&lp, move |_, slot| {
        r2.borrow_mut().append(&mut i2.lock().unwrap());
        if r2.borrow().len() == 1 {
            close(slot);
        }
    });
    let sender = sender_of(&slot);
    let worker = thread::spawn(move || {
        inbox.lock().unwrap().push("hello from the worker");
        sender.send().unwrap();
    });
    // The Async keeps the loop alive until the callback drops it.
    assert!(!lp.run(RunMode::Default).unwrap());
    worker.join().unwrap();
    assert_eq!(*received.borrow(), ["hello from the worker"]);
    assert_eq!(calls.get(), 1);
    assert!(slot.borrow().is_none());
    close_clean(lp);
}

#[test]
fn eight_threads_times_a_thousand_sends_are_coalesced_but_none_lost() {
    const THREADS: usize = 8;
    const SENDS: usize = 1000;
    let lp = Loop::new().unwrap();
    let counter = Arc::new(AtomicUsize::new(0));
    let last_seen = Rc::new(Cell::new(0));
    let (c2, l2) = (counter.clone(), last_seen.clone());
    let (slot, calls) = async_in_slot(&lp, move |_, slot| {
        // Every send follows its increment, so a callback always follows the 8000th increment.
        l2.set(c2.load(Ordering::SeqCst));
        if l2.get() == THREADS * SENDS {
            close(slot);
        }
    });
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let (sender, counter) = (sender_of(&slot), counter.clone());
            thread::spawn(move || {
                for _ in 0..SENDS {
                    counter.fetch_add(1, Ordering::SeqCst);
                    sender.send().unwrap();
                }
            })
        })
        .collect();
    lp.run(RunMode::Default).unwrap();
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(last_seen.get(), THREADS * SENDS);
    assert!(calls.get() >= 1);
    assert!(calls.get() as usize <= THREADS * SENDS, "never more callbacks than sends");
    close_clean(lp);
}

#[test]
fn send_after_async_dropped_is_ebadf() {
    let lp = Loop::new().unwrap();
    let a = Async::new(&lp, |_| panic!("a dropped Async never runs its callback")).unwrap();
    let sender = a.sender();
    assert!(sender.is_connected());
    sender.send().unwrap(); // accepted, then discarded by the close
    drop(a);
    assert!(!sender.is_connected());
    assert_eq!(sender.send(), Err(Error::EBADF));
    // Also from another thread, after the handle's memory is gone.
    lp.run(RunMode::Default).unwrap();
    let s2 = sender.clone();
    assert_eq!(thread::spawn(move || s2.send()).join().unwrap(), Err(Error::EBADF));
    assert!(format!("{sender:?}").contains("connected: false"));
    close_clean(lp);
}

#[test]
fn sender_dropped_on_another_thread() {
    let lp = Loop::new().unwrap();
    let (slot, calls) = async_in_slot(&lp, |_, slot| close(slot));
    let sender = sender_of(&slot);
    thread::spawn(move || {
        sender.send().unwrap();
        drop(sender); // the last sender goes away on this thread; the Async is unaffected
    })
    .join()
    .unwrap();
    lp.run(RunMode::Default).unwrap();
    assert_eq!(calls.get(), 1);
    close_clean(lp);
}

#[test]
fn sender_clones_wake_the_same_async() {
    let lp = Loop::new().unwrap();
    let (slot, calls) = async_in_slot(&lp, |n, slot| {
        if n == 3 {
            close(slot);
        }
    });
    let original = sender_of(&slot);
    let clones = [original.clone(), original.clone(), original];
    // One send per loop iteration, so none is coalesced: three callbacks.
    for (i, s) in clones.iter().enumerate() {
        s.send().unwrap();
        lp.run(RunMode::Once).unwrap();
        assert_eq!(calls.get() as usize, i + 1);
    }
    assert_eq!(calls.get(), 3);
    assert!(clones.iter().all(|s| !s.is_connected()), "every clone sees the close");
    close_clean(lp);
}

#[test]
fn sends_before_run_coalesce_into_one_callback() {
    let lp = Loop::new().unwrap();
    let (slot, calls) = async_in_slot(&lp, |_, slot| close(slot));
    let sender = sender_of(&slot);
    for _ in 0..5 {
        sender.send().unwrap();
    }
    lp.run(RunMode::Default).unwrap();
    assert_eq!(calls.get(), 1, "five sends before the callback ran: one callback");
    assert_eq!(sender.send(), Err(Error::EBADF));
    close_clean(lp);
}

#[test]
fn drop_async_in_own_callback() {
    let lp = Loop::new().unwrap();
    let outer_sender: Rc<RefCell<Option<AsyncSender>>> = Rc::default();
    let slot: Slot = Rc::default();
    let (s2, o2) = (slot.clone(), outer_sender.clone());
    let calls = Rc::new(Cell::new(0));
    let c2 = calls.clone();
    let a = Async::new(&lp, move |this| {
        c2.set(c2.get() + 1);
        drop(s2.borrow_mut().take()); // closes the handle from inside its own callback
        assert!(this.is_closing());
        assert_eq!(this.sender().send(), Err(Error::EBADF), "a sender made from a closing view");
        assert_eq!(o2.borrow().as_ref().unwrap().send(), Err(Error::EBADF));
    })
    .unwrap();
    *outer_sender.borrow_mut() = Some(a.sender());
    a.sender().send().unwrap();
    *slot.borrow_mut() = Some(a);
    assert!(!lp.run(RunMode::Default).unwrap());
    assert_eq!(calls.get(), 1);
    close_clean(lp);
}

#[test]
fn unref_async_does_not_keep_the_loop_alive() {
    let lp = Loop::new().unwrap();
    let (slot, calls) = async_in_slot(&lp, |_, slot| close(slot));
    {
        let a = slot.borrow();
        let a = a.as_ref().unwrap();
        assert!(a.is_active(), "an Async is active from creation");
        a.unref();
        assert!(!lp.alive());
    }
    assert!(!lp.run(RunMode::Default).unwrap(), "returns at once");
    assert_eq!(calls.get(), 0);

    let a = slot.borrow();
    a.as_ref().unwrap().ref_();
    a.as_ref().unwrap().sender().send().unwrap();
    drop(a);
    lp.run(RunMode::Default).unwrap();
    assert_eq!(calls.get(), 1);
    close_clean(lp);
}

#[test]
fn sends_racing_with_drop_end_in_ebadf() {
    let lp = Loop::new().unwrap();
    let (slot, calls) = async_in_slot(&lp, |n, slot| {
        if n == 20 {
            close(slot);
        }
    });
    let senders: Vec<_> = (0..4)
        .map(|_| {
            let sender = sender_of(&slot);
            thread::spawn(move || {
                let mut sent = 0u64;
                loop {
                    match sender.send() {
                        Ok(()) => sent += 1,
                        Err(e) => return (e, sent),
                    }
                    thread::yield_now();
                }
            })
        })
        .collect();
    lp.run(RunMode::Default).unwrap();
    assert_eq!(calls.get(), 20);
    let mut total_sent = 0;
    for s in senders {
        let (err, sent) = s.join().unwrap();
        assert_eq!(err, Error::EBADF, "every sender stops with EBADF once the Async is gone");
        total_sent += sent;
    }
    assert!(total_sent >= 20, "20 callbacks need at least 20 sends, got {total_sent}");
    close_clean(lp);
}

#[test]
fn panic_in_callback_resumes_from_run() {
    let lp = Loop::new().unwrap();
    let a = Async::new(&lp, |_| panic!("boom in async")).unwrap();
    a.sender().send().unwrap();
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lp.run(RunMode::Default))).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"boom in async"));
    // The handle stays usable: the same callback panics again on the next send.
    a.sender().send().unwrap();
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lp.run(RunMode::Once))).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"boom in async"));
    drop(a);
    close_clean(lp);
}

#[test]
fn async_outlives_its_loop_value() {
    let lp = Loop::new().unwrap();
    let a = Async::new(&lp, |_| {}).unwrap();
    let sender = a.sender();
    drop(lp); // the handle keeps the loop memory alive
    sender.send().unwrap();
    drop(a); // delivers its own close and frees the loop
    assert_eq!(sender.send(), Err(Error::EBADF));
}
