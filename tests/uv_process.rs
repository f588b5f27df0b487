//! Process tests with real children (`/bin/sh`, `true`, `sleep`, `cat`, `head`): exit status and signal, spawn
//! errors, environment, cwd, stdio (ignore, inherited fds, pipes both ways), detached, kill, drop.
#![cfg(unix)]
mod common;

use std::cell::{Cell, RefCell};
use std::os::unix::io::AsRawFd;
use std::rc::Rc;

use common::{close_clean, TempDir};
use uvio::uv::{kill, signum, Handle, Loop, Pipe, Process, ProcessOptions, RunMode, Stdio};
use uvio::Error;

type Exit = Rc<Cell<Option<(i64, i32)>>>;

/// Spawns `sh -c script` and returns a cell that the exit callback fills with (status, signal).
fn sh<'a>(lp: &Loop, script: &str, configure: impl FnOnce(&mut ProcessOptions<'a>)) -> (Process, Exit) {
    let mut opts = ProcessOptions::new("/bin/sh");
    opts.args(["-c", script]);
    configure(&mut opts);
    let exit: Exit = Rc::default();
    let e2 = exit.clone();
    let p = Process::spawn(lp, &opts, move |_, status, signal| e2.set(Some((status, signal)))).unwrap();
    (p, exit)
}

/// Reads a pipe to its end into the returned buffer.
fn read_to_end(pipe: &Pipe) -> Rc<RefCell<Vec<u8>>> {
    let out = Rc::new(RefCell::new(Vec::new()));
    let o2 = out.clone();
    pipe.read_start(move |p, res| match res {
        Ok(bytes) => o2.borrow_mut().extend_from_slice(bytes),
        Err(e) => {
            assert_eq!(e, Error::EOF);
            p.read_stop().unwrap();
        }
    })
    .unwrap();
    out
}

#[test]
fn exit_status_zero_and_pid() {
    let lp = Loop::new().unwrap();
    let exit: Exit = Rc::default();
    let e2 = exit.clone();
    let pid_seen = Rc::new(Cell::new(0));
    let p2 = pid_seen.clone();
    let child = Process::spawn(&lp, &ProcessOptions::new("true"), move |p, status, signal| {
        p2.set(p.pid());
        e2.set(Some((status, signal)));
    })
    .unwrap();
    assert!(child.pid() > 0);
    assert!(child.is_active());
    lp.run(RunMode::Default).unwrap();
    assert_eq!(exit.get(), Some((0, 0)));
    assert_eq!(pid_seen.get(), child.pid());
    assert!(!child.is_active());
    drop(child);
    close_clean(lp);
}

#[test]
fn exit_status_three() {
    let lp = Loop::new().unwrap();
    let (child, exit) = sh(&lp, "exit 3", |_| {});
    lp.run(RunMode::Default).unwrap();
    assert_eq!(exit.get(), Some((3, 0)));
    drop(child);
    close_clean(lp);
}

#[test]
fn killed_child_reports_term_signal_then_kill_is_esrch() {
    let lp = Loop::new().unwrap();
    let exit: Exit = Rc::default();
    let e2 = exit.clone();
    let child = Process::spawn(&lp, ProcessOptions::new("sleep").arg("10"), move |_, status, signal| {
        e2.set(Some((status, signal)))
    })
    .unwrap();
    kill(child.pid(), 0).unwrap(); // signal 0: the child exists
    child.kill(signum::SIGTERM).unwrap();
    lp.run(RunMode::Default).unwrap();
    assert_eq!(exit.get(), Some((0, signum::SIGTERM)));
    // Reaped: libuv refuses rather than signal whatever process reuses the pid.
    assert_eq!(child.kill(signum::SIGTERM).unwrap_err(), Error::ESRCH);
    drop(child);
    close_clean(lp);
}

#[test]
fn missing_program_is_enoent_and_leaves_nothing_open() {
    let lp = Loop::new().unwrap();
    let res = Process::spawn(&lp, &ProcessOptions::new("/nonexistent/uvio-no-such-program"), |_, _, _| {
        panic!("never spawned")
    });
    assert_eq!(res.unwrap_err(), Error::ENOENT);
    let res = Process::spawn(&lp, &ProcessOptions::new("uvio-no-such-program-in-path"), |_, _, _| {});
    assert_eq!(res.unwrap_err(), Error::ENOENT);
    close_clean(lp);
}

#[test]
fn nul_bytes_are_einval() {
    let lp = Loop::new().unwrap();
    let spawn = |opts: &ProcessOptions<'_>| Process::spawn(&lp, opts, |_, _, _| {}).map(drop).unwrap_err();
    assert_eq!(spawn(&ProcessOptions::new("tr\0ue")), Error::EINVAL);
    assert_eq!(spawn(ProcessOptions::new("true").arg("a\0b")), Error::EINVAL);
    assert_eq!(spawn(ProcessOptions::new("true").env("K", "v\0")), Error::EINVAL);
    assert_eq!(spawn(ProcessOptions::new("true").env("K\0", "v")), Error::EINVAL);
    assert_eq!(spawn(ProcessOptions::new("true").cwd("/tmp\0x")), Error::EINVAL);
    // Malformed keys too.
    assert_eq!(spawn(ProcessOptions::new("true").env("A=B", "v")), Error::EINVAL);
    assert_eq!(spawn(ProcessOptions::new("true").env("", "v")), Error::EINVAL);
    close_clean(lp);
}

#[test]
fn env_clear_leaves_only_our_variables() {
    let lp = Loop::new().unwrap();
    let out = Pipe::new(&lp, false).unwrap();
    // `env` lists the environment exactly; with a cleared env PATH is gone, so give an absolute path.
    let env_bin = ["/usr/bin/env", "/bin/env"].into_iter().find(|p| std::path::Path::new(p).exists()).unwrap();
    let mut opts = ProcessOptions::new(env_bin);
    opts.env_clear().env("FOO", "bar baz").env("REMOVED", "x").env_remove("REMOVED");
    opts.stdio(1, Stdio::Pipe { pipe: &out, readable: false, writable: true });
    let exit: Exit = Rc::default();
    let e2 = exit.clone();
    let child = Process::spawn(&lp, &opts, move |_, s, t| e2.set(Some((s, t)))).unwrap();
    let text = read_to_end(&out);
    lp.run(RunMode::Default).unwrap();
    assert_eq!(exit.get(), Some((0, 0)));
    assert_eq!(String::from_utf8_lossy(&text.borrow()), "FOO=bar baz\n");
    drop((child, out));
    close_clean(lp);
}

#[test]
fn env_adds_to_inherited_environment() {
    let lp = Loop::new().unwrap();
    // PATH is inherited (so `sh` is found by name), FOO is added, HOME is removed.
    let mut opts = ProcessOptions::new("sh");
    opts.args(["-c", r#"[ "$FOO" = bar ] && [ -n "$PATH" ] && [ -z "${HOME+set}" ]"#]);
    opts.env("FOO", "bar").env_remove("HOME");
    let exit: Exit = Rc::default();
    let e2 = exit.clone();
    let child = Process::spawn(&lp, &opts, move |_, s, t| e2.set(Some((s, t)))).unwrap();
    lp.run(RunMode::Default).unwrap();
    assert_eq!(exit.get(), Some((0, 0)));
    drop(child);
    close_clean(lp);
}

#[test]
fn cwd_is_respected() {
    let dir = TempDir::new("process-cwd");
    let canonical = dir.path().canonicalize().unwrap();
    let lp = Loop::new().unwrap();
    let (child, exit) = sh(&lp, r#"[ "$(pwd -P)" = "$1" ]"#, |o| {
        o.arg("sh").arg(&canonical).cwd(dir.path());
    });
    lp.run(RunMode::Default).unwrap();
    assert_eq!(exit.get(), Some((0, 0)));
    drop(child);
    let res = Process::spawn(&lp, ProcessOptions::new("true").cwd(dir.path().join("missing")), |_, _, _| {});
    assert_eq!(res.unwrap_err(), Error::ENOENT);
    close_clean(lp);
}

#[test]
fn stdout_pipe_reads_large_output_byte_exact() {
    const N: usize = 1_000_000;
    let lp = Loop::new().unwrap();
    let out = Pipe::new(&lp, false).unwrap();
    let mut opts = ProcessOptions::new("head");
    opts.args(["-c", &N.to_string(), "/dev/zero"]);
    opts.stdio(1, Stdio::Pipe { pipe: &out, readable: false, writable: true });
    let exit: Exit = Rc::default();
    let e2 = exit.clone();
    let child = Process::spawn(&lp, &opts, move |_, s, t| e2.set(Some((s, t)))).unwrap();
    let data = read_to_end(&out);
    lp.run(RunMode::Default).unwrap();
    assert_eq!(exit.get(), Some((0, 0)));
    assert_eq!(data.borrow().len(), N);
    assert!(data.borrow().iter().all(|&b| b == 0));
    drop((child, out));
    close_clean(lp);
}

#[test]
fn stdin_pipe_round_trips_through_cat() {
    let lp = Loop::new().unwrap();
    let stdin = Pipe::new(&lp, false).unwrap();
    let stdout = Pipe::new(&lp, false).unwrap();
    let mut opts = ProcessOptions::new("cat");
    opts.stdio(0, Stdio::Pipe { pipe: &stdin, readable: true, writable: false });
    opts.stdio(1, Stdio::Pipe { pipe: &stdout, readable: false, writable: true });
    let exit: Exit = Rc::default();
    let e2 = exit.clone();
    let child = Process::spawn(&lp, &opts, move |_, s, t| e2.set(Some((s, t)))).unwrap();
    let message: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    stdin.write(message.clone(), |_, res| res.unwrap()).unwrap();
    stdin.shutdown(|_, res| res.unwrap()).unwrap(); // EOF for cat once the write is flushed
    let echoed = read_to_end(&stdout);
    lp.run(RunMode::Default).unwrap();
    assert_eq!(exit.get(), Some((0, 0)));
    assert!(*echoed.borrow() == message, "cat echoed {} bytes", echoed.borrow().len());
    drop((child, stdin, stdout));
    close_clean(lp);
}

#[test]
fn stderr_and_stdout_are_separate_pipes() {
    let lp = Loop::new().unwrap();
    let out = Pipe::new(&lp, false).unwrap();
    let err = Pipe::new(&lp, false).unwrap();
    let (child, exit) = sh(&lp, "echo to-out; echo to-err >&2; exit 7", |o| {
        o.stdio(1, Stdio::Pipe { pipe: &out, readable: false, writable: true });
        o.stdio(2, Stdio::Pipe { pipe: &err, readable: false, writable: true });
    });
    let (out_text, err_text) = (read_to_end(&out), read_to_end(&err));
    lp.run(RunMode::Default).unwrap();
    assert_eq!(exit.get(), Some((7, 0)));
    assert_eq!(&*out_text.borrow(), b"to-out\n");
    assert_eq!(&*err_text.borrow(), b"to-err\n");
    drop((child, out, err));
    close_clean(lp);
}

#[test]
fn unusable_pipes_are_einval() {
    let lp = Loop::new().unwrap();
    let other_loop = Loop::new().unwrap();
    let foreign = Pipe::new(&other_loop, false).unwrap();
    let used = Pipe::new(&lp, false).unwrap();
    let spawn = |opts: &ProcessOptions<'_>| Process::spawn(&lp, opts, |_, _, _| {}).map(drop).unwrap_err();
    assert_eq!(
        spawn(ProcessOptions::new("true").stdio(1, Stdio::Pipe { pipe: &foreign, readable: false, writable: true })),
        Error::EINVAL
    );
    // The same pipe for two descriptors.
    let twice = Pipe::new(&lp, false).unwrap();
    let mut opts = ProcessOptions::new("true");
    opts.stdio(1, Stdio::Pipe { pipe: &twice, readable: false, writable: true });
    opts.stdio(2, Stdio::Pipe { pipe: &twice, readable: false, writable: true });
    assert_eq!(spawn(&opts), Error::EINVAL);
    // A bound pipe.
    let dir = TempDir::new("process-bound-pipe");
    let bound = Pipe::new(&lp, false).unwrap();
    bound.bind(&dir.path().join("sock")).unwrap();
    assert_eq!(
        spawn(ProcessOptions::new("true").stdio(1, Stdio::Pipe { pipe: &bound, readable: false, writable: true })),
        Error::EINVAL
    );
    drop(bound);
    // A pipe already opened by an earlier spawn.
    let mut opts = ProcessOptions::new("true");
    opts.stdio(1, Stdio::Pipe { pipe: &used, readable: false, writable: true });
    let first = Process::spawn(&lp, &opts, |_, _, _| {}).unwrap();
    assert_eq!(spawn(&opts), Error::EINVAL);
    lp.run(RunMode::Default).unwrap();
    drop((first, used, twice, foreign));
    close_clean(lp);
    close_clean(other_loop);
}

#[test]
fn ignored_stdin_reads_end_of_file() {
    let lp = Loop::new().unwrap();
    // With stdin ignored (the default) the child reads /dev/null: `read` fails at EOF with status 1.
    let (child, exit) = sh(&lp, "read line", |o| {
        o.stdio(0, Stdio::Ignore);
    });
    lp.run(RunMode::Default).unwrap();
    assert_eq!(exit.get(), Some((1, 0)));
    drop(child);
    close_clean(lp);
}

#[test]
fn inherited_fds_reach_the_child() {
    let dir = TempDir::new("process-inherit");
    let out_path = dir.path().join("out.txt");
    let extra_path = dir.path().join("fd3.txt");
    let out = std::fs::File::create(&out_path).unwrap();
    let extra = std::fs::File::create(&extra_path).unwrap();
    let lp = Loop::new().unwrap();
    let (child, exit) = sh(&lp, "echo on-stdout; echo on-fd3 >&3", |o| {
        o.stdio(1, Stdio::InheritFd(out.as_raw_fd()));
        o.stdio(3, Stdio::InheritFd(extra.as_raw_fd()));
    });
    lp.run(RunMode::Default).unwrap();
    assert_eq!(exit.get(), Some((0, 0)));
    assert_eq!(std::fs::read_to_string(&out_path).unwrap(), "on-stdout\n");
    assert_eq!(std::fs::read_to_string(&extra_path).unwrap(), "on-fd3\n");
    drop(child);
    // No descriptor, or one that is not open: the child cannot start.
    let res = Process::spawn(&lp, ProcessOptions::new("true").stdio(1, Stdio::InheritFd(-1)), |_, _, _| {});
    assert_eq!(res.unwrap_err(), Error::EINVAL);
    let res = Process::spawn(&lp, ProcessOptions::new("true").stdio(1, Stdio::InheritFd(9999)), |_, _, _| {});
    assert_eq!(res.unwrap_err(), Error::EBADF);
    close_clean(lp);
}

#[test]
fn detached_child_leads_its_own_process_group() {
    let lp = Loop::new().unwrap();
    let exit: Exit = Rc::default();
    let e2 = exit.clone();
    let child =
        Process::spawn(&lp, ProcessOptions::new("sleep").arg("10").detached(true), move |_, s, t| e2.set(Some((s, t))))
            .unwrap();
    let pid = child.pid();
    // SAFETY: getpgid/getsid only read process attributes.
    let (pgid, sid) = unsafe { (libc::getpgid(pid), libc::getsid(pid)) };
    assert_eq!((pgid, sid), (pid, pid));
    // Unreferenced, it does not keep the loop running...
    child.unref();
    assert!(!lp.run(RunMode::Default).unwrap());
    assert_eq!(exit.get(), None);
    // ...but the exit is still delivered while the loop runs for something else.
    child.ref_();
    child.kill(signum::SIGKILL).unwrap();
    lp.run(RunMode::Default).unwrap();
    assert_eq!(exit.get(), Some((0, signum::SIGKILL)));
    drop(child);
    close_clean(lp);
}

#[test]
fn drop_before_exit_closes_without_callback() {
    let lp = Loop::new().unwrap();
    let called = Rc::new(Cell::new(false));
    let c2 = called.clone();
    let child = Process::spawn(&lp, ProcessOptions::new("sleep").arg("10"), move |_, _, _| c2.set(true)).unwrap();
    let pid = child.pid();
    child.kill(signum::SIGKILL).unwrap();
    drop(child); // libuv stops tracking the child, and the callback will not run
    close_clean(lp);
    assert!(!called.get());
    // uvio's background reaper collects it (it is not left a zombie).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while kill(pid, 0).is_ok() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(kill(pid, 0), Err(Error::ESRCH), "killed and reaped");
}

#[test]
fn drop_in_exit_callback_then_kill_is_einval() {
    let lp = Loop::new().unwrap();
    let slot = Rc::new(RefCell::new(None::<Process>));
    let s2 = slot.clone();
    let status = Rc::new(Cell::new(None));
    let st2 = status.clone();
    let child = Process::spawn(&lp, ProcessOptions::new("/bin/sh").args(["-c", "exit 5"]), move |p, s, _| {
        drop(s2.borrow_mut().take());
        assert!(p.is_closing());
        assert_eq!(p.kill(signum::SIGTERM).unwrap_err(), Error::EINVAL);
        st2.set(Some(s));
    })
    .unwrap();
    *slot.borrow_mut() = Some(child);
    lp.run(RunMode::Default).unwrap();
    assert_eq!(status.get(), Some(5));
    close_clean(lp);
}

#[test]
fn many_children_at_once() {
    let lp = Loop::new().unwrap();
    let codes = Rc::new(RefCell::new(Vec::new()));
    let children: Vec<Process> = (0..20)
        .map(|i| {
            let codes = codes.clone();
            let opts = ProcessOptions::new("/bin/sh").args(["-c", &format!("exit {i}")]).clone();
            Process::spawn(&lp, &opts, move |_, s, _| codes.borrow_mut().push(s)).unwrap()
        })
        .collect();
    lp.run(RunMode::Default).unwrap();
    let mut codes = codes.borrow().clone();
    codes.sort();
    assert_eq!(codes, (0..20).collect::<Vec<i64>>());
    drop(children);
    close_clean(lp);
}

#[test]
fn setuid_to_own_ids_works() {
    // SAFETY: getuid/getgid have no preconditions.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let lp = Loop::new().unwrap();
    let (child, exit) = sh(&lp, r#"[ "$(id -u)" = "$1" ]"#, |o| {
        o.arg("sh").arg(uid.to_string()).uid(uid).gid(gid);
    });
    lp.run(RunMode::Default).unwrap();
    assert_eq!(exit.get(), Some((0, 0)));
    drop(child);
    close_clean(lp);
}

#[test]
fn process_wide_helpers() {
    assert_eq!(uvio::uv::cwd().unwrap(), std::env::current_dir().unwrap());
    assert_eq!(uvio::uv::exepath().unwrap(), std::env::current_exe().unwrap());
    // A pid that cannot exist.
    assert_eq!(kill(i32::MAX, 0).unwrap_err(), Error::ESRCH);
    uvio::uv::disable_stdio_inheritance(); // best effort, no observable result here
}

#[test]
fn a_process_dropped_before_its_exit_is_reaped_in_the_background() {
    // libuv stops waiting for a child whose handle closed; uvio must reap it, or it stays a zombie.
    let lp = Loop::new().unwrap();
    let (p, exit) = sh(&lp, "sleep 0.2", |_| {});
    let pid = p.pid();
    drop(p);
    close_clean(lp);
    assert_eq!(exit.get(), None, "no exit callback after the handle closed");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while kill(pid, 0).is_ok() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(kill(pid, 0), Err(Error::ESRCH), "exited and reaped");
}
