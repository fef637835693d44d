//! `reconstruct`: rebuild every mailbox index of a user from the spool segments and
//! `mailboxes.log` alone, keeping the flags and modseqs of old index records that still
//! validate (checksum, and pointing at exactly the spool record found).
//!
//! For when an index is damaged beyond what the cheap recovery on open repairs, or as a check
//! (`skua reconstruct`). Reads every spool record; run it on a store that is not open.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::catalog::Catalog;
use super::codec::SpoolPos;
use super::index::{self, Entry, Index, IndexHeader};
use super::log::MailboxLog;
use super::record::Head;
use super::scan::{ScanResult, scan};
use super::spool::{SPOOL_DIR, Spool};
use crate::disk::{Disk, DiskFile};
use crate::error::{OpenError, StorageError};
use crate::types::{MailboxId, UidValidity};

/// What [`reconstruct`] found and wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReconstructReport {
    /// Mailboxes whose index was rebuilt.
    pub mailboxes: u64,
    /// Live messages in the rebuilt indexes.
    pub messages: u64,
    /// Expunged messages still in the spool (kept as expunged records).
    pub expunged: u64,
    /// Messages whose flags came from the old index.
    pub flags_kept: u64,
    /// Messages whose old index record was missing or did not validate (flags from the spool
    /// record, i.e. as appended).
    pub flags_reset: u64,
    /// Old index records that no spool record backs (dropped).
    pub index_records_dropped: u64,
    /// Spool records of mailboxes that no longer exist (left for compaction).
    pub orphaned_records: u64,
    /// Spool records read.
    pub spool_records: u64,
    /// Bytes cut from torn spool tails.
    pub spool_truncated_bytes: u64,
    /// Bytes cut from the tail of `mailboxes.log`.
    pub log_truncated_bytes: u64,
    /// Keyword bits that records carried but the log had lost, made void (as on open).
    pub keywords_voided: u64,
    /// Mailboxes whose creation was durable but which the log lacks (it was damaged), named
    /// `Recovered/<id>`.
    pub mailboxes_salvaged: u64,
}

/// Rebuilds every index of the store in `dir` (relative to the disk root). The new indexes
/// are written beside the old ones, made durable by a flush round that reconstruct runs
/// itself, then renamed over them; the renames are durable after the caller's next flush
/// round. The store must not be open, and no group-commit driver may be flushing the same
/// disk meanwhile (`skua reconstruct` uses a disk of its own).
///
/// # Errors
/// The disk failed, or the log is damaged beyond repair or from a newer skua.
pub fn reconstruct<D: Disk>(disk: Rc<D>, dir: &Path) -> Result<ReconstructReport, OpenError> {
    let d = &*disk;
    for sub in [SPOOL_DIR, index::INDEX_DIR] {
        let path = dir.join(sub);
        d.create_dir_all(&path).map_err(|e| StorageError::io(&path, e))?;
    }
    let mut catalog = Catalog::default();
    let mut opened = MailboxLog::open(d, dir, |unit| catalog.apply_unit(unit))?;
    let mut report = ReconstructReport {
        log_truncated_bytes: opened.truncated_bytes,
        ..ReconstructReport::default()
    };
    // Index files the log lacks: sealed ones are salvaged as on open; the others are left for
    // the next open to remove.
    let mut deferred = super::checkpoint::Deferred::default();
    let mut recovery = super::RecoveryReport::default();
    super::open::sort_strays(d, dir, &mut opened.log, &mut catalog, &mut deferred, &mut recovery)?;
    report.mailboxes_salvaged = recovery.mailboxes_salvaged;
    let mut spool = Spool::list(d, dir)?;
    // No references to recover a damaged segment header from (the old indexes are read
    // later): open, which has them, repairs such a header first; here only the header's own
    // nonce field is tried.
    let scanned = scan(d, &mut spool, SpoolPos::default(), &|_| Vec::new())?;
    report.spool_records = scanned.records.len() as u64;
    report.spool_truncated_bytes = scanned.truncated_bytes;
    report.orphaned_records = scanned
        .records
        .iter()
        .filter(|r| {
            let mailbox = match r.head {
                Head::Message(h) => h.mailbox,
                Head::Tombstone { mailbox, .. } => mailbox,
            };
            !catalog.mailboxes.contains_key(&mailbox)
        })
        .count() as u64;
    // Keyword bits the records carry but the log lost are made void, as on open.
    for id in catalog.mailboxes.keys().copied().collect::<Vec<_>>() {
        let entry = &catalog.mailboxes[&id];
        let defined = entry.valid_keywords() | entry.void;
        let path = index::index_path(dir, id);
        let mut stray = Index::<D::File>::salvage(d, &path)?
            .iter()
            .fold(0, |bits, e| bits | (e.flags.keywords.0 & !defined));
        for record in scanned.records.iter() {
            if let Head::Message(head) = record.head
                && head.mailbox == id
            {
                stray |= head.flags.keywords.0 & !defined;
            }
        }
        report.keywords_voided +=
            super::open::void_bits(&mut opened.log, &mut catalog, id, stray, d)?;
    }
    let mut rebuilt = Vec::new();
    for (&id, entry) in &catalog.mailboxes {
        let keywords = entry.valid_keywords();
        rebuilt.push(rebuild(d, dir, id, entry.uid_validity, keywords, &scanned, &mut report)?);
        report.mailboxes += 1;
    }
    opened.log.touch()?;
    spool.touch_from(d, 0)?;
    // The new indexes replace the old ones only once their contents are durable: a rename that
    // became durable before its file's contents would lose the flags the old index held.
    flush_round(d)?;
    for (temporary, path) in rebuilt {
        d.rename(&temporary, &path).map_err(|e| StorageError::io(&path, e))?;
    }
    Ok(report)
}

/// One flush round of the disk (reconstruct is an offline tool with the disk to itself).
fn flush_round<D: Disk>(disk: &D) -> Result<(), StorageError> {
    use crate::disk::Flush;
    if let Some(flush) = disk.flush_begin() {
        let epoch = flush.epoch();
        flush.run().map_err(|e| StorageError::io("(flush round)", e))?;
        disk.flush_end(epoch);
    }
    Ok(())
}

/// Rebuilds one index into a temporary file; returns it and the path it is to replace.
fn rebuild<D: Disk>(
    disk: &D,
    dir: &Path,
    id: MailboxId,
    uid_validity: UidValidity,
    keywords: u64,
    scanned: &ScanResult,
    report: &mut ReconstructReport,
) -> Result<(PathBuf, PathBuf), StorageError> {
    let path = index::index_path(dir, id);
    let header = Index::<D::File>::read_header(disk, &path)?;
    let ours = header.is_none_or(|h| h.mailbox == id && h.uid_validity == uid_validity);
    let salvaged = if ours { Index::<D::File>::salvage(disk, &path)? } else { Vec::new() };
    let old_entries: HashMap<u32, Entry> = salvaged.iter().map(|e| (e.uid.get(), *e)).collect();
    let (mut uid_next, mut highest) =
        header.filter(|_| ours).map_or((1, 1), |h| (h.uid_next, h.highest_modseq));
    for entry in &salvaged {
        uid_next = uid_next.max(entry.uid.get().saturating_add(1));
        highest = highest.max(entry.modseq);
    }
    let mut entries: Vec<Entry> = Vec::new();
    let mut tombstoned = std::collections::HashSet::new();
    for record in scanned.records.iter() {
        match record.head {
            Head::Message(head) if head.mailbox == id => {
                if entries.last().is_some_and(|last| last.uid >= head.uid) {
                    continue;
                }
                let kept = old_entries.get(&head.uid.get()).filter(|e| e.spool == record.spool);
                let entry = if let Some(kept) = kept {
                    report.flags_kept += 1;
                    let mut kept = *kept;
                    kept.flags.keywords.0 &= keywords;
                    kept
                } else {
                    report.flags_reset += 1;
                    let mut flags = head.flags;
                    flags.keywords.0 &= keywords;
                    Entry {
                        uid: head.uid,
                        flags,
                        expunged: false,
                        modseq: 0,
                        date: head.date,
                        size: head.message_len,
                        spool: record.spool,
                        save_date: 0,
                    }
                };
                highest = highest.max(entry.modseq);
                entries.push(entry);
            }
            Head::Tombstone { mailbox, modseq, .. } if mailbox == id => {
                highest = highest.max(modseq);
                tombstoned.extend(record.uids.iter().copied());
            }
            Head::Message(_) | Head::Tombstone { .. } => {}
        }
    }
    let rebuilt: std::collections::HashSet<u32> = entries.iter().map(|e| e.uid.get()).collect();
    report.index_records_dropped +=
        old_entries.keys().filter(|uid| !rebuilt.contains(uid)).count() as u64;
    for entry in &mut entries {
        if entry.modseq == 0 {
            highest += 1;
            entry.modseq = highest;
        }
        if tombstoned.contains(&entry.uid) && !entry.expunged {
            highest += 1;
            entry.expunged = true;
            entry.modseq = highest;
        }
        report.expunged += u64::from(entry.expunged);
        report.messages += u64::from(!entry.expunged);
    }
    let uid_next = entries.last().map_or(uid_next, |e| uid_next.max(e.uid.get().saturating_add(1)));
    write_rebuilt(disk, &path, id, uid_validity, uid_next, highest, &entries)
}

/// Writes the new index to `<path>.tmp`; returns that path and `path`.
fn write_rebuilt<D: Disk>(
    disk: &D,
    path: &Path,
    id: MailboxId,
    uid_validity: UidValidity,
    uid_next: u32,
    highest_modseq: u64,
    entries: &[Entry],
) -> Result<(PathBuf, PathBuf), StorageError> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = std::path::PathBuf::from(temporary);
    // The checkpoint is the spool's start: the next open checks everything once, and moves the
    // checkpoint up after its first flush (the rebuilt files are not durable yet).
    let header = IndexHeader {
        mailbox: id,
        uid_validity,
        uid_next,
        highest_modseq,
        checkpoint: SpoolPos::default(),
        messages: 0,
        sealed: false,
        // Who was told of what is not known after a rebuild: nothing is recent.
        first_recent_uid: uid_next,
    };
    let mut bytes = Vec::with_capacity(index::HEADER_BYTES + entries.len() * index::RECORD_BYTES);
    let header = IndexHeader {
        messages: u32::try_from(entries.iter().filter(|e| !e.expunged).count()).unwrap_or(u32::MAX),
        ..header
    };
    bytes.extend_from_slice(&header.encode());
    for entry in entries {
        bytes.extend_from_slice(&entry.encode());
    }
    let file = disk
        .open(&temporary, crate::disk::OpenMode::CreateIfMissing)
        .map_err(|e| StorageError::io(&temporary, e))?;
    file.set_len(0).map_err(|e| StorageError::io(&temporary, e))?;
    file.write_all_at(&bytes, 0).map_err(|e| StorageError::io(&temporary, e))?;
    Ok((temporary, path.to_path_buf()))
}
