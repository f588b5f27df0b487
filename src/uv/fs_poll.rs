//! [`FsPoll`]: notice changes to a path by `stat`-ing it at an interval (`uv_fs_poll_t`).

use std::ffi::{c_int, c_uint};
use std::path::{Path, PathBuf};
use std::time::Duration;

use libuv_sys2 as sys;

use super::addr::cpath;
use super::fs::Stat;
use super::fs_event::read_c_path;
use super::handle::{impl_handle, Callback, Owned};
use super::loop_::Loop;
use crate::error::{Error, Result};

type FsPollCb = dyn FnMut(&FsPoll, Result<(Stat, Stat)>);

/// A path watcher that polls with `stat` (`uv_fs_poll_t`): slower than [`FsEvent`](super::FsEvent), but it
/// works where change notifications do not (network file systems, some containers).
///
/// The first `stat` sets the baseline; after that the callback runs whenever the metadata changes, with the
/// previous and current [`Stat`]. While the path is missing or unreadable the callback gets the error once
/// (`ENOENT`…), not at every interval, and then again when something changes: when the file appears, the
/// "previous" stat is all zeros. Dropping the handle stops and closes it; a callback may stop, restart or
/// drop its own handle.
///
/// ```
/// use std::time::Duration;
/// use uvio::uv::{FsPoll, Loop, RunMode};
///
/// let path = std::env::temp_dir().join(format!("uvio-doc-fs-poll-{}", std::process::id()));
/// let _ = std::fs::remove_file(&path);
/// let lp = Loop::new()?;
/// let poll = FsPoll::new(&lp)?;
/// poll.start(&path, Duration::from_millis(10), |p, res| {
///     assert_eq!(res.unwrap_err(), uvio::Error::ENOENT); // the file does not exist yet
///     p.stop().unwrap();
/// })?;
/// lp.run(RunMode::Default)?;
/// # Ok::<(), uvio::Error>(())
/// ```
pub struct FsPoll {
    h: Owned<sys::uv_fs_poll_t, Callback<FsPollCb>>,
}

impl_handle!(FsPoll);

impl FsPoll {
    /// Creates a stopped watcher on `lp` (`uv_fs_poll_init`).
    pub fn new(lp: &Loop) -> Result<FsPoll> {
        // SAFETY: `raw` points to zeroed memory inside the box that Owned::new keeps alive.
        let h = Owned::new(lp, Callback::default(), |l, raw| unsafe { sys::uv_fs_poll_init(l, raw) })?;
        Ok(FsPoll { h })
    }

    /// Starts polling `path` every `interval` (milliseconds resolution, at least 1 ms); `cb` gets
    /// `(previous, current)` stats on each change, or the error that `stat` hit (`uv_fs_poll_start`).
    /// On a started watcher libuv keeps the path and interval and only the callback is replaced:
    /// [`stop`](FsPoll::stop) first to change them.
    /// `EINVAL` for a NUL byte in the path. Sub-second intervals may miss changes on file systems with coarse
    /// timestamps; libuv recommends several seconds for portability.
    pub fn start(
        &self,
        path: impl AsRef<Path>,
        interval: Duration,
        cb: impl FnMut(&FsPoll, Result<(Stat, Stat)>) + 'static,
    ) -> Result<()> {
        self.h.check_open()?;
        let path = cpath(path.as_ref())?;
        let ms = c_uint::try_from(interval.as_millis()).unwrap_or(c_uint::MAX).max(1);
        // SAFETY: the handle is initialised and open; `path` is NUL-terminated and alive for the call (libuv
        // copies it); `on_fs_poll` matches this box type.
        Error::check(unsafe { sys::uv_fs_poll_start(self.h.raw(), Some(on_fs_poll), path.as_ptr(), ms) })?;
        self.h.state().set_reusing(cb, |b| b);
        Ok(())
    }

    /// Stops polling; the callback is dropped (`uv_fs_poll_stop`). A `stat` already in flight completes
    /// silently.
    pub fn stop(&self) -> Result<()> {
        // SAFETY: the handle is initialised; stopping a stopped or closing watcher is a no-op in libuv.
        Error::check(unsafe { sys::uv_fs_poll_stop(self.h.raw()) })?;
        self.h.state().clear();
        Ok(())
    }

    /// The polled path, as given to [`FsPoll::start`]; `EINVAL` when stopped (`uv_fs_poll_getpath`).
    pub fn path(&self) -> Result<PathBuf> {
        // SAFETY: the handle is initialised; libuv writes at most `*size` bytes to `buf` (see read_c_path).
        read_c_path(|buf, size| unsafe { sys::uv_fs_poll_getpath(self.h.raw(), buf, size) })
    }
}

unsafe extern "C" fn on_fs_poll(
    raw: *mut sys::uv_fs_poll_t,
    status: c_int,
    prev: *const sys::uv_stat_t,
    curr: *const sys::uv_stat_t,
) {
    // SAFETY: libuv passes the watcher we started, alive until its close callback; the view lives for this call.
    let poll = unsafe { Owned::view(raw, |h| FsPoll { h }) };
    let res = Error::check(status).and_then(|_| {
        if prev.is_null() || curr.is_null() {
            return Err(Error::EINVAL); // libuv always passes both on success; never trust a null
        }
        // SAFETY: on success libuv passes two valid stat structs that live for this callback; we copy them.
        Ok(unsafe { (Stat::from_raw(&*prev), Stat::from_raw(&*curr)) })
    });
    poll.h.invoke(|s| s, |cb| cb(&poll, res));
}
