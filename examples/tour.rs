//! A tour of uvio. First the libuv layer (`uvio::uv`, callbacks) on one loop: a TCP echo round trip on
//! loopback, timers, a temporary file written, read back and stat'ed, a DNS lookup of localhost, and a child
//! process whose output is read. Then the same kinds of work with async/await on uvio's runtime.
//!
//! `cargo run --release --example tour` (it takes no arguments but `--help`)
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use uvio::uv::{self, fs, Handle, Loop, Pipe, Process, ProcessOptions, RunMode, Stdio, Tcp, Timer};

#[path = "common/args.rs"]
mod args;

const USAGE: &str = "\
A tour of uvio: TCP, timers, files, DNS and a child process, first with libuv callbacks, then async/await.
Everything stays on this machine (loopback, a temporary file).

Usage: tour [OPTIONS]

Options:
  -h, --help    print this help
";

/// The tour takes no arguments; `--help` is still answered, and anything else is a usage error.
fn parse_no_arguments(parser: &mut args::Parser) -> Result<(), args::Error> {
    use args::{Long, Short};
    match parser.next()? {
        Some(Short('h') | Long("help")) => args::help(USAGE),
        Some(arg) => Err(arg.unexpected()),
        None => Ok(()),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    args::parse_or_exit("tour", parse_no_arguments);
    println!("uvio tour on libuv {}", uvio::libuv_version());
    let lp = Loop::new()?;
    let started = Instant::now();

    // 1. TCP: an echo server on an ephemeral loopback port and a client that sends a line and reads it back.
    let server = Tcp::new(&lp)?;
    server.bind("127.0.0.1:0".parse()?)?;
    let addr = server.local_addr()?;
    let conns: Rc<RefCell<Vec<Tcp>>> = Rc::default();
    let keep = conns.clone();
    server.listen(128, move |server, status| {
        status.expect("incoming connection");
        let conn = server.accept().expect("accept");
        conn.read_start(|conn, data| match data {
            Ok(bytes) => conn.write(Vec::from(bytes), |_, r| r.expect("echo write")).expect("echo"),
            Err(_) => conn.read_stop().expect("read_stop"), // EOF: the client is done
        })
        .expect("read_start");
        keep.borrow_mut().push(conn);
    })?;
    let client = Tcp::new(&lp)?;
    let echoed: Rc<RefCell<Vec<u8>>> = Rc::default();
    let sink = echoed.clone();
    client.connect(addr, move |client, status| {
        status.expect("connect");
        let sink = sink.clone();
        client
            .read_start(move |client, data| {
                if let Ok(bytes) = data {
                    sink.borrow_mut().extend_from_slice(bytes);
                    if sink.borrow().ends_with(b"\n") {
                        client.read_stop().expect("read_stop");
                    }
                }
            })
            .expect("read_start");
        client
            .write(&b"hello over loopback\n"[..], |c, r| {
                r.expect("write");
                c.shutdown(|_, r| r.expect("shutdown")).expect("shutdown");
            })
            .expect("write");
    })?;

    // 2. Timers: a one-shot and a repeating one that stops itself after three ticks.
    let log: Rc<RefCell<Vec<String>>> = Rc::default();
    let once = Timer::new(&lp)?;
    let l = log.clone();
    once.start(Duration::from_millis(20), None, move |_| l.borrow_mut().push("one-shot after 20 ms".to_string()))?;
    let ticker = Timer::new(&lp)?;
    let (l, mut ticks) = (log.clone(), 0);
    ticker.start(Duration::from_millis(5), Some(Duration::from_millis(5)), move |t| {
        ticks += 1;
        l.borrow_mut().push(format!("tick {ticks}"));
        if ticks == 3 {
            t.stop().expect("stop");
        }
    })?;

    // 3. DNS: resolve localhost on libuv's thread pool.
    let resolved: Rc<RefCell<Vec<std::net::SocketAddr>>> = Rc::default();
    let r = resolved.clone();
    let hints = uv::AddrInfoHints { socktype: Some(uv::SockType::Stream), ..Default::default() };
    uv::getaddrinfo(&lp, Some("localhost"), Some("80"), hints, move |res| {
        r.borrow_mut().extend(res.expect("getaddrinfo").into_iter().map(|ai| ai.addr));
    })?;

    // 4. A child process with its stdout piped to us.
    let out = Pipe::new(&lp, false)?;
    let mut opts = if cfg!(windows) { ProcessOptions::new("cmd") } else { ProcessOptions::new("sh") };
    if cfg!(windows) {
        opts.args(["/C", "echo hello from a child process"]);
    } else {
        opts.args(["-c", "echo hello from a child process"]);
    }
    opts.stdio(1, Stdio::Pipe { pipe: &out, readable: false, writable: true });
    let exit: Rc<RefCell<Option<(i64, i32)>>> = Rc::default();
    let e = exit.clone();
    let child = Process::spawn(&lp, &opts, move |_, status, signal| *e.borrow_mut() = Some((status, signal)))?;
    let child_out: Rc<RefCell<Vec<u8>>> = Rc::default();
    let co = child_out.clone();
    out.read_start(move |_, data| {
        if let Ok(bytes) = data {
            co.borrow_mut().extend_from_slice(bytes);
        }
    })?;

    // Run until the echo came back, the timers are done and the child exited and closed its output.
    while echoed.borrow().last() != Some(&b'\n')
        || log.borrow().len() < 4
        || resolved.borrow().is_empty()
        || exit.borrow().is_none()
        || out.is_active()
    {
        lp.run(RunMode::Once)?;
    }
    println!("tcp     echoed {:?} via {addr}", String::from_utf8_lossy(&echoed.borrow()).trim_end());
    println!("timers  {}", log.borrow().join(", "));
    println!("dns     localhost -> {:?}", resolved.borrow());
    let (status, signal) = exit.borrow().expect("exit");
    println!(
        "process pid {} said {:?}, exit status {status}, signal {signal}",
        child.pid(),
        String::from_utf8_lossy(&child_out.borrow()).trim_end()
    );

    // 5. Files: write, read back and stat a file in a fresh temporary directory (blocking fs requests).
    let dir = fs::sync::mkdtemp(&lp, std::env::temp_dir().join("uvio-tour-XXXXXX"))?;
    let path = dir.join("notes.txt");
    let file = fs::sync::open(&lp, &path, fs::OpenFlags::CREAT | fs::OpenFlags::RDWR, 0o644)?;
    let text = b"written through libuv's fs requests\n";
    let written = fs::sync::write(&lp, &file, text, Some(0))?;
    let mut back = vec![0u8; text.len()];
    let read = fs::sync::read(&lp, &file, &mut back, Some(0))?;
    let size = fs::sync::fstat(&lp, &file)?.size;
    fs::sync::close(&lp, file)?;
    assert_eq!(&back[..read], text);
    println!("fs      wrote {written} bytes to {}, read {read} back, stat size {size}", path.display());
    fs::sync::unlink(&lp, &path)?;
    fs::sync::rmdir(&lp, &dir)?;

    // Close everything and check that the loop closes with nothing left open.
    drop((server, client, once, ticker, out, child));
    conns.borrow_mut().clear();
    lp.run(RunMode::Default)?;
    lp.close().map_err(|e| e.to_string())?;

    async_tour()?;
    println!("tour finished in {:.1} ms, loop closed cleanly", started.elapsed().as_secs_f64() * 1000.0);
    Ok(())
}

/// The async half: one runtime (one libuv loop), tasks, sleeps, TCP, a child process and blocking work.
fn async_tour() -> std::io::Result<()> {
    use futures::{AsyncReadExt, AsyncWriteExt};
    use uvio::net::{TcpListener, TcpStream};

    let rt = uvio::Runtime::new()?;
    rt.block_on(async {
        // TCP echo with one task per side.
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = uvio::spawn_local(async move {
            let (mut conn, _) = listener.accept().await?;
            let mut line = Vec::new();
            conn.read_to_end(&mut line).await?;
            conn.write_all(&line).await?;
            conn.close().await
        });
        let mut client = TcpStream::connect(addr).await?;
        client.write_all(b"hello from a task").await?;
        client.close().await?; // half-close: the server reads to the end, then answers
        let mut echoed = String::new();
        client.read_to_string(&mut echoed).await?;
        server.await??;
        println!("async   tcp echoed {echoed:?} via {addr}");

        // Timers: a sleep, and a timeout that fires.
        let t = Instant::now();
        uvio::time::sleep(Duration::from_millis(15)).await;
        let late = uvio::time::timeout(Duration::from_millis(5), uvio::time::sleep(Duration::from_secs(60))).await;
        println!(
            "async   slept {:.1} ms; a 5 ms timeout on a 60 s sleep gave {late:?}",
            t.elapsed().as_secs_f64() * 1e3
        );

        // A child process, its output collected.
        let out = if cfg!(windows) {
            uvio::process::Command::new("cmd").args(["/C", "echo hello from an async child"]).output().await?
        } else {
            uvio::process::Command::new("sh").args(["-c", "echo hello from an async child"]).output().await?
        };
        println!("async   child said {:?} ({})", String::from_utf8_lossy(&out.stdout).trim_end(), out.status);

        // Files through libuv's fs requests, awaited.
        let dir = std::env::temp_dir().join(format!("uvio-tour-async-{}", std::process::id()));
        uvio::fs::create_dir_all(&dir).await?;
        let path = dir.join("async.txt");
        uvio::fs::write(&path, b"written by an async task\n").await?;
        let text = uvio::fs::read_to_string(&path).await?;
        let len = uvio::fs::metadata(&path).await?.len();
        uvio::fs::remove_dir_all(&dir).await?;
        println!("async   fs read back {:?} ({len} bytes)", text.trim_end());

        // Blocking work on libuv's thread pool, and 1000 tasks joined.
        let sum = uvio::task::spawn_blocking(|| (1..=1_000_000u64).sum::<u64>()).await?;
        let tasks: Vec<_> = (0..1000u64).map(|i| uvio::spawn_local(async move { i * 2 })).collect();
        let mut total = 0;
        for task in tasks {
            total += task.await?;
        }
        println!("async   thread pool summed to {sum}; 1000 tasks returned {total}");
        Ok::<(), std::io::Error>(())
    })?;
    rt.close()
}
