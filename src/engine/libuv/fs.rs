//! The libuv engine's files: a `uv::fs` request on libuv's thread pool, bridged to a future. Every engine falls
//! back to this for the file operations it does not carry (see `engine::files`).
//!
//! A request owns its paths, buffers and file until its callback runs; the future only waits for the reply.
//! Dropping the future drops the receiving end: the request still completes, and its result is dropped then.

use std::io;

use crate::reply::{reply, Replier, Reply};
use crate::uv::Loop;

/// Starts one libuv request on `lp`: `submit` gets the loop and the replier its callback sends the result to.
/// Fails at once once the runtime is gone: nothing would ever complete the request.
pub(crate) fn start<T: 'static>(
    lp: &Loop,
    submit: impl FnOnce(&Loop, Replier<crate::Result<T>>) -> crate::Result<()>,
) -> io::Result<Reply<crate::Result<T>>> {
    if lp.inner().runtime_gone.get() {
        return Err(crate::error::runtime_gone());
    }
    let (tx, rx) = reply();
    submit(lp, tx)?;
    Ok(rx)
}

/// Waits for the result of a request started with [`start`].
pub(crate) async fn wait<T>(rx: Reply<crate::Result<T>>) -> io::Result<T> {
    Ok(received(rx.await)??)
}

/// Runs one libuv request on `lp` and waits for its result.
pub(crate) async fn request<T: 'static>(
    lp: &Loop,
    submit: impl FnOnce(&Loop, Replier<crate::Result<T>>) -> crate::Result<()>,
) -> io::Result<T> {
    let rx = start(lp, submit)?;
    wait(rx).await
}

/// A reply's value; `None` means the callback was dropped without sending (it panicked).
pub(crate) fn received<T>(value: Option<T>) -> io::Result<T> {
    value.ok_or_else(|| io::Error::other("libuv request ended without a result"))
}

/// The callback that sends a request's result to its future.
pub(crate) fn send<T: 'static>(tx: Replier<T>) -> impl FnOnce(T) + 'static {
    move |value| tx.send(value)
}

/// The callback of a read or write, which gets its buffer back with the result.
pub(crate) fn send2<A: 'static, B: 'static>(tx: Replier<(A, B)>) -> impl FnOnce(A, B) + 'static {
    move |a, b| tx.send((a, b))
}
