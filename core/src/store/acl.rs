//! Access control lists of the user's mailboxes (RFC 4314; the model is `crate::acl`).
//!
//! An ACL belongs to a mailbox id: each change is one `acl` record in `mailboxes.log`
//! (`core/FORMAT.md`), so an ACL follows RENAME, vanishes with DELETE, and is replayed with
//! the mailbox list. A mailbox no record has named has the default ACL: its owner with every
//! right. The first change writes the owner's entry and the change together, in one batch, so
//! the log never holds a partial ACL.
//!
//! *The owner.* A store lives in `users/<hh>/<name>/` (`paths.rs`): its owner is the last
//! component of its directory, so the store knows it without anyone passing it in. The owner
//! always has `l k x a` ([`Rights::OWNER_FIXED`]) on their mailboxes, whatever the ACL says,
//! so they can always see, delete and repair them: [`UserStore::rights_of`] adds them, and a
//! change that would take them from the owner's own entry keeps them (RFC 4314 §2 lets a
//! server tie rights to an identifier; §3.1 has SETACL succeed, and GETACL then shows what
//! the entry holds).

use super::UserStore;
use super::log::LogRecord;
use crate::acl::{Acl, Identifier, Rights, RightsChange, Who};
use crate::disk::Disk;
use crate::error::StorageError;
use crate::types::MailboxId;

/// Why an ACL call failed.
#[derive(Debug, thiserror::Error)]
pub enum AclError {
    /// No mailbox has this id.
    #[error("no such mailbox")]
    NoSuchMailbox,
    /// The ACL already has `limits::ACL_ENTRIES_MAX` entries.
    #[error("too many ACL entries")]
    TooManyEntries,
    /// The disk failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl<D: Disk> UserStore<D> {
    /// The owner's user name: the last component of the store's directory (module docs).
    #[must_use]
    pub fn owner(&self) -> &str {
        self.dir.file_name().and_then(|name| name.to_str()).unwrap_or("")
    }

    /// The owner's positive identifier.
    fn owner_identifier(&self) -> Identifier {
        Identifier { who: Who::User(self.owner().to_ascii_lowercase()), negative: false }
    }

    /// Mailbox `id`'s access control list (the default, the owner with every right, until a
    /// change is made).
    ///
    /// # Errors
    /// [`AclError::NoSuchMailbox`].
    pub fn acl(&self, id: MailboxId) -> Result<Acl, AclError> {
        let entry = self.catalog.mailboxes.get(&id).ok_or(AclError::NoSuchMailbox)?;
        Ok(entry.acl.clone().unwrap_or_else(|| Acl::owner_default(&self.owner_identifier())))
    }

    /// Changes what `identifier` has in mailbox `id`'s ACL; returns what its entry holds
    /// afterwards (empty: no entry). The owner's own entry keeps [`Rights::OWNER_FIXED`], and
    /// a negative entry for the owner never holds them (they could not be taken away anyway).
    /// Nothing is written when nothing changes. One log record (or batch): durable with the
    /// disk's open epoch.
    ///
    /// # Errors
    /// [`AclError::NoSuchMailbox`], [`AclError::TooManyEntries`], or the disk failed.
    pub fn set_acl(
        &mut self,
        id: MailboxId,
        identifier: &Identifier,
        change: RightsChange,
    ) -> Result<Rights, AclError> {
        let mut acl = self.acl(id)?;
        let owner = self.owner_identifier();
        let mut rights = change.apply(acl.get(identifier));
        if identifier == &owner {
            rights = rights.union(Rights::OWNER_FIXED);
        } else if identifier.positive() == owner {
            rights = rights.without(Rights::OWNER_FIXED);
        }
        if acl.get(identifier) == rights {
            return Ok(rights);
        }
        acl.set(identifier, rights).map_err(|_| AclError::TooManyEntries)?;
        let mut records = Vec::with_capacity(2);
        let is_default = self.catalog.mailboxes.get(&id).is_some_and(|e| e.acl.is_none());
        if is_default && identifier != &owner {
            // The first change makes the default explicit, in the same batch.
            records.push(LogRecord::Acl { id, identifier: owner, rights: Rights::ALL });
        }
        records.push(LogRecord::Acl { id, identifier: identifier.clone(), rights });
        self.before_mutation()?;
        self.log_and_apply(&records)?;
        self.change_counter += 1;
        Ok(rights)
    }

    /// Removes `identifier`'s entry from mailbox `id`'s ACL (RFC 4314 DELETEACL): the same as
    /// giving it no rights, so the owner's own entry keeps [`Rights::OWNER_FIXED`]. Removing
    /// an entry that is not there changes nothing.
    ///
    /// # Errors
    /// As [`UserStore::set_acl`].
    pub fn delete_acl(&mut self, id: MailboxId, identifier: &Identifier) -> Result<(), AclError> {
        self.set_acl(id, identifier, RightsChange::Replace(Rights::NONE)).map(|_| ())
    }

    /// The rights `user` has in mailbox `id` (RFC 4314 §2, [`Acl::effective_rights`]), in a
    /// session that is `authenticated` or not; the owner also has [`Rights::OWNER_FIXED`].
    /// No rights for a mailbox that does not exist. The one check every access by a user
    /// other than the owner goes through (shared folders, LMTP `+detail`'s `p`).
    #[must_use]
    pub fn rights_of(&self, id: MailboxId, user: &str, authenticated: bool) -> Rights {
        let Some(entry) = self.catalog.mailboxes.get(&id) else {
            return Rights::NONE;
        };
        let is_owner = !user.is_empty() && user.eq_ignore_ascii_case(self.owner());
        match (&entry.acl, is_owner) {
            (Some(acl), true) => {
                acl.effective_rights(user, authenticated).union(Rights::OWNER_FIXED)
            }
            (Some(acl), false) => acl.effective_rights(user, authenticated),
            (None, true) => Rights::ALL,
            (None, false) => Rights::NONE,
        }
    }
}
