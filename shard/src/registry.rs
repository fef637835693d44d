//! The open user stores of one shard, and each user's change event.
//!
//! A store is opened (and recovered) on first use by a session or a delivery, in steps of
//! bounded work (`UserStore::opening`, `OPEN_STEP_UNITS` each) with a pause between steps in
//! which the shard's other sessions run: a recovery that rebuilds an index from a large spool
//! no longer holds the core. Whoever asks for a store that is being opened waits for that
//! open instead of starting another. Once no session
//! or delivery holds it, it stays open for a while (reopening costs a recovery check) and is
//! closed by [`Registry::sweep`] when it has been unused for the idle time, or earlier, least
//! recently used first, when the shard holds more than its maximum of open stores (each holds
//! file descriptors and its indexes in memory). Closing is safe at any time nobody holds the
//! store: the disk keeps files with unflushed writes open until their flush round. All users
//! here have this shard as their home, so nothing else ever opens the same store.
//!
//! A session whose step panicked may have left the store's memory inconsistent, so the store
//! is *poisoned*: everybody using it is told to go away, and the registry drops it as soon as
//! the last user lets go; the next open reads it back from disk. Two live instances of one
//! store never exist.
//!
//! An operator's tool that rewrites a store's files (`skua reconstruct` on a running server,
//! `maintenance.rs`) first *holds* the user ([`Registry::hold`]): opens are refused as while a
//! poisoned store is reset, the open store is poisoned (its sessions are told to reconnect,
//! idle or not: [`UserHandle::reset`]) and closed once its last user lets go.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::{Duration, Instant};

use std::future::Future;

use crate::shard::ShardDisk;
use skua_core::limits::OPEN_STEP_UNITS;
use skua_core::paths::{UserName, user_dir};
use skua_core::store::{OpenProgress, QuotaLimits, UserStore};

use crate::event::Event;
use crate::guard::guarded;
use crate::limits::SLOW_STORE_OPEN_MS;
use crate::watch::Watchers;

/// One user's open store with its change event.
pub struct UserHandle {
    /// The user name as the store directory spells it (ASCII-lowercased).
    pub name: String,
    /// The store. Borrowed only for the length of one synchronous step.
    pub store: RefCell<UserStore<ShardDisk>>,
    /// Notified whenever a step changed the store (IDLE sessions wait on it).
    pub changed: Event,
    /// Notified when every session of the user must look at its standing at once, idle or
    /// not: the store was poisoned (the sessions find it gone), or the user was denied
    /// (`deny.rs`).
    pub reset: Event,
    /// Other shards' sessions that watch this user (`watch.rs`), told of every change too.
    watchers: Rc<Watchers>,
    poisoned: Cell<bool>,
    last_used: Cell<Instant>,
}

impl UserHandle {
    /// True when the store must not be used any more.
    #[must_use]
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.get()
    }

    /// Runs `step` on the store and notifies the change event if the store changed.
    pub fn with_store<T>(&self, step: impl FnOnce(&mut UserStore<ShardDisk>) -> T) -> T {
        self.last_used.set(Instant::now());
        let mut store = self.store.borrow_mut();
        let before = store.change_counter();
        let result = step(&mut store);
        let changed = store.change_counter() != before;
        drop(store);
        if changed {
            self.changed.notify();
            self.watchers.note_change(&self.name);
        }
        result
    }
}

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The user name cannot be a directory name.
    #[error("user name {user:?} cannot name a store directory: {reason}")]
    BadName {
        /// The name.
        user: String,
        /// The rule it breaks.
        reason: skua_core::paths::UserNameError,
    },
    /// A poisoned instance is still in use; try again once it is released.
    #[error("the store of {0:?} is being reset after an internal error")]
    Resetting(String),
    /// Opening or recovering the store panicked (caught; see `guard.rs`).
    #[error("opening the store of {user:?} panicked: {detail}")]
    Panicked {
        /// The user.
        user: String,
        /// The panic's message.
        detail: String,
    },
    /// The store failed to open or recover.
    #[error("cannot open the store of {user:?}: {detail}")]
    Open {
        /// The user.
        user: String,
        /// The store's error.
        detail: String,
    },
}

/// Runs one step of a store open for `user` under the panic guard.
///
/// A panic while opening or recovering (our bug, or a damaged store tripping an assertion)
/// ends that login or delivery, not the shard: nothing was registered yet, so the next open
/// starts again from the disk.
fn open_guarded<T, E: std::fmt::Display>(
    user: &str,
    open: impl FnOnce() -> Result<T, E>,
) -> Result<T, RegistryError> {
    match guarded(open) {
        Ok(Ok(store)) => Ok(store),
        Ok(Err(error)) => {
            Err(RegistryError::Open { user: user.to_owned(), detail: error.to_string() })
        }
        Err(detail) => {
            tracing::error!(user, detail, "store open panicked; the shard carries on");
            Err(RegistryError::Panicked { user: user.to_owned(), detail })
        }
    }
}

/// The shard's open stores.
pub struct Registry {
    disk: Rc<ShardDisk>,
    open: RefCell<HashMap<String, Rc<UserHandle>>>,
    /// Stores being opened, each with the event notified when its open ends (either way).
    opening: RefCell<HashMap<String, Rc<Event>>>,
    /// Users whose store must stay closed while a tool rewrites its files ([`Registry::hold`]).
    held: RefCell<HashSet<String>>,
    /// The shards watching this shard's users (`watch.rs`).
    pub watchers: Rc<Watchers>,
    /// A user's quota limits when the store holds none of its own (the passwd-file's rules
    /// over `[quota]`); given to the store on every [`Registry::open`], so a reloaded
    /// passwd-file applies at the user's next login or delivery. `None`: no limits.
    quota: Option<QuotaSource>,
    /// The shard's counters: the open-stores gauge follows every change of `open`.
    metrics: Option<std::sync::Arc<crate::metrics::ShardMetrics>>,
}

/// A user kept closed ([`Registry::hold`]); opens are allowed again when it is dropped.
pub(crate) struct Held<'a> {
    registry: &'a Registry,
    key: String,
}

impl Held<'_> {
    /// The user, as the store directory spells it.
    pub(crate) fn user(&self) -> &str {
        &self.key
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.registry.held.borrow_mut().remove(&self.key);
    }
}

/// See [`Registry::with_quota`].
pub type QuotaSource = Box<dyn Fn(&str) -> QuotaLimits>;

/// Takes a user out of [`Registry::opening`] and wakes its waiters when its open ends, also
/// when the opening task is dropped half-way (its connection went away).
struct OpeningEntry<'a> {
    registry: &'a Registry,
    key: String,
    done: Rc<Event>,
}

impl Drop for OpeningEntry<'_> {
    fn drop(&mut self) {
        self.registry.opening.borrow_mut().remove(&self.key);
        self.done.notify();
    }
}

impl Registry {
    /// An empty registry over the shard's disk.
    #[must_use]
    pub fn new(disk: Rc<ShardDisk>) -> Registry {
        Registry {
            disk,
            open: RefCell::new(HashMap::new()),
            opening: RefCell::default(),
            held: RefCell::default(),
            watchers: Rc::default(),
            quota: None,
            metrics: None,
        }
    }

    /// The registry with the open-stores gauge of `metrics` kept current.
    #[must_use]
    pub(crate) fn with_metrics(
        mut self,
        metrics: std::sync::Arc<crate::metrics::ShardMetrics>,
    ) -> Registry {
        self.metrics = Some(metrics);
        self
    }

    /// Sets the open-stores gauge to `open`.
    fn note_open(&self, open: usize) {
        if let Some(metrics) = &self.metrics {
            metrics.set_open_stores(open);
        }
    }

    /// The registry with `source` deciding each user's quota limits (see the field).
    #[must_use]
    pub fn with_quota(mut self, source: QuotaSource) -> Registry {
        self.quota = Some(source);
        self
    }

    /// Gives the store of `handle` its user's current limits.
    fn apply_quota(&self, handle: &UserHandle) {
        if let Some(source) = &self.quota {
            let limits = source(&handle.name);
            handle.store.borrow_mut().set_default_quota(limits);
        }
    }

    /// The open store of `user`, opening (and recovering) it if needed: in steps of
    /// [`OPEN_STEP_UNITS`], awaiting `pause()` between them (the shard passes a yield through
    /// its reactor). A second request for a store being opened waits for that open.
    ///
    /// # Errors
    /// See [`RegistryError`].
    pub async fn open<F, P>(&self, user: &str, pause: F) -> Result<Rc<UserHandle>, RegistryError>
    where
        F: Fn() -> P,
        P: Future<Output = ()>,
    {
        let name = UserName::new(user)
            .map_err(|reason| RegistryError::BadName { user: user.to_owned(), reason })?;
        let key = name.as_str();
        loop {
            if self.held.borrow().contains(key) {
                return Err(RegistryError::Resetting(key.to_owned()));
            }
            if let Some(handle) = self.open.borrow().get(key) {
                if handle.is_poisoned() {
                    return Err(RegistryError::Resetting(key.to_owned()));
                }
                self.apply_quota(handle);
                return Ok(handle.clone());
            }
            let Some(done) = self.opening.borrow().get(key).cloned() else { break };
            let seen = done.generation();
            done.wait_past(seen).await;
        }
        let done = Rc::new(Event::new());
        self.opening.borrow_mut().insert(key.to_owned(), done.clone());
        let _entry = OpeningEntry { registry: self, key: key.to_owned(), done };
        let started = Instant::now();
        let mut opening = Some(UserStore::opening(self.disk.clone(), &user_dir(&name)));
        let (store, work) = loop {
            let current = opening.take().expect("put back by every pending step");
            match open_guarded(key, move || current.step(OPEN_STEP_UNITS))? {
                OpenProgress::Pending(next) => {
                    opening = Some(next);
                    pause().await;
                }
                OpenProgress::Open { store, work } => break (store, work),
            }
        };
        let took = started.elapsed();
        if took >= Duration::from_millis(SLOW_STORE_OPEN_MS) {
            tracing::info!(
                user = key,
                took_ms = took.as_millis(),
                steps = work.steps,
                units = work.units,
                "slow store open (recovery?), done in steps between other sessions' work"
            );
        }
        let handle = Rc::new(UserHandle {
            name: key.to_owned(),
            store: RefCell::new(store),
            changed: Event::new(),
            reset: Event::new(),
            watchers: self.watchers.clone(),
            poisoned: Cell::new(false),
            last_used: Cell::new(Instant::now()),
        });
        self.apply_quota(&handle);
        let open = {
            let mut open = self.open.borrow_mut();
            open.insert(key.to_owned(), handle.clone());
            open.len()
        };
        self.note_open(open);
        tracing::debug!(user = key, "store opened");
        Ok(handle)
    }

    /// Marks `handle` unusable after a panic; every waiter on its change event wakes up.
    pub fn poison(&self, handle: &UserHandle) {
        handle.poisoned.set(true);
        handle.changed.notify();
        handle.reset.notify();
    }

    /// Keeps `user`'s store closed until the returned guard is dropped: every open meanwhile
    /// is refused with [`RegistryError::Resetting`] (a delivery is deferred, a login told to
    /// try again). `None` when the user is held already. The store, if open, stays open until
    /// [`Registry::close_held`].
    pub(crate) fn hold(&self, user: &str) -> Option<Held<'_>> {
        let key = UserName::new(user).ok()?.as_str().to_owned();
        self.held.borrow_mut().insert(key.clone()).then_some(Held { registry: self, key })
    }

    /// Closes the store `held` keeps closed: waits for an open under way, poisons the open
    /// store (its sessions are told to reconnect) and waits until its last user let go,
    /// checking every `poll` (awaited between looks) until `deadline`. True once no instance
    /// of the store is left; false at the deadline (the store then closes when its last user
    /// lets go, as after a panic).
    pub(crate) async fn close_held<F, P>(&self, held: &Held<'_>, poll: F, deadline: Instant) -> bool
    where
        F: Fn() -> P,
        P: Future<Output = ()>,
    {
        let key = held.key.as_str();
        loop {
            let opening = self.opening.borrow().get(key).cloned();
            if let Some(done) = opening {
                let seen = done.generation();
                done.wait_past(seen).await;
                continue;
            }
            let handle = self.open.borrow().get(key).cloned();
            let Some(handle) = handle else { return true };
            if !handle.is_poisoned() {
                tracing::info!(user = key, "closing the store for maintenance");
                self.poison(&handle);
            }
            // Ours and the map's: nobody else holds it.
            if Rc::strong_count(&handle) == 2 {
                drop(handle);
                let open = {
                    let mut open = self.open.borrow_mut();
                    open.remove(key);
                    open.len()
                };
                self.note_open(open);
                return true;
            }
            drop(handle);
            if Instant::now() >= deadline {
                return false;
            }
            poll().await;
        }
    }

    /// Gives back a handle; a poisoned store is dropped once nobody else holds it.
    pub fn release(&self, handle: Rc<UserHandle>) {
        if !handle.is_poisoned() {
            return;
        }
        let name = handle.name.clone();
        drop(handle);
        let mut open = self.open.borrow_mut();
        if open.get(&name).is_some_and(|h| Rc::strong_count(h) == 1) {
            open.remove(&name);
            self.note_open(open.len());
            tracing::warn!(user = name, "poisoned store closed; it will be reopened from disk");
        }
    }

    /// The store of `user` if it is open (nothing is opened).
    #[must_use]
    pub(crate) fn open_handle(&self, user: &str) -> Option<Rc<UserHandle>> {
        let name = UserName::new(user).ok()?;
        self.open.borrow().get(name.as_str()).cloned()
    }

    /// The open stores nobody reset (for background work such as spool compaction).
    #[must_use]
    pub fn open_stores(&self) -> Vec<Rc<UserHandle>> {
        self.open.borrow().values().filter(|h| !h.is_poisoned()).cloned().collect()
    }

    /// Number of open stores.
    #[must_use]
    pub fn len(&self) -> usize {
        self.open.borrow().len()
    }

    /// Closes stores nobody holds that were unused for `idle`, then, while more than
    /// `open_max` stores are open, the least recently used ones nobody holds. Returns how many
    /// were closed. Held stores are never closed, so the bound can be passed while sessions
    /// hold more stores than it.
    pub fn sweep(&self, now: Instant, idle: Duration, open_max: usize) -> usize {
        let mut open = self.open.borrow_mut();
        let before = open.len();
        let unheld = |handle: &Rc<UserHandle>| Rc::strong_count(handle) == 1;
        open.retain(|_, h| !(unheld(h) && now.duration_since(h.last_used.get()) >= idle));
        if open.len() > open_max {
            let mut candidates: Vec<(Instant, String)> = open
                .iter()
                .filter(|(_, h)| unheld(h))
                .map(|(name, h)| (h.last_used.get(), name.clone()))
                .collect();
            candidates.sort_unstable();
            let excess = open.len() - open_max;
            for (_, name) in candidates.into_iter().take(excess) {
                open.remove(&name);
            }
        }
        self.note_open(open.len());
        before - open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An open with nothing else to wait for: no other open runs, and the pause does nothing.
    fn open_now(registry: &Registry, user: &str) -> Result<Rc<UserHandle>, RegistryError> {
        futures_lite::future::block_on(registry.open(user, || async {}))
    }

    fn registry(dir: &std::path::Path) -> Registry {
        Registry::new(Rc::new(crate::shard::open_shard_disk(dir, 0).expect("disk")))
    }

    /// Every open, of a new store or of one already open, gives the store its user's limits
    /// as the source says now (a passwd-file reload applies at the next login or delivery).
    #[test]
    fn opens_give_the_store_its_users_limits() {
        let dir = tempfile::tempdir().unwrap();
        let messages = Rc::new(Cell::new(5u64));
        let source = messages.clone();
        let registry = registry(dir.path()).with_quota(Box::new(move |user| QuotaLimits {
            messages: (user == "erin").then(|| source.get()),
            ..QuotaLimits::UNLIMITED
        }));
        let limits = |handle: &UserHandle| handle.with_store(|s| s.quota_limits().unwrap().0);
        let erin = open_now(&registry, "erin").unwrap();
        assert_eq!(limits(&erin).messages, Some(5));
        messages.set(7);
        let again = open_now(&registry, "erin").unwrap();
        assert_eq!(limits(&again).messages, Some(7));
        let frank = open_now(&registry, "frank").unwrap();
        assert_eq!(limits(&frank), QuotaLimits::UNLIMITED);
    }

    /// Issue 7, defect 9: a panic while opening a store (outside the session guard) would
    /// have stopped the whole server. It now fails that open only, and a later open works.
    #[test]
    fn a_panicking_open_fails_that_open_only() {
        let panicked = open_guarded::<(), String>("alice", || panic!("recovery bug"));
        match panicked {
            Err(RegistryError::Panicked { user, detail }) => {
                assert_eq!(user, "alice");
                assert_eq!(detail, "recovery bug");
            }
            other => panic!("{other:?}"),
        }
        let failed = open_guarded::<(), String>("alice", || Err("disk gone".to_owned()));
        assert!(matches!(failed, Err(RegistryError::Open { .. })), "{failed:?}");
        assert_eq!(open_guarded::<u8, String>("alice", || Ok(7)).ok(), Some(7));
        let dir = tempfile::tempdir().expect("temp dir");
        let registry = registry(dir.path());
        assert!(open_now(&registry, "alice").is_ok(), "the real open goes through the same guard");
    }

    #[test]
    fn one_instance_per_user_whatever_the_case() {
        let dir = tempfile::tempdir().expect("temp dir");
        let registry = registry(dir.path());
        let first = open_now(&registry, "Alice").expect("open");
        let second = open_now(&registry, "alice").expect("open again");
        assert!(Rc::ptr_eq(&first, &second));
        assert_eq!(first.name, "alice");
        assert_eq!(registry.len(), 1);
        assert!(matches!(open_now(&registry, "../etc"), Err(RegistryError::BadName { .. })));
    }

    #[test]
    fn changes_notify_and_reads_do_not() {
        let dir = tempfile::tempdir().expect("temp dir");
        let registry = registry(dir.path());
        let handle = open_now(&registry, "bob").expect("open");
        let seen = handle.changed.generation();
        handle.with_store(|store| store.mailboxes().len());
        assert_eq!(handle.changed.generation(), seen, "a read is not a change");
        handle.with_store(|store| store.create_mailbox("Archive")).expect("create");
        assert_ne!(handle.changed.generation(), seen, "a mutation wakes IDLE sessions");
    }

    #[test]
    fn idle_and_surplus_stores_are_closed_but_never_held_ones() {
        let dir = tempfile::tempdir().expect("temp dir");
        let registry = registry(dir.path());
        let held = open_now(&registry, "held").expect("open");
        for name in ["a", "b", "c"] {
            drop(open_now(&registry, name).expect("open"));
        }
        let now = Instant::now();
        let idle = Duration::from_secs(60);
        assert_eq!(registry.sweep(now, idle, 10), 0, "recently used stores stay");
        assert_eq!(registry.sweep(now, idle, 2), 2, "over the bound: two unheld ones go");
        assert_eq!(registry.len(), 2);
        let later = now + idle + Duration::from_secs(1);
        assert_eq!(registry.sweep(later, idle, 10), 1, "the last unheld one idled out");
        assert_eq!(registry.sweep(later, idle, 0), 0, "a held store is never closed");
        assert!(Rc::ptr_eq(&held, &open_now(&registry, "held").expect("still open")));
    }

    #[test]
    fn a_poisoned_store_is_reopened_only_after_its_last_user_left() {
        let dir = tempfile::tempdir().expect("temp dir");
        let registry = registry(dir.path());
        let session = open_now(&registry, "carol").expect("open");
        let other = open_now(&registry, "carol").expect("open");
        registry.poison(&session);
        assert!(other.is_poisoned(), "every holder sees the poison");
        assert!(matches!(open_now(&registry, "carol"), Err(RegistryError::Resetting(_))));
        registry.release(session);
        assert!(matches!(open_now(&registry, "carol"), Err(RegistryError::Resetting(_))));
        registry.release(other);
        let fresh = open_now(&registry, "carol").expect("reopened from disk");
        assert!(!fresh.is_poisoned());
    }

    /// Issue 7: opening a store (recovery included) ran in one piece on the shard's thread,
    /// however long a rebuild of a lost index from the spool took, and every other session of
    /// the core waited. It now runs in steps with a pause between them, and a second request
    /// for the same store waits for the first open instead of opening it twice.
    #[test]
    fn a_recovering_open_pauses_between_steps_and_is_shared_by_concurrent_requests() {
        use skua_core::disk::{Disk, Flush};
        use skua_core::types::{Flags, Keywords, SystemFlags};

        let dir = tempfile::tempdir().expect("temp dir");
        let disk = Rc::new(crate::shard::open_shard_disk(dir.path(), 0).expect("disk"));
        let registry = Registry::new(disk.clone());
        let handle = open_now(&registry, "dora").expect("open");
        let inbox = handle.with_store(|store| {
            let inbox = store.mailbox_id("INBOX").expect("INBOX");
            let flags = Flags { system: SystemFlags(0), keywords: Keywords(0) };
            for n in 0..2000 {
                let body = format!("Subject: {n}\r\n\r\nbody {n}\r\n");
                store.append(inbox, body.as_bytes(), b"cache", flags, None).expect("append");
            }
            inbox
        });
        if let Some(job) = disk.flush_begin() {
            let epoch = job.epoch();
            job.run().expect("flush");
            disk.flush_end(epoch);
        }
        drop(handle);
        assert_eq!(registry.sweep(Instant::now(), Duration::ZERO, 0), 1, "closed");
        let name = UserName::new("dora").expect("a name");
        let index =
            dir.path().join(user_dir(&name)).join("mbox").join(format!("{:08}.idx", inbox.0));
        std::fs::remove_file(index).expect("lose the INBOX index");

        let pauses = Cell::new(0u32);
        let first_open = registry.open("dora", || {
            pauses.set(pauses.get() + 1);
            futures_lite::future::yield_now()
        });
        let second_open = registry.open("DORA", || async {});
        let (first, second) =
            futures_lite::future::block_on(futures_lite::future::zip(first_open, second_open));
        let (first, second) = (first.expect("first"), second.expect("second"));
        assert!(Rc::ptr_eq(&first, &second), "one open, shared");
        assert!(
            pauses.get() > 10,
            "the rebuild of 2,000 entries paused only {} times",
            pauses.get()
        );
        let count = first.with_store(|store| store.messages(inbox).expect("INBOX").len());
        assert_eq!(count, 2000, "every message recovered");
        assert!(registry.opening.borrow().is_empty());
    }
}
