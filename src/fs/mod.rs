//! Asynchronous file system access, shaped like `tokio::fs`, on libuv's fs requests (`uv_fs_*`).
//!
//! Every operation is one or more libuv requests run on libuv's thread pool; the future waits for the callback.
//! On the io_uring engine (Linux), opening, closing, reading and writing a [`File`], `statx` metadata, fsync,
//! [`File::set_len`], [`rename`], [`remove_file`], [`remove_dir`], [`create_dir`], [`symlink`] and
//! [`hard_link`] go through the runtime's ring instead (see [`crate::engine`]), each falling back to libuv's
//! thread pool where the kernel lacks its opcode; the results and errors are the same.
//! [`metadata`] and [`symlink_metadata`] on the other engines (Linux and macOS) run on uvio's own small pool of
//! threads for path syscalls, which takes and hands back operations in batches (libuv's pool on other OSes).
//! On Linux, on every engine, a read of a [`File`] (through `AsyncRead` or [`File::read_at`]) first takes what
//! the page cache already holds, on the loop thread without waiting (`preadv2` with `RWF_NOWAIT`), and becomes a
//! request only when the data is not cached: a cached read costs a memory copy, not a trip through a thread pool
//! or the ring.
//! [`File`] implements `futures::io::{AsyncRead, AsyncWrite, AsyncSeek}` (and tokio's, with the `tokio-io`
//! feature), [`ReadDir`] is a `futures::Stream`, and the free functions mirror `std::fs`. Errors are
//! [`std::io::Error`] with the usual kinds (`NotFound`, `AlreadyExists`, `PermissionDenied`, …); a NUL byte in
//! a path is an `InvalidInput` error.
//!
//! # Cancellation
//! Dropping any future of this module at any point is safe: a request already submitted keeps its paths,
//! buffers and file descriptor until libuv calls back, and its result is then dropped. A [`File`] write that
//! was accepted (`poll_write` returned `Ok`) is carried out even if the `File` is dropped right after.
//!
//! # Futures are `!Send`
//! Like the rest of uvio, these futures and types belong to the runtime's thread: use
//! [`spawn_local`](crate::spawn_local) to run them in tasks.
//!
//! ```
//! uvio::block_on(async {
//!     let dir = std::env::temp_dir().join(format!("uvio-doc-afs-{}", std::process::id()));
//!     uvio::fs::create_dir_all(&dir).await?;
//!     let path = dir.join("hello.txt");
//!     uvio::fs::write(&path, "hello, uvio").await?;
//!     assert_eq!(uvio::fs::read_to_string(&path).await?, "hello, uvio");
//!     assert_eq!(uvio::fs::metadata(&path).await?.len(), 11);
//!     uvio::fs::remove_dir_all(&dir).await?;
//!     assert!(!uvio::fs::try_exists(&dir).await?);
//!     std::io::Result::Ok(())
//! })
//! .unwrap();
//! ```

use std::io;
use std::path::{Path, PathBuf};

use crate::engine::files::send;
use crate::engine::files::Files;
use crate::uv;

mod dir;
mod file;
mod metadata;
mod open_options;

pub use dir::{create_dir_all, read_dir, remove_dir_all, DirBuilder, DirEntry, ReadDir};
pub use file::File;
pub use metadata::{FileType, Metadata, Permissions};
pub use open_options::OpenOptions;

/// The current runtime's engine for files (handed down to `engine::files`, which dispatches each operation).
/// The runtime itself is not kept: a pending fs future must not keep it alive.
fn files() -> Files {
    let rt = crate::runtime::current();
    Files::new(&rt.engine, &rt.lp)
}

/// Ignores `NotFound`, for removals racing with someone else's.
fn ignore_not_found(res: io::Result<()>) -> io::Result<()> {
    match res {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

// ---- Whole-file helpers ----

/// Reads the entire contents of a file (`uv_fs_open`, `uv_fs_fstat` for a size hint, then `uv_fs_read` until
/// the end). Reads land directly in the returned vector: nothing is copied. A FIFO, a pipe or a terminal is read
/// until its end of file too (at the current position: they take no offsets; their size says nothing).
pub async fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let files = files();
    let file = files.open(path.as_ref(), uv::fs::OpenFlags::RDONLY, 0).await?;
    let seekable = file.is_seekable();
    let hint = match seekable {
        true => files.pool(|lp, tx| uv::fs::fstat(lp, &file, send(tx))).await.map_or(0, |st| st.size),
        false => 0,
    };
    // One byte more than the size, so that the read seeing the end needs no reallocation.
    let mut buf = Vec::new();
    buf.try_reserve_exact(usize::try_from(hint).unwrap_or(usize::MAX).saturating_add(1))
        .map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
    loop {
        if buf.len() == buf.capacity() {
            buf.try_reserve(buf.len().max(8 * 1024)).map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
        }
        let offset = seekable.then_some(buf.len() as u64);
        let (n, back) = files.pool_read(&file, buf, offset).await?;
        buf = back;
        if n == 0 {
            break;
        }
    }
    drop(files.close(file).await); // the data is complete: a close error cannot change it
    Ok(buf)
}

/// Reads the entire contents of a file as UTF-8; invalid UTF-8 is an `InvalidData` error.
pub async fn read_to_string(path: impl AsRef<Path>) -> io::Result<String> {
    String::from_utf8(read(path).await?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "stream did not contain valid UTF-8"))
}

/// Writes `contents` to a file, creating it or truncating it first (`uv_fs_open`, `uv_fs_write`, `uv_fs_close`).
/// The contents are copied once into a buffer the requests own. A close error is reported. A FIFO, a pipe or a
/// terminal is written at its current position (they take no offsets).
pub async fn write(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> io::Result<()> {
    use uv::fs::OpenFlags as F;
    let mut buf = contents.as_ref().to_vec();
    let files = files();
    let file = files.open(path.as_ref(), F::WRONLY | F::CREAT | F::TRUNC, 0o666).await?;
    let mut offset = file.is_seekable().then_some(0u64);
    while !buf.is_empty() {
        let (n, back) = files.pool_write(&file, buf, offset).await?;
        buf = back;
        match n {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n if n == buf.len() => break,
            n => {
                // A short write: the rest goes in the next request.
                buf.drain(..n);
                offset = offset.map(|o| o.saturating_add(n as u64)); // at most `contents.len()` in all
            }
        }
    }
    files.close(file).await
}

// ---- Path operations ----

/// Copies the contents and permission bits of `from` to `to`, replacing `to` if it exists (`uv_fs_copyfile`,
/// which uses a copy-on-write clone or `sendfile` where it can). Returns the number of bytes copied (the size
/// of `to` afterwards, `uv_fs_stat`).
pub async fn copy(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<u64> {
    let (from, to) = (from.as_ref(), to.as_ref());
    files().pool(|lp, tx| uv::fs::copyfile(lp, from, to, uv::fs::CopyFlags::empty(), send(tx))).await?;
    Ok(metadata(to).await?.len())
}

/// Renames `from` to `to`, replacing `to` if it is a file (`uv_fs_rename`; `IORING_OP_RENAMEAT` on the
/// io_uring engine).
pub async fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    files().rename(from.as_ref(), to.as_ref()).await
}

/// Removes a file or a symbolic link (`uv_fs_unlink`; `IORING_OP_UNLINKAT` on the io_uring engine).
pub async fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    files().unlink(path.as_ref(), false).await
}

/// Creates a directory (`uv_fs_mkdir`, permission bits `0o777` before the umask; `IORING_OP_MKDIRAT` on the
/// io_uring engine). `AlreadyExists` if the path exists, `NotFound` if its parent does not; see
/// [`create_dir_all`].
pub async fn create_dir(path: impl AsRef<Path>) -> io::Result<()> {
    mkdir(path.as_ref(), 0o777).await
}

/// One directory with the permission bits `mode` before the umask: on the ring, or on libuv's thread pool.
async fn mkdir(path: &Path, mode: u32) -> io::Result<()> {
    files().mkdir(path, mode).await
}

/// Removes an empty directory (`uv_fs_rmdir`; `IORING_OP_UNLINKAT` with `AT_REMOVEDIR` on the io_uring
/// engine); see [`remove_dir_all`].
pub async fn remove_dir(path: impl AsRef<Path>) -> io::Result<()> {
    files().unlink(path.as_ref(), true).await
}

/// Metadata of a path, following symbolic links (`statx` on the io_uring engine; on the others `statx` or
/// `stat` on uvio's path pool on Linux and macOS, `uv_fs_stat` elsewhere).
pub async fn metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    files().stat(path.as_ref(), true).await.map(Metadata::from_stat)
}

/// Metadata of a path; a symbolic link is described itself, not followed (`statx` with `AT_SYMLINK_NOFOLLOW` on
/// the io_uring engine; on the others the same or `lstat` on uvio's path pool on Linux and macOS,
/// `uv_fs_lstat` elsewhere).
pub async fn symlink_metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    files().stat(path.as_ref(), false).await.map(Metadata::from_stat)
}

/// The canonical absolute form of a path, with every symbolic link, `.` and `..` resolved (`uv_fs_realpath`).
pub async fn canonicalize(path: impl AsRef<Path>) -> io::Result<PathBuf> {
    let path = path.as_ref();
    files().pool(|lp, tx| uv::fs::realpath(lp, path, send(tx))).await
}

/// Creates a hard link `link` to the file `original` (`uv_fs_link`; `IORING_OP_LINKAT` on the io_uring
/// engine).
pub async fn hard_link(original: impl AsRef<Path>, link: impl AsRef<Path>) -> io::Result<()> {
    files().link(original.as_ref(), link.as_ref()).await
}

async fn symlink_with(original: &Path, link: &Path, flags: uv::fs::SymlinkFlags) -> io::Result<()> {
    files().symlink(original, link, flags).await
}

/// Creates a symbolic link `link` pointing to `original` (`uv_fs_symlink`; `IORING_OP_SYMLINKAT` on the
/// io_uring engine). Unix only; on Windows use
/// `symlink_file` or `symlink_dir`.
#[cfg(unix)]
pub async fn symlink(original: impl AsRef<Path>, link: impl AsRef<Path>) -> io::Result<()> {
    symlink_with(original.as_ref(), link.as_ref(), uv::fs::SymlinkFlags::empty()).await
}

/// Creates a symbolic link `link` to the file `original` (`uv_fs_symlink`). Windows only; creating links may
/// need a privilege or developer mode.
#[cfg(windows)]
pub async fn symlink_file(original: impl AsRef<Path>, link: impl AsRef<Path>) -> io::Result<()> {
    symlink_with(original.as_ref(), link.as_ref(), uv::fs::SymlinkFlags::empty()).await
}

/// Creates a symbolic link `link` to the directory `original` (`uv_fs_symlink` with `UV_FS_SYMLINK_DIR`).
/// Windows only; creating links may need a privilege or developer mode.
#[cfg(windows)]
pub async fn symlink_dir(original: impl AsRef<Path>, link: impl AsRef<Path>) -> io::Result<()> {
    symlink_with(original.as_ref(), link.as_ref(), uv::fs::SymlinkFlags::DIR).await
}

/// The target of a symbolic link (`uv_fs_readlink`).
pub async fn read_link(path: impl AsRef<Path>) -> io::Result<PathBuf> {
    let path = path.as_ref();
    files().pool(|lp, tx| uv::fs::readlink(lp, path, send(tx))).await
}

/// Sets the permissions of a path, following symbolic links (`uv_fs_chmod`).
pub async fn set_permissions(path: impl AsRef<Path>, perm: Permissions) -> io::Result<()> {
    let path = path.as_ref();
    files().pool(|lp, tx| uv::fs::chmod(lp, path, perm.bits(), send(tx))).await
}

/// Whether a path exists, following symbolic links (`uv_fs_stat`): `Ok(false)` only for `NotFound`; other
/// errors (a permission problem, say) are returned, since they leave the question open.
pub async fn try_exists(path: impl AsRef<Path>) -> io::Result<bool> {
    match metadata(path).await {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}
