//! `skua mbexamine` (a mailbox's header fields and every index record), `skua quota` (usage,
//! limits and a recount) and `skua df` (bytes on disk): reports read from an open store.

use serde::{Deserialize, Serialize};

use super::super::UserStore;
use super::super::catalog::void_name;
use super::super::spool_compact::CompactionPolicy;
use super::AdminError;
use crate::disk::Disk;
use crate::error::StorageError;
use crate::types::{Flags, SystemFlags};

/// One mailbox as stored (Cyrus's mbexamine): its header fields and every index record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExamineReport {
    /// The user.
    pub user: String,
    /// The mailbox's canonical name.
    pub mailbox: String,
    /// Its id (the index file is `mbox/<id as 8 decimal digits>.idx`).
    pub id: u32,
    /// UIDVALIDITY.
    pub uid_validity: u32,
    /// UIDNEXT now.
    pub uid_next: u32,
    /// HIGHESTMODSEQ now.
    pub highest_modseq: u64,
    /// The first UID not yet shown to a session (`\Recent` from here on).
    pub first_recent_uid: u32,
    /// The index header's spool checkpoint as last written: segment number.
    pub checkpoint_segment: u32,
    /// The index header's spool checkpoint as last written: offset in the segment.
    pub checkpoint_offset: u32,
    /// The mailbox's creation is known durable (header flag).
    pub sealed: bool,
    /// Live messages.
    pub messages: u32,
    /// Live messages without `\Seen`.
    pub unseen: u32,
    /// Live messages with `\Deleted`.
    pub deleted: u32,
    /// Sum of live message sizes, bytes.
    pub size_bytes: u64,
    /// The keyword table, by bit.
    pub keywords: Vec<String>,
    /// Every index record, in UID order (expunged ones included).
    pub records: Vec<ExamineRecord>,
}

/// One index record as [`ExamineReport`] shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExamineRecord {
    /// UID.
    pub uid: u32,
    /// System flags and keywords, by name.
    pub flags: Vec<String>,
    /// Expunged (kept for QRESYNC and delayed expunge until compaction).
    pub expunged: bool,
    /// MODSEQ of the last change.
    pub modseq: u64,
    /// RFC822.SIZE.
    pub size: u32,
    /// INTERNALDATE, unix seconds.
    pub internal_date: i64,
    /// INTERNALDATE's zone, minutes east of UTC.
    pub zone_minutes: i16,
    /// SAVEDATE, unix seconds (0: unknown).
    pub save_date: u32,
    /// Spool segment of the message's record.
    pub segment: u32,
    /// Offset of the record in its segment.
    pub offset: u32,
    /// Padded record length.
    pub record_bytes: u32,
    /// The record's checksum as the index keeps it.
    pub crc: u32,
}

/// A user's quota: usage as counted, a recount, and the limits that apply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaReport {
    /// The user.
    pub user: String,
    /// Bytes of live messages (the running counter).
    pub storage_bytes: u64,
    /// Live messages (the running counter).
    pub messages: u64,
    /// Mailboxes, INBOX included.
    pub mailboxes: u64,
    /// Bytes of live messages, recounted from every index record.
    pub recount_storage_bytes: u64,
    /// Live messages, recounted.
    pub recount_messages: u64,
    /// STORAGE limit in KiB (`None`: unlimited).
    pub limit_storage_kib: Option<u64>,
    /// MESSAGE limit.
    pub limit_messages: Option<u64>,
    /// MAILBOX limit.
    pub limit_mailboxes: Option<u64>,
    /// Where the limits come from: `stored` (SETQUOTA) or `given` (configuration).
    pub limits_from: String,
    /// Bytes held by deliveries in flight.
    pub reserved_bytes: u64,
    /// `--fix` found counters that differed from the recount and set them to it.
    #[serde(default)]
    pub fixed: bool,
}

impl QuotaReport {
    /// True when the running counters equal the recount.
    #[must_use]
    pub fn counters_exact(&self) -> bool {
        self.storage_bytes == self.recount_storage_bytes && self.messages == self.recount_messages
    }
}

/// What a user's store takes on disk (`skua df`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageReport {
    /// The user.
    pub user: String,
    /// Spool segment files (apparent size).
    pub spool_bytes: u64,
    /// Of the spool, records of live messages.
    pub live_bytes: u64,
    /// Of the spool, records of expunged messages still restorable.
    pub retained_bytes: u64,
    /// Index files.
    pub index_bytes: u64,
    /// Every other file of the store.
    pub other_bytes: u64,
    /// `spool_bytes + index_bytes + other_bytes`.
    pub total_bytes: u64,
    /// Live messages.
    pub messages: u64,
    /// Mailboxes.
    pub mailboxes: u64,
}

/// Flag names of `flags` with the mailbox's keyword table.
fn flag_names(flags: Flags, keywords: &[String]) -> Vec<String> {
    let system = [
        (SystemFlags::SEEN, "\\Seen"),
        (SystemFlags::ANSWERED, "\\Answered"),
        (SystemFlags::FLAGGED, "\\Flagged"),
        (SystemFlags::DELETED, "\\Deleted"),
        (SystemFlags::DRAFT, "\\Draft"),
    ];
    let mut names: Vec<String> = system
        .iter()
        .filter(|(bit, _)| flags.system.contains(*bit))
        .map(|(_, name)| (*name).to_owned())
        .collect();
    for bit in 0..64u32 {
        if flags.keywords.0 & (1u64 << bit) != 0 {
            let name = keywords.get(bit as usize).cloned().unwrap_or_else(|| void_name(bit));
            names.push(name);
        }
    }
    names
}

impl<D: Disk> UserStore<D> {
    /// `skua mbexamine`: the mailbox named `mailbox` (any case of INBOX).
    ///
    /// # Errors
    /// [`AdminError::NoSuchMailbox`].
    pub fn examine(&self, user: &str, mailbox: &str) -> Result<ExamineReport, AdminError> {
        let missing =
            || AdminError::NoSuchMailbox { user: user.to_owned(), mailbox: mailbox.to_owned() };
        let id = self.mailbox_id(mailbox).ok_or_else(missing)?;
        let entry = self.catalog.mailboxes.get(&id).ok_or_else(missing)?;
        let index = self.indexes.get(&id).ok_or_else(missing)?;
        let header = index.header();
        let counts = index.counts();
        let records = index
            .entries()
            .iter()
            .map(|e| ExamineRecord {
                uid: e.uid.get(),
                flags: flag_names(e.flags, &entry.keywords),
                expunged: e.expunged,
                modseq: e.modseq,
                size: e.size,
                internal_date: e.date.unix_seconds,
                zone_minutes: e.date.zone_minutes,
                save_date: e.save_date,
                segment: e.spool.segment,
                offset: e.spool.offset,
                record_bytes: e.spool.len,
                crc: e.spool.crc,
            })
            .collect();
        Ok(ExamineReport {
            user: user.to_owned(),
            mailbox: entry.name.clone(),
            id: id.0,
            uid_validity: entry.uid_validity.get(),
            uid_next: index.uid_next(),
            highest_modseq: index.highest_modseq(),
            first_recent_uid: index.first_recent_uid(),
            checkpoint_segment: header.checkpoint.segment(),
            checkpoint_offset: header.checkpoint.offset(),
            sealed: header.sealed,
            messages: counts.messages,
            unseen: counts.unseen,
            deleted: counts.deleted,
            size_bytes: counts.size,
            keywords: entry.keywords.clone(),
            records,
        })
    }

    /// `skua quota`: usage, a recount and the limits (reads `quota.limits` if it exists).
    ///
    /// # Errors
    /// Reading `quota.limits` failed.
    pub fn quota_report(&mut self, user: &str) -> Result<QuotaReport, StorageError> {
        let usage = self.quota_usage();
        let recount = self.quota_recount();
        let (limits, source) = self.quota_limits()?;
        Ok(QuotaReport {
            user: user.to_owned(),
            storage_bytes: usage.storage_bytes,
            messages: usage.messages,
            mailboxes: usage.mailboxes,
            recount_storage_bytes: recount.storage_bytes,
            recount_messages: recount.messages,
            limit_storage_kib: limits.storage_kib,
            limit_messages: limits.messages,
            limit_mailboxes: limits.mailboxes,
            limits_from: match source {
                super::super::QuotaSource::Stored => "stored",
                super::super::QuotaSource::Given => "given",
            }
            .to_owned(),
            reserved_bytes: self.quota_reserved().0,
            fixed: false,
        })
    }

    /// `skua df`: what the store takes on disk, by kind (`policy` says which expunged
    /// messages are still retained).
    ///
    /// # Errors
    /// The disk failed.
    pub fn usage_report(
        &self,
        user: &str,
        policy: &CompactionPolicy,
    ) -> Result<UsageReport, StorageError> {
        let disk = self.disk_usage(policy)?;
        let usage = self.quota_usage();
        Ok(UsageReport {
            user: user.to_owned(),
            spool_bytes: disk.spool_bytes,
            live_bytes: disk.live_bytes,
            retained_bytes: disk.retained_bytes,
            index_bytes: disk.index_bytes,
            other_bytes: disk.other_bytes,
            total_bytes: disk.spool_bytes + disk.index_bytes + disk.other_bytes,
            messages: usage.messages,
            mailboxes: usage.mailboxes,
        })
    }
}
