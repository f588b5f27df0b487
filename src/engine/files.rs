//! The files role: every file operation of `fs` is dispatched here, once, over the engines.
//!
//! Each operation is asked of the runtime's engine first. An engine that does not carry it answers "not
//! handled" (today: any engine but io_uring, or an io_uring kernel without the operation's opcode, see
//! `Driver::supports`), and the operation falls back to a libuv fs request on libuv's thread pool
//! ([`super::libuv::fs`]), as libuv's own `uv__iou_fs_*` fall back to `uv__fs_work`. Both give the same results
//! and errors for the same inputs. What no engine but libuv carries (copyfile, realpath, chmod, directories, …)
//! goes straight to the pool with [`Files::pool`].
//!
//! Path metadata (`stat`, `lstat`) not carried by the ring goes to the path pool ([`pool`], [`path_ops`]) on
//! Linux and macOS rather than to libuv's: a few process-wide threads fed and drained in batches, which cost
//! the loop thread far less per call than libuv's request hand-offs; libuv's pool stays the fallback.
//!
//! A [`Files`] is what `fs` hands down: the runtime's loop and, on io_uring, a weak handle to its ring (a `File`
//! keeps one, and must not keep the engine alive). The reads and writes are plain generic calls: no boxing
//! beyond what the engine's request itself needs.
//!
//! Reads of cached data try the page cache first on every engine on Linux ([`cached`]).

use std::io;
use std::path::Path;
use std::rc::Rc;

use super::libuv::fs::request;
/// The libuv request bridge, for the callers of [`Files::pool`] and [`Files::start_pool`].
pub(crate) use super::libuv::fs::{received, send, wait};
#[cfg(target_os = "linux")]
use super::Driver;
use super::Engine;
use crate::reply::{Replier, Reply};
use crate::uv::{self, Loop};

pub(crate) mod cached;
#[cfg(any(target_os = "linux", target_os = "macos"))]
pub(crate) mod path_ops;
#[cfg(any(target_os = "linux", target_os = "macos"))]
mod pool;

/// The file operations the io_uring engine may carry, each behind its own opcode.
#[cfg(target_os = "linux")]
use super::io_uring::Op;

/// The most one `read_at` asks of the io_uring engine (whose spare capacity is zero-filled first).
#[cfg(target_os = "linux")]
const RING_READ_MAX: usize = 8 << 20;

/// The engine a runtime's files run on: its loop (libuv's requests) and, on io_uring, its ring.
#[derive(Clone)]
pub(crate) struct Files {
    lp: Loop,
    /// The io_uring driver, when the engine is io_uring (weak: files must not keep it alive; once it is gone,
    /// its operations fall back to libuv, whose requests then fail because the runtime is gone).
    #[cfg(target_os = "linux")]
    ring: std::rc::Weak<Driver>,
    /// The runtime's path operations on the path pool (weak, as the ring), where the OS has them.
    #[cfg(any(target_os = "linux", target_os = "macos"))]
    paths: std::rc::Weak<path_ops::PathOps>,
}

impl Files {
    /// The files of `engine`, whose runtime runs `lp`.
    pub(crate) fn new(engine: &Engine, lp: &Loop) -> Files {
        #[cfg(not(target_os = "linux"))]
        let _ = engine; // only libuv carries files here
        Files {
            lp: lp.clone(),
            #[cfg(target_os = "linux")]
            ring: engine.ring().map_or_else(std::rc::Weak::new, Rc::downgrade),
            #[cfg(any(target_os = "linux", target_os = "macos"))]
            paths: match ring_has_statx(engine) {
                true => std::rc::Weak::new(), // the ring carries the path operations the pool would
                false => engine.path_ops().map_or_else(std::rc::Weak::new, Rc::downgrade),
            },
        }
    }

    /// A file of this runtime's loop around an open OS file (`fs::File::from_std`, `try_clone`): a descriptor
    /// on Unix, a handle on Windows (which then gets a C runtime descriptor, and fails if none is left).
    pub(crate) fn adopt(&self, file: uv::fs::OsFile) -> io::Result<uv::fs::File> {
        uv::fs::File::from_os_file(&self.lp, file)
    }

    /// Whether the runtime is gone: nothing would complete a request any more.
    pub(crate) fn runtime_gone(&self) -> bool {
        self.lp.inner().runtime_gone.get()
    }

    /// The engine's driver if it carries `op`, else `None` ("not handled": libuv does it).
    #[cfg(target_os = "linux")]
    fn engine(&self, op: Op) -> Option<Rc<Driver>> {
        self.ring.upgrade().filter(|driver| driver.supports(op))
    }

    /// Runs one libuv request (on libuv's thread pool) and waits for its result: for the operations only libuv
    /// carries.
    pub(crate) async fn pool<T: 'static>(
        &self,
        submit: impl FnOnce(&Loop, Replier<crate::Result<T>>) -> crate::Result<()>,
    ) -> io::Result<T> {
        request(&self.lp, submit).await
    }

    /// Starts one libuv request now; wait for it with [`wait`]. For callers that must not hold a borrow across
    /// the wait.
    pub(crate) fn start_pool<T: 'static>(
        &self,
        submit: impl FnOnce(&Loop, Replier<crate::Result<T>>) -> crate::Result<()>,
    ) -> io::Result<Reply<crate::Result<T>>> {
        super::libuv::fs::start(&self.lp, submit)
    }

    /// Reads into the spare capacity of `buf` at `offset` (the kernel's position for `None`) on libuv's thread
    /// pool, whatever the engine (the whole-file helpers: their reads are few and large); `buf` comes back with
    /// its length grown by the count. On error the buffer is dropped.
    pub(crate) async fn pool_read(
        &self,
        file: &uv::fs::File,
        buf: Vec<u8>,
        offset: Option<u64>,
    ) -> io::Result<(usize, Vec<u8>)> {
        let (tx, rx) = crate::reply::reply();
        uv::fs::read(&self.lp, file, buf, offset, super::libuv::fs::send2(tx))?;
        let (res, buf) = received(rx.await)?;
        Ok((res?, buf))
    }

    /// Writes `buf` at `offset` (the kernel's position for `None`) once, on libuv's thread pool (see
    /// [`Self::pool_read`]); the count may be short. On error the buffer is dropped.
    pub(crate) async fn pool_write(
        &self,
        file: &uv::fs::File,
        buf: Vec<u8>,
        offset: Option<u64>,
    ) -> io::Result<(usize, Vec<u8>)> {
        let (tx, rx) = crate::reply::reply();
        uv::fs::write(&self.lp, file, buf, offset, super::libuv::fs::send2(tx))?;
        let (res, buf) = received(rx.await)?;
        Ok((res?, buf))
    }

    // ---- Paths ----

    /// Opens `path` (`openat` with `O_CLOEXEC`, as libuv opens).
    pub(crate) async fn open(&self, path: &Path, flags: uv::fs::OpenFlags, mode: u32) -> io::Result<uv::fs::File> {
        #[cfg(target_os = "linux")]
        if let Some(driver) = self.engine(Op::OpenAt) {
            return ring_open(driver, path, flags, mode).await;
        }
        request(&self.lp, |lp, tx| uv::fs::open(lp, path, flags, mode, send(tx))).await
    }

    /// Closes `file` without blocking the loop.
    pub(crate) async fn close(&self, file: uv::fs::File) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        if let Some(driver) = self.engine(Op::Close) {
            return ring(driver, |d, tx| d.close(file, send(tx))).await;
        }
        request(&self.lp, |lp, tx| uv::fs::close(lp, file, send(tx))).await
    }

    /// Renames `from` to `to` (`rename(2)`).
    pub(crate) async fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        if let Some(driver) = self.engine(Op::RenameAt) {
            return ring(driver, |d, tx| d.rename(from, to, send(tx))).await;
        }
        request(&self.lp, |lp, tx| uv::fs::rename(lp, from, to, send(tx))).await
    }

    /// Removes a file or symbolic link (`unlink(2)`), or an empty directory if `dir` (`rmdir(2)`).
    pub(crate) async fn unlink(&self, path: &Path, dir: bool) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        if let Some(driver) = self.engine(Op::UnlinkAt) {
            return ring(driver, |d, tx| d.unlink(path, dir, send(tx))).await;
        }
        match dir {
            false => request(&self.lp, |lp, tx| uv::fs::unlink(lp, path, send(tx))).await,
            true => request(&self.lp, |lp, tx| uv::fs::rmdir(lp, path, send(tx))).await,
        }
    }

    /// Creates a directory with the permission bits `mode` before the umask (`mkdir(2)`).
    pub(crate) async fn mkdir(&self, path: &Path, mode: u32) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        if let Some(driver) = self.engine(Op::MkDirAt) {
            return ring(driver, |d, tx| d.mkdir(path, mode, send(tx))).await;
        }
        request(&self.lp, |lp, tx| uv::fs::mkdir(lp, path, mode, send(tx))).await
    }

    /// Creates a hard link `link` to `original` (`link(2)`).
    pub(crate) async fn link(&self, original: &Path, link: &Path) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        if let Some(driver) = self.engine(Op::LinkAt) {
            return ring(driver, |d, tx| d.link(original, link, send(tx))).await;
        }
        request(&self.lp, |lp, tx| uv::fs::link(lp, original, link, send(tx))).await
    }

    /// Creates a symbolic link `link` to `original` (`symlink(2)`). The flags only matter on Windows.
    pub(crate) async fn symlink(&self, original: &Path, link: &Path, flags: uv::fs::SymlinkFlags) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        if let Some(driver) = self.engine(Op::SymlinkAt) {
            return ring(driver, |d, tx| d.symlink(original, link, send(tx))).await;
        }
        request(&self.lp, |lp, tx| uv::fs::symlink(lp, original, link, flags, send(tx))).await
    }

    /// The metadata of `path`, following a final symbolic link if `follow` (`stat` / `lstat`; `statx`).
    pub(crate) async fn stat(&self, path: &Path, follow: bool) -> io::Result<uv::fs::Stat> {
        // The ring first: there statx (run by the kernel's io-wq threads) measured cheaper per call than the
        // path pool.
        #[cfg(target_os = "linux")]
        if let Some(driver) = self.engine(Op::Statx) {
            return ring(driver, |d, tx| d.statx(path, follow, send(tx))).await;
        }
        #[cfg(any(target_os = "linux", target_os = "macos"))]
        if let Some(started) = self.paths.upgrade().and_then(|paths| paths.stat(path, follow)) {
            return started?.await;
        }
        match follow {
            true => request(&self.lp, |lp, tx| uv::fs::stat(lp, path, send(tx))).await,
            false => request(&self.lp, |lp, tx| uv::fs::lstat(lp, path, send(tx))).await,
        }
    }

    // ---- Open files ----

    /// The metadata of an open file (`fstat`; `statx` with `AT_EMPTY_PATH`).
    pub(crate) async fn fstat(&self, file: &Rc<uv::fs::File>) -> io::Result<uv::fs::Stat> {
        #[cfg(target_os = "linux")]
        if let Some(driver) = self.engine(Op::Statx) {
            return ring(driver, |d, tx| d.fstatx(file, send(tx))).await;
        }
        request(&self.lp, |lp, tx| uv::fs::fstat(lp, file, send(tx))).await
    }

    /// Starts an fstat of `file` whose result goes to `done`: for a `File`'s seek, which polls for it.
    pub(crate) fn start_fstat(
        &self,
        file: &Rc<uv::fs::File>,
        done: impl FnOnce(io::Result<uv::fs::Stat>) + 'static,
    ) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        if let Some(driver) = self.engine(Op::Statx) {
            return driver.fstatx(file, done);
        }
        Ok(uv::fs::fstat(&self.lp, file, move |res| done(res.map_err(Into::into)))?)
    }

    /// Flushes the file's data, and its metadata too unless `data_only` (fsync / fdatasync).
    pub(crate) async fn fsync(&self, file: &Rc<uv::fs::File>, data_only: bool) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        if let Some(driver) = self.engine(Op::Fsync) {
            return ring(driver, |d, tx| d.fsync(file, data_only, send(tx))).await;
        }
        match data_only {
            false => request(&self.lp, |lp, tx| uv::fs::fsync(lp, file, send(tx))).await,
            true => request(&self.lp, |lp, tx| uv::fs::fdatasync(lp, file, send(tx))).await,
        }
    }

    /// Truncates or extends the file to `size` bytes (`ftruncate(2)`).
    pub(crate) async fn ftruncate(&self, file: &Rc<uv::fs::File>, size: u64) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        if let Some(driver) = self.engine(Op::Ftruncate) {
            return ring(driver, |d, tx| d.ftruncate(file, size, send(tx))).await;
        }
        request(&self.lp, |lp, tx| uv::fs::ftruncate(lp, file, size, send(tx))).await
    }

    /// Reads at most `buf.capacity() - keep` bytes at `pos` (at the kernel's position for `None`) so that they
    /// end up as the last bytes of `buf`, which `done` gets back cut after them; the bytes before them are stale
    /// and to be ignored. For a `File`'s own reusable buffer: the ring reads into initialised bytes (`buf` is
    /// zeroed up to its capacity at its first use, not before every read), libuv into the spare capacity.
    pub(crate) fn read_tail(
        &self,
        file: &Rc<uv::fs::File>,
        mut buf: Vec<u8>,
        keep: usize,
        pos: Option<u64>,
        done: impl FnOnce(io::Result<usize>, Vec<u8>) + 'static,
    ) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        if let Some(driver) = self.engine(Op::Read) {
            buf.resize(buf.capacity(), 0);
            return driver.read_at(file, buf, keep, pos, done);
        }
        // libuv reads into the spare capacity, all of it: leave exactly the bytes after `keep` spare. In steady
        // state this truncates and writes nothing.
        if buf.len() > keep {
            buf.truncate(keep);
        } else {
            buf.resize(keep, 0);
        }
        Ok(uv::fs::read(&self.lp, file, buf, pos, move |res, buf| done(res.map_err(Into::into), buf))?)
    }

    /// Reads at `pos` into the spare capacity of `buf` (on the ring at most [`RING_READ_MAX`] bytes, zeroed
    /// first); `done` gets the count and `buf`, its length grown by the bytes read.
    pub(crate) fn read_at(
        &self,
        file: &Rc<uv::fs::File>,
        buf: Vec<u8>,
        pos: u64,
        done: impl FnOnce(io::Result<usize>, Vec<u8>) + 'static,
    ) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        if let Some(driver) = self.engine(Op::Read) {
            let start = buf.len();
            let mut buf = buf;
            buf.resize(buf.capacity().min(start + RING_READ_MAX), 0);
            return driver.read_at(file, buf, start, Some(pos), move |res, mut buf| {
                if res.is_err() {
                    buf.truncate(start); // the zeroed spare capacity is not data
                }
                done(res, buf)
            });
        }
        Ok(uv::fs::read(&self.lp, file, buf, Some(pos), move |res, buf| done(res.map_err(Into::into), buf))?)
    }

    /// Writes `buf` at `offset` (at the kernel's position, or the end in append mode, for `None`) once; `done`
    /// gets the count, which may be short, and `buf`.
    pub(crate) fn write_at(
        &self,
        file: &Rc<uv::fs::File>,
        buf: Vec<u8>,
        offset: Option<u64>,
        done: impl FnOnce(io::Result<usize>, Vec<u8>) + 'static,
    ) -> io::Result<()> {
        #[cfg(target_os = "linux")]
        if let Some(driver) = self.engine(Op::Write) {
            return driver.write_at(file, buf, offset, done);
        }
        Ok(uv::fs::write(&self.lp, file, buf, offset, move |res, buf| done(res.map_err(Into::into), buf))?)
    }

    /// Writes all of `buf` at `offset` (see [`Self::write_at`]); `done` gets the outcome and `buf`. The first
    /// write goes to the engine; what a short write left continues on libuv, from the callback, so the bytes
    /// are written even if the caller is gone. `WriteZero` if the kernel writes nothing.
    pub(crate) fn write_all_at(
        &self,
        file: &Rc<uv::fs::File>,
        buf: Vec<u8>,
        offset: Option<u64>,
        done: impl FnOnce(io::Result<()>, Vec<u8>) + 'static,
    ) -> io::Result<()> {
        let (lp, file_again) = (self.lp.clone(), file.clone());
        self.write_at(file, buf, offset, move |res, buf| write_rest(lp, file_again, res, buf, offset, done))
    }
}

/// Whether `engine` is io_uring on a kernel with `IORING_OP_STATX` (the path pool is then not needed).
#[cfg(any(target_os = "linux", target_os = "macos"))]
fn ring_has_statx(engine: &Engine) -> bool {
    #[cfg(target_os = "linux")]
    return engine.ring().is_some_and(|driver| driver.supports(Op::Statx));
    #[cfg(not(target_os = "linux"))]
    {
        let _ = engine;
        false
    }
}

/// Continues a write after one request wrote `res` bytes of `buf` at `offset`: the rest goes on libuv.
fn write_rest(
    lp: Loop,
    file: Rc<uv::fs::File>,
    res: io::Result<usize>,
    mut buf: Vec<u8>,
    offset: Option<u64>,
    done: impl FnOnce(io::Result<()>, Vec<u8>) + 'static,
) {
    match res {
        Err(e) => done(Err(e), buf),
        Ok(n) if n == buf.len() => done(Ok(()), buf),
        Ok(0) => done(Err(io::ErrorKind::WriteZero.into()), buf),
        Ok(n) => {
            buf.drain(..n);
            // The first write checked that `offset + buf.len()` is at most `i64::MAX`.
            let rest = offset.map(|o| o.saturating_add(n as u64));
            let (lp_again, file_again) = (lp.clone(), file.clone());
            let next = move |res: crate::Result<usize>, buf| {
                write_rest(lp_again, file_again, res.map_err(Into::into), buf, rest, done)
            };
            // Should this fail, `done` is dropped uncalled and the caller reports a lost write.
            let _ = uv::fs::write(&lp, &file, buf, rest, next);
        }
    }
}

/// Starts one operation on the io_uring `driver` and waits for its result. The driver is released before
/// waiting: a pending fs future must not keep it alive (it waits for its own operations when dropped).
#[cfg(target_os = "linux")]
async fn ring<T: 'static>(
    driver: Rc<Driver>,
    submit: impl FnOnce(&Driver, Replier<io::Result<T>>) -> io::Result<()>,
) -> io::Result<T> {
    let (tx, rx) = crate::reply::reply();
    submit(&driver, tx)?;
    drop(driver);
    received(rx.await)?
}

/// Opens `path` on the io_uring `driver`. A write-only open of a FIFO without a reader fails with `ENXIO` on the
/// kernel's first, non-waiting attempt (see `Driver::open`): that one is retried as an open that waits for the
/// reader, as `open(2)` and libuv's thread pool do. (A device without its driver also says `ENXIO`, again.)
#[cfg(target_os = "linux")]
async fn ring_open(driver: Rc<Driver>, path: &Path, flags: uv::fs::OpenFlags, mode: u32) -> io::Result<uv::fs::File> {
    let again = Rc::downgrade(&driver); // weak while waiting, as `ring` holds it
    match ring(driver, |d, tx| d.open(path, flags, mode, false, send(tx))).await {
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => match again.upgrade() {
            Some(driver) => ring(driver, |d, tx| d.open(path, flags, mode, true, send(tx))).await,
            None => Err(e),
        },
        res => res,
    }
}
