//! Child processes: [`Command`] spawns a [`Child`] whose exit you can await and whose stdio are async pipes
//! (libuv's `uv_spawn` and `uv_pipe_t` on the runtime's loop). Shaped like `tokio::process`.
//!
//! The exit status arrives through libuv's exit callback (on Unix libuv reaps the child in its `SIGCHLD`
//! handler). A [`Child`] dropped before its process exits does not kill it (unless
//! [`kill_on_drop`](Command::kill_on_drop)); the runtime keeps the libuv handle until the exit, so the process
//! is still reaped and never left a zombie. A runtime shut down first gives up the handle; the child's pid then
//! goes to a background reaper thread (Unix), so it is not left a zombie either.
//!
//! ```
//! # #[cfg(unix)] {
//! use uvio::process::Command;
//!
//! uvio::block_on(async {
//!     let out = Command::new("echo").arg("hello").output().await?;
//!     assert!(out.status.success());
//!     assert_eq!(out.stdout, b"hello\n");
//!     std::io::Result::Ok(())
//! })
//! .unwrap();
//! # }
//! ```

use std::cell::Cell;
use std::ffi::OsStr;
use std::fmt;
use std::future::poll_fn;
use std::io;
use std::path::Path;

use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use futures::io::{AsyncRead, AsyncReadExt};

use crate::engine::AnyStream;
use crate::error::Error;
use crate::runtime::Executor;
use crate::uv::{self, signum};

/// What a child gets as its stdin, stdout or stderr: [`inherit`](Stdio::inherit)ed from this process, a new
/// [`piped`](Stdio::piped) stream to us, or the [`null`](Stdio::null) device. Like [`std::process::Stdio`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stdio(Kind);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Inherit,
    Piped,
    Null,
}

impl Stdio {
    /// The child shares this process's descriptor (`UV_INHERIT_FD`).
    pub fn inherit() -> Stdio {
        Stdio(Kind::Inherit)
    }

    /// A new pipe between us and the child (`UV_CREATE_PIPE`), reachable as [`Child::stdin`],
    /// [`Child::stdout`] or [`Child::stderr`].
    pub fn piped() -> Stdio {
        Stdio(Kind::Piped)
    }

    /// The null device: the child reads end-of-file and its output is discarded (`UV_IGNORE`).
    pub fn null() -> Stdio {
        Stdio(Kind::Null)
    }
}

/// A builder for child processes, like [`std::process::Command`]: program, arguments, environment, working
/// directory, stdio. Then [`spawn`](Command::spawn), [`status`](Command::status) or
/// [`output`](Command::output). A name without a slash is searched in `PATH` (on Unix the child's `PATH`, so
/// give an absolute path after [`env_clear`](Command::env_clear)).
///
/// ```
/// # #[cfg(unix)] {
/// use futures::{AsyncReadExt, AsyncWriteExt};
/// use uvio::process::{Command, Stdio};
///
/// uvio::block_on(async {
///     let mut child = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
///     let mut stdin = child.stdin.take().unwrap();
///     stdin.write_all(b"ping").await?;
///     stdin.close().await?; // cat sees end-of-file
///     let mut echoed = String::new();
///     child.stdout.take().unwrap().read_to_string(&mut echoed).await?;
///     assert_eq!(echoed, "ping");
///     assert_eq!(child.wait().await?.code(), Some(0));
///     std::io::Result::Ok(())
/// })
/// .unwrap();
/// # }
/// ```
#[derive(Debug)]
pub struct Command {
    opts: uv::ProcessOptions<'static>,
    /// stdin, stdout, stderr; `None` takes the default of the method that spawns.
    stdio: [Option<Kind>; 3],
    kill_on_drop: bool,
}

impl Command {
    /// A command to run `program`, with no arguments, our environment and working directory, and (for
    /// [`spawn`](Command::spawn) and [`status`](Command::status)) our stdio.
    pub fn new(program: impl AsRef<OsStr>) -> Command {
        Command { opts: uv::ProcessOptions::new(program), stdio: [None; 3], kill_on_drop: false }
    }

    /// Appends an argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Command {
        self.opts.arg(arg);
        self
    }

    /// Appends arguments.
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(&mut self, args: I) -> &mut Command {
        self.opts.args(args);
        self
    }

    /// Sets an environment variable for the child. An empty key or one containing `=` fails the spawn
    /// (`InvalidInput`).
    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Command {
        self.opts.env(key, value);
        self
    }

    /// Sets several environment variables.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        for (k, v) in vars {
            self.opts.env(k, v);
        }
        self
    }

    /// Removes a variable from the child's environment.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Command {
        self.opts.env_remove(key);
        self
    }

    /// Starts the child with an empty environment (variables set earlier are forgotten; later
    /// [`env`](Command::env) calls add to it).
    pub fn env_clear(&mut self) -> &mut Command {
        self.opts.env_clear();
        self
    }

    /// The child's working directory (default: ours). A directory that does not exist fails the spawn.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Command {
        self.opts.cwd(dir);
        self
    }

    /// The child's stdin. Default: [`Stdio::inherit`], or [`Stdio::null`] for [`output`](Command::output).
    pub fn stdin(&mut self, cfg: Stdio) -> &mut Command {
        self.stdio[0] = Some(cfg.0);
        self
    }

    /// The child's stdout. Default: [`Stdio::inherit`], or [`Stdio::piped`] for [`output`](Command::output).
    pub fn stdout(&mut self, cfg: Stdio) -> &mut Command {
        self.stdio[1] = Some(cfg.0);
        self
    }

    /// The child's stderr. Default: [`Stdio::inherit`], or [`Stdio::piped`] for [`output`](Command::output).
    pub fn stderr(&mut self, cfg: Stdio) -> &mut Command {
        self.stdio[2] = Some(cfg.0);
        self
    }

    /// Runs the child as user `uid` (`UV_PROCESS_SETUID`); without the privilege the spawn fails
    /// (`PermissionDenied`).
    #[cfg(unix)]
    pub fn uid(&mut self, uid: u32) -> &mut Command {
        self.opts.uid(uid);
        self
    }

    /// Runs the child as group `gid` (`UV_PROCESS_SETGID`); without the privilege the spawn fails.
    #[cfg(unix)]
    pub fn gid(&mut self, gid: u32) -> &mut Command {
        self.opts.gid(gid);
        self
    }

    /// Whether dropping the [`Child`] before its process exited kills it (`SIGKILL`). Default `false`: the
    /// process runs on, and is reaped when it exits.
    pub fn kill_on_drop(&mut self, kill_on_drop: bool) -> &mut Command {
        self.kill_on_drop = kill_on_drop;
        self
    }

    /// Starts the child (`uv_spawn`). Errors are the reason it could not start: `NotFound` for a missing
    /// program or working directory, `PermissionDenied`, `InvalidInput` for a NUL byte in a string.
    ///
    /// # Panics
    /// Outside a uvio runtime.
    pub fn spawn(&mut self) -> io::Result<Child> {
        self.spawn_with([Kind::Inherit; 3])
    }

    /// Runs the child to its end and returns its exit status. Stdio default to inherited; pipes asked for are
    /// closed at once.
    ///
    /// # Panics
    /// Outside a uvio runtime.
    pub async fn status(&mut self) -> io::Result<ExitStatus> {
        let mut child = self.spawn()?;
        drop((child.stdin.take(), child.stdout.take(), child.stderr.take()));
        child.wait().await
    }

    /// Runs the child to its end, collecting all of its stdout and stderr (read concurrently, so neither
    /// pipe can fill up and block it). Stdin defaults to [`Stdio::null`], stdout and stderr to
    /// [`Stdio::piped`]; a stream not piped comes back empty.
    ///
    /// # Panics
    /// Outside a uvio runtime.
    pub async fn output(&mut self) -> io::Result<Output> {
        self.spawn_with([Kind::Null, Kind::Piped, Kind::Piped])?.wait_with_output().await
    }

    fn spawn_with(&mut self, defaults: [Kind; 3]) -> io::Result<Child> {
        let ex = crate::runtime::current();
        let mut kinds = defaults;
        for (kind, set) in kinds.iter_mut().zip(self.stdio) {
            *kind = set.unwrap_or(*kind);
        }
        let mut pipes: [Option<uv::Pipe>; 3] = [None, None, None];
        for (pipe, kind) in pipes.iter_mut().zip(kinds) {
            if kind == Kind::Piped {
                *pipe = Some(uv::Pipe::new(&ex.lp, false)?);
            }
        }
        let mut opts: uv::ProcessOptions<'_> = self.opts.clone();
        for (fd, (pipe, kind)) in pipes.iter().zip(kinds).enumerate() {
            let stdio = match (pipe, kind) {
                // The directions are the child's: it reads its stdin and writes the other two.
                (Some(pipe), _) => uv::Stdio::Pipe { pipe, readable: fd == 0, writable: fd != 0 },
                (None, Kind::Inherit) => uv::Stdio::InheritFd(fd as i32),
                (None, _) => uv::Stdio::Ignore,
            };
            opts.stdio(fd, stdio);
        }
        let exit = Rc::new(ExitState {
            status: Cell::new(None),
            waker: Cell::new(None),
            lingering: Cell::new(None),
            ex: Rc::downgrade(&ex),
        });
        let on_exit = exit.clone();
        let process = uv::Process::spawn(&ex.lp, &opts, move |_, status, signal| {
            on_exit.exited(ExitStatus { code: status, signal });
        })?;
        drop(opts); // ends the borrow of the pipes
        let [stdin, stdout, stderr] = pipes;
        Ok(Child {
            process: Rc::new(process),
            exit,
            kill_on_drop: self.kill_on_drop,
            stdin: stdin.map(|p| ChildStdin { io: AnyStream::libuv(&ex.engine, p) }),
            stdout: stdout.map(|p| ChildStdout { io: AnyStream::libuv(&ex.engine, p) }),
            stderr: stderr.map(|p| ChildStderr { io: AnyStream::libuv(&ex.engine, p) }),
        })
    }
}

/// What the exit callback shares with the [`Child`] (and outlives it while the process runs on).
struct ExitState {
    status: Cell<Option<ExitStatus>>,
    waker: Cell<Option<Waker>>,
    /// The runtime's key for the process handle, while it lingers after the `Child` was dropped.
    lingering: Cell<Option<usize>>,
    ex: Weak<Executor>,
}

impl ExitState {
    /// Runs in libuv's exit callback.
    fn exited(&self, status: ExitStatus) {
        self.status.set(Some(status));
        if let Some(w) = self.waker.take() {
            w.wake();
        }
        // Releasing the lingering handle drops it here, in its own callback (libuv allows closing there).
        if let (Some(key), Some(ex)) = (self.lingering.take(), self.ex.upgrade()) {
            ex.unlinger(key);
        }
    }
}

/// A running (or finished) child process, from [`Command::spawn`].
///
/// Dropping it does not kill the process unless [`Command::kill_on_drop`] was set; either way the process is
/// reaped when it exits (see the [module docs](self)). The stdio pipes are independent of it: they stay usable
/// after the `Child` is dropped.
pub struct Child {
    process: Rc<uv::Process>,
    exit: Rc<ExitState>,
    kill_on_drop: bool,
    /// Our end of the child's stdin, if it was [`Stdio::piped`]. Take it to write; dropping it (or
    /// [`close`](futures::AsyncWriteExt::close)) gives the child end-of-file.
    pub stdin: Option<ChildStdin>,
    /// Our end of the child's stdout, if it was [`Stdio::piped`].
    pub stdout: Option<ChildStdout>,
    /// Our end of the child's stderr, if it was [`Stdio::piped`].
    pub stderr: Option<ChildStderr>,
}

impl Child {
    /// The process id, or `None` once the exit was observed (the OS may have reused the number by then).
    pub fn id(&self) -> Option<u32> {
        match self.exit.status.get() {
            None => Some(self.process.pid() as u32),
            Some(_) => None,
        }
    }

    /// Waits for the process to exit and returns its status; again the same status once it has. Closes
    /// [`stdin`](Child::stdin) first (if still here), so a child reading it to the end cannot wait on us.
    /// Dropping the future is harmless.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        poll_fn(|cx| self.poll_exit(cx)).await
    }

    fn poll_exit(&self, cx: &mut Context<'_>) -> Poll<io::Result<ExitStatus>> {
        match self.exit.status.get() {
            Some(status) => Poll::Ready(Ok(status)),
            None => {
                self.exit.waker.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        }
    }

    /// The exit status if the process has exited (as far as the loop has seen), else `None`; never blocks.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        Ok(self.exit.status.get())
    }

    /// Sends `SIGKILL` (Windows: `TerminateProcess`) without waiting for the exit (`uv_process_kill`).
    /// `InvalidInput` if the exit was already observed.
    pub fn start_kill(&mut self) -> io::Result<()> {
        if self.exit.status.get().is_some() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "the process has already exited"));
        }
        match self.process.kill(signum::SIGKILL) {
            // It exited and the loop has not run the exit callback yet: there is nothing left to kill.
            Ok(()) | Err(Error::ESRCH) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Kills the process ([`start_kill`](Child::start_kill)) and waits for it to exit.
    pub async fn kill(&mut self) -> io::Result<()> {
        self.start_kill()?;
        self.wait().await?;
        Ok(())
    }

    /// Closes stdin, reads stdout and stderr to their ends concurrently, then waits for the exit. Streams
    /// taken out of the `Child` before (or not piped) come back empty.
    pub async fn wait_with_output(mut self) -> io::Result<Output> {
        drop(self.stdin.take());
        let (stdout, stderr) = futures::join!(read_all(self.stdout.take()), read_all(self.stderr.take()));
        let status = self.wait().await?;
        Ok(Output { status, stdout: stdout?, stderr: stderr? })
    }
}

async fn read_all(reader: Option<impl AsyncRead + Unpin>) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    if let Some(mut reader) = reader {
        reader.read_to_end(&mut buf).await?;
    }
    Ok(buf)
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.exit.status.get().is_some() {
            return; // exited: dropping the handle just closes it
        }
        if self.kill_on_drop {
            let _ = self.process.kill(signum::SIGKILL);
        }
        // Closing the handle now would leave the process unreaped (libuv stops tracking it): the runtime keeps
        // it until the exit callback releases it.
        if let Some(ex) = self.exit.ex.upgrade() {
            self.exit.lingering.set(Some(ex.linger(self.process.clone())));
        }
    }
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child")
            .field("pid", &self.process.pid())
            .field("status", &self.exit.status.get())
            .finish_non_exhaustive()
    }
}

/// The exit status of a child process: an exit code, or (Unix) the signal that ended it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExitStatus {
    code: i64,
    signal: i32,
}

impl ExitStatus {
    /// Whether the process exited with code 0 (and was not ended by a signal).
    pub fn success(&self) -> bool {
        self.code == 0 && self.signal == 0
    }

    /// The exit code, or `None` on Unix if a signal ended the process. On Windows there is always a code (a
    /// killed process exits with 1).
    pub fn code(&self) -> Option<i32> {
        if cfg!(unix) && self.signal != 0 {
            None
        } else {
            Some(self.code as i32)
        }
    }

    /// The signal that ended the process, if one did (like `std::os::unix::process::ExitStatusExt::signal`).
    #[cfg(unix)]
    pub fn signal(&self) -> Option<i32> {
        (self.signal != 0).then_some(self.signal)
    }
}

impl fmt::Display for ExitStatus {
    /// Like std: `exit status: 3` or `signal: 9` on Unix, `exit code: 3` on Windows.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if cfg!(windows) {
            write!(f, "exit code: {}", self.code as i32)
        } else if self.signal != 0 {
            write!(f, "signal: {}", self.signal)
        } else {
            write!(f, "exit status: {}", self.code)
        }
    }
}

/// What [`Command::output`] and [`Child::wait_with_output`] collect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// How the process ended.
    pub status: ExitStatus,
    /// Everything it wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything it wrote to stderr.
    pub stderr: Vec<u8>,
}

/// Our end of a child's stdin: `futures::io::AsyncWrite`. [`close`](futures::AsyncWriteExt::close) flushes
/// and shuts the pipe down (`uv_shutdown`), so the child reads end-of-file; so does dropping it, once the bytes
/// already written have reached the pipe (they are never dropped silently).
pub struct ChildStdin {
    io: AnyStream<uv::Pipe>,
}

/// Our end of a child's stdout: `futures::io::AsyncRead`, end-of-file once the child (and any process that
/// inherited the pipe) closed it.
pub struct ChildStdout {
    io: AnyStream<uv::Pipe>,
}

/// Our end of a child's stderr: `futures::io::AsyncRead`.
pub struct ChildStderr {
    io: AnyStream<uv::Pipe>,
}

macro_rules! pipe_end {
    ($t:ident) => {
        impl Drop for $t {
            fn drop(&mut self) {
                // Lingers while accepted writes are still queued, then closes.
                self.io.release_if_last();
            }
        }

        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($t)).finish_non_exhaustive()
            }
        }
    };
}

pipe_end!(ChildStdin);
pipe_end!(ChildStdout);
pipe_end!(ChildStderr);

crate::net::io::async_write!(ChildStdin);
crate::net::io::async_read!(ChildStdout);
crate::net::io::async_read!(ChildStderr);
