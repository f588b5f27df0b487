//! Async child processes: output collection (small and 1 MB), stdin round trip, exit codes and signals,
//! kill/try_wait/wait, environment and working directory, spawn errors, dropping a Child (reaped, never a
//! zombie), kill_on_drop, many children at once, streaming output, cancelled waits.
#![cfg(unix)]

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use futures::{AsyncReadExt, AsyncWriteExt};
use uvio::process::{Command, Stdio};
use uvio::time::{sleep, timeout};

mod common;

/// Whether `pid` still exists (running or a zombie): `kill(pid, 0)` succeeds for both.
fn exists(pid: u32) -> bool {
    uvio::uv::kill(pid as i32, 0).is_ok()
}

/// Waits (a few seconds at most) until `pid` is gone, i.e. exited *and* reaped.
async fn until_gone(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if !exists(pid) {
            return true;
        }
        sleep(Duration::from_millis(5)).await;
    }
    false
}

/// `sleep secs` with no stdio, so a stray sleeper never holds the test's output open.
fn sleeper(secs: &str) -> Command {
    let mut cmd = Command::new("sleep");
    cmd.arg(secs).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    cmd
}

fn sh(script: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script]);
    cmd
}

rt_test! {
    async fn output_of_echo() {
        let out = Command::new("echo").args(["hello", "uvio"]).output().await.unwrap();
        assert!(out.status.success());
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(out.stdout, b"hello uvio\n");
        assert!(out.stderr.is_empty());
    }
}

rt_test! {
    async fn output_of_one_megabyte_is_byte_exact() {
        let out = Command::new("head").args(["-c", "1000000", "/dev/zero"]).output().await.unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout.len(), 1_000_000);
        assert!(out.stdout.iter().all(|&b| b == 0));
        // Non-uniform bytes too: 1 MB of a counting pattern through `cat`.
        let dir = common::TempDir::new("aproc-out");
        let path = dir.path().join("pattern");
        let pattern: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &pattern).unwrap();
        let out = Command::new("cat").arg(&path).output().await.unwrap();
        assert_eq!(out.stdout, pattern);
    }
}

rt_test! {
    async fn stdin_round_trip_through_cat_200k() {
        let mut child = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 256) as u8).collect();
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let input = data.clone();
        // Write and read concurrently: cat's pipe buffers are far smaller than 200 KB.
        let writer = async move {
            stdin.write_all(&input).await.unwrap();
            stdin.close().await.unwrap();
        };
        let reader = async move {
            let mut got = Vec::new();
            stdout.read_to_end(&mut got).await.unwrap();
            got
        };
        let ((), got) = futures::join!(writer, reader);
        assert_eq!(got.len(), data.len());
        assert!(got == data);
        assert!(child.wait().await.unwrap().success());
    }
}

rt_test! {
    async fn dropped_stdin_still_delivers_queued_bytes_then_eof() {
        let mut child = Command::new("wc").arg("-c").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        // Much more than the pipe holds: part of it is still queued when the stdin end is dropped.
        stdin.write_all(&vec![b'x'; 300_000]).await.unwrap();
        drop(stdin);
        let out = child.wait_with_output().await.unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), "300000");
    }
}

rt_test! {
    async fn status_reports_exit_code_3() {
        let status = sh("exit 3").status().await.unwrap();
        assert!(!status.success());
        assert_eq!(status.code(), Some(3));
        assert_eq!(status.signal(), None);
        assert_eq!(status.to_string(), "exit status: 3");
    }
}

rt_test! {
    async fn kill_reports_signal_and_wait_returns() {
        let mut child = sleeper("10").spawn().unwrap();
        let pid = child.id().unwrap();
        assert!(exists(pid));
        let start = Instant::now();
        child.kill().await.unwrap();
        let status = child.wait().await.unwrap();
        assert!(start.elapsed() < Duration::from_secs(5));
        assert_eq!(status.signal(), Some(uvio::uv::signum::SIGKILL));
        assert_eq!(status.code(), None);
        assert!(!status.success());
        assert_eq!(status.to_string(), format!("signal: {}", uvio::uv::signum::SIGKILL));
        assert!(!exists(pid), "reaped");
        assert_eq!(child.id(), None);
        // Killing again once the exit was seen is an error, not a panic.
        assert_eq!(child.start_kill().unwrap_err().kind(), ErrorKind::InvalidInput);
    }
}

rt_test! {
    async fn sigterm_from_outside_is_reported() {
        let mut child = sleeper("10").spawn().unwrap();
        uvio::uv::kill(child.id().unwrap() as i32, uvio::uv::signum::SIGTERM).unwrap();
        let status = child.wait().await.unwrap();
        assert_eq!(status.signal(), Some(uvio::uv::signum::SIGTERM));
    }
}

rt_test! {
    async fn try_wait_before_and_after_exit() {
        let mut child = sh("read line; exit 5").stdin(Stdio::piped()).spawn().unwrap();
        assert_eq!(child.try_wait().unwrap(), None);
        sleep(Duration::from_millis(20)).await;
        assert_eq!(child.try_wait().unwrap(), None, "still blocked on stdin");
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"go\n").await.unwrap();
        let status = child.wait().await.unwrap();
        assert_eq!(status.code(), Some(5));
        assert_eq!(child.try_wait().unwrap(), Some(status));
        // wait again: the same status at once.
        assert_eq!(child.wait().await.unwrap(), status);
    }
}

rt_test! {
    async fn missing_program_is_not_found() {
        let err = Command::new("uvio-surely-no-such-program-here").spawn().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        let err = Command::new("/nonexistent/dir/prog").output().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        // A missing working directory is NotFound as well.
        let err = Command::new("true").current_dir("/nonexistent-uvio-dir").status().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }
}

rt_test! {
    async fn bad_strings_are_invalid_input() {
        let err = Command::new("echo").arg("a\0b").spawn().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let err = Command::new("true").env("A=B", "x").spawn().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        // The command is still usable once fixed.
        let mut cmd = Command::new("true");
        assert!(cmd.status().await.unwrap().success());
        assert!(cmd.status().await.unwrap().success(), "a Command can spawn again");
    }
}

rt_test! {
    async fn env_and_env_remove_and_env_clear() {
        // PATH is the one variable surely inherited (the child is found through it); no set_var here, since
        // tests in other threads spawn concurrently.
        let path = std::env::var("PATH").unwrap();
        let out = sh("echo \"$UVIO_A|$UVIO_B|$PATH\"").env("UVIO_A", "one").envs([("UVIO_B", "two")]).output().await;
        assert_eq!(String::from_utf8(out.unwrap().stdout).unwrap(), format!("one|two|{path}\n"));
        let out = Command::new("/usr/bin/env").env_remove("PATH").env("UVIO_C", "three").output().await.unwrap();
        let vars = String::from_utf8(out.stdout).unwrap();
        assert!(!vars.lines().any(|l| l.starts_with("PATH=")), "{vars}");
        assert!(vars.lines().any(|l| l == "UVIO_C=three"), "{vars}");
        // With a cleared environment there is no PATH: use absolute paths.
        let out = Command::new("/usr/bin/env").env("GONE", "x").env_clear().env("ONLY", "me").output().await.unwrap();
        assert_eq!(out.stdout, b"ONLY=me\n");
    }
}

rt_test! {
    async fn current_dir_is_respected() {
        let dir = common::TempDir::new("aproc-cwd");
        std::fs::write(dir.path().join("marker.txt"), b"x").unwrap();
        let out = Command::new("ls").current_dir(dir.path()).output().await.unwrap();
        assert_eq!(out.stdout, b"marker.txt\n");
        let out = Command::new("pwd").current_dir(dir.path()).output().await.unwrap();
        let printed = std::path::PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
        assert_eq!(printed.canonicalize().unwrap(), dir.path().canonicalize().unwrap());
    }
}

rt_test! {
    async fn stderr_is_separate_from_stdout() {
        let out = sh("echo out; echo err >&2; echo out2; exit 1").output().await.unwrap();
        assert_eq!(out.stdout, b"out\nout2\n");
        assert_eq!(out.stderr, b"err\n");
        assert_eq!(out.status.code(), Some(1));
        // Null stdout: only stderr is collected.
        let out = sh("echo out; echo err >&2").stdout(Stdio::null()).output().await.unwrap();
        assert!(out.stdout.is_empty());
        assert_eq!(out.stderr, b"err\n");
    }
}

rt_test! {
    async fn null_stdin_reads_eof() {
        let out = Command::new("cat").output().await.unwrap();
        assert!(out.status.success());
        assert!(out.stdout.is_empty());
        let out = Command::new("wc").arg("-c").stdin(Stdio::null()).output().await.unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), "0");
    }
}

rt_test! {
    async fn dropped_child_is_reaped_after_exit() {
        let child = sleeper("0.05").spawn().unwrap();
        let pid = child.id().unwrap();
        drop(child);
        assert!(exists(pid), "not killed by the drop");
        // It exits by itself; the lingering handle reaps it (a zombie would still exist for kill(pid, 0)).
        assert!(until_gone(pid).await, "child reaped, no zombie");
    }
}

rt_test! {
    async fn kill_on_drop_kills() {
        let child = sleeper("10").kill_on_drop(true).spawn().unwrap();
        let pid = child.id().unwrap();
        let start = Instant::now();
        drop(child);
        assert!(until_gone(pid).await, "killed and reaped");
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}

rt_test! {
    fn runtime_closes_with_a_dropped_child_still_running() {
        // The runtime gives up a lingering handle at shutdown; close must still succeed (no leak reported).
        let rt = common::rt::runtime(ENGINE);
        let pid = rt.block_on(async {
            let child = sleeper("10").spawn().unwrap();
            child.id().unwrap()
        });
        rt.close().expect("runtime closes cleanly");
        uvio::uv::kill(pid as i32, uvio::uv::signum::SIGKILL).unwrap();
        // Its handle closed before it exited, so libuv no longer reaps it: the background reaper must, or it
        // would stay a zombie (which `kill(pid, 0)` still finds).
        let deadline = Instant::now() + Duration::from_secs(5);
        while exists(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!exists(pid), "the orphaned child was reaped");
    }
}

rt_test! {
    fn a_child_dropped_with_its_runtime_is_reaped_after_it_exits_by_itself() {
        // The child runs until told to go (a file appears), so it is still there when the runtime closes however
        // slow this machine is (valgrind, TSan), then exits by itself.
        let dir = common::TempDir::new("aproc-orphan");
        let go = dir.path().join("go");
        let script = format!("while [ ! -e '{}' ]; do sleep 0.01; done", go.display());
        let rt = common::rt::runtime(ENGINE);
        let pid = rt.block_on(async move {
            let mut cmd = sh(&script);
            cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
            cmd.spawn().unwrap().id().unwrap()
        });
        rt.close().expect("runtime closes cleanly");
        assert!(exists(pid), "still running (or a zombie) right after the runtime closed");
        std::fs::write(&go, b"").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while exists(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!exists(pid), "reaped once it exited");
    }
}

rt_test! {
    async fn fifty_children_concurrently() {
        let tasks: Vec<_> = (0..50)
            .map(|i| uvio::spawn_local(async move { sh(&format!("echo {i}; exit {}", i % 7)).output().await.unwrap() }))
            .collect();
        for (i, task) in tasks.into_iter().enumerate() {
            let out = task.await.unwrap();
            assert_eq!(out.stdout, format!("{i}\n").as_bytes());
            assert_eq!(out.status.code(), Some(i as i32 % 7));
        }
    }
}

rt_test! {
    async fn reads_stdout_while_the_child_runs() {
        let mut child = sh("echo first; sleep 0.2; echo second").stdout(Stdio::piped()).spawn().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut buf = [0u8; 64];
        let n = stdout.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"first\n");
        assert_eq!(child.try_wait().unwrap(), None, "still sleeping");
        let mut rest = Vec::new();
        stdout.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"second\n");
        assert!(child.wait().await.unwrap().success());
    }
}

rt_test! {
    async fn cancelled_wait_then_wait_again() {
        let mut child = sleeper("10").spawn().unwrap();
        assert!(timeout(Duration::from_millis(10), child.wait()).await.is_err());
        let mut fut = Box::pin(child.wait());
        assert!(futures::poll!(fut.as_mut()).is_pending());
        drop(fut);
        child.start_kill().unwrap();
        assert_eq!(child.wait().await.unwrap().signal(), Some(uvio::uv::signum::SIGKILL));
    }
}

rt_test! {
    async fn cancelled_output_does_not_leak() {
        let child = sh("echo partial; sleep 0.1").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let pid = child.id().unwrap();
        // The future owns the child; dropping it mid-read leaves the process running, its handle lingering.
        let res = timeout(Duration::from_millis(20), child.wait_with_output()).await;
        assert!(res.is_err());
        assert!(until_gone(pid).await, "reaped after the cancelled wait_with_output");
    }
}

rt_test! {
    async fn write_to_exited_child_is_broken_pipe() {
        let mut child = Command::new("true").stdin(Stdio::piped()).spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        assert!(child.wait().await.unwrap().success());
        let err = async {
            // The first writes may land in the socket buffer before the error surfaces.
            for _ in 0..64 {
                stdin.write_all(&[7u8; 64 * 1024]).await?;
                stdin.flush().await?;
            }
            std::io::Result::Ok(())
        }
        .await
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BrokenPipe);
    }
}

rt_test! {
    async fn pipes_outlive_the_child_handle() {
        let mut child = sh("sleep 0.05; echo late").stdout(Stdio::piped()).spawn().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let pid = child.id().unwrap();
        drop(child);
        let mut got = String::new();
        stdout.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "late\n");
        assert!(until_gone(pid).await);
    }
}

rt_test! {
    async fn kill_then_status_is_not_success_and_id_is_gone() {
        let mut child = sleeper("10").stdout(Stdio::piped()).spawn().unwrap();
        assert!(child.id().is_some());
        child.start_kill().unwrap();
        child.start_kill().unwrap(); // twice before the exit is seen: fine
        let out = child.wait_with_output().await.unwrap();
        assert!(!out.status.success());
        assert!(out.stdout.is_empty());
    }
}
