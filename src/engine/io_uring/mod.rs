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
//! - **Detection.** [`Driver::new`] creates the ring (ENOSYS, EPERM and ENOMEM mean "not available", with an
//!   error naming the cause and the knob) and probes the opcodes: an operation whose opcode is missing runs on
//!   libuv's thread pool instead ([`Driver::supports`]).
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
//! - **Path operations** ([`fs`]): rename, unlink, rmdir, mkdir, symlink, link and ftruncate, each behind its
//!   own probed opcode; their slots own the paths.
//!
//! Test switch (hidden): `UVIO_IO_URING_SIMULATE=ENOSYS|EPERM|ENOMEM|NO_STATX|NO_FS_PATH_OPS|SQPOLL_EPERM|NO_NET`
//! makes [`Driver::new`] act as if the ring setup failed with that error, as if `IORING_OP_STATX` (or the
//! opcodes of [`fs`]) were missing, as if the kernel refused SQPOLL rings with `EPERM`, or as if ring
//! networking were missing (sockets then use the epoll engine's code).

#![allow(unsafe_code)]
#![warn(clippy::undocumented_unsafe_blocks)]

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::path::Path;
use std::rc::{Rc, Weak};
use std::time::Duration;

use io_uring::{cqueue, opcode, squeue, types, IoUring, Probe};
use slab::Slab;

use crate::uv::fs::{OpenFlags, Stat, Timespec};
use crate::uv::{self, Handle as _, Loop, PollEvents};

mod bufring;
mod fs;
pub(crate) mod net;

/// Submission queue entries per ring unless [`RingOptions::entries`] says otherwise (the completion queue gets
/// twice as many).
const ENTRIES: u32 = 256;

/// How to set the ring up (the Linux knobs of `uvio::linux::BuilderExt`); the default is a plain ring of
/// [`ENTRIES`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RingOptions {
    /// Submission queue entries (`None`: [`ENTRIES`]).
    pub(crate) entries: Option<u32>,
    /// `IORING_SETUP_SQPOLL` with this idle time before the kernel thread sleeps (`None`: no SQPOLL).
    pub(crate) sqpoll_idle: Option<Duration>,
    /// Buffers in the provided-buffer ring for socket reads (`None`: [`bufring::COUNT`]).
    pub(crate) recv_buffers: Option<u16>,
}

/// What a statx asks for: `STATX_BASIC_STATS | STATX_BTIME`, like libuv.
const STATX_MASK: u32 = libc::STATX_BASIC_STATS | libc::STATX_BTIME;

/// The file operations this engine can carry, each behind its own opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Read,
    Write,
    Statx,
    Fsync,
    OpenAt,
    Close,
    /// rename (`IORING_OP_RENAMEAT`).
    RenameAt,
    /// unlink and rmdir (`IORING_OP_UNLINKAT`).
    UnlinkAt,
    /// mkdir (`IORING_OP_MKDIRAT`).
    MkDirAt,
    /// symlink (`IORING_OP_SYMLINKAT`).
    SymlinkAt,
    /// link (`IORING_OP_LINKAT`).
    LinkAt,
    /// ftruncate (`IORING_OP_FTRUNCATE`, Linux 6.9).
    Ftruncate,
}

impl Op {
    const ALL: [Op; 12] = [
        Op::Read,
        Op::Write,
        Op::Statx,
        Op::Fsync,
        Op::OpenAt,
        Op::Close,
        Op::RenameAt,
        Op::UnlinkAt,
        Op::MkDirAt,
        Op::SymlinkAt,
        Op::LinkAt,
        Op::Ftruncate,
    ];

    /// The operations of [`fs`] (what `UVIO_IO_URING_SIMULATE=NO_FS_PATH_OPS` marks missing).
    const FS_PATH_OPS: [Op; 6] = [Op::RenameAt, Op::UnlinkAt, Op::MkDirAt, Op::SymlinkAt, Op::LinkAt, Op::Ftruncate];

    fn code(self) -> u8 {
        match self {
            Op::Read => opcode::Read::CODE,
            Op::Write => opcode::Write::CODE,
            Op::Statx => opcode::Statx::CODE,
            Op::Fsync => opcode::Fsync::CODE,
            Op::OpenAt => opcode::OpenAt::CODE,
            Op::Close => opcode::Close::CODE,
            Op::RenameAt => opcode::RenameAt::CODE,
            Op::UnlinkAt => opcode::UnlinkAt::CODE,
            Op::MkDirAt => opcode::MkDirAt::CODE,
            Op::SymlinkAt => opcode::SymlinkAt::CODE,
            Op::LinkAt => opcode::LinkAt::CODE,
            Op::Ftruncate => opcode::Ftruncate::CODE,
        }
    }

    fn bit(self) -> u32 {
        1 << self as u32
    }
}

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

/// The socket opcodes ring networking needs (`IORING_OP_ACCEPT` must also take the multishot flag: Linux 5.19,
/// the same release as the provided-buffer rings that [`Driver::new`] registers, which is how it is detected).
const NET_OPCODES: [u8; 6] = [
    opcode::Recv::CODE,
    opcode::Send::CODE,
    opcode::AcceptMulti::CODE,
    opcode::Connect::CODE,
    opcode::Shutdown::CODE,
    opcode::AsyncCancel::CODE,
];

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

/// libuv's `uv__statx_to_stat`, so both engines report the same [`Stat`].
fn stat_from_statx(s: &libc::statx) -> Stat {
    let ts = |t: &libc::statx_timestamp| Timespec { sec: t.tv_sec, nsec: t.tv_nsec };
    Stat {
        dev: libc::makedev(s.stx_dev_major, s.stx_dev_minor),
        mode: u64::from(s.stx_mode),
        nlink: u64::from(s.stx_nlink),
        uid: u64::from(s.stx_uid),
        gid: u64::from(s.stx_gid),
        rdev: libc::makedev(s.stx_rdev_major, s.stx_rdev_minor),
        ino: s.stx_ino,
        size: s.stx_size,
        blksize: u64::from(s.stx_blksize),
        blocks: s.stx_blocks,
        flags: 0,
        gen: 0,
        atime: ts(&s.stx_atime),
        mtime: ts(&s.stx_mtime),
        ctime: ts(&s.stx_ctime),
        birthtime: ts(&s.stx_btime),
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

/// A ring set up as `options` ask and the opcodes it supports, or why there is none. A refused SQPOLL request
/// is an error if `strict`, else a plain ring (logged).
fn setup(options: RingOptions, strict: bool) -> io::Result<(IoUring, u32, bool)> {
    let simulate = std::env::var("UVIO_IO_URING_SIMULATE").unwrap_or_default();
    let simulated = match simulate.as_str() {
        "ENOSYS" => Some(libc::ENOSYS),
        "EPERM" => Some(libc::EPERM),
        "ENOMEM" => Some(libc::ENOMEM),
        _ => None,
    };
    let ring = match simulated {
        Some(errno) => Err(io::Error::from_raw_os_error(errno)),
        None => build_ring(options, strict, simulate == "SQPOLL_EPERM"),
    };
    // Errors uvio made itself (a bad ring size, a refused SQPOLL) already name the knob; raw OS errors get the cause.
    let ring = ring.map_err(|e| if e.raw_os_error().is_some() { not_available(e) } else { e })?;
    let mut probe = Probe::new();
    let (supported, net) = match ring.submitter().register_probe(&mut probe) {
        Ok(()) => (
            Op::ALL.iter().filter(|op| probe.is_supported(op.code())).fold(0, |bits, op| bits | op.bit()),
            NET_OPCODES.iter().all(|&code| probe.is_supported(code)),
        ),
        Err(e) => {
            log::info!(target: "uvio", "io_uring: opcode probe failed ({e}): files stay on libuv's thread pool");
            (0, false)
        }
    };
    let supported = match simulate.as_str() {
        "NO_STATX" => supported & !Op::Statx.bit(),
        "NO_FS_PATH_OPS" => Op::FS_PATH_OPS.iter().fold(supported, |bits, op| bits & !op.bit()),
        _ => supported,
    };
    Ok((ring, supported, net && simulate != "NO_NET"))
}

/// The ring `options` ask for (see [`setup`] for `strict`); `refuse_sqpoll` simulates a kernel refusing SQPOLL.
fn build_ring(options: RingOptions, strict: bool, refuse_sqpoll: bool) -> io::Result<IoUring> {
    let entries = options.entries.unwrap_or(ENTRIES);
    let bad_size = |e: io::Error| match e.raw_os_error() {
        Some(libc::EINVAL) => io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("io_uring_entries({entries}) was rejected by the kernel: it must be 1 ..= 32768 ({e})"),
        ),
        _ => e,
    };
    if let Some(idle) = options.sqpoll_idle {
        let idle_ms = u32::try_from(idle.as_millis()).unwrap_or(u32::MAX);
        let sqpoll = if refuse_sqpoll {
            Err(io::Error::from_raw_os_error(libc::EPERM))
        } else {
            IoUring::builder().setup_sqpoll(idle_ms).build(entries)
        };
        let sqpoll = sqpoll.and_then(|ring| {
            if ring.params().is_feature_sqpoll_nonfixed() {
                Ok(ring)
            } else {
                Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "io_uring_sqpoll: this kernel needs registered files for SQPOLL (Linux < 5.11)",
                ))
            }
        });
        match sqpoll {
            Ok(ring) => return Ok(ring),
            Err(e) if strict => {
                let e = bad_size(e);
                return Err(match e.kind() {
                    io::ErrorKind::InvalidInput | io::ErrorKind::Unsupported => e,
                    kind => {
                        let hint =
                            if kind == io::ErrorKind::PermissionDenied { " (CAP_SYS_NICE before 5.11)" } else { "" };
                        io::Error::new(kind, format!("io_uring_sqpoll: the kernel refused an SQPOLL ring{hint}: {e}"))
                    }
                });
            }
            Err(e) => log::info!(target: "uvio", "io_uring: SQPOLL refused ({e}); using a plain ring"),
        }
    }
    plain_ring(entries).map_err(bad_size)
}

/// A ring without SQPOLL. Completions that need the task's context (socket operations finish as task work)
/// then run at the thread's next kernel entry instead of interrupting it (`IORING_SETUP_COOP_TASKRUN`, Linux
/// 5.19; the loop enters the kernel once per iteration anyway, and a thread asleep in `epoll_wait` is still
/// woken); older kernels reject the flag (`EINVAL`) and get the default.
fn plain_ring(entries: u32) -> io::Result<IoUring> {
    match IoUring::builder().setup_coop_taskrun().build(entries) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => IoUring::new(entries),
        ring => ring,
    }
}

/// The error of a ring that cannot be created, naming the cause and the knob.
fn not_available(e: io::Error) -> io::Error {
    let why = match e.raw_os_error() {
        Some(libc::ENOSYS) => "ENOSYS: the kernel has no io_uring (older than 5.1, or built without CONFIG_IO_URING)",
        Some(libc::EPERM) => {
            "EPERM: io_uring is forbidden here (a seccomp filter, or the sysctl kernel.io_uring_disabled)"
        }
        Some(libc::ENOMEM) => "ENOMEM: the locked-memory limit is too low for the ring (ulimit -l, RLIMIT_MEMLOCK)",
        _ => "the ring could not be created",
    };
    io::Error::new(e.kind(), format!("io_uring is not available: {why} ({e})"))
}

/// Whether a ring can be created here (an `Err` says why); the ring is closed again at once.
pub(crate) fn check_available() -> io::Result<()> {
    setup(RingOptions::default(), false).map(drop)
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

    /// Reads at most `buf.len() - start` bytes (and at most 1 GiB) at `offset` (at the current position for
    /// `None`: a file that is not seekable) into `buf[start..]`; `done` gets the count and the buffer, cut to
    /// `start + count` bytes (so the bytes read are its last ones). The bytes are already initialised, so the
    /// kernel's writes need no zero-filling first (memcheck cannot see writes through the ring: it keeps seeing
    /// the old, defined values). `file` stays open until then. `EINVAL` for an offset past `i64::MAX`, as libuv
    /// (the ring would take it for -1, "the current position").
    pub(crate) fn read_at(
        &self,
        file: &Rc<uv::fs::File>,
        mut buf: Vec<u8>,
        start: usize,
        offset: Option<u64>,
        done: impl FnOnce(io::Result<usize>, Vec<u8>) + 'static,
    ) -> io::Result<()> {
        let offset = ring_offset(offset)?;
        let start = start.min(buf.len());
        let len = (buf.len() - start).min(1 << 30) as u32;
        let dst = buf[start..].as_mut_ptr();
        let entry = opcode::Read::new(types::Fd(file.fd()), dst, len).offset(offset).build();
        let file: Rc<dyn Any> = file.clone();
        // The Vec's heap block does not move when the Vec moves into the slot.
        self.push(entry, Pending::Read { buf, start, _file: file, done: Box::new(done) })
    }

    /// Writes `buf` (at most 1 GiB of it) at `offset` (at the current position for `None`: a file that is not
    /// seekable, or one in append mode, where the kernel writes at the end whatever the offset); `done` gets the
    /// count written and the buffer. `EINVAL` for an offset past `i64::MAX`, as for [`Self::read_at`].
    pub(crate) fn write_at(
        &self,
        file: &Rc<uv::fs::File>,
        buf: Vec<u8>,
        offset: Option<u64>,
        done: impl FnOnce(io::Result<usize>, Vec<u8>) + 'static,
    ) -> io::Result<()> {
        let offset = ring_offset(offset)?;
        let len = buf.len().min(1 << 30) as u32;
        let entry = opcode::Write::new(types::Fd(file.fd()), buf.as_ptr(), len).offset(offset).build();
        // A write to a pipe nobody reads may wait forever: such a write is cancelled at shutdown (see `Drop`).
        let may_wait = !file.is_seekable();
        let file: Rc<dyn Any> = file.clone();
        self.push(entry, Pending::Write { buf, may_wait, _file: file, done: Box::new(done) })
    }

    /// Opens `path` (`openat` with `O_CLOEXEC`); `done` gets the file, owned by the uv layer.
    ///
    /// The kernel first tries an open inline with `O_NONBLOCK`, which it clears afterwards: for a FIFO that
    /// does not wait for the other end, and a write-only open without a reader fails with `ENXIO`, where
    /// `open(2)` would wait. `wait` sends the open to the kernel's workers at once (`IOSQE_ASYNC`), where it
    /// waits as `open(2)` does (and can still be cancelled at shutdown); callers retry with it on `ENXIO`.
    pub(crate) fn open(
        &self,
        path: &Path,
        flags: OpenFlags,
        mode: u32,
        wait: bool,
        done: impl FnOnce(io::Result<uv::fs::File>) + 'static,
    ) -> io::Result<()> {
        let path = c_path(path)?;
        let entry = opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), path.as_ptr())
            .flags(flags.bits() | libc::O_CLOEXEC)
            .mode(mode)
            .build();
        let entry = if wait { entry.flags(squeue::Flags::ASYNC) } else { entry };
        self.push(entry, Pending::Open { _path: path, lp: self.lp.clone(), done: Box::new(done) })
    }

    /// The metadata of `path` (statx), following a final symbolic link if `follow`.
    pub(crate) fn statx(
        &self,
        path: &Path,
        follow: bool,
        done: impl FnOnce(io::Result<Stat>) + 'static,
    ) -> io::Result<()> {
        let flags = if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW };
        self.statx_at(libc::AT_FDCWD, c_path(path)?, flags, None, Box::new(done))
    }

    /// The metadata of an open file (statx with `AT_EMPTY_PATH`).
    pub(crate) fn fstatx(
        &self,
        file: &Rc<uv::fs::File>,
        done: impl FnOnce(io::Result<Stat>) + 'static,
    ) -> io::Result<()> {
        let keep: Rc<dyn Any> = file.clone();
        self.statx_at(file.fd(), CString::default(), libc::AT_EMPTY_PATH, Some(keep), Box::new(done))
    }

    fn statx_at(
        &self,
        dirfd: i32,
        path: CString,
        flags: i32,
        file: Option<Rc<dyn Any>>,
        done: Box<dyn FnOnce(io::Result<Stat>)>,
    ) -> io::Result<()> {
        // SAFETY: `libc::statx` is a plain C struct of integers, for which all-zero bytes are a valid value.
        let mut buf: Box<libc::statx> = Box::new(unsafe { std::mem::zeroed() });
        let dst: *mut libc::statx = &mut *buf;
        let entry = opcode::Statx::new(types::Fd(dirfd), path.as_ptr(), dst.cast::<types::statx>())
            .flags(flags)
            .mask(STATX_MASK)
            .build();
        self.push(entry, Pending::Statx { _path: path, buf, _file: file, done })
    }

    /// Flushes the file's data, and its metadata too unless `data_only` (fsync / fdatasync).
    pub(crate) fn fsync(
        &self,
        file: &Rc<uv::fs::File>,
        data_only: bool,
        done: impl FnOnce(io::Result<()>) + 'static,
    ) -> io::Result<()> {
        let flags = if data_only { types::FsyncFlags::DATASYNC } else { types::FsyncFlags::empty() };
        let entry = opcode::Fsync::new(types::Fd(file.fd())).flags(flags).build();
        let keep: Rc<dyn Any> = file.clone();
        self.push(entry, Pending::Status { _file: Some(keep), done: Box::new(done) })
    }

    /// Closes `file`; `EBUSY` (and the file is dropped, closing when its requests finish) while libuv requests
    /// on it are in flight.
    pub(crate) fn close(&self, file: uv::fs::File, done: impl FnOnce(io::Result<()>) + 'static) -> io::Result<()> {
        let fd = file.into_owned_fd().map_err(|_| io::Error::from_raw_os_error(libc::EBUSY))?;
        // The descriptor is the kernel's to close from here on; until the completion, its number stays taken.
        let entry = opcode::Close::new(types::Fd(fd.into_raw_fd())).build();
        self.push(entry, Pending::Status { _file: None, done: Box::new(done) })
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

/// The offset of a read or write entry: `u64::MAX` (-1, "the current position") for `None`; `EINVAL` for an
/// offset past `i64::MAX`, which the kernel would read as negative (-1 included), exactly as libuv reports it.
fn ring_offset(offset: Option<u64>) -> io::Result<u64> {
    match offset {
        None => Ok(u64::MAX),
        Some(offset) if i64::try_from(offset).is_ok() => Ok(offset),
        Some(_) => Err(io::Error::from_raw_os_error(libc::EINVAL)),
    }
}

/// A path as the kernel reads it; `EINVAL` (`InvalidInput`) for a NUL byte inside, exactly as the libuv
/// engine reports it.
fn c_path(path: &Path) -> io::Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}
