//! CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE and keyword allocation: everything that
//! changes `mailboxes.log`. Each change is one log append (a change of several records, such
//! as a subtree rename, is one batch record that replays whole or not at all), made before
//! memory changes, so a failed write changes nothing.

use super::changes::ListChange;
use super::codec::now_unix_seconds;
use super::index::{self, Index, IndexHeader};
use super::log::LogRecord;
use super::rename_inbox::Renamed;
use super::{UserStore, names};
use crate::disk::Disk;
use crate::error::{KeywordError, MailboxError, StorageError};
use crate::limits::{KEYWORDS_PER_MAILBOX_MAX, MAILBOXES_PER_USER_MAX, SUBSCRIPTIONS_PER_USER_MAX};
use crate::types::{Keywords, MailboxId, UidValidity};

impl<D: Disk> UserStore<D> {
    /// Creates a mailbox, and the superiors its name needs that do not exist yet (RFC 9051
    /// §6.3.4), in one log batch.
    ///
    /// # Errors
    /// Invalid name, name taken, too many mailboxes, or the disk failed.
    pub fn create_mailbox(&mut self, name: &str) -> Result<MailboxId, MailboxError> {
        self.create_mailbox_with_use(name, super::SpecialUse::NONE)
    }

    /// Makes the index files and `Create` records of `name`'s superiors that neither exist nor
    /// are among the `Create` records of `records` already.
    pub(super) fn create_superiors(
        &mut self,
        name: &str,
        records: &mut Vec<LogRecord>,
    ) -> Result<(), MailboxError> {
        let pending = |superior: &str| {
            records.iter().any(|r| matches!(r, LogRecord::Create { name, .. } if name == superior))
        };
        let missing = names::superiors(name)
            .filter(|superior| self.catalog.id(superior).is_none() && !pending(superior));
        let missing: Vec<String> = missing.map(str::to_owned).collect();
        for name in missing {
            let id = self.new_index(records)?;
            let uid_validity = self.indexes[&id].header().uid_validity;
            records.push(LogRecord::Create { id, uid_validity, name });
        }
        Ok(())
    }

    /// After a change of the mailbox list made of `records`: counts it when it was made, or
    /// removes the index files its `Create` records had made when it failed.
    pub(super) fn settle<T>(
        &mut self,
        made: Result<T, MailboxError>,
        records: &[LogRecord],
    ) -> Result<T, MailboxError> {
        if made.is_ok() {
            self.change_counter += 1;
        } else {
            for record in records {
                if let LogRecord::Create { id, .. } = record {
                    self.drop_new_index(*id);
                }
            }
        }
        made
    }

    /// Makes the index file of a mailbox about to be created (before its log record, so the
    /// log never names a mailbox without an index; a crash in between leaves a stray file that
    /// the next open removes).
    ///
    /// `pending` are the records of the same batch made so far: an id and a UIDVALIDITY are
    /// taken past theirs, as the catalog will have them when the batch is applied.
    pub(super) fn new_index(&mut self, pending: &[LogRecord]) -> Result<MailboxId, MailboxError> {
        let mut id = self.catalog.next_id;
        let mut uid_validity = self.catalog.next_uid_validity(now_unix_seconds());
        let mut count = self.catalog.mailboxes.len();
        for record in pending {
            if let LogRecord::Create { id: made, uid_validity: its, .. } = record {
                id = id.max(made.0.saturating_add(1));
                uid_validity = uid_validity.max(UidValidity(its.0.saturating_add(1)));
                count += 1;
            }
        }
        let id = MailboxId(id);
        if count >= MAILBOXES_PER_USER_MAX || id.0 == u32::MAX {
            return Err(MailboxError::TooMany);
        }
        let header = IndexHeader {
            mailbox: id,
            uid_validity,
            uid_next: 1,
            highest_modseq: 1,
            checkpoint: self.checkpoints.current(),
            messages: 0,
            sealed: false,
            first_recent_uid: 1,
        };
        let index = Index::create(&*self.disk, index::index_path(&self.dir, id), header)
            .map_err(|e| self.logged("create mailbox", e))?;
        self.indexes.insert(id, index);
        self.deferred.unsealed.push((self.disk.epoch_open(), id));
        Ok(id)
    }

    fn drop_new_index(&mut self, id: MailboxId) {
        self.indexes.remove(&id);
        let path = index::index_path(&self.dir, id);
        if let Err(error) = self.disk.remove_file(&path) {
            tracing::warn!(path = %path.display(), %error, "cannot remove unused index");
        }
    }

    /// Appends records to the log in one write (one batch if several), then applies them.
    pub(super) fn log_and_apply(&mut self, records: &[LogRecord]) -> Result<(), StorageError> {
        self.log
            .append_all(records, self.disk.epoch_open())
            .map_err(|e| self.logged("mailbox list change", e))?;
        for record in records {
            let change = self.list_change_of(record);
            assert!(self.catalog.apply(record), "a record we wrote replays: {record:?}");
            if let LogRecord::Delete { id } = record {
                self.changes.forget(*id);
            }
            if let Some(change) = change {
                self.changes.list_change(change);
            }
        }
        Ok(())
    }

    /// What `record` changes in the mailbox list as NOTIFY reports it (read before it is
    /// applied: a rename's or a delete's old name is still in the catalog).
    fn list_change_of(&self, record: &LogRecord) -> Option<ListChange> {
        let name_of = |id: &MailboxId| self.catalog.mailboxes.get(id).map(|e| e.name.clone());
        match record {
            LogRecord::Create { name, .. } => Some(ListChange::Created(name.clone())),
            LogRecord::Delete { id } => name_of(id).map(ListChange::Deleted),
            LogRecord::Rename { id, name } => {
                name_of(id).map(|old| ListChange::Renamed { old, new: name.clone() })
            }
            LogRecord::Subscribe { name } => Some(ListChange::Subscribed(name.clone())),
            LogRecord::Unsubscribe { name } => Some(ListChange::Unsubscribed(name.clone())),
            LogRecord::Keyword { .. }
            | LogRecord::Floor { .. }
            | LogRecord::VoidKeyword { .. }
            | LogRecord::SpecialUse { .. }
            | LogRecord::Acl { .. }
            | LogRecord::Granted { .. }
            | LogRecord::Provisioned => None,
        }
    }

    /// Deletes a mailbox and its messages. Its children, if any, stay.
    ///
    /// # Errors
    /// No such mailbox, INBOX, or the disk failed.
    pub fn delete_mailbox(&mut self, name: &str) -> Result<(), MailboxError> {
        self.before_mutation()?;
        let name = names::canonical(name)?;
        if name == names::INBOX {
            return Err(MailboxError::CannotDeleteInbox);
        }
        let id = self.catalog.id(&name).ok_or(MailboxError::NotFound)?;
        self.log_and_apply(&[LogRecord::Delete { id }])?;
        if let Some(index) = self.indexes.remove(&id) {
            self.quota_forget(index.counts());
        }
        // The file goes once the delete record is durable: removed earlier, a crash that lost
        // the record would leave a mailbox without its index (the next open also removes it).
        let path = index::index_path(&self.dir, id);
        self.deferred.doomed.push((self.disk.epoch_open(), path));
        self.change_counter += 1;
        Ok(())
    }

    /// Renames a mailbox and its children. Renaming INBOX (RFC 9051 §6.3.6) creates the new
    /// name and returns the move of INBOX's messages into it, which the caller finishes with
    /// [`UserStore::rename_inbox_step`] (`rename_inbox.rs`): INBOX keeps its id and
    /// UIDVALIDITY and its children stay where they are.
    ///
    /// # Errors
    /// No such mailbox, target taken, target under the source, invalid name, or the disk
    /// failed.
    pub fn rename_mailbox(&mut self, old: &str, new: &str) -> Result<Renamed, MailboxError> {
        self.before_mutation()?;
        let (old, new) = (names::canonical(old)?, names::new_name(new)?);
        let id = self.catalog.id(&old).ok_or(MailboxError::NotFound)?;
        if self.catalog.id(&new).is_some() {
            return Err(MailboxError::AlreadyExists);
        }
        if old == names::INBOX {
            // INBOX's children do not move with it, so `INBOX/Old` is a fine target.
            return self.rename_inbox_start(id, new).map(Renamed::Inbox);
        }
        if names::is_ancestor(&old, &new) {
            return Err(MailboxError::RenameUnderItself);
        }
        let mut records = Vec::new();
        let made = self.create_superiors(&new, &mut records).and_then(|()| {
            self.rename_records(id, &old, new, &mut records)?;
            self.log_and_apply(&records)?;
            Ok(())
        });
        self.settle(made, &records).map(|()| Renamed::Done)
    }

    /// The records that rename `old` (`id`) and its children to `new`.
    fn rename_records(
        &self,
        id: MailboxId,
        old: &str,
        new: String,
        records: &mut Vec<LogRecord>,
    ) -> Result<(), MailboxError> {
        let mut renames = Vec::new();
        for (name, &child) in &self.catalog.by_name {
            if names::is_ancestor(old, name) {
                let renamed = names::canonical(&format!("{new}{}", &name[old.len()..]))?;
                if self.catalog.id(&renamed).is_some() {
                    return Err(MailboxError::AlreadyExists);
                }
                renames.push(LogRecord::Rename { id: child, name: renamed });
            }
        }
        records.push(LogRecord::Rename { id, name: new });
        records.append(&mut renames);
        Ok(())
    }

    /// Subscribes a name (which need not exist). Subscribing twice is not an error.
    ///
    /// # Errors
    /// Invalid name, too many subscriptions, or the disk failed.
    pub fn subscribe(&mut self, name: &str) -> Result<(), MailboxError> {
        self.before_mutation()?;
        let name = names::canonical(name)?;
        if self.catalog.subscriptions.contains(&name) {
            return Ok(());
        }
        if self.catalog.subscriptions.len() >= SUBSCRIPTIONS_PER_USER_MAX {
            return Err(MailboxError::TooMany);
        }
        self.log_and_apply(&[LogRecord::Subscribe { name }])?;
        self.change_counter += 1;
        Ok(())
    }

    /// Unsubscribes a name. Unsubscribing a name that is not subscribed is not an error.
    ///
    /// # Errors
    /// Invalid name, or the disk failed.
    pub fn unsubscribe(&mut self, name: &str) -> Result<(), MailboxError> {
        self.before_mutation()?;
        let name = names::canonical(name)?;
        if !self.catalog.subscriptions.contains(&name) {
            return Ok(());
        }
        self.log_and_apply(&[LogRecord::Unsubscribe { name }])?;
        self.change_counter += 1;
        Ok(())
    }

    /// The keyword bits for `names` in mailbox `id`, adding names the table lacks (matched
    /// case-insensitively; a new name keeps the case first given).
    ///
    /// # Errors
    /// No such mailbox, an invalid keyword, a full table, or the disk failed.
    pub fn keyword_bits(
        &mut self,
        id: MailboxId,
        names: &[&str],
    ) -> Result<Keywords, KeywordError> {
        self.before_mutation()?;
        let entry = self.catalog.mailboxes.get(&id).ok_or(KeywordError::NoSuchMailbox)?;
        let mut table: Vec<&str> = entry.keywords.iter().map(String::as_str).collect();
        let known = table.len();
        let mut bits = 0u64;
        for &name in names {
            if !names::is_keyword(name) {
                return Err(KeywordError::Invalid);
            }
            let known_bit = entry.keyword_bit(name);
            let new_bit = table[known..].iter().position(|k| k.eq_ignore_ascii_case(name));
            let bit = match known_bit.or(new_bit.map(|i| known + i)) {
                Some(bit) => bit,
                None if table.len() < KEYWORDS_PER_MAILBOX_MAX => {
                    table.push(name);
                    table.len() - 1
                }
                None => return Err(KeywordError::TooMany),
            };
            bits |= 1 << bit;
        }
        let records: Vec<LogRecord> = table[known..]
            .iter()
            .enumerate()
            .map(|(i, name)| LogRecord::Keyword {
                id,
                bit: u32::try_from(known + i).expect("at most 64"),
                name: (*name).to_owned(),
            })
            .collect();
        if !records.is_empty() {
            self.log_and_apply(&records)?;
            self.change_counter += 1;
        }
        Ok(Keywords(bits))
    }
}
