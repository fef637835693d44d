//! Compaction of `mailboxes.log`: when the log has grown well past what the mailbox list needs
//! (renames, deletions, subscription churn), a compacted copy replaces it.
//!
//! The store never fsyncs, so the replacement is staged across flush rounds:
//!
//! ```text
//! start:   write mailboxes.log.tmp = header + the list as it is now   (epoch E)
//!          every later record goes to both files                     (epochs E..F)
//! finish:  once F is durable, rename mailboxes.log.tmp over mailboxes.log
//! ```
//!
//! A crash before the rename is durable leaves the old log, complete (records were written to
//! both); a crash after leaves the new one, whose contents were durable before the rename was
//! issued. A leftover `mailboxes.log.tmp` is removed on open.

use std::path::{Path, PathBuf};

use super::catalog::Catalog;
use super::log::{HEADER_BYTES, LogRecord, MailboxLog, encode_header};
use crate::disk::{Disk, DiskFile, OpenMode};
use crate::error::StorageError;
use crate::limits::LOG_COMPACT_MIN_BYTES;
use crate::types::Epoch;

/// The staging file.
pub(crate) const LOG_TMP_FILE: &str = "mailboxes.log.tmp";

/// A compacted copy of the log on its way to replace it.
pub(crate) struct Compaction<F> {
    file: F,
    path: PathBuf,
    nonce: u64,
    end: u64,
    /// The newest epoch that wrote to the copy: it may replace the log once this is durable.
    epoch: Epoch,
}

/// The length at which a log of `end` bytes is first considered for compaction.
pub(crate) fn first_check(end: u64) -> u64 {
    end.saturating_mul(2).max(LOG_COMPACT_MIN_BYTES)
}

/// The records that rebuild `catalog` as it is: every mailbox in id order (ids and
/// UIDVALIDITYs both grow with creation order, so the replay rules hold), its keywords in bit
/// order, their SPECIAL-USE attributes, their ACL entries in order, the subscriptions, the provisioned mark, and the floor
/// for ids and UIDVALIDITYs of deleted mailboxes.
pub(crate) fn compacted_records(catalog: &Catalog) -> Vec<LogRecord> {
    let mut records = Vec::new();
    for (&id, entry) in &catalog.mailboxes {
        records.push(LogRecord::Create {
            id,
            uid_validity: entry.uid_validity,
            name: entry.name.clone(),
        });
    }
    for (&id, entry) in &catalog.mailboxes {
        for (bit, name) in entry.keywords.iter().enumerate() {
            let void = entry.void & (1 << bit) != 0;
            let bit = u32::try_from(bit).expect("at most 64 keywords");
            records.push(if void {
                LogRecord::VoidKeyword { id, bit }
            } else {
                LogRecord::Keyword { id, bit, name: name.clone() }
            });
        }
    }
    for (&id, entry) in &catalog.mailboxes {
        if !entry.special_use.is_empty() {
            records.push(LogRecord::SpecialUse { id, uses: entry.special_use });
        }
    }
    for (&id, entry) in &catalog.mailboxes {
        for acl_entry in entry.acl.iter().flat_map(crate::acl::Acl::entries) {
            records.push(LogRecord::Acl {
                id,
                identifier: acl_entry.identifier.clone(),
                rights: acl_entry.rights,
            });
        }
    }
    for name in &catalog.subscriptions {
        records.push(LogRecord::Subscribe { name: name.clone() });
    }
    if catalog.provisioned {
        records.push(LogRecord::Provisioned);
    }
    for owner in &catalog.granted_by {
        records.push(LogRecord::Granted { owner: owner.clone() });
    }
    records.push(LogRecord::Floor {
        next_id: catalog.next_id,
        last_uid_validity: catalog.last_uid_validity,
    });
    records
}

impl<F: DiskFile> MailboxLog<F> {
    /// Starts a compaction when the log has grown past its next check and is more than twice
    /// what a compacted copy would take. Returns true when one was started.
    pub(crate) fn maybe_compact<D: Disk<File = F>>(
        &mut self,
        disk: &D,
        dir: &Path,
        catalog: &Catalog,
    ) -> Result<bool, StorageError> {
        if self.compaction.is_some() || self.end < self.next_compaction_check {
            return Ok(false);
        }
        self.next_compaction_check = first_check(self.end);
        let records = compacted_records(catalog);
        let nonce = super::codec::new_nonce();
        let mut bytes = encode_header(nonce).to_vec();
        for record in &records {
            bytes.extend_from_slice(&record.encode(nonce));
        }
        if bytes.len() as u64 * 2 > self.end {
            return Ok(false);
        }
        debug_assert!(replays_to(&records, catalog), "a compacted log replays to the same list");
        let path = dir.join(LOG_TMP_FILE);
        let file =
            disk.open(&path, OpenMode::CreateIfMissing).map_err(|e| StorageError::io(&path, e))?;
        file.set_len(0).map_err(|e| StorageError::io(&path, e))?;
        file.write_all_at(&bytes, 0).map_err(|e| StorageError::io(&path, e))?;
        let end = bytes.len() as u64;
        let epoch = disk.epoch_open();
        self.compaction = Some(Compaction { file, path, nonce, end, epoch });
        Ok(true)
    }

    /// Writes `records` to the compacted copy too. A failure abandons the compaction (the log
    /// itself has the records; the copy is removed on the next open).
    pub(crate) fn compaction_append(&mut self, records: &[LogRecord], now: Epoch) {
        let Some(compaction) = self.compaction.as_mut() else {
            return;
        };
        let bytes = super::log_batch::encode_unit(records, compaction.nonce);
        match compaction.file.write_all_at(&bytes, compaction.end) {
            Ok(()) => {
                compaction.end += bytes.len() as u64;
                compaction.epoch = now;
            }
            Err(error) => {
                tracing::warn!(%error, "abandoning mailbox log compaction");
                self.compaction = None;
            }
        }
    }

    /// Drops a compaction in progress (the copy is removed on the next open).
    pub(crate) fn abandon_compaction(&mut self) {
        self.compaction = None;
    }

    /// Replaces the log with the compacted copy once everything written to the copy is
    /// durable. Returns true when it did.
    pub(crate) fn finish_compaction<D: Disk<File = F>>(
        &mut self,
        disk: &D,
        durable: Epoch,
    ) -> Result<bool, StorageError> {
        if self.compaction.as_ref().is_none_or(|c| c.epoch > durable) {
            return Ok(false);
        }
        let compaction = self.compaction.take().expect("checked above");
        disk.rename(&compaction.path, &self.path)
            .map_err(|e| StorageError::io(&compaction.path, e))?;
        assert!(compaction.end >= HEADER_BYTES as u64);
        tracing::info!(before = self.end, after = compaction.end, "mailbox log compacted");
        self.file = compaction.file;
        self.nonce = compaction.nonce;
        self.end = compaction.end;
        self.next_compaction_check = first_check(self.end);
        Ok(true)
    }
}

/// True when `records` replay to the same mailbox list as `catalog` (pair assertion).
fn replays_to(records: &[LogRecord], catalog: &Catalog) -> bool {
    let mut replayed = Catalog::default();
    records.iter().all(|r| replayed.apply(r))
        && replayed.mailboxes.len() == catalog.mailboxes.len()
        && replayed.by_name == catalog.by_name
        && replayed.subscriptions == catalog.subscriptions
        && replayed.next_id == catalog.next_id
        && replayed.last_uid_validity == catalog.last_uid_validity
        && replayed.provisioned == catalog.provisioned
        && replayed.mailboxes.iter().all(|(id, entry)| {
            catalog.mailboxes.get(id).is_some_and(|c| {
                c.uid_validity == entry.uid_validity
                    && c.keywords == entry.keywords
                    && c.void == entry.void
                    && c.special_use == entry.special_use
                    && c.acl == entry.acl
            })
        })
}
