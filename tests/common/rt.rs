//! `rt_test!`: one test, run on every engine this machine supports, inside one test binary (in the spirit of
//! tokio's `rt_test!`). Each engine is a `#[test]` of its own, named after the engine, in a module named after
//! the test: `cargo test faults::peer_reset_mid_read` runs it on every engine, `cargo test io_uring` every test
//! on that engine. `UVIO_BACKEND` still forces one engine for a whole run (it overrides what the builder asks
//! for).
//!
//! Two forms:
//! - `rt_test! { async fn name() { … } }`: the body runs on a fresh runtime for the engine (`run_on`).
//! - `rt_test! { fn name() { … } }`: a plain test body that sees `ENGINE` (the engine's name) and
//!   `run(fut)` (`run_on(ENGINE, fut)`), for tests that work before or after the runtime's life (set-up,
//!   checks after it closed), use its output, or build runtimes of their own (`runtime(ENGINE)`).
//!
//! The body is copied once per engine: a `static` inside it is one per engine, so what the engines must share (a
//! lock that runs them in turn) belongs outside the macro.

use std::future::Future;

/// The engines this machine's build knows: libuv everywhere, epoll and io_uring on Linux.
pub const ENGINES: &[&str] = if cfg!(target_os = "linux") { &["libuv", "epoll", "io_uring"] } else { &["libuv"] };

/// The engines a test that runs them one after the other goes through: all of [`ENGINES`], or only the one
/// `UVIO_BACKEND` forces on every runtime (the others would repeat it).
pub fn engines() -> Vec<&'static str> {
    match uvio::Backend::from_env().expect("valid UVIO_BACKEND") {
        Some(forced) if forced != uvio::Backend::Auto => vec![forced.name()],
        _ => ENGINES.to_vec(),
    }
}

/// A builder asking for `engine`.
pub fn builder(engine: &str) -> uvio::Builder {
    uvio::Builder::new().backend(engine.parse().expect("engine name"))
}

/// A fresh runtime for `engine`. An engine this machine lacks (io_uring disabled or too old) fails the build of
/// the runtime: the test then says so and runs on what `Auto` picks, so its body is still checked.
pub fn runtime(engine: &str) -> uvio::Runtime {
    match builder(engine).build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{engine} is not available here ({e}): running on Auto");
            uvio::Runtime::new().expect("runtime")
        }
    }
}

/// Runs `fut` on a fresh runtime for `engine`, then closes the runtime and asserts it closed cleanly (nothing
/// leaked).
pub fn run_on<F: Future>(engine: &str, fut: F) -> F::Output {
    let rt = runtime(engine);
    let out = rt.block_on(fut);
    rt.close().expect("runtime closes cleanly");
    out
}

/// Defines `mod NAME { #[test] fn libuv(); fn epoll(); fn io_uring() }` (the last two on Linux) for an
/// `async fn NAME() { … }` body or a plain `fn NAME() { … }` one (see the module docs).
#[macro_export]
macro_rules! rt_test {
    ($(#[$meta:meta])* async fn $name:ident() $body:block) => {
        $crate::rt_test! {
            $(#[$meta])*
            fn $name() {
                async fn body() $body
                run(body())
            }
        }
    };
    ($(#[$meta:meta])* fn $name:ident() $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            $crate::rt_test!(@engine libuv, $(#[$meta])* $body);
            #[cfg(target_os = "linux")]
            $crate::rt_test!(@engine epoll, $(#[$meta])* $body);
            #[cfg(target_os = "linux")]
            $crate::rt_test!(@engine io_uring, $(#[$meta])* $body);
        }
    };
    (@engine $engine:ident, $(#[$meta:meta])* $body:block) => {
        $(#[$meta])*
        #[test]
        fn $engine() {
            #[allow(dead_code)]
            const ENGINE: &str = stringify!($engine);
            #[allow(dead_code)]
            fn run<F: std::future::Future>(fut: F) -> F::Output {
                $crate::common::rt::run_on(ENGINE, fut)
            }
            $body
        }
    };
}
