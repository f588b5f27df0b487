//! `rt_test!`: one async test body, run on every engine this machine supports, inside one test binary (in the
//! spirit of tokio's `rt_test!`). Each engine is a `#[test]` of its own, named after the engine, in a module
//! named after the test: `cargo test faults::peer_reset_mid_read` runs it on every engine,
//! `cargo test io_uring` every test on that engine. `UVIO_BACKEND` still forces one engine for a whole run
//! (it overrides what the builder asks for).

use std::future::Future;

/// Runs `fut` on a fresh runtime for `engine`, then closes the runtime and asserts it closed cleanly (nothing
/// leaked). An engine this machine lacks (io_uring disabled or too old) fails the build of the runtime: the test
/// then says so and runs on what `Auto` picks, so the body is still checked.
pub fn run_on<F: Future>(engine: &str, fut: F) -> F::Output {
    let rt = match uvio::Builder::new().backend(engine.parse().expect("engine name")).build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{engine} is not available here ({e}): running on Auto");
            uvio::Runtime::new().expect("runtime")
        }
    };
    let out = rt.block_on(fut);
    rt.close().expect("runtime closes cleanly");
    out
}

/// Defines `mod NAME { #[test] fn libuv(); fn epoll(); fn io_uring() }` (the last two on Linux) for an
/// `async fn NAME() { … }` body.
#[macro_export]
macro_rules! rt_test {
    ($(#[$meta:meta])* async fn $name:ident() $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body() $body

            $(#[$meta])*
            #[test]
            fn libuv() {
                $crate::common::rt::run_on("libuv", body())
            }

            $(#[$meta])*
            #[cfg(target_os = "linux")]
            #[test]
            fn epoll() {
                $crate::common::rt::run_on("epoll", body())
            }

            $(#[$meta])*
            #[cfg(target_os = "linux")]
            #[test]
            fn io_uring() {
                $crate::common::rt::run_on("io_uring", body())
            }
        }
    };
}
