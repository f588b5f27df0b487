//! [`OpenOptions`]: how to open a [`File`], with `std::fs::OpenOptions`' rules.

use std::io;
use std::path::Path;

use super::{files, File};
use crate::uv::fs::OpenFlags;

/// Options for opening a [`File`] (`uv_fs_open`), with the same meaning and the same validity rules as
/// `std::fs::OpenOptions`.
///
/// ```
/// use futures::AsyncWriteExt;
/// use uvio::fs::OpenOptions;
///
/// uvio::block_on(async {
///     let path = std::env::temp_dir().join(format!("uvio-doc-open-{}", std::process::id()));
///     let mut log = OpenOptions::new().create(true).append(true).open(&path).await?;
///     log.write_all(b"one line\n").await?;
///     log.flush().await?; // reports the write's outcome
///     drop(log);
///     uvio::fs::remove_file(&path).await
/// })
/// .unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct OpenOptions {
    read: bool,
    write: bool,
    append: bool,
    truncate: bool,
    create: bool,
    create_new: bool,
    mode: u32,
}

impl Default for OpenOptions {
    fn default() -> OpenOptions {
        OpenOptions::new()
    }
}

impl OpenOptions {
    /// No access at all (set at least one of read, write, append); new files get mode `0o666` minus the umask.
    pub fn new() -> OpenOptions {
        OpenOptions {
            read: false,
            write: false,
            append: false,
            truncate: false,
            create: false,
            create_new: false,
            mode: 0o666,
        }
    }

    /// Open for reading.
    pub fn read(&mut self, read: bool) -> &mut OpenOptions {
        self.read = read;
        self
    }

    /// Open for writing.
    pub fn write(&mut self, write: bool) -> &mut OpenOptions {
        self.write = write;
        self
    }

    /// Every write goes to the end of the file, atomically (`O_APPEND`); implies write access. Reads and seeks
    /// still use the file's cursor, which a write moves to the end.
    pub fn append(&mut self, append: bool) -> &mut OpenOptions {
        self.append = append;
        self
    }

    /// Truncate an existing file to length 0 (needs write access).
    pub fn truncate(&mut self, truncate: bool) -> &mut OpenOptions {
        self.truncate = truncate;
        self
    }

    /// Create the file if it does not exist (needs write or append access).
    pub fn create(&mut self, create: bool) -> &mut OpenOptions {
        self.create = create;
        self
    }

    /// Create the file, failing with `AlreadyExists` if it exists, atomically (`O_CREAT | O_EXCL`); `create`
    /// and `truncate` are then ignored.
    pub fn create_new(&mut self, create_new: bool) -> &mut OpenOptions {
        self.create_new = create_new;
        self
    }

    /// The permission bits of a file this creates (default `0o666`, before the umask). Unix only.
    #[cfg(unix)]
    pub fn mode(&mut self, mode: u32) -> &mut OpenOptions {
        self.mode = mode;
        self
    }

    /// Opens the file at `path` with these options (`uv_fs_open`). `InvalidInput` for a combination std
    /// rejects too (no access mode; create or truncate without write access; truncate with append).
    pub async fn open(&self, path: impl AsRef<Path>) -> io::Result<File> {
        let flags = self.flags()?;
        let (path, mode) = (path.as_ref(), self.mode);
        let files = files();
        let file = files.open(path, flags, mode).await?;
        Ok(File::new(file, files, self.append))
    }

    /// The libuv flags, validated like std does.
    fn flags(&self) -> io::Result<OpenFlags> {
        let invalid = |msg| Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        let access = match (self.read, self.write, self.append) {
            (true, false, false) => OpenFlags::RDONLY,
            (false, true, false) => OpenFlags::WRONLY,
            (true, true, false) => OpenFlags::RDWR,
            (false, _, true) => OpenFlags::WRONLY | OpenFlags::APPEND,
            (true, _, true) => OpenFlags::RDWR | OpenFlags::APPEND,
            (false, false, false) => return invalid("no access mode: set read, write or append"),
        };
        if !self.write && !self.append && (self.truncate || self.create || self.create_new) {
            return invalid("creating or truncating a file needs write or append access");
        }
        if self.append && self.truncate && !self.create_new {
            return invalid("truncate and append cannot be combined");
        }
        let creation = match (self.create, self.truncate, self.create_new) {
            (_, _, true) => OpenFlags::CREAT | OpenFlags::EXCL,
            (false, false, false) => OpenFlags::empty(),
            (true, false, false) => OpenFlags::CREAT,
            (false, true, false) => OpenFlags::TRUNC,
            (true, true, false) => OpenFlags::CREAT | OpenFlags::TRUNC,
        };
        Ok(access | creation)
    }
}
