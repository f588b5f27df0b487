//! [`File`] and [`Dir`]: owned descriptors that close themselves, synchronously, when dropped.
//!
//! Both are an `Rc` around the descriptor. Every request on a file or directory holds a clone until its callback
//! has run, so the descriptor stays open (and its number is not reused by another open) while libuv's thread pool
//! still uses it; dropping the last clone closes it. The asynchronous [`close`](super::close) and
//! [`closedir`](super::closedir) need the only clone: with requests in flight they refuse with `EBUSY`.

use std::rc::Rc;

use libuv_sys2 as sys;

use super::op;
use crate::uv::loop_::{Loop, LoopInner};

/// An open file: an owned libuv file descriptor (`uv_file`, a C runtime descriptor on Windows).
///
/// Dropping a `File` closes it *synchronously* on the calling thread (`uv_fs_close` without callback), ignoring
/// errors; if requests on it are still in flight, the close happens when the last of them completes. Use
/// [`close`](super::close) or [`sync::close`](super::sync::close) to close without blocking or to see the error.
///
/// ```
/// use uvio::uv::{fs, Loop};
///
/// let lp = Loop::new()?;
/// let path = std::env::temp_dir().join(format!("uvio-doc-file-{}", std::process::id()));
/// let file = fs::sync::open(&lp, &path, fs::OpenFlags::RDWR | fs::OpenFlags::CREAT, 0o600)?;
/// fs::write(&lp, &file, b"hello".to_vec(), Some(0), |res, _buf| assert_eq!(res, Ok(5)))?;
/// lp.run(uvio::uv::RunMode::Default)?;
/// let mut buf = [0u8; 8];
/// assert_eq!(fs::sync::read(&lp, &file, &mut buf, Some(0))?, 5);
/// assert_eq!(&buf[..5], b"hello");
/// drop(file); // closes the descriptor
/// fs::sync::unlink(&lp, &path)?;
/// lp.close().map_err(|e| e.error())?;
/// # Ok::<(), uvio::Error>(())
/// ```
pub struct File {
    pub(super) inner: Rc<FileInner>,
}

/// The descriptor and the loop its synchronous close runs on. `fd < 0` means "nothing to close".
pub(super) struct FileInner {
    pub(super) fd: sys::uv_file,
    lp: Rc<LoopInner>,
    /// Whether the file takes offsets (see [`File::is_seekable`]), once asked.
    seekable: std::cell::Cell<Option<bool>>,
}

impl File {
    pub(super) fn new(lp: &Rc<LoopInner>, fd: sys::uv_file) -> File {
        File { inner: Rc::new(FileInner { fd, lp: lp.clone(), seekable: std::cell::Cell::new(None) }) }
    }

    /// Takes ownership of a raw descriptor; dropping the `File` will close it. A negative `fd` is never closed.
    ///
    /// # Safety
    /// `fd` must be an open descriptor (a C runtime one on Windows) that nothing else owns or will close.
    pub unsafe fn from_raw(lp: &Loop, fd: sys::uv_file) -> File {
        File::new(lp.inner(), fd)
    }

    /// Whether reads and writes may name an offset (`pread`/`pwrite`): `false` for a FIFO, a pipe, a socket or
    /// a terminal, whose `lseek` fails with `ESPIPE`; their reads and writes must use the current position
    /// (offset `None`). Asked once, with `lseek(fd, 0, SEEK_CUR)`, which moves nothing and never waits for a
    /// device or the network (unlike `fstat` on some file systems). Always `true` on Windows.
    pub fn is_seekable(&self) -> bool {
        if let Some(seekable) = self.inner.seekable.get() {
            return seekable;
        }
        let seekable = self.ask_seekable();
        self.inner.seekable.set(Some(seekable));
        seekable
    }

    #[cfg(unix)]
    fn ask_seekable(&self) -> bool {
        // SAFETY: lseek on a descriptor this `File` owns (or `-1`, which fails with `EBADF`); a zero move from the
        // current position changes nothing.
        let ret = unsafe { libc::lseek(self.fd(), 0, libc::SEEK_CUR) };
        !(ret < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESPIPE))
    }

    #[cfg(not(unix))]
    fn ask_seekable(&self) -> bool {
        true
    }

    /// The raw descriptor, still owned by this `File`.
    pub fn fd(&self) -> sys::uv_file {
        self.inner.fd
    }

    /// Gives up ownership: returns the descriptor without closing it. Refused (the `File` comes back) while
    /// requests on it are in flight, since they still use the descriptor.
    pub fn into_raw(self) -> Result<sys::uv_file, File> {
        match Rc::try_unwrap(self.inner) {
            Ok(mut inner) => Ok(inner.take_fd()),
            Err(inner) => Err(File { inner }),
        }
    }

    /// The number of requests on this file still in flight.
    pub fn pending_requests(&self) -> usize {
        Rc::strong_count(&self.inner) - 1
    }

    /// The descriptor, released from this `File` for a close request; `EBUSY` while other requests use it (the
    /// `File` is then dropped, so it closes when they complete).
    pub(super) fn take_for_close(self) -> crate::Result<sys::uv_file> {
        self.into_raw().map_err(|_| crate::Error::EBUSY)
    }
}

impl FileInner {
    fn take_fd(&mut self) -> sys::uv_file {
        std::mem::replace(&mut self.fd, -1)
    }
}

impl Drop for FileInner {
    fn drop(&mut self) {
        if self.fd >= 0 {
            // Errors cannot be reported from drop; `close` reports them.
            let _ = op::close(self.take_fd()).run(&self.lp);
        }
    }
}

impl std::fmt::Debug for File {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("File").field("fd", &self.inner.fd).finish()
    }
}

/// An open directory stream from [`opendir`](super::opendir) (`uv_dir_t`), read in batches with
/// [`readdir`](super::readdir).
///
/// Dropping a `Dir` closes it *synchronously* (`uv_fs_closedir` without callback); if a `readdir` is in flight,
/// the close happens when it completes. [`closedir`](super::closedir) closes without blocking.
pub struct Dir {
    pub(super) inner: Rc<DirInner>,
}

/// The libuv directory stream (allocated by libuv, freed by its closedir) and the loop for the synchronous close.
pub(super) struct DirInner {
    pub(super) raw: *mut sys::uv_dir_t,
    lp: Rc<LoopInner>,
}

impl Dir {
    pub(super) fn new(lp: &Rc<LoopInner>, raw: *mut sys::uv_dir_t) -> Dir {
        Dir { inner: Rc::new(DirInner { raw, lp: lp.clone() }) }
    }

    /// Whether a `readdir` on this directory is in flight (a second one would be refused with `EBUSY`).
    pub fn is_busy(&self) -> bool {
        Rc::strong_count(&self.inner) > 1
    }

    /// The stream, released from this `Dir` for a closedir request; `EBUSY` while a `readdir` is in flight.
    pub(super) fn take_for_close(self) -> crate::Result<*mut sys::uv_dir_t> {
        match Rc::try_unwrap(self.inner) {
            Ok(mut inner) => Ok(std::mem::replace(&mut inner.raw, std::ptr::null_mut())),
            Err(_) => Err(crate::Error::EBUSY),
        }
    }
}

impl Drop for DirInner {
    fn drop(&mut self) {
        if !self.raw.is_null() {
            let raw = std::mem::replace(&mut self.raw, std::ptr::null_mut());
            // libuv frees the stream whatever the outcome; an error cannot be reported from drop.
            let _ = op::closedir(raw).run(&self.lp);
        }
    }
}

impl std::fmt::Debug for Dir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dir").field("raw", &self.inner.raw).finish()
    }
}
