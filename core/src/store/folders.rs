//! SPECIAL-USE attributes on mailboxes (RFC 6154) and a user's default folders.
//!
//! Attributes live in `mailboxes.log` as `special-use` records (`core/FORMAT.md`): a CREATE
//! with `USE (...)` is one batch (the creates and the attribute record), so a crash never
//! leaves the mailbox without its attribute. Default folders (first login) are one batch too:
//! every create, attribute and subscription of the set and a `provisioned` record, so a crash
//! leaves the whole set or none of it, and once the mark is in the log the set is never made
//! again (a user who deleted `Junk` does not get it back).

use super::log::LogRecord;
use super::special_use::SpecialUse;
use super::{UserStore, names};
use crate::disk::Disk;
use crate::error::MailboxError;
use crate::limits::SUBSCRIPTIONS_PER_USER_MAX;
use crate::types::MailboxId;

/// One default folder: its name and its attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefaultFolder {
    /// The folder's name (any valid mailbox name).
    pub name: String,
    /// Its SPECIAL-USE attributes (within [`SpecialUse::ASSIGNABLE`]).
    pub uses: SpecialUse,
}

impl<D: Disk> UserStore<D> {
    /// A mailbox's SPECIAL-USE attributes (none for an unknown id).
    #[must_use]
    pub fn special_use(&self, id: MailboxId) -> SpecialUse {
        self.catalog.mailboxes.get(&id).map_or(SpecialUse::NONE, |entry| entry.special_use)
    }

    /// True once the user's default folders were made ([`UserStore::provision`]).
    #[must_use]
    pub fn is_provisioned(&self) -> bool {
        self.catalog.provisioned
    }

    /// Creates a mailbox with SPECIAL-USE attributes (CREATE-SPECIAL-USE, RFC 6154 §3), and
    /// the superiors its name needs, in one log batch.
    ///
    /// # Errors
    /// As [`UserStore::create_mailbox`].
    ///
    /// # Panics
    /// If `uses` is not within [`SpecialUse::ASSIGNABLE`] (the caller answers `[USEATTR]`).
    pub fn create_mailbox_with_use(
        &mut self,
        name: &str,
        uses: SpecialUse,
    ) -> Result<MailboxId, MailboxError> {
        assert!(SpecialUse::ASSIGNABLE.contains(uses), "not assignable: {uses:?}");
        self.before_mutation()?;
        let name = names::new_name(name)?;
        if self.catalog.id(&name).is_some() {
            return Err(MailboxError::AlreadyExists);
        }
        if name != super::names::INBOX {
            let missing = super::names::superiors(&name)
                .filter(|superior| self.catalog.id(superior).is_none())
                .count();
            let adds = super::quota::Adds { mailboxes: 1 + missing as u64, ..Default::default() };
            self.quota_check(adds).map_err(super::quota::QuotaRefusal::into_mailbox)?;
        }
        let mut records = Vec::new();
        let made = self.create_records(name, uses, &mut records).and_then(|id| {
            self.log_and_apply(&records)?;
            Ok(id)
        });
        self.settle(made, &records)
    }

    /// The records (and index files) that create `name`, its missing superiors and, if any,
    /// its attributes. `name` is canonical and free.
    fn create_records(
        &mut self,
        name: String,
        uses: SpecialUse,
        records: &mut Vec<LogRecord>,
    ) -> Result<MailboxId, MailboxError> {
        self.create_superiors(&name, records)?;
        let id = self.new_index(records)?;
        let uid_validity = self.indexes[&id].header().uid_validity;
        records.push(LogRecord::Create { id, uid_validity, name });
        if !uses.is_empty() {
            records.push(LogRecord::SpecialUse { id, uses });
        }
        Ok(id)
    }

    /// Makes the user's default folders, once: each folder that does not exist is created
    /// with its attributes (an existing one without attributes gets them), INBOX and every
    /// folder are subscribed, and the store is marked provisioned, all in one log batch.
    /// Returns false (and writes nothing) when the store was provisioned before.
    ///
    /// # Errors
    /// A name is invalid, too many mailboxes or subscriptions, or the disk failed; nothing is
    /// made then, and the next call tries again.
    ///
    /// # Panics
    /// If an attribute set is not within [`SpecialUse::ASSIGNABLE`].
    pub fn provision(&mut self, folders: &[DefaultFolder]) -> Result<bool, MailboxError> {
        if self.catalog.provisioned {
            return Ok(false);
        }
        self.before_mutation()?;
        let mut records = Vec::new();
        let made = self.provision_records(folders, &mut records).and_then(|()| {
            self.log_and_apply(&records)?;
            Ok(true)
        });
        self.settle(made, &records)
    }

    fn provision_records(
        &mut self,
        folders: &[DefaultFolder],
        records: &mut Vec<LogRecord>,
    ) -> Result<(), MailboxError> {
        let mut subscribe = vec![names::INBOX.to_owned()];
        for folder in folders {
            assert!(SpecialUse::ASSIGNABLE.contains(folder.uses), "not assignable");
            let name = names::new_name(&folder.name)?;
            let made_here = records
                .iter()
                .any(|r| matches!(r, LogRecord::Create { name: n, .. } if *n == name));
            match self.catalog.id(&name) {
                Some(id) => {
                    let entry = &self.catalog.mailboxes[&id];
                    if entry.special_use.is_empty() && !folder.uses.is_empty() {
                        records.push(LogRecord::SpecialUse { id, uses: folder.uses });
                    }
                }
                None if made_here => {}
                None => {
                    self.create_records(name.clone(), folder.uses, records)?;
                }
            }
            subscribe.push(name);
        }
        subscribe.sort();
        subscribe.dedup();
        subscribe.retain(|name| !self.catalog.subscriptions.contains(name));
        if self.catalog.subscriptions.len() + subscribe.len() > SUBSCRIPTIONS_PER_USER_MAX {
            return Err(MailboxError::TooMany);
        }
        records.extend(subscribe.into_iter().map(|name| LogRecord::Subscribe { name }));
        records.push(LogRecord::Provisioned);
        Ok(())
    }
}
