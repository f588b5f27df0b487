//! uvio on a loop owned by a "host" written with raw libuv calls: the host creates the loop, runs it with
//! `uv_run` itself, and closes it; uvio tasks, sleeps and TCP run inside the host's `uv_run`.
#![allow(unsafe_code)]

mod common;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use libuv_sys2 as sys;
use uvio::net::{TcpListener, TcpStream};
use uvio::uv::Loop;
use uvio::Runtime;

/// The host's side: a raw uv_loop_t with a raw timer of its own.
struct Host {
    raw: *mut sys::uv_loop_t,
}

impl Host {
    fn new() -> Host {
        // SAFETY: a fresh zeroed uv_loop_t, initialised by uv_loop_init.
        unsafe {
            let raw = Box::into_raw(Box::new(std::mem::zeroed::<sys::uv_loop_t>()));
            assert_eq!(sys::uv_loop_init(raw), 0);
            Host { raw }
        }
    }

    fn run(&self) -> i32 {
        // SAFETY: the loop is initialised and run on this thread only.
        unsafe { sys::uv_run(self.raw, sys::uv_run_mode_UV_RUN_DEFAULT) }
    }

    fn close(self) {
        // SAFETY: as above; every uvio object on the loop was dropped and the loop ran once since.
        unsafe {
            sys::uv_run(self.raw, sys::uv_run_mode_UV_RUN_NOWAIT);
            assert_eq!(sys::uv_loop_close(self.raw), 0, "host loop still has handles or requests");
            drop(Box::from_raw(self.raw));
        }
    }
}

/// A runtime for `engine` on the host's loop (the engine's own poller, if any, is driven from that loop).
fn runtime_on(host: &Host, engine: &str) -> Runtime {
    // SAFETY: the host's loop is initialised with the same libuv, used on this thread only, and outlives the
    // runtime (closed after it is dropped and the loop has run again).
    let lp = unsafe { Loop::from_raw(host.raw) };
    common::rt::builder(engine).build_on(lp).unwrap()
}

rt_test! {
    fn tasks_run_inside_the_hosts_uv_run() {
        let host = Host::new();
        let rt = runtime_on(&host, ENGINE);
        let out = Rc::new(Cell::new(0));
        let o = out.clone();
        rt.spawn_local(async move {
            uvio::time::sleep(Duration::from_millis(5)).await;
            let inner = uvio::spawn_local(async { 20 });
            o.set(inner.await.unwrap() + 1);
        });
        assert_eq!(out.get(), 0, "nothing runs before the host runs its loop");
        host.run(); // returns when the task is done: nothing else keeps the loop alive
        assert_eq!(out.get(), 21);
        drop(rt);
        host.close();
    }
}

rt_test! {
    fn tcp_echo_on_the_hosts_loop() {
        let host = Host::new();
        let rt = runtime_on(&host, ENGINE);
        let got = Rc::new(RefCell::new(Vec::new()));
        let g = got.clone();
        rt.spawn_local(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server = uvio::spawn_local(async move {
                let (mut conn, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 11];
                conn.read_exact(&mut buf).await.unwrap();
                conn.write_all(&buf).await.unwrap();
            });
            let mut c = TcpStream::connect(addr).await.unwrap();
            c.write_all(b"hello, host").await.unwrap();
            let mut back = vec![0u8; 11];
            c.read_exact(&mut back).await.unwrap();
            *g.borrow_mut() = back;
            server.await.unwrap();
        });
        host.run();
        assert_eq!(&got.borrow()[..], b"hello, host");
        rt.close().unwrap();
        host.close();
    }
}

rt_test! {
    fn host_handles_and_uvio_tasks_share_the_loop() {
        static FIRED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        unsafe extern "C" fn on_host_timer(_: *mut sys::uv_timer_t) {
            FIRED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        let host = Host::new();
        // SAFETY: a raw timer owned by the host, closed before the loop.
        let timer = unsafe {
            let t = Box::into_raw(Box::new(std::mem::zeroed::<sys::uv_timer_t>()));
            sys::uv_timer_init(host.raw, t);
            sys::uv_timer_start(t, Some(on_host_timer), 10, 0);
            t
        };
        let rt = runtime_on(&host, ENGINE);
        let done = Rc::new(Cell::new(false));
        let d = done.clone();
        rt.spawn_local(async move {
            uvio::time::sleep(Duration::from_millis(20)).await;
            d.set(true);
        });
        host.run();
        assert!(done.get());
        assert_eq!(FIRED.load(std::sync::atomic::Ordering::SeqCst), 1);
        drop(rt);
        // SAFETY: the host closes its own timer and frees it after the close callback ran (in `close`'s run).
        unsafe {
            sys::uv_close(timer.cast(), None);
            sys::uv_run(host.raw, sys::uv_run_mode_UV_RUN_NOWAIT);
            drop(Box::from_raw(timer));
        }
        host.close();
    }
}

#[test]
fn borrowed_loop_refuses_run_and_close() {
    let host = Host::new();
    // SAFETY: as in runtime_on.
    let lp = unsafe { Loop::from_raw(host.raw) };
    assert!(lp.is_borrowed());
    assert_eq!(lp.run(uvio::uv::RunMode::NoWait).unwrap_err(), uvio::Error::EPERM);
    assert_eq!(lp.clone().close().unwrap_err().error(), uvio::Error::EPERM);
    drop(lp);
    host.close();
}

#[test]
fn panic_in_a_uvio_callback_stops_the_host_and_can_be_resumed() {
    let host = Host::new();
    // SAFETY: as in runtime_on.
    let lp = unsafe { Loop::from_raw(host.raw) };
    let t = uvio::uv::Timer::new(&lp).unwrap();
    t.start(Duration::from_millis(1), None, |_| panic!("boom on the host loop")).unwrap();
    host.run();
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lp.resume_panic())).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"boom on the host loop"));
    drop(t);
    drop(lp);
    host.close();
}

thread_local! {
    /// Panics seen on this thread (counted by the hook `count_panics` installs).
    static PANICS: Cell<usize> = const { Cell::new(0) };
}

/// Counts every panic in `PANICS` (of the thread that panics), then reports it as before.
fn count_panics() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.with(|p| p.set(p.get() + 1));
            previous(info)
        }));
    });
}

rt_test! {
    fn a_runtime_dropped_from_inside_its_own_task_shuts_down_after_the_poll() {
        count_panics();
        let host = Host::new();
        let rt = Rc::new(RefCell::new(Some(runtime_on(&host, ENGINE))));
        let slot = rt.clone();
        let other = rt.borrow().as_ref().unwrap().spawn_local(std::future::pending::<()>());
        let (reached, dropped) = (Rc::new(Cell::new(false)), Rc::new(Cell::new(false)));
        let (r, d) = (reached.clone(), dropped.clone());
        let me = rt.borrow().as_ref().unwrap().spawn_local(async move {
            struct SetOnDrop(Rc<Cell<bool>>);
            impl Drop for SetOnDrop {
                fn drop(&mut self) {
                    self.0.set(true);
                }
            }
            let _dropped = SetOnDrop(d);
            uvio::task::yield_now().await;
            let runtime = slot.borrow_mut().take();
            drop(runtime); // the runtime this task runs on
            r.set(true); // the poll goes on
            uvio::task::yield_now().await; // and returns Pending: the task is dropped then
            unreachable!("a task of a runtime that is gone was polled");
        });
        host.run();
        assert_eq!(PANICS.with(Cell::get), 0, "something panicked in the host's uv_run");
        assert!(reached.get() && dropped.get());
        assert!(rt.borrow().is_none());
        assert!(futures::executor::block_on(other).unwrap_err().is_cancelled());
        assert!(futures::executor::block_on(me).unwrap_err().is_cancelled());
        host.close();
    }
}
