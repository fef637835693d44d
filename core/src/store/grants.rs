//! The grant index: which users gave this store's user rights on a mailbox of theirs.
//!
//! A LIST across every user (`LIST "" "*"`, `Other Users/*`) cannot ask every store whom it
//! shares with: it reads the session user's own index and visits only the users it names.
//! SETACL keeps the index: before bob's ACL gives alice a right, alice's store notes "bob"
//! (`LogRecord::Granted` in alice's `mailboxes.log`, `core/FORMAT.md`), durably, so the index
//! always names at least every user whose ACLs give alice something. It may name more (bob
//! took his grant back, or bob is gone): the visit then lists nothing, which costs a step but
//! shows nothing wrong. Grants to `anyone` and `authenticated` are not indexed (they would put
//! one user's mailboxes into everyone's list); the public owner's mailboxes (`Shared/`) are
//! always visited instead.

use super::UserStore;
use super::log::LogRecord;
use crate::acl::{Identifier, Who};
use crate::disk::Disk;
use crate::error::StorageError;
use crate::limits::GRANTS_RECEIVED_MAX;

/// What [`UserStore::note_grant`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Noted {
    /// The owner is new in the index: one log record, durable with the disk's open epoch.
    New,
    /// The owner was in the index already: nothing written.
    Known,
    /// The index is full (`limits::GRANTS_RECEIVED_MAX`), or the owner's name cannot be an
    /// ACL identifier: nothing written, and LIST across every user will not show that owner's
    /// mailboxes (a LIST under the owner's prefix still does).
    Refused,
}

/// True for a name the index may hold: a canonical (lowercase) user identifier.
pub(crate) fn valid_owner(name: &str) -> bool {
    match Identifier::user(name) {
        Ok(Identifier { who: Who::User(user), .. }) => user == name,
        _ => false,
    }
}

impl<D: Disk> UserStore<D> {
    /// Notes that `owner` gave this store's user rights on one of their mailboxes.
    ///
    /// # Errors
    /// The disk failed.
    pub fn note_grant(&mut self, owner: &str) -> Result<Noted, StorageError> {
        let owner = owner.to_ascii_lowercase();
        if self.catalog.granted_by.contains(&owner) {
            return Ok(Noted::Known);
        }
        if !valid_owner(&owner) || self.catalog.granted_by.len() >= GRANTS_RECEIVED_MAX {
            return Ok(Noted::Refused);
        }
        self.before_mutation()?;
        self.log_and_apply(&[LogRecord::Granted { owner }])?;
        Ok(Noted::New)
    }

    /// The users who gave this store's user rights (a superset: see the module docs), in
    /// name order.
    #[must_use]
    pub fn granted_by(&self) -> Vec<String> {
        self.catalog.granted_by.iter().cloned().collect()
    }
}
