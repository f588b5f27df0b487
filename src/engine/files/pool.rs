//! The path pool: a few process-wide threads that make blocking path syscalls (`statx` / `stat` / `lstat`) for
//! every runtime, without libuv's per-request hand-off costs.
//!
//! libuv's thread pool signals its condition variable for every request while a worker is idle, and wakes the
//! loop (`uv_async_send`) for every completion: with 64 metadata calls in flight, the loop thread spends more
//! time waking workers than the workers spend in `statx`. Here:
//! - a job is pushed under one lock; a worker is woken only when one is idle and no wake is already on its way.
//!   A worker that takes a job and sees more queued wakes the next idle one, so a burst of submissions costs the
//!   loop thread one wake, not one per job;
//! - a worker hands its result to the runtime's [`Port`]; only the completion that finds the port empty wakes
//!   the loop (one `uv_async_send` per batch), which then takes the whole batch at once;
//! - a job owns its path (a `CString`), and its result is a plain value: nothing the loop thread owns is shared
//!   with a worker, so a runtime may go away with jobs in flight (their results are dropped with the last
//!   reference to the port).
//!
//! Threads start on demand, up to [`MAX_THREADS`], and end after [`IDLE_EXIT`] without work; like libuv's
//! pool they serve every runtime of the process, and are joined at process exit once the queue is empty.

#![allow(unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks)]

use std::collections::VecDeque;
use std::ffi::{CStr, CString};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use crate::uv::fs::Stat;
use crate::uv::AsyncSender;

/// The most threads the pool runs: about as many as libuv's default pool (4), enough to keep two or more cores
/// busy with syscalls that rarely block for long.
const MAX_THREADS: usize = 4;

/// How long a thread waits for work before it ends.
const IDLE_EXIT: Duration = Duration::from_secs(10);

/// What a job asks of the kernel.
pub(crate) enum Op {
    /// The metadata of a path, following a final symbolic link if `follow`.
    Stat { path: CString, follow: bool },
}

/// What a job gives back: the metadata, or the `errno` of the failure.
pub(crate) type Outcome = Result<Stat, i32>;

/// One completion: the key the loop side gave the job, and its outcome.
pub(crate) type Done = (usize, Outcome);

/// One operation for a worker: what to do, and where its outcome goes.
pub(crate) struct Job {
    pub(crate) op: Op,
    pub(crate) key: usize,
    pub(crate) port: Arc<Port>,
}

/// A runtime's completion queue: workers push outcomes, the loop takes them in batches.
pub(crate) struct Port {
    done: Mutex<Vec<Done>>,
    /// Wakes the runtime's loop; `send` fails harmlessly once the runtime is gone.
    wake: AsyncSender,
}

impl Port {
    /// A port whose completions wake the loop through `wake`.
    pub(crate) fn new(wake: AsyncSender) -> Port {
        Port { done: Mutex::new(Vec::new()), wake }
    }

    /// Swaps every completion delivered so far into `batch` (empty on entry: its capacity is reused for the next
    /// batch, so steady state allocates nothing).
    pub(crate) fn take(&self, batch: &mut Vec<Done>) {
        debug_assert!(batch.is_empty());
        std::mem::swap(&mut *lock(&self.done), batch);
    }

    /// Delivers one completion; the first of a batch wakes the loop (the later ones find it already woken or
    /// about to take them).
    fn deliver(&self, key: usize, outcome: Outcome) {
        let first = {
            let mut done = lock(&self.done);
            done.push((key, outcome));
            done.len() == 1
        };
        if first {
            // `EBADF` once the runtime is gone: its results are dropped with this port.
            let _ = self.wake.send();
        }
    }
}

/// The process-wide pool: queued jobs and the threads' bookkeeping, under one lock.
struct Pool {
    state: Mutex<State>,
    work: Condvar,
    /// The process that made the pool: a child made by `fork` has none of its threads (and maybe a lock a
    /// thread held at the fork), so it never uses the pool.
    pid: u32,
}

struct State {
    jobs: VecDeque<Job>,
    /// Threads running (idle or not).
    threads: usize,
    /// Threads waiting on `work`.
    idle: usize,
    /// A wake was sent and its thread has not taken the lock yet: no second wake needed.
    waking: bool,
    /// The process is exiting: threads end once the queue is empty, and no job is taken any more.
    exiting: bool,
    /// The threads started, joined at exit (a finished one is dropped when the next starts).
    handles: Vec<std::thread::JoinHandle<()>>,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        // SAFETY: `stop_at_exit` is a C-ABI function that takes nothing and never unwinds; registering it has
        // no other effect. (If registration fails, threads are simply not joined at exit.)
        unsafe { libc::atexit(stop_at_exit) };
        Pool {
            state: Mutex::new(State {
                jobs: VecDeque::new(),
                threads: 0,
                idle: 0,
                waking: false,
                exiting: false,
                handles: Vec::new(),
            }),
            work: Condvar::new(),
            pid: std::process::id(),
        }
    })
}

/// At process exit, as libuv's pool does (its `cleanup` destructor): lets the threads finish the queued jobs and
/// joins them, so that nothing of theirs is left allocated (memcheck would report their thread structures).
extern "C" fn stop_at_exit() {
    let _ = std::panic::catch_unwind(|| {
        let pool = pool();
        if std::process::id() != pool.pid {
            return; // a forked child: the threads are not there
        }
        let handles = {
            let mut st = lock(&pool.state);
            st.exiting = true;
            std::mem::take(&mut st.handles)
        };
        pool.work.notify_all();
        for handle in handles {
            let _ = handle.join();
        }
    });
}

/// Locks `m`, ignoring poisoning: nothing panics while holding these locks, and their data stays consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Queues `job`. `Err` gives it back when the pool has no thread and cannot start one, or in a child process
/// made by `fork` (the caller then takes another way).
pub(crate) fn submit(job: Job) -> Result<(), Job> {
    let pool = pool();
    if std::process::id() != pool.pid {
        return Err(job);
    }
    let mut st = lock(&pool.state);
    if st.exiting {
        return Err(job);
    }
    if st.idle == 0 && st.threads < MAX_THREADS {
        st.threads += 1;
        drop(st);
        let started = std::thread::Builder::new().name("uvio-fs".into()).spawn(worker);
        st = lock(&pool.state);
        match started {
            Ok(handle) => {
                st.handles.retain(|h| !h.is_finished()); // dropping a finished thread's handle frees it
                st.handles.push(handle);
            }
            Err(_) => {
                st.threads -= 1;
                if st.threads == 0 {
                    return Err(job);
                }
            }
        }
    }
    st.jobs.push_back(job);
    wake_one(pool, &mut st);
    Ok(())
}

/// Wakes an idle thread if there is one and no wake is already on its way.
fn wake_one(pool: &Pool, st: &mut State) {
    if st.idle > 0 && !st.waking && !st.jobs.is_empty() {
        st.waking = true;
        pool.work.notify_one();
    }
}

/// A pool thread: runs jobs until none comes for [`IDLE_EXIT`].
fn worker() {
    let pool = pool();
    let mut st = lock(&pool.state);
    loop {
        if let Some(job) = st.jobs.pop_front() {
            wake_one(pool, &mut st); // more queued: another idle thread takes the next
            drop(st);
            job.run();
            st = lock(&pool.state);
            continue;
        }
        if st.exiting {
            st.threads -= 1;
            return;
        }
        st.idle += 1;
        let (guard, wait) = pool.work.wait_timeout(st, IDLE_EXIT).unwrap_or_else(|poisoned| poisoned.into_inner());
        st = guard;
        st.idle -= 1;
        st.waking = false;
        if wait.timed_out() && st.jobs.is_empty() {
            st.threads -= 1;
            return;
        }
    }
}

impl Job {
    /// Makes the syscall and delivers its outcome; the path is freed here.
    fn run(self) {
        let outcome = match &self.op {
            Op::Stat { path, follow } => stat(path, *follow),
        };
        self.port.deliver(self.key, outcome);
    }
}

/// The `errno` of the syscall that just failed on this thread.
fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

/// `statx` with libuv's mask and flags, so that every engine reports the same [`Stat`]; `stat` / `lstat` where
/// the kernel has no `statx` (before 4.11) or a sandbox refuses it, as libuv falls back.
#[cfg(target_os = "linux")]
fn stat(path: &CStr, follow: bool) -> Outcome {
    use std::sync::atomic::{AtomicBool, Ordering};
    static NO_STATX: AtomicBool = AtomicBool::new(false);
    if !NO_STATX.load(Ordering::Relaxed) {
        let flags = if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW };
        let mask = libc::STATX_BASIC_STATS | libc::STATX_BTIME;
        let mut buf = std::mem::MaybeUninit::<libc::statx>::uninit();
        // SAFETY: `path` is a NUL-terminated string that outlives the call, and `buf` is writable memory of the
        // size of a `statx`, which the kernel fills on success.
        let ret = unsafe { libc::statx(libc::AT_FDCWD, path.as_ptr(), flags, mask, buf.as_mut_ptr()) };
        if ret == 0 {
            // SAFETY: statx returned 0, so it wrote the whole struct.
            return Ok(crate::engine::io_uring::stat_from_statx(unsafe { buf.assume_init_ref() }));
        }
        match errno() {
            // libuv's test for "no usable statx" (uv__fs_statx): missing, or refused by seccomp.
            libc::ENOSYS | libc::EPERM | libc::EOPNOTSUPP => NO_STATX.store(true, Ordering::Relaxed),
            e => return Err(e),
        }
    }
    plain_stat(path, follow)
}

#[cfg(not(target_os = "linux"))]
fn stat(path: &CStr, follow: bool) -> Outcome {
    plain_stat(path, follow)
}

/// `stat` or `lstat`, converted as libuv's `uv__to_stat` does.
fn plain_stat(path: &CStr, follow: bool) -> Outcome {
    let mut buf = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `path` is a NUL-terminated string that outlives the call, and `buf` is writable memory of the size
    // of a `stat`, which the call fills on success.
    let ret = unsafe {
        match follow {
            true => libc::stat(path.as_ptr(), buf.as_mut_ptr()),
            false => libc::lstat(path.as_ptr(), buf.as_mut_ptr()),
        }
    };
    if ret != 0 {
        return Err(errno());
    }
    // SAFETY: the call returned 0, so it wrote the whole struct.
    Ok(stat_from_libc(unsafe { buf.assume_init_ref() }))
}

/// libuv's `uv__to_stat`: the same fields, widened. Where the OS has no creation time (Linux without statx),
/// libuv reports the status change time.
#[allow(clippy::unnecessary_cast)] // the field types differ between OSes
fn stat_from_libc(s: &libc::stat) -> Stat {
    use crate::uv::fs::Timespec;
    let ts = |sec: libc::time_t, nsec: libc::c_long| Timespec { sec: sec as i64, nsec: nsec as u32 };
    #[cfg(target_os = "macos")]
    let (birthtime, flags, gen) = (ts(s.st_birthtime, s.st_birthtime_nsec), s.st_flags as u64, s.st_gen as u64);
    #[cfg(not(target_os = "macos"))]
    let (birthtime, flags, gen) = (ts(s.st_ctime, s.st_ctime_nsec), 0, 0);
    Stat {
        dev: s.st_dev as u64,
        mode: s.st_mode as u64,
        nlink: s.st_nlink as u64,
        uid: s.st_uid as u64,
        gid: s.st_gid as u64,
        rdev: s.st_rdev as u64,
        ino: s.st_ino as u64,
        size: s.st_size as u64,
        blksize: s.st_blksize as u64,
        blocks: s.st_blocks as u64,
        flags,
        gen,
        atime: ts(s.st_atime, s.st_atime_nsec),
        mtime: ts(s.st_mtime, s.st_mtime_nsec),
        ctime: ts(s.st_ctime, s.st_ctime_nsec),
        birthtime,
    }
}
