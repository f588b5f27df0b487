//! Helpers for the test binaries that ask for the io_uring engine themselves (Linux).

use std::sync::{Mutex, MutexGuard, PoisonError};

use uvio::{Backend, Builder, Runtime};

/// One per test binary (each compiles this module on its own).
static ENV: Mutex<()> = Mutex::new(());

/// Serialises the tests of this binary and clears `UVIO_BACKEND`, which would override the engine they ask for.
pub fn env_lock() -> MutexGuard<'static, ()> {
    let guard = ENV.lock().unwrap_or_else(PoisonError::into_inner);
    std::env::remove_var("UVIO_BACKEND");
    guard
}

/// A runtime on the io_uring engine, or `None` (with a note) where this machine has no io_uring.
pub fn ring_runtime() -> Option<Runtime> {
    match Builder::new().backend(Backend::IoUring).build() {
        Ok(rt) => {
            assert_eq!(rt.backend(), Backend::IoUring);
            Some(rt)
        }
        Err(e) => {
            eprintln!("note: skipping, io_uring is not available here: {e}");
            None
        }
    }
}

/// Runs `fut` on an io_uring runtime, then closes it, asserting nothing was left open.
pub fn run<F: std::future::Future<Output = ()>>(fut: F) {
    let _env = env_lock();
    let Some(rt) = ring_runtime() else { return };
    rt.block_on(fut);
    rt.close().expect("runtime closes cleanly");
}

/// `len` bytes of a pattern that makes misplaced offsets visible.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ (i / 251) as u8).collect()
}
