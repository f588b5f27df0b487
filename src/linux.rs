//! Linux-only knobs, as extension traits on the portable types (like `polling`'s `os` traits).
//!
//! [`Builder`] and [`Runtime`] are the same types on every OS; what only makes sense on Linux lives here, in
//! traits that are sealed (implemented for uvio's types only, so methods can be added without breaking anyone):
//!
//! - [`BuilderExt`]: the io_uring ring's size ([`io_uring_entries`](BuilderExt::io_uring_entries)), a kernel
//!   thread polling its submission queue ([`io_uring_sqpoll`](BuilderExt::io_uring_sqpoll)), and how many
//!   buffers are registered with the kernel for socket reads
//!   ([`io_uring_recv_buffers`](BuilderExt::io_uring_recv_buffers)).
//! - [`RuntimeExt`]: what the running ring actually has.
//!
//! The knobs only matter when the runtime's engine is io_uring ([`Backend::IoUring`](crate::Backend::IoUring), or
//! [`Backend::Auto`](crate::Backend::Auto) when io_uring is available); under the other engines they are ignored.
//!
//! Not offered yet: fixed buffers for file I/O (`IORING_REGISTER_BUFFERS`) and registered files.
//!
//! ```
//! use uvio::linux::{BuilderExt, RuntimeExt};
//!
//! let rt = uvio::Builder::new().io_uring_entries(64).io_uring_recv_buffers(1024).build()?;
//! if rt.backend() != uvio::Backend::IoUring {
//!     assert_eq!(rt.io_uring_entries(), None); // no ring under epoll or libuv
//!     assert_eq!(rt.io_uring_recv_buffers(), None);
//! }
//! rt.close()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Portability
//! Linux only: this module does not exist on other OSes.

use std::time::Duration;

use crate::{Builder, Runtime};

mod sealed {
    /// Only uvio's own types implement the `linux` extension traits.
    pub trait Sealed {}

    impl Sealed for crate::Builder {}
    impl Sealed for crate::Runtime {}
}

/// Linux-only settings of a [`Builder`] for the io_uring engine. Sealed: implemented for [`Builder`] only.
///
/// # Portability
/// Linux only.
pub trait BuilderExt: sealed::Sealed {
    /// Submission queue entries of the io_uring ring (256 by default; the completion queue gets twice as many,
    /// and at least 4096).
    ///
    /// The kernel (`io_uring_setup`) rounds `entries` up to a power of two; a size it rejects (0, or more than
    /// 32768) makes [`Builder::build`] fail with [`InvalidInput`](std::io::ErrorKind::InvalidInput). A bigger
    /// ring batches more operations per submission; it does not limit how many are in flight. Ignored when
    /// the engine is not io_uring; [`RuntimeExt::io_uring_entries`] tells what the ring got.
    ///
    /// # Portability
    /// Linux only.
    fn io_uring_entries(self, entries: u32) -> Builder;

    /// A kernel thread polling the ring's submission queue (`IORING_SETUP_SQPOLL`), going to sleep after `idle`
    /// without work (rounded down to milliseconds: `sq_thread_idle`); `None` (the default) turns it off.
    ///
    /// With SQPOLL, submitting costs no system call while the thread is awake: uvio enters the kernel only to
    /// wake it (`IORING_SQ_NEED_WAKEUP`). The thread burns CPU while it polls, so this pays off under steady
    /// load. If the kernel refuses an SQPOLL ring (`EPERM` before Linux 5.11 without `CAP_SYS_NICE`, or a
    /// kernel that needs registered files for it): with [`Backend::Auto`](crate::Backend::Auto) the runtime
    /// uses a plain ring and logs why (`log::info!`, target `uvio`); with an explicit
    /// [`Backend::IoUring`](crate::Backend::IoUring) (or `UVIO_BACKEND=io_uring`), [`Builder::build`] returns the
    /// error (`PermissionDenied` for `EPERM`). [`RuntimeExt::io_uring_sqpoll`] tells whether the ring has it.
    ///
    /// # Portability
    /// Linux only.
    fn io_uring_sqpoll(self, idle: Option<Duration>) -> Builder;

    /// How many 16 KiB buffers the io_uring engine registers with the kernel for socket reads (a provided-buffer
    /// ring, `IORING_REGISTER_PBUF_RING`; 512 by default, i.e. 8 MiB of address space, resident only as used).
    /// A read waiting on a socket pins no buffer; one that completes holds its buffer until the data is read.
    /// When every buffer is held, reads fall back to a buffer of their own (slower, never an error), so more
    /// buffers help many connections with data in flight at once. `count` must be a power of two in
    /// 1..=32768, or [`Builder::build`] fails with [`InvalidInput`](std::io::ErrorKind::InvalidInput). Ignored
    /// when the engine is not io_uring; [`RuntimeExt::io_uring_recv_buffers`] tells what the runtime got.
    ///
    /// # Portability
    /// Linux only.
    fn io_uring_recv_buffers(self, count: u16) -> Builder;
}

impl BuilderExt for Builder {
    fn io_uring_entries(mut self, entries: u32) -> Builder {
        self.ring.entries = Some(entries);
        self
    }

    fn io_uring_sqpoll(mut self, idle: Option<Duration>) -> Builder {
        self.ring.sqpoll_idle = idle;
        self
    }

    fn io_uring_recv_buffers(mut self, count: u16) -> Builder {
        self.ring.recv_buffers = Some(count);
        self
    }
}

/// Linux-only facts about a running [`Runtime`]. Sealed: implemented for [`Runtime`] only.
///
/// # Portability
/// Linux only.
pub trait RuntimeExt: sealed::Sealed {
    /// Submission queue entries of the runtime's io_uring ring (after the kernel's rounding), or `None` when the
    /// runtime's engine is not io_uring.
    ///
    /// # Portability
    /// Linux only.
    fn io_uring_entries(&self) -> Option<u32>;

    /// Whether the runtime's io_uring ring has a kernel thread polling its submission queue (SQPOLL); `false`
    /// when the engine is not io_uring or SQPOLL was refused and `Auto` fell back to a plain ring.
    ///
    /// # Portability
    /// Linux only.
    fn io_uring_sqpoll(&self) -> bool;

    /// Buffers in the io_uring engine's provided-buffer ring for socket reads, or `None` when sockets do not run
    /// on a ring (another engine, or ring networking unavailable on this kernel).
    ///
    /// # Portability
    /// Linux only.
    fn io_uring_recv_buffers(&self) -> Option<u16>;
}

impl RuntimeExt for Runtime {
    fn io_uring_entries(&self) -> Option<u32> {
        self.uring().map(|driver| driver.entries())
    }

    fn io_uring_sqpoll(&self) -> bool {
        self.uring().is_some_and(|driver| driver.sqpoll())
    }

    fn io_uring_recv_buffers(&self) -> Option<u16> {
        self.uring().and_then(|driver| driver.recv_buffers())
    }
}
