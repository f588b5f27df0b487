//! The blocking forms of the fs operations: each runs on the calling thread (libuv's `cb == NULL` mode) and
//! returns the result. Same names and arguments as the callback forms in [`super`], minus the callback; reads and
//! writes borrow their buffers instead of taking them. See the callback forms for each operation's details.

use std::io::{IoSlice, IoSliceMut};
use std::path::{Path, PathBuf};

use super::{op, AccessMode, CopyFlags, Dir, Dirent, File, FileTime, OpenFlags, Stat, StatFs, SymlinkFlags};
use crate::error::Result;
use crate::uv::loop_::Loop;

/// Blocking [`open`](super::open) (`uv_fs_open`).
pub fn open(lp: &Loop, path: impl AsRef<Path>, flags: OpenFlags, mode: u32) -> Result<File> {
    op::open(path.as_ref(), flags, mode)?.run(lp.inner()).0
}

/// Blocking [`close`](super::close) (`uv_fs_close`): reports the close error that dropping a `File` ignores.
/// `EBUSY` while requests on the file are in flight (it then closes when they complete).
pub fn close(lp: &Loop, file: File) -> Result<()> {
    op::close(file.take_for_close()?).run(lp.inner()).0
}

/// Blocking [`read`](super::read) into `buf` from its start (`uv_fs_read`); returns the byte count, 0 at end.
pub fn read(lp: &Loop, file: &File, buf: &mut [u8], offset: Option<u64>) -> Result<usize> {
    op::read(file, buf, offset)?.run(lp.inner()).0
}

/// Blocking [`read_vectored`](super::read_vectored) into slices, filled in order (`uv_fs_read`).
pub fn read_vectored(lp: &Loop, file: &File, bufs: &mut [IoSliceMut<'_>], offset: Option<u64>) -> Result<usize> {
    op::read(file, bufs, offset)?.run(lp.inner()).0
}

/// Blocking [`write`](super::write) (`uv_fs_write`); returns the byte count, which may be short.
pub fn write(lp: &Loop, file: &File, buf: &[u8], offset: Option<u64>) -> Result<usize> {
    op::write(file, buf, offset)?.run(lp.inner()).0
}

/// Blocking [`write_vectored`](super::write_vectored) (`uv_fs_write`).
pub fn write_vectored(lp: &Loop, file: &File, bufs: &[IoSlice<'_>], offset: Option<u64>) -> Result<usize> {
    op::write(file, bufs, offset)?.run(lp.inner()).0
}

/// Blocking [`unlink`](super::unlink) (`uv_fs_unlink`).
pub fn unlink(lp: &Loop, path: impl AsRef<Path>) -> Result<()> {
    op::unlink(path.as_ref())?.run(lp.inner()).0
}

/// Blocking [`mkdir`](super::mkdir) (`uv_fs_mkdir`).
pub fn mkdir(lp: &Loop, path: impl AsRef<Path>, mode: u32) -> Result<()> {
    op::mkdir(path.as_ref(), mode)?.run(lp.inner()).0
}

/// Blocking [`mkdtemp`](super::mkdtemp) (`uv_fs_mkdtemp`).
pub fn mkdtemp(lp: &Loop, template: impl AsRef<Path>) -> Result<PathBuf> {
    op::mkdtemp(template.as_ref())?.run(lp.inner()).0
}

/// Blocking [`mkstemp`](super::mkstemp) (`uv_fs_mkstemp`).
pub fn mkstemp(lp: &Loop, template: impl AsRef<Path>) -> Result<(File, PathBuf)> {
    op::mkstemp(template.as_ref())?.run(lp.inner()).0
}

/// Blocking [`rmdir`](super::rmdir) (`uv_fs_rmdir`).
pub fn rmdir(lp: &Loop, path: impl AsRef<Path>) -> Result<()> {
    op::rmdir(path.as_ref())?.run(lp.inner()).0
}

/// Blocking [`scandir`](super::scandir) (`uv_fs_scandir`).
pub fn scandir(lp: &Loop, path: impl AsRef<Path>) -> Result<Vec<Dirent>> {
    op::scandir(path.as_ref())?.run(lp.inner()).0
}

/// Blocking [`opendir`](super::opendir) (`uv_fs_opendir`).
pub fn opendir(lp: &Loop, path: impl AsRef<Path>) -> Result<Dir> {
    op::opendir(path.as_ref())?.run(lp.inner()).0
}

/// Blocking [`readdir`](super::readdir) (`uv_fs_readdir`); an empty batch means the end.
pub fn readdir(lp: &Loop, dir: &Dir, max_entries: usize) -> Result<Vec<Dirent>> {
    op::readdir(dir, max_entries)?.run(lp.inner()).0
}

/// Blocking [`closedir`](super::closedir) (`uv_fs_closedir`).
pub fn closedir(lp: &Loop, dir: Dir) -> Result<()> {
    op::closedir(dir.take_for_close()?).run(lp.inner()).0
}

/// Blocking [`stat`](super::stat) (`uv_fs_stat`).
pub fn stat(lp: &Loop, path: impl AsRef<Path>) -> Result<Stat> {
    op::stat(path.as_ref())?.run(lp.inner()).0
}

/// Blocking [`fstat`](super::fstat) (`uv_fs_fstat`).
pub fn fstat(lp: &Loop, file: &File) -> Result<Stat> {
    op::fstat(file).run(lp.inner()).0
}

/// Blocking [`lstat`](super::lstat) (`uv_fs_lstat`).
pub fn lstat(lp: &Loop, path: impl AsRef<Path>) -> Result<Stat> {
    op::lstat(path.as_ref())?.run(lp.inner()).0
}

/// Blocking [`statfs`](super::statfs) (`uv_fs_statfs`).
pub fn statfs(lp: &Loop, path: impl AsRef<Path>) -> Result<StatFs> {
    op::statfs(path.as_ref())?.run(lp.inner()).0
}

/// Blocking [`rename`](super::rename) (`uv_fs_rename`).
pub fn rename(lp: &Loop, from: impl AsRef<Path>, to: impl AsRef<Path>) -> Result<()> {
    op::rename(from.as_ref(), to.as_ref())?.run(lp.inner()).0
}

/// Blocking [`fsync`](super::fsync) (`uv_fs_fsync`).
pub fn fsync(lp: &Loop, file: &File) -> Result<()> {
    op::fsync(file).run(lp.inner()).0
}

/// Blocking [`fdatasync`](super::fdatasync) (`uv_fs_fdatasync`).
pub fn fdatasync(lp: &Loop, file: &File) -> Result<()> {
    op::fdatasync(file).run(lp.inner()).0
}

/// Blocking [`ftruncate`](super::ftruncate) (`uv_fs_ftruncate`).
pub fn ftruncate(lp: &Loop, file: &File, len: u64) -> Result<()> {
    op::ftruncate(file, len)?.run(lp.inner()).0
}

/// Blocking [`copyfile`](super::copyfile) (`uv_fs_copyfile`).
pub fn copyfile(lp: &Loop, from: impl AsRef<Path>, to: impl AsRef<Path>, flags: CopyFlags) -> Result<()> {
    op::copyfile(from.as_ref(), to.as_ref(), flags)?.run(lp.inner()).0
}

/// Blocking [`sendfile`](super::sendfile) (`uv_fs_sendfile`).
pub fn sendfile(lp: &Loop, out: &File, input: &File, offset: u64, len: usize) -> Result<usize> {
    op::sendfile(out, input, offset, len)?.run(lp.inner()).0
}

/// Blocking [`access`](super::access) (`uv_fs_access`).
pub fn access(lp: &Loop, path: impl AsRef<Path>, mode: AccessMode) -> Result<()> {
    op::access(path.as_ref(), mode)?.run(lp.inner()).0
}

/// Blocking [`chmod`](super::chmod) (`uv_fs_chmod`).
pub fn chmod(lp: &Loop, path: impl AsRef<Path>, mode: u32) -> Result<()> {
    op::chmod(path.as_ref(), mode)?.run(lp.inner()).0
}

/// Blocking [`fchmod`](super::fchmod) (`uv_fs_fchmod`).
pub fn fchmod(lp: &Loop, file: &File, mode: u32) -> Result<()> {
    op::fchmod(file, mode).run(lp.inner()).0
}

/// Blocking [`utime`](super::utime) (`uv_fs_utime`).
pub fn utime(lp: &Loop, path: impl AsRef<Path>, atime: FileTime, mtime: FileTime) -> Result<()> {
    op::utime(path.as_ref(), atime, mtime)?.run(lp.inner()).0
}

/// Blocking [`futime`](super::futime) (`uv_fs_futime`).
pub fn futime(lp: &Loop, file: &File, atime: FileTime, mtime: FileTime) -> Result<()> {
    op::futime(file, atime, mtime).run(lp.inner()).0
}

/// Blocking [`lutime`](super::lutime) (`uv_fs_lutime`).
pub fn lutime(lp: &Loop, path: impl AsRef<Path>, atime: FileTime, mtime: FileTime) -> Result<()> {
    op::lutime(path.as_ref(), atime, mtime)?.run(lp.inner()).0
}

/// Blocking [`link`](super::link) (`uv_fs_link`).
pub fn link(lp: &Loop, existing: impl AsRef<Path>, new: impl AsRef<Path>) -> Result<()> {
    op::link(existing.as_ref(), new.as_ref())?.run(lp.inner()).0
}

/// Blocking [`symlink`](super::symlink) (`uv_fs_symlink`).
pub fn symlink(lp: &Loop, target: impl AsRef<Path>, link: impl AsRef<Path>, flags: SymlinkFlags) -> Result<()> {
    op::symlink(target.as_ref(), link.as_ref(), flags)?.run(lp.inner()).0
}

/// Blocking [`readlink`](super::readlink) (`uv_fs_readlink`).
pub fn readlink(lp: &Loop, path: impl AsRef<Path>) -> Result<PathBuf> {
    op::readlink(path.as_ref())?.run(lp.inner()).0
}

/// Blocking [`realpath`](super::realpath) (`uv_fs_realpath`).
pub fn realpath(lp: &Loop, path: impl AsRef<Path>) -> Result<PathBuf> {
    op::realpath(path.as_ref())?.run(lp.inner()).0
}

/// Blocking [`chown`](super::chown) (`uv_fs_chown`). Unix only.
#[cfg(unix)]
pub fn chown(lp: &Loop, path: impl AsRef<Path>, uid: Option<u32>, gid: Option<u32>) -> Result<()> {
    op::chown(path.as_ref(), uid, gid, false)?.run(lp.inner()).0
}

/// Blocking [`fchown`](super::fchown) (`uv_fs_fchown`). Unix only.
#[cfg(unix)]
pub fn fchown(lp: &Loop, file: &File, uid: Option<u32>, gid: Option<u32>) -> Result<()> {
    op::fchown(file, uid, gid).run(lp.inner()).0
}

/// Blocking [`lchown`](super::lchown) (`uv_fs_lchown`). Unix only.
#[cfg(unix)]
pub fn lchown(lp: &Loop, path: impl AsRef<Path>, uid: Option<u32>, gid: Option<u32>) -> Result<()> {
    op::chown(path.as_ref(), uid, gid, true)?.run(lp.inner()).0
}
