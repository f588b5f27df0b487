//! Command-line handling shared by the examples (each includes this file with `#[path]`): parsing with
//! `lexopt`, `--help` printing the usage to stdout (status 0), and every usage error as one line that names
//! the flag, plus a hint, on stderr (status 2). Failures while running are `error: ...` with status 1.
// Each example uses only part of this module.
#![allow(dead_code)]

use std::ffi::OsString;
use std::fmt::Display;
use std::process::ExitCode;
use std::str::FromStr;

pub use lexopt::prelude::*;
pub use lexopt::{Error, Parser};

/// The exit status of a usage error (as in most Unix tools).
pub const USAGE_ERROR: u8 = 2;

/// Parses the process's arguments with `parse`. On `--help` (when `parse` calls [`help`]) the usage is
/// printed and the process exits 0; on a usage error it prints the error and a hint, and exits 2. Called first
/// thing in `main`, before anything needs dropping, so exiting here is clean.
pub fn parse_or_exit<T>(program: &str, parse: impl FnOnce(&mut Parser) -> Result<T, Error>) -> T {
    match parse(&mut Parser::from_env()) {
        Ok(args) => args,
        Err(err) => std::process::exit(usage_error(program, err).into()),
    }
}

/// Prints the usage to stdout and exits 0: the answer to `-h`/`--help`.
pub fn help(usage: &str) -> ! {
    print!("{usage}");
    std::process::exit(0)
}

/// Prints a usage error and the hint to stderr; returns status 2.
pub fn usage_error(program: &str, err: impl Display) -> u8 {
    eprintln!("error: {err}");
    eprintln!("hint: run `{program} --help` for usage");
    USAGE_ERROR
}

/// Prints a failure that is not about the command line (a port in use, an I/O error); returns status 1.
pub fn failure(err: impl Display) -> ExitCode {
    ExitCode::from(failure_status(err))
}

/// [`failure`], for an example that exits with `std::process::exit`.
pub fn failure_status(err: impl Display) -> u8 {
    eprintln!("error: {err}");
    1
}

/// The value after `flag`, parsed as a `T`. The error names the flag and the value, in Display form:
/// `--port: invalid digit found in string "abc"`.
pub fn value<T>(parser: &mut Parser, flag: &str) -> Result<T, Error>
where
    T: FromStr,
    T::Err: Display,
{
    let raw: OsString = parser.value()?; // lexopt's own error names the flag: "missing argument for option"
    let text = raw.into_string().map_err(|raw| format!("{flag}: not valid Unicode: {raw:?}"))?;
    text.parse().map_err(|err: T::Err| {
        let message = err.to_string();
        let quoted = format!("{text:?}");
        // Some errors (uvio::Backend's) already quote the value; the std ones (integers, floats) do not.
        if message.contains(&quoted) {
            format!("{flag}: {message}").into()
        } else {
            format!("{flag}: {message} {quoted}").into()
        }
    })
}

/// The value of `--pattern` (for the servers): one of `uvio::server`'s four patterns.
pub fn pattern(parser: &mut Parser) -> Result<uvio::server::Pattern, Error> {
    use uvio::server::Pattern;
    Ok(match value::<String>(parser, "--pattern")?.as_str() {
        "single-loop" => Pattern::SingleLoop,
        "acceptor-workers" => Pattern::AcceptorWorkers,
        "shared-listener" => Pattern::SharedListener,
        "reuseport" => Pattern::ReusePort,
        other => {
            return Err(format!(
                "--pattern: unknown pattern {other:?} (single-loop, acceptor-workers, shared-listener or reuseport)"
            )
            .into())
        }
    })
}

/// The value of `--threads` (for the servers): 1 to 1024.
pub fn threads(parser: &mut Parser) -> Result<usize, Error> {
    let threads: usize = value(parser, "--threads")?;
    if !(1..=1024).contains(&threads) {
        return Err(format!("--threads: {threads} is not between 1 and 1024").into());
    }
    Ok(threads)
}
