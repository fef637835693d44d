//! `skua check` (Cyrus's chk_cyrus): verifies a store and changes nothing.
//!
//! Two passes. The file pass ([`check_files`]) needs no open store: it reads every index file
//! as stored (header and every record, each against its checksum) and, for every live
//! message, the whole spool record the index points at (its checksum over every byte, and its
//! mailbox, UID and size against the index record). It only reads, so it is safe on a store
//! that opening would repair: the offline CLI runs it first and opens the store only when it
//! found nothing (open repairs damage it meets, and a check must not). The counter pass
//! ([`UserStore::check_counters`]) runs on an open store: each mailbox's counters and the
//! quota totals against a recount from the index records, headers against `mailboxes.log`,
//! every entry inside the spool, and `metadata.log` / `seen.log` readable.
//!
//! Not covered: spool records no index refers to (expunged and compacted, or orphaned) are
//! not read; `skua reconstruct` reads the whole spool.

use std::path::Path;

use super::super::UserStore;
use super::super::codec::{file_len, read_at};
use super::super::index::{self, Entry, HEADER_BYTES, INDEX_DIR, IndexHeader, RECORD_BYTES};
use super::super::record::Head;
use super::super::spool::Spool;
use super::CheckReport;
use crate::disk::{Disk, OpenMode};
use crate::error::StorageError;
use crate::types::{MailboxId, SystemFlags};

/// Index records read at once by the file pass (256 KiB).
const RECORDS_PER_READ: usize = 4096;

/// The file pass (see the module docs) over the store in `dir` (relative to the disk root).
/// Reads only.
///
/// # Errors
/// The disk failed reading a directory or a file that exists; damage is a finding.
pub fn check_files<D: Disk>(disk: &D, dir: &Path, user: &str) -> Result<CheckReport, StorageError> {
    let mut report = CheckReport { user: user.to_owned(), ..CheckReport::default() };
    let spool_dir = dir.join(super::super::spool::SPOOL_DIR);
    let spool = if disk.exists(&spool_dir) { Some(Spool::<D>::list(disk, dir)?) } else { None };
    let index_dir = dir.join(INDEX_DIR);
    let mut names = if disk.exists(&index_dir) {
        disk.list_dir(&index_dir).map_err(|e| StorageError::io(&index_dir, e))?
    } else {
        Vec::new()
    };
    names.sort();
    for name in names {
        let Some(id) = index::parse_index_name(&name) else {
            continue;
        };
        check_index(disk, spool.as_ref(), &index_dir.join(&name), id, &mut report)?;
    }
    Ok(report)
}

/// One index file: its header, every record, and the spool record of every live message.
fn check_index<D: Disk>(
    disk: &D,
    spool: Option<&Spool<D>>,
    path: &Path,
    id: MailboxId,
    report: &mut CheckReport,
) -> Result<(), StorageError> {
    report.indexes += 1;
    let file = disk.open(path, OpenMode::Existing).map_err(|e| StorageError::io(path, e))?;
    let len = file_len(&file, path)?;
    if len < HEADER_BYTES as u64 {
        report.find(path, format!("index file has {len} bytes, less than its header"));
        return Ok(());
    }
    let mut header = [0u8; HEADER_BYTES];
    read_at(&file, path, &mut header, 0)?;
    match IndexHeader::decode(&header, path) {
        Ok(Some(header)) if header.mailbox != id => report.find(
            path,
            format!(
                "index header names mailbox {} in the file of mailbox {}",
                header.mailbox.0, id.0
            ),
        ),
        Ok(Some(_)) => {}
        Ok(None) => report.find(path, "index header fails its checksum".to_owned()),
        Err(error) => {
            report.find(path, error.to_string());
            return Ok(());
        }
    }
    let body = len - HEADER_BYTES as u64;
    if !body.is_multiple_of(RECORD_BYTES as u64) {
        report.find(path, format!("index file ends in a partial record ({len} bytes)"));
    }
    let records = body / RECORD_BYTES as u64;
    let mut previous: Option<Entry> = None;
    let mut slot = 0u64;
    while slot < records {
        let count = (records - slot).min(RECORDS_PER_READ as u64);
        let mut bytes = vec![0u8; usize::try_from(count).expect("bounded") * RECORD_BYTES];
        let offset = HEADER_BYTES as u64 + slot * RECORD_BYTES as u64;
        read_at(&file, path, &mut bytes, offset)?;
        for (at, chunk) in bytes.chunks_exact(RECORD_BYTES).enumerate() {
            let here = slot + at as u64;
            let record_offset = HEADER_BYTES as u64 + here * RECORD_BYTES as u64;
            let Some(entry) = Entry::decode(chunk) else {
                report.find(
                    path,
                    format!("index record {here} (offset {record_offset}) fails its checksum"),
                );
                continue;
            };
            report.index_records += 1;
            if previous.is_some_and(|p| p.uid >= entry.uid) {
                report.find(
                    path,
                    format!(
                        "index record {here} has UID {}, not above the one before",
                        entry.uid.get()
                    ),
                );
            }
            previous = Some(entry);
            if !entry.expunged {
                check_spool_record(disk, spool, id, entry, report);
            }
        }
        slot += count;
    }
    Ok(())
}

/// The whole spool record a live message's index record points at.
fn check_spool_record<D: Disk>(
    disk: &D,
    spool: Option<&Spool<D>>,
    id: MailboxId,
    entry: Entry,
    report: &mut CheckReport,
) {
    let uid = entry.uid.get();
    let Some(spool) = spool else {
        report.find(Path::new("spool"), format!("mailbox {} UID {uid}: no spool directory", id.0));
        return;
    };
    let path = spool.path(entry.spool.segment);
    let at = entry.spool.offset;
    match spool.view_record(disk, entry.spool, true) {
        Ok((header, _)) => match header.head {
            Head::Message(head)
                if head.mailbox == id
                    && head.uid == entry.uid
                    && head.message_len == entry.size =>
            {
                report.spool_records += 1;
            }
            _ => report.find(
                &path,
                format!(
                    "spool record at offset {at} is not mailbox {} UID {uid} of {} bytes, as \
                     its index record says",
                    id.0, entry.size
                ),
            ),
        },
        Err(StorageError::Corrupt { .. }) => report.find(
            &path,
            format!("spool record at offset {at} (mailbox {} UID {uid}) fails its checksum", id.0),
        ),
        Err(error) => report.find(
            &path,
            format!("spool record at offset {at} (mailbox {} UID {uid}) unreadable: {error}", id.0),
        ),
    }
}

impl<D: Disk> UserStore<D> {
    /// The counter pass of `skua check` (see the module docs), adding what it finds to
    /// `report`. Changes nothing on disk: a log is read only if its file exists.
    ///
    /// # Errors
    /// The disk failed.
    pub fn check_counters(&mut self, report: &mut CheckReport) -> Result<(), StorageError> {
        let end = self.spool.end_pos();
        for (id, index) in &self.indexes {
            report.mailboxes_recounted += 1;
            let path = index::index_path(&self.dir, *id);
            match self.catalog.mailboxes.get(id) {
                None => report.find(&path, format!("mailbox {} is not in mailboxes.log", id.0)),
                Some(entry) if entry.uid_validity != index.header().uid_validity => report.find(
                    &path,
                    format!(
                        "UIDVALIDITY {} differs from mailboxes.log's {}",
                        index.header().uid_validity.get(),
                        entry.uid_validity.get()
                    ),
                ),
                Some(_) => {}
            }
            let mut recount = index::Counts::default();
            for entry in index.entries() {
                if entry.spool.end() > end {
                    report
                        .find(&path, format!("UID {} points past the spool end", entry.uid.get()));
                }
                if entry.uid.get() >= index.uid_next() {
                    report.find(&path, format!("UID {} is not below UIDNEXT", entry.uid.get()));
                }
                if entry.modseq > index.highest_modseq() {
                    report.find(&path, format!("UID {} is above HIGHESTMODSEQ", entry.uid.get()));
                }
                if !entry.expunged {
                    recount.messages += 1;
                    recount.unseen += u32::from(!entry.flags.system.contains(SystemFlags::SEEN));
                    recount.deleted += u32::from(entry.flags.system.contains(SystemFlags::DELETED));
                    recount.size += u64::from(entry.size);
                }
            }
            if recount != index.counts() {
                report.find(
                    &path,
                    format!("counters {:?} differ from a recount {recount:?}", index.counts()),
                );
            }
        }
        for id in self.catalog.mailboxes.keys().filter(|id| !self.indexes.contains_key(id)) {
            report
                .find(&index::index_path(&self.dir, *id), format!("mailbox {} has no index", id.0));
        }
        let (usage, recount) = (self.quota_usage(), self.quota_recount());
        if usage != recount {
            report.find(
                &self.dir,
                format!("quota usage {usage:?} differs from a recount {recount:?}"),
            );
        }
        if self.disk.exists(&self.dir.join(super::super::metadata::METADATA_FILE))
            && let Err(error) = self.load_metadata()
        {
            report.find(
                &self.dir.join(super::super::metadata::METADATA_FILE),
                format!("unreadable: {error}"),
            );
        }
        if self.disk.exists(&self.dir.join(super::super::seen_log::SEEN_FILE))
            && let Err(error) = self.load_seen()
        {
            report.find(
                &self.dir.join(super::super::seen_log::SEEN_FILE),
                format!("unreadable: {error}"),
            );
        }
        Ok(())
    }
}
