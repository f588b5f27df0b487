//! Setting the ring up (Linux): the knobs ([`RingOptions`]), creating the ring (SQPOLL, `COOP_TASKRUN`, sizes),
//! telling "not available" apart (`ENOSYS`, `EPERM`, `ENOMEM`, each named with its cause), and probing which
//! operations this kernel carries ([`Op`], ring networking).
//!
//! Failure injection (tests only): a [`Simulate`] in the options makes [`setup`] act as if the kernel failed
//! that way. It comes from the hidden `Builder::simulate_ring_failure`, or, for a child process whose
//! environment the test sets, from `UVIO_IO_URING_SIMULATE` (read once per runtime built, by
//! [`RingOptions::with_env`]).

use std::io;
use std::time::Duration;

use io_uring::{opcode, IoUring, Probe};

/// Submission queue entries per ring unless [`RingOptions::entries`] says otherwise.
const ENTRIES: u32 = 256;

/// The fewest completion queue entries a ring gets (else twice its submission queue). Every connection may have
/// a recv and a send in flight, and a loop iteration reaps only once the kernel has posted them all: with a
/// queue of 512, a thousand busy connections overflow it every iteration, and the kernel then allocates an
/// overflow record per completion and flushes them over extra `io_uring_enter` calls. 16 bytes an entry.
const MIN_CQ_ENTRIES: u32 = 4096;

/// The completion queue size for a ring of `entries` submission entries.
fn cq_entries(entries: u32) -> u32 {
    entries.saturating_mul(2).max(MIN_CQ_ENTRIES)
}

/// How to set the ring up (the Linux knobs of `uvio::linux::BuilderExt`); the default is a plain ring of
/// [`ENTRIES`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RingOptions {
    /// Submission queue entries (`None`: [`ENTRIES`]).
    pub(crate) entries: Option<u32>,
    /// `IORING_SETUP_SQPOLL` with this idle time before the kernel thread sleeps (`None`: no SQPOLL).
    pub(crate) sqpoll_idle: Option<Duration>,
    /// Buffers in the provided-buffer ring for socket reads (`None`: [`super::bufring::COUNT`]).
    pub(crate) recv_buffers: Option<u16>,
    /// A failure to act out (tests only): from `Builder::simulate_ring_failure`, else from
    /// `UVIO_IO_URING_SIMULATE` (see [`RingOptions::with_env`]).
    pub(crate) simulate: Option<Simulate>,
}

/// A failure the ring setup acts out, so that the fallback paths are tested on machines that have io_uring
/// (the hidden `Builder::simulate_ring_failure`, or `UVIO_IO_URING_SIMULATE` for child processes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Simulate {
    /// The ring setup fails with this errno: `ENOSYS`, `EPERM` or `ENOMEM`.
    SetupFails(i32),
    /// The kernel lacks `IORING_OP_STATX`.
    NoStatx,
    /// The kernel lacks the opcodes of the path operations and ftruncate ([`Op::FS_PATH_OPS`]).
    NoFsPathOps,
    /// The kernel refuses SQPOLL rings with `EPERM`.
    SqpollEperm,
    /// The kernel lacks ring networking: sockets use the epoll engine's code.
    NoNet,
    /// A name none of the above has: building the runtime fails.
    Unknown,
}

impl Simulate {
    /// The failure named `what` (`ENOSYS`, `EPERM`, `ENOMEM`, `NO_STATX`, `NO_FS_PATH_OPS`, `SQPOLL_EPERM`,
    /// `NO_NET`); [`Simulate::Unknown`] for another name.
    pub(crate) fn named(what: &str) -> Simulate {
        match what {
            "ENOSYS" => Simulate::SetupFails(libc::ENOSYS),
            "EPERM" => Simulate::SetupFails(libc::EPERM),
            "ENOMEM" => Simulate::SetupFails(libc::ENOMEM),
            "NO_STATX" => Simulate::NoStatx,
            "NO_FS_PATH_OPS" => Simulate::NoFsPathOps,
            "SQPOLL_EPERM" => Simulate::SqpollEperm,
            "NO_NET" => Simulate::NoNet,
            _ => Simulate::Unknown,
        }
    }
}

impl RingOptions {
    /// These options as a runtime is built with them: a failure to simulate that the builder did not set is
    /// read from `UVIO_IO_URING_SIMULATE` (once, here; an unknown value there is ignored, as it always was). An
    /// unknown name given to the builder is an `InvalidInput` error.
    pub(crate) fn with_env(mut self) -> io::Result<RingOptions> {
        if self.simulate.is_none() {
            let from_env = std::env::var("UVIO_IO_URING_SIMULATE").unwrap_or_default();
            self.simulate = Some(Simulate::named(&from_env)).filter(|s| *s != Simulate::Unknown);
        }
        if self.simulate == Some(Simulate::Unknown) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "unknown io_uring failure to simulate"));
        }
        Ok(self)
    }
}

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
    pub(super) const ALL: [Op; 12] = [
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

    /// The operations of [`super::fs`] (what a simulated `NO_FS_PATH_OPS` marks missing).
    const FS_PATH_OPS: [Op; 6] = [Op::RenameAt, Op::UnlinkAt, Op::MkDirAt, Op::SymlinkAt, Op::LinkAt, Op::Ftruncate];

    pub(super) fn code(self) -> u8 {
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

    pub(super) fn bit(self) -> u32 {
        1 << self as u32
    }
}

/// The socket opcodes ring networking needs (`IORING_OP_ACCEPT` must also take the multishot flag: Linux 5.19,
/// the same release as the provided-buffer rings that [`super::Driver::new`] registers, which is how it is
/// detected).
pub(super) const NET_OPCODES: [u8; 6] = [
    opcode::Recv::CODE,
    opcode::Send::CODE,
    opcode::AcceptMulti::CODE,
    opcode::Connect::CODE,
    opcode::Shutdown::CODE,
    opcode::AsyncCancel::CODE,
];

/// A ring set up as `options` ask and the opcodes it supports, or why there is none. A refused SQPOLL request
/// is an error if `strict`, else a plain ring (logged).
pub(super) fn setup(options: RingOptions, strict: bool) -> io::Result<(IoUring, u32, bool)> {
    let simulate = options.simulate;
    let ring = match simulate {
        Some(Simulate::SetupFails(errno)) => Err(io::Error::from_raw_os_error(errno)),
        _ => build_ring(options, strict, simulate == Some(Simulate::SqpollEperm)),
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
    let supported = match simulate {
        Some(Simulate::NoStatx) => supported & !Op::Statx.bit(),
        Some(Simulate::NoFsPathOps) => Op::FS_PATH_OPS.iter().fold(supported, |bits, op| bits & !op.bit()),
        _ => supported,
    };
    Ok((ring, supported, net && simulate != Some(Simulate::NoNet)))
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
            IoUring::builder().setup_sqpoll(idle_ms).setup_cqsize(cq_entries(entries)).build(entries)
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
    match IoUring::builder().setup_coop_taskrun().setup_cqsize(cq_entries(entries)).build(entries) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            IoUring::builder().setup_cqsize(cq_entries(entries)).build(entries)
        }
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

/// Whether a ring can be created here (an `Err` says why); the ring is closed again at once. Only the failure
/// to simulate is taken from `options`: the question is whether io_uring works here at all.
pub(crate) fn check_available(options: &RingOptions) -> io::Result<()> {
    setup(RingOptions { simulate: options.simulate, ..RingOptions::default() }, false).map(drop)
}
