//! `skua ipurge` (expunge a user's messages by age or size) and `skua unexpunge` (list and
//! restore expunged messages still in the spool): operations on one open store.
//!
//! Both go through the store's own message operations, so they behave as a client's would:
//! ipurge calls [`UserStore::expunge`] (new modseqs, tombstones in the spool, quota counters,
//! sessions told, the expunged records kept restorable for the retention), and unexpunge
//! calls [`UserStore::unexpunge`] (a new UID for each restored message; UIDs are never
//! reused). Only the user's own mailboxes are touched: other users' folders, shared or
//! public, live in their owners' stores.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::super::UserStore;
use super::super::spool_compact::CompactionPolicy;
use super::AdminError;
use crate::disk::Disk;
use crate::error::{CopyError, UpdateError};
use crate::types::{Flags, FlagsOp, Keywords, MailboxId, SystemFlags, Uid};

/// UIDs expunged per [`UserStore::expunge`] call by ipurge: each call is one modseq and one
/// run of tombstones, so a purge of a large mailbox is a few calls, not one of unbounded size.
pub const PURGE_BATCH_UIDS: usize = 1000;

/// Bytes of a message's start searched for its Subject field (`unexpunge --list`).
pub const SUBJECT_SCAN_BYTES: usize = 8192;

/// Characters of a subject kept in a listing.
pub const SUBJECT_CHARS_MAX: usize = 200;

const SECONDS_PER_DAY: i64 = 86_400;

/// Which messages `ipurge` expunges. A message goes when it meets every condition given
/// (like IMAP SEARCH keys: giving both narrows); at least one must be given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PurgeCriteria {
    /// Internal date more than this many days before `now_unix_seconds`.
    pub older_than_days: Option<u32>,
    /// RFC822.SIZE larger than this.
    pub larger_than_bytes: Option<u64>,
    /// Only this mailbox (`None`: every mailbox of the user).
    pub mailbox: Option<String>,
    /// Report what would go, change nothing.
    pub dry_run: bool,
    /// The time now, unix seconds (passed in: core reads no clock for policy).
    pub now_unix_seconds: i64,
}

impl PurgeCriteria {
    /// True when a live message of `size` bytes dated `internal_date` (unix seconds) goes.
    #[must_use]
    pub fn matches(&self, internal_date: i64, size: u32) -> bool {
        let old = self.older_than_days.is_none_or(|days| {
            let cutoff = self.now_unix_seconds.saturating_sub(i64::from(days) * SECONDS_PER_DAY);
            internal_date < cutoff
        });
        let large = self.larger_than_bytes.is_none_or(|bytes| u64::from(size) > bytes);
        old && large
    }
}

/// What `ipurge` expunged (or, with `dry_run`, would expunge) from one user's store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeReport {
    /// The user.
    pub user: String,
    /// Nothing was changed: the report says what would have gone.
    pub dry_run: bool,
    /// Messages expunged, in all.
    pub messages: u64,
    /// Their bytes (RFC822.SIZE), in all.
    pub bytes: u64,
    /// Every mailbox looked at, by name.
    pub mailboxes: Vec<PurgedMailbox>,
}

/// One mailbox of a [`PurgeReport`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgedMailbox {
    /// The mailbox's canonical name.
    pub mailbox: String,
    /// Messages expunged.
    pub messages: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Their UIDs, ascending.
    pub uids: Vec<u32>,
}

/// The expunged messages of a mailbox that can still be restored (`unexpunge --list`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpungedReport {
    /// The user.
    pub user: String,
    /// The mailbox's canonical name.
    pub mailbox: String,
    /// How long an expunged message is kept after its expunge (`[compaction] retention`).
    pub retention_seconds: u64,
    /// The restorable messages, in UID order.
    pub messages: Vec<ExpungedListed>,
}

/// One message of an [`ExpungedReport`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpungedListed {
    /// Its UID before the expunge (a restore gives it a new one).
    pub uid: u32,
    /// RFC822.SIZE.
    pub size: u32,
    /// INTERNALDATE, unix seconds.
    pub internal_date: i64,
    /// When it was expunged, unix seconds (`None`: unknown, e.g. expunged by recovery).
    pub expunged_at: Option<i64>,
    /// Until when it is kept for sure, unix seconds: after that, the compaction of its spool
    /// segment takes it. `None` when the expunge time is unknown: it may go at any pass.
    pub retained_until: Option<i64>,
    /// Its Subject field as stored (folded lines joined, not MIME-decoded, cut short), if
    /// one is in its first [`SUBJECT_SCAN_BYTES`] bytes.
    pub subject: Option<String>,
    /// The live message of the mailbox that is this one (same EMAILID): it was restored
    /// already (or copied back), and is not restored again.
    pub restored_as: Option<u32>,
}

/// What `unexpunge --restore` brought back.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreReport {
    /// The user.
    pub user: String,
    /// The mailbox's canonical name.
    pub mailbox: String,
    /// Messages restored.
    pub messages: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Each restored message, in old-UID order.
    pub restored: Vec<Restored>,
}

/// One restored message: its UID before the expunge and the new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restored {
    /// The expunged message's UID.
    pub old_uid: u32,
    /// The restored copy's UID.
    pub new_uid: u32,
    /// RFC822.SIZE.
    pub size: u32,
}

impl<D: Disk> UserStore<D> {
    /// `skua ipurge`: expunges the live messages `criteria` selects, in the named mailbox or
    /// every mailbox of the store, [`PURGE_BATCH_UIDS`] at a time. Durable after the
    /// caller's next flush round, like any expunge.
    ///
    /// # Errors
    /// [`AdminError::NoSuchMailbox`] (nothing was changed), or the disk failed (the batches
    /// before the failing one stay expunged).
    ///
    /// # Panics
    /// If `criteria` gives neither an age nor a size (callers check: it would purge all).
    pub fn ipurge(
        &mut self,
        user: &str,
        criteria: &PurgeCriteria,
    ) -> Result<PurgeReport, AdminError> {
        assert!(
            criteria.older_than_days.is_some() || criteria.larger_than_bytes.is_some(),
            "ipurge without a condition"
        );
        let targets: Vec<(String, MailboxId)> = match &criteria.mailbox {
            Some(name) => {
                let id = self.mailbox_id(name).ok_or_else(|| no_mailbox(user, name))?;
                vec![(self.catalog.mailboxes[&id].name.clone(), id)]
            }
            None => self.catalog.by_name.iter().map(|(name, &id)| (name.clone(), id)).collect(),
        };
        let mut report = PurgeReport {
            user: user.to_owned(),
            dry_run: criteria.dry_run,
            messages: 0,
            bytes: 0,
            mailboxes: Vec::with_capacity(targets.len()),
        };
        for (mailbox, id) in targets {
            let index = self.indexes.get(&id).expect("every mailbox has an index");
            let doomed: Vec<(Uid, u32)> = index
                .entries()
                .iter()
                .filter(|e| !e.expunged && criteria.matches(e.date.unix_seconds, e.size))
                .map(|e| (e.uid, e.size))
                .collect();
            let bytes = doomed.iter().map(|&(_, size)| u64::from(size)).sum();
            let uids: Vec<Uid> = doomed.iter().map(|&(uid, _)| uid).collect();
            if !criteria.dry_run {
                for batch in uids.chunks(PURGE_BATCH_UIDS) {
                    self.expunge(id, batch).map_err(|e| update_error(e, user, &mailbox))?;
                }
            }
            report.messages += uids.len() as u64;
            report.bytes += bytes;
            let uids = uids.iter().map(|uid| uid.get()).collect::<Vec<u32>>();
            let messages = uids.len() as u64;
            report.mailboxes.push(PurgedMailbox { mailbox, messages, bytes, uids });
        }
        Ok(report)
    }

    /// `skua unexpunge --list`: the expunged messages of `mailbox` still in the spool, with
    /// how long `policy`'s retention keeps each. Reads the start of each one's spool record
    /// for its subject.
    ///
    /// # Errors
    /// [`AdminError::NoSuchMailbox`].
    pub fn expunged_report(
        &self,
        user: &str,
        mailbox: &str,
        policy: &CompactionPolicy,
    ) -> Result<ExpungedReport, AdminError> {
        let (name, id) = self.admin_mailbox(user, mailbox)?;
        let retained = self.expunged_retained(id).map_err(|_| no_mailbox(user, mailbox))?;
        let index = self.indexes.get(&id).expect("every mailbox has an index");
        let retention = i64::try_from(policy.retention_seconds).unwrap_or(i64::MAX);
        let live = self.live_by_size_and_date(id);
        let messages = retained
            .iter()
            .map(|m| {
                let slot = index.find(m.uid).expect("listed from this index");
                let subject = match self.body(id, m.uid) {
                    Ok(body) => subject_of(&body),
                    Err(_) => None,
                };
                ExpungedListed {
                    uid: m.uid.get(),
                    size: m.size,
                    internal_date: index.entries()[slot].date.unix_seconds,
                    expunged_at: m.expunged_at,
                    retained_until: m.expunged_at.map(|at| at.saturating_add(retention)),
                    subject,
                    restored_as: self.restored_as(id, &live, m.uid).map(Uid::get),
                }
            })
            .collect();
        Ok(ExpungedReport {
            user: user.to_owned(),
            mailbox: name,
            retention_seconds: policy.retention_seconds,
            messages,
        })
    }

    /// `skua unexpunge --restore`: brings back the expunged messages `uids` of `mailbox`
    /// (`None`: every one still in the spool) as new messages with new UIDs, their flags,
    /// internal dates, EMAILID and THREADID kept, `\Deleted` removed. Every UID is checked
    /// first: if any is not an expunged message still in the spool, nothing is restored.
    /// A message restored before (a live message of the mailbox has its EMAILID) is not
    /// restorable again: that would make a second copy.
    ///
    /// # Errors
    /// [`AdminError::NoSuchMailbox`], [`AdminError::NotRestorable`] (naming every such UID),
    /// [`AdminError::MailboxFull`], or the disk failed; in each case nothing was restored.
    pub fn restore_expunged(
        &mut self,
        user: &str,
        mailbox: &str,
        uids: Option<&[u32]>,
    ) -> Result<RestoreReport, AdminError> {
        let (name, id) = self.admin_mailbox(user, mailbox)?;
        let mut retained = self.expunged_retained(id).map_err(|_| no_mailbox(user, mailbox))?;
        let live = self.live_by_size_and_date(id);
        retained.retain(|m| self.restored_as(id, &live, m.uid).is_none());
        let wanted: Vec<Uid> = match uids {
            None => retained.iter().map(|m| m.uid).collect(),
            Some(uids) => {
                let mut asked = uids.to_vec();
                asked.sort_unstable();
                asked.dedup();
                let missing: Vec<u32> = asked
                    .iter()
                    .copied()
                    .filter(|&uid| retained.binary_search_by_key(&uid, |m| m.uid.get()).is_err())
                    .collect();
                if !missing.is_empty() {
                    let (user, mailbox) = (user.to_owned(), name);
                    return Err(AdminError::NotRestorable { user, mailbox, uids: missing });
                }
                asked.into_iter().map(|uid| Uid::new(uid).expect("found retained")).collect()
            }
        };
        let pairs = self.unexpunge(id, &wanted).map_err(|error| match error {
            CopyError::Storage(e) => AdminError::Storage(e),
            CopyError::MailboxFull | CopyError::OverQuota(_) => {
                AdminError::MailboxFull { user: user.to_owned(), mailbox: name.clone() }
            }
            CopyError::NoSuchMailbox | CopyError::NoSuchTarget => no_mailbox(user, mailbox),
        })?;
        // Checked above within the same borrow of the store: nothing can have gone since.
        assert_eq!(pairs.len(), wanted.len(), "every retained UID asked for was restored");
        // A restored message keeps its flags but `\Deleted`: with it, any client's next
        // EXPUNGE would take the message again.
        let new_uids: Vec<Uid> = pairs.iter().map(|&(_, new)| new).collect();
        let deleted = Flags { system: SystemFlags(SystemFlags::DELETED), keywords: Keywords(0) };
        self.store_flags_keeping_seen(id, &new_uids, FlagsOp::Remove, deleted, None)
            .map_err(|e| update_error(e, user, &name))?;
        let restored: Vec<Restored> = pairs
            .iter()
            .map(|&(old, new)| {
                let size = retained.iter().find(|m| m.uid == old).expect("retained").size;
                Restored { old_uid: old.get(), new_uid: new.get(), size }
            })
            .collect();
        Ok(RestoreReport {
            user: user.to_owned(),
            mailbox: name,
            messages: restored.len() as u64,
            bytes: restored.iter().map(|r| u64::from(r.size)).sum(),
            restored,
        })
    }

    /// The live messages of `id` by (size, internal date): a restored copy keeps both, so
    /// only these few need their EMAILID read to find one ([`UserStore::restored_as`]).
    fn live_by_size_and_date(&self, id: MailboxId) -> HashMap<(u32, i64), Vec<Uid>> {
        let mut live: HashMap<(u32, i64), Vec<Uid>> = HashMap::new();
        let index = self.indexes.get(&id).expect("every mailbox has an index");
        for entry in index.entries().iter().filter(|e| !e.expunged) {
            live.entry((entry.size, entry.date.unix_seconds)).or_default().push(entry.uid);
        }
        live
    }

    /// The live message of `id` with the same EMAILID as the expunged `uid` (`live` from
    /// [`UserStore::live_by_size_and_date`]), if there is one.
    fn restored_as(
        &self,
        id: MailboxId,
        live: &HashMap<(u32, i64), Vec<Uid>>,
        uid: Uid,
    ) -> Option<Uid> {
        let index = self.indexes.get(&id)?;
        let entry = index.entries()[index.find(uid)?];
        let candidates = live.get(&(entry.size, entry.date.unix_seconds))?;
        let email_id = self.email_id(id, uid).ok()?;
        candidates.iter().copied().find(|&copy| self.email_id(id, copy).ok() == Some(email_id))
    }

    /// The canonical name and id of `mailbox`, or [`AdminError::NoSuchMailbox`].
    fn admin_mailbox(&self, user: &str, mailbox: &str) -> Result<(String, MailboxId), AdminError> {
        let id = self.mailbox_id(mailbox).ok_or_else(|| no_mailbox(user, mailbox))?;
        let entry = self.catalog.mailboxes.get(&id).ok_or_else(|| no_mailbox(user, mailbox))?;
        Ok((entry.name.clone(), id))
    }
}

fn no_mailbox(user: &str, mailbox: &str) -> AdminError {
    AdminError::NoSuchMailbox { user: user.to_owned(), mailbox: mailbox.to_owned() }
}

fn update_error(error: UpdateError, user: &str, mailbox: &str) -> AdminError {
    match error {
        UpdateError::Storage(e) => AdminError::Storage(e),
        UpdateError::NoSuchMailbox | UpdateError::ReaderSeen(_) => no_mailbox(user, mailbox),
    }
}

/// The Subject field of the message starting `body`, as stored: folded lines joined, cut to
/// [`SUBJECT_CHARS_MAX`] characters; `None` when there is none in the first
/// [`SUBJECT_SCAN_BYTES`] bytes of the header.
fn subject_of(body: &[u8]) -> Option<String> {
    let head = &body[..body.len().min(SUBJECT_SCAN_BYTES)];
    let mut lines = head.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let mut value: Option<Vec<u8>> = None;
    for line in lines.by_ref() {
        if line.is_empty() {
            break; // the end of the header
        }
        let folded = line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        match &mut value {
            Some(text) if folded => text.extend_from_slice(line),
            Some(_) => break,
            None if line.len() >= 8 && line[..8].eq_ignore_ascii_case(b"subject:") => {
                value = Some(line[8..].to_vec());
            }
            None => {}
        }
    }
    let text = String::from_utf8_lossy(&value?).trim().to_owned();
    Some(text.chars().take(SUBJECT_CHARS_MAX).collect())
}

#[cfg(test)]
#[path = "purge_tests.rs"]
mod tests;
