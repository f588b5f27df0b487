//! `#[uvio::main]` and `#[uvio::test]` used as a crate that depends on uvio uses them (the compile errors are
//! `compile_fail` doc tests on `uvio::main` and `uvio::test`).

mod common;

use std::cell::RefCell;
use std::io;
use std::time::Duration;

use uvio::{Backend, Handle};

/// The engine the current task runs on.
fn current_engine() -> &'static str {
    Handle::current().backend().name()
}

// --- #[uvio::main] ------------------------------------------------------------------------------------------

/// A `main`-style function: `?` converts into the declared error type, the output comes back to the caller.
#[uvio::main]
async fn app() -> io::Result<u32> {
    uvio::time::sleep(Duration::from_millis(1)).await;
    let task = uvio::spawn_local(async { 21 });
    let half: u32 = task.await.map_err(io::Error::other)?;
    Ok(half * 2)
}

#[uvio::main]
async fn app_failing() -> io::Result<()> {
    let _missing = uvio::fs::File::open("/nonexistent/uvio-macros-test").await?;
    Ok(())
}

#[uvio::main(backend = "libuv")]
async fn app_on_libuv() -> &'static str {
    current_engine()
}

#[test]
fn main_runs_the_body_and_returns_its_output() {
    assert_eq!(app().unwrap(), 42);
}

#[test]
fn main_returns_the_bodys_error() {
    assert_eq!(app_failing().unwrap_err().kind(), io::ErrorKind::NotFound);
}

#[test]
fn main_with_a_backend_runs_on_it() {
    // UVIO_BACKEND overrides what the attribute asks for, as for every runtime.
    match Backend::from_env().unwrap() {
        Some(forced) if forced != Backend::Auto => assert_eq!(app_on_libuv(), forced.name()),
        _ => assert_eq!(app_on_libuv(), "libuv"),
    }
}

// --- #[uvio::test] ------------------------------------------------------------------------------------------

#[uvio::test]
async fn test_runs_on_a_runtime() {
    let task = uvio::spawn_local(async {
        uvio::time::sleep(Duration::from_millis(1)).await;
        7
    });
    assert_eq!(task.await.unwrap(), 7);
}

#[uvio::test]
async fn test_may_return_ok() -> io::Result<()> {
    let listener = uvio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (client, accepted) = futures::join!(uvio::net::TcpStream::connect(addr), listener.accept());
    assert_eq!(client?.local_addr()?, accepted?.1);
    Ok(())
}

#[uvio::test]
#[should_panic(expected = "returned an error")]
async fn test_fails_on_err() -> io::Result<()> {
    uvio::fs::File::open("/nonexistent/uvio-macros-test").await?;
    Ok(())
}

#[uvio::test]
#[should_panic(expected = "boom")]
async fn test_panics_through() {
    panic!("boom");
}

/// Asserts that a test pinned to `engine` runs on it, unless `UVIO_BACKEND` forces another (then the macro
/// skips the test before the body runs).
fn assert_pinned(engine: &str) {
    assert_eq!(current_engine(), engine);
}

#[uvio::test(backend = "libuv")]
async fn test_on_libuv() {
    assert_pinned("libuv");
}

#[uvio::test(backend = "epoll")]
async fn test_on_epoll() {
    assert_pinned("epoll");
}

#[uvio::test(backend = "io_uring")]
async fn test_on_io_uring() -> io::Result<()> {
    assert_pinned("io_uring");
    let dir = std::env::temp_dir().join(format!("uvio-macros-{}", std::process::id()));
    uvio::fs::write(&dir, b"ring").await?;
    let read = uvio::fs::read(&dir).await;
    uvio::fs::remove_file(&dir).await?;
    assert_eq!(read?, b"ring");
    Ok(())
}

#[uvio::test(backend = "auto")]
async fn test_on_auto() {
    assert_ne!(Handle::current().backend(), Backend::Auto, "Auto resolves to an engine");
}

// --- #[uvio::test(all_engines)] -----------------------------------------------------------------------------

thread_local! {
    /// The engines `once_per_engine`'s body ran on, on this thread (each test runs on a thread of its own, and
    /// `all_engines` runs its engines one after the other on the test's thread).
    static RAN_ON: RefCell<Vec<&'static str>> = const { RefCell::new(Vec::new()) };
}

#[uvio::test(all_engines)]
async fn once_per_engine() {
    uvio::time::sleep(Duration::from_millis(1)).await;
    RAN_ON.with(|ran| ran.borrow_mut().push(current_engine()));
}

/// The engines of `common::rt::engines()` whose runtime builds here (io_uring may be refused by the kernel).
fn available_engines() -> Vec<&'static str> {
    common::rt::engines().into_iter().filter(|engine| common::rt::builder(engine).build().is_ok()).collect()
}

#[test]
fn all_engines_runs_the_body_once_per_available_engine_in_order() {
    RAN_ON.with(|ran| ran.borrow_mut().clear());
    once_per_engine(); // the generated test function, called directly
    let ran = RAN_ON.with(|ran| ran.borrow().clone());
    assert_eq!(ran, available_engines());
    assert!(!ran.is_empty());
}

#[uvio::test(all_engines)]
async fn all_engines_with_result() -> io::Result<()> {
    let listener = uvio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (client, accepted) = futures::join!(uvio::net::TcpStream::connect(addr), listener.accept());
    assert_eq!(client?.local_addr()?, accepted?.1);
    Ok(())
}

#[uvio::test(all_engines)]
#[should_panic(expected = "failed on the")]
async fn fails_on_the_last_engine() {
    let last = *available_engines().last().unwrap();
    assert_ne!(current_engine(), last, "the assertion message");
}

#[test]
fn all_engines_names_the_engine_that_failed() {
    let last = *available_engines().last().unwrap();
    let payload = std::panic::catch_unwind(fails_on_the_last_engine).unwrap_err();
    let message = payload.downcast_ref::<String>().expect("a formatted message");
    assert!(message.contains(&format!("failed on the {last} engine")), "{message}");
    assert!(message.contains("the assertion message"), "{message}");
    assert!(message.contains("fails_on_the_last_engine"), "{message}");
}

#[uvio::test(all_engines)]
#[should_panic(expected = "it returned an error")]
async fn all_engines_reports_an_err() -> io::Result<()> {
    uvio::fs::File::open("/nonexistent/uvio-macros-test").await?;
    Ok(())
}

#[test]
fn all_engines_names_the_engine_whose_body_returned_err() {
    let first = available_engines()[0];
    let payload = std::panic::catch_unwind(all_engines_reports_an_err).unwrap_err();
    let message = payload.downcast_ref::<String>().expect("a formatted message");
    assert!(message.contains(&format!("failed on the {first} engine: it returned an error")), "{message}");
    assert!(message.contains("NotFound"), "{message}");
}

// --- crate = "…" ------------------------------------------------------------------------------------------

// A crate that renamed its uvio dependency reaches it by another name: the expansion must use that one.
extern crate uvio as renamed;

/// uvio re-exported from a module, reached by a path of several segments.
mod reexport {
    pub use uvio as inner;
}

#[renamed::main(crate = "renamed")]
async fn app_through_a_renamed_crate() -> u32 {
    renamed::spawn_local(async { 7 }).await.unwrap()
}

#[renamed::main(crate = "crate::reexport::inner", backend = "libuv")]
async fn app_through_a_reexport() -> &'static str {
    current_engine()
}

#[test]
fn main_with_crate_reaches_uvio_by_that_path() {
    assert_eq!(app_through_a_renamed_crate(), 7);
    let engine = app_through_a_reexport();
    if std::env::var("UVIO_BACKEND").is_err() {
        assert_eq!(engine, "libuv");
    }
}

#[renamed::test(crate = "renamed")]
async fn test_with_crate_runs_on_a_runtime() {
    renamed::time::sleep(Duration::from_millis(1)).await;
}

thread_local! {
    static RENAMED_RUNS: RefCell<Vec<&'static str>> = const { RefCell::new(Vec::new()) };
}

#[renamed::test(all_engines, crate = "renamed")]
async fn all_engines_with_crate() {
    RENAMED_RUNS.with(|runs| runs.borrow_mut().push(current_engine()));
}

#[test]
fn all_engines_with_crate_runs_once_per_engine() {
    RENAMED_RUNS.with(|runs| runs.borrow_mut().clear());
    all_engines_with_crate();
    assert_eq!(RENAMED_RUNS.with(|runs| runs.borrow().clone()), available_engines());
}
