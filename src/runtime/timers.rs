//! The runtime's timers: one libuv timer per runtime, armed for the earliest deadline, over a radix heap of
//! deadlines. A pending sleep costs a 16-byte heap entry and a 24-byte slab slot (no libuv handle, no allocation
//! of its own), so millions of sleeps stay cheap. A dropped sleep marks its slot cancelled; the slot is freed
//! when its heap entry comes due (or when cancelled entries dominate and the heap is compacted), so a heap
//! entry's key always names its own slot.

use std::cell::{Cell, RefCell};
use std::rc::Weak;
use std::task::Waker;
use std::time::{Duration, Instant};

use slab::Slab;

use super::executor::Executor;
use super::radix_heap::RadixHeap;
use crate::uv::{Handle as _, Loop, Timer};

enum Entry {
    /// Due in the future; woken through this waker.
    Waiting(Waker),
    /// The deadline passed (its heap entry is gone); freed when the sleep unregisters.
    Fired,
    /// The sleep went away first; freed when its heap entry comes due or the heap is compacted.
    Cancelled,
}

/// A registered deadline: its slot in the slab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimerKey(usize);

pub(crate) struct Timers {
    uv: Timer,
    /// `(deadline in loop milliseconds, slab key)`, earliest first.
    heap: RefCell<RadixHeap>,
    entries: RefCell<Slab<Entry>>,
    /// How many entries are `Cancelled` (to know when compacting pays).
    cancelled: Cell<usize>,
    /// The deadline the libuv timer is armed for.
    armed_for: Cell<Option<u64>>,
    /// The `Instant` that corresponds to loop time 0, to convert `Instant` deadlines to loop milliseconds.
    origin: Cell<Option<(Instant, u64)>>,
    lp: Loop,
}

impl Timers {
    pub(crate) fn new(lp: &Loop) -> crate::Result<Timers> {
        Ok(Timers {
            uv: Timer::new(lp)?,
            heap: RefCell::new(RadixHeap::new()),
            entries: RefCell::new(Slab::new()),
            cancelled: Cell::new(0),
            armed_for: Cell::new(None),
            origin: Cell::new(None),
            lp: lp.clone(),
        })
    }

    /// Installs the libuv timer's callback (needs the executor, which owns these timers).
    pub(crate) fn bind(&self, ex: Weak<Executor>) {
        let _ = self.uv.start(Duration::from_secs(u32::MAX as u64), None, move |_| {
            if let Some(ex) = ex.upgrade() {
                ex.timers.fire();
            }
        });
        let _ = self.uv.stop();
    }

    /// Loop milliseconds for an `Instant`, rounded up so a sleep never ends early: loop time is whole
    /// milliseconds (floored), so one more millisecond covers the origin's own rounding.
    fn loop_ms(&self, deadline: Instant) -> u64 {
        let (origin, origin_ms) = match self.origin.get() {
            Some(o) => o,
            None => {
                self.lp.update_time();
                let o = (Instant::now(), self.lp.now());
                self.origin.set(Some(o));
                o
            }
        };
        let after = deadline.saturating_duration_since(origin);
        let ms = after.as_millis() as u64 + u64::from(after.subsec_nanos() % 1_000_000 != 0);
        origin_ms.saturating_add(ms).saturating_add(1)
    }

    /// Registers a deadline; `waker` is woken when it passes.
    pub(crate) fn register(&self, deadline: Instant, waker: &Waker) -> TimerKey {
        let at = self.loop_ms(deadline);
        let key = self.entries.borrow_mut().insert(Entry::Waiting(waker.clone()));
        self.heap.borrow_mut().push(at, key);
        if self.armed_for.get().is_none_or(|armed| at < armed) {
            self.arm(at);
        }
        TimerKey(key)
    }

    /// Whether the deadline passed; otherwise remembers the latest waker.
    pub(crate) fn poll(&self, t: TimerKey, waker: &Waker) -> bool {
        match self.entries.borrow_mut().get_mut(t.0) {
            Some(Entry::Waiting(w)) => {
                if !w.will_wake(waker) {
                    *w = waker.clone();
                }
                false
            }
            _ => true,
        }
    }

    /// Forgets a deadline (the sleep was dropped or finished).
    pub(crate) fn cancel(&self, t: TimerKey) {
        let mut entries = self.entries.borrow_mut();
        let waker = match entries.get_mut(t.0) {
            Some(Entry::Fired) => {
                entries.remove(t.0);
                return;
            }
            Some(e @ Entry::Waiting(_)) => std::mem::replace(e, Entry::Cancelled),
            _ => return,
        };
        drop(entries);
        drop(waker);
        self.cancelled.set(self.cancelled.get() + 1);
        self.compact_if_sparse();
    }

    /// Drops the heap entries and slots of cancelled sleeps when they dominate, so that many cancelled
    /// timeouts with far deadlines do not pile up.
    fn compact_if_sparse(&self) {
        let cancelled = self.cancelled.get();
        let mut heap = self.heap.borrow_mut();
        if heap.len() > 1024 && cancelled > 3 * (heap.len() - cancelled) {
            let mut entries = self.entries.borrow_mut();
            heap.retain(|key| {
                let keep = !matches!(entries.get(key), Some(Entry::Cancelled));
                if !keep {
                    entries.remove(key);
                }
                keep
            });
            self.cancelled.set(0);
        }
    }

    fn arm(&self, at: u64) {
        let now = self.lp.now();
        let _ = self.uv.restart(Duration::from_millis(at.saturating_sub(now)), None);
        self.armed_for.set(Some(at));
    }

    /// The libuv timer fired: wake every sleep that is due, then arm for the next deadline.
    fn fire(&self) {
        self.armed_for.set(None);
        let now = self.lp.now();
        let mut due = Vec::new();
        {
            let mut heap = self.heap.borrow_mut();
            let mut entries = self.entries.borrow_mut();
            while let Some((_, key)) = heap.pop_due(now) {
                match entries.get_mut(key) {
                    Some(Entry::Cancelled) => {
                        entries.remove(key);
                        self.cancelled.set(self.cancelled.get() - 1);
                    }
                    Some(e) => {
                        if let Entry::Waiting(w) = std::mem::replace(e, Entry::Fired) {
                            due.push(w);
                        }
                    }
                    None => {}
                }
            }
        }
        for w in due {
            w.wake();
        }
        let next = self.heap.borrow().peek();
        if let Some(at) = next {
            self.arm(at);
        }
    }

    /// Drops every pending deadline (runtime shutdown).
    pub(crate) fn clear(&self) {
        self.heap.borrow_mut().clear();
        let entries = std::mem::take(&mut *self.entries.borrow_mut());
        drop(entries); // wakers dropped outside the borrow
        self.cancelled.set(0);
        let _ = self.uv.stop();
        self.armed_for.set(None);
    }

    /// Whether any sleep is pending (the libuv timer then keeps the loop alive).
    #[allow(dead_code)]
    pub(crate) fn is_armed(&self) -> bool {
        self.uv.is_active()
    }
}
