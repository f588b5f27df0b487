//! [`Metadata`], [`FileType`] and [`Permissions`]: what `stat` reports, shaped like `std::fs`'s types.

use std::io;
use std::time::SystemTime;

use crate::uv::fs::{DirentType, Stat, Timespec};

// The file type bits of `st_mode`: the same values on Linux, macOS and in libuv's Windows emulation.
const S_IFMT: u64 = 0o170000;
const S_IFIFO: u64 = 0o010000;
const S_IFCHR: u64 = 0o020000;
const S_IFDIR: u64 = 0o040000;
const S_IFBLK: u64 = 0o060000;
const S_IFREG: u64 = 0o100000;
const S_IFLNK: u64 = 0o120000;
const S_IFSOCK: u64 = 0o140000;

/// Metadata about a file, from [`metadata`](super::metadata), [`symlink_metadata`](super::symlink_metadata),
/// [`File::metadata`](super::File::metadata) or [`DirEntry::metadata`](super::DirEntry::metadata): libuv's
/// `uv_stat_t`, which [`Metadata::stat`] gives in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metadata {
    stat: Stat,
}

impl Metadata {
    pub(super) fn from_stat(stat: Stat) -> Metadata {
        Metadata { stat }
    }

    /// Every field libuv reports (`uv_stat_t`): device, inode, owner, link count, block counts, …
    pub fn stat(&self) -> &Stat {
        &self.stat
    }

    /// The size in bytes.
    pub fn len(&self) -> u64 {
        self.stat.size
    }

    /// Whether the size is zero.
    pub fn is_empty(&self) -> bool {
        self.stat.size == 0
    }

    /// The type of the file.
    pub fn file_type(&self) -> FileType {
        FileType { mode: self.stat.mode & S_IFMT }
    }

    /// Whether this is a regular file.
    pub fn is_file(&self) -> bool {
        self.file_type().is_file()
    }

    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.file_type().is_dir()
    }

    /// Whether this is a symbolic link (only [`symlink_metadata`](super::symlink_metadata) and
    /// [`DirEntry::metadata`](super::DirEntry::metadata) describe links themselves).
    pub fn is_symlink(&self) -> bool {
        self.file_type().is_symlink()
    }

    /// The permission bits.
    pub fn permissions(&self) -> Permissions {
        Permissions { mode: (self.stat.mode & 0o7777) as u32 }
    }

    /// The last modification of the contents (`st_mtim`).
    pub fn modified(&self) -> io::Result<SystemTime> {
        Ok(self.stat.mtime.to_system_time())
    }

    /// The last access (`st_atim`).
    pub fn accessed(&self) -> io::Result<SystemTime> {
        Ok(self.stat.atime.to_system_time())
    }

    /// The creation time (`st_birthtim`); `Unsupported` where the OS or file system does not record it.
    pub fn created(&self) -> io::Result<SystemTime> {
        if self.stat.birthtime == Timespec::default() {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "creation time is not available here"));
        }
        Ok(self.stat.birthtime.to_system_time())
    }
}

/// The type of a file: regular file, directory, symbolic link or (on Unix) a special file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileType {
    /// The `S_IFMT` bits of `st_mode` (0 when unknown).
    mode: u64,
}

impl FileType {
    /// The type a directory entry reports, `None` when the file system did not say.
    pub(super) fn from_dirent(kind: DirentType) -> Option<FileType> {
        let mode = match kind {
            DirentType::Unknown => return None,
            DirentType::File => S_IFREG,
            DirentType::Dir => S_IFDIR,
            DirentType::Link => S_IFLNK,
            DirentType::Fifo => S_IFIFO,
            DirentType::Socket => S_IFSOCK,
            DirentType::Char => S_IFCHR,
            DirentType::Block => S_IFBLK,
        };
        Some(FileType { mode })
    }

    /// Whether this is a regular file.
    pub fn is_file(&self) -> bool {
        self.mode == S_IFREG
    }

    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.mode == S_IFDIR
    }

    /// Whether this is a symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.mode == S_IFLNK
    }

    /// Whether this is a named pipe. Unix only.
    #[cfg(unix)]
    pub fn is_fifo(&self) -> bool {
        self.mode == S_IFIFO
    }

    /// Whether this is a Unix domain socket. Unix only.
    #[cfg(unix)]
    pub fn is_socket(&self) -> bool {
        self.mode == S_IFSOCK
    }

    /// Whether this is a character device. Unix only.
    #[cfg(unix)]
    pub fn is_char_device(&self) -> bool {
        self.mode == S_IFCHR
    }

    /// Whether this is a block device. Unix only.
    #[cfg(unix)]
    pub fn is_block_device(&self) -> bool {
        self.mode == S_IFBLK
    }
}

/// Permission bits of a file (`mode & 0o7777`), from [`Metadata::permissions`]; set them with
/// [`set_permissions`](super::set_permissions) or [`File::set_permissions`](super::File::set_permissions).
///
/// On Windows libuv only knows read-only or not (the owner's write bit, `0o200`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Permissions {
    mode: u32,
}

impl Permissions {
    /// Whether nobody may write the file (no write bit is set).
    pub fn readonly(&self) -> bool {
        self.mode & 0o222 == 0
    }

    /// Clears every write bit (`true`) or sets them all (`false`), like `std::fs::Permissions` on Unix. Only the
    /// value changes: apply it with [`set_permissions`](super::set_permissions).
    pub fn set_readonly(&mut self, readonly: bool) {
        if readonly {
            self.mode &= !0o222;
        } else {
            self.mode |= 0o222;
        }
    }

    /// The permission bits, such as `0o644`. Unix only.
    #[cfg(unix)]
    pub fn mode(&self) -> u32 {
        self.mode
    }

    /// Replaces the permission bits. Unix only.
    #[cfg(unix)]
    pub fn set_mode(&mut self, mode: u32) {
        self.mode = mode & 0o7777;
    }

    /// Permissions with these bits, such as `0o600`. Unix only.
    #[cfg(unix)]
    pub fn from_mode(mode: u32) -> Permissions {
        Permissions { mode: mode & 0o7777 }
    }

    /// The bits libuv's chmod receives.
    pub(super) fn bits(self) -> u32 {
        self.mode
    }
}
