//! Reads served straight from the page cache, on the loop thread, without a request (Linux, every engine).
//!
//! A read of data the kernel already has in its page cache is a memory copy: sending it to libuv's thread pool
//! (or through the ring and back) costs more than the copy, and the `AsyncRead` path then copies a second time,
//! out of the file's buffer. So a read first tries `preadv2(RWF_NOWAIT)` into the caller's memory: the kernel
//! either copies what is cached (possibly fewer bytes than asked, as any read may) or fails with `EAGAIN` at once
//! instead of waiting for the disk. Only then does the read become a request, exactly as before. This is the
//! readiness engines' "try the syscall first" for files; io_uring makes the same non-waiting attempt inside the
//! ring (`IOCB_NOWAIT`), so the ring engine gains the round trip, not a different behaviour.
//!
//! A file that cannot say "would wait" (`EOPNOTSUPP`: some file systems, pipes, character devices), a kernel
//! without `preadv2` flags (`ENOSYS`, `EINVAL`: before 4.14) or an offset the file cannot take (`ESPIPE`) stops
//! trying for that `File`. Any other error is left to the request, which reports it the way it always did.
//!
//! Each attempt spends one unit of the task's cooperative budget (see `runtime::coop`): a task reading a cached
//! file in a loop never waits, so without it it would keep the thread.

use std::cell::Cell;

use crate::uv;

/// The most one attempt copies: what one request moves (the file's buffer), so that one read never holds the
/// loop thread much longer than a request's callback would.
pub(super) const MOST: usize = 64 * 1024;

/// Whether a `File` still tries cached reads.
#[derive(Debug)]
pub(super) struct Attempts(Cell<bool>);

impl Attempts {
    /// Attempts for a file; none for one that is not `seekable` (a FIFO, a pipe, a terminal: no page cache).
    pub(super) fn new(seekable: bool) -> Attempts {
        Attempts(Cell::new(cfg!(target_os = "linux") && seekable))
    }

    /// Whether reads on this `File` still try the page cache first.
    pub(super) fn enabled(&self) -> bool {
        self.0.get()
    }

    /// Reads at most [`MOST`] bytes at `pos` of `file` into `dst` if the page cache has them: `Some(n)` (0 at
    /// the end of the file), or `None` when the read must become a request.
    pub(super) fn read_into(&self, file: &uv::fs::File, dst: &mut [u8], pos: u64) -> Option<usize> {
        let len = dst.len().min(MOST);
        #[cfg(target_os = "linux")]
        return self.outcome(|| file.read_cached(&mut dst[..len], pos));
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (file, len, pos); // every read is a request
            None
        }
    }

    /// Like [`read_into`](Attempts::read_into), into the spare capacity of `buf`, whose length grows by the bytes
    /// read.
    pub(super) fn read_spare(&self, file: &uv::fs::File, buf: &mut Vec<u8>, pos: u64) -> Option<usize> {
        #[cfg(target_os = "linux")]
        return self.outcome(|| file.read_cached_spare(buf, MOST, pos));
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (file, buf, pos); // every read is a request
            None
        }
    }

    /// Makes the attempt if this `File` still tries, and sorts its result.
    #[cfg(target_os = "linux")]
    fn outcome(&self, attempt: impl FnOnce() -> std::io::Result<usize>) -> Option<usize> {
        if !self.0.get() {
            return None;
        }
        match attempt() {
            Ok(n) => Some(n),
            Err(e) => {
                if let Some(libc::EOPNOTSUPP | libc::ENOSYS | libc::EINVAL | libc::ESPIPE) = e.raw_os_error() {
                    self.0.set(false);
                }
                None // EAGAIN: not cached now, perhaps next time; another error: the request reports it
            }
        }
    }
}
