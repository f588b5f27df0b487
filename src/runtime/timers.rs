//! The runtime's timers: one libuv timer per runtime, armed for the earliest deadline, over a binary heap of
//! deadlines. A pending sleep costs a heap entry and a slab slot (no libuv handle, no allocation of its own),
//! so millions of sleeps stay cheap. A dropped sleep frees its slot at once; its heap entry is skipped when it
//! comes due (its sequence number no longer matches).

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::rc::Weak;
use std::task::Waker;
use std::time::{Duration, Instant};

use slab::Slab;

use super::executor::Executor;
use crate::uv::{Handle as _, Loop, Timer};

struct Entry {
    seq: u64,
    waker: Option<Waker>,
    fired: bool,
}

/// A registered deadline: the slab key and the sequence number that proves the slot is still ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimerKey {
    key: usize,
    seq: u64,
}

pub(crate) struct Timers {
    uv: Timer,
    /// `(deadline in loop milliseconds, sequence, slab key)`, earliest first.
    heap: RefCell<BinaryHeap<Reverse<(u64, u64, usize)>>>,
    entries: RefCell<Slab<Entry>>,
    next_seq: Cell<u64>,
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
            heap: RefCell::new(BinaryHeap::new()),
            entries: RefCell::new(Slab::new()),
            next_seq: Cell::new(0),
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
        let seq = self.next_seq.get();
        self.next_seq.set(seq + 1);
        let key = self.entries.borrow_mut().insert(Entry { seq, waker: Some(waker.clone()), fired: false });
        self.heap.borrow_mut().push(Reverse((at, seq, key)));
        if self.armed_for.get().is_none_or(|armed| at < armed) {
            self.arm(at);
        }
        TimerKey { key, seq }
    }

    /// Whether the deadline passed; otherwise remembers the latest waker.
    pub(crate) fn poll(&self, t: TimerKey, waker: &Waker) -> bool {
        let mut entries = self.entries.borrow_mut();
        match entries.get_mut(t.key) {
            Some(e) if e.seq == t.seq => {
                if e.fired {
                    return true;
                }
                match &e.waker {
                    Some(w) if w.will_wake(waker) => {}
                    _ => e.waker = Some(waker.clone()),
                }
                false
            }
            _ => true,
        }
    }

    /// Forgets a deadline (the sleep was dropped or finished).
    pub(crate) fn cancel(&self, t: TimerKey) {
        let mut entries = self.entries.borrow_mut();
        if entries.get(t.key).is_some_and(|e| e.seq == t.seq) {
            entries.remove(t.key);
        }
        drop(entries);
        self.compact_if_sparse();
    }

    /// Drops heap entries of cancelled sleeps when they outnumber live ones, so that many cancelled
    /// timeouts with far deadlines do not pile up.
    fn compact_if_sparse(&self) {
        let live = self.entries.borrow().len();
        let mut heap = self.heap.borrow_mut();
        if heap.len() > 1024 && heap.len() > 4 * live {
            let entries = self.entries.borrow();
            heap.retain(|Reverse((_, seq, key))| entries.get(*key).is_some_and(|e| e.seq == *seq));
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
            while let Some(&Reverse((at, seq, key))) = heap.peek() {
                if at > now {
                    break;
                }
                heap.pop();
                if let Some(e) = entries.get_mut(key).filter(|e| e.seq == seq) {
                    e.fired = true;
                    if let Some(w) = e.waker.take() {
                        due.push(w);
                    }
                }
            }
        }
        for w in due {
            w.wake();
        }
        let next = self.heap.borrow().peek().map(|Reverse((at, _, _))| *at);
        if let Some(at) = next {
            self.arm(at);
        }
    }

    /// Drops every pending deadline (runtime shutdown).
    pub(crate) fn clear(&self) {
        self.heap.borrow_mut().clear();
        self.entries.borrow_mut().clear();
        let _ = self.uv.stop();
        self.armed_for.set(None);
    }

    /// Whether any sleep is pending (the libuv timer then keeps the loop alive).
    #[allow(dead_code)]
    pub(crate) fn is_armed(&self) -> bool {
        self.uv.is_active()
    }
}
