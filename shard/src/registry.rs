//! The open user stores of one shard, and each user's change event.
//!
//! A store is opened (and recovered) on first use by a session or a delivery and stays open
//! while the shard runs: reopening costs a recovery check, and an open store costs little
//! beyond its maps. All users here have this shard as their home, so nothing else ever opens
//! the same store.
//!
//! A session whose step panicked may have left the store's memory inconsistent, so the store
//! is *poisoned*: everybody using it is told to go away, and the registry drops it as soon as
//! the last user lets go; the next open reads it back from disk. Two live instances of one
//! store never exist.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use skua_core::disk::os::OsDisk;
use skua_core::paths::{UserName, user_dir};
use skua_core::store::UserStore;

use crate::event::Event;

/// One user's open store with its change event.
pub struct UserHandle {
    /// The user name as the store directory spells it (ASCII-lowercased).
    pub name: String,
    /// The store. Borrowed only for the length of one synchronous step.
    pub store: RefCell<UserStore<OsDisk>>,
    /// Notified whenever a step changed the store (IDLE sessions wait on it).
    pub changed: Event,
    poisoned: Cell<bool>,
}

impl UserHandle {
    /// True when the store must not be used any more.
    #[must_use]
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.get()
    }

    /// Runs `step` on the store and notifies the change event if the store changed.
    pub fn with_store<T>(&self, step: impl FnOnce(&mut UserStore<OsDisk>) -> T) -> T {
        let mut store = self.store.borrow_mut();
        let before = store.change_counter();
        let result = step(&mut store);
        let changed = store.change_counter() != before;
        drop(store);
        if changed {
            self.changed.notify();
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
    /// The store failed to open or recover.
    #[error("cannot open the store of {user:?}: {detail}")]
    Open {
        /// The user.
        user: String,
        /// The store's error.
        detail: String,
    },
}

/// The shard's open stores.
pub struct Registry {
    disk: Rc<OsDisk>,
    open: RefCell<HashMap<String, Rc<UserHandle>>>,
}

impl Registry {
    /// An empty registry over the shard's disk.
    #[must_use]
    pub fn new(disk: Rc<OsDisk>) -> Registry {
        Registry { disk, open: RefCell::new(HashMap::new()) }
    }

    /// The open store of `user`, opening (and recovering) it if needed.
    ///
    /// # Errors
    /// See [`RegistryError`].
    pub fn open(&self, user: &str) -> Result<Rc<UserHandle>, RegistryError> {
        let name = UserName::new(user)
            .map_err(|reason| RegistryError::BadName { user: user.to_owned(), reason })?;
        let key = name.as_str();
        if let Some(handle) = self.open.borrow().get(key) {
            if handle.is_poisoned() {
                return Err(RegistryError::Resetting(key.to_owned()));
            }
            return Ok(handle.clone());
        }
        let store = UserStore::open(self.disk.clone(), &user_dir(&name)).map_err(|error| {
            RegistryError::Open { user: key.to_owned(), detail: error.to_string() }
        })?;
        let handle = Rc::new(UserHandle {
            name: key.to_owned(),
            store: RefCell::new(store),
            changed: Event::new(),
            poisoned: Cell::new(false),
        });
        self.open.borrow_mut().insert(key.to_owned(), handle.clone());
        tracing::debug!(user = key, "store opened");
        Ok(handle)
    }

    /// Marks `handle` unusable after a panic; every waiter on its change event wakes up.
    pub fn poison(&self, handle: &UserHandle) {
        handle.poisoned.set(true);
        handle.changed.notify();
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
            tracing::warn!(user = name, "poisoned store closed; it will be reopened from disk");
        }
    }

    /// Number of open stores.
    #[must_use]
    pub fn len(&self) -> usize {
        self.open.borrow().len()
    }
}
