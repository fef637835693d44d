//! `skua arbitron` (Cyrus's `arbitron`): who reads the user's shared mailboxes.
//!
//! A mailbox is shared when its ACL gives some right to an identifier other than its owner
//! (a user, `anyone`, `authenticated`), or when the store is the public owner's (the public
//! namespace: every mailbox there is for others). Its readers are the users with a `\Seen`
//! set of their own on it (`seen.rs`: other users' `\Seen` on a shared folder is kept per
//! reader in `seen.log`). The store records no time for a reader's marks, so there is no
//! "last read": the report says so (`read_times: false`) rather than invent one, and a
//! caller asked for readers active in the last N days can only give counts.
//!
//! Read-only: a store whose `seen.log` does not exist has no readers, and it is not created.

use serde::{Deserialize, Serialize};

use super::super::UserStore;
use crate::acl::Who;
use crate::disk::Disk;
use crate::error::{ReadError, StorageError};
use crate::types::{MailboxId, Uid};

/// One reader of a shared mailbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reader {
    /// The reader's user name.
    pub reader: String,
    /// Live messages of the mailbox the reader has marked `\Seen`.
    pub seen_messages: u32,
}

/// One shared mailbox and its readers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedMailbox {
    /// The owner.
    pub owner: String,
    /// The mailbox's canonical name.
    pub mailbox: String,
    /// The ACL's identifiers other than the owner's (`-name` for a negative entry).
    pub acl_identifiers: Vec<String>,
    /// Users with their own `\Seen` set on it, by name.
    pub readers: Vec<Reader>,
}

/// `skua arbitron` for one user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArbitronReport {
    /// The user.
    pub user: String,
    /// The shared mailboxes, by name.
    pub mailboxes: Vec<SharedMailbox>,
    /// Whether reader times are recorded (never, today: see the module docs).
    pub read_times: bool,
}

impl<D: Disk> UserStore<D> {
    /// `skua arbitron`: the store's shared mailboxes and their readers; `public`: the store is
    /// the public owner's (every mailbox counts as shared).
    ///
    /// # Errors
    /// The disk failed loading `seen.log`.
    pub fn arbitron(&mut self, user: &str, public: bool) -> Result<ArbitronReport, StorageError> {
        let owner = self.owner().to_ascii_lowercase();
        let has_seen_log = self.seen.is_some() || self.disk().exists(&self.dir.join("seen.log"));
        if has_seen_log {
            self.load_seen()?;
        }
        let mut mailboxes = Vec::new();
        for info in self.mailboxes() {
            let acl = self.acl(info.id).unwrap_or_default();
            let others: Vec<String> = acl
                .entries()
                .iter()
                .filter(|e| !matches!(&e.identifier.who, Who::User(name) if *name == owner))
                .map(|e| e.identifier.to_string())
                .collect();
            let granted = acl.entries().iter().any(|e| {
                !e.identifier.negative
                    && !matches!(&e.identifier.who, Who::User(name) if *name == owner)
            });
            if !granted && !public {
                continue;
            }
            let readers = if has_seen_log { self.readers_of(info.id)? } else { Vec::new() };
            mailboxes.push(SharedMailbox {
                owner: user.to_owned(),
                mailbox: info.name,
                acl_identifiers: others,
                readers,
            });
        }
        Ok(ArbitronReport { user: user.to_owned(), mailboxes, read_times: false })
    }

    /// The readers of mailbox `id` with a non-empty set (`seen.log` loaded).
    fn readers_of(&mut self, id: MailboxId) -> Result<Vec<Reader>, StorageError> {
        let Some(key) = self.seen_owner(id) else { return Ok(Vec::new()) };
        let log = self.seen.as_ref().expect("loaded by the caller");
        let names: Vec<String> = log.sets.get(&key).map_or_else(Vec::new, |readers| {
            readers.iter().filter(|(_, r)| !r.is_empty()).map(|(name, _)| name.clone()).collect()
        });
        let live: Vec<Uid> =
            self.indexes[&id].entries().iter().filter(|e| !e.expunged).map(|e| e.uid).collect();
        let mut readers = Vec::with_capacity(names.len());
        for reader in names {
            let seen = self.reader_seen(id, &reader).map_err(|e| match e {
                ReadError::Storage(e) => e,
                other => StorageError::io(&self.dir, std::io::Error::other(other.to_string())),
            })?;
            readers.push(Reader { seen_messages: seen.count_in(&live), reader });
        }
        Ok(readers)
    }
}
