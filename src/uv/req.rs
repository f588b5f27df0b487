//! The request machinery: one heap block per in-flight request (`uv_fs_t`, `uv_write_t`, `uv_connect_t`…).
//!
//! [`ReqBox`] holds the libuv request first (so libuv's pointer *is* the box), a loop reference (the loop
//! outlives every request on it), and the Rust state: the user's callback and any memory lent to libuv (write
//! buffers, paths, sockaddrs). The box is allocated by [`submit`] and freed by [`complete`] in libuv's
//! callback, so lent memory stays alive exactly until libuv is done with it, whatever the user drops meanwhile.

use std::ffi::c_int;
use std::rc::Rc;

use libuv_sys2 as sys;

use super::handle::guard;
use super::loop_::LoopInner;
use crate::error::{Error, Result};

/// The heap block behind a request. `raw` must stay the first field.
#[repr(C)]
pub(crate) struct ReqBox<R, S> {
    pub(crate) raw: R,
    pub(crate) loop_: Rc<LoopInner>,
    pub(crate) state: S,
}

/// Allocates a request box and starts the request with `start`, which gets the loop and the request pointer
/// (and may borrow the state in the box, which stays put). If `start` fails, libuv will not call back: the box
/// is freed here and the error returned.
#[inline]
pub(crate) fn submit<R, S>(
    lp: &Rc<LoopInner>,
    state: S,
    start: impl FnOnce(*mut sys::uv_loop_t, *mut ReqBox<R, S>) -> c_int,
) -> Result<()> {
    // Built in place: the libuv request is zeroed where it lies instead of being copied in from the stack.
    let mut boxed = Box::<ReqBox<R, S>>::new_uninit();
    let ptr = boxed.as_mut_ptr();
    // SAFETY: `ptr` points to the uninitialised box; every field is written exactly once before use. All-zero
    // is a valid value for libuv request structs (plain C data), and the start call initialises the request.
    let ptr = unsafe {
        std::ptr::write_bytes(&raw mut (*ptr).raw, 0, 1);
        (&raw mut (*ptr).loop_).write(lp.clone());
        (&raw mut (*ptr).state).write(state);
        Box::into_raw(boxed.assume_init())
    };
    let ret = start(lp.raw(), ptr);
    if ret < 0 {
        // SAFETY: the start call failed, so libuv keeps no reference to the request: the box is ours again.
        drop(unsafe { Box::from_raw(ptr) });
        return Err(Error::from_code(ret));
    }
    Ok(())
}

/// Counts one fs or DNS request in flight on libuv's thread pool while it lives (in the request's state): the
/// last `Loop` to be dropped runs the loop until none is left (see `LoopOwner`'s `Drop`).
pub(crate) struct PoolReq(Rc<LoopInner>);

impl PoolReq {
    pub(crate) fn new(lp: &Rc<LoopInner>) -> PoolReq {
        lp.pool_reqs.set(lp.pool_reqs.get() + 1);
        PoolReq(lp.clone())
    }
}

impl Drop for PoolReq {
    fn drop(&mut self) {
        self.0.pool_reqs.set(self.0.pool_reqs.get() - 1);
    }
}

/// Takes back the box behind `raw` in a completion callback and runs `f` with it under the panic guard.
///
/// # Safety
/// `raw` must be the request pointer of a box made by [`submit`] with the same `R` and `S`, passed by libuv
/// to its completion callback (which runs exactly once).
#[inline]
pub(crate) unsafe fn complete<R, S>(raw: *mut R, f: impl FnOnce(&mut ReqBox<R, S>)) {
    // SAFETY: by the contract above, the box is ours again and libuv is done with it (except uv_fs_t's own
    // allocations, which `f` releases with uv_fs_req_cleanup where needed).
    let mut boxed = unsafe { Box::from_raw(raw.cast::<ReqBox<R, S>>()) };
    let lp = boxed.loop_.clone();
    guard(&lp, move || {
        f(&mut boxed);
        drop(boxed);
    });
}
