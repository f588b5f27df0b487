//! The loop's one read buffer, lent to each stream read in turn (see `stream.rs`): it lives with the loop
//! (`LoopInner::read_buf`) and is used by the stream code, so it has a module of its own that neither depends on.

use std::cell::Cell;
use std::ffi::c_char;
use std::ptr::NonNull;

use libuv_sys2 as sys;

/// Size of the buffer lent to each read.
pub(crate) const READ_BUF_SIZE: usize = 64 * 1024;

/// The loop's read buffer: lent to one read at a time (see the module docs).
#[derive(Default)]
pub(crate) struct SharedReadBuf {
    buf: Cell<Option<NonNull<u8>>>,
    lent: Cell<bool>,
}

impl SharedReadBuf {
    /// A buffer for the next read: the shared one if free, else a fresh one (freed by `give_back`).
    pub(super) fn lend(&self) -> sys::uv_buf_t {
        let base = if self.lent.get() {
            fresh_buf()
        } else {
            let base = match self.buf.get() {
                Some(p) => p,
                None => {
                    let p = fresh_buf();
                    self.buf.set(Some(p));
                    p
                }
            };
            self.lent.set(true);
            base
        };
        sys::uv_buf_t { base: base.as_ptr().cast(), len: READ_BUF_SIZE as _ }
    }

    /// Takes back a buffer that `lend` gave out.
    ///
    /// # Safety
    /// `base` must come from `lend` on this loop and no reference into it may outlive this call.
    pub(super) unsafe fn give_back(&self, base: *mut c_char) {
        if base.is_null() {
            return;
        }
        if self.buf.get().map(NonNull::as_ptr) == Some(base.cast()) {
            self.lent.set(false);
        } else {
            // SAFETY: not the shared buffer, so `lend` made it with `fresh_buf` (a leaked box of READ_BUF_SIZE
            // bytes) and nobody else references it any more.
            drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(base.cast::<u8>(), READ_BUF_SIZE)) });
        }
    }
}

fn fresh_buf() -> NonNull<u8> {
    let b: Box<[u8]> = vec![0u8; READ_BUF_SIZE].into_boxed_slice();
    // SAFETY: Box::into_raw never returns null.
    unsafe { NonNull::new_unchecked(Box::into_raw(b).cast::<u8>()) }
}

impl Drop for SharedReadBuf {
    fn drop(&mut self) {
        if let Some(p) = self.buf.get() {
            // SAFETY: made by `fresh_buf`; the loop is being freed, so no read can be using it.
            drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(p.as_ptr(), READ_BUF_SIZE)) });
        }
    }
}
