//! The machinery behind every fs operation, and one [`Op`] constructor per libuv call.
//!
//! An [`Op`] is a request ready to start: what it lends libuv (`keep`: paths, buffers, the file it works on),
//! a `start` function that calls the `uv_fs_*` function, and an `extract` function that reads the result out
//! of the finished `uv_fs_t`. The same `Op` runs either way, in the same order (start, extract, cleanup, hand
//! back `keep`), so `keep` outlives `uv_fs_req_cleanup`, which may read memory in it (readdir's entry array):
//! - [`Op::submit`]: on libuv's thread pool. One [`ReqBox`] holds the request, `keep` and the user's callback
//!   until libuv calls back, whatever the user drops meanwhile.
//! - [`Op::run`]: synchronously on the calling thread (libuv's `cb == NULL` mode); the request is on the stack.

use std::ffi::{c_char, c_int, c_uint, CStr, CString};
use std::io::{IoSlice, IoSliceMut};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use libuv_sys2 as sys;

use super::file::{Dir, DirInner, File, FileInner};
use super::types::{AccessMode, CopyFlags, Dirent, DirentType, FileTime, OpenFlags, Stat, StatFs, SymlinkFlags};
use crate::error::{Error, Result};
use crate::uv::addr::{cpath, path_from_c};
use crate::uv::loop_::{Loop, LoopInner};
use crate::uv::req::{self, PoolReq, ReqBox};

/// Starts the request: calls a `uv_fs_*` function with `keep`'s arguments, the loop, the request and the
/// completion callback (`None`: run synchronously).
///
/// Callers guarantee: the loop's memory is alive, the request is zeroed memory that stays at its address until
/// the request has completed, and `keep` stays alive and in place until then.
type Start<K> = unsafe fn(&mut K, *mut sys::uv_loop_t, *mut sys::uv_fs_t, sys::uv_fs_cb) -> c_int;

/// Reads the result of a finished request, before `uv_fs_req_cleanup`.
///
/// Callers guarantee: the request has completed, and it was started by the `Start` of the same [`Op`].
type Extract<K, T> = unsafe fn(&mut sys::uv_fs_t, &mut K, &Rc<LoopInner>) -> T;

/// An fs request ready to run; see the module docs.
pub(super) struct Op<K, T> {
    keep: K,
    start: Start<K>,
    extract: Extract<K, T>,
}

/// The state of an in-flight request, owned by its [`ReqBox`].
struct Pending<K, T, F> {
    keep: K,
    extract: Extract<K, T>,
    cb: F,
    _pool: PoolReq,
}

type FsBox<K, T, F> = ReqBox<sys::uv_fs_t, Option<Pending<K, T, F>>>;

impl<K, T> Op<K, T> {
    fn new(keep: K, start: Start<K>, extract: Extract<K, T>) -> Self {
        Op { keep, start, extract }
    }

    /// Starts the request on libuv's thread pool; `cb` gets the result and `keep` back, on the loop thread.
    pub(super) fn submit<F>(self, lp: &Loop, cb: F) -> Result<()>
    where
        K: 'static,
        T: 'static,
        F: FnOnce(T, K) + 'static,
    {
        let Op { keep, start, extract } = self;
        let pending = Pending { keep, extract, cb, _pool: PoolReq::new(lp.inner()) };
        req::submit(lp.inner(), Some(pending), |l, boxed: *mut FsBox<K, T, F>| {
            // SAFETY: `boxed` is the box `submit` just allocated: live, zeroed request, and it stays at this address
            // with `keep` inside until `on_fs` frees it; `lp` keeps the loop alive. The two field borrows are
            // disjoint.
            unsafe {
                let raw = &raw mut (*boxed).raw;
                let Some(pending) = &mut (*boxed).state else { return Error::EINVAL.code() };
                let ret = start(&mut pending.keep, l, raw, Some(on_fs::<K, T, F>));
                if ret < 0 {
                    // libuv will not call back: free what it may have allocated before `submit` frees the box.
                    sys::uv_fs_req_cleanup(raw);
                }
                ret
            }
        })
    }

    /// [`Op::submit`] for callbacks that only take the result. `keep` is dropped first, so the callback may close
    /// the file or directory the request used, or start the next request on it.
    pub(super) fn submit_result<F>(self, lp: &Loop, cb: F) -> Result<()>
    where
        K: 'static,
        T: 'static,
        F: FnOnce(T) + 'static,
    {
        self.submit(lp, move |res, keep| {
            drop(keep);
            cb(res)
        })
    }

    /// Runs the request synchronously on the calling thread; returns the result and `keep`.
    pub(super) fn run(mut self, lp: &Rc<LoopInner>) -> (T, K) {
        // SAFETY: uv_fs_t is plain C data; all-zero is a valid value before the start call.
        let mut raw: sys::uv_fs_t = unsafe { std::mem::zeroed() };
        // SAFETY: `lp` keeps the loop's memory alive; a synchronous request only records the loop pointer (fs.c's
        // INIT), so this holds even after uv_loop_close. `raw` and `self.keep` outlive the call, which completes
        // the request before returning.
        let ret = unsafe { (self.start)(&mut self.keep, lp.raw(), &mut raw, None) };
        if ret < 0 {
            raw.result = ret as isize; // argument checks may fail before libuv records a result
        }
        // SAFETY: the request has completed (synchronously) and was started by `start`.
        let out = unsafe { (self.extract)(&mut raw, &mut self.keep, lp) };
        // SAFETY: the request has completed; cleanup frees only what libuv allocated for it.
        unsafe { sys::uv_fs_req_cleanup(&mut raw) };
        (out, self.keep)
    }
}

/// The completion callback of every submitted fs request.
unsafe extern "C" fn on_fs<K, T, F: FnOnce(T, K)>(raw: *mut sys::uv_fs_t) {
    let finish = |b: &mut FsBox<K, T, F>| {
        let Some(Pending { mut keep, extract, cb, .. }) = b.state.take() else { return };
        // SAFETY: libuv calls back once the request has completed; `extract` belongs to the `start` that ran.
        let out = unsafe { extract(&mut b.raw, &mut keep, &b.loop_) };
        // SAFETY: the request has completed; `keep`, which libuv's allocations may reference, is still alive.
        unsafe { sys::uv_fs_req_cleanup(&mut b.raw) };
        cb(out, keep);
    };
    // SAFETY: libuv passes the request that `Op::submit` started, whose box has exactly this type, exactly once.
    unsafe { req::complete(raw, finish) }
}

// ---- Results ----

fn result(req: &sys::uv_fs_t) -> Result<usize> {
    Error::check_size(req.result)
}

fn unit<K>(req: &mut sys::uv_fs_t, _: &mut K, _: &Rc<LoopInner>) -> Result<()> {
    result(req).map(drop)
}

fn size<K>(req: &mut sys::uv_fs_t, _: &mut K, _: &Rc<LoopInner>) -> Result<usize> {
    result(req)
}

fn opened<K>(req: &mut sys::uv_fs_t, _: &mut K, lp: &Rc<LoopInner>) -> Result<File> {
    result(req).map(|fd| File::new(lp, fd as sys::uv_file))
}

fn stat_buf<K>(req: &mut sys::uv_fs_t, _: &mut K, _: &Rc<LoopInner>) -> Result<Stat> {
    result(req)?;
    Ok(Stat::from_raw(&req.statbuf))
}

unsafe fn statfs_buf(req: &mut sys::uv_fs_t, _: &mut CString, _: &Rc<LoopInner>) -> Result<StatFs> {
    result(req)?;
    let ptr = req.ptr.cast::<sys::uv_statfs_t>();
    if ptr.is_null() {
        return Err(Error::ENOMEM);
    }
    // SAFETY: a successful statfs stores a uv_statfs_t at `req.ptr`, freed by the cleanup after this.
    Ok(StatFs::from_raw(unsafe { &*ptr }))
}

/// A NUL-terminated path libuv allocated (or null if it could not).
///
/// # Safety
/// `ptr` must be null or a valid C string.
unsafe fn c_path(ptr: *const c_char) -> Result<PathBuf> {
    if ptr.is_null() {
        return Err(Error::ENOMEM);
    }
    // SAFETY: non-null and valid by the contract.
    Ok(path_from_c(unsafe { CStr::from_ptr(ptr) }))
}

/// readlink and realpath: the path is a string at `req.ptr`.
unsafe fn ptr_path(req: &mut sys::uv_fs_t, _: &mut CString, _: &Rc<LoopInner>) -> Result<PathBuf> {
    result(req)?;
    // SAFETY: a successful readlink/realpath stores a C string at `req.ptr`.
    unsafe { c_path(req.ptr.cast()) }
}

/// mkdtemp: the filled-in template is at `req.path`.
unsafe fn template_path(req: &mut sys::uv_fs_t, _: &mut CString, _: &Rc<LoopInner>) -> Result<PathBuf> {
    result(req)?;
    // SAFETY: mkdtemp copies the template to `req.path` (a C string) and fills it in.
    unsafe { c_path(req.path) }
}

unsafe fn temp_file(req: &mut sys::uv_fs_t, _: &mut CString, lp: &Rc<LoopInner>) -> Result<(File, PathBuf)> {
    let file = File::new(lp, result(req)? as sys::uv_file);
    // SAFETY: as in `template_path`; the descriptor is in `req.result`.
    Ok((file, unsafe { c_path(req.path) }?))
}

/// Copies a directory entry libuv filled in.
///
/// # Safety
/// `ent.name` must be a valid C string.
unsafe fn dirent(ent: &sys::uv_dirent_t) -> Dirent {
    // SAFETY: by the contract.
    let name = path_from_c(unsafe { CStr::from_ptr(ent.name) }).into_os_string();
    Dirent { name, kind: DirentType::from_raw(ent.type_) }
}

fn empty_dirent() -> sys::uv_dirent_t {
    sys::uv_dirent_t { name: std::ptr::null(), type_: sys::uv_dirent_type_t_UV_DIRENT_UNKNOWN }
}

unsafe fn scandir_entries(req: &mut sys::uv_fs_t, _: &mut CString, _: &Rc<LoopInner>) -> Result<Vec<Dirent>> {
    let mut entries = Vec::with_capacity(result(req)?);
    let mut ent = empty_dirent();
    // SAFETY: the scandir request succeeded; each call fills `ent` with a name that stays valid until the next
    // call or the cleanup, and `dirent` copies it at once. UV_EOF ends the list.
    while unsafe { sys::uv_fs_scandir_next(req, &mut ent) } == 0 {
        // SAFETY: scandir_next set a valid name.
        entries.push(unsafe { dirent(&ent) });
    }
    Ok(entries)
}

unsafe fn opened_dir(req: &mut sys::uv_fs_t, _: &mut CString, lp: &Rc<LoopInner>) -> Result<Dir> {
    result(req)?;
    let raw = req.ptr.cast::<sys::uv_dir_t>();
    if raw.is_null() {
        return Err(Error::ENOMEM);
    }
    Ok(Dir::new(lp, raw))
}

type ReaddirKeep = (Rc<DirInner>, Vec<sys::uv_dirent_t>);

unsafe fn read_entries(req: &mut sys::uv_fs_t, keep: &mut ReaddirKeep, _: &Rc<LoopInner>) -> Result<Vec<Dirent>> {
    let n = result(req)?.min(keep.1.len());
    // SAFETY: a successful readdir filled the first `n` entries with valid names (freed by the cleanup after this).
    Ok(keep.1[..n].iter().map(|e| unsafe { dirent(e) }).collect())
}

// ---- Buffers ----

/// The largest region one `uv_buf_t` carries: the most Linux transfers in one call (`MAX_RW_COUNT`, 2 GiB less a
/// page), which also fits Windows' 32-bit lengths. Larger buffers are used in part, which a read or write reports
/// as a short count. (libuv hands Linux file requests to its own io_uring, where a longer one is `EINVAL`, not a
/// short count.)
const MAX_BUF: usize = 0x7fff_f000;

fn uv_buf(ptr: *mut u8, len: usize) -> sys::uv_buf_t {
    sys::uv_buf_t { base: ptr.cast(), len: len.min(MAX_BUF) as _ }
}

/// The `uv_buf_t`s of a read or write; one buffer needs no allocation. libuv copies the array when the request
/// starts, so only the memory it points to must outlive the request.
pub(super) enum Regions {
    One([sys::uv_buf_t; 1]),
    Many(Vec<sys::uv_buf_t>),
}

impl Regions {
    fn as_slice(&self) -> &[sys::uv_buf_t] {
        match self {
            Regions::One(one) => one,
            Regions::Many(many) => many,
        }
    }
}

/// Buffers a read fills. Owned `Vec`s are filled in their spare capacity (after `len`), which grows by the bytes
/// read; borrowed slices are filled from their start.
pub(super) trait ReadBufs {
    /// The writable regions, in order.
    fn regions(&mut self) -> Regions;
    /// Records that the first `n` bytes of the regions were filled.
    ///
    /// # Safety
    /// A read into [`ReadBufs::regions`] did write those `n` bytes.
    unsafe fn filled(&mut self, n: usize);
}

fn spare(v: &mut Vec<u8>) -> sys::uv_buf_t {
    uv_buf(v.spare_capacity_mut().as_mut_ptr().cast(), v.capacity() - v.len())
}

/// Grows `v` by the part of `n` that landed in its spare region; returns the rest.
///
/// # Safety
/// The read did write the first `n` bytes of the regions starting with `v`'s.
unsafe fn grow(v: &mut Vec<u8>, n: usize) -> usize {
    let taken = n.min((v.capacity() - v.len()).min(MAX_BUF));
    // SAFETY: by the contract, `taken` bytes right after `len` (within capacity) are initialised.
    unsafe { v.set_len(v.len() + taken) };
    n - taken
}

impl ReadBufs for Vec<u8> {
    fn regions(&mut self) -> Regions {
        Regions::One([spare(self)])
    }
    unsafe fn filled(&mut self, n: usize) {
        // SAFETY: forwarded contract.
        unsafe { grow(self, n) };
    }
}

impl ReadBufs for Vec<Vec<u8>> {
    fn regions(&mut self) -> Regions {
        Regions::Many(self.iter_mut().map(spare).collect())
    }
    unsafe fn filled(&mut self, mut n: usize) {
        for v in self.iter_mut() {
            // SAFETY: forwarded contract; the regions are filled in order.
            n = unsafe { grow(v, n) };
        }
    }
}

impl ReadBufs for &mut [u8] {
    fn regions(&mut self) -> Regions {
        Regions::One([uv_buf(self.as_mut_ptr(), self.len())])
    }
    unsafe fn filled(&mut self, _: usize) {}
}

impl ReadBufs for &mut [IoSliceMut<'_>] {
    fn regions(&mut self) -> Regions {
        Regions::Many(self.iter_mut().map(|s| uv_buf(s.as_mut_ptr(), s.len())).collect())
    }
    unsafe fn filled(&mut self, _: usize) {}
}

/// Buffers a write sends, in order. libuv's `uv_buf_t` has a mutable pointer, but writes only read through it.
pub(super) trait WriteBufs {
    /// The readable regions, in order.
    fn regions(&self) -> Regions;
}

impl WriteBufs for Vec<u8> {
    fn regions(&self) -> Regions {
        Regions::One([uv_buf(self.as_ptr().cast_mut(), self.len())])
    }
}

impl WriteBufs for Vec<Vec<u8>> {
    fn regions(&self) -> Regions {
        Regions::Many(self.iter().map(|v| uv_buf(v.as_ptr().cast_mut(), v.len())).collect())
    }
}

impl WriteBufs for &[u8] {
    fn regions(&self) -> Regions {
        Regions::One([uv_buf(self.as_ptr().cast_mut(), self.len())])
    }
}

impl WriteBufs for &[IoSlice<'_>] {
    fn regions(&self) -> Regions {
        Regions::Many(self.iter().map(|s| uv_buf(s.as_ptr().cast_mut(), s.len())).collect())
    }
}

/// libuv's offset: `-1` for "the current position".
fn uv_offset(offset: Option<u64>) -> Result<i64> {
    offset.map_or(Ok(-1), |o| i64::try_from(o).map_err(|_| Error::EINVAL))
}

pub(super) type IoKeep<B> = (Rc<FileInner>, B, i64);

unsafe fn start_read<B: ReadBufs>(
    k: &mut IoKeep<B>,
    l: *mut sys::uv_loop_t,
    r: *mut sys::uv_fs_t,
    cb: sys::uv_fs_cb,
) -> c_int {
    let regions = k.1.regions();
    let bufs = regions.as_slice();
    // SAFETY: the `Start` contract; the regions point into `k.1`, kept alive and untouched until completion, and
    // libuv copies the uv_buf_t array itself.
    unsafe { sys::uv_fs_read(l, r, k.0.fd, bufs.as_ptr(), bufs.len().min(MAX_BUF) as c_uint, k.2, cb) }
}

unsafe fn read_done<B: ReadBufs>(req: &mut sys::uv_fs_t, k: &mut IoKeep<B>, _: &Rc<LoopInner>) -> Result<usize> {
    let n = result(req)?;
    // SAFETY: the read succeeded and wrote `n` bytes into the regions, in order.
    unsafe { k.1.filled(n) };
    Ok(n)
}

unsafe fn start_write<B: WriteBufs>(
    k: &mut IoKeep<B>,
    l: *mut sys::uv_loop_t,
    r: *mut sys::uv_fs_t,
    cb: sys::uv_fs_cb,
) -> c_int {
    let regions = k.1.regions();
    let bufs = regions.as_slice();
    // SAFETY: as in `start_read`; a write only reads the regions.
    unsafe { sys::uv_fs_write(l, r, k.0.fd, bufs.as_ptr(), bufs.len().min(MAX_BUF) as c_uint, k.2, cb) }
}

// ---- One constructor per libuv call. Each `start` closure relies on the `Start` contract: a live loop, a
// request that stays put, and `keep` (holding the paths and files passed to libuv) alive until completion. ----

pub(super) fn open(path: &Path, flags: OpenFlags, mode: u32) -> Result<Op<(CString, c_int, c_int), Result<File>>> {
    let start: Start<(CString, c_int, c_int)> = |(p, flags, mode), l, r, cb| {
        // SAFETY: the `Start` contract (see above).
        unsafe { sys::uv_fs_open(l, r, p.as_ptr(), *flags, *mode, cb) }
    };
    Ok(Op::new((cpath(path)?, flags.bits(), mode as c_int), start, opened))
}

pub(super) fn close(fd: sys::uv_file) -> Op<sys::uv_file, Result<()>> {
    let start: Start<sys::uv_file> = |fd, l, r, cb| {
        // SAFETY: the `Start` contract; the descriptor was released by its `File`, so only this request owns it.
        unsafe { sys::uv_fs_close(l, r, *fd, cb) }
    };
    Op::new(fd, start, unit)
}

pub(super) fn read<B: ReadBufs>(file: &File, bufs: B, offset: Option<u64>) -> Result<Op<IoKeep<B>, Result<usize>>> {
    Ok(Op::new((file.inner.clone(), bufs, uv_offset(offset)?), start_read::<B>, read_done::<B>))
}

pub(super) fn write<B: WriteBufs>(file: &File, bufs: B, offset: Option<u64>) -> Result<Op<IoKeep<B>, Result<usize>>> {
    Ok(Op::new((file.inner.clone(), bufs, uv_offset(offset)?), start_write::<B>, size))
}

/// The many ops whose only argument is one path, sharing a start function shape.
macro_rules! path_op {
    ($name:ident, $uv:ident, $out:ty, $extract:expr) => {
        pub(super) fn $name(path: &Path) -> Result<Op<CString, $out>> {
            let start: Start<CString> = |p, l, r, cb| {
                // SAFETY: the `Start` contract (see above).
                unsafe { sys::$uv(l, r, p.as_ptr(), cb) }
            };
            Ok(Op::new(cpath(path)?, start, $extract))
        }
    };
}

path_op!(unlink, uv_fs_unlink, Result<()>, unit);
path_op!(rmdir, uv_fs_rmdir, Result<()>, unit);
path_op!(mkdtemp, uv_fs_mkdtemp, Result<PathBuf>, template_path);
path_op!(mkstemp, uv_fs_mkstemp, Result<(File, PathBuf)>, temp_file);
path_op!(opendir, uv_fs_opendir, Result<Dir>, opened_dir);
path_op!(stat, uv_fs_stat, Result<Stat>, stat_buf);
path_op!(lstat, uv_fs_lstat, Result<Stat>, stat_buf);
path_op!(statfs, uv_fs_statfs, Result<StatFs>, statfs_buf);
path_op!(readlink, uv_fs_readlink, Result<PathBuf>, ptr_path);
path_op!(realpath, uv_fs_realpath, Result<PathBuf>, ptr_path);

pub(super) fn scandir(path: &Path) -> Result<Op<CString, Result<Vec<Dirent>>>> {
    let start: Start<CString> = |p, l, r, cb| {
        // SAFETY: the `Start` contract; libuv defines no scandir flags, so 0.
        unsafe { sys::uv_fs_scandir(l, r, p.as_ptr(), 0, cb) }
    };
    Ok(Op::new(cpath(path)?, start, scandir_entries))
}

/// The ops taking one path and an int (a mode).
macro_rules! path_int_op {
    ($name:ident, $uv:ident, $arg:ident: $ty:ty => $conv:expr) => {
        pub(super) fn $name(path: &Path, $arg: $ty) -> Result<Op<(CString, c_int), Result<()>>> {
            let start: Start<(CString, c_int)> = |(p, arg), l, r, cb| {
                // SAFETY: the `Start` contract (see above).
                unsafe { sys::$uv(l, r, p.as_ptr(), *arg, cb) }
            };
            Ok(Op::new((cpath(path)?, $conv), start, unit))
        }
    };
}

path_int_op!(mkdir, uv_fs_mkdir, mode: u32 => mode as c_int);
path_int_op!(chmod, uv_fs_chmod, mode: u32 => mode as c_int);
path_int_op!(access, uv_fs_access, mode: AccessMode => mode.bits());

/// The ops taking two paths (and flags, for some).
macro_rules! two_paths_op {
    ($name:ident, $uv:ident) => {
        pub(super) fn $name(from: &Path, to: &Path) -> Result<Op<(CString, CString), Result<()>>> {
            let start: Start<(CString, CString)> = |(p, q), l, r, cb| {
                // SAFETY: the `Start` contract (see above).
                unsafe { sys::$uv(l, r, p.as_ptr(), q.as_ptr(), cb) }
            };
            Ok(Op::new((cpath(from)?, cpath(to)?), start, unit))
        }
    };
    ($name:ident, $uv:ident, $flags:ty) => {
        pub(super) fn $name(
            from: &Path,
            to: &Path,
            flags: $flags,
        ) -> Result<Op<(CString, CString, c_int), Result<()>>> {
            let start: Start<(CString, CString, c_int)> = |(p, q, flags), l, r, cb| {
                // SAFETY: the `Start` contract (see above).
                unsafe { sys::$uv(l, r, p.as_ptr(), q.as_ptr(), *flags, cb) }
            };
            Ok(Op::new((cpath(from)?, cpath(to)?, flags.bits()), start, unit))
        }
    };
}

two_paths_op!(rename, uv_fs_rename);
two_paths_op!(link, uv_fs_link);
two_paths_op!(copyfile, uv_fs_copyfile, CopyFlags);
two_paths_op!(symlink, uv_fs_symlink, SymlinkFlags);

/// The ops taking a path and two timestamps.
macro_rules! utime_op {
    ($name:ident, $uv:ident) => {
        pub(super) fn $name(
            path: &Path,
            atime: FileTime,
            mtime: FileTime,
        ) -> Result<Op<(CString, f64, f64), Result<()>>> {
            let start: Start<(CString, f64, f64)> = |(p, atime, mtime), l, r, cb| {
                // SAFETY: the `Start` contract (see above).
                unsafe { sys::$uv(l, r, p.as_ptr(), *atime, *mtime, cb) }
            };
            Ok(Op::new((cpath(path)?, atime.to_uv(), mtime.to_uv()), start, unit))
        }
    };
}

utime_op!(utime, uv_fs_utime);
utime_op!(lutime, uv_fs_lutime);

/// The ops taking only a file.
macro_rules! file_op {
    ($name:ident, $uv:ident, $out:ty, $extract:expr) => {
        pub(super) fn $name(file: &File) -> Op<Rc<FileInner>, $out> {
            let start: Start<Rc<FileInner>> = |f, l, r, cb| {
                // SAFETY: the `Start` contract; `keep` holds the file open until completion.
                unsafe { sys::$uv(l, r, f.fd, cb) }
            };
            Op::new(file.inner.clone(), start, $extract)
        }
    };
}

file_op!(fstat, uv_fs_fstat, Result<Stat>, stat_buf);
file_op!(fsync, uv_fs_fsync, Result<()>, unit);
file_op!(fdatasync, uv_fs_fdatasync, Result<()>, unit);

type FileArg<A> = (Rc<FileInner>, A);

pub(super) fn ftruncate(file: &File, len: u64) -> Result<Op<FileArg<i64>, Result<()>>> {
    let start: Start<FileArg<i64>> = |(f, len), l, r, cb| {
        // SAFETY: the `Start` contract; `keep` holds the file open until completion.
        unsafe { sys::uv_fs_ftruncate(l, r, f.fd, *len, cb) }
    };
    Ok(Op::new((file.inner.clone(), i64::try_from(len).map_err(|_| Error::EINVAL)?), start, unit))
}

pub(super) fn fchmod(file: &File, mode: u32) -> Op<FileArg<c_int>, Result<()>> {
    let start: Start<FileArg<c_int>> = |(f, mode), l, r, cb| {
        // SAFETY: the `Start` contract; `keep` holds the file open until completion.
        unsafe { sys::uv_fs_fchmod(l, r, f.fd, *mode, cb) }
    };
    Op::new((file.inner.clone(), mode as c_int), start, unit)
}

pub(super) fn futime(file: &File, atime: FileTime, mtime: FileTime) -> Op<(Rc<FileInner>, f64, f64), Result<()>> {
    let start: Start<(Rc<FileInner>, f64, f64)> = |(f, atime, mtime), l, r, cb| {
        // SAFETY: the `Start` contract; `keep` holds the file open until completion.
        unsafe { sys::uv_fs_futime(l, r, f.fd, *atime, *mtime, cb) }
    };
    Op::new((file.inner.clone(), atime.to_uv(), mtime.to_uv()), start, unit)
}

type SendfileKeep = (Rc<FileInner>, Rc<FileInner>, i64, usize);

pub(super) fn sendfile(out: &File, input: &File, offset: u64, len: usize) -> Result<Op<SendfileKeep, Result<usize>>> {
    let start: Start<SendfileKeep> = |(out, input, offset, len), l, r, cb| {
        // SAFETY: the `Start` contract; `keep` holds both files open until completion.
        unsafe { sys::uv_fs_sendfile(l, r, out.fd, input.fd, *offset, *len, cb) }
    };
    let offset = i64::try_from(offset).map_err(|_| Error::EINVAL)?;
    Ok(Op::new((out.inner.clone(), input.inner.clone(), offset, len), start, size))
}

pub(super) fn readdir(dir: &Dir, max_entries: usize) -> Result<Op<ReaddirKeep, Result<Vec<Dirent>>>> {
    if max_entries == 0 {
        return Err(Error::EINVAL);
    }
    if dir.is_busy() {
        return Err(Error::EBUSY); // libuv's readdir is not reentrant on one stream
    }
    let start: Start<ReaddirKeep> = |(dir, entries), l, r, cb| {
        // SAFETY: the `Start` contract. `dir.raw` is the live stream from opendir (freed only when the last
        // `DirInner` clone drops, and `keep` holds one); no other readdir uses it (checked above); the entry array
        // libuv fills is in `keep`, alive until after the cleanup that frees the names it stores there.
        unsafe {
            (*dir.raw).dirents = entries.as_mut_ptr();
            (*dir.raw).nentries = entries.len();
            sys::uv_fs_readdir(l, r, dir.raw, cb)
        }
    };
    let entries = std::iter::repeat_with(empty_dirent).take(max_entries).collect();
    Ok(Op::new((dir.inner.clone(), entries), start, read_entries))
}

pub(super) fn closedir(raw: *mut sys::uv_dir_t) -> Op<*mut sys::uv_dir_t, Result<()>> {
    let start: Start<*mut sys::uv_dir_t> = |dir, l, r, cb| {
        // SAFETY: the `Start` contract; the stream was released by its `Dir`, so only this request uses it, and
        // libuv frees it.
        unsafe { sys::uv_fs_closedir(l, r, *dir, cb) }
    };
    Op::new(raw, start, unit)
}

#[cfg(unix)]
fn ids(uid: Option<u32>, gid: Option<u32>) -> (sys::uv_uid_t, sys::uv_gid_t) {
    // `-1` (all bits set) leaves an id unchanged.
    (uid.unwrap_or(u32::MAX) as sys::uv_uid_t, gid.unwrap_or(u32::MAX) as sys::uv_gid_t)
}

#[cfg(unix)]
type ChownKeep = (CString, sys::uv_uid_t, sys::uv_gid_t);

#[cfg(unix)]
pub(super) fn chown(
    path: &Path,
    uid: Option<u32>,
    gid: Option<u32>,
    nofollow: bool,
) -> Result<Op<ChownKeep, Result<()>>> {
    let start: Start<ChownKeep> = |(p, uid, gid), l, r, cb| {
        // SAFETY: the `Start` contract (see above).
        unsafe { sys::uv_fs_chown(l, r, p.as_ptr(), *uid, *gid, cb) }
    };
    let lstart: Start<ChownKeep> = |(p, uid, gid), l, r, cb| {
        // SAFETY: the `Start` contract (see above).
        unsafe { sys::uv_fs_lchown(l, r, p.as_ptr(), *uid, *gid, cb) }
    };
    let (uid, gid) = ids(uid, gid);
    Ok(Op::new((cpath(path)?, uid, gid), if nofollow { lstart } else { start }, unit))
}

#[cfg(unix)]
pub(super) fn fchown(
    file: &File,
    uid: Option<u32>,
    gid: Option<u32>,
) -> Op<(Rc<FileInner>, sys::uv_uid_t, sys::uv_gid_t), Result<()>> {
    let start: Start<(Rc<FileInner>, sys::uv_uid_t, sys::uv_gid_t)> = |(f, uid, gid), l, r, cb| {
        // SAFETY: the `Start` contract; `keep` holds the file open until completion.
        unsafe { sys::uv_fs_fchown(l, r, f.fd, *uid, *gid, cb) }
    };
    let (uid, gid) = ids(uid, gid);
    Op::new((file.inner.clone(), uid, gid), start, unit)
}
