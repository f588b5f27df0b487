//! [`File`] to and from `std::fs::File`, and [`File::try_clone`], on every OS (on Windows a uvio file is a C
//! runtime descriptor over the std file's `HANDLE`: see `uv::fs::OsFile`).
//!
//! uvio keeps the cursor itself and reads and writes at offsets (see the parent module), so the kernel's file
//! position is neither used nor moved while uvio has the file: `from_std` starts the cursor at the kernel's
//! position, and `into_std` puts the kernel's position at the cursor.

use std::future::poll_fn;
use std::io::{self, Seek, SeekFrom};
use std::rc::Rc;

use super::File;

impl File {
    /// Takes over an open std file, its cursor starting at the file's current position (append mode, where
    /// the file was opened with it, is kept). Must be called inside a uvio runtime.
    ///
    /// On Windows the file's `HANDLE` gets a C runtime descriptor (`_open_osfhandle`), which libuv's requests
    /// use; this fails if the C runtime has no descriptor left (the std file is then closed).
    ///
    /// ```
    /// use futures::AsyncReadExt;
    /// # uvio::block_on(async {
    /// let path = std::env::temp_dir().join(format!("uvio-doc-from-std-{}", std::process::id()));
    /// std::fs::write(&path, b"skip:keep")?;
    /// let mut std_file = std::fs::File::open(&path)?;
    /// std::io::Seek::seek(&mut std_file, std::io::SeekFrom::Start(5))?;
    /// let mut file = uvio::fs::File::from_std(std_file)?;
    /// let mut rest = String::new();
    /// file.read_to_string(&mut rest).await?;
    /// assert_eq!(rest, "keep");
    /// # drop(file);
    /// std::fs::remove_file(&path)
    /// # }).unwrap();
    /// ```
    pub fn from_std(file: std::fs::File) -> io::Result<File> {
        let files = super::super::files();
        // Fails (ESPIPE) on a FIFO, pipe or terminal, which has no cursor.
        let pos = (&file).stream_position().ok();
        let file = files.adopt(file.into())?;
        let append = file.is_append();
        let file = File::new(file, files, append);
        if let Some(pos) = pos {
            file.inner.borrow_mut().pos = Some(pos);
        }
        Ok(file)
    }

    /// Hands the file over to std: waits for the request in flight, then gives back the descriptor with its
    /// position set to this file's cursor (at the end, in append mode after a write). The error of a write
    /// accepted earlier is returned instead, as [`flush`](futures::AsyncWriteExt::flush) would (the file is
    /// closed then). Bytes read ahead are read again by std. If a [`read_at`](File::read_at) or
    /// [`write_at`](File::write_at) whose future was dropped is still in flight, the std file is a duplicate
    /// descriptor of the same open file (`dup`), and this one closes when that request completes.
    ///
    /// # Portability
    /// On Windows uvio holds the file as a C runtime descriptor that owns the std file's `HANDLE`, and the C
    /// runtime cannot give the handle up without closing it: the std file always gets a duplicate of the handle
    /// (`DuplicateHandle`, the same access and the same open file, so the same position and append mode) and
    /// uvio's descriptor closes. Nothing is closed twice.
    pub async fn into_std(self) -> io::Result<std::fs::File> {
        self.settle().await?;
        let inner = self.inner.into_inner();
        let fd = match Rc::try_unwrap(inner.file) {
            Ok(file) => match file.into_os_file() {
                Ok(fd) => fd,
                Err(busy) => busy.try_clone_os_file()?,
            },
            Err(shared) => shared.try_clone_os_file()?,
        };
        let mut file = std::fs::File::from(fd);
        if inner.seekable {
            file.seek(inner.pos.map_or(SeekFrom::End(0), SeekFrom::Start))?;
        }
        Ok(file)
    }

    /// A second `File` for the same open file (a `dup` of the descriptor; on Windows a `DuplicateHandle` of
    /// its handle, in a descriptor of its own), after the request in flight: writes through either are seen by
    /// reads through the other. The clone has a cursor of its own, starting where
    /// this one is (uvio's cursors are not the kernel's file position; see [`File`]).
    pub async fn try_clone(&self) -> io::Result<File> {
        poll_fn(|cx| self.inner.borrow_mut().poll_idle(cx)).await;
        let inner = self.inner.borrow();
        if inner.files.runtime_gone() {
            return Err(crate::error::runtime_gone());
        }
        let fd = inner.file.try_clone_os_file()?;
        let clone = File::new(inner.files.adopt(fd)?, inner.files.clone(), inner.append);
        clone.inner.borrow_mut().pos = inner.pos;
        Ok(clone)
    }
}
