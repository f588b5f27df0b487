//! `cargo run --example cat -- [--] FILE...`: prints files to stdout with libuv fs requests, in callback style.
//!
//! Each file is opened, read in chunks at explicit offsets, and each chunk written to stdout (descriptor 1) with
//! an fs write; every step is started from the previous step's callback. One buffer travels the whole chain:
//! a read fills it and hands it to the write, which hands it back for the next read, so nothing is copied.
//! A missing file is reported on stderr and skipped (exit status 1); no file, or an unknown flag, is a usage
//! error (status 2); `--help` prints the usage. `cat -- --help` prints a file named `--help`.

use std::cell::Cell;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;

use uvio::uv::fs::{self, File, OpenFlags};
use uvio::uv::{Loop, RunMode};

#[path = "common/args.rs"]
mod args;

const CHUNK: usize = 64 * 1024;

/// What every callback of the chain shares.
struct Cat {
    lp: Loop,
    stdout: File,
    paths: Vec<PathBuf>,
    failed: Cell<bool>,
}

impl Cat {
    fn fail(&self, index: usize, err: uvio::Error) {
        eprintln!("cat: {}: {err}", self.paths[index].display());
        self.failed.set(true);
    }
}

/// Opens file `index`, or does nothing once all files are done (the loop then runs out of work).
fn cat_file(cat: Rc<Cat>, index: usize) {
    let Some(path) = cat.paths.get(index) else { return };
    let c = cat.clone();
    let submitted = fs::open(&cat.lp, path, OpenFlags::RDONLY, 0, move |file| match file {
        Ok(file) => read_chunk(c, index, Rc::new(file), Vec::with_capacity(CHUNK), 0),
        Err(err) => {
            c.fail(index, err);
            cat_file(c, index + 1);
        }
    });
    if let Err(err) = submitted {
        cat.fail(index, err); // e.g. a NUL byte in the path
        cat_file(cat, index + 1);
    }
}

/// Reads the chunk at `offset` into `buf` (empty, with capacity).
fn read_chunk(cat: Rc<Cat>, index: usize, file: Rc<File>, buf: Vec<u8>, offset: u64) {
    let (c, f) = (cat.clone(), file.clone());
    let submitted = fs::read(&cat.lp, &file, buf, Some(offset), move |res, buf| match res {
        Ok(0) => finish(c, index, f), // end of file
        Ok(n) => write_all(c, index, f, buf, offset + n as u64),
        Err(err) => {
            c.fail(index, err);
            finish(c, index, f);
        }
    });
    submitted.expect("submit read");
}

/// Writes all of `buf` to stdout (looping on short writes), then reads the next chunk into it.
fn write_all(cat: Rc<Cat>, index: usize, file: Rc<File>, buf: Vec<u8>, next: u64) {
    let c = cat.clone();
    let submitted = fs::write(&cat.lp, &cat.stdout, buf, None, move |res, mut buf| match res {
        Ok(n) if n < buf.len() => {
            buf.drain(..n);
            write_all(c, index, file, buf, next);
        }
        Ok(_) => {
            buf.clear();
            read_chunk(c, index, file, buf, next);
        }
        Err(err) => {
            eprintln!("cat: stdout: {err}");
            c.failed.set(true); // stop here: no further file is started
        }
    });
    submitted.expect("submit write");
}

/// Closes the file without blocking, then moves on to the next one.
fn finish(cat: Rc<Cat>, index: usize, file: Rc<File>) {
    let file = Rc::try_unwrap(file).expect("no other request uses the file");
    let c = cat.clone();
    let submitted = fs::close(&cat.lp, file, move |res| {
        if let Err(err) = res {
            c.fail(index, err);
        }
        cat_file(c, index + 1);
    });
    submitted.expect("submit close");
}

const USAGE: &str = "\
Prints files to stdout, read with libuv fs requests in callback style.

Usage: cat [OPTIONS] FILE...

Arguments:
  FILE...       the files to print, in order; after `--` every argument is a file, even one named like a flag

Options:
  -h, --help    print this help

Exit status: 0 if every file was printed, 1 if one could not be read (the others are still printed), 2 for a
usage error.
";

fn parse_paths(parser: &mut args::Parser) -> Result<Vec<PathBuf>, args::Error> {
    use args::{Long, Short, Value};
    let mut paths = Vec::new();
    while let Some(arg) = parser.next()? {
        match arg {
            Short('h') | Long("help") => args::help(USAGE),
            Value(path) => paths.push(PathBuf::from(path)),
            _ => return Err(arg.unexpected()),
        }
    }
    if paths.is_empty() {
        return Err("no FILE given".into());
    }
    Ok(paths)
}

fn main() -> ExitCode {
    let paths = args::parse_or_exit("cat", parse_paths);
    let lp = Loop::new().expect("create loop");
    // SAFETY: descriptor 1 is open for the whole run; `into_raw` below gives it back before the File drops.
    let stdout = unsafe { File::from_raw(&lp, 1) };
    let cat = Rc::new(Cat { lp: lp.clone(), stdout, paths, failed: Cell::new(false) });
    cat_file(cat.clone(), 0);
    lp.run(RunMode::Default).expect("run loop");
    let cat = Rc::try_unwrap(cat).ok().expect("every callback has run");
    let _ = cat.stdout.into_raw(); // stdout is not ours to close
    let failed = cat.failed.get();
    drop(cat.lp);
    lp.close().expect("close loop");
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
