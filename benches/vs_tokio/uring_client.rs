//! The echo client on io_uring (Linux): all connections in one ring, no runtime in between, so that on a small
//! machine the client is not what limits the measurement.
//!
//! Each connection sends its message, then receives exactly as many bytes back (looping on short sends and short
//! reads), checks them, and starts over; one operation in flight per connection. Every pass submits everything
//! queued and waits for at least one completion (`submit_and_wait(1)`), then handles every completion there is.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use io_uring::{opcode, squeue, types, IoUring};

use crate::echo::{message, stamp, ClientRun, Sample, WARM_UP};

/// Whether this kernel lets us set up a ring at all.
pub(crate) fn available() -> io::Result<()> {
    new_ring(8).map(drop)
}

/// A ring of `entries`: completions only posted when we ask for them (`DEFER_TASKRUN`, Linux 6.1) where the
/// kernel has it, which saves the client interrupts and context switches; a plain ring otherwise.
fn new_ring(entries: u32) -> io::Result<IoUring> {
    IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(entries)
        .or_else(|_| IoUring::builder().setup_coop_taskrun().build(entries))
        .or_else(|_| IoUring::new(entries))
}

/// `IORING_RECVSEND_POLL_FIRST` (Linux 5.19; the `io-uring` crate does not export it): a receive is submitted
/// right after its send completed, so its data is a server round trip away and the first attempt would almost
/// always fail with `EAGAIN`; this flag skips that attempt and waits for readiness at once.
const RECV_POLL_FIRST: u16 = 1;

/// One connection and its two buffers. The buffers are only touched while no operation of this connection is in
/// flight (the kernel owns them in between).
struct Conn {
    stream: TcpStream,
    /// What this round sends.
    message: Vec<u8>,
    /// Where the echo lands.
    echo: Vec<u8>,
    /// Bytes of the current send (or receive) done so far.
    done: usize,
    receiving: bool,
    round: u64,
}

impl Conn {
    /// The operation that moves this connection on: the rest of its send or of its receive.
    fn next_op(&mut self, index: usize, poll_first: bool) -> squeue::Entry {
        let fd = types::Fd(self.stream.as_raw_fd());
        let op = if self.receiving {
            let rest = &mut self.echo[self.done..];
            let ioprio = if poll_first { RECV_POLL_FIRST } else { 0 };
            opcode::Recv::new(fd, rest.as_mut_ptr(), rest.len() as u32).ioprio(ioprio).build()
        } else {
            let rest = &self.message[self.done..];
            // MSG_NOSIGNAL: a server that dies shows up as a failed connection, not as SIGPIPE.
            opcode::Send::new(fd, rest.as_ptr(), rest.len() as u32).flags(libc::MSG_NOSIGNAL).build()
        };
        op.user_data(index as u64)
    }
}

/// Runs the echo client against `addr` for the warm-up plus `secs` seconds.
pub(crate) fn run(addr: SocketAddr, conns: usize, size: usize, secs: f64, server_pid: u32) -> io::Result<ClientRun> {
    assert!(size > 0 && size <= u32::MAX as usize, "message size {size}");
    let mut all = Vec::with_capacity(conns);
    for index in 0..conns {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        all.push(Conn {
            stream,
            message: message(index, size),
            echo: vec![0; size],
            done: 0,
            receiving: false,
            round: 0,
        });
    }
    // At most one operation per connection is in flight, so the queues never fill up.
    let mut ring = new_ring((conns as u32).next_power_of_two().max(8))?;
    let outcome = drive(&mut ring, &mut all, size, Duration::from_secs_f64(secs), server_pid);
    if outcome.is_err() {
        // Operations may still be in flight: the kernel may write into these buffers until the ring is gone.
        // Leak them (and the sockets) rather than free memory the kernel still uses.
        std::mem::forget(all);
    }
    outcome
}

/// The event loop. Returns only once no operation is in flight (or on a ring error, with some maybe in flight).
fn drive(
    ring: &mut IoUring,
    conns: &mut [Conn],
    size: usize,
    secs: Duration,
    server_pid: u32,
) -> io::Result<ClientRun> {
    let (submitter, mut sq, mut cq) = ring.split();
    let push = |sq: &mut squeue::SubmissionQueue<'_>, entry: squeue::Entry| -> io::Result<()> {
        loop {
            // SAFETY: the entry points into a connection's `message` or `echo` buffer (heap memory that neither
            // moves nor is touched until this operation completes: a connection gets its next operation only from
            // its completion) and at its open socket; `run` keeps both alive until every operation has completed,
            // or leaks them if it has to give up with operations in flight.
            if unsafe { sq.push(&entry) }.is_ok() {
                return Ok(());
            }
            // Not expected (the queue has room for one entry per connection): make room by submitting.
            sq.sync();
            submitter.submit()?;
            sq.sync();
        }
    };
    let mut poll_first = true;
    for (index, conn) in conns.iter_mut().enumerate() {
        push(&mut sq, conn.next_op(index, poll_first))?;
    }
    let mut in_flight = conns.len();
    let warm_until = Instant::now() + WARM_UP;
    let (mut start, mut end): (Option<Sample>, Option<Sample>) = (None, None);
    let (mut round_trips, mut mismatches, mut failed) = (0u64, 0u64, 0u64);
    while in_flight > 0 {
        sq.sync();
        match submitter.submit_and_wait(1) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) => return Err(e),
        }
        // The clock is read once per pass: the window opens after the warm-up and closes `secs` later; after that,
        // connections finish the round trip they are in and stop.
        let now = Instant::now();
        match (start, end) {
            (None, _) if now >= warm_until => start = Some(Sample::take(server_pid)),
            (Some(s), None) if now >= s.at + secs => end = Some(Sample::take(server_pid)),
            _ => {}
        }
        let counting = start.is_some() && end.is_none();
        cq.sync();
        for cqe in &mut cq {
            in_flight -= 1;
            let index = cqe.user_data() as usize;
            let conn = &mut conns[index];
            if cqe.result() == -libc::EINVAL && conn.receiving && poll_first {
                // A kernel older than 5.19 rejects the flag: receive without it from now on.
                poll_first = false;
                push(&mut sq, conn.next_op(index, poll_first))?;
                in_flight += 1;
                continue;
            }
            let Ok(n @ 1..) = usize::try_from(cqe.result()) else {
                // An error, or EOF from the server: this connection is done.
                failed += 1;
                continue;
            };
            conn.done += n;
            if conn.done == size {
                conn.done = 0;
                if conn.receiving {
                    mismatches += u64::from(conn.echo != conn.message);
                    round_trips += u64::from(counting);
                    if end.is_some() {
                        continue; // out of time: this connection stays idle
                    }
                    conn.round += 1;
                    stamp(&mut conn.message, conn.round);
                }
                conn.receiving = !conn.receiving;
            }
            push(&mut sq, conn.next_op(index, poll_first))?;
            in_flight += 1;
        }
    }
    // Every connection failed before the window closed: close it now (a zero-length window reports NaN).
    let start = start.unwrap_or_else(|| Sample::take(server_pid));
    let end = end.unwrap_or_else(|| Sample::take(server_pid));
    Ok(ClientRun { round_trips, start, end, mismatches, failed })
}
