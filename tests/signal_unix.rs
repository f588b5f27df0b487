//! Async signals: delivery to one and to several listeners, the Stream view, coalescing without loss,
//! dropping listeners and recv futures, refused signals, SIGCHLD from a child, and ctrl_c via SIGINT.
//!
//! Signals are process-wide, so every test holds `SERIAL` while it listens or raises, and a signal is only
//! ever raised while a listener for it is installed (else its default action would end the test process).
#![cfg(unix)]

mod common;

use std::io::ErrorKind;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use uvio::signal::unix::{signal, SignalKind};
use uvio::time::{sleep, timeout};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Sends `kind` to this process. Only call it with a listener for `kind` installed.
fn raise(kind: SignalKind) {
    uvio::uv::kill(std::process::id() as i32, kind.as_raw_value()).unwrap();
}

/// Asserts nothing more arrives for a little while.
async fn assert_quiet(sig: &mut uvio::signal::unix::Signal) {
    assert!(timeout(Duration::from_millis(50), sig.recv()).await.is_err(), "no further delivery");
}

rt_test! {
    fn user_defined1_is_delivered() {
        let _serial = serial();
        run(async {
            let mut usr1 = signal(SignalKind::user_defined1()).unwrap();
            raise(SignalKind::user_defined1());
            assert_eq!(usr1.recv().await, Some(()));
            assert_quiet(&mut usr1).await;
            raise(SignalKind::user_defined1());
            assert_eq!(usr1.recv().await, Some(()), "again");
        });
    }
}

rt_test! {
    fn stream_yields_each_delivery() {
        let _serial = serial();
        run(async {
            let mut usr2 = signal(SignalKind::user_defined2()).unwrap();
            for _ in 0..3 {
                raise(SignalKind::user_defined2());
                assert_eq!(usr2.next().await, Some(()));
            }
            assert!(timeout(Duration::from_millis(50), usr2.next()).await.is_err());
        });
    }
}

rt_test! {
    fn two_listeners_both_see_it() {
        let _serial = serial();
        run(async {
            let mut a = signal(SignalKind::user_defined1()).unwrap();
            let mut b = signal(SignalKind::user_defined1()).unwrap();
            raise(SignalKind::user_defined1());
            assert_eq!(a.recv().await, Some(()));
            assert_eq!(b.recv().await, Some(()));
            // A listener in another task on the same runtime sees it too.
            let (tx, rx) = futures::channel::oneshot::channel();
            let mut c = signal(SignalKind::user_defined1()).unwrap();
            let task = uvio::spawn_local(async move {
                tx.send(()).unwrap();
                c.recv().await
            });
            rx.await.unwrap();
            raise(SignalKind::user_defined1());
            assert_eq!(task.await.unwrap(), Some(()));
            assert_eq!(a.recv().await, Some(()));
            assert_eq!(b.recv().await, Some(()));
        });
    }
}

rt_test! {
    fn dropping_a_listener_leaves_the_others() {
        let _serial = serial();
        run(async {
            let a = signal(SignalKind::user_defined2()).unwrap();
            let mut b = signal(SignalKind::user_defined2()).unwrap();
            drop(a);
            raise(SignalKind::user_defined2());
            assert_eq!(b.recv().await, Some(()));
            // A listener created later starts from zero: it does not see what came before it.
            let mut c = signal(SignalKind::user_defined2()).unwrap();
            assert!(timeout(Duration::from_millis(30), c.recv()).await.is_err());
            raise(SignalKind::user_defined2());
            assert_eq!(b.recv().await, Some(()));
            assert_eq!(c.recv().await, Some(()));
        });
    }
}

rt_test! {
    fn deliveries_between_recvs_coalesce_but_are_not_lost() {
        let _serial = serial();
        run(async {
            let mut usr1 = signal(SignalKind::user_defined1()).unwrap();
            for _ in 0..3 {
                raise(SignalKind::user_defined1());
            }
            // Let the loop take the deliveries in while nobody is receiving.
            sleep(Duration::from_millis(50)).await;
            let mut recv = Box::pin(usr1.recv());
            assert_eq!(futures::poll!(recv.as_mut()), std::task::Poll::Ready(Some(())), "counted while unwatched");
            drop(recv);
            assert_quiet(&mut usr1).await;
        });
    }
}

rt_test! {
    fn dropped_recv_future_loses_nothing() {
        let _serial = serial();
        run(async {
            let mut usr2 = signal(SignalKind::user_defined2()).unwrap();
            assert!(timeout(Duration::from_millis(10), usr2.recv()).await.is_err());
            let mut recv = Box::pin(usr2.recv());
            assert!(futures::poll!(recv.as_mut()).is_pending());
            drop(recv);
            raise(SignalKind::user_defined2());
            assert_eq!(usr2.recv().await, Some(()));
        });
    }
}

rt_test! {
    async fn uncatchable_and_fault_signals_are_refused() {
        for raw in [9, 0, 10_000] {
            let err = signal(SignalKind::from_raw(raw)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "signal {raw}");
        }
        // SIGSEGV, SIGFPE, SIGILL: libuv calls handling them undefined behaviour.
        for raw in [11, 8, 4] {
            let err = signal(SignalKind::from(raw)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "signal {raw}");
        }
        assert_eq!(SignalKind::from_raw(15), SignalKind::terminate());
        assert_eq!(SignalKind::hangup().as_raw_value(), uvio::uv::signum::SIGHUP);
    }
}

rt_test! {
    fn terminate_and_hangup_are_delivered() {
        let _serial = serial();
        run(async {
            let mut term = signal(SignalKind::terminate()).unwrap();
            let mut hup = signal(SignalKind::hangup()).unwrap();
            raise(SignalKind::terminate());
            assert_eq!(term.recv().await, Some(()));
            raise(SignalKind::hangup());
            assert_eq!(hup.recv().await, Some(()));
            assert_quiet(&mut term).await;
        });
    }
}

rt_test! {
    fn child_signal_when_a_process_exits() {
        let _serial = serial();
        run(async {
            let mut chld = signal(SignalKind::child()).unwrap();
            // The process module still gets its exit status: libuv's own SIGCHLD watcher is unaffected.
            let status = uvio::process::Command::new("true").status().await.unwrap();
            assert!(status.success());
            assert_eq!(chld.recv().await, Some(()));
        });
    }
}

rt_test! {
    fn ctrl_c_via_sigint() {
        let _serial = serial();
        run(async {
            let mut ctrl_c = Box::pin(uvio::signal::ctrl_c());
            // The first poll installs the SIGINT listener; only then is raising SIGINT safe.
            assert!(futures::poll!(ctrl_c.as_mut()).is_pending());
            raise(SignalKind::interrupt());
            ctrl_c.await.unwrap();
            // Two at once see the same Ctrl+C.
            let (mut a, mut b) = (Box::pin(uvio::signal::ctrl_c()), Box::pin(uvio::signal::ctrl_c()));
            assert!(futures::poll!(a.as_mut()).is_pending());
            assert!(futures::poll!(b.as_mut()).is_pending());
            raise(SignalKind::interrupt());
            a.await.unwrap();
            b.await.unwrap();
        });
    }
}

rt_test! {
    fn listeners_on_two_runtimes_both_see_it() {
        let _serial = serial();
        let rt2 = common::rt::runtime(ENGINE);
        let mut other = {
            let _in_rt2 = rt2.enter();
            signal(SignalKind::user_defined1()).unwrap()
        };
        run(async {
            let mut mine = signal(SignalKind::user_defined1()).unwrap();
            raise(SignalKind::user_defined1());
            assert_eq!(mine.recv().await, Some(()));
        });
        assert_eq!(rt2.block_on(other.recv()), Some(()));
        drop(other);
        rt2.close().expect("second runtime closes cleanly");
    }
}

rt_test! {
    fn only_a_listener_being_waited_on_keeps_the_loop_alive() {
        use std::future::Future;
        use std::task::{Context, Poll};
        let _serial = serial();
        let rt = common::rt::runtime(ENGINE);
        let lp = rt.loop_handle();
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut usr2 = {
            let _in_rt = rt.enter();
            signal(SignalKind::user_defined2()).unwrap()
        };
        assert!(!lp.alive(), "an idle listener does not hold the loop");
        {
            let mut recv = Box::pin(usr2.recv());
            assert!(recv.as_mut().poll(&mut cx).is_pending());
            assert!(lp.alive(), "a waiting recv does");
        }
        assert!(!lp.alive(), "a dropped recv future lets go");
        // Polled as a Stream: held until the delivery, which a blocking run then waits for.
        assert!(usr2.poll_recv(&mut cx).is_pending());
        assert!(lp.alive());
        raise(SignalKind::user_defined2());
        lp.run(uvio::uv::RunMode::Default).unwrap();
        assert!(!lp.alive());
        assert_eq!(usr2.poll_recv(&mut cx), Poll::Ready(Some(())));
        drop(usr2);
        rt.close().expect("runtime closes cleanly");
    }
}
