//! Linux-only knobs, as extension traits on the portable types (like `polling`'s `os` traits).
//!
//! [`Builder`] and [`Runtime`] are the same types on every OS; what only makes sense on Linux lives here, in
//! traits that are sealed (implemented for uvio's types only, so methods can be added without breaking anyone):
//!
//! - [`BuilderExt`]: the io_uring ring's size ([`io_uring_entries`](BuilderExt::io_uring_entries)) and a kernel
//!   thread polling its submission queue ([`io_uring_sqpoll`](BuilderExt::io_uring_sqpoll)).
//! - [`RuntimeExt`]: what the running ring actually has.
//!
//! The knobs only matter when the runtime's engine is io_uring ([`Backend::IoUring`](crate::Backend::IoUring), or
//! [`Backend::Auto`](crate::Backend::Auto) when io_uring is available); under the other engines they are ignored.
//!
//! Future work: registered (fixed) buffers and files are not offered yet.
//!
//! ```
//! use uvio::linux::{BuilderExt, RuntimeExt};
//!
//! let rt = uvio::Builder::new().io_uring_entries(64).build()?;
//! if rt.backend() != uvio::Backend::IoUring {
//!     assert_eq!(rt.io_uring_entries(), None); // no ring under epoll or libuv
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
    /// Submission queue entries of the io_uring ring (256 by default; the completion queue gets twice as many).
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
}

impl RuntimeExt for Runtime {
    fn io_uring_entries(&self) -> Option<u32> {
        self.uring().map(|driver| driver.entries())
    }

    fn io_uring_sqpoll(&self) -> bool {
        self.uring().is_some_and(|driver| driver.sqpoll())
    }
}
