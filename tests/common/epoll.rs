//! Helpers for the test binaries that ask for the epoll engine themselves (Linux).

use uvio::{Backend, Builder};

/// Runs `fut` on a fresh epoll runtime, then closes it, asserting nothing was left open. Skipped (`None`) when
/// `UVIO_BACKEND` forces another engine on the whole process.
pub fn run<F: std::future::Future>(fut: F) -> Option<F::Output> {
    match Backend::from_env().unwrap() {
        Some(b) if b != Backend::Epoll => {
            eprintln!("skipped: UVIO_BACKEND={b} overrides the explicit epoll engine");
            return None;
        }
        _ => {}
    }
    let rt = Builder::new().backend(Backend::Epoll).build().unwrap();
    assert_eq!(rt.backend(), Backend::Epoll);
    let out = rt.block_on(fut);
    rt.close().expect("runtime closes cleanly");
    Some(out)
}
