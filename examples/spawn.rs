//! Runs a program with its stdout and stderr piped back to us, labelled, then reports how it ended.
//!
//! `cargo run --example spawn -- [--] PROGRAM [ARGS...]` (`--help` for usage); with no arguments it runs
//! `echo hello from a child process` through the platform shell. Exits with the child's exit code.
use std::cell::Cell;
use std::ffi::OsString;
use std::io::Write;
use std::rc::Rc;

use uvio::uv::{Loop, Pipe, Process, ProcessOptions, RunMode, Stdio};

#[path = "common/args.rs"]
mod args;

/// Prints each chunk read from `pipe` with a `[label]` prefix, until the end of the stream.
fn relay(pipe: &Pipe, label: &'static str) -> uvio::Result<()> {
    pipe.read_start(move |p, res| match res {
        Ok(bytes) => {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "[{label}] {}", String::from_utf8_lossy(bytes));
            let _ = out.flush();
        }
        Err(_) => drop(p.read_stop()), // EOF (or a read error): nothing more to relay
    })
}

const USAGE: &str = "\
Runs a program with its stdout and stderr piped back, each line labelled, then reports how it ended.

Usage: spawn [OPTIONS] [PROGRAM [ARGS...]]

Arguments:
  PROGRAM [ARGS...]   the program to run and its arguments, passed as they are (flags after PROGRAM are the
                      program's) [default: `echo hello from a child process` through sh, or cmd on Windows]

Options:
  -h, --help          print this help

Exits with the child's exit status (128 + the signal number if a signal ended it).
";

/// The program and its arguments: everything from the first non-flag argument on (or after `--`) is the
/// child's, untouched, so `spawn sh -c 'echo hi'` passes `-c` to sh.
fn parse_argv(parser: &mut args::Parser) -> Result<Vec<OsString>, args::Error> {
    use args::{Long, Short, Value};
    let mut argv = Vec::new();
    while let Some(arg) = parser.next()? {
        match arg {
            Short('h') | Long("help") => args::help(USAGE),
            Value(program) => {
                argv.push(program);
                argv.extend(parser.raw_args()?);
            }
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(argv)
}

fn main() {
    let argv = args::parse_or_exit("spawn", parse_argv);
    match run(argv) {
        Ok(code) => std::process::exit(code),
        Err(e) => std::process::exit(args::failure_status(e).into()),
    }
}

/// Runs the child to its end; returns the exit status to pass on.
fn run(mut argv: Vec<OsString>) -> Result<i32, Box<dyn std::error::Error>> {
    if argv.is_empty() {
        let script = "echo hello from a child process";
        argv = if cfg!(windows) {
            vec!["cmd".into(), "/C".into(), script.into()]
        } else {
            vec!["sh".into(), "-c".into(), script.into()]
        };
    }

    let lp = Loop::new()?;
    let (stdout, stderr) = (Pipe::new(&lp, false)?, Pipe::new(&lp, false)?);
    let mut options = ProcessOptions::new(&argv[0]);
    options.args(&argv[1..]);
    options.stdio(0, Stdio::InheritFd(0));
    options.stdio(1, Stdio::Pipe { pipe: &stdout, readable: false, writable: true });
    options.stdio(2, Stdio::Pipe { pipe: &stderr, readable: false, writable: true });

    let code = Rc::new(Cell::new(0i64));
    let code2 = code.clone();
    let child = Process::spawn(&lp, &options, move |p, status, signal| {
        println!("[exit] pid {} exited with status {status}, term signal {signal}", p.pid());
        code2.set(if signal != 0 { 128 + i64::from(signal) } else { status });
    })
    .map_err(|e| format!("cannot run {:?}: {e} ({})", argv[0], e.name()))?;
    relay(&stdout, "stdout")?;
    relay(&stderr, "stderr")?;
    lp.run(RunMode::Default)?;

    drop((child, stdout, stderr));
    lp.close().map_err(|e| e.error())?;
    Ok(code.get() as i32)
}
