//! [`Wakers`]: the tasks waiting for one direction of one descriptor, shared by the engines' readiness code.

use std::task::Waker;

/// The tasks waiting for one direction. Usually one task (no allocation); several tasks sharing a socket (a UDP
/// socket in an `Rc`, an `AsyncFd` shared by reference) all get woken and retry their syscall.
#[derive(Default)]
pub(crate) struct Wakers {
    first: Option<Waker>,
    more: Vec<Waker>,
}

impl Wakers {
    /// Adds `waker` (once); `true` if the set was empty.
    pub(crate) fn register(&mut self, waker: &Waker) -> bool {
        match &self.first {
            None => {
                self.first = Some(waker.clone());
                return true;
            }
            Some(w) if w.will_wake(waker) => {}
            Some(_) if self.more.iter().any(|w| w.will_wake(waker)) => {}
            Some(_) => self.more.push(waker.clone()),
        }
        false
    }

    /// Whether no task waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    /// Empties the set, handing out what it held (woken by the caller once no borrow is held).
    pub(crate) fn take(&mut self) -> Wakers {
        Wakers { first: self.first.take(), more: std::mem::take(&mut self.more) }
    }

    /// Wakes every task the set held.
    pub(crate) fn wake(self) {
        if let Some(w) = self.first {
            w.wake();
        }
        for w in self.more {
            w.wake();
        }
    }
}
