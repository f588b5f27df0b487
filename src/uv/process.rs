//! [`Process`]: spawn a child process and learn when it exits (`uv_process_t`, `uv_spawn`), plus [`kill`] and
//! a few process-wide helpers.

use std::ffi::{c_char, c_int, c_uint, c_void, CString, OsStr, OsString};
use std::path::{Path, PathBuf};
use std::ptr;

use libuv_sys2 as sys;

use super::addr::{cpath, path_from_c};
use super::fs_event::read_c_path;
use super::handle::{impl_handle, Callback, Handle, Owned};
use super::loop_::Loop;
use super::pipe::Pipe;
use crate::error::{Error, Result};

/// What a child gets as one of its file descriptors (`uv_stdio_container_t`). See [`ProcessOptions::stdio`].
#[derive(Debug, Clone, Copy)]
pub enum Stdio<'a> {
    /// No descriptor; fds 0–2 are connected to the null device instead (`UV_IGNORE`). The default.
    Ignore,
    /// A duplicate of this process's descriptor `fd` (`UV_INHERIT_FD`), e.g. `InheritFd(1)` shares our stdout.
    /// On Windows, descriptors above 2 reach only children that use the MSVCRT runtime.
    InheritFd(i32),
    /// A new pipe between us and the child, opened into `pipe` (`UV_CREATE_PIPE`). `pipe` must be a fresh
    /// [`Pipe`] on the same loop, not yet opened, bound or connected (`EINVAL` otherwise); after the spawn it
    /// is a connected stream: read from it, write to it, and drop it when done. The directions are the
    /// child's: `readable` for its stdin, `writable` for its stdout and stderr; both for a duplex pipe.
    Pipe {
        /// The handle that becomes our end of the pipe.
        pipe: &'a Pipe,
        /// The child reads from its end (`UV_READABLE_PIPE`).
        readable: bool,
        /// The child writes to its end (`UV_WRITABLE_PIPE`).
        writable: bool,
    },
}

/// How to spawn a child: program, arguments, environment, working directory, stdio and flags
/// (`uv_process_options_t`). A builder, like [`std::process::Command`]; nothing is checked until
/// [`Process::spawn`], where a NUL byte in any string is `EINVAL`.
#[derive(Debug, Clone)]
pub struct ProcessOptions<'a> {
    program: OsString,
    args: Vec<OsString>,
    env_clear: bool,
    env: Vec<(OsString, Option<OsString>)>,
    cwd: Option<PathBuf>,
    stdio: Vec<Stdio<'a>>,
    flags: c_uint,
    #[cfg(unix)]
    uid: sys::uv_uid_t,
    #[cfg(unix)]
    gid: sys::uv_gid_t,
}

impl<'a> ProcessOptions<'a> {
    /// Options to run `program`, which is also the child's `argv[0]`. A name without a slash is searched in
    /// `PATH` — on Unix the child's `PATH`, so give an absolute path when replacing the environment.
    pub fn new(program: impl AsRef<OsStr>) -> ProcessOptions<'a> {
        let program = program.as_ref().to_os_string();
        ProcessOptions {
            args: vec![program.clone()],
            program,
            env_clear: false,
            env: Vec::new(),
            cwd: None,
            stdio: Vec::new(),
            flags: 0,
            #[cfg(unix)]
            uid: 0,
            #[cfg(unix)]
            gid: 0,
        }
    }

    /// Appends an argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Self {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    /// Appends arguments.
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(&mut self, args: I) -> &mut Self {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    /// Sets an environment variable for the child, on top of the inherited environment (or of none after
    /// [`ProcessOptions::env_clear`]). An empty key or one containing `=` is `EINVAL` at spawn.
    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Self {
        self.env.push((key.as_ref().to_os_string(), Some(value.as_ref().to_os_string())));
        self
    }

    /// Removes a variable from the child's environment.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Self {
        self.env.push((key.as_ref().to_os_string(), None));
        self
    }

    /// Starts the child's environment empty instead of inheriting ours; later [`ProcessOptions::env`] calls
    /// add to it.
    pub fn env_clear(&mut self) -> &mut Self {
        self.env_clear = true;
        self.env.clear();
        self
    }

    /// The child's working directory (default: ours).
    pub fn cwd(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.cwd = Some(dir.as_ref().to_path_buf());
        self
    }

    /// What the child gets as descriptor `fd` (0 stdin, 1 stdout, 2 stderr, more if wanted). Descriptors not
    /// set are [`Stdio::Ignore`]: unlike `std::process::Command`, a child inherits nothing by default.
    pub fn stdio(&mut self, fd: usize, stdio: Stdio<'a>) -> &mut Self {
        if self.stdio.len() <= fd {
            self.stdio.resize(fd + 1, Stdio::Ignore);
        }
        self.stdio[fd] = stdio;
        self
    }

    /// Runs the child as user `uid` (`UV_PROCESS_SETUID`); needs the privilege to do so, else spawn fails
    /// with `EPERM`.
    #[cfg(unix)]
    pub fn uid(&mut self, uid: u32) -> &mut Self {
        self.uid = uid as sys::uv_uid_t;
        self.set_flag(sys::uv_process_flags_UV_PROCESS_SETUID, true)
    }

    /// Runs the child as group `gid` (`UV_PROCESS_SETGID`); needs the privilege to do so.
    #[cfg(unix)]
    pub fn gid(&mut self, gid: u32) -> &mut Self {
        self.gid = gid as sys::uv_gid_t;
        self.set_flag(sys::uv_process_flags_UV_PROCESS_SETGID, true)
    }

    /// Starts the child in its own session and process group (Unix) or without our console (Windows), so it
    /// can outlive us (`UV_PROCESS_DETACHED`). The handle still keeps the loop alive until the child exits:
    /// [`unref`](Handle::unref) it not to wait.
    pub fn detached(&mut self, on: bool) -> &mut Self {
        self.set_flag(sys::uv_process_flags_UV_PROCESS_DETACHED, on)
    }

    /// Windows: hides the child's console and GUI windows (`UV_PROCESS_WINDOWS_HIDE`). Ignored elsewhere.
    pub fn windows_hide(&mut self, on: bool) -> &mut Self {
        self.set_flag(sys::uv_process_flags_UV_PROCESS_WINDOWS_HIDE, on)
    }

    /// Windows: passes the arguments without quoting or escaping when building the command line
    /// (`UV_PROCESS_WINDOWS_VERBATIM_ARGUMENTS`). Ignored elsewhere.
    pub fn windows_verbatim_arguments(&mut self, on: bool) -> &mut Self {
        self.set_flag(sys::uv_process_flags_UV_PROCESS_WINDOWS_VERBATIM_ARGUMENTS, on)
    }

    fn set_flag(&mut self, flag: sys::uv_process_flags, on: bool) -> &mut Self {
        if on {
            self.flags |= flag as c_uint;
        } else {
            self.flags &= !(flag as c_uint);
        }
        self
    }

    /// The child's environment as `KEY=VALUE` strings, or `None` to inherit ours unchanged.
    fn env_block(&self) -> Result<Option<Vec<CString>>> {
        if !self.env_clear && self.env.is_empty() {
            return Ok(None);
        }
        let mut vars: Vec<(OsString, OsString)> =
            if self.env_clear { Vec::new() } else { std::env::vars_os().collect() };
        for (key, value) in &self.env {
            if key.is_empty() || key.to_string_lossy().contains('=') {
                return Err(Error::EINVAL);
            }
            vars.retain(|(k, _)| !same_env_key(k, key));
            if let Some(value) = value {
                vars.push((key.clone(), value.clone()));
            }
        }
        let block = vars.into_iter().map(|(mut k, v)| {
            k.push("=");
            k.push(v);
            os_cstring(&k)
        });
        block.collect::<Result<Vec<_>>>().map(Some)
    }
}

/// Environment keys compare case-insensitively on Windows.
fn same_env_key(a: &OsStr, b: &OsStr) -> bool {
    if cfg!(windows) {
        a.to_string_lossy().eq_ignore_ascii_case(&b.to_string_lossy())
    } else {
        a == b
    }
}

/// An OS string as a C string for libuv: bytes on Unix, UTF-8 on Windows; NUL inside is `EINVAL`.
fn os_cstring(s: &OsStr) -> Result<CString> {
    cpath(Path::new(s))
}

/// A NULL-terminated `char*` array pointing into `strings`, which must outlive its use.
fn c_array(strings: &[CString]) -> Vec<*mut c_char> {
    strings.iter().map(|s| s.as_ptr().cast_mut()).chain(std::iter::once(ptr::null_mut())).collect()
}

impl Stdio<'_> {
    /// The libuv container; checks that a pipe can be opened by the spawn (see [`Stdio::Pipe`]).
    fn container(&self, lp: &Loop) -> Result<sys::uv_stdio_container_t> {
        // SAFETY: uv_stdio_container_t is plain C data (flags and a union of a pointer and an int); zero is
        // UV_IGNORE with a null stream.
        let mut c: sys::uv_stdio_container_t = unsafe { std::mem::zeroed() };
        match *self {
            Stdio::Ignore => c.flags = sys::uv_stdio_flags_UV_IGNORE as _,
            Stdio::InheritFd(fd) => {
                c.flags = sys::uv_stdio_flags_UV_INHERIT_FD as _;
                c.data.fd = fd;
            }
            Stdio::Pipe { pipe, readable, writable } => {
                check_fresh_pipe(pipe, lp)?;
                let mut flags = sys::uv_stdio_flags_UV_CREATE_PIPE;
                if readable {
                    flags |= sys::uv_stdio_flags_UV_READABLE_PIPE;
                }
                if writable {
                    flags |= sys::uv_stdio_flags_UV_WRITABLE_PIPE;
                }
                c.flags = flags as _;
                c.data.stream = pipe.as_stream_ptr();
            }
        }
        Ok(c)
    }
}

/// libuv opens the child's pipe into the handle without checking it: a pipe that is closing, already open,
/// bound, active or on another loop would make the spawn fail after the child started (leaving libuv's handle
/// lists inconsistent) or attach the stream to the wrong loop. Refuse those up front.
fn check_fresh_pipe(pipe: &Pipe, lp: &Loop) -> Result<()> {
    if pipe.is_closing() || pipe.is_active() {
        return Err(Error::EINVAL);
    }
    let stream = pipe.as_stream_ptr();
    let handle = stream.cast::<sys::uv_handle_t>();
    // SAFETY: `pipe` is a live, initialised pipe handle; these calls only read its fields and write the local
    // out-parameters, which are large enough for what they are told.
    let (same_loop, fileno, sockname) = unsafe {
        let mut fd: sys::uv_os_fd_t = std::mem::zeroed();
        let mut name = [0 as c_char; 256];
        let mut size = name.len();
        (
            sys::uv_handle_get_loop(handle) == lp.as_raw(),
            sys::uv_fileno(handle, &mut fd),
            sys::uv_pipe_getsockname(stream.cast(), name.as_mut_ptr(), &mut size),
        )
    };
    // Both getters fail with EBADF exactly when the pipe has no descriptor and no name yet (a Windows pipe that
    // is bound has a name but no handle).
    let fresh = fileno == Error::EBADF.code() && sockname == Error::EBADF.code();
    if !same_loop || !fresh {
        return Err(Error::EINVAL);
    }
    Ok(())
}

type ExitCb = dyn FnMut(&Process, i64, i32);

/// A child process (`uv_process_t`), started by [`Process::spawn`].
///
/// The exit callback runs once, when the child exits, with its exit status and the signal that ended it (0 if
/// none). The handle keeps the loop alive until then ([`unref`](Handle::unref) it not to wait).
///
/// Dropping a `Process` closes the handle but does **not** kill the child (libuv semantics): the exit callback
/// will not run, and libuv no longer reaps the child. On Unix uvio then reaps it in the background once it exits
/// (so it is not left a zombie; do not `waitpid` it yourself). To end a child and learn its status,
/// [`kill`](Process::kill) it and drop the handle in (or after) the exit callback.
///
/// ```
/// # #[cfg(unix)] {
/// use uvio::uv::{Loop, Process, ProcessOptions, RunMode};
///
/// let lp = Loop::new()?;
/// let child = Process::spawn(&lp, ProcessOptions::new("sh").args(["-c", "exit 3"]), |p, status, signal| {
///     println!("child {} exited with {status} (signal {signal})", p.pid());
///     assert_eq!((status, signal), (3, 0));
/// })?;
/// lp.run(RunMode::Default)?;
/// drop(child);
/// # }
/// # Ok::<(), uvio::Error>(())
/// ```
pub struct Process {
    h: Owned<sys::uv_process_t, Callback<ExitCb>>,
}

impl_handle!(Process);

/// Dropping a `Process` whose child still runs closes the handle, and libuv then stops waiting for the child
/// (no exit callback). On Unix the child would stay a zombie once it exits, so its pid goes to a background
/// reaper thread.
impl Drop for Process {
    fn drop(&mut self) {
        // libuv stops a process handle when it has reaped the child: active means not reaped yet. The exit
        // callback cannot run between this check and the close (both happen on the loop's thread).
        #[cfg(unix)]
        if self.h.check_open().is_ok() && self.is_active() && self.pid() > 0 {
            reap_orphan(self.pid());
        }
    }
}

/// Children whose handles were dropped before they exited, waited for by one background thread (started
/// when needed, gone when the list is empty). A pid cannot be reused before it is reaped, so `waitpid` on it
/// reaches only our child.
#[cfg(unix)]
static ORPHANS: std::sync::Mutex<(Vec<libc::pid_t>, bool)> = std::sync::Mutex::new((Vec::new(), false));

/// Reaps `pid` now if it has exited, else in the background (polled every 50 ms).
#[cfg(unix)]
fn reap_orphan(pid: libc::pid_t) {
    if try_reap(pid) {
        return;
    }
    let mut orphans = ORPHANS.lock().unwrap_or_else(|e| e.into_inner());
    orphans.0.push(pid);
    if orphans.1 {
        return; // the reaper is running and will see it
    }
    let started = std::thread::Builder::new().name("uvio-reaper".into()).spawn(|| loop {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut orphans = ORPHANS.lock().unwrap_or_else(|e| e.into_inner());
        orphans.0.retain(|&pid| !try_reap(pid));
        if orphans.0.is_empty() {
            orphans.1 = false;
            return;
        }
    });
    // Without a thread (resource exhaustion) the pid stays listed for the next reaper that starts.
    orphans.1 = started.is_ok();
}

/// `waitpid(pid, WNOHANG)`: whether `pid` is gone (reaped now, or not our child any more).
#[cfg(unix)]
fn try_reap(pid: libc::pid_t) -> bool {
    let mut status = 0;
    // SAFETY: waitpid writes only the int it is given; `pid` is positive (one specific child), never 0 or -1,
    // so no other child of this process can be reaped by mistake.
    let ret = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    ret == pid || (ret == -1 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR))
}

impl Process {
    /// Spawns a child as `options` say (`uv_spawn`); `exit_cb` gets `(process, exit_status, term_signal)`
    /// when it exits. Fails with the reason the child could not start: `ENOENT` for a missing program,
    /// `EACCES`, `EPERM` for a `uid`/`gid` option (Unix only) without the privilege, `EINVAL` for a NUL byte in
    /// a string or an unusable [`Stdio::Pipe`]. libuv copies what it needs, so `options` may be reused.
    pub fn spawn(
        lp: &Loop,
        options: &ProcessOptions<'_>,
        exit_cb: impl FnOnce(&Process, i64, i32) + 'static,
    ) -> Result<Process> {
        // Everything libuv reads lives in these locals until uv_spawn returns.
        let file = os_cstring(&options.program)?;
        let args = options.args.iter().map(|a| os_cstring(a)).collect::<Result<Vec<_>>>()?;
        let mut argv = c_array(&args);
        let env = options.env_block()?;
        let mut envp = env.as_deref().map(c_array);
        let cwd = options.cwd.as_deref().map(cpath).transpose()?;
        let mut stdio = options.stdio.iter().map(|s| s.container(lp)).collect::<Result<Vec<_>>>()?;
        check_distinct_pipes(&options.stdio)?;

        // SAFETY: uv_process_options_t is plain C data; zero means no callback, null pointers and no flags.
        let mut raw: sys::uv_process_options_t = unsafe { std::mem::zeroed() };
        raw.exit_cb = Some(on_exit);
        raw.file = file.as_ptr();
        raw.args = argv.as_mut_ptr();
        raw.env = envp.as_mut().map_or(ptr::null_mut(), |e| e.as_mut_ptr());
        raw.cwd = cwd.as_ref().map_or(ptr::null(), |c| c.as_ptr());
        raw.flags = options.flags;
        raw.stdio_count = c_int::try_from(stdio.len()).map_err(|_| Error::EINVAL)?;
        raw.stdio = stdio.as_mut_ptr();
        #[cfg(unix)]
        {
            raw.uid = options.uid;
            raw.gid = options.gid;
        }

        // Unlike other inits, a failed uv_spawn may leave the handle registered with the loop (see `Failed`);
        // then we report success to Owned::new and dispose of the new owner below.
        let mut failed = None;
        let h = Owned::new(lp, Callback::default(), |l, handle| {
            // SAFETY: `handle` is zeroed memory in a box that lives until its close callback; `raw` and all it
            // points to are alive for the call; `on_exit` matches this box type.
            let ret = unsafe { sys::uv_spawn(l, handle, &raw) };
            if ret >= 0 {
                return ret;
            }
            let handle = handle.cast::<sys::uv_handle_t>();
            // SAFETY: uv_spawn initialised the handle's common fields whatever its outcome.
            let active = unsafe { sys::uv_is_active(handle) } != 0;
            failed = match (is_listed(l, handle), active) {
                (true, _) => Some((ret, Failed::Close)),
                (false, true) => Some((ret, Failed::Leak)),
                (false, false) => return ret, // unregistered: Owned::new frees the box
            };
            0
        })?;
        let process = Process { h };
        match failed {
            None => {}
            Some((code, Failed::Close)) => {
                drop(process);
                return Err(Error::from_code(code));
            }
            Some((code, Failed::Leak)) => {
                std::mem::forget(process);
                return Err(Error::from_code(code));
            }
        }
        let mut exit_cb = Some(exit_cb);
        process.h.state().set(Box::new(move |p, status, signal| {
            if let Some(cb) = exit_cb.take() {
                cb(p, status, signal);
            }
        }));
        Ok(process)
    }

    /// The child's process id (`uv_process_get_pid`). It stays readable after the exit, but by then the OS
    /// may have given the number to another process.
    pub fn pid(&self) -> i32 {
        // SAFETY: the handle is initialised; this reads a field.
        unsafe { sys::uv_process_get_pid(self.h.raw()) as i32 }
    }

    /// Sends `signum` to the child (`uv_process_kill`). `ESRCH` once the child has exited (never another
    /// process that reused its pid); `EINVAL` on a closing handle. See [`Signal`](super::Signal) for what
    /// Windows supports (`SIGTERM`, `SIGKILL` and `SIGINT` end the process there).
    pub fn kill(&self, signum: i32) -> Result<()> {
        self.h.check_open()?;
        // SAFETY: the handle is initialised, open and was spawned.
        Error::check(unsafe { sys::uv_process_kill(self.h.raw(), signum) }).map(drop)
    }
}

/// Sends `signum` to the process `pid` (`uv_kill`); signal 0 only checks that it exists. Beware of stale pids:
/// prefer [`Process::kill`] for children.
pub fn kill(pid: i32, signum: i32) -> Result<()> {
    // SAFETY: uv_kill takes plain integers.
    Error::check(unsafe { sys::uv_kill(pid as _, signum) }).map(drop)
}

/// Makes the descriptors this process inherited from its parent non-inheritable, so that children spawned
/// later do not get them by accident (`uv_disable_stdio_inheritance`). Best effort; call it early in `main`.
pub fn disable_stdio_inheritance() {
    // SAFETY: no preconditions; it only changes descriptor flags.
    unsafe { sys::uv_disable_stdio_inheritance() }
}

/// The current working directory (`uv_cwd`), without a trailing slash.
pub fn cwd() -> Result<PathBuf> {
    // SAFETY: uv_cwd writes at most `*size` bytes to `buf` and reports the needed size on ENOBUFS.
    read_c_path(|buf, size| unsafe { sys::uv_cwd(buf, size) })
}

/// The path of the running executable (`uv_exepath`). On platforms other than Linux, macOS and Windows libuv
/// may derive it from `argv[0]`, which uvio does not give it: prefer [`std::env::current_exe`] there.
pub fn exepath() -> Result<PathBuf> {
    let mut buf = vec![0u8; 4096];
    loop {
        let mut size = buf.len();
        // SAFETY: uv_exepath writes at most `size` bytes (NUL included) and sets `size` to the path length.
        Error::check(unsafe { sys::uv_exepath(buf.as_mut_ptr().cast(), &mut size) })?;
        // libuv truncates silently: a path that filled the buffer may have been cut, so retry bigger.
        if size + 1 < buf.len() || buf.len() >= 1 << 20 {
            buf.truncate(size);
            return Ok(path_from_c(&CString::new(buf).map_err(|_| Error::EINVAL)?));
        }
        buf.resize(buf.len() * 4, 0);
    }
}

/// The same pipe twice would make libuv open it twice, failing after the child started.
fn check_distinct_pipes(stdio: &[Stdio<'_>]) -> Result<()> {
    let pipes: Vec<*const Pipe> = stdio
        .iter()
        .filter_map(|s| match s {
            Stdio::Pipe { pipe, .. } => Some(*pipe as *const Pipe),
            _ => None,
        })
        .collect();
    let distinct = pipes.iter().enumerate().all(|(i, p)| !pipes[..i].contains(p));
    distinct.then_some(()).ok_or(Error::EINVAL)
}

/// What a failed `uv_spawn` left behind, and what makes it safe to dispose of.
enum Failed {
    /// The handle is still in the loop's handle list (the program could not be executed, or Windows): it must
    /// be closed with uv_close before its memory is freed, as libuv's own tests do.
    Close,
    /// Unix only, and prevented by `check_fresh_pipe`: the child started but opening a stdio pipe failed.
    /// libuv then unlisted the handle yet still tracks it to reap the child, so it can be neither closed nor
    /// freed: the box is leaked, the only sound choice.
    Leak,
}

/// Whether `handle` is in the loop's handle list (`uv_walk` visits exactly those).
fn is_listed(lp: *mut sys::uv_loop_t, handle: *mut sys::uv_handle_t) -> bool {
    struct Search {
        target: *mut sys::uv_handle_t,
        found: bool,
    }
    unsafe extern "C" fn visit(h: *mut sys::uv_handle_t, arg: *mut c_void) {
        // SAFETY: `arg` is the `Search` on the caller's stack, alive and not otherwise borrowed during uv_walk.
        let search = unsafe { &mut *arg.cast::<Search>() };
        search.found |= h == search.target;
    }
    let mut search = Search { target: handle, found: false };
    // SAFETY: the loop is initialised; `visit` only compares pointers and writes `search`.
    unsafe { sys::uv_walk(lp, Some(visit), (&raw mut search).cast()) };
    search.found
}

unsafe extern "C" fn on_exit(raw: *mut sys::uv_process_t, exit_status: i64, term_signal: c_int) {
    // SAFETY: libuv passes the process we spawned, alive until its close callback; the view lives for this call.
    let process = unsafe { Owned::view(raw, |h| Process { h }) };
    process.h.invoke(|s| s, |cb| cb(&process, exit_status, term_signal));
}
