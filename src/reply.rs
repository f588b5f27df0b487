//! A one-shot reply from a libuv callback to the future waiting for it, on the same thread.
//!
//! The callback owns a [`Replier`]; the future is a [`Reply`]. Dropping the `Reply` first is fine (the value is
//! dropped when it arrives); dropping the `Replier` without sending makes the `Reply` yield `None`.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

struct Slot<T> {
    value: Option<T>,
    sender_gone: bool,
    waker: Option<Waker>,
}

/// The sending side, moved into a libuv callback.
pub(crate) struct Replier<T>(Rc<RefCell<Slot<T>>>);

/// The receiving side: a future of `Some(value)`, or `None` if the replier was dropped unsent.
pub(crate) struct Reply<T>(Rc<RefCell<Slot<T>>>);

/// A connected replier/reply pair.
pub(crate) fn reply<T>() -> (Replier<T>, Reply<T>) {
    let slot = Rc::new(RefCell::new(Slot { value: None, sender_gone: false, waker: None }));
    (Replier(slot.clone()), Reply(slot))
}

impl<T> Replier<T> {
    /// Delivers the value and wakes the waiting future.
    pub(crate) fn send(self, value: T) {
        self.0.borrow_mut().value = Some(value);
        // Drop wakes the reply.
    }
}

impl<T> Drop for Replier<T> {
    fn drop(&mut self) {
        let waker = {
            let mut slot = self.0.borrow_mut();
            slot.sender_gone = true;
            slot.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> Future for Reply<T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut slot = self.0.borrow_mut();
        if let Some(v) = slot.value.take() {
            return Poll::Ready(Some(v));
        }
        if slot.sender_gone {
            return Poll::Ready(None);
        }
        match &slot.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => slot.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}
