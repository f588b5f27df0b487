//! The io_uring engine's driver (Linux): one ring per runtime, beside the libuv loop.
//!
//! - **Watching.** The ring's own fd is watched by a `uv::Poll` on the runtime's loop: it is readable while
//!   completions wait in the completion queue, so no eventfd is needed.
//! - **Batching.** Operations are queued in the submission queue and flushed once per loop iteration, by a
//!   `uv::Prepare` callback (right before the loop polls), or at once when the queue is full. Completions are
//!   reaped in the poll callback and right after each flush (cached reads often complete inside the submit).
//! - **Ownership.** Each operation is a slot in a slab, keyed by the entry's `user_data`. The slot owns
//!   everything the kernel may touch — the buffer, the path, the statx struct — and a clone of the file it works
//!   on (so the fd stays open and its number is not reused), until the completion arrives. The completion gives
//!   the buffer back to the operation's callback, which sends it to the waiting future through a `Replier`; if
//!   the future was dropped meanwhile, the result and buffer are simply dropped *then*. Nothing the kernel may
//!   write into is ever freed early, so a dropped future cannot cause a use-after-free. A file operation whose
//!   future is dropped is not cancelled: it completes, and its result is dropped.
//! - **Offsets.** A read or write entry takes offset -1 as "the current position": it is used only for files
//!   that are not seekable (FIFOs, pipes, terminals: `uv::fs::File::is_seekable`) and for appends; an offset
//!   past `i64::MAX` is refused with `EINVAL` before it reaches the ring, as libuv refuses it.
//! - **Shutdown.** Dropping the driver first cancels (`IORING_OP_ASYNC_CANCEL`) the operations that may wait
//!   forever — reads, opens, writes to pipes and FIFOs, socket operations; writes to regular files, fsyncs,
//!   closes and path operations are left to finish — then waits (`io_uring_enter` with `min_complete`) until
//!   every operation in flight has completed (the cancelled ones with `ECANCELED`), before the slots' buffers
//!   are freed and the ring's memory is unmapped. Should waiting fail, the slots are leaked rather than freed.
//! - **Detection** ([`ring`]). [`Driver::new`] creates the ring (ENOSYS, EPERM and ENOMEM mean "not
//!   available", with an error naming the cause and the knob) and probes the opcodes: an operation whose opcode
//!   is missing runs on libuv's thread pool instead ([`Driver::supports`], asked by `engine::files`).
//!
//! - **Knobs** ([`RingOptions`], from `uvio::linux::BuilderExt`). The ring size is passed to `io_uring_setup`,
//!   which rounds it up to a power of two (`EINVAL`, out of range, becomes an `InvalidInput` error). With SQPOLL
//!   a kernel thread consumes the submission queue: the flush still calls `IoUring::submit`, which (verified in
//!   io-uring 0.7's `submit.rs`) makes no syscall unless the thread has gone idle (`IORING_SQ_NEED_WAKEUP`) or
//!   completions overflowed; a full queue waits for the thread with `IORING_ENTER_SQ_WAIT`. SQPOLL is used only
//!   when the kernel accepts unregistered files with it (`IORING_FEAT_SQPOLL_NONFIXED`, Linux 5.11).
//!
//! - **Sockets** ([`net`]): TCP and Unix streams and listeners run on the ring when the kernel has the socket
//!   opcodes and provided-buffer rings ([`Driver::net`], Linux 5.19); their operations are slots like the file
//!   ones, plus a cancel (`IORING_OP_ASYNC_CANCEL`, its own slot) for those that may wait forever. A slot's
//!   `user_data` carries a generation above the slab key, so a cancel can never hit a later operation that
//!   reused the key. Completion handlers may queue new entries: the flush submits again before the loop blocks.
//!   Dropping the driver cancels every socket operation still in flight, then waits, as above.
//!
//! - **File operations** ([`fs`]): reads and writes at offsets, open, close, statx and fsync (Linux 5.6), and
//!   rename, unlink, rmdir, mkdir, symlink, link and ftruncate, each behind its own probed opcode; their slots
//!   own the buffers, paths and statx structs.
//!
//! Failure injection (hidden, tests only): a [`Simulate`] in [`RingOptions`] (from
//! `Builder::simulate_ring_failure`, or `UVIO_IO_URING_SIMULATE` for child processes: see [`ring`]) makes
//! [`Driver::new`] act as if the ring setup failed with `ENOSYS`, `EPERM` or `ENOMEM`, as if `IORING_OP_STATX`
//! (or the path-operation opcodes) were missing, as if the kernel refused SQPOLL rings with `EPERM`, or as if
//! ring networking were missing (sockets then use the epoll engine's code).

#![allow(unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks)]

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::rc::{Rc, Weak};

use io_uring::{cqueue, opcode, squeue, IoUring};
use slab::Slab;

use crate::uv::fs::Stat;
use crate::uv::{self, Handle as _, Loop, PollEvents};

mod bufring;
mod fs;
pub(crate) mod net;
mod ring;

pub(crate) use fs::stat_from_statx;
use ring::setup;
pub(crate) use ring::{check_available, Op, RingOptions, Simulate};

/// A read or write's callback: the result and the buffer back.
type BufDone = Box<dyn FnOnce(io::Result<usize>, Vec<u8>)>;

/// An operation in flight: what the kernel may touch, and who gets the result.
enum Pending {
    /// The kernel writes into `buf[start..]`.
    Read { buf: Vec<u8>, start: usize, _file: Rc<dyn Any>, done: BufDone },
    /// The kernel reads `buf`. `may_wait`: the file is a pipe, FIFO or device, where a write may wait forever.
    Write { buf: Vec<u8>, may_wait: bool, _file: Rc<dyn Any>, done: BufDone },
    /// The kernel reads `path`.
    Open { _path: CString, lp: Loop, done: Box<dyn FnOnce(io::Result<uv::fs::File>)> },
    /// The kernel reads `path` and writes `buf`.
    Statx { _path: CString, buf: Box<libc::statx>, _file: Option<Rc<dyn Any>>, done: Box<dyn FnOnce(io::Result<Stat>)> },
    /// A path operation ([`fs`]): the kernel reads one or two paths.
    Paths { _first: CString, _second: Option<CString>, done: Box<dyn FnOnce(io::Result<()>)> },
    /// fsync, fdatasync, close, ftruncate: a status only.
    Status { _file: Option<Rc<dyn Any>>, done: Box<dyn FnOnce(io::Result<()>)> },
    /// A socket operation ([`net`]): it owns its socket and what the kernel may touch.
    Net(net::NetOp),
    /// `IORING_OP_ASYNC_CANCEL`: owns nothing; its slot only lets the driver wait for it at shutdown.
    Cancel,
}

/// A slot: the operation and the `user_data` its entry carries (key and generation), to cancel it by.
struct Slot {
    user_data: u64,
    pending: Pending,
}

/// The slab key in a `user_data` (the generation is above it).
const KEY_MASK: u64 = 0xffff_ffff;

impl Pending {
    /// Whether the operation may wait forever (on a peer, or on the other end of a pipe): it is cancelled when
    /// the driver is dropped instead of waited for.
    fn may_wait(&self) -> bool {
        match self {
            Pending::Net(_) | Pending::Read { .. } | Pending::Open { .. } => true,
            Pending::Write { may_wait, .. } => *may_wait,
            Pending::Statx { .. } | Pending::Paths { .. } | Pending::Status { .. } | Pending::Cancel => false,
        }
    }

    /// Hands the completion's result to the callback. Runs only once the kernel is done with the slot.
    fn complete(self, res: i32, flags: u32) {
        let status = if res < 0 { Err(io::Error::from_raw_os_error(-res)) } else { Ok(res as usize) };
        match self {
            Pending::Read { mut buf, start, done, .. } => {
                if let Ok(n) = status {
                    // A read never reports more than it was asked for; `min` keeps a broken kernel from
                    // making the caller read past what it lent.
                    buf.truncate(start + n.min(buf.len() - start));
                }
                done(status, buf)
            }
            Pending::Write { buf, done, .. } => done(status, buf),
            Pending::Open { lp, done, .. } => done(status.map(|fd| {
                // SAFETY: a successful openat returns a new descriptor that nothing else owns.
                let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
                uv::fs::File::from_owned_fd(&lp, fd)
            })),
            Pending::Statx { buf, done, .. } => done(status.map(|_| stat_from_statx(&buf))),
            Pending::Status { done, .. } | Pending::Paths { done, .. } => done(status.map(drop)),
            Pending::Net(op) => op.complete(res, flags),
            Pending::Cancel => {}
        }
    }
}

/// The io_uring engine of one runtime. `!Send`: it lives beside the loop.
pub(crate) struct Driver {
    // Field order matters: the poll watcher stops watching the ring's fd before the ring closes it.
    poll: uv::Poll,
    prepare: uv::Prepare,
    ring: RefCell<IoUring>,
    ops: RefCell<Slab<Slot>>,
    /// Bumped per operation: the upper half of its `user_data`.
    generation: Cell<u32>,
    /// Entries pushed but not submitted yet.
    queued: Cell<bool>,
    /// Entries that did not fit in a full submission queue, in order; pushed as room frees up. Their slots are
    /// in `ops` like any other, so everything they point to stays alive.
    backlog: RefCell<std::collections::VecDeque<squeue::Entry>>,
    /// Bit per [`Op`] whose opcode this kernel has.
    supported: u32,
    lp: Loop,
    /// Completions taken from the queue, reused between reaps.
    scratch: RefCell<Vec<(u64, i32, u32)>>,
    /// Submission queue entries of the ring (the kernel's rounding of what was asked).
    entries: u32,
    /// Whether a kernel thread polls the submission queue (`IORING_SETUP_SQPOLL`).
    sqpoll: bool,
    /// Spare buffers for small receives copied out of the ring (see `net::COPY_OUT`), so that a busy
    /// connection does not allocate per message.
    copies: RefCell<Vec<Vec<u8>>>,
    /// Sockets of this ring that their owners hold (see `net::Tie`), for `Runtime::close`'s report.
    pub(crate) tied: Cell<usize>,
    /// The provided-buffer ring for socket reads; `None` when sockets do not run on the ring. Last field: it is
    /// freed after the ring is closed.
    bufs: Option<bufring::BufRing>,
}

impl Driver {
    /// Creates the ring as `options` ask and starts watching it on `lp`; an error if io_uring is not available
    /// (or, if `strict`, SQPOLL was asked for and refused).
    pub(crate) fn new(lp: &Loop, options: RingOptions, strict: bool) -> io::Result<Rc<Driver>> {
        let recv_buffers = options.recv_buffers.unwrap_or(bufring::COUNT);
        bufring::check_count(recv_buffers)?; // a wrong knob is the caller's error, whatever the kernel has
        let (ring, supported, net) = setup(options, strict)?;
        let entries = ring.params().sq_entries();
        let sqpoll = ring.params().is_setup_sqpoll();
        // SAFETY: the ring's fd stays open while the watcher exists: both end up in the driver, whose field
        // order drops (closes) the watcher before the ring.
        let poll = unsafe { uv::Poll::new(lp, ring.as_raw_fd())? };
        poll.unref(); // referenced only while operations are in flight
        let prepare = uv::Prepare::new(lp)?;
        prepare.unref();
        // Last before the driver owns it: from here on the driver's `Drop` unregisters it before it is freed.
        let bufs = match net.then(|| bufring::BufRing::new(&ring.submitter(), recv_buffers)) {
            Some(Ok(bufs)) => Some(bufs),
            Some(Err(e)) => {
                log::info!(target: "uvio", "io_uring: stream sockets use the epoll engine's code: \
                    no provided-buffer ring ({e}; needs Linux 5.19)");
                None
            }
            None => {
                log::info!(target: "uvio", "io_uring: stream sockets use the epoll engine's code: \
                    this kernel lacks socket opcodes (or NO_NET is simulated)");
                None
            }
        };
        let driver = Rc::new(Driver {
            poll,
            prepare,
            ring: RefCell::new(ring),
            ops: RefCell::new(Slab::with_capacity(entries as usize)),
            generation: Cell::new(0),
            queued: Cell::new(false),
            backlog: RefCell::new(std::collections::VecDeque::new()),
            supported,
            lp: lp.clone(),
            scratch: RefCell::new(Vec::with_capacity(entries as usize)),
            entries,
            sqpoll,
            bufs,
            copies: RefCell::new(Vec::new()),
            tied: Cell::new(0),
        });
        let weak: Weak<Driver> = Rc::downgrade(&driver);
        driver.poll.start(PollEvents::READABLE, move |_, _| {
            if let Some(driver) = weak.upgrade() {
                driver.reap();
            }
        })?;
        let weak = Rc::downgrade(&driver);
        driver.prepare.start(move |_| {
            if let Some(driver) = weak.upgrade() {
                driver.flush();
            }
        })?;
        Ok(driver)
    }

    /// Submission queue entries of the ring.
    pub(crate) fn entries(&self) -> u32 {
        self.entries
    }

    /// Whether a kernel thread polls the submission queue (SQPOLL).
    pub(crate) fn sqpoll(&self) -> bool {
        self.sqpoll
    }

    /// Buffers in the provided-buffer ring socket reads use; `None` when sockets do not run on the ring.
    pub(crate) fn recv_buffers(&self) -> Option<u16> {
        self.bufs().map(bufring::BufRing::count)
    }

    /// Whether sockets run on the ring ([`net`]; else on the epoll engine's code).
    pub(crate) fn net(&self) -> bool {
        self.bufs.is_some()
    }

    /// The provided-buffer ring of socket reads (present whenever [`Self::net`] is).
    fn bufs(&self) -> Option<&bufring::BufRing> {
        self.bufs.as_ref()
    }

    /// Whether this kernel carries `op` on the ring (else it runs on libuv's thread pool).
    pub(crate) fn supports(&self, op: Op) -> bool {
        self.supported & op.bit() != 0
    }

    /// Puts `pending` in a slot and its entry in the submission queue (submitting first if the queue is full).
    fn push(&self, entry: squeue::Entry, pending: Pending) -> io::Result<()> {
        self.start(entry, pending);
        Ok(())
    }

    /// [`Self::push`], giving the entry's `user_data` (to cancel it by, with [`Self::cancel`]).
    fn start(&self, entry: squeue::Entry, pending: Pending) -> u64 {
        let generation = self.generation.get().wrapping_add(1);
        self.generation.set(generation);
        let user_data = {
            let mut ops = self.ops.borrow_mut();
            if ops.is_empty() {
                self.poll.ref_(); // operations in flight keep the loop alive
            }
            let entry = ops.vacant_entry();
            let user_data = entry.key() as u64 & KEY_MASK | u64::from(generation) << 32;
            entry.insert(Slot { user_data, pending });
            user_data
        };
        let entry = entry.user_data(user_data);
        // Order matters: while older entries wait in the backlog, newer ones queue behind them.
        let mut pushed = self.backlog.borrow().is_empty() && self.try_push(&entry);
        if !pushed && self.backlog.borrow().is_empty() {
            // Full: submit what is queued now, which frees the submission queue.
            if self.submit().is_ok() {
                pushed = self.try_push(&entry);
            }
            // SQPOLL: submit() only wakes the kernel thread; wait until it has taken entries off the queue.
            if !pushed && self.sqpoll && self.ring.borrow().submitter().squeue_wait().is_ok() {
                pushed = self.try_push(&entry);
            }
        }
        if !pushed {
            // Still full (the kernel, or its SQPOLL thread, has not caught up): keep the entry for the next
            // flush instead of failing an operation the caller did nothing wrong with.
            self.backlog.borrow_mut().push_back(entry);
        }
        self.queued.set(true);
        user_data
    }

    /// Asks the kernel to cancel the operation whose entry carries `user_data` (`IORING_OP_ASYNC_CANCEL`). Its
    /// slot stays until its own completion arrives (`-ECANCELED`, or its result if it finished first); a
    /// `user_data` no longer in flight matches nothing (the generation makes it unique).
    fn cancel(&self, user_data: u64) {
        self.start(opcode::AsyncCancel::new(user_data).build(), Pending::Cancel);
    }

    /// Submits, waits for completions and dispatches them until `done()`: for the rare operation that must
    /// finish before a call returns (a listener handed over with `into_std` waits for its accept's end).
    fn run_until(&self, done: impl Fn() -> bool) -> io::Result<()> {
        while !done() {
            self.push_backlog();
            self.queued.set(false);
            let waited = self.ring.borrow().submit_and_wait(1);
            match waited {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) => {
                    self.queued.set(true);
                    return Err(e);
                }
            }
            self.reap();
        }
        Ok(())
    }

    /// Moves backlogged entries into the submission queue, oldest first, while there is room.
    fn push_backlog(&self) {
        loop {
            let next = self.backlog.borrow_mut().pop_front();
            let Some(entry) = next else { return };
            if !self.try_push(&entry) {
                self.backlog.borrow_mut().push_front(entry);
                return;
            }
            self.queued.set(true);
        }
    }

    fn try_push(&self, entry: &squeue::Entry) -> bool {
        let mut ring = self.ring.borrow_mut();
        // SAFETY: every pointer in the entry points into heap memory owned by the entry's slot in `ops` (a
        // buffer, path, statx or sockaddr box, plus the file or socket keeping its fd open), or into the
        // provided-buffer ring, which outlives every operation (see `Drop`); a slot is only removed when the
        // entry's (final, for a multishot entry) completion has arrived, or here, when the push failed and the
        // kernel never saw it.
        let pushed = unsafe { ring.submission().push(entry).is_ok() };
        pushed
    }

    /// Submits the queued entries; completions are reaped separately.
    fn submit(&self) -> io::Result<usize> {
        self.queued.set(false);
        let ring = self.ring.borrow();
        match ring.submit() {
            Ok(n) => Ok(n),
            Err(e) => {
                // EAGAIN/EBUSY: the kernel is short of resources or completions; the entries stay queued.
                self.queued.set(true);
                Err(e)
            }
        }
    }

    /// The prepare callback: submits what this iteration queued, then takes the completions already there.
    fn flush(&self) {
        // Completion handlers may queue entries (a send resubmitting what a partial send left): those must be
        // submitted before the loop blocks, so submit and reap again while they do. The last round only
        // submits: its completions make the ring's fd readable, and the poll callback takes them.
        const ROUNDS: usize = 8;
        for round in 0..ROUNDS {
            // Two passes: a submit frees the queue (without SQPOLL), so a backlog left by a full queue can
            // follow at once instead of waiting for the next iteration.
            for _ in 0..2 {
                self.push_backlog();
                if !self.queued.get() {
                    break;
                }
                if let Err(e) = self.submit() {
                    log::debug!(target: "uvio", "io_uring: submit failed ({e}); retrying next iteration");
                    break;
                }
                if self.backlog.borrow().is_empty() {
                    break;
                }
            }
            if round + 1 == ROUNDS {
                break;
            }
            self.reap();
            if !self.queued.get() && self.backlog.borrow().is_empty() {
                break;
            }
        }
    }

    /// Dispatches every completion in the queue to its slot's callback.
    fn reap(&self) {
        let mut batch = std::mem::take(&mut *self.scratch.borrow_mut());
        loop {
            batch.clear();
            batch.extend(self.ring.borrow_mut().completion().map(|cqe| (cqe.user_data(), cqe.result(), cqe.flags())));
            if batch.is_empty() {
                // More completions than the queue holds wait in the kernel's overflow list (IORING_FEAT_NODROP)
                // until an io_uring_enter flushes them: without this the ring fd would stay readable forever.
                let mut ring = self.ring.borrow_mut();
                if ring.submission().cq_overflow() && ring.submit().is_ok() {
                    continue;
                }
                break;
            }
            for &(user_data, res, flags) in &batch {
                let key = (user_data & KEY_MASK) as usize;
                if cqueue::more(flags) {
                    // One result of a multishot operation: its slot stays for the next ones.
                    let handler = match self.ops.borrow().get(key) {
                        Some(Slot { pending: Pending::Net(op), .. }) => op.multishot(),
                        _ => None,
                    };
                    // Outside every borrow, as below.
                    if let Some(handler) = handler {
                        handler.more(res, flags);
                    }
                    continue;
                }
                let pending = self.remove(key);
                // Outside every borrow: the callback may start new operations.
                pending.complete(res, flags);
            }
        }
        *self.scratch.borrow_mut() = batch;
    }

    fn remove(&self, key: usize) -> Pending {
        let mut ops = self.ops.borrow_mut();
        let slot = ops.remove(key);
        if ops.is_empty() {
            self.poll.unref();
        }
        slot.pending
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Operations that may never complete on their own are cancelled: socket operations (a recv on an idle
        // connection, a multishot accept, a send to a peer that reads nothing), file reads (a FIFO, pipe or
        // terminal with a silent writer; the data read would be dropped anyway), writes to a pipe or FIFO nobody
        // reads, and opens (of a FIFO without its other end). Writes to regular files are carried out, as
        // promised to `AsyncWrite` callers. The handlers find the driver gone and start nothing new.
        let stuck: Vec<u64> = self
            .ops
            .get_mut()
            .iter()
            .filter(|(_, slot)| slot.pending.may_wait())
            .map(|(_, slot)| slot.user_data)
            .collect();
        for user_data in stuck {
            self.cancel(user_data);
        }
        // The kernel may still write into the slots' buffers: wait for every operation in flight (cancels
        // included) before the slots are freed and the ring unmapped.
        while !self.ops.get_mut().is_empty() {
            self.push_backlog(); // backlogged entries must reach the kernel, or their slots would never complete
            let waited = self.ring.get_mut().submit_and_wait(1);
            match waited {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) => {
                    // Cannot wait: leak the slots (and their buffers) rather than free memory in use.
                    log::error!(target: "uvio", "io_uring: waiting for operations at shutdown failed ({e})");
                    std::mem::forget(std::mem::take(self.ops.get_mut()));
                    std::mem::forget(self.bufs.take());
                    return;
                }
            }
            self.reap();
        }
        // Nothing is in flight: the buffers may go (after the ring closes, being the last field). Should the
        // kernel refuse to let go of them, leak them instead.
        if self.bufs.is_some() {
            if let Err(e) = self.ring.get_mut().submitter().unregister_buf_ring(bufring::BGID) {
                log::debug!(target: "uvio", "io_uring: unregistering the buffer ring failed ({e}); leaking it");
                std::mem::forget(self.bufs.take());
            }
        }
    }
}
