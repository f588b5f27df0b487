//! The handle machinery every `uv` handle type is built on.
//!
//! A handle lives in one heap block, [`HandleBox`]: the libuv struct first (so a `*mut uv_timer_t` handed to a
//! callback *is* a pointer to the box), then a strong reference to the loop, then the Rust state (callbacks,
//! buffers). The user's value ([`Owned`]) is one pointer to that box.
//!
//! The close protocol, the heart of soundness:
//! - Dropping an [`Owned`] calls `uv_close`; the box is freed in the close callback, never before, because
//!   libuv still touches the handle until then.
//! - Callbacks run through [`Owned::invoke`]: the closure is *taken out* of its slot while it runs, so the
//!   callback may restart its handle with a new closure, stop it, or drop it; the running closure stays alive
//!   until it returns and is then put back (or dropped, if the handle closed or got a new callback meanwhile).
//! - A callback receives a *view* of its handle (`ManuallyDrop`, never dropped), borrowed for the call only.
//!   Views may see a closing handle (the owner was dropped in this very callback); every operation that libuv
//!   forbids on a closing handle checks for that and returns `EINVAL`.
//! - Panics are caught at the C boundary ([`guard`]), stop the loop, and resume from `Loop::run`. Nothing is
//!   dropped inside the C callback after a catch: later panics' payloads wait for `Loop::run` to drop them.

use std::cell::Cell;
use std::ffi::c_int;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;
use std::rc::Rc;

use libuv_sys2 as sys;

use super::loop_::{Loop, LoopInner};
use crate::error::{Error, Result};

/// A libuv handle struct (`uv_timer_t`, `uv_tcp_t`, …): C layout beginning with `uv_handle_t`'s fields.
///
/// # Safety
/// Implementors must be libuv handle structs, so that a pointer to one is a valid `*mut uv_handle_t`.
pub(crate) unsafe trait RawHandle {}

macro_rules! raw_handles {
    ($($t:ty),*) => { $(
        // SAFETY: every libuv handle type starts with UV_HANDLE_FIELDS (uv.h), so it may be used as a handle.
        unsafe impl RawHandle for $t {}
    )* };
}
raw_handles!(
    sys::uv_timer_t,
    sys::uv_idle_t,
    sys::uv_prepare_t,
    sys::uv_check_t,
    sys::uv_async_t,
    sys::uv_signal_t,
    sys::uv_poll_t,
    sys::uv_tcp_t,
    sys::uv_udp_t,
    sys::uv_pipe_t,
    sys::uv_tty_t,
    sys::uv_process_t,
    sys::uv_fs_event_t,
    sys::uv_fs_poll_t,
    sys::uv_stream_t
);

/// The heap block behind a handle. `raw` must stay the first field (see the module docs).
#[repr(C)]
pub(crate) struct HandleBox<R, S> {
    raw: R,
    loop_: Rc<LoopInner>,
    /// Set when uvio calls `uv_close`: the same answer as `uv_is_closing` without a call into C on hot paths.
    closing: Cell<bool>,
    state: S,
}

/// The owning pointer to a [`HandleBox`]: dropping it closes the handle. `!Send` and `!Sync` (raw pointer).
pub(crate) struct Owned<R: RawHandle, S> {
    ptr: NonNull<HandleBox<R, S>>,
    _not_send: PhantomData<*mut ()>,
}

impl<R: RawHandle, S> Owned<R, S> {
    /// Allocates the box and runs libuv's `init` on it; on failure the box is freed (libuv did not register it).
    pub(crate) fn new(lp: &Loop, state: S, init: impl FnOnce(*mut sys::uv_loop_t, *mut R) -> c_int) -> Result<Self> {
        Self::new_in(lp.inner(), state, init)
    }

    /// [`Owned::new`] from the loop reference another handle holds (accept creates handles this way).
    pub(crate) fn new_in(
        inner: &Rc<LoopInner>,
        state: S,
        init: impl FnOnce(*mut sys::uv_loop_t, *mut R) -> c_int,
    ) -> Result<Self> {
        let boxed = Box::new(HandleBox {
            // SAFETY: libuv handle structs are plain C data for which all-zero is a valid (uninitialised) value;
            // `init` below initialises it.
            raw: unsafe { std::mem::zeroed::<R>() },
            loop_: inner.clone(),
            closing: Cell::new(false),
            state,
        });
        let ptr = Box::into_raw(boxed);
        // SAFETY: `ptr` is a live, exclusively owned box; `raw` is its first field.
        let ret = init(inner.raw(), unsafe { &raw mut (*ptr).raw });
        if ret < 0 {
            // SAFETY: init failed, so libuv holds no reference to the handle: the box is ours to free.
            drop(unsafe { Box::from_raw(ptr) });
            return Err(Error::from_code(ret));
        }
        // SAFETY: Box::into_raw never returns null.
        Ok(Owned { ptr: unsafe { NonNull::new_unchecked(ptr) }, _not_send: PhantomData })
    }

    /// A non-owning view of the handle behind `raw`, for callbacks. Never dropped (`ManuallyDrop`).
    ///
    /// # Safety
    /// `raw` must point into a live `HandleBox<R, S>` created by [`Owned::new`] (libuv passes back the pointer
    /// we registered, and the box lives until the close callback), and the view must not outlive the callback.
    #[inline]
    pub(crate) unsafe fn view<T>(raw: *mut R, wrap: impl FnOnce(Self) -> T) -> ManuallyDrop<T> {
        ManuallyDrop::new(wrap(Owned {
            // SAFETY: non-null by the caller's contract; `raw` is the first field of the repr(C) box.
            ptr: unsafe { NonNull::new_unchecked(raw.cast()) },
            _not_send: PhantomData,
        }))
    }

    /// The libuv struct, for FFI calls.
    #[inline]
    pub(crate) fn raw(&self) -> *mut R {
        self.ptr.as_ptr().cast()
    }

    /// The same pointer as `uv_handle_t`.
    #[inline]
    pub(crate) fn handle(&self) -> *mut sys::uv_handle_t {
        self.ptr.as_ptr().cast()
    }

    /// The same pointer as `uv_stream_t` (meaningful for Tcp, Pipe and Tty only).
    #[inline]
    pub(crate) fn stream(&self) -> *mut sys::uv_stream_t {
        self.ptr.as_ptr().cast()
    }

    /// The Rust state stored beside the handle.
    #[inline]
    pub(crate) fn state(&self) -> &S {
        // SAFETY: the box is alive while an owner or a view exists (see `view`); only shared references are
        // ever made to `state`, which uses Cell/RefCell for mutation.
        unsafe { &(*self.ptr.as_ptr()).state }
    }

    /// The loop this handle belongs to.
    #[inline]
    pub(crate) fn loop_inner(&self) -> &Rc<LoopInner> {
        // SAFETY: as in `state`.
        unsafe { &(*self.ptr.as_ptr()).loop_ }
    }

    /// Whether `uv_close` was called on the handle (only a view can observe this).
    #[inline]
    pub(crate) fn is_closing(&self) -> bool {
        // SAFETY: the box is alive while an owner or a view exists.
        unsafe { (*self.ptr.as_ptr()).closing.get() }
    }

    /// Marks the handle as closing; called right before every `uv_close`-like call uvio makes.
    fn mark_closing(&self) {
        // SAFETY: as in `is_closing`.
        unsafe { (*self.ptr.as_ptr()).closing.set(true) }
    }

    /// `EINVAL` when the handle is closing: libuv forbids most operations on closing handles.
    #[inline]
    pub(crate) fn check_open(&self) -> Result<()> {
        if self.is_closing() {
            Err(Error::EINVAL)
        } else {
            Ok(())
        }
    }

    /// Runs `f` on a borrowed view of the handle's socket (`uv_fileno`): options and addresses read and set on
    /// the socket itself, as the other engines do. The view cannot outlive the call, so it cannot outlive the
    /// handle. `EBADF` if the handle has no socket yet. (On Windows only socket handles have one: not pipes.)
    pub(crate) fn with_socket<T>(
        &self,
        f: impl FnOnce(socket2::SockRef<'_>) -> std::io::Result<T>,
    ) -> std::io::Result<T> {
        self.check_open()?;
        // SAFETY: `uv_os_fd_t` is an integer (Unix) or a pointer (Windows): all-zero is a valid value.
        let mut raw: sys::uv_os_fd_t = unsafe { std::mem::zeroed() };
        // SAFETY: an open handle and a valid out-pointer.
        Error::check(unsafe { sys::uv_fileno(self.handle(), &mut raw) })?;
        #[cfg(unix)]
        // SAFETY: `raw` is libuv's open descriptor; `self` owns it and is borrowed for the whole call, and the
        // borrowed view does not escape `f`.
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(raw) };
        #[cfg(windows)]
        // SAFETY: as above; on Windows libuv's descriptor for a socket handle is its SOCKET.
        let fd = unsafe {
            std::os::windows::io::BorrowedSocket::borrow_raw(raw as usize as std::os::windows::io::RawSocket)
        };
        f(socket2::SockRef::from(&fd))
    }

    /// A duplicate of the handle's socket (`uv_fileno`, then `dup` / `WSADuplicateSocket`), in blocking mode
    /// (the duplicate shares libuv's file description, which libuv made non-blocking). For hand-overs to std:
    /// closing the handle afterwards closes libuv's copy only. `EBADF` if the handle has no socket yet.
    pub(crate) fn dup_socket(&self) -> std::io::Result<socket2::Socket> {
        self.check_open()?;
        // SAFETY: `uv_os_fd_t` is an integer (Unix) or a pointer (Windows): all-zero is a valid value.
        let mut raw: sys::uv_os_fd_t = unsafe { std::mem::zeroed() };
        // SAFETY: an open handle and a valid out-pointer.
        Error::check(unsafe { sys::uv_fileno(self.handle(), &mut raw) })?;
        #[cfg(unix)]
        // SAFETY: `raw` is libuv's open descriptor, borrowed only while `self`, which owns it, is alive.
        let copy: socket2::Socket = unsafe { std::os::fd::BorrowedFd::borrow_raw(raw) }.try_clone_to_owned()?.into();
        #[cfg(windows)]
        // SAFETY: as above; on Windows libuv's descriptor for a socket handle is its SOCKET.
        let copy: socket2::Socket = unsafe {
            std::os::windows::io::BorrowedSocket::borrow_raw(raw as usize as std::os::windows::io::RawSocket)
        }
        .try_clone_to_owned()?
        .into();
        copy.set_nonblocking(false)?;
        Ok(copy)
    }

    /// Closes the handle with a libuv call that takes a close callback (`uv_tcp_close_reset`); the box is freed
    /// in that callback and the later `Drop` does nothing. On failure the handle stays open (and `Drop` closes
    /// it normally).
    pub(crate) fn close_with(&self, close: impl FnOnce(*mut R, sys::uv_close_cb) -> c_int) -> Result<()> {
        Error::check(close(self.raw(), Some(close_box::<R, S>)))?;
        self.mark_closing();
        Ok(())
    }

    /// Runs the closure stored in `slot` (chosen from the state), catching panics. See the module docs.
    #[inline]
    pub(crate) fn invoke<F: ?Sized>(&self, slot: impl FnOnce(&S) -> &Callback<F>, call: impl FnOnce(&mut F)) {
        let slot = slot(self.state());
        let Some(mut f) = slot.take() else { return };
        guard(self.loop_inner(), || call(&mut f));
        // A closure no longer wanted (the handle closed, or the callback installed another) is dropped now,
        // under the panic guard: its destructor may panic, and we are inside a C callback.
        let stale = if self.is_closing() { Some(f) } else { slot.restore(f) };
        if let Some(f) = stale {
            guard(self.loop_inner(), move || drop(f));
        }
    }
}

impl<R: RawHandle, S> Drop for Owned<R, S> {
    fn drop(&mut self) {
        let lp = self.loop_inner().clone();
        if self.is_closing() {
            // Closed by a consuming method (close_reset); the close callback frees the box.
            lp.finish_close_if_orphaned();
            return;
        }
        self.mark_closing();
        // SAFETY: the handle is initialised and not closing; `close_box` frees exactly this box type.
        unsafe { sys::uv_close(self.handle(), Some(close_box::<R, S>)) };
        // With no Loop left to run it, nobody would ever deliver the close callback: do it here. `lp` keeps the
        // loop itself alive across that run.
        lp.finish_close_if_orphaned();
    }
}

/// The close callback: frees the box. Runs inside `uv_run`, whose caller holds the loop alive.
unsafe extern "C" fn close_box<R: RawHandle, S>(handle: *mut sys::uv_handle_t) {
    // SAFETY: libuv passes back the handle we closed; it was allocated by `Owned::new` as this box type and
    // libuv no longer references it after the close callback.
    let boxed = unsafe { Box::from_raw(handle.cast::<HandleBox<R, S>>()) };
    let lp = boxed.loop_.clone();
    guard(&lp, move || drop(boxed));
}

/// A callback slot: the closure is taken out while it runs (see [`Owned::invoke`]).
pub(crate) struct Callback<F: ?Sized>(Cell<Option<Box<F>>>);

impl<F: ?Sized> Default for Callback<F> {
    fn default() -> Self {
        Callback(Cell::new(None))
    }
}

impl<F: ?Sized> Callback<F> {
    /// Installs a closure, dropping the previous one (never the running one: it is out of the slot).
    pub(crate) fn set(&self, f: Box<F>) {
        drop(self.0.replace(Some(f)));
    }

    /// Installs the closure `c`, reusing the previous closure's allocation when its size and alignment match
    /// (the common case: the same closure type started again), so restarting a handle allocates nothing.
    /// `coerce` turns `Box<C>` into `Box<F>` (write it as `|b| b`; the unsizing happens at the call site).
    #[inline]
    pub(crate) fn set_reusing<C>(&self, c: C, coerce: impl FnOnce(Box<C>) -> Box<F>) {
        let new = std::alloc::Layout::new::<C>();
        let old = match self.0.take() {
            Some(old) if std::alloc::Layout::for_value(&*old) == new => old,
            other => {
                drop(other);
                return self.0.set(Some(coerce(Box::new(c))));
            }
        };
        let raw = Box::into_raw(old);
        // SAFETY: `raw` came from a Box whose allocation has exactly C's layout. We drop the old value in place
        // (if that panics the allocation leaks, nothing is dropped twice), then write `c` into the same memory
        // and rebuild a Box<C>: deallocating it later with C's layout matches how it was allocated.
        let reused = unsafe {
            std::ptr::drop_in_place(raw);
            let p = raw.cast::<C>();
            p.write(c);
            Box::from_raw(p)
        };
        self.0.set(Some(coerce(reused)));
    }

    /// Removes the closure (for `stop`): it is dropped here, outside any callback of its own.
    pub(crate) fn clear(&self) {
        drop(self.0.take());
    }

    #[inline]
    pub(crate) fn take(&self) -> Option<Box<F>> {
        self.0.take()
    }

    /// Puts the running closure back unless the callback installed a new one meanwhile; returns the closure
    /// that is no longer wanted, for the caller to drop under the panic guard.
    #[inline]
    fn restore(&self, f: Box<F>) -> Option<Box<F>> {
        match self.0.take() {
            None => {
                self.0.set(Some(f));
                None
            }
            Some(newer) => {
                self.0.set(Some(newer));
                Some(f)
            }
        }
    }
}

/// Runs `f`, catching a panic: the first one is kept for `Loop::run` to resume, and the loop is stopped.
#[inline]
pub(crate) fn guard(lp: &LoopInner, f: impl FnOnce()) {
    if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        lp.store_panic(payload);
    }
}

/// What every handle can do (`uv_handle_t` functions). Implemented by all the handle types.
pub trait Handle: sealed::AsHandle {
    /// Whether the handle is active: what that means depends on the type (a started timer, a reading stream…).
    fn is_active(&self) -> bool {
        // SAFETY: the handle is initialised; its box lives as long as `self`.
        unsafe { sys::uv_is_active(self.as_uv_handle()) != 0 }
    }

    /// Whether the handle is closing (seen only from inside a callback of a handle dropped by that callback).
    fn is_closing(&self) -> bool {
        // SAFETY: as in `is_active`.
        unsafe { sys::uv_is_closing(self.as_uv_handle()) != 0 }
    }

    /// Lets this handle keep the loop alive again (the default). `uv_ref`.
    fn ref_(&self) {
        // SAFETY: as in `is_active`; uv_ref is idempotent.
        unsafe { sys::uv_ref(self.as_uv_handle()) }
    }

    /// Stops this handle from keeping the loop alive: `run` may return while it is still active. `uv_unref`.
    fn unref(&self) {
        // SAFETY: as in `ref_`.
        unsafe { sys::uv_unref(self.as_uv_handle()) }
    }

    /// Whether the handle is referenced. `uv_has_ref`.
    fn has_ref(&self) -> bool {
        // SAFETY: as in `is_active`.
        unsafe { sys::uv_has_ref(self.as_uv_handle()) != 0 }
    }
}

pub(crate) mod sealed {
    /// Gives the generic code the raw handle pointer; not implementable outside the crate.
    pub trait AsHandle {
        /// The `uv_handle_t` pointer (valid while `self` lives).
        fn as_uv_handle(&self) -> *mut libuv_sys2::uv_handle_t;
    }
}

/// Implements [`Handle`] for a wrapper struct whose field `h` is an [`Owned`].
macro_rules! impl_handle {
    ($($t:ty),*) => { $(
        impl $crate::uv::handle::sealed::AsHandle for $t {
            fn as_uv_handle(&self) -> *mut libuv_sys2::uv_handle_t {
                self.h.handle()
            }
        }
        impl $crate::uv::handle::Handle for $t {}
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($t)).field("ptr", &self.h.handle()).finish()
            }
        }
    )* };
}
pub(crate) use impl_handle;
