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
