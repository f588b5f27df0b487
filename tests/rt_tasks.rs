//! Runtime tests: block_on, spawn_local, Handle::spawn from many threads, JoinHandle (abort, detach,
//! is_finished), panicking tasks, yield fairness, spawn_blocking.
mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use uvio::spawn_local;
use uvio::task::{spawn_blocking, yield_now};
use uvio::time::sleep;

rt_test! {
    fn block_on_returns_the_output() {
        let rt = common::rt::runtime(ENGINE);
        assert_eq!(rt.block_on(async { 1 + 2 }), 3);
        assert_eq!(rt.block_on(async { "again" }), "again");
        rt.close().expect("runtime closes cleanly");
    }
}

#[test]
fn free_block_on() {
    assert_eq!(uvio::block_on(async { 5 }), 5);
}

rt_test! {
    fn spawn_local_runs_and_joins() {
        let rt = common::rt::runtime(ENGINE);
        let out = rt.block_on(async {
            let shared = Rc::new(Cell::new(0));
            let s = shared.clone();
            let h = spawn_local(async move {
                s.set(41);
                s.get() + 1
            });
            let v = h.await.unwrap();
            (v, shared.get())
        });
        assert_eq!(out, (42, 41));
        rt.close().expect("runtime closes cleanly");
    }
}

rt_test! {
    fn many_tasks_interleave() {
        let rt = common::rt::runtime(ENGINE);
        let log = Rc::new(RefCell::new(Vec::new()));
        rt.block_on(async {
            let handles: Vec<_> = (0..3)
                .map(|i| {
                    let log = log.clone();
                    spawn_local(async move {
                        for step in 0..3 {
                            log.borrow_mut().push((i, step));
                            yield_now().await;
                        }
                    })
                })
                .collect();
            for h in handles {
                h.await.unwrap();
            }
        });
        let log = log.borrow();
        assert_eq!(log.len(), 9);
        // Round-robin: every task made its first step before any made its second.
        assert!(log[..3].iter().all(|&(_, step)| step == 0), "{log:?}");
        rt.close().expect("runtime closes cleanly");
    }
}

rt_test! {
    fn ten_thousand_tasks() {
        let rt = common::rt::runtime(ENGINE);
        let total = rt.block_on(async {
            let handles: Vec<_> = (0..10_000u64).map(|i| spawn_local(async move { i })).collect();
            let mut sum = 0;
            for h in handles {
                sum += h.await.unwrap();
            }
            sum
        });
        assert_eq!(total, (0..10_000u64).sum());
        rt.close().expect("runtime closes cleanly");
    }
}

rt_test! {
    fn panicking_task_gives_join_error_and_runtime_survives() {
        let rt = common::rt::runtime(ENGINE);
        rt.block_on(async {
            let h = spawn_local(async {
                panic!("task boom");
            });
            let err = h.await.unwrap_err();
            assert!(err.is_panic());
            assert_eq!(err.into_panic().downcast_ref::<&str>(), Some(&"task boom"));
            assert_eq!(spawn_local(async { 7 }).await.unwrap(), 7);
        });
        rt.close().expect("runtime closes cleanly");
    }
}

rt_test! {
    fn abort_cancels_a_pending_task_and_drops_its_future() {
        struct Flag(Rc<Cell<bool>>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.set(true);
            }
        }
        let rt = common::rt::runtime(ENGINE);
        let dropped = Rc::new(Cell::new(false));
        let d = dropped.clone();
        rt.block_on(async move {
            let h = spawn_local(async move {
                let _flag = Flag(d);
                sleep(Duration::from_secs(3600)).await;
            });
            yield_now().await; // let it start and register its sleep
            assert!(!h.is_finished());
            h.abort();
            let err = h.await.unwrap_err();
            assert!(err.is_cancelled());
        });
        assert!(dropped.get());
        rt.close().expect("runtime closes cleanly");
    }
}

rt_test! {
    fn abort_after_completion_keeps_the_output() {
        let rt = common::rt::runtime(ENGINE);
        rt.block_on(async {
            let h = spawn_local(async { 3 });
            yield_now().await;
            yield_now().await;
            assert!(h.is_finished());
            h.abort();
            assert_eq!(h.await.unwrap(), 3);
        });
        rt.close().expect("runtime closes cleanly");
    }
}

rt_test! {
    fn dropped_join_handle_detaches() {
        let rt = common::rt::runtime(ENGINE);
        let ran = Rc::new(Cell::new(false));
        let r = ran.clone();
        rt.block_on(async move {
            drop(spawn_local(async move {
                sleep(Duration::from_millis(2)).await;
                r.set(true);
            }));
            // The detached task keeps running: wait for it (bounded, without assuming any timing).
            let waited = uvio::time::timeout(Duration::from_secs(30), async {
                while !ran.get() {
                    sleep(Duration::from_millis(1)).await;
                }
            });
            assert!(waited.await.is_ok(), "the detached task never ran");
        });
        rt.close().expect("runtime closes cleanly");
    }
}

rt_test! {
    fn spawn_from_eight_threads_at_once() {
        let rt = common::rt::runtime(ENGINE);
        let handle = rt.handle();
        let count = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let handle = handle.clone();
                let count = count.clone();
                std::thread::spawn(move || {
                    (0..100)
                        .map(|i| {
                            let count = count.clone();
                            handle.spawn(async move {
                                count.fetch_add(1, Ordering::SeqCst);
                                t * 1000 + i
                            })
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let joins: Vec<_> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
        let sum: usize = rt.block_on(async move {
            let mut sum = 0;
            for j in joins {
                sum += j.await.unwrap();
            }
            sum
        });
        assert_eq!(count.load(Ordering::SeqCst), 800);
        assert_eq!(sum, (0..8).map(|t| (0..100).map(|i| t * 1000 + i).sum::<usize>()).sum());
        rt.close().expect("runtime closes cleanly");
    }
}

rt_test! {
    fn remote_spawn_wakes_a_blocked_loop() {
        let rt = common::rt::runtime(ENGINE);
        let handle = rt.handle();
        let (tx, rx) = std::sync::mpsc::channel();
        let out = rt.block_on(async move {
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                tx.send(handle.spawn(async { 99 })).unwrap();
            });
            // Wait (in the runtime) until the other thread has spawned, then await its task.
            loop {
                if let Ok(j) = rx.try_recv() {
                    break j.await.unwrap();
                }
                sleep(Duration::from_millis(1)).await;
            }
        });
        assert_eq!(out, 99);
        rt.close().expect("runtime closes cleanly");
    }
}

rt_test! {
    fn waker_from_another_thread_wakes_block_on() {
        let rt = common::rt::runtime(ENGINE);
        let (tx, rx) = futures::channel::oneshot::channel::<u32>();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            tx.send(5).unwrap();
        });
        assert_eq!(rt.block_on(rx).unwrap(), 5);
        rt.close().expect("runtime closes cleanly");
    }
}

rt_test! {
    fn spawn_after_runtime_dropped_is_cancelled() {
        let rt = common::rt::runtime(ENGINE);
        let handle = rt.handle();
        drop(rt);
        let j = handle.spawn(async { 1 });
        assert!(futures::executor::block_on(j).unwrap_err().is_cancelled());
    }
}

rt_test! {
    fn pending_tasks_are_cancelled_when_the_runtime_drops() {
        let rt = common::rt::runtime(ENGINE);
        let j = rt.spawn_local(async {
            sleep(Duration::from_secs(3600)).await;
        });
        rt.block_on(yield_now());
        drop(rt);
        assert!(futures::executor::block_on(j).unwrap_err().is_cancelled());
    }
}

rt_test! {
    #[should_panic(expected = "cannot block_on from inside a uvio runtime")]
    fn nested_block_on_panics() {
        let rt = common::rt::runtime(ENGINE);
        rt.block_on(async {
            uvio::block_on(async {});
        });
    }
}

rt_test! {
    fn spawn_blocking_runs_on_the_pool() {
        let rt = common::rt::runtime(ENGINE);
        let main = std::thread::current().id();
        let (v, other_thread) = rt.block_on(async move {
            spawn_blocking(move || (21 * 2, std::thread::current().id() != main)).await.unwrap()
        });
        assert_eq!(v, 42);
        assert!(other_thread);
        rt.close().expect("runtime closes cleanly");
    }
}

rt_test! {
    fn spawn_blocking_panic_is_a_join_error() {
        let rt = common::rt::runtime(ENGINE);
        let err = rt.block_on(async { spawn_blocking(|| panic!("pool boom")).await.unwrap_err() });
        assert!(err.is_panic());
        rt.close().expect("runtime closes cleanly");
    }
}

rt_test! {
    fn busy_tasks_do_not_starve_timers() {
        // A task that always yields must not keep a sleeping task from waking.
        let rt = common::rt::runtime(ENGINE);
        rt.block_on(async {
            let stop = Rc::new(Cell::new(false));
            let s = stop.clone();
            let spinner = spawn_local(async move {
                let mut spins = 0u64;
                while !s.get() {
                    spins += 1;
                    yield_now().await;
                }
                spins
            });
            sleep(Duration::from_millis(10)).await;
            stop.set(true);
            assert!(spinner.await.unwrap() > 0);
        });
        rt.close().expect("runtime closes cleanly");
    }
}

#[test]
fn spawn_outside_runtime_panics() {
    let r = std::panic::catch_unwind(|| {
        spawn_local(async {});
    });
    assert!(r.is_err());
}

rt_test! {
    fn enter_lets_spawn_local_work_outside_block_on() {
        let rt = common::rt::runtime(ENGINE);
        let j = {
            let _g = rt.enter();
            spawn_local(async { 8 })
        };
        assert_eq!(rt.block_on(j).unwrap(), 8);
        rt.close().expect("runtime closes cleanly");
    }
}

/// Records on which thread it was dropped.
struct DropThread(Arc<std::sync::Mutex<Option<std::thread::ThreadId>>>, std::marker::PhantomData<Rc<()>>);

impl Drop for DropThread {
    fn drop(&mut self) {
        *self.0.lock().unwrap() = Some(std::thread::current().id());
    }
}

rt_test! {
    fn a_local_future_is_dropped_on_its_thread_even_if_a_waker_outlives_it_elsewhere() {
        // The task's !Send future holds a DropThread; its waker goes to another thread that keeps it past the
        // runtime's close and drops it last. The future must still be dropped on the runtime's thread.
        let dropped_on = Arc::new(std::sync::Mutex::new(None));
        let (tx, rx) = std::sync::mpsc::channel::<std::task::Waker>();
        let keeper = std::thread::spawn(move || {
            let waker = rx.recv().unwrap();
            std::thread::sleep(Duration::from_millis(100));
            waker.wake_by_ref(); // the runtime is gone: a no-op
            drop(waker); // the last reference to the task
        });
        let rt = common::rt::runtime(ENGINE);
        let d = dropped_on.clone();
        rt.block_on(async move {
            let guard = DropThread(d, std::marker::PhantomData);
            let task = spawn_local(async move {
                let _guard = guard;
                std::future::poll_fn(|cx| {
                    tx.send(cx.waker().clone()).unwrap();
                    std::task::Poll::<()>::Pending
                })
                .await;
            });
            yield_now().await;
            drop(task); // detached: it stays pending until the runtime drops it
        });
        rt.close().expect("runtime closes cleanly");
        assert_eq!(*dropped_on.lock().unwrap(), Some(std::thread::current().id()));
        keeper.join().unwrap();
    }
}

rt_test! {
    fn a_detached_tasks_output_is_dropped_on_its_thread() {
        let dropped_on = Arc::new(std::sync::Mutex::new(None));
        let rt = common::rt::runtime(ENGINE);
        let d = dropped_on.clone();
        let d2 = dropped_on.clone();
        rt.block_on(async move {
            let task = spawn_local(async move {
                sleep(Duration::from_millis(5)).await;
                DropThread(d, std::marker::PhantomData)
            });
            drop(task);
            // Wait (bounded) until the task finished and its output was dropped.
            let done = uvio::time::timeout(Duration::from_secs(10), async {
                while d2.lock().unwrap().is_none() {
                    sleep(Duration::from_millis(1)).await;
                }
            });
            done.await.expect("the detached task finished");
        });
        assert_eq!(*dropped_on.lock().unwrap(), Some(std::thread::current().id()));
        rt.close().expect("runtime closes cleanly");
    }
}

rt_test! {
    fn a_task_can_await_its_own_handle_without_deadlock() {
        // The join slot and the future are separate: polling one's own handle from inside must not block.
        let rt = common::rt::runtime(ENGINE);
        let polled = rt.block_on(async {
            let (tx, rx) = futures::channel::oneshot::channel::<uvio::task::JoinHandle<u32>>();
            let task = spawn_local(async move {
                let mut own = rx.await.unwrap();
                // Poll it once: still running (it is us), so Pending.
                let pending = futures::poll!(&mut own).is_pending();
                own.abort(); // ends us at the next turn
                uvio::task::yield_now().await;
                pending as u32
            });
            let probe = spawn_local(async {});
            tx.send(task).unwrap();
            probe.await.unwrap();
            sleep(Duration::from_millis(5)).await;
            true
        });
        assert!(polled);
        rt.close().expect("runtime closes cleanly");
    }
}

rt_test! {
    fn a_panicking_drop_after_a_panic_is_contained() {
        struct PanicOnDrop;
        impl Drop for PanicOnDrop {
            fn drop(&mut self) {
                if !std::thread::panicking() {
                    panic!("drop panics too");
                }
            }
        }
        let rt = common::rt::runtime(ENGINE);
        let err = rt.block_on(async {
            let t = spawn_local(async {
                let _p = PanicOnDrop;
                yield_now().await;
                panic!("first");
            });
            t.await.unwrap_err()
        });
        assert!(err.is_panic());
        assert_eq!(*err.into_panic().downcast::<&str>().unwrap(), "first");
        rt.close().expect("runtime closes cleanly");
    }
}
