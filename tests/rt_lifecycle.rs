//! Runtime lifecycle edge cases: what happens to tasks, blocking jobs, guards and I/O objects when a runtime
//! shuts down (or is misused) in unusual ways. Tests of former hangs run their body on a thread with a timeout.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// Runs `body` on its own thread and fails the test if it does not return within `secs` seconds.
fn within<T: Send + 'static>(secs: u64, body: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(catch_unwind(AssertUnwindSafe(body)));
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(Ok(out)) => out,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("did not finish within {secs} s (hang)"),
    }
}

/// A value whose destructor panics.
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("destructor panic (expected by the test)");
    }
}

async fn pending_holding<T>(value: T) {
    let _held = value;
    std::future::pending::<()>().await
}

rt_test! {
    fn aborting_a_task_whose_destructor_panics_gives_a_panic_join_error() {
        let rt = common::rt::runtime(ENGINE);
        let res = rt.block_on(async {
            let task = uvio::spawn_local(pending_holding(PanicOnDrop));
            uvio::task::yield_now().await; // the task starts and holds the value
            task.abort();
            task.await
        });
        assert!(res.unwrap_err().is_panic());
        rt.close().unwrap();
    }
}

rt_test! {
    fn dropping_a_runtime_with_a_task_whose_destructor_panics_does_not_panic() {
        let rt = common::rt::runtime(ENGINE);
        let task = rt.spawn_local(pending_holding(PanicOnDrop));
        rt.block_on(uvio::task::yield_now()); // the task starts and holds the value
        catch_unwind(AssertUnwindSafe(|| drop(rt))).expect("runtime drop panicked");
        let res = futures::executor::block_on(task);
        assert!(res.unwrap_err().is_panic());
    }
}

rt_test! {
    fn enter_guards_dropped_in_order_are_fine() {
        let a = common::rt::runtime(ENGINE);
        let b = common::rt::runtime(ENGINE);
        let ga = a.enter();
        let gb = b.enter();
        drop(gb);
        drop(ga);
    }
}

rt_test! {
    fn an_enter_guard_dropped_out_of_order_panics() {
        let a = common::rt::runtime(ENGINE);
        let b = common::rt::runtime(ENGINE);
        let ga = a.enter();
        let gb = b.enter();
        let out_of_order = catch_unwind(AssertUnwindSafe(|| drop(ga)));
        let payload = out_of_order.expect_err("dropping the outer guard first must panic");
        let msg =
            payload.downcast_ref::<&str>().copied().or(payload.downcast_ref::<String>().map(|s| s.as_str())).unwrap();
        assert!(msg.contains("out of order"), "{msg}");
        // `b` is still current, and only it: its guard leaves it cleanly.
        let task = uvio::spawn_local(async { 7 });
        drop(gb);
        assert!(catch_unwind(|| drop(uvio::spawn_local(async {}))).is_err(), "no runtime should be current any more");
        assert_eq!(b.block_on(task).unwrap(), 7);
    }
}

static RESPAWNED: AtomicUsize = AtomicUsize::new(0);

/// Spawns its successor from its destructor, forever.
struct Respawn;

impl Drop for Respawn {
    fn drop(&mut self) {
        RESPAWNED.fetch_add(1, Ordering::Relaxed);
        let next = Respawn;
        drop(uvio::spawn_local(pending_holding(next)));
    }
}

rt_test! {
    fn shutdown_ends_even_if_destructors_respawn_forever() {
        let spawned_during_shutdown = within(20, || {
            let rt = common::rt::runtime(ENGINE);
            rt.block_on(async {
                drop(uvio::spawn_local(pending_holding(Respawn)));
                uvio::task::yield_now().await;
            });
            let before = RESPAWNED.load(Ordering::Relaxed);
            drop(rt);
            RESPAWNED.load(Ordering::Relaxed) - before
        });
        assert!((1..1000).contains(&spawned_during_shutdown), "{spawned_during_shutdown}");
    }
}

rt_test! {
    fn a_task_spawned_during_shutdown_is_cancelled() {
        struct SpawnOnDrop(Option<mpsc::Sender<uvio::task::JoinHandle<u32>>>);
        impl Drop for SpawnOnDrop {
            fn drop(&mut self) {
                let handle = uvio::spawn(async { 5 });
                let _ = self.0.take().unwrap().send(handle);
            }
        }
        let (tx, rx) = mpsc::channel();
        let rt = common::rt::runtime(ENGINE);
        rt.block_on(async {
            drop(uvio::spawn_local(pending_holding(SpawnOnDrop(Some(tx)))));
            uvio::task::yield_now().await;
        });
        drop(rt);
        let late = rx.recv().unwrap();
        assert!(within(10, move || futures::executor::block_on(late)).unwrap_err().is_cancelled());
    }
}

rt_test! {
    fn spawn_blocking_handles_resolve_when_their_runtime_is_dropped() {
        let (running, queued) = within(20, || {
            let rt = common::rt::runtime(ENGINE);
            let (started_tx, started_rx) = mpsc::channel();
            let (release_tx, release_rx) = mpsc::channel::<()>();
            let release_rx = std::sync::Arc::new(std::sync::Mutex::new(release_rx));
            let (running, queued) = rt.block_on(async {
                // Every pool thread runs one of these until released; the last job waits in the queue.
                let running: Vec<_> = (0..common::pool_size())
                    .map(|i| {
                        let (started, release) = (started_tx.clone(), release_rx.clone());
                        uvio::task::spawn_blocking(move || {
                            started.send(()).unwrap();
                            let _ = release.lock().unwrap().recv_timeout(Duration::from_secs(10));
                            i
                        })
                    })
                    .collect();
                let queued = uvio::task::spawn_blocking(|| usize::MAX);
                (running, queued)
            });
            for _ in 0..common::pool_size() {
                started_rx.recv_timeout(Duration::from_secs(10)).expect("every pool thread runs a job");
            }
            let releaser = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                drop(release_tx);
            });
            drop(rt); // cancels the queued job, waits for the running ones
            releaser.join().unwrap();
            let running: Vec<_> = running.into_iter().map(|h| futures::executor::block_on(h).unwrap()).collect();
            (running, futures::executor::block_on(queued))
        });
        assert_eq!(running, (0..common::pool_size()).collect::<Vec<_>>());
        assert!(queued.unwrap_err().is_cancelled());
    }
}

rt_test! {
    fn close_with_a_live_listener_is_an_error() {
        let res = within(20, || {
            let rt = common::rt::runtime(ENGINE);
            let listener = rt.block_on(uvio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
            let res = rt.close().map_err(|e| e.to_string());
            drop(listener);
            res
        });
        let err = res.expect_err("close must report the live listener");
        assert!(err.contains("still tied"), "{err}");
    }
}

fn assert_gone<T: std::fmt::Debug>(what: &str, res: std::io::Result<T>) {
    let err = res.expect_err(what);
    assert_eq!(err.kind(), std::io::ErrorKind::Other, "{what}: {err}");
    assert!(err.to_string().contains("runtime this object belongs to is gone"), "{what}: {err}");
}

rt_test! {
    fn io_objects_used_after_their_runtime_is_gone_fail_at_once() {
        use futures::{AsyncReadExt, AsyncWriteExt};
        within(20, || {
            let dir = common::TempDir::new("rt-gone");
            let path = dir.path().join("f");
            std::fs::write(&path, b"data").unwrap();
            let rt = common::rt::runtime(ENGINE);
            let (listener, mut client, mut server, udp, mut file) = rt.block_on(async {
                let listener = uvio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let client = uvio::net::TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
                let (server, _) = listener.accept().await.unwrap();
                let udp = uvio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
                let file = uvio::fs::File::open(&path).await.unwrap();
                (listener, client, server, udp, file)
            });
            drop(rt);
            let mut buf = [0u8; 8];
            futures::executor::block_on(async {
                assert_gone("read", client.read(&mut buf).await);
                assert_gone("write", server.write(b"x").await);
                assert_gone("shutdown", server.close().await);
                assert_gone("accept", listener.accept().await);
                assert_gone("udp recv", udp.recv_from(&mut buf).await);
                assert_gone("udp send", udp.send_to(b"x", "127.0.0.1:9").await);
                assert_gone("file metadata", file.metadata().await);
                assert_gone("file sync", file.sync_all().await);
                assert_gone("file read", file.read(&mut buf).await);
                assert_gone("file write", file.write(b"x").await);
                assert_gone("file read_at", file.read_at(Vec::with_capacity(8), 0).await.0);
                assert_gone("file write_at", file.write_at(b"x".to_vec(), 0).await.0);
            });
            drop((listener, client, server, udp, file));
        });
    }
}

/// How far past its deadline `shutdown_timeout` may return: dropping what is left, one loop iteration, reaping
/// cancelled ring operations (generous, for slow CI machines and valgrind).
const SHUTDOWN_MARGIN: Duration = Duration::from_secs(2);

rt_test! {
    fn shutdown_timeout_cuts_a_task_stuck_on_a_silent_read() {
        use futures::AsyncReadExt;
        let grace = Duration::from_millis(200);
        let (report, took, stuck) = within(30, move || {
            let rt = common::rt::runtime(ENGINE);
            // The task's handle is what the block gives back, to be awaited once the runtime is shut down.
            #[allow(clippy::async_yields_async)]
            let stuck = rt.block_on(async {
                let listener = uvio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let mut client = uvio::net::TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
                let (peer, _) = listener.accept().await.unwrap();
                let stuck = uvio::spawn_local(async move {
                    let _silent_peer = (peer, listener); // open, and never writes
                    let mut buf = [0u8; 16];
                    client.read(&mut buf).await
                });
                uvio::task::yield_now().await; // the read is in flight
                stuck
            });
            let start = std::time::Instant::now();
            let report = rt.shutdown_timeout(grace);
            let took = start.elapsed();
            (report, took, futures::executor::block_on(stuck))
        });
        assert_eq!((report.tasks_cut(), report.pool_abandoned()), (1, 0), "{report:?}");
        assert!(!report.is_clean());
        assert!(took >= grace, "returned before the deadline ({took:?}) with a task still running");
        assert!(took < grace + SHUTDOWN_MARGIN, "took {took:?}");
        assert!(stuck.unwrap_err().is_cancelled());
        // The process is still healthy: a new runtime on the same engine serves a connection.
        let echoed = within(20, || {
            common::rt::run_on(ENGINE, async {
                use futures::AsyncWriteExt;
                let listener = uvio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                common::spawn_echo(listener);
                let mut conn = uvio::net::TcpStream::connect(addr).await.unwrap();
                conn.write_all(b"still alive").await.unwrap();
                let mut buf = [0u8; 11];
                conn.read_exact(&mut buf).await.unwrap();
                buf
            })
        });
        assert_eq!(&echoed, b"still alive");
    }
}

rt_test! {
    fn shutdown_timeout_lets_tasks_that_finish_in_time_finish() {
        let (report, took, outputs, blocking) = within(30, || {
            let rt = common::rt::runtime(ENGINE);
            let handles: Vec<_> = [30u64, 10, 20]
                .into_iter()
                .map(|ms| {
                    rt.spawn_local(async move {
                        uvio::time::sleep(Duration::from_millis(ms)).await;
                        // A task spawned during the grace period runs too.
                        uvio::spawn_local(uvio::time::sleep(Duration::from_millis(ms))).await.unwrap();
                        ms
                    })
                })
                .collect();
            let blocking = {
                let _in_rt = rt.enter();
                uvio::task::spawn_blocking(|| {
                    std::thread::sleep(Duration::from_millis(20));
                    7
                })
            };
            let start = std::time::Instant::now();
            let report = rt.shutdown_timeout(Duration::from_secs(10));
            let took = start.elapsed();
            let outputs: Vec<_> = handles.into_iter().map(|h| futures::executor::block_on(h).unwrap()).collect();
            (report, took, outputs, futures::executor::block_on(blocking).unwrap())
        });
        assert!(report.is_clean(), "{report:?}");
        assert_eq!(report, uvio::ShutdownReport::default());
        assert_eq!((outputs, blocking), (vec![30, 10, 20], 7));
        assert!(took < Duration::from_secs(5), "returned when everything was done, not at the deadline ({took:?})");
    }
}

rt_test! {
    fn shutdown_timeout_abandons_a_blocking_job_past_the_deadline() {
        let grace = Duration::from_millis(100);
        let (report, took, job) = within(30, move || {
            let rt = common::rt::runtime(ENGINE);
            let job = {
                let _in_rt = rt.enter();
                uvio::task::spawn_blocking(|| {
                    std::thread::sleep(Duration::from_secs(3));
                    1
                })
            };
            let start = std::time::Instant::now();
            let report = rt.shutdown_timeout(grace);
            (report, start.elapsed(), futures::executor::block_on(job))
        });
        assert_eq!((report.tasks_cut(), report.pool_abandoned()), (0, 1), "{report:?}");
        assert!(took < grace + SHUTDOWN_MARGIN, "waited for the pool thread: {took:?}");
        assert!(job.unwrap_err().is_cancelled(), "an abandoned job's handle reports cancellation");
    }
}

rt_test! {
    fn shutdown_background_cuts_everything_at_once() {
        let (report, took) = within(30, || {
            let rt = common::rt::runtime(ENGINE);
            rt.spawn_local(std::future::pending::<()>());
            rt.spawn_local(uvio::time::sleep(Duration::from_secs(60)));
            rt.block_on(uvio::task::yield_now());
            let start = std::time::Instant::now();
            (rt.shutdown_background(), start.elapsed())
        });
        assert_eq!((report.tasks_cut(), report.pool_abandoned()), (2, 0), "{report:?}");
        assert!(took < SHUTDOWN_MARGIN, "took {took:?}");
    }
}
