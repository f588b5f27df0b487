//! The provided-buffer ring of one runtime (`IORING_REGISTER_PBUF_RING`, Linux 5.19): `count` buffers
//! ([`COUNT`] unless `uvio::linux::BuilderExt::io_uring_recv_buffers` says otherwise) of [`SIZE`] bytes that socket reads (`IORING_OP_RECV` with `IOSQE_BUFFER_SELECT`) pick from when their data
//! arrives, so a connection waiting for data pins no memory.
//!
//! - **Ownership.** A buffer is either the kernel's (in the ring, where a completing recv may pick it) or user
//!   space's: a completion that picked it hands it over as a [`BufId`] (taken with [`BufRing::take`]), which
//!   gives its bytes ([`BufRing::bytes`]) until [`BufRing::recycle`] gives it back. A bitmap of the buffers user
//!   space holds makes every call check that, so no safe caller can read memory the kernel may write.
//! - **Publishing lazily.** The kernel takes buffers from its ring in the order they were published, so
//!   publishing all of them would cycle every connection's data through the whole ring's memory (8 MiB by
//!   default), cold in the caches each time. Instead the ring holds only as many buffers as recvs are armed
//!   (plus [`SLACK`]), so none finds it empty because of this; the others wait in user space, and the one given
//!   back last (still warm) is published first.
//! - **Initialised memory, resident as used.** The buffers and the ring are anonymous mappings: zero-filled by
//!   the kernel, page by page, when first touched, so a runtime's 8 MiB of buffers cost only the pages its
//!   connections use (an allocator's `alloc_zeroed` at page alignment would write every page at once). The
//!   kernel's writes are invisible to valgrind's memcheck, which sees such mappings as defined bytes.
//! - **Lifetime.** The memory is freed when the `BufRing` drops, which the driver lets happen only once every
//!   operation is complete (and the ring unregistered).

#![allow(unsafe_code)]

use std::cell::{Cell, RefCell};
use std::io;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::{cqueue, Submitter};

/// The buffer group id of the ring (one ring per runtime).
pub(super) const BGID: u16 = 0;
/// Bytes per buffer: the most one ring recv delivers.
pub(crate) const SIZE: usize = 16 * 1024;
/// Buffers in the ring by default (a power of two, as the kernel requires).
pub(crate) const COUNT: u16 = 512;
/// Buffers published beyond the armed recvs (see the module docs).
const SLACK: usize = 8;

/// One ring entry, laid out as the kernel's `struct io_uring_buf`. The `resv` field of the first entry is the
/// ring's tail, which the kernel reads concurrently: it is only written as an atomic.
#[repr(C)]
struct RawEntry {
    addr: u64,
    len: u32,
    bid: u16,
    resv: u16,
}

const _: () = assert!(std::mem::size_of::<RawEntry>() == 16);

/// `InvalidInput` unless `count` is a power of two in 1..=32768 (what the kernel accepts for a buffer ring).
pub(super) fn check_count(count: u16) -> io::Result<()> {
    if count.is_power_of_two() && count <= 32768 {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("io_uring receive buffers: {count} is not a power of two in 1..=32768"),
    ))
}

/// A buffer a completion handed to user space; its bytes stay valid until it is recycled.
#[derive(Debug)]
pub(crate) struct BufId {
    bid: u16,
    len: usize,
}

impl BufId {
    /// How many bytes the kernel put in the buffer.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

/// The ring and its buffers; see the module docs.
pub(crate) struct BufRing {
    /// Buffers in the ring: a power of two, at most 32 768 (the kernel's limit).
    count: u16,
    ring: NonNull<RawEntry>,
    mem: NonNull<u8>,
    // The mappings behind `ring` and `mem`, unmapped when the `BufRing` drops (after the pointers' last use).
    _ring_map: Mapping,
    _mem_map: Mapping,
    /// Our copy of the tail: entries before it are the kernel's.
    tail: Cell<u16>,
    /// Buffers user space holds (a bit per buffer id).
    held: RefCell<Vec<u64>>,
    /// How many bits of `held` are set.
    held_count: Cell<u16>,
    /// Buffers neither the kernel's nor held: given back and not published yet, the last given back on top.
    idle: RefCell<Vec<u16>>,
    /// Recvs armed on the ring, each of which may take one buffer.
    armed: Cell<usize>,
}

impl BufRing {
    /// Allocates the ring and the buffers (zeroed), registers them with the ring of `submitter` as group
    /// [`BGID`] and gives every buffer to the kernel.
    /// Registers a ring of `count` buffers (`InvalidInput` unless a power of two in 1..=32768).
    pub(super) fn new(submitter: &Submitter<'_>, count: u16) -> io::Result<BufRing> {
        check_count(count)?;
        let ring_map = Mapping::new(std::mem::size_of::<RawEntry>() * usize::from(count))?;
        let mem_map = Mapping::new(SIZE * usize::from(count))?;
        let (ring, mem) = (ring_map.ptr.cast::<RawEntry>(), mem_map.ptr);
        let bufs = BufRing {
            count,
            ring,
            mem,
            _ring_map: ring_map,
            _mem_map: mem_map,
            tail: Cell::new(0),
            held: RefCell::new(vec![0; usize::from(count).div_ceil(64)]),
            held_count: Cell::new(0),
            idle: RefCell::new((0..count).rev().collect()),
            armed: Cell::new(0),
        };
        // SAFETY: the ring memory is page-aligned, holds `count` entries and stays allocated until `bufs` drops,
        // which the driver lets happen only after the ring is unregistered or destroyed (or leaks it).
        unsafe { submitter.register_buf_ring_with_flags(ring.as_ptr() as u64, count, BGID, 0)? };
        bufs.top_up();
        Ok(bufs)
    }

    /// Writes the entry at our tail for buffer `bid` and advances our tail (published by [`Self::tail_store`]).
    fn publish(&self, bid: u16) {
        let tail = self.tail.get();
        let index = usize::from(tail & (self.count - 1));
        // SAFETY: `index < count`, so the pointer stays inside the ring allocation, and `bid < count`, so the
        // buffer lies inside `mem`.
        let (entry, addr) = unsafe { (self.ring.as_ptr().add(index), self.mem.as_ptr().add(usize::from(bid) * SIZE)) };
        // SAFETY: the slot at our tail is not one the kernel reads (it reads entries between its head and the
        // published tail, and at most `count` buffers exist, so the slot is free); only the addr, len and bid
        // fields are written, never `resv`, which is the tail in the first entry. Raw field writes: no
        // reference to memory the kernel reads is formed.
        unsafe {
            ptr::addr_of_mut!((*entry).addr).write(addr as u64);
            ptr::addr_of_mut!((*entry).len).write(SIZE as u32);
            ptr::addr_of_mut!((*entry).bid).write(bid);
        }
        self.tail.set(tail.wrapping_add(1));
    }

    /// A recv on the ring is armed: makes sure a buffer waits for it.
    pub(crate) fn arm(&self) {
        self.armed.set(self.armed.get() + 1);
        self.top_up();
    }

    /// A recv on the ring completed (whatever its result; call before [`Self::take`] hands its buffer over).
    pub(crate) fn disarm(&self) {
        self.armed.set(self.armed.get().saturating_sub(1));
    }

    /// Publishes idle buffers, the last given back first, until the kernel has one per armed recv plus
    /// [`SLACK`] (or every buffer).
    fn top_up(&self) {
        let mut idle = self.idle.borrow_mut();
        let kernels = usize::from(self.count) - usize::from(self.held_count.get()) - idle.len();
        let want = (self.armed.get() + SLACK).saturating_sub(kernels);
        if want == 0 || idle.is_empty() {
            return;
        }
        for _ in 0..want {
            let Some(bid) = idle.pop() else { break };
            self.publish(bid);
        }
        self.tail_store();
    }

    /// Buffers in the ring.
    pub(super) fn count(&self) -> u16 {
        self.count
    }

    /// Whether user space holds at least half of the buffers (the kernel may soon find none: `ENOBUFS`).
    pub(crate) fn running_low(&self) -> bool {
        self.held_count.get() >= self.count / 2
    }

    /// Publishes our tail to the kernel (a release store: the entries written before are visible first).
    fn tail_store(&self) {
        // SAFETY: the first entry's `resv` field is the ring's tail: a 2-byte aligned u16 inside the allocation,
        // which the kernel reads atomically and nothing else writes but this store.
        let tail = unsafe { AtomicU16::from_ptr(ptr::addr_of_mut!((*self.ring.as_ptr()).resv)) };
        tail.store(self.tail.get(), Ordering::Release);
    }

    /// The buffer a completion with `flags` picked, now user space's, holding `len` bytes; `None` if it picked
    /// none (or reports an impossible buffer, which then stays out of use).
    pub(super) fn take(&self, flags: u32, len: usize) -> Option<BufId> {
        let bid = cqueue::buffer_select(flags)?;
        if bid >= self.count || len > SIZE {
            log::error!(target: "uvio", "io_uring: a completion reported buffer {bid} with {len} bytes");
            return None;
        }
        let mut held = self.held.borrow_mut();
        let (word, bit) = (usize::from(bid) / 64, 1u64 << (bid % 64));
        if held[word] & bit != 0 {
            log::error!(target: "uvio", "io_uring: buffer {bid} handed out twice");
            return None;
        }
        held[word] |= bit;
        self.held_count.set(self.held_count.get() + 1);
        Some(BufId { bid, len })
    }

    /// The bytes the kernel put in `id`'s buffer.
    pub(crate) fn bytes<'a>(&'a self, id: &'a BufId) -> &'a [u8] {
        let held = self.held.borrow();
        assert!(held[usize::from(id.bid) / 64] & (1u64 << (id.bid % 64)) != 0, "buffer not held by user space");
        // SAFETY: user space holds the buffer (checked above): the kernel does not write into it until it is
        // recycled, which takes the `BufId` by value, so it cannot happen while this borrow of `id` lives. The
        // range lies inside `mem` (`bid < count`, `len <= SIZE`) and was zeroed at allocation, so it is
        // initialised.
        unsafe { std::slice::from_raw_parts(self.mem.as_ptr().add(usize::from(id.bid) * SIZE), id.len) }
    }

    /// Gives `id`'s buffer back to the kernel.
    pub(crate) fn recycle(&self, id: BufId) {
        {
            let mut held = self.held.borrow_mut();
            let (word, bit) = (usize::from(id.bid) / 64, 1u64 << (id.bid % 64));
            if held[word] & bit == 0 {
                return; // not ours to give (a BufId of another ring): keep the accounting right
            }
            held[word] &= !bit;
        }
        self.held_count.set(self.held_count.get() - 1);
        self.idle.borrow_mut().push(id.bid);
        self.top_up();
    }
}

/// An anonymous private mapping of `len` bytes (page-aligned, zero-filled on first touch), unmapped on drop.
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    fn new(len: usize) -> io::Result<Mapping> {
        // SAFETY: a fresh anonymous mapping at an address of the kernel's choice: it aliases nothing.
        let ptr = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))?;
        Ok(Mapping { ptr, len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly the mapping made in `new`, unmapped once, here. The `BufRing` that
        // owns it drops only when the kernel no longer uses the ring (see the module docs).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}
