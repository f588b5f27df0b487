//! Shared test helpers: every test ends with `close_clean(lp)`, libuv's "no handle leaked" discipline.
#![allow(dead_code)]

use uvio::uv::{Loop, RunMode};

#[cfg(target_os = "linux")]
pub mod ring;

/// Runs the loop until nothing is left, then closes it, asserting no handle or request leaked.
pub fn close_clean(lp: Loop) {
    lp.run(RunMode::Default).expect("final run");
    if let Err(e) = lp.close() {
        panic!("loop did not close cleanly: {e}");
    }
}

/// A fresh temporary directory, removed when the guard drops.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "uvio-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
