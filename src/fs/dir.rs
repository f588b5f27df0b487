//! Directories: [`read_dir`] and its [`ReadDir`] stream, [`DirBuilder`], [`create_dir_all`], [`remove_dir_all`].

use std::ffi::OsString;
use std::future::Future as _;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;

use super::{files, ignore_not_found, metadata, remove_dir, remove_file, symlink_metadata};
use super::{FileType, Metadata};
use crate::engine::files::{received, send};
use crate::reply::{reply, Reply};
use crate::uv::fs::{Dir, Dirent, DirentType};
use crate::uv::{self, Loop};

/// How many entries one `uv_fs_readdir` request fetches.
const BATCH: usize = 64;

/// Opens a directory for listing (`uv_fs_opendir`); the entries come from the returned [`ReadDir`], without `.`
/// and `..`, in the order the file system gives them.
pub async fn read_dir(path: impl AsRef<Path>) -> io::Result<ReadDir> {
    let path = path.as_ref();
    let dir = files().pool(|lp, tx| uv::fs::opendir(lp, path, send(tx))).await?;
    Ok(ReadDir {
        root: Arc::from(path),
        lp: crate::runtime::current().lp.clone(),
        dir: Some(dir),
        batch: Vec::new().into_iter(),
        pending: None,
    })
}

/// The entries of a directory, from [`read_dir`]: a `futures::Stream` of `io::Result<DirEntry>`, also readable
/// with [`next_entry`](ReadDir::next_entry). Entries are fetched in batches of 64 (`uv_fs_readdir`).
///
/// The stream ends after the last entry or after an error. Dropping it, even mid-batch, is safe: the directory
/// stream is closed without blocking (`uv_fs_closedir`), or as soon as a batch in flight completes.
///
/// ```
/// use futures::TryStreamExt;
///
/// uvio::block_on(async {
///     let dir = std::env::temp_dir().join(format!("uvio-doc-readdir-{}", std::process::id()));
///     uvio::fs::create_dir_all(dir.join("sub")).await?;
///     uvio::fs::write(dir.join("file"), b"x").await?;
///     let mut names: Vec<_> = uvio::fs::read_dir(&dir).await?.map_ok(|e| e.file_name()).try_collect().await?;
///     names.sort();
///     assert_eq!(names, ["file", "sub"]);
///     uvio::fs::remove_dir_all(&dir).await
/// })
/// .unwrap();
/// ```
pub struct ReadDir {
    root: Arc<Path>,
    lp: Loop,
    /// `None` once the stream has ended.
    dir: Option<Dir>,
    /// The entries of the last batch not yet handed out.
    batch: std::vec::IntoIter<Dirent>,
    /// The batch in flight.
    pending: Option<Reply<crate::Result<Vec<Dirent>>>>,
}

impl ReadDir {
    /// The next entry, or `None` at the end.
    pub async fn next_entry(&mut self) -> io::Result<Option<DirEntry>> {
        std::future::poll_fn(|cx| self.poll_next_entry(cx)).await
    }

    /// Polls for the next entry, or `None` at the end.
    pub fn poll_next_entry(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<DirEntry>>> {
        loop {
            if let Some(ent) = self.batch.next() {
                let Dirent { name, kind } = ent;
                return Poll::Ready(Ok(Some(DirEntry { root: self.root.clone(), name, kind })));
            }
            if let Some(rx) = &mut self.pending {
                let res = std::task::ready!(Pin::new(rx).poll(cx));
                self.pending = None;
                match received(res).and_then(|r| Ok(r?)) {
                    Ok(batch) if !batch.is_empty() => self.batch = batch.into_iter(),
                    Ok(_) => {
                        self.finish();
                        return Poll::Ready(Ok(None));
                    }
                    Err(e) => {
                        self.finish();
                        return Poll::Ready(Err(e));
                    }
                }
                continue;
            }
            let Some(dir) = &self.dir else { return Poll::Ready(Ok(None)) };
            let (tx, rx) = reply();
            if let Err(e) = uv::fs::readdir(&self.lp, dir, BATCH, send(tx)) {
                self.finish();
                return Poll::Ready(Err(e.into()));
            }
            self.pending = Some(rx);
        }
    }

    /// Ends the stream, closing the directory without blocking (or when the batch in flight completes).
    fn finish(&mut self) {
        if let Some(dir) = self.dir.take() {
            // An error here (EBUSY while a batch is in flight) drops `dir`, which then closes when it completes.
            let _ = uv::fs::closedir(&self.lp, dir, |_| {});
        }
    }
}

impl Stream for ReadDir {
    type Item = io::Result<DirEntry>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_next_entry(cx).map(Result::transpose)
    }
}

impl Drop for ReadDir {
    fn drop(&mut self) {
        self.finish();
    }
}

impl std::fmt::Debug for ReadDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadDir").field("path", &self.root).finish_non_exhaustive()
    }
}

/// An entry of a directory, from [`ReadDir`].
#[derive(Debug, Clone)]
pub struct DirEntry {
    root: Arc<Path>,
    name: OsString,
    kind: DirentType,
}

impl DirEntry {
    /// The entry's full path: the path given to [`read_dir`] joined with [`file_name`](DirEntry::file_name).
    pub fn path(&self) -> PathBuf {
        self.root.join(&self.name)
    }

    /// The entry's file name, without any leading path.
    pub fn file_name(&self) -> OsString {
        self.name.clone()
    }

    /// The entry's type, not following symbolic links: from the directory listing itself when the file system
    /// reports it (no extra request), else from `uv_fs_lstat`.
    pub async fn file_type(&self) -> io::Result<FileType> {
        match FileType::from_dirent(self.kind) {
            Some(t) => Ok(t),
            None => Ok(self.metadata().await?.file_type()),
        }
    }

    /// The entry's metadata, not following symbolic links (`uv_fs_lstat`), like `std::fs::DirEntry::metadata`.
    pub async fn metadata(&self) -> io::Result<Metadata> {
        symlink_metadata(self.path()).await
    }
}

/// Creates directories with options: recursively, and with a mode on Unix, like `std::fs::DirBuilder`.
#[derive(Debug, Clone)]
pub struct DirBuilder {
    recursive: bool,
    mode: u32,
}

impl Default for DirBuilder {
    fn default() -> DirBuilder {
        DirBuilder::new()
    }
}

impl DirBuilder {
    /// Non-recursive, mode `0o777` (before the umask).
    pub fn new() -> DirBuilder {
        DirBuilder { recursive: false, mode: 0o777 }
    }

    /// Also create missing parents, and accept a directory that already exists.
    pub fn recursive(&mut self, recursive: bool) -> &mut DirBuilder {
        self.recursive = recursive;
        self
    }

    /// The permission bits of the directories created (default `0o777`, before the umask). Unix only.
    #[cfg(unix)]
    pub fn mode(&mut self, mode: u32) -> &mut DirBuilder {
        self.mode = mode;
        self
    }

    /// Creates the directory `path` (`uv_fs_mkdir`, and for a recursive builder `uv_fs_stat` to accept what
    /// already exists as long as it is a directory).
    pub async fn create(&self, path: impl AsRef<Path>) -> io::Result<()> {
        let path = path.as_ref();
        if !self.recursive {
            return self.mkdir(path).await;
        }
        if path.as_os_str().is_empty() {
            return Ok(()); // as std: the current directory, which exists
        }
        // Walk up to the first ancestor that exists or can be created, then create the rest downwards.
        let mut missing = Vec::new();
        let mut cur = path;
        loop {
            match self.mkdir_or_dir(cur).await {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::NotFound => match cur.parent() {
                    Some(parent) if !parent.as_os_str().is_empty() => {
                        missing.push(cur);
                        cur = parent;
                    }
                    _ => return Err(e),
                },
                Err(e) => return Err(e),
            }
        }
        for dir in missing.into_iter().rev() {
            self.mkdir_or_dir(dir).await?;
        }
        Ok(())
    }

    async fn mkdir(&self, path: &Path) -> io::Result<()> {
        super::mkdir(path, self.mode).await
    }

    /// mkdir, where an existing directory (or a link to one) counts as success.
    async fn mkdir_or_dir(&self, path: &Path) -> io::Result<()> {
        match self.mkdir(path).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => match metadata(path).await {
                Ok(m) if m.is_dir() => Ok(()),
                _ => Err(e),
            },
            other => other,
        }
    }
}

/// Creates a directory and all its missing parents; a directory that already exists is fine (anything else
/// there is an error). See [`DirBuilder`].
pub async fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    DirBuilder::new().recursive(true).create(path).await
}

/// Removes a directory and everything in it, never following symbolic links: a link is removed, not what it
/// points to. A symbolic link given as `path` is removed itself. Listing uses `uv_fs_scandir`, types come from
/// the listing (or `uv_fs_lstat` when the file system does not report them), removal `uv_fs_unlink` and
/// `uv_fs_rmdir`. Entries that vanish meanwhile are skipped.
pub async fn remove_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let root = path.as_ref();
    let meta = symlink_metadata(root).await?;
    if meta.is_symlink() {
        return remove_file(root).await;
    }
    if !meta.is_dir() {
        return Err(crate::Error::ENOTDIR.into());
    }
    // Depth first without recursion: a directory is pushed back as `listed` and removed once its contents are.
    let mut stack = vec![(root.to_path_buf(), false)];
    while let Some((dir, listed)) = stack.pop() {
        if listed {
            let res = remove_dir(&dir).await;
            if dir == root {
                res?
            } else {
                ignore_not_found(res)?
            }
            continue;
        }
        let entries = match files().pool(|lp, tx| uv::fs::scandir(lp, &dir, send(tx))).await {
            Err(e) if e.kind() == io::ErrorKind::NotFound && dir != root => continue,
            res => res?,
        };
        stack.push((dir.clone(), true));
        for Dirent { name, kind } in entries {
            let child = dir.join(name);
            let is_dir = match kind {
                DirentType::Dir => true,
                DirentType::Unknown => match symlink_metadata(&child).await {
                    Ok(m) => m.is_dir(),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                },
                _ => false,
            };
            if is_dir {
                stack.push((child, false));
            } else {
                ignore_not_found(remove_file(&child).await)?;
            }
        }
    }
    Ok(())
}
