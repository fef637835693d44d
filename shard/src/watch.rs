//! Change events across shards: a session idling on another user's mailbox (a shared folder)
//! hears that user's changes, which happen on the user's home shard.
//!
//! ```text
//!  watcher shard A (the session's home)          owner shard B (bob's home)
//!  ────────────────────────────────────          ──────────────────────────
//!  Watches::watch("bob") ── first watcher ──────► Watchers::apply(WatchState{on, epoch})
//!      WatchGuard{event}                             bob's store changes (with_store):
//!                                                      note_change("bob") → pending
//!  Watches::changed("bob") ◄── Changed("bob") ─── fan_out task: one message per watching
//!      event.notify(): idle sessions wake            shard per batch of changes
//!  last WatchGuard dropped ── WatchState{off} ──►
//! ```
//!
//! A shard tells an owner's shard only whether it watches at all (its first watcher and its
//! last one), so the owner's shard keeps one entry per watching shard, not per session.
//! Each state carries the watching shard's next epoch, and the owner's shard keeps the newest
//! it saw: states sent by different tasks may arrive in any order, and the last decision wins.
//! Changes are coalesced: however many happen while the fan-out task is busy, each watching
//! shard gets one message per user per batch. A wake-up is only a hint to look (the session
//! then runs on the owner's store and reports what changed), so a spurious one costs a round
//! trip and a missed one cannot happen once the state reached the owner's shard: the session
//! registers before its next command runs there.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use crate::event::Event;
use crate::placement::ShardId;
use crate::shard::{Shard, ShardMessage, home_of};

/// A watching shard's decision about one owner.
pub(crate) struct WatchState {
    owner: String,
    watcher: ShardId,
    epoch: u64,
    on: bool,
}

/// A watched user's store changed (sent to each watching shard).
pub(crate) struct Changed {
    /// The user (lowercase).
    pub user: String,
}

/// The owners this shard's sessions watch (the watching side).
#[derive(Default)]
pub(crate) struct Watches {
    epoch: Cell<u64>,
    by_owner: RefCell<HashMap<String, (Rc<Event>, usize)>>,
}

/// One session's watch of an owner; dropping it ends the watch.
pub(crate) struct WatchGuard {
    shard: Rc<Shard>,
    owner: String,
    /// Notified when the owner's store changed.
    pub event: Rc<Event>,
}

impl WatchGuard {
    /// The watched user (lowercase).
    pub(crate) fn owner(&self) -> &str {
        &self.owner
    }

    /// True when this watches `owner`.
    pub(crate) fn owner_is(&self, owner: &str) -> bool {
        self.owner.eq_ignore_ascii_case(owner)
    }
}

impl Watches {
    /// Starts watching `owner` (canonical name) for one session.
    pub(crate) fn watch(shard: &Rc<Shard>, owner: &str) -> WatchGuard {
        let owner = owner.to_ascii_lowercase();
        let (event, first) = {
            let mut by_owner = shard.watches.by_owner.borrow_mut();
            let entry = by_owner.entry(owner.clone()).or_insert_with(|| (Rc::new(Event::new()), 0));
            entry.1 += 1;
            (entry.0.clone(), entry.1 == 1)
        };
        if first {
            send_state(shard, &owner, true);
        }
        WatchGuard { shard: shard.clone(), owner, event }
    }

    /// `owner`'s store changed: wake the sessions watching it.
    pub(crate) fn changed(&self, owner: &str) {
        if let Some((event, _)) = self.by_owner.borrow().get(owner) {
            event.notify();
        }
    }

    fn next_epoch(&self) -> u64 {
        let epoch = self.epoch.get() + 1;
        self.epoch.set(epoch);
        epoch
    }
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        let last = {
            let mut by_owner = self.shard.watches.by_owner.borrow_mut();
            let Some(entry) = by_owner.get_mut(&self.owner) else { return };
            entry.1 -= 1;
            let last = entry.1 == 0;
            if last {
                by_owner.remove(&self.owner);
            }
            last
        };
        if last {
            send_state(&self.shard, &self.owner, false);
        }
    }
}

/// Tells `owner`'s home shard whether this shard watches it.
fn send_state(shard: &Rc<Shard>, owner: &str, on: bool) {
    let state = WatchState {
        owner: owner.to_owned(),
        watcher: shard.id,
        epoch: shard.watches.next_epoch(),
        on,
    };
    let home = home_of(owner, shard.shared.count);
    if home == shard.id {
        shard.registry.watchers.apply(state);
        return;
    }
    let shard = shard.clone();
    crate::driver::spawn_detached(async move {
        if shard.mesh.send(home, ShardMessage::Watch(Box::new(state))).await.is_err() {
            tracing::debug!(shard = shard.id.0, "watch state not sent: the owner's shard is gone");
        }
    });
}

/// Per watching shard: whether it watches, and the epoch of that decision.
type ShardStates = HashMap<ShardId, (bool, u64)>;

/// The shards watching this shard's users (the owning side).
#[derive(Default)]
pub(crate) struct Watchers {
    by_user: RefCell<HashMap<String, ShardStates>>,
    pending: RefCell<BTreeSet<String>>,
    wake: Event,
}

impl Watchers {
    /// Records a watching shard's decision, unless a newer one from it arrived first.
    pub(crate) fn apply(&self, state: WatchState) {
        let mut by_user = self.by_user.borrow_mut();
        let shards = by_user.entry(state.owner.clone()).or_default();
        let entry = shards.entry(state.watcher).or_insert((false, 0));
        if state.epoch > entry.1 {
            *entry = (state.on, state.epoch);
        }
    }

    /// `user`'s store changed (called on every change; cheap when nobody watches).
    pub(crate) fn note_change(&self, user: &str) {
        let watched = self
            .by_user
            .borrow()
            .get(user)
            .is_some_and(|shards| shards.values().any(|&(on, _)| on));
        if watched {
            self.pending.borrow_mut().insert(user.to_owned());
            self.wake.notify();
        }
    }

    /// The shards watching `user` now.
    fn watching(&self, user: &str) -> Vec<ShardId> {
        self.by_user.borrow().get(user).map_or_else(Vec::new, |shards| {
            shards.iter().filter(|(_, (on, _))| *on).map(|(&shard, _)| shard).collect()
        })
    }
}

/// Sends each watched user's changes to the shards watching them, for as long as the shard
/// runs. One task per shard.
pub(crate) async fn fan_out(shard: Rc<Shard>) {
    let watchers = &shard.registry.watchers;
    loop {
        let seen = watchers.wake.generation();
        let users = std::mem::take(&mut *watchers.pending.borrow_mut());
        for user in users {
            for watcher in watchers.watching(&user) {
                if watcher == shard.id {
                    shard.watches.changed(&user);
                } else if shard
                    .mesh
                    .send(watcher, ShardMessage::Changed(Box::new(Changed { user: user.clone() })))
                    .await
                    .is_err()
                {
                    tracing::debug!(shard = shard.id.0, "change not sent: the watcher is gone");
                }
            }
        }
        if shard.is_stopping() {
            return;
        }
        futures_lite::future::or(watchers.wake.wait_past(seen), shard.stop.wait_past(0)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(watcher: u32, epoch: u64, on: bool) -> WatchState {
        WatchState { owner: "bob".to_owned(), watcher: ShardId(watcher), epoch, on }
    }

    #[test]
    fn the_newest_decision_of_each_shard_wins_whatever_the_arrival_order() {
        let watchers = Watchers::default();
        watchers.apply(state(1, 2, false));
        watchers.apply(state(1, 1, true));
        assert!(watchers.watching("bob").is_empty(), "the older `on` came late: ignored");
        watchers.apply(state(2, 5, true));
        watchers.apply(state(1, 3, true));
        let mut watching = watchers.watching("bob");
        watching.sort_unstable_by_key(|s| s.0);
        assert_eq!(watching, [ShardId(1), ShardId(2)]);
    }

    #[test]
    fn changes_of_unwatched_users_cost_nothing_and_watched_ones_coalesce() {
        let watchers = Watchers::default();
        watchers.note_change("bob");
        assert!(watchers.pending.borrow().is_empty());
        watchers.apply(state(1, 1, true));
        let before = watchers.wake.generation();
        watchers.note_change("bob");
        watchers.note_change("bob");
        assert_eq!(watchers.pending.borrow().len(), 1);
        assert!(watchers.wake.generation() > before);
    }
}
