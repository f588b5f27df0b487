//! What `#[uvio::main]` and `#[uvio::test]` expand to call. Hidden: public only so that the expansion, in the
//! user's crate, can reach it as `::uvio::__macro_support`; not a stable interface.

use std::any::Any;
use std::fmt::Debug;
use std::future::Future;
use std::io::Write;
use std::panic::{self, AssertUnwindSafe};

use crate::{Backend, Builder, Runtime};

/// `#[uvio::main]`: runs `fut` on a new runtime asking for the engine named `backend` (`"auto"` without the
/// argument; `UVIO_BACKEND` overrides either, as for every runtime).
///
/// # Panics
/// If the runtime cannot be built (an explicit engine this machine lacks, descriptors exhausted): `main` has
/// nowhere else to report it before the program's own code runs.
pub fn block_on_main<F: Future>(backend: &str, fut: F) -> F::Output {
    let rt = backend
        .parse::<Backend>()
        .and_then(|engine| Builder::new().backend(engine).build())
        .unwrap_or_else(|e| panic!("#[uvio::main]: cannot build a uvio runtime ({backend} engine): {e}"));
    rt.block_on(fut)
}

/// What a test body may return: `()`, or a `Result` whose `Err` fails the test.
pub trait TestOutcome {
    /// The failure to report, if the body failed.
    fn failure(self) -> Option<String>;
}

impl TestOutcome for () {
    fn failure(self) -> Option<String> {
        None
    }
}

impl<T, E: Debug> TestOutcome for Result<T, E> {
    fn failure(self) -> Option<String> {
        self.err().map(|e| format!("{e:?}"))
    }
}

/// `#[uvio::test]` and `#[uvio::test(backend = "…")]`: runs the body once on a new runtime for `backend`, or
/// skips the test with a note where that engine is not available.
pub fn run_test<F, Fut>(test: &str, backend: &str, body: F)
where
    F: FnOnce() -> Fut,
    Fut: Future,
    Fut::Output: TestOutcome,
{
    let requested = match backend.parse::<Backend>() {
        Ok(requested) => requested,
        Err(_) => return skip(test, backend, "this OS does not have it"),
    };
    let Some(rt) = test_runtime(test, requested) else { return };
    if let Some(error) = rt.block_on(body()).failure() {
        panic!("{test} returned an error: {error}");
    }
}

/// `#[uvio::test(all_engines)]`: runs the body once per engine this machine has, in order (libuv, then on Linux
/// epoll and io_uring), each on a new runtime; only the engine `UVIO_BACKEND` names, when it names one. A
/// failure panics naming the engine it happened on (after the original panic's own report).
pub fn run_each_engine<F, Fut>(test: &str, mut body: F)
where
    F: FnMut() -> Fut,
    Fut: Future,
    Fut::Output: TestOutcome,
{
    for engine in engines_to_test() {
        let Some(rt) = test_runtime(test, engine) else { continue };
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| rt.block_on(body())));
        drop(rt);
        match outcome {
            Ok(out) => {
                if let Some(error) = out.failure() {
                    panic!("{test} failed on the {engine} engine: it returned an error: {error}");
                }
            }
            Err(payload) => panic!("{test} failed on the {engine} engine: {}", panic_message(&*payload)),
        }
    }
}

/// Every engine this build has, or only the one `UVIO_BACKEND` forces on every runtime (the others would
/// repeat it). An invalid `UVIO_BACKEND` falls through: building the first runtime then fails with its error.
fn engines_to_test() -> Vec<Backend> {
    match Backend::from_env() {
        Ok(Some(forced)) if forced != Backend::Auto => vec![forced],
        _ => vec![
            Backend::Libuv,
            #[cfg(target_os = "linux")]
            Backend::Epoll,
            #[cfg(target_os = "linux")]
            Backend::IoUring,
        ],
    }
}

/// A runtime on `requested`, or `None` after a note when the test cannot run on it here:
/// - the engine is missing at run time (io_uring refused by the kernel, seccomp or
///   `kernel.io_uring_disabled`): the build for that engine fails while a runtime on `Auto` still builds —
///   if `Auto` fails too, the failure is not about the engine and the test fails with it;
/// - `UVIO_BACKEND` forces another engine on every runtime.
fn test_runtime(test: &str, requested: Backend) -> Option<Runtime> {
    match Builder::new().backend(requested).build() {
        Ok(rt) if requested == Backend::Auto || rt.backend() == requested => Some(rt),
        Ok(rt) => {
            skip(test, requested.name(), &format!("UVIO_BACKEND forces the {} engine", rt.backend()));
            None
        }
        Err(e) if requested != Backend::Auto && Runtime::new().is_ok() => {
            skip(test, requested.name(), &e.to_string());
            None
        }
        Err(e) => panic!("{test}: cannot build a uvio runtime ({requested} engine): {e}"),
    }
}

/// Says that `test` did not run on `engine`, on the process's stderr itself: the test harness captures what
/// `eprintln!` prints (and shows it only for failures), but not direct writes, so the note is always seen.
fn skip(test: &str, engine: &str, why: &str) {
    let _ = writeln!(std::io::stderr(), "note: {test} skipped on the {engine} engine: {why}");
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(message) = payload.downcast_ref::<&str>() {
        message
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message
    } else {
        "(a panic with a non-string payload)"
    }
}
