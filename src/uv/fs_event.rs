//! [`FsEvent`]: be told when a file or directory changes, through the OS's notification API (`uv_fs_event_t`).

use std::borrow::Cow;
use std::ffi::{c_char, c_int, c_uint, CStr};
use std::path::{Path, PathBuf};

use libuv_sys2 as sys;

use super::addr::{cpath, path_from_c};
use super::handle::{impl_handle, Callback, Owned};
use super::loop_::Loop;
use crate::error::{Error, Result};

/// What changed, as reported by [`FsEvent`] (`uv_fs_event`). Both may be set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FsEventKind {
    /// An entry appeared, disappeared or was renamed (`UV_RENAME`).
    pub rename: bool,
    /// An entry's contents or metadata changed (`UV_CHANGE`).
    pub change: bool,
}

/// Options for [`FsEvent::start`] (`uv_fs_event_flags`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FsEventFlags {
    /// Also watch subdirectories of a watched directory (`UV_FS_EVENT_RECURSIVE`). Supported on macOS and
    /// Windows only; elsewhere it is ignored and only the directory's own entries are watched.
    pub recursive: bool,
}

type FsEventCb = dyn FnMut(&FsEvent, Result<(Option<&Path>, FsEventKind)>);

/// A file system watcher (`uv_fs_event_t`), backed by inotify, FSEvents/kqueue or ReadDirectoryChangesW.
///
/// Watching a directory reports changes to its entries, with the entry's name (relative to the directory) when
/// the OS gives one; watching a file reports changes to that file. Events may be coalesced or split
/// differently on each OS (creating a file is a `rename` on Linux, and may come with `change`s), so treat them
/// as "look again", not as an exact log. Dropping the handle stops and closes it; a callback may stop,
/// restart or drop its own handle.
///
/// ```
/// use uvio::uv::{FsEvent, FsEventFlags, Loop, RunMode};
///
/// let dir = std::env::temp_dir().join(format!("uvio-doc-fs-event-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let lp = Loop::new()?;
/// let watcher = FsEvent::new(&lp)?;
/// watcher.start(&dir, FsEventFlags::default(), |w, event| {
///     let (name, kind) = event.unwrap();
///     println!("{name:?} changed: {kind:?}");
///     w.stop().unwrap();
/// })?;
/// std::fs::write(dir.join("hello.txt"), b"hi").unwrap();
/// lp.run(RunMode::Default)?;
/// # drop(watcher);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), uvio::Error>(())
/// ```
pub struct FsEvent {
    h: Owned<sys::uv_fs_event_t, Callback<FsEventCb>>,
}

impl_handle!(FsEvent);

impl FsEvent {
    /// Creates a stopped watcher on `lp` (`uv_fs_event_init`).
    pub fn new(lp: &Loop) -> Result<FsEvent> {
        // SAFETY: `raw` points to zeroed memory inside the box that Owned::new keeps alive.
        let h = Owned::new(lp, Callback::default(), |l, raw| unsafe { sys::uv_fs_event_init(l, raw) })?;
        Ok(FsEvent { h })
    }

    /// Starts watching `path`; `cb` gets the changed entry's name (if the OS reports one) and what changed,
    /// or an error (`uv_fs_event_start`). `ENOENT` if `path` does not exist, `EINVAL` if the watcher is already
    /// started or the path holds a NUL byte. libuv copies the path.
    pub fn start(
        &self,
        path: impl AsRef<Path>,
        flags: FsEventFlags,
        cb: impl FnMut(&FsEvent, Result<(Option<&Path>, FsEventKind)>) + 'static,
    ) -> Result<()> {
        self.h.check_open()?;
        let path = cpath(path.as_ref())?;
        let flags = if flags.recursive { sys::uv_fs_event_flags_UV_FS_EVENT_RECURSIVE as c_uint } else { 0 };
        // SAFETY: the handle is initialised and open; `path` is a NUL-terminated string alive for the call
        // (libuv copies it); `on_fs_event` matches this box type.
        Error::check(unsafe { sys::uv_fs_event_start(self.h.raw(), Some(on_fs_event), path.as_ptr(), flags) })?;
        self.h.state().set_reusing(cb, |b| b);
        Ok(())
    }

    /// Stops watching; the callback is dropped (`uv_fs_event_stop`).
    pub fn stop(&self) -> Result<()> {
        // SAFETY: the handle is initialised; stopping a stopped or closing watcher is a no-op in libuv.
        Error::check(unsafe { sys::uv_fs_event_stop(self.h.raw()) })?;
        self.h.state().clear();
        Ok(())
    }

    /// The watched path, as given to [`FsEvent::start`]; `EINVAL` when stopped (`uv_fs_event_getpath`).
    pub fn path(&self) -> Result<PathBuf> {
        // SAFETY: the handle is initialised; libuv writes at most `*size` bytes to `buf` (see read_c_path).
        read_c_path(|buf, size| unsafe { sys::uv_fs_event_getpath(self.h.raw(), buf, size) })
    }
}

/// Calls a libuv getter of the `(buffer, *size)` shape (`uv_fs_event_getpath`, `uv_cwd`, …): tries a 256-byte
/// buffer, and on `ENOBUFS` retries with the size libuv asked for. `get` must write at most `*size` bytes,
/// NUL-terminated, and set `*size` to the length without the NUL (or, on `ENOBUFS`, to the size needed).
pub(super) fn read_c_path(mut get: impl FnMut(*mut c_char, *mut usize) -> c_int) -> Result<PathBuf> {
    let mut buf = vec![0u8; 256];
    loop {
        let mut size = buf.len();
        let ret = get(buf.as_mut_ptr().cast(), &mut size);
        if ret == Error::ENOBUFS.code() && size > buf.len() {
            buf.resize(size, 0);
            continue;
        }
        Error::check(ret)?;
        let c = CStr::from_bytes_until_nul(&buf).map_err(|_| Error::EINVAL)?;
        return Ok(path_from_c(c));
    }
}

/// A C string from libuv as a path, without copying where the OS allows (always on Unix; UTF-8 on Windows).
fn borrowed_path(c: &CStr) -> Cow<'_, Path> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Cow::Borrowed(Path::new(std::ffi::OsStr::from_bytes(c.to_bytes())))
    }
    #[cfg(not(unix))]
    match c.to_str() {
        Ok(s) => Cow::Borrowed(Path::new(s)),
        Err(_) => Cow::Owned(path_from_c(c)),
    }
}

unsafe extern "C" fn on_fs_event(raw: *mut sys::uv_fs_event_t, filename: *const c_char, events: c_int, status: c_int) {
    // SAFETY: libuv passes the watcher we started, alive until its close callback; the view lives for this call.
    let watcher = unsafe { Owned::view(raw, |h| FsEvent { h }) };
    let name = (!filename.is_null()).then(|| {
        // SAFETY: a non-null `filename` is a NUL-terminated string valid for this callback.
        borrowed_path(unsafe { CStr::from_ptr(filename) })
    });
    let kind = FsEventKind {
        rename: events & sys::uv_fs_event_UV_RENAME as c_int != 0,
        change: events & sys::uv_fs_event_UV_CHANGE as c_int != 0,
    };
    let res = Error::check(status).map(|_| (name.as_deref(), kind));
    watcher.h.invoke(|s| s, |cb| cb(&watcher, res));
}
