//! The operator's tools on one user's store (issue 11: `skua check`, `quota`, `mbexamine`,
//! `df`): each is a function over a [`UserStore`] (or, for the read-only file pass, over a
//! disk and a store directory) returning a typed, serializable report.
//!
//! The same functions run in both of the CLI's modes: with the server stopped, `skua` takes
//! the data-dir lock, opens the store on an `OsDisk` and calls them itself; with the server
//! running, it asks through the admin socket and the server calls them on the user's home
//! shard (`shard/src/admin.rs`). So a report never depends on which mode produced it.
//!
//! This module lives inside `store` (rather than beside it) because the checks read what only
//! the store sees: index records as stored, spool records by reference, the catalog.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::UserStore;
use crate::disk::Disk;
use crate::error::StorageError;
use crate::paths::{UserName, user_bucket};

mod arbitron;
mod backup;
mod check;
mod examine;
mod mboxlist;
mod purge;

pub use arbitron::{ArbitronReport, Reader, SharedMailbox};
pub use backup::SnapshotSource;
pub use check::check_files;
pub use examine::{ExamineRecord, ExamineReport, QuotaReport, UsageReport};
pub use mboxlist::{MailboxLine, UndumpReport, grantees, undump_dry_without_store};
pub use purge::{
    ExpungedListed, ExpungedReport, PURGE_BATCH_UIDS, PurgeCriteria, PurgeReport, PurgedMailbox,
    RestoreReport, Restored,
};

/// Why an operation could not give its report.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The user has no store in the data dir.
    #[error("user {0} has no store")]
    NoSuchUser(String),
    /// The user has no mailbox by that name.
    #[error("user {user} has no mailbox {mailbox:?}")]
    NoSuchMailbox {
        /// The user.
        user: String,
        /// The name asked for.
        mailbox: String,
    },
    /// UIDs that name no expunged message still in the spool (`unexpunge`); nothing was
    /// restored.
    #[error("user {user}'s mailbox {mailbox:?} has no restorable expunged message with UID {}",
        uid_list(.uids))]
    NotRestorable {
        /// The user.
        user: String,
        /// The mailbox.
        mailbox: String,
        /// Every UID asked for that cannot be restored.
        uids: Vec<u32>,
    },
    /// The mailbox cannot take the restored messages (no UIDs left); nothing was restored.
    #[error("user {user}'s mailbox {mailbox:?} cannot take more messages")]
    MailboxFull {
        /// The user.
        user: String,
        /// The mailbox.
        mailbox: String,
    },
    /// The input is not acceptable (`mboxlist undump`: a bad line), said in a sentence.
    #[error("{0}")]
    Invalid(String),
    /// The disk failed, or a file is damaged beyond what the operation reads around.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// `1, 5, 7`.
fn uid_list(uids: &[u32]) -> String {
    uids.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
}

impl AdminError {
    /// The error's `kind` on the admin socket (`ARCHITECTURE.md`, "Admin socket").
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            AdminError::NoSuchUser(_) => "no-such-user",
            AdminError::NoSuchMailbox { .. } => "no-such-mailbox",
            AdminError::NotRestorable { .. } => "not-restorable",
            AdminError::MailboxFull { .. } => "mailbox-full",
            AdminError::Invalid(_) => "bad-request",
            AdminError::Storage(_) => "storage",
        }
    }
}

/// One thing `check` found wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The user whose store it is in.
    pub user: String,
    /// The file, relative to the data dir.
    pub file: String,
    /// What is wrong, in a sentence.
    pub what: String,
}

/// What `check` verified and found for one user. Clean when `findings` is empty.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    /// The user.
    pub user: String,
    /// Index files read.
    pub indexes: u64,
    /// Index records whose checksum was verified.
    pub index_records: u64,
    /// Spool records read in full and verified against their checksum and their index record.
    pub spool_records: u64,
    /// Mailboxes whose counters were recounted (zero when the store was not opened because
    /// the file pass found damage: opening would have repaired it, and check changes nothing).
    pub mailboxes_recounted: u64,
    /// What is wrong; empty when the store is sound.
    pub findings: Vec<Finding>,
}

impl CheckReport {
    /// True when nothing was found wrong.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }

    fn find(&mut self, file: &Path, what: String) {
        let file = file.display().to_string();
        self.findings.push(Finding { user: self.user.clone(), file, what });
    }
}

/// The directory under the data dir that holds the stores (`paths::user_dir`).
pub const USERS_DIR: &str = "users";

/// Every user with a store on `disk` (whose root is the data dir), sorted: the directories
/// `users/<hh>/<name>` whose name is a valid user name in its own bucket. Anything else under
/// `users/` is not a store and is left out.
///
/// # Errors
/// The disk failed listing a directory.
pub fn store_users<D: Disk>(disk: &D) -> Result<Vec<String>, StorageError> {
    let root = Path::new(USERS_DIR);
    if !disk.exists(root) {
        return Ok(Vec::new());
    }
    let mut users = Vec::new();
    for bucket in disk.list_dir(root).map_err(|e| StorageError::io(root, e))? {
        let bucket_dir = root.join(&bucket);
        let Ok(names) = disk.list_dir(&bucket_dir) else {
            continue; // a file, not a bucket
        };
        for name in names {
            if let Ok(user) = UserName::new(&name)
                && user_bucket(&user) == bucket
                && user.as_str() == name
            {
                users.push(name);
            }
        }
    }
    users.sort();
    Ok(users)
}

/// The directory of `user`'s store relative to the data dir, if it exists on `disk`.
///
/// # Errors
/// [`AdminError::NoSuchUser`]: the name names no store, or the store does not exist.
pub fn existing_store_dir<D: Disk>(disk: &D, user: &str) -> Result<std::path::PathBuf, AdminError> {
    let name = UserName::new(user).map_err(|_| AdminError::NoSuchUser(user.to_owned()))?;
    let dir = crate::paths::user_dir(&name);
    if !disk.exists(&dir) {
        return Err(AdminError::NoSuchUser(user.to_owned()));
    }
    Ok(dir)
}

/// The full check of an open store: the file pass ([`check_files`]) and then the counters
/// ([`UserStore::check_counters`]).
///
/// # Errors
/// The disk failed (damage is a finding, not an error).
pub fn check<D: Disk>(store: &mut UserStore<D>, user: &str) -> Result<CheckReport, StorageError> {
    let mut report = check_files(store.disk(), store.dir(), user)?;
    store.check_counters(&mut report)?;
    Ok(report)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_mboxlist;
