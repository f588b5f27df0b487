//! A [`File`] to and from the OS's owned file type, for `fs::File::{from_std, into_std, try_clone}` and the
//! io_uring engine's opens: [`OsFile`] is `OwnedFd` on Unix and `OwnedHandle` on Windows, the types
//! `std::fs::File` converts to and from.
//!
//! On Unix a libuv file (`uv_file`) *is* the descriptor. On Windows it is a C runtime descriptor that owns a
//! `HANDLE`: libuv finds the handle with `_get_osfhandle` for each request, and closing the descriptor
//! (`_close`, in `uv_fs_close`) closes the handle too. So a handle is adopted with `_open_osfhandle` (libuv's
//! `uv_open_osfhandle`, which calls the C runtime libuv itself was built against), and since the C runtime
//! cannot let a descriptor go without closing its handle, a file leaves uvio as a duplicate of the handle
//! (`DuplicateHandle`) while its descriptor closes: never two owners of one handle, never a double close.

use std::io;

use super::file::File;
use crate::uv::loop_::Loop;

/// The owned OS file that `std::fs::File` converts to and from.
#[cfg(unix)]
pub(crate) type OsFile = std::os::fd::OwnedFd;
/// The owned OS file that `std::fs::File` converts to and from.
#[cfg(windows)]
pub(crate) type OsFile = std::os::windows::io::OwnedHandle;

#[cfg(unix)]
impl File {
    /// Takes ownership of a descriptor the crate already owns (the io_uring engine's `openat`).
    pub(crate) fn from_owned_fd(lp: &Loop, fd: std::os::fd::OwnedFd) -> File {
        use std::os::fd::IntoRawFd;
        File::new(lp.inner(), fd.into_raw_fd())
    }

    /// Takes ownership of an open file (`fs::File::from_std`, `try_clone`). Never fails on Unix.
    pub(crate) fn from_os_file(lp: &Loop, file: OsFile) -> io::Result<File> {
        Ok(File::from_owned_fd(lp, file))
    }

    /// Gives up ownership as an `OwnedFd` (for the io_uring engine's close, `fs::File::into_std`); refused while
    /// requests are in flight, like [`File::into_raw`].
    pub(crate) fn into_os_file(self) -> Result<OsFile, File> {
        use std::os::fd::FromRawFd;
        if self.fd() < 0 {
            return Err(self); // a `from_raw` File with nothing to close
        }
        let fd = self.into_raw()?;
        // SAFETY: `into_raw` released the open descriptor (`fd >= 0`, checked above) that this `File` owned: by
        // `File`'s invariant nothing else owns or closes it.
        Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
    }

    /// A new descriptor for the same open file (`dup`, close-on-exec): it shares the file's offset and flags.
    pub(crate) fn try_clone_os_file(&self) -> io::Result<OsFile> {
        if self.fd() < 0 {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        // SAFETY: the descriptor is open (`fd >= 0`) and owned by this `File`, which outlives the borrow (it ends
        // with this call, after the dup).
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(self.fd()) };
        fd.try_clone_to_owned()
    }

    /// Whether the file was opened with `O_APPEND` (writes go to its end whatever the offset), asked with
    /// `fcntl(F_GETFL)`; `false` if that fails.
    pub(crate) fn is_append(&self) -> bool {
        // SAFETY: F_GETFL on a descriptor this `File` owns (or `-1`, which fails with `EBADF`) reads its flags
        // and touches no memory.
        let flags = unsafe { libc::fcntl(self.fd(), libc::F_GETFL) };
        flags >= 0 && flags & libc::O_APPEND != 0
    }
}

#[cfg(windows)]
impl File {
    /// Takes ownership of an open handle (`fs::File::from_std`, `try_clone`) as a new C runtime descriptor
    /// (`uv_open_osfhandle`). Fails, the handle then closing, when the C runtime has no descriptor left.
    pub(crate) fn from_os_file(lp: &Loop, file: OsFile) -> io::Result<File> {
        use std::os::windows::io::{AsRawHandle, IntoRawHandle};
        // SAFETY: `_open_osfhandle` reads the handle value only; the handle is open (owned by `file`). On success
        // the descriptor owns the handle (closing it closes the handle), so `file` lets go of it below.
        let fd = unsafe { libuv_sys2::uv_open_osfhandle(file.as_raw_handle().cast()) };
        if fd < 0 {
            // The handle still belongs to `file`, which closes it.
            return Err(io::Error::other("no free C runtime file descriptor for the handle (_open_osfhandle)"));
        }
        let _owned_by_fd = file.into_raw_handle();
        Ok(File::new(lp.inner(), fd))
    }

    /// Gives up ownership as an `OwnedHandle` (`fs::File::into_std`); refused while requests are in flight, like
    /// [`File::into_raw`], and when the handle cannot be duplicated. The descriptor cannot give its handle
    /// away (closing it closes the handle), so the caller gets a duplicate and the descriptor closes here.
    pub(crate) fn into_os_file(self) -> Result<OsFile, File> {
        if self.fd() < 0 || self.pending_requests() > 0 {
            return Err(self);
        }
        match self.try_clone_os_file() {
            Ok(handle) => Ok(handle), // `self` drops here: its descriptor (and the original handle) closes
            Err(_) => Err(self),
        }
    }

    /// A new handle for the same open file (`DuplicateHandle`, same access, not inheritable): it shares the
    /// file's position and access rights.
    pub(crate) fn try_clone_os_file(&self) -> io::Result<OsFile> {
        self.with_handle(|handle| handle.try_clone_to_owned())?
    }

    /// Whether the handle may only append: granted `FILE_APPEND_DATA` without `FILE_WRITE_DATA`, which is how
    /// both std (`OpenOptions::append`) and libuv (`UV_FS_O_APPEND`) open for appending; Windows then writes at
    /// the end whatever offset a write names. Asked with `NtQueryInformationFile(FileAccessInformation)`;
    /// `false` if that fails.
    pub(crate) fn is_append(&self) -> bool {
        use std::os::windows::io::AsRawHandle;
        use windows_sys::Wdk::Storage::FileSystem::{NtQueryInformationFile, FILE_ACCESS_INFORMATION};
        use windows_sys::Win32::System::IO::IO_STATUS_BLOCK;
        /// `FILE_INFORMATION_CLASS::FileAccessInformation` (wdm.h), which windows-sys 0.52 does not name.
        const FILE_ACCESS_INFORMATION_CLASS: i32 = 8;
        /// The access rights (winnt.h) that tell an append-only handle.
        const FILE_WRITE_DATA: u32 = 0x2;
        const FILE_APPEND_DATA: u32 = 0x4;
        let access = self.with_handle(|handle| {
            let mut info = FILE_ACCESS_INFORMATION { AccessFlags: 0 };
            // SAFETY: an all-zero IO_STATUS_BLOCK (a union of an integer and a pointer, and an integer) is valid.
            let mut status: IO_STATUS_BLOCK = unsafe { std::mem::zeroed() };
            // SAFETY: the handle is open for the duration of the call (borrowed from this `File`); `status` and
            // `info` are writable locals of the sizes passed, which the call fills and does not keep.
            let ntstatus = unsafe {
                NtQueryInformationFile(
                    handle.as_raw_handle() as _,
                    &mut status,
                    std::ptr::from_mut(&mut info).cast(),
                    std::mem::size_of::<FILE_ACCESS_INFORMATION>() as u32,
                    FILE_ACCESS_INFORMATION_CLASS,
                )
            };
            (ntstatus >= 0).then_some(info.AccessFlags)
        });
        matches!(access, Ok(Some(flags)) if flags & FILE_APPEND_DATA != 0 && flags & FILE_WRITE_DATA == 0)
    }

    /// Runs `f` with the handle behind the descriptor (`uv_get_osfhandle`), borrowed for the call; `EBADF`
    /// for a `File` with nothing open.
    fn with_handle<T>(&self, f: impl FnOnce(std::os::windows::io::BorrowedHandle<'_>) -> T) -> io::Result<T> {
        /// `INVALID_HANDLE_VALUE`, what `_get_osfhandle` returns for a descriptor that is not open.
        const INVALID_HANDLE: isize = -1;
        let ebadf = || io::Error::from(crate::Error::EBADF);
        if self.fd() < 0 {
            return Err(ebadf());
        }
        // SAFETY: `_get_osfhandle` only looks the descriptor up (libuv disables the C runtime's debug assertion
        // for descriptors that are not open).
        let raw = unsafe { libuv_sys2::uv_get_osfhandle(self.fd()) };
        if raw.is_null() || raw as isize == INVALID_HANDLE {
            return Err(ebadf());
        }
        // SAFETY: the handle is open and owned by this `File`'s descriptor, which stays open while `self` is
        // borrowed: longer than the borrowed handle, which does not escape `f` (its lifetime is the call's).
        let handle = unsafe { std::os::windows::io::BorrowedHandle::borrow_raw(raw.cast()) };
        Ok(f(handle))
    }
}
