//! A single-thread broadcast event: `notify` wakes every task waiting for it.
//!
//! Used for "the user's store changed" (IDLE wake-ups), "a flush round finished", "someone
//! needs durability" and "shutdown started". Waiting is by *generation*: a task reads
//! [`Event::generation`], looks at the state it cares about, and then waits for the generation
//! to move past what it read, so a notification between the look and the wait is never lost.
//!
//! Waiters are kept in a map keyed by a per-wait id, so a waiter polled many times (inside a
//! `select` with a socket read, say) holds one slot, and a dropped waiter frees its slot.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// The event. Not `Send`: it lives on one shard.
#[derive(Default)]
pub struct Event {
    generation: Cell<u64>,
    next_key: Cell<u64>,
    waiters: RefCell<HashMap<u64, Waker>>,
}

impl Event {
    /// A fresh event at generation 0.
    #[must_use]
    pub fn new() -> Event {
        Event::default()
    }

    /// The current generation; it increases with every [`Event::notify`].
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.generation.get()
    }

    /// Advances the generation and wakes every waiter.
    pub fn notify(&self) {
        self.generation.set(self.generation.get() + 1);
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for (_, waker) in waiters {
            waker.wake();
        }
    }

    /// Resolves once the generation differs from `seen`.
    pub fn wait_past(&self, seen: u64) -> Wait<'_> {
        Wait { event: self, seen, key: None }
    }

    /// Number of registered waiters (for tests and stats).
    #[must_use]
    pub fn waiter_count(&self) -> usize {
        self.waiters.borrow().len()
    }
}

/// The future of [`Event::wait_past`].
pub struct Wait<'a> {
    event: &'a Event,
    seen: u64,
    key: Option<u64>,
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.event.generation.get() != self.seen {
            if let Some(key) = self.key.take() {
                self.event.waiters.borrow_mut().remove(&key);
            }
            return Poll::Ready(());
        }
        let key = match self.key {
            Some(key) => key,
            None => {
                let key = self.event.next_key.get();
                self.event.next_key.set(key + 1);
                self.key = Some(key);
                key
            }
        };
        self.event.waiters.borrow_mut().insert(key, cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            self.event.waiters.borrow_mut().remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::task::Wake;

    struct Flag(std::sync::atomic::AtomicBool);
    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn poll_once(wait: &mut Wait<'_>, flag: &Arc<Flag>) -> Poll<()> {
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        Pin::new(wait).poll(&mut cx)
    }

    #[test]
    fn notify_wakes_and_completes_waiters() {
        let event = Event::new();
        let flag = Arc::new(Flag(false.into()));
        let mut wait = event.wait_past(event.generation());
        assert!(poll_once(&mut wait, &flag).is_pending());
        assert!(poll_once(&mut wait, &flag).is_pending());
        assert_eq!(event.waiter_count(), 1, "repeated polls keep one slot");
        event.notify();
        assert!(flag.0.load(std::sync::atomic::Ordering::SeqCst));
        assert!(poll_once(&mut wait, &flag).is_ready());
    }

    #[test]
    fn a_notification_before_the_wait_is_not_lost() {
        let event = Event::new();
        let seen = event.generation();
        event.notify();
        let flag = Arc::new(Flag(false.into()));
        let mut wait = event.wait_past(seen);
        assert!(poll_once(&mut wait, &flag).is_ready());
    }

    #[test]
    fn dropped_waiters_free_their_slot() {
        let event = Event::new();
        let flag = Arc::new(Flag(false.into()));
        {
            let mut wait = event.wait_past(0);
            assert!(poll_once(&mut wait, &flag).is_pending());
            assert_eq!(event.waiter_count(), 1);
        }
        assert_eq!(event.waiter_count(), 0);
    }
}
