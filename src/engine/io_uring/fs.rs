//! File operations on the ring: reads and writes at offsets, `openat`, `close`, `statx`, `fsync`
//! (Linux 5.6), and the path operations and `ftruncate`: rename, unlink, rmdir, mkdir, symlink, link
//! (`IORING_OP_RENAMEAT`, `UNLINKAT`, `MKDIRAT`, `SYMLINKAT`, `LINKAT`: Linux 5.11 to 5.15) and
//! `IORING_OP_FTRUNCATE` (Linux 6.9).
//!
//! Each is the exact `*at` form of the syscall libuv's thread pool makes for the same operation (`rename`,
//! `unlink`, `rmdir`, `mkdir`, `symlink`, `link`, `ftruncate`, all relative to the current directory), so the
//! results and errors are the kernel's same ones on both engines. The paths are `CString`s owned by the slot
//! until the completion arrives: a dropped future never frees a path the kernel may still read.

use std::any::Any;
use std::ffi::CString;
use std::io;
use std::os::fd::IntoRawFd;
use std::path::Path;
use std::rc::Rc;

use io_uring::{opcode, squeue, types};

use super::{Driver, Pending};
use crate::uv;
use crate::uv::fs::{OpenFlags, Stat, Timespec};

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

/// What a statx asks for: `STATX_BASIC_STATS | STATX_BTIME`, like libuv.
const STATX_MASK: u32 = libc::STATX_BASIC_STATS | libc::STATX_BTIME;

/// libuv's `uv__statx_to_stat`, so both engines report the same [`Stat`].
pub(crate) fn stat_from_statx(s: &libc::statx) -> Stat {
    let ts = |t: &libc::statx_timestamp| Timespec { sec: t.tv_sec, nsec: t.tv_nsec };
    Stat {
        dev: libc::makedev(s.stx_dev_major, s.stx_dev_minor),
        mode: u64::from(s.stx_mode),
        nlink: u64::from(s.stx_nlink),
        uid: u64::from(s.stx_uid),
        gid: u64::from(s.stx_gid),
        rdev: libc::makedev(s.stx_rdev_major, s.stx_rdev_minor),
        ino: s.stx_ino,
        size: s.stx_size,
        blksize: u64::from(s.stx_blksize),
        blocks: s.stx_blocks,
        flags: 0,
        gen: 0,
        atime: ts(&s.stx_atime),
        mtime: ts(&s.stx_mtime),
        ctime: ts(&s.stx_ctime),
        birthtime: ts(&s.stx_btime),
    }
}

impl Driver {
    /// Reads at most `buf.len() - start` bytes (and at most 1 GiB) at `offset` (at the current position for
    /// `None`: a file that is not seekable) into `buf[start..]`; `done` gets the count and the buffer, cut to
    /// `start + count` bytes (so the bytes read are its last ones). The bytes are already initialised, so the
    /// kernel's writes need no zero-filling first (memcheck cannot see writes through the ring: it keeps seeing
    /// the old, defined values). `file` stays open until then. `EINVAL` for an offset past `i64::MAX`, as libuv
    /// (the ring would take it for -1, "the current position").
    pub(crate) fn read_at(
        &self,
        file: &Rc<uv::fs::File>,
        mut buf: Vec<u8>,
        start: usize,
        offset: Option<u64>,
        done: impl FnOnce(io::Result<usize>, Vec<u8>) + 'static,
    ) -> io::Result<()> {
        let offset = ring_offset(offset)?;
        let start = start.min(buf.len());
        let len = (buf.len() - start).min(1 << 30) as u32;
        let dst = buf[start..].as_mut_ptr();
        let entry = opcode::Read::new(types::Fd(file.fd()), dst, len).offset(offset).build();
        let file: Rc<dyn Any> = file.clone();
        // The Vec's heap block does not move when the Vec moves into the slot.
        self.push(entry, Pending::Read { buf, start, _file: file, done: Box::new(done) })
    }

    /// Writes `buf` (at most 1 GiB of it) at `offset` (at the current position for `None`: a file that is not
    /// seekable, or one in append mode, where the kernel writes at the end whatever the offset); `done` gets the
    /// count written and the buffer. `EINVAL` for an offset past `i64::MAX`, as for [`Self::read_at`].
    pub(crate) fn write_at(
        &self,
        file: &Rc<uv::fs::File>,
        buf: Vec<u8>,
        offset: Option<u64>,
        done: impl FnOnce(io::Result<usize>, Vec<u8>) + 'static,
    ) -> io::Result<()> {
        let offset = ring_offset(offset)?;
        let len = buf.len().min(1 << 30) as u32;
        let entry = opcode::Write::new(types::Fd(file.fd()), buf.as_ptr(), len).offset(offset).build();
        // A write to a pipe nobody reads may wait forever: such a write is cancelled at shutdown (see `Drop`).
        let may_wait = !file.is_seekable();
        let file: Rc<dyn Any> = file.clone();
        self.push(entry, Pending::Write { buf, may_wait, _file: file, done: Box::new(done) })
    }

    /// Opens `path` (`openat` with `O_CLOEXEC`); `done` gets the file, owned by the uv layer.
    ///
    /// The kernel first tries an open inline with `O_NONBLOCK`, which it clears afterwards: for a FIFO that
    /// does not wait for the other end, and a write-only open without a reader fails with `ENXIO`, where
    /// `open(2)` would wait. `wait` sends the open to the kernel's workers at once (`IOSQE_ASYNC`), where it
    /// waits as `open(2)` does (and can still be cancelled at shutdown); callers retry with it on `ENXIO`.
    pub(crate) fn open(
        &self,
        path: &Path,
        flags: OpenFlags,
        mode: u32,
        wait: bool,
        done: impl FnOnce(io::Result<uv::fs::File>) + 'static,
    ) -> io::Result<()> {
        let path = c_path(path)?;
        let entry = opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), path.as_ptr())
            .flags(flags.bits() | libc::O_CLOEXEC)
            .mode(mode)
            .build();
        let entry = if wait { entry.flags(squeue::Flags::ASYNC) } else { entry };
        self.push(entry, Pending::Open { _path: path, lp: self.lp.clone(), done: Box::new(done) })
    }

    /// The metadata of `path` (statx), following a final symbolic link if `follow`.
    pub(crate) fn statx(
        &self,
        path: &Path,
        follow: bool,
        done: impl FnOnce(io::Result<Stat>) + 'static,
    ) -> io::Result<()> {
        let flags = if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW };
        self.statx_at(libc::AT_FDCWD, c_path(path)?, flags, None, Box::new(done))
    }

    /// The metadata of an open file (statx with `AT_EMPTY_PATH`).
    pub(crate) fn fstatx(
        &self,
        file: &Rc<uv::fs::File>,
        done: impl FnOnce(io::Result<Stat>) + 'static,
    ) -> io::Result<()> {
        let keep: Rc<dyn Any> = file.clone();
        self.statx_at(file.fd(), CString::default(), libc::AT_EMPTY_PATH, Some(keep), Box::new(done))
    }

    fn statx_at(
        &self,
        dirfd: i32,
        path: CString,
        flags: i32,
        file: Option<Rc<dyn Any>>,
        done: Box<dyn FnOnce(io::Result<Stat>)>,
    ) -> io::Result<()> {
        // SAFETY: `libc::statx` is a plain C struct of integers, for which all-zero bytes are a valid value.
        let mut buf: Box<libc::statx> = Box::new(unsafe { std::mem::zeroed() });
        let dst: *mut libc::statx = &mut *buf;
        let entry = opcode::Statx::new(types::Fd(dirfd), path.as_ptr(), dst.cast::<types::statx>())
            .flags(flags)
            .mask(STATX_MASK)
            .build();
        self.push(entry, Pending::Statx { _path: path, buf, _file: file, done })
    }

    /// Flushes the file's data, and its metadata too unless `data_only` (fsync / fdatasync).
    pub(crate) fn fsync(
        &self,
        file: &Rc<uv::fs::File>,
        data_only: bool,
        done: impl FnOnce(io::Result<()>) + 'static,
    ) -> io::Result<()> {
        let flags = if data_only { types::FsyncFlags::DATASYNC } else { types::FsyncFlags::empty() };
        let entry = opcode::Fsync::new(types::Fd(file.fd())).flags(flags).build();
        let keep: Rc<dyn Any> = file.clone();
        self.push(entry, Pending::Status { _file: Some(keep), done: Box::new(done) })
    }

    /// Closes `file`; `EBUSY` (and the file is dropped, closing when its requests finish) while libuv requests
    /// on it are in flight.
    pub(crate) fn close(&self, file: uv::fs::File, done: impl FnOnce(io::Result<()>) + 'static) -> io::Result<()> {
        let fd = file.into_os_file().map_err(|_| io::Error::from_raw_os_error(libc::EBUSY))?;
        // The descriptor is the kernel's to close from here on; until the completion, its number stays taken.
        let entry = opcode::Close::new(types::Fd(fd.into_raw_fd())).build();
        self.push(entry, Pending::Status { _file: None, done: Box::new(done) })
    }
}

/// The offset of a read or write entry: `u64::MAX` (-1, "the current position") for `None`; `EINVAL` for an
/// offset past `i64::MAX`, which the kernel would read as negative (-1 included), exactly as libuv reports it.
fn ring_offset(offset: Option<u64>) -> io::Result<u64> {
    match offset {
        None => Ok(u64::MAX),
        Some(offset) if i64::try_from(offset).is_ok() => Ok(offset),
        Some(_) => Err(io::Error::from_raw_os_error(libc::EINVAL)),
    }
}

/// A path as the kernel reads it; `EINVAL` (`InvalidInput`) for a NUL byte inside, exactly as the libuv
/// engine reports it.
fn c_path(path: &Path) -> io::Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}
