//! METADATA entries of a user's store (RFC 5464): what the protocol layer calls. Storage and
//! recovery are `metadata.rs`; this file resolves mailboxes to owners, enforces the limits of
//! `limits.rs` and keeps entries of deleted mailboxes out of every answer.
//!
//! Entry names are opaque here (the protocol layer checks RFC 5464's syntax and folds case);
//! `/private/...` and `/shared/...` are simply different names. Until shared folders and ACLs
//! exist, every entry of a store is its user's alone.

use std::collections::BTreeMap;

use super::UserStore;
use super::metadata::{Change, MetadataLog, Owner};
use crate::disk::Disk;
use crate::error::StorageError;
use crate::limits::{
    METADATA_BYTES_PER_USER_MAX, METADATA_ENTRIES_PER_MAILBOX_MAX, METADATA_ENTRIES_PER_USER_MAX,
    METADATA_ENTRY_NAME_BYTES_MAX, METADATA_VALUE_BYTES_MAX,
};
use crate::types::MailboxId;

/// Whose METADATA entries: the server's (mailbox name `""`) or a mailbox's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetadataOwner {
    /// The user's server entries.
    Server,
    /// A mailbox's entries.
    Mailbox(MailboxId),
}

/// Why a METADATA change was refused.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// The mailbox does not exist.
    #[error("no such mailbox")]
    NoSuchMailbox,
    /// An entry name is empty or longer than `limits::METADATA_ENTRY_NAME_BYTES_MAX`.
    #[error("bad entry name")]
    BadName,
    /// A value is longer than `max` bytes (RFC 5464 `[METADATA MAXSIZE max]`).
    #[error("value larger than {max} bytes")]
    TooLarge {
        /// The largest value accepted.
        max: u32,
    },
    /// The change would pass a limit on entries or bytes (RFC 5464 `[METADATA TOOMANY]`).
    #[error("too many metadata entries")]
    TooMany,
    /// A SPECIAL-USE attribute no real mailbox may carry (`\All`, `\Flagged`: RFC 6154
    /// `[USEATTR]`).
    #[error("special-use attribute not assignable")]
    NotAssignable,
    /// The disk failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What an owner with no entries answers.
static NO_ENTRIES: BTreeMap<String, Vec<u8>> = BTreeMap::new();

impl<D: Disk> UserStore<D> {
    /// Replays `metadata.log` (created if missing) the first time it is called; a no-op after.
    /// Call it before [`UserStore::metadata`]. Returns true when it replayed the log now: what
    /// it read then may not be durable yet (a crashed process may have left it in the page
    /// cache only), so a reply showing it waits for the disk's open epoch, like a mutation's.
    ///
    /// # Errors
    /// The disk failed, or the log is from a newer skua.
    pub fn load_metadata(&mut self) -> Result<bool, StorageError> {
        let loading = self.metadata.is_none();
        if loading {
            let opened = MetadataLog::open(&*self.disk, &self.dir)?;
            if opened.replaced || opened.truncated_bytes > 0 {
                tracing::warn!(
                    dir = %self.dir.display(),
                    truncated_bytes = opened.truncated_bytes,
                    replaced = opened.replaced,
                    "metadata log recovered"
                );
            }
            self.metadata = Some(Box::new(opened.log));
        }
        Ok(loading)
    }

    /// The entries of `owner`, by name (names as they were set). Empty for a mailbox that
    /// does not exist.
    ///
    /// # Panics
    /// When [`UserStore::load_metadata`] was not called first (a bug of the caller).
    #[must_use]
    pub fn metadata(&self, owner: MetadataOwner) -> &BTreeMap<String, Vec<u8>> {
        let log = self.metadata.as_ref().expect("load_metadata() before metadata()");
        self.metadata_owner(owner).and_then(|owner| log.entries.get(&owner)).unwrap_or(&NO_ENTRIES)
    }

    /// Sets (`Some`) or removes (`None`) entries of `owner`, all or none, in one record of
    /// `metadata.log`. The change is durable once the disk's open epoch is (the caller's
    /// reply waits for it, like any mutation's).
    ///
    /// # Errors
    /// [`MetadataError`]: the mailbox is gone, a name or value is out of bounds, a limit
    /// would be passed, or the disk failed.
    pub fn set_metadata(
        &mut self,
        owner: MetadataOwner,
        changes: &[(String, Option<Vec<u8>>)],
    ) -> Result<(), MetadataError> {
        let Some(key) = self.metadata_owner(owner) else {
            return Err(MetadataError::NoSuchMailbox);
        };
        for (name, value) in changes {
            if name.is_empty() || name.len() > METADATA_ENTRY_NAME_BYTES_MAX {
                return Err(MetadataError::BadName);
            }
            if value.as_ref().is_some_and(|v| v.len() > METADATA_VALUE_BYTES_MAX as usize) {
                return Err(MetadataError::TooLarge { max: METADATA_VALUE_BYTES_MAX });
            }
        }
        if changes.is_empty() {
            return Ok(());
        }
        self.before_mutation()?;
        self.load_metadata()?;
        let durable = self.disk.epoch_durable();
        let catalog = &self.catalog;
        let live = |owner: Owner| match owner {
            Owner::Server => true,
            Owner::Mailbox { id, uid_validity } => {
                catalog.mailboxes.get(&id).is_some_and(|m| m.uid_validity.get() == uid_validity)
            }
        };
        let log = self.metadata.as_mut().expect("loaded above");
        log.housekeeping(&*self.disk, &self.dir, durable, live);
        check_limits(&log.entries, key, changes)?;
        let changes: Vec<Change> = dedup(changes);
        log.append(key, changes, self.disk.epoch_open())?;
        Ok(())
    }

    /// Gives mailbox `id` the SPECIAL-USE attributes `uses` (replacing its set; RFC 6154 §4:
    /// a client sets the METADATA entry `/private/specialuse`). They are the same attributes
    /// CREATE's `USE` gives, kept in `mailboxes.log` (a special-use record), not in
    /// `metadata.log`.
    ///
    /// # Errors
    /// [`MetadataError::NoSuchMailbox`]; [`MetadataError::NotAssignable`] for `\All` or
    /// `\Flagged` (virtual mailboxes only); the disk failed.
    pub fn set_special_use(
        &mut self,
        id: MailboxId,
        uses: super::SpecialUse,
    ) -> Result<(), MetadataError> {
        if !self.catalog.mailboxes.contains_key(&id) {
            return Err(MetadataError::NoSuchMailbox);
        }
        if !super::SpecialUse::ASSIGNABLE.contains(uses) {
            return Err(MetadataError::NotAssignable);
        }
        self.before_mutation()?;
        self.log_and_apply(&[super::log::LogRecord::SpecialUse { id, uses }])?;
        self.change_counter += 1;
        Ok(())
    }

    /// The owner key of `owner`, if its mailbox exists.
    fn metadata_owner(&self, owner: MetadataOwner) -> Option<Owner> {
        match owner {
            MetadataOwner::Server => Some(Owner::Server),
            MetadataOwner::Mailbox(id) => {
                let entry = self.catalog.mailboxes.get(&id)?;
                Some(Owner::Mailbox { id, uid_validity: entry.uid_validity.get() })
            }
        }
    }
}

/// The changes with only the last change of each name kept (a SETMETADATA may name an entry
/// twice; the last one wins, as if applied in order).
fn dedup(changes: &[(String, Option<Vec<u8>>)]) -> Vec<Change> {
    let mut last: BTreeMap<&str, &Option<Vec<u8>>> = BTreeMap::new();
    for (name, value) in changes {
        last.insert(name, value);
    }
    last.into_iter().map(|(name, value)| (name.to_owned(), value.clone())).collect()
}

/// Refuses `changes` to `key` when the result would pass a limit: entries per owner, entries
/// per user, bytes per user. Removals always pass.
fn check_limits(
    entries: &super::metadata::Entries,
    key: Owner,
    changes: &[(String, Option<Vec<u8>>)],
) -> Result<(), MetadataError> {
    let mut user_entries = 0usize;
    let mut user_bytes = 0u64;
    for map in entries.values() {
        user_entries += map.len();
        user_bytes += map.iter().map(|(n, v)| (n.len() + v.len()) as u64).sum::<u64>();
    }
    let empty = BTreeMap::new();
    let current = entries.get(&key).unwrap_or(&empty);
    let mut owner_entries = current.len();
    let mut seen: BTreeMap<&str, Option<usize>> = BTreeMap::new();
    for (name, value) in changes {
        seen.insert(name, value.as_ref().map(Vec::len));
    }
    let mut grows = false;
    for (name, new_len) in seen {
        let old = current.get(name).map(|v| (name.len() + v.len()) as u64);
        let new = new_len.map(|len| (name.len() + len) as u64);
        match (old, new) {
            (None, Some(new)) => {
                owner_entries += 1;
                user_entries += 1;
                user_bytes += new;
                grows = true;
            }
            (Some(old), None) => {
                owner_entries -= 1;
                user_entries -= 1;
                user_bytes -= old;
            }
            (Some(old), Some(new)) => {
                user_bytes = user_bytes - old + new;
                grows |= new > old;
            }
            (None, None) => {}
        }
    }
    let over = owner_entries > METADATA_ENTRIES_PER_MAILBOX_MAX
        || user_entries > METADATA_ENTRIES_PER_USER_MAX
        || user_bytes > METADATA_BYTES_PER_USER_MAX;
    if grows && over {
        return Err(MetadataError::TooMany);
    }
    Ok(())
}
