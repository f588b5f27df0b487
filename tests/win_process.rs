//! Windows child processes (the Unix suite, tests/process_unix.rs, cannot speak for them): a program found on
//! PATH without its `.exe`, arguments quoted onto one command line and split back by the child, non-ASCII
//! arguments (UTF-16), exit codes, and a child ended by `TerminateProcess`. The child is this test binary
//! itself, started in a helper mode (an environment variable) that the normal run ignores.
#![cfg(windows)]

mod common;

use std::time::Duration;

use futures::AsyncReadExt;
use uvio::process::{Command, Stdio};

/// The helper mode the child runs in (see `child_helper`).
const MODE: &str = "UVIO_WIN_PROCESS_HELPER";

/// This test binary as a child that runs only `child_helper` (libtest takes the extra arguments as more test
/// name filters, which match nothing with `--exact`).
fn helper(mode: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.env(MODE, mode).args(["--exact", "child_helper", "--nocapture", "--test-threads=1"]);
    cmd
}

/// The child's side. `args`: prints each argument it was given on its own line, between markers; `sleep`:
/// sleeps long enough to be killed; `exit`: exits with code 42 from inside the test.
#[test]
fn child_helper() {
    match std::env::var(MODE).as_deref() {
        Ok("args") => {
            for a in std::env::args().skip(5) {
                println!("<arg>{a}</arg>");
            }
        }
        Ok("sleep") => std::thread::sleep(Duration::from_secs(60)),
        Ok("exit") => std::process::exit(42),
        _ => {}
    }
}

rt_test! {
    async fn program_without_exe_is_found_on_the_path_and_its_exit_code_comes_back() {
        let status = Command::new("cmd").args(["/C", "exit 7"]).status().await.unwrap();
        assert_eq!(status.code(), Some(7));
        assert!(!status.success());
        let status = Command::new("cmd").args(["/C", "exit 0"]).status().await.unwrap();
        assert!(status.success());
        let status = helper("exit").status().await.unwrap();
        assert_eq!(status.code(), Some(42));
    }
}

rt_test! {
    fn arguments_are_quoted_and_split_back_unchanged() {
        let args = [
            "plain",
            "two words",
            "",
            r#"a "quoted" word"#,
            r"trailing backslash\",
            r#"backslash before quote\""#,
            r"C:\path with\spaces\",
            "tab\there",
            "ünïcödé ✓ 日本",
        ];
        let out = run(async {
            let mut cmd = helper("args");
            cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::null());
            let out = cmd.output().await.unwrap();
            assert!(out.status.success(), "{:?}", out.status);
            String::from_utf8(out.stdout).unwrap()
        });
        let got: Vec<&str> = out.split("<arg>").skip(1).map(|s| s.split("</arg>").next().unwrap()).collect();
        assert_eq!(got, args, "child output: {out}");
    }
}

rt_test! {
    async fn a_killed_child_ends_with_terminate_process() {
        let mut child = helper("sleep").stdout(Stdio::null()).spawn().unwrap();
        assert!(child.id().is_some());
        assert!(child.try_wait().unwrap().is_none(), "the child sleeps");
        child.kill().await.unwrap();
        let status = child.wait().await.unwrap();
        // libuv kills with TerminateProcess(handle, 1).
        assert_eq!(status.code(), Some(1));
        assert!(!status.success());
        assert!(child.id().is_none(), "no id once reaped");
    }
}

rt_test! {
    async fn piped_stdout_reaches_end_of_stream_when_the_child_exits() {
        let mut child = Command::new("cmd").args(["/C", "echo hello from cmd"]).stdout(Stdio::piped()).spawn().unwrap();
        let mut out = String::new();
        child.stdout.take().unwrap().read_to_string(&mut out).await.unwrap();
        assert_eq!(out.trim_end(), "hello from cmd");
        assert!(child.wait().await.unwrap().success());
    }
}

rt_test! {
    async fn a_missing_program_is_not_found() {
        let err = Command::new("uvio-no-such-program-here").spawn().unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{err}");
    }
}
