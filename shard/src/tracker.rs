//! Counts live tasks of one kind on a shard (connections, deliveries) so shutdown can wait
//! until they are all gone.

use std::cell::Cell;
use std::rc::Rc;

use crate::event::Event;

/// A counter of live [`Pass`]es with a wake-up when it changes.
#[derive(Default)]
pub struct Tracker {
    live: Cell<usize>,
    changed: Event,
}

impl Tracker {
    /// An empty tracker.
    #[must_use]
    pub fn new() -> Rc<Tracker> {
        Rc::new(Tracker::default())
    }

    /// Registers one live task until the pass is dropped.
    #[must_use]
    pub fn enter(self: &Rc<Self>) -> Pass {
        self.live.set(self.live.get() + 1);
        self.changed.notify();
        Pass { tracker: self.clone() }
    }

    /// Live tasks now.
    #[must_use]
    pub fn live(&self) -> usize {
        self.live.get()
    }

    /// Waits until no task is live.
    pub async fn wait_idle(&self) {
        while self.live.get() > 0 {
            let seen = self.changed.generation();
            self.changed.wait_past(seen).await;
        }
    }
}

/// Proof of one live task; dropping it ends the task's registration.
pub struct Pass {
    tracker: Rc<Tracker>,
}

impl Drop for Pass {
    fn drop(&mut self) {
        let live = self.tracker.live.get();
        assert!(live > 0, "tracker underflow");
        self.tracker.live.set(live - 1);
        self.tracker.changed.notify();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_count_live_tasks() {
        let tracker = Tracker::new();
        let first = tracker.enter();
        let second = tracker.enter();
        assert_eq!(tracker.live(), 2);
        drop(first);
        assert_eq!(tracker.live(), 1);
        drop(second);
        assert_eq!(tracker.live(), 0);
    }
}
