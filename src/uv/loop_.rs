//! [`Loop`]: one libuv event loop (`uv_loop_t`).
//!
//! Ownership: `Loop` is a cheap, clonable reference (`Rc`) to the loop; handles keep a reference of their own,
//! so the `uv_loop_t` is freed only after the last handle's close callback. When the last `Loop` clone is
//! dropped, the loop runs once more without blocking, to deliver pending close callbacks, and is then closed
//! (`uv_loop_close`) as soon as no handle is left. Handles still alive after that finish their own close when
//! dropped.

use std::any::Any;
use std::cell::Cell;
use std::ffi::c_void;
use std::ptr::NonNull;
use std::rc::Rc;
use std::time::Duration;

use libuv_sys2 as sys;

use crate::error::{Error, Result};

/// How [`Loop::run`] runs the loop (`uv_run_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunMode {
    /// Runs until no active and referenced handle or request is left, or [`Loop::stop`] is called.
    Default,
    /// Polls for I/O once, blocking if there is nothing pending, and runs the due callbacks.
    Once,
    /// Polls for I/O once without blocking.
    NoWait,
}

/// Loop-wide counters (`uv_metrics_t` and `uv_metrics_idle_time`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Metrics {
    /// Iterations of the loop so far.
    pub loop_count: u64,
    /// Events processed by the event provider.
    pub events: u64,
    /// Events that were waiting when the provider was called.
    pub events_waiting: u64,
    /// Time spent blocked in the kernel's event provider; zero unless [`Loop::enable_idle_time_metrics`] ran.
    pub idle_time: Duration,
}

/// A libuv event loop. `!Send`: a loop and its handles belong to one thread.
///
/// ```
/// use std::time::Duration;
/// use uvio::uv::{Loop, RunMode, Timer};
///
/// let lp = Loop::new()?;
/// let timer = Timer::new(&lp)?;
/// timer.start(Duration::from_millis(1), None, |t| println!("fired, active: {}", uvio::uv::Handle::is_active(t)))?;
/// lp.run(RunMode::Default)?;
/// drop(timer);
/// lp.close().map_err(|e| e.error())?;
/// # Ok::<(), uvio::Error>(())
/// ```
#[derive(Clone)]
pub struct Loop {
    owner: Rc<LoopOwner>,
}

/// The last `Loop` clone's drop closes the loop.
struct LoopOwner {
    inner: Rc<LoopInner>,
}

/// What handles share with the loop: the `uv_loop_t` and the panic slot.
pub(crate) struct LoopInner {
    raw: NonNull<sys::uv_loop_t>,
    running: Cell<bool>,
    owner_alive: Cell<bool>,
    closed: Cell<bool>,
    /// A loop someone else created and runs ([`Loop::from_raw`]): uvio never runs, closes or frees it.
    borrowed: bool,
    panic: Cell<Option<Box<dyn Any + Send>>>,
    /// Payloads of later panics in the same run: not resumed, and not dropped inside the C callback that caught
    /// them either (their destructors may panic, which would abort there); dropped once `uv_run` returns.
    extra_panics: Cell<Vec<Box<dyn Any + Send>>>,
    /// Whether `panic` holds a payload (a plain flag keeps `run`'s fast path to one load).
    panicked: Cell<bool>,
    /// The loop's one read buffer, lent to each stream read in turn (see `stream.rs`).
    pub(crate) read_buf: super::read_buf::SharedReadBuf,
    /// Work requests in flight (see `work.rs`), finished when the last `Loop` is dropped.
    pub(crate) work: super::work::InFlight,
    /// fs and DNS requests in flight on libuv's thread pool ([`super::req::PoolReq`]): the last `Loop` to drop
    /// waits for them, so their boxes (and the loop they hold) are freed.
    pub(crate) pool_reqs: Cell<usize>,
    /// Set when the runtime on this loop shuts down: its async objects (files) fail instead of submitting
    /// requests nobody will complete.
    pub(crate) runtime_gone: Cell<bool>,
}

impl Loop {
    /// Creates and initialises a new loop (`uv_loop_init`).
    ///
    /// `ENOTSUP` if the libuv loaded at run time is older than the one uvio's bindings were generated from, or
    /// of another major version (possible only with the `system-libuv` feature, when the shared library found
    /// at run time is not the one found at build time).
    pub fn new() -> Result<Loop> {
        if !super::linked_version_fits() {
            return Err(Error::ENOTSUP);
        }
        // SAFETY: uv_loop_t is plain C data; zeroed memory is a valid input for uv_loop_init.
        let raw = Box::into_raw(Box::new(unsafe { std::mem::zeroed::<sys::uv_loop_t>() }));
        // SAFETY: `raw` is a fresh, exclusively owned allocation.
        let ret = unsafe { sys::uv_loop_init(raw) };
        if ret < 0 {
            // SAFETY: init failed, libuv keeps no reference to the memory.
            drop(unsafe { Box::from_raw(raw) });
            return Err(Error::from_code(ret));
        }
        let inner = Rc::new(LoopInner {
            // SAFETY: Box::into_raw is never null.
            raw: unsafe { NonNull::new_unchecked(raw) },
            running: Cell::new(false),
            owner_alive: Cell::new(true),
            closed: Cell::new(false),
            borrowed: false,
            panic: Cell::new(None),
            extra_panics: Cell::new(Vec::new()),
            panicked: Cell::new(false),
            read_buf: Default::default(),
            work: Default::default(),
            pool_reqs: Cell::new(0),
            runtime_gone: Cell::new(false),
        });
        Ok(Loop { owner: Rc::new(LoopOwner { inner }) })
    }

    #[inline]
    /// Borrows a loop that the host application created and runs itself (`uv_run` in C, another binding…), so
    /// that uvio handles — and a [`Runtime`](crate::Runtime) with its tasks — live on it.
    ///
    /// uvio then never runs, closes or frees that loop: [`run`](Loop::run) and [`close`](Loop::close) return
    /// `EPERM`, and close callbacks of dropped uvio handles are delivered by the host's next `uv_run`. A panic
    /// in a uvio callback stops the host's `uv_run` (`uv_stop`) and waits in the loop: call
    /// [`resume_panic`](Loop::resume_panic) after `uv_run` returns to propagate it.
    ///
    /// # Safety
    /// - `raw` points to a loop initialised with `uv_loop_init` of **the same libuv** uvio links, the very same
    ///   copy in the process. A host that links libuv itself needs uvio's `system-libuv` feature, so both use
    ///   the one shared system libuv; with the default `vendored-libuv`, uvio has its own static copy, and a loop
    ///   from any other copy (the host's) is unsound to borrow: two copies have separate globals, thread pools
    ///   and signal handling, and possibly different struct layouts. The pointer stays valid until every uvio
    ///   object created on it is dropped *and* the host has run the loop once more afterwards, so that their
    ///   close callbacks are delivered (`uv_loop_close` returns `EBUSY` until then).
    /// - The loop is used, and every uvio object created on it is used and dropped, only on the thread that
    ///   runs it.
    /// - The host does not call `uv_walk`-and-close on uvio's handles nor change their `data` fields.
    pub unsafe fn from_raw(raw: *mut sys::uv_loop_t) -> Loop {
        let inner = Rc::new(LoopInner {
            raw: NonNull::new(raw).expect("Loop::from_raw: null loop pointer"),
            running: Cell::new(false),
            owner_alive: Cell::new(true),
            closed: Cell::new(false),
            borrowed: true,
            panic: Cell::new(None),
            extra_panics: Cell::new(Vec::new()),
            panicked: Cell::new(false),
            read_buf: Default::default(),
            work: Default::default(),
            pool_reqs: Cell::new(0),
            runtime_gone: Cell::new(false),
        });
        Loop { owner: Rc::new(LoopOwner { inner }) }
    }

    /// Whether this loop was borrowed with [`Loop::from_raw`].
    pub fn is_borrowed(&self) -> bool {
        self.inner().borrowed
    }

    /// Resumes a panic caught in a uvio callback, if one is waiting — for loops run by a host
    /// ([`Loop::from_raw`]); [`run`](Loop::run) does this by itself.
    /// Only the first panic since the last resume is resumed; any later ones are dropped here.
    pub fn resume_panic(&self) {
        let inner = self.inner();
        if inner.panicked.get() {
            inner.resume_stored_panic();
        }
    }

    pub(crate) fn inner(&self) -> &Rc<LoopInner> {
        &self.owner.inner
    }

    /// The raw `uv_loop_t`, for interoperating with C code that takes a loop. uvio keeps ownership.
    pub fn as_raw(&self) -> *mut sys::uv_loop_t {
        self.inner().raw()
    }

    /// Runs the loop (`uv_run`). Returns whether active handles or requests remain (`true`: run again later).
    /// `EPERM` on a loop borrowed with [`Loop::from_raw`]: its host runs it.
    ///
    /// A panic inside a callback stops the loop and is resumed here, on the caller's thread, once the callbacks
    /// already due in that iteration have run. If several panic, the first is resumed and the others' payloads
    /// are dropped here (a panic of their destructors is caught and discarded). Calling `run` from inside a
    /// callback of the same loop is refused with `EBUSY` (libuv is not reentrant).
    #[inline]
    pub fn run(&self, mode: RunMode) -> Result<bool> {
        let inner = self.inner();
        if inner.borrowed {
            return Err(Error::EPERM);
        }
        if inner.running.replace(true) {
            return Err(Error::EBUSY);
        }
        let mode = match mode {
            RunMode::Default => sys::uv_run_mode_UV_RUN_DEFAULT,
            RunMode::Once => sys::uv_run_mode_UV_RUN_ONCE,
            RunMode::NoWait => sys::uv_run_mode_UV_RUN_NOWAIT,
        };
        // SAFETY: the loop is initialised and not running (checked above); `self` keeps it alive throughout.
        let alive = unsafe { sys::uv_run(inner.raw(), mode) };
        inner.running.set(false);
        if inner.panicked.get() {
            inner.resume_stored_panic();
        }
        Ok(alive != 0)
    }

    /// Asks a running loop to return as soon as possible (`uv_stop`), after the current iteration.
    pub fn stop(&self) {
        // SAFETY: the loop is initialised; uv_stop only sets a flag.
        unsafe { sys::uv_stop(self.as_raw()) }
    }

    /// Whether the loop has active and referenced handles or requests (`uv_loop_alive`).
    pub fn alive(&self) -> bool {
        // SAFETY: the loop is initialised.
        unsafe { sys::uv_loop_alive(self.as_raw()) != 0 }
    }

    /// The loop's cached "now" in milliseconds, updated at the start of each iteration (`uv_now`).
    pub fn now(&self) -> u64 {
        // SAFETY: the loop is initialised.
        unsafe { sys::uv_now(self.as_raw()) }
    }

    /// Refreshes the cached "now" (`uv_update_time`).
    pub fn update_time(&self) {
        // SAFETY: the loop is initialised.
        unsafe { sys::uv_update_time(self.as_raw()) }
    }

    /// The file descriptor of the loop's kernel event provider (epoll/kqueue), to embed the loop in another
    /// one; `None` on Windows (`uv_backend_fd`).
    pub fn backend_fd(&self) -> Option<i32> {
        // SAFETY: the loop is initialised.
        let fd = unsafe { sys::uv_backend_fd(self.as_raw()) };
        (fd >= 0).then_some(fd)
    }

    /// How long the next poll would block: `None` means indefinitely (`uv_backend_timeout`). `Some(0)` also
    /// when nothing is active (`run` would return at once), and on a fresh loop until its first run.
    pub fn backend_timeout(&self) -> Option<Duration> {
        // SAFETY: the loop is initialised.
        let ms = unsafe { sys::uv_backend_timeout(self.as_raw()) };
        (ms >= 0).then(|| Duration::from_millis(ms as u64))
    }

    /// Loop counters (`uv_metrics_info`, `uv_metrics_idle_time`).
    pub fn metrics(&self) -> Metrics {
        // SAFETY: uv_metrics_t is plain C data, zero is valid; the loop is initialised.
        let mut m: sys::uv_metrics_t = unsafe { std::mem::zeroed() };
        // SAFETY: `m` is a valid out-pointer; uv_metrics_info cannot fail for a valid loop.
        unsafe { sys::uv_metrics_info(self.as_raw(), &mut m) };
        // SAFETY: the loop is initialised.
        let idle = unsafe { sys::uv_metrics_idle_time(self.as_raw()) };
        Metrics {
            loop_count: m.loop_count,
            events: m.events,
            events_waiting: m.events_waiting,
            idle_time: Duration::from_nanos(idle),
        }
    }

    /// Starts accounting the time spent idle in the event provider (`UV_METRICS_IDLE_TIME`); see
    /// [`Metrics::idle_time`]. Call before the first `run`.
    pub fn enable_idle_time_metrics(&self) -> Result<()> {
        // SAFETY: the loop is initialised; this option takes no extra argument.
        let ret = unsafe { sys::uv_loop_configure(self.as_raw(), sys::uv_loop_option_UV_METRICS_IDLE_TIME) };
        Error::check(ret).map(drop)
    }

    /// Blocks `SIGPROF` while polling, so profilers do not wake the loop (`UV_LOOP_BLOCK_SIGNAL`). Returns
    /// `ENOSYS` on Windows.
    pub fn block_sigprof(&self) -> Result<()> {
        #[cfg(unix)]
        {
            use std::ffi::c_int;
            // SAFETY: the loop is initialised; the option takes one int, the signal number.
            let ret = unsafe {
                sys::uv_loop_configure(self.as_raw(), sys::uv_loop_option_UV_LOOP_BLOCK_SIGNAL, sys::SIGPROF as c_int)
            };
            Error::check(ret).map(drop)
        }
        #[cfg(not(unix))]
        Err(Error::ENOSYS)
    }

    /// The number of open handles on the loop, closing ones excluded (counted with `uv_walk`). uvio's own
    /// internal handles are not counted: libuv's are not walked.
    pub fn handle_count(&self) -> usize {
        unsafe extern "C" fn count(handle: *mut sys::uv_handle_t, arg: *mut c_void) {
            // SAFETY: uv_walk passes live handles and our `arg`, a `*mut usize` on the caller's stack.
            unsafe {
                if sys::uv_is_closing(handle) == 0 {
                    *arg.cast::<usize>() += 1;
                }
            }
        }
        let mut n = 0usize;
        // SAFETY: the loop is initialised; `count` only reads the handle and writes `n`, alive for the call.
        unsafe { sys::uv_walk(self.as_raw(), Some(count), (&raw mut n).cast()) };
        n
    }

    /// Closes the loop (`uv_loop_close`) after delivering pending close callbacks. If handles or requests are
    /// still open, nothing is closed and the error gives the loop back with their count (libuv itself would
    /// return `EBUSY`; debug builds of libuv do not assert here either).
    pub fn close(self) -> std::result::Result<(), LoopCloseError> {
        let inner = self.inner().clone();
        if inner.borrowed {
            return Err(LoopCloseError { lp: self, live_handles: 0, error: Error::EPERM });
        }
        if inner.running.get() {
            return Err(LoopCloseError { lp: self, live_handles: 0, error: Error::EBUSY });
        }
        inner.flush_closes();
        let live = self.handle_count();
        // Other clones of this Loop still own it; any handle also holds a reference.
        if Rc::strong_count(&self.owner) > 1 || live > 0 {
            return Err(LoopCloseError { lp: self, live_handles: live, error: Error::EBUSY });
        }
        // SAFETY: the loop is initialised, not running, and has no user handles left.
        let ret = unsafe { sys::uv_loop_close(inner.raw()) };
        if ret < 0 {
            return Err(LoopCloseError { lp: self, live_handles: live, error: Error::from_code(ret) });
        }
        inner.closed.set(true);
        Ok(())
    }
}

impl std::fmt::Debug for Loop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loop").field("raw", &self.as_raw()).finish()
    }
}

/// [`Loop::close`] failed: handles or requests are still open. The loop is given back.
pub struct LoopCloseError {
    lp: Loop,
    live_handles: usize,
    error: Error,
}

impl LoopCloseError {
    /// How many handles were still open (closing ones excluded).
    pub fn live_handles(&self) -> usize {
        self.live_handles
    }
    /// The libuv error (`EBUSY`).
    pub fn error(&self) -> Error {
        self.error
    }
    /// Takes the loop back, to close the remaining handles and try again.
    pub fn into_loop(self) -> Loop {
        self.lp
    }
}

impl std::fmt::Debug for LoopCloseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LoopCloseError({}, {} live handle(s))", self.error.name(), self.live_handles)
    }
}

impl std::fmt::Display for LoopCloseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot close the loop: {} handle(s) still open ({})", self.live_handles, self.error)
    }
}

impl std::error::Error for LoopCloseError {}

impl Drop for LoopOwner {
    fn drop(&mut self) {
        self.inner.owner_alive.set(false);
        self.inner.flush_closes();
        super::work::finish_in_flight(&self.inner);
        // fs and DNS requests already on the pool cannot be cancelled: their completions hold the loop, so wait
        // for them (as tokio's runtime waits for its blocking tasks). Running, closed or borrowed: leak instead.
        while self.inner.pool_reqs.get() > 0 && self.inner.run_once_unowned() {}
    }
}

impl LoopInner {
    #[inline]
    pub(crate) fn raw(&self) -> *mut sys::uv_loop_t {
        self.raw.as_ptr()
    }

    /// Keeps the first panic caught in a callback and stops the loop so that `run` can resume it. Runs inside
    /// C callbacks, so it drops nothing: a later payload is set aside for `run` to drop.
    pub(crate) fn store_panic(&self, payload: Box<dyn Any + Send>) {
        match self.panic.take() {
            None => self.panic.set(Some(payload)),
            Some(first) => {
                self.panic.set(Some(first));
                let mut extra = self.extra_panics.take();
                extra.push(payload);
                self.extra_panics.set(extra);
            }
        }
        self.panicked.set(true);
        // SAFETY: the loop is initialised; uv_stop only sets a flag.
        unsafe { sys::uv_stop(self.raw()) }
    }

    /// Outside any C callback: drops the payloads of the later panics, then resumes the first.
    fn resume_stored_panic(&self) {
        self.panicked.set(false);
        for payload in self.extra_panics.take() {
            drop_payload(payload);
        }
        if let Some(payload) = self.panic.take() {
            std::panic::resume_unwind(payload);
        }
    }

    /// Drops every stored panic without resuming it (nobody is left to resume it).
    fn discard_panics(&self) {
        self.panicked.set(false);
        for payload in self.extra_panics.take().into_iter().chain(self.panic.take()) {
            drop_payload(payload);
        }
    }

    /// One non-blocking iteration to deliver pending close callbacks, unless the loop is already running.
    fn flush_closes(&self) {
        if self.running.get() || self.closed.get() || self.borrowed {
            return;
        }
        self.running.set(true);
        // SAFETY: the loop is initialised and not running; the caller holds a reference keeping it alive.
        unsafe { sys::uv_run(self.raw(), sys::uv_run_mode_UV_RUN_NOWAIT) };
        self.running.set(false);
        // Nobody is left to resume a panic raised while dropping closures here: discard it.
        self.discard_panics();
    }

    /// Work, fs and DNS requests on libuv's thread pool that have not completed on the loop thread yet.
    pub(crate) fn pool_in_flight(&self) -> usize {
        self.work.len() + self.pool_reqs.get()
    }

    /// One blocking iteration (`UV_RUN_ONCE`) for a loop nobody else will run (its last `Loop` is being dropped),
    /// unless it is running, closed or borrowed (then `false`). Panics in callbacks are discarded, as in
    /// `flush_closes`.
    pub(crate) fn run_once_unowned(&self) -> bool {
        if self.running.get() || self.closed.get() || self.borrowed {
            return false;
        }
        self.running.set(true);
        // SAFETY: the loop is initialised and not running; the caller holds a reference keeping it alive.
        unsafe { sys::uv_run(self.raw(), sys::uv_run_mode_UV_RUN_ONCE) };
        self.running.set(false);
        drop(self.panic.take());
        self.panicked.set(false);
        true
    }

    /// Called after `uv_close` when the handle's owner dropped it: with no `Loop` left, deliver the close now.
    pub(crate) fn finish_close_if_orphaned(&self) {
        if !self.owner_alive.get() {
            self.flush_closes();
        }
    }
}

impl Drop for LoopInner {
    fn drop(&mut self) {
        // Panics never resumed (a host's loop whose host never called `resume_panic`).
        self.discard_panics();
        if self.borrowed {
            return; // the host's loop: the host closes and frees it
        }
        if !self.closed.get() {
            // SAFETY: no handle references the loop any more (each held an Rc); it is not running.
            let ret = unsafe { sys::uv_loop_close(self.raw()) };
            if ret < 0 {
                // Requests still in flight reference the loop: leaking it is the only sound choice.
                return;
            }
        }
        // SAFETY: allocated by Box in Loop::new; closed, so libuv no longer references it.
        drop(unsafe { Box::from_raw(self.raw.as_ptr()) });
    }
}

/// Drops a panic payload that will not be resumed, on a Rust stack (never inside a C callback). Its
/// destructor may panic, with a payload that may do the same: each such panic is caught and its payload
/// dropped in turn; after a few rounds the rest is leaked rather than chased forever.
pub(crate) fn drop_payload(mut payload: Box<dyn Any + Send>) {
    for _ in 0..4 {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(payload))) {
            Ok(()) => return,
            Err(next) => payload = next,
        }
    }
    std::mem::forget(payload);
}

/// A monotonic clock in nanoseconds from an arbitrary point (`uv_hrtime`).
pub fn hrtime() -> u64 {
    // SAFETY: uv_hrtime has no preconditions.
    unsafe { sys::uv_hrtime() }
}
