//! Path operations and `ftruncate` on the ring: rename, unlink, rmdir, mkdir, symlink, link
//! (`IORING_OP_RENAMEAT`, `UNLINKAT`, `MKDIRAT`, `SYMLINKAT`, `LINKAT`: Linux 5.11 to 5.15) and
//! `IORING_OP_FTRUNCATE` (Linux 6.9).
//!
//! Each is the exact `*at` form of the syscall libuv's thread pool makes for the same operation (`rename`,
//! `unlink`, `rmdir`, `mkdir`, `symlink`, `link`, `ftruncate`, all relative to the current directory), so the
//! results and errors are the kernel's same ones on both engines. The paths are `CString`s owned by the slot
//! until the completion arrives: a dropped future never frees a path the kernel may still read.

use std::any::Any;
use std::io;
use std::path::Path;
use std::rc::Rc;

use io_uring::{opcode, types};

use super::{c_path, Driver, Pending};
use crate::uv;

/// The current directory, which relative paths are resolved against (as the plain syscalls do).
const CWD: types::Fd = types::Fd(libc::AT_FDCWD);

impl Driver {
    /// Renames `from` to `to` (`renameat2` with no flags, i.e. `rename(2)`).
    pub(crate) fn rename(&self, from: &Path, to: &Path, done: impl FnOnce(io::Result<()>) + 'static) -> io::Result<()> {
        let (from, to) = (c_path(from)?, c_path(to)?);
        let entry = opcode::RenameAt::new(CWD, from.as_ptr(), CWD, to.as_ptr()).build();
        self.push(entry, Pending::Paths { _first: from, _second: Some(to), done: Box::new(done) })
    }

    /// Removes a file or symbolic link (`unlink(2)`), or an empty directory if `dir` (`rmdir(2)`: `unlinkat`
    /// with `AT_REMOVEDIR`).
    pub(crate) fn unlink(&self, path: &Path, dir: bool, done: impl FnOnce(io::Result<()>) + 'static) -> io::Result<()> {
        let path = c_path(path)?;
        let flags = if dir { libc::AT_REMOVEDIR } else { 0 };
        let entry = opcode::UnlinkAt::new(CWD, path.as_ptr()).flags(flags).build();
        self.push(entry, Pending::Paths { _first: path, _second: None, done: Box::new(done) })
    }

    /// Creates a directory with the permission bits `mode` before the umask (`mkdir(2)`).
    pub(crate) fn mkdir(&self, path: &Path, mode: u32, done: impl FnOnce(io::Result<()>) + 'static) -> io::Result<()> {
        let path = c_path(path)?;
        let entry = opcode::MkDirAt::new(CWD, path.as_ptr()).mode(mode as libc::mode_t).build();
        self.push(entry, Pending::Paths { _first: path, _second: None, done: Box::new(done) })
    }

    /// Creates a symbolic link `link` whose target is `target` (`symlink(2)`).
    pub(crate) fn symlink(
        &self,
        target: &Path,
        link: &Path,
        done: impl FnOnce(io::Result<()>) + 'static,
    ) -> io::Result<()> {
        let (target, link) = (c_path(target)?, c_path(link)?);
        let entry = opcode::SymlinkAt::new(CWD, target.as_ptr(), link.as_ptr()).build();
        self.push(entry, Pending::Paths { _first: target, _second: Some(link), done: Box::new(done) })
    }

    /// Creates a hard link `link` to `original`, not following a final symbolic link (`link(2)`).
    pub(crate) fn link(
        &self,
        original: &Path,
        link: &Path,
        done: impl FnOnce(io::Result<()>) + 'static,
    ) -> io::Result<()> {
        let (original, link) = (c_path(original)?, c_path(link)?);
        let entry = opcode::LinkAt::new(CWD, original.as_ptr(), CWD, link.as_ptr()).build();
        self.push(entry, Pending::Paths { _first: original, _second: Some(link), done: Box::new(done) })
    }

    /// Truncates or extends `file` to `len` bytes (`ftruncate(2)`); `EINVAL` past `i64::MAX`, as libuv.
    pub(crate) fn ftruncate(
        &self,
        file: &Rc<uv::fs::File>,
        len: u64,
        done: impl FnOnce(io::Result<()>) + 'static,
    ) -> io::Result<()> {
        if i64::try_from(len).is_err() {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let entry = opcode::Ftruncate::new(types::Fd(file.fd()), len).build();
        let keep: Rc<dyn Any> = file.clone();
        self.push(entry, Pending::Status { _file: Some(keep), done: Box::new(done) })
    }
}
