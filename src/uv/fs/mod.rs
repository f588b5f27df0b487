//! File system requests (`uv_fs_*`): every libuv fs operation, as a callback and as a blocking call.
//!
//! # Two forms of each operation
//! - **Callback** (this module): `fs::op(&lp, args…, cb)` runs the request on libuv's thread pool and calls `cb`
//!   with its result on the loop thread, during [`Loop::run`]. The returned `Result` only reports a failure to
//!   *submit* (for example `EINVAL` for a NUL byte in a path or an offset above `i64::MAX`); when it is `Err`,
//!   `cb` never runs and anything moved into the call (a buffer) is dropped.
//! - **Blocking** ([`sync`]): `fs::sync::op(&lp, args…)` with the same name and arguments minus the callback runs
//!   the request on the calling thread (libuv's `cb == NULL` mode) and returns its result. Handy in tests, tools
//!   and setup code; inside a loop it blocks every other callback meanwhile.
//!
//! # Memory
//! A submitted request owns everything libuv reads or writes until its callback: the path strings, the buffers
//! and a reference to the [`File`] or [`Dir`] it works on. Reads and writes take owned buffers (`Vec<u8>`, or
//! `Vec<Vec<u8>>` for the vectored forms) and give them back to the callback, so nothing is copied and nothing the
//! caller drops can be in use by libuv. A read fills the `Vec`'s *spare capacity* (between `len` and `capacity`)
//! and grows `len` by the bytes read: reserve room first (`Vec::with_capacity`, `clear`, `reserve`).
//!
//! # Files and directories
//! [`File`] owns a descriptor and [`Dir`] a directory stream; dropping either closes it synchronously, or when
//! its last in-flight request completes. A descriptor is never closed while libuv's thread pool still uses it.
//!
//! ```
//! use uvio::uv::{fs, Loop, RunMode};
//!
//! let lp = Loop::new()?;
//! let dir = std::env::temp_dir().join(format!("uvio-doc-fs-{}", std::process::id()));
//! fs::sync::mkdir(&lp, &dir, 0o755)?;
//! let path = dir.join("greeting");
//! let lp2 = lp.clone();
//! fs::open(&lp, &path, fs::OpenFlags::WRONLY | fs::OpenFlags::CREAT, 0o644, move |file| {
//!     let file = file.expect("open");
//!     // Chain the next request from the callback; the buffer comes back when the write is done.
//!     fs::write(&lp2, &file, b"hello, libuv\n".to_vec(), None, |written, _buf| {
//!         assert_eq!(written, Ok(13));
//!     })
//!     .expect("submit write");
//!     // Dropping `file` here is fine: the write in flight keeps the descriptor open until it completes.
//! })?;
//! lp.run(RunMode::Default)?;
//! assert_eq!(fs::sync::stat(&lp, &path)?.size, 13);
//! fs::sync::unlink(&lp, &path)?;
//! fs::sync::rmdir(&lp, &dir)?;
//! lp.close().map_err(|e| e.error())?;
//! # Ok::<(), uvio::Error>(())
//! ```

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::uv::loop_::Loop;

mod file;
mod op;
mod os_file;
pub mod sync;
mod types;

pub use file::{Dir, File};
pub(crate) use os_file::OsFile;
pub use types::{AccessMode, CopyFlags, Dirent, DirentType, FileTime, OpenFlags, Stat, StatFs, SymlinkFlags, Timespec};

/// Opens (and with [`OpenFlags::CREAT`] creates, with permission bits `mode`) a file (`uv_fs_open`).
pub fn open(
    lp: &Loop,
    path: impl AsRef<Path>,
    flags: OpenFlags,
    mode: u32,
    cb: impl FnOnce(Result<File>) + 'static,
) -> Result<()> {
    op::open(path.as_ref(), flags, mode)?.submit_result(lp, cb)
}

/// Closes a file without blocking (`uv_fs_close`). `EBUSY` at once if other requests on the file are still in
/// flight; the `File` is then dropped, so it closes (synchronously) when the last of them completes.
pub fn close(lp: &Loop, file: File, cb: impl FnOnce(Result<()>) + 'static) -> Result<()> {
    // uv_fs_close has no failing argument check: once released, the descriptor is always closed by libuv.
    op::close(file.take_for_close()?).submit_result(lp, cb)
}

/// Reads into the spare capacity of `buf` at `offset` (`None`: the current position, which advances)
/// (`uv_fs_read`). `cb` gets the byte count (0 at end of file) and `buf`, its `len` grown by that count.
pub fn read(
    lp: &Loop,
    file: &File,
    buf: Vec<u8>,
    offset: Option<u64>,
    cb: impl FnOnce(Result<usize>, Vec<u8>) + 'static,
) -> Result<()> {
    op::read(file, buf, offset)?.submit(lp, |res, (file, buf, _)| {
        drop(file); // first, so that `cb` may close the file
        cb(res, buf)
    })
}

/// Reads into the spare capacity of several buffers in order, like `preadv` (`uv_fs_read`). `cb` gets the total
/// byte count and the buffers, each grown by the bytes it received.
pub fn read_vectored(
    lp: &Loop,
    file: &File,
    bufs: Vec<Vec<u8>>,
    offset: Option<u64>,
    cb: impl FnOnce(Result<usize>, Vec<Vec<u8>>) + 'static,
) -> Result<()> {
    op::read(file, bufs, offset)?.submit(lp, |res, (file, bufs, _)| {
        drop(file); // first, so that `cb` may close the file
        cb(res, bufs)
    })
}

/// Writes `buf` at `offset` (`None`: the current position, which advances) (`uv_fs_write`). `cb` gets the byte
/// count, which may be short, and `buf` back unchanged.
pub fn write(
    lp: &Loop,
    file: &File,
    buf: Vec<u8>,
    offset: Option<u64>,
    cb: impl FnOnce(Result<usize>, Vec<u8>) + 'static,
) -> Result<()> {
    op::write(file, buf, offset)?.submit(lp, |res, (file, buf, _)| {
        drop(file); // first, so that `cb` may close the file
        cb(res, buf)
    })
}

/// Writes several buffers in order, like `pwritev` (`uv_fs_write`). `cb` gets the total byte count and the
/// buffers back. An empty list is `EINVAL`.
pub fn write_vectored(
    lp: &Loop,
    file: &File,
    bufs: Vec<Vec<u8>>,
    offset: Option<u64>,
    cb: impl FnOnce(Result<usize>, Vec<Vec<u8>>) + 'static,
) -> Result<()> {
    op::write(file, bufs, offset)?.submit(lp, |res, (file, bufs, _)| {
        drop(file); // first, so that `cb` may close the file
        cb(res, bufs)
    })
}

/// Deletes a file (`uv_fs_unlink`).
pub fn unlink(lp: &Loop, path: impl AsRef<Path>, cb: impl FnOnce(Result<()>) + 'static) -> Result<()> {
    op::unlink(path.as_ref())?.submit_result(lp, cb)
}

/// Creates a directory with permission bits `mode` (ignored on Windows) (`uv_fs_mkdir`).
pub fn mkdir(lp: &Loop, path: impl AsRef<Path>, mode: u32, cb: impl FnOnce(Result<()>) + 'static) -> Result<()> {
    op::mkdir(path.as_ref(), mode)?.submit_result(lp, cb)
}

/// Creates a uniquely named directory from a template ending in `XXXXXX` (`uv_fs_mkdtemp`); `cb` gets its path.
pub fn mkdtemp(lp: &Loop, template: impl AsRef<Path>, cb: impl FnOnce(Result<PathBuf>) + 'static) -> Result<()> {
    op::mkdtemp(template.as_ref())?.submit_result(lp, cb)
}

/// Creates and opens a uniquely named file from a template ending in `XXXXXX` (`uv_fs_mkstemp`); `cb` gets the
/// open file and its path.
pub fn mkstemp(
    lp: &Loop,
    template: impl AsRef<Path>,
    cb: impl FnOnce(Result<(File, PathBuf)>) + 'static,
) -> Result<()> {
    op::mkstemp(template.as_ref())?.submit_result(lp, cb)
}

/// Removes an empty directory (`uv_fs_rmdir`); `ENOTEMPTY` if it has entries.
pub fn rmdir(lp: &Loop, path: impl AsRef<Path>, cb: impl FnOnce(Result<()>) + 'static) -> Result<()> {
    op::rmdir(path.as_ref())?.submit_result(lp, cb)
}

/// Lists a directory in one request (`uv_fs_scandir`), without `.` and `..`. For huge directories, prefer
/// [`opendir`] and [`readdir`] batches.
pub fn scandir(lp: &Loop, path: impl AsRef<Path>, cb: impl FnOnce(Result<Vec<Dirent>>) + 'static) -> Result<()> {
    op::scandir(path.as_ref())?.submit_result(lp, cb)
}

/// Opens a directory stream for [`readdir`] (`uv_fs_opendir`).
pub fn opendir(lp: &Loop, path: impl AsRef<Path>, cb: impl FnOnce(Result<Dir>) + 'static) -> Result<()> {
    op::opendir(path.as_ref())?.submit_result(lp, cb)
}

/// Reads the next batch of at most `max_entries` entries (`uv_fs_readdir`), without `.` and `..`; an empty batch
/// means the end. `EINVAL` for `max_entries == 0`, `EBUSY` while another `readdir` on `dir` is in flight.
pub fn readdir(lp: &Loop, dir: &Dir, max_entries: usize, cb: impl FnOnce(Result<Vec<Dirent>>) + 'static) -> Result<()> {
    op::readdir(dir, max_entries)?.submit_result(lp, cb)
}

/// Closes a directory stream without blocking (`uv_fs_closedir`). `EBUSY` at once while a `readdir` is in
/// flight; the `Dir` is then dropped, so it closes (synchronously) when that read completes.
pub fn closedir(lp: &Loop, dir: Dir, cb: impl FnOnce(Result<()>) + 'static) -> Result<()> {
    // uv_fs_closedir only rejects a null stream, which a `Dir` never holds.
    op::closedir(dir.take_for_close()?).submit_result(lp, cb)
}

/// Gets a file's metadata, following symbolic links (`uv_fs_stat`).
pub fn stat(lp: &Loop, path: impl AsRef<Path>, cb: impl FnOnce(Result<Stat>) + 'static) -> Result<()> {
    op::stat(path.as_ref())?.submit_result(lp, cb)
}

/// Gets an open file's metadata (`uv_fs_fstat`).
pub fn fstat(lp: &Loop, file: &File, cb: impl FnOnce(Result<Stat>) + 'static) -> Result<()> {
    op::fstat(file).submit_result(lp, cb)
}

/// Gets a file's metadata; a symbolic link is described itself, not followed (`uv_fs_lstat`).
pub fn lstat(lp: &Loop, path: impl AsRef<Path>, cb: impl FnOnce(Result<Stat>) + 'static) -> Result<()> {
    op::lstat(path.as_ref())?.submit_result(lp, cb)
}

/// Gets statistics of the file system holding `path` (`uv_fs_statfs`).
pub fn statfs(lp: &Loop, path: impl AsRef<Path>, cb: impl FnOnce(Result<StatFs>) + 'static) -> Result<()> {
    op::statfs(path.as_ref())?.submit_result(lp, cb)
}

/// Renames `from` to `to`, replacing `to` if it exists (`uv_fs_rename`).
pub fn rename(
    lp: &Loop,
    from: impl AsRef<Path>,
    to: impl AsRef<Path>,
    cb: impl FnOnce(Result<()>) + 'static,
) -> Result<()> {
    op::rename(from.as_ref(), to.as_ref())?.submit_result(lp, cb)
}

/// Flushes a file's data and metadata to the device (`uv_fs_fsync`).
pub fn fsync(lp: &Loop, file: &File, cb: impl FnOnce(Result<()>) + 'static) -> Result<()> {
    op::fsync(file).submit_result(lp, cb)
}

/// Flushes a file's data (and only the metadata needed to read it) to the device (`uv_fs_fdatasync`).
pub fn fdatasync(lp: &Loop, file: &File, cb: impl FnOnce(Result<()>) + 'static) -> Result<()> {
    op::fdatasync(file).submit_result(lp, cb)
}

/// Truncates or extends a file to `len` bytes (`uv_fs_ftruncate`).
pub fn ftruncate(lp: &Loop, file: &File, len: u64, cb: impl FnOnce(Result<()>) + 'static) -> Result<()> {
    op::ftruncate(file, len)?.submit_result(lp, cb)
}

/// Copies the file `from` to `to` (`uv_fs_copyfile`); see [`CopyFlags`]. Without [`CopyFlags::EXCL`] an existing
/// `to` is overwritten.
pub fn copyfile(
    lp: &Loop,
    from: impl AsRef<Path>,
    to: impl AsRef<Path>,
    flags: CopyFlags,
    cb: impl FnOnce(Result<()>) + 'static,
) -> Result<()> {
    op::copyfile(from.as_ref(), to.as_ref(), flags)?.submit_result(lp, cb)
}

/// Copies up to `len` bytes from `input` at `offset` to `out` at its current position (`uv_fs_sendfile`).
/// `cb` gets the byte count, which may be short.
///
/// # Portability
/// On Unix `input`'s own position is neither used nor moved; on Windows libuv emulates sendfile by seeking
/// `input` to `offset` and reading, so its position moves.
pub fn sendfile(
    lp: &Loop,
    out: &File,
    input: &File,
    offset: u64,
    len: usize,
    cb: impl FnOnce(Result<usize>) + 'static,
) -> Result<()> {
    op::sendfile(out, input, offset, len)?.submit_result(lp, cb)
}

/// Checks that `path` exists and that the caller has the access in `mode` (`uv_fs_access`; Windows checks the
/// attributes: existence and the read-only flag).
pub fn access(
    lp: &Loop,
    path: impl AsRef<Path>,
    mode: AccessMode,
    cb: impl FnOnce(Result<()>) + 'static,
) -> Result<()> {
    op::access(path.as_ref(), mode)?.submit_result(lp, cb)
}

/// Sets a file's permission bits (`uv_fs_chmod`; on Windows only the owner's write bit matters).
pub fn chmod(lp: &Loop, path: impl AsRef<Path>, mode: u32, cb: impl FnOnce(Result<()>) + 'static) -> Result<()> {
    op::chmod(path.as_ref(), mode)?.submit_result(lp, cb)
}

/// Sets an open file's permission bits (`uv_fs_fchmod`).
pub fn fchmod(lp: &Loop, file: &File, mode: u32, cb: impl FnOnce(Result<()>) + 'static) -> Result<()> {
    op::fchmod(file, mode).submit_result(lp, cb)
}

/// Sets a file's access and modification times, following symbolic links (`uv_fs_utime`).
pub fn utime(
    lp: &Loop,
    path: impl AsRef<Path>,
    atime: FileTime,
    mtime: FileTime,
    cb: impl FnOnce(Result<()>) + 'static,
) -> Result<()> {
    op::utime(path.as_ref(), atime, mtime)?.submit_result(lp, cb)
}

/// Sets an open file's access and modification times (`uv_fs_futime`).
pub fn futime(
    lp: &Loop,
    file: &File,
    atime: FileTime,
    mtime: FileTime,
    cb: impl FnOnce(Result<()>) + 'static,
) -> Result<()> {
    op::futime(file, atime, mtime).submit_result(lp, cb)
}

/// Sets the access and modification times of a path, or of a symbolic link itself (`uv_fs_lutime`).
pub fn lutime(
    lp: &Loop,
    path: impl AsRef<Path>,
    atime: FileTime,
    mtime: FileTime,
    cb: impl FnOnce(Result<()>) + 'static,
) -> Result<()> {
    op::lutime(path.as_ref(), atime, mtime)?.submit_result(lp, cb)
}

/// Creates a hard link `new` to the file `existing` (`uv_fs_link`).
pub fn link(
    lp: &Loop,
    existing: impl AsRef<Path>,
    new: impl AsRef<Path>,
    cb: impl FnOnce(Result<()>) + 'static,
) -> Result<()> {
    op::link(existing.as_ref(), new.as_ref())?.submit_result(lp, cb)
}

/// Creates a symbolic link `link` pointing to `target` (`uv_fs_symlink`); `flags` matter on Windows only, where
/// creating links may need a privilege or developer mode.
pub fn symlink(
    lp: &Loop,
    target: impl AsRef<Path>,
    link: impl AsRef<Path>,
    flags: SymlinkFlags,
    cb: impl FnOnce(Result<()>) + 'static,
) -> Result<()> {
    op::symlink(target.as_ref(), link.as_ref(), flags)?.submit_result(lp, cb)
}

/// Reads the target of a symbolic link (`uv_fs_readlink`).
pub fn readlink(lp: &Loop, path: impl AsRef<Path>, cb: impl FnOnce(Result<PathBuf>) + 'static) -> Result<()> {
    op::readlink(path.as_ref())?.submit_result(lp, cb)
}

/// Resolves a path to its canonical absolute form, following every symbolic link (`uv_fs_realpath`).
pub fn realpath(lp: &Loop, path: impl AsRef<Path>, cb: impl FnOnce(Result<PathBuf>) + 'static) -> Result<()> {
    op::realpath(path.as_ref())?.submit_result(lp, cb)
}

/// Changes a file's owner and group, following symbolic links; `None` leaves an id unchanged (`uv_fs_chown`).
/// Unix only: libuv does not implement it on Windows.
#[cfg(unix)]
pub fn chown(
    lp: &Loop,
    path: impl AsRef<Path>,
    uid: Option<u32>,
    gid: Option<u32>,
    cb: impl FnOnce(Result<()>) + 'static,
) -> Result<()> {
    op::chown(path.as_ref(), uid, gid, false)?.submit_result(lp, cb)
}

/// Changes an open file's owner and group; `None` leaves an id unchanged (`uv_fs_fchown`). Unix only.
#[cfg(unix)]
pub fn fchown(
    lp: &Loop,
    file: &File,
    uid: Option<u32>,
    gid: Option<u32>,
    cb: impl FnOnce(Result<()>) + 'static,
) -> Result<()> {
    op::fchown(file, uid, gid).submit_result(lp, cb)
}

/// Changes the owner and group of a path, or of a symbolic link itself (`uv_fs_lchown`). Unix only.
#[cfg(unix)]
pub fn lchown(
    lp: &Loop,
    path: impl AsRef<Path>,
    uid: Option<u32>,
    gid: Option<u32>,
    cb: impl FnOnce(Result<()>) + 'static,
) -> Result<()> {
    op::chown(path.as_ref(), uid, gid, true)?.submit_result(lp, cb)
}
