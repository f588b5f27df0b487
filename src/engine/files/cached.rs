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
//! The caller spends one unit of the task's cooperative budget (see `runtime::coop`) per attempt: a task
//! reading a cached file in a loop never waits, so without it it would keep the thread.

#![allow(unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks)]

use std::cell::Cell;

use crate::uv;

/// The most one attempt copies: what one request moves (the file's buffer), so that one read never holds the
/// loop thread much longer than a request's callback would.
pub(crate) const MOST: usize = 64 * 1024;

/// Whether a `File` still tries cached reads.
#[derive(Debug)]
pub(crate) struct Attempts(Cell<bool>);

impl Attempts {
    /// Attempts for a file; none for one that is not `seekable` (a FIFO, a pipe, a terminal: no page cache).
    pub(crate) fn new(seekable: bool) -> Attempts {
        Attempts(Cell::new(cfg!(target_os = "linux") && seekable))
    }

    /// Whether reads on this `File` still try the page cache first.
    pub(crate) fn enabled(&self) -> bool {
        self.0.get()
    }

    /// Reads at most [`MOST`] bytes at `pos` of `file` into `dst` if the page cache has them: `Some(n)` (0 at
    /// the end of the file), or `None` when the read must become a request.
    pub(crate) fn read_into(&self, file: &uv::fs::File, dst: &mut [u8], pos: u64) -> Option<usize> {
        let len = dst.len().min(MOST);
        #[cfg(target_os = "linux")]
        return self.outcome(|| read_cached(file, &mut dst[..len], pos));
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (file, len, pos); // every read is a request
            None
        }
    }

    /// Like [`read_into`](Attempts::read_into), into the spare capacity of `buf`, whose length grows by the bytes
    /// read.
    pub(crate) fn read_spare(&self, file: &uv::fs::File, buf: &mut Vec<u8>, pos: u64) -> Option<usize> {
        #[cfg(target_os = "linux")]
        return self.outcome(|| read_cached_spare(file, buf, MOST, pos));
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

/// Reads at most `dst.len()` bytes at `pos` if the page cache holds them, never waiting for the disk
/// (`preadv2` with `RWF_NOWAIT`, Linux 4.14): `EAGAIN` if the first byte is not cached; fewer bytes than asked
/// if only the first ones are.
#[cfg(target_os = "linux")]
fn read_cached(file: &uv::fs::File, dst: &mut [u8], pos: u64) -> std::io::Result<usize> {
    // SAFETY: `dst` is initialised memory, writable and exclusively borrowed for the call.
    unsafe { preadv2_nowait(file, dst.as_mut_ptr(), dst.len(), pos) }
}

/// [`read_cached`] into the spare capacity of `buf` (at most `max` bytes of it), whose length grows by the
/// bytes read.
#[cfg(target_os = "linux")]
fn read_cached_spare(file: &uv::fs::File, buf: &mut Vec<u8>, max: usize, pos: u64) -> std::io::Result<usize> {
    let spare = buf.spare_capacity_mut();
    let len = spare.len().min(max);
    // SAFETY: the spare capacity is memory owned by `buf`, writable and exclusively borrowed for the call;
    // `len` does not exceed it.
    let n = unsafe { preadv2_nowait(file, spare.as_mut_ptr().cast(), len, pos)? };
    // SAFETY: the kernel initialised the first `n <= len` bytes of the spare capacity.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// `preadv2(fd, {ptr, len}, pos, RWF_NOWAIT)`.
///
/// # Safety
/// `ptr` must be valid for writes of `len` bytes for the duration of the call.
#[cfg(target_os = "linux")]
unsafe fn preadv2_nowait(file: &uv::fs::File, ptr: *mut u8, len: usize, pos: u64) -> std::io::Result<usize> {
    let offset = libc::off_t::try_from(pos).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    let iov = libc::iovec { iov_base: ptr.cast(), iov_len: len };
    // SAFETY: `iov` describes `len` bytes at `ptr`, writable for the call (the caller's promise), and the
    // kernel writes at most that many; the descriptor is open while `file` (borrowed for the call) lives.
    let n = unsafe { libc::preadv2(file.fd(), &iov, 1, offset, libc::RWF_NOWAIT) };
    usize::try_from(n).map_err(|_| std::io::Error::last_os_error())
}
