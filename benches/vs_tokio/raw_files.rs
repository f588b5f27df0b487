//! The ceiling rows of the files table: the same operations with no runtime at all, so the table shows what this
//! machine's kernel and disk allow and how close each runtime gets.
//!
//! - **raw io_uring**: one thread, one ring, 64 operations in flight, nothing between the ring and the loop that
//!   refills it (Linux). The ceiling of any one-thread io_uring runtime, uvio's engine included.
//! - **raw threads**: 64 threads, each making the plain syscalls (`pread`, `statx` through `std::fs::metadata`)
//!   one after the other: a thread pool with no queue, no wakeups and no hand-off. The ceiling of any thread-pool
//!   design (libuv's, tokio's blocking pool) with 64 operations in flight, using every core.

use std::path::Path;

use crate::files::{offsets, pread, Workload, BLOCK, FILE_LEN, IN_FLIGHT};

/// `n` operations of `work` on 64 threads (`n / 64` each).
pub(crate) fn threads(path: &Path, n: u64, work: Workload) {
    let per_task = n / IN_FLIGHT;
    let file = std::sync::Arc::new(std::fs::File::open(path).unwrap());
    std::thread::scope(|scope| {
        for t in 0..IN_FLIGHT {
            let file = file.clone();
            scope.spawn(move || {
                if let Workload::Stats = work {
                    for _ in 0..per_task {
                        assert_eq!(std::fs::metadata(path).unwrap().len(), FILE_LEN);
                    }
                    return;
                }
                let mut buf = vec![0u8; BLOCK];
                for at in offsets(t, per_task) {
                    assert_eq!(pread(&file, &mut buf, at).unwrap(), BLOCK);
                }
            });
        }
    });
}

/// `n` operations of `work` through one io_uring, 64 in flight, on this thread: each completion is checked and
/// its slot refilled at once.
#[cfg(target_os = "linux")]
pub(crate) fn ring(path: &Path, n: u64, work: Workload) {
    use std::os::unix::ffi::OsStrExt;

    let file = std::fs::File::open(path).unwrap();
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let per_task = n / IN_FLIGHT;
    let mut ring = io_uring::IoUring::builder().setup_coop_taskrun().build(2 * IN_FLIGHT as u32).unwrap();
    // One buffer, statx result and offset sequence per slot, as the 64 tasks of the other rows have.
    let mut bufs = vec![vec![0u8; BLOCK]; IN_FLIGHT as usize];
    // SAFETY: `statx` is plain data; all zeroes is a valid value.
    let mut stats: Vec<libc::statx> = vec![unsafe { std::mem::zeroed() }; IN_FLIGHT as usize];
    let mut seqs: Vec<_> = (0..IN_FLIGHT).map(|t| offsets(t, per_task)).collect();
    // What `push` relies on: the buffer, statx result and path an entry points to live in `bufs`,
    // `stats` and `c_path` until the loop has reaped every completion, and a slot gets a new entry only once its
    // previous one completed.
    let mut in_flight = 0;
    for slot in 0..IN_FLIGHT as usize {
        in_flight += usize::from(push(&mut ring, entry(work, slot, &mut seqs, &mut bufs, &mut stats, &file, &c_path)));
    }
    while in_flight > 0 {
        ring.submit_and_wait(1).unwrap();
        let done: Vec<(usize, i32)> = ring.completion().map(|c| (c.user_data() as usize, c.result())).collect();
        for (slot, res) in done {
            in_flight -= 1;
            match work {
                Workload::Stats => assert_eq!((res, stats[slot].stx_size), (0, FILE_LEN)),
                _ => assert_eq!(res, BLOCK as i32),
            }
            in_flight +=
                usize::from(push(&mut ring, entry(work, slot, &mut seqs, &mut bufs, &mut stats, &file, &c_path)));
        }
    }
}

/// The next operation of `slot` (`user_data` = the slot), or `None` when it has done its share.
#[cfg(target_os = "linux")]
fn entry(
    work: Workload,
    slot: usize,
    seqs: &mut [impl Iterator<Item = u64>],
    bufs: &mut [Vec<u8>],
    stats: &mut [libc::statx],
    file: &std::fs::File,
    c_path: &std::ffi::CStr,
) -> Option<io_uring::squeue::Entry> {
    use io_uring::{opcode, types};
    use std::os::fd::AsRawFd;
    let at = seqs[slot].next()?;
    let entry = match work {
        Workload::Stats => opcode::Statx::new(
            types::Fd(libc::AT_FDCWD),
            c_path.as_ptr(),
            (&mut stats[slot] as *mut libc::statx).cast(),
        )
        .mask(libc::STATX_SIZE)
        .build(),
        _ => opcode::Read::new(types::Fd(file.as_raw_fd()), bufs[slot].as_mut_ptr(), BLOCK as u32).offset(at).build(),
    };
    Some(entry.user_data(slot as u64))
}

/// Queues `entry` if there is one; whether it did.
#[cfg(target_os = "linux")]
fn push(ring: &mut io_uring::IoUring, entry: Option<io_uring::squeue::Entry>) -> bool {
    let Some(entry) = entry else { return false };
    // SAFETY: see `ring`: what the entry points to outlives its operation. At most 64 entries are ever queued in
    // a ring of 128, so there is room.
    unsafe { ring.submission().push(&entry).unwrap() };
    true
}
