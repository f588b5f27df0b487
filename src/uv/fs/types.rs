//! The plain data of fs requests: flag sets, [`Stat`], [`StatFs`], [`Dirent`] and [`FileTime`].

use std::ffi::{c_int, OsString};
use std::ops::{BitOr, BitOrAssign};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use libuv_sys2 as sys;

/// Defines a copyable set of libuv flags over a `c_int`, combined with `|`.
macro_rules! flags {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $flag:ident = $value:expr;)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name(c_int);

        impl $name {
            $($(#[$fdoc])* pub const $flag: $name = $name($value as c_int);)*

            /// No flag set.
            pub const fn empty() -> $name {
                $name(0)
            }

            /// Flags from raw bits, passed to libuv as they are (libuv rejects what it does not know).
            pub const fn from_bits(bits: c_int) -> $name {
                $name(bits)
            }

            /// The raw bits libuv receives.
            pub const fn bits(self) -> c_int {
                self.0
            }

            /// Both sets together: `|` usable in `const` items.
            pub const fn union(self, other: $name) -> $name {
                $name(self.0 | other.0)
            }

            /// Whether every flag of `other` is set in `self`.
            pub const fn contains(self, other: $name) -> bool {
                self.0 & other.0 == other.0
            }
        }

        impl BitOr for $name {
            type Output = $name;
            fn bitor(self, rhs: $name) -> $name {
                $name(self.0 | rhs.0)
            }
        }

        impl BitOrAssign for $name {
            fn bitor_assign(&mut self, rhs: $name) {
                self.0 |= rhs.0;
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({:#x})", stringify!($name), self.0)
            }
        }
    };
}

flags! {
    /// Flags of [`open`](super::open) (`UV_FS_O_*`). A flag the OS lacks is 0, so it has no effect there.
    OpenFlags {
        /// Open for reading only (`UV_FS_O_RDONLY`, the zero value).
        RDONLY = sys::UV_FS_O_RDONLY;
        /// Open for writing only (`UV_FS_O_WRONLY`).
        WRONLY = sys::UV_FS_O_WRONLY;
        /// Open for reading and writing (`UV_FS_O_RDWR`).
        RDWR = sys::UV_FS_O_RDWR;
        /// Create the file if it does not exist, with the given mode (`UV_FS_O_CREAT`).
        CREAT = sys::UV_FS_O_CREAT;
        /// With `CREAT`: fail with `EEXIST` if the file exists (`UV_FS_O_EXCL`).
        EXCL = sys::UV_FS_O_EXCL;
        /// Truncate an existing regular file to length 0 (`UV_FS_O_TRUNC`).
        TRUNC = sys::UV_FS_O_TRUNC;
        /// Every write appends at the end of the file (`UV_FS_O_APPEND`).
        APPEND = sys::UV_FS_O_APPEND;
        /// Do not make a terminal the controlling terminal (`UV_FS_O_NOCTTY`, Unix).
        NOCTTY = sys::UV_FS_O_NOCTTY;
        /// Non-blocking mode (`UV_FS_O_NONBLOCK`, Unix).
        NONBLOCK = sys::UV_FS_O_NONBLOCK;
        /// Writes wait for data and metadata to reach the device (`UV_FS_O_SYNC`).
        SYNC = sys::UV_FS_O_SYNC;
        /// Writes wait for data to reach the device (`UV_FS_O_DSYNC`).
        DSYNC = sys::UV_FS_O_DSYNC;
        /// Bypass the page cache where supported (`UV_FS_O_DIRECT`).
        DIRECT = sys::UV_FS_O_DIRECT;
        /// Fail unless the path is a directory (`UV_FS_O_DIRECTORY`).
        DIRECTORY = sys::UV_FS_O_DIRECTORY;
        /// Fail if the last path component is a symbolic link (`UV_FS_O_NOFOLLOW`).
        NOFOLLOW = sys::UV_FS_O_NOFOLLOW;
        /// Do not update the access time on reads (`UV_FS_O_NOATIME`, Linux).
        NOATIME = sys::UV_FS_O_NOATIME;
        /// Take an exclusive lock (`UV_FS_O_EXLOCK`, macOS and Windows).
        EXLOCK = sys::UV_FS_O_EXLOCK;
        /// Open the symbolic link itself (`UV_FS_O_SYMLINK`, macOS).
        SYMLINK = sys::UV_FS_O_SYMLINK;
        /// Use a memory file mapping for reads and writes (`UV_FS_O_FILEMAP`, Windows).
        FILEMAP = sys::UV_FS_O_FILEMAP;
        /// Access will be random: a caching hint (`UV_FS_O_RANDOM`, Windows).
        RANDOM = sys::UV_FS_O_RANDOM;
        /// Access will be sequential: a caching hint (`UV_FS_O_SEQUENTIAL`, Windows).
        SEQUENTIAL = sys::UV_FS_O_SEQUENTIAL;
        /// The file is short-lived: avoid flushing it to disk (`UV_FS_O_SHORT_LIVED`, Windows).
        SHORT_LIVED = sys::UV_FS_O_SHORT_LIVED;
        /// Delete the file when its last descriptor closes (`UV_FS_O_TEMPORARY`, Windows).
        TEMPORARY = sys::UV_FS_O_TEMPORARY;
    }
}

flags! {
    /// Flags of [`copyfile`](super::copyfile) (`UV_FS_COPYFILE_*`).
    CopyFlags {
        /// Fail with `EEXIST` if the destination exists (`UV_FS_COPYFILE_EXCL`); the default overwrites it.
        EXCL = sys::UV_FS_COPYFILE_EXCL;
        /// Try a copy-on-write reflink, falling back to a plain copy (`UV_FS_COPYFILE_FICLONE`).
        FICLONE = sys::UV_FS_COPYFILE_FICLONE;
        /// Only a copy-on-write reflink will do: fail if it is not possible (`UV_FS_COPYFILE_FICLONE_FORCE`).
        FICLONE_FORCE = sys::UV_FS_COPYFILE_FICLONE_FORCE;
    }
}

flags! {
    /// Flags of [`symlink`](super::symlink) (`UV_FS_SYMLINK_*`); they only matter on Windows.
    SymlinkFlags {
        /// The target is a directory (`UV_FS_SYMLINK_DIR`).
        DIR = sys::UV_FS_SYMLINK_DIR;
        /// Make a junction point instead of a symbolic link (`UV_FS_SYMLINK_JUNCTION`).
        JUNCTION = sys::UV_FS_SYMLINK_JUNCTION;
    }
}

flags! {
    /// What [`access`](super::access) checks (`F_OK`, `R_OK`, `W_OK`, `X_OK`; the same values on every OS).
    AccessMode {
        /// The file exists (`F_OK`, the zero value).
        EXISTS = 0;
        /// The caller may read it (`R_OK`).
        READ = 4;
        /// The caller may write it (`W_OK`).
        WRITE = 2;
        /// The caller may execute it (`X_OK`).
        EXECUTE = 1;
    }
}

/// A point in time as libuv reports it (`uv_timespec_t`): seconds and nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timespec {
    /// Whole seconds since 1970-01-01 00:00:00 UTC (negative before it).
    pub sec: i64,
    /// Nanoseconds past `sec`, below 1 000 000 000.
    pub nsec: u32,
}

impl Timespec {
    /// The same instant as a [`SystemTime`].
    pub fn to_system_time(self) -> SystemTime {
        let nanos = Duration::from_nanos(u64::from(self.nsec));
        if self.sec >= 0 {
            UNIX_EPOCH + Duration::from_secs(self.sec as u64) + nanos
        } else {
            UNIX_EPOCH - Duration::from_secs(self.sec.unsigned_abs()) + nanos
        }
    }

    pub(crate) fn from_raw(ts: &sys::uv_timespec_t) -> Timespec {
        // tv_sec is a C `long`: 32 bits on Windows, so widen (a no-op elsewhere); tv_nsec is always in 0..1e9.
        #[allow(clippy::useless_conversion)]
        Timespec { sec: i64::from(ts.tv_sec), nsec: ts.tv_nsec as u32 }
    }
}

impl From<Timespec> for SystemTime {
    fn from(ts: Timespec) -> SystemTime {
        ts.to_system_time()
    }
}

/// File metadata from [`stat`](super::stat), [`fstat`](super::fstat) and [`lstat`](super::lstat)
/// (`uv_stat_t`, every field). Fields the OS does not report are zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stat {
    /// ID of the device holding the file (`st_dev`).
    pub dev: u64,
    /// File type and permission bits (`st_mode`); see [`Stat::is_file`] and friends.
    pub mode: u64,
    /// Number of hard links (`st_nlink`).
    pub nlink: u64,
    /// Owner's user ID (`st_uid`).
    pub uid: u64,
    /// Owner's group ID (`st_gid`).
    pub gid: u64,
    /// Device ID, for special files (`st_rdev`).
    pub rdev: u64,
    /// Inode number (`st_ino`).
    pub ino: u64,
    /// Size in bytes (`st_size`).
    pub size: u64,
    /// Preferred I/O block size (`st_blksize`).
    pub blksize: u64,
    /// Number of 512-byte blocks allocated (`st_blocks`).
    pub blocks: u64,
    /// User-defined flags (`st_flags`, BSD and macOS).
    pub flags: u64,
    /// File generation number (`st_gen`, BSD and macOS).
    pub gen: u64,
    /// Last access (`st_atim`).
    pub atime: Timespec,
    /// Last modification of the contents (`st_mtim`).
    pub mtime: Timespec,
    /// Last status change (`st_ctim`).
    pub ctime: Timespec,
    /// Creation (`st_birthtim`), where the OS and file system record it.
    pub birthtime: Timespec,
}

// The file type bits of `st_mode`: the same values on Linux, macOS and in libuv's Windows emulation.
const S_IFMT: u64 = 0o170000;
const S_IFREG: u64 = 0o100000;
const S_IFDIR: u64 = 0o040000;
const S_IFLNK: u64 = 0o120000;

impl Stat {
    /// Copies libuv's stat (shared with `FsPoll`).
    pub(crate) fn from_raw(s: &sys::uv_stat_t) -> Stat {
        Stat {
            dev: s.st_dev,
            mode: s.st_mode,
            nlink: s.st_nlink,
            uid: s.st_uid,
            gid: s.st_gid,
            rdev: s.st_rdev,
            ino: s.st_ino,
            size: s.st_size,
            blksize: s.st_blksize,
            blocks: s.st_blocks,
            flags: s.st_flags,
            gen: s.st_gen,
            atime: Timespec::from_raw(&s.st_atim),
            mtime: Timespec::from_raw(&s.st_mtim),
            ctime: Timespec::from_raw(&s.st_ctim),
            birthtime: Timespec::from_raw(&s.st_birthtim),
        }
    }

    /// Whether this is a regular file.
    pub fn is_file(&self) -> bool {
        self.mode & S_IFMT == S_IFREG
    }

    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.mode & S_IFMT == S_IFDIR
    }

    /// Whether this is a symbolic link (only [`lstat`](super::lstat) reports links themselves).
    pub fn is_symlink(&self) -> bool {
        self.mode & S_IFMT == S_IFLNK
    }

    /// The permission bits (`mode & 0o7777`).
    pub fn permissions(&self) -> u32 {
        (self.mode & 0o7777) as u32
    }
}

/// File system statistics from [`statfs`](super::statfs) (`uv_statfs_t`). Fields the OS does not report are
/// zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatFs {
    /// File system type (`f_type`).
    pub fs_type: u64,
    /// Optimal transfer block size (`f_bsize`).
    pub bsize: u64,
    /// Total data blocks (`f_blocks`).
    pub blocks: u64,
    /// Free blocks (`f_bfree`).
    pub bfree: u64,
    /// Free blocks available to unprivileged users (`f_bavail`).
    pub bavail: u64,
    /// Total file nodes (`f_files`).
    pub files: u64,
    /// Free file nodes (`f_ffree`).
    pub ffree: u64,
    /// Fragment size (`f_frsize`).
    pub frsize: u64,
}

impl StatFs {
    pub(super) fn from_raw(s: &sys::uv_statfs_t) -> StatFs {
        StatFs {
            fs_type: s.f_type,
            bsize: s.f_bsize,
            blocks: s.f_blocks,
            bfree: s.f_bfree,
            bavail: s.f_bavail,
            files: s.f_files,
            ffree: s.f_ffree,
            frsize: s.f_frsize,
        }
    }
}

/// The type of a directory entry (`uv_dirent_type_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DirentType {
    /// The file system did not say (`UV_DIRENT_UNKNOWN`); use [`lstat`](super::lstat) to find out.
    Unknown,
    /// A regular file (`UV_DIRENT_FILE`).
    File,
    /// A directory (`UV_DIRENT_DIR`).
    Dir,
    /// A symbolic link (`UV_DIRENT_LINK`).
    Link,
    /// A named pipe (`UV_DIRENT_FIFO`).
    Fifo,
    /// A Unix domain socket (`UV_DIRENT_SOCKET`).
    Socket,
    /// A character device (`UV_DIRENT_CHAR`).
    Char,
    /// A block device (`UV_DIRENT_BLOCK`).
    Block,
}

impl DirentType {
    pub(super) fn from_raw(t: sys::uv_dirent_type_t) -> DirentType {
        match t {
            sys::uv_dirent_type_t_UV_DIRENT_FILE => DirentType::File,
            sys::uv_dirent_type_t_UV_DIRENT_DIR => DirentType::Dir,
            sys::uv_dirent_type_t_UV_DIRENT_LINK => DirentType::Link,
            sys::uv_dirent_type_t_UV_DIRENT_FIFO => DirentType::Fifo,
            sys::uv_dirent_type_t_UV_DIRENT_SOCKET => DirentType::Socket,
            sys::uv_dirent_type_t_UV_DIRENT_CHAR => DirentType::Char,
            sys::uv_dirent_type_t_UV_DIRENT_BLOCK => DirentType::Block,
            _ => DirentType::Unknown,
        }
    }
}

/// One directory entry from [`scandir`](super::scandir) or [`readdir`](super::readdir) (`uv_dirent_t`).
/// `.` and `..` are never reported.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Dirent {
    /// The entry's file name (not a full path).
    pub name: OsString,
    /// What kind of file it is.
    pub kind: DirentType,
}

/// A timestamp to set with [`utime`](super::utime), [`futime`](super::futime) or [`lutime`](super::lutime).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileTime {
    /// The current time (`UV_FS_UTIME_NOW`).
    Now,
    /// Leave this timestamp as it is (`UV_FS_UTIME_OMIT`).
    Omit,
    /// This instant; libuv passes it as `f64` seconds, so sub-microsecond precision may be lost.
    At(SystemTime),
}

impl FileTime {
    /// libuv's `double` encoding: seconds since the epoch, or the NOW (infinity) / OMIT (NaN) markers.
    pub(super) fn to_uv(self) -> f64 {
        match self {
            FileTime::Now => f64::INFINITY,
            FileTime::Omit => f64::NAN,
            FileTime::At(t) => match t.duration_since(UNIX_EPOCH) {
                Ok(after) => after.as_secs_f64(),
                Err(before) => -before.duration().as_secs_f64(),
            },
        }
    }
}

impl From<SystemTime> for FileTime {
    fn from(t: SystemTime) -> FileTime {
        FileTime::At(t)
    }
}
