//! Only what libuv allows off-thread is `Send`: the loop and every handle are `!Send` and `!Sync`; the one
//! thread-safe type is `AsyncSender`. (The compile-fail doctests in `src/uv/async_.rs` show the errors.)
//! Checked at compile time: this file fails to build if a type gains `Send` or `Sync`.
mod common;

use static_assertions::{assert_impl_all, assert_not_impl_any};
use uvio::uv::*;

assert_not_impl_any!(Loop: Send, Sync);
assert_not_impl_any!(Timer: Send, Sync);
assert_not_impl_any!(Idle: Send, Sync);
assert_not_impl_any!(Prepare: Send, Sync);
assert_not_impl_any!(Check: Send, Sync);
assert_not_impl_any!(Async: Send, Sync);
assert_not_impl_any!(Signal: Send, Sync);
assert_not_impl_any!(Poll: Send, Sync);
assert_not_impl_any!(Tcp: Send, Sync);
assert_not_impl_any!(Pipe: Send, Sync);
assert_not_impl_any!(Tty: Send, Sync);
assert_not_impl_any!(FsEvent: Send, Sync);
assert_not_impl_any!(FsPoll: Send, Sync);
assert_not_impl_any!(Udp: Send, Sync);
assert_not_impl_any!(Process: Send, Sync);
assert_not_impl_any!(WorkHandle: Send, Sync);
assert_not_impl_any!(fs::File: Send, Sync);
assert_not_impl_any!(fs::Dir: Send, Sync);

// Handles can never be duplicated either.
assert_not_impl_any!(Timer: Clone, Copy);
assert_not_impl_any!(Async: Clone, Copy);
assert_not_impl_any!(Idle: Clone, Copy);

// The async layer: everything tied to a runtime's loop stays on its thread...
assert_not_impl_any!(uvio::Runtime: Send, Sync);
assert_not_impl_any!(uvio::net::TcpStream: Send, Sync);
assert_not_impl_any!(uvio::net::TcpListener: Send, Sync);
assert_not_impl_any!(uvio::net::UdpSocket: Send, Sync);
assert_not_impl_any!(uvio::fs::File: Send, Sync);
assert_not_impl_any!(uvio::process::Child: Send, Sync);
assert_not_impl_any!(uvio::time::Sleep: Send, Sync);
#[cfg(unix)]
assert_not_impl_any!(uvio::net::UnixStream: Send, Sync);
// ...except the doors between threads.
assert_impl_all!(uvio::Handle: Send, Sync, Clone);
assert_impl_all!(uvio::task::JoinHandle<u64>: Send, Sync);
assert_impl_all!(uvio::task::JoinHandle<std::cell::Cell<u64>>: Send, Sync);
// A `!Send` output (possible with spawn_local) pins its handle to the task's thread.
assert_not_impl_any!(uvio::task::JoinHandle<std::rc::Rc<u64>>: Send, Sync);
assert_impl_all!(uvio::task::JoinError: Send, Sync);

assert_impl_all!(AsyncSender: Send, Sync, Clone);
assert_impl_all!(uvio::Error: Send, Sync, Copy);

#[test]
fn send_and_sync_are_checked_at_compile_time() {
    // The assertions above are evaluated when this file compiles; this test makes the file show up in the
    // test run and checks that a sender really crosses threads.
    let lp = Loop::new().unwrap();
    let a = Async::new(&lp, |_| {}).unwrap();
    let sender = a.sender();
    std::thread::spawn(move || sender.send().unwrap()).join().unwrap();
    lp.run(RunMode::NoWait).unwrap();
    drop(a);
    common::close_clean(lp);
}
